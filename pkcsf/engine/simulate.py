"""The engine's entry point: :func:`simulate`.

``simulate(model, regimen, params, times=...)`` validates everything at the
boundary (model, parameters of every subject, regimen, times, solver
options), lowers the model to kernel tables, builds per-subject event
arrays, and solves all subjects in one compiled, parallel call, in chunks
that bound memory. It returns a :class:`~pkcsf.engine.results.SimulationResult`.

:class:`Problem` is the prepared form (validated parameters, events and
options), reused by the population summaries that stream over millions of
subjects without holding the full subject × time × compartment array.
"""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numba
import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.core.errors import DosingError, SolverError, check_choice
from pkcsf.core.progress import progress_bar
from pkcsf.engine.compile import CompiledModel, compile_model
from pkcsf.engine.dosing import Dose, Regimen
from pkcsf.engine.expressions import Expression
from pkcsf.engine.model import Model, load_model
from pkcsf.engine.nonmem import from_nonmem
from pkcsf.engine.problem import (
    _build_events,
    _check_values,
    _group_doses,
    _parameter_table,
    _resolve_doses,
    _sid,
    _subject_columns_needed,
)
from pkcsf.solvers import expint as _expint  # noqa: F401  (registers the expint solver in K.BATCH)
from pkcsf.solvers import explicit as _explicit  # noqa: F401  (registers the dopri5 solver in K.BATCH)
from pkcsf.solvers import kernels as K
from pkcsf.solvers import resolve_solver

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pkcsf.engine.results import SimulationResult

__all__ = ["simulate", "Problem", "prepare", "DEFAULT_RTOL", "DEFAULT_ATOL", "MAX_STEPS_PER_DAY", "MIN_MAX_STEPS",
           "step_budget"]

DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-12



