"""Scenario runs that keep the population summary, not the per-subject table: millions of subjects with
bounded memory, locally or on a cluster (issue 11).

``run(scenario, executor=client, keep="summary")`` (:func:`run_summary`) simulates the arms chunk by
chunk as :func:`~pkcsf.clinical.scenario.run` does, but

* at most ``in_flight`` chunks are outstanding on the executor at a time (the workers hold nothing
  else; a finished chunk's result is dropped as soon as it is read);
* each chunk's read-outs (float64, the values of the metrics table) are written to one scratch file
  per arm, drug and read-out, at the subjects' offset (group-major), and the percentiles are taken one
  read-out and group at a time from those files, **exactly**: the same order statistics and the same
  linear interpolation as ``ScenarioResult.summary()`` (pandas' grouped quantile), failed subjects
  excluded and counted, so the table equals a full run's to the last bit;
* the client keeps which subjects were solved (one byte per subject and drug), one read-out column of
  one group at a time (8 bytes per subject, and a copy of the solved values), the band profiles of the first ``band_subjects``
  subjects, the typical subject and the failed subjects' ids.

Scratch disk: subjects x groups x read-outs x 8 bytes per arm and drug (0.56 GB per million subjects
for 7 groups and 10 read-outs), in a temporary folder (``scratch``: a folder of your choice, else the
system's); a drug's files are deleted as soon as its percentiles are taken, and the folder at the end,
also when the run fails or is interrupted. Event-table arms (real
patients, a few hundred rows) are refused: run them with ``keep="metrics"``.

Internal to :mod:`pkcsf.clinical.scenario`, whose :func:`~pkcsf.clinical.scenario.run` calls
:func:`run_summary` for ``keep="summary"``.
"""
from __future__ import annotations

import concurrent.futures as cf
import math
import shutil
import tempfile
import time as _time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pkcsf.analysis.summaries import _partitioned_quantiles, quantiles  # noqa: F401 (quantiles: public here)
from pkcsf.clinical.grid_error import threshold_grid_error
from pkcsf.clinical.population import Population
from pkcsf.clinical.resources import USABLE, estimate_bytes
from pkcsf.clinical.scenario_reduce import _chunk, _DrugRun, _readout_groups, _thresholds_for, arm_lumbar_times
from pkcsf.clinical.scenario_results import (
    _FAILURE_COLUMNS,
    ArmResult,
    ScenarioResult,
    _cmax_grid_error,
    _warn_coarse_grid,
    _warn_failures,
)
from pkcsf.clinical.scenario_run import (
    _CHUNK,
    _as_regimen,
    _check_arm_uncertainty,
    _drug_setup,
    _grid,
    arm_setups,
    warn_doses_after_end,
)
from pkcsf.clinical.scenario_spec import Scenario
from pkcsf.core.errors import ScenarioError, Status, check_int
from pkcsf.core.memory import available_memory, format_bytes
from pkcsf.core.progress import progress_bar

__all__ = ["SummaryResult", "run_summary"]

# metrics columns that label a row rather than hold a read-out (ScenarioResult.summary skips the same)
_LABELS = ("arm", "id", "drug", "group", "unit", "auc_unit", "status")


def _value_columns(columns) -> list[str]:
    return [c for c in columns if c not in _LABELS and not c.startswith("pathology_") and c != "uncertainty_draw"]


