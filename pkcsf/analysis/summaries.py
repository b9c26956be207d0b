"""Ratios and population summaries of the exposure read-outs: :func:`ratio`, :func:`auc_ratio`,
:func:`conc_ratio`, :func:`percentiles`, :func:`fraction_reaching`, :func:`summarize`; percentiles with
the arithmetic of pandas' grouped quantile, of one array (:func:`quantiles`) or of many columns and groups
on threads (:func:`grouped_quantiles`).
"""
from __future__ import annotations

import math
import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.analysis.curve import (
    MetricsError,
    _apply,
    _as_threshold,
    _Curve,
    _k_auc,
    _k_cmax,
    _k_cmin,
    _k_longest,
    _k_time_above,
    _k_tmax,
)
from pkcsf.analysis.exposure import (
    auc,
    interpolate,
)
from pkcsf.core.units import concentration_factor

__all__ = ["ratio", "auc_ratio", "conc_ratio", "percentiles", "fraction_reaching", "summarize", "quantiles",
           "grouped_quantiles"]


# ----------------------------------------------------------------------------
# ratios and population summaries
# ----------------------------------------------------------------------------

def ratio(numerator: ArrayLike, denominator: ArrayLike) -> np.ndarray:
    """Element-wise ``numerator / denominator``, NaN where the denominator is 0.

    For CSF/plasma or lumbar/ventricular ratios of any read-out (AUC, Cmax,
    concentrations at given times). Shapes broadcast.

    Parameters
    ----------
    numerator, denominator : array_like
        Read-outs of the same shape (or broadcastable).

    Returns
    -------
    ndarray
        The ratios.

    Raises
    ------
    MetricsError
        Shapes that do not broadcast.

    Examples
    --------
    >>> ratio([2.0, 1.0], [4.0, 0.0]).tolist()
    [0.5, nan]
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    try:
        shape = np.broadcast_shapes(num.shape, den.shape)
    except ValueError:
        raise MetricsError("denominator", f"array of shape {den.shape}",
                           f"must broadcast with the numerator's shape {num.shape}") from None
    out = np.full(shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _pair(conc_num, conc_den):
    a, b = np.asarray(conc_num), np.asarray(conc_den)
    if a.shape != b.shape:
        raise MetricsError("conc_den", f"array of shape {b.shape}",
                           f"must have the same shape as conc_num {a.shape}")
    return a, b


def auc_ratio(times: ArrayLike, conc_num: ArrayLike, conc_den: ArrayLike, start: float | str | None = None,
              end: float | str | None = None, method: str = "linear", *, dose_times: ArrayLike | None = None,
              conc_before: tuple[ArrayLike, ArrayLike] | None = None) -> np.ndarray:
    """Ratio of AUCs over ``[start, end]``, e.g. CSF/plasma or lumbar/ventricular.

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h (as in :func:`~pkcsf.analysis.exposure.auc`).
    conc_num, conc_den : array_like, shape (n_subjects, n_times[, ...])
        Numerator and denominator concentrations (mg/L), e.g. ``conc[..., csf]``
        and ``conc[..., plasma]``; the same shape.
    start, end, method, dose_times
        As in :func:`~pkcsf.analysis.exposure.auc`.
    conc_before : tuple of two arrays, optional
        Pre-dose values for numerator and denominator (with ``dose_times``).

    Returns
    -------
    ndarray, shape (n_subjects[, ...])
        Dimensionless; NaN where the denominator AUC is 0.

    Raises
    ------
    MetricsError
        Numerator and denominator of different shapes.

    Examples
    --------
    >>> import numpy as np
    >>> auc_ratio([0.0, 1.0], np.array([[1.0, 1.0]]), np.array([[2.0, 2.0]]))
    array([0.5])
    """
    a, b = _pair(conc_num, conc_den)
    cb_a, cb_b = (None, None) if conc_before is None else conc_before
    return ratio(auc(times, a, start, end, method, dose_times=dose_times, conc_before=cb_a),
                 auc(times, b, start, end, method, dose_times=dose_times, conc_before=cb_b))


def conc_ratio(times: ArrayLike, conc_num: ArrayLike, conc_den: ArrayLike, at: float | str | ArrayLike, *,
               method: str = "linear", side: str = "right", dose_times: ArrayLike | None = None,
               conc_before: tuple[ArrayLike, ArrayLike] | None = None) -> np.ndarray:
    """Ratio of concentrations at the times ``at`` (e.g. CSF/plasma at 2, 6, 24 h).

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h.
    conc_num, conc_den : array_like
        Numerator and denominator concentrations (mg/L).
    at : float, str or sequence
        Time(s) of the ratio.
    method, side, dose_times
        As in :func:`~pkcsf.analysis.exposure.interpolate`.
    conc_before : tuple of two arrays, optional
        Pre-dose values for numerator and denominator (with ``dose_times``).

    Returns
    -------
    ndarray
        Dimensionless; NaN where the denominator is 0. Shape (n_subjects[, ...]) for a scalar ``at``,
        else (n_subjects, n_at[, ...]).

    Examples
    --------
    >>> import numpy as np
    >>> conc_ratio([0.0, 1.0, 2.0], np.array([[1.0, 2.0, 4.0]]), np.array([[2.0, 2.0, 2.0]]), [1.0, 2.0])
    array([[1., 2.]])
    """
    a, b = _pair(conc_num, conc_den)
    cb_a, cb_b = (None, None) if conc_before is None else conc_before
    kw = dict(method=method, side=side, dose_times=dose_times)
    return ratio(interpolate(times, a, at, conc_before=cb_a, **kw),
                 interpolate(times, b, at, conc_before=cb_b, **kw))


def percentiles(values: ArrayLike, q: Sequence[float] = (5, 50, 95), *, axis: int = 0,
                ignore_nan: bool = True) -> np.ndarray:
    """Percentiles across subjects.

    Parameters
    ----------
    values : array_like
        Read-outs with subjects along ``axis`` (e.g. shape (n_subjects, n_compartments)).
    q : sequence of float
        Percentiles in [0, 100].
    axis : int
        The subject axis (default 0).
    ignore_nan : bool
        Skip NaN (e.g. failed subjects, undefined ratios); else NaN propagates.

    Returns
    -------
    ndarray
        Shape ``(len(q),)`` + ``values.shape`` without ``axis``.

    Raises
    ------
    MetricsError
        A percentile outside [0, 100].

    Examples
    --------
    >>> percentiles([1.0, 2.0, 3.0], q=(50,))
    array([2.])
    """
    qs = np.atleast_1d(np.asarray(q, dtype=float))
    bad = ~np.isfinite(qs) | (qs < 0) | (qs > 100)
    if bad.any():
        raise MetricsError("q", q, "percentiles must lie in [0, 100]")
    v = np.asarray(values, dtype=float)
    # np.nanpercentile is several times slower than np.percentile; without a NaN both give the same values
    fn = np.nanpercentile if ignore_nan and np.isnan(v).any() else np.percentile
    return fn(v, qs, axis=axis)


def fraction_reaching(condition: ArrayLike, *, axis: int = 0) -> float | np.ndarray:
    """Fraction of subjects for which ``condition`` holds (e.g. ``cmax >= target``).

    Parameters
    ----------
    condition : array_like of bool
        Subjects along ``axis`` (0/1 integers are accepted).
    axis : int
        The subject axis (default 0).

    Returns
    -------
    float or ndarray
        Fraction in [0, 1], shape of ``condition`` without ``axis``.

    Raises
    ------
    MetricsError
        A condition with NaN or values other than 0/1, or no subjects.

    Examples
    --------
    >>> float(fraction_reaching([True, False, True, True]))
    0.75
    """
    c = np.asarray(condition)
    if c.dtype != bool:
        if c.dtype.kind == "f" and np.isnan(c).any():
            raise MetricsError("condition", "array with NaN", "must be boolean (compare read-outs to a target first)")
        if not np.isin(c, (0, 1)).all():
            raise MetricsError("condition", f"array of dtype {c.dtype}", "must be boolean (or 0/1)")
        c = c.astype(bool)
    if c.size == 0:
        raise MetricsError("condition", "empty array", "needs at least one subject")
    return c.mean(axis=axis)


# ----------------------------------------------------------------------------
# summarize
# ----------------------------------------------------------------------------

def _auc_unit(unit: str) -> str:
    if unit in ("mg/L", "mg/l"):
        return "mg*h/L"
    if unit.endswith("/L") or unit.endswith("/l"):
        return unit[:-2] + "*h/L"
    return unit + "*h"


def summarize(times: ArrayLike, conc: ArrayLike, dose_times: ArrayLike | None = None,
              threshold: float | str | None = None, *, compartments: Sequence[str] | str | None = None,
              subjects: ArrayLike | None = None, start: float | str | None = None, end: float | str | None = None,
              method: str = "linear", conc_before: ArrayLike | None = None, unit: str = "mg/L",
              mw: float | None = None) -> pd.DataFrame:
    """Tidy table of exposure read-outs: one row per subject x compartment (x dosing interval).

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h.
    conc : array_like, shape (n_subjects, n_times[, n_compartments])
        Concentrations, mg/L.
    dose_times : array_like, shape (n_doses,), optional
        If given, one row per dosing interval (see :func:`per_interval`) and a
        ``trough`` column; ``start`` must then be None.
    threshold : float or str, optional
        If given, ``time_above`` and ``longest_time_above`` columns (h).
        mg/L or text with a unit (``"1 umol/L"`` with ``mw``).
    compartments : sequence of str, optional
        Compartment names (length n_compartments; one name for 2-D ``conc``).
        Default "0", "1", ...
    subjects : array_like, shape (n_subjects,), optional
        Subject ids (default 0..n_subjects-1; pass the ids of the chunk when
        summarising a large population chunk by chunk).
    start, end : float or str, optional
        Window (h) without doses; ``end`` is the end of the last interval with doses.
    method : str
        Interpolant, one of :data:`METHODS` (also used for AUC).
    conc_before : array_like, optional
        Pre-dose concentrations at ``dose_times`` (module docstring).
    unit : str
        Concentration unit of the output (default mg/L); AUC is reported in
        that unit times h.
    mw : float, optional
        Molecular weight (g/mol) for molar units.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject, compartment, [interval, start, end,] cmax, tmax,
        cmin, auc, [trough,] [threshold, time_above, longest_time_above,]
        conc_unit, auc_unit, time_unit, method``. Times in h.

    Notes
    -----
    Memory: the input is not copied; a window makes at most two copies of its
    slice (only where it must patch pre-dose or interpolated edge values), and
    the read-outs run on blocks of subjects of about 32 MiB, so the peak is
    about the size of the input plus a few hundred MiB at most.

    Examples
    --------
    >>> import numpy as np
    >>> tab = summarize([0.0, 1.0, 2.0], np.array([[1.0, 3.0, 2.0]]), compartments="csf")
    >>> tab[["subject", "compartment", "cmax", "tmax", "auc", "conc_unit"]].to_dict("records")
    [{'subject': 0, 'compartment': 'csf', 'cmax': 3.0, 'tmax': 1.0, 'auc': 4.5, 'conc_unit': 'mg/L'}]
    """
    cur = _Curve(times, conc, method, dose_times, conc_before)
    c = cur.conc
    n = c.shape[0]
    n_cmt = 1 if c.ndim == 2 else c.shape[2]
    if compartments is None:
        names = [str(i) for i in range(n_cmt)]
    else:
        names = [compartments] if isinstance(compartments, str) else [str(x) for x in compartments]
        if len(names) != n_cmt:
            raise MetricsError("compartments", compartments,
                               f"must name {n_cmt} compartment(s), one per slice of conc's last axis")
    if subjects is None:
        ids = np.arange(n)
    else:
        ids = np.asarray(subjects)
        if ids.shape != (n,):
            raise MetricsError("subjects", f"array of shape {ids.shape}", f"must have shape ({n},)")
    thr = None if threshold is None else _as_threshold(threshold, mw)
    factor = concentration_factor(unit, mw)

    if dose_times is not None:
        if start is not None:
            raise MetricsError("start", start, "must be None when dose_times are given "
                                               "(intervals start at the doses)")
        windows = cur.intervals(end)
    else:
        windows = [cur.bounds(start, end)]
    cols: dict[str, list] = {k: [] for k in ("cmax", "tmax", "cmin", "auc", "trough", "time_above",
                                            "longest_time_above")}
    for s, e in windows:
        w = cur.window(s, e)
        cols["cmax"].append(_apply(_k_cmax, w))
        cols["tmax"].append(_apply(_k_tmax, w))
        cols["cmin"].append(_apply(_k_cmin, w))
        cols["auc"].append(_apply(_k_auc, w))
        if dose_times is not None:
            cols["trough"].append(w.b[:, -1].copy())
        if thr is not None:
            cols["time_above"].append(_apply(_k_time_above, w, thr))
            cols["longest_time_above"].append(_apply(_k_longest, w, thr))
        del w

    k = len(windows)

    def flat(arrs):   # list over windows of (N[, C]) -> ravel in (subject, compartment, window) order
        x = np.stack(arrs, axis=-1)                     # (N[, C], K)
        return x.reshape(n * n_cmt * k)

    out = {
        "subject": np.repeat(ids, n_cmt * k),
        "compartment": pd.Categorical.from_codes(np.tile(np.repeat(np.arange(n_cmt), k), n), names),
    }
    if dose_times is not None:
        out["interval"] = np.tile(np.arange(k), n * n_cmt)
        out["start"] = np.tile([s for s, _ in windows], n * n_cmt)
        out["end"] = np.tile([e for _, e in windows], n * n_cmt)
    out["cmax"] = flat(cols["cmax"]) * factor
    out["tmax"] = flat(cols["tmax"])
    out["cmin"] = flat(cols["cmin"]) * factor
    out["auc"] = flat(cols["auc"]) * factor
    if dose_times is not None:
        out["trough"] = flat(cols["trough"]) * factor
    if thr is not None:
        out["threshold"] = np.full(n * n_cmt * k, thr * factor)
        out["time_above"] = flat(cols["time_above"])
        out["longest_time_above"] = flat(cols["longest_time_above"])
    frame = pd.DataFrame(out)
    frame["conc_unit"] = unit
    frame["auc_unit"] = _auc_unit(unit)
    frame["time_unit"] = "h"
    frame["method"] = cur.method
    return frame


# ----------------------------------------------------------------------------
# percentiles with pandas' grouped-quantile arithmetic
# ----------------------------------------------------------------------------

def quantiles(x: np.ndarray, q: Sequence[float]) -> list[float]:
    """Percentiles ``q`` of ``x`` (NaN skipped) with the arithmetic of pandas' grouped quantile.

    ``ScenarioResult.summary()`` takes ``DataFrameGroupBy.quantile(q / 100)`` (linear interpolation):
    with ``m`` values, ``h = (q / 100) * (m - 1)``, ``i = floor(h)``, ``f = h mod 1``, the result is
    ``x(i)`` when ``f == 0``, else ``x(i) + (x(i+1) - x(i)) * f``, with ``x(k)`` the k-th smallest value.
    ``np.percentile`` writes the interpolation differently (``x(i+1) - (x(i+1) - x(i)) * (1 - f)`` for
    ``f >= 0.5``), which can differ in the last bit, so it is not used. Only the order statistics needed
    are found (``np.partition``), not a full sort.

    Parameters
    ----------
    x : ndarray
        Values (float64); NaN values are skipped.
    q : sequence of float
        Percentiles, 0-100.

    Returns
    -------
    list of float
        One value per percentile; NaN when ``x`` has no value.

    Examples
    --------
    >>> quantiles(np.array([1.0, 2.0, np.nan, 4.0]), (0, 50, 100))
    [1.0, 2.0, 4.0]
    """
    x = np.asarray(x, dtype=np.float64)
    return _partitioned_quantiles(x[~np.isnan(x)], q)


def _partitioned_quantiles(x: np.ndarray, q: Sequence[float]) -> list[float]:
    """:func:`quantiles` of ``x`` without NaN, partitioning ``x`` in place (no copy)."""
    m = len(x)
    if m:
        lo = [int((float(p) / 100.0) * float(m - 1)) for p in q]
        x.partition(sorted({k for i in lo for k in (i, i + 1) if k < m}))
    return _interpolated(x, m, q)


def _sorted_quantiles(x: np.ndarray, q: Sequence[float]) -> list[float]:
    """:func:`quantiles` of ``x`` sorted in ascending order with its NaN at the end (read, not changed)."""
    m = len(x)
    if m and np.isnan(x[-1]):
        m = int(np.searchsorted(x, np.nan, side="left"))   # NaN sort last: the first NaN
    return _interpolated(x, m, q)


def _interpolated(x: np.ndarray, m: int, q: Sequence[float]) -> list[float]:
    """The linear interpolation of pandas' quantile between the order statistics ``x[i]``, ``x[i+1]`` of ``m``
    values, which ``x`` holds in those places (sorted, or partitioned around them).
    """
    if m == 0:
        return [math.nan] * len(q)
    out = []
    for p in q:
        h = (float(p) / 100.0) * float(m - 1)
        i = int(h)
        f = h % 1.0
        out.append(float(x[i]) if f == 0.0 else float(x[i] + (x[i + 1] - x[i]) * f))
    return out


def grouped_quantiles(columns: Sequence[np.ndarray], ids: np.ndarray, n_groups: int, q: Sequence[float], *,
                      rows: np.ndarray | None = None, threads: int = 1) -> np.ndarray:
    """Percentiles ``q`` of each column within each group of rows, NaN skipped, with the arithmetic of
    pandas' grouped quantile (``DataFrameGroupBy.quantile(q / 100)``, linear interpolation): the same
    order statistics and the same interpolation (:func:`quantiles`), so the same values to the last bit.

    pandas copies the whole table sorted by group, then sorts each group's values indirectly. Here one
    column at a time is copied group by group into a work array of the thread (a transpose when the
    groups repeat row by row, ``0, 1, ..., G-1, 0, 1, ...``, as in a scenario's metrics table; else in
    the order of a stable sort of ``ids``) and each group's values are sorted in place; the columns are
    shared between ``threads`` threads (NumPy's copies and sorts release the GIL).

    Parameters
    ----------
    columns : sequence of ndarray, each shape (n,), float64
        The values.
    ids : ndarray of int, shape (n,)
        Each row's group, ``0 <= ids < n_groups``.
    n_groups : int
        Number of groups.
    q : sequence of float
        Percentiles, 0-100.
    rows : ndarray of int, optional
        The rows to use (e.g. the solved subjects'); default every row.
    threads : int, optional
        Threads sharing the columns.

    Returns
    -------
    ndarray, shape (n_groups, len(columns), len(q))
        NaN for a group without a value.

    Examples
    --------
    >>> x = np.array([1.0, 10.0, 2.0, 20.0, 3.0, np.nan])
    >>> grouped_quantiles([x], np.array([0, 1, 0, 1, 0, 1]), 2, (0, 50, 100))[:, 0].tolist()
    [[1.0, 2.0, 3.0], [10.0, 15.0, 20.0]]
    """
    ids = np.asarray(ids)
    G, C = int(n_groups), len(columns)
    out = np.full((G, C, len(q)), np.nan)
    sel = ids if rows is None else ids[rows]
    size = np.bincount(sel, minlength=G)
    bounds = np.concatenate([[0], np.cumsum(size)])
    n = int(bounds[-1])
    if C == 0 or n == 0:
        return out
    # rows 0, 1, ..., G-1 repeated: the groups are the columns of a (n / G, G) view
    tile = (rows is None and G > 0 and n % G == 0
            and bool((ids.reshape(-1, G) == np.arange(G, dtype=ids.dtype)).all()))
    order = None
    if not tile:
        order = np.argsort(sel.astype(np.int16 if G <= 2**15 else np.int64), kind="stable")
        if rows is not None:
            order = np.asarray(rows)[order]
    work = queue.SimpleQueue()           # one work array per thread, reused from column to column

    def one(j):
        try:
            buf = work.get_nowait()
        except queue.Empty:
            buf = np.empty(n)
        col = np.asarray(columns[j], dtype=np.float64)
        if tile:
            np.copyto(buf.reshape(G, -1), col.reshape(-1, G).T)
        else:
            np.take(col, order, out=buf)
        for g in range(G):
            seg = buf[bounds[g]:bounds[g + 1]]
            seg.sort()
            out[g, j] = _sorted_quantiles(seg, q)
        work.put(buf)

    threads = max(1, min(int(threads), C))
    if threads == 1:
        for j in range(C):
            one(j)
    else:
        with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pkcsf-quantiles") as pool:
            list(pool.map(one, range(C)))
    return out
