"""The scenario-file format: its keys (:data:`SCHEMA`), :class:`ScenarioFileError`, :class:`OutputOptions`
and the readers of single values (text, true/false, quantities, drugs, routes, doses) whose errors name the
key path.

Public names are re-exported by :mod:`pkcsf.clinical.scenario_file`.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from pkcsf.clinical import cns
from pkcsf.core.errors import PkcsfError, ScenarioError, check_keys, suggest
from pkcsf.core.units import UNITS, parse_quantity

__all__ = ["OutputOptions", "ScenarioFileError", "SCHEMA", "FORMATS"]


#: Output formats of tables.
FORMATS = ("csv", "parquet")

#: Allowed keys of each table: key -> short description (docs/scenarios.md has the long form).
SCHEMA: dict[str, dict[str, str]] = {
    "": {
        "name": "title of the scenario (text)",
        "description": "free text",
        "drug": "default drug of the arms",
        "route": "default route of the arms (for dose + schedule and named regimens)",
        "schedule": "default schedule of the arms (regimen text without dose and route)",
        "variant": "default CSF efflux description: linear or saturable",
        "days": "simulated days (number or '6 weeks')",
        "dt": "output step (hours, or '15 min')",
        "max_steps_per_day": "adaptive-solver step budget per simulated day and subject (default 2000)",
        "population": "table: virtual population",
        "physiology": "table: physiology, age, pathologies",
        "readouts": "table: unit, groups, thresholds, targets",
        "arms": "array of tables: the regimens to compare",
        "outputs": "table: folder, format, figures",
    },
    "population": {
        "subjects": "virtual subjects per arm (whole number >= 1)",
        "seed": "random seed (whole number >= 0)",
        "demographics": "name of a demographics set (parameters/population/)",
        "csv": "CSV file with one row per subject (covariates and/or parameters)",
        "variability": "true or false: random effects, or typical values for everyone (default: true with several subjects, false with one)",
        "iiv": "table parameter -> CV (log-normal), added to the sourced variability",
    },
    "physiology": {
        "set": "physiology parameter set (default 'adult')",
        "age": "age in years (scales CSF volumes and flows)",
        "pathologies": "table: named pathology scenarios (true/false) and/or parameter values",
    },
    "readouts": {
        "unit": "concentration unit of the read-outs (umol/L, mg/L, ...)",
        "groups": "compartment groups to read out",
        "thresholds": "thresholds for time above: a list, or a table drug -> list",
        "targets": "array of tables: fraction of subjects meeting each target",
        "band_subjects": "subjects kept for the percentile bands (default 2000)",
    },
    "readouts.targets": {
        "group": "compartment group",
        "threshold": "concentration, e.g. '1 umol/L'",
        "duration": "time above the threshold, e.g. '48 h'",
        "per": "'dose' (after each dose) or 'total'",
        "drug": "drug the target applies to (default: every drug)",
        "name": "label in the tables",
    },
    "arms": {
        "name": "arm name (unique)",
        "drug": "drug of the doses that name none",
        "route": "route, for dose + schedule or a named regimen",
        "regimen": "regimen text, a named regimen, or a table {name = ..., options}",
        "dose": "dose amount ('12 mg', '12 mg/m2'), with schedule",
        "schedule": "schedule text without dose and route, with dose",
        "variant": "CSF efflux description: linear or saturable",
        "metabolite": "true: add osimertinib's AZ5104 in plasma",
        "events": "NONMEM-style event table (CSV, path relative to the scenario file) instead of a regimen",
        "physiology": "this arm's physiology set (overrides [physiology].set)",
        "age": "this arm's age in years (overrides [physiology].age)",
        "pathologies": "this arm's pathologies table (overrides [physiology].pathologies; {} for none)",
        "unit": "this arm's concentration unit (overrides [readouts].unit)",
        "prevalence": "table: share of this arm's patients with each named pathology, e.g. { spinal_block = 0.33 }",
        "patients": "a named patient population ('pkcsf pathologies'), e.g. 'leptomeningeal_metastases': its "
                    "pathologies for every patient and the prevalence of the others",
        "position": "when the patients are upright after each lumbar dose, e.g. 'upright 1-24 h' (lying the first "
                    "hour); default lying",
        "uncertainty": "parameter uncertainty: each patient draws his own values from a calibration's uncertainty, "
                       "e.g. 'osimertinib_csf' or { calibration = 'osimertinib_csf', method = 'linearized', pool = 1000 }",
    },
    "outputs": {
        "folder": "output folder (relative to the current folder)",
        "format": "table format: csv or parquet",
        "figures": "true/false: write PNG figures",
    },
}


class ScenarioFileError(ScenarioError):
    """A scenario file is malformed, misspelled or holds an impossible value.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


@dataclass(frozen=True)
class OutputOptions:
    """Where and how ``pkcsf run`` writes a scenario's results.

    Parameters
    ----------
    folder : Path
        Output folder.
    format : str, optional
        Table format (``csv`` or ``parquet``).
    figures : bool, optional
        Write figures.
    arm_regimens : dict, optional
        How each arm's regimen was read.
    """

    folder: Path
    format: str = "csv"
    figures: bool = True
    #: how each arm's regimen was read: the text, or the named-regimen call (for provenance and ``pkcsf cite``)
    arm_regimens: dict = field(default_factory=dict)