# ------------------------------------------------------------------ on the workers
def _summary_chunk(dr: _DrugRun, pop: Population, seed: int, variability: bool, start: int, n: int, nb: int,
                   arm_name: str, targets: tuple) -> dict:
    """Subjects ``start .. start+n-1`` simulated and read out (:func:`~pkcsf.clinical.scenario_reduce._chunk`),
    compacted for the summary: read-outs as one float64 array (read-outs, groups, subjects), which subjects
    were solved, the failures, target counts (met, solved) and the band profiles (first chunks only).
    """
    r = _chunk(dr, pop, seed, variability, start, n, nb, arm_name, targets)
    df = r["readouts"]
    G = len(dr.groups)
    cols = _value_columns(df.columns)
    values = np.empty((len(cols), G, n), dtype=np.float64)
    for j, c in enumerate(cols):
        values[j] = df[c].to_numpy(np.float64).reshape(n, G).T
    ok = (df["status"] == Status.SUCCESS.name).to_numpy().reshape(n, G).all(axis=1)   # one status per subject
    return {"start": start, "n": n, "columns": list(df.columns), "cols": cols, "values": values, "ok": ok,
            "failed": r["failed"], "failures": r["failures"], "band": r["band"],
            "targets": {k: (int(np.count_nonzero(v)), int(v.size)) for k, v in r["targets"].items()},
            "cmax_exact": r.get("cmax_exact", False)}


# ------------------------------------------------------------------ on the client
class _DrugSink:
    """The read-outs of one drug of one arm, gathered chunk by chunk into scratch files."""

    def __init__(self, folder: Path, N: int, G: int, nb: int, T: int, targets: tuple):
        self.folder, self.N, self.G = folder, N, G
        self.files: dict = {}
        self.cols: list | None = None
        self.columns: list | None = None
        self.ok = np.zeros(N, dtype=bool)
        self.failed = 0
        self.failures: dict = {}               # chunk start -> [(id, status)]
        self.band = np.empty((nb, T, G))
        self.met = {tg.label: [0, 0] for tg in targets}
        self.exact: list = []
        self.chunks = 0
        self.pct: dict | None = None

    def add(self, r: dict) -> None:
        if self.cols is None:
            self.cols, self.columns = r["cols"], r["columns"]
            self.folder.mkdir()
            self.files = {c: open(self.folder / f"{j}.f8", "w+b") for j, c in enumerate(self.cols)}
        elif r["cols"] != self.cols:        # the same drug run gives the same columns in every chunk
            raise RuntimeError(f"chunk at subject {r['start']} has columns {r['cols']}, expected {self.cols}")
        a, n = r["start"], r["n"]
        for j, c in enumerate(self.cols):
            f = self.files[c]
            for g in range(self.G):        # group-major: one group's column is read back in one piece
                f.seek((g * self.N + a) * 8)
                f.write(np.ascontiguousarray(r["values"][j, g]).tobytes())
        self.ok[a:a + n] = r["ok"]
        self.failed += r["failed"]
        self.failures[a] = r["failures"]
        if r["band"] is not None:
            self.band[a:a + len(r["band"])] = r["band"]
        for label, (met, solved) in r["targets"].items():
            self.met[label][0] += met
            self.met[label][1] += solved
        self.exact.append(r["cmax_exact"])
        self.chunks += 1

    def percentiles(self, q: Sequence[float]) -> dict:
        """{(group index, read-out): [percentiles]}, one read-out and group in memory at a time."""
        out = {}
        for c in self.cols or []:
            f = self.files[c]
            f.flush()
            for g in range(self.G):
                f.seek(g * self.N * 8)
                v = np.fromfile(f, dtype=np.float64, count=self.N)
                if len(v) != self.N:
                    raise RuntimeError(f"scratch file of {c!r} is short: {len(v)} of {self.N} values")
                x = v[self.ok & ~np.isnan(v)]           # solved subjects, NaN skipped (as summary() does)
                del v
                out[(g, c)] = _partitioned_quantiles(x, q)
                del x
        return out

    def finish(self, q: Sequence[float]) -> None:
        """Take the percentiles once every chunk is in, then delete this drug's scratch files."""
        self.pct = self.percentiles(q)
        self.close()
        shutil.rmtree(self.folder, ignore_errors=True)

    def close(self) -> None:
        for f in self.files.values():
            f.close()
        self.files = {}


def _is_dask(executor) -> bool:
    return type(executor).__module__.split(".")[0] == "distributed"


