"""The top-level entry points: one ``simulate`` for a model (the engine) or a drug (the clinical layer).

The engine (:mod:`pkcsf.engine`) knows models, parameters and events; the clinical layer
(:mod:`pkcsf.clinical`) knows drugs, routes, patients and read-outs. :func:`simulate` and
:func:`prepare` dispatch on their first argument so that a user writes ``pk.simulate(...)`` for
both, while the engine never imports the clinical layer.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from pkcsf.clinical import cns
from pkcsf.core.errors import ModelError, SolverError, suggest
from pkcsf.engine import simulate as _engine
from pkcsf.engine.model import available_models

if TYPE_CHECKING:
    import pandas as pd
    from numpy.typing import ArrayLike

    from pkcsf.clinical.scenario import ScenarioResult
    from pkcsf.engine.dosing import Dose, Regimen
    from pkcsf.engine.model import Model
    from pkcsf.engine.results import SimulationResult
    from pkcsf.engine.simulate import Problem

__all__ = ["simulate", "prepare"]

_ENGINE_ONLY = ("times", "rtol", "atol", "threads", "max_steps", "max_step", "outputs", "y0")


def _check_model_name(model: str) -> None:
    """A name that is neither a model file/path, a model nor a drug: one error listing both."""
    if model.endswith(".toml") or Path(model).exists():
        return
    models, drugs = sorted(available_models()), cns.available_drugs()
    if model in models or model in drugs:
        return
    guess = suggest(model, models + drugs)
    raise ModelError("model", model, "neither a model (" + ", ".join(models) + ") nor a drug ("
                     + ", ".join(drugs) + ")", f"did you mean {guess!r}?" if guess else None)


def _drug_name(model) -> str | None:
    """The drug named by ``model`` (a :class:`~pkcsf.clinical.cns.Drug` or a drug name), else None."""
    if isinstance(model, cns.Drug):
        return model.name
    if isinstance(model, str) and not model.endswith(".toml"):
        if model in available_models() or model not in cns.available_drugs():
            _check_model_name(model)
            return None
        return model
    return None


def simulate(model: str | Path | Model | cns.Drug, regimen: Dose | Regimen | dict | pd.DataFrame | str,
             params: dict | pd.DataFrame | None = None, *, times: ArrayLike | None = None, solver: str = "auto",
             rtol: float = _engine.DEFAULT_RTOL, atol: float = _engine.DEFAULT_ATOL, max_steps: int | None = None,
             max_step: float = math.inf, outputs: list[str] | None = None, y0: ArrayLike | dict | None = None,
             threads: int | None = None, chunk_size: int | None = None, progress: bool | None = None,
             **kwargs: object) -> SimulationResult | ScenarioResult:
    """Simulate a compartmental model, or a drug through the CNS/CSF model, for one or many subjects.

    With a model (a :class:`~pkcsf.engine.model.Model`, a name in ``models/`` or a model file) this is
    the engine's :func:`pkcsf.engine.simulate.simulate`. With a drug (a name from
    ``parameters/drugs/`` or a :class:`~pkcsf.clinical.cns.Drug`) it is
    :func:`pkcsf.simulate_drug`: the CNS model, the sourced population and the read-outs
    (the clinical keywords ``subjects``, ``days``, ``seed`` and those of :class:`pkcsf.Scenario`
    are accepted then; the engine options are not).

    Parameters
    ----------
    model : Model, str, path or Drug
        What to simulate.
    regimen : Regimen, Dose, str, dict, DataFrame
        The doses (for a drug also regimen text such as ``"12 mg ommaya twice weekly x 4 weeks"``
        or ``{arm: regimen}``).
    params : dict, DataFrame or ndarray, optional
        Engine: parameter values in base units, one row per subject. Drug: a population
        (DataFrame of subjects or :class:`~pkcsf.Population`).
    times, solver, rtol, atol, max_steps, max_step, outputs, y0, threads, chunk_size, progress
        See :func:`pkcsf.engine.simulate.simulate`.
    **kwargs
        Clinical keywords when ``model`` is a drug (see :class:`pkcsf.Scenario`).

    Returns
    -------
    SimulationResult or ScenarioResult
        Profiles of every state for a model; read-outs and profiles per arm for a drug.

    Examples
    --------
    A model, its parameters (one value each, base units) and a dose:

    >>> import pkcsf as pk
    >>> m = pk.load_model("reference_p1")
    >>> out = pk.simulate(m, pk.Dose(10, "icv"), {k: 1.0 for k in m.parameter_names}, times=[0, 1, 2])
    >>> out.concentration("csf_ventricular").shape      # (subjects, times)
    (1, 3)

    A drug through the CNS model, with its sourced population (slower: a virtual population):

    >>> res = pk.simulate("methotrexate", "12 mg ommaya once", subjects=20, days=2, seed=1)  # doctest: +SKIP
    >>> res.summary()  # doctest: +SKIP
    """
    name = _drug_name(model)
    if name is None:
        if kwargs:
            bad = sorted(kwargs)[0]
            raise SolverError(bad, kwargs[bad], "not an option of simulate(model, ...); the clinical options "
                              "(subjects, days, seed, ...) apply when the first argument is a drug")
        return _engine.simulate(model, regimen, params, times=times, solver=solver, rtol=rtol, atol=atol,
                                max_steps=max_steps, max_step=max_step, outputs=outputs, y0=y0, threads=threads,
                                chunk_size=chunk_size, progress=progress)
    from pkcsf.clinical.scenario import simulate_drug

    given = {"times": times, "rtol": rtol != _engine.DEFAULT_RTOL or None,
             "atol": atol != _engine.DEFAULT_ATOL or None, "threads": threads,
             "max_step": max_step != math.inf or None,
             "outputs": outputs, "y0": y0}
    bad = [k for k, v in given.items() if v is not None and v is not False]
    if bad:
        raise SolverError(bad[0], "given", f"an engine option; with a drug ({name}) use the clinical keywords "
                          "(subjects, days, dt, seed, population, thresholds, unit, ...)")
    if params is not None:
        kwargs.setdefault("population", params)
    if solver != "auto":
        kwargs.setdefault("solver", solver)
    if chunk_size is not None:
        kwargs.setdefault("chunk_size", chunk_size)
    if max_steps is not None:
        kwargs.setdefault("max_steps", max_steps)
    drug = model if isinstance(model, cns.Drug) else name
    return simulate_drug(drug, regimen, progress=progress, **kwargs)


def prepare(model: str | Path | Model, regimen: Dose | Regimen | dict | pd.DataFrame,
            params: dict | pd.DataFrame | None = None, **options: object) -> Problem:
    """Validate and prepare an engine problem without solving it (see :func:`pkcsf.engine.simulate.prepare`).

    A name that is neither a model nor a drug gets one error listing both.

    Parameters
    ----------
    model : str, Path or Model
        A model name (``"cns_csf"``), a model file or a :class:`~pkcsf.engine.model.Model`.
    regimen : Dose, Regimen or DataFrame
        The doses (a NONMEM-style table is read with :func:`~pkcsf.engine.nonmem.from_nonmem`).
    params : dict or DataFrame, optional
        Parameter values in base units: one value per name, or one row per subject.
    **options
        ``times``, ``solver``, ``rtol``, ``atol``, ``max_steps``, ``max_step``, ``outputs``, ``y0`` as for
        :func:`pkcsf.simulate`.

    Returns
    -------
    Problem
        The validated problem, ready to solve in chunks (``repr`` is one line).

    Examples
    --------
    >>> import pkcsf as pk
    >>> m = pk.load_model("reference_p1")
    >>> pk.prepare(m, pk.Dose(10, "icv"), {k: 1.0 for k in m.parameter_names}, times=[0, 1, 2])
    Problem(model='reference_p1', subjects=1, times=3, saved=7, method='exact', rtol=1e-07, atol=1e-12)
    """
    if isinstance(model, str):
        _check_model_name(model)
    return _engine.prepare(model, regimen, params, **options)
