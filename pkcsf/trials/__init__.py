"""Dose-escalation trial designs (3+3, BOIN, CRM) and their operating characteristics.

Pure designs: they take toxicity probabilities or per-patient outcomes and know nothing of PK; the PK-driven
escalation that feeds them lives in :mod:`pkcsf.clinical.escalation`.
"""
from pkcsf.trials.designs import *  # noqa: F401,F403
from pkcsf.trials.designs import __all__  # noqa: F401
