"""The batch drivers, and the one import point of the compiled kernels (see :mod:`pkcsf.engine.compile`).

The methods live one per file, each behind the contract written in :mod:`pkcsf.solvers`:

* :mod:`pkcsf.solvers.exact` (``METHOD_EXACT``): matrix-exponential propagation of linear models;
* :mod:`pkcsf.solvers.rodas` (``METHOD_RODAS``): Rodas5P, the default adaptive method;
* :mod:`pkcsf.solvers.radau` (``METHOD_RADAU``): Radau IIA, a cross-check;
* :mod:`pkcsf.solvers.explicit` (``METHOD_DOPRI5``): Dormand-Prince 5(4) switching to Rodas5P (it
  registers itself in ``BATCH`` when imported);
* :mod:`pkcsf.solvers.expint` (``METHOD_EXPINT``): exponential Runge-Kutta for mostly linear models (it
  registers itself in ``BATCH`` when imported);
* shared pieces: :mod:`pkcsf.solvers.common` (codes, the model's terms, the event loop's pieces),
  :mod:`pkcsf.solvers.adaptive` (workspace, restart, initial step, dense output),
  :mod:`pkcsf.solvers.linalg` (small dense linear algebra).

Their names are re-exported here, so ``from pkcsf.solvers import kernels as K; K.rhs`` keeps working.
:func:`solve_batch` runs ranges of subjects on a pool of threads (:func:`run_subjects`; the drivers release
the GIL). Each subject is independent of the others, so subject i gets bit-identical results whatever N,
the thread count or the chunking.
"""
from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from pkcsf.core.jit import compile_notice
from pkcsf.solvers._jit import njit
from pkcsf.solvers.adaptive import (  # noqa: F401  (re-exported)
    _EPS,
    M_AD,
    M_J,
    M_LU,
    NM,
    NS,
    NV,
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
    V_DINV,
    V_DW,
    V_ERR,
    V_F,
    V_FNEW,
    V_FR,
    V_FS,
    V_Q,
    V_S0,
    V_S1,
    V_SCALE,
    V_U,
    V_W1,
    V_W2,
    V_WW,
    V_YOLD,
    V_YTMP,
    V_Z,
    V_Z0,
    V_ZE,
    _adaptive_workspace,
    _hermite5,
    _initial_step,
    _restart,
    _rms_scaled,
)
from pkcsf.solvers.common import (  # noqa: F401  (re-exported)
    EV_BOLUS,
    EV_RATE_OFF,
    EV_RATE_ON,
    ST_MAX_STEPS,
    ST_NEWTON,
    ST_NONFINITE,
    ST_STEP_TOO_SMALL,
    ST_SUCCESS,
    _any_active,
    _any_positive,
    _emit,
    _emit_left,
    _emit_now,
    _events,
    _finish,
    _setup,
    _tiny_step,
    _volumes,
    build_matrix,
    jacobian,
    pack_linear,
    rhs,
)
from pkcsf.solvers.exact import _exact_run8, _exact_run_blk, _exact_slot, _propagate, _propagate8, solve_exact  # noqa: F401  (re-exported)
from pkcsf.solvers.linalg import expm, expm_phi, lu_factor, lu_factor_recip, lu_solve, lu_solve_recip, matvec  # noqa: F401  (re-exported)
from pkcsf.solvers.radau import _advance_radau, _predict_factor, solve_radau  # noqa: F401  (re-exported)
from pkcsf.solvers.rodas import _RA, _RC, _RG, _advance_rodas, solve_rodas  # noqa: F401  (re-exported)

METHOD_EXACT = 0
METHOD_RADAU = 1
METHOD_RODAS = 2
METHOD_DOPRI5 = 3   # explicit Dormand-Prince with switching to Rodas5P: pkcsf/solvers/explicit.py
METHOD_EXPINT = 4   # exponential Runge-Kutta for mostly linear models: pkcsf/solvers/expint.py


@njit(cache=True, error_model="numpy")
def solve_subject(method, p, vol_col, lin_type, lin_src, lin_dst, lin_col,
                  mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                  ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out,
                  rtol, atol, max_steps, max_step, counters):
    """Solve one subject; write ``out[k, j] = y[save[j]]`` at ``times[k]``.

    The loop: report the first of a repeated output time (the left limit),
    apply every event at the current time, report the outputs at that time
    (so outputs are right-continuous at doses), then integrate to
    the next event (or the last output time), reporting the outputs passed
    on the way. Returns a status code (ST_*). ``counters`` receives (steps,
    rejected steps, rhs evaluations, LU factorisations, matrix exponentials).

    This switch compiles all three solvers; the batch functions call one of
    :func:`solve_exact`, :func:`solve_rodas`, :func:`solve_radau` directly.
    """
    if method == METHOD_EXACT:
        return solve_exact(p, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, n_ev, times,
                           y0, save, out, counters)
    if method == METHOD_RODAS:
        return solve_rodas(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                           ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step,
                           counters)
    return solve_radau(p, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                       ev_t, ev_s, ev_a, ev_k, n_ev, times, y0, save, out, rtol, atol, max_steps, max_step, counters)


