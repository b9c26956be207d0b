"""Running the arms of a scenario: regimens split by drug, the output grid, population arms chunk by
chunk (locally or on an executor) and event-table arms.

Internal to :mod:`pkcsf.clinical.scenario`, whose :func:`~pkcsf.clinical.scenario.run` calls these.
"""
from __future__ import annotations

import math
import warnings
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import numpy as np
import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.events import DatasetRun, read_events
from pkcsf.clinical.grid_error import threshold_grid_error
from pkcsf.clinical.population import Population
from pkcsf.clinical.resources import check_grid
from pkcsf.clinical.scenario_population import _check_age_conflict, population_for
from pkcsf.clinical.scenario_reduce import (
    _chunk,
    _chunk_sample,
    _chunk_solve,
    _chunk_table,
    _DrugRun,
    _readout_groups,
    _thresholds_for,
    arm_lumbar_times,
)
from pkcsf.clinical.scenario_results import _FAILURE_COLUMNS, ArmResult, DosesAfterEndWarning, _cmax_grid_error
from pkcsf.clinical.scenario_spec import Arm, Scenario
from pkcsf.core.errors import ScenarioError, Status
from pkcsf.engine.dosing import Dose, Regimen


def _as_regimen(reg, drug, field, age=None) -> Regimen:
    from pkcsf.clinical.regimens import parse_regimen

    if isinstance(reg, str):
        # mg/m2, mg/kg and age-based doses: each subject's own BSA, WT and AGE (unless the scenario fixes an age)
        return parse_regimen(reg, drug=drug, bsa="BSA", age="AGE" if age is None else age, weight="WT")
    if isinstance(reg, Dose):
        return Regimen([reg])
    if isinstance(reg, (list, tuple)) and all(isinstance(d, Dose) for d in reg):
        return Regimen(list(reg))
    if isinstance(reg, Regimen):
        return reg
    raise ScenarioError(field, type(reg).__name__, "must be a Regimen, a Dose or regimen text such as "
                                                   "'12 mg ommaya twice weekly x 4 weeks'")


def _split_by_drug(arm: Arm, age=None) -> dict:
    if arm.is_event_table:       # one drug per table: the arm's
        if arm.drug_name is None:
            raise ScenarioError(f"arms[{arm.name!r}].drug", None, "an event-table arm needs its drug")
        d = cns.drug(arm.drug_object(arm.drug_name))
        return {d.name: read_events(arm.regimen, parameters=list(d.parameters.values))}
    reg = _as_regimen(arm.regimen, arm.drug_name, f"arms[{arm.name!r}].regimen", age)
    out: dict[str, list] = {}
    for d in reg.doses:
        drug = d.drug or arm.drug_name
        if drug is None:
            raise ScenarioError(f"arms[{arm.name!r}]", d.describe(), "every dose needs a drug: set the arm's drug "
                                "or name the drug in the regimen")
        out.setdefault(cns.drug(arm.drug_object(drug)).name, []).append(d)
    return {k: Regimen(v) for k, v in out.items()}


def arm_setups(arm: Arm, scn: Scenario) -> tuple[Scenario, dict, dict]:
    """The arm's own scenario (its physiology, pathologies and age), its regimens by drug and one set-up per drug
    (the arm's variant and metabolite): what :func:`~pkcsf.clinical.scenario.run` simulates.

    Parameters
    ----------
    arm : Arm
        The arm.
    scn : Scenario
        Its scenario.

    Returns
    -------
    tuple
        ``(arm scenario, {drug: regimen}, {drug: Setup})``.
    """
    sa = arm.scenario_for(scn)
    regs = _split_by_drug(arm, sa.age)
    setups = {d: cns.setup(arm.drug_object(d), physiology=sa.physiology, variant=_variant_for(arm, d),
                           pathologies=sa.pathologies, age=sa.age, metabolite=arm.metabolite) for d in regs}
    return sa, regs, setups


