"""Reproducible random numbers of virtual subjects: counter-based Philox streams keyed by ``(seed, stream)`` and
positioned at the subject, so subject i is the same whatever N, the chunk size or the thread count.
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.core.errors import ParameterError, check_int

__all__ = ["uniforms", "normals", "ndtr", "ndtri"]

_STREAM_COVARIATES = 1
_STREAM_ETAS = 2
_STREAM_PATHOLOGIES = 4     # per-subject pathology draws (prevalence.py); 3 is the sampling noise of scenario read-outs
_STREAM_UNCERTAINTY = 5     # per-subject parameter-uncertainty draws (uncertainty.py: Arm(uncertainty=...))


# ------------------------------------------------------------------ random
def uniforms(seed: int, stream: int, start: int, n: int, d: int) -> np.ndarray:
    """Uniforms in (0, 1), shape (n, d), for subjects ``start .. start+n-1``.

    Subject i always gets the same d numbers for a given (seed, stream),
    whatever ``start`` and ``n`` (counter-based Philox; each subject uses
    a whole number of 4-word blocks).

    Parameters
    ----------
    seed, stream : int
        Random seed and stream.
    start, n : int
        First subject and number of subjects.
    d : int
        Numbers per subject.

    Returns
    -------
    ndarray, shape (n, d)
        Uniforms.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.all(uniforms(1, 0, 5, 2, 3)[1] == uniforms(1, 0, 0, 7, 3)[6]))
    True
    """
    seed = _check_seed(seed)
    d4 = max(4, -(-d // 4) * 4)
    bg = np.random.Philox(key=np.array([seed, stream], dtype=np.uint64))
    bg.advance(start * (d4 // 4))
    u = np.random.Generator(bg).random((n, d4))[:, :d]
    return u + 2.0 ** -54     # (0, 1): never exactly 0


def ndtri(x: ArrayLike) -> np.ndarray:
    """Inverse standard normal CDF (scipy.special.ndtri, imported on first use: import pkcsf stays fast).

    Parameters
    ----------
    x : array_like
        Probabilities in (0, 1).

    Returns
    -------
    ndarray
        Standard normal quantiles (a NumPy scalar for a scalar input).
    """
    from scipy.special import ndtri as f
    return f(x)


def ndtr(x: ArrayLike) -> np.ndarray:
    """Standard normal CDF (scipy.special.ndtr, imported on first use).

    Parameters
    ----------
    x : array_like
        Standard normal deviates.

    Returns
    -------
    ndarray
        Probabilities in [0, 1] (a NumPy scalar for a scalar input).
    """
    from scipy.special import ndtr as f
    return f(x)


def normals(seed: int, stream: int, start: int, n: int, d: int) -> np.ndarray:
    """Standard normal deviates (n, d) by the inverse CDF of :func:`uniforms`.

    Parameters
    ----------
    seed, stream : int
        Random seed and stream.
    start, n : int
        First subject and number of subjects.
    d : int
        Numbers per subject.

    Returns
    -------
    ndarray, shape (n, d)
        Deviates.
    """
    return ndtri(uniforms(seed, stream, start, n, d))


def _check_seed(seed) -> int:
    if check_int("seed", seed, 0, ParameterError) >= 2**63:
        raise ParameterError("seed", seed, "must be a whole number between 0 and 2**63 - 1")
    return int(seed)
