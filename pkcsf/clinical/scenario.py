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

import copy
import math
import time as _time
import warnings
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from pkcsf.analysis.readouts import min_interval_run, percentiles, solve_and_read_out, whole_window
from pkcsf.clinical import cns
from pkcsf.clinical.events import DatasetRun, is_event_table, nonmem_wide, read_events
from pkcsf.clinical.export import arm_to_xarray, scenario_to_xarray
from pkcsf.clinical.population import Population, RandomEffect, load_demographics
from pkcsf.clinical.resources import check_grid, check_run
from pkcsf.core.errors import ScenarioError, Status, check_choice, check_int
from pkcsf.core.progress import progress_bar
from pkcsf.core.units import concentration_factor, parse_quantity
from pkcsf.engine.dosing import Dose, Regimen
from pkcsf.engine.model import Compartment, accumulate
from pkcsf.engine.simulate import prepare, step_budget

__all__ = ["Arm", "Target", "Scenario", "ScenarioResult", "ArmResult", "run", "default_population",
           "population_for", "simulate_drug", "FailedSubjectsWarning", "CoarseGridWarning", "MAX_STEPS_PER_DAY"]

#: adaptive-solver steps per simulated day and subject (Scenario.max_steps_per_day): daily oral
#: osimertinib with saturable CSF efflux takes 50-70 a day, so a 10-year run needs ~250,000
MAX_STEPS_PER_DAY = 2_000
#: the smallest budget a scenario gets (a window of a few days)
_MIN_SCENARIO_STEPS = 10_000


class CoarseGridWarning(UserWarning):
    """The output step is too coarse for some Cmax read-outs: a peak falls between output times and
    the read-out is low by more than 1% (the estimate is in ``ArmResult.cmax_grid_error``).
    """


#: relative Cmax error (estimated from the grid) above which a run warns
CMAX_GRID_RTOL = 1e-2


class FailedSubjectsWarning(UserWarning):
    """Some virtual subjects could not be solved; they are excluded from every read-out
    (NaN in the per-subject metrics, ``status`` column) and counted in ``n_failed``.
    """


# ------------------------------------------------------------------ inputs
@dataclass(frozen=True)
class Target:
    """A target to meet in a compartment group, e.g. ventricular methotrexate
    >= 1 µmol/L for >= 48 h after each dose (``per="dose"``) or in total
    (``per="total"``).

    Parameters
    ----------
    group : str
        Compartment group (``"ventricular"``, ``"plasma"``, ...).
    threshold : str or float
        Concentration, with a unit (``"1 umol/L"``) or in the scenario's unit.
    duration : str or float, optional
        Time above the threshold required (``"48 h"``); 0: the threshold reached.
    per : {"dose", "total"}, optional
        After each dose, or over the whole window.
    drug : str, optional
        The drug (combination arms).
    name : str, optional
        Label in tables.

    Examples
    --------
    >>> Target("ventricular", "1 umol/L", "48 h").per
    'dose'
    """

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
        """The target as text (its name, or group, threshold, duration and per)."""
        if self.name:
            return self.name
        thr = self.threshold if isinstance(self.threshold, str) else f"{self.threshold:g} mg/L"
        dur = self.duration if isinstance(self.duration, str) else f"{self.duration:g} h"
        return f"{self.group} >= {thr} for >= {dur}" + (" after each dose" if self.per == "dose" else " in total")


@dataclass(frozen=True)
class Arm:
    """One regimen to simulate.

    ``regimen`` is a :class:`~pkcsf.engine.dosing.Regimen` (or a Dose, or text read
    by :func:`pkcsf.clinical.regimens.parse_regimen`) whose dose sites are routes
    (``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral``). Doses
    without a ``drug`` belong to ``drug``. ``variant`` selects the CSF
    efflux description (``"linear"`` or ``"saturable"``): a name applies to
    the drugs that offer it (the others stay linear), or give
    ``{drug: variant}``.

    ``regimen`` may also be a NONMEM-style event table (a DataFrame, the path of a CSV file or an
    :class:`~pkcsf.clinical.events.EventData`): each patient of the table is a subject with his own doses
    and covariates, and the observation rows get PRED/IPRED (:meth:`ArmResult.observations`).

    ``physiology``, ``pathologies`` and ``age`` override the scenario's for this arm (``pathologies={}``: none),
    so "the same regimen with and without a shunt" is one run with two arms.

    Parameters
    ----------
    name : str
        Arm name (a column of every table).
    regimen : Regimen, Dose, str, DataFrame or EventData
        The doses (see above).
    drug : str or Drug, optional
        The drug of doses that name none.
    variant : str or dict, optional
        CSF efflux description, ``"linear"`` (default) or ``"saturable"``, or ``{drug: variant}``.
    metabolite : bool, optional
        Simulate the active metabolite where the drug has one.
    physiology : str, optional
        Physiology set for this arm.
    pathologies : dict, optional
        Pathologies for this arm (``{}``: none).
    age : float, optional
        Age (years) for this arm.

    Examples
    --------
    >>> Arm("lumbar", "12 mg lumbar once", drug="methotrexate").name
    'lumbar'
    """

    name: str
    regimen: object
    drug: object = None           # a drug name, or a Drug (e.g. pk.drug("x").with_values(CL="0.2 L/d"))
    variant: str = "linear"
    metabolite: bool = False
    physiology: str | None = None     # None: the scenario's
    pathologies: object = None        # None: the scenario's; {} : none (overrides the scenario's)
    age: float | None = None          # None: the scenario's

    def __post_init__(self):
        if self.age is not None and (isinstance(self.age, bool) or not isinstance(self.age, (int, float, np.integer,
                                     np.floating)) or not (0 <= float(self.age) <= 120)):
            raise ScenarioError(f"arms[{self.name!r}].age", self.age, "must be a number of years from 0 to 120")
        if self.pathologies is not None and not isinstance(self.pathologies, dict):
            raise ScenarioError(f"arms[{self.name!r}].pathologies", self.pathologies,
                                "must be a dict such as {'vp_shunt': True} ({} for none)")

    @property
    def is_event_table(self) -> bool:
        """The regimen is a NONMEM-style event table (DataFrame, CSV path or EventData)."""
        return is_event_table(self.regimen)

    def scenario_for(self, scn):
        """The scenario as this arm sees it: its own physiology, pathologies and age where given."""
        changes = {k: getattr(self, k) for k in ("physiology", "pathologies", "age") if getattr(self, k) is not None}
        return replace(scn, **changes) if changes else scn

    @property
    def drug_name(self) -> str | None:
        """The arm's drug name, or None when each dose names its drug."""
        return self.drug.name if isinstance(self.drug, cns.Drug) else self.drug

    def drug_object(self, name):
        """The arm's own :class:`~pkcsf.clinical.cns.Drug` when ``name`` is its drug, else the name."""
        return self.drug if isinstance(self.drug, cns.Drug) and self.drug.name == name else name


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
    physiology, age, pathologies : passed to :func:`pkcsf.clinical.cns.setup`.
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
    max_steps_per_day : float
        Adaptive-solver step budget per simulated day and subject (default
        :data:`MAX_STEPS_PER_DAY`); a subject's budget is this times the simulated
        days (at least 10,000), so long windows get proportionally more.
    max_steps : int, optional
        A fixed step budget per subject instead (overrides ``max_steps_per_day``).
        A subject that reaches its budget fails: it is excluded from every read-out
        and counted (``n_failed``), never used with a partial profile.
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
    max_steps_per_day: float = MAX_STEPS_PER_DAY
    max_steps: int | None = None

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
        check_int("subjects", self.subjects, 1, ScenarioError)
        for name, unit in (("days", "d"), ("dt", "h")):      # a number (days; h) or text ("6 weeks", "15 min")
            v = getattr(self, name)
            if isinstance(v, str):
                hours = parse_quantity(v, "time", field=name, default_unit=unit)
                object.__setattr__(self, name, hours / 24.0 if name == "days" else hours)
            elif isinstance(v, (np.integer, np.floating)):
                object.__setattr__(self, name, float(v))
        if self.days is not None and not (isinstance(self.days, (int, float)) and 0 < self.days <= 3650):
            raise ScenarioError("days", self.days, "must be a number of days in (0, 3650]")
        if self.dt is not None and not (isinstance(self.dt, (int, float)) and 0 < self.dt <= 168):
            raise ScenarioError("dt", self.dt, "must be an output step in hours in (0, 168]")
        check_int("band_subjects", self.band_subjects, 1, ScenarioError)
        concentration_factor_checked(self.unit)
        object.__setattr__(self, "targets", tuple(self.targets))
        mspd = self.max_steps_per_day
        if isinstance(mspd, bool) or not isinstance(mspd, (int, float, np.integer, np.floating)) \
                or not (np.isfinite(mspd) and mspd >= 1):
            raise ScenarioError("max_steps_per_day", mspd, "must be a number of solver steps per simulated day >= 1")
        ms = self.max_steps
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, (int, np.integer)) or ms < 1):
            raise ScenarioError("max_steps", ms, "must be a whole number of solver steps >= 1 (or None: "
                                "max_steps_per_day times the simulated days)")

    def step_budget(self, t_end: float) -> int:
        """Adaptive-solver steps per subject for a window ending at ``t_end`` h."""
        if self.max_steps is not None:
            return int(self.max_steps)
        return step_budget(t_end, self.max_steps_per_day, _MIN_SCENARIO_STEPS)


