"""Exposure-toxicity links: per-patient exposure -> probability of a dose-limiting toxicity."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pkcsf.trials.common import DEFAULT_P_AT_MTD, DEFAULT_SLOPE, TrialError, _check_prob

__all__ = ["LogisticExposureToxicity"]

# ---------------------------------------------------------------------------
# exposure-toxicity link
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LogisticExposureToxicity:
    r"""Logistic exposure-toxicity link: DLT probability of one patient.

    .. math::

        p(E) = \frac{1}{1 + \exp\{-\mathrm{slope}\,(\log E - \log E_{50})\}}

    (or ``slope * (E - e50)`` when ``log_exposure=False``).

    Parameters
    ----------
    e50 : float
        Exposure with a 50 % DLT probability, in the unit of the exposure
        passed to :func:`simulate_trials` (e.g. mg*h/L for AUC). > 0.
    slope : float
        Steepness; per natural-log unit of exposure when ``log_exposure``,
        else per exposure unit. > 0. Default :data:`DEFAULT_SLOPE` = 2.
    log_exposure : bool
        Model on log exposure (default) or on exposure itself.
    source, note : str
        Provenance of the link. The default is ``"assumption"``.

    Notes
    -----
    **The default is a user-overridable assumption, not a literature value.**
    :meth:`from_mtd_exposure` anchors the curve at the dose the literature calls
    the MTD: the caller passes the (typical) exposure at that dose, and ``e50``
    is chosen so that the DLT probability there is 30 % (the usual target of
    phase I oncology designs, i.e. the MTD "definition" of the 3+3 era). The
    default slope of 2 per log unit means the odds of a DLT multiply by
    :math:`2^2 = 4` per doubling of exposure: about 10 % at half the MTD
    exposure and 63 % at twice it, a steep curve as usually seen for cytotoxic
    DLTs (myelosuppression, neurotoxicity). Replace it by a fitted
    exposure-toxicity model whenever one exists.

    Examples
    --------
    >>> import numpy as np
    >>> link = LogisticExposureToxicity.from_mtd_exposure(10.0)
    >>> link(np.array([5.0, 10.0, 20.0])).round(3)
    array([0.097, 0.3  , 0.632])
    """

    e50: float
    slope: float = DEFAULT_SLOPE
    log_exposure: bool = True
    source: str = "assumption"
    note: str = ""

    def __post_init__(self):
        for name in ("e50", "slope"):
            v = getattr(self, name)
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise TrialError(f"LogisticExposureToxicity.{name}", v, "must be a number > 0") from None
            if not (math.isfinite(x) and x > 0):
                raise TrialError(f"LogisticExposureToxicity.{name}", v, "must be finite and > 0")
            object.__setattr__(self, name, x)

    @classmethod
    def from_mtd_exposure(cls, mtd_exposure: float, *, p_at_mtd: float = DEFAULT_P_AT_MTD,
                          slope: float = DEFAULT_SLOPE, log_exposure: bool = True, source: str = "assumption",
                          note: str = "") -> LogisticExposureToxicity:
        """Link anchored at the exposure of the literature MTD.

        Parameters
        ----------
        mtd_exposure : float
            Typical exposure at the dose the literature calls the MTD (> 0),
            in the exposure unit used for the trial.
        p_at_mtd : float
            DLT probability assumed at that exposure (default 0.30).
        slope : float
            See the class; default 2 per natural-log unit.
        log_exposure : bool
            Logistic in log exposure (default) or in exposure.
        source : str
            Where the anchor comes from (DOI/PMID or ``"assumption"``), kept on the link.
        note : str
            Reasoning for the anchor and slope, kept on the link.

        Returns
        -------
        LogisticExposureToxicity
            with ``e50 = mtd_exposure * exp(-logit(p_at_mtd) / slope)`` (log
            scale) or ``mtd_exposure - logit(p_at_mtd) / slope`` (linear).
        """
        try:
            e = float(mtd_exposure)
        except (TypeError, ValueError):
            raise TrialError("mtd_exposure", mtd_exposure, "must be a number > 0") from None
        if not (math.isfinite(e) and e > 0):
            raise TrialError("mtd_exposure", mtd_exposure, "must be finite and > 0")
        p = _check_prob("p_at_mtd", p_at_mtd)
        s = float(slope)
        if not (math.isfinite(s) and s > 0):
            raise TrialError("slope", slope, "must be finite and > 0")
        logit = math.log(p / (1 - p))
        e50 = e * math.exp(-logit / s) if log_exposure else e - logit / s
        if not e50 > 0:
            raise TrialError("mtd_exposure", mtd_exposure,
                             "gives e50 <= 0 on the linear scale", "use log_exposure=True or a larger slope")
        if not note:
            note = f"anchored: p = {p:g} at exposure {e:g} (literature MTD), slope {s:g}"
        return cls(e50, s, log_exposure, source, note)

    def __call__(self, exposure):
        """DLT probability for each exposure (array-like, >= 0)."""
        e = np.asarray(exposure, dtype=float)
        with np.errstate(divide="ignore", over="ignore"):
            if self.log_exposure:
                z = self.slope * (np.log(e) - math.log(self.e50))
            else:
                z = self.slope * (e - self.e50)
            return 1.0 / (1.0 + np.exp(-z))
