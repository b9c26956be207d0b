"""Solvers behind :func:`pkcsf.engine.simulate`, chosen by name from a registry.

======== ================================================================
name     what
======== ================================================================
exact    matrix-exponential propagation between events (linear models);
         exact to rounding, the fast path and the test oracle
rodas5p  adaptive Rosenbrock method Rodas5P (order 5(4), stiffly accurate,
         L-stable), error-controlled with ``rtol``/``atol``; for nonlinear
         (Michaelis–Menten) or any model
radau    adaptive Radau IIA (order 5, SciPy's algorithm), an alternative
         implicit method kept as a cross-check
dopri5   explicit Dormand–Prince 5(4) with dense output that hands a
         subject to Rodas5P while the problem is stiff (as LSODA); for
         non-stiff or mildly stiff nonlinear models (:mod:`.explicit`)
auto     ``exact`` when no Michaelis–Menten term is active for any
         subject (every Vmax is 0), else ``rodas5p``
======== ================================================================

Aliases: ``expm`` and ``matrix-exponential`` for exact; ``adaptive`` and
``rodas`` for rodas5p; ``auto-switch``, ``rk45`` and ``explicit`` for dopri5.
"""
from __future__ import annotations

from pkcsf.core.errors import SolverError, check_choice

SOLVERS = {
    "auto": "auto",
    "exact": "exact",
    "expm": "exact",
    "matrix-exponential": "exact",
    "rodas5p": "rodas5p",
    "rodas": "rodas5p",
    "adaptive": "rodas5p",
    "radau": "radau",
    "dopri5": "dopri5",
    "auto-switch": "dopri5",
    "rk45": "dopri5",
    "explicit": "dopri5",
}


def resolve_solver(name: str) -> str:
    """Canonical solver name; raises listing the valid names.

    Parameters
    ----------
    name : str
        A solver name or alias (``"auto"``, ``"exact"``, ``"rodas5p"``, ``"radau5"``).

    Returns
    -------
    str
        The canonical name.

    Examples
    --------
    >>> resolve_solver("exact")
    'exact'
    """
    check_choice("solver", name, list(SOLVERS), SolverError)
    return SOLVERS[name]