def _wait_one(pending: list) -> tuple[list, list]:
    """(done, still pending): blocks until at least one of ``pending`` is finished."""
    if all(isinstance(f, cf.Future) for f in pending):
        done = set(cf.wait(pending, return_when=cf.FIRST_COMPLETED).done)
    else:           # any other future with result(): first in, first out
        pending[0].result()
        done = {pending[0]}
    return [f for f in pending if f in done], [f for f in pending if f not in done]


def _stream(executor, jobs, in_flight: int):
    """Yield ``(key, result)`` of ``jobs`` ``[(key, fn, args)]`` as they finish, with at most ``in_flight``
    submitted and not yet read; outstanding futures are cancelled when the consumer stops (an error, an
    interrupt).
    """
    if executor is None:
        for key, fn, args in jobs:
            yield key, fn(*args)
        return
    todo = iter(jobs)
    keys: dict = {}
    dask = _is_dask(executor)

    def submit():
        job = next(todo, None)
        if job is None:
            return None
        key, fn, args = job
        fut = executor.submit(fn, *args, pure=False) if dask else executor.submit(fn, *args)
        keys[id(fut)] = key
        return fut

    first = [f for f in (submit() for _ in range(in_flight)) if f is not None]
    if dask:            # dask's own completion queue, on this client's event loop
        from distributed import as_completed

        ac = as_completed(first, loop=executor.loop)
        try:
            for fut in ac:
                key = keys.pop(id(fut))
                r = fut.result()
                del fut                 # the worker's copy is released with the last reference
                nxt = submit()
                if nxt is not None:
                    ac.add(nxt)
                yield key, r
        finally:
            for fut in list(ac.futures):
                fut.cancel()
            ac.clear()
        return
    pending = first
    try:
        while pending:
            done, pending = _wait_one(pending)
            for i, fut in enumerate(done):
                key = keys.pop(id(fut))
                try:
                    r = fut.result()
                except BaseException:
                    pending += done[i + 1:]         # cancelled below with the others
                    raise
                nxt = submit()
                if nxt is not None:
                    pending.append(nxt)
                yield key, r
    finally:
        for fut in pending:
            fut.cancel()


def _plan(scn: Scenario) -> list:
    """[(arm, scenario of the arm, {drug: regimen}, {drug: setup})], as :func:`~pkcsf.clinical.scenario.run`."""
    plan = []
    for arm in scn.arms:
        sa = arm.scenario_for(scn)
        if arm.is_event_table:
            raise ScenarioError(f"arms[{arm.name!r}].regimen", "an event table",
                                "keep='summary' runs arms of virtual subjects (a regimen text, Dose or Regimen); "
                                "an event-table arm's patients are few and real",
                                "run this arm with keep='metrics' (the default)")
        _, regs, setups = arm_setups(arm, scn)
        plan.append((arm, sa, regs, setups))
    return plan


