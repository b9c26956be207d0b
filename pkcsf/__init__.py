"""pkcsf: simulate how drugs reach, spread through and leave the cerebrospinal fluid.

Two levels, one namespace::

    import pkcsf as pk

    # clinical: drugs, routes, regimens, virtual populations, read-outs
    res = pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar twice weekly x 4 weeks",
                                            "ommaya": "12 mg ommaya twice weekly x 4 weeks"},
                           subjects=1000, days=28, seed=1)
    res.summary()                    # Cmax, AUC, time above threshold ... percentiles per arm and compartment

    # engine: any compartmental model (models/*.toml), any parameters, any event table
    model = pk.load_model("reference_p2")
    reg = pk.Dose("80 mg", "oral").repeat(every="24 h", n=28)
    out = pk.simulate(model, reg, params, times=np.arange(0, 673.0))
    out.to_frame()                   # id, time, compartment, value, unit

Where things live: models in ``models/``, parameter values with sources in
``parameters/``; the engine in :mod:`pkcsf.engine.simulate` and :mod:`pkcsf.solvers`;
the CNS model API in :mod:`pkcsf.clinical.cns`; regimens in :mod:`pkcsf.clinical.regimens`;
populations in :mod:`pkcsf.clinical.population`; scenarios in :mod:`pkcsf.clinical.scenario`;
read-outs in :mod:`pkcsf.analysis.metrics` and :mod:`pkcsf.analysis.nca`; trials in
:mod:`pkcsf.trials` and :mod:`pkcsf.clinical.escalation`; scenario files in
:mod:`pkcsf.clinical.scenario_file`; the command line in :mod:`pkcsf.cli`.

The package is typed (PEP 561 ``py.typed``) and documented in the numpydoc format; the API reference is
rendered from the docstrings by Sphinx (``python -m sphinx -b html docs docs/_build/html``, pages under
``docs/api/``).
"""
from pkcsf.core import startup as _startup  # noqa: F401  (first: Ctrl-C while the command starts: one line)

# isort: split
from pkcsf import trials
from pkcsf.analysis import metrics, nca
from pkcsf.clinical import cns, escalation, population, regimens, scenario, scenario_file
from pkcsf.clinical.cns import drug, setup
from pkcsf.clinical.escalation import simulate_escalation
from pkcsf.clinical.events import read_events
from pkcsf.clinical.forecast import forecast
from pkcsf.clinical.parameters import ParameterSet, load_parameter_set
from pkcsf.clinical.population import Population, RandomEffect
from pkcsf.clinical.regimens import parse_regimen
from pkcsf.clinical.scenario import Arm, Scenario, Target, run, simulate_drug
from pkcsf.clinical.scenario_file import load_scenario
from pkcsf.clinical.sensitivity import sensitivity
from pkcsf.core.errors import DosingError, ModelError, ParameterError, PkcsfError, ScenarioError, SolverError, Status
from pkcsf.core.paths import add_search_path
from pkcsf.core.version import __version__ as __version__
from pkcsf.engine.dosing import Dose, Regimen, bolus, infusion, oral
from pkcsf.engine.model import (
    Compartment,
    Model,
    Parameter,
    Site,
    Transfer,
    accumulate,
    available_models,
    elimination,
    exchange,
    first_order,
    flow,
    load_model,
    michaelis_menten,
    release,
)
from pkcsf.engine.nonmem import from_nonmem
from pkcsf.engine.results import SimulationResult
from pkcsf.facade import prepare, simulate

__all__ = [
    "simulate", "prepare", "SimulationResult",
    "Model", "Compartment", "Parameter", "Site", "Transfer", "load_model", "available_models",
    "flow", "exchange", "first_order", "release", "michaelis_menten", "accumulate", "elimination",
    "Dose", "Regimen", "bolus", "infusion", "oral", "from_nonmem", "read_events",
    "ParameterSet", "load_parameter_set", "add_search_path",
    "PkcsfError", "ModelError", "ParameterError", "DosingError", "ScenarioError", "SolverError", "Status",
    "cns", "drug", "setup", "regimens", "parse_regimen", "population", "Population", "RandomEffect",
    "scenario", "Scenario", "Arm", "Target", "run", "simulate_drug", "metrics", "nca", "trials",
    "escalation", "simulate_escalation", "scenario_file", "load_scenario", "sensitivity", "forecast",
]
