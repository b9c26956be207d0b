"""The compiled kernels: one set for every model (see :mod:`pkcsf.engine.compile`).

State vector: amounts (mg) of each compartment, then the eliminated amount.
The right-hand side is ``dy/dt = A(p) y + b(t) + m(y, p)`` where ``A`` is the
linear rate matrix built from the transfer table, ``b`` the sum of running
zero-order infusions and ``m`` the Michaelis–Menten terms.

Three per-subject integrators share one event loop (:func:`solve_subject`):

* ``METHOD_EXACT``: exact propagation of the linear system between events,
  ``y(t+dt) = E y(t) + Phi b`` with ``E = exp(A dt)`` and
  ``Phi = int_0^dt exp(A s) ds`` from one matrix exponential (Van Loan's
  block form); the few distinct step lengths are cached per subject.
* ``METHOD_RODAS``: Rodas5P (Steinebach 2023), an 8-stage stiffly accurate
  Rosenbrock method of order 5 with an order-4 embedded error estimate, one
  LU factorisation per step and the model's analytic Jacobian. The default
  adaptive method: for small stiff systems at moderate tolerances it needs
  far fewer steps than Radau IIA, whose embedded estimate is only order 3.
* ``METHOD_RADAU``: the 3-stage Radau IIA method of order 5 with embedded
  error control, adapted from SciPy's ``Radau`` (BSD-3-Clause; Hairer &
  Wanner, Solving ODEs II, Sec. IV.8), with the analytic Jacobian of the
  model, per-state absolute tolerances and steps that land exactly on every
  output and event time. It is L-stable, so stiffness (minutes to weeks in
  the CSF models) costs accuracy control, not stability.

:func:`solve_batch` runs subjects in parallel with ``prange``. Each subject
is independent of the others, so subject i gets bit-identical results
whatever N, the thread count or the chunking.
"""
from __future__ import annotations

import math

import numpy as np
from numba import prange

from pkcsf.core.jit import compile_notice, njit
from pkcsf.solvers.linalg import expm, expm_phi, lu_factor, lu_factor_recip, lu_solve, lu_solve_recip, matvec

METHOD_EXACT = 0
METHOD_RADAU = 1
METHOD_RODAS = 2
METHOD_DOPRI5 = 3   # explicit Dormand-Prince with switching to Rodas5P: pkcsf/solvers/explicit.py

EV_BOLUS = 0
EV_RATE_ON = 1
EV_RATE_OFF = 2

ST_SUCCESS = 0
ST_MAX_STEPS = 1
ST_STEP_TOO_SMALL = 2
ST_NONFINITE = 3
ST_NEWTON = 4

# ----------------------------------------------------------------- model terms


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


# ------------------------------------------------------------ Radau constants
_S6 = 6.0 ** 0.5
_C = np.array([(4.0 - _S6) / 10.0, (4.0 + _S6) / 10.0, 1.0])
_E = np.array([-13.0 - 7.0 * _S6, -13.0 + 7.0 * _S6, -1.0]) / 3.0
_MU_REAL = 3.0 + 3.0 ** (2.0 / 3.0) - 3.0 ** (1.0 / 3.0)
_MU_COMPLEX_RE = 3.0 + 0.5 * (3.0 ** (1.0 / 3.0) - 3.0 ** (2.0 / 3.0))
_MU_COMPLEX_IM = -0.5 * (3.0 ** (5.0 / 6.0) + 3.0 ** (7.0 / 6.0))
_T = np.array([[0.09443876248897524, -0.14125529502095421, 0.03002919410514742],
               [0.25021312296533332, 0.20412935229379994, -0.38294211275726192],
               [1.0, 1.0, 0.0]])
_TI = np.array([[4.17871859155190428, 0.32768282076106237, 0.52337644549944951],
                [-4.17871859155190428, -0.32768282076106237, 0.47662355450055044],
                [0.50287263494578682, -2.57192694985560522, 0.59603920482822492]])
_P = np.array([[13.0 / 3.0 + 7.0 * _S6 / 3.0, -23.0 / 3.0 - 22.0 * _S6 / 3.0, 10.0 / 3.0 + 5.0 * _S6],
               [13.0 / 3.0 - 7.0 * _S6 / 3.0, -23.0 / 3.0 + 22.0 * _S6 / 3.0, 10.0 / 3.0 - 5.0 * _S6],
               [1.0 / 3.0, -8.0 / 3.0, 10.0 / 3.0]])
_NEWTON_MAXITER = 6
_MIN_FACTOR = 0.2
_MAX_FACTOR = 10.0
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
def _predict_factor(h_abs, h_abs_old, error_norm, error_norm_old):
    if error_norm == 0.0:
        return _MAX_FACTOR
    if error_norm_old < 0.0 or h_abs_old < 0.0:
        multiplier = 1.0
    else:
        multiplier = h_abs / h_abs_old * (error_norm_old / error_norm) ** 0.25
    return min(1.0, multiplier) * error_norm ** -0.25


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


