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
available; an arm may set its own, and every table row carries its unit), AUC in ``unit`` x h.

Where the parts live: definitions and validation in :mod:`~pkcsf.clinical.scenario_spec`, populations in
:mod:`~pkcsf.clinical.scenario_population`, one drug's solve and reduction in
:mod:`~pkcsf.clinical.scenario_reduce`, arms in :mod:`~pkcsf.clinical.scenario_run`, results and run
warnings in :mod:`~pkcsf.clinical.scenario_results`; every public name is importable from here.
"""
from __future__ import annotations

import time as _time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.resources import check_run
from pkcsf.clinical.scenario_bounded import SummaryResult, _run_summary, check_executor, run_summary  # noqa: F401
from pkcsf.clinical.scenario_population import (  # noqa: F401
    default_population,
    population_for,
    population_from_data,
)
from pkcsf.clinical.scenario_reduce import _chunk, _DrugRun, _sites, _thresholds_for, arm_lumbar_times  # noqa: F401
from pkcsf.clinical.scenario_results import (  # noqa: F401
    _FAILURE_COLUMNS,
    CMAX_GRID_RTOL,
    ArmResult,
    CoarseGridWarning,
    DosesAfterEndWarning,
    FailedSubjectsWarning,
    RegimenDrugWarning,
    ScenarioResult,
    _cmax_grid_error,
    _warn_coarse_grid,
    _warn_failures,
)
from pkcsf.clinical.scenario_run import (  # noqa: F401
    _CHUNK,
    _as_regimen,
    _Columns,
    _grid,
    _run_arm,
    _run_dataset_arm,
    _split_by_drug,
    _variant_for,
    arm_setups,
)
from pkcsf.clinical.scenario_spec import (  # noqa: F401
    _MIN_SCENARIO_STEPS,
    MAX_STEPS_PER_DAY,
    Arm,
    Scenario,
    Target,
    concentration_factor_checked,
)
from pkcsf.core.errors import ScenarioError, check_choice
from pkcsf.core.progress import progress_bar
from pkcsf.engine.dosing import Regimen

__all__ = ["Arm", "Target", "Scenario", "ScenarioResult", "SummaryResult", "ArmResult", "run", "default_population",
           "population_for", "simulate_drug", "FailedSubjectsWarning", "CoarseGridWarning", "DosesAfterEndWarning",
           "RegimenDrugWarning",
           "MAX_STEPS_PER_DAY"]


def run(scenario: Scenario, *, progress: bool | None = None, executor: object | None = None,
        keep: str = "metrics", q: Sequence[float] = (5, 50, 95), in_flight: int | None = None,
        scratch: str | Path | None = None) -> ScenarioResult:
    """Simulate every arm of ``scenario``; see the module docstring.

    The per-subject ``metrics`` table has one row per arm, subject, drug and
    compartment group, with columns ``cmax, tmax, auc`` (whole window),
    ``cmax_last, auc_last`` (from the last dose in the window to its end: for daily
    dosing, the steady state) and ``trough_last`` (the level just before that dose: the
    steady-state trough; 0 with a single dose), ``ratio_auc_plasma`` (AUC over the plasma
    AUC: CSF/plasma), ``ratio_auc_ventricular`` (AUC over the ventricular
    AUC: e.g. lumbar/ventricular), per threshold X ``time_above[X]`` and ``longest_above[X]`` (h),
    ``unit`` and ``auc_unit``. Concentrations in the arm's unit (``Arm.unit``, default ``scenario.unit``).

    ``executor``: anything with ``submit(fn, *args)`` returning a future with
    ``result()`` (a ``concurrent.futures.ProcessPoolExecutor`` with the
    ``spawn`` start method, or a ``dask.distributed.Client`` for a cluster):
    population chunks are then simulated there and reduced to read-outs
    where they run; only read-outs travel back. Results are identical to a
    local run (subject i depends only on the seed and i).

    ``keep="summary"``: for millions of subjects, keep the population summary instead of the per-subject
    table (:mod:`~pkcsf.clinical.scenario_bounded`): at most ``in_flight`` chunks are outstanding on the
    executor, each chunk's read-outs go to scratch files (``scratch`` folder, removed at the end) and the
    percentiles ``q`` are taken from them exactly, so ``res.summary()`` equals a full run's to the last
    bit while neither this process nor a worker holds the table. Bands, targets, failures, plots and
    provenance are kept; ``res.metrics()`` raises. Event-table arms are refused.

    Parameters
    ----------
    scenario : Scenario
        Arms, population, physiology, window, read-outs.
    progress : bool, optional
        Show a progress bar; default: for 20,000 subjects or more.
    executor : object, optional
        Where to run population chunks (see above); default: this process.
    keep : {"metrics", "summary"}, optional
        ``"metrics"`` (default): the per-subject table and everything else; ``"summary"``: everything but
        the per-subject table, with bounded memory (see above).
    q : sequence of float, optional
        With ``keep="summary"``: the percentiles the summary keeps (default 5, 50, 95).
    in_flight : int, optional
        With ``keep="summary"``: chunks outstanding at most (default: twice the executor's workers, else 4).
    scratch : str or Path, optional
        With ``keep="summary"``: folder for the temporary read-out files (default: the system's temporary
        folder).

    Returns
    -------
    ScenarioResult
        Per-arm results: ``metrics``, ``summary()``, bands, ``plot()``, ``cite()``; with ``keep="summary"``
        a :class:`~pkcsf.clinical.scenario_bounded.SummaryResult` (no ``metrics``).

    Examples
    --------
    >>> res = run(Scenario([Arm("lumbar", "12 mg lumbar once", drug="methotrexate")], days=2))  # doctest: +SKIP
    >>> big = run(Scenario(arms, subjects=10_000_000), executor=client, keep="summary")  # doctest: +SKIP
    """
    check_choice("keep", keep, ["metrics", "summary"], ScenarioError)
    check_executor(executor)
    if keep == "summary":
        res = _run_summary(scenario, executor=executor, q=q, in_flight=in_flight, scratch=scratch, progress=progress)
        _warn_failures(res)
        _warn_coarse_grid(res)
        return res
    scn = scenario
    t0 = _time.perf_counter()
    plan = []
    for arm in scn.arms:
        _, regs, setups = arm_setups(arm, scn)      # the arm's own physiology, pathologies and age
        plan.append((arm, regs, setups))
    if isinstance(scn.thresholds, dict):      # thresholds for a drug no arm gives would be silently unused
        given = {d for _, regs, _ in plan for d in regs}
        for d in scn.thresholds:
            if d not in given:
                raise ScenarioError("thresholds", d, "thresholds by drug name the drugs of the arms: "
                                    + ", ".join(sorted(given)))
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


#: Arm options simulate_drug passes to every arm
_ARM_OPTIONS = ("variant", "patients", "prevalence", "uncertainty")
#: option names other tools use, and pkcsf's word for them (named in the error instead of a bare "not allowed")
_OPTION_ALIASES = {"n": "subjects", "n_subjects": "subjects", "nsubjects": "subjects", "n_patients": "subjects",
                   "npatients": "subjects", "nsim": "subjects", "n_sim": "subjects", "duration": "days"}


def simulate_drug(drug: str | cns.Drug, regimen: str | Regimen | dict, *, subjects: int | None = None,
                  days: float | None = None, seed: int = 0, progress: bool | None = None, **kwargs: object) -> ScenarioResult:
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
        Virtual subjects per arm (default: one per row of a ``population`` table given, else 1, the typical
        patient).
    days : float, optional
        Simulated days (default: from the regimen).
    seed : int, optional
        Random seed of the population.
    progress : bool, optional
        Show a progress bar.
    **kwargs
        Other :class:`Scenario` options (``physiology``, ``pathologies``, ``unit``, ``targets``, ...) and the
        :class:`Arm` options ``variant``, ``patients`` (e.g. ``"leptomeningeal_metastases"``), ``prevalence`` and
        ``uncertainty``, given to every arm; ``position`` (e.g. ``"upright 1-24 h"``) is given to every arm with a
        lumbar dose (the model has no posture effect after doses by other routes).

    Returns
    -------
    ScenarioResult
        As :func:`run`.

    Examples
    --------
    >>> res = simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once", "ommaya": "12 mg ommaya once"}, days=2)
    >>> sorted(res.arms)
    ['lumbar', 'ommaya']
    """
    d = cns.drug(drug)
    name = d.name
    # a Drug object (e.g. with changed values) is used as it is; a name is loaded by each arm
    arm_drug = drug if isinstance(drug, cns.Drug) else name
    # Arm options, the same for every arm; the rest are Scenario options
    arm_options = {k: kwargs.pop(k) for k in _ARM_OPTIONS if k in kwargs}
    arm_options.setdefault("variant", "linear")
    position = kwargs.pop("position", None)
    from dataclasses import fields

    allowed = sorted({f.name for f in fields(Scenario)} - {"arms"} | set(_ARM_OPTIONS) | {"position"})
    for k in kwargs:                                              # a typo: named, with the options, no TypeError
        if k in _OPTION_ALIASES:                                  # a word from another tool (n=1000)
            raise ScenarioError(f"simulate_drug option {k!r}", k, "allowed: " + ", ".join(allowed),
                                fix=f"did you mean {_OPTION_ALIASES[k]!r}?")
        check_choice(f"simulate_drug option {k!r}", k, allowed, ScenarioError)
    regimens = regimen if isinstance(regimen, dict) else {name: regimen}
    if subjects is None:                     # a table of patients: all of them (a scenario file does the same)
        table = kwargs.get("population")
        subjects = len(table) if isinstance(table, pd.DataFrame) and len(table) else 1

    def arm_for(arm_name, reg) -> Arm:
        arm = Arm(arm_name, reg, drug=arm_drug, **arm_options)
        regs = _split_by_drug(arm)               # each drug's doses (a combination text names the others)
        if name not in regs:
            warnings.warn(f"pkcsf.simulate: arm {arm_name!r}: the regimen gives only "
                          f"{', '.join(sorted(regs))}, not {name} (the drug named first); it simulates what the "
                          "regimen names", RegimenDrugWarning, stacklevel=3)
        if position is None:
            return arm
        # the lumbar doses of every drug in the arm open its windows (arm_lumbar_times, as a scenario run)
        setups = {dn: cns.setup(arm.drug_object(dn)) for dn in regs}
        return replace(arm, position=position) if arm_lumbar_times(arm_name, regs, setups) else arm

    arms = tuple(arm_for(k, v) for k, v in regimens.items())
    return run(Scenario(arms, subjects=subjects, days=days, seed=seed, **kwargs), progress=progress)
