"""Rodas5P (Steinebach 2023): the default adaptive method.

An 8-stage, stiffly accurate Rosenbrock method of order 5 with an order-4 embedded error estimate,
one matrix factorisation per step (the model's analytic Jacobian; kept across steps of a linear model
while the step size does not change) and a quintic Hermite dense output for the output times inside
a step. For small stiff systems at moderate tolerances it needs far fewer steps than Radau IIA, whose
embedded estimate is only order 3. Steps land on every event time.

Cost per step (issue 11): the passive states (eliminated amount, accumulators: zero Jacobian
columns) are left out of the factorisation (:func:`passive_order`); the active block is inverted once
per step by Gauss-Jordan elimination and each of the 8 stage systems is then one matrix-vector
product (:func:`_solve_matrix`, :func:`_apply`); the right-hand side is inlined into the stages. A
dose recomputes f and the Jacobian but keeps the step size the controller last proposed, capped by
a multiple of the starting-step estimate (:func:`restart_keep_h`).
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.solvers._jit import njit
from pkcsf.solvers.adaptive import (
    M_J,
    S_H,
    S_HOLD,
    S_LUH,
    S_RESTART,
    S_STEPS,
    S_TRES,
    V_ATOL,
    V_ERR,
    V_F,
    V_FNEW,
    V_S0,
    V_S1,
    V_SCALE,
    V_U,
    V_W1,
    V_W2,
    V_YTMP,
    _adaptive_workspace,
    _hermite5,
    _restart,
    _rms_scaled,
)
from pkcsf.solvers.common import (
    ST_MAX_STEPS,
    ST_NONFINITE,
    ST_STEP_TOO_SMALL,
    ST_SUCCESS,
    _any_active,
    _emit,
    _emit_left,
    _emit_now,
    _events,
    _finish,
    _setup,
    _tiny_step,
    active_first,
    jacobian,
    rhs,
)
from pkcsf.solvers.linalg import matvec

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



# common.rhs inlined into the stages at Numba-IR level (the same Python function, not a copy): a call
# passes eleven arrays, a sizeable part of a step on a 6-state model (as explicit.py)
_rhs = njit(inline="always", error_model="numpy", cache=False)(rhs.py_func)

#: after a dose the step size the controller last proposed is kept, but at most this many times the
#: starting-step estimate (Hairer, Norsett & Wanner) at the new state: a bolus into a depot starts a
#: faster phase, and the estimate is conservative (a step of it is almost never rejected)
KEEP_H_FACTOR = 3.0


@njit(cache=True, error_model="numpy")
def active_states(A, mm_src):
    """States that feed back into the dynamics: a nonzero column of ``A`` or a Michaelis-Menten source."""
    S = A.shape[0]
    active = np.zeros(S, dtype=np.bool_)
    for j in range(S):
        for i in range(S):
            if A[i, j] != 0.0:
                active[j] = True
    for m in range(mm_src.shape[0]):
        active[mm_src[m]] = True
    return active


@njit(cache=True, error_model="numpy")
def passive_order(A, mm_src, perm):
    """Fill ``perm`` with the active states, then the passive ones; return the number of active states.

    A state is passive when its Jacobian column is zero at every state: no linear transfer leaves it
    (its column of ``A`` is zero) and it is no Michaelis-Menten source (the eliminated amount,
    accumulators such as an AUC, a depot whose rate constant is 0 for this subject). Nothing depends
    on a passive state, so the Rosenbrock systems ``(I/(h gamma) - J) u = r`` reduce to the active
    block plus a substitution for each passive row: ``u_i = h gamma (r_i + sum_j J_ij u_j)`` (as
    :func:`pkcsf.solvers.exact_expm.expm_passive_z` does for the exact solver).
    """
    return active_first(active_states(A, mm_src), perm)


@njit(cache=True, error_model="numpy")
def _solve_matrix(J, perm, na, g, LUc, piv, M, col):
    """``M`` (S, na): ``(I g - J)^-1`` restricted to the active columns, rows in ``perm`` order.

    The active rows are the inverse of the active block ``W_a = g I - J_a``; a passive row ``i`` is ``h gamma J_ia W_a^-1`` (its own diagonal
    entry ``h gamma`` is applied by :func:`_apply`). One matrix-vector product per stage then replaces
    the forward and back substitutions, whose chains of dependent operations made a 6x6 solve cost
    ~3 times a 6x6 product. Returns 0, or k + 1 if ``W_a`` is singular.
    """
    S = J.shape[0]
    # Gauss-Jordan elimination with partial pivoting on [W_a | I], in one loop nest (no calls: an LU
    # followed by na solves cost ~5 times more here, mostly call and loop overhead)
    for a in range(na):
        ia = perm[a]
        for c in range(na):
            LUc[a, c] = -J[ia, perm[c]]
            M[a, c] = 0.0
        LUc[a, a] += g
        M[a, a] = 1.0
    for kk in range(na):
        pk = kk
        big = abs(LUc[kk, kk])
        for i in range(kk + 1, na):
            v = abs(LUc[i, kk])
            if v > big:
                big = v
                pk = i
        if big == 0.0:
            return kk + 1
        if pk != kk:
            for j in range(na):
                tmp = LUc[kk, j]
                LUc[kk, j] = LUc[pk, j]
                LUc[pk, j] = tmp
                tmp = M[kk, j]
                M[kk, j] = M[pk, j]
                M[pk, j] = tmp
        inv = 1.0 / LUc[kk, kk]
        for j in range(na):
            LUc[kk, j] *= inv
            M[kk, j] *= inv
        for i in range(na):
            if i != kk:
                fac = LUc[i, kk]
                if fac != 0.0:
                    for j in range(na):
                        LUc[i, j] -= fac * LUc[kk, j]
                        M[i, j] -= fac * M[kk, j]
    hg = 1.0 / g
    for q in range(na, S):
        i = perm[q]
        for c in range(na):
            s = 0.0
            for a in range(na):
                s += J[i, perm[a]] * M[a, c]
            M[q, c] = hg * s
    return 0


@njit(cache=True, error_model="numpy")
def _apply(M, perm, na, hg, rc, r):
    """``r <- (I/(h gamma) - J)^-1 r`` with the matrix of :func:`_solve_matrix`."""
    S = r.shape[0]
    for c in range(na):
        rc[c] = r[perm[c]]
    for q in range(na):
        s = 0.0
        for c in range(na):
            s += M[q, c] * rc[c]
        r[perm[q]] = s
    for q in range(na, S):
        i = perm[q]
        s = hg * r[i]
        for c in range(na):
            s += M[q, c] * rc[c]
        r[i] = s


@njit(cache=True, error_model="numpy")
def _advance_rodas(t, target, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                   rtol, max_steps, max_step, nonlinear, wv, wm, perm, na, LUc, M, cw, piv, st, counters,
                   times, k, save, out):
    """Rodas5P steps from t to target (the last one lands on target).

    Outputs at times in (t, target) are written from the quintic Hermite
    dense output. ``perm``/``na``: the active states first (:func:`passive_order`); ``LUc``, ``M``,
    ``cw``, ``piv``: the workspace of :func:`rodas_workspace`. Returns (status, next output index).
    """
    S = y.shape[0]
    T = times.shape[0]
    J = wm[M_J]
    rc = cw[0]
    f = wv[V_F]
    U = wv[V_W1]
    r = wv[V_W2]
    scale = wv[V_SCALE]
    atolv = wv[V_ATOL]
    ynew = wv[V_YTMP]
    err = wv[V_ERR]
    fnew = wv[V_FNEW]
    UU = wv[V_U:V_U + 8]
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
                counters[3] += 1
                if _solve_matrix(J, perm, na, 1.0 / (h * _RG), LUc, piv, M, cw[1]) != 0:
                    h_abs *= 0.5
                    st[S_LUH] = -1.0
                    counters[1] += 1
                    rejected = True
                    continue
                st[S_LUH] = h
            inv_h = 1.0 / h
            hg = h * _RG
            for i in range(S):
                r[i] = f[i]
            _apply(M, perm, na, hg, rc, r)
            for i in range(S):
                UU[0, i] = r[i]
            for stg in range(1, 8):
                # U_i = y + sum_j a_ij u_j (rows 6 and 7 of the tableau add u_5, then u_6, to row 5)
                if stg <= 5:
                    for i in range(S):
                        s = y[i]
                        for j in range(stg):
                            s += _RA[stg, j] * UU[j, i]
                        U[i] = s
                else:
                    for i in range(S):
                        U[i] += UU[stg - 1, i]
                _rhs(U, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, r)
                for i in range(S):
                    s = r[i]
                    for j in range(stg):
                        s += (_RC[stg, j] * inv_h) * UU[j, i]
                    r[i] = s
                _apply(M, perm, na, hg, rc, r)
                for i in range(S):
                    UU[stg, i] = r[i]
            counters[2] += 7
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
        _rhs(ynew, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, fnew)
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
        st[S_HOLD] = h_next             # the controller's proposal after an accepted step (kept across doses)
        for i in range(S):
            if not math.isfinite(y[i]):
                return ST_NONFINITE, k
    return ST_SUCCESS, k


@njit(cache=True, error_model="numpy")
def rodas_workspace(A, mm_src):
    """The active-first order of the states and the LU workspace of :func:`_advance_rodas`."""
    S = A.shape[0]
    perm = np.empty(S, dtype=np.int64)
    na = passive_order(A, mm_src, perm)
    return perm, na, np.zeros((na, na)), np.zeros((S, na)), np.zeros((2, na)), np.empty(na, dtype=np.int64)


@njit(cache=True, error_model="numpy")
def restart_keep_h(t, target, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, nonlinear,
                   wv, wm, st, counters):
    """:func:`_restart` after a dose, keeping the step size the controller last proposed (at most
    ``KEEP_H_FACTOR`` times the starting-step estimate): a dose does not send the solver back to a
    small first step and a run of growing steps.
    """
    h_kept = st[S_HOLD]         # -1 before the first accepted step (then st[S_H] may be a clipped first guess)
    _restart(t, target, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, nonlinear,
             wv, wm, st, counters, 5)
    if h_kept > 0.0:
        st[S_H] = min(h_kept, KEEP_H_FACTOR * st[S_H])


@njit(cache=True, error_model="numpy")
def solve_rodas(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step, counters):
    """One subject with Rodas5P; see :func:`solve_subject`."""
    S = vol_col.shape[0]
    T = times.shape[0]
    A, L, V, y, b, nact = _setup(p, vol_col, lin_type, lin_src, lin_dst, lin_col, y0)
    wv, wm, st = _adaptive_workspace(S, A, V, atol, times)
    nonlinear = _any_active(p, mm_vmax)
    perm, na, LUc, M, cw, piv = rodas_workspace(A, mm_src)
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
            restart_keep_h(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, nonlinear,
                           wv, wm, st, counters)
        status, k = _advance_rodas(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                                   rtol, max_steps, max_step, nonlinear, wv, wm, perm, na, LUc, M, cw, piv, st, counters,
                                   times, k, save, out)
        if status != ST_SUCCESS:
            break
        t = t_end
    return _finish(status, k, out)
