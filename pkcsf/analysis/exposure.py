"""Exposure read-outs over a window or per dosing interval: :func:`interpolate`, :func:`cmax`, :func:`tmax`,
:func:`cmin`, :func:`trough`, :func:`auc`, :func:`time_above`, ... (conventions in :mod:`pkcsf.analysis.metrics`).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

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

__all__ = ["interpolate", "cmax", "tmax", "cmin", "auc", "auc_cumulative", "time_above", "longest_time_above", "per_interval", "auc_per_interval", "time_above_per_interval", "longest_time_above_per_interval", "trough"]


# ----------------------------------------------------------------------------
# public read-outs
# ----------------------------------------------------------------------------

def interpolate(times, conc, at, *, method="linear", side="right", dose_times=None, conc_before=None):
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
    ndarray, shape (n_subjects[, n_compartments]) for a scalar ``at``, else
    (n_subjects, n_at[, n_compartments]); mg/L.
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


def cmax(times, conc, start=None, end=None, *, method="linear", dose_times=None, conc_before=None):
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
    """
    return _run(_k_cmax, times, conc, start, end, method, dose_times, conc_before)


def tmax(times, conc, start=None, end=None, *, method="linear", dose_times=None, conc_before=None):
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
    """
    return _run(_k_tmax, times, conc, start, end, method, dose_times, conc_before)


def cmin(times, conc, start=None, end=None, *, method="linear", dose_times=None, conc_before=None):
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
    """
    return _run(_k_cmin, times, conc, start, end, method, dose_times, conc_before)


def auc(times, conc, start=None, end=None, method="linear", *, dose_times=None, conc_before=None):
    """Area under the concentration curve on ``[start, end]`` (mg*h/L).

    The exact integral of the interpolant named by ``method`` ("linear"
    trapezoids, or "linear-up/log-down": log trapezoids on falling segments),
    so a window edge between grid points is interpolated consistently and
    ``auc(a, b) + auc(b, c) == auc(a, c)``.

    Parameters
    ----------
    times, conc, start, end, dose_times, conc_before
        As in :func:`cmax`.
    method : str
        One of :data:`METHODS`.

    Returns
    -------
    ndarray, shape (n_subjects,) or (n_subjects, n_compartments)
        mg*h/L.
    """
    return _run(_k_auc, times, conc, start, end, method, dose_times, conc_before)


def auc_cumulative(times, conc, method="linear", *, dose_times=None, conc_before=None):
    """AUC from ``times[0]`` to each grid time (mg*h/L).

    Returns
    -------
    ndarray, shape (n_subjects, n_times[, n_compartments])
        Column 0 is 0. With ``dose_times`` the segment ending at a dose uses
        the pre-dose value (module docstring).

    Parameters
    ----------
    times, conc, method, dose_times, conc_before
        As in :func:`auc`.
    """
    cur = _Curve(times, conc, method, dose_times, conc_before)
    w = cur.window(cur.times[0], cur.times[-1])
    out = np.zeros(cur.conc.shape, dtype=float)
    for rows, part in _blocks(w):
        np.cumsum(_seg_area(part), axis=1, out=out[rows, 1:])
    return out


def time_above(times, conc, threshold, start=None, end=None, *, method="linear", mw=None,
               dose_times=None, conc_before=None):
    """Time (h) on ``[start, end]`` during which the concentration is at or above ``threshold``.

    Crossings between grid points are solved on the interpolant: linearly,
    or on the exponential through the two points with ``method="log"`` /
    ``"linear-up/log-down"`` (closer to the truth when concentrations decay
    exponentially between samples).

    Parameters
    ----------
    threshold : float or str
        mg/L, or text with a unit such as ``"1 umol/L"`` (molar units need
        ``mw``). Must be >= 0.
    mw : float, optional
        Molecular weight, g/mol, for molar thresholds.
    times, conc, start, end, method, dose_times, conc_before
        As in :func:`cmax`.

    Returns
    -------
    ndarray, shape (n_subjects[, n_compartments])
        h, between 0 and ``end - start``.
    """
    return _run(_k_time_above, times, conc, start, end, method, dose_times, conc_before,
                _as_threshold(threshold, mw))


def longest_time_above(times, conc, threshold, start=None, end=None, *, method="linear", mw=None,
                       dose_times=None, conc_before=None):
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


def per_interval(metric, times, conc, dose_times, end=None, *, threshold=None, method="linear", mw=None,
                 conc_before=None):
    """Apply a window read-out to every dosing interval.

    Intervals are ``[dose_k, dose_{k+1}]`` for the dose times inside the grid,
    the last ending at ``end`` (default: the last output time). The curve is
    dose-aware: each interval ends on the pre-dose value of the next dose.

    Parameters
    ----------
    metric : callable or str
        One of :func:`cmax`, :func:`tmax`, :func:`cmin`, :func:`auc`,
        :func:`time_above`, :func:`longest_time_above` (or its name).
    times, conc, method, conc_before
        As in :func:`cmax`.
    dose_times : array_like, shape (n_doses,)
        Dose times, h.
    end : float or str, optional
        End of the last interval, h.
    threshold, mw
        For the threshold read-outs.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
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


def auc_per_interval(times, conc, dose_times, end=None, method="linear", *, conc_before=None):
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
    """
    return per_interval(auc, times, conc, dose_times, end, method=method, conc_before=conc_before)


def time_above_per_interval(times, conc, threshold, dose_times, end=None, *, method="linear", mw=None,
                            conc_before=None):
    """Time (h) at or above ``threshold`` in each dosing interval.

    Shape (n_subjects, n_intervals[, n_compartments]); see :func:`time_above`.

    Parameters
    ----------
    times, conc, dose_times, end, method, conc_before
        As in :func:`per_interval`.
    threshold : float or str
        As in :func:`time_above`.
    mw : float, optional
        Molecular weight (g/mol), for molar thresholds.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        h.
    """
    return per_interval(time_above, times, conc, dose_times, end, threshold=threshold, method=method, mw=mw,
                        conc_before=conc_before)


def longest_time_above_per_interval(times, conc, threshold, dose_times, end=None, *, method="linear",
                                    mw=None, conc_before=None):
    """Longest continuous run (h) at or above ``threshold`` in each dosing interval.

    Shape (n_subjects, n_intervals[, n_compartments]); see :func:`longest_time_above`.

    Parameters
    ----------
    times, conc, dose_times, end, method, conc_before
        As in :func:`per_interval`.
    threshold : float or str
        As in :func:`time_above`.
    mw : float, optional
        Molecular weight (g/mol), for molar thresholds.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        h.
    """
    return per_interval(longest_time_above, times, conc, dose_times, end, threshold=threshold,
                        method=method, mw=mw, conc_before=conc_before)


def trough(times, conc, dose_times, end=None, *, conc_before=None, method="linear"):
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
        mg/L.
    dose_times : array_like, shape (n_doses,)
        h; those inside the grid must be grid times.
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
    """
    if dose_times is None:
        raise MetricsError("dose_times", None, "troughs need the dose times")
    cur = _Curve(times, conc, method, dose_times, conc_before)
    return np.stack([cur.value_at(e, "left") for _, e in cur.intervals(end)], axis=1)