# ------------------------------------------------------------------ problem
@dataclass
class Problem:
    """A validated simulation problem, ready to solve in chunks.

    Built by :func:`prepare`; its ``repr`` is one line.

    Attributes
    ----------
    compiled : CompiledModel
        The model's kernel tables.
    P : ndarray, shape (n_subjects, n_columns)
        Parameter matrix (base units).
    ids : ndarray
        Subject labels.
    times : ndarray
        Output times (h).
    method : str
        Solver name.
    rtol, atol, max_steps, max_step
        Solver settings.
    save : ndarray of int
        Saved state indices.
    y0 : ndarray, shape (1 or n_subjects, n_states)
        Initial amounts (mg).
    specs : list
        The doses (internal dose specifications): one list shared by all subjects, or one list per subject.
    shared_regimen : bool
        Whether ``specs`` is one list shared by all subjects.
    extras : dict
        Covariate columns (name -> ndarray, shape (n_subjects,)) that dose expressions use.
    regimen_label : str
        Label of the regimen (``"per-subject"`` for a per-subject regimen).
    info : dict
        Notes on the settings, e.g. ``atol_scaled_by`` when the default absolute tolerance was scaled to a
        problem with doses below 1 mg.
    """

    compiled: CompiledModel
    P: np.ndarray
    ids: np.ndarray
    times: np.ndarray
    method: str
    rtol: float
    atol: float
    max_steps: int
    max_step: float
    save: np.ndarray
    y0: np.ndarray
    specs: list                 # one list of _DoseSpec per subject, or a single shared list
    shared_regimen: bool
    extras: dict
    regimen_label: str = ""
    info: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"Problem(model={self.compiled.model.name!r}, subjects={self.n_subjects}, times={len(self.times)}, "
                f"saved={len(self.save)}, method={self.method!r}, rtol={self.rtol:g}, atol={self.atol:g})")

    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return self.P.shape[0]

    @property
    def saved_names(self) -> list:
        """Names of the saved states."""
        return [self.compiled.state_names[i] for i in self.save]

    def events(self, rows: slice) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The dose events of subjects ``rows`` as the kernels' arrays.

        Parameters
        ----------
        rows : slice
            Subjects.

        Returns
        -------
        tuple of ndarray
            Event times, sites, amounts, kinds and counts.
        """
        P = self.P[rows]
        ids = self.ids[rows]
        extras = {k: v[rows] for k, v in self.extras.items()}
        if self.shared_regimen and P.shape[0] > 1 and _same_doses_for_all(self.specs, P):
            # every subject gets the same events: build them once (the kernels broadcast one row; what
            # _build_events returns for identical rows, without sorting N copies: ~0.5 us per subject, issue 11)
            P, ids = P[:1], ids[:1]
            extras = {k: v[:1] for k, v in extras.items()}
        base = {n: P[:, j] for j, n in enumerate(self.compiled.parameter_names)}
        if self.shared_regimen:
            everyone = np.arange(P.shape[0])
            groups = [(spec, everyone) for spec in self.specs]
        else:
            groups = _group_doses(self.specs[i] for i in range(*rows.indices(self.n_subjects)))
        return _build_events(self.compiled, groups, P, extras, base, ids)

    def solve(self, rows: slice = slice(None), *,
              out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Amounts at the output times for ``rows``: (out, status, counters).

        ``out``, if given, is filled in place: a C-contiguous float64 array of
        shape (n_rows, T, n_saved), e.g. a slice of a larger result array
        (saves a copy per chunk).

        Parameters
        ----------
        rows : slice, optional
            Subjects to solve (default all).
        out : ndarray, optional
            Array to fill (see above).

        Returns
        -------
        tuple
            ``(out, status, counters)``: amounts (n_rows, T, n_saved), :class:`~pkcsf.core.errors.Status` codes,
            solver counters.
        """
        cm = self.compiled
        P = np.ascontiguousarray(self.P[rows])
        n = P.shape[0]
        ev_t, ev_s, ev_a, ev_k, ev_n = self.events(rows)
        y0 = self.y0 if self.y0.shape[0] == 1 else np.ascontiguousarray(self.y0[rows])
        shape = (n, len(self.times), len(self.save))
        if out is None:
            out = np.empty(shape)
        elif out.shape != shape or out.dtype != np.float64 or not out.flags.c_contiguous:
            raise SolverError("out", f"array {out.dtype}{out.shape}", f"must be a C-contiguous float64 array of shape {shape}")
        status = np.zeros(n, dtype=np.int64)
        counters = np.zeros((n, 5), dtype=np.int64)
        method = _METHOD_CODES[self.method]
        K.solve_batch(method, P, cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst, cm.lin_col,
                      cm.mm_src, cm.mm_dst, cm.mm_vmax, cm.mm_km, cm.mm_fu,
                      ev_t, ev_s, ev_a, ev_k, ev_n, self.times, y0, self.save, out, status,
                      self.rtol, self.atol, self.max_steps, self.max_step, counters)
        return out, status, counters

    def chunks(self, chunk_size: int | None = None) -> Iterator[slice]:
        """Yield row slices covering all subjects.

        Parameters
        ----------
        chunk_size : int, optional
            Subjects per chunk (default: a size that bounds memory).

        Yields
        ------
        slice
            Rows of one chunk.
        """
        N = self.n_subjects
        cs = chunk_size or _default_chunk(len(self.times), len(self.save), N)
        for a in range(0, N, cs):
            yield slice(a, min(N, a + cs))


#: solver name -> the kernels' method code (the inverse of ``kernels.METHOD_NAMES``)
_METHOD_CODES = {name: code for code, name in K.METHOD_NAMES.items()}


def _same_doses_for_all(specs: list, P: np.ndarray) -> bool:
    """Whether a shared regimen gives every row of ``P`` the same events: constant amounts (no expression)
    and the same bioavailability, lag and site fractions in every row.
    """
    for spec in specs:
        if isinstance(spec.amount, Expression):
            return False
        for c in (spec.F, spec.lag, *spec.fractions):
            if c >= 0 and not (P[:, c] == P[0, c]).all():
                return False
    return True


