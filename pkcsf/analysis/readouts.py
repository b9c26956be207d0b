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

import numpy as np
from numba import prange

from pkcsf.core.jit import compile_notice, njit

__all__ = ["whole_window", "min_interval_run", "percentiles"]


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


@njit(parallel=True, cache=True, error_model="numpy")
def _whole_window(times, conc, thr, cmax, tmax, auc, above, longest):
    N, T, G = conc.shape
    K = thr.shape[1]
    for i in prange(N):
        for g in range(G):
            c0 = conc[i, 0, g]
            mx = c0
            tm = times[0]
            area = 0.0
            run = np.zeros(K)
            best = np.zeros(K)
            tot = np.zeros(K)
            for j in range(T - 1):
                a = conc[i, j, g]
                b = conc[i, j + 1, g]
                dt = times[j + 1] - times[j]
                if b > mx:
                    mx = b
                    tm = times[j + 1]
                if dt > 0.0:
                    if a > b and b > 0.0:
                        area += dt * (a - b) / math.log(a / b)
                    else:
                        area += 0.5 * dt * (a + b)
                for k in range(K):
                    p, ua, ub = _piece(a, b, dt, thr[g, k])
                    tot[k] += p
                    if ua:
                        run[k] += p
                    else:
                        run[k] = p
                    if run[k] > best[k]:
                        best[k] = run[k]
                    if not ub:
                        run[k] = 0.0
            cmax[i, g] = mx
            tmax[i, g] = tm
            auc[i, g] = area
            for k in range(K):
                above[i, g, k] = tot[k]
                longest[i, g, k] = best[k]


def whole_window(times, conc, thresholds=None):
    """Cmax, Tmax, AUC, time above and longest run above, per subject and group.

    Parameters
    ----------
    times : ndarray (T,), h, non-decreasing (a repeated time is a jump)
    conc : ndarray (N, T, G)
    thresholds : ndarray (G, K) or (K,), same unit as ``conc``

    Returns
    -------
    dict of ndarrays: cmax, tmax, auc (N, G); time_above, longest_above (N, G, K)
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


def min_interval_run(times, conc, threshold, starts, ends):
    """Shortest, over dosing intervals, of the longest run at/above ``threshold``.

    ``starts``/``ends`` are grid indices of each interval's first and last
    output (the post-dose value of one dose and the pre-dose value of the
    next). Returns (N,) hours. A subject meets "above X for at least D after
    each dose" when the result is >= D.
    """
    out = np.empty(conc.shape[0])
    _min_interval_run(np.ascontiguousarray(times, dtype=np.float64), np.ascontiguousarray(conc, dtype=np.float64),
                      float(threshold), np.asarray(starts, dtype=np.int64), np.asarray(ends, dtype=np.int64), out)
    return out


def percentiles(a, q, axis=0):
    """``np.nanpercentile(a, q, axis)``, through the much faster ``np.percentile`` when ``a`` has no NaN
    (the usual case: a failed subject's profile is NaN). Same values either way.
    """
    a = np.asarray(a, dtype=np.float64)
    if np.isnan(a).any():
        return np.nanpercentile(a, q, axis=axis)
    return np.percentile(a, q, axis=axis)
