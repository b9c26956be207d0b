"""The exact solver: matrix-exponential propagation of linear models between events.

``y(t+dt) = E y(t) + Phi b`` with ``E = exp(A dt)`` and ``Phi = int_0^dt exp(A s) ds`` from one
matrix exponential (Van Loan's block form when an infusion runs); the few distinct step lengths are
cached per subject. Exact to rounding: the fast path for linear models and the test oracle.
"""
from __future__ import annotations

import math

import numba
import numpy as np
from numba.core.compiler_lock import global_compiler_lock

from pkcsf.solvers._jit import njit
from pkcsf.solvers.common import (
    EV_BOLUS,
    ST_NONFINITE,
    ST_SUCCESS,
    _any_positive,
    _emit,
    _emit_left,
    _emit_now,
    _events,
    _finish,
    active_first,
    build_matrix,
)
from pkcsf.solvers.exact_expm import expm_passive_z
from pkcsf.solvers.linalg import expm, expm_phi

M_LU = 1
M_AD = 2
NM = 3


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
def _cached_slot(dt, active, c_dt, c_hasF):
    """The slot :func:`_exact_slot` returns without computing anything (the first holding dt, with Phi if an
    infusion runs), or -1 when it would compute. A small function LLVM inlines: the call of ``_exact_slot``
    with its ten arguments cost ~0.3 us per dosing interval (issue 11).
    """
    for c in range(c_dt.shape[0]):
        if c_dt[c] > 0.0 and abs(c_dt[c] - dt) <= 1e-13 * dt:
            return c if (not active or c_hasF[c]) else -1
    return -1


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


def _slp_vectorized(disp):
    """Compile the Numba function ``disp`` with LLVM's SLP vectoriser on (Numba turns it off by default:
    ``NUMBA_SLP_VECTORIZE=0``), for this function alone; returns ``disp``.

    The vectoriser packs the same scalar operations of several lanes into vector instructions, in the same
    order with the same rounding (no reassociation without fast-math), so the results are bitwise those of
    the scalar code. The setting is read when the function's own module is optimised; a caller inlines the
    vectorised code (issue 11: :func:`_exact_run8`, ~10 -> ~7 ns per output step). Only here: with the flag
    on for every kernel (``NUMBA_SLP_VECTORIZE=1``) the exact solver's first compile took 41 instead of ~25
    CPU s; the round that added this took it from 22-23 to 24-25 CPU s in all.
    """
    compile_ = disp.compile

    def compile(sig):
        with global_compiler_lock:          # re-entrant; no other compilation reads the setting meanwhile
            old = numba.config.SLP_VECTORIZE
            numba.config.SLP_VECTORIZE = 1
            try:
                return compile_(sig)
            finally:
                numba.config.SLP_VECTORIZE = old

    disp.compile = compile
    return disp


@_slp_vectorized
@njit(cache=True, error_model="numpy")
def _exact_run8(ET, y, ytmp, times, k, t, t_end, dt, save, out):
    """The exact solver's hot loop: outputs dt apart before t_end, no infusion running.

    y <- E y for models of up to 8 states, with ``ET`` (8, 8) the transposed,
    zero-padded exponential, and the saved states written to ``out[k]``, for
    as long as the output spacing stays ``dt``. Returns (k, t).

    The step is a chain (each output needs the previous one), so its latency
    is what counts: each new state is the balanced tree of its eight products
    (depth 3 instead of 8 dependent additions), written out for the eight rows
    so that the new state stays in registers from one output to the next
    (issue 11: a loop over the rows stored it to ``ytmp`` and read it back,
    ~1.5 ns more per output; the operations, and so the results, are the same).
    Compiled with the SLP vectoriser (:func:`_slp_vectorized`), which turns the
    eight rows into vector operations; the new state is also written to ``ytmp``
    (one vector store, off the chain), from which the saved values are copied
    (a plain copy when ``save`` is 0, 1, ..., S - 1, the default: ~0.5 ns per
    output less than storing the eight values one by one from the registers).
    """
    S = y.shape[0]
    T = times.shape[0]
    ns = save.shape[0]
    ident = ns == S
    for j in range(ns):
        if save[j] != j:
            ident = False
    for i in range(8):
        ytmp[i] = y[i] if i < S else 0.0
    y0, y1, y2, y3 = ytmp[0], ytmp[1], ytmp[2], ytmp[3]
    y4, y5, y6, y7 = ytmp[4], ytmp[5], ytmp[6], ytmp[7]
    while k < T and times[k] < t_end and times[k] - t == dt:
        n0 = (((ET[0, 0] * y0 + ET[1, 0] * y1) + (ET[2, 0] * y2 + ET[3, 0] * y3))
              + ((ET[4, 0] * y4 + ET[5, 0] * y5) + (ET[6, 0] * y6 + ET[7, 0] * y7)))
        n1 = (((ET[0, 1] * y0 + ET[1, 1] * y1) + (ET[2, 1] * y2 + ET[3, 1] * y3))
              + ((ET[4, 1] * y4 + ET[5, 1] * y5) + (ET[6, 1] * y6 + ET[7, 1] * y7)))
        n2 = (((ET[0, 2] * y0 + ET[1, 2] * y1) + (ET[2, 2] * y2 + ET[3, 2] * y3))
              + ((ET[4, 2] * y4 + ET[5, 2] * y5) + (ET[6, 2] * y6 + ET[7, 2] * y7)))
        n3 = (((ET[0, 3] * y0 + ET[1, 3] * y1) + (ET[2, 3] * y2 + ET[3, 3] * y3))
              + ((ET[4, 3] * y4 + ET[5, 3] * y5) + (ET[6, 3] * y6 + ET[7, 3] * y7)))
        n4 = (((ET[0, 4] * y0 + ET[1, 4] * y1) + (ET[2, 4] * y2 + ET[3, 4] * y3))
              + ((ET[4, 4] * y4 + ET[5, 4] * y5) + (ET[6, 4] * y6 + ET[7, 4] * y7)))
        n5 = (((ET[0, 5] * y0 + ET[1, 5] * y1) + (ET[2, 5] * y2 + ET[3, 5] * y3))
              + ((ET[4, 5] * y4 + ET[5, 5] * y5) + (ET[6, 5] * y6 + ET[7, 5] * y7)))
        n6 = (((ET[0, 6] * y0 + ET[1, 6] * y1) + (ET[2, 6] * y2 + ET[3, 6] * y3))
              + ((ET[4, 6] * y4 + ET[5, 6] * y5) + (ET[6, 6] * y6 + ET[7, 6] * y7)))
        n7 = (((ET[0, 7] * y0 + ET[1, 7] * y1) + (ET[2, 7] * y2 + ET[3, 7] * y3))
              + ((ET[4, 7] * y4 + ET[5, 7] * y5) + (ET[6, 7] * y6 + ET[7, 7] * y7)))
        ytmp[0], ytmp[1], ytmp[2], ytmp[3] = n0, n1, n2, n3
        ytmp[4], ytmp[5], ytmp[6], ytmp[7] = n4, n5, n6, n7
        y0, y1, y2, y3, y4, y5, y6, y7 = n0, n1, n2, n3, n4, n5, n6, n7
        if ident:
            for j in range(ns):
                out[k, j] = ytmp[j]
        else:
            for j in range(ns):
                out[k, j] = ytmp[save[j]]
        t = times[k]
        k += 1
    ytmp[0], ytmp[1], ytmp[2], ytmp[3] = y0, y1, y2, y3
    ytmp[4], ytmp[5], ytmp[6], ytmp[7] = y4, y5, y6, y7
    for i in range(S):
        y[i] = ytmp[i]
    return k, t


