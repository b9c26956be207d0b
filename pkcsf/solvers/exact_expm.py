"""The exact solver's matrix exponential for models with passive states, in the stepping layout.

The passive-state matrix exponential (Higham 2005, Algorithm 2.3 with degree 13, restricted to the
form ``[[B, 0], [C, 0]]`` of a rate matrix whose passive states are the source of no transfer) with its
matrix products written for the CNS model's size: every work matrix holds the states at their place
in the solver's state vector (active states padded to a multiple of 8, then the passive states), so
that a product takes eight columns of the left factor at a time, eight values held in registers and
one vectorised pass over a contiguous row of the right factor (the pattern of the solver's output
steps); rows of zeros (the rate matrix is sparse) are skipped eight at a time. Same algorithm, same
scaling exponent, same Padé approximant as the previous ``linalg.expm_passive`` (removed 3 Dec 2026, this
replaces it): the results differed by rounding (the eight products of a block are summed as a tree; 8e-16 of
the largest entry on the CNS model), and the LU
solves run a row at a time (the operations of ``lu_solve``). 22 active and 9 passive states, 6 squarings:
44 -> 30 us on one thread. The squarings' intermediate results exp(A dt / 2^k) are kept for the
bisection of :func:`pkcsf.solvers.exact.refine_peaks`.
"""
from __future__ import annotations

import math

from pkcsf.solvers._jit import njit
from pkcsf.solvers.linalg import _B13, _THETA13, lu_factor


def _make_mm(NB):
    """:func:`_mm` compiled for NA8 = NB (0: any): with the row length a literal, LLVM unrolls a row
    into a few vector operations (issue 11, fourth round; the same operations, the same result).
    """

    @njit(cache=True, error_model="numpy")
    def mm(L, R, out, NA8):
        n8 = NB if NB > 0 else NA8
        NZ = L.shape[0]
        for i in range(NZ):
            for c in range(n8):
                out[i, c] = 0.0
            for kb in range(0, n8, 8):
                a0, a1, a2, a3 = L[i, kb], L[i, kb + 1], L[i, kb + 2], L[i, kb + 3]
                a4, a5, a6, a7 = L[i, kb + 4], L[i, kb + 5], L[i, kb + 6], L[i, kb + 7]
                if (a0 == 0.0 and a1 == 0.0 and a2 == 0.0 and a3 == 0.0 and a4 == 0.0 and a5 == 0.0 and a6 == 0.0
                        and a7 == 0.0):
                    continue
                for c in range(n8):
                    out[i, c] += (((a0 * R[kb, c] + a1 * R[kb + 1, c]) + (a2 * R[kb + 2, c] + a3 * R[kb + 3, c]))
                                  + ((a4 * R[kb + 4, c] + a5 * R[kb + 5, c]) + (a6 * R[kb + 6, c]
                                                                                + a7 * R[kb + 7, c])))

    return mm


_mm_any = _make_mm(0)
_mm24 = _make_mm(24)                # the CNS models (22 active states); each copy costs compile time


@njit(cache=True, error_model="numpy")
def _mm(L, R, out, NA8):
    """``out = L @ R[:NA8]`` over the first NA8 columns: L (NZ, NA8), R (>= NA8, NA8), out (NZ, NA8)."""
    if NA8 == 24:
        _mm24(L, R, out, NA8)
    else:
        _mm_any(L, R, out, NA8)


@njit(cache=True, error_model="numpy")
def _lu_solve_rows(a, piv, X, n):
    """``X[:n] <- a^-1 X[:n]`` from :func:`pkcsf.solvers.linalg.lu_factor`'s output, every column at once.

    The operations on each entry are those of :func:`pkcsf.solvers.linalg.lu_solve` column by column, in
    the same order (the same result), but taken a row at a time: each update is a vectorised pass
    over a contiguous row instead of a chain of dependent scalar operations.
    """
    NA8 = X.shape[1]
    for k in range(n):
        p = piv[k]
        if p != k:
            for c in range(NA8):
                tmp = X[k, c]
                X[k, c] = X[p, c]
                X[p, c] = tmp
    for i in range(1, n):
        for j in range(i):
            f = a[i, j]
            for c in range(NA8):
                X[i, c] -= f * X[j, c]
    for i in range(n - 1, -1, -1):
        for j in range(i + 1, n):
            f = a[i, j]
            for c in range(NA8):
                X[i, c] -= f * X[j, c]
        d = a[i, i]
        for c in range(NA8):
            X[i, c] = X[i, c] / d