def _check_resources(scn: Scenario, plan: list, cs: int, folder: Path, *, memory: int | None = None,
                     disk: int | None = None) -> None:
    """Refuse, before simulating, a run whose bands and chunk do not fit in memory or whose read-outs do
    not fit in the scratch folder (the per-subject table is never held, so subjects cost disk, not memory).
    """
    memory = available_memory() if memory is None else memory
    worst, disk_need = None, []
    for arm, sa, regs, setups in plan:
        times, _ = _grid(sa, regs)
        for drug, setup in setups.items():
            G = len(_readout_groups(sa, setup, f"arm {arm.name!r} ({drug})"))
            parts = estimate_bytes(subjects=sa.subjects, times=len(times), groups=G,
                                   states=len(setup.model.compartments) + 1, band_subjects=sa.band_subjects,
                                   chunk=cs, parameters=len(setup.parameters))
            parts.pop("per-subject read-outs")
            parts.pop("subject parameters")
            # one read-out column of one group (read, then the solved values), the solved masks
            parts["summary columns"] = float(sa.subjects) * (2 * 8 + 1 + sum(len(p[2]) for p in plan))
            if worst is None or sum(parts.values()) > sum(worst[1].values()):
                worst = (f"arm {arm.name!r} ({drug})", parts)
            # read-outs: Cmax, Tmax, AUC, last-interval Cmax and AUC, trough, two ratios, 2 per threshold
            disk_need.append(float(sa.subjects) * G * (8 + 2 * len(_thresholds_for(sa, setup))) * 8)
    if worst is not None and memory is not None:
        need = sum(worst[1].values())
        if need > USABLE * memory:
            big = max(worst[1], key=worst[1].get)
            field = {"population bands": "band_subjects", "summary columns": "subjects"}.get(big, "dt")
            value = {"band_subjects": scn.band_subjects, "subjects": scn.subjects, "dt": scn.dt}[field]
            raise ScenarioError(field, value, f"the run would need about {format_bytes(need)} of memory "
                                f"({big} {format_bytes(worst[1][big])} in {worst[0]}), more than the "
                                f"{format_bytes(memory)} available", "fewer band_subjects, a larger dt or fewer "
                                "subjects per run (split the run by seed)")
    # two drugs' files exist at once at most (a drug's are deleted when its percentiles are taken)
    need = sum(sorted(disk_need)[-2:])
    free = shutil.disk_usage(folder).free if disk is None else disk
    if need > free:
        raise ScenarioError("scratch", str(folder), f"the run writes about {format_bytes(need)} of read-outs "
                            f"there, and {format_bytes(free)} are free", "choose a scratch folder with more "
                            "space, or fewer subjects per run")


class _SummaryArmResult(ArmResult):
    """An :class:`ArmResult` of a ``keep="summary"`` run: everything but the per-subject metrics."""

    @property
    def metrics(self):
        raise ScenarioError("keep", "summary", f"arm {self.name!r} of a run with keep='summary' has the population "
                            "summary, the bands, the targets and the failures, not the per-subject metrics",
                            "use res.summary(), or run again with keep='metrics' (the default)")

    @metrics.setter
    def metrics(self, value):
        pass

    def __repr__(self):
        return f"ArmResult({self.name!r}, summary only; drugs {', '.join(self.groups)}; unit {self.unit})"


class SummaryResult(ScenarioResult):
    """The outcome of ``run(..., keep="summary")``: a :class:`ScenarioResult` without the per-subject table.

    ``summary()`` gives the percentiles asked for at run time (the same table a full run's ``summary()``
    gives); bands, targets, failures, plots and provenance are as for a full run; ``metrics()`` raises.

    Parameters
    ----------
    scenario : Scenario
        What was run.
    arms : dict of str to ArmResult
        Results per arm (without per-subject metrics).
    elapsed : float
        Wall time (s).
    table : DataFrame
        The summary table.
    q : sequence of float
        The percentiles in ``table``.
    """

    def __init__(self, scenario: Scenario, arms: dict, elapsed: float, table: pd.DataFrame, q: Sequence[float]):
        super().__init__(scenario, arms, elapsed)
        self._table = table
        self._q = tuple(q)

    def __repr__(self):
        return super().__repr__()[:-1] + "; summary only)"

    def metrics(self) -> pd.DataFrame:
        """Not kept by a ``keep="summary"`` run.

        Returns
        -------
        DataFrame
            Never: raises.

        Raises
        ------
        ScenarioError
            Always; the summary, bands, targets and failures are kept.
        """
        raise ScenarioError("keep", "summary", "a run with keep='summary' keeps the population summary, the bands, "
                            "the targets and the failures, not the per-subject metrics table",
                            "use res.summary(), or run again with keep='metrics' (the default)")

    def summary(self, q: Sequence[float] | None = None) -> pd.DataFrame:
        """Population percentiles of each read-out, per arm, drug and group (as :meth:`ScenarioResult.summary`).

        Parameters
        ----------
        q : sequence of float, optional
            Percentiles, among those the run kept (default: all of them).

        Returns
        -------
        DataFrame
            One row per arm, drug and group: ``unit``, ``n`` (solved subjects), ``n_failed`` (excluded) and
            ``<read-out>_p<q>`` columns.

        Raises
        ------
        ScenarioError
            A percentile the run did not keep.
        """
        if q is None:
            return self._table.copy()
        q = list(q)
        missing = [x for x in q if x not in self._q]
        if missing:
            raise ScenarioError("q", missing, f"this run kept the percentiles {list(self._q)}",
                                f"run again with run(..., keep='summary', q={q})")
        labels = list(self._table.columns[:6])          # arm, drug, group, unit, n, n_failed
        first = f"_p{self._q[0]:g}"
        reads = [c[:-len(first)] for c in self._table.columns[6::len(self._q)]]
        return self._table[labels + [f"{c}_p{x:g}" for c in reads for x in q]].copy()


