"""Scenario files: a :class:`~pkcsf.clinical.scenario.Scenario` written as TOML.

::

    from pkcsf.clinical.scenario_file import load_scenario
    scn, out = load_scenario("scenarios/methotrexate_lumbar_vs_ommaya.toml")
    res = pkcsf.run(scn)

The format (every key, with examples) is documented in ``docs/scenarios.md``.
A file is checked completely when it is loaded, before anything is
simulated: a malformed or misspelled file raises one
:class:`ScenarioFileError` (a :class:`~pkcsf.core.errors.ScenarioError`, hence a
``ValueError``) whose message names the file, the key with its table path
(``arms[1].regimen``; array indices count from 0), the value, what is
allowed and, for a misspelled key or name, the closest valid one.
"""
from __future__ import annotations

import inspect
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pkcsf.clinical import cns
from pkcsf.core.errors import PkcsfError, ScenarioError, check_int, check_keys, suggest
from pkcsf.core.tomlio import MAX_BYTES, tomllib
from pkcsf.core.units import UNITS, parse_quantity

if TYPE_CHECKING:
    from pkcsf.clinical.scenario import Scenario

__all__ = ["load_scenario", "parse_scenario", "OutputOptions", "ScenarioFileError", "SCHEMA", "FORMATS"]

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
        "variability": "true (default) or false: typical values for everyone",
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