# ------------------------------------------------------------ Rodas5P tableau
# Steinebach G (2023). Construction of Rosenbrock-Wanner method Rodas5P and
# numerical benchmarks within the Julia Differential Equations package.
# BIT Numer Math 63:27, doi:10.1007/s10543-023-00967-x (coefficients of the
# 8-stage, order-5(4), stiffly accurate method in the transformed W-form:
# W = I/(h*gamma) - J; stage i: U_i = y + sum_j a_ij u_j,
# W u_i = f(U_i) + sum_j (c_ij/h) u_j; y_new = U_8 + u_8 (order 5), U_8 is the
# embedded order-4 solution, so the error estimate is u_8; as OrdinaryDiffEq.jl's
# Rodas5P perform_step). Transcription checked by the convergence-order test
# in tests/test_solvers.py.
_RG = 0.21193756319429014
_RA = np.zeros((8, 8))
_RC = np.zeros((8, 8))
_RA[1, :1] = [3.0]
_RA[2, :2] = [2.849394379747939, 0.45842242204463923]
_RA[3, :3] = [-6.954028509809101, 2.489845061869568, -10.358996098473584]
_RA[4, :4] = [2.8029986275628964, 0.5072464736228206, -0.3988312541770524, -0.04721187230404641]
_RA[5, :5] = [-7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
              0.030198172008377946]
_RA[6, :6] = [-7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
              0.030198172008377946, 1.0]
_RA[7, :7] = [-7.502846399306121, 2.561846144803919, -11.627539656261098, -0.18268767659942256,
              0.030198172008377946, 1.0, 1.0]
_RC[1, :1] = [-14.155112264123755]
_RC[2, :2] = [-17.97296035885952, -2.859693295451294]
_RC[3, :3] = [147.12150275711716, -1.41221402718213, 71.68940251302358]
_RC[4, :4] = [165.43517024871676, -0.4592823456491126, 42.90938336958603, -5.961986721573306]
_RC[5, :5] = [24.854864614690072, -3.0009227002832186, 47.4931110020768, 5.5814197821558125,
              -0.6610691825249471]
_RC[6, :6] = [30.91273214028599, -3.1208243349937974, 77.79954646070892, 34.28646028294783,
              -19.097331116725623, -28.087943162872662]
_RC[7, :7] = [37.80277123390563, -3.2571969029072276, 112.26918849496327, 66.9347231244047,
              -40.06618937091002, -54.66780262877968, -9.48861652309627]
# U_8 = y + sum_{j<7} a_8j u_j (row 7 of _RA) is the embedded order-4 solution;
# y_new = U_8 + u_8 is the order-5 one, so the error estimate is u_8 itself.


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
def _emit(y, save, out, k):
    for j in range(save.shape[0]):
        out[k, j] = y[save[j]]


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
def _tiny_step(dt, y, f):
    """Y <- y + dt f for an interval below the time resolution (keeps the mass balance)."""
    for i in range(y.shape[0]):
        y[i] += dt * f[i]