def _default_chunk(T: int, S: int, N: int) -> int:
    # keep one chunk's output under ~256 MB, and give each thread several subjects
    per_subject = max(1, T * S * 8)
    return int(max(64, min(N, 256 * 2**20 // per_subject)))


def _check_times(times):
    if times is None:
        raise SolverError("times", None, "output times are required (hours), e.g. numpy.arange(0, 673)")
    try:
        t = np.asarray(times, dtype=float).ravel()
    except (TypeError, ValueError):
        raise SolverError("times", times, "must be numbers (hours)") from None
    if t.size == 0:
        raise SolverError("times", "[]", "at least one output time is needed")
    bad = ~np.isfinite(t)
    if bad.any():
        i = int(np.argmax(bad))
        raise SolverError(f"times[{i}]", float(t[i]), "output times must be finite")
    if (t < 0).any():
        i = int(np.argmax(t < 0))
        raise SolverError(f"times[{i}]", float(t[i]), "output times must be >= 0 h (the simulation starts at time 0)")
    d = np.diff(t)
    if (d == 0).any():
        trip = (d[:-1] == 0) & (d[1:] == 0)
        if trip.any():
            i = int(np.argmax(trip)) + 2
            raise SolverError(f"times[{i}]", float(t[i]), "a time may appear at most twice (before and after the doses at that time)")
    if (d < 0).any():
        i = int(np.argmax(d < 0)) + 1
        raise SolverError(f"times[{i}]", float(t[i]), f"output times must be sorted (it follows {t[i - 1]:g})",
                          "sort them, e.g. numpy.sort(times)")
    return np.ascontiguousarray(t)


def prepare(model: str | Model, regimen: Dose | Regimen | dict | pd.DataFrame,
            params: dict | pd.DataFrame | None = None, *, times: ArrayLike | None = None, solver: str = "auto",
            rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL, max_steps: int | None = None,
            max_step: float = math.inf, outputs: list[str] | None = None,
            y0: ArrayLike | dict | None = None) -> Problem:
    """Validate and prepare a problem (see :func:`simulate` for the arguments).

    Parameters
    ----------
    model : Model or str
        The model or its name.
    regimen : Dose, Regimen, dict or DataFrame
        The doses: one regimen for all, ``{id: regimen}``, or a NONMEM-style table.
    params : dict or DataFrame, optional
        Parameter values (base units): scalars, or one row per subject.
    times, solver, rtol, atol, max_steps, max_step, outputs, y0
        As for :func:`simulate`.

    Returns
    -------
    Problem
        The validated problem; ``problem.solve(rows)`` solves a chunk of subjects.
    """
    if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
        model = load_model(model)
    if not isinstance(model, (Model, CompiledModel)):
        raise SolverError("model", type(model).__name__, "must be a pkcsf Model, a model name or a model file")
    cm = compile_model(model)
    method = resolve_solver(solver)
    rtol = _check_tol("rtol", rtol, 1e-14, 1e-1)
    atol = _check_tol("atol", atol, 0.0, 1.0, allow_zero=True)
    if max_steps is not None and (isinstance(max_steps, bool) or not isinstance(max_steps, (int, np.integer))
                                  or max_steps < 1):
        raise SolverError("max_steps", max_steps, "must be a whole number >= 1, or None for a budget that "
                          f"scales with the simulated window ({MAX_STEPS_PER_DAY:,} steps per day, at least "
                          f"{MIN_MAX_STEPS:,})")
    if not (isinstance(max_step, (int, float)) and max_step > 0):
        raise SolverError("max_step", max_step, "must be > 0 h (or inf)")
    times = _check_times(times)
    if max_steps is None:
        max_steps = step_budget(float(times[-1]))

    # regimen(s): one shared, or one per subject
    per_subject = None
    if isinstance(regimen, pd.DataFrame):
        regimen = from_nonmem(regimen, model=cm.model)
    if isinstance(regimen, dict):
        per_subject = regimen
    elif isinstance(regimen, (list, tuple)) and regimen and all(isinstance(r, Regimen) for r in regimen):
        per_subject = list(regimen)
    if per_subject is None:
        specs = _resolve_doses(cm, regimen)
        spec_lists = [specs]
    else:
        items = per_subject.items() if isinstance(per_subject, dict) else enumerate(per_subject)
        resolved = {k: _resolve_doses(cm, r, where=f"regimen of subject {k!r}") for k, r in items}
        spec_lists = list(resolved.values())
    needed = _subject_columns_needed(spec_lists)
    base, extras, ids = _parameter_table(cm, params, needed)
    N = base.shape[0]
    if per_subject is not None:
        if isinstance(per_subject, dict):
            keys = list(resolved)
            if N == 1 and len(keys) > 1:       # one parameter set for every subject of the table
                base = np.repeat(base, len(keys), axis=0)
                extras = {k: np.repeat(v, len(keys)) for k, v in extras.items()}
                ids = _label_array(keys)
                N = len(keys)
            missing = [i for i in ids.tolist() if i not in resolved]
            if missing and len(keys) == N and not isinstance(params, pd.DataFrame):
                ids = _label_array(keys)
                missing = []
            if missing:
                raise DosingError("regimen", f"no doses for subject {missing[0]!r}",
                                  "each subject ID in params needs its events (IDs in the table: " +
                                  ", ".join(map(str, keys[:10])) + ")")
            specs = [resolved[i] for i in ids.tolist()]
        else:
            if len(spec_lists) == 1:
                specs = spec_lists[0]
                per_subject = None
            elif N == 1:
                base = np.repeat(base, len(spec_lists), axis=0)
                extras = {k: np.repeat(v, len(spec_lists)) for k, v in extras.items()}
                ids = np.arange(len(spec_lists))
                N = len(spec_lists)
                specs = spec_lists
            elif len(spec_lists) != N:
                raise DosingError("regimen", f"{len(spec_lists)} regimens",
                                  f"give one regimen per subject ({N} subjects), or a single shared regimen")
            else:
                specs = spec_lists
    P = cm.evaluate(base)
    _check_values(cm, P, ids)

    if method == "auto":
        method = "rodas5p" if cm.active_nonlinear(P) else "exact"
    elif method == "exact" and cm.active_nonlinear(P):
        i = int(np.argmax((P[:, cm.mm_vmax] != 0).any(axis=1)))
        raise SolverError("solver", "exact",
                          f"the exact solver needs a linear model, but subject {_sid(ids[i])} has an active "
                          "Michaelis-Menten term (Vmax > 0)", "use solver='adaptive' or 'auto'")

    S = cm.n_states
    if outputs is None:
        save = np.arange(S, dtype=np.int64)
    else:
        if isinstance(outputs, str):
            outputs = [outputs]
        save = np.array([cm.state_names.index(check_choice("outputs", o, cm.state_names, SolverError))
                         for o in outputs], dtype=np.int64)
    if y0 is None:
        y0a = np.zeros((1, S))
    else:
        y0a = _initial_state(cm, y0, N)
    info = {}
    if atol == DEFAULT_ATOL:
        # the default absolute tolerance (mg) is made for doses of 1 mg and more; a smaller problem gets it
        # scaled by its largest dose or initial amount, so that dose linearity holds down to tiny doses
        # (1e-12 mg was 2% off with rodas5p at atol 1e-12, issue 9)
        scale = _amount_scale(cm, specs, per_subject is None, P, extras, y0a)
        if 0.0 < scale < 1.0:
            atol = DEFAULT_ATOL * scale
            info["atol_scaled_by"] = scale
    prob = Problem(cm, P, ids, times, method, rtol, atol, int(max_steps), float(max_step), save, y0a,
                   specs, per_subject is None, extras,
                   regimen_label=getattr(regimen, "label", "") if per_subject is None else "per-subject", info=info)
    # fail early on bad events (e.g. an amount expression that is negative for some subject)
    prob.events(slice(0, min(N, 4096)))
    return prob


#: adaptive-solver step budget per simulated day (daily oral dosing of a saturable model takes
#: about 50-70 steps a day; a fixed 200,000 failed 10-year runs, issue 9)
MAX_STEPS_PER_DAY = 2_000
#: the budget of a short window (the former fixed default)
MIN_MAX_STEPS = 200_000


def step_budget(t_end: float, per_day: float = MAX_STEPS_PER_DAY, minimum: int = MIN_MAX_STEPS) -> int:
    """Adaptive-solver step budget of one subject for a window ending at ``t_end`` h:
    ``max(minimum, ceil(per_day * t_end / 24))``.

    Parameters
    ----------
    t_end : float
        End of the window (h).
    per_day : float, optional
        Steps allowed per simulated day.
    minimum : int, optional
        Smallest budget.

    Returns
    -------
    int
        ``max_steps`` for the adaptive solvers.

    Examples
    --------
    >>> step_budget(24 * 365)
    730000
    """
    return int(max(minimum, math.ceil(per_day * max(t_end, 0.0) / 24.0)))


def _label_array(keys) -> np.ndarray:
    """Subject labels as an array; mixed kinds (1 and 'pt-02') stay as they are (object array), never cast to text."""
    kinds = {type(k) for k in keys}
    if len(kinds) > 1 and not kinds <= {int, float, np.int64, np.float64}:
        return np.array(keys, dtype=object)
    return np.asarray(keys)


def _amount_scale(cm, specs, shared: bool, P, extras, y0a) -> float:
    """The largest dose amount (mg) of any subject, or initial amount: the problem's amount scale."""
    scale = float(np.max(y0a)) if y0a.size else 0.0
    cols = None
    seen = set()
    for lst in ([specs] if shared else specs):
        for spec in lst:
            if isinstance(spec.amount, Expression):
                if spec.amount.text in seen:
                    continue
                seen.add(spec.amount.text)
                if cols is None:
                    cols = {n: P[:, j] for j, n in enumerate(cm.parameter_names)}
                    cols.update(extras)
                if any(m not in cols for m in spec.amount.names):
                    continue            # the events check names the missing column
                with np.errstate(all="ignore"):
                    a = np.asarray(spec.amount.evaluate({m: cols[m] for m in spec.amount.names}), dtype=float)
                a = a[np.isfinite(a)]
                if a.size:
                    scale = max(scale, float(a.max()))
            else:
                scale = max(scale, float(spec.amount))
    return scale


def _initial_state(cm, y0, N):
    S = cm.n_states
    if isinstance(y0, dict):
        arr = np.zeros((1, S))
        for k, v in y0.items():
            idx = cm.state_names.index(check_choice("y0", k, cm.state_names[:-1], SolverError))
            arr[0, idx] = v
    else:
        arr = np.atleast_2d(np.asarray(y0, dtype=float))
        if arr.shape[1] == S - 1:
            arr = np.hstack([arr, np.zeros((arr.shape[0], 1))])
        if arr.shape[1] != S or arr.shape[0] not in (1, N):
            raise SolverError("y0", f"shape {arr.shape}", f"must have one amount (mg) per compartment ({S - 1}), for one or every subject")
    if not np.isfinite(arr).all() or (arr < 0).any():
        raise SolverError("y0", arr.tolist()[0][:6], "initial amounts must be finite and >= 0 mg")
    return np.ascontiguousarray(arr)


def _check_tol(name, value, lo, hi, allow_zero=False):
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SolverError(name, value, "must be a number") from None
    if not math.isfinite(v) or v < lo or v > hi or (v == 0 and not allow_zero):
        raise SolverError(name, value, f"must be a number in [{lo:g}, {hi:g}]")
    return v


def simulate(model: str | Model, regimen: Dose | Regimen | dict | pd.DataFrame,
             params: dict | pd.DataFrame | None = None, *, times: ArrayLike | None = None, solver: str = "auto",
             rtol: float = DEFAULT_RTOL, atol: float = DEFAULT_ATOL, max_steps: int | None = None,
             max_step: float = math.inf, outputs: list[str] | None = None, y0: ArrayLike | dict | None = None,
             threads: int | None = None, chunk_size: int | None = None,
             progress: bool | None = None) -> SimulationResult:
    """Simulate a compartmental model for one or many subjects (the engine).

    The top-level :func:`pkcsf.simulate` also takes a drug name; this function takes
    models only.

    Parameters
    ----------
    model : Model, str or path
        A :class:`~pkcsf.engine.model.Model`, the name of a model in ``models/``, or
        a model TOML file.
    regimen : Regimen, Dose, list of Dose, DataFrame, dict or list of Regimen
        The doses: one regimen shared by all subjects (amounts may be
        expressions over subject columns), a NONMEM-style event table
        (``ID TIME AMT CMT EVID II ADDL RATE``), ``{id: Regimen}``, or one
        regimen per subject.
    params : dict, DataFrame or ndarray
        Parameter values in base units: ``{name: value or array}``, a
        DataFrame with one row per subject (optional ``ID`` column; extra
        columns only if a dose amount uses them), or an array of shape
        (N, n_params) in the model's parameter order.
    times : array_like, shape (T,)
        Output times in h, sorted, >= 0. The simulation starts at time 0.
        Outputs are right-continuous (a dose at an output time is included);
        a time listed twice reports the value just before that time's doses,
        then the value just after.
    solver : {"auto", "exact", "rodas5p", "radau", "dopri5", "expint"}
        ``auto`` uses the exact matrix-exponential solver when the model is
        linear for every subject, else the adaptive Rodas5P solver
        (``"adaptive"`` is an alias). See :mod:`pkcsf.solvers`.
    rtol, atol : float
        Adaptive-solver tolerances: relative, and absolute on concentrations
        (mg/L) of compartments with a volume (on amounts, mg, otherwise).
        The exact solver ignores them. The default ``atol`` (1e-12) suits doses
        of 1 mg and more; when the largest dose or initial amount of the problem
        is below 1 mg, the default is scaled by it (``result.atol`` is the value
        used), so that results stay linear in the dose down to 1e-12 mg.
    max_steps, max_step : adaptive-solver limits per subject. ``max_steps`` is the whole window's
        step budget; None (default) scales it with the window: :data:`MAX_STEPS_PER_DAY` steps per
        simulated day, at least :data:`MIN_MAX_STEPS` (see :func:`step_budget`). A subject that
        reaches it fails (status ``MAX_STEPS``); its outputs from there on are NaN, never partial.
    outputs : list of str, optional
        States to keep (default: all compartments and ``eliminated``).
    y0 : dict or array, optional
        Initial amounts (mg) at time 0 (default: zero).
    threads : int, optional
        Number of threads (default: all cores); results do not depend on it.
    chunk_size : int, optional
        Subjects per compiled call (bounds memory); results do not depend on it.
    progress : bool, optional
        Show a progress bar (default: when there is more than one chunk).

    Returns
    -------
    SimulationResult
        ``amounts`` (N, T, S) in mg, ``concentrations()``, ``to_frame()``,
        per-subject ``status``.
    """
    from pkcsf.engine.results import SimulationResult

    prob = prepare(model, regimen, params, times=times, solver=solver, rtol=rtol, atol=atol,
                   max_steps=max_steps, max_step=max_step, outputs=outputs, y0=y0)
    N, T, S = prob.n_subjects, len(prob.times), len(prob.save)
    out = np.empty((N, T, S))
    status = np.empty(N, dtype=np.int64)
    counters = np.empty((N, 5), dtype=np.int64)
    chunks = list(prob.chunks(chunk_size))
    t0 = _time.perf_counter()
    with _threads(threads):
        bar = progress_bar(progress, total=len(chunks), desc="simulating", unit="chunk", default=len(chunks) > 1,
                           leave=False)
        try:
            for rows in chunks:
                _, s, c = prob.solve(rows, out=out[rows])      # written in place
                status[rows], counters[rows] = s, c
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.close()
    elapsed = _time.perf_counter() - t0
    res = SimulationResult(prob, out, status, counters, elapsed)
    res._report_failures()
    return res


class _threads:
    """Temporarily set Numba's thread count."""

    def __init__(self, n):
        self.n = n
        self.old = None

    def __enter__(self):
        if self.n is not None:
            n = int(self.n)
            if not 1 <= n <= numba.config.NUMBA_NUM_THREADS:
                raise SolverError("threads", self.n, f"must be between 1 and {numba.config.NUMBA_NUM_THREADS}")
            self.old = numba.get_num_threads()
            numba.set_num_threads(n)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            numba.set_num_threads(self.old)
        return False