# ------------------------------------------------------------------ helpers
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
    """A dose amount as text the regimen parser reads ('12 mg', '12 mg/m2')."""
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise _err(field, v, "must be an amount such as '12 mg' (mg, g, ug) or '12 mg/m2'")
    if isinstance(v, (int, float)):
        if not (math.isfinite(v) and v > 0):
            raise _err(field, v, "must be an amount > 0")
        return f"{v:g} mg"
    text = v.strip()
    m = re.match(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$", text)
    if not m:
        raise _err(field, v, "must be an amount such as '12 mg' (mg, g, ug) or '12 mg/m2'")
    unit = m.group(2) or "mg"
    x = float(m.group(1))
    kind = UNITS.get(unit, ("?",))[0]
    if kind not in ("amount", "dose_per_bsa") or UNITS[unit][2]:
        what = {"volume": "a volume", "concentration": "a concentration", "time": "a time"}.get(kind, "not an amount")
        fix = ("the volume injected is not the dose: give the amount of drug, e.g. '12 mg'"
               if kind == "volume" else "e.g. '12 mg'")
        raise _err(field, v, f"{unit!r} is {what}; a dose is an amount in mg, g or ug (or mg/m2)", fix)
    if not (math.isfinite(x) and x > 0):
        raise _err(field, v, "must be an amount > 0")
    return f"{m.group(1)} {unit}"


# ------------------------------------------------------------------ arms
def _named_regimen(name: str, options: dict, arm: dict, field: str, route, dose):
    from pkcsf.clinical.regimens import NAMED_REGIMENS

    fn = NAMED_REGIMENS[name]
    params = inspect.signature(fn).parameters
    kw = {}
    for k, v in options.items():
        if k not in params:
            guess = suggest(k, list(params))
            raise _err(_join(field, k), v, f"unknown option of the named regimen {name!r}; allowed: "
                       + ", ".join(params), f"did you mean {guess!r}?" if guess else None)
        kw[k] = v
    if dose is not None:
        key = "dose" if "dose" in params else None
        if key is None:
            raise _err(field.rsplit(".", 1)[0] + ".dose", arm.get("dose"),
                       f"the named regimen {name!r} takes no 'dose'; its options: " + ", ".join(params))
        kw.setdefault(key, dose)
    if route is not None:
        if "route" in params:
            kw.setdefault("route", route)
        elif route != "oral":
            raise _err(field.rsplit(".", 1)[0] + ".route", route, f"the named regimen {name!r} fixes its own route")
    try:
        return fn(**kw), f"{name}({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
    except PkcsfError as e:
        raise _rewrap(field, e) from None
    except TypeError as e:
        raise _err(field, options, f"invalid options for {name!r}: {e}") from None


def _check_pathologies(pathologies, field: str):
    """A pathologies table: named scenarios (true/false) and/or pathology parameter values."""
    if not isinstance(pathologies, dict):
        raise _err(field, pathologies, "must be a table, e.g. { vp_shunt = true }")
    from pkcsf.clinical.parameters import load_parameter_set

    patho = load_parameter_set("pathologies", "physiology")
    named = sorted(patho.options.get("scenarios", {}))
    values = sorted(set(patho.values) | {"F_LEAK"})
    for k, v in pathologies.items():
        f = f"{field}.{k}"
        if k in named:
            _bool(v, f)
        elif k not in values:
            _choice(k, f, named + values, "named pathologies (true/false) and pathology parameters")
    return pathologies


def _arm_physiology(a: dict, path: str) -> dict:
    """The arm's own physiology, age and pathologies (``Arm`` keywords), where given."""
    out = {}
    if "physiology" in a:
        from pkcsf.clinical.parameters import available_parameter_sets

        sets = sorted(k for k in available_parameter_sets("physiology") if k not in ("pediatric", "pathologies"))
        out["physiology"] = _choice(a["physiology"], f"{path}.physiology", sets, "physiology sets")
    if "age" in a:
        v = a["age"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 120:
            raise _err(f"{path}.age", v, "must be an age in years between 0 and 120 (a number)")
        out["age"] = float(v)
    if "pathologies" in a:
        out["pathologies"] = _check_pathologies(a["pathologies"], f"{path}.pathologies")
    return out


def _events_arm(i, a, top, base_dir, name, drug, variant, metabolite):
    """An arm given by a NONMEM-style event table (``events = "doses.csv"``)."""
    from pkcsf.clinical.events import read_events
    from pkcsf.clinical.scenario import Arm

    path = f"arms[{i}]"
    for k in ("regimen", "dose", "schedule", "route"):
        if k in a:
            raise _err(f"{path}.{k}", a[k], "an arm with 'events' takes its doses from the table; remove "
                       f"'{k}'")
    if drug is None:
        raise _err(f"{path}.drug", None, "an arm with 'events' needs its drug (in the arm or at the top)")
    f = _str(a["events"], f"{path}.events")
    try:
        data = read_events(f, base_dir=base_dir, parameters=cns.drug(drug).parameters.values)
    except PkcsfError as e:
        raise _rewrap(f"{path}.events", e) from None
    arm = Arm(name, data, drug=drug, variant=variant, metabolite=metabolite, **_arm_physiology(a, path))
    return arm, [drug], f"event table {f} ({data.n} patients)"


def _arm(i: int, a, top: dict, base_dir="."):
    from pkcsf.clinical.regimens import NAMED_REGIMENS, parse_regimen
    from pkcsf.clinical.scenario import Arm

    path = f"arms[{i}]"
    if not isinstance(a, dict):
        raise _err(path, a, "each arm must be a table ([[arms]] with name, drug, regimen ...)")
    _check_keys(a, "arms", path)
    name = _str(a.get("name", f"arm {i + 1}"), f"{path}.name")
    drug = a.get("drug", top.get("drug"))
    drug = None if drug is None else _drug(drug, f"{path}.drug" if "drug" in a else "drug")
    route_given = "route" in a
    route = a.get("route", top.get("route"))
    route = None if route is None else _route(route, f"{path}.route" if route_given else "route")
    variant = a.get("variant", top.get("variant", "linear"))
    variant = _choice(variant, f"{path}.variant" if "variant" in a else "variant", ["linear", "saturable"])
    metabolite = _bool(a.get("metabolite", False), f"{path}.metabolite")
    if "events" in a:
        return _events_arm(i, a, top, base_dir, name, drug, variant, metabolite)
    dose = None if "dose" not in a else _dose(a["dose"], f"{path}.dose")
    schedule = a.get("schedule", None)
    reg_spec = a.get("regimen")
    if reg_spec is not None and schedule is not None:
        raise _err(f"{path}.schedule", schedule, "give either 'regimen' or 'dose' with 'schedule', not both")
    if reg_spec is None:
        schedule = schedule if schedule is not None else top.get("schedule")
        if dose is None or schedule is None:
            raise _err(path, name, "an arm needs 'regimen' (text or a named regimen) or 'dose' with 'schedule'",
                       "e.g. regimen = \"12 mg lumbar twice weekly x 4 weeks\"")
        schedule = _str(schedule, f"{path}.schedule" if "schedule" in a else "schedule")
        if re.match(r"^\s*[\d.]", schedule):
            raise _err(f"{path}.schedule" if "schedule" in a else "schedule", schedule,
                       "must be the schedule without dose and route (the dose is 'dose')",
                       "e.g. schedule = \"twice weekly x 4 weeks\"")
        if route is None:
            raise _err(f"{path}.route", None, "an arm given by dose + schedule needs a route: "
                       "lumbar, ommaya, intracisternal, iv or oral")
        text = f"{dose} {route} {schedule}"
        try:
            reg = parse_regimen(text, drug=drug, bsa="BSA", age="AGE")
        except PkcsfError as e:
            raise _rewrap(f"{path}.schedule" if "schedule" in a else "schedule", e) from None
        described = text
    elif isinstance(reg_spec, dict):
        opts = dict(reg_spec)
        if "name" not in opts:
            raise _err(f"{path}.regimen", reg_spec, "a regimen table needs name = one of: "
                       + ", ".join(NAMED_REGIMENS))
        rname = _choice(opts.pop("name"), f"{path}.regimen.name", sorted(NAMED_REGIMENS), "named regimens")
        reg, described = _named_regimen(rname, opts, a, f"{path}.regimen", route, dose)
    elif isinstance(reg_spec, str) and reg_spec.strip() in NAMED_REGIMENS:
        reg, described = _named_regimen(reg_spec.strip(), {}, a, f"{path}.regimen", route, dose)
    elif isinstance(reg_spec, str):
        if dose is not None:
            raise _err(f"{path}.dose", a["dose"], "give the dose inside the regimen text, or use 'dose' with "
                       "'schedule' instead of 'regimen'")
        if route_given:
            raise _err(f"{path}.route", a["route"], "the route of a regimen text is written in the text",
                       "remove 'route' or write the regimen as dose + schedule")
        try:
            reg = parse_regimen(reg_spec, drug=drug, bsa="BSA", age="AGE")
        except PkcsfError as e:
            raise _rewrap(f"{path}.regimen", e) from None
        described = reg_spec.strip()
    else:
        raise _err(f"{path}.regimen", reg_spec, "must be regimen text, the name of a named regimen ("
                   + ", ".join(NAMED_REGIMENS) + ") or a table {name = ..., options}")
    # every dose: a drug we know, a route that drug can take
    avail = cns.available_drugs()
    drugs = []
    for dz in reg.doses:
        dname = dz.drug or drug
        if dname is None:
            raise _err(f"{path}.drug", None, "the regimen names no drug: set 'drug' (in the arm or at the top)",
                       "allowed drugs: " + ", ".join(avail))
        if dname not in avail:
            _choice(dname, f"{path}.regimen (drug)", avail, "allowed drugs")
        dd = cns.drug(dname)
        from pkcsf.clinical.regimens import normalize_route

        r = normalize_route(dz.site) if isinstance(dz.site, str) else dz.site
        if r not in dd.routes and not (r == "ommaya" and "intraventricular" in dd.routes):
            raise _err(f"{path}.regimen" if reg_spec is not None else f"{path}.route", r,
                       f"{dd.name} can be given by: " + ", ".join(dd.routes))
        if dname not in drugs:
            drugs.append(dname)
    # the scenario runner applies an arm's variant to every drug of the arm
    for d in drugs:
        if variant not in cns.drug(d).variants:
            raise _err(f"{path}.variant" if "variant" in a else "variant", variant,
                       f"{d} supports: " + ", ".join(cns.drug(d).variants),
                       "an arm's variant applies to every drug in it" if len(drugs) > 1 else None)
    if metabolite and "FMET_AZ5104" not in cns.drug(drugs[0]).parameters.values:
        raise _err(f"{path}.metabolite", True, f"{drugs[0]} has no metabolite in the model (osimertinib only)")
    return (Arm(name, reg, drug=drug, variant=variant, metabolite=metabolite, **_arm_physiology(a, path)),
            drugs, described)


# ------------------------------------------------------------------ main
def load_scenario(path: str | Path, *, base_dir: str | Path | None = None) -> tuple["Scenario", OutputOptions]:
    """Read a scenario file; returns ``(Scenario, OutputOptions)``.

    Raises :class:`ScenarioFileError` naming the file, the key path, the
    value, what is allowed and the closest valid key or name.

    Parameters
    ----------
    path : str or Path
        The scenario file (TOML; format in docs/scenarios.md).
    base_dir : str or Path, optional
        Folder that relative paths in the file refer to (default: the file's folder).

    Returns
    -------
    tuple of (Scenario, OutputOptions)
        The scenario to :func:`~pkcsf.clinical.scenario.run` and what to write.

    Examples
    --------
    >>> scn, out = load_scenario("scenarios/methotrexate_routes.toml")  # doctest: +SKIP
    """
    p = Path(path)
    if not p.exists():
        raise ScenarioFileError("scenario file", str(path), "no such file",
                                "give the path of a .toml scenario (examples in scenarios/)")
    if p.is_dir():
        raise ScenarioFileError("scenario file", str(path), "is a folder, not a .toml file")
    try:
        if p.stat().st_size > MAX_BYTES:
            raise ScenarioFileError("scenario file", str(path), f"is larger than pkcsf reads ({MAX_BYTES // 2**20} MiB)")
        text = p.read_bytes().decode("utf-8")
        data = tomllib.loads(text[1:] if text.startswith("\ufeff") else text)      # a UTF-8 BOM is fine
    except RecursionError:
        raise ScenarioFileError("scenario file", p.name, "nests arrays or tables too deeply to read",
                                "keep nesting shallow") from None
    except tomllib.TOMLDecodeError as e:
        err = ScenarioFileError("scenario file", p.name, f"is not valid TOML: {e}",
                                "check quotes around text, '=' between key and value, [table] headers")
        err.args = (f"{p}: not valid TOML: {e} (check quotes around text, '=' between key and value, "
                    "[table] headers)",)
        raise err from None
    except (OSError, UnicodeDecodeError) as e:
        raise ScenarioFileError("scenario file", str(path), f"cannot be read: {e}") from None
    try:
        return parse_scenario(data, base_dir=p.parent if base_dir is None else base_dir, default_name=p.stem)
    except PkcsfError as e:
        new = ScenarioFileError(e.field, e.value, e.allowed, e.fix)
        new.args = (f"{p}: {e}",)
        raise new from None


def parse_scenario(data: dict, *, base_dir=".", default_name: str = "scenario"):
    """Build ``(Scenario, OutputOptions)`` from the parsed TOML mapping (see :func:`load_scenario`).

    Parameters
    ----------
    data : dict
        The parsed file.
    base_dir : str or Path, optional
        Folder that relative paths refer to.
    default_name : str, optional
        Scenario name when the file gives none.

    Returns
    -------
    tuple of (Scenario, OutputOptions)
        As :func:`load_scenario`.
    """
    from pkcsf.clinical.scenario import MAX_STEPS_PER_DAY, Scenario, Target

    if not isinstance(data, dict):
        raise _err("scenario", data, "must be a TOML document")
    _check_keys(data, "", "")
    name = _str(data.get("name", default_name), "name")
    description = _str(data.get("description", ""), "description", allowed_empty=True)
    for k in ("drug", "route", "schedule", "variant"):
        if k in data:
            _str(data[k], k)
    if "drug" in data:
        _drug(data["drug"], "drug")
    if "route" in data:
        _route(data["route"], "route")
    days = None if "days" not in data else _quantity(data["days"], "time", "days", "d") / 24.0
    if days is not None and days > 3650:
        raise _err("days", data["days"], "must be at most 3650 days")
    dt = None if "dt" not in data else _quantity(data["dt"], "time", "dt", "h")
    max_steps_per_day = check_int("max_steps_per_day", data.get("max_steps_per_day", MAX_STEPS_PER_DAY), 1,
                                  ScenarioFileError)
    if dt is not None and dt > 168:
        raise _err("dt", data["dt"], "must be at most 168 h (one week)")

    # arms
    arms_data = data.get("arms")
    if arms_data is None:
        raise _err("arms", None, "a scenario needs at least one [[arms]] table",
                   "add [[arms]] with name and regimen (see docs/scenarios.md)")
    if not isinstance(arms_data, list) or not arms_data:
        raise _err("arms", arms_data, "must be an array of tables: write each arm as [[arms]]")
    arms, drugs, described = [], [], {}
    for i, a in enumerate(arms_data):
        arm, ds, desc = _arm(i, a, data, base_dir)
        if arm.name in [x.name for x in arms]:
            raise _err(f"arms[{i}].name", arm.name, "arm names must be unique")
        arms.append(arm)
        described[arm.name] = desc
        drugs += [d for d in ds if d not in drugs]

    # physiology
    phys = _table(data, "physiology", "")
    _check_keys(phys, "physiology", "physiology")
    from pkcsf.clinical.parameters import available_parameter_sets

    phys_sets = sorted(k for k in available_parameter_sets("physiology") if k not in ("pediatric", "pathologies"))
    phys_set = _choice(phys.get("set", "adult"), "physiology.set", phys_sets, "physiology sets")
    age = None
    if "age" in phys:
        v = phys["age"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not 0 <= v <= 120:
            raise _err("physiology.age", v, "must be an age in years between 0 and 120 (a number)")
        age = float(v)
    pathologies = phys.get("pathologies")
    if pathologies is not None:
        _check_pathologies(pathologies, "physiology.pathologies")
    # build every setup now: unknown pathologies or variants fail here, before any run
    setups = {}
    for arm in arms:
        for d in drugs:
            key = (d, arm.variant, arm.metabolite)
            if key in setups:
                continue
            try:
                setups[key] = cns.setup(d, physiology=phys_set, variant=key[1], pathologies=pathologies, age=age,
                                        metabolite=key[2] and "FMET_AZ5104" in cns.drug(d).parameters.values)
            except PkcsfError as e:
                raise _rewrap("physiology.pathologies" if pathologies else "physiology", e) from None
        own = {k: getattr(arm, k) for k in ("physiology", "pathologies", "age") if getattr(arm, k) is not None}
        for d in drugs if own else ():      # the arm's own physiology: checked now too
            try:
                cns.setup(d, physiology=own.get("physiology", phys_set), variant=arm.variant,
                          pathologies=own.get("pathologies", pathologies), age=own.get("age", age))
            except PkcsfError as e:
                raise _rewrap(f"arms[{arms.index(arm)}]." + next(iter(own)), e) from None
    groups_avail = sorted({g for s in setups.values() for g, cs in s.outputs.items() if cs})

    # readouts
    ro = _table(data, "readouts", "")
    _check_keys(ro, "readouts", "readouts")
    from pkcsf.core.units import UNITS as _U

    conc_units = [u for u, (k, _, _) in _U.items() if k == "concentration"]
    unit = ro.get("unit", "umol/L")
    if unit not in conc_units:
        _choice(unit, "readouts.unit", _COMMON_UNITS["concentration"],
                "concentration units (and their other spellings: uM, µmol/L, mcg/mL ...)")
    groups = None
    if "groups" in ro:
        g = ro["groups"]
        if not isinstance(g, list) or not g:
            raise _err("readouts.groups", g, "must be a list of group names, e.g. [\"plasma\", \"ventricular\"]")
        for j, x in enumerate(g):
            _choice(x, f"readouts.groups[{j}]", groups_avail, "groups")
        for s in setups.values():
            have = [k for k, cs in s.outputs.items() if cs]
            for j, x in enumerate(g):
                if x not in have:
                    raise _err(f"readouts.groups[{j}]", x, f"{s.drug.name} has no such group; its groups: "
                               + ", ".join(have))
        groups = tuple(g)
    thresholds = None
    if "thresholds" in ro:
        thresholds = _thresholds(ro["thresholds"], drugs)
    band_subjects = check_int("readouts.band_subjects", ro.get("band_subjects", 2000), 1, ScenarioFileError)
    targets = []
    tl = ro.get("targets", [])
    if not isinstance(tl, list):
        raise _err("readouts.targets", tl, "must be an array of tables: write each as [[readouts.targets]]")
    for j, t in enumerate(tl):
        tp = f"readouts.targets[{j}]"
        if not isinstance(t, dict):
            raise _err(tp, t, "must be a table with group, threshold, duration")
        _check_keys(t, "readouts.targets", tp)
        for req in ("group", "threshold"):
            if req not in t:
                raise _err(f"{tp}.{req}", None, "is required (a target needs group and threshold)")
        tdrug = None if "drug" not in t else _drug(t["drug"], f"{tp}.drug")
        if tdrug is not None and tdrug not in drugs:
            raise _err(f"{tp}.drug", tdrug, "this drug is in no arm; drugs of the scenario: " + ", ".join(drugs))
        grp = _choice(t["group"], f"{tp}.group", groups or groups_avail, "groups")
        for d in ([tdrug] if tdrug else drugs):
            mw = cns.drug(d).mw
            _quantity(t["threshold"], "concentration", f"{tp}.threshold", "mg/L", mw=mw)
        dur = t.get("duration", 0)
        _quantity(dur, "time", f"{tp}.duration", "h", positive=False)
        per = _choice(t.get("per", "dose"), f"{tp}.per", ["dose", "total"])
        tname = _str(t.get("name", ""), f"{tp}.name", allowed_empty=True)
        targets.append(Target(grp, t["threshold"], dur, per, tdrug, tname))

    # population
    pop_t = _table(data, "population", "")
    _check_keys(pop_t, "population", "population")
    seed = check_int("population.seed", pop_t.get("seed", 0), 0, ScenarioFileError)
    variability = _bool(pop_t.get("variability", True), "population.variability")
    population = None
    csv_df = None
    if "csv" in pop_t and "demographics" in pop_t:
        raise _err("population.csv", pop_t["csv"], "give either csv or demographics, not both")
    if "demographics" in pop_t:
        avail = sorted(available_parameter_sets("population"))
        population = _choice(pop_t["demographics"], "population.demographics", avail,
                             "demographics sets" + ("" if avail else " (none installed in parameters/population/)"))
    if "csv" in pop_t:
        csv_df = _read_csv(pop_t["csv"], base_dir, setups)
        population = csv_df
    subjects_default = len(csv_df) if csv_df is not None else 100
    subjects = check_int("population.subjects", pop_t.get("subjects", subjects_default), 1, ScenarioFileError)
    if csv_df is not None and subjects > len(csv_df):
        raise _err("population.subjects", subjects, f"the CSV population has only {len(csv_df)} rows")
    if "iiv" in pop_t:
        iiv = pop_t["iiv"]
        if not isinstance(iiv, dict):
            raise _err("population.iiv", iiv, "must be a table parameter -> CV, e.g. { CL = 0.3 }")
        if len(drugs) > 1:
            raise _err("population.iiv", iiv, "applies to single-drug scenarios only (a CV is per drug parameter)",
                       "split the combination into one file per drug, or remove iiv")
        from types import SimpleNamespace

        from pkcsf.clinical.escalation import population_with_iiv
        from pkcsf.clinical.scenario import population_for as _population_for

        setup = next(iter(setups.values()))
        # the scenario's own rules build the base (demographics or CSV, covariate effects, age); iiv goes on top
        base = _population_for(SimpleNamespace(population=population, age=age), setup)
        population = population_with_iiv(setup, iiv, field="population.iiv", base=base)

    # outputs
    out_t = _table(data, "outputs", "")
    _check_keys(out_t, "outputs", "outputs")
    folder = Path(_str(out_t.get("folder", f"results/{default_name}"), "outputs.folder"))
    fmt = _choice(out_t.get("format", "csv"), "outputs.format", FORMATS, "formats")
    figures = _bool(out_t.get("figures", True), "outputs.figures")

    scn = Scenario(tuple(arms), subjects=subjects, days=days, dt=dt, seed=seed, physiology=phys_set, age=age,
                   pathologies=pathologies, population=population, variability=variability,
                   thresholds=thresholds, targets=tuple(targets), unit=unit, groups=groups,
                   band_subjects=band_subjects, name=name, description=description,
                   max_steps_per_day=max_steps_per_day)
    return scn, OutputOptions(folder, fmt, figures, described)


def _thresholds(v, drugs):
    def one_list(lst, field, ds):
        if isinstance(lst, (str, int, float)) and not isinstance(lst, bool):
            lst = [lst]
        if not isinstance(lst, list) or not lst:
            raise _err(field, lst, "must be a list of concentrations, e.g. [\"1 umol/L\", \"0.1 umol/L\"]")
        for j, q in enumerate(lst):
            for d in ds:
                _quantity(q, "concentration", f"{field}[{j}]", "mg/L", mw=cns.drug(d).mw)
        return list(lst)

    if isinstance(v, dict):
        out = {}
        for d, lst in v.items():
            dn = _drug(d, f"readouts.thresholds.{d}")
            if dn not in drugs:
                raise _err(f"readouts.thresholds.{d}", lst, "this drug is in no arm; drugs of the scenario: "
                           + ", ".join(drugs))
            out[dn] = one_list(lst, f"readouts.thresholds.{d}", [dn])
        return out
    return one_list(v, "readouts.thresholds", drugs)


def _read_csv(v, base_dir, setups) -> pd.DataFrame:
    from pkcsf.clinical.population import COVARIATES

    field = "population.csv"
    path = Path(_str(v, field))
    if not path.is_absolute():
        path = Path(base_dir) / path
    if not path.is_file():
        raise _err(field, str(v), f"no such file ({path})", "paths are relative to the scenario file")
    try:
        df = pd.read_csv(path)
    except Exception as e:  # pandas raises several types for malformed files
        raise _err(field, str(v), f"cannot be read as CSV: {e}") from None
    if len(df) == 0:
        raise _err(field, str(v), "has no rows (one row per subject is needed)")
    allowed = set(COVARIATES) | {"ID"}
    for s in setups.values():
        allowed |= set(s.parameters)
    for c in df.columns:
        if c not in allowed:
            guess = suggest(c, sorted(allowed))
            raise _err(f"{field} column", c, "allowed columns: covariates " + ", ".join(COVARIATES)
                       + ", ID, or parameters of the model", f"did you mean {guess!r}?" if guess else None)
        if c == "ID":
            continue
        num = pd.to_numeric(df[c], errors="coerce")
        if num.isna().any() or not num.map(math.isfinite).all():
            i = int(num.isna().to_numpy().argmax()) if num.isna().any() else int((~num.map(math.isfinite)).argmax())
            raise _err(f"{field} column {c!r} row {i + 1}", df[c].iloc[i], "must be a finite number")
        if c not in COVARIATES and (num <= 0).any():
            i = int((num <= 0).to_numpy().argmax())
            raise _err(f"{field} column {c!r} row {i + 1}", df[c].iloc[i], "a parameter value must be > 0")
    return df