def run_summary(scenario: Scenario, *, executor: object | None = None, q: Sequence[float] = (5, 50, 95),
                in_flight: int | None = None, scratch: str | Path | None = None,
                progress: bool | None = None) -> SummaryResult:
    """Simulate every arm of ``scenario`` keeping the population summary, not the per-subject table.

    What ``run(scenario, keep="summary", ...)`` calls; see the module docstring.

    Parameters
    ----------
    scenario : Scenario
        Arms of virtual subjects (event-table arms are refused), population, physiology, read-outs.
    executor : object, optional
        Anything with ``submit(fn, *args)`` returning a future (a ``dask.distributed.Client``, a
        ``concurrent.futures`` executor); default: this process.
    q : sequence of float, optional
        The percentiles of the summary (default 5, 50, 95).
    in_flight : int, optional
        Chunks submitted and not yet read back, at most (default: twice the executor's workers, else 4).
    scratch : str or Path, optional
        Folder for the temporary read-out files (default: the system's temporary folder); a subfolder is
        made there and removed at the end.
    progress : bool, optional
        Show a progress bar; default: for 20,000 subjects or more.

    Returns
    -------
    SummaryResult
        ``summary()``, bands, targets, failures, ``plot()``, ``cite()``; ``metrics()`` raises.

    Raises
    ------
    ScenarioError
        An event-table arm, bad ``q``/``in_flight``/``scratch``, or a run that does not fit.
    """
    res = _run_summary(scenario, executor=executor, q=q, in_flight=in_flight, scratch=scratch, progress=progress)
    _warn_failures(res)         # (the warnings point at the caller of this function)
    _warn_coarse_grid(res)
    return res


def check_executor(executor: object | None) -> None:
    """Refuse an executor the run cannot use, before anything is simulated.

    A process pool that forks (the default start method on Linux) copies a process whose compiled kernels have
    started threads; the children then stop with "fork() called from a process already using GNU OpenMP" and the
    pool breaks mid-run. Such a pool is refused, naming the spawn context that works.

    Parameters
    ----------
    executor : object or None
        What ``run(..., executor=)`` was given.

    Raises
    ------
    ScenarioError
        An object without ``submit``, or a ``ProcessPoolExecutor`` with the fork start method.
    """
    if executor is None:
        return
    if not callable(getattr(executor, "submit", None)):
        raise ScenarioError("executor", type(executor).__name__, "must have submit(fn, *args) returning a future "
                            "(a dask.distributed.Client, a concurrent.futures executor) or be None")
    ctx = getattr(executor, "_mp_context", None)
    method = ctx.get_start_method() if ctx is not None and hasattr(ctx, "get_start_method") else None
    if method == "fork":
        raise ScenarioError("executor", "ProcessPoolExecutor with the 'fork' start method",
                            "a process pool that spawns its workers (forked workers inherit the compiled kernels' "
                            "threads and stop)",
                            fix="ProcessPoolExecutor(mp_context=multiprocessing.get_context('spawn')), a "
                                "ThreadPoolExecutor, or a dask.distributed.Client")


