"""The exact solver with the rate matrix switched at given times: a linear model whose parameters take one of two
rows, changing at known times (the patient's position after a lumbar dose, :mod:`pkcsf.clinical.position`).

Each subject's two rate matrices are built once, and the exponentials of each are cached across the whole run (one
cache per row), so a rhythm of many windows costs about what one solve costs; the alternative, one solve per window
chained by hand-offs (:func:`pkcsf.clinical.events_segments.chain_segments`), recomputes every exponential in every
window. Bolus doses only, and models with passive states (:func:`pkcsf.solvers.exact.solve_exact_split`'s layout),
the CNS models' case; the caller falls back to the chained solve otherwise (:func:`switch_supported`).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pkcsf.core.jit import compile_notice
from pkcsf.solvers._jit import njit
from pkcsf.solvers.common import ST_SUCCESS, _emit_left, _emit_now, _events, _finish
from pkcsf.solvers.exact import (
    EV_BOLUS,
    _passive_order,
    _split_run,
    _split_slot,
    _split_step,
    split_matrix,
    split_places,
    split_workspace,
)


@njit(cache=True, error_model="numpy")
def solve_exact_switched(p0, p1, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times,
                         y0, save, out, counters, order, na, ws0, ws1, sw_t, sw_b):
    """One subject, bolus doses only, with parameter row ``p0`` or ``p1``: from ``sw_t[i]`` (h, increasing) on, row
    ``sw_b[i]`` (0 or 1) holds; row 0 before the first switch. ``ws0``/``ws1``: work arrays of
    :func:`~pkcsf.solvers.exact.split_workspace`, one per row. Same outputs and status as
    :func:`~pkcsf.solvers.exact.solve_exact_split` (without the lazy passive states).
    """
    S = vol_col.shape[0]
    T = times.shape[0]
    A0 = split_matrix(p0, vol_col, lin_type, lin_src, lin_dst, lin_col, order, na, ws0)
    A1 = split_matrix(p1, vol_col, lin_type, lin_src, lin_dst, lin_col, order, na, ws1)
    ws0[6][:] = -1.0                    # empty exponential caches
    ws1[6][:] = -1.0
    NA8 = ws0[7].shape[1]
    savep = split_places(order, na, ws0, save)
    pos = ws0[13]
    next0 = np.zeros(1, dtype=np.int64)
    next1 = np.zeros(1, dtype=np.int64)
    y = y0.copy()
    b = np.zeros(S)
    nact = np.zeros(S, dtype=np.int64)
    t = 0.0
    k = 0
    e = 0
    si = 0
    row = 0
    nsw = sw_t.shape[0]
    while True:
        k = _emit_left(y, save, out, times, k, t)
        e = _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact)
        while si < nsw and sw_t[si] <= t:
            row = sw_b[si]
            si += 1
        k = _emit_now(y, save, out, times, k, t)
        if k >= T:
            break
        te = ev_t[e] if e < n_ev else np.inf
        if si < nsw and sw_t[si] < te:
            te = sw_t[si]
        t_end = te if te < times[T - 1] else times[T - 1]
        ws = ws0 if row == 0 else ws1
        A = A0 if row == 0 else A1
        c_next = next0 if row == 0 else next1
        M = ws[12]
        c_E = ws[7]
        z = ws[8]
        ztmp = ws[9]
        for s_ in range(S):
            z[pos[s_]] = y[s_]
        last_dt = -1.0
        ET = c_E[0]
        while k < T and times[k] < t_end:
            dt = times[k] - t
            if dt != last_dt:
                ET = c_E[_split_slot(dt, M, A, order, na, ws, c_next, counters)]
                last_dt = dt
            k, t = _split_run(ET, z, ztmp, NA8, times, k, t, t_end, dt, savep, out)
        if t_end > t:
            _split_step(c_E[_split_slot(t_end - t, M, A, order, na, ws, c_next, counters)], z, ztmp, NA8)
        for s_ in range(S):
            y[s_] = z[pos[s_]]
        t = t_end
    return _finish(ST_SUCCESS, k, out)


@njit(nogil=True, cache=True, error_model="numpy")
def batch_exact_switched(i0, i1, P0, P1, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, ev_n,
                         times, y0, save, out, status, counters, sw_t, sw_b):
    """Subjects ``i0 <= i < i1`` with :func:`solve_exact_switched`; work arrays shared across the range."""
    S = vol_col.shape[0]
    order, na = _passive_order(S, lin_src)
    ws0 = split_workspace(S, na, 8)
    ws1 = split_workspace(S, na, 8)
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in range(i0, i1):
        ie = i * sev
        status[i] = solve_exact_switched(P0[i], P1[i], vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t[ie],
                                         ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[i * sy0], save, out[i],
                                         counters[i], order, na, ws0, ws1, sw_t, sw_b)


def switch_supported(lin_src: np.ndarray, n_states: int, ev_k: np.ndarray, ev_n: np.ndarray) -> bool:
    """Whether :func:`solve_switched` can solve a problem: bolus doses only and a model with active and passive
    states (the split layout).

    Parameters
    ----------
    lin_src : ndarray of int64
        Source state of each linear transfer (the compiled model's table).
    n_states : int
        Number of states.
    ev_k, ev_n : ndarray
        Event kinds and counts per row (as the kernels take them).

    Returns
    -------
    bool
        True when the switched solve applies.
    """
    _, na = _passive_order(n_states, np.asarray(lin_src, dtype=np.int64))
    if na == 0 or na == n_states:
        return False
    used = np.arange(ev_k.shape[1])[None, :] < np.asarray(ev_n)[:, None]      # each row's events in use
    return not np.any((np.asarray(ev_k) != EV_BOLUS) & used)


def solve_switched(P0: np.ndarray, P1: np.ndarray, compiled: Any, events: tuple, times: np.ndarray, y0: np.ndarray,
                   save: np.ndarray, sw_t: np.ndarray, sw_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every subject with the parameter rows switched at the given times, in parallel (exact solver).

    Parameters
    ----------
    P0, P1 : ndarray, shape (N, n_columns)
        Each subject's two parameter rows (the same columns: one compiled model).
    compiled : CompiledModel
        The model's kernel tables.
    events : tuple
        ``(ev_t, ev_s, ev_a, ev_k, ev_n)`` as the kernels take them (bolus doses only: :func:`switch_supported`).
    times : ndarray
        Output times (h).
    y0 : ndarray, shape (N or 1, n_states)
        Initial amounts (mg).
    save : ndarray of int64
        States reported.
    sw_t, sw_b : ndarray
        Switch times (h, increasing) and the row (0 or 1) that holds from each; row 0 before the first.

    Returns
    -------
    tuple
        ``(out, status)``: amounts (N, T, n_save) in mg and per-subject status codes.
    """
    from pkcsf.solvers.kernels import run_subjects

    compile_notice(batch_exact_switched, "the exact solver with switched parameters", 25)
    cm = compiled
    P0 = np.ascontiguousarray(P0, dtype=float)
    P1 = np.ascontiguousarray(P1, dtype=float)
    n = P0.shape[0]
    out = np.empty((n, len(times), len(save)))
    status = np.zeros(n, dtype=np.int64)
    counters = np.zeros((n, 5), dtype=np.int64)
    ev_t, ev_s, ev_a, ev_k, ev_n = events
    run_subjects(batch_exact_switched, n, P0, P1, cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst, cm.lin_col,
                 ev_t, ev_s, ev_a, ev_k, ev_n, np.asarray(times, dtype=float), y0, np.asarray(save, dtype=np.int64),
                 out, status, counters, np.asarray(sw_t, dtype=float), np.asarray(sw_b, dtype=np.int64))
    return out, status
