"""Physiology of the CNS model: typical values of a physiology set (``parameters/physiology/``), scaled by
age (``pediatric.toml``) or from another species' set, with pathologies applied (``pathologies.toml``).

The physiology half of :mod:`pkcsf.clinical.cns` (which re-exports these names): :func:`physiology` gives the
values :func:`pkcsf.clinical.cns.setup` combines with a drug; :func:`pathologies` tabulates what each pathology
changes; :func:`median_weight_for_age` is the growth-chart median weight behind the children's lumbar volume.
"""
from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from pkcsf.clinical.parameters import ParameterSet, load_parameter_set
from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.units import UNITS, parse_quantity, to_base

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["physiology", "pathologies", "median_weight_for_age"]
_CSF_VOLUMES = ["V_LV", "V_TFV", "V_CM", "V_SAS_CRANIAL", "V_SPINAL_CT", "V_SPINAL_LUMBAR"]
# volumes, and the CSF-facing surfaces with them (keeps the tissue depth H_TOT = V_BRAIN/(A_VENT + A_PIA) constant)
_SCALED_BY_AGE = ["V_LV", "V_TFV", "V_CM", "V_SAS_CRANIAL", "V_SPINAL_CT", "V_SPINAL_LUMBAR", "V_BRAIN_ECF",
                  "V_BRAIN", "V_CORD", "V_ROOTS", "A_VENT", "A_PIA", "A_CORD", "A_ROOTS"]
_FLOWS_BY_AGE = ["Q_CSF", "Q_ECF", "Q_MIX_VENT", "Q_MIX_CRAN", "Q_MIX_SPINAL", "Q_MIX_LUMBAR"]


def _age_fraction(ped: ParameterSet, age: float) -> float:
    ages = np.asarray(ped.options["ages"], dtype=float)
    fr = np.asarray([ped[k] for k in ped.options["fraction_keys"]], dtype=float)
    if not np.isfinite(age) or age < 0:
        raise ParameterError("age", age, "must be a number of years >= 0")
    return float(np.interp(age, ages, fr))


@lru_cache(maxsize=256)          # the growth-chart table is parsed once per age, not per setup
def median_weight_for_age(age: float) -> float:
    """Median body weight (kg) at an age of 1-18 y, the mean of the boys' and girls' medians (the M of the
    weight-for-age growth-chart table in ``parameters/population/pediatric.toml``: WHO 2006 below 2 y, CDC 2000
    from 2 y).

    Parameters
    ----------
    age : float
        Years, 1 to 18.

    Returns
    -------
    float
        kg.
    """
    from pkcsf.clinical.demographics import load_demographics

    wt = {c.name: c for c in load_demographics("pediatric").covariates}["WT"]
    meds = [np.interp(age, [r[0] for r in rows], [r[2] for r in rows]) for rows in wt.lms]
    return float(np.mean(meds))


def _lumbar_volume_for_age(ped: ParameterSet, age: float) -> float | None:
    """Lumbosacral sac volume (L) of a child (< 18 y) from Jang 2019's mL/kg by age group and the median weight
    for age (pediatric.toml, LUMBAR_ML_PER_KG_*); below 1 y the 1-y volume times the CSF volume fraction of the
    age over that at 1 y; None from 18 y (the adult value applies).
    """
    ages = ped.options.get("lumbar_ml_per_kg_ages")
    if not ages or not age < 18.0:
        return None
    if age < 1.0:       # no weight-for-age below 12 months: the 1-y volume scaled like the other CSF spaces
        return _lumbar_volume_for_age(ped, 1.0) * _age_fraction(ped, age) / _age_fraction(ped, 1.0)
    per_kg = np.interp(age, np.asarray(ages, float), [ped[k] for k in ped.options["lumbar_ml_per_kg_keys"]])
    return float(per_kg * median_weight_for_age(age) * 1e-3)


def _pathology_values(pathologies, patho: ParameterSet) -> dict[str, float]:
    """Pathology parameters: defaults, then named scenarios (True), then explicit values."""
    out = patho.as_dict()
    if not pathologies:
        return out
    scen = patho.options.get("scenarios", {})
    valid = sorted(set(scen) | set(out) | {"F_LEAK"})
    for key, val in dict(pathologies).items():
        if key in scen:
            if val is True or val == 1:
                for k, v in scen[key].items():
                    unit = patho.values[k].unit if k in patho.values else "1"
                    out[k] = to_base(float(v), unit) if UNITS[unit][0] != "dimensionless" else float(v)
            elif val not in (False, 0, None):
                raise ParameterError(f"pathologies[{key!r}]", val, "a named scenario takes True or False")
            continue
        if key not in out and key != "F_LEAK":
            check_choice("pathology", key, valid, ParameterError)
        unit = patho.values[key].unit if key in patho.values else "1"
        kind = UNITS[unit][0]
        if isinstance(val, bool) or (kind == "dimensionless" and not isinstance(val, (int, float))):
            raise ParameterError(f"pathologies[{key!r}]", val, "a number" + (f" in {unit}" if unit != "1" else "")
                                 + (" (True/False only for the named scenarios: " + ", ".join(sorted(scen)) + ")"))
        out[key] = parse_quantity(val, kind, field=f"pathologies[{key!r}]", default_unit=unit) \
            if kind != "dimensionless" else float(val)
        rng = patho.values[key].range if key in patho.values else (0.0, 1.0)      # F_LEAK: a fraction
        if rng is not None:
            lo, hi = (to_base(r, unit) for r in rng) if kind != "dimensionless" else rng
            if not (lo <= out[key] <= hi) or not np.isfinite(out[key]):
                raise ParameterError(f"pathologies[{key!r}]", val, f"must lie in [{rng[0]:g}, {rng[1]:g}] {unit}"
                                     + " (see 'pkcsf pathologies')")
    return out


