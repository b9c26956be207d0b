"""What every method shares: status and event codes, the model's terms, and the event loop's pieces.

The state vector holds the amounts (mg) of each compartment, then the eliminated amount and any
accumulator (AUC) states. The right-hand side is ``dy/dt = A(p) y + b(t) + m(y, p)``: ``A`` the linear
rate matrix built from the transfer table (:func:`build_matrix`), ``b`` the sum of running zero-order
infusions, ``m`` the Michaelis-Menten terms (:func:`rhs`, :func:`jacobian`).

The pieces of the per-subject event loop that every method uses are here too: :func:`_setup` (the
subject's matrix, transfer list, volumes and state), :func:`_events` (apply the doses at the current
time), :func:`_emit_left` / :func:`_emit_now` (outputs at the current time, the left limit first when
a time is listed twice) and :func:`_finish` (the status after the loop). The contract these follow is
written in :mod:`pkcsf.solvers`.
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.solvers._jit import njit

# dose events (the engine's ``Problem.events`` writes these codes)
EV_BOLUS = 0
EV_RATE_ON = 1
EV_RATE_OFF = 2

# per-subject status (tied to pkcsf.core.errors.Status by tests/test_concepts.py)
ST_SUCCESS = 0
ST_MAX_STEPS = 1
ST_STEP_TOO_SMALL = 2
ST_NONFINITE = 3
ST_NEWTON = 4

# ----------------------------------------------------------------- model terms


@njit(cache=True, error_model="numpy")
def active_first(active, perm):
    """Fill ``perm`` with the states where ``active`` is true, then the others (each group in state order);
    return the number of active states. The exact and the Rosenbrock solvers order their passive states
    (the source of no transfer: eliminated amounts, AUC accumulators) after the active ones this way.
    """
    na = 0
    for i in range(active.shape[0]):
        if active[i]:
            perm[na] = i
            na += 1
    q = na
    for i in range(active.shape[0]):
        if not active[i]:
            perm[q] = i
            q += 1
    return na


@njit(cache=True, error_model="numpy")
def build_matrix(p, vol_col, lin_type, lin_src, lin_dst, lin_col, A):
    """Fill ``A`` (n_states x n_states) with the linear transfers of one subject."""
    A[:, :] = 0.0
    for k in range(lin_type.shape[0]):
        s = lin_src[k]
        d = lin_dst[k]
        vs = p[vol_col[s]] if vol_col[s] >= 0 else 1.0
        t = lin_type[k]
        if t == 2:                      # accumulate: d target = C_source
            A[d, s] += 1.0 / vs
            continue
        c = p[lin_col[k]] / vs if t == 0 else p[lin_col[k]]
        A[s, s] -= c
        A[d, s] += c


@njit(cache=True, error_model="numpy")
def pack_linear(p, vol_col, lin_type, lin_src, lin_dst, lin_col):
    """The linear transfers of one subject as a (4, n_transfers) array:
    source, target, rate per mg of source (1/h), and 1 if the source loses
    that mass (0 for accumulators). Sparse: cheaper than a dense A @ y.
    """
    nl = lin_type.shape[0]
    L = np.empty((4, nl))
    for k in range(nl):
        s = lin_src[k]
        vs = p[vol_col[s]] if vol_col[s] >= 0 else 1.0
        t = lin_type[k]
        L[0, k] = s
        L[1, k] = lin_dst[k]
        if t == 2:
            L[2, k] = 1.0 / vs
            L[3, k] = 0.0
        else:
            L[2, k] = p[lin_col[k]] / vs if t == 0 else p[lin_col[k]]
            L[3, k] = 1.0
    return L


@njit(cache=True, error_model="numpy")
def _volumes(p, vol_col, V):
    for s in range(vol_col.shape[0]):
        V[s] = p[vol_col[s]] if vol_col[s] >= 0 else 1.0


@njit(cache=True, error_model="numpy")
def rhs(y, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, out):
    """dy/dt. ``L`` is the transfer list (src, dst, coef, loss) of :func:`pack_linear`."""
    n = y.shape[0]
    for i in range(n):
        out[i] = b[i]
    for k in range(L.shape[1]):
        src = int(L[0, k])
        r = L[2, k] * y[src]
        out[int(L[1, k])] += r
        out[src] -= L[3, k] * r
    for k in range(mm_src.shape[0]):
        vmax = p[mm_vmax[k]]
        if vmax == 0.0:
            continue
        src = mm_src[k]
        fu = p[mm_fu[k]] if mm_fu[k] >= 0 else 1.0
        c = fu * y[src] / V[src]
        # odd extension below zero (|c| in the denominator): continuous with a
        # continuous slope vmax/km at 0, so rounding-level negative amounts decay
        # back to 0 instead of meeting a kink (a kink stalls Radau's Newton
        # iterations and leaves negative noise standing)
        r = vmax * c / (p[mm_km[k]] + abs(c))
        out[src] -= r
        out[mm_dst[k]] += r


@njit(cache=True, error_model="numpy")
def jacobian(y, A, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, J):
    """The Jacobian of :func:`rhs`: the rate matrix ``A`` plus the Michaelis–Menten derivatives."""
    S = A.shape[0]
    for i in range(S):              # explicit loops: a slice assignment costs ~100 ns here
        for j in range(S):
            J[i, j] = A[i, j]
    for k in range(mm_src.shape[0]):
        vmax = p[mm_vmax[k]]
        if vmax == 0.0:
            continue
        src = mm_src[k]
        fu = p[mm_fu[k]] if mm_fu[k] >= 0 else 1.0
        c = abs(fu * y[src] / V[src])
        km = p[mm_km[k]]
        d = vmax * km * fu / (V[src] * (km + c) * (km + c))
        J[src, src] -= d
        J[mm_dst[k], src] += d


@njit(cache=True, error_model="numpy")
def _any_active(p, mm_vmax):
    for k in range(mm_vmax.shape[0]):
        if p[mm_vmax[k]] != 0.0:
            return True
    return False



@njit(cache=True, error_model="numpy")
def _emit(y, save, out, k):
    for j in range(save.shape[0]):
        out[k, j] = y[save[j]]



@njit(cache=True, error_model="numpy")
def _tiny_step(dt, y, f):
    """Y <- y + dt f for an interval below the time resolution (keeps the mass balance)."""
    for i in range(y.shape[0]):
        y[i] += dt * f[i]



@njit(cache=True, error_model="numpy")
def _any_positive(nact):
    for i in range(nact.shape[0]):
        if nact[i] > 0:
            return True
    return False


# first exact solve compile Rodas5P and Radau as well. Split, each solver compiles on first use.
@njit(cache=True, error_model="numpy")
def _setup(p, vol_col, lin_type, lin_src, lin_dst, lin_col, y0):
    """Rate matrix, transfer list, volumes, state, infusion rates and counts of one subject."""
    S = vol_col.shape[0]
    A = np.empty((S, S))
    build_matrix(p, vol_col, lin_type, lin_src, lin_dst, lin_col, A)
    L = pack_linear(p, vol_col, lin_type, lin_src, lin_dst, lin_col)
    V = np.empty(S)
    _volumes(p, vol_col, V)
    return A, L, V, y0.copy(), np.zeros(S), np.zeros(S, dtype=np.int64)


@njit(cache=True, error_model="numpy")
def _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact):
    """Apply every event at or before ``t`` from index ``e``; returns the next event index."""
    while e < n_ev and ev_t[e] <= t:
        s_ = ev_s[e]
        kind = ev_k[e]
        if kind == EV_BOLUS:
            y[s_] += ev_a[e]
        elif kind == EV_RATE_ON:
            nact[s_] += 1
            b[s_] += ev_a[e]
        else:
            nact[s_] -= 1
            if nact[s_] <= 0:
                nact[s_] = 0
                b[s_] = 0.0
            else:
                b[s_] -= ev_a[e]
        e += 1
    return e


@njit(cache=True, error_model="numpy")
def _emit_left(y, save, out, times, k, t):
    """An output time listed twice reports the left limit first: the value before the events at
    that time (a pre-dose trough), then the value after.
    """
    T = times.shape[0]
    while k + 1 < T and times[k] <= t and times[k + 1] == times[k]:
        _emit(y, save, out, k)
        k += 1
    return k


@njit(cache=True, error_model="numpy")
def _emit_now(y, save, out, times, k, t):
    T = times.shape[0]
    while k < T and times[k] <= t:
        _emit(y, save, out, k)
        k += 1
    return k


@njit(cache=True, error_model="numpy")
def _finish(status, k, out):
    """Status after the loop: non-finite outputs fail the subject; outputs not reached are NaN."""
    T = out.shape[0]
    if status == ST_SUCCESS:
        for kk in range(T):
            for j in range(out.shape[1]):
                if not math.isfinite(out[kk, j]):
                    status = ST_NONFINITE
    if status != ST_SUCCESS:
        for kk in range(k, T):
            for j in range(out.shape[1]):
                out[kk, j] = np.nan
    return status

