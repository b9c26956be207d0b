"""pkcsf: simulate how drugs reach, spread through and leave the cerebrospinal fluid.

The public namespace::

    import pkcsf as pk
    model = pk.load_model("two_compartment_oral")       # a model is data (models/*.toml)
    reg = pk.Dose("80 mg", "oral").repeat(every="24 h", n=28)
    res = pk.simulate(model, reg, params, times=np.arange(0, 673))
    res.to_frame()                                        # id, time, compartment, value, unit
"""
from .dosing import Dose, Regimen, bolus, from_nonmem, infusion, oral
from .errors import (DosingError, ModelError, ParameterError, PkcsfError, ScenarioError, SolverError,
                     Status)
from .model import (Compartment, Model, Parameter, Site, Transfer, accumulate, available_models, elimination,
                    exchange, first_order, flow, load_model, michaelis_menten, release)
from .parameters import ParameterSet, load_parameter_set
from .paths import add_search_path
from .results import SimulationResult
from .simulate import prepare, simulate

__version__ = "0.1.0"

__all__ = [
    "simulate", "prepare", "SimulationResult",
    "Model", "Compartment", "Parameter", "Site", "Transfer", "load_model", "available_models",
    "flow", "exchange", "first_order", "release", "michaelis_menten", "accumulate", "elimination",
    "Dose", "Regimen", "bolus", "infusion", "oral", "from_nonmem",
    "ParameterSet", "load_parameter_set", "add_search_path",
    "PkcsfError", "ModelError", "ParameterError", "DosingError", "ScenarioError", "SolverError", "Status",
]