# ------------------------------------------------------------ many subjects
# The batch drivers are serial loops over a range of subjects that release the GIL (``nogil``); solve_batch
# runs ranges of subjects on a pool of threads (:func:`run_subjects`). A ``prange`` driver compiles the loop
# into a parallel gufunc, and Numba optimises the whole solver's code once for the gufunc and once more for
# the function around it: a first compile 3-4x the serial driver's (batch_exact 16 against 4.6 CPU s,
# batch_rodas 8.2 against 2.2; benchmarks/README.md, "Cold report"). Subjects are independent, so the
# results are bit-identical whatever the ranges and threads.
@njit(nogil=True, cache=True, error_model="numpy")
def batch_exact(i0, i1, P, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, ev_n, times, y0,
                save, out, status, counters):
    """Subjects ``i0 <= i < i1`` (rows of ``P``) with the exact solver; see :func:`solve_batch`."""
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in range(i0, i1):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_exact(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t[ie], ev_s[ie], ev_a[ie],
                                ev_k[ie], ev_n[ie], times, y0[iy], save, out[i], counters[i])


@njit(nogil=True, cache=True, error_model="numpy")
def batch_rodas(i0, i1, P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step,
                counters):
    """Subjects ``i0 <= i < i1`` (rows of ``P``) with Rodas5P; see :func:`solve_batch`."""
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in range(i0, i1):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_rodas(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax,
                                mm_km, mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[iy],
                                save, out[i], rtol, atol, max_steps, max_step, counters[i])


@njit(nogil=True, cache=True, error_model="numpy")
def batch_radau(i0, i1, P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step,
                counters):
    """Subjects ``i0 <= i < i1`` (rows of ``P``) with Radau IIA; see :func:`solve_batch`."""
    sev = 0 if ev_t.shape[0] == 1 else 1
    sy0 = 0 if y0.shape[0] == 1 else 1
    for i in range(i0, i1):
        ie = i * sev
        iy = i * sy0
        status[i] = solve_radau(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax,
                                mm_km, mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[iy],
                                save, out[i], rtol, atol, max_steps, max_step, counters[i])


_POOL: list = []            # the one thread pool of run_subjects, made on first use
_POOL_LOCK = threading.Lock()
if hasattr(os, "register_at_fork"):     # a forked child has none of the parent's threads: make a new pool
    os.register_at_fork(after_in_child=_POOL.clear)


def _pool() -> ThreadPoolExecutor:
    with _POOL_LOCK:
        if not _POOL:
            _POOL.append(ThreadPoolExecutor(max_workers=max(1, numba.config.NUMBA_NUM_THREADS - 1),
                                            thread_name_prefix="pkcsf-subjects"))
        return _POOL[0]


