"""The virtual population of a scenario: the sourced default, a user's data, a fixed age.

Public names are re-exported by :mod:`pkcsf.clinical.scenario`.
"""
from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.population import Population, RandomEffect, load_demographics
from pkcsf.clinical.scenario_spec import Scenario
from pkcsf.core.errors import ScenarioError

__all__ = ["default_population", "population_from_data", "population_for"]


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
            if eff.covariate not in available or _no_age_effect(setup, ps, eff, age_fixed):
                skipped.append(f"{eff.parameter} ~ {eff.covariate} ({ps.name})")
                continue
            effects.append(eff)
    # sourced correlations between random effects ([options] correlations of a parameter file), where both are drawn
    corr = {}
    for ps in setup.sets:
        for a, b, r in (getattr(ps, "options", {}) or {}).get("correlations", []):
            if a in seen and b in seen:
                corr[(f"eta_{a}", f"eta_{b}")] = float(r)
    pop = Population(res, correlation=corr or None, demographics=demo, effects=effects,
                     name=f"default ({setup.drug.name})")
    pop.skipped = tuple(skipped)
    return pop


def _no_age_effect(setup: cns.Setup, ps, eff, age_fixed: bool) -> bool:
    """True for a physiology's age effect that must not apply: the set-up is already scaled to one age, or its
    species is not human (the age tables are human CSF growth; a rhesus subject's AGE is not scaled by them).
    """
    if eff.covariate != "AGE" or ps.kind != "physiology":
        return False
    return age_fixed or setup.species != "human"


def population_from_data(setup: cns.Setup, data: pd.DataFrame, *, age_fixed: bool = False) -> Population:
    """A user population: the sourced variability of ``setup`` and the covariate effects its columns allow.

    Parameters
    ----------
    setup : Setup
        The drug's set-up (its sourced variability and covariate effects).
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
               if e.parameter in setup.parameters and e.covariate in cols and not _no_age_effect(setup, ps, e, age_fixed)]
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
        # a fixed child's age draws weight and height for that age (the adult demographics gave six-year-olds of
        # 62 kg and 172 cm: Cockcroft-Gault CrCl 139 mL/min and methotrexate clearance +28%, silently)
        demo = "pediatric" if scn.age is not None and scn.age < 18 else "adult"
        if scn.age is not None and scn.age < 1:
            raise ScenarioError("age", scn.age, "at least 1 year with the built-in demographics (weight and height "
                                "for age from 1 to 18 y, parameters/population/pediatric.toml); for an infant give "
                                "a population table with WT and HT (population=DataFrame, or [population] csv)")
        return _with_age(default_population(setup, demographics=demo, age_fixed=age_fixed), scn.age)
    if isinstance(pop, str):
        return _with_age(default_population(setup, demographics=pop, age_fixed=age_fixed), scn.age)
    if isinstance(pop, pd.DataFrame):
        _check_age_conflict(scn.age, pop)
        return population_from_data(setup, pop, age_fixed=age_fixed)
    if isinstance(pop, Population):
        return _with_age(pop, scn.age)
    raise ScenarioError("population", type(pop).__name__, "must be a Population, a DataFrame or a demographics name")


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
