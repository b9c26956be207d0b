"""Regimen builders, calendar logic, clinician-readable text, BSA- and age-based doses.

This module gathers the public names of the regimen modules, each importable from here:

* :mod:`pkcsf.clinical.routes`: route names, aliases, :func:`normalize_route`;
* :mod:`pkcsf.clinical.calendars`: :func:`once`, :func:`every`, :func:`weekly`, :func:`twice_weekly`,
  :func:`monthly`, :func:`daily`, :func:`on_days`;
* :mod:`pkcsf.clinical.named_regimens`: published regimens by name, with sources;
* :mod:`pkcsf.clinical.dose_rules`: :func:`bsa`, :func:`dose_per_bsa`, :func:`dose_per_weight`, age-based intrathecal doses;
* :mod:`pkcsf.clinical.regimen_text` and :mod:`pkcsf.clinical.regimen_describe`: the text grammar
  (:func:`parse_regimen`) and its inverse (:func:`describe_regimen`).

Everything here returns a :class:`pkcsf.engine.dosing.Regimen` whose ``end`` is where
the phase ends and whose ``origin`` is where it starts, so that
``induction.then(consolidation)`` chains phases as a clinician would, and
whose doses carry the phase as ``Dose.label`` (and the drug as ``Dose.drug``
for combinations).

Calendar conventions (see docs/regimens.md)
-------------------------------------------
* Time is in hours; time 0 is day 1 of treatment (day *d* = hours
  ``24 (d - 1)`` to ``24 d``). Every phase starts at its own time 0, its
  ``origin``; :meth:`Regimen.then` puts the next phase's origin at this one's
  ``end``.
* **twice weekly** uses real weekdays: doses on ``days`` (default Monday and
  Thursday), day 1 being ``start`` (default Monday), so the gaps are 3 and 4
  days (doses on days 1, 4, 8, 11, ...). ``every="3.5 d"`` gives the evenly
  spaced alternative.
* **monthly** means every 4 weeks (28 days) unless calendar months are asked
  for (``monthly(..., every="calendar", start_date=...)``). In the text
  grammar a duration of "N months" is N x 28 days.
* A phase given as a number of doses ends one dosing interval after its last
  dose (``every 2 weeks x 5`` ends at week 10); a phase given as a time
  ("x 4 weeks", "for 8 weeks") holds the doses before that time and ends there.

Amounts are mg, quantities ("12 mg", "0.5 g"), per body-surface area
("12 mg/m2": a number when ``bsa`` is known, else the per-subject expression
``"12 * BSA"`` read from the population's ``BSA`` column), or expressions over
subject columns.
"""
from __future__ import annotations

from pkcsf.clinical.calendars import WEEKDAYS, daily, every, monthly, on_days, once, twice_weekly, weekly
from pkcsf.clinical.dose_rules import (
    AGE_BASED_DRUGS,
    age_based_dose,
    age_based_table,
    age_dose_column,
    bsa,
    dose_per_bsa,
    dose_per_weight,
)
from pkcsf.clinical.named_regimens import (
    NAMED_REGIMENS,
    REGIMEN_SOURCES,
    cytarabine_it,
    depocyt_label,
    liposomal_cytarabine,
    methotrexate_it,
    named_regimen,
    osimertinib,
    osimertinib_plus_it_pemetrexed,
    pemetrexed_d1d8,
    pemetrexed_pan2019,
    thiotepa_it,
)
from pkcsf.clinical.regimen_describe import describe_regimen
from pkcsf.clinical.regimen_text import RegimenTextError, parse_regimen
from pkcsf.clinical.routes import INTRATHECAL_ROUTES, ROUTE_ALIASES, ROUTES, normalize_route

__all__ = [
    "ROUTES", "ROUTE_ALIASES", "INTRATHECAL_ROUTES", "WEEKDAYS", "normalize_route",
    "once", "every", "weekly", "twice_weekly", "monthly", "daily", "on_days",
    "methotrexate_it", "cytarabine_it", "thiotepa_it", "liposomal_cytarabine", "depocyt_label",
    "pemetrexed_pan2019", "pemetrexed_d1d8", "osimertinib", "osimertinib_plus_it_pemetrexed",
    "NAMED_REGIMENS", "REGIMEN_SOURCES", "named_regimen",
    "parse_regimen", "describe_regimen", "RegimenTextError",
    "bsa", "dose_per_bsa", "dose_per_weight", "age_based_dose", "age_based_table", "age_dose_column", "AGE_BASED_DRUGS",
]

