"""What a virtual escalation is asked: dose levels and their schedules, the exposure that drives toxicity
(:class:`ExposureSpec`), the efficacy target (:class:`EfficacyTarget`), extra between-subject variability,
the literature MTDs that anchor the default link, and :class:`EscalationError`.

Public names are re-exported by :mod:`pkcsf.clinical.escalation`.
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pkcsf.clinical import cns
from pkcsf.core.errors import PkcsfError, ScenarioError, check_choice, check_keys
from pkcsf.core.units import concentration_factor, parse_quantity
from pkcsf.engine.dosing import Regimen

if TYPE_CHECKING:
    from pkcsf.clinical.population import Population

__all__ = ["EscalationError", "DEFAULT_SCHEDULE", "LITERATURE_MTD", "ExposureSpec", "parse_exposure",
           "EfficacyTarget", "population_with_iiv"]


class EscalationError(ScenarioError):
    """An escalation setting (doses, exposure, link, efficacy target ...) is invalid.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


#: Default schedule (Pan et al. 2019, intrathecal pemetrexed): twice weekly x 2 weeks, then weekly x 4 weeks.
DEFAULT_SCHEDULE = "twice weekly x 2 weeks, then weekly x 4 weeks"

#: Doses the literature calls the MTD, per (drug, route): (dose in mg, short citation, full source).
#: Used to anchor the default link.
LITERATURE_MTD = {
    ("pemetrexed", "lumbar"): (
        10.0, "Pan et al. 2019",
        "Pan Z, et al. A pilot phase 1 study of intrathecal pemetrexed for refractory leptomeningeal metastases "
        "from non-small-cell lung cancer. Front Oncol 2019;9:838. doi:10.3389/fonc.2019.00838 (PMID 31544065): "
        "MTD 10 mg by lumbar puncture (twice weekly x 2 weeks, then weekly x 4 weeks)"),
}

_METRICS = ("cmax", "auc", "trough_end", "time_above", "longest_above")
_THRESHOLD_METRICS = ("time_above", "longest_above")


@dataclass(frozen=True)
class ExposureSpec:
    """One per-patient exposure: ``group:metric`` (``threshold`` for time metrics).

    Parameters
    ----------
    group : str
        Compartment group (``"plasma"``, ``"lumbar"``, ...).
    metric : str
        ``auc``, ``cmax``, ``time_above``, ``longest_above``, ...
    threshold : str, optional
        Threshold of the time metrics, with its unit.
    """

    group: str
    metric: str
    threshold: str | None = None

    @property
    def label(self) -> str:
        """The spec as text, ``group:metric[threshold]``."""
        m = f"{self.metric}[{self.threshold}]" if self.threshold else self.metric
        return f"{self.group}:{m}"

    def unit(self, conc_unit: str) -> str:
        """Unit of the read-out for concentrations in ``conc_unit``.

        Parameters
        ----------
        conc_unit : str
            Concentration unit, e.g. ``"umol/L"``.

        Returns
        -------
        str
            ``conc_unit`` (Cmax, trough), ``conc_unit*h`` (AUC) or ``"h"`` (time above a threshold).
        """
        if self.metric == "auc":
            return f"{conc_unit}*h"
        if self.metric in _THRESHOLD_METRICS:
            return "h"
        return conc_unit


_EXPOSURE_RE = re.compile(r"^\s*(?P<group>[A-Za-z_]+)\s*:\s*(?P<metric>[A-Za-z_]+)\s*(?:\[(?P<thr>[^\]]*)\])?\s*$")