def concentration_factor_checked(unit):
    from pkcsf.core.units import UNITS

    if unit not in UNITS or UNITS[unit][0] != "concentration":
        conc = [u for u, (k, _, _) in UNITS.items() if k == "concentration"]
        raise ScenarioError("unit", unit, "must be a concentration unit: " + ", ".join(conc))


# ------------------------------------------------------------- population
def default_population(setup: cns.Setup, demographics: str | None = "adult", *, age_fixed: bool = False
                       ) -> Population:
    """The sourced default population for a setup.

    Random effects: every ``[variability]`` entry of the drug and physiology
    files (log-normal, cv); covariate effects: every ``[covariates]`` entry
    whose parameter is in the model and whose covariate the demographics
    provide (e.g. renal-function effects are skipped for children, whose
    demographics have no serum creatinine; the skipped ones are listed in
    ``population.skipped``); demographics:
    ``parameters/population/<demographics>.toml`` when it exists.
    ``age_fixed``: the setup was already scaled to one age (``age=``), so
    the age effects of the physiology are not applied again.

    Parameters
    ----------
    setup : Setup
        The drug set-up.
    demographics : str, optional
        Demographics name (None: typical subject covariates only).
    age_fixed : bool, optional
        Keep the set-up's age for every subject.

    Returns
    -------
    Population
        The population.
    """
    res = []
    seen = set()
    for ps in setup.sets:
        for k, v in ps.variability.items():
            if k in setup.parameters and k not in seen:
                res.append(RandomEffect(f"eta_{k}", (k,), cv=v.value, source=v.source))
                seen.add(k)
    demo = None
    if demographics:
        demo = demographics if not isinstance(demographics, str) else load_demographics(demographics)
    available = set()
    if demo is not None:
        available = {"SEX"} | {c.name for c in demo.covariates}
        if {"HT", "WT"} <= available:
            available.add("BSA")
        if {"AGE", "WT", "SCR"} <= available:
            available.add("CRCL")
    effects, skipped = [], []
    for ps in setup.sets:
        for eff in getattr(ps, "covariates", {}).values():
            if eff.parameter not in setup.parameters:
                continue
            if eff.covariate not in available or (age_fixed and eff.covariate == "AGE" and ps.kind == "physiology"):
                skipped.append(f"{eff.parameter} ~ {eff.covariate} ({ps.name})")
                continue
            effects.append(eff)
    pop = Population(res, demographics=demo, effects=effects, name=f"default ({setup.drug.name})")
    pop.skipped = tuple(skipped)
    return pop