@njit(cache=True, error_model="numpy")
def expm_passive_z(M, na, Wz, LUw, piv, X0, Lv):
    """``exp`` of ``[[B, 0], [C, 0]]`` from its first na columns, in the stepping layout.

    Parameters
    ----------
    M : ndarray (n, na)
        ``[[B], [C]] * dt``: the active columns of the rate matrix times the step, active states first.
    na : int
        Number of active states.
    Wz : ndarray (9, NZ, NA8), NA8 = 8 ceil(na / 8), NZ = NA8 + 8 ceil((n - na) / 8)
        Workspace; on return ``Wz[8]`` holds ``[[exp(B dt)], [C int_0^dt exp(B s) ds]]`` with row i
        (state i of the split order) at row i (active) or NA8 + i - na (passive), zero elsewhere.
    LUw : ndarray (na, na); piv : ndarray (na,) int64
        Workspace.
    X0 : ndarray (n, na)
        Output: the same for the step ``dt / 2^s`` (the Padé approximant before the squarings), split
        order, for sampling the solution inside a step (:func:`pkcsf.solvers.exact.refine_peaks`).
    Lv : ndarray (LV + 1, na, >= na)
        Output: ``Lv[k]`` = the active block of exp(A dt / 2^k), transposed, for 1 <= k <= min(s, LV): the
        squarings' intermediate results, for the bisection of :func:`pkcsf.solvers.exact.refine_peaks`.

    Returns
    -------
    int
        The number of squarings s.
    """
    n = M.shape[0]
    NA8 = Wz.shape[2]
    NZ = Wz.shape[1]
    nb = 0.0
    nc = 0.0
    for j in range(na):
        cb = 0.0
        cc = 0.0
        for i in range(na):
            cb += abs(M[i, j])
        for i in range(na, n):
            cc += abs(M[i, j])
        nb = max(nb, cb)
        nc = max(nc, cc)
    # passive rows scaled by alpha = 2^-q (exact): at most 1/16 of the active norm (as expm_passive)
    alpha = 1.0
    if nc > 0.0 and nb > 0.0 and nc > nb / 16.0:
        alpha = 2.0 ** (-int(math.ceil(math.log2(16.0 * nc / nb))))
    norm1 = 0.0
    for j in range(na):
        c = 0.0
        for i in range(na):
            c += abs(M[i, j])
        for i in range(na, n):
            c += alpha * abs(M[i, j])
        norm1 = max(norm1, c)
    s = 0
    if norm1 > _THETA13:
        s = int(math.ceil(math.log2(norm1 / _THETA13)))
    scale = 2.0 ** (-s)
    Ms = Wz[0]
    A2 = Wz[1]
    A4 = Wz[2]
    A6 = Wz[3]
    T1 = Wz[4]
    U = Wz[5]
    Vv = Wz[6]
    T2 = Wz[7]
    X = Wz[8]
    for i in range(NZ):
        for j in range(NA8):
            Ms[i, j] = 0.0
    for i in range(n):
        r = i if i < na else NA8 + i - na
        f = scale if i < na else scale * alpha
        for j in range(na):
            Ms[r, j] = M[i, j] * f
    _mm(Ms, Ms, A2, NA8)
    _mm(A2, A2, A4, NA8)
    _mm(A4, A2, A6, NA8)
    b = _B13
    for i in range(NZ):
        for j in range(NA8):
            T1[i, j] = b[13] * A6[i, j] + b[11] * A4[i, j] + b[9] * A2[i, j]
    _mm(A6, T1, T2, NA8)
    for i in range(NZ):
        for j in range(NA8):
            T2[i, j] += b[7] * A6[i, j] + b[5] * A4[i, j] + b[3] * A2[i, j]
    for i in range(na):
        T2[i, i] += b[1]
    _mm(Ms, T2, U, NA8)                  # U = M T2: its passive block is 0
    for i in range(NZ):
        for j in range(NA8):
            T1[i, j] = b[12] * A6[i, j] + b[10] * A4[i, j] + b[8] * A2[i, j]
    _mm(A6, T1, Vv, NA8)
    for i in range(NZ):
        for j in range(NA8):
            Vv[i, j] += b[6] * A6[i, j] + b[4] * A4[i, j] + b[2] * A2[i, j]
    for i in range(na):
        Vv[i, i] += b[0]                 # V's passive block is b0 I
    # (V - U) X = (V + U): X11 = Q11^-1 R11, then X21 = (R21 - Q21 X11) / b0
    for i in range(na):
        for j in range(na):
            LUw[i, j] = Vv[i, j] - U[i, j]
    lu_factor(LUw, piv)
    for i in range(NZ):
        for j in range(NA8):
            X[i, j] = Vv[i, j] + U[i, j] if (i < na or i >= NA8) and j < na else 0.0
    _lu_solve_rows(LUw, piv, X, na)
    inv_b0 = 1.0 / b[0]
    for i in range(NA8, NZ):
        for k in range(na):
            f = Vv[i, k] - U[i, k]
            for j in range(NA8):
                X[i, j] -= f * X[k, j]
        for j in range(NA8):
            X[i, j] *= inv_b0
    for i in range(n):
        r = i if i < na else NA8 + i - na
        f = 1.0 if i < na else 1.0 / alpha
        for j in range(na):
            X0[i, j] = X[r, j] * f
    # squaring: [[X11, 0], [X21, I]]^2 = [[X11^2, 0], [X21 X11 + X21, I]]
    LV = Lv.shape[0] - 1
    for q in range(s):
        if 1 <= s - q <= LV:            # X = exp(A dt / 2^(s - q)) before this squaring
            L = Lv[s - q]
            for i in range(na):
                for j in range(na):
                    L[j, i] = X[i, j]
        _mm(X, X, T2, NA8)
        for i in range(NZ):
            for j in range(NA8):
                X[i, j] = T2[i, j] + X[i, j] if i >= NA8 else T2[i, j]
    if alpha != 1.0:
        inv = 1.0 / alpha
        for i in range(NA8, NZ):
            for j in range(na):
                X[i, j] *= inv
    return s