def _grid(scn: Scenario, regs: dict) -> tuple[np.ndarray, float]:
    """Output grid: a regular step, plus every dose time listed twice (the
    engine then reports the value before and after the dose).
    """
    doses = [d for r in regs.values() for d in r.expand()]
    ends = np.unique([d.time + _infusion_length(d) for d in doses])
    last = float(ends.max())                 # the last dose, or the end of the last infusion
    days = scn.days if scn.days is not None else max(7.0, math.ceil(last / 24.0) + 7.0)
    end = days * 24.0
    dt = scn.dt
    if dt is None:
        dt = 0.25 if days <= 7 else (1.0 if days <= 60 else 4.0)
    if scn.dt is None and scn.days is None:   # the window comes from the regimen: name that, not a dt never given
        check_grid(end, dt, f"{days:g} days (to the regimen's last dose at day {last / 24 + 1:g}, plus 7)",
                   field="days")
    check_grid(end, dt, scn.dt)            # before allocating: dt = "1e-9 h" must not ask for terabytes
    n = int(math.floor(end / dt + 1e-9))
    grid = np.linspace(0.0, n * dt, n + 1)
    if end - grid[-1] > 1e-9 * max(end, 1.0):
        grid = np.append(grid, end)        # the window ends at its end, whatever the step (a shorter last step)
    dose_t = np.unique([d.time for d in doses])
    dose_t = dose_t[dose_t < end]          # a dose at the end acts after the window (warn_doses_after_end)
    # an infusion's end is an output too: the plasma peak is there, and the Cmax refinement between outputs needs
    # no event inside an output interval (a 10-min infusion between hourly outputs read its Cmax 33% low, silently)
    ends = ends[(ends > 0.0) & (ends < end)]
    base = np.setdiff1d(np.union1d(grid, ends), dose_t)
    return np.sort(np.concatenate([base, dose_t, dose_t]), kind="stable"), end


def _infusion_length(d: Dose) -> float:
    """How long a dose runs (h): its duration, or a numeric amount over its rate; 0 for a bolus and for an amount
    per m2 given by rate (each subject's infusion ends where his own dose does).
    """
    if d.duration:
        return float(d.duration)
    if d.rate and isinstance(d.amount, (int, float)):
        return float(d.amount) / float(d.rate)
    return 0.0


_CHUNK = 4096


def _variant_for(arm: Arm, drug: str) -> str:
    """The arm's variant for one drug: a dict entry, or the name if the drug offers it, else linear."""
    v = arm.variant
    if isinstance(v, dict):
        for k in v:
            cns.drug(k)          # unknown drug names raise listing the valid ones
        return v.get(drug, "linear")
    if v == "linear" or v in cns.drug(arm.drug_object(drug)).variants:
        return v
    if len(_split_by_drug(arm)) == 1:
        return v                 # a single drug: let setup() say which variants it has
    return "linear"