@njit(cache=True, error_model="numpy")
def _advance_rodas(t, target, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                   rtol, max_steps, max_step, nonlinear, wv, wm, piv, st, counters,
                   times, k, save, out):
    """Rodas5P steps from t to target (the last one lands on target).

    Outputs at times in (t, target) are written from the quintic Hermite
    dense output. Returns (status, next output index).
    """
    S = y.shape[0]
    T = times.shape[0]
    J = wm[M_J]
    LU = wm[M_LU]
    f = wv[V_F]
    U = wv[V_W1]
    r = wv[V_W2]
    scale = wv[V_SCALE]
    atolv = wv[V_ATOL]
    ynew = wv[V_YTMP]
    err = wv[V_ERR]
    fnew = wv[V_FNEW]
    UU = wv[V_U:V_U + 8]
    dinv = wv[V_DINV]
    while t < target:
        if st[S_STEPS] >= max_steps:
            return ST_MAX_STEPS, k
        min_step = 10.0 * abs(np.nextafter(t, np.inf) - t)
        if target - t < max(min_step, st[S_TRES]):
            # an interval of a few ulps of the time span (two event times that differ
            # by rounding, or a dose at 1e-300 h): no step can resolve it, and one
            # Euler step is exact to rounding
            _tiny_step(target - t, y, f)
            while k < T and times[k] < target:
                _emit(y, save, out, k)
                k += 1
            return ST_SUCCESS, k
        h_abs = min(st[S_H], max_step)
        rejected = False
        clipped = False
        error_norm = 0.0
        h = 0.0
        t_new = 0.0
        while True:
            if h_abs < min_step:
                return ST_STEP_TOO_SMALL, k
            t_new = t + h_abs
            clipped = False
            if t_new + 0.01 * h_abs >= target:
                t_new = target
                clipped = True
            h = t_new - t
            if st[S_LUH] != h:
                g = 1.0 / (h * _RG)
                for i in range(S):
                    for j in range(S):
                        LU[i, j] = -J[i, j]
                    LU[i, i] += g
                counters[3] += 1
                if lu_factor_recip(LU, piv, dinv) != 0:
                    h_abs *= 0.5
                    st[S_LUH] = -1.0
                    counters[1] += 1
                    rejected = True
                    continue
                st[S_LUH] = h
            inv_h = 1.0 / h
            for stg in range(8):
                if stg == 0:
                    for i in range(S):
                        r[i] = f[i]
                else:
                    for i in range(S):
                        U[i] = y[i]
                    for j in range(stg):
                        a = _RA[stg, j]
                        if a != 0.0:
                            for i in range(S):
                                U[i] += a * UU[j, i]
                    rhs(U, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, r)
                    counters[2] += 1
                    for j in range(stg):
                        c = _RC[stg, j] * inv_h
                        for i in range(S):
                            r[i] += c * UU[j, i]
                lu_solve_recip(LU, piv, dinv, r)
                for i in range(S):
                    UU[stg, i] = r[i]
            # y_new = U_8 + u_8 (order 5); U_8 is the embedded order-4 solution,
            # so the error estimate is u_8
            for i in range(S):
                ynew[i] = U[i] + UU[7, i]
                err[i] = UU[7, i]
                scale[i] = atolv[i] + max(abs(y[i]), abs(ynew[i])) * rtol
            error_norm = _rms_scaled(err, scale)
            if not math.isfinite(error_norm):
                h_abs *= 0.25
                counters[1] += 1
                rejected = True
                continue
            if error_norm > 1.0:
                h_abs *= max(0.2, 0.9 * error_norm ** -0.2)
                counters[1] += 1
                rejected = True
                continue
            break
        # ---- accept: f(y_new) starts the next step and closes the dense output
        st[S_STEPS] += 1.0
        counters[0] += 1
        rhs(ynew, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, fnew)
        counters[2] += 1
        dense = k < T and times[k] < target and times[k] < t_new
        if dense:
            matvec(J, f, wv[V_S0])          # y'' at the start, with the J of this step
        if nonlinear:
            jacobian(ynew, A, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, J)
            st[S_LUH] = -1.0
        if dense:
            matvec(J, fnew, wv[V_S1])
            while k < T and times[k] < target and times[k] < t_new:
                _hermite5((times[k] - t) / h, h, y, f, wv[V_S0], ynew, fnew, wv[V_S1], save, out, k)
                k += 1
        if k < T and times[k] == t_new and t_new < target:
            _emit(ynew, save, out, k)
            k += 1
        for i in range(S):
            y[i] = ynew[i]
            f[i] = fnew[i]
        t = t_new
        if error_norm == 0.0:
            factor = 5.0
        else:
            factor = min(5.0, max(0.2, 0.9 * error_norm ** -0.2))
        if rejected:
            factor = min(factor, 1.0)
        h_next = h * factor
        if clipped and not rejected:
            # the step was cut to land on an event time: keep the step length
            # the error estimate allowed before the cut
            h_next = max(h_next, st[S_H])
        # keep h, and so the LU of a linear model, when the change would be small
        if not nonlinear and h_next >= h and h_next <= 1.2 * h:
            h_next = h
        st[S_H] = h_next
        for i in range(S):
            if not math.isfinite(y[i]):
                return ST_NONFINITE, k
    return ST_SUCCESS, k


