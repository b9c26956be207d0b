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

Where the parts live: the keys and single-value readers in :mod:`~pkcsf.clinical.scenario_file_schema`, the
``[[arms]]`` tables in :mod:`~pkcsf.clinical.scenario_file_arms`; every public name is importable from here.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.scenario_file_arms import _arm, _check_pathologies
from pkcsf.clinical.scenario_file_schema import (  # noqa: F401
    _COMMON_UNITS,
    FORMATS,
    SCHEMA,
    OutputOptions,
    ScenarioFileError,
    _bool,
    _check_keys,
    _choice,
    _drug,
    _err,
    _quantity,
    _rewrap,
    _route,
    _str,
    _table,
)
from pkcsf.core.errors import PkcsfError, check_int, suggest
from pkcsf.core.tomlio import MAX_BYTES, tomllib

if TYPE_CHECKING:
    from pkcsf.clinical.scenario import Scenario

__all__ = ["load_scenario", "parse_scenario", "OutputOptions", "ScenarioFileError", "SCHEMA", "FORMATS"]


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


def parse_scenario(data: dict, *, base_dir: str | Path = ".",
                   default_name: str = "scenario") -> tuple[Scenario, OutputOptions]:
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
    variability = (_bool(pop_t["variability"], "population.variability") if "variability" in pop_t
                   else None)          # None: True with several subjects, False with one (the typical patient)
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