def parse_exposure(text: str | ExposureSpec, field: str = "exposure") -> ExposureSpec:
    """Read ``"plasma:auc"``, ``"lumbar:cmax"``, ``"ventricular:time_above[1 umol/L]"``.

    Parameters
    ----------
    text : str or ExposureSpec
        The spec.
    field : str, optional
        Named in errors.

    Returns
    -------
    ExposureSpec
        The spec.

    Examples
    --------
    >>> parse_exposure("lumbar:cmax").metric
    'cmax'
    """
    if isinstance(text, ExposureSpec):
        return text
    example = "e.g. 'plasma:auc', 'lumbar:cmax' or 'ventricular:time_above[1 umol/L]'"
    if not isinstance(text, str):
        raise EscalationError(field, text, f"must be text 'group:metric' ({example})")
    m = _EXPOSURE_RE.match(text)
    if not m:
        raise EscalationError(field, text, f"must be 'group:metric' with metric one of {', '.join(_METRICS)} "
                                           f"({example})")
    group, metric, thr = m.group("group").lower(), m.group("metric").lower(), m.group("thr")
    check_choice(f"{field} metric", metric, _METRICS, EscalationError)
    if metric in _THRESHOLD_METRICS and not (thr and thr.strip()):
        raise EscalationError(field, text, f"{metric} needs a threshold in brackets",
                              f"e.g. '{group}:{metric}[0.1 umol/L]' or a threshold name of the drug")
    if metric not in _THRESHOLD_METRICS and thr is not None:
        raise EscalationError(field, text, f"{metric} takes no threshold", f"write '{group}:{metric}'")
    return ExposureSpec(group, metric, thr.strip() if thr else None)


