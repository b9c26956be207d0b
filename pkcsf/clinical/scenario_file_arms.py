"""The ``[[arms]]`` tables of a scenario file: regimen text, dose + schedule, named regimens, event tables, and
each arm's own physiology, age and pathologies.

Internal to :mod:`pkcsf.clinical.scenario_file`.
"""
from __future__ import annotations

import inspect
import math
import re

from pkcsf.clinical import cns
from pkcsf.clinical.scenario_file_schema import (
    _COMMON_UNITS,
    _bool,
    _check_keys,
    _choice,
    _dose,
    _drug,
    _err,
    _join,
    _rewrap,
    _route,
    _str,
)
from pkcsf.core.errors import PkcsfError, suggest
from pkcsf.core.units import UNITS


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
    """The arm's own physiology, age, pathologies, unit and position (``Arm`` keywords), where given."""
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
    if "unit" in a:
        out["unit"] = _conc_unit(a["unit"], f"{path}.unit")
    if "prevalence" in a:
        from pkcsf.clinical.prevalence import check_prevalence

        try:
            out["prevalence"] = check_prevalence(a["prevalence"], f"{path}.prevalence")
        except PkcsfError as e:              # the same message, as a scenario-file error
            raise _err(e.field, e.value, e.allowed, e.fix) from None
    if "patients" in a:
        from pkcsf.clinical.prevalence import check_patients

        try:
            check_patients(a["patients"], f"{path}.patients")
        except PkcsfError as e:              # the same message, as a scenario-file error
            raise _err(e.field, e.value, e.allowed, e.fix) from None
        out["patients"] = a["patients"]
    if "position" in a:
        from pkcsf.clinical.position import parse_position

        try:
            out["position"] = parse_position(a["position"])
        except PkcsfError as e:              # the same message, as a scenario-file error
            raise _err(f"{path}.position", a["position"], e.allowed) from None
    if "uncertainty" in a:
        from pkcsf.clinical.uncertainty import check_uncertainty

        try:
            out["uncertainty"] = check_uncertainty(a["uncertainty"], f"{path}.uncertainty")
        except PkcsfError as e:              # the same message, as a scenario-file error
            raise _err(e.field, e.value, e.allowed, e.fix) from None
    return out


def _conc_unit(v, field: str) -> str:
    """A concentration unit of the read-outs (any spelling pkcsf reads; the common ones listed in the error)."""
    if isinstance(v, str) and v in UNITS and UNITS[v][0] == "concentration":
        return v
    return _choice(v, field, _COMMON_UNITS["concentration"],
                   "concentration units (and their other spellings: uM, µmol/L, mcg/mL ...)")


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
            reg = parse_regimen(text, drug=drug, bsa="BSA", age="AGE", weight="WT")
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
            reg = parse_regimen(reg_spec, drug=drug, bsa="BSA", age="AGE", weight="WT")
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