def run_subjects(kernel: Callable, N: int, *args: object) -> None:
    """``kernel(i0, i1, *args)`` over the subjects ``0 <= i < N``, in ranges on Numba's thread count.

    ``kernel`` is a ``nogil`` driver (:func:`batch_exact`...) that writes subject i's results only into
    row i of its output arrays, so ranges run at the same time on different threads and the results do not
    depend on the ranges. The thread count is :func:`numba.get_num_threads` of the calling thread (the
    ``threads`` option of :func:`pkcsf.engine.simulate.simulate` sets it): the calling thread and
    ``threads - 1`` threads of a pool; with one thread, or one subject, the kernel runs in the calling thread
    alone. About four ranges per thread, taken in turn by the threads as they finish, balance subjects of
    unequal cost (adaptive steps).

    Parameters
    ----------
    kernel : numba dispatcher
        ``kernel(i0, i1, *args)``, compiled with ``nogil=True``.
    N : int
        Number of subjects.
    *args
        The kernel's other arguments.
    """
    n = min(int(numba.get_num_threads()), N)
    if n <= 1:
        kernel(0, N, *args)
        return
    parts = min(N, 4 * n)
    cuts = [N * q // parts for q in range(parts + 1)]
    pool = _pool()
    todo = iter(range(parts))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                q = next(todo, None)
            if q is None:
                return
            kernel(cuts[q], cuts[q + 1], *args)

    futures = [pool.submit(work) for _ in range(n - 1)]
    try:
        work()                        # the calling thread takes ranges too
    finally:
        for f in futures:
            f.result()


# METHOD_DOPRI5's and METHOD_EXPINT's batch functions are added by pkcsf/solvers/explicit.py and expint.py (which
# import this module) when they are imported
BATCH = {METHOD_EXACT: batch_exact, METHOD_RODAS: batch_rodas, METHOD_RADAU: batch_radau}
METHOD_NAMES = {METHOD_EXACT: "exact", METHOD_RODAS: "rodas5p", METHOD_RADAU: "radau", METHOD_DOPRI5: "dopri5",
                METHOD_EXPINT: "expint"}
# first-compile time on the 2-core reference machine, for the notice: CPU s of `pkcsf warmup --only <solver>`
# with an empty cache folder, 3 December 2026 (exact 22.9, rodas5p 12.0, radau 13.3, dopri5 18.2, which
# compiles Rodas5P too; benchmarks/README.md, "Cold report")
# expint: 20.0 CPU s for its first simulate() with an empty cache folder (P2, loaded machine, 3 December 2026)
COMPILE_SECONDS = {METHOD_EXACT: 25, METHOD_RODAS: 12, METHOD_RADAU: 15, METHOD_DOPRI5: 20, METHOD_EXPINT: 20}


def solve_batch(method: int, P: np.ndarray, vol_col: np.ndarray, lin_type: np.ndarray, lin_src: np.ndarray,
                lin_dst: np.ndarray, lin_col: np.ndarray,
                mm_src: np.ndarray, mm_dst: np.ndarray, mm_vmax: np.ndarray, mm_km: np.ndarray, mm_fu: np.ndarray,
                ev_t: np.ndarray, ev_s: np.ndarray, ev_a: np.ndarray, ev_k: np.ndarray, ev_n: np.ndarray,
                times: np.ndarray, y0: np.ndarray, save: np.ndarray, out: np.ndarray, status: np.ndarray,
                rtol: float, atol: float, max_steps: int, max_step: float, counters: np.ndarray) -> None:
    """Solve every subject (rows of ``P``) in parallel with solver ``method``, writing into ``out``.

    Only the chosen solver is compiled (on its first use on this machine, with a notice on stderr).
    The inputs and promises are the solver contract of :mod:`pkcsf.solvers`; the model tables come
    from :class:`pkcsf.engine.compile.CompiledModel`.

    Parameters
    ----------
    method : int
        ``METHOD_EXACT``, ``METHOD_RODAS``, ``METHOD_RADAU``, ``METHOD_DOPRI5`` or ``METHOD_EXPINT``.
    P : ndarray of float64, shape (N, n_columns)
        Each subject's parameter row (model parameters, derived parameters, expression columns).
    vol_col : ndarray of int64, shape (n_states,)
        Column of each state's volume (L), -1 for amount-only states.
    lin_type, lin_src, lin_dst, lin_col : ndarray of int64, shape (n_linear,)
        Linear transfers: type (flow L/h, rate 1/h, accumulation), source state, target state, column of
        the coefficient.
    mm_src, mm_dst, mm_vmax, mm_km, mm_fu : ndarray of int64, shape (n_saturable,)
        Michaelis-Menten terms: source, target, Vmax column (mg/h), Km column (mg/L), fu column (-1: fu = 1).
    ev_t, ev_s, ev_a, ev_k : ndarray, shape (N_ev, E)
        Events sorted by time per row: time (h), state, amount (mg; mg/h for a rate), kind (``EV_*``);
        ``N_ev`` is N or 1 (shared by all subjects).
    ev_n : ndarray of int64, shape (N_ev,)
        Number of events used in each row.
    times : ndarray of float64, shape (T,)
        Output times (h), non-decreasing, >= 0.
    y0 : ndarray of float64, shape (N or 1, n_states)
        Initial amounts (mg) at t = 0.
    save : ndarray of int64, shape (n_save,)
        State indices reported.
    out : ndarray of float64, shape (N, T, n_save)
        Filled with the amounts (mg) of the saved states at ``times``; NaN where not reached.
    status : ndarray of int64, shape (N,)
        Filled with each subject's status code (``ST_*``, the values of :class:`pkcsf.core.errors.Status`).
    rtol, atol : float
        Relative and absolute (mg/L) tolerances of the adaptive methods.
    max_steps : int
        Accepted steps per subject before ``ST_MAX_STEPS``.
    max_step : float
        Longest step (h).
    counters : ndarray of int64, shape (N, 5)
        Filled with steps, rejected steps, right-hand-side evaluations, LU factorisations and matrix
        exponentials per subject.
    """
    fn = BATCH[method]
    compile_notice(fn, f"the {METHOD_NAMES[method]} solver", COMPILE_SECONDS[method])
    N = P.shape[0]
    if method == METHOD_EXACT:
        run_subjects(fn, N, P, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, ev_n, times,
                     y0, save, out, status, counters)
    else:
        run_subjects(fn, N, P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
                     ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, float(rtol), float(atol),
                     int(max_steps), float(max_step), counters)