@njit(cache=True, error_model="numpy")
def _advance_radau(t, target, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                   rtol, max_steps, max_step, nonlinear, wv, wm, LUc, fc, pivr, pivc, st, counters):
    """Radau IIA (order 5) steps from t to target (landing exactly on target)."""
    S = y.shape[0]
    J = wm[M_J]
    LUr = wm[M_LU]
    f = wv[V_F]
    work = wv[V_W1]
    work2 = wv[V_W2]
    scale = wv[V_SCALE]
    err = wv[V_ERR]
    ZE = wv[V_ZE]
    y_old = wv[V_YOLD]
    fr = wv[V_FR]
    atolv = wv[V_ATOL]
    newton_tol = max(10.0 * _EPS / rtol, min(0.03, rtol ** 0.5))
    mu_c = complex(_MU_COMPLEX_RE, _MU_COMPLEX_IM)
    while t < target:
        if st[S_STEPS] >= max_steps:
            return ST_MAX_STEPS
        min_step = 10.0 * abs(np.nextafter(t, np.inf) - t)
        if target - t < max(min_step, st[S_TRES]):
            # a few ulps (e.g. an output time next to a dose time): see _advance_rodas
            _tiny_step(target - t, y, f)
            return ST_SUCCESS
        h_abs = st[S_H]
        if h_abs > max_step:
            h_abs = max_step
            st[S_HOLD] = -1.0
            st[S_ERROLD] = -1.0
        elif h_abs < min_step:
            h_abs = min_step
            st[S_HOLD] = -1.0
            st[S_ERROLD] = -1.0
        h_desired = h_abs
        rejected = False
        accepted = False
        clipped = False
        n_iter = 0
        rate = -1.0
        error_norm = 0.0
        safety = 0.9
        h = 0.0
        t_new = 0.0
        while not accepted:
            if h_abs < min_step:
                return ST_STEP_TOO_SMALL
            t_new = t + h_abs
            clipped = False
            if t_new + 0.01 * h_abs >= target:
                t_new = target
                clipped = True
            h = t_new - t
            h_abs = h
            # predictor for the stage values from the last step's polynomial
            if st[S_HAVESOL] > 0.0:
                for s3 in range(3):
                    x = (t + h * _C[s3] - st[S_TOLD]) / st[S_HPREV]
                    x2 = x * x
                    x3 = x2 * x
                    for i in range(S):
                        wv[V_Z0 + s3, i] = (y_old[i] + wv[V_Q, i] * x + wv[V_Q + 1, i] * x2
                                            + wv[V_Q + 2, i] * x3 - y[i])
            else:
                for s3 in range(3):
                    for i in range(S):
                        wv[V_Z0 + s3, i] = 0.0
            for i in range(S):
                scale[i] = atolv[i] + abs(y[i]) * rtol
            converged = False
            while not converged:
                if st[S_LUH] != h:
                    mr = _MU_REAL / h
                    mc = mu_c / h
                    for i in range(S):
                        for j in range(S):
                            LUr[i, j] = -J[i, j]
                            LUc[i, j] = -J[i, j]
                        LUr[i, i] += mr
                        LUc[i, i] += mc
                    lu_factor(LUr, pivr)
                    lu_factor(LUc, pivc)
                    counters[3] += 1
                    st[S_LUH] = h
                # Newton iterations on the collocation system (SciPy's solve_collocation_system)
                mr = _MU_REAL / h
                mc = mu_c / h
                for s3 in range(3):
                    for i in range(S):
                        wv[V_WW + s3, i] = (_TI[s3, 0] * wv[V_Z0, i] + _TI[s3, 1] * wv[V_Z0 + 1, i]
                                            + _TI[s3, 2] * wv[V_Z0 + 2, i])
                        wv[V_Z + s3, i] = wv[V_Z0 + s3, i]
                dW_norm_old = -1.0
                rate = -1.0
                converged = False
                finite = True
                n_iter = 0
                for it in range(_NEWTON_MAXITER):
                    n_iter = it + 1
                    for s3 in range(3):
                        for i in range(S):
                            work[i] = y[i] + wv[V_Z + s3, i]
                        rhs(work, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, wv[V_FS + s3])
                    counters[2] += 3
                    for i in range(S):
                        if not math.isfinite(wv[V_FS, i] + wv[V_FS + 1, i] + wv[V_FS + 2, i]):
                            finite = False
                    if not finite:
                        break
                    for i in range(S):
                        f0 = wv[V_FS, i]
                        f1 = wv[V_FS + 1, i]
                        f2 = wv[V_FS + 2, i]
                        fr[i] = f0 * _TI[0, 0] + f1 * _TI[0, 1] + f2 * _TI[0, 2] - mr * wv[V_WW, i]
                        re = f0 * _TI[1, 0] + f1 * _TI[1, 1] + f2 * _TI[1, 2]
                        im = f0 * _TI[2, 0] + f1 * _TI[2, 1] + f2 * _TI[2, 2]
                        fc[i] = complex(re, im) - mc * complex(wv[V_WW + 1, i], wv[V_WW + 2, i])
                    lu_solve(LUr, pivr, fr)
                    lu_solve(LUc, pivc, fc)
                    dsum = 0.0
                    for i in range(S):
                        wv[V_DW, i] = fr[i]
                        wv[V_DW + 1, i] = fc[i].real
                        wv[V_DW + 2, i] = fc[i].imag
                        sc = scale[i]
                        dsum += (fr[i] / sc) ** 2 + (fc[i].real / sc) ** 2 + (fc[i].imag / sc) ** 2
                    dW_norm = math.sqrt(dsum / (3 * S))
                    if dW_norm_old >= 0.0:
                        rate = dW_norm / dW_norm_old
                    if rate >= 0.0 and (rate >= 1.0 or
                                        rate ** (_NEWTON_MAXITER - it) / (1.0 - rate) * dW_norm > newton_tol):
                        break
                    for s3 in range(3):
                        for i in range(S):
                            wv[V_WW + s3, i] += wv[V_DW + s3, i]
                    for s3 in range(3):
                        for i in range(S):
                            wv[V_Z + s3, i] = (_T[s3, 0] * wv[V_WW, i] + _T[s3, 1] * wv[V_WW + 1, i]
                                               + _T[s3, 2] * wv[V_WW + 2, i])
                    if dW_norm == 0.0 or (rate >= 0.0 and rate / (1.0 - rate) * dW_norm < newton_tol):
                        converged = True
                        break
                    if not nonlinear and it == 0:
                        # linear model, exact Jacobian: the first Newton step solves
                        # the (linear) collocation system exactly
                        converged = True
                        break
                    dW_norm_old = dW_norm
                if not converged:
                    if st[S_JACCUR] > 0.0 or not nonlinear:
                        break
                    jacobian(y, A, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, J)
                    st[S_JACCUR] = 1.0
                    st[S_LUH] = -1.0
            if not converged:
                h_abs *= 0.5
                counters[1] += 1
                rejected = True
                continue
            # error estimate (Hairer & Wanner IV.8, eq. 8.20, as SciPy)
            for i in range(S):
                work[i] = y[i] + wv[V_Z + 2, i]     # y_new
                ZE[i] = (wv[V_Z, i] * _E[0] + wv[V_Z + 1, i] * _E[1] + wv[V_Z + 2, i] * _E[2]) / h
                err[i] = f[i] + ZE[i]
            lu_solve(LUr, pivr, err)
            for i in range(S):
                scale[i] = atolv[i] + max(abs(y[i]), abs(work[i])) * rtol
            error_norm = _rms_scaled(err, scale)
            safety = 0.9 * (2 * _NEWTON_MAXITER + 1) / (2 * _NEWTON_MAXITER + n_iter)
            if rejected and error_norm > 1.0:
                for i in range(S):
                    work2[i] = y[i] + err[i]
                rhs(work2, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, err)
                counters[2] += 1
                for i in range(S):
                    err[i] += ZE[i]
                lu_solve(LUr, pivr, err)
                error_norm = _rms_scaled(err, scale)
            if error_norm > 1.0:
                factor = _predict_factor(h_abs, st[S_HOLD], error_norm, st[S_ERROLD])
                h_abs *= max(_MIN_FACTOR, safety * factor)
                rejected = True
                counters[1] += 1
            else:
                accepted = True
        st[S_STEPS] += 1.0
        counters[0] += 1
        recompute_jac = nonlinear and n_iter > 2 and rate > 1e-3
        factor = _predict_factor(h_abs, st[S_HOLD], error_norm, st[S_ERROLD])
        factor = min(_MAX_FACTOR, safety * factor)
        if not recompute_jac and factor < 1.2:
            factor = 1.0
        # dense-output polynomial of this step (predictor for the next one)
        for i in range(S):
            y_old[i] = y[i]
            for c in range(3):
                wv[V_Q + c, i] = wv[V_Z, i] * _P[0, c] + wv[V_Z + 1, i] * _P[1, c] + wv[V_Z + 2, i] * _P[2, c]
        st[S_TOLD] = t
        st[S_HPREV] = h
        st[S_HAVESOL] = 1.0
        for i in range(S):
            y[i] = work[i]
        t = t_new
        rhs(y, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, f)
        counters[2] += 1
        if recompute_jac:
            jacobian(y, A, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, J)
            st[S_JACCUR] = 1.0
            st[S_LUH] = -1.0
        elif nonlinear:
            st[S_JACCUR] = 0.0
        st[S_HOLD] = h_desired
        st[S_ERROLD] = error_norm
        h_next = h_abs * factor
        if clipped and not rejected and h_desired > h_next:
            h_next = h_desired
        st[S_H] = h_next
        for i in range(S):
            if not math.isfinite(y[i]):
                return ST_NONFINITE
    return ST_SUCCESS