def _run_dataset_arm(scn: Scenario, arm: Arm, regs: dict, setups: dict, bar) -> ArmResult:
    """An arm whose regimen is a NONMEM-style event table: every patient of the table is one subject
    with his own doses and covariates; profiles and read-outs are PRED (no random effects).
    """
    if scn.targets:
        raise ScenarioError(f"arms[{arm.name!r}]", "targets", "targets are not computed for an event-table arm "
                            "(its subjects are real patients); use the per-subject metrics (time_above)")
    (drug, data), = regs.items()
    setup = setups[drug]
    _check_age_conflict(scn.age, data.covariates)
    if len(data.timeline) and "AGE" in data.timeline.columns:     # a fixed age against every row's AGE
        _check_age_conflict(scn.age, data.timeline)
    sa = replace(scn, population=data.covariates)
    pop = population_for(sa, setup)
    if isinstance(scn.population, Population):        # the user's random effects, the patients' covariates
        pop = Population(scn.population.random_effects, covariance=scn.population.omega,
                         effects=scn.population.effects, data=data.covariates)
    regimens = data.regimens_for(setup)
    last = max([max((d.time for d in r.expand()), default=0.0) for r in regimens.values()] + [0.0])
    t_obs = float(data.observations["TIME"].max()) if len(data.observations) else 0.0
    days = scn.days if scn.days is not None else max(7.0, math.ceil(max(last, t_obs) / 24.0) + 7.0 * (last >= t_obs))
    end = days * 24.0
    # AUC and Cmax of an event-table arm are read on this grid (not integrated exactly): a finer default step than
    # a simulated arm's (a lumbar AUC was 3.1% high at 1 h, 0.01% at 0.05 h)
    dt = scn.dt if scn.dt is not None else (0.05 if days <= 7 else (0.25 if days <= 60 else 1.0))
    check_grid(end, dt, scn.dt)
    grid = np.linspace(0.0, round(end / dt) * dt, int(round(end / dt)) + 1)
    warn_doses_after_end(arm.name, {drug: Regimen([d for r in regimens.values() for d in r.doses])}, end)
    gnames = _readout_groups(scn, setup, f"arm {arm.name!r} ({drug})")
    budget = scn.step_budget(float(max(end, t_obs))) if hasattr(scn, "step_budget") else None
    ds = DatasetRun(data, setup, pop, scn.unit, gnames, grid, solver=scn.solver, max_steps=budget,
                    thresholds=_thresholds_for(scn, setup))
    conc, status = ds.pred
    metrics = ds.metrics(arm.name, drug)
    prof = ds.group_profiles(conc)
    failures = [(arm.name, drug, i, int(st)) for i, st in zip(data.ids, status) if st != 0]
    fail_df = pd.DataFrame([{"arm": a, "drug": d, "id": i, "status": Status(st).name, "message": Status(st).message}
                            for a, d, i, st in failures], columns=["arm", "drug", "id", "status", "message"])
    if bar is not None:
        bar.update(1)
    all_doses = Regimen([d for r in regimens.values() for d in r.doses])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)      # all-NaN slices (every patient failed)
        typical = np.nanmedian(prof, axis=0)
    dose_t = np.unique(np.concatenate([v for v in ds.dose_times.values()] + [np.zeros(0)]))
    out = ArmResult(arm.name, ds.times, {drug: prof}, {drug: typical}, {drug: gnames}, metrics,
                    pd.DataFrame(columns=["arm", "drug", "target", "fraction", "n", "n_failed", "subjects"]),
                    {drug: dose_t}, all_doses, setups, len(failures), scn.unit, datasets={drug: ds},
                    failures=fail_df)
    # Cmax read on the grid: the same under-read estimate as other arms (segments start at every patient's doses)
    right = np.searchsorted(ds.times, dose_t, side="right") - 1
    left = np.searchsorted(ds.times, dose_t, side="left")
    out.cmax_grid_error = {drug: dict(zip(gnames, _cmax_grid_error(ds.times, prof, right, left)))}
    return out