def pathologies() -> "pd.DataFrame":
    """What each pathology changes: one row per parameter and named scenario, with range and source.

    Returns
    -------
    DataFrame
        ``scenario`` (the name for ``pathologies={name: True}``, or empty for a parameter set by value),
        ``parameter``, ``default``, ``scenario_value``, ``unit``, ``range``, ``meaning``, ``source``.

    Examples
    --------
    >>> import pkcsf as pk
    >>> pk.cns.pathologies()[["scenario", "parameter", "scenario_value", "unit"]].head(2)  # doctest: +SKIP
    """
    import pandas as pd

    patho = load_parameter_set("pathologies", "physiology")
    scen = patho.options.get("scenarios", {})
    rows = []
    used = set()
    for name, values in scen.items():
        for k, v in values.items():
            used.add(k)
            val = patho.values.get(k)
            rows.append({"scenario": name, "parameter": k, "default": val.given if val else 0.0,
                         "scenario_value": float(v), "unit": val.unit if val else "1",
                         "range": f"{val.range[0]:g} - {val.range[1]:g}" if val and val.range else "0 - 1",
                         "meaning": " ".join((val.note if val else "fraction of a lumbar dose lost to the "
                                              "epidural space (see adult.toml)").split()),
                         "source": (val.source if val else "adult.toml")})
    for k, val in patho.values.items():
        if k not in used:
            rows.append({"scenario": "", "parameter": k, "default": val.given, "scenario_value": float("nan"),
                         "unit": val.unit, "range": f"{val.range[0]:g} - {val.range[1]:g}" if val.range else "",
                         "meaning": " ".join(val.note.split()), "source": val.source})
    return pd.DataFrame(rows)


def physiology(name: str = "adult", age: float | None = None, pathologies: dict | None = None) -> dict:
    """Typical physiology values (base units): adult set, optional age scaling and pathologies.

    ``age`` (years) scales CSF, brain-ECF, brain, cord and root volumes and the CSF-facing surfaces (so that
    the tissue depth stays the same), CSF production, ECF flow and the mixing clearances by the CSF-volume
    fraction of ``parameters/physiology/pediatric.toml``. A physiology file may name its species in ``[options] species`` (``rhesus``): drug
    values named ``<PARAMETER>_<SPECIES>`` (``CL_EFFLUX_CSF_RHESUS``) then replace ``<PARAMETER>``.

    Parameters
    ----------
    name : str, optional
        Physiology set (default ``"adult"``).
    age : float, optional
        Age (years) for the scaling.
    pathologies : dict, optional
        Named scenarios and/or values.

    Returns
    -------
    dict
        ``{"values": {name: value in base units}, "sets": [ParameterSet, ...], "age_fraction": f}``.

    Examples
    --------
    >>> phys = physiology()
    >>> phys["values"]["Q_CSF"] > 0
    True
    """
    base = load_parameter_set(name, "physiology")
    vals = base.as_dict()
    sets = [base]
    parent_name = base.options.get("scale_from")
    if parent_name:
        # a species built from another set (rhesus from adult): volumes by the total-CSF ratio, surfaces by its
        # 2/3 power, flows by the CSF-production ratio; the set's own values win
        parent = load_parameter_set(parent_name, "physiology")
        pv = parent.as_dict()
        v_csf = sum(pv[k] for k in _CSF_VOLUMES)
        fv = vals["V_CSF_TOTAL"] / v_csf
        fq = vals["Q_CSF"] / pv["Q_CSF"]
        for k in base.options.get("scaled_volumes", []):
            pv[k] *= fv
        for k in base.options.get("scaled_areas", []):
            pv[k] *= fv ** (2.0 / 3.0)
        for k in base.options.get("scaled_flows", []):
            pv[k] *= fq
        pv.update(vals)
        vals = pv
        sets = [parent, base]
        drug_scale = fv
    else:
        drug_scale = 1.0
    frac = 1.0
    species = str(base.options.get("species", "human"))
    if age is not None and species != "human":
        # the age scaling is the human growth of the CSF spaces (pediatric.toml): refused, not applied to a monkey
        raise ParameterError("age", age, f"age scaling is defined for human physiology only; physiology {name!r} "
                             f"is {species}", fix="leave age out for a non-human physiology")
    if age is not None:
        ped = load_parameter_set("pediatric", "physiology")
        sets.append(ped)
        frac = _age_fraction(ped, float(age))
        for k in _SCALED_BY_AGE:
            if k in vals:
                vals[k] *= frac
        if ped["F_PROD_SCALES_WITH_VOLUME"] == 1.0:
            for k in _FLOWS_BY_AGE:
                vals[k] *= frac
        lumbar = _lumbar_volume_for_age(ped, float(age))
        if lumbar is not None and "V_SPINAL_LUMBAR" in vals:
            vals["V_SPINAL_LUMBAR"] = lumbar
    patho = load_parameter_set("pathologies", "physiology")
    sets.append(patho)
    pv = _pathology_values(pathologies, patho)
    if "F_LEAK" in pv:
        vals["F_LEAK"] = pv.pop("F_LEAK")
    vals.update(pv)
    return {"values": vals, "sets": sets, "age_fraction": frac, "species": species, "drug_scale": drug_scale}