@njit(cache=True, error_model="numpy")
def _exact_slot(dt, active, A, wm, c_dt, c_E, c_F, c_hasF, c_next, counters):
    """Cache slot holding exp(A dt) (and Phi(dt) if an infusion runs), transposed.

    A small per-subject cache keyed by dt: regular output grids and dosing
    intervals use a few distinct step lengths. The matrices are stored
    transposed (``c_E[slot, j, i] = E[i, j]``) so that :func:`_propagate`
    runs over contiguous memory in its inner loop.
    """
    S = A.shape[0]
    NC = c_dt.shape[0]
    slot = -1
    for c in range(NC):
        if c_dt[c] > 0.0 and abs(c_dt[c] - dt) <= 1e-13 * dt:
            slot = c
            break
    need_F = active and (slot < 0 or not c_hasF[slot])
    if slot < 0:
        slot = c_next[0]
        c_next[0] = (c_next[0] + 1) % NC
        c_dt[slot] = dt
        c_hasF[slot] = False
    elif not need_F:
        return slot
    E = wm[M_AD]
    if need_F:
        F = wm[M_LU]
        expm_phi(A, dt, E, F)
        for i in range(S):
            for j in range(S):
                c_F[slot, j, i] = F[i, j]
        c_hasF[slot] = True
    else:
        Ad = wm[M_LU]
        for i in range(S):
            for j in range(S):
                Ad[i, j] = A[i, j] * dt
        expm(Ad, E)
    for i in range(S):
        for j in range(S):
            c_E[slot, j, i] = E[i, j]
    counters[4] += 1
    return slot


@njit(cache=True, error_model="numpy")
def _propagate8(ET, FT, active, b, y, ytmp):
    """:func:`_propagate` for rows padded to 8 (models of up to 8 states).

    The literal trip count lets LLVM turn the inner loop into two 4-wide
    vector FMAs (used while an infusion runs; otherwise :func:`_exact_run8`).
    """
    S = y.shape[0]
    for i in range(8):
        ytmp[i] = 0.0
    for j in range(S):
        yj = y[j]
        for i in range(8):
            ytmp[i] += ET[j, i] * yj
    if active:
        for j in range(S):
            bj = b[j]
            for i in range(8):
                ytmp[i] += FT[j, i] * bj
    for i in range(S):
        y[i] = ytmp[i]


