"""Scenarios: drugs, regimens and populations in, read-outs out.

This is the layer clinical pharmacologists use. A :class:`Scenario` names
one or more **arms** (a regimen of one or more drugs, by route), a
physiology (adult, a child's age, pathologies), a virtual population and
the read-outs wanted. :func:`run` simulates every arm for N virtual
subjects, chunk by chunk, so memory stays bounded for N up to millions:

* per subject, drug and compartment group: Cmax, Tmax, AUC over the whole
  window, the last trough, time above each threshold and the longest
  continuous run above it, and the AUC ratio to plasma (CSF/plasma);
* population bands over time (5th/50th/95th percentiles) from the first
  ``band_subjects`` subjects (a random sample, since subjects are
  exchangeable), plus the typical subject (no random effects);
* the fraction of subjects meeting each target.

Concentrations of a group of compartments (``ventricular`` = lateral plus
third/fourth ventricles) are volume-weighted means: total amount over total
volume. Concentrations are reported in ``unit`` (default µmol/L; mg/L
available), AUC in ``unit`` x h.
"""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from . import cns
from . import metrics as M
from .dosing import Dose, Regimen
from .errors import ParameterError, ScenarioError, check_choice
from .population import COVARIATES, Population, RandomEffect, load_demographics
from .simulate import prepare
from .units import concentration_factor, parse_quantity

__all__ = ["Arm", "Target", "Scenario", "ScenarioResult", "ArmResult", "run", "default_population",
           "simulate_drug"]


# ------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Target:
    """A target to meet in a compartment group, e.g. ventricular methotrexate
    >= 1 µmol/L for >= 48 h after each dose (``per="dose"``) or in total
    (``per="total"``)."""

    group: str
    threshold: str | float
    duration: str | float = 0.0
    per: str = "dose"
    drug: str | None = None
    name: str = ""

    def __post_init__(self):
        check_choice("target.per", self.per, ["dose", "total"], ScenarioError)

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        thr = self.threshold if isinstance(self.threshold, str) else f"{self.threshold:g} mg/L"
        dur = self.duration if isinstance(self.duration, str) else f"{self.duration:g} h"
        return f"{self.group} >= {thr} for >= {dur}" + (" after each dose" if self.per == "dose" else " in total")


