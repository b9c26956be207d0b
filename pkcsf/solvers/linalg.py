"""Small dense linear algebra for the kernels (Numba, no BLAS/LAPACK calls).

The systems pkcsf solves are small (5 to ~40 states), where calling LAPACK
through NumPy costs more than the arithmetic. These routines are plain loops
that Numba compiles well and that run inside ``prange`` without touching the
Python interpreter. They work for float64 and complex128 arrays.
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.core.jit import njit

# Padé(13) coefficients and the 1-norm bound theta_13 of Higham (2005),
# "The scaling and squaring method for the matrix exponential revisited",
# SIAM J Matrix Anal Appl 26(4):1179-1193, Table 2.3 / eq. (2.4).
_B13 = np.array([64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
                 129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
                 40840800.0, 960960.0, 16380.0, 182.0, 1.0])
_THETA13 = 5.371920351148152


@njit(cache=True, error_model="numpy")
def lu_factor(a, piv):
    """In-place LU with partial pivoting (LAPACK getrf layout). Returns 0, or k+1 if singular."""
    n = a.shape[0]
    for k in range(n):
        p = k
        m = abs(a[k, k])
        for i in range(k + 1, n):
            v = abs(a[i, k])
            if v > m:
                m = v
                p = i
        piv[k] = p
        if m == 0.0:
            return k + 1
        if p != k:
            for j in range(n):
                tmp = a[k, j]
                a[k, j] = a[p, j]
                a[p, j] = tmp
        inv = 1.0 / a[k, k]
        for i in range(k + 1, n):
            f = a[i, k] * inv
            a[i, k] = f
            if f != 0.0:
                for j in range(k + 1, n):
                    a[i, j] -= f * a[k, j]
    return 0


@njit(cache=True, error_model="numpy")
def _permute_forward(a, piv, b):
    """Row swaps and forward substitution with the unit-lower factor (shared by both solves)."""
    n = a.shape[0]
    for k in range(n):
        p = piv[k]
        if p != k:
            tmp = b[k]
            b[k] = b[p]
            b[p] = tmp
    for i in range(1, n):
        s = b[i]
        for j in range(i):
            s -= a[i, j] * b[j]
        b[i] = s


@njit(cache=True, error_model="numpy")
def lu_solve(a, piv, b):
    """Solve using the output of :func:`lu_factor`; ``b`` is overwritten with x."""
    n = a.shape[0]
    _permute_forward(a, piv, b)
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= a[i, j] * b[j]
        b[i] = s / a[i, i]


@njit(cache=True, error_model="numpy")
def lu_factor_recip(a, piv, dinv):
    """:func:`lu_factor` that also stores the reciprocal pivots in ``dinv``.

    :func:`lu_solve_recip` then multiplies instead of dividing: the back
    substitution is a chain of dependent operations, and a division costs
    several times a multiplication (the Rosenbrock solver does 8 solves per
    factorisation).
    """
    info = lu_factor(a, piv)
    if info == 0:
        for k in range(a.shape[0]):
            dinv[k] = 1.0 / a[k, k]
    return info


@njit(cache=True, error_model="numpy")
def lu_solve_recip(a, piv, dinv, b):
    """Solve with the output of :func:`lu_factor_recip`; ``b`` is overwritten with x."""
    n = a.shape[0]
    _permute_forward(a, piv, b)
    for i in range(n - 1, -1, -1):
        s = b[i]
        for j in range(i + 1, n):
            s -= a[i, j] * b[j]
        b[i] = s * dinv[i]


@njit(cache=True, error_model="numpy")
def matmul(a, b, out):
    """``out = a @ b`` for small dense matrices, skipping zero entries of ``a`` (compiled)."""
    n, m = a.shape
    q = b.shape[1]
    for i in range(n):
        for j in range(q):
            out[i, j] = 0.0
        for k in range(m):
            aik = a[i, k]
            if aik != 0.0:
                for j in range(q):
                    out[i, j] += aik * b[k, j]


@njit(cache=True, error_model="numpy")
def matvec(a, x, out):
    """``out = a @ x`` for a small dense matrix and a vector (compiled)."""
    n, m = a.shape
    for i in range(n):
        s = 0.0
        for j in range(m):
            s += a[i, j] * x[j]
        out[i] = s


@njit(cache=True, error_model="numpy")
def expm(A, out):
    """Matrix exponential by scaling and squaring with a Padé(13) approximant.

    Higham (2005), Algorithm 2.3 with the degree fixed at 13: the scaling
    exponent s makes ||A/2^s||_1 <= theta_13, where the Padé approximant is
    accurate to double precision; then the result is squared s times.
    """
    n = A.shape[0]
    norm1 = 0.0
    for j in range(n):
        c = 0.0
        for i in range(n):
            c += abs(A[i, j])
        if c > norm1:
            norm1 = c
    s = 0
    if norm1 > _THETA13:
        s = int(math.ceil(math.log2(norm1 / _THETA13)))
    scale = 2.0 ** (-s)
    As = A * scale
    A2 = np.empty((n, n))
    A4 = np.empty((n, n))
    A6 = np.empty((n, n))
    matmul(As, As, A2)
    matmul(A2, A2, A4)
    matmul(A4, A2, A6)
    b = _B13
    T1 = b[13] * A6 + b[11] * A4 + b[9] * A2
    T2 = np.empty((n, n))
    matmul(A6, T1, T2)
    for i in range(n):
        T2[i, i] += b[1]
    T2 += b[7] * A6 + b[5] * A4 + b[3] * A2
    U = np.empty((n, n))
    matmul(As, T2, U)
    T1 = b[12] * A6 + b[10] * A4 + b[8] * A2
    V = np.empty((n, n))
    matmul(A6, T1, V)
    V += b[6] * A6 + b[4] * A4 + b[2] * A2
    for i in range(n):
        V[i, i] += b[0]
    # (V - U) X = (V + U)
    Q = V - U
    R = V + U
    piv = np.empty(n, dtype=np.int64)
    lu_factor(Q, piv)
    col = np.empty(n)
    for j in range(n):
        for i in range(n):
            col[i] = R[i, j]
        lu_solve(Q, piv, col)
        for i in range(n):
            out[i, j] = col[i]
    tmp = np.empty((n, n))
    for _ in range(s):
        matmul(out, out, tmp)
        out[:, :] = tmp


@njit(cache=True, error_model="numpy")
def expm_phi(A, dt, E, Phi):
    """``E = exp(A dt)`` and ``Phi = integral_0^dt exp(A s) ds`` (for constant inputs).

    Uses the block identity exp([[A, I], [0, 0]] dt) = [[E, Phi], [0, I]]
    (Van Loan 1978, IEEE Trans Autom Control 23:395), which needs no inverse
    of A, so it is exact for singular A (sinks, accumulators).
    """
    n = A.shape[0]
    M = np.zeros((2 * n, 2 * n))
    for i in range(n):
        for j in range(n):
            M[i, j] = A[i, j] * dt
        M[i, n + i] = dt
    R = np.empty((2 * n, 2 * n))
    expm(M, R)
    for i in range(n):
        for j in range(n):
            E[i, j] = R[i, j]
            Phi[i, j] = R[i, n + j]


@njit(cache=True, error_model="numpy")
def expm_passive(M, na, X, W, LUw, piv, col, X0):
    """``exp`` of ``[[B, 0], [C, 0]]`` (n x n, the last n - na columns zero) from its first na columns.

    The states behind the zero columns are *passive*: nothing depends on them (AUC accumulators,
    eliminated amounts). Every power of such a matrix, and so its Padé approximant and the squares,
    keeps the form ``[[X11, 0], [X21, c I]]``; only the first na columns are computed (Higham 2005,
    Algorithm 2.3 with degree 13, restricted to that form): about ``n na^2`` work per product instead
    of ``n^3``, and the passive rows, scaled by a power of two (exact) before the norm is taken, do not
    add squarings (an AUC accumulator's 1/V entries raised the CNS model's norm fourfold).

    Parameters
    ----------
    M : ndarray (n, na)
        ``[[B], [C]] * dt``: the active columns of the (scaled) rate matrix, active states first.
    na : int
        Number of active states.
    X : ndarray (n, na)
        Output: ``[[exp(B dt)], [C int_0^dt exp(B s) ds]]``; the passive block of the exponential is I.
    W : ndarray (8, n, na)
        Workspace.
    LUw : ndarray (na, na); piv : ndarray (na,) int64; col : ndarray (na,)
        Workspace.
    X0 : ndarray (n, na)
        Output: the same for the step ``dt / 2^s`` (the Padé approximant before the squarings), for
        sampling the solution inside a step (:func:`pkcsf.solvers.exact.refine_peaks`).

    Returns
    -------
    int
        The number of squarings s.
    """
    n = M.shape[0]
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
    # passive rows scaled by alpha = 2^-q (exact): at most 1/16 of the active norm
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
    Ms = W[0]
    A2 = W[1]
    A4 = W[2]
    A6 = W[3]
    T1 = W[4]
    U = W[5]
    Vv = W[6]
    T2 = W[7]
    for i in range(n):
        f = scale if i < na else scale * alpha
        for j in range(na):
            Ms[i, j] = M[i, j] * f
    # a product of two such matrices: first na columns = (tall left) @ (top block of right)
    matmul(Ms, Ms[:na], A2)
    matmul(A2, A2[:na], A4)
    matmul(A4, A2[:na], A6)
    b = _B13
    for i in range(n):
        for j in range(na):
            T1[i, j] = b[13] * A6[i, j] + b[11] * A4[i, j] + b[9] * A2[i, j]
    matmul(A6, T1[:na], T2)
    for i in range(n):
        for j in range(na):
            T2[i, j] += b[7] * A6[i, j] + b[5] * A4[i, j] + b[3] * A2[i, j]
    for i in range(na):
        T2[i, i] += b[1]
    matmul(Ms, T2[:na], U)              # U = M T2: its passive block is 0
    for i in range(n):
        for j in range(na):
            T1[i, j] = b[12] * A6[i, j] + b[10] * A4[i, j] + b[8] * A2[i, j]
    matmul(A6, T1[:na], Vv)
    for i in range(n):
        for j in range(na):
            Vv[i, j] += b[6] * A6[i, j] + b[4] * A4[i, j] + b[2] * A2[i, j]
    for i in range(na):
        Vv[i, i] += b[0]                # V's passive block is b0 I
    # (V - U) X = (V + U): X11 = Q11^-1 R11, then X21 = (R21 - Q21 X11) / b0
    for i in range(na):
        for j in range(na):
            LUw[i, j] = Vv[i, j] - U[i, j]
    lu_factor(LUw, piv)
    for j in range(na):
        for i in range(na):
            col[i] = Vv[i, j] + U[i, j]
        lu_solve(LUw, piv, col)
        for i in range(na):
            X[i, j] = col[i]
    inv_b0 = 1.0 / b[0]
    for i in range(na, n):
        for j in range(na):
            r = Vv[i, j] + U[i, j]
            for k in range(na):
                r -= (Vv[i, k] - U[i, k]) * X[k, j]
            X[i, j] = r * inv_b0
    for i in range(n):
        f = 1.0 if i < na else 1.0 / alpha
        for j in range(na):
            X0[i, j] = X[i, j] * f
    # squaring: [[X11, 0], [X21, I]]^2 = [[X11^2, 0], [X21 X11 + X21, I]]
    for _ in range(s):
        matmul(X, X[:na], T2)
        for i in range(n):
            for j in range(na):
                X[i, j] = T2[i, j] + X[i, j] if i >= na else T2[i, j]
    if alpha != 1.0:
        inv = 1.0 / alpha
        for i in range(na, n):
            for j in range(na):
                X[i, j] *= inv
    return s