# ---------------------------------------------------------------- efficacy target
@dataclass(frozen=True)
class EfficacyTarget:
    """A per-patient exposure target: ``exposure >= at_least``.

    Written as text, one of::

        "lumbar:time_above[0.1 umol/L] >= 48 h"
        "lumbar:time_above >= 48 h at 0.1 umol/L"       (the same)
        "ventricular:cmax >= 1 umol/L"
        "plasma:auc >= 20 umol/L*h"

    or as a mapping ``{"exposure": "lumbar:time_above[0.1 umol/L]", "at_least": "48 h"}``.
    ``at_least`` is a time for time metrics, a concentration for ``cmax`` and
    ``trough_end``, an AUC (``mg*h/L``, ``umol*h/L``; or ``unit*h`` in the
    read-out unit, e.g. ``umol/L*h``) for ``auc``; a bare number is in the
    read-out unit.

    Parameters
    ----------
    exposure : ExposureSpec
        The read-out.
    at_least : str or float
        The value to reach (with a unit as text).
    """

    exposure: ExposureSpec
    at_least: str | float

    @property
    def label(self) -> str:
        """The target as text, ``group:metric >= value``."""
        v = self.at_least if isinstance(self.at_least, str) else f"{self.at_least:g}"
        return f"{self.exposure.label} >= {v}"

    @classmethod
    def parse(cls, spec: str | dict | EfficacyTarget, field: str = "efficacy") -> EfficacyTarget:
        """Read a target from text (``"lumbar:time_above[0.1 umol/L] >= 48 h"``) or a mapping ``{exposure, at_least}``.

        Parameters
        ----------
        spec : str, dict or EfficacyTarget
            The target.
        field : str, optional
            Named in errors.

        Returns
        -------
        EfficacyTarget
            The target.
        """
        if isinstance(spec, EfficacyTarget):
            return spec
        if isinstance(spec, dict):
            check_keys(field, spec, ["exposure", "at_least"], EscalationError)
            if "exposure" not in spec or "at_least" not in spec:
                raise EscalationError(field, spec, "needs both 'exposure' and 'at_least'")
            return cls(parse_exposure(spec["exposure"], f"{field}.exposure"), spec["at_least"])
        if not isinstance(spec, str):
            raise EscalationError(field, spec, "must be text such as 'lumbar:time_above[0.1 umol/L] >= 48 h' "
                                               "or a mapping {exposure, at_least}")
        m = re.match(r"^\s*(?P<lhs>[^>]+?)\s*>=\s*(?P<rhs>.+?)\s*$", spec)
        if not m:
            raise EscalationError(field, spec, "must read 'group:metric >= value', e.g. "
                                               "'lumbar:time_above[0.1 umol/L] >= 48 h' or 'ventricular:cmax >= 1 umol/L'")
        lhs, rhs = m.group("lhs"), m.group("rhs")
        at = re.match(r"^(?P<v>.+?)\s+at\s+(?P<thr>.+)$", rhs)
        if at:
            if "[" in lhs:
                raise EscalationError(field, spec, "give the threshold either in brackets or after 'at', not both")
            lhs = f"{lhs}[{at.group('thr')}]"
            rhs = at.group("v")
        return cls(parse_exposure(lhs, f"{field} exposure"), rhs)

    def value(self, unit: str, mw: float, field: str = "efficacy") -> float:
        """``at_least`` in the read-out unit.

        Parameters
        ----------
        unit : str
            Concentration unit of the read-outs, e.g. ``"umol/L"``.
        mw : float
            Molecular weight (g/mol), to convert between mass and molar units.
        field : str, optional
            Named in errors.

        Returns
        -------
        float
            The target in ``unit`` (Cmax, trough), ``unit`` x h (AUC) or h (time above a threshold).

        Raises
        ------
        EscalationError
            A value of the wrong kind for the metric, or not finite and >= 0.
        """
        kind = {"auc": "an AUC such as '20 umol/L*h' or '10 mg*h/L'", "time_above": "a time such as '48 h'",
                "longest_above": "a time such as '48 h'"}.get(self.exposure.metric,
                                                                "a concentration such as '1 umol/L'")
        try:
            x = self._value(unit, mw, field)
        except EscalationError:
            raise
        except PkcsfError:
            raise EscalationError(f"{field}.at_least", self.at_least,
                                  f"{self.exposure.metric} needs {kind}") from None
        if not (math.isfinite(x) and x >= 0):
            raise EscalationError(f"{field}.at_least", self.at_least, "must be finite and >= 0")
        return x

    def _value(self, unit: str, mw: float, field: str) -> float:
        m = self.exposure.metric
        v = self.at_least
        if m in _THRESHOLD_METRICS:
            x = parse_quantity(v, "time", field=f"{field}.at_least")
        elif m == "auc":
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            s = str(v).strip()
            mm = re.match(r"^(?P<num>\S+)\s*(?P<conc>\S+?)\s*[*·]\s*h$", s)
            if mm and mm.group("conc") not in ("mg", "ug", "umol", "µmol", "µg"):
                # "20 umol/L*h": a concentration unit times hours
                c = parse_quantity(f"{mm.group('num')} {mm.group('conc')}", "concentration", mw=mw,
                                   field=f"{field}.at_least")
                return c * concentration_factor(unit, mw)
            x = parse_quantity(s, "auc", mw=mw, field=f"{field}.at_least")
            return x * concentration_factor(unit, mw)
        else:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return float(v)
            x = parse_quantity(v, "concentration", mw=mw, field=f"{field}.at_least")
            return x * concentration_factor(unit, mw)
        return x


