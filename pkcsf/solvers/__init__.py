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
expint   exponential Runge-Kutta (Hochbruck & Ostermann, order 4) with
         the Michaelis-Menten terms linearised at 0 and propagated
         exactly, the remainder explicit (:mod:`.expint`); for mostly
         linear models (concentrations below Km): one cached
         ``exp(hL)`` product per output interval, exact for linear
         models; slow (correct) when elimination saturates
auto     ``exact`` when no Michaelis–Menten term is active for any
         subject (every Vmax is 0), else ``rodas5p``
======== ================================================================

Aliases: ``expm`` and ``matrix-exponential`` for exact; ``adaptive`` and
``rodas`` for rodas5p; ``auto-switch``, ``rk45`` and ``explicit`` for dopri5; ``exprk4`` and ``exponential`` for expint.

Files
-----
One file per method, each compiled by Numba on its first use (``kernels.solve_batch``):

================= ==============================================================
``exact.py``      the exact solver (and its fast paths: 8-wide for up to 8 states,
                  passive states such as AUC accumulators out of the exponential
                  above that), and the exact Cmax/Tmax between output times
                  (``refine_peaks``, used by the fused read-outs)
``rodas.py``      Rodas5P
``radau.py``      Radau IIA
``explicit.py``   dopri5 (Dormand-Prince 5(4), handing stiff stretches to Rodas5P)
``expint.py``     expint (exponential Runge-Kutta on ``L = A + m'(0)``, ladders of phi-functions)
``common.py``     status and event codes, the model's terms (rate matrix,
                  right-hand side, Jacobian), the pieces of the event loop
``adaptive.py``   what the adaptive methods share (workspace, restart, first step,
                  dense output)
``linalg.py``     small dense linear algebra (LU, matrix exponentials)
``kernels.py``    the batch drivers (a range of subjects each, run on threads by
                  ``run_subjects``), the dispatch by method, and the one import
                  point of every name above
``_jit.py``       the solvers' ``njit``: one compilation per argument type, not
                  per constant argument
================= ==============================================================

The solver contract
-------------------
Every method is one compiled function per subject, ``solve_<method>(p, <model tables>, ev_t,
ev_s, ev_a, ev_k, n_ev, times, y0, save, out, [rtol, atol, max_steps, max_step,] counters) ->
status``, run for many subjects by a ``batch_<method>`` driver. What each receives, and what it
promises (in the spirit of SciPy's ``OdeSolver``):

Inputs
    ``p`` (n_params,): the subject's parameters; the model tables of
    :class:`pkcsf.engine.compile.CompiledModel` (``vol_col``, the linear transfers ``lin_*``, the
    Michaelis-Menten terms ``mm_*``), from which the method builds ``dy/dt = A(p) y + b(t) + m(y, p)``
    with :mod:`pkcsf.solvers.common`. The state is amounts (mg), in the model's state order.
    Events ``ev_*[:n_ev]``, sorted by time: kind ``EV_BOLUS`` (amount added to a state),
    ``EV_RATE_ON`` / ``EV_RATE_OFF`` (a zero-order rate, mg/h, starts or stops). Output times
    ``times`` (T,), non-decreasing, starting at or after 0 (the solve starts at t = 0 from ``y0``).
    ``save`` (n_save,): the state indices to report.

Outputs and status
    ``out[k, j]`` = state ``save[j]`` at ``times[k]``, for every k, and an integer status:
    ``ST_SUCCESS`` (0), ``ST_MAX_STEPS`` (1), ``ST_STEP_TOO_SMALL`` (2), ``ST_NONFINITE`` (3),
    ``ST_NEWTON`` (4). These are the values of :class:`pkcsf.core.errors.Status`
    (``tests/test_concepts.py`` ties them). On any status but success, the outputs not reached are
    NaN and the subject is excluded downstream; a non-finite output turns success into
    ``ST_NONFINITE``. ``counters`` (5,) receives steps, rejected steps, right-hand-side
    evaluations, LU factorisations and matrix exponentials.

Events and outputs
    The loop is the same for every method: report the outputs listed at the current time
    *before* the events (the first of an output time listed twice: the left limit, e.g. a
    pre-dose trough), apply every event at that time, report the outputs at that time (right
    limits), then integrate to the next event time or the last output time, reporting the
    outputs passed on the way. An event is a discontinuity: adaptive methods restart there (new
    f, Jacobian and first step), so no step crosses a dose; the exact method starts a new
    propagation.

Tolerances
    ``rtol`` is relative; ``atol`` is absolute *in concentration units* (mg/L): the error weight of
    state i is ``atol * V_i + rtol * |y_i|`` (amounts), so a small compartment is held to the same
    concentration accuracy as a large one. Adaptive methods keep the local error estimate's RMS
    norm in these weights at or below 1 per step (global errors are typically 1-10 x rtol on the
    reference problems); ``max_steps`` bounds accepted steps per subject (``ST_MAX_STEPS``),
    ``max_step`` the step length. The exact method ignores all four: it is exact to rounding
    (relative errors ~1e-13 on the reference problems).

Determinism
    A subject's result depends only on its own inputs: bit-identical whatever the number of
    subjects, threads or chunks.
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
    "expint": "expint",
    "exprk4": "expint",
    "exponential": "expint",
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
