"""Exposure read-outs over a window or per dosing interval: :func:`interpolate`, :func:`cmax`, :func:`tmax`,
:func:`cmin`, :func:`trough`, :func:`auc`, :func:`time_above`, ... (conventions in :mod:`pkcsf.analysis.metrics`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.analysis.curve import (
    MetricsError,
    _apply,
    _as_threshold,
    _as_time,
    _blocks,
    _Curve,
    _k_auc,
    _k_cmax,
    _k_cmin,
    _k_longest,
    _k_time_above,
    _k_tmax,
    _seg_area,
)
from pkcsf.core.errors import suggest

__all__ = ["interpolate", "cmax", "tmax", "cmin", "auc", "auc_cumulative", "time_above", "longest_time_above",
           "per_interval", "auc_per_interval", "time_above_per_interval", "longest_time_above_per_interval",
           "trough"]


# ----------------------------------------------------------------------------
# public read-outs
# ----------------------------------------------------------------------------

def interpolate(times: ArrayLike, conc: ArrayLike, at: float | str | ArrayLike, *, method: str = "linear",
                side: str = "right", dose_times: ArrayLike | None = None,
                conc_before: ArrayLike | None = None) -> np.ndarray:
    """Concentrations at arbitrary times, with the read-outs' interpolant.

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h, strictly increasing.
    conc : array_like, shape (n_subjects, n_times[, n_compartments])
        Concentrations, mg/L.
    at : float, str or array_like, shape (n_at,)
        Query times in h (inside the grid).
    method : str
        One of :data:`METHODS`.
    side : {"right", "left"}
        At a dose time (with ``dose_times``): "right" gives the stored
        post-dose value, "left" the pre-dose value.
    dose_times, conc_before
        See the module docstring.

    Returns
    -------
    ndarray
        mg/L; shape (n_subjects[, n_compartments]) for a scalar ``at``, else
        (n_subjects, n_at[, n_compartments]).

    Raises
    ------
    MetricsError
        ``side`` not "right"/"left", or a query time outside the output grid.

    Examples
    --------
    >>> import numpy as np
    >>> from pkcsf.analysis.exposure import interpolate
    >>> interpolate([0.0, 1.0, 2.0], np.array([[4.0, 2.0, 1.0]]), 0.5)
    array([3.])
    """
    if side not in ("right", "left"):
        raise MetricsError("side", side, "allowed: right, left")
    cur = _Curve(times, conc, method, dose_times, conc_before)
    scalar = isinstance(at, str) or np.ndim(at) == 0
    ats = [at] if scalar else list(np.asarray(at, dtype=float).ravel())
    t, out = cur.times, []
    for i, x in enumerate(ats):
        field = "at" if scalar else f"at[{i}]"
        x = _as_time(field, x)
        if x < t[0] - cur.tol or x > t[-1] + cur.tol:
            raise MetricsError(field, x, f"must lie within the output grid [{t[0]:g}, {t[-1]:g}] h")
        out.append(cur.value_at(cur._snap(x), side))
    return out[0] if scalar else np.stack(out, axis=1)


def _run(kernel, times, conc, start, end, method, dose_times, conc_before, thr=None):
    cur = _Curve(times, conc, method, dose_times, conc_before)
    w = cur.window(*cur.bounds(start, end))
    return _apply(kernel, w) if thr is None else _apply(kernel, w, thr)


def cmax(times: ArrayLike, conc: ArrayLike, start: float | str | None = None, end: float | str | None = None, *,
         method: str = "linear", dose_times: ArrayLike | None = None,
         conc_before: ArrayLike | None = None) -> np.ndarray:
    """Highest concentration on the window ``[start, end]``.

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h, strictly increasing.
    conc : array_like, shape (n_subjects, n_times) or (n_subjects, n_times, n_compartments)
        Concentrations, mg/L, finite.
    start, end : float or str, optional
        Window in h (default: the whole grid); may fall between grid points,
        where the value is interpolated with ``method``.
    method : str
        Interpolant between grid points, one of :data:`METHODS`.
    dose_times : array_like, shape (n_doses,), optional
        Dose times (h); makes the read-out dose-aware (module docstring).
    conc_before : array_like, shape (n_subjects, n_doses[, n_compartments]), optional
        Pre-dose concentrations at ``dose_times``, mg/L.

    Returns
    -------
    ndarray, shape (n_subjects,) or (n_subjects, n_compartments)
        mg/L.

    Raises
    ------
    MetricsError
        A grid that is not strictly increasing, non-finite concentrations, a window outside the grid
        or an unknown ``method``.

    Examples
    --------
    >>> import numpy as np
    >>> from pkcsf.analysis.exposure import cmax
    >>> cmax([0.0, 1.0, 2.0], np.array([[1.0, 3.0, 2.0]]))
    array([3.])
    """
    return _run(_k_cmax, times, conc, start, end, method, dose_times, conc_before)


def tmax(times: ArrayLike, conc: ArrayLike, start: float | str | None = None, end: float | str | None = None, *,
         method: str = "linear", dose_times: ArrayLike | None = None,
         conc_before: ArrayLike | None = None) -> np.ndarray:
    """Time (h) of the first occurrence of :func:`cmax` on the window.

    Same parameters as :func:`cmax`; returns shape (n_subjects[, n_compartments]), h.

    Parameters
    ----------
    times, conc, start, end, method, dose_times, conc_before
        As in :func:`cmax`.

    Returns
    -------
    ndarray, shape (n_subjects[, n_compartments])
        h.

    Examples
    --------
    >>> import numpy as np
    >>> tmax([0.0, 1.0, 2.0], np.array([[1.0, 3.0, 2.0]]))
    array([1.])
    """
    return _run(_k_tmax, times, conc, start, end, method, dose_times, conc_before)


def cmin(times: ArrayLike, conc: ArrayLike, start: float | str | None = None, end: float | str | None = None, *,
         method: str = "linear", dose_times: ArrayLike | None = None,
         conc_before: ArrayLike | None = None) -> np.ndarray:
    """Lowest concentration on the window ``[start, end]`` (mg/L).

    With ``dose_times`` the pre-dose values at doses inside the window and at
    its end count. Same parameters and shapes as :func:`cmax`. For the
    pre-dose concentration of each dosing interval use :func:`trough`.

    Parameters
    ----------
    times, conc, start, end, method, dose_times, conc_before
        As in :func:`cmax`.

    Returns
    -------
    ndarray, shape (n_subjects[, n_compartments])
        mg/L.

    Examples
    --------
    >>> import numpy as np
    >>> cmin([0.0, 1.0, 2.0], np.array([[1.0, 3.0, 2.0]]))
    array([1.])
    """
    return _run(_k_cmin, times, conc, start, end, method, dose_times, conc_before)


def auc(times: ArrayLike, conc: ArrayLike, start: float | str | None = None, end: float | str | None = None,
        method: str = "linear", *, dose_times: ArrayLike | None = None,
        conc_before: ArrayLike | None = None) -> np.ndarray:
    """Area under the concentration curve on ``[start, end]`` (mg*h/L).

    The exact integral of the interpolant named by ``method`` ("linear"
    trapezoids, or "linear-up/log-down": log trapezoids on falling segments),
    so a window edge between grid points is interpolated consistently and
    ``auc(a, b) + auc(b, c) == auc(a, c)``.

    Parameters
    ----------
    times, conc, start, end
        As in :func:`cmax`.
    method : str
        One of :data:`METHODS`.
    dose_times, conc_before
        As in :func:`cmax`.

    Returns
    -------
    ndarray, shape (n_subjects,) or (n_subjects, n_compartments)
        mg*h/L.

    Examples
    --------
    >>> import numpy as np
    >>> from pkcsf.analysis.exposure import auc
    >>> auc([0.0, 1.0, 2.0], np.array([[0.0, 2.0, 2.0]]))
    array([3.])
    """
    return _run(_k_auc, times, conc, start, end, method, dose_times, conc_before)


def auc_cumulative(times: ArrayLike, conc: ArrayLike, method: str = "linear", *, dose_times: ArrayLike | None = None,
                   conc_before: ArrayLike | None = None) -> np.ndarray:
    """AUC from ``times[0]`` to each grid time (mg*h/L).

    Parameters
    ----------
    times, conc, method, dose_times, conc_before
        As in :func:`auc`.

    Returns
    -------
    ndarray, shape (n_subjects, n_times[, n_compartments])
        Column 0 is 0. With ``dose_times`` the segment ending at a dose uses
        the pre-dose value (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> auc_cumulative([0.0, 1.0, 2.0], np.array([[0.0, 2.0, 2.0]]))
    array([[0., 1., 3.]])
    """
    cur = _Curve(times, conc, method, dose_times, conc_before)
    w = cur.window(cur.times[0], cur.times[-1])
    out = np.zeros(cur.conc.shape, dtype=float)
    for rows, part in _blocks(w):
        np.cumsum(_seg_area(part), axis=1, out=out[rows, 1:])
    return out


def time_above(times: ArrayLike, conc: ArrayLike, threshold: float | str, start: float | str | None = None,
               end: float | str | None = None, *, method: str = "linear", mw: float | None = None,
               dose_times: ArrayLike | None = None, conc_before: ArrayLike | None = None) -> np.ndarray:
    """Time (h) on ``[start, end]`` during which the concentration is at or above ``threshold``.

    Crossings between grid points are solved on the interpolant: linearly,
    or on the exponential through the two points with ``method="log"`` /
    ``"linear-up/log-down"`` (closer to the truth when concentrations decay
    exponentially between samples).

    Parameters
    ----------
    times, conc
        As in :func:`cmax`.
    threshold : float or str
        Threshold in mg/L, or text with a unit such as ``"1 umol/L"`` (molar units need
        ``mw``). Must be >= 0.
    start, end, method
        As in :func:`cmax`.
    mw : float, optional
        Molecular weight, g/mol, for molar thresholds.
    dose_times, conc_before
        As in :func:`cmax`.

    Returns
    -------
    ndarray, shape (n_subjects[, n_compartments])
        h, between 0 and ``end - start``.

    Raises
    ------
    MetricsError
        A negative threshold, or a molar threshold without ``mw``.

    Examples
    --------
    >>> import numpy as np
    >>> from pkcsf.analysis.exposure import time_above
    >>> time_above([0.0, 1.0, 2.0], np.array([[0.0, 2.0, 0.0]]), 1.0)
    array([1.])
    """
    return _run(_k_time_above, times, conc, start, end, method, dose_times, conc_before,
                _as_threshold(threshold, mw))


def longest_time_above(times: ArrayLike, conc: ArrayLike, threshold: float | str, start: float | str | None = None,
                       end: float | str | None = None, *, method: str = "linear", mw: float | None = None,
                       dose_times: ArrayLike | None = None, conc_before: ArrayLike | None = None) -> np.ndarray:
    """Longest continuous run (h) at or above ``threshold`` on ``[start, end]``.

    A target such as "at least 1 umol/L for at least 48 h after each dose"
    is ``longest_time_above_per_interval(...) >= 48``. Runs continue across a
    dose when both the pre-dose and the post-dose values are at or above the
    threshold. Parameters and shapes as in :func:`time_above`.

    Parameters
    ----------
    times, conc, threshold, start, end, method, mw, dose_times, conc_before
        As in :func:`time_above`.

    Returns
    -------
    ndarray, shape (n_subjects[, n_compartments])
        h.

    Examples
    --------
    Two runs above 1 mg/L (0.5-1.5 h and 2.5-4 h): the longer lasts 1.5 h.

    >>> import numpy as np
    >>> longest_time_above([0.0, 1.0, 2.0, 3.0, 4.0], np.array([[0.0, 2.0, 0.0, 2.0, 2.0]]), 1.0)
    array([1.5])
    """
    return _run(_k_longest, times, conc, start, end, method, dose_times, conc_before,
                _as_threshold(threshold, mw))


_KERNELS: dict[Callable, tuple[Callable, bool]] = {
    cmax: (_k_cmax, False),
    tmax: (_k_tmax, False),
    cmin: (_k_cmin, False),
    auc: (_k_auc, False),
    time_above: (_k_time_above, True),
    longest_time_above: (_k_longest, True),
}


def per_interval(metric: Callable | str, times: ArrayLike, conc: ArrayLike, dose_times: ArrayLike,
                 end: float | str | None = None, *, threshold: float | str | None = None, method: str = "linear",
                 mw: float | None = None, conc_before: ArrayLike | None = None) -> np.ndarray:
    """Apply a window read-out to every dosing interval.

    Intervals are ``[dose_k, dose_{k+1}]`` for the dose times inside the grid,
    the last ending at ``end`` (default: the last output time). The curve is
    dose-aware: each interval ends on the pre-dose value of the next dose.

    Parameters
    ----------
    metric : callable or str
        One of :func:`cmax`, :func:`tmax`, :func:`cmin`, :func:`auc`,
        :func:`time_above`, :func:`longest_time_above` (or its name).
    times, conc
        As in :func:`cmax`.
    dose_times : array_like, shape (n_doses,)
        Dose times, h.
    end : float or str, optional
        End of the last interval, h.
    threshold : float or str, optional
        For the threshold read-outs (:func:`time_above`, :func:`longest_time_above`): mg/L or text with a unit.
    method : str
        As in :func:`cmax`.
    mw : float, optional
        Molecular weight (g/mol), for molar thresholds.
    conc_before
        As in :func:`cmax`.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        The read-out of each interval, in the unit of ``metric``.

    Raises
    ------
    MetricsError
        An unknown ``metric``, no ``dose_times``, or a threshold read-out without ``threshold``.

    Examples
    --------
    >>> import numpy as np
    >>> from pkcsf.analysis.exposure import per_interval
    >>> per_interval("cmax", [0.0, 1.0, 2.0, 3.0], np.array([[4.0, 2.0, 5.0, 3.0]]), [0.0, 2.0])
    array([[4., 5.]])
    """
    if isinstance(metric, str):
        names = {f.__name__: f for f in _KERNELS}
        if metric not in names:
            guess = suggest(metric, names)
            raise MetricsError("metric", metric, "allowed: " + ", ".join(names),
                               f"did you mean {guess!r}?" if guess else None)
        metric = names[metric]
    if metric not in _KERNELS:
        raise MetricsError("metric", getattr(metric, "__name__", metric),
                           "allowed: " + ", ".join(f.__name__ for f in _KERNELS))
    kernel, needs_thr = _KERNELS[metric]
    if dose_times is None:
        raise MetricsError("dose_times", None, "per-interval read-outs need the dose times")
    if needs_thr:
        if threshold is None:
            raise MetricsError("threshold", None, f"{metric.__name__} needs a threshold (mg/L)")
        thr = _as_threshold(threshold, mw)
    cur = _Curve(times, conc, method, dose_times, conc_before)
    out = [_apply(kernel, cur.window(s, e), thr) if needs_thr else _apply(kernel, cur.window(s, e))
           for s, e in cur.intervals(end)]
    return np.stack(out, axis=1)


def auc_per_interval(times: ArrayLike, conc: ArrayLike, dose_times: ArrayLike, end: float | str | None = None,
                     method: str = "linear", *, conc_before: ArrayLike | None = None) -> np.ndarray:
    """AUC (mg*h/L) of each dosing interval, shape (n_subjects, n_intervals[, n_compartments]).

    See :func:`per_interval` for the intervals and :func:`auc` for the method.

    Parameters
    ----------
    times, conc, dose_times, end, method, conc_before
        As in :func:`per_interval`.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        mg*h/L.

    Examples
    --------
    Doses at 0 and 2 h:

    >>> import numpy as np
    >>> auc_per_interval([0.0, 1.0, 2.0, 3.0], np.array([[4.0, 2.0, 5.0, 3.0]]), [0.0, 2.0])
    array([[5., 4.]])
    """
    return per_interval(auc, times, conc, dose_times, end, method=method, conc_before=conc_before)


def time_above_per_interval(times: ArrayLike, conc: ArrayLike, threshold: float | str, dose_times: ArrayLike,
                            end: float | str | None = None, *, method: str = "linear", mw: float | None = None,
                            conc_before: ArrayLike | None = None) -> np.ndarray:
    """Time (h) at or above ``threshold`` in each dosing interval.

    Shape (n_subjects, n_intervals[, n_compartments]); see :func:`time_above`.

    Parameters
    ----------
    times, conc
        As in :func:`per_interval`.
    threshold : float or str
        As in :func:`time_above`.
    dose_times, end, method
        As in :func:`per_interval`.
    mw : float, optional
        Molecular weight (g/mol), for molar thresholds.
    conc_before
        As in :func:`per_interval`.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        h.

    Examples
    --------
    >>> import numpy as np
    >>> time_above_per_interval([0.0, 1.0, 2.0, 3.0], np.array([[4.0, 2.0, 5.0, 3.0]]), 3.0, [0.0, 2.0])
    array([[0.5, 1. ]])
    """
    return per_interval(time_above, times, conc, dose_times, end, threshold=threshold, method=method, mw=mw,
                        conc_before=conc_before)


def longest_time_above_per_interval(times: ArrayLike, conc: ArrayLike, threshold: float | str,
                                    dose_times: ArrayLike, end: float | str | None = None, *,
                                    method: str = "linear", mw: float | None = None,
                                    conc_before: ArrayLike | None = None) -> np.ndarray:
    """Longest continuous run (h) at or above ``threshold`` in each dosing interval.

    Shape (n_subjects, n_intervals[, n_compartments]); see :func:`longest_time_above`.

    Parameters
    ----------
    times, conc
        As in :func:`per_interval`.
    threshold : float or str
        As in :func:`time_above`.
    dose_times, end, method
        As in :func:`per_interval`.
    mw : float, optional
        Molecular weight (g/mol), for molar thresholds.
    conc_before
        As in :func:`per_interval`.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        h.

    Examples
    --------
    >>> import numpy as np
    >>> longest_time_above_per_interval([0.0, 1.0, 2.0, 3.0], np.array([[4.0, 2.0, 5.0, 3.0]]), 3.0, [0.0, 2.0])
    array([[0.5, 1. ]])
    """
    return per_interval(longest_time_above, times, conc, dose_times, end, threshold=threshold,
                        method=method, mw=mw, conc_before=conc_before)


def trough(times: ArrayLike, conc: ArrayLike, dose_times: ArrayLike, end: float | str | None = None, *,
           conc_before: ArrayLike | None = None, method: str = "linear") -> np.ndarray:
    """Trough of each dosing interval: the concentration just before the next dose (mg/L).

    For interval *k* = ``[dose_k, dose_{k+1}]`` this is the left limit at
    ``dose_{k+1}``: ``conc_before[:, k+1]`` when given, else the value at the
    last grid point strictly before ``dose_{k+1}``. The last interval's trough
    is the value at ``end`` (default: the last output time).

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h.
    conc : array_like, shape (n_subjects, n_times[, n_compartments])
        Concentrations, mg/L.
    dose_times : array_like, shape (n_doses,)
        Dose times, h; those inside the grid must be grid times.
    end : float or str, optional
        End of the last interval, h.
    conc_before : array_like, shape (n_subjects, n_doses[, n_compartments]), optional
        Pre-dose (left-limit) concentrations at ``dose_times``, mg/L.
    method : str
        Interpolant, used only if ``end`` falls between grid points.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        mg/L.

    Examples
    --------
    Doses at 0 and 2 h: the first interval ends on the value before the second dose, the last at ``end``.

    >>> import numpy as np
    >>> trough([0.0, 1.0, 2.0, 3.0], np.array([[4.0, 2.0, 5.0, 3.0]]), [0.0, 2.0])
    array([[2., 3.]])
    """
    if dose_times is None:
        raise MetricsError("dose_times", None, "troughs need the dose times")
    cur = _Curve(times, conc, method, dose_times, conc_before)
    return np.stack([cur.value_at(e, "left") for _, e in cur.intervals(end)], axis=1)