def _err(field, value, allowed, fix=None):
    return ScenarioFileError(field, value, allowed, fix)


def _rewrap(field: str, exc: PkcsfError) -> ScenarioFileError:
    """Re-raise a deeper error under this file's key path, keeping its message."""
    new = ScenarioFileError(field, exc.value, exc.allowed, exc.fix)
    text = str(exc)
    new.args = (f"{field}: {text}",)
    return new


def _join(path: str, key) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def _check_keys(table: dict, schema_key: str, path: str):
    def belongs_in(k):
        for other, keys in SCHEMA.items():
            if other != schema_key and k in keys:
                where = {"": "the top level", "arms": "[[arms]]",
                         "readouts.targets": "[[readouts.targets]]"}.get(other, f"[{other}]")
                return f"{k!r} belongs in {where}"
        return None

    check_keys(path, table, SCHEMA[schema_key], ScenarioFileError, hint=belongs_in)


def _table(data: dict, key: str, path: str) -> dict:
    v = data.get(key, {})
    if not isinstance(v, dict):
        raise _err(_join(path, key), v, f"must be a table ([{_join(path, key)}])")
    return v


def _str(v, field, *, allowed_empty=False) -> str:
    if not isinstance(v, str) or (not allowed_empty and not v.strip()):
        raise _err(field, v, "must be text (in quotes)")
    return v.strip()


def _bool(v, field) -> bool:
    if not isinstance(v, bool):
        raise _err(field, v, "must be true or false (without quotes)")
    return v


def _quantity(v, kind, field, default_unit, *, mw=None, positive=True) -> float:
    """A number (in ``default_unit``) or text with a unit; returns base units."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _err(field, v, f"must be a number or a quantity such as {_EXAMPLES[kind]!r}")
    try:
        x = parse_quantity(v, kind, field=field, mw=mw, default_unit=default_unit)
    except PkcsfError as e:
        units = _COMMON_UNITS.get(kind) or [u for u, (k, _, _) in UNITS.items() if k == kind]
        raise _err(field, v, f"must be a {kind} such as {_EXAMPLES[kind]!r}; units: " + ", ".join(units),
                   e.fix) from None
    if not math.isfinite(x) or (x <= 0 if positive else x < 0):
        raise _err(field, v, f"must be a {kind} {'> 0' if positive else '>= 0'}")
    return x


_EXAMPLES = {"time": "48 h", "concentration": "1 umol/L", "amount": "12 mg"}
#: units listed in messages (every spelling of pkcsf.core.units is accepted)
_COMMON_UNITS = {"time": ["min", "h", "d", "week"],
                 "concentration": ["umol/L", "nmol/L", "mmol/L", "mg/L", "ug/mL", "ug/L", "ng/mL"]}


def _choice(v, field, choices, what="allowed"):
    choices = list(choices)
    if isinstance(v, str) and v in choices:
        return v
    guess = suggest(v, choices) if isinstance(v, str) else None
    raise _err(field, v, f"{what}: " + (", ".join(choices) or "(none)"),
               f"did you mean {guess!r}?" if guess else None)


def _drug(v, field) -> str:
    v = _str(v, field)
    name = v.lower()
    return _choice(name, field, cns.available_drugs(), "allowed drugs")


def _route(v, field) -> str:
    from pkcsf.clinical.regimens import normalize_route

    v = _str(v, field)
    try:
        return normalize_route(v, field=field)
    except PkcsfError as e:
        raise _err(field, v, e.allowed, e.fix) from None


def _dose(v, field) -> str:
    """A dose amount as text the regimen parser reads ('12 mg', '12 mg/m2', '6 mg/kg')."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _err(field, v, "must be an amount such as '12 mg' (mg, g, ug), '12 mg/m2' or '6 mg/kg'")
    if isinstance(v, (int, float)):
        if not (math.isfinite(v) and v > 0):
            raise _err(field, v, "must be an amount > 0")
        return f"{v:g} mg"
    text = v.strip()
    m = re.match(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$", text)
    if not m:
        raise _err(field, v, "must be an amount such as '12 mg' (mg, g, ug), '12 mg/m2' or '6 mg/kg'")
    unit = m.group(2) or "mg"
    x = float(m.group(1))
    kind = UNITS.get(unit, ("?",))[0]
    if kind not in ("amount", "dose_per_bsa", "dose_per_weight") or UNITS[unit][2]:
        what = {"volume": "a volume", "concentration": "a concentration", "time": "a time"}.get(kind, "not an amount")
        fix = ("the volume injected is not the dose: give the amount of drug, e.g. '12 mg'"
               if kind == "volume" else "e.g. '12 mg'")
        raise _err(field, v, f"{unit!r} is {what}; a dose is an amount in mg, g or ug (or per m2: mg/m2, g/m2; "
                             "or per kg: mg/kg)", fix)
    if not (math.isfinite(x) and x > 0):
        raise _err(field, v, "must be an amount > 0")
    return f"{m.group(1)} {unit}"