# -------------------------------------------------------------- results
@dataclass
class ArmResult:
    """Read-outs of one arm.

    Attributes
    ----------
    times : ndarray (T,), h
    profiles : dict drug -> ndarray (n_band, T, G)
        Group concentrations (``unit``) of the first ``band_subjects`` subjects (NaN for a
        subject whose solve failed).
    typical : dict drug -> ndarray (T, G)
        The typical subject (no random effects; median covariates).
    groups : dict drug -> list of group names (the last axis of profiles)
    metrics : DataFrame
        One row per subject, drug and group (see :func:`run`); a failed subject's read-outs
        are NaN and its ``status`` names the failure.
    targets : DataFrame
        One row per target: fraction of the solved subjects meeting it, ``n`` (solved subjects)
        and ``n_failed`` (excluded).
    dose_times : dict drug -> ndarray
    failures : DataFrame
        One row per failed subject and drug: ``arm, drug, id, status, message``.
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
    unit: str = "umol/L"
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_FAILURE_COLUMNS))
    # drug -> how to re-solve the band subjects with AUC accumulators (exact interval AUCs, on demand)
    auc_source: dict = field(default_factory=dict, repr=False)
    # drug -> DatasetRun for an event-table arm (PRED/IPRED at the observation rows, VPC simulations)
    datasets: dict = field(default_factory=dict, repr=False)

    def _dataset(self, drug):
        if not self.datasets:
            raise ScenarioError(f"arm {self.name!r}", "no event table",
                                "observations exist for an arm whose regimen is a NONMEM-style event table")
        drug = drug or next(iter(self.datasets))
        if drug not in self.datasets:
            check_choice(f"arm {self.name!r} drug", drug, list(self.datasets), ScenarioError)
        return drug, self.datasets[drug]

    def observations(self, drug: str | None = None) -> pd.DataFrame:
        """Tidy frame of the observation rows: ``arm, drug, ID, TIME, group, DV, PRED, IPRED, unit`` (see
        :mod:`pkcsf.clinical.events`: PRED is the typical subject with the patient's covariates; IPRED equals
        PRED unless the table gives individual parameters).

        Parameters
        ----------
        drug : str, optional
            The drug (default: the arm's only drug).

        Returns
        -------
        DataFrame
            One row per observation.
        """
        drug, ds = self._dataset(drug)
        obs = ds.observations()
        obs.insert(0, "drug", drug)
        obs.insert(0, "arm", self.name)
        return obs

    def nonmem(self, drug: str | None = None) -> pd.DataFrame:
        """NONMEM-style wide frame: the table's rows with PRED, IPRED, RES, IRES (observation rows).

        Parameters
        ----------
        drug : str, optional
            The drug (default: the arm's only drug).

        Returns
        -------
        DataFrame
            The event table with predictions and residuals.
        """
        drug, ds = self._dataset(drug)
        return nonmem_wide(ds.observations(), ds.data)

    def simulate_observations(self, replicates: int = 200, seed: int = 0, drug: str | None = None) -> pd.DataFrame:
        """The table's design simulated with random effects (for a visual predictive check).

        Parameters
        ----------
        replicates : int, optional
            Number of simulated copies of the design.
        seed : int, optional
            Random seed.
        drug : str, optional
            The drug.

        Returns
        -------
        DataFrame
            Simulated observations, column ``replicate``.
        """
        drug, ds = self._dataset(drug)
        return ds.simulate_observations(replicates, seed)

    def to_xarray(self):
        """The band profiles as an ``xarray.Dataset`` (dims subject, time, group; one variable per drug;
        units as attributes). Needs the optional ``xarray`` package (``pip install pkcsf[xarray]``).
        """
        return arm_to_xarray(self)

    def _auc_marks(self, drug):
        """(times (M,), cumulative exact AUC (n_band, M, G)) at the dose times and the end, for the band
        subjects, from the accumulator states (solved again on first use: subject i depends only on the seed).
        """
        cache = self.__dict__.setdefault("_auc_cache", {})
        if drug not in cache and drug in self.auc_source:
            dr, pop, seed, variability, nb = self.auc_source[drug]
            params = pop.individual(dr.setup.parameters, nb, seed=seed, start=0, variability=variability)
            _, _, gauc = dr.solve(params, auc=True)
            cache[drug] = (dr.mark_times, gauc[:, dr.mark_idx, :])
        return cache.get(drug)


    def drug_info(self, name) -> "cns.Drug":
        """The drug object (MW, thresholds, sources) of ``name`` as this run used it."""
        if name in self.setups:
            return self.setups[name].drug
        return cns.drug(name)

    def _unique_grid(self, drug):
        """Times without the pre-dose duplicates, the profiles on them, and the pre-dose values."""
        t = self.times
        dup = np.flatnonzero(np.diff(t) == 0)        # index of each pre-dose (left-limit) output
        keep = np.setdiff1d(np.arange(len(t)), dup)
        prof = self.profiles[drug]
        dts = t[dup]
        return t[keep], prof[:, keep], dts, prof[:, dup]

    def interval_metrics(self, drug: str | None = None, threshold=None) -> pd.DataFrame:
        """Read-outs per dosing interval (Cmax, Tmax, Cmin, AUC, trough, time above ``threshold``).

        Computed for the band subjects (the first ``band_subjects``) with
        :func:`pkcsf.analysis.metrics.summarize`, dose-aware with the exact pre-dose
        values. ``threshold`` in the scenario's unit (a number) or as text
        with a unit. One row per subject, group and interval.

        Parameters
        ----------
        drug : str, optional
            The drug.
        threshold : float or str, optional
            Threshold for the time above it.

        Returns
        -------
        DataFrame
            One row per subject, group and interval.
        """
        from pkcsf.analysis import metrics as M

        drug = drug or next(iter(self.profiles))
        t, c, dts, before = self._unique_grid(drug)
        ok = np.isfinite(c).all(axis=(1, 2)) & np.isfinite(before).all(axis=(1, 2))   # failed subjects are NaN
        subjects = np.flatnonzero(ok)
        c, before = c[ok], before[ok]
        thr = threshold
        if isinstance(threshold, str):
            setup = self.setups[drug]
            thr = parse_quantity(threshold, "concentration", mw=setup.mw) * concentration_factor(self.unit, setup.mw)
        df = M.summarize(t, c, dose_times=dts, threshold=thr, compartments=self.groups[drug],
                         method="linear-up/log-down", conc_before=before, subjects=subjects)
        marks = self._auc_marks(drug)
        if marks is not None:           # exact interval AUCs from the accumulators (not the grid)
            mt, cum = marks
            a = np.searchsorted(mt, df["start"].to_numpy())
            b = np.searchsorted(mt, df["end"].to_numpy())
            a, b = np.minimum(a, len(mt) - 1), np.minimum(b, len(mt) - 1)
            if np.array_equal(mt[a], df["start"].to_numpy()) and np.array_equal(mt[b], df["end"].to_numpy()):
                si = df["subject"].to_numpy().astype(int)
                gi = np.asarray(df["compartment"].cat.codes, dtype=int)
                df["auc"] = cum[si, b, gi] - cum[si, a, gi]
        df = df.drop(columns=[k for k in ("conc_unit", "auc_unit") if k in df])
        df.insert(0, "drug", drug)
        df.insert(0, "arm", self.name)
        df["unit"] = self.unit
        return df

    def sample(self, group: str, times, *, drug: str | None = None, cv: float = 0.0, lloq: float = 0.0,
               seed: int = 0) -> pd.DataFrame:
        """Concentrations of the band subjects at sampling ``times`` (h), for NCA.

        ``cv``: proportional (log-normal) residual error; ``lloq``: values below
        it are reported as 0 (below the limit of quantification, as
        :func:`pkcsf.analysis.nca.nca` expects). Returns ``id, time, conc, group, unit``.

        Parameters
        ----------
        group : str
            Compartment group.
        times : array_like
            Sampling times (h).
        drug : str, optional
            The drug.
        cv : float, optional
            Proportional residual error.
        lloq : float, optional
            Limit of quantification.
        seed : int, optional
            Random seed of the residual error.

        Returns
        -------
        DataFrame
            ``id, time, conc, group, unit``.
        """
        from pkcsf.analysis import metrics as M
        from pkcsf.clinical.population import normals

        drug = drug or next(iter(self.profiles))
        if group not in self.groups[drug]:
            check_choice("group", group, self.groups[drug], ScenarioError)
        ts = np.atleast_1d(np.asarray(times, dtype=float))
        if (ts < self.times[0]).any() or (ts > self.times[-1]).any() or (np.diff(ts) < 0).any():
            raise ScenarioError("times", ts.tolist()[:5], f"sampling times must be sorted and within 0-{self.times[-1]:g} h")
        t, c, dts, before = self._unique_grid(drug)
        g = self.groups[drug].index(group)
        vals = M.interpolate(t, c[:, :, g], ts, method="linear-up/log-down", dose_times=dts,
                             conc_before=before[:, :, g])
        n = vals.shape[0]
        if cv > 0:
            sd = math.sqrt(math.log1p(cv * cv))
            vals = vals * np.exp(sd * normals(seed, 3, 0, n, len(ts)) - 0.5 * sd * sd)
        if lloq > 0:
            vals = np.where(vals < lloq, 0.0, vals)
        return pd.DataFrame({"id": np.repeat(np.arange(n), len(ts)), "time": np.tile(ts, n),
                             "conc": vals.ravel(), "group": group, "unit": self.unit})

    def bands(self, drug: str | None = None, q=(5, 50, 95)) -> pd.DataFrame:
        """Percentiles over subjects at each time: columns drug, group, time, p5, p50, p95 (and typical).

        Parameters
        ----------
        drug : str, optional
            The drug.
        q : sequence of float, optional
            Percentiles.

        Returns
        -------
        DataFrame
            One row per group and time.
        """
        rows = []
        for d in ([drug] if drug else list(self.profiles)):
            prof = self.profiles[d]
            pc = percentiles(prof, q, axis=0) if prof.shape[0] > 1 else np.repeat(prof, len(q), axis=0)
            for g, name in enumerate(self.groups[d]):
                df = pd.DataFrame({"drug": d, "group": name, "time": self.times,
                                   **{f"p{x:g}": pc[i, :, g] for i, x in enumerate(q)},
                                   "typical": self.typical[d][:, g]})
                rows.append(df)
        return pd.concat(rows, ignore_index=True)


class ScenarioResult:
    """The outcome of :func:`run`: one :class:`ArmResult` per arm, plus provenance.

    Parameters
    ----------
    scenario : Scenario
        What was run.
    arms : dict of str to ArmResult
        Results per arm.
    elapsed : float
        Wall time (s).
    """

    def __init__(self, scenario: Scenario, arms: dict, elapsed: float):
        self.scenario = scenario
        self.arms = arms
        self.elapsed = elapsed
        self.unit = scenario.unit

    def __repr__(self):
        return (f"ScenarioResult({', '.join(self.arms)}; {self.scenario.subjects} subjects; unit {self.unit}; "
                f"{self.elapsed:.1f} s)")

    def drug_info(self, name) -> "cns.Drug":
        """The drug object (MW, thresholds, sources) of ``name`` as this run used it."""
        for a in self.arms.values():
            if name in a.setups:
                return a.setups[name].drug
        return cns.drug(name)

    def __getitem__(self, arm: str) -> ArmResult:
        if arm not in self.arms:
            check_choice("arm", arm, list(self.arms), ScenarioError)
        return self.arms[arm]

    def metrics(self) -> pd.DataFrame:
        """Per-subject read-outs of every arm (one row per arm, subject, drug, group)."""
        return pd.concat([a.metrics for a in self.arms.values()], ignore_index=True)

    def summary(self, q=(5, 50, 95)) -> pd.DataFrame:
        """Population percentiles of each read-out, per arm, drug and group.

        Failed subjects are excluded from every percentile; ``n`` counts the subjects the
        percentiles are taken over and ``n_failed`` those excluded (see :meth:`failures`).

        Parameters
        ----------
        q : sequence of float, optional
            Percentiles (default 5, 50, 95).

        Returns
        -------
        DataFrame
            One row per arm, drug, group and read-out.
        """
        m = self.metrics()
        value_cols = [c for c in m.columns if c not in ("arm", "id", "drug", "group", "unit", "auc_unit", "status")]
        solved = m["status"].eq("SUCCESS") if "status" in m else pd.Series(True, index=m.index)
        counts = solved.groupby([m["arm"], m["drug"], m["group"]], sort=False, observed=True).agg(["sum", "size"])
        if not solved.all():        # no copy of a table of millions of rows when every subject was solved
            m = m[solved]
        g = m.groupby(["arm", "drug", "group"], sort=False, observed=True)[value_cols]
        parts = []
        for x in q:
            s = g.quantile(x / 100.0)
            s.columns = [f"{c}_p{x:g}" for c in s.columns]
            parts.append(s)
        out = pd.concat(parts, axis=1)
        cols = [f"{c}_p{x:g}" for c in value_cols for x in q]
        out = out[cols].reindex(counts.index).reset_index()
        out.columns = ["arm", "drug", "group"] + cols
        out.insert(3, "unit", self.unit)
        out.insert(4, "n", counts["sum"].to_numpy().astype(int))
        out.insert(5, "n_failed", (counts["size"] - counts["sum"]).to_numpy().astype(int))
        return out

    def targets(self) -> pd.DataFrame:
        """Fraction of the solved subjects meeting each target, with ``n`` and ``n_failed``."""
        return pd.concat([a.targets for a in self.arms.values()], ignore_index=True)

    def failures(self) -> pd.DataFrame:
        """One row per failed subject and drug: ``arm, drug, id, status, message``."""
        return pd.concat([a.failures for a in self.arms.values()], ignore_index=True)

    def observations(self) -> pd.DataFrame:
        """PRED/IPRED beside DV at the observation rows of every event-table arm (tidy; see
        :meth:`ArmResult.observations`).
        """
        parts = [a.observations(d) for a in self.arms.values() for d in a.datasets]
        if not parts:
            raise ScenarioError("observations", "no event-table arm",
                                "an arm's regimen must be a NONMEM-style event table with observation rows")
        return pd.concat(parts, ignore_index=True)

    def nonmem(self) -> pd.DataFrame:
        """NONMEM-style wide frame of every event-table arm (``ARM`` and ``DRUG`` columns first)."""
        parts = []
        for a in self.arms.values():
            for d in a.datasets:
                w = a.nonmem(d)
                w.insert(0, "DRUG", d)
                w.insert(0, "ARM", a.name)
                parts.append(w)
        if not parts:
            raise ScenarioError("nonmem", "no event-table arm",
                                "an arm's regimen must be a NONMEM-style event table")
        return pd.concat(parts, ignore_index=True)

    def to_xarray(self):
        """Every arm's band profiles as one ``xarray.Dataset`` (dims arm, subject, time, group; see
        :meth:`ArmResult.to_xarray`; arms on different time grids are aligned with NaN).
        """
        return scenario_to_xarray(self)

    def plot(self, groups=("ventricular", "cisternal", "lumbar", "plasma"), **kwargs):
        """Median and 5–95% band per compartment group, every arm overlaid (see
        :func:`pkcsf.plotting.overlay_arms`, which takes the same keywords). Returns the Axes.

        Parameters
        ----------
        groups : sequence of str, optional
            Compartment groups, one panel each.
        **kwargs
            As :func:`pkcsf.plotting.overlay_arms`.

        Returns
        -------
        ndarray of Axes
            The panels.
        """
        from pkcsf.plotting import overlay_arms

        first = next(iter(self.arms.values()))
        have = set(first.groups[next(iter(first.groups))])
        kwargs.setdefault("band", self.scenario.subjects > 1)
        return overlay_arms(self, [g for g in groups if g in have], **kwargs)

    def bands(self) -> pd.DataFrame:
        """Percentile bands of every arm's concentration-time profiles (one DataFrame, column ``arm``)."""
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
        """Every reference behind this run's values (all arms and drugs), without repeats."""
        refs = []
        for a in self.arms.values():
            for s in a.setups.values():
                for r in s.cite():
                    if r not in refs:
                        refs.append(r)
        return refs


# ------------------------------------------------------------------ run
def _as_regimen(reg, drug, field, age=None) -> Regimen:
    from pkcsf.clinical.regimens import parse_regimen

    if isinstance(reg, str):
        # mg/m2 and age-based doses: each subject's own BSA and AGE (unless the scenario fixes an age)
        return parse_regimen(reg, drug=drug, bsa="BSA", age="AGE" if age is None else age)
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


def _sites(regimen: Regimen, setup: cns.Setup, where: str) -> Regimen:
    """Doses on routes -> doses on model sites (a route the drug is not given by is an error)."""
    from pkcsf.clinical.regimens import ROUTE_ALIASES, ROUTES, normalize_route

    doses = []
    for d in regimen.doses:
        if d.site in ROUTES or d.site.lower() in ROUTE_ALIASES:
            route = normalize_route(d.site, field=f"{where}: route")
            if route not in setup.sites:
                raise ScenarioError(f"{where}: route", d.site,
                                    f"{setup.drug.name} can be given by: " + ", ".join(sorted(setup.sites)))
            site = setup.sites[route]
        elif d.site in setup.model.site_names or d.site in setup.model.compartment_names:
            site = d.site            # a model site or compartment named directly (advanced use)
        else:
            normalize_route(d.site, field=f"{where}: route")   # raises listing the routes
            raise AssertionError  # pragma: no cover
        doses.append(replace(d, site=site, drug=None))
    return Regimen(doses)


def _grid(scn: Scenario, regs: dict) -> tuple[np.ndarray, float]:
    """Output grid: a regular step, plus every dose time listed twice (the
    engine then reports the value before and after the dose).
    """
    last = max(r.expand()[-1].time for r in regs.values())
    days = scn.days if scn.days is not None else max(7.0, math.ceil(last / 24.0) + 7.0)
    end = days * 24.0
    dt = scn.dt
    if dt is None:
        dt = 0.25 if days <= 7 else (1.0 if days <= 60 else 4.0)
    check_grid(end, dt, scn.dt)            # before allocating: dt = "1e-9 h" must not ask for terabytes
    n = int(round(end / dt))
    grid = np.linspace(0.0, n * dt, n + 1)
    dose_t = np.unique(np.concatenate([[d.time for d in r.expand()] for r in regs.values()]))
    dose_t = dose_t[dose_t <= grid[-1]]
    base = np.setdiff1d(grid, dose_t)
    return np.sort(np.concatenate([base, dose_t, dose_t]), kind="stable"), end


def _thresholds_for(scn: Scenario, setup: cns.Setup) -> list[tuple[str, float]]:
    """(label, mg/L) pairs."""
    spec = scn.thresholds
    if isinstance(spec, dict):
        spec = spec.get(setup.drug.name, [])
    if spec is None:
        return list(setup.thresholds.items())
    if isinstance(spec, (str, int, float)):
        spec = [spec]
    return [(str(s), parse_quantity(s, "concentration", mw=setup.mw, field="thresholds", default_unit="mg/L"))
            for s in spec]


def run(scenario: Scenario, *, progress: bool | None = None, executor: object | None = None) -> ScenarioResult:
    """Simulate every arm of ``scenario``; see the module docstring.

    The per-subject ``metrics`` table has one row per arm, subject, drug and
    compartment group, with columns ``cmax, tmax, auc`` (whole window),
    ``cmax_last, auc_last, trough_last`` (the last dosing interval: for daily
    dosing, the steady state), ``ratio_auc_plasma`` (AUC over the plasma
    AUC: CSF/plasma), ``ratio_auc_ventricular`` (AUC over the ventricular
    AUC: e.g. lumbar/ventricular), per threshold X ``time_above[X]`` and ``longest_above[X]`` (h),
    ``unit`` and ``auc_unit``. Concentrations in ``scenario.unit``.

    ``executor``: anything with ``submit(fn, *args)`` returning a future with
    ``result()`` (a ``concurrent.futures.ProcessPoolExecutor`` with the
    ``spawn`` start method, or a ``dask.distributed.Client`` for a cluster):
    population chunks are then simulated there and reduced to read-outs
    where they run; only read-outs travel back. Results are identical to a
    local run (subject i depends only on the seed and i).

    Parameters
    ----------
    scenario : Scenario
        Arms, population, physiology, window, read-outs.
    progress : bool, optional
        Show a progress bar; default: for 20,000 subjects or more.
    executor : object, optional
        Where to run population chunks (see above); default: this process.

    Returns
    -------
    ScenarioResult
        Per-arm results: ``metrics``, ``summary()``, bands, ``plot()``, ``cite()``.

    Examples
    --------
    >>> res = run(Scenario([Arm("lumbar", "12 mg lumbar once", drug="methotrexate")], days=2))  # doctest: +SKIP
    """
    scn = scenario
    t0 = _time.perf_counter()
    plan = []
    for arm in scn.arms:
        sa = arm.scenario_for(scn)           # the arm's own physiology, pathologies and age
        regs = _split_by_drug(arm, sa.age)
        setups = {d: cns.setup(arm.drug_object(d), physiology=sa.physiology, variant=_variant_for(arm, d),
                               pathologies=sa.pathologies, age=sa.age, metabolite=arm.metabolite) for d in regs}
        plan.append((arm, regs, setups))
    cs = scn.chunk_size or _CHUNK
    check_run(scn, [p for p in plan if not p[0].is_event_table], _grid, cs)        # refuse what cannot fit in memory before simulating anything
    total = sum(len(regs) for _, regs, _ in plan) * (-(-scn.subjects // cs))
    bar = progress_bar(progress, total=total, desc="simulating", unit="chunk", default=scn.subjects >= 20000)
    arms = {}
    try:
        for arm, regs, setups in plan:
            sa = arm.scenario_for(scn)
            if arm.is_event_table:
                arms[arm.name] = _run_dataset_arm(sa, arm, regs, setups, bar)
            else:
                arms[arm.name] = _run_arm(sa, arm, regs, setups, bar, executor)
    finally:
        if bar is not None:
            bar.close()
    res = ScenarioResult(scn, arms, _time.perf_counter() - t0)
    _warn_failures(res)
    _warn_coarse_grid(res)
    return res


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


def population_from_data(setup: cns.Setup, data: pd.DataFrame, *, age_fixed: bool = False) -> Population:
    """A user population: the sourced variability of ``setup`` and the covariate effects its columns allow.

    Parameters
    ----------
    setup : Setup
    data : DataFrame
        One row per subject: covariates (WT, HT, AGE, SEX, SCR, ALB; BSA and CRCL are derived when their
        inputs are there) and/or individual parameter values.
    age_fixed : bool
        The setup was already scaled to one age: the physiology's age effects are not applied again.

    Returns
    -------
    Population
    """
    base = default_population(setup, demographics=None, age_fixed=age_fixed)
    cols = set(data.columns)
    if {"HT", "WT"} <= cols:
        cols.add("BSA")
    if {"AGE", "WT", "SCR", "SEX"} <= cols:
        cols.add("CRCL")
    effects = [e for ps in setup.sets for e in getattr(ps, "covariates", {}).values()
               if e.parameter in setup.parameters and e.covariate in cols
               and not (age_fixed and e.covariate == "AGE" and ps.kind == "physiology")]
    return Population(base.random_effects, covariance=base.omega, effects=effects,
                      data=data if len(data.columns) else None)


def population_for(scn: Scenario, setup: cns.Setup) -> Population:
    """The population a scenario uses for one drug setup: the scenario's own
    :class:`Population`, or the sourced default (:func:`default_population`)
    with the scenario's demographics name or DataFrame.

    Parameters
    ----------
    scn : Scenario
        The scenario.
    setup : Setup
        One drug's set-up.

    Returns
    -------
    Population
        The population.
    """
    pop = scn.population
    age_fixed = scn.age is not None
    if pop is None:
        return _with_age(default_population(setup, age_fixed=age_fixed), scn.age)
    if isinstance(pop, str):
        return _with_age(default_population(setup, demographics=pop, age_fixed=age_fixed), scn.age)
    if isinstance(pop, pd.DataFrame):
        _check_age_conflict(scn.age, pop)
        return population_from_data(setup, pop, age_fixed=age_fixed)
    if isinstance(pop, Population):
        return _with_age(pop, scn.age)
    raise ScenarioError("population", type(pop).__name__, "must be a Population, a DataFrame or a demographics name")


class _DrugRun:
    """One drug of one arm: model, regimen on model sites, grouping, thresholds."""

    def __init__(self, scn, arm, drug, reg, setup, times, end):
        self.scn, self.setup, self.drug = scn, setup, drug
        where = f"arm {arm.name!r} ({drug})"
        self.reg = _sites(reg, setup, where)
        self.dose_times = np.array(sorted({d.time for d in self.reg.expand() if d.time <= times[-1]}))
        names = [g for g, cs in setup.outputs.items() if cs]
        gnames = list(scn.groups) if scn.groups else names
        for g in gnames:
            if g not in names:
                check_choice(f"{where}: group", g, names, ScenarioError)
        if "plasma" not in gnames:
            gnames = ["plasma"] + gnames
        self.groups = gnames
        comps = setup.model.compartment_names
        self.states, self.W = setup.group_weights(gnames)
        # exact AUCs: one accumulator state per read-out compartment (d AUC_i/dt = C_i), so that AUC
        # read-outs do not depend on the output step (a trapezoid on a 4-h grid was +7% for weekly
        # Ommaya pemetrexed, issue 9); a group's AUC is the volume-weighted mean of its compartments'
        taken = set(comps)
        self.auc_states = []
        for c in self.states:
            name = f"{c}__auc"
            while name in taken:
                name += "_"
            taken.add(name)
            self.auc_states.append(name)
        self.model = setup.model.extend(
            compartments=[Compartment(a, None, f"AUC of the concentration in {c} (mg*h/L)", kind="accumulator")
                          for c, a in zip(self.states, self.auc_states)],
            transfers=[accumulate(c, a) for c, a in zip(self.states, self.auc_states)])
        self.factor = concentration_factor(scn.unit, setup.mw)
        self.thresholds = _thresholds_for(scn, setup)
        self.thr_unit = np.array([v * self.factor for _, v in self.thresholds])
        self.times, self.end = times, end
        self.model_params = set(setup.model.parameter_names)
        # subject columns a dose amount refers to (e.g. "12 * BSA")
        from pkcsf.engine.expressions import Expression

        self.dose_columns = set()
        for d in self.reg.doses:
            if isinstance(d.amount, str):
                self.dose_columns.update(Expression.parse(d.amount).names)
        # grid indices: the right-limit output of each dose, and the left limit of the next
        self.right = np.searchsorted(times, self.dose_times, side="right") - 1
        self.left = np.searchsorted(times, self.dose_times, side="left")
        last = self.right[-1] if len(self.right) else 0
        self.last_start = int(last)
        # times at which the band subjects' cumulative exact AUC is kept (interval read-outs)
        self.mark_times = np.unique(np.concatenate([[times[0]], self.dose_times, [times[-1]]]))
        self.mark_idx = np.searchsorted(times, self.mark_times, side="right") - 1

    def problem(self, params: pd.DataFrame, *, auc: bool = False):
        """The engine problem of these subjects (saved: the group states, with ``auc`` then their
        AUC accumulators).
        """
        for c in self.dose_columns:
            if c.startswith("AGEDOSE_") and c not in params.columns and self.scn.age is not None:
                from pkcsf.clinical.regimens import (
                    age_based_dose,  # a fixed scenario age doses everyone at that age
                )

                params = params.assign(**{c: age_based_dose(c[len("AGEDOSE_"):].lower(),
                                                            np.full(len(params), float(self.scn.age)))})
            if c.startswith("AGEDOSE_") and c not in params.columns:
                if "AGE" not in params.columns:
                    raise ScenarioError("population", "no AGE column",
                                        f"an age-based dose of {self.drug} needs each subject's age: use demographics "
                                        "with AGE (e.g. 'pediatric'), an AGE data column, or a scenario age")
                from pkcsf.clinical.regimens import age_based_dose

                params = params.assign(**{c: age_based_dose(c[len("AGEDOSE_"):].lower(), params["AGE"].to_numpy())})
        missing = [c for c in self.dose_columns if c not in params.columns]
        if missing:
            raise ScenarioError("population", f"no {missing[0]} column",
                                f"a dose of {self.drug} is given per {missing[0]} (e.g. mg/m2); the population needs "
                                "that covariate (use demographics with height and weight, or a data column)")
        cols = [c for c in params.columns if c in self.model_params or c == "ID" or c in self.dose_columns]
        prob = prepare(self.model, self.reg, params[cols], times=self.times,
                       outputs=self.states + (self.auc_states if auc else []),
                       solver=self.scn.solver, max_steps=self.scn.step_budget(float(self.times[-1])))
        return prob

    def solve(self, params: pd.DataFrame, *, auc: bool = False):
        """Group concentrations (n, T, G) in the scenario's unit, and solver status; with ``auc``
        also the exact cumulative group AUCs (n, T, G) in unit*h from the accumulator states.
        """
        S = len(self.states)
        prob = self.problem(params, auc=auc)
        out, status, _ = prob.solve()
        V = prob.compiled.volumes(prob.P)[:, prob.save[:S]]
        amounts = out[:, :, :S] @ self.W                          # (n, T, G)
        vol = V @ self.W                                          # (n, G)
        conc = amounts * (self.factor / vol[:, None, :])
        failed = status != 0
        conc[failed] = np.nan               # a failed subject's partial profile is never used
        if not auc:
            return conc, status
        # group AUC = sum_i V_i AUC_i / sum_i V_i (the group concentration is sum A_i / sum V_i)
        gauc = ((out[:, :, S:] * V[:, None, :]) @ self.W) * (self.factor / vol[:, None, :])
        gauc[failed] = np.nan
        return conc, status, gauc

    def reduce(self, params: pd.DataFrame, keep: int):
        """Read-outs computed inside the compiled solve (:func:`pkcsf.analysis.readouts.solve_and_read_out`,
        no (n, T, G) array): (read-outs dict, status, group concentrations of the first ``keep``), or
        None for a solver without fused read-outs (radau).
        """
        prob = self.problem(params, auc=True)
        if prob.method not in ("exact", "rodas5p"):
            return None
        return solve_and_read_out(prob, self.W, self.factor, self.thr_unit, self.last_start,
                                  int(self.left[-1]) if len(self.left) else -1, keep)

    def readouts(self, conc, ids, arm_name, status=None, gauc=None, fused=None) -> pd.DataFrame:
        """The per-subject metrics table, from group concentrations ``conc`` (n, T, G) or from the
        read-outs ``fused`` of :meth:`reduce`.
        """
        if fused is not None:
            r = fused
            n, G = r["cmax"].shape
            tail = {"cmax": r["cmax_last"], "auc": r["auc_last"]}
        else:
            n, T, G = conc.shape
            r = whole_window(self.times, conc, self.thr_unit)
            tail = whole_window(self.times[self.last_start:], conc[:, self.last_start:])
        status = np.zeros(n, dtype=np.int64) if status is None else np.asarray(status)
        if gauc is not None:            # exact integrals from the accumulators, independent of the grid
            r["auc"] = gauc[:, -1, :] - gauc[:, 0, :]
            tail["auc"] = gauc[:, -1, :] - gauc[:, self.last_start, :]
        # text columns as categoricals (one byte a row instead of a Python string; the same categories
        # in every chunk, so that concatenated chunks stay categorical)
        def cat(codes, categories):
            return pd.Categorical.from_codes(codes, categories=categories)

        out = {"arm": cat(np.zeros(n * G, dtype=np.int8), [arm_name]), "id": np.repeat(ids, G),
               "drug": cat(np.zeros(n * G, dtype=np.int8), [self.drug]),
               "group": cat(np.tile(np.arange(G, dtype=np.int8), n), list(self.groups)),
               "unit": cat(np.zeros(n * G, dtype=np.int8), [self.scn.unit]), "cmax": r["cmax"].ravel(), "tmax": r["tmax"].ravel(), "auc": r["auc"].ravel(),
               "cmax_last": tail["cmax"].ravel(), "auc_last": tail["auc"].ravel()}
        if len(self.left):
            out["trough_last"] = (r["trough_last"] if fused is not None else conc[:, self.left[-1], :]).ravel()
        pl = r["auc"][:, self.groups.index("plasma")]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ratio_auc_plasma"] = (r["auc"] / pl[:, None]).ravel()
            if "ventricular" in self.groups:
                vent = r["auc"][:, self.groups.index("ventricular")]
                out["ratio_auc_ventricular"] = (r["auc"] / vent[:, None]).ravel()
        for k, (label, _) in enumerate(self.thresholds):
            out[f"time_above[{label}]"] = r["time_above"][:, :, k].ravel()
            out[f"longest_above[{label}]"] = r["longest_above"][:, :, k].ravel()
        df = pd.DataFrame(out)
        failed = np.repeat(status != 0, G)
        if failed.any():        # excluded from every statistic: NaN, whatever the kernels made of NaN input
            value_cols = [c for c in df.columns if c not in ("arm", "id", "drug", "group", "unit")]
            df.loc[failed, value_cols] = np.nan
        df["auc_unit"] = cat(np.zeros(n * G, dtype=np.int8), [f"{self.scn.unit}*h"])
        df["status"] = cat(np.repeat(np.asarray(status, dtype=np.int8), G), [st.name for st in Status])
        return df

    def target(self, tg: Target, conc) -> np.ndarray:
        """Boolean (n,): which subjects meet the target."""
        if tg.group not in self.groups:
            check_choice(f"target group ({tg.label})", tg.group, self.groups, ScenarioError)
        c = conc[:, :, self.groups.index(tg.group)]
        thr = parse_quantity(tg.threshold, "concentration", mw=self.setup.mw, field="target.threshold",
                             default_unit="mg/L") * self.factor
        dur = parse_quantity(tg.duration, "time", field="target.duration")
        if tg.per == "dose" and len(self.right):
            ends = np.append(self.left[1:], len(self.times) - 1)
            run = min_interval_run(self.times, c, thr, self.right, ends)
        else:
            run = whole_window(self.times, c[:, :, None], np.array([thr]))["time_above"][:, 0, 0]
        return run >= dur - 1e-9


def _chunk(dr: "_DrugRun", pop: Population, seed: int, variability: bool, start: int, n: int, nb: int,
           arm_name: str, targets: tuple) -> dict:
    """Simulate subjects ``start .. start+n-1`` and reduce them to read-outs (runs anywhere: a
    worker process or a cluster node gets the pickled arguments).
    """
    params = pop.individual(dr.setup.parameters, n, seed=seed, start=start, variability=variability)
    keep = max(0, min(nb, start + n) - start)
    ids = params["ID"].to_numpy()
    fused = None if targets else dr.reduce(params, keep)
    if fused is not None:               # read-outs inside the compiled solve: no (n, T, G) array
        r, status, band = fused
        ok = status == 0
        return {"failed": int((~ok).sum()),
                "failures": [(i, int(st)) for i, st in zip(ids[~ok].tolist(), status[~ok].tolist())],
                "band": band if keep else None,
                "readouts": dr.readouts(None, ids, arm_name, status, fused=r),
                "targets": {}}
    conc, status, gauc = dr.solve(params, auc=True)
    ok = status == 0
    return {"failed": int((~ok).sum()),
            "failures": [(i, int(st)) for i, st in zip(ids[~ok].tolist(), status[~ok].tolist())],
            "band": conc[:keep].copy() if keep else None,
            "readouts": dr.readouts(conc, ids, arm_name, status, gauc),
            "targets": {tg.label: dr.target(tg, conc)[ok] for tg in targets}}


def _with_age(pop: Population, age) -> Population:
    """With a fixed scenario age every subject's AGE is that age (covariate effects, CRCL, age-based doses;
    weight- and height-for-age of a pediatric demographics set are drawn at it). A copy: the caller's
    Population is not changed.
    """
    if age is None or pop.data is not None:
        return pop
    out = copy.copy(pop)
    out.fixed = dict(getattr(pop, "fixed", {}), AGE=float(age))
    return out


def _check_age_conflict(age, data: pd.DataFrame) -> None:
    """One meaning of a child's age: a fixed ``age`` (one age for everyone: physiology and age-based
    doses) or each subject's own ``AGE`` column, never both with different values.
    """
    if age is None or "AGE" not in data.columns:
        return
    ages = pd.to_numeric(data["AGE"], errors="coerce").to_numpy(dtype=float)
    if not np.allclose(ages, float(age)):
        raise ScenarioError("age", age, "a fixed age applies one age to every subject, but the population data "
                            f"has its own AGE column ({np.nanmin(ages):g} to {np.nanmax(ages):g} y): remove the "
                            "fixed age (each subject's physiology then scales with his own AGE) or the AGE column")


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
    dt = scn.dt if scn.dt is not None else (0.25 if days <= 7 else (1.0 if days <= 60 else 4.0))
    check_grid(end, dt, scn.dt)
    grid = np.linspace(0.0, round(end / dt) * dt, int(round(end / dt)) + 1)
    names = [g for g, cs in setup.outputs.items() if cs]
    gnames = list(scn.groups) if scn.groups else names
    for g in gnames:
        if g not in names:
            check_choice(f"arm {arm.name!r} ({drug}): group", g, names, ScenarioError)
    if "plasma" not in gnames:
        gnames = ["plasma"] + gnames
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
        if (self.cols is None or list(df.columns) != list(self.cols) or self.n + k > self.rows
                or any(df[c].dtype != (cat if cat is not None else arr.dtype) for c, (arr, cat) in self.cols.items())):
            self.extra.append(df)
            return
        for c, (arr, cat) in self.cols.items():
            arr[self.n:self.n + k] = df[c].cat.codes.to_numpy() if cat is not None else df[c].to_numpy()
        self.n += k

    def frame(self) -> pd.DataFrame:
        parts = []
        if self.cols is not None and self.n:
            parts.append(pd.DataFrame({c: (pd.Categorical.from_codes(arr[:self.n], dtype=cat) if cat is not None
                                           else arr[:self.n]) for c, (arr, cat) in self.cols.items()}, copy=False))
        parts += self.extra
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def _run_arm(scn: Scenario, arm: Arm, regs: dict, setups: dict, bar, executor=None) -> ArmResult:
    times, end = _grid(scn, regs)
    T = len(times)
    profiles, typical, groups, frames, dose_times, target_rows = {}, {}, {}, [], {}, []
    failed = 0
    failures = []
    auc_source = {}
    grid_err = {}
    N = scn.subjects
    cs = scn.chunk_size or _CHUNK
    for drug, reg in regs.items():
        setup = setups[drug]
        dr = _DrugRun(scn, arm, drug, reg, setup, times, end)
        dose_times[drug] = dr.dose_times
        groups[drug] = dr.groups
        pop = population_for(scn, setup)
        if pop.size is not None and pop.size < N:
            raise ScenarioError("subjects", N, f"the population data has only {pop.size} rows")
        # the typical subject: no random effects, covariates at their reference values
        typ = Population(None, name="typical").individual(setup.parameters, 1)
        wanted = {c for c in ("BSA", "AGE") if any(c in str(d.amount) for d in dr.reg.doses)}
        if any(str(d.amount).startswith("AGEDOSE_") for d in dr.reg.doses):
            wanted.add("AGE")
        if wanted:          # dosed per BSA or by age: the population's median subject
            covs = pop.covariates(min(N, 2000), scn.seed)
            for c in sorted(wanted):
                if c not in covs:
                    raise ScenarioError("population", f"no {c} column",
                                        f"a dose of {drug} is given per {c}; the population needs that covariate "
                                        "(demographics with it, a data column, or a fixed scenario age)")
                typ[c] = float(np.median(covs[c]))
        typ_conc, typ_status = dr.solve(typ)
        typical[drug] = typ_conc[0]
        if typ_status[0] != 0:
            failures.append((arm.name, drug, "typical", int(typ_status[0])))
        nb = min(N, scn.band_subjects)
        prof = np.empty((nb, T, len(dr.groups)))
        targets = tuple(tg for tg in scn.targets if tg.drug in (None, drug))
        met = {tg.label: [] for tg in targets}
        jobs = [(start, min(cs, N - start)) for start in range(0, N, cs)]
        if executor is None:
            results = (_chunk(dr, pop, scn.seed, scn.variability, a, n, nb, arm.name, targets) for a, n in jobs)
        else:   # submit every chunk, gather in order (subject i does not depend on where it ran)
            futures = [executor.submit(_chunk, dr, pop, scn.seed, scn.variability, a, n, nb, arm.name, targets)
                       for a, n in jobs]
            results = (f.result() for f in futures)
        n_failed = 0
        for (start, n), r in zip(jobs, results):
            failed += r["failed"]
            n_failed += r["failed"]
            failures += [(arm.name, drug, i, st) for i, st in r["failures"]]
            if r["band"] is not None:
                prof[start:start + len(r["band"])] = r["band"]
            if not frames or not isinstance(frames[-1], _Columns):
                frames.append(_Columns(N * len(dr.groups)))
            frames[-1].add(r["readouts"])
            for label, ok in r["targets"].items():
                met[label].append(ok)
            if bar is not None:
                bar.update(1)
        profiles[drug] = prof
        auc_source[drug] = (dr, pop, scn.seed, scn.variability, nb)
        grid_err[drug] = dict(zip(dr.groups, _cmax_grid_error(times, prof, dr.right, dr.left)))
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
    return out


_FAILURE_COLUMNS = ["arm", "drug", "id", "status", "message"]


def _cmax_grid_error(times, prof, right, left) -> np.ndarray:
    """Estimated relative error (G,) of grid Cmax read-outs, the largest over the band subjects and doses.

    A peak between output times is under-read. Within each dosing interval (from the right limit of a dose
    to the left limit of the next), the profile sampled at every other output time (both halves) gives the
    read-out at twice the step; for a smooth peak the error falls with the square of the step, so the error
    at the step used is about a third of the difference (Richardson). A peak just after a dose shows as a
    large difference in one of the halves.
    """
    G = prof.shape[2]
    T = len(times)
    p = prof[np.isfinite(prof).all(axis=(1, 2))]
    if T < 3 or p.shape[0] == 0:
        return np.zeros(G)
    starts = np.unique(np.concatenate([[0], np.asarray(right, dtype=int)]))
    ends = np.append(starts[1:], T)
    worst = np.zeros(G)
    for a, b in zip(starts, ends):
        seg = p[:, a:b, :]
        if seg.shape[1] < 3:
            continue
        c_h = seg.max(axis=1)
        for parity in (0, 1):
            idx = np.arange(seg.shape[1])
            mask = (idx % 2 == parity) | (idx == 0) | (idx == seg.shape[1] - 1)
            c_2h = seg[:, mask, :].max(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                rel = np.where(c_h > 0, (c_h - c_2h) / c_h, 0.0)
            worst = np.maximum(worst, rel.max(axis=0))
    return worst / 3.0


def _warn_coarse_grid(res: "ScenarioResult") -> None:
    """One warning per run naming the Cmax read-outs the output step may under-read, and a step that would do."""
    parts = []
    dt = None
    for name, a in res.arms.items():
        errs = getattr(a, "cmax_grid_error", {})
        for drug, per_group in errs.items():
            bad = {g: e for g, e in per_group.items() if e > CMAX_GRID_RTOL}
            if not bad:
                continue
            step = float(np.median(np.diff(np.unique(a.times)))) if len(a.times) > 1 else 0.0
            # error ~ step^2 for a smooth peak; a quarter of that step for peaks just after a dose (the
            # estimate is low there)
            need = 0.25 * step * math.sqrt(CMAX_GRID_RTOL / max(bad.values()))
            dt = need if dt is None else min(dt, need)
            parts.append(f"arm {name!r} ({drug}): " + ", ".join(f"{g} by ~{100 * e:.2g}% or more"
                                                             for g, e in sorted(bad.items(), key=lambda x: -x[1])))
    if parts:
        warnings.warn("Cmax read-outs are low: peaks fall between output times (" + "; ".join(parts)
                      + f"); use an output step dt <= {dt:.2g} h for Cmax within {100 * CMAX_GRID_RTOL:g}% "
                      "(AUCs are exact integrals and do not depend on dt)", CoarseGridWarning, stacklevel=3)


def _warn_failures(res: "ScenarioResult") -> None:
    """One warning per run naming every arm with failed subjects: how many, which ids, why."""
    fails = res.failures()
    if fails.empty:
        return
    parts = []
    for (arm, drug), f in fails.groupby(["arm", "drug"], sort=False):
        subj = f[f["id"].astype(str) != "typical"]
        ids = subj["id"].tolist()
        shown = ", ".join(map(str, ids[:20])) + (f" ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
        why = "; ".join(f"{st}: {Status[st].message}" for st in dict.fromkeys(f["status"]))
        what = f"{len(ids)} of {res.scenario.subjects} subjects failed" if ids else "no subject failed"
        if len(subj) < len(f):
            what += " and the typical subject failed (its profile is NaN)"
        parts.append(f"arm {arm!r} ({drug}): {what}" + (f" (ids {shown})" if ids else "") + f" [{why}]")
    warnings.warn("excluded from every read-out, percentile and target fraction (NaN in metrics, counted in "
                  "n_failed): " + " | ".join(parts), FailedSubjectsWarning, stacklevel=3)


def simulate_drug(drug: str | cns.Drug, regimen: str | Regimen | dict, *, subjects: int = 1,
                  days: float | None = None, seed: int = 0, progress: bool | None = None, **kwargs) -> ScenarioResult:
    """One drug, one or several regimens (``{name: regimen}``): a one-call :func:`run`.

    ``pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once", "ommaya": "12 mg ommaya once"},
    subjects=1000, days=7)``

    Parameters
    ----------
    drug : str or Drug
        Drug name or object (a modified :class:`~pkcsf.clinical.cns.Drug` is used as it is).
    regimen : str, Regimen or dict
        One regimen, or ``{arm name: regimen}``.
    subjects : int, optional
        Virtual subjects per arm (default 1, the typical patient).
    days : float, optional
        Simulated days (default: from the regimen).
    seed : int, optional
        Random seed of the population.
    progress : bool, optional
        Show a progress bar.
    **kwargs
        Other :class:`Scenario` options (``variant``, ``physiology``, ``unit``, ``targets``, ...).

    Returns
    -------
    ScenarioResult
        As :func:`run`.
    """
    d = cns.drug(drug)
    name = d.name
    # a Drug object (e.g. with changed values) is used as it is; a name is loaded by each arm
    arm_drug = drug if isinstance(drug, cns.Drug) else name
    variant = kwargs.pop("variant", "linear")
    if isinstance(regimen, dict):
        arms = tuple(Arm(k, v, drug=arm_drug, variant=variant) for k, v in regimen.items())
    else:
        arms = (Arm(name, regimen, drug=arm_drug, variant=variant),)
    return run(Scenario(arms, subjects=subjects, days=days, seed=seed, **kwargs), progress=progress)