def population_with_iiv(setup: cns.Setup, iiv: dict | None, field: str = "iiv", *,
                        base: Population | None = None) -> Population:
    """A population whose log-normal CVs are those of ``base`` with ``iiv`` added or overriding.

    ``iiv`` maps model parameters to coefficients of variation (fractions,
    ``{"CL": 0.3}``); ``base`` defaults to the sourced default population of
    ``setup`` (:func:`pkcsf.clinical.scenario.default_population`). Covariates,
    covariate effects, user data and correlations of ``base`` are kept.
    None or an empty ``iiv`` returns ``base``.

    Parameters
    ----------
    setup : Setup
        The drug set-up.
    iiv : dict or None
        Parameter -> CV.
    field : str, optional
        Named in errors.
    base : Population, optional
        Population to start from.

    Returns
    -------
    Population
        The population.
    """
    from pkcsf.clinical.population import Population, RandomEffect
    from pkcsf.clinical.scenario import default_population

    if base is None:
        base = default_population(setup)
    if not iiv:
        return base
    if not isinstance(iiv, dict):
        raise EscalationError(field, iiv, "must map parameter names to CVs, e.g. {'CL': 0.3}")
    res = {(r.parameters[0] if len(r.parameters) == 1 else r.name): r for r in base.random_effects}
    for k, v in iiv.items():
        if k not in setup.parameters:
            check_choice(f"{field} parameter", k, sorted(setup.parameters), EscalationError)
        if isinstance(v, bool):
            raise EscalationError(f"{field}.{k}", v, "must be a coefficient of variation (a fraction, e.g. 0.3)")
        try:
            cv = float(v)
        except (TypeError, ValueError):
            raise EscalationError(f"{field}.{k}", v, "must be a coefficient of variation (a fraction, e.g. 0.3)") \
                from None
        if not (math.isfinite(cv) and 0 <= cv <= 3):
            raise EscalationError(f"{field}.{k}", v, "must be a CV between 0 and 3 (a fraction: 0.3 = 30 %)")
        res[k] = RandomEffect(f"eta_{k}", (k,), cv=cv, source="user")
    new = list(res.values())
    corr = None
    omega = getattr(base, "omega", None)
    n0 = len(base.random_effects)
    if omega is not None and n0 and np.any(np.abs(omega - np.diag(np.diag(omega))) > 0):
        # keep the base correlations between the etas it had; new etas are uncorrelated
        sd = np.sqrt(np.diag(omega))
        R0 = omega / np.outer(np.where(sd > 0, sd, 1), np.where(sd > 0, sd, 1))
        corr = np.eye(len(new))
        corr[:n0, :n0] = R0
        np.fill_diagonal(corr, 1.0)
    out = Population(new, correlation=corr, demographics=base.demographics, effects=base.effects,
                     data=base.data, name=f"{base.name} + user IIV")
    if hasattr(base, "skipped"):
        out.skipped = base.skipped
    return out


def _doses(doses) -> np.ndarray:
    if isinstance(doses, str):
        doses = [d for d in re.split(r"\s*[,;]\s*|\s+(?![a-zA-Zµ])", doses.strip()) if d]
    try:
        items = list(doses)
    except TypeError:
        raise EscalationError("doses", doses, "must be a list of doses, e.g. [10, 20, 30] (mg) or ['10 mg', ...]") \
            from None
    if not items:
        raise EscalationError("doses", doses, "must name at least one dose level")
    out = []
    for i, d in enumerate(items):
        if isinstance(d, bool):
            raise EscalationError(f"doses[{i}]", d, "must be an amount (a number in mg or '10 mg')")
        if isinstance(d, (int, float, np.integer, np.floating)):
            x = float(d)
        else:
            try:
                x = parse_quantity(str(d), "amount", field=f"doses[{i}]", default_unit="mg")
            except PkcsfError as e:
                raise EscalationError(f"doses[{i}]", d, "must be an amount in mg, g or ug (e.g. '10 mg')",
                                      "a dose in mL is a volume: give the amount of drug") from e
        if not (math.isfinite(x) and x > 0):
            raise EscalationError(f"doses[{i}]", d, "must be finite and > 0 (mg)")
        out.append(x)
    arr = np.asarray(out)
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        i = int(np.argmax(~(np.diff(arr) > 0))) + 1
        raise EscalationError(f"doses[{i}]", float(arr[i]), "dose levels must be strictly increasing",
                              "list the levels from lowest to highest, without repeats")
    return arr


def _fmt_dose(x: float) -> str:
    return f"{x:g} mg"


