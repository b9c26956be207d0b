"""Pathologies that only some patients have: a per-subject mixture of the named pathology scenarios.

In leptomeningeal metastases about half of the patients have compartmentalised CSF on radionuclide flow studies
(Chamberlain 1998: 33% a spinal block, 13% a base-of-brain obstruction; parameters/physiology/pathologies.toml).
``Arm(..., prevalence={"spinal_block": 0.33})`` gives each virtual patient the named pathology with that
probability, independently for each name: a subject who has it gets the scenario's parameter values (a
factor, e.g. a barrier opening, multiplies the subject's own value; a value the healthy default has as 0, e.g.
a shunt flow, is set). The draw uses its own counter-based stream, so subject i has the same pathologies
whatever N, the chunk size or the number of workers, and the other random effects are unchanged.
"""
from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pkcsf.clinical.streams import _STREAM_PATHOLOGIES, uniforms
from pkcsf.core.errors import ScenarioError, check_choice

if TYPE_CHECKING:
    from pkcsf.clinical.cns import Setup

__all__ = ["check_prevalence", "prevalence_effects", "apply_prevalence", "subjects_with", "patient_populations",
           "check_patients"]


def check_prevalence(prevalence: object, field: str) -> dict:
    """Check a prevalence table: named pathology scenarios with a probability from 0 to 1 each.

    Parameters
    ----------
    prevalence : dict
        ``{scenario name: probability}``, e.g. ``{"spinal_block": 0.33}``.
    field : str
        Where it came from, for the error message (``arms['lumbar'].prevalence``).

    Returns
    -------
    dict
        The table with float probabilities.

    Raises
    ------
    ScenarioError
        Not a table, an unknown scenario name, or a probability outside 0-1.
    """
    from pkcsf.clinical.cns import pathologies

    if not isinstance(prevalence, dict):
        raise ScenarioError(field, prevalence, "must be a table of named pathologies and probabilities, "
                                                "e.g. {'spinal_block': 0.33}")
    names = sorted(set(pathologies()["scenario"]))
    out = {}
    for k, p in prevalence.items():
        check_choice(f"{field} name", k, names, ScenarioError)
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise ScenarioError(f"{field}.{k}", p, "must be a probability from 0 to 1 (the share of patients "
                                                   "who have it)")
        out[k] = float(p)
    return out


def patient_populations() -> dict:
    """The named patient populations (``parameters/physiology/pathologies.toml``, ``[options.patients]``).

    Returns
    -------
    dict
        ``{name: {"description": str, "pathologies": [names every patient has], "prevalence": {name:
        probability}, "sources": [reference keys]}}``.
    """
    from pkcsf.clinical.parameters import load_parameter_set

    return dict(load_parameter_set("pathologies", "physiology").options.get("patients", {}))


def check_patients(name: object, field: str) -> dict:
    """A named patient population: the pathologies every patient has and the prevalence of the others.

    Parameters
    ----------
    name : str
        A name of :func:`patient_populations`, e.g. ``"leptomeningeal_metastases"``.
    field : str
        Where it came from, for the error message (``arms['lumbar'].patients``).

    Returns
    -------
    dict
        ``{"pathologies": {name: True}, "prevalence": {name: probability}}``.

    Raises
    ------
    ScenarioError
        Not one of the named populations.
    """
    pops = patient_populations()
    check_choice(field, name, sorted(pops), ScenarioError)
    spec = pops[name]
    return {"pathologies": {p: True for p in spec.get("pathologies", [])},
            "prevalence": check_prevalence(dict(spec.get("prevalence", {})), f"{field} ({name}).prevalence")}


def prevalence_effects(setup: "Setup", prevalence: dict, *, physiology: str, pathologies: dict | None,
                       age: float | None, metabolite: bool = False) -> list[tuple[str, float, dict]]:
    """What each named pathology changes in ``setup``'s parameters, relative to the setup itself.

    Parameters
    ----------
    setup : Setup
        The arm's setup (its physiology, pathologies and age already applied).
    prevalence : dict
        ``{scenario name: probability}`` (checked by :func:`check_prevalence`).
    physiology : str
        The arm's physiology set.
    pathologies : dict or None
        The arm's pathologies (every subject has them).
    age : float or None
        The arm's fixed age.
    metabolite : bool, optional
        The setup includes osimertinib's metabolite.

    Returns
    -------
    list of (str, float, dict)
        ``(name, probability, {parameter: ("factor" | "value", number)})`` per named pathology.
    """
    from pkcsf.clinical.cns import setup as make_setup

    out = []
    for name, p in prevalence.items():
        other = make_setup(setup.drug, physiology=physiology, variant=setup.variant,
                           pathologies={**(pathologies or {}), name: True}, age=age, metabolite=metabolite,
                           model=setup.cns_model)
        eff = {}
        for k, v in other.parameters.items():
            b = setup.parameters[k]
            if v != b:
                eff[k] = ("factor", v / b) if b != 0 else ("value", v)
        out.append((name, p, eff))
    return out


def apply_prevalence(params: pd.DataFrame, effects: list, seed: int, start: int) -> pd.DataFrame:
    """Give each subject the pathologies its draw selects (in place on a copy of ``params``).

    Parameters
    ----------
    params : DataFrame
        One row per subject (``Population.individual``), subjects ``start .. start+n-1``.
    effects : list
        From :func:`prevalence_effects`.
    seed : int
        The scenario's seed.
    start : int
        Index of the first subject.

    Returns
    -------
    DataFrame
        The parameters, plus one boolean column ``pathology_<name>`` per named pathology.
    """
    if not effects:
        return params
    params = params.copy()
    drawn = _draw(seed, [p for _name, p, _eff in effects], start, len(params))
    for j, (name, p, eff) in enumerate(effects):
        has = drawn[:, j]
        for k, (mode, v) in eff.items():
            col = params[k].to_numpy(dtype=float, copy=True)
            col[has] = col[has] * v if mode == "factor" else v
            params[k] = col
        params[f"pathology_{name}"] = has
    return params


def subjects_with(seed: int, prevalence: dict, n: int, start: int = 0) -> pd.DataFrame:
    """Which of subjects ``start .. start+n-1`` have each named pathology (the draw of :func:`apply_prevalence`).

    Parameters
    ----------
    seed : int
        The scenario's seed.
    prevalence : dict
        ``{scenario name: probability}`` in the arm's order.
    n : int
        Number of subjects.
    start : int, optional
        Index of the first subject.

    Returns
    -------
    DataFrame
        ``ID`` and one boolean column per name.
    """
    drawn = _draw(seed, list(prevalence.values()), start, n)
    return pd.DataFrame({"ID": np.arange(start, start + n), **{k: drawn[:, j] for j, k in enumerate(prevalence)}})


def _draw(seed: int, probabilities: list, start: int, n: int) -> np.ndarray:
    """(n, k) booleans: subject ``start + i`` has pathology j (the one draw both functions above use)."""
    return uniforms(seed, _STREAM_PATHOLOGIES, start, n, len(probabilities)) < np.asarray(probabilities, dtype=float)