def _pipelined(dr: _DrugRun, pop: Population, seed: int, variability: bool, jobs: list, nb: int, arm_name: str,
               targets: tuple):
    """The results of :func:`~pkcsf.clinical.scenario_reduce._chunk` for ``jobs`` [(start, n), ...], in order,
    with the compiled solves of chunks on threads while this thread samples and tabulates the others.

    A chunk is sampled and its problem built (Python), solved (compiled, GIL released) and tabulated
    (Python). Run one after the other on Numba's thread count, a core idles during the Python stages and
    at the end of each solve, while the last range of subjects finishes on the other thread. Here each of
    Numba's threads solves whole chunks, one thread per chunk, taking the next chunk as soon as it is
    done, while this thread tabulates finished chunks in order and samples the next ones (at most one
    chunk waits for a free thread). The last chunks (one per thread) are split in ranges over Numba's
    threads as before, so that the run does not end with one thread finishing a whole chunk alone. Each stage is the same call on the same inputs and a
    subject's results do not depend on the range it is solved in, so the results are those of
    :func:`_chunk` to the last bit. Chunks without read-outs inside the solve (targets, radau) run one
    after the other: their (n, T, states) arrays are not held for several chunks at once.
    """
    if targets or len(jobs) < 2:
        for a, n in jobs:
            yield _chunk(dr, pop, seed, variability, a, n, nb, arm_name, targets)
        return
    import numba

    threads = numba.get_num_threads()

    def solve(job, split):
        numba.set_num_threads(threads if split else 1)   # (Numba's thread count is per thread)
        return _chunk_solve(dr, job)

    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pkcsf-chunks")
    pending = deque()
    try:
        for j, (a, n) in enumerate(jobs):
            job = _chunk_sample(dr, pop, seed, variability, a, n, nb, targets)
            if job["prob"] is None:           # two-step path: not overlapped (see above)
                while pending:
                    yield _chunk_table(dr, pending.popleft().result(), arm_name, targets)
                yield _chunk_table(dr, _chunk_solve(dr, job), arm_name, targets)
                continue
            pending.append(pool.submit(solve, job, j >= len(jobs) - threads))
            if len(pending) > threads:
                yield _chunk_table(dr, pending.popleft().result(), arm_name, targets)
        while pending:
            yield _chunk_table(dr, pending.popleft().result(), arm_name, targets)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class _Columns:
    """The per-subject read-outs of one drug, gathered chunk by chunk into preallocated columns.

    ``pd.concat`` of the chunks' tables would hold the table twice at its end (the chunks and the
    result: +0.6 GB for a million subjects); here each chunk is copied in and dropped. Chunks whose
    columns, types or categories differ from the first are kept aside and concatenated at the end.
    """

    def __init__(self, rows: int):
        self.rows, self.n, self.cols, self.extra = rows, 0, None, []

    def add(self, df: pd.DataFrame) -> None:
        if self.cols is None:
            self.cols = {}
            for c in df.columns:
                s = df[c]
                if isinstance(s.dtype, pd.CategoricalDtype):
                    self.cols[c] = (np.empty(self.rows, s.cat.codes.dtype), s.dtype)
                elif isinstance(s.dtype, np.dtype):
                    self.cols[c] = (np.empty(self.rows, s.dtype), None)
                else:
                    self.cols = None
                    break
        k = len(df)
        if self.cols is None or list(df.columns) != list(self.cols) or self.n + k > self.rows:
            self.extra.append(df)
            return
        values = []
        for c, (arr, cat) in self.cols.items():
            s = df[c]
            want = cat if cat is not None else arr.dtype
            if not (s.dtype is want or s.dtype == want):
                self.extra.append(df)
                return
            values.append(s.array.codes if cat is not None else s.to_numpy())
        for (arr, _), v in zip(self.cols.values(), values):
            arr[self.n:self.n + k] = v
        self.n += k

    def frame(self) -> pd.DataFrame:
        parts = []
        if self.cols is not None and self.n:
            parts.append(pd.DataFrame({c: (pd.Categorical.from_codes(arr[:self.n], dtype=cat) if cat is not None
                                           else arr[:self.n]) for c, (arr, cat) in self.cols.items()}, copy=False))
        parts += self.extra
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _usable_for(setups) -> list:
    """Calibrations a population can draw parameter uncertainty from that concern one of these set-ups."""
    from pkcsf.clinical.uncertainty import concerns, usable_calibrations

    setups = list(setups)
    return [c for c in usable_calibrations() if any(concerns(c, st) for st in setups)] or ["none"]


def _check_arm_uncertainty(arm: Arm, regs: dict, setups: dict) -> None:
    """Refuse an arm whose ``uncertainty`` calibration concerns none of its drugs' parameters."""
    if arm.uncertainty:
        from pkcsf.clinical.uncertainty import concerns

        if not any(concerns(arm.uncertainty["calibration"], setups[d]) for d in regs):
            raise ScenarioError(f"arms[{arm.name!r}].uncertainty", arm.uncertainty["calibration"],
                                "concerns no parameter of " + ", ".join(regs) + ": choose a calibration of this "
                                "arm's drug or of the CSF physiology (" +
                                ", ".join(_usable_for(setups[d] for d in regs)) + ")")


