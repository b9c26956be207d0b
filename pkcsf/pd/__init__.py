"""Pharmacodynamics: from a simulated concentration profile to an effect.

Models here take concentrations that the engine (or anything else) simulated
and turn them into effects, one subject per row, in compiled code:

* :mod:`pkcsf.pd.friberg`: the Friberg (2002) semi-mechanistic myelosuppression
  model (proliferating cells -> 3 transit compartments -> circulating
  neutrophils, feedback ``(Circ0/Circ)^gamma``), read out as ANC nadir, time to
  nadir and CTCAE neutropenia grade;
* :mod:`pkcsf.pd.efficacy`: log cell kill of CSF tumour cells driven by the time
  spent above a cytotoxic concentration;
* :mod:`pkcsf.pd.denosumab`: the denosumab quasi-steady-state TMDD population
  model with the urinary NTX response (bone metastases);
* :mod:`pkcsf.pd.incidence`: published incidences (per cycle or per patient, by
  stratum) as seeded Bernoulli read-outs, for toxicities without a sourced
  exposure-response: :mod:`pkcsf.pd.arachnoiditis` (IT liposomal cytarabine, by
  dexamethasone prophylaxis) and :mod:`pkcsf.pd.hypocalcaemia` (denosumab, by
  schedule and by renal function).

Parameter values live in ``parameters/pd/*.toml`` with their sources
(:func:`load_pd_parameters`). This layer imports the core, the engine and the
analysis layers only; the clinical and trial layers call it.

    import pkcsf.pd as pd
    p = pd.load_pd_parameters("pemetrexed")
    out = pd.neutropenia(times, plasma_mg_per_L, p.friberg(supplemented=True))
    out.frame()          # id, nadir, time_to_nadir, grade
"""
from pkcsf.pd import arachnoiditis, denosumab, efficacy, friberg, hypocalcaemia, incidence  # noqa: F401  (as modules)
from pkcsf.pd.efficacy import CellKill, log_cell_kill
from pkcsf.pd.friberg import (
                      CTCAE_NEUTROPHILS,
                      FribergParameters,
                      NeutropeniaResult,
                      ctcae_grade,
                      friberg_anc,
                      neutropenia,
)
from pkcsf.pd.incidence import Incidence, IncidenceEvents, IncidenceSet, available_incidence, load_incidence
from pkcsf.pd.parameters import PDParameterSet, PDValue, available_pd, load_pd_parameters

__all__ = ["PDParameterSet", "PDValue", "load_pd_parameters", "available_pd",
           "FribergParameters", "NeutropeniaResult", "CTCAE_NEUTROPHILS", "neutropenia", "friberg_anc",
           "ctcae_grade", "CellKill", "log_cell_kill", "Incidence", "IncidenceSet", "IncidenceEvents",
           "load_incidence", "available_incidence"]