def _parse_schedule(text: str, drug: str, schedule) -> Regimen:
    """Regimen text of one dose level; an error names ``schedule`` (what the user gave), not the text built from it."""
    from pkcsf.clinical.regimens import parse_regimen

    try:
        return parse_regimen(text, drug=drug, bsa="BSA", weight="WT")
    except PkcsfError as e:
        where = f" ({e.value!r} in {text!r})" if e.value != schedule else ""
        raise EscalationError("schedule", schedule if isinstance(schedule, str) else text, e.allowed + where,
                              e.fix) from None


def _regimen_for(drug: str, route: str, schedule, dose: float) -> tuple[Regimen, str]:
    """The regimen of one dose level and its description."""
    from pkcsf.clinical.regimens import NAMED_REGIMENS, describe_regimen

    if callable(schedule):
        reg = schedule(dose)
        if isinstance(reg, str):
            reg = _parse_schedule(reg, drug, schedule)
        if not isinstance(reg, Regimen):
            raise EscalationError("schedule", schedule, "a callable schedule must return a Regimen or regimen text "
                                                        "for a dose in mg")
        return reg, describe_regimen(reg)
    if not isinstance(schedule, str) or not schedule.strip():
        raise EscalationError("schedule", schedule, "must be regimen text without dose and route "
                                                    f"(e.g. {DEFAULT_SCHEDULE!r}), a named regimen or a callable")
    s = schedule.strip()
    if s in NAMED_REGIMENS:
        fn = NAMED_REGIMENS[s]
        params = inspect.signature(fn).parameters
        kw = {"dose": _fmt_dose(dose)} if "dose" in params else {}
        if "route" in params:
            kw["route"] = route
        elif route != "oral":
            raise EscalationError("route", route, f"the named regimen {s!r} fixes its own route (oral)")
        if "dose" not in params:
            raise EscalationError("schedule", s, "this named regimen takes no single dose; write the schedule as text")
        reg = fn(**kw)
        return reg, f"{s}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
    if re.match(r"^\s*[\d.]", s):
        raise EscalationError("schedule", schedule, "must be the schedule without the dose and the route",
                              f"e.g. {DEFAULT_SCHEDULE!r}; the dose levels come from 'doses'")
    text = f"{_fmt_dose(dose)} {route} {s}"
    reg = _parse_schedule(text, drug, schedule)
    return reg, text


#: The CSF compartment group at the injection site, for the default response of efficacy-toxicity designs.
_RESPONSE_SITE = {"lumbar": "lumbar", "ommaya": "ventricular", "intraventricular": "ventricular",
                  "intracisternal": "cisternal"}


def _default_response(d, route: str, design: str):
    """Default per-patient response for efficacy-toxicity designs: >= 1 log10 kill of CSF tumour cells at the
    injection site (``pkcsf.pd.efficacy``), i.e. time above the drug's 72-h IC50 ``ic50_bac`` >= 1 / KILL.
    """
    from pkcsf.pd import load_pd_parameters

    site = _RESPONSE_SITE.get(route)
    if site is None or "ic50_bac" not in d.thresholds:
        why = (f"route {route} has no CSF injection site" if site is None
               else f"{d.name} has no 72-h IC50 threshold 'ic50_bac'")
        raise EscalationError("efficacy", "(not given)", f"design {design} needs each patient's response and no "
                                                         f"default exists here ({why})",
                              "give efficacy='group:metric >= value', e.g. 'lumbar:time_above[0.1 umol/L] >= 48 h'")
    kill = float(load_pd_parameters("csf_tumour_kill")["KILL"])
    hours = 1.0 / kill
    target = EfficacyTarget(parse_exposure(f"{site}:time_above[ic50_bac]"), f"{hours:.4g} h")
    note = (f"Response (for {design}): at least 1 log10 kill of CSF tumour cells at the {site} site, i.e. "
            f"{site} time above ic50_bac >= {hours:.4g} h (1 / KILL, parameters/pd/csf_tumour_kill.toml); "
            "'1 log10 kill = response' is an assumption (the log-kill model ranks exposures, it does not predict "
            "response rates): give efficacy=... to use your own definition.")
    return target, note
