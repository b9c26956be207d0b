"""Virtual populations: covariates, between-subject variability, reproducible seeds.

A :class:`Population` turns typical parameter values into N individual
parameter sets:

1. **covariates** per subject (sex, age, weight, height, serum creatinine ->
   BSA and creatinine clearance), drawn from a :class:`Demographics` model
   (``parameters/population/*.toml``, each value sourced: normal, log-normal
   or uniform covariates, or growth-chart LMS tables conditional on another
   covariate such as weight-for-age) or taken from a user DataFrame (one row
   per subject);
2. **covariate effects** on typical values (power, linear, categorical,
   or a table such as CSF volume by age), declared per parameter;
3. **random effects**: ``P_i = P_typ(cov_i) * exp(eta_i)`` with
   ``eta ~ N(0, Omega)``, Omega a full covariance matrix (or CVs plus a
   correlation matrix; omega^2 = ln(1 + CV^2)); one eta may scale several
   parameters.

Reproducibility: subject i's random numbers come from a counter-based
generator (Philox) keyed by ``(seed, stream)`` and positioned at subject i,
so subject i is identical whatever N, the chunk size or the thread count.
Covariates and random effects use separate streams, so adding a random
effect does not change anyone's covariates. Normal deviates are obtained by
the inverse normal CDF of uniforms, so each subject consumes a fixed number
of draws.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkcsf.clinical.covariates import COVARIATES, CovariateEffect
from pkcsf.clinical.demographics import (
    SCALES,
    CovariateDistribution,
    Demographics,
    bsa_mosteller,
    crcl_cockcroft_gault,
    derive_covariates,
    lms_value,
    load_demographics,
)
from pkcsf.clinical.streams import _STREAM_ETAS, normals, uniforms
from pkcsf.core.errors import ParameterError, check_choice

__all__ = ["Population", "RandomEffect", "CovariateEffect", "Demographics", "CovariateDistribution", "uniforms",
           "normals", "bsa_mosteller", "crcl_cockcroft_gault", "lms_value", "load_demographics", "COVARIATES", "SCALES",
           "COVARIATE_RANGES"]

#: Plausible values of each covariate a user gives (population data columns, demographics files), in the unit of
#: :data:`COVARIATES`: name -> (unit, lowest, highest, likely slips). A value outside ``[lowest, highest]`` is
#: refused; a slip ``(a, b, hint)`` names the likely unit mistake for a value in ``[a, b]`` (HT 1.75: metres).
COVARIATE_RANGES = {
    "SEX": ("0 = male, 1 = female", 0.0, 1.0, ((2.0, 2.0, "1/2 coding? SEX is 0 = male, 1 = female"),)),
    "AGE": ("y", 0.0, 120.0, ((120.0, 1440.0, "months? AGE is in years (divide by 12)"),
                              (1440.0, 44000.0, "days? AGE is in years (divide by 365.25)"))),
    "WT": ("kg", 0.3, 350.0, ((350.0, 800.0, "pounds? WT is in kg (1 lb = 0.4536 kg)"),
                              (800.0, 350000.0, "grams? WT is in kg (divide by 1000)"))),
    "HT": ("cm", 30.0, 250.0, ((0.2, 2.6, "metres? HT is in cm (multiply by 100)"),
                               (2.6, 8.5, "feet? HT is in cm (1 ft = 30.48 cm)"),
                               (8.5, 30.0, "inches? HT is in cm (1 in = 2.54 cm)"),
                               (250.0, 2600.0, "mm? HT is in cm (divide by 10)"))),
    "BSA": ("m2", 0.1, 4.0, ((4.0, 45.0, "ft2? BSA is in m2 (1 ft2 = 0.0929 m2); or a weight in the BSA column?"),
                             (1000.0, 45000.0, "cm2? BSA is in m2 (divide by 10000)"))),
    "SCR": ("mg/dL", 0.1, 20.0, ((0.005, 0.1, "mmol/L? SCR is in mg/dL (multiply by 11.31)"),
                                 (20.0, 2000.0, "umol/L? SCR is in mg/dL (divide by 88.4)"))),
    "CRCL": ("mL/min", 0.0, 300.0, ((300.0, 20000.0, "mL/h? CRCL is in mL/min (divide by 60)"),)),
    "ALB": ("g/L", 10.0, 70.0, ((1.0, 10.0, "g/dL? ALB is in g/L (multiply by 10)"),
                                (150.0, 1100.0, "umol/L? ALB is in g/L (divide by 15)"))),
}


# ------------------------------------------------------------ random effects
@dataclass(frozen=True)
class RandomEffect:
    """One eta: a log-normal factor on one or more parameters.

    Give ``cv`` (omega^2 = ln(1 + cv^2)) or ``omega2`` directly.

    Parameters
    ----------
    name : str
        Name of the eta (``"ETA_CL"``).
    parameters : tuple of str
        The parameters multiplied by ``exp(eta)`` (one eta shared by all).
    cv : float, optional
        Coefficient of variation of the factor.
    omega2 : float, optional
        Variance of eta.
    source : str, optional
        Where the variability comes from.

    Examples
    --------
    >>> round(RandomEffect("ETA_CL", ("CL",), cv=0.3).variance, 4)
    0.0862
    """

    name: str
    parameters: tuple
    cv: float | None = None
    omega2: float | None = None
    source: str = ""

    def __post_init__(self):
        if isinstance(self.parameters, str):
            object.__setattr__(self, "parameters", (self.parameters,))
        if (self.cv is None) == (self.omega2 is None):
            raise ParameterError(f"random effect {self.name}", (self.cv, self.omega2), "give cv or omega2, not both")
        v = self.variance
        if not (math.isfinite(v) and v >= 0):
            raise ParameterError(f"random effect {self.name}", self.cv if self.cv is not None else self.omega2,
                                 "the variability must be a finite number >= 0")

    @property
    def variance(self) -> float:
        """omega^2, the variance of eta."""
        return math.log1p(self.cv ** 2) if self.cv is not None else float(self.omega2)


class Population:
    """Covariates + covariate effects + random effects -> individual parameters.

    Parameters
    ----------
    random_effects : dict or list, optional
        ``{parameter: cv}`` (one eta per parameter) or a list of
        :class:`RandomEffect` (an eta may scale several parameters).
    correlation : array_like or dict, optional
        Correlation between the etas: a matrix in the order of
        ``random_effects``, or ``{("CL", "V_C"): 0.5}`` by eta name.
    covariance : array_like, optional
        Full Omega (instead of CVs and correlation).
    demographics : Demographics, str or DataFrame, optional
        The covariate model (name of ``parameters/population/*.toml``), or a
        DataFrame of covariates with one row per subject.
    effects : list of CovariateEffect, optional
        Covariate effects on the parameters (e.g. allometric weight scaling of CL).
    data : DataFrame, optional
        A user population: one row per subject with covariates and/or
        individual parameter values (columns named after parameters are used
        as they are, without random effects).
    name : str, optional
        Label in reprs and tables.

    Examples
    --------
    >>> pop = Population({"CL": 0.3, "V_PLASMA": 0.2}, correlation={("eta_CL", "eta_V_PLASMA"): 0.5})
    >>> [r.name for r in pop.random_effects]
    ['eta_CL', 'eta_V_PLASMA']
    """

    def __init__(self, random_effects=None, *, correlation=None, covariance=None, demographics=None,
                 effects=(), data: pd.DataFrame | None = None, name: str = ""):
        self.name = name
        res = []
        if isinstance(random_effects, dict):
            for k, v in random_effects.items():
                res.append(v if isinstance(v, RandomEffect) else RandomEffect(f"eta_{k}", (k,), cv=float(v)))
        elif random_effects is not None:
            res = list(random_effects)
        names = [r.name for r in res]
        if len(set(names)) != len(names):
            raise ParameterError("random_effects", names, "eta names must be unique")
        self.random_effects = tuple(res)
        n = len(res)
        if covariance is not None:
            omega = np.asarray(covariance, dtype=float)
            if omega.shape != (n, n):
                raise ParameterError("covariance", f"shape {omega.shape}", f"must be ({n}, {n}) in the order of the random effects")
        else:
            sd = np.sqrt([r.variance for r in res])
            R = np.eye(n)
            if isinstance(correlation, dict):
                for (a, b), v in correlation.items():
                    ia = _eta_index(res, a)
                    ib = _eta_index(res, b)
                    R[ia, ib] = R[ib, ia] = float(v)
            elif correlation is not None:
                R = np.asarray(correlation, dtype=float)
                if R.shape != (n, n):
                    raise ParameterError("correlation", f"shape {R.shape}", f"must be ({n}, {n})")
            omega = R * np.outer(sd, sd)
        if n:
            if not np.allclose(omega, omega.T) or not np.isfinite(omega).all():
                raise ParameterError("covariance", omega.tolist(), "must be a finite symmetric matrix")
            try:
                self._chol = np.linalg.cholesky(omega + 1e-300 * np.eye(n)) if np.any(omega) else np.zeros((n, n))
            except np.linalg.LinAlgError:
                ev = np.linalg.eigvalsh(omega)
                if ev.min() < -1e-12:
                    raise ParameterError("covariance", omega.tolist(), "must be positive semi-definite") from None
                w, v = np.linalg.eigh(omega)
                self._chol = v * np.sqrt(np.clip(w, 0, None))
        else:
            self._chol = np.zeros((0, 0))
        self.omega = omega
        if isinstance(demographics, str):
            demographics = load_demographics(demographics)
        if isinstance(demographics, pd.DataFrame):
            data = demographics if data is None else data
            demographics = None
        if demographics is not None:
            _check_demographics(demographics)
        self.demographics = demographics
        self.effects = tuple(effects)
        self.data = None if data is None else _check_data(data)
        #: covariates every subject has (a scenario's fixed age: {"AGE": 5.0}); see Demographics.sample
        self.fixed = {}

    def __repr__(self):
        return (f"Population({self.name or ''} {len(self.random_effects)} random effects, "
                f"{len(self.effects)} covariate effects, demographics={getattr(self.demographics, 'name', None)}, "
                f"data={'yes' if self.data is not None else 'no'})")

    @property
    def size(self) -> int | None:
        """Number of subjects when the population is a user DataFrame, else None (any N)."""
        return None if self.data is None else len(self.data)

    def covariates(self, n: int, seed: int, start: int = 0) -> pd.DataFrame:
        """Covariates of subjects ``start .. start+n-1``.

        Parameters
        ----------
        n : int
            Number of subjects.
        seed : int
            Random seed (subject ``k`` of a seed is the same whatever ``n`` and ``start``).
        start : int, optional
            First subject index.

        Returns
        -------
        DataFrame
            One row per subject.
        """
        if self.data is not None:
            cols = [c for c in self.data.columns if c in COVARIATES]
            return derive_covariates(self.data.iloc[start:start + n][cols].reset_index(drop=True))
        if self.demographics is None:
            return pd.DataFrame({k: np.full(n, float(v)) for k, v in getattr(self, "fixed", {}).items()},
                                index=range(n))
        return self.demographics.sample(n, seed, start, fixed=getattr(self, "fixed", None))

    def etas(self, n: int, seed: int, start: int = 0) -> np.ndarray:
        """Random effects (n, n_eta) of subjects ``start .. start+n-1``.

        Parameters
        ----------
        n : int
            Number of subjects.
        seed : int
            Random seed.
        start : int, optional
            First subject index.

        Returns
        -------
        ndarray, shape (n, n_eta)
            Random effects.
        """
        k = len(self.random_effects)
        if k == 0:
            return np.zeros((n, 0))
        z = normals(seed, _STREAM_ETAS, start, n, k)
        return z @ self._chol.T

    def individual(self, typical: dict, n: int, seed: int = 0, start: int = 0, *, variability: bool = True
                   ) -> pd.DataFrame:
        """Individual parameters (and covariates) of subjects ``start .. start+n-1``.

        Parameters
        ----------
        typical : dict
            Typical parameter values (base units).
        n : int
            Number of subjects.
        seed : int, optional
            Random seed.
        start : int, optional
            First subject index.
        variability : bool, optional
            Apply the random effects (False: covariate effects only).

        Returns
        -------
        pandas.DataFrame
            One row per subject: ``ID``, the covariates and one column per parameter of ``typical``
            (base units).

        Raises
        ------
        ParameterError
            User data with fewer rows than ``start + n`` or with an unknown column.
        """
        if self.data is not None:
            if start + n > len(self.data):
                raise ParameterError("subjects", start + n, f"the population data has {len(self.data)} rows")
            allowed = set(typical) | set(COVARIATES) | {"ID"}
            bad = [c for c in self.data.columns if c not in allowed]
            if bad:
                check_choice("population data column", bad[0], sorted(allowed), ParameterError)
        cov = self.covariates(n, seed, start)
        out = {"ID": np.arange(start, start + n)}
        if self.data is not None and "ID" in self.data:
            out["ID"] = self.data["ID"].to_numpy()[start:start + n]
        for c in cov.columns:
            out[c] = cov[c].to_numpy()
        values = {k: np.full(n, float(v)) for k, v in typical.items()}
        for eff in self.effects:
            if eff.parameter not in values:
                check_choice("covariate effect parameter", eff.parameter, sorted(values), ParameterError)
            if eff.covariate not in cov:
                raise ParameterError(f"covariate effect on {eff.parameter}", eff.covariate,
                                     "this covariate is not in the population; available: " + ", ".join(cov.columns))
            values[eff.parameter] = values[eff.parameter] * eff.factor(cov[eff.covariate].to_numpy())
        if variability and self.random_effects:
            eta = self.etas(n, seed, start)
            for j, re in enumerate(self.random_effects):
                for p in re.parameters:
                    if p not in values:
                        check_choice(f"random effect {re.name} parameter", p, sorted(values), ParameterError)
                    values[p] = values[p] * np.exp(eta[:, j])
        if self.data is not None:
            for c in self.data.columns:
                if c in values:
                    values[c] = self.data[c].to_numpy(dtype=float)[start:start + n]
        out.update(values)
        return pd.DataFrame(out)


def _eta_index(res, name):
    for i, r in enumerate(res):
        if r.name == name or name in r.parameters:
            return i
    check_choice("correlation", name, [r.name for r in res], ParameterError)


def _check_data(df: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(df, pd.DataFrame):
        raise ParameterError("population data", type(df).__name__, "must be a pandas DataFrame with one row per subject")
    if len(df) == 0:
        raise ParameterError("population data", "0 rows", "needs at least one subject")
    for c in df.columns:
        if c == "ID":
            continue
        v = pd.to_numeric(df[c], errors="coerce")
        if v.isna().any():
            i = int(np.argmax(v.isna().to_numpy()))
            raise ParameterError(f"population data[{c!r}] row {i}", df[c].iloc[i], "must be a finite number")
        if c in COVARIATE_RANGES:
            bad = ~_plausible(c, v.to_numpy(dtype=float))
            if bad.any():
                i = int(np.argmax(bad))
                who = f"row {_plain_id(df.index[i])}"
                if "ID" in df.columns:
                    who += f" (ID {_plain_id(df['ID'].iloc[i])})"
                raise _implausible(f"population data[{c!r}] {who}", c, float(v.iloc[i]))
    return df.reset_index(drop=True)


def _plain_id(x) -> str:
    """A row label or ID as the user wrote it (``5``, not ``np.int64(5)``)."""
    return str(x.item() if isinstance(x, np.generic) else x)


def _plausible(name: str, x: np.ndarray) -> np.ndarray:
    """True where covariate values ``x`` lie in their plausible range (:data:`COVARIATE_RANGES`)."""
    _, lo, hi, _ = COVARIATE_RANGES[name]
    ok = (x >= lo) & (x <= hi)
    return ok & (x == np.round(x)) if name == "SEX" else ok


def _implausible(field: str, name: str, value: float) -> ParameterError:
    """The error for a covariate value outside its plausible range: the unit, the range, the likely slip."""
    unit, lo, hi, slips = COVARIATE_RANGES[name]
    if name == "SEX":
        allowed = "SEX is 0 (male) or 1 (female)"
    else:
        allowed = f"{name} is in {unit}: plausible values {lo:g} to {hi:g} {unit}"
    hint = next((h for a, b, h in slips if a <= value <= b), None)
    if hint is None:
        hint = (f"a negative {name}: a sign slip?" if value < 0 else "a placeholder for a missing value?"
                if value == 0 else "SEX is 0 = male, 1 = female" if name == "SEX" else f"{name} is in {unit}; check "
                "the unit")
    return ParameterError(field, value, allowed, f"{value:g}: {hint}")


def _check_demographics(demo: Demographics) -> None:
    """Refuse a covariate model whose typical values or bounds are implausible (a file in the wrong unit):
    the means or medians of each sex, an LMS table's medians (M) and finite lower/upper bounds.
    """
    for c in getattr(demo, "covariates", ()):
        if c.name not in COVARIATE_RANGES:
            continue
        checks = [("lower", [c.lower]), ("upper", [c.upper])]
        if c.scale == "normal":
            checks.append(("mean", list(c.mean)))
        elif c.scale == "lognormal":
            checks.append(("median", [math.exp(m) for m in c.mean]))
        elif c.scale == "lms":
            checks.append(("lms M", [row[2] for rows in c.lms for row in rows]))
        for what, values in checks:
            for x in values:
                if math.isfinite(x) and not _plausible(c.name, np.array([x]))[0]:
                    raise _implausible(f"demographics {demo.name!r}: covariates.{c.name} {what}", c.name, float(x))