@njit(cache=True, error_model="numpy")
def _step8_seq(ET, y, ytmp):
    """``y <- E y`` for up to 8 states, the same sums as :func:`_propagate` without an infusion (each new
    state summed over the columns in order, from 0.0), over the rows and columns padded to 8.

    The padding adds ``0.0 * 0.0 = +0.0`` to each sum, which leaves it unchanged: a running sum that starts
    at +0.0 is never -0.0 (x + -x is +0.0 when rounding to nearest), and NaN and inf stay what they are. The
    literal trip counts keep the sums in (vector) registers: the step onto each dose time, ~70 -> ~15 ns
    (issue 11).
    """
    S = y.shape[0]
    for i in range(8):
        ytmp[i] = 0.0
    for j in range(8):
        yj = y[j] if j < S else 0.0
        for i in range(8):
            ytmp[i] += ET[j, i] * yj
    for i in range(S):
        y[i] = ytmp[i]


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



# ------------------------------------------------ models of more than 8 states: passive states apart
# A state that is the source of no transfer (an AUC accumulator, an eliminated amount) is *passive*:
# its column of A is zero. Ordered active states first, A = [[B, 0], [C, 0]], and
# exp(A dt) = [[exp(B dt), 0], [C Phi_B(dt), I]]: the exponential needs only its first na columns
# (:func:`pkcsf.solvers.exact_expm.expm_passive_z`) and a step is y_a <- E11 y_a, y_q <- y_q + X21 y_a, where
# only the active part is a chain from one output to the next.
@njit(cache=True, error_model="numpy")
def _passive_order(S, lin_src):
    """States in the order active (the source of some transfer) then passive; returns (order, na)."""
    src = np.zeros(S, dtype=np.bool_)
    for k in range(lin_src.shape[0]):
        src[lin_src[k]] = True
    order = np.empty(S, dtype=np.int64)
    na = active_first(src, order)
    return order, na


@njit(cache=True, error_model="numpy")
def _has_infusion(ev_k, n_ev):
    for e in range(n_ev):
        if ev_k[e] != EV_BOLUS:
            return True
    return False


LV = 10      # levels exp(A dt / 2^k), k <= LV, kept for refine_peaks' bisection (s <= LV: ||A dt|| <= ~5,500)