@dataclass(frozen=True)
class Arm:
    """One regimen to simulate.

    ``regimen`` is a :class:`~pkcsf.dosing.Regimen` (or a Dose, or text read
    by :func:`pkcsf.regimens.parse_regimen`) whose dose sites are routes
    (``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral``). Doses
    without a ``drug`` belong to ``drug``. ``variant`` selects the CSF
    efflux description (``"linear"`` or ``"saturable"``).
    """

    name: str
    regimen: object
    drug: str | None = None
    variant: str = "linear"
    metabolite: bool = False


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs; see the module docstring.

    Parameters
    ----------
    arms : list of Arm
    subjects : int
        Number of virtual subjects per arm (1: the typical subject only).
    days : float, optional
        Simulated days (default: until 7 days after the last dose, at least 7).
    dt : float, optional
        Output step (h); default 0.25 h up to 7 days, 1 h up to 60 days, else 4 h.
        Dose times are always on the grid.
    seed : int
        Random seed; subject i is the same in every arm and for every N.
    physiology, age, pathologies : passed to :func:`pkcsf.cns.setup`.
    population : Population, DataFrame or str, optional
        Default: :func:`default_population` (sourced variability and
        covariate effects of the drug and physiology; adult demographics).
    variability : bool
        False gives every subject the typical values (covariates still vary).
    thresholds : dict or list or str, optional
        Thresholds for time-above read-outs: a list of quantities for all
        drugs, or ``{drug: [...]}``. Default: the drug's sourced thresholds.
    targets : list of Target
    unit : str
        Concentration unit of the read-outs (``"umol/L"`` or ``"mg/L"`` ...).
    groups : list of str, optional
        Compartment groups to read out (default: all of the setup's groups).
    band_subjects : int
        Subjects whose profiles are kept for the bands (default 2000).
    chunk_size : int, optional
    """

    arms: tuple
    subjects: int = 1
    days: float | None = None
    dt: float | None = None
    seed: int = 0
    physiology: str = "adult"
    age: float | None = None
    pathologies: dict | None = None
    population: object = None
    variability: bool = True
    thresholds: object = None
    targets: tuple = ()
    unit: str = "umol/L"
    groups: tuple | None = None
    band_subjects: int = 2000
    chunk_size: int | None = None
    solver: str = "auto"
    name: str = ""
    description: str = ""

    def __post_init__(self):
        arms = self.arms
        if isinstance(arms, Arm):
            arms = (arms,)
        if isinstance(arms, dict):
            arms = tuple(a if isinstance(a, Arm) else Arm(k, a) for k, a in arms.items())
        arms = tuple(arms)
        if not arms:
            raise ScenarioError("arms", [], "a scenario needs at least one arm")
        names = [a.name for a in arms]
        if len(set(names)) != len(names):
            raise ScenarioError("arms", names, "arm names must be unique")
        object.__setattr__(self, "arms", arms)
        if isinstance(self.subjects, bool) or not isinstance(self.subjects, (int, np.integer)) or self.subjects < 1:
            raise ScenarioError("subjects", self.subjects, "must be a whole number >= 1")
        if self.days is not None and not (isinstance(self.days, (int, float)) and 0 < self.days <= 3650):
            raise ScenarioError("days", self.days, "must be a number of days in (0, 3650]")
        if self.dt is not None and not (isinstance(self.dt, (int, float)) and 0 < self.dt <= 168):
            raise ScenarioError("dt", self.dt, "must be an output step in hours in (0, 168]")
        if not isinstance(self.band_subjects, (int, np.integer)) or self.band_subjects < 1:
            raise ScenarioError("band_subjects", self.band_subjects, "must be a whole number >= 1")
        concentration_factor_checked(self.unit)
        object.__setattr__(self, "targets", tuple(self.targets))


def concentration_factor_checked(unit):
    from .units import UNITS

    if unit not in UNITS or UNITS[unit][0] != "concentration":
        conc = [u for u, (k, _, _) in UNITS.items() if k == "concentration"]
        raise ScenarioError("unit", unit, "must be a concentration unit: " + ", ".join(conc))


# ------------------------------------------------------------- population
def default_population(setup: cns.Setup, demographics: str | None = "adult") -> Population:
    """The sourced default population for a setup.

    Random effects: every ``[variability]`` entry of the drug and physiology
    files (log-normal, cv); covariate effects: every ``[covariates]`` entry
    of the drug file whose parameter is in the model; demographics:
    ``parameters/population/<demographics>.toml`` when it exists.
    """
    res = []
    seen = set()
    for ps in setup.sets:
        for k, v in ps.variability.items():
            if k in setup.parameters and k not in seen:
                res.append(RandomEffect(f"eta_{k}", (k,), cv=v.value, source=v.source))
                seen.add(k)
    effects = []
    for ps in setup.sets:
        for eff in getattr(ps, "covariates", {}).values():
            if eff.parameter in setup.parameters:
                effects.append(eff)
    demo = None
    if demographics:
        try:
            demo = load_demographics(demographics)
        except ParameterError:
            demo = None
    if demo is None and effects:
        raise ScenarioError("population", demographics,
                            f"{setup.drug.name} has covariate effects but no demographics file was found "
                            "(parameters/population/)")
    return Population(res, demographics=demo, effects=effects, name=f"default ({setup.drug.name})")


# -------------------------------------------------------------- results
@dataclass
class ArmResult:
    """Read-outs of one arm.

    Attributes
    ----------
    times : ndarray (T,), h
    profiles : dict drug -> ndarray (n_band, T, G)
        Group concentrations (``unit``) of the first ``band_subjects`` subjects.
    typical : dict drug -> ndarray (T, G)
        The typical subject (no random effects; median covariates).
    groups : dict drug -> list of group names (the last axis of profiles)
    metrics : DataFrame
        One row per subject, drug and group (see :func:`run`).
    targets : DataFrame
        One row per target: fraction of subjects meeting it.
    dose_times : dict drug -> ndarray
    """

    name: str
    times: np.ndarray
    profiles: dict
    typical: dict
    groups: dict
    metrics: pd.DataFrame
    targets: pd.DataFrame
    dose_times: dict
    regimen: Regimen
    setups: dict
    failed: int = 0

    def bands(self, drug: str | None = None, q=(5, 50, 95)) -> pd.DataFrame:
        """Percentiles over subjects at each time: columns drug, group, time, p5, p50, p95 (and typical)."""
        rows = []
        for d in ([drug] if drug else list(self.profiles)):
            prof = self.profiles[d]
            pc = np.nanpercentile(prof, q, axis=0) if prof.shape[0] > 1 else np.repeat(prof, len(q), axis=0)
            for g, name in enumerate(self.groups[d]):
                df = pd.DataFrame({"drug": d, "group": name, "time": self.times,
                                   **{f"p{x:g}": pc[i, :, g] for i, x in enumerate(q)},
                                   "typical": self.typical[d][:, g]})
                rows.append(df)
        return pd.concat(rows, ignore_index=True)


class ScenarioResult:
    """The outcome of :func:`run`: one :class:`ArmResult` per arm, plus provenance."""

    def __init__(self, scenario: Scenario, arms: dict, elapsed: float):
        self.scenario = scenario
        self.arms = arms
        self.elapsed = elapsed
        self.unit = scenario.unit

    def __repr__(self):
        return (f"ScenarioResult({', '.join(self.arms)}; {self.scenario.subjects} subjects; unit {self.unit}; "
                f"{self.elapsed:.1f} s)")

    def __getitem__(self, arm: str) -> ArmResult:
        if arm not in self.arms:
            check_choice("arm", arm, list(self.arms), ScenarioError)
        return self.arms[arm]

    def metrics(self) -> pd.DataFrame:
        """Per-subject read-outs of every arm (one row per arm, subject, drug, group)."""
        return pd.concat([a.metrics for a in self.arms.values()], ignore_index=True)

    def summary(self, q=(5, 50, 95)) -> pd.DataFrame:
        """Population percentiles of each read-out, per arm, drug and group."""
        m = self.metrics()
        value_cols = [c for c in m.columns if c not in ("arm", "id", "drug", "group", "unit", "auc_unit")]
        g = m.groupby(["arm", "drug", "group"], sort=False, observed=True)[value_cols]
        parts = []
        for x in q:
            s = g.quantile(x / 100.0)
            s.columns = [f"{c}_p{x:g}" for c in s.columns]
            parts.append(s)
        out = pd.concat(parts, axis=1)
        cols = [f"{c}_p{x:g}" for c in value_cols for x in q]
        out = out[cols].reset_index()
        out.insert(3, "unit", self.unit)
        return out

    def targets(self) -> pd.DataFrame:
        return pd.concat([a.targets for a in self.arms.values()], ignore_index=True)

    def bands(self) -> pd.DataFrame:
        return pd.concat([a.bands().assign(arm=name) for name, a in self.arms.items()], ignore_index=True)

    def assumptions(self) -> pd.DataFrame:
        """Every parameter value behind this run that is an assumption, with its reasoning."""
        rows = []
        seen = set()
        for a in self.arms.values():
            for d, s in a.setups.items():
                for ps in s.sets:
                    for v in ps.assumptions():
                        key = (ps.name, v.name)
                        if key in seen:
                            continue
                        seen.add(key)
                        rows.append({"set": ps.name, "parameter": v.name, "value": v.given, "unit": v.unit,
                                     "note": v.note})
        return pd.DataFrame(rows, columns=["set", "parameter", "value", "unit", "note"])

    def cite(self) -> list[str]:
        refs = []
        for a in self.arms.values():
            for s in a.setups.values():
                for r in s.cite():
                    if r not in refs:
                        refs.append(r)
        return refs


# ------------------------------------------------------------------ run
def _as_regimen(reg, drug, field) -> Regimen:
    from .regimens import parse_regimen

    if isinstance(reg, str):
        return parse_regimen(reg, drug=drug, bsa="BSA")
    if isinstance(reg, Dose):
        return Regimen([reg])
    if isinstance(reg, (list, tuple)) and all(isinstance(d, Dose) for d in reg):
        return Regimen(list(reg))
    if isinstance(reg, Regimen):
        return reg
    raise ScenarioError(field, type(reg).__name__, "must be a Regimen, a Dose or regimen text such as "
                                                   "'12 mg ommaya twice weekly x 4 weeks'")


def _split_by_drug(arm: Arm) -> dict[str, Regimen]:
    reg = _as_regimen(arm.regimen, arm.drug, f"arms[{arm.name!r}].regimen")
    out: dict[str, list] = {}
    for d in reg.doses:
        drug = d.drug or arm.drug
        if drug is None:
            raise ScenarioError(f"arms[{arm.name!r}]", d.describe(), "every dose needs a drug: set the arm's drug "
                                "or name the drug in the regimen")
        out.setdefault(cns.drug(drug).name, []).append(d)
    return {k: Regimen(v) for k, v in out.items()}


def _sites(regimen: Regimen, setup: cns.Setup, where: str) -> Regimen:
    from .regimens import normalize_route

    doses = []
    for d in regimen.doses:
        route = d.site
        try:
            route = normalize_route(d.site, field=f"{where}: route")
        except Exception:
            if d.site not in setup.model.site_names:
                raise
        if route in setup.sites:
            site = setup.sites[route]
        elif route in setup.model.site_names:
            site = route
        else:
            raise ScenarioError(f"{where}: route", d.site,
                                f"{setup.drug.name} can be given by: " + ", ".join(sorted(setup.sites)))
        doses.append(replace(d, site=site, drug=None))
    return Regimen(doses)


def _grid(scn: Scenario, regs: dict) -> tuple[np.ndarray, float]:
    last = max(r.expand()[-1].time for r in regs.values())
    days = scn.days if scn.days is not None else max(7.0, math.ceil(last / 24.0) + 7.0)
    end = days * 24.0
    dt = scn.dt
    if dt is None:
        dt = 0.25 if days <= 7 else (1.0 if days <= 60 else 4.0)
    n = int(round(end / dt))
    grid = np.linspace(0.0, n * dt, n + 1)
    dose_t = np.concatenate([[d.time for d in r.expand()] for r in regs.values()])
    dose_t = dose_t[dose_t <= grid[-1]]
    return np.unique(np.concatenate([grid, dose_t])), end


def _group_matrix(setup: cns.Setup, names: list[str], groups: list[str], states: list[str]):
    """Per group: indices of its compartments among the saved states."""
    idx = []
    for g in groups:
        comps = setup.outputs[g]
        idx.append([states.index(c) for c in comps])
    return idx


def _thresholds_for(scn: Scenario, setup: cns.Setup) -> list[tuple[str, float]]:
    """(label, mg/L) pairs."""
    spec = scn.thresholds
    if isinstance(spec, dict):
        spec = spec.get(setup.drug.name, [])
    if spec is None:
        out = []
        for k, v in setup.thresholds.items():
            out.append((k, v))
        return out
    if isinstance(spec, (str, int, float)):
        spec = [spec]
    out = []
    for s in spec:
        v = parse_quantity(s, "concentration", mw=setup.mw, field="thresholds", default_unit="mg/L")
        out.append((str(s), v))
    return out


def run(scenario: Scenario, *, progress: bool | None = None) -> ScenarioResult:
    """Simulate every arm of ``scenario``; see the module docstring.

    The per-subject ``metrics`` table has columns ``arm, id, drug, group,
    cmax, tmax, auc, trough, ratio_auc_plasma`` and, per threshold ``X``,
    ``time_above[X]`` and ``longest_above[X]`` (h), plus ``unit`` and
    ``auc_unit``; concentrations in ``scenario.unit``.
    """
    scn = scenario
    t0 = _time.perf_counter()
    arms = {}
    plan = []
    for arm in scn.arms:
        regs = _split_by_drug(arm)
        setups = {d: cns.setup(d, physiology=scn.physiology, variant=arm.variant, pathologies=scn.pathologies,
                               age=scn.age, metabolite=arm.metabolite) for d in regs}
        plan.append((arm, regs, setups))
    total_chunks = 0
    for arm, regs, setups in plan:
        total_chunks += len(regs) * max(1, -(-scn.subjects // (scn.chunk_size or _chunk(scn))))
    bar = None
    if progress or (progress is None and scn.subjects >= 20000):
        from tqdm.auto import tqdm

        bar = tqdm(total=total_chunks, desc="simulating", unit="chunk")
    try:
        for arm, regs, setups in plan:
            arms[arm.name] = _run_arm(scn, arm, regs, setups, bar)
    finally:
        if bar is not None:
            bar.close()
    return ScenarioResult(scn, arms, _time.perf_counter() - t0)


def _chunk(scn: Scenario) -> int:
    return 4096


def _population_for(scn: Scenario, setup: cns.Setup) -> Population:
    pop = scn.population
    if pop is None:
        return default_population(setup)
    if isinstance(pop, str):
        base = default_population(setup, demographics=None)
        return Population(base.random_effects, covariance=base.omega, demographics=load_demographics(pop),
                          effects=base.effects)
    if isinstance(pop, pd.DataFrame):
        base = default_population(setup)
        return Population(base.random_effects, covariance=base.omega, effects=base.effects, data=pop)
    if isinstance(pop, Population):
        return pop
    raise ScenarioError("population", type(pop).__name__, "must be a Population, a DataFrame or a demographics name")


def _run_arm(scn: Scenario, arm: Arm, regs: dict, setups: dict, bar) -> ArmResult:
    times, end = _grid(scn, regs)
    T = len(times)
    profiles, typical, groups, metric_frames, dose_times, target_rows = {}, {}, {}, [], {}, []
    failed = 0
    cf = {}
    met_by_drug = {}
    for drug, reg in regs.items():
        setup = setups[drug]
        where = f"arm {arm.name!r} ({drug})"
        sreg = _sites(reg, setup, where)
        dt_ = np.array(sorted({d.time for d in sreg.expand()}))
        dose_times[drug] = dt_
        gnames = list(scn.groups) if scn.groups else [g for g, cs in setup.outputs.items() if cs]
        for g in gnames:
            if g not in setup.outputs or not setup.outputs[g]:
                check_choice(f"{where}: group", g, [k for k, v in setup.outputs.items() if v], ScenarioError)
        if "plasma" not in gnames:
            gnames = ["plasma"] + gnames
        groups[drug] = gnames
        states = sorted({c for g in gnames for c in setup.outputs[g]}, key=setup.model.compartment_names.index)
        gidx = _group_matrix(setup, setup.model.compartment_names, gnames, states)
        fac = concentration_factor(scn.unit, setup.mw)
        cf[drug] = fac
        thr = _thresholds_for(scn, setup)
        pop = _population_for(scn, setup)
        N = scn.subjects
        if pop.size is not None and pop.size < N:
            raise ScenarioError("subjects", N, f"the population data has only {pop.size} rows")
        nb = min(N, scn.band_subjects)
        prof = np.empty((nb, T, len(gnames)), dtype=np.float64)
        model_params = set(setup.model.parameter_names)

        def solve(params: pd.DataFrame):
            cols = [c for c in params.columns if c in model_params or c in ("ID",) or c in COVARIATES]
            prob = prepare(setup.model, sreg, params[cols], times=times, outputs=states, solver=scn.solver)
            out, status, _ = prob.solve()
            V = prob.compiled.volumes(prob.P)[:, prob.save]
            conc = np.empty((out.shape[0], T, len(gnames)))
            for j, ix in enumerate(gidx):
                conc[:, :, j] = out[:, :, ix].sum(axis=2) / V[:, ix].sum(axis=1)[:, None]
            return conc * fac, status

        # typical subject: no random effects, covariates at their typical (reference) values
        typ_pop = Population(None, effects=(), name="typical")
        typ_params = typ_pop.individual(setup.parameters, 1, seed=0)
        if any("BSA" in str(d.amount) for d in sreg.doses):
            typ_params["BSA"] = 1.8 if pop.demographics is None else float(
                np.median(pop.covariates(min(N, 2000), scn.seed)["BSA"]))
        tconc, _ = solve(typ_params)
        typical[drug] = tconc[0]
        cs = scn.chunk_size or _chunk(scn)
        frames = []
        for start in range(0, N, cs):
            n = min(cs, N - start)
            params = pop.individual(setup.parameters, n, seed=scn.seed, start=start, variability=scn.variability)
            conc, status = solve(params)
            failed += int((status != 0).sum())
            a = max(0, min(nb, start + n) - start)
            if a > 0:
                prof[start:start + a] = conc[:a]
            frames.append(_metrics_chunk(times, conc, params["ID"].to_numpy(), gnames, dt_, end, thr, scn, arm,
                                         drug))
            if bar is not None:
                bar.update(1)
        met = pd.concat(frames, ignore_index=True)
        met_by_drug[drug] = met
        metric_frames.append(met)
        profiles[drug] = prof
        for tg in scn.targets:
            if tg.drug not in (None, drug):
                continue
            target_rows.append(_target(tg, times, prof if N <= nb else None, setup, gnames, dt_, end, scn, arm,
                                       drug, pop, sreg, states, gidx, fac))
    metrics_df = pd.concat(metric_frames, ignore_index=True)
    targets_df = pd.DataFrame(target_rows, columns=["arm", "drug", "target", "fraction", "subjects"])
    return ArmResult(arm.name, times, profiles, typical, groups, metrics_df, targets_df, dose_times,
                     _as_regimen(arm.regimen, arm.drug, "regimen"), setups, failed)


def _metrics_chunk(times, conc, ids, gnames, dose_times, end, thr, scn, arm, drug) -> pd.DataFrame:
    n, T, G = conc.shape
    cmax = M.cmax(times, conc)
    tmax = M.tmax(times, conc)
    auc = M.auc(times, conc, method="linear-up/log-down")
    last_dose = dose_times[-1] if len(dose_times) else 0.0
    trough = M.interpolate(times, conc, [end], side="left")[:, 0] if last_dose < end else np.full((n, G), np.nan)
    out = {"arm": arm.name, "id": np.repeat(ids, G), "drug": drug, "group": np.tile(gnames, n),
           "cmax": cmax.ravel(), "tmax": tmax.ravel(), "auc": auc.ravel(), "trough_end": trough.reshape(-1)}
    pl = auc[:, gnames.index("plasma")]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["ratio_auc_plasma"] = (auc / pl[:, None]).ravel()
    for label, v in thr:
        thr_u = _to_unit(v, scn, drug)          # thresholds are mg/L; conc is already in scn.unit
        out[f"time_above[{label}]"] = M.time_above(times, conc, thr_u, method="linear-up/log-down").ravel()
        out[f"longest_above[{label}]"] = M.longest_time_above(times, conc, thr_u,
                                                              method="linear-up/log-down").ravel()
    df = pd.DataFrame(out)
    df.insert(4, "unit", scn.unit)
    return df


def _to_unit(v_mg_per_L, scn, drug):
    mw = cns.drug(drug).mw
    return v_mg_per_L * concentration_factor(scn.unit, mw)


def _target(tg, times, prof, setup, gnames, dose_times, end, scn, arm, drug, pop, sreg, states, gidx, fac):
    if tg.group not in gnames:
        check_choice(f"target group ({tg.label})", tg.group, gnames, ScenarioError)
    g = gnames.index(tg.group)
    thr = parse_quantity(tg.threshold, "concentration", mw=setup.mw, field="target.threshold",
                         default_unit="mg/L") * fac
    dur = parse_quantity(tg.duration, "time", field="target.duration")
    # stream over all subjects so the fraction uses everyone, not only the band subjects
    met = []
    cs = scn.chunk_size or _chunk(scn)
    model_params = set(setup.model.parameter_names)
    for start in range(0, scn.subjects, cs):
        n = min(cs, scn.subjects - start)
        params = pop.individual(setup.parameters, n, seed=scn.seed, start=start, variability=scn.variability)
        cols = [c for c in params.columns if c in model_params or c == "ID" or c in COVARIATES]
        prob = prepare(setup.model, sreg, params[cols], times=times, outputs=states, solver=scn.solver)
        out, _, _ = prob.solve()
        V = prob.compiled.volumes(prob.P)[:, prob.save]
        c = out[:, :, gidx[g]].sum(axis=2) / V[:, gidx[g]].sum(axis=1)[:, None] * fac
        if tg.per == "dose" and len(dose_times):
            runs = M.longest_time_above_per_interval(times, c, thr, dose_times, end, method="linear-up/log-down")
            ok = (runs >= dur - 1e-9).all(axis=1)
        else:
            ok = M.time_above(times, c, thr, method="linear-up/log-down") >= dur - 1e-9
        met.append(ok)
    ok = np.concatenate(met)
    return {"arm": arm.name, "drug": drug, "target": tg.label, "fraction": float(ok.mean()), "subjects": int(ok.size)}


def simulate_drug(drug, regimen, *, subjects: int = 1, days=None, seed: int = 0, **kwargs) -> ScenarioResult:
    """One drug, one or several regimens (``{name: regimen}``): a one-call :func:`run`.

    ``pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once", "ommaya": "12 mg ommaya once"},
    subjects=1000, days=7)``
    """
    name = cns.drug(drug).name
    variant = kwargs.pop("variant", "linear")
    if isinstance(regimen, dict):
        arms = tuple(Arm(k, v, drug=name, variant=variant) for k, v in regimen.items())
    else:
        arms = (Arm(name, regimen, drug=name, variant=variant),)
    return run(Scenario(arms, subjects=subjects, days=days, seed=seed, **kwargs))