def _drug_setup(sa: Scenario, arm, drug: str, reg, setup, times, end, anchors: list) -> tuple:
    """One drug of an arm: (drug run, population, typical profile, typical status). The typical subject has no random
    effects and covariates at their reference values (the population's median BSA or age when doses are given per
    BSA or by age). Used by :func:`_run_arm` and by the bounded run (``scenario_bounded``). ``anchors``: the times of
    the arm's lumbar doses, of any drug (:func:`~pkcsf.clinical.scenario_reduce.arm_lumbar_times`).
    """
    N = sa.subjects
    dr = _DrugRun(sa, arm, drug, reg, setup, times, end, anchors)
    pop = population_for(sa, setup)
    if pop.size is not None and pop.size < N:
        raise ScenarioError("subjects", N, f"the population data has only {pop.size} rows")
    typ = Population(None, name="typical").individual(setup.parameters, 1)
    wanted = dr.dose_columns & {"BSA", "AGE", "WT"}
    if any(c.startswith("AGEDOSE_") for c in dr.dose_columns):
        wanted.add("AGE")
    if wanted:          # dosed per BSA, per kg or by age: the population's median subject
        covs = pop.covariates(min(N, 2000), sa.seed)
        for c in sorted(wanted):
            if c not in covs:
                raise ScenarioError("population", f"no {c} column",
                                    f"a dose of {drug} is given per {c}; the population needs that covariate "
                                    "(demographics with it, a data column, or a fixed scenario age)")
            typ[c] = float(np.median(covs[c]))
    typ_conc, typ_status = dr.solve(typ)
    return dr, pop, typ_conc[0], int(typ_status[0])



def warn_doses_after_end(arm_name: str, regs: dict, end: float) -> None:
    """Warn, once per arm, about doses at or after the end of the simulated window: they are not simulated (a dose
    at the very end would act only after it), so the read-outs are those of the doses before the end; and about an
    infusion still running at the end (the part after it is not given).

    Parameters
    ----------
    arm_name : str
        The arm, for the message.
    regs : dict
        The arm's regimens by drug.
    end : float
        End of the window (h).
    """
    parts, last = [], 0.0
    for drug, reg in regs.items():
        doses = reg.expand()
        ends = [d.time + _infusion_length(d) for d in doses]
        last = max([last, *ends])
        late = [d.time for d in doses if d.time >= end - 1e-9]
        if late:
            parts.append(f"{drug}: {len(late)} of {len(doses)} doses, from day {min(late) / 24 + 1:g} "
                         f"({min(late):g} h)")
        cut = [d for d, e in zip(doses, ends) if d.time < end - 1e-9 and e > end + 1e-9]
        if cut:
            parts.append(f"{drug}: the infusion from {cut[0].time:g} h, whose rest is not given")
    if parts:
        need = math.ceil(last / 24.0) + 1
        days = f"{end / 24:g} day" + ("" if end == 24.0 else "s")
        what = ("doses at or after the end of the simulated window ({}) are not simulated" if
                any(" doses, from day " in p for p in parts) else "an infusion runs past the end of the simulated "
                "window ({})").format(days)
        warnings.warn(f"arm {arm_name!r}: {what} ({'; '.join(parts)}); the read-outs cover the doses before the "
                      f"end. Set days to at least {need} to include them", DosesAfterEndWarning, stacklevel=4)


