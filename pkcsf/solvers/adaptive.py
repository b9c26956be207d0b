"""Shared pieces of the adaptive methods (:mod:`pkcsf.solvers.rodas`, :mod:`pkcsf.solvers.radau`).

One workspace per subject: float vectors in rows of one (NV, S) array, matrices in one (NM, S, S)
array, the integrator's scalar state in a small vector (indices ``V_*``, ``M_*``, ``S_*``). A dose
(any event) restarts the integrator (:func:`_restart`): f and the Jacobian are recomputed and the first
step is chosen again (:func:`_initial_step`, Hairer, Norsett & Wanner); Rodas5P then keeps the step
size its controller last proposed, capped by a multiple of that estimate
(:func:`pkcsf.solvers.rodas.restart_keep_h`). Error norms are RMS norms of
``err / (atol_i + rtol |y_i|)`` (:func:`_rms_scaled`) with ``atol_i = atol * V_i`` (atol is in
concentration units, the state in amounts).
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.solvers._jit import njit
from pkcsf.solvers.common import jacobian, rhs

_EPS = np.finfo(np.float64).eps


@njit(cache=True, error_model="numpy")
def _rms_scaled(x, scale):
    n = x.shape[0]
    s = 0.0
    for i in range(n):
        v = x[i] / scale[i]
        s += v * v
    return math.sqrt(s / n)



@njit(cache=True, error_model="numpy")
def _initial_step(y, f, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, atolv, interval, work, f1,
                  order):
    """Hairer, Norsett & Wanner (1993) II.4 starting step (as SciPy's select_initial_step)."""
    n = y.shape[0]
    d0 = 0.0
    d1 = 0.0
    for i in range(n):
        sc = atolv[i] + abs(y[i]) * rtol
        d0 += (y[i] / sc) ** 2
        d1 += (f[i] / sc) ** 2
    d0 = math.sqrt(d0 / n)
    d1 = math.sqrt(d1 / n)
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = 1e-6
    else:
        h0 = 0.01 * d0 / d1
    h0 = min(h0, interval)
    for i in range(n):
        work[i] = y[i] + h0 * f[i]
    rhs(work, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, f1)
    d2 = 0.0
    for i in range(n):
        sc = atolv[i] + abs(y[i]) * rtol
        d2 += ((f1[i] - f[i]) / sc) ** 2
    d2 = math.sqrt(d2 / n) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / (order + 1.0))
    return min(100.0 * h0, h1, interval)



# --------------------------------------------------------------- workspace
# Float vectors live in rows of one (NV, S) array, matrices in one (NM, S, S)
# array, scalar integrator state in a small vector: allocated once per subject.
V_F = 0        # f(t, y) at the current state
V_FNEW = 1
V_W1 = 2
V_W2 = 3
V_SCALE = 4
V_ERR = 5
V_ZE = 6
V_YOLD = 7
V_FR = 8
V_YTMP = 9
V_ATOL = 10
V_S0 = 11      # y'' = J f at the start of a step (dense output)
V_S1 = 12      # y'' at its end
V_Z = 13       # 3 rows
V_Z0 = 16      # 3 rows
V_WW = 19      # 3 rows (Radau transformed stage values)
V_FS = 22      # 3 rows (stage derivatives)
V_DW = 25      # 3 rows
V_Q = 28       # 3 rows (Radau collocation polynomial, transposed)
V_U = 31       # 8 rows (Rodas stages)
V_DINV = 39    # reciprocal pivots of the Rodas LU
NV = 40

M_J = 0
M_LU = 1
M_AD = 2
NM = 3

# scalar state
S_H = 0            # proposed step size
S_HOLD = 1         # previous proposed step size (-1: none)
S_ERROLD = 2       # previous error norm (-1: none)
S_LUH = 3          # step size of the current LU (-1: none)
S_TOLD = 4
S_HPREV = 5
S_HAVESOL = 6
S_RESTART = 7      # 1 after an event: recompute f, J, initial step
S_JACCUR = 8
S_STEPS = 9
S_TRES = 10        # time resolution of the run: intervals shorter than this are not integrated
NS = 11


@njit(cache=True, error_model="numpy")
def _restart(t, target, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, nonlinear,
             wv, wm, st, counters, order):
    """Fresh start after a discontinuity (dose): f, Jacobian and a new first step."""
    rhs(y, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, wv[V_F])
    counters[2] += 1
    if nonlinear:
        jacobian(y, A, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, wm[M_J])
        st[S_LUH] = -1.0
    st[S_JACCUR] = 1.0
    h = _initial_step(y, wv[V_F], L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, wv[V_ATOL],
                      target - t, wv[V_W1], wv[V_W2], order)
    counters[2] += 1
    st[S_H] = h
    st[S_HOLD] = -1.0
    st[S_ERROLD] = -1.0
    st[S_HAVESOL] = 0.0
    st[S_RESTART] = 0.0



@njit(cache=True, error_model="numpy")
def _hermite5(theta, h, y0, f0, s0, y1, f1, s1, save, out, k):
    """Quintic Hermite interpolant through (y, y', y'') at both ends of a step.

    Error O(h^6), the order of the method; linear in the data, so it keeps
    the mass balance of the end points exactly (sum over mass states of f
    and of J f is zero).
    """
    t2 = theta * theta
    t3 = t2 * theta
    t4 = t3 * theta
    t5 = t4 * theta
    H0 = 1.0 - 10.0 * t3 + 15.0 * t4 - 6.0 * t5
    H1 = theta - 6.0 * t3 + 8.0 * t4 - 3.0 * t5
    H2 = 0.5 * (t2 - 3.0 * t3 + 3.0 * t4 - t5)
    H3 = 0.5 * (t3 - 2.0 * t4 + t5)
    H4 = -4.0 * t3 + 7.0 * t4 - 3.0 * t5
    H5 = 10.0 * t3 - 15.0 * t4 + 6.0 * t5
    hh = h * h
    for j in range(save.shape[0]):
        i = save[j]
        out[k, j] = (H0 * y0[i] + H5 * y1[i] + h * (H1 * f0[i] + H4 * f1[i])
                     + hh * (H2 * s0[i] + H3 * s1[i]))



@njit(cache=True, error_model="numpy")
def _adaptive_workspace(S, A, V, atol, times):
    wv = np.zeros((NV, S))
    wm = np.zeros((NM, S, S))
    st = np.zeros(NS)
    st[S_LUH] = -1.0
    st[S_RESTART] = 1.0
    st[S_TRES] = 8.0 * _EPS * abs(times[times.shape[0] - 1])
    for i in range(S):
        wv[V_ATOL, i] = atol * V[i]
    for i in range(S):        # element by element: an array assignment compiles NumPy's shape-error messages
        for j in range(S):
            wm[M_J, i, j] = A[i, j]
    return wv, wm, st

