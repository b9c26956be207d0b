"""Scenario definitions and their validation: :class:`Target`, :class:`Arm`, :class:`Scenario`.

What a run is asked to do, checked when it is built (before anything is compiled or simulated);
:mod:`pkcsf.clinical.scenario` runs it. Public names are re-exported there.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from pkcsf.clinical import cns
from pkcsf.clinical.events import is_event_table
from pkcsf.core.errors import PkcsfError, ScenarioError, check_choice, check_int
from pkcsf.core.units import parse_quantity
from pkcsf.engine.simulate import step_budget

__all__ = ["Arm", "Target", "Scenario", "MAX_STEPS_PER_DAY"]


#: adaptive-solver steps per simulated day and subject (Scenario.max_steps_per_day): daily oral
#: osimertinib with saturable CSF efflux takes 50-70 a day, so a 10-year run needs ~250,000
MAX_STEPS_PER_DAY = 2_000
#: the smallest budget a scenario gets (a window of a few days)
_MIN_SCENARIO_STEPS = 10_000


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

    ``physiology``, ``pathologies``, ``age`` and ``unit`` override the scenario's for this arm
    (``pathologies={}``: none), so "the same regimen with and without a shunt" is one run with two arms.
    Every table row carries the unit of its arm (``unit`` column).

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
    unit : str, optional
        Concentration unit of this arm's read-outs (``"umol/L"``, ``"mg/L"`` ...; default: the scenario's).
    prevalence : dict, optional
        Pathologies that only some of the arm's patients have: ``{scenario name: probability}``, e.g.
        ``{"spinal_block": 0.33}`` (Chamberlain 1998: a spinal block in 33% of patients with leptomeningeal
        metastases). Each subject draws each name independently (:mod:`pkcsf.clinical.prevalence`); the
        per-subject metrics get a boolean column ``pathology_<name>``.
    patients : str, optional
        A named patient population (:func:`pkcsf.clinical.prevalence.patient_populations`; ``pkcsf pathologies``),
        e.g. ``"leptomeningeal_metastases"``: the pathologies every patient of it has are added to the arm's
        (or the scenario's) pathologies, and those only some have to ``prevalence`` (the arm's own entries win).
    uncertainty : str or dict, optional
        Parameter uncertainty: each subject draws his own parameter set from a calibration's uncertainty (name,
        e.g. ``"osimertinib_csf"``, or ``{"calibration": name, "method": "linearized" | "posterior", "pool":
        1000}``; :mod:`pkcsf.clinical.uncertainty`), applied as factors on his own values, so the bands combine
        parameter uncertainty with between-patient variability. The per-subject metrics get the column
        ``uncertainty_draw``.
    position : str, optional
        When the patients are upright after each lumbar dose (``"upright 0-24 h"``, ``"upright 1-24 h"`` = lying
        for the first hour; :mod:`pkcsf.clinical.position`); default lying, the calibrated state.

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
    unit: str | None = None           # None: the scenario's
    prevalence: dict | None = None    # {pathology scenario: probability}: a per-subject mixture
    uncertainty: object = None        # calibration name or {calibration, method, pool}: per-subject parameter draws
    patients: str | None = None       # a named patient population (pathologies all have + a prevalence of others)
    position: object = None           # when upright after each lumbar dose ("upright 1-24 h"); None: lying

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name.strip():
            raise ScenarioError("arm.name", self.name, "a non-empty text (it labels every table row of the arm)")
        if self.position is not None:
            from pkcsf.clinical.position import parse_position

            try:
                object.__setattr__(self, "position", parse_position(self.position))
            except PkcsfError as e:
                raise ScenarioError(f"arms[{self.name!r}].position", self.position, e.allowed) from None
            if self.is_event_table and self.position.upright:
                raise ScenarioError(f"arms[{self.name!r}].position", self.position.text,
                                    "not available for event-table arms (their doses come from the table)")
        if self.uncertainty is not None:
            from pkcsf.clinical.uncertainty import check_uncertainty

            field = f"arms[{self.name!r}].uncertainty"
            try:
                spec = check_uncertainty(self.uncertainty, field)
            except PkcsfError as e:
                raise ScenarioError(e.field, e.value, e.allowed, e.fix) from None
            object.__setattr__(self, "uncertainty", spec)
            if self.is_event_table:
                raise ScenarioError(field, self.uncertainty["calibration"],
                                    "not available for event-table arms (their patients are simulated with the "
                                    "typical values and their own covariates)")
        if self.patients is not None:
            from pkcsf.clinical.prevalence import check_patients

            field = f"arms[{self.name!r}].patients"
            preset = check_patients(self.patients, field)
            if self.is_event_table:
                raise ScenarioError(field, self.patients, "an event-table arm's patients are real patients: give each "
                                    "one's pathologies in their own arm (pathologies=...), not a patient population")
            if self.prevalence is None or isinstance(self.prevalence, dict):   # else check_prevalence names it
                object.__setattr__(self, "prevalence", {**preset["prevalence"], **(self.prevalence or {})} or None)
        if self.prevalence is not None:
            from pkcsf.clinical.prevalence import check_prevalence

            object.__setattr__(self, "prevalence", check_prevalence(self.prevalence, f"arms[{self.name!r}].prevalence"))
            if self.is_event_table:
                raise ScenarioError(f"arms[{self.name!r}].prevalence", self.prevalence,
                                    "an event-table arm's patients are real patients: give each one's pathology "
                                    "in their own arm (pathologies=...), not a prevalence")
        if self.unit is not None:
            concentration_factor_checked(self.unit, f"arms[{self.name!r}].unit")
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

    def scenario_for(self, scn: Scenario) -> Scenario:
        """The scenario as this arm sees it: its own physiology, pathologies (with its patient population's), age and
        unit where given.

        Parameters
        ----------
        scn : Scenario
            The scenario the arm belongs to.

        Returns
        -------
        Scenario
            ``scn`` with the arm's settings (``scn`` itself when the arm overrides none).
        """
        changes = {k: getattr(self, k) for k in ("physiology", "pathologies", "age", "unit")
                   if getattr(self, k) is not None}
        if self.patients is not None:          # the population's pathologies, then the arm's (or scenario's) own
            from pkcsf.clinical.prevalence import check_patients

            own = self.pathologies if self.pathologies is not None else scn.pathologies
            changes["pathologies"] = {**check_patients(self.patients, f"arms[{self.name!r}].patients")["pathologies"],
                                      **(own or {})}
        return replace(scn, **changes) if changes else scn

    @property
    def drug_name(self) -> str | None:
        """The arm's drug name, or None when each dose names its drug."""
        return self.drug.name if isinstance(self.drug, cns.Drug) else self.drug

    def drug_object(self, name: str) -> str | cns.Drug:
        """The arm's own :class:`~pkcsf.clinical.cns.Drug` when ``name`` is its drug, else the name.

        Parameters
        ----------
        name : str
            A drug name of the arm's regimen.

        Returns
        -------
        Drug or str
            The arm's (possibly modified) Drug object, or ``name``.
        """
        return self.drug if isinstance(self.drug, cns.Drug) and self.drug.name == name else name


@dataclass(frozen=True)
class Scenario:
    """Everything a run needs; see the module docstring.

    Parameters
    ----------
    arms : list of Arm
        The arms, each simulated with the same virtual subjects.
    subjects : int
        Number of virtual subjects per arm (1: the typical subject only, unless ``variability=True`` is given).
    days : float, optional
        Simulated days (default: until 7 days after the last dose, at least 7).
    dt : float, optional
        Output step (h); default 0.25 h up to 7 days, 1 h up to 60 days, else 4 h.
        Dose times are always on the grid.
    seed : int
        Random seed; subject i is the same in every arm and for every N.
    physiology : str
        Physiology set (default ``"adult"``), passed to :func:`pkcsf.clinical.cns.setup`.
    age : float, optional
        Age (years) of every subject; scales the CNS volumes and flows (:func:`pkcsf.clinical.cns.setup`).
    pathologies : dict, optional
        Named scenarios and/or values (:func:`pkcsf.clinical.cns.setup`), e.g. ``{"vp_shunt": True}``.
    population : Population, DataFrame or str, optional
        Default: :func:`default_population` (sourced variability and
        covariate effects of the drug and physiology; adult demographics).
    variability : bool, optional
        False gives every subject the typical values (covariates still vary). Default: True with more than one
        subject, False with one (the typical patient; ``variability=True`` draws one random patient instead).
    thresholds : dict or list or str, optional
        Thresholds for time-above read-outs: a list of quantities for all
        drugs, or ``{drug: [...]}``. Default: the drug's sourced thresholds.
    targets : list of Target
        Exposure targets whose attainment is reported (:meth:`ScenarioResult.targets`).
    unit : str
        Concentration unit of the read-outs (``"umol/L"`` or ``"mg/L"`` ...).
    groups : list of str, optional
        Compartment groups to read out (default: all of the setup's groups).
    band_subjects : int
        Subjects whose profiles are kept for the bands (default 2000).
    chunk_size : int, optional
        Subjects simulated at once (memory vs. speed; results do not depend on it).
    solver : str
        Solver name (default ``"auto"``: exact for linear models, else Rodas5P; see :mod:`pkcsf.solvers`).
    name, description : str
        Label and description in tables and files.
    max_steps_per_day : float
        Adaptive-solver step budget per simulated day and subject (default
        :data:`MAX_STEPS_PER_DAY`); a subject's budget is this times the simulated
        days (at least 10,000), so long windows get proportionally more.
    max_steps : int, optional
        A fixed step budget per subject instead (overrides ``max_steps_per_day``).
        A subject that reaches its budget fails: it is excluded from every read-out
        and counted (``n_failed``), never used with a partial profile.

    Examples
    --------
    >>> scn = Scenario((Arm("lumbar", "12 mg lumbar once", drug="methotrexate"),
    ...                 Arm("ommaya", "12 mg ommaya once", drug="methotrexate")), subjects=200, days=7)
    >>> [a.name for a in scn.arms], scn.subjects
    (['lumbar', 'ommaya'], 200)
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
    variability: bool | None = None      # None: True with several subjects, False with one (the typical patient)
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
        if self.variability is not None and not isinstance(self.variability, bool):
            raise ScenarioError("variability", self.variability, "True, False or None (None: True with several "
                                "subjects, False with one)")
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
        if isinstance(self.groups, str):            # one group by name ("plasma"), not its letters
            object.__setattr__(self, "groups", (self.groups,))
        mspd = self.max_steps_per_day
        if isinstance(mspd, bool) or not isinstance(mspd, (int, float, np.integer, np.floating)) \
                or not (np.isfinite(mspd) and mspd >= 1):
            raise ScenarioError("max_steps_per_day", mspd, "must be a number of solver steps per simulated day >= 1")
        ms = self.max_steps
        if ms is not None and (isinstance(ms, bool) or not isinstance(ms, (int, np.integer)) or ms < 1):
            raise ScenarioError("max_steps", ms, "must be a whole number of solver steps >= 1 (or None: "
                                "max_steps_per_day times the simulated days)")

    @property
    def draws_variability(self) -> bool:
        """Whether subjects get random effects: ``variability`` as given, else True with more than one subject and
        False with one (the typical patient). Kept unresolved in the field, so that ``replace(scn, subjects=N)``
        decides again.
        """
        return self.subjects > 1 if self.variability is None else bool(self.variability)

    def step_budget(self, t_end: float) -> int:
        """Adaptive-solver steps per subject for a window ending at ``t_end``.

        Parameters
        ----------
        t_end : float
            End of the simulated window (h).

        Returns
        -------
        int
            ``max_steps`` when given, else ``max_steps_per_day`` x simulated days (at least 10,000).
        """
        if self.max_steps is not None:
            return int(self.max_steps)
        return step_budget(t_end, self.max_steps_per_day, _MIN_SCENARIO_STEPS)


def concentration_factor_checked(unit: object, field: str = "unit") -> None:
    """Check that ``unit`` is a concentration unit.

    Parameters
    ----------
    unit : object
        The unit to check, e.g. ``"umol/L"``.
    field : str
        Field named in the error.

    Raises
    ------
    ScenarioError
        ``unit`` is not a concentration unit of :data:`pkcsf.core.units.UNITS`; the message lists them.
    """
    from pkcsf.core.units import UNITS

    if not isinstance(unit, str) or unit not in UNITS or UNITS[unit][0] != "concentration":
        conc = [u for u, (k, _, _) in UNITS.items() if k == "concentration"]
        raise ScenarioError(field, unit, "must be a concentration unit: " + ", ".join(conc))