def _run_arm(scn: Scenario, arm: Arm, regs: dict, setups: dict, bar, executor=None) -> ArmResult:
    times, end = _grid(scn, regs)
    warn_doses_after_end(arm.name, regs, end)
    T = len(times)
    profiles, typical, groups, frames, dose_times, target_rows = {}, {}, {}, [], {}, []
    failed = 0
    failures = []
    auc_source = {}
    grid_err, above_err = {}, {}
    N = scn.subjects
    cs = scn.chunk_size or _CHUNK
    _check_arm_uncertainty(arm, regs, setups)
    anchors = arm_lumbar_times(arm.name, regs, setups)
    for drug, reg in regs.items():
        setup = setups[drug]
        dr, pop, typical[drug], typ_status = _drug_setup(scn, arm, drug, reg, setup, times, end, anchors)
        dose_times[drug] = dr.dose_times
        groups[drug] = dr.groups
        if typ_status != 0:
            failures.append((arm.name, drug, "typical", typ_status))
        nb = min(N, scn.band_subjects)
        prof = None             # the first chunk's band array when it holds every band subject (no copy)
        targets = tuple(tg for tg in scn.targets if tg.drug in (None, drug))
        met = {tg.label: [] for tg in targets}
        jobs = [(start, min(cs, N - start)) for start in range(0, N, cs)]
        if executor is None:
            results = _pipelined(dr, pop, scn.seed, scn.draws_variability, jobs, nb, arm.name, targets)
        else:   # submit every chunk, gather in order (subject i does not depend on where it ran)
            futures = [executor.submit(_chunk, dr, pop, scn.seed, scn.draws_variability, a, n, nb, arm.name, targets)
                       for a, n in jobs]
            results = (f.result() for f in futures)
        n_failed = 0
        exact_flags = []
        refined = np.full((nb, len(dr.groups)), np.nan)     # the band subjects' Cmax refined between outputs
        try:
            for (start, n), r in zip(jobs, results):
                exact_flags.append(r.get("cmax_exact", False))
                if r.get("band_cmax") is not None:
                    refined[start:start + len(r["band_cmax"])] = r["band_cmax"]
                failed += r["failed"]
                n_failed += r["failed"]
                failures += [(arm.name, drug, i, st) for i, st in r["failures"]]
                band = r["band"]
                if band is not None:
                    if prof is None and start == 0 and band.shape == (nb, T, len(dr.groups)) and band.dtype == np.float64:
                        prof = band
                    else:
                        if prof is None:
                            prof = np.empty((nb, T, len(dr.groups)))
                        prof[start:start + len(band)] = band
                if not frames or not isinstance(frames[-1], _Columns):
                    frames.append(_Columns(N * len(dr.groups)))
                frames[-1].add(r["readouts"])
                for label, ok in r["targets"].items():
                    met[label].append(ok)
                if bar is not None:
                    bar.update(1)
        finally:
            results.close()     # a generator: if this loop failed, no chunk is left solving on a thread
        if prof is None:
            prof = np.empty((nb, T, len(dr.groups)))
        profiles[drug] = prof
        auc_source[drug] = (dr, pop, scn.seed, scn.draws_variability, nb)
        if exact_flags and all(exact_flags):
            # Cmax refined between output times for every subject (exact solver): the read-out is not low
            grid_err[drug] = {g: 0.0 for g in dr.groups}
        else:
            grid_err[drug] = dict(zip(dr.groups, _cmax_grid_error(times, prof, dr.right, dr.left,
                                                                  None if np.isnan(refined).all() else refined)))
        above_err[drug] = threshold_grid_error(dr, times, prof, scn.targets)
        for label, parts in met.items():
            ok = np.concatenate(parts)          # solved subjects only
            target_rows.append({"arm": arm.name, "drug": drug, "target": label,
                                "fraction": float(ok.mean()) if ok.size else float("nan"),
                                "n": int(ok.size), "n_failed": n_failed, "subjects": int(ok.size) + n_failed})
    fail_df = pd.DataFrame([{"arm": a, "drug": d, "id": i, "status": Status(st).name, "message": Status(st).message}
                            for a, d, i, st in failures], columns=_FAILURE_COLUMNS)
    frames = [f.frame() for f in frames]
    out = ArmResult(arm.name, times, profiles, typical, groups,
                    frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True),
                     pd.DataFrame(target_rows, columns=["arm", "drug", "target", "fraction", "n", "n_failed",
                                                        "subjects"]),
                     dose_times, _as_regimen(arm.regimen, arm.drug_name, "regimen", scn.age), setups, failed, scn.unit,
                     fail_df, auc_source)
    out.cmax_grid_error = grid_err
    out.above_grid_error = above_err
    return out