@njit(cache=True, error_model="numpy")
def _exact_run8(ET, y, ytmp, times, k, t, t_end, dt, save, out):
    """The exact solver's hot loop: outputs dt apart before t_end, no infusion running.

    y <- E y for models of up to 8 states, with ``ET`` (8, 8) the transposed,
    zero-padded exponential, and the saved states written to ``out[k]``, for
    as long as the output spacing stays ``dt``. Returns (k, t).

    The step is a chain (each output needs the previous one), so its latency
    is what counts: the eight columns are summed as a balanced tree (depth 3
    instead of 8 dependent additions) over 8-wide rows with literal trip
    counts, which LLVM turns into a few vector operations.
    """
    S = y.shape[0]
    T = times.shape[0]
    ns = save.shape[0]
    for i in range(8):
        ytmp[i] = y[i] if i < S else 0.0
    y0, y1, y2, y3 = ytmp[0], ytmp[1], ytmp[2], ytmp[3]
    y4, y5, y6, y7 = ytmp[4], ytmp[5], ytmp[6], ytmp[7]
    while k < T and times[k] < t_end and times[k] - t == dt:
        for i in range(8):
            ytmp[i] = (((ET[0, i] * y0 + ET[1, i] * y1) + (ET[2, i] * y2 + ET[3, i] * y3))
                       + ((ET[4, i] * y4 + ET[5, i] * y5) + (ET[6, i] * y6 + ET[7, i] * y7)))
        y0, y1, y2, y3 = ytmp[0], ytmp[1], ytmp[2], ytmp[3]
        y4, y5, y6, y7 = ytmp[4], ytmp[5], ytmp[6], ytmp[7]
        for j in range(ns):
            out[k, j] = ytmp[save[j]]
        t = times[k]
        k += 1
    for i in range(S):
        y[i] = ytmp[i]
    return k, t


@njit(cache=True, error_model="numpy")
def _exact_run_blk(ET, y, yp, ytmp, times, k, t, t_end, dt, save, out):
    """:func:`_exact_run8` for models of more than 8 states, rows and columns padded to a multiple of 8.

    The columns of E are taken eight at a time: eight state values held in registers, one
    vectorised pass over the rows adds their tree-summed products to ``ytmp``. A plain
    column-by-column product re-reads and re-writes ``ytmp`` for every column, a chain of
    dependent memory operations as long as the state; here it is eight times shorter.
    ``yp`` (SP,) holds the state, zero beyond S. Returns (k, t).
    """
    S = y.shape[0]
    SP = ET.shape[0]
    T = times.shape[0]
    ns = save.shape[0]
    for i in range(SP):
        yp[i] = y[i] if i < S else 0.0
    while k < T and times[k] < t_end and times[k] - t == dt:
        for i in range(SP):
            ytmp[i] = 0.0
        for jb in range(0, SP, 8):
            y0, y1, y2, y3 = yp[jb], yp[jb + 1], yp[jb + 2], yp[jb + 3]
            y4, y5, y6, y7 = yp[jb + 4], yp[jb + 5], yp[jb + 6], yp[jb + 7]
            for i in range(SP):
                ytmp[i] += (((ET[jb, i] * y0 + ET[jb + 1, i] * y1) + (ET[jb + 2, i] * y2 + ET[jb + 3, i] * y3))
                            + ((ET[jb + 4, i] * y4 + ET[jb + 5, i] * y5) + (ET[jb + 6, i] * y6 + ET[jb + 7, i] * y7)))
        for i in range(SP):
            yp[i] = ytmp[i]
        for j in range(ns):
            out[k, j] = yp[save[j]]
        t = times[k]
        k += 1
    for i in range(S):
        y[i] = yp[i]
    return k, t


@njit(cache=True, error_model="numpy")
def _propagate(ET, FT, active, b, y, ytmp):
    """Y <- E y + Phi b from the transposed matrices ``ET``, ``FT`` of shape (SP, SP), SP >= S."""
    S = y.shape[0]
    for i in range(S):
        ytmp[i] = 0.0
    for j in range(S):
        yj = y[j]
        for i in range(S):
            ytmp[i] += ET[j, i] * yj
    if active:
        for j in range(S):
            bj = b[j]
            if bj != 0.0:
                for i in range(S):
                    ytmp[i] += FT[j, i] * bj
    for i in range(S):
        y[i] = ytmp[i]


@njit(cache=True, error_model="numpy")
def _any_positive(nact):
    for i in range(nact.shape[0]):
        if nact[i] > 0:
            return True
    return False


# ------------------------------------------------------------ one subject
# One event loop per solver (:func:`solve_exact`, :func:`solve_rodas`, :func:`solve_radau`), not one
# function with a ``method`` switch: Numba compiles every branch it can reach, so a switch made the
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


