"""An exponential Runge-Kutta solver for "mostly linear" models (solver ``"expint"``, issue 11).

Every pkcsf model is ``dy/dt = A y + b(t) + m(y)`` (:mod:`pkcsf.solvers.common`). This solver splits it as
``dy/dt = L y + b + N(y)``: ``L = A + m'(0)``, the linear transfers plus every Michaelis-Menten term
linearised at ``y = 0`` (a clearance ``vmax fu / (km V)``), propagated exactly by matrix exponentials and
phi-functions; ``N(y) = m(y) - m'(0) y``, small below Km and zero for a linear model. Each term of ``N``
moves mass from its source to its target: ``N(y) = sum_m rho_m(y_source) (e_target - e_source)``.

Method: the five-stage, stiff-order-4 exponential Runge-Kutta method of Hochbruck & Ostermann (2005, SIAM
J Numer Anal 43:1069-1090, eq. 5.8; Hochbruck & Ostermann, "Exponential integrators", Acta Numerica
19:209-286, 2010, Sec. 2.3), nodes ``c = (0, 1/2, 1/2, 1, 1/2)``, coefficients from ``phi_1..phi_3`` of
``hL`` and ``hL/2``. ``L`` and ``b`` are integrated exactly; ``N`` is integrated as the quadratic through
its stage values at ``0``, ``h/2`` (``U_5``) and ``h`` (``U_4``). A linear model is solved exactly.

Error estimate: the slope of ``rho`` at the step start is known exactly (``rho'(y) (L y + b + N(y))`` at
the source); the quadratic through ``rho`` and that slope at 0 and ``rho`` at ``h/2`` (an order-3 solution)
differs from the one above by ``c s (s - h/2) / h^2``, ``c = 2 (h rho'(0) + 3 rho_1 - 4 rho_5 + rho_4)``,
whose integral ``c h (2 phi_3 - phi_2 / 2)(hL) d`` is the estimate (``O(h^4)``, exponent 1/4). It follows
what a fixed linearisation gets wrong in P2: after a dose the fast modes of ``L`` (a small CSF compartment
with a fast efflux) make ``N`` vary on their own time scale, which no quadratic over a long step follows
(the third-order embedded estimate of the stages misses that error by 10x). That stage estimate
(``h b_5 (rho_5 - rho_3) d``, ``U_3`` for ``U_5``) is added with weight ``0.1 min(1, h |rho'| / 0.25)``:
when ``N`` is stiff (saturated elimination) the stage errors dominate and interpolation estimates do not
see them (P2 with Km and Vmax 100x smaller, C_csf up to 9 Km: errors 4e-5 whatever the rtol without it,
9-13x rtol with it from 1e-6 to 1e-9); at full weight everywhere it overstates the error of smooth
stretches of P2 10-40x. Steps are also limited to ``h |rho'| <= 1``. Norm, ``rtol``, ``atol`` (on
concentrations), statuses and ``counters`` as the other adaptive solvers (counters: steps, rejected steps,
stage evaluations of ``N`` (5 per attempted step), 0 LU factorisations, levels of matrix functions made).

Step sizes and cached matrix functions: steps never cross an output time or an event (both are stops);
inside an interval of length ``d`` between stops the steps are ``d / 2^j`` (level ``j``). Per distinct
``d`` (a regular grid has one) the solver keeps a *ladder*: ``exp(hL)``, ``phi_k(hL) (e_target -
e_source)`` (k = 1, 2, 3, each term) and, with infusions, ``phi_1(hL)``, for ``h = d / 2^j`` from the
finest level used up to ``d``. The finest level comes from a Taylor series (``||hL||_1 <= 1/2``, degree
14), the coarser ones from ``phi_k(2Z) = 2^-k (e^Z phi_k(Z) + sum_{j=1..k} phi_j(Z) / (k - j)!)``
(Skaflestad & Wright 2009, Appl Numer Math 59:783-799). A step of level ``j`` uses levels ``j`` and
``j + 1``; a finer level needed later extends the ladder. On P2 (hourly outputs, doses on them) a step
costs one product ``exp(hL) y``, a dot product per term and stage, six evaluations of ``rho`` or ``rho'``
and a few vector updates. The controller's proposal picks the coarsest level not longer (5% slack);
a coarser level is taken inside an interval only where the position is a multiple of its step; a
rejection moves at least one level finer; after a dose the proposal is at most the first step accepted
after the previous dose (doses repeat; the fast phase after one is not in the proposal from before it).

Saturated elimination (concentrations near or above Km): the linearisation at 0 overstates the
elimination and ``N``, cancelling most of it, is stiff; the steps shrink (20-45 per hour on the case
above at rtol 1e-7 to 1e-8): correct but slow. Rodas5P is the method for such models.
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.solvers._jit import njit
from pkcsf.solvers.kernels import (
    _EPS,
    BATCH,
    EV_BOLUS,
    METHOD_EXPINT,
    ST_MAX_STEPS,
    ST_NONFINITE,
    ST_STEP_TOO_SMALL,
    ST_SUCCESS,
    _emit,
    _emit_left,
    _emit_now,
    _events,
    _finish,
    _setup,
    _tiny_step,
    rhs,
)
from pkcsf.solvers.linalg import matmul, matvec, norm1

#: levels of a ladder (steps d / 2^j, j < MAX_LEVEL): below d / 2^40 a step is ST_STEP_TOO_SMALL
MAX_LEVEL = 40
#: ladders kept per subject (distinct lengths of the intervals between output times and events)
N_LADDERS = 3
#: degree of the Taylor series of the finest level, and the bound on ||h L||_1 there:
#: 0.5^15 / 16! = 1.5e-18 (the truncation of phi_1)
_TAYLOR_DEGREE = 14
_TAYLOR_NORM = 0.5
#: the controller: safety factor, bounds on the change of step; the exponent is 1/4 (the estimate is O(h^4))
_SAFE = 0.9
_FAC_MIN = 0.2
_FAC_MAX = 5.0
#: weight of the stage estimate (U_3 for U_5) in the error estimate,
_W_STAGE = 0.1
#: ... in full from h |rho'| = _STIFF_REF (N stiff for the step); in proportion below (in P2 h |rho'| <= 0.53)
_STIFF_REF = 0.25
#: the largest h |d rho / dy_source| of a step: N is treated explicitly (a safeguard: with the stage
#: estimate in the error, 0.5 and 1 give the same errors on the saturated test case; 0.5 costs P2 1% more steps)
_STIFF = 1.0
#: a step may be this much longer than the controller's proposal (a level just above it)
_SLACK = 1.05
#: below this estimate the step grows by the largest factor: (0.9 / 5)^4
_EN_SMALL = (_SAFE / _FAC_MAX) ** 4
_POW2 = 2.0 ** -np.arange(MAX_LEVEL + 1.0)


@njit(cache=True, error_model="numpy")
def _mm_terms(p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, L):
    """The active Michaelis-Menten terms (Vmax != 0) as a (5, n) table (source, target, vmax, km,
    fu / V_source) and their linearisation at 0 added to ``L`` (``vmax fu / (km V)`` from source to
    target); a term with km <= 0 is not linearised (its whole rate is in N).
    """
    n = 0
    for k in range(mm_src.shape[0]):
        if p[mm_vmax[k]] != 0.0:
            n += 1
    T = np.empty((5, n))
    q = 0
    for k in range(mm_src.shape[0]):
        vmax = p[mm_vmax[k]]
        if vmax == 0.0:
            continue
        s = mm_src[k]
        fu = p[mm_fu[k]] if mm_fu[k] >= 0 else 1.0
        km = p[mm_km[k]]
        T[0, q] = s
        T[1, q] = mm_dst[k]
        T[2, q] = vmax
        T[3, q] = km
        T[4, q] = fu / V[s]
        if km > 0.0:
            kap = vmax * fu / (km * V[s])
            L[s, s] -= kap
            L[mm_dst[k], s] += kap
        q += 1
    return T


@njit(cache=True, error_model="numpy")
def _rho(x, T, m):
    """The remainder of term ``m`` at source amount ``x``: its rate minus its linearisation at 0."""
    c = T[4, m] * x
    km = T[3, m]
    r = T[2, m] * c / (km + abs(c))
    if km > 0.0:
        r -= T[2, m] * c / km
    return r


@njit(cache=True, error_model="numpy")
def _drho(x, T, m):
    """D rho / d x of term ``m`` at source amount ``x``."""
    a = T[4, m]
    km = T[3, m]
    den = km + abs(a * x)
    r = T[2, m] * a * km / (den * den)
    if km > 0.0:
        r -= T[2, m] * a / km
    return r


@njit(cache=True, error_model="numpy")
def _taylor(L, h, T, full_phi1, E, P1, W, Z, M1, M2, v, w):
    """Level of step ``h`` (``||h L||_1 <= 1/2``) by Taylor series: ``E = exp(hL)``, ``P1 = phi_1(hL)``
    (when ``full_phi1``), ``W[k-1, m] = phi_k(hL) d_m`` (``d_m = e_target - e_source``).
    """
    S = L.shape[0]
    for i in range(S):
        for j in range(S):
            Z[i, j] = L[i, j] * h
    # phi_1(Z) = sum_i Z^i / (i + 1)!  (Horner), then E = I + Z phi_1(Z)
    fact = 1.0
    for i in range(2, _TAYLOR_DEGREE + 2):
        fact *= i
    for i in range(S):
        for j in range(S):
            M1[i, j] = 0.0
        M1[i, i] = 1.0 / fact
    for deg in range(_TAYLOR_DEGREE - 1, -1, -1):
        fact /= deg + 2
        matmul(Z, M1, M2)
        for i in range(S):
            for j in range(S):
                M1[i, j] = M2[i, j]
            M1[i, i] += 1.0 / fact
    matmul(Z, M1, E)
    for i in range(S):
        E[i, i] += 1.0
    if full_phi1:
        for i in range(S):
            for j in range(S):
                P1[i, j] = M1[i, j]
    # phi_3(Z) d = sum_i Z^i d / (i + 3)!, phi_2 d = d / 2 + Z phi_3 d, phi_1 d = d + Z phi_2 d
    for m in range(T.shape[1]):
        s = int(T[0, m])
        t = int(T[1, m])
        fact = 1.0
        for i in range(2, _TAYLOR_DEGREE + 4):
            fact *= i
        for i in range(S):
            v[i] = 0.0
        v[s] = -1.0 / fact
        v[t] += 1.0 / fact
        for deg in range(_TAYLOR_DEGREE - 1, -1, -1):
            fact /= deg + 4
            matvec(Z, v, w)
            for i in range(S):
                v[i] = w[i]
            v[s] -= 1.0 / fact
            v[t] += 1.0 / fact
        for i in range(S):
            W[2, m, i] = v[i]
        for k in (1, 0):
            matvec(Z, W[k + 1, m], w)
            c = 0.5 if k == 1 else 1.0
            for i in range(S):
                W[k, m, i] = w[i]
            W[k, m, s] -= c
            W[k, m, t] += c


@njit(cache=True, error_model="numpy")
def _double(E0, P0, W0, full_phi1, E, P1, W, w):
    """Level of step 2h from the level of step h (``E0``, ``P0``, ``W0``):
    ``phi_k(2Z) = 2^-k (e^Z phi_k(Z) + sum_{j=1..k} phi_j(Z) / (k - j)!)`` (Skaflestad & Wright 2009).
    """
    S = E0.shape[0]
    matmul(E0, E0, E)
    if full_phi1:
        matmul(E0, P0, P1)
        for i in range(S):
            for j in range(S):
                P1[i, j] = 0.5 * (P1[i, j] + P0[i, j])
    for m in range(W0.shape[1]):
        matvec(E0, W0[0, m], w)
        for i in range(S):
            W[0, m, i] = 0.5 * (w[i] + W0[0, m, i])
        matvec(E0, W0[1, m], w)
        for i in range(S):
            W[1, m, i] = 0.25 * (w[i] + W0[0, m, i] + W0[1, m, i])
        matvec(E0, W0[2, m], w)
        for i in range(S):
            W[2, m, i] = 0.125 * (w[i] + 0.5 * W0[0, m, i] + W0[1, m, i] + W0[2, m, i])


@njit(cache=True, error_model="numpy")
def _ensure_level(slot, j, d, L, T, full_phi1, LE, LP, LW, lo, nrm, wz, wv, counters):
    """Make levels ``j .. 0`` of ladder ``slot`` (interval length ``d``) available; ``lo[slot]`` is its
    finest level so far (-1: none).
    """
    have = lo[slot]
    if have >= j:
        return
    # the finest level by Taylor series, at least as fine as ||h L||_1 <= 1/2 needs
    jb = j
    if nrm * d > _TAYLOR_NORM:
        jb = max(j, int(math.ceil(math.log2(nrm * d / _TAYLOR_NORM))))
    jb = min(jb, MAX_LEVEL - 1)
    _taylor(L, d * _POW2[jb], T, full_phi1, LE[slot, jb], LP[slot, jb], LW[slot, jb], wz[0], wz[1], wz[2],
            wv[0], wv[1])
    counters[4] += 1
    stop = have + 1 if have >= 0 else 0      # levels up to have exist already
    for q in range(jb - 1, stop - 1, -1):
        _double(LE[slot, q + 1], LP[slot, q + 1], LW[slot, q + 1], full_phi1, LE[slot, q], LP[slot, q],
                LW[slot, q], wv[0])
        counters[4] += 1
    lo[slot] = jb


@njit(cache=True, error_model="numpy")
def _slot_for(d, D, lo, nxt):
    """The ladder of interval length ``d`` (matched to 1e-13 relative), or a fresh one (round robin)."""
    for c in range(D.shape[0]):
        if lo[c] >= 0 and abs(D[c] - d) <= 1e-13 * d:
            return c
    c = nxt[0]
    nxt[0] = (c + 1) % D.shape[0]
    D[c] = d
    lo[c] = -1
    return c


@njit(cache=True, error_model="numpy")
def _load_level(slot, j, d, LE, LP, LW, T, has_inf, cE, cEh, cP, cPh, cS, cB):
    """The step data of level ``j`` of ladder ``slot`` (step ``h = d / 2^j``), premultiplied by ``h``:
    ``cE = exp(hL)``; ``cEh`` the sources' rows of ``exp(hL/2)``; ``cP = h phi_1(hL)`` and ``cPh`` the
    sources' rows of ``h/2 phi_1(hL/2)`` (with infusions); ``cS[:, q, m]`` the stage coefficients of term
    ``q`` at the source of term ``m``; ``cB`` the output weights (b1, b4, b5, and -phi_2 of the estimate).
    """
    S = cE.shape[0]
    nm = T.shape[1]
    h = d * _POW2[j]
    E = LE[slot, j]
    Eh = LE[slot, j + 1]
    for i in range(S):
        for c in range(S):
            cE[i, c] = E[i, c]
    for m in range(nm):
        s = int(T[0, m])
        for c in range(S):
            cEh[m, c] = Eh[s, c]
    if has_inf:
        P = LP[slot, j]
        Ph = LP[slot, j + 1]
        for i in range(S):
            for c in range(S):
                cP[i, c] = h * P[i, c]
        for m in range(nm):
            s = int(T[0, m])
            for c in range(S):
                cPh[m, c] = 0.5 * h * Ph[s, c]
    Wf = LW[slot, j]
    Wh = LW[slot, j + 1]
    for q in range(nm):
        for m in range(nm):
            s = int(T[0, m])
            q1 = Wh[0, q, s]
            q2 = Wh[1, q, s]
            q3 = Wh[2, q, s]
            p1 = Wf[0, q, s]
            p2 = Wf[1, q, s]
            p3 = Wf[2, q, s]
            a52 = 0.5 * q2 - p3 + 0.25 * p2 - 0.5 * q3
            a54 = 0.25 * q2 - a52
            cS[0, q, m] = h * 0.5 * q1                # U2
            cS[1, q, m] = h * (0.5 * q1 - q2)         # U3
            cS[2, q, m] = h * q2
            cS[3, q, m] = h * (p1 - 2.0 * p2)         # U4
            cS[4, q, m] = h * p2
            cS[5, q, m] = h * (0.5 * q1 - 2.0 * a52 - a54)   # U5
            cS[6, q, m] = h * a52
            cS[7, q, m] = h * a54
        for i in range(S):
            p1 = Wf[0, q, i]
            p2 = Wf[1, q, i]
            p3 = Wf[2, q, i]
            cB[0, q, i] = h * (p1 - 3.0 * p2 + 4.0 * p3)
            cB[1, q, i] = h * (4.0 * p3 - p2)
            cB[2, q, i] = h * (4.0 * p2 - 8.0 * p3)
            # the Hermite quadratic (rho and its slope at 0, rho at h/2) minus the quadratic through the
            # nodes: -c s (s - h/2) / h^2, integrated: -c h (2 phi_3 - phi_2 / 2) (the sign is irrelevant)
            cB[3, q, i] = h * (2.0 * p3 - 0.5 * p2)


@njit(cache=True, error_model="numpy")
def _level_for(h, d, max_step):
    """The coarsest level whose step ``d / 2^j`` is at most ``h`` (with the slack) and ``max_step``."""
    j = 0
    while j < MAX_LEVEL and (d * _POW2[j] > _SLACK * h or d * _POW2[j] > max_step):
        j += 1
    return j


@njit(cache=True, error_model="numpy")
def _advance_expint(t, target, y, b, Lt, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, L, T, nrm, has_inf,
                    rtol, atolv, max_steps, max_step, tres, xs, cur, D, lo, nxt, LE, LP, LW, wz, wv, R, Us,
                    Ls, Ds, src, cE, cEh, cP, cPh, cS, cB, counters, times, k, save, out):
    """Steps from ``t`` to ``target`` (an event time or the last output time), landing on every output
    time in between (written to ``out``). ``xs``: (proposed step, accepted steps, first step after the last event, 1 until then); ``cur``: (ladder, level)
    loaded in ``cE``... (:func:`_load_level`). Returns (status, k).
    """
    S = y.shape[0]
    NT = times.shape[0]
    nm = T.shape[1]
    ynew = wv[2]
    yl = wv[3]
    err = wv[4]
    inputs = False
    for i in range(S):
        if b[i] != 0.0:
            inputs = True
    one = np.int64(1) << MAX_LEVEL          # an interval in units of the finest level
    while t < target:
        s_t = times[k] if (k < NT and times[k] < target) else target
        d = s_t - t
        min_step = 10.0 * _EPS * abs(t)      # at least 10 ulps of t (no call to nextafter per interval)
        if d < max(min_step, tres):
            # an interval of a few ulps: one Euler step is exact to rounding (as _advance_rodas)
            rhs(y, Lt, b, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, err)
            counters[2] += 1
            _tiny_step(d, y, err)
        else:
            slot = cur[0]
            if slot < 0 or abs(D[slot] - d) > 1e-13 * d:
                slot = _slot_for(d, D, lo, nxt)
                cur[1] = -1
            cur[0] = slot
            d = D[slot]
            j = _level_for(xs[0], d, max_step)
            pos = np.int64(0)
            while pos < one:
                if xs[1] >= max_steps:
                    return ST_MAX_STEPS, k
                h = d * _POW2[j]
                if j >= MAX_LEVEL - 1 or h < min_step:
                    return ST_STEP_TOO_SMALL, k
                if cur[1] != j:
                    _ensure_level(slot, j + 1, d, L, T, has_inf, LE, LP, LW, lo, nrm, wz, wv, counters)
                    _load_level(slot, j, d, LE, LP, LW, T, has_inf, cE, cEh, cP, cPh, cS, cB)
                    cur[1] = j
                # the linear part at t + h (full) and at t + h/2 (the sources' rows only)
                matvec(cE, y, yl)
                if inputs:
                    for i in range(S):
                        acc = 0.0
                        for c in range(S):
                            acc += cP[i, c] * b[c]
                        yl[i] += acc
                for m in range(nm):
                    acc = 0.0
                    for c in range(S):
                        acc += cEh[m, c] * y[c]
                    if inputs:
                        for c in range(S):
                            acc += cPh[m, c] * b[c]
                    Us[0, m] = acc               # at t + h/2, source of term m
                    Us[1, m] = yl[src[m]]        # at t + h
                # the five stages: R[stage, term] = rho of the term at the stage
                for m in range(nm):
                    R[0, m] = _rho(y[src[m]], T, m)
                stiff = 0.0
                for m in range(nm):
                    # h d rho / dt at t along the solution: rho'(y_s) (L y + b + N(y))_s
                    s = src[m]
                    acc = b[s]
                    for c in range(S):
                        acc += Ls[m, c] * y[c]
                    for q in range(nm):
                        acc += Ds[q, m] * R[0, q]
                    dr = h * _drho(y[s], T, m)
                    R[5, m] = dr * acc
                    stiff = max(stiff, abs(dr))
                if stiff > _STIFF:
                    # h |N'| too large for the explicit treatment of N (saturated elimination): a shorter
                    # step (a limit on the step, as max_step, not a rejection)
                    xs[0] = min(xs[0], _SAFE * _STIFF * h / stiff)
                    j = max(j + 1, _level_for(xs[0], d, max_step))
                    continue
                for m in range(nm):
                    u = Us[0, m]
                    for q in range(nm):
                        u += cS[0, q, m] * R[0, q]
                    R[1, m] = _rho(u, T, m)
                for m in range(nm):
                    u = Us[0, m]
                    for q in range(nm):
                        u += cS[1, q, m] * R[0, q] + cS[2, q, m] * R[1, q]
                    R[2, m] = _rho(u, T, m)
                for m in range(nm):
                    u = Us[1, m]
                    for q in range(nm):
                        u += cS[3, q, m] * R[0, q] + cS[4, q, m] * (R[1, q] + R[2, q])
                    R[3, m] = _rho(u, T, m)
                for m in range(nm):
                    u = Us[0, m]
                    for q in range(nm):
                        u += cS[5, q, m] * R[0, q] + cS[6, q, m] * (R[1, q] + R[2, q]) + cS[7, q, m] * R[3, q]
                    R[4, m] = _rho(u, T, m)
                # y_new = linear part + h (b1 G1 + b4 G4 + b5 G5): the quadratic through rho at 0, h/2 (G5)
                # and h (G4); the estimate: the cubic term that also matches the slope of rho at 0
                en = 0.0
                tot = 0.0
                if nm > 0:
                    counters[2] += 5
                    wst = _W_STAGE * min(1.0, stiff / _STIFF_REF)
                    for q in range(nm):
                        R[6, q] = 2.0 * (R[5, q] + 3.0 * R[0, q] - 4.0 * R[4, q] + R[3, q])
                        R[7, q] = wst * (R[4, q] - R[2, q])
                    tot = 0.0
                    for i in range(S):
                        yn = yl[i]
                        e_ = 0.0
                        for q in range(nm):
                            b5 = cB[2, q, i]
                            yn += cB[0, q, i] * R[0, q] + cB[1, q, i] * R[3, q] + b5 * R[4, q]
                            e_ += R[6, q] * cB[3, q, i] + R[7, q] * b5
                        ynew[i] = yn
                        tot += yn
                        v = e_ / (atolv[i] + rtol * max(abs(y[i]), abs(yn)))
                        en += v * v
                    en = math.sqrt(en / S)
                    if not math.isfinite(en):
                        counters[1] += 1
                        j += 2
                        continue
                    if en > 1.0:
                        counters[1] += 1
                        fac = max(_FAC_MIN, _SAFE / math.sqrt(math.sqrt(en)))
                        j = max(j + 1, _level_for(h * fac, d, max_step))
                        xs[0] = h * fac
                        continue
                    for i in range(S):
                        y[i] = ynew[i]
                else:
                    for i in range(S):
                        y[i] = yl[i]
                # accepted
                xs[1] += 1.0
                if xs[3] > 0.0:
                    xs[2] = h           # the first step accepted after an event
                    xs[3] = 0.0
                counters[0] += 1
                if nm == 0 or not math.isfinite(tot):
                    for i in range(S):
                        if not math.isfinite(y[i]):
                            return ST_NONFINITE, k
                pos += one >> j
                if en <= _EN_SMALL:
                    fac = _FAC_MAX
                else:
                    fac = min(_FAC_MAX, max(_FAC_MIN, _SAFE / math.sqrt(math.sqrt(en))))
                if j == 0 and xs[0] > h:
                    xs[0] = max(xs[0], h * fac)     # the step was the whole interval: keep the longer proposal
                else:
                    xs[0] = h * fac
                if pos < one:
                    jn = _level_for(xs[0], d, max_step)
                    # coarser only where the position is a multiple of the coarser step
                    while jn < j and pos % (one >> jn) != 0:
                        jn += 1
                    j = jn
        t = s_t
        while k < NT and times[k] <= t and times[k] < target:
            _emit(y, save, out, k)
            k += 1
    return ST_SUCCESS, k


@njit(cache=True, error_model="numpy")
def solve_expint(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                 ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step, counters):
    """One subject with the exponential Runge-Kutta method; see :func:`pkcsf.solvers.kernels.solve_subject`
    (same arguments, statuses and counters).
    """
    S = vol_col.shape[0]
    NT = times.shape[0]
    A, Lt, V, y, b, nact = _setup(p, vol_col, lin_type, lin_src, lin_dst, lin_col, y0)
    L = A            # A is not used again: L = A + the linearised Michaelis-Menten terms
    T = _mm_terms(p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, L)
    nm = T.shape[1]
    nrm = norm1(L)
    has_inf = False
    for e in range(n_ev):
        if ev_k[e] != EV_BOLUS:
            has_inf = True
    atolv = np.empty(S)
    for i in range(S):
        atolv[i] = atol * V[i]
    tres = 8.0 * _EPS * abs(times[NT - 1])
    # ladders: levels of exp(hL), phi_1(hL) (with infusions) and phi_k(hL) d_m
    LE = np.empty((N_LADDERS, MAX_LEVEL, S, S))
    SP = S if has_inf else 0
    LP = np.empty((N_LADDERS, MAX_LEVEL, SP, SP))
    LW = np.empty((N_LADDERS, MAX_LEVEL, 3, nm, S))
    D = np.zeros(N_LADDERS)
    lo = np.full(N_LADDERS, -1, dtype=np.int64)
    nxt = np.zeros(1, dtype=np.int64)
    wz = np.empty((3, S, S))
    wv = np.empty((7, S))
    R = np.empty((8, nm))
    Ls = np.empty((nm, S))       # the sources' rows of L
    src = np.empty(nm, dtype=np.int64)
    Ds = np.zeros((nm, nm))      # Ds[q, m]: component of term q's direction at the source of term m
    for m in range(nm):
        s = int(T[0, m])
        src[m] = s
        for c in range(S):
            Ls[m, c] = L[s, c]
        for q in range(nm):
            if int(T[1, q]) == s:
                Ds[q, m] += 1.0
            if int(T[0, q]) == s:
                Ds[q, m] -= 1.0
    Us = np.empty((2, nm))
    cE = np.empty((S, S))
    cEh = np.empty((nm, S))
    cP = np.empty((SP, SP))
    cPh = np.empty((nm, SP))
    cS = np.empty((8, nm, nm))
    cB = np.empty((4, nm, S))
    cur = np.full(2, -1, dtype=np.int64)
    xs = np.empty(4)
    xs[0] = np.inf      # proposed step: the first step of an interval tries the whole interval
    xs[1] = 0.0
    xs[2] = np.inf      # the first step accepted after the last event
    xs[3] = 0.0         # 1 until a step is accepted after an event
    t = 0.0
    k = 0
    e = 0
    status = ST_SUCCESS
    while True:
        k = _emit_left(y, save, out, times, k, t)
        e0 = e
        e = _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact)
        if e > e0:
            # a dose starts with the step that the previous one started with (a fast phase the
            # controller's proposal from before the dose does not know about)
            xs[0] = min(xs[0], _SLACK * xs[2])
            xs[3] = 1.0
        k = _emit_now(y, save, out, times, k, t)
        if k >= NT:
            break
        te = ev_t[e] if e < n_ev else np.inf
        t_end = te if te < times[NT - 1] else times[NT - 1]
        status, k = _advance_expint(t, t_end, y, b, Lt, p, V, mm_src, mm_dst, mm_vmax, mm_km, mm_fu, L, T, nrm,
                                    has_inf, rtol, atolv, max_steps, max_step, tres, xs, cur, D, lo, nxt, LE, LP,
                                    LW, wz, wv, R, Us, Ls, Ds, src, cE, cEh, cP, cPh, cS, cB, counters, times, k, save,
                                    out)
        if status != ST_SUCCESS:
            break
        t = t_end
    return _finish(status, k, out)


@njit(nogil=True, cache=True, error_model="numpy")
def batch_expint(i0, i1, P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                 ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step,
                 counters):
    """Subjects ``i0 <= i < i1`` (rows of ``P``) with :func:`solve_expint`; see
    :func:`pkcsf.solvers.kernels.solve_batch` (which runs ranges of subjects on threads).
    """
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in range(i0, i1):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_expint(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax,
                                 mm_km, mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[iy],
                                 save, out[i], rtol, atol, max_steps, max_step, counters[i])


BATCH[METHOD_EXPINT] = batch_expint    # kernels.solve_batch dispatches on it
