"""Radau IIA (order 5): an alternative implicit method, kept as a cross-check of Rodas5P.

The 3-stage Radau IIA method with embedded error control, adapted from SciPy's ``Radau``
(BSD-3-Clause; Hairer & Wanner, Solving ODEs II, Sec. IV.8), with the analytic Jacobian of the model,
per-state absolute tolerances and steps that land exactly on every output and event time. L-stable,
so stiffness (minutes to weeks in the CSF models) costs accuracy control, not stability.
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.solvers._jit import njit
from pkcsf.solvers.adaptive import (
    _EPS,
    M_J,
    M_LU,
    S_ERROLD,
    S_H,
    S_HAVESOL,
    S_HOLD,
    S_HPREV,
    S_JACCUR,
    S_LUH,
    S_RESTART,
    S_STEPS,
    S_TOLD,
    S_TRES,
    V_ATOL,
    V_DW,
    V_ERR,
    V_F,
    V_FR,
    V_FS,
    V_Q,
    V_SCALE,
    V_W1,
    V_W2,
    V_WW,
    V_YOLD,
    V_Z,
    V_Z0,
    V_ZE,
    _adaptive_workspace,
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
    jacobian,
    rhs,
)
from pkcsf.solvers.linalg import lu_factor, lu_solve

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

