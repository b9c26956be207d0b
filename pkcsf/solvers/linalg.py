"""Small dense linear algebra for the kernels (Numba, no BLAS/LAPACK calls).

The systems pkcsf solves are small (5 to ~40 states), where calling LAPACK
through NumPy costs more than the arithmetic. These routines are plain loops
that Numba compiles well and that run inside the batch drivers' threads without touching the
Python interpreter. They work for float64 and complex128 arrays.
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.solvers._jit import njit

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
def norm1(A):
    """The 1-norm of a square matrix: the largest column sum of absolute values (NaN columns skipped)."""
    n = A.shape[0]
    norm = 0.0
    for j in range(n):
        c = 0.0
        for i in range(n):
            c += abs(A[i, j])
        if c > norm:
            norm = c
    return norm


@njit(cache=True, error_model="numpy")
def expm(A, out):
    """Matrix exponential by scaling and squaring with a Padé(13) approximant.

    Higham (2005), Algorithm 2.3 with the degree fixed at 13: the scaling
    exponent s makes ||A/2^s||_1 <= theta_13, where the Padé approximant is
    accurate to double precision; then the result is squared s times.
    """
    n = A.shape[0]
    nrm = norm1(A)
    s = 0
    if nrm > _THETA13:
        s = int(math.ceil(math.log2(nrm / _THETA13)))
    scale = 2.0 ** (-s)
    # element loops, not array expressions: the same operations in the same order (the same bits), without
    # the broadcasting machinery and its shape-error messages (~3 CPU s of a first compile)
    As = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            As[i, j] = A[i, j] * scale
    A2 = np.empty((n, n))
    A4 = np.empty((n, n))
    A6 = np.empty((n, n))
    matmul(As, As, A2)
    matmul(A2, A2, A4)
    matmul(A4, A2, A6)
    b = _B13
    T1 = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            T1[i, j] = b[13] * A6[i, j] + b[11] * A4[i, j] + b[9] * A2[i, j]
    T2 = np.empty((n, n))
    matmul(A6, T1, T2)
    for i in range(n):
        T2[i, i] += b[1]
    for i in range(n):
        for j in range(n):
            T2[i, j] += b[7] * A6[i, j] + b[5] * A4[i, j] + b[3] * A2[i, j]
    U = np.empty((n, n))
    matmul(As, T2, U)
    for i in range(n):
        for j in range(n):
            T1[i, j] = b[12] * A6[i, j] + b[10] * A4[i, j] + b[8] * A2[i, j]
    V = np.empty((n, n))
    matmul(A6, T1, V)
    for i in range(n):
        for j in range(n):
            V[i, j] += b[6] * A6[i, j] + b[4] * A4[i, j] + b[2] * A2[i, j]
    for i in range(n):
        V[i, i] += b[0]
    # (V - U) X = (V + U)
    Q = np.empty((n, n))
    R = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            Q[i, j] = V[i, j] - U[i, j]
            R[i, j] = V[i, j] + U[i, j]
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
        for i in range(n):
            for j in range(n):
                out[i, j] = tmp[i, j]


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