def _run_summary(scenario: Scenario, *, executor, q, in_flight, scratch, progress) -> SummaryResult:
    """:func:`run_summary` without its warnings (``run`` gives them, pointing at its caller)."""
    scn = scenario
    t0 = _time.perf_counter()
    check_executor(executor)
    q = _check_q(q)
    in_flight = _in_flight(executor, in_flight)
    base = Path(scratch) if scratch is not None else Path(tempfile.gettempdir())
    if not base.is_dir():
        raise ScenarioError("scratch", str(base), "must be an existing folder",
                            "create it, or leave scratch unset for the system's temporary folder")
    plan = _plan(scn)
    cs = scn.chunk_size or _CHUNK
    _check_resources(scn, plan, cs, base)
    N = scn.subjects
    nchunks = -(-N // cs)
    bar = progress_bar(progress, total=sum(len(p[2]) for p in plan) * nchunks, desc="simulating", unit="chunk",
                       default=N >= 20000)
    folder = Path(tempfile.mkdtemp(prefix="pkcsf-summary-", dir=base))
    sinks: dict = {}
    try:
        drugs = []          # one entry per arm and drug, in the order of a full run's metrics table
        for arm, sa, regs, setups in plan:
            times, end = _grid(sa, regs)
            warn_doses_after_end(arm.name, regs, end)
            _check_arm_uncertainty(arm, regs, setups)
            anchors = arm_lumbar_times(arm.name, regs, setups)
            for drug, reg in regs.items():
                dr, pop, typical, typ_status = _drug_setup(sa, arm, drug, reg, setups[drug], times, end, anchors)
                nb = min(N, sa.band_subjects)
                targets = tuple(tg for tg in sa.targets if tg.drug in (None, drug))
                key = (arm.name, drug)
                sinks[key] = _DrugSink(folder / f"{len(sinks)}", N, len(dr.groups), nb, len(times), targets)
                drugs.append((key, arm, sa, dr, pop, nb, targets, typical, typ_status, times))
        jobs = []
        for key, arm, sa, dr, pop, nb, targets, *_ in drugs:
            shared = (dr, pop)
            if _is_dask(executor):      # sent to the workers once, not with every chunk
                shared = tuple(executor.scatter(list(shared), broadcast=True))
            jobs += [(key, _summary_chunk, (*shared[:2], sa.seed, sa.draws_variability, s, min(cs, N - s), nb, arm.name,
                                            targets)) for s in range(0, N, cs)]
        stream = _stream(executor, jobs, in_flight)
        try:
            for key, r in stream:
                sinks[key].add(r)
                del r
                if sinks[key].chunks == nchunks:       # this drug is complete: percentiles, files deleted
                    sinks[key].finish(q)
                if bar is not None:
                    bar.update(1)
        finally:
            stream.close()          # cancels the chunks still outstanding when something failed
        table, arms = _assemble(scn, drugs, sinks, q, nchunks)
    finally:
        if bar is not None:
            bar.close()
        for s in sinks.values():
            s.close()
        shutil.rmtree(folder, ignore_errors=True)
    return SummaryResult(scn, arms, _time.perf_counter() - t0, table, q)


def _check_q(q) -> tuple:
    try:
        out = tuple(float(x) for x in q)
    except (TypeError, ValueError):
        raise ScenarioError("q", q, "must be a sequence of percentiles between 0 and 100") from None
    if not out or any(not (0.0 <= x <= 100.0) for x in out):
        raise ScenarioError("q", q, "must be a sequence of percentiles between 0 and 100")
    return tuple(x if x != int(x) else int(x) for x in out)


def _in_flight(executor, in_flight) -> int:
    if in_flight is not None:
        check_int("in_flight", in_flight, 1, ScenarioError)
        return int(in_flight)
    if _is_dask(executor):
        try:
            return max(2, 2 * sum(executor.nthreads().values()))
        except Exception:               # a client without workers yet
            return 4
    workers = getattr(executor, "_max_workers", None)
    return 2 * workers if isinstance(workers, int) and workers > 0 else 4


def _assemble(scn: Scenario, drugs: list, sinks: dict, q: tuple, nchunks: int) -> tuple:
    """The summary table (as ``ScenarioResult.summary`` lays it out) and the arms' results."""
    # the metrics table's columns: the union of every arm and drug's, in a full run's concatenation order
    frames = [pd.DataFrame(columns=sinks[d[0]].columns or []) for d in drugs]
    value_cols = _value_columns(pd.concat(frames, ignore_index=True).columns if frames else [])
    rows = []
    per_arm: dict = {}
    for key, arm, sa, dr, pop, nb, targets, typical, typ_status, times in drugs:
        s = sinks[key]
        if s.chunks != nchunks or s.pct is None:
            raise RuntimeError(f"{s.chunks} of {nchunks} chunks of {key} came back")
        pct = s.pct
        for g, group in enumerate(dr.groups):
            n_ok = int(np.count_nonzero(s.ok))
            row = {"arm": arm.name, "drug": dr.drug, "group": group, "unit": sa.unit,
                   "n": n_ok, "n_failed": s.N - n_ok}
            for c in value_cols:
                vals = pct.get((g, c), [math.nan] * len(q)) if n_ok else [math.nan] * len(q)
                for x, v in zip(q, vals):
                    row[f"{c}_p{x:g}"] = v
            rows.append(row)
        per_arm.setdefault(arm.name, []).append((key, arm, sa, dr, pop, nb, targets, typical, typ_status, times))
    cols = ["arm", "drug", "group", "unit", "n", "n_failed"] + [f"{c}_p{x:g}" for c in value_cols for x in q]
    table = pd.DataFrame(rows, columns=cols)
    arms = {name: _arm_result(entries, sinks) for name, entries in per_arm.items()}
    return table, arms


def _arm_result(entries: list, sinks: dict) -> ArmResult:
    profiles, typical, groups, dose_times, target_rows, failures = {}, {}, {}, {}, [], []
    auc_source, grid_err, above_err, setups = {}, {}, {}, {}
    failed = 0
    for key, arm, sa, dr, pop, nb, targets, typ, typ_status, times in entries:
        s = sinks[key]
        drug = dr.drug
        profiles[drug], typical[drug], groups[drug], dose_times[drug] = s.band, typ, dr.groups, dr.dose_times
        setups[drug] = dr.setup
        if typ_status != 0:
            failures.append((arm.name, drug, "typical", typ_status))
        for start in sorted(s.failures):
            failures += [(arm.name, drug, i, st) for i, st in s.failures[start]]
        failed += s.failed
        auc_source[drug] = (dr, pop, sa.seed, sa.draws_variability, nb)
        if s.exact and all(s.exact):
            grid_err[drug] = {g: 0.0 for g in dr.groups}
        else:
            grid_err[drug] = dict(zip(dr.groups, _cmax_grid_error(times, s.band, dr.right, dr.left)))
        above_err[drug] = threshold_grid_error(dr, times, s.band, targets)
        for tg in targets:
            met, solved = s.met[tg.label]
            target_rows.append({"arm": arm.name, "drug": drug, "target": tg.label,
                                "fraction": met / solved if solved else float("nan"),
                                "n": solved, "n_failed": s.failed, "subjects": solved + s.failed})
    fail_df = pd.DataFrame([{"arm": a, "drug": d, "id": i, "status": Status(st).name, "message": Status(st).message}
                            for a, d, i, st in failures], columns=_FAILURE_COLUMNS)
    out = _SummaryArmResult(arm.name, times, profiles, typical, groups, None,
                            pd.DataFrame(target_rows, columns=["arm", "drug", "target", "fraction", "n", "n_failed",
                                                               "subjects"]),
                            dose_times, _as_regimen(arm.regimen, arm.drug_name, "regimen", sa.age), setups, failed,
                            sa.unit, fail_df, auc_source)
    out.cmax_grid_error = grid_err
    out.above_grid_error = above_err
    return out
