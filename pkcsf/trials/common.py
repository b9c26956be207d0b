"""Shared pieces of the trial designs: :class:`TrialError`, defaults and the validators of design inputs."""
from __future__ import annotations

import math

import numpy as np

from pkcsf.core.errors import PkcsfError, check_int

__all__ = ["TrialError", "DEFAULT_SLOPE", "DEFAULT_P_AT_MTD"]

#: Default slope of :class:`LogisticExposureToxicity` on the natural-log
#: exposure scale (an assumption, see the class docstring).
DEFAULT_SLOPE = 2.0
#: Default DLT probability at the exposure of the literature MTD
#: (an assumption, see :meth:`LogisticExposureToxicity.from_mtd_exposure`).
DEFAULT_P_AT_MTD = 0.30

_DEFAULT_CRM_PRIOR_SD = math.sqrt(1.34)  # dfcrm: scale = sqrt(1.34), i.e. variance 1.34
_ELEMENTS_PER_CHUNK = 1 << 22  # ~32 MB of float64 per work array


class TrialError(PkcsfError):
    """A trial design, a toxicity scenario or a simulation option is invalid.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------

def _check_cohorts(design: str, cohort_size, max_n, start) -> tuple[int, int]:
    """Cohort size, maximum sample size (a multiple of it) and start level of an interval design."""
    cs = check_int(f"{design}.cohort_size", cohort_size, 1, TrialError)
    mx = check_int(f"{design}.max_n", max_n, 1, TrialError)
    if mx % cs:
        raise TrialError(f"{design}.max_n", mx, f"must be a multiple of cohort_size ({cs})",
                         f"use max_n={(mx // cs + 1) * cs}")
    check_int(f"{design}.start", start, 0, TrialError)
    return cs, mx


def _check_prob(field_name, value, *, open_interval=True):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TrialError(field_name, value, "must be a number") from None
    if open_interval:
        if not (0.0 < x < 1.0):
            raise TrialError(field_name, value, "must be a probability strictly between 0 and 1")
    elif not (0.0 <= x <= 1.0):
        raise TrialError(field_name, value, "must be a probability between 0 and 1")
    return x


def _check_prob_array(field_name, values, *, open_interval=False):
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TrialError(field_name, values, "must be an array of probabilities") from None
    if arr.ndim != 1 or arr.size == 0:
        raise TrialError(field_name, values, "must be a non-empty 1-D array (one probability per dose level)")
    lo_ok = arr > 0 if open_interval else arr >= 0
    hi_ok = arr < 1 if open_interval else arr <= 1
    bad = ~(np.isfinite(arr) & lo_ok & hi_ok)
    if bad.any():
        i = int(np.argmax(bad))
        rule = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise TrialError(f"{field_name}[{i}]", float(arr[i]), f"must be a probability {rule}")
    return arr


def _check_doses(doses):
    try:
        arr = np.asarray(doses, dtype=float)
    except (TypeError, ValueError):
        raise TrialError("doses", doses, "must be numbers (the dose of each level, e.g. mg)") from None
    if arr.ndim != 1 or arr.size == 0:
        raise TrialError("doses", doses, "must be a non-empty 1-D array, one dose per level")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise TrialError(f"doses[{i}]", float(arr[i]), "must be finite and > 0")
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        i = int(np.argmax(~(np.diff(arr) > 0))) + 1
        raise TrialError(f"doses[{i}]", float(arr[i]),
                         f"doses must be strictly increasing (doses[{i - 1}] = {arr[i - 1]:g})",
                         "list the dose levels from lowest to highest")
    return arr