@njit(cache=True, error_model="numpy")
def solve_exact(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times, y0,
                save, out, counters):
    """One subject with the exact (matrix-exponential) solver; see :func:`solve_subject`."""
    S = vol_col.shape[0]
    T = times.shape[0]
    A, L, V, y, b, nact = _setup(p, vol_col, lin_type, lin_src, lin_dst, lin_col, y0)
    wm = np.zeros((NM, S, S))
    NC = 8
    c_dt = np.full(NC, -1.0)
    SP = 8 * ((S + 7) // 8)          # padded row length of the cached exponentials (see _propagate)
    c_E = np.zeros((NC, SP, SP))      # rows and columns beyond S stay zero
    c_F = np.zeros((NC, SP, SP))
    ytmp = np.zeros(SP)
    yp = np.zeros(SP)
    c_hasF = np.zeros(NC, dtype=np.bool_)
    c_next = np.zeros(1, dtype=np.int64)
    t = 0.0
    k = 0
    e = 0
    while True:
        k = _emit_left(y, save, out, times, k, t)
        e = _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact)
        k = _emit_now(y, save, out, times, k, t)
        if k >= T:
            break
        te = ev_t[e] if e < n_ev else np.inf
        t_end = te if te < times[T - 1] else times[T - 1]
        # y(t + dt) = exp(A dt) y + Phi(dt) b; infusions (b) only change at events
        active = _any_positive(nact)
        last_dt = -1.0
        ET = c_E[0]
        FT = c_F[0]
        while k < T and times[k] < t_end:
            dt = times[k] - t
            if dt != last_dt:
                slot = _exact_slot(dt, active, A, wm, c_dt, c_E, c_F, c_hasF, c_next, counters)
                ET = c_E[slot]          # views made once per step length, not per output
                FT = c_F[slot]
                last_dt = dt
            if SP == 8 and not active:
                k, t = _exact_run8(ET, y, ytmp, times, k, t, t_end, dt, save, out)
                continue
            if not active:
                k, t = _exact_run_blk(ET, y, yp, ytmp, times, k, t, t_end, dt, save, out)
                continue
            if SP == 8:
                _propagate8(ET, FT, active, b, y, ytmp)
            else:
                _propagate(ET, FT, active, b, y, ytmp)
            t = times[k]
            _emit(y, save, out, k)
            k += 1
        if t_end > t:
            slot = _exact_slot(t_end - t, active, A, wm, c_dt, c_E, c_F, c_hasF, c_next, counters)
            _propagate(c_E[slot], c_F[slot], active, b, y, ytmp)
        t = t_end
    return _finish(ST_SUCCESS, k, out)


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
    wm[M_J, :, :] = A
    return wv, wm, st


@njit(cache=True, error_model="numpy")
def solve_rodas(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step, counters):
    """One subject with Rodas5P; see :func:`solve_subject`."""
    S = vol_col.shape[0]
    T = times.shape[0]
    A, L, V, y, b, nact = _setup(p, vol_col, lin_type, lin_src, lin_dst, lin_col, y0)
    wv, wm, st = _adaptive_workspace(S, A, V, atol, times)
    nonlinear = _any_active(p, mm_vmax)
    piv = np.empty(S, dtype=np.int64)
    t = 0.0
    k = 0
    e = 0
    status = ST_SUCCESS
    while True:
        k = _emit_left(y, save, out, times, k, t)
        e0 = e
        e = _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact)
        if e > e0:
            st[S_RESTART] = 1.0
        k = _emit_now(y, save, out, times, k, t)
        if k >= T:
            break
        te = ev_t[e] if e < n_ev else np.inf
        t_end = te if te < times[T - 1] else times[T - 1]
        if st[S_RESTART] > 0.0:
            _restart(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, nonlinear,
                     wv, wm, st, counters, 5)
        status, k = _advance_rodas(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                                   rtol, max_steps, max_step, nonlinear, wv, wm, piv, st, counters,
                                   times, k, save, out)
        if status != ST_SUCCESS:
            break
        t = t_end
    return _finish(status, k, out)


