"""Denosumab hypocalcaemia (bone metastases): published incidences by schedule and by renal function.

Two sourced read-outs (``parameters/pd/denosumab_hypocalcaemia.toml``), per patient, seeded:

* :func:`hypocalcaemia` by **schedule**, from the REDUSE safety interim (breast cancer; calcium
  500 mg + vitamin D 400 IU daily for everyone; corrected calcium < 2.0 mmol/L before an injection,
  CTCAE v4 grade >= 2): 20 % in the first 16 weeks (q4w induction in both arms), then 25 % on q4w vs
  12 % on q12w; at any time 28 % vs 26 %. The regimen is recognised from its dose times
  (:func:`classify_schedule`): four 4-weekly induction doses (weeks 0, 4, 8, 12: the 16 weeks in which both
  arms were on q4w), then every 4 or every 12 weeks. Other regimens are refused: there is no source for them.
* :func:`hypocalcaemia_by_renal_function` by **creatinine clearance** (grade >= 1, 524 Japanese patients):
  32.0 % (>= 80 mL/min), 37.4 % (50-80), 29.9 % (30-50), 62.5 % (< 30).

No calcium response model is built (none with parameters was retrieved), so neither read-out depends on the
simulated denosumab exposure; the schedule read-out depends on the schedule only.

    >>> import numpy as np
    >>> t, _ = reduse_schedule("q12w", weeks=52)
    >>> (t / 168).tolist()
    [0.0, 4.0, 8.0, 12.0, 24.0, 36.0, 48.0]
    >>> classify_schedule(t)
    'q12w'
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.pd.incidence import IncidenceEvents, bernoulli_events, load_incidence

__all__ = ["hypocalcaemia", "hypocalcaemia_by_renal_function", "classify_schedule", "reduse_schedule", "PERIODS",
           "CCR_GROUPS"]

PERIODS = ("first_16_weeks", "after_week_16", "any_time")
#: (lower bound mL/min, stratum in the file), checked from the top
CCR_GROUPS = ((80.0, "normal (>= 80 mL/min)"), (50.0, "mild (50-80 mL/min)"), (30.0, "moderate (30-50 mL/min)"),
              (0.0, "severe (< 30 mL/min)"))
_WEEK = 168.0
_TOL_H = 3 * 24.0            # a dose within 3 days of its slot counts as on schedule


def reduse_schedule(arm: str, weeks: float, dose_mg: float = 120.0) -> tuple[np.ndarray, np.ndarray]:
    """Dose times and amounts of a REDUSE arm.

    120 mg at weeks 0, 4, 8, 12, then every 4 (``"q4w"``) or every 12 weeks (``"q12w"``), before ``weeks``.
    The q12w continuation 12 weeks after the week-12 induction dose is a reading of the abstract ('3-month
    induction phase with q4w', 'the first 16 weeks (during the induction phase with DN q4w for both arms)').

    Parameters
    ----------
    arm : str
        ``"q4w"`` or ``"q12w"``.
    weeks : float
        Length of the course (weeks, > 0); doses at or after it are not given.
    dose_mg : float
        Amount of each dose (mg; default 120).

    Returns
    -------
    times : ndarray
        Dose times (h).
    amounts : ndarray
        Dose amounts (mg).
    """
    check_choice("arm", arm, ("q4w", "q12w"), ParameterError)
    if not (isinstance(weeks, (int, float)) and weeks > 0):
        raise ParameterError("weeks", weeks, "must be a number > 0")
    induction = [0.0, 4.0, 8.0, 12.0]
    step = 4.0 if arm == "q4w" else 12.0
    w = [x for x in induction if x < weeks]
    nxt = 12.0 + step
    while nxt < weeks - 1e-9:
        w.append(nxt)
        nxt += step
    t = np.asarray(w) * _WEEK
    return t, np.full(t.size, float(dose_mg))


def classify_schedule(dose_times_h: ArrayLike) -> str:
    """The REDUSE arm a regimen follows.

    A REDUSE-like regimen has a 4-weekly induction at weeks 0-12, then a dose every 4 or 12 weeks, each dose
    within 3 days of its slot.

    Parameters
    ----------
    dose_times_h : array_like
        Dose times (h).

    Returns
    -------
    str
        ``"q4w"`` or ``"q12w"``.

    Raises
    ------
    ParameterError
        Any other regimen (there is no sourced incidence for it).
    """
    t = np.sort(np.asarray(dose_times_h, dtype=float).ravel())
    fix = "build the regimen with pkcsf.pd.hypocalcaemia.reduse_schedule('q4w' or 'q12w', weeks)"
    if t.size < 4 or not np.all(np.abs(t[:4] - t[0] - np.array([0, 4, 8, 12]) * _WEEK) <= _TOL_H):
        raise ParameterError("dose_times_h", (t[:5] / _WEEK).round(2).tolist(),
                             "the sourced incidences (REDUSE) are for 4 induction doses at weeks 0, 4, 8, 12 "
                             "(q4w) before continuing q4w or q12w", fix)
    t0 = t[0]
    for arm, step in (("q4w", 4.0), ("q12w", 12.0)):
        slots = t0 + np.concatenate([[0.0, 4.0, 8.0, 12.0], 12.0 + step * np.arange(1, t.size - 3)]) * _WEEK
        if np.all(np.abs(t - slots) <= _TOL_H):
            return arm
    gaps = np.diff(t[3:]) / _WEEK
    raise ParameterError("dose_times_h", "intervals after week 12: " + ", ".join(f"{g:.1f}" for g in gaps[:6]) +
                         " weeks", "every 4 or every 12 weeks after the induction, each dose within 3 days of its "
                         "slot (the REDUSE arms)", fix)


def hypocalcaemia(schedule: str | ArrayLike, subjects: int, *, period: str = "after_week_16", seed: int = 0,
                  proportion: float | None = None) -> IncidenceEvents:
    """Patients with hypocalcaemia (corrected Ca < 2.0 mmol/L, grade >= 2) on a REDUSE arm, with calcium +
    vitamin D supplementation.

    Parameters
    ----------
    schedule : str or array_like
        ``"q4w"``, ``"q12w"`` or the dose times (h) of a REDUSE-like regimen (:func:`classify_schedule`).
    subjects : int
        Number of patients.
    period : str, optional
        ``"after_week_16"`` (default), ``"first_16_weeks"`` (both arms then on q4w) or ``"any_time"``.
    seed : int, optional
        Seed.
    proportion : float, optional
        Override the sourced probability (e.g. a draw from ``Incidence.draw_proportions``).

    Returns
    -------
    IncidenceEvents
        One column; ``fraction()`` is the simulated incidence.
    """
    sched = schedule if isinstance(schedule, str) else classify_schedule(schedule)
    check_choice("schedule", sched, ("q4w", "q12w"), ParameterError)
    check_choice("period", period, PERIODS, ParameterError)
    if isinstance(subjects, bool) or not isinstance(subjects, (int, np.integer)) or subjects < 0:
        raise ParameterError("subjects", subjects, "must be a whole number >= 0")
    inc = load_incidence("denosumab_hypocalcaemia")
    if period == "first_16_weeks":
        e = inc.find(per="patient", period=period, schedule="q4w")       # both arms on q4w induction
    else:
        e = inc.find(per="patient", period=period, schedule=sched)
    p = e.proportion if proportion is None else float(proportion)
    label = f"{e.endpoint}, {sched}, {period} ({e.source})"
    return bernoulli_events(np.full((subjects, 1), p), np.ones((subjects, 1), bool), seed=seed, label=label)


def hypocalcaemia_by_renal_function(ccr_ml_min: ArrayLike, *, seed: int = 0) -> IncidenceEvents:
    """Patients with grade >= 1 hypocalcaemia during denosumab, by creatinine clearance.

    From the four published Ccr groups of :data:`CCR_GROUPS` (supplementation not stated by the source).

    Parameters
    ----------
    ccr_ml_min : array_like, shape (N,)
        Creatinine clearance of each patient (mL/min, finite, >= 0).
    seed : int
        Seed (default 0).

    Returns
    -------
    IncidenceEvents
        One column; ``fraction()`` is the simulated incidence.
    """
    c = np.atleast_1d(np.asarray(ccr_ml_min, dtype=float))
    if c.ndim != 1 or not np.all(np.isfinite(c)) or np.any(c < 0):
        raise ParameterError("ccr_ml_min", c[:5].tolist(), "one finite creatinine clearance >= 0 mL/min per patient")
    inc = load_incidence("denosumab_hypocalcaemia")
    p = np.empty(c.size)
    done = np.zeros(c.size, bool)
    for lo, group in CCR_GROUPS:
        sel = ~done & (c >= lo)
        p[sel] = inc.find(per="patient", ccr_group=group).proportion
        done |= sel
    return bernoulli_events(p[:, None], np.ones((c.size, 1), bool), seed=seed,
                            label="hypocalcaemia grade >= 1 by creatinine clearance (renal_cohort2024)")
