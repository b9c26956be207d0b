"""Explicit Dormand–Prince 5(4) with automatic switching to Rodas5P (solver ``"dopri5"``).

Most pkcsf models are non-stiff or only mildly stiff over most of a run: an explicit step
costs six right-hand-side evaluations and no linear algebra, about a quarter of a Rodas5P step
(eight stages, one LU factorisation, eight triangular solves). This solver takes explicit steps
while that is cheaper, and hands the subject to Rodas5P (:func:`pkcsf.solvers.kernels._advance_rodas`)
when the problem turns stiff, as LSODA or OrdinaryDiffEq's ``AutoTsit5(Rodas5P())`` do.

* **Method**: the Dormand–Prince pair of order 5(4) (Dormand & Prince 1980, J Comput Appl Math
  6:19-26; coefficients as SciPy's ``RK45`` and Hairer's DOPRI5), first same as last (six new
  stages per step), local extrapolation (the order-5 solution is propagated), error estimated by
  the difference with the embedded order-4 solution, RMS norm with per-state absolute tolerances
  (``atol`` on concentrations, as the other adaptive solvers).
* **Dense output**: Shampine's (1986) free quartic interpolant (SciPy's ``RK45`` matrix ``P``):
  outputs between steps cost no extra evaluation and the steps do not land on output times.
* **Step control**: the PI controller of Hairer's DOPRI5 (Hairer, Nørsett & Wanner 1993, Solving
  ODEs I, Sec. II.4 and IV.2: exponent 0.17 on the error, 0.04 on the previous one, factors 0.2 to
  10, safety 0.9).
* **Doses**: a bolus or an infusion switch makes the solution (or its derivative) jump, so the
  step stops exactly at the event time and the stage data (f of first-same-as-last) is
  recomputed after it; the step size and the controller's error history are kept (the solver
  does not start again from a tiny step after every dose). Outputs that are not event times are
  not stops: they come from the dense output.
* **Stiffness**: Hairer's test (``h * |lambda|`` estimated for free from the last two stages,
  Solving ODEs II, Sec. IV.2) flags a step whose size is set by the stability boundary of the
  explicit method (3.3 on the negative real axis) rather than by accuracy; after 15 such steps in
  a row the rest of the dosing interval is solved with Rodas5P. At the next event the solver
  goes back to explicit steps if Rodas5P's step ``h`` times a bound on the spectral radius of the
  Jacobian (Gershgorin, on the states that feed back: accumulators and the eliminated amount are
  left out) is below ``SWITCH_BACK`` (an explicit step there costs less than a Rodas5P step even
  though it is smaller).

Statuses, counters, event handling, outputs (right-continuous, pre-dose duplicates) are those of
the other adaptive solvers (:mod:`pkcsf.solvers.kernels`); the LU factorisations counted
(``nlu``) are Rodas5P's, so ``nlu > 0`` shows that a subject was handed over.

Accuracy: at a given ``rtol``/``atol`` the explicit steps are less accurate than Rodas5P's on
problems where they run at the stability boundary (P2 at rtol 1e-6: max relative error 2.6e-3
against 1.1e-4; Rodas5P's error estimate controls its order-4 solution and reports the order-5
one, so it over-delivers), which is why ``auto`` does not choose this solver. At equal accuracy it
is the faster of the two on P2 (``benchmarks/bench_adaptive.py``).
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.solvers._jit import njit
from pkcsf.solvers.kernels import (
    BATCH,
    M_J,
    METHOD_DOPRI5,
    S_H,
    S_RESTART,
    S_STEPS,
    S_TRES,
    ST_MAX_STEPS,
    ST_NONFINITE,
    ST_STEP_TOO_SMALL,
    ST_SUCCESS,
    V_ATOL,
    _adaptive_workspace,
    _advance_rodas,
    _any_active,
    _emit,
    _emit_left,
    _emit_now,
    _events,
    _finish,
    _initial_step,
    _restart,
    _setup,
    rhs,
)
from pkcsf.solvers.rodas import active_states, rodas_workspace

# kernels.rhs, inlined into the stages at Numba-IR level (the same Python function, not a copy): a call
# passes eleven arrays, about a tenth of an explicit step on the reference problem P2
_rhs = njit(inline="always", error_model="numpy", cache=False)(rhs.py_func)

# Dormand-Prince 5(4) (SciPy's RK45 tableau)
_A21 = 1.0 / 5.0
_A31, _A32 = 3.0 / 40.0, 9.0 / 40.0
_A41, _A42, _A43 = 44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0
_A51, _A52, _A53, _A54 = 19372.0 / 6561.0, -25360.0 / 2187.0, 64448.0 / 6561.0, -212.0 / 729.0
_A61, _A62, _A63, _A64, _A65 = 9017.0 / 3168.0, -355.0 / 33.0, 46732.0 / 5247.0, 49.0 / 176.0, -5103.0 / 18656.0
_B1, _B3, _B4, _B5, _B6 = 35.0 / 384.0, 500.0 / 1113.0, 125.0 / 192.0, -2187.0 / 6784.0, 11.0 / 84.0
# error = h * sum E_i k_i (order-5 minus order-4 solution)
_E1, _E3, _E4, _E5, _E6, _E7 = (-71.0 / 57600.0, 71.0 / 16695.0, -71.0 / 1920.0, 17253.0 / 339200.0,
                                -22.0 / 525.0, 1.0 / 40.0)
# Shampine's dense output: y(t + theta h) = y + h sum_i k_i sum_j P[i, j] theta^(j+1)
_P = np.array([
    [1.0, -8048581381.0 / 2820520608.0, 8663915743.0 / 2820520608.0, -12715105075.0 / 11282082432.0],
    [0.0, 0.0, 0.0, 0.0],
    [0.0, 131558114200.0 / 32700410799.0, -68118460800.0 / 10900136933.0, 87487479700.0 / 32700410799.0],
    [0.0, -1754552775.0 / 470086768.0, 14199869525.0 / 1410260304.0, -10690763975.0 / 1880347072.0],
    [0.0, 127303824393.0 / 49829197408.0, -318862633887.0 / 49829197408.0, 701980252875.0 / 199316789632.0],
    [0.0, -282668133.0 / 205662961.0, 2019193451.0 / 616988883.0, -1453857185.0 / 822651844.0],
    [0.0, 40617522.0 / 29380423.0, -110615467.0 / 29380423.0, 69997945.0 / 29380423.0]])

# PI step-size control (Hairer's DOPRI5)
_BETA = 0.04
_EXPO1 = 0.2 - _BETA * 0.75
_SAFE = 0.9
_FAC_MIN = 0.2      # smallest factor on the step
_FAC_MAX = 10.0     # largest factor
_LOG_ERRMIN = math.log(1e-4)   # the controller's floor on the previous error

#: stability boundary of DOPRI5 on the negative real axis (Hairer & Wanner: 3.3; DOPRI5 tests 3.25)
STAB = 3.25
#: consecutive steps at the stability boundary that make the problem stiff (DOPRI5: 15)
N_STIFF = 15
#: go back to explicit steps when Rodas5P's h * rho (Gershgorin bound) is below this: an explicit
#: step there would be at most SWITCH_BACK / STAB times smaller than Rodas5P's, and costs ~4x less
SWITCH_BACK = 2.0 * STAB

#: internal status of :func:`_advance_dp5`: stiffness detected, hand over to Rodas5P
_STIFF = -1

# scalar state of the explicit solver (array ``xs``)
X_H = 0          # proposed step (-1: none yet)
X_FACOLD = 1     # log of the previous error norm of the PI controller
X_IASTI = 2      # consecutive steps at the stability boundary
X_NONSTI = 3     # consecutive steps away from it
NX = 4


@njit(cache=True, error_model="numpy")
def _advance_dp5(t, target, y, b, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, atolv, n_states, max_steps, max_step, K, ys, ynew, xs, st, counters, times, k, save, out, detect):
    """Dormand–Prince steps from t to target (the last one lands on target).

    ``n_states``: the model's states (the error norm; the vectors may be longer).
    ``K[0]`` holds f(t, y) on entry (first same as last) and f at the new state on return.
    Outputs in (t, target) come from the dense output. ``detect``: test for stiffness.
    Returns (status, next output index, t): ``_STIFF`` with t < target after an accepted step
    when the problem turned stiff.
    """
    S = y.shape[0]
    T = times.shape[0]
    k1 = K[0]
    k2 = K[1]
    k3 = K[2]
    k4 = K[3]
    k5 = K[4]
    k6 = K[5]
    k7 = K[6]
    wd = np.empty(7)
    wsc = np.empty(S)     # 1 / error scale of the last step
    while t < target:
        if st[S_STEPS] >= max_steps:
            return ST_MAX_STEPS, k, t
        min_step = 10.0 * abs(np.nextafter(t, np.inf) - t)
        if target - t < max(min_step, st[S_TRES]):
            # a few ulps: one Euler step is exact to rounding (as _advance_rodas)
            for i in range(S):
                y[i] += (target - t) * k1[i]
            while k < T and times[k] < target:
                _emit(y, save, out, k)
                k += 1
            return ST_SUCCESS, k, target
        h_abs = min(xs[X_H], max_step)
        rejected = False
        clipped = False
        err = 0.0
        h = 0.0
        t_new = 0.0
        while True:
            if h_abs < min_step:
                return ST_STEP_TOO_SMALL, k, t
            t_new = t + h_abs
            clipped = False
            if t_new + 0.01 * h_abs >= target:
                t_new = target
                clipped = True
            h = t_new - t
            for i in range(S):
                ys[i] = y[i] + h * _A21 * k1[i]
            _rhs(ys, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, k2)
            for i in range(S):
                ys[i] = y[i] + h * (_A31 * k1[i] + _A32 * k2[i])
            _rhs(ys, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, k3)
            for i in range(S):
                ys[i] = y[i] + h * (_A41 * k1[i] + _A42 * k2[i] + _A43 * k3[i])
            _rhs(ys, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, k4)
            for i in range(S):
                ys[i] = y[i] + h * (_A51 * k1[i] + _A52 * k2[i] + _A53 * k3[i] + _A54 * k4[i])
            _rhs(ys, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, k5)
            for i in range(S):
                ys[i] = y[i] + h * (_A61 * k1[i] + _A62 * k2[i] + _A63 * k3[i] + _A64 * k4[i] + _A65 * k5[i])
            _rhs(ys, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, k6)
            for i in range(S):
                ynew[i] = y[i] + h * (_B1 * k1[i] + _B3 * k3[i] + _B4 * k4[i] + _B5 * k5[i] + _B6 * k6[i])
            _rhs(ynew, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, k7)
            counters[2] += 6
            s = 0.0
            for i in range(S):
                e = h * (_E1 * k1[i] + _E3 * k3[i] + _E4 * k4[i] + _E5 * k5[i] + _E6 * k6[i] + _E7 * k7[i])
                w = 1.0 / (atolv[i] + max(abs(y[i]), abs(ynew[i])) * rtol)
                wsc[i] = w
                s += (e * w) * (e * w)
            err = math.sqrt(s / n_states)
            if not math.isfinite(err):
                h_abs *= 0.25
                counters[1] += 1
                rejected = True
                continue
            if err > 1.0:
                h_abs *= max(_FAC_MIN, _SAFE * err ** -_EXPO1)
                counters[1] += 1
                rejected = True
                continue
            break
        # ---- accepted
        st[S_STEPS] += 1.0
        counters[0] += 1
        if k < T and times[k] < target and times[k] < t_new:
            # Shampine's quartic dense output through the stages of this step
            while k < T and times[k] < target and times[k] < t_new:
                th = (times[k] - t) / h
                th2 = th * th
                th3 = th2 * th
                th4 = th3 * th
                for r in range(7):
                    wd[r] = h * (_P[r, 0] * th + _P[r, 1] * th2 + _P[r, 2] * th3 + _P[r, 3] * th4)
                for j in range(save.shape[0]):
                    i = save[j]
                    out[k, j] = (y[i] + wd[0] * k1[i] + wd[2] * k3[i] + wd[3] * k4[i] + wd[4] * k5[i]
                                 + wd[5] * k6[i] + wd[6] * k7[i])
                k += 1
        if k < T and times[k] == t_new and t_new < target:
            _emit(ynew, save, out, k)
            k += 1
        stiff_now = False
        if detect:
            # h |lambda| ~ h |k7 - k6| / |ynew - ys| (ys: the argument of k6, same time t + h;
            # Hairer & Wanner II, Sec. IV.2)
            num = 0.0
            den = 0.0
            # (in units of the error scale: unscaled, the largest amounts hide a stiff small compartment)
            for i in range(S):
                w = wsc[i]
                d = (k7[i] - k6[i]) * w
                num += d * d
                d = (ynew[i] - ys[i]) * w
                den += d * d
            if den > 0.0 and h * h * num > STAB * STAB * den:
                xs[X_NONSTI] = 0.0
                xs[X_IASTI] += 1.0
                if xs[X_IASTI] >= N_STIFF:
                    stiff_now = True
            else:
                xs[X_NONSTI] += 1.0
                if xs[X_NONSTI] >= 6.0:
                    xs[X_IASTI] = 0.0
        for i in range(S):
            y[i] = ynew[i]
            k1[i] = k7[i]
        t = t_new
        # PI controller (DOPRI5): err^-0.17 * errold^0.04
        # (one logarithm and one exponential; xs[X_FACOLD] holds log(max(err_old, 1e-4)))
        lerr = math.log(max(err, 1e-300))
        fac = math.exp(_EXPO1 * lerr - _BETA * xs[X_FACOLD]) if err > 0.0 else 0.0
        fac = max(1.0 / _FAC_MAX, min(1.0 / _FAC_MIN, fac / _SAFE))
        h_next = h / fac
        if rejected:
            h_next = min(h_next, h)
        xs[X_FACOLD] = max(lerr, _LOG_ERRMIN)
        if clipped and not rejected:
            # cut to land on an event: keep the step the controller allowed before the cut
            h_next = max(h_next, xs[X_H])
        xs[X_H] = h_next
        for i in range(S):
            if not math.isfinite(y[i]):
                return ST_NONFINITE, k, t
        if stiff_now and t < target:
            xs[X_IASTI] = 0.0
            return _STIFF, k, t
    return ST_SUCCESS, k, t


@njit(cache=True, error_model="numpy")
def _rho_bound(J, active):
    """A bound on the spectral radius of ``J`` over the states that feed back (``active``):
    the smaller of the Gershgorin row and column bounds of that block (states with a zero
    column, such as accumulators, add eigenvalues 0 and do not change the others).
    """
    S = J.shape[0]
    rows = 0.0
    cols = 0.0
    for i in range(S):
        if not active[i]:
            continue
        r = 0.0
        c = 0.0
        for j in range(S):
            if active[j]:
                r += abs(J[i, j])
                c += abs(J[j, i])
        rows = max(rows, r)
        cols = max(cols, c)
    return min(rows, cols)


@njit(cache=True, error_model="numpy")
def solve_dopri5(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                 ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step, counters):
    """One subject with Dormand–Prince 5(4) and automatic switching to Rodas5P; see
    :func:`pkcsf.solvers.kernels.solve_subject` (same arguments, statuses and counters).
    """
    S = vol_col.shape[0]
    T = times.shape[0]
    A, L, V, y, b, nact = _setup(p, vol_col, lin_type, lin_src, lin_dst, lin_col, y0)
    wv, wm, st = _adaptive_workspace(S, A, V, atol, times)
    nonlinear = _any_active(p, mm_vmax)
    perm, na, LUc, M, cw, piv = rodas_workspace(A, mm_src)
    K = np.zeros((7, S))
    ys = np.zeros(S)
    ynew = np.zeros(S)
    atolv = wv[V_ATOL]                # atol * volume per state, filled by _adaptive_workspace
    xs = np.zeros(NX)
    xs[X_H] = -1.0
    xs[X_FACOLD] = _LOG_ERRMIN
    active = active_states(A, mm_src)      # states that feed back into the dynamics
    stiff = False
    fvalid = False
    t = 0.0
    k = 0
    e = 0
    status = ST_SUCCESS
    while True:
        k = _emit_left(y, save, out, times, k, t)
        e0 = e
        e = _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact)
        if e > e0:
            fvalid = False
            st[S_RESTART] = 1.0
            if stiff and _rho_bound(wm[M_J], active) * st[S_H] < SWITCH_BACK:
                stiff = False
                xs[X_H] = st[S_H]
        k = _emit_now(y, save, out, times, k, t)
        if k >= T:
            break
        te = ev_t[e] if e < n_ev else np.inf
        t_end = te if te < times[T - 1] else times[T - 1]
        if not stiff:
            if not fvalid:
                rhs(y, L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, K[0])
                counters[2] += 1
                fvalid = True
                if xs[X_H] <= 0.0:
                    xs[X_H] = _initial_step(y, K[0], L, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol,
                                            atolv, t_end - t, ys, ynew, 5)
                    counters[2] += 1
            status, k, t = _advance_dp5(t, t_end, y, b, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol,
                                        atolv, S, max_steps, max_step, K, ys, ynew, xs, st,
                                        counters, times, k, save, out, True)
            if status == _STIFF:
                stiff = True
                fvalid = False
                st[S_RESTART] = 1.0
                status = ST_SUCCESS
        if stiff:
            if st[S_RESTART] > 0.0:
                _restart(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, rtol, nonlinear,
                         wv, wm, st, counters, 5)
            status, k = _advance_rodas(t, t_end, y, b, A, L, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                                       rtol, max_steps, max_step, nonlinear, wv, wm, perm, na, LUc, M, cw, piv, st,
                                       counters,
                                       times, k, save, out)
        if status != ST_SUCCESS:
            break
        t = t_end
    return _finish(status, k, out)


@njit(nogil=True, cache=True, error_model="numpy")
def batch_dopri5(i0, i1, P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                 ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step,
                 counters):
    """Subjects ``i0 <= i < i1`` (rows of ``P``) with :func:`solve_dopri5`; see
    :func:`pkcsf.solvers.kernels.solve_batch` (which runs ranges of subjects on threads).
    """
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in range(i0, i1):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_dopri5(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax,
                                 mm_km, mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[iy],
                                 save, out[i], rtol, atol, max_steps, max_step, counters[i])


BATCH[METHOD_DOPRI5] = batch_dopri5    # kernels.solve_batch dispatches on it
