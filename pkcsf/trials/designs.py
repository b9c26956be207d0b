"""Virtual dose-escalation trials and their operating characteristics.

This module gathers the public names of the trial modules, each importable from here:
:mod:`pkcsf.trials.common` (errors, defaults, input checks), :mod:`pkcsf.trials.links`
(exposure-toxicity links), :mod:`pkcsf.trials.results`, :mod:`pkcsf.trials.three_plus_three`,
:mod:`pkcsf.trials.boin`, :mod:`pkcsf.trials.crm` and :mod:`pkcsf.trials.runner` (:func:`simulate_trials`).

A trial designer picks dose levels and a design; :func:`simulate_trials` runs
thousands of virtual trials and returns a :class:`TrialResults` with the
operating characteristics (probability of selecting each dose or none,
expected patients and DLTs per dose, mean trial size, ...).

Toxicity enters in one of two ways:

1. **true DLT probabilities**, one per dose level (``p_dlt``, shape ``(K,)``);
2. **per-patient exposures** from the pharmacokinetic simulation
   (``exposure``, shape ``(K, m)``: ``m`` virtual patients per dose level, in
   whatever exposure metric the link expects, e.g. plasma AUC in mg*h/L or
   CSF Cmax in mg/L) and an exposure-toxicity ``link`` such as
   :class:`LogisticExposureToxicity` that turns each exposure into that
   patient's DLT probability. Each virtual trial patient is drawn with
   replacement from the pool of its dose level and has a DLT with
   probability ``link(exposure)``.

Designs (small frozen objects, or their names ``"3+3"``, ``"boin"``, ``"crm"``):

* :class:`ThreePlusThree`: the traditional 3+3 with de-escalation and six
  patients required at the declared MTD (variant spelled out in its docstring;
  exact operating characteristics in :func:`three_plus_three_exact`);
* :class:`BOIN`: Bayesian optimal interval design (Liu & Yuan 2015), with
  the conventions of the ``BOIN`` R package (Yan et al. 2020);
* :class:`BOIN12`: utility-based phase I/II design on toxicity and response
  (Lin et al. 2020); needs ``p_eff`` (see :mod:`pkcsf.trials.boin12`);
* :class:`CRM`: one-parameter power-model continual reassessment method
  (O'Quigley, Pepe & Fisher 1990) with the ``dfcrm`` defaults (Cheung 2011)
  and Lee & Cheung (2009) skeletons (:func:`crm_skeleton`).

Speed and reproducibility. All trials of a chunk run in lock-step, cohort by
cohort, on NumPy state arrays. Random numbers come from a counter-based
generator (Philox keyed by ``seed``): trial ``j`` reads the ``j``-th fixed-size
block of the stream, so its outcome depends only on ``(seed, j)`` and the
design's block size, never on ``n_trials`` or on the chunking. Every dose
level has a fixed number of patient "slots" per trial, each with its own
uniform(s); the design consumes the slots of a dose in order.

Dose levels are indexed from 0 in arrays (``selected`` is ``-1`` when no dose
is selected); ``doses`` carries the dose values for display.

References
----------
Storer BE (1989). Design and analysis of phase I clinical trials.
*Biometrics* 45:925-937.
Lin Y, Shih WJ (2001). Statistical properties of the traditional algorithm-based
designs for phase I cancer clinical trials. *Biostatistics* 2:203-215.
Liu S, Yuan Y (2015). Bayesian optimal interval designs for phase I clinical
trials. *J R Stat Soc C* 64:507-523. doi:10.1111/rssc.12089
Yuan Y, Hess KR, Hilsenbeck SG, Gilbert MR (2016). Bayesian optimal interval
design: a simple and well-performing design for phase I oncology trials.
*Clin Cancer Res* 22:4291-4301. doi:10.1158/1078-0432.CCR-16-0592
Yan F, Zhang L, Zhou Y, Pan H, Liu S, Yuan Y (2020). BOIN: an R package for
designing single-agent and drug-combination dose-finding trials using Bayesian
optimal interval designs. *J Stat Softw* 94(13). doi:10.18637/jss.v094.i13
O'Quigley J, Pepe M, Fisher L (1990). Continual reassessment method: a
practical design for phase 1 clinical trials in cancer. *Biometrics* 46:33-48.
Cheung YK (2011). *Dose Finding by the Continual Reassessment Method*.
Chapman & Hall/CRC (R package ``dfcrm``).
Lee SM, Cheung YK (2009). Model calibration in the continual reassessment
method. *Clin Trials* 6:227-238. doi:10.1177/1740774509105076
Robertson T, Wright FT, Dykstra RL (1988). *Order Restricted Statistical
Inference*. Wiley (min-max formula for isotonic regression, Thm 1.4.4).
"""
from __future__ import annotations

from pkcsf.trials.boin import (
    BOIN,
    _isotonic_masked,
    boin_boundaries,
    boin_decision_table,
    isotonic_regression,
)
from pkcsf.trials.boin12 import BOIN12, boin12_desirability
from pkcsf.trials.common import DEFAULT_P_AT_MTD, DEFAULT_SLOPE, TrialError, _check_prob
from pkcsf.trials.crm import CRM, CrmPosterior, crm_posterior, crm_skeleton
from pkcsf.trials.links import LogisticExposureToxicity
from pkcsf.trials.results import TrialResults
from pkcsf.trials.runner import (
    DESIGNS,
    _check_trials_memory,
    _resolve_design,
    _weighted_quantiles,
    simulate_trials,
)
from pkcsf.trials.three_plus_three import ThreePlusThree, three_plus_three_exact

# private names used by pkcsf.clinical.escalation and the tests
_PRIVATE = (_check_prob, _check_trials_memory, _resolve_design, _isotonic_masked, _weighted_quantiles,
            DEFAULT_P_AT_MTD, DEFAULT_SLOPE)

__all__ = [
    "TrialError",
    "ThreePlusThree",
    "BOIN",
    "CRM",
    "BOIN12",
    "boin12_desirability",
    "DESIGNS",
    "LogisticExposureToxicity",
    "TrialResults",
    "CrmPosterior",
    "simulate_trials",
    "three_plus_three_exact",
    "boin_boundaries",
    "boin_decision_table",
    "crm_skeleton",
    "crm_posterior",
    "isotonic_regression",
]