@njit(cache=True, error_model="numpy")
def split_workspace(S, na, NC):
    """Work arrays of :func:`solve_exact_split` for a model of S states with na active ones and a
    cache of NC exponentials, as one tuple: allocated once, reusable across subjects (the fused
    read-outs keep one per block of subjects).
    """
    nq = S - na
    NA8 = 8 * ((na + 7) // 8)
    NQ8 = 8 * ((nq + 7) // 8)
    NZ = NA8 + NQ8
    W = np.zeros((9, NZ, NA8))               # expm_passive_z's work matrices, stepping layout
    M = np.empty((S, na))
    X = np.empty((S, na))
    LUw = np.empty((na, na))
    piv = np.empty(na, dtype=np.int64)
    col = np.empty(na)
    c_dt = np.full(NC, -1.0)
    c_E = np.zeros((NC, NA8, NZ))
    z = np.zeros(NZ)
    ztmp = np.zeros(NZ)
    c_sub = np.zeros((NC, S, na))            # exp(A dt / 2^s) of each slot (for refine_peaks)
    c_s = np.zeros(NC, dtype=np.int64)       # its s
    Ms = np.empty((S, na))                   # the subject's active columns of A, split order
    pos = np.empty(S, dtype=np.int64)        # place of each state in z
    # its active block, transposed ([slot, 0]); [slot, k]: exp(A dt / 2^k); rows padded with zeros to NA8
    # (for _matvecT)
    c_subT = np.zeros((NC, LV + 1, na, NA8))
    MT = np.zeros((na, NA8))                 # the active block of Ms, transposed, padded likewise
    sa = np.zeros(NA8)                       # running sum of the active state (lazy passive states)
    vp = np.zeros(NA8)                       # _matvecT's result in refine_peaks
    return W, M, X, LUw, piv, col, c_dt, c_E, z, ztmp, c_sub, c_s, Ms, pos, c_subT, MT, sa, vp


@njit(cache=True, error_model="numpy")
def _split_slot(dt, M, A, order, na, ws, c_next, counters):
    """Cache slot of exp(A dt) in the split form: ``c_E[slot, j, i]`` = entry (i, j) of the
    exponential's first na columns, rows at their place in ``z`` (active 0..na-1, passive from NA8).
    """
    W, Mw, X, LUw, piv, col, c_dt, c_E, z, ztmp, c_sub, c_s, Ms, pos, c_subT, MT, sa, vp = ws
    NC = c_dt.shape[0]
    for c in range(NC):
        if c_dt[c] > 0.0 and abs(c_dt[c] - dt) <= 1e-13 * dt:
            return c
    slot = c_next[0]
    c_next[0] = (c_next[0] + 1) % NC
    c_dt[slot] = dt
    S = M.shape[0]
    for i in range(S):
        for j in range(na):
            Mw[i, j] = M[i, j] * dt
    c_s[slot] = expm_passive_z(Mw, na, W, LUw, piv, c_sub[slot], c_subT[slot])
    for i in range(na):
        for j in range(na):
            c_subT[slot, 0, j, i] = c_sub[slot, i, j]
    E = c_E[slot]
    Xz = W[8]                           # already at the places of z
    for j in range(na):
        for i in range(Xz.shape[0]):
            E[j, i] = Xz[i, j]
    counters[4] += 1
    return slot


@njit(cache=True, error_model="numpy")
def _split_step(ET, z, ztmp, NA8):
    """One step ``z <- E z`` in the split form: z = (active states padded to NA8, passive states)."""
    NZ = z.shape[0]
    for i in range(NA8):
        ztmp[i] = 0.0
    for i in range(NA8, NZ):
        ztmp[i] = z[i]
    for jb in range(0, NA8, 8):
        y0, y1, y2, y3 = z[jb], z[jb + 1], z[jb + 2], z[jb + 3]
        y4, y5, y6, y7 = z[jb + 4], z[jb + 5], z[jb + 6], z[jb + 7]
        for i in range(NZ):
            ztmp[i] += (((ET[jb, i] * y0 + ET[jb + 1, i] * y1) + (ET[jb + 2, i] * y2 + ET[jb + 3, i] * y3))
                        + ((ET[jb + 4, i] * y4 + ET[jb + 5, i] * y5) + (ET[jb + 6, i] * y6 + ET[jb + 7, i] * y7)))
    for i in range(NZ):
        z[i] = ztmp[i]


@njit(cache=True, error_model="numpy")
def _split_run(ET, z, ztmp, NA8, times, k, t, t_end, dt, savep, out):
    """Outputs dt apart before t_end in the split form (the hot loop); returns (k, t)."""
    T = times.shape[0]
    ns = savep.shape[0]
    while k < T and times[k] < t_end and times[k] - t == dt:
        _split_step(ET, z, ztmp, NA8)
        for j in range(ns):
            out[k, j] = z[savep[j]]
        t = times[k]
        k += 1
    return k, t


@njit(cache=True, error_model="numpy")
def _flush(ET, z, sa, NA8):
    """Passive states += X21 (sum of the active states since the last flush); the sum restarts."""
    NZ = z.shape[0]
    for j in range(NA8):
        sj = sa[j]
        sa[j] = 0.0
        for i in range(NA8, NZ):
            z[i] += ET[j, i] * sj


def _make_split_run_lazy(NB):
    """:func:`_split_run_lazy` compiled for active states padded to NB (0: any, read from ``ET``).

    With the row length a literal, LLVM unrolls the product's rows into a few vector operations and
    keeps the new state in registers across the column blocks (issue 11, fourth round: the step of the
    CNS model's 24 padded active states); the operations, and so the results, are those of NB = 0.
    """

    @njit(cache=True, error_model="numpy")
    def run(ET, z, ztmp, sa, NA8, times, k, t, t_end, dt, savep, out, flush, fi, wa, wp, ident):
        n8 = NB if NB > 0 else NA8
        T = times.shape[0]
        ns = savep.shape[0]
        nwa = wa.shape[0]
        nf = flush.shape[0]
        while fi < nf and flush[fi] < k:
            fi += 1
        while k < T and times[k] < t_end and times[k] - t == dt:
            for i in range(n8):
                ztmp[i] = 0.0
                sa[i] += z[i]
            for jb in range(0, n8, 8):
                y0, y1, y2, y3 = z[jb], z[jb + 1], z[jb + 2], z[jb + 3]
                y4, y5, y6, y7 = z[jb + 4], z[jb + 5], z[jb + 6], z[jb + 7]
                for i in range(n8):
                    ztmp[i] += (((ET[jb, i] * y0 + ET[jb + 1, i] * y1) + (ET[jb + 2, i] * y2 + ET[jb + 3, i] * y3))
                                + ((ET[jb + 4, i] * y4 + ET[jb + 5, i] * y5) + (ET[jb + 6, i] * y6
                                                                                + ET[jb + 7, i] * y7)))
            for i in range(n8):
                z[i] = ztmp[i]
            if fi < nf and flush[fi] == k:
                _flush(ET, z, sa, n8)
                fi += 1
                for j in range(ns):
                    out[k, j] = z[savep[j]]
            elif ident:                 # wa = wp = 0, 1, ...: one contiguous copy
                for jj in range(nwa):
                    out[k, jj] = z[jj]
            else:
                for jj in range(nwa):
                    out[k, wa[jj]] = z[wp[jj]]
            t = times[k]
            k += 1
        _flush(ET, z, sa, n8)
        return k, t, fi

    return run


# Issue 11 (fourth round): the lazy output loop for any padded size, and compiled for 24 (the CNS models have
# 22 active states; a literal trip count roughly halves a step's cost). Each unrolled copy costs compile
# time: copies for 16, 24 and 32 made a cold first run of the methotrexate scenario ~61-64 CPU s against
# ~48-56 s; with the 24 copies alone (here and exact_expm._mm24) it was 51-52 s, inside that noise.
_split_run_lazy = _make_split_run_lazy(0)
_split_run_lazy24 = _make_split_run_lazy(24)
_split_run_lazy.__doc__ = """:func:`_split_run` that updates the passive states only at the outputs listed in ``flush`` and
    when the run ends: with equal steps, y_q(k) = y_q(0) + X21 sum_{i<k} y_a(i), so a step costs the
    active block alone. Only the saved columns ``wa`` (the active states, at ``wp`` in ``z``) are
    written at every output; every saved column at the ``flush`` outputs (elsewhere the passive
    columns of ``out`` are left unwritten: issue 11, fewer writes per output). ``ident``: ``wa`` and ``wp``
    are both 0, 1, ... (the active states come first in the model and all are saved in order, as in the
    fused read-outs). Returns (k, t, fi).
    """


@njit(cache=True, error_model="numpy")
def _finish_lazy(k, out, flush):
    """:func:`pkcsf.solvers.common._finish` for a lazy run (:func:`_split_run_lazy`), same status, from
    the ``flush`` outputs and the last one alone: a non-finite state (NaN, +-inf) makes every state
    non-finite at the next step (nan * 0 and inf * 0 are NaN) and the passive states accumulate the
    active ones, so a non-finite value at any output is still there at the last output.
    """
    T, ns = out.shape
    for f in range(flush.shape[0] + 1):
        kk = flush[f] if f < flush.shape[0] else T - 1
        for j in range(ns):
            if not math.isfinite(out[kk, j]):
                return _finish(ST_NONFINITE, k, out)
    return ST_SUCCESS


@njit(cache=True, error_model="numpy")
def split_matrix(p, vol_col, lin_type, lin_src, lin_dst, lin_col, order, na, ws):
    """The rate matrix of parameter row ``p`` (returned) and its active columns in the split order, into the
    workspace's ``M`` and its active block transposed into ``MT`` (:func:`split_workspace`).
    """
    S = vol_col.shape[0]
    M = ws[12]
    MT = ws[15]
    A = np.empty((S, S))
    build_matrix(p, vol_col, lin_type, lin_src, lin_dst, lin_col, A)
    for i in range(S):              # the active columns of A, in the split order
        for j in range(na):
            M[i, j] = A[order[i], order[j]]
    for i in range(na):
        for j in range(na):
            MT[j, i] = M[i, j]
    return A


@njit(cache=True, error_model="numpy")
def split_places(order, na, ws, save):
    """Each state's place in the split state vector ``z`` (into the workspace's ``pos``: active states 0..na-1,
    passive ones from the padded NA8) and the places of the saved states (returned).
    """
    pos = ws[13]
    NA8 = ws[7].shape[1]
    for i in range(order.shape[0]):
        pos[order[i]] = i if i < na else NA8 + i - na
    savep = np.empty(save.shape[0], dtype=np.int64)
    for j in range(save.shape[0]):
        savep[j] = pos[save[j]]
    return savep


@njit(cache=True, error_model="numpy")
def solve_exact_split(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times, y0,
                      save, out, counters, order, na, ws, flush):
    """:func:`solve_exact` for bolus doses only, passive states apart (see :func:`_passive_order`),
    with the work arrays ``ws`` of :func:`split_workspace` (reused across subjects). ``flush``
    (sorted output indices, the last output among them) not empty: the passive states in ``out`` are
    written only at those outputs (and at events and changes of step length; elsewhere their columns
    keep whatever ``out`` held); the fused read-outs need the AUC accumulators at three outputs only.
    """
    S = vol_col.shape[0]
    T = times.shape[0]
    W, Mw, X, LUw, piv, col, c_dt, c_E, z, ztmp, c_sub, c_s, M, pos, c_subT, MT, sa, vp = ws
    NA8 = c_E.shape[1]
    A = split_matrix(p, vol_col, lin_type, lin_src, lin_dst, lin_col, order, na, ws)
    savep = split_places(order, na, ws, save)
    nwa = 0
    for j in range(save.shape[0]):
        if savep[j] < NA8:
            nwa += 1
    wa = np.empty(nwa, dtype=np.int64)      # the saved columns that are active states
    nwa = 0
    for j in range(save.shape[0]):
        if savep[j] < NA8:
            wa[nwa] = j
            nwa += 1
    wp = savep[wa]
    ident = True
    for jj in range(nwa):
        if wa[jj] != jj or wp[jj] != jj:
            ident = False
    for c in range(c_dt.shape[0]):
        c_dt[c] = -1.0
    c_next = np.zeros(1, dtype=np.int64)
    y = y0.copy()
    b = np.zeros(S)
    nact = np.zeros(S, dtype=np.int64)
    z[:] = 0.0
    t = 0.0
    k = 0
    e = 0
    last_dt = -1.0
    ET = c_E[0]
    lazy = flush.shape[0] > 0
    fi = 0
    for i in range(sa.shape[0]):
        sa[i] = 0.0
    while True:
        k = _emit_left(y, save, out, times, k, t)
        e = _events(t, e, n_ev, ev_t, ev_s, ev_a, ev_k, y, b, nact)
        k = _emit_now(y, save, out, times, k, t)
        if k >= T:
            break
        te = ev_t[e] if e < n_ev else np.inf
        t_end = te if te < times[T - 1] else times[T - 1]
        for s_ in range(S):
            z[pos[s_]] = y[s_]
        while k < T and times[k] < t_end:
            dt = times[k] - t
            if dt != last_dt:
                ET = c_E[_split_slot(dt, M, A, order, na, ws, c_next, counters)]
                last_dt = dt
            if lazy and NA8 == 24:
                k, t, fi = _split_run_lazy24(ET, z, ztmp, sa, NA8, times, k, t, t_end, dt, savep, out, flush, fi, wa,
                                             wp, ident)
            elif lazy:
                k, t, fi = _split_run_lazy(ET, z, ztmp, sa, NA8, times, k, t, t_end, dt, savep, out, flush, fi, wa, wp,
                                           ident)
            else:
                k, t = _split_run(ET, z, ztmp, NA8, times, k, t, t_end, dt, savep, out)
        if t_end > t:
            _split_step(c_E[_split_slot(t_end - t, M, A, order, na, ws, c_next, counters)], z, ztmp, NA8)
            last_dt = -1.0
        for s_ in range(S):
            y[s_] = z[pos[s_]]
        t = t_end
    if lazy:
        return _finish_lazy(k, out, flush)
    return _finish(ST_SUCCESS, k, out)


@njit(cache=True, error_model="numpy")
def _finish_exact(k, times, out):
    """:func:`pkcsf.solvers.common._finish` for :func:`solve_exact` (every output reached), same status, from
    the outputs at the last output time alone (issue 11: scanning all T x n_save outputs was ~3 of a P1
    subject's ~19 us).

    A non-finite state (NaN, +-inf) makes every state non-finite at the next propagation: each new
    state sums the products of a column with every state (nan * x and inf * 0 are NaN, inf * x is
    +-inf), and events only add to states. An output time is followed by at least one propagation
    before any later output time, so a non-finite value at any output is still there at the last
    output time (which the outputs listed twice there share).
    """
    T, ns = out.shape
    if T == 0:
        return _finish(ST_SUCCESS, k, out)
    last = times[T - 1]
    kk = T - 1
    while kk >= 0 and times[kk] == last:
        for j in range(ns):
            if not math.isfinite(out[kk, j]):
                return _finish(ST_NONFINITE, k, out)
        kk -= 1
    return ST_SUCCESS


@njit(cache=True, error_model="numpy")
def solve_exact(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times, y0,
                save, out, counters):
    """One subject with the exact (matrix-exponential) solver; see :func:`solve_subject`.

    Models of more than 8 states dosed by boluses only take :func:`solve_exact_split`.
    """
    S = vol_col.shape[0]
    if S > 8 and not _has_infusion(ev_k, n_ev):
        order, na = _passive_order(S, lin_src)
        if na > 0:
            return solve_exact_split(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev,
                                     times, y0, save, out, counters, order, na, split_workspace(S, na, 8),
                                     np.empty(0, dtype=np.int64))
    T = times.shape[0]
    # the rate matrix, state and infusion rates (common._setup without the transfer list and volumes, which
    # the exact method does not use: two allocations fewer per subject)
    A = np.empty((S, S))
    build_matrix(p, vol_col, lin_type, lin_src, lin_dst, lin_col, A)
    y = y0.copy()
    b = np.zeros(S)
    nact = np.zeros(S, dtype=np.int64)
    wm = np.zeros((NM, S, S))
    NC = 8
    c_dt = np.full(NC, -1.0)
    SP = 8 * ((S + 7) // 8)          # padded row length of the cached exponentials (see _propagate)
    c_E = np.zeros((NC, SP, SP))      # rows and columns beyond S stay zero
    # Phi of each slot only with infusions (bolus doses never read it: ~0.1 us per subject, issue 11)
    has_inf = _has_infusion(ev_k, n_ev)
    c_F = np.zeros((NC if has_inf else 1, SP, SP))
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
                slot = _cached_slot(dt, active, c_dt, c_hasF)
                if slot < 0:
                    slot = _exact_slot(dt, active, A, wm, c_dt, c_E, c_F, c_hasF, c_next, counters)
                ET = c_E[slot]          # views made once per step length, not per output
                FT = c_F[slot if has_inf else 0]
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
            slot = _cached_slot(t_end - t, active, c_dt, c_hasF)
            if slot < 0:
                slot = _exact_slot(t_end - t, active, A, wm, c_dt, c_E, c_F, c_hasF, c_next, counters)
            if SP == 8 and not active:
                _step8_seq(c_E[slot], y, ytmp)
            else:
                _propagate(c_E[slot], c_F[slot if has_inf else 0], active, b, y, ytmp)
        t = t_end
    return _finish_exact(k, times, out)



# inlined at Numba-IR level into its caller (the fused read-outs): as a function of its own it would be one
# more compilation of the whole exact solver below it (Numba optimises a caller together with everything
# it calls), ~3.5 CPU s of a first run for a two-line dispatch
@njit(inline="always", cache=True, error_model="numpy")
def solve_exact_ws(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times, y0,
                   save, out, counters, order, na, ws, flush):
    """:func:`solve_exact` with the split solver's work arrays made by the caller (:func:`exact_workspace`),
    reused across the subjects of a block (the fused read-outs). Takes :func:`solve_exact_split` for
    bolus doses whatever the number of states (so that :func:`refine_peaks` can follow); returns
    (status, split) with split True when it did.
    """
    if na > 0 and not _has_infusion(ev_k, n_ev):
        return solve_exact_split(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev,
                                 times, y0, save, out, counters, order, na, ws, flush), True
    return solve_exact(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times, y0,
                       save, out, counters), False


@njit(cache=True, error_model="numpy")
def exact_workspace(S, lin_src):
    """(order, na, work arrays) for :func:`solve_exact_ws`: one per thread or block of subjects."""
    order, na = _passive_order(S, lin_src)
    return order, na, split_workspace(S, max(na, 1), 8)


# ------------------------------------------------------------------ Cmax between outputs
@njit(cache=True, error_model="numpy")
def _matvecT(MT, x, out):
    """``out = M x`` from ``MT`` = M transposed (n, NP), its rows padded with zeros to NP >= n (a multiple
    of 8): column updates, which vectorise without reassociating a sum; ``out`` (>= NP).

    Each ``out[i]`` is the sum over j = 0, 1, ..., n - 1 in that order (as a plain loop over the columns),
    but taken eight columns at a time: ``out`` is read and written once per eight columns instead of once
    per column (issue 11, fourth round: 22 active states, ~110 -> ~70 ns).
    """
    n = MT.shape[0]
    NP = MT.shape[1]
    for i in range(NP):
        out[i] = 0.0
    nb = n - n % 8
    for jb in range(0, nb, 8):
        y0, y1, y2, y3 = x[jb], x[jb + 1], x[jb + 2], x[jb + 3]
        y4, y5, y6, y7 = x[jb + 4], x[jb + 5], x[jb + 6], x[jb + 7]
        for i in range(NP):
            out[i] = (((((((out[i] + MT[jb, i] * y0) + MT[jb + 1, i] * y1) + MT[jb + 2, i] * y2) + MT[jb + 3, i] * y3)
                        + MT[jb + 4, i] * y4) + MT[jb + 5, i] * y5) + MT[jb + 6, i] * y6) + MT[jb + 7, i] * y7
    for j in range(nb, n):
        xj = x[j]
        for i in range(NP):
            out[i] += MT[j, i] * xj


@njit(cache=True, error_model="numpy")
def _refine_at(times, full, c_grid, m, j0, wg, ev_t, n_ev, order, na, MT, c_dt, c_subT, c_s, u, ub, v, vn, coef,
               samp, rc, ag, Ms):
    """The exact maximum of a group's concentration (weights ``wg`` on the active states, split order)
    next to output m (see :func:`refine_peaks`).

    Returns (code, value, time): code 1 refined, 0 the maximum is at the output itself, -1 not
    refinable (the grid value is returned).
    """
    T = times.shape[0]
    for i in range(na):
        u[i] = full[m, order[i]]
    _matvecT(MT, u, vn)
    d = 0.0                             # exact derivative of the group concentration at output m
    for i in range(na):
        d += wg[i] * vn[i]
    if d > 0.0 and m + 1 < T and times[m + 1] > times[m]:
        j = m
    elif d < 0.0 and m - 1 >= j0 and times[m - 1] < times[m]:
        j = m - 1
    else:
        return 0, c_grid, times[m]      # the maximum is at the output (a dose, the window's end)
    h = times[j + 1] - times[j]
    for e in range(n_ev):
        if times[j] < ev_t[e] < times[j + 1]:
            return -1, c_grid, times[m]
    slot = -1
    for c in range(c_dt.shape[0]):
        if c_dt[c] > 0.0 and abs(c_dt[c] - h) <= 1e-13 * h:
            slot = c
    if slot < 0:
        return -1, c_grid, times[m]
    E0T = c_subT[slot, 0]
    ns_ = c_s[slot]
    nsub = 1 << ns_
    delta = h / nsub
    # bisection on the sign of the exact derivative (A^T w) . y when it falls from + at output j to - at
    # j + 1: y <- exp(A h / 2^k) y for k = 1..s (the squarings' intermediate exponentials) brackets the
    # peak in one of the 2^s sub-steps with s products instead of 2^s
    bis = False
    ib = 0
    best = 0.0
    lo = 0.0
    hi = 0.0
    if 1 <= ns_ <= c_subT.shape[1] - 1:
        for jj in range(na):            # ag = B^T w, row by row of B (vectorised; the same sums)
            ag[jj] = 0.0
        for i in range(na):
            wi = wg[i]
            for jj in range(na):
                ag[jj] += Ms[i, jj] * wi
        d0 = 0.0
        d1 = 0.0
        for i in range(na):
            d0 += ag[i] * full[j, order[i]]
            d1 += ag[i] * full[j + 1, order[i]]
        if d0 > 0.0 and d1 < 0.0:
            bis = True
            for i in range(na):
                u[i] = full[j, order[i]]
            ib = 0
            for k in range(1, ns_ + 1):
                _matvecT(c_subT[slot, k], u, vn)
                dk_ = 0.0
                for i in range(na):
                    dk_ += ag[i] * vn[i]
                if dk_ > 0.0:
                    for i in range(na):
                        u[i] = vn[i]
                    ib += 1 << (ns_ - k)
            best = 0.0
            for i in range(na):
                ub[i] = u[i]
                best += wg[i] * u[i]
            lo = 0.0
            hi = delta
    # otherwise samples: u <- exp(A delta) u from output j; kept in ``samp`` for the next group that looks
    # at the same interval (the CSF groups peak in the same hour after a dose)
    keep = nsub < samp.shape[0]
    if bis:
        pass
    elif keep and rc[0] == j and rc[1] == nsub:
        best = 0.0
        for i in range(na):
            best += wg[i] * samp[0, i]
        ib = 0
        for q in range(1, nsub + 1):
            cq = 0.0
            for i in range(na):
                cq += wg[i] * samp[q, i]
            if cq > best:
                best = cq
                ib = q
        for i in range(na):
            ub[i] = samp[ib, i]
    else:
        best = 0.0
        for i in range(na):
            u[i] = full[j, order[i]]
            ub[i] = u[i]
            best += wg[i] * u[i]
            if keep:
                samp[0, i] = u[i]
        ib = 0
        for q in range(1, nsub + 1):
            _matvecT(E0T, u, vn)
            cq = 0.0
            for i in range(na):
                u[i] = vn[i]
                cq += wg[i] * vn[i]
            if keep:
                for i in range(na):
                    samp[q, i] = u[i]
            if cq > best:
                best = cq
                ib = q
                for i in range(na):
                    ub[i] = u[i]
        rc[0] = j if keep else -1.0
        rc[1] = nsub
    # Taylor coefficients of c(t_j + ib delta + sigma), |sigma| <= delta: a_k = w . A^k ub / k!
    if not bis:
        lo = -delta if ib > 0 else 0.0
        hi = delta if ib < nsub else 0.0
    nrm0 = 0.0
    for i in range(na):
        v[i] = ub[i]
        nrm0 += abs(ub[i])
    coef[0] = best
    K = 0
    dk = 1.0
    for k in range(1, coef.shape[0]):
        _matvecT(MT, v, vn)
        inv_k = 1.0 / k
        nv = 0.0
        ak = 0.0
        for i in range(na):
            v[i] = vn[i] * inv_k
            nv += abs(v[i])
            ak += wg[i] * v[i]
        coef[k] = ak
        K = k
        dk *= delta
        # the remainder of the series is below rounding for this group's value (two terms in a row)
        # and, for safety, small against the whole state
        if (k >= 4 and abs(ak) * dk <= 1e-17 * abs(coef[0]) and abs(coef[k - 1]) * dk / delta <= 1e-17 * abs(coef[0])
                and nv * dk <= 1e-14 * nrm0):
            break
    # Newton on p'(sigma) = 0 from the vertex of the quadratic part
    sg = 0.0
    if coef[2] < 0.0:
        sg = min(hi, max(lo, -coef[1] / (2.0 * coef[2])))
    for _ in range(30):
        d1 = 0.0
        d2 = 0.0
        for k in range(K, 0, -1):
            d1 = d1 * sg + k * coef[k]
        for k in range(K, 1, -1):
            d2 = d2 * sg + k * (k - 1) * coef[k]
        if not (d2 < 0.0):
            break
        sg_new = min(hi, max(lo, sg - d1 / d2))
        done = abs(sg_new - sg) <= 1e-15 * h
        sg = sg_new
        if done:
            break
    pv = 0.0
    for k in range(K, -1, -1):
        pv = pv * sg + coef[k]
    tb = times[j] + ib * delta
    if pv > best and math.isfinite(pv):
        best = pv
        tb = times[j] + ib * delta + sg
    if best < c_grid:                   # (bisection: the sub-step's start is below the grid maximum)
        best = c_grid
        tb = times[m]
    return 1, best, tb


@njit(cache=True, error_model="numpy")
def refine_peaks(times, full, conc, j0, wv, cmax, tmax, ev_t, n_ev, order, na, ws, u, ub, v, vn, wg, coef, memo,
                 samp, rc):
    """Raise grid Cmax/Tmax read-outs to the exact maximum of the solution between outputs.

    After :func:`solve_exact_split` with ``ws``. For each group g, from an output where its grid
    concentration has a local maximum, the sign of the exact derivative (``w_g . A y``) says on which
    side the curve goes higher; on that interval (no event inside, a cached step length) the peak is
    bracketed to one of 2^s sub-steps: by bisection on the sign of the exact derivative when it falls
    from + to - over the interval (s products by ``exp(A dt / 2^k)``, k = 1..s, the squarings'
    intermediate results that :func:`pkcsf.solvers.exact_expm.expm_passive_z` keeps), otherwise by
    propagating the state exactly by ``exp(A dt / 2^s)`` to 2^s sample points; then a Taylor expansion
    of ``exp(A s) y`` around the sub-step's start or the best sample (terms ``A^k y / k!`` until they
    fall below 1e-17 of the state) and Newton's method on its derivative give the maximum to rounding.
    Every value reported is a point of the exact solution, so a refined Cmax is never above the true
    maximum.

    Which local maxima: the grid maximum first; its refinement shows how much the grid under-reads
    there (ratio R). Another local maximum could hide a higher peak only if its own under-read were
    larger; those whose grid value times 1 + 2 (R - 1) exceeds the refined value are candidates,
    refined when there are at most two. The read-out is claimed exact (return value) only when every
    event in the window falls on an output time, every candidate could be refined, and none was left
    (after every dose of a long regimen the peaks are alike: then only the grid maximum is refined).

    Parameters
    ----------
    times : (T,); full : (T, S) every state at every output (model order); conc : (T, G) the group
        concentrations (``conc[t, g] = sum_s wv[s, g] full[t, s]``); j0 : first output of the window;
    wv : (S, G) concentration weights; cmax, tmax : (G,) grid read-outs, raised in place;
    ev_t, n_ev : the subject's event times; order, na, ws : of :func:`exact_workspace`;
    u, ub, v, vn, wg : (na,) and coef : (64,) work vectors (``vn`` unused: the products go to the workspace's
        vector padded to a multiple of 8).
    memo : (G, 3): (grid index, value, time) of each group's first refinement; a later call (the last
        interval's window) whose grid maximum is at the same output reuses it (index -1: none).
    samp : (65, na), rc : (2,): the samples of the last interval looked at and (its first output, the
        number of samples) (rc[0] = -1: none); reset both memo and rc for each subject.

    Returns
    -------
    bool
        False when the read-outs may still be below the true maximum (a dose between two outputs, a
        candidate that could not be refined or was left, a group holding a passive state).
    """
    W, Mw, X, LUw, piv, col, c_dt, c_E, z, ztmp, c_sub, c_s, M, pos, c_subT, MT, sa, vp = ws
    vn = vp                             # (na,) is enough for the caller's; _matvecT writes NA8 values
    T, S = full.shape
    G = conc.shape[1]
    exact = True
    for e in range(n_ev):               # a dose between two outputs: its peak may be missed entirely
        te = ev_t[e]
        if te > times[j0] and te < times[T - 1]:
            on = False
            for j in range(j0, T):
                if times[j] == te:
                    on = True
                    break
                if times[j] > te:
                    break
            if not on:
                exact = False
    for g in range(G):
        passive_member = False
        for i in range(na, S):
            if wv[order[i], g] != 0.0:
                passive_member = True
        if passive_member:
            exact = False
            continue
        for i in range(na):
            wg[i] = wv[order[i], g]
        m = -1
        for j in range(j0, T):
            if conc[j, g] == cmax[g]:
                m = j
                break
        if m < 0:
            continue
        if memo[g, 0] == m and memo[g, 2] >= times[j0]:
            code, best, tb = 1, memo[g, 1], memo[g, 2]
        else:
            code, best, tb = _refine_at(times, full, conc[m, g], m, j0, wg, ev_t, n_ev, order, na, MT, c_dt, c_subT,
                                        c_s, u, ub, v, vn, coef, samp, rc, col, M)
            if code >= 0:
                memo[g, 0] = m
                memo[g, 1] = best
                memo[g, 2] = tb
        if code < 0:
            exact = False
        ratio = best / conc[m, g] if conc[m, g] > 0.0 else 1.0
        # other local maxima that could hide a higher peak (refined if at most two, highest first;
        # more, as after every dose of a long regimen: not refined, the read-out not claimed exact)
        reach = 1.0 + 2.0 * (ratio - 1.0)
        n_cand = 0
        c1 = -1
        c2 = -1
        for j in range(j0, T):
            c = conc[j, g]
            if j == m or c * reach <= best:
                continue
            if (j == j0 or c >= conc[j - 1, g]) and (j == T - 1 or c >= conc[j + 1, g]):
                n_cand += 1
                if c1 < 0 or c > conc[c1, g]:
                    c2 = c1
                    c1 = j
                elif c2 < 0 or c > conc[c2, g]:
                    c2 = j
        if n_cand > 2:
            exact = False
        else:
            for nxt in (c1, c2):
                if nxt < 0:
                    continue
                code, b2, t2 = _refine_at(times, full, conc[nxt, g], nxt, j0, wg, ev_t, n_ev, order, na, MT,
                                          c_dt, c_subT, c_s, u, ub, v, vn, coef, samp, rc, col, M)
                if code < 0:
                    exact = False
                if b2 > best:
                    best = b2
                    tb = t2
        if best > cmax[g]:
            cmax[g] = best
            tmax[g] = tb
    return exact
