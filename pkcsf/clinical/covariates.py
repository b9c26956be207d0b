"""Covariates a virtual patient carries and the effects they have on parameters (data, no sampling).

Shared by :mod:`pkcsf.clinical.parameters` (which reads sourced effects from parameter files) and
:mod:`pkcsf.clinical.population` (which applies them to sampled subjects).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pkcsf.core.errors import ParameterError, check_choice

__all__ = ["COVARIATES", "CovariateEffect"]

COVARIATES = {"SEX": "0 = male, 1 = female", "AGE": "y", "WT": "kg", "HT": "cm", "BSA": "m2",
              "SCR": "mg/dL", "CRCL": "mL/min", "ALB": "g/L"}

_EFFECT_MODELS = ("power", "linear", "exponential", "categorical", "table")


@dataclass(frozen=True)
class CovariateEffect:
    """How a covariate moves a parameter's typical value (a multiplicative factor).

    ``power``: (cov/reference)^exponent; ``linear``: 1 + slope*(cov - reference);
    ``exponential``: exp(slope*(cov - reference)); ``categorical``: ``factors[level]``;
    ``table``: piecewise-linear factor interpolated in (``x``, ``y``).

    Parameters
    ----------
    parameter, covariate : str
        The parameter moved and the covariate column.
    model : {"power", "linear", "exponential", "categorical", "table"}
        The form of the factor.
    reference, exponent, slope : float, optional
        As above.
    factors : dict, optional
        Level -> factor (categorical).
    x, y : tuple, optional
        Table points.
    source, note : str, optional
        Where the effect comes from.
    upper : float, optional
        The covariate is truncated at this value before the factor is computed (e.g. creatinine clearance at
        140 mL/min, as the source model did).

    Examples
    --------
    >>> float(CovariateEffect("CL", "WT", "power", reference=70, exponent=0.75).factor(140.0))
    1.681...
    """

    parameter: str
    covariate: str
    model: str
    reference: float = 1.0
    exponent: float = 1.0
    slope: float = 0.0
    factors: dict = field(default_factory=dict)
    x: tuple = ()
    y: tuple = ()
    source: str = ""
    note: str = ""
    upper: float | None = None

    def __post_init__(self):
        check_choice(f"covariate effect on {self.parameter}.model", self.model, _EFFECT_MODELS, ParameterError)
        check_choice(f"covariate effect on {self.parameter}.covariate", self.covariate, list(COVARIATES), ParameterError)

    def factor(self, cov: np.ndarray) -> np.ndarray:
        """The multiplicative factor on the parameter for covariate values.

        Parameters
        ----------
        cov : ndarray
            Covariate values, in the covariate's unit (e.g. kg for WT).

        Returns
        -------
        ndarray
            Factor on the parameter, same shape as ``cov`` (1 at the reference value).
        """
        cov = np.asarray(cov, dtype=float)
        if self.upper is not None:
            cov = np.minimum(cov, self.upper)
        if self.model == "power":
            return (cov / self.reference) ** self.exponent
        if self.model == "linear":
            return 1.0 + self.slope * (cov - self.reference)
        if self.model == "exponential":
            return np.exp(self.slope * (cov - self.reference))
        if self.model == "categorical":
            out = np.ones_like(cov)
            for level, f in self.factors.items():
                out = np.where(cov == float(level), float(f), out)
            return out
        return np.interp(cov, np.asarray(self.x, float), np.asarray(self.y, float))