@njit(cache=True, error_model="numpy")
def solve_radau(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step, counters):
    """One subject with Radau IIA; see :func:`solve_subject`."""
    S = vol_col.shape[0]
    T = times.shape[0]
    A, L, V, y, b, nact = _setup(p, vol_col, lin_type, lin_src, lin_dst, lin_col, y0)
    wv, wm, st = _adaptive_workspace(S, A, V, atol, times)
    nonlinear = _any_active(p, mm_vmax)
    pivr = np.empty(S, dtype=np.int64)
    pivc = np.empty(S, dtype=np.int64)
    LUc = np.empty((S, S), dtype=np.complex128)
    fc = np.empty(S, dtype=np.complex128)
    t = 0.0
    k = 0
    e = 0
    status = ST_SUCCESS
    while True:
        k = _emit_left(y, save, out, times, k, t)
        e0 = e
        e = _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact)
        if e > e0:
            st[S_RESTART] = 1.0
        k = _emit_now(y, save, out, times, k, t)
        if k >= T:
            break
        te = ev_t[e] if e < n_ev else np.inf
        t_end = te if te < times[T - 1] else times[T - 1]
        if st[S_RESTART] > 0.0:
            _restart(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, nonlinear,
                     wv, wm, st, counters, 3)
        while k < T and times[k] < t_end and status == ST_SUCCESS:
            status = _advance_radau(t, times[k], y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km,
                                    mm_fu, rtol, max_steps, max_step, nonlinear, wv, wm, LUc, fc,
                                    pivr, pivc, st, counters)
            t = times[k]
            _emit(y, save, out, k)
            k += 1
        if status == ST_SUCCESS and t_end > t:
            status = _advance_radau(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                                    rtol, max_steps, max_step, nonlinear, wv, wm, LUc, fc, pivr, pivc,
                                    st, counters)
        if status != ST_SUCCESS:
            break
        t = t_end
    return _finish(status, k, out)


@njit(cache=True, error_model="numpy")
def solve_subject(method, p, vol_col, lin_type, lin_src, lin_dst, lin_col,
                  mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                  ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out,
                  rtol, atol, max_steps, max_step, counters):
    """Solve one subject; write ``out[k, j] = y[save[j]]`` at ``times[k]``.

    The loop: report the first of a repeated output time (the left limit),
    apply every event at the current time, report the outputs at that time
    (so outputs are right-continuous at doses), then integrate to
    the next event (or the last output time), reporting the outputs passed
    on the way. Returns a status code (ST_*). ``counters`` receives (steps,
    rejected steps, rhs evaluations, LU factorisations, matrix exponentials).

    This switch compiles all three solvers; the batch functions call one of
    :func:`solve_exact`, :func:`solve_rodas`, :func:`solve_radau` directly.
    """
    if method == METHOD_EXACT:
        return solve_exact(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times,
                           y0, save, out, counters)
    if method == METHOD_RODAS:
        return solve_rodas(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                           ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step,
                           counters)
    return solve_radau(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                       ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step, counters)


# ------------------------------------------------------------ many subjects
# multiply instead of branching in the batch loops: a conditional would unify the prange
# index with a literal and Numba would type the index as float
@njit(parallel=True, cache=True, error_model="numpy")
def batch_exact(P, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save,
                out, status, counters):
    """Every subject (rows of ``P``) with the exact solver, in parallel; see :func:`solve_batch`."""
    N = P.shape[0]
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in prange(N):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_exact(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t[ie], ev_s[ie], ev_a[ie],
                                ev_k[ie], ev_n[ie], times, y0[iy], save, out[i], counters[i])


@njit(parallel=True, cache=True, error_model="numpy")
def batch_rodas(P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step,
                counters):
    """Every subject (rows of ``P``) with Rodas5P, in parallel; see :func:`solve_batch`."""
    N = P.shape[0]
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in prange(N):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_rodas(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax,
                                mm_km, mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[iy],
                                save, out[i], rtol, atol, max_steps, max_step, counters[i])


@njit(parallel=True, cache=True, error_model="numpy")
def batch_radau(P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step,
                counters):
    """Every subject (rows of ``P``) with Radau IIA, in parallel; see :func:`solve_batch`."""
    N = P.shape[0]
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in prange(N):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_radau(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax,
                                mm_km, mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[iy],
                                save, out[i], rtol, atol, max_steps, max_step, counters[i])


# METHOD_DOPRI5's batch function is added by pkcsf/solvers/explicit.py (which imports this module) when it is imported
BATCH = {METHOD_EXACT: batch_exact, METHOD_RODAS: batch_rodas, METHOD_RADAU: batch_radau}
METHOD_NAMES = {METHOD_EXACT: "exact", METHOD_RODAS: "rodas5p", METHOD_RADAU: "radau", METHOD_DOPRI5: "dopri5"}
# first-compile time on the 2-core reference machine (benchmarks/README.md), for the notice
COMPILE_SECONDS = {METHOD_EXACT: 25, METHOD_RODAS: 35, METHOD_RADAU: 45, METHOD_DOPRI5: 45}


def solve_batch(method, P, vol_col, lin_type, lin_src, lin_dst, lin_col,
                mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status,
                rtol, atol, max_steps, max_step, counters):
    """Solve every subject (rows of ``P``) in parallel with solver ``method`` (METHOD_*).

    Event arrays have shape (N_ev, E) with N_ev equal to N or 1 (shared by all
    subjects); ``y0`` has shape (N or 1, n_states). ``out`` has shape
    (N, T, len(save)); ``status`` (N,); ``counters`` (N, 5). Only the chosen
    solver is compiled (on its first use on this machine, with a notice on stderr).
    """
    fn = BATCH[method]
    compile_notice(fn, f"the {METHOD_NAMES[method]} solver", COMPILE_SECONDS[method])
    if method == METHOD_EXACT:
        fn(P, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out,
           status, counters)
    else:
        fn(P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
           ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step, counters)
