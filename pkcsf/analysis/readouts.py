"""Compiled whole-window read-outs for large populations.

:mod:`pkcsf.analysis.metrics` is the general, documented toolbox (any window, dose
aware, per interval). When a scenario streams a million subjects, the same
read-outs over the whole window are computed here in one compiled pass per
subject and compartment group, in parallel: Cmax, Tmax, AUC, time above
each threshold and the longest continuous run above it, and for targets the
shortest per-interval run above a threshold.

Conventions (the same as :mod:`pkcsf.analysis.metrics` with
``method="linear-up/log-down"``):

* the curve between two outputs is linear when rising or flat and
  exponential when falling between positive values; AUC is its integral and
  threshold crossings are its exact crossings;
* ``times`` may list a time twice: the pair is a jump (the engine reports
  the value before and after the doses at that time), a zero-length segment
  that adds no AUC or time but can start or end a run above a threshold;
* Tmax is the first time the maximum is reached; a value at or above the
  threshold counts as above.

``tests/test_readouts.py`` checks these kernels against :mod:`pkcsf.analysis.metrics`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import prange
from numpy.typing import ArrayLike

from pkcsf.core.jit import compile_notice, njit
from pkcsf.solvers import kernels as _kern
from pkcsf.solvers.exact import exact_workspace, refine_peaks, solve_exact_ws

if TYPE_CHECKING:
    from pkcsf.engine.simulate import Problem

__all__ = ["whole_window", "min_interval_run", "percentiles", "solve_and_read_out"]


@njit(cache=True, error_model="numpy")
def _piece(a, b, dt, thr):
    """Time at/above thr on one segment, and whether its start and end are above."""
    ua = a >= thr
    ub = b >= thr
    if ua and ub:
        return dt, ua, ub
    if not ua and not ub:
        return 0.0, ua, ub
    if dt == 0.0:
        return 0.0, ua, ub
    if a > b and b > 0.0 and thr > 0.0:        # exponential (falling) segment
        la = math.log(a)
        f = (la - math.log(thr)) / (la - math.log(b))
    else:
        f = (a - thr) / (a - b)
    if ub:
        return (1.0 - f) * dt, ua, ub
    return f * dt, ua, ub


@njit(cache=True, error_model="numpy")
def _window(times, conc, j0, thr, cmax, tmax, auc, above, longest, do_auc):
    """The read-outs of one subject over ``times[j0:]``: conc (T, G); cmax, tmax, auc (G,);
    above, longest (G, K) (K = 0: no thresholds). ``do_auc`` False: no AUC (the caller has exact
    AUCs from accumulator states), which saves a logarithm per falling segment.
    """
    T, G = conc.shape
    K = thr.shape[1]
    for g in range(G):
        # maximum (and AUC): one pass
        mx = conc[j0, g]
        tm = times[j0]
        area = 0.0
        for j in range(j0, T - 1):
            b = conc[j + 1, g]
            if b > mx:
                mx = b
                tm = times[j + 1]
            if do_auc:
                a = conc[j, g]
                dt = times[j + 1] - times[j]
                if dt > 0.0:
                    if a > b and b > 0.0:
                        area += dt * (a - b) / math.log(a / b)
                    else:
                        area += 0.5 * dt * (a + b)
        cmax[g] = mx
        tmax[g] = tm
        auc[g] = area
        # each threshold: one pass with scalar accumulators (the common cases first, without a call)
        for k in range(K):
            th = thr[g, k]
            run = 0.0
            best = 0.0
            tot = 0.0
            for j in range(j0, T - 1):
                a = conc[j, g]
                b = conc[j + 1, g]
                dt = times[j + 1] - times[j]
                if a >= th and b >= th:         # above throughout
                    tot += dt
                    run += dt
                    if run > best:
                        best = run
                    continue
                if a < th and b < th:           # below throughout
                    run = 0.0
                    continue
                p, ua, ub = _piece(a, b, dt, th)
                tot += p
                if ua:
                    run += p
                else:
                    run = p
                if run > best:
                    best = run
                if not ub:
                    run = 0.0
            above[g, k] = tot
            longest[g, k] = best


@njit(parallel=True, cache=True, error_model="numpy")
def _whole_window(times, conc, thr, cmax, tmax, auc, above, longest):
    N = conc.shape[0]
    for i in prange(N):
        _window(times, conc[i], 0, thr, cmax[i], tmax[i], auc[i], above[i], longest[i], True)


def whole_window(times: ArrayLike, conc: ArrayLike, thresholds: ArrayLike | None = None) -> dict[str, np.ndarray]:
    """Cmax, Tmax, AUC, time above and longest run above, per subject and group.

    Parameters
    ----------
    times : array_like, shape (T,)
        Output times (h), non-decreasing (a repeated time is a jump).
    conc : array_like, shape (N, T, G)
        Concentrations of N subjects in G groups.
    thresholds : array_like, shape (G, K) or (K,), optional
        Thresholds in the unit of ``conc`` (one row per group, or the same K for every group).

    Returns
    -------
    dict of str to ndarray
        ``cmax`` (unit of ``conc``), ``tmax`` (h), ``auc`` (unit x h), shape (N, G); ``time_above`` and
        ``longest_above`` (h), shape (N, G, K).
    """
    conc = np.ascontiguousarray(conc, dtype=np.float64)
    N, T, G = conc.shape
    thr = np.zeros((G, 0)) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 1:
        thr = np.broadcast_to(thr, (G, thr.size))
    thr = np.ascontiguousarray(thr)
    K = thr.shape[1]
    out = {k: np.empty((N, G)) for k in ("cmax", "tmax", "auc")}
    above = np.empty((N, G, K))
    longest = np.empty((N, G, K))
    compile_notice(_whole_window, "the read-outs", 10)
    _whole_window(np.ascontiguousarray(times, dtype=np.float64), conc, thr, out["cmax"], out["tmax"], out["auc"],
                  above, longest)
    out["time_above"] = above
    out["longest_above"] = longest
    return out


@njit(parallel=True, cache=True, error_model="numpy")
def _min_interval_run(times, conc, thr, starts, ends, out):
    N, T = conc.shape
    M = starts.shape[0]
    for i in prange(N):
        worst = np.inf
        for m in range(M):
            run = 0.0
            best = 0.0
            for j in range(starts[m], ends[m]):
                p, ua, ub = _piece(conc[i, j], conc[i, j + 1], times[j + 1] - times[j], thr)
                if ua:
                    run += p
                else:
                    run = p
                if run > best:
                    best = run
                if not ub:
                    run = 0.0
            if best < worst:
                worst = best
        out[i] = worst


def min_interval_run(times: ArrayLike, conc: np.ndarray, threshold: float, starts: ArrayLike,
                     ends: ArrayLike) -> np.ndarray:
    """Shortest, over dosing intervals, of the longest run at/above ``threshold``.

    ``starts``/``ends`` are grid indices of each interval's first and last
    output (the post-dose value of one dose and the pre-dose value of the
    next). Returns (N,) hours. A subject meets "above X for at least D after
    each dose" when the result is >= D.

    Parameters
    ----------
    times : ndarray, shape (T,)
        Output times (h).
    conc : ndarray, shape (N, T)
        Concentrations.
    threshold : float
        In the unit of ``conc``.
    starts, ends : ndarray of int, shape (n_intervals,)
        Grid indices of each interval's first and last output.

    Returns
    -------
    ndarray, shape (N,)
        Hours.
    """
    out = np.empty(conc.shape[0])
    _min_interval_run(np.ascontiguousarray(times, dtype=np.float64), np.ascontiguousarray(conc, dtype=np.float64),
                      float(threshold), np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), out)
    return out


def percentiles(a: ArrayLike, q: float | ArrayLike, axis: int | None = 0) -> np.ndarray:
    """``np.nanpercentile(a, q, axis)``, through the much faster ``np.percentile`` when ``a`` has no NaN
    (the usual case: a failed subject's profile is NaN). Same values either way.

    Parameters
    ----------
    a : ndarray
        Values (NaN ignored).
    q : float or sequence of float
        Percentiles in [0, 100].
    axis : int, optional
        Axis to reduce.

    Returns
    -------
    ndarray
        As :func:`numpy.nanpercentile`.

    Examples
    --------
    >>> import numpy as np
    >>> float(percentiles(np.array([1.0, 2.0, np.nan, 3.0]), 50))
    2.0
    """
    a = np.asarray(a, dtype=np.float64)
    if np.isnan(a).any():
        return np.nanpercentile(a, q, axis=axis)
    return np.percentile(a, q, axis=axis)


# ----------------------------------------------------- solve and read out in one pass
# For large populations: each subject is solved, reduced to compartment-group concentrations and
# read out while its profile is in cache, so no (subjects, times, compartments) block is built.
# Subjects are processed in blocks, each with its own work arrays (allocated once per block).
@njit(cache=True, error_model="numpy")
def _reduce_subject(i, st, p, vol_col, save, colmap, W, factor, times, out, conc, vol, thr, last_start, trough_at, nb,
                    band, cmax, tmax, auc, above, longest, cmax_last, auc_last, trough, thr0, tm_tail):
    """Group concentrations of subject ``i`` from its saved amounts ``out`` (T, ns), then its read-outs.

    The first S = W.shape[0] saved states are amounts (mg); if ``out`` has 2 S columns, the others are
    their AUC accumulators (integral of concentration, mg/L h), and the group AUCs are taken from
    them (exact, independent of the output grid) as sum_j V_j AUC_j / sum_j V_j. Saved state j is
    column ``colmap[j]`` of ``out``.
    """
    T = out.shape[0]
    ns = colmap.shape[0]
    S, G = W.shape
    for g in range(G):
        v = 0.0
        for j in range(S):
            if W[j, g] != 0.0:
                c = vol_col[save[j]]
                v += (p[c] if c >= 0 else 1.0) * W[j, g]
        vol[g] = factor[g] / v
    if st != 0:         # a failed subject's partial profile is never used
        for t in range(T):
            for g in range(G):
                conc[t, g] = np.nan
    else:
        # column by column over the non-zero weights (a state belongs to one or two groups): the
        # same sums, in the same order, as sum_j out[t, j] W[j, g]
        for g in range(G):
            first = True
            for j in range(S):
                w = W[j, g]
                if w == 0.0:
                    continue
                cj = colmap[j]
                if first:
                    for t in range(T):
                        conc[t, g] = out[t, cj] * w
                    first = False
                else:
                    for t in range(T):
                        conc[t, g] += out[t, cj] * w
            if first:
                for t in range(T):
                    conc[t, g] = 0.0
            vg = vol[g]
            for t in range(T):
                conc[t, g] *= vg
    exact_auc = ns == 2 * S         # AUCs from the accumulators below, not from the grid
    _window(times, conc, 0, thr, cmax[i], tmax[i], auc[i], above[i], longest[i], not exact_auc)
    _window(times, conc, last_start, thr0, cmax_last[i], tm_tail, auc_last[i], thr0, thr0, not exact_auc)
    if exact_auc:
        for g in range(G):
            a0 = 0.0
            al = 0.0
            a1 = 0.0
            for j in range(S):
                c = vol_col[save[j]]
                vw = (p[c] if c >= 0 else 1.0) * W[j, g]
                ca = colmap[S + j]
                a0 += out[0, ca] * vw
                al += out[last_start, ca] * vw
                a1 += out[T - 1, ca] * vw
            if st != 0:
                auc[i, g] = np.nan
                auc_last[i, g] = np.nan
            else:
                auc[i, g] = a1 * vol[g] - a0 * vol[g]
                auc_last[i, g] = a1 * vol[g] - al * vol[g]
    for g in range(G):
        trough[i, g] = conc[trough_at, g] if trough_at >= 0 else np.nan
    if i < nb:
        for t in range(T):
            for g in range(G):
                band[i, t, g] = conc[t, g]


@njit(cache=True, error_model="numpy")
def _lazy_flush(save, Sw, lin_src, last_start, T):
    """The outputs at which the exact solver must write the AUC accumulators, or none (write them everywhere).

    The fused read-outs take the accumulators at three outputs only (first, start of the last interval, last),
    so the solver may update them lazily there, provided every amount read at every output is an active
    state (the source of a transfer): otherwise a stale accumulator could be read.
    """
    lazy = save.shape[0] == 2 * Sw
    for j in range(Sw):
        src = False
        for q in range(lin_src.shape[0]):
            if lin_src[q] == save[j]:
                src = True
        if not src:
            lazy = False
    if lazy:
        # the sorted distinct values of 0, last_start and T - 1, as np.unique gives them (np.unique would
        # compile a quicksort for three numbers)
        b, c = last_start, T - 1
        lo = min(0, min(b, c))
        hi = max(0, max(b, c))
        mid = b + c - lo - hi
        v = np.empty(3, dtype=np.int64)
        v[0] = lo
        n = 1
        if mid != lo:
            v[n] = mid
            n += 1
        if hi != mid:
            v[n] = hi
            n += 1
        return v[:n].copy()
    return np.empty(0, dtype=np.int64)


@njit(nogil=True, cache=True, error_model="numpy")
def _fused_exact(b0, b1, P, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save,
                 W, factor, thr, last_start, trough_at, nb, band, status, cmax, tmax, auc, above, longest,
                 cmax_last, auc_last, trough, refined):
    """Exact solve, read-outs, and Cmax/Tmax refined between outputs (:func:`pkcsf.solvers.exact.refine_peaks`);
    ``refined[i]`` is 1 when subject i's Cmax read-outs are exact between outputs (see refine_peaks).
    """
    T = times.shape[0]
    S_m = vol_col.shape[0]
    G = W.shape[1]
    Sw = W.shape[0]
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    every = np.arange(S_m)
    flush = _lazy_flush(save, Sw, lin_src, last_start, T)
    # work arrays of this range of subjects (run_subjects); every state: the refinement starts from full states
    out = np.empty((T, S_m))
    conc = np.empty((T, G))
    vol = np.empty(G)
    counters = np.zeros(5, dtype=np.int64)
    thr0 = np.empty((G, 0))
    tm_tail = np.empty(G)
    wv = np.zeros((S_m, G))
    order, na, ws = exact_workspace(S_m, lin_src)
    u = np.empty(na)
    ub = np.empty(na)
    v = np.empty(na)
    vn = np.empty(na)
    wg = np.empty(na)
    memo = np.empty((G, 3))
    samp = np.empty((65, na))
    rc = np.empty(2)
    coef = np.zeros(64)
    for i in range(b0, b1):
        ie = i * sev
        st, split = solve_exact_ws(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t[ie], ev_s[ie],
                                   ev_a[ie], ev_k[ie], ev_n[ie], times, y0[i * sy0], every, out, counters, order,
                                   na, ws, flush)
        status[i] = st
        _reduce_subject(i, st, P[i], vol_col, save, save, W, factor, times, out, conc, vol, thr, last_start,
                        trough_at, nb, band, cmax, tmax, auc, above, longest, cmax_last, auc_last, trough, thr0,
                        tm_tail)
        refined[i] = 0
        if split and st == 0:
            for g in range(G):
                for j in range(Sw):
                    wv[save[j], g] = W[j, g] * vol[g]
            for g in range(G):
                memo[g, 0] = -1.0
            rc[0] = -1.0
            ok1 = refine_peaks(times, out, conc, 0, wv, cmax[i], tmax[i], ev_t[ie], ev_n[ie], order, na, ws,
                               u, ub, v, vn, wg, coef, memo, samp, rc)
            ok2 = refine_peaks(times, out, conc, last_start, wv, cmax_last[i], tm_tail, ev_t[ie], ev_n[ie], order,
                               na, ws, u, ub, v, vn, wg, coef, memo, samp, rc)
            refined[i] = 1 if ok1 and ok2 else 0


@njit(nogil=True, cache=True, error_model="numpy")
def _fused_rodas(b0, b1, P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                 ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, rtol, atol, max_steps, max_step,
                 W, factor, thr, last_start, trough_at, nb, band, status, cmax, tmax, auc, above, longest,
                 cmax_last, auc_last, trough):
    T = times.shape[0]
    G = W.shape[1]
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    colmap = np.arange(save.shape[0])
    out = np.empty((T, save.shape[0]))
    conc = np.empty((T, G))
    vol = np.empty(G)
    counters = np.zeros(5, dtype=np.int64)
    thr0 = np.empty((G, 0))
    tm_tail = np.empty(G)
    for i in range(b0, b1):
        ie = i * sev
        st = _kern.solve_rodas(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km,
                           mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[i * sy0], save, out,
                           rtol, atol, max_steps, max_step, counters)
        status[i] = st
        _reduce_subject(i, st, P[i], vol_col, save, colmap, W, factor, times, out, conc, vol, thr, last_start,
                        trough_at, nb, band, cmax, tmax, auc, above, longest, cmax_last, auc_last, trough, thr0,
                        tm_tail)


def solve_and_read_out(prob: Problem, W: ArrayLike, factor: float | ArrayLike, thresholds: ArrayLike, last_start: int,
                       trough_at: int, keep: int, events: tuple | None = None
                       ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Solve an engine problem (:class:`pkcsf.engine.simulate.Problem`, solver ``exact`` or ``rodas5p``)
    and return the whole-window read-outs of its compartment groups without building the
    (subjects, times, groups) array.

    ``W`` (S, G): amounts of the first S saved states summed into groups; concentration = factor x
    group amount / group volume (``factor``: one number, or one per group). If the problem saves 2 S states, the last S are the AUC
    accumulators of the first S, and the AUCs come from them. ``thresholds`` (G, K) in the concentration's unit. ``last_start``:
    index where the last-interval read-outs start; ``trough_at``: index of the last trough (-1: none);
    ``keep``: the first ``keep`` subjects' group concentrations are returned (for bands).

    A failed subject's read-outs are NaN. The same numbers as :func:`whole_window` on the group
    concentrations, except Cmax and Tmax (``cmax``/``tmax``, ``cmax_last``) with the exact solver:
    for subjects dosed by boluses they are the maximum of the exact solution *between* output times
    too (:func:`pkcsf.solvers.exact.refine_peaks`), not only at them, so a coarse output grid no longer
    under-reads a peak (``cmax_exact`` True; False where the grid value had to stay: a dose between
    two output times next to the peak, infusions, rodas5p).

    Parameters
    ----------
    prob : Problem
        The prepared problem.
    W : ndarray, shape (S, G)
        Group weights of the saved states.
    factor : float or ndarray, shape (G,)
        Concentration unit factor (mg/L -> the read-out unit), one for all groups or one per group.
    thresholds : ndarray, shape (G, K)
        Thresholds per group, in the read-out unit.
    last_start, trough_at, keep : int
        See above.
    events : tuple of ndarray, optional
        ``prob.events(slice(None))`` if the caller built them already (e.g. on another thread while an
        earlier problem was being solved).

    Returns
    -------
    readouts : dict of str to ndarray
        ``cmax``, ``tmax`` (h), ``auc``, ``cmax_last``, ``auc_last``, ``trough_last``, shape (N, G);
        ``time_above``, ``longest_above`` (h), shape (N, G, K); ``cmax_exact``, bool, shape (N,).
    status : ndarray of int64, shape (N,)
        Each subject's status code.
    band : ndarray, shape (keep, T, G)
        Group concentrations of the first ``keep`` subjects.
    """
    cm = prob.compiled
    P = np.ascontiguousarray(prob.P)
    N = P.shape[0]
    T = len(prob.times)
    W = np.ascontiguousarray(W, dtype=np.float64)
    G = W.shape[1]
    thr = np.asarray(thresholds, dtype=np.float64)
    if thr.ndim == 1:
        thr = np.broadcast_to(thr, (G, thr.size))
    thr = np.array(thr)             # writable, C order: the kernels' argument types never change between calls
    Kt = thr.shape[1]
    ev_t, ev_s, ev_a, ev_k, ev_n = prob.events(slice(None)) if events is None else events
    y0 = np.ascontiguousarray(prob.y0)
    r = {k: np.empty((N, G)) for k in ("cmax", "tmax", "auc", "cmax_last", "auc_last", "trough_last")}
    r["time_above"] = np.empty((N, G, Kt))
    r["longest_above"] = np.empty((N, G, Kt))
    status = np.zeros(N, dtype=np.int64)
    nb = max(0, min(int(keep), N))
    band = np.empty((nb, T, G))
    fac = np.array(np.broadcast_to(np.asarray(factor, dtype=np.float64), (G,)))     # a writable copy, C order
    common = (W, fac, thr, int(last_start), int(trough_at), nb, band, status, r["cmax"], r["tmax"], r["auc"],
              r["time_above"], r["longest_above"], r["cmax_last"], r["auc_last"], r["trough_last"])
    refined = np.zeros(N, dtype=np.int64)
    if prob.method == "exact":
        compile_notice(_fused_exact, "the exact solver with read-outs", 10)
        # ranges of subjects (each with its own work arrays) on threads: kernels.run_subjects
        _kern.run_subjects(_fused_exact, N, P, cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst,
                           cm.lin_col, ev_t, ev_s, ev_a, ev_k, ev_n, prob.times, y0, prob.save, *common, refined)
    elif prob.method == "rodas5p":
        compile_notice(_fused_rodas, "the rodas5p solver with read-outs", 5)
        _kern.run_subjects(_fused_rodas, N, P, cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst,
                           cm.lin_col, cm.mm_src, cm.mm_dst, cm.mm_vmax, cm.mm_km, cm.mm_fu, ev_t, ev_s, ev_a, ev_k,
                           ev_n, prob.times, y0, prob.save, prob.rtol, prob.atol, prob.max_steps, prob.max_step,
                           *common)
    else:
        raise ValueError(f"solve_and_read_out: solver {prob.method!r} has no fused read-outs (exact, rodas5p)")
    r["cmax_exact"] = refined.astype(bool)
    return r, status, band
