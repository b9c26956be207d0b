"""Covariate models of virtual populations (:class:`Demographics`, ``parameters/population/*.toml``) and the
covariate formulas (BSA, creatinine clearance, growth-chart LMS values).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.clinical.covariates import COVARIATES
from pkcsf.clinical.streams import _STREAM_COVARIATES, ndtr, ndtri, uniforms
from pkcsf.core.errors import ParameterError, check_choice

__all__ = ["Demographics", "CovariateDistribution", "load_demographics", "derive_covariates", "bsa_mosteller", "crcl_cockcroft_gault", "lms_value", "SCALES", "LMS_Z_MAX"]


# ------------------------------------------------------------ covariates
def bsa_mosteller(height_cm: ArrayLike, weight_kg: ArrayLike) -> float | np.ndarray:
    """Body-surface area (m²), Mosteller RD. N Engl J Med 1987;317:1098.

    Parameters
    ----------
    height_cm, weight_kg : float or ndarray
        Height (cm) and weight (kg).

    Returns
    -------
    float or ndarray
        m2.

    Examples
    --------
    >>> round(float(bsa_mosteller(170, 70)), 3)
    1.818
    """
    return np.sqrt(np.asarray(height_cm, float) * np.asarray(weight_kg, float) / 3600.0)


def crcl_cockcroft_gault(age: ArrayLike, weight_kg: ArrayLike, scr_mg_dl: ArrayLike, sex: ArrayLike) -> float | np.ndarray:
    """Creatinine clearance (mL/min), Cockcroft DW, Gault MH. Nephron 1976;16:31-41.

    ``(140 - age) * weight / (72 * SCr)``, times 0.85 for women (sex = 1).

    Parameters
    ----------
    age : float or ndarray
        Years.
    weight_kg : float or ndarray
        kg.
    scr_mg_dl : float or ndarray
        Serum creatinine (mg/dL).
    sex : int or ndarray
        0 male, 1 female.

    Returns
    -------
    float or ndarray
        mL/min.

    Examples
    --------
    >>> round(float(crcl_cockcroft_gault(40, 72, 1.0, 0)), 1)
    100.0
    """
    age = np.asarray(age, float)
    crcl = (140.0 - age) * np.asarray(weight_kg, float) / (72.0 * np.asarray(scr_mg_dl, float))
    return crcl * np.where(np.asarray(sex) == 1, 0.85, 1.0)


#: scales of a covariate in a demographics file
SCALES = ("normal", "lognormal", "uniform", "lms")

#: default truncation of the z-scores of an LMS covariate: the WHO Child Growth Standards (2006,
#: methods report ch. 7) use the LMS curves only within +-3 SD (beyond, a linear extension); clipping
#: at +-3 keeps the CDC weight curves (L down to -1.9) away from 1 + L*S*z <= 0.
LMS_Z_MAX = 3.0


@dataclass(frozen=True)
class CovariateDistribution:
    """One continuous covariate, per sex, with bounds.

    ``scale``:

    * ``"normal"``: ``mean + sd*z``; ``"lognormal"``: ``exp(mean + sd*z)``
      (``mean``/``sd`` of log(value));
    * ``"uniform"``: ``lower + (upper - lower)*Phi(z)`` (a uniform when z is
      not correlated with another covariate);
    * ``"lms"``: age-conditional growth-chart value (Cole's LMS method):
      ``M*(1 + L*S*z)**(1/L)`` (``M*exp(S*z)`` when L = 0), with L, M, S
      interpolated linearly in the value of the covariate ``given_by`` from
      ``lms`` = (male rows, female rows), each row (x, L, M, S) with x in the
      units of ``given_by``; z is clipped to +-``z_max``.

    z is the subject's (correlated) standard normal deviate for this
    covariate. The result is clipped to ``[lower, upper]``.

    Parameters
    ----------
    name : str
        Covariate column.
    scale : {"normal", "lognormal", "uniform", "lms"}
        The distribution (see above).
    mean, sd : tuple
        Per sex (male, female).
    lower, upper : float, optional
        Bounds.
    source, given_by : str, optional
        Source; the covariate an LMS table is indexed by.
    lms : tuple, optional
        LMS table rows.
    z_max : float, optional
        Truncation of z.
    """

    name: str
    scale: str                  # one of SCALES
    mean: tuple                 # (male, female): mean of the value (normal) or of log(value) (lognormal)
    sd: tuple                   # (male, female), on the same scale
    lower: float = -math.inf
    upper: float = math.inf
    source: str = ""
    given_by: str = ""          # lms: the covariate the table is indexed by (e.g. "AGE")
    lms: tuple = ()             # lms: (male rows, female rows), rows ((x, L, M, S), ...)
    z_max: float = LMS_Z_MAX    # lms: |z| is clipped to this

    def value(self, z: ArrayLike, sex: ArrayLike, given: ArrayLike | None = None) -> np.ndarray:
        """The covariate for standard normal deviates.

        Parameters
        ----------
        z : array_like
            Standard normal deviates, one per subject.
        sex : array_like
            0 (male) or 1 (female) per subject.
        given : array_like, optional
            Values of the covariate this one is given by (``given_by``, e.g. AGE in years for weight-for-age);
            required for an LMS covariate.

        Returns
        -------
        ndarray
            Covariate values in the covariate's unit, clipped to [lower, upper].

        Raises
        ------
        ParameterError
            An LMS covariate without ``given``, or ``given`` outside the LMS table.
        """
        z = np.asarray(z, float)
        female = np.asarray(sex) == 1
        if self.scale in ("normal", "lognormal"):
            x = np.where(female, self.mean[1], self.mean[0]) + np.where(female, self.sd[1], self.sd[0]) * z
            if self.scale == "lognormal":
                x = np.exp(x)
        elif self.scale == "uniform":
            x = self.lower + (self.upper - self.lower) * ndtr(z)
        else:
            if given is None:
                raise ParameterError(f"covariate {self.name}", None, f"an lms covariate needs the values of {self.given_by}")
            given = np.broadcast_to(np.asarray(given, float), z.shape)
            lo, hi = max(t[0][0] for t in self.lms), min(t[-1][0] for t in self.lms)
            if given.size and not (given.min() >= lo - 1e-9 and given.max() <= hi + 1e-9):
                raise ParameterError(f"covariate {self.name}: {self.given_by}", [float(given.min()), float(given.max())],
                                     f"the LMS table covers {lo:g} to {hi:g}")
            L, M, S = _lms_at(self.lms, given, np.broadcast_to(female, z.shape))
            x = lms_value(L, M, S, np.clip(z, -self.z_max, self.z_max))
        return np.clip(x, self.lower, self.upper)


def lms_value(L: ArrayLike, M: ArrayLike, S: ArrayLike, z: ArrayLike) -> float | np.ndarray:
    """Growth-chart value at z-score ``z`` (Cole TJ, Green PJ. Stat Med 1992;11:1305-19):
    ``M*(1 + L*S*z)**(1/L)``, or ``M*exp(S*z)`` when L = 0.

    Parameters
    ----------
    L, M, S : float or ndarray
        Box-Cox power, median and coefficient of variation.
    z : float or ndarray
        z-score.

    Returns
    -------
    float or ndarray
        The value.

    Examples
    --------
    >>> float(lms_value(0.0, 10.0, 0.1, 0.0))
    10.0
    """
    L, M, S, z = (np.asarray(a, float) for a in (L, M, S, z))
    small = np.abs(L) < 1e-12
    Ls = np.where(small, 1.0, L)
    with np.errstate(invalid="ignore", divide="ignore"):
        power = M * (1.0 + Ls * S * z) ** (1.0 / Ls)
    return np.where(small, M * np.exp(S * z), power)


def _lms_at(lms, given, female):
    """L, M, S interpolated linearly in ``given`` from each sex's rows."""
    out = [np.empty(given.shape) for _ in range(3)]
    for k, rows in enumerate(lms):
        t = np.asarray(rows, float)
        sel = female if k == 1 else ~female
        for j in range(3):
            out[j][sel] = np.interp(given[sel], t[:, 0], t[:, j + 1])
    return out


@dataclass(frozen=True)
class Demographics:
    """A covariate model: sex ratio, covariate distributions, correlations.

    Continuous covariates are drawn as correlated standard normals (the
    ``correlation`` matrix, in the order of ``covariates``), one per
    covariate, and mapped to values by :meth:`CovariateDistribution.value`:
    each sex's mean and SD (on the log scale for log-normal ones), a uniform
    over the bounds, or a growth-chart (LMS) table indexed by another
    covariate (e.g. weight-for-age: the z is the weight-for-age z-score),
    then clipped to their bounds. BSA (Mosteller) and creatinine clearance
    (Cockcroft–Gault) are derived when height/weight and serum creatinine are
    present.

    Parameters
    ----------
    name : str
        Name.
    p_female : float
        Fraction of women.
    covariates : tuple of CovariateDistribution
        The covariates.
    correlation : ndarray
        Correlation of their z-scores.
    sources : dict, optional
        References.
    description : str, optional
        Free text.
    """

    name: str
    p_female: float
    covariates: tuple
    correlation: np.ndarray
    sources: dict = field(default_factory=dict)
    description: str = ""

    def sample(self, n: int, seed: int, start: int = 0, fixed: dict | None = None) -> pd.DataFrame:
        """Covariates of subjects ``start`` to ``start + n - 1`` of the stream ``seed``.

        Parameters
        ----------
        n : int
            Number of subjects.
        seed : int
            Seed of the stream; subject ``i`` depends only on ``(seed, i)``.
        start : int
            Index of the first subject (default 0).
        fixed : dict, optional
            Covariates every subject has (``{"AGE": 5.0}``: a scenario's fixed age); covariates given by them
            (weight- and height-for-age) are drawn at that value.

        Returns
        -------
        pandas.DataFrame
            One row per subject: SEX (0/1), the table's covariates, other ``fixed`` ones, then the derived
            ones (:func:`derive_covariates`).
        """
        fixed = dict(fixed or {})
        k = len(self.covariates)
        u = uniforms(seed, _STREAM_COVARIATES, start, n, k + 1)
        sex = (u[:, 0] < self.p_female).astype(np.int64)
        z = ndtri(u[:, 1:])
        if k:
            z = z @ np.linalg.cholesky(self.correlation).T
        vals = {}
        for j, cov in enumerate(self.covariates):          # unconditional covariates first ...
            if cov.name in fixed:
                vals[cov.name] = np.full(n, float(fixed[cov.name]))
            elif not cov.given_by:
                vals[cov.name] = cov.value(z[:, j], sex)
        for j, cov in enumerate(self.covariates):          # ... then those given by another (e.g. WT given AGE)
            if cov.given_by and cov.name not in fixed:
                vals[cov.name] = cov.value(z[:, j], sex, vals[cov.given_by])
        out = {"SEX": sex}
        out.update({cov.name: vals[cov.name] for cov in self.covariates})
        out.update({k: np.full(n, float(v)) for k, v in fixed.items() if k not in out})
        df = pd.DataFrame(out)
        return derive_covariates(df)


def derive_covariates(df: pd.DataFrame) -> pd.DataFrame:
    """Add BSA and CRCL where their inputs are present and they are not given.

    Parameters
    ----------
    df : pandas.DataFrame
        Covariates per subject: HT (cm) and WT (kg) give BSA (m², Mosteller); AGE (years), WT, SCR (mg/dL)
        and SEX give CRCL (mL/min, Cockcroft-Gault).

    Returns
    -------
    pandas.DataFrame
        A copy with the columns added.
    """
    df = df.copy()
    if "BSA" not in df and "HT" in df and "WT" in df:
        df["BSA"] = bsa_mosteller(df["HT"], df["WT"])
    if "CRCL" not in df and {"AGE", "WT", "SCR", "SEX"} <= set(df.columns):
        df["CRCL"] = crcl_cockcroft_gault(df["AGE"], df["WT"], df["SCR"], df["SEX"])
    return df


def load_demographics(name_or_path: str | Path = "adult") -> Demographics:
    """Read ``parameters/population/<name>.toml`` (every value sourced).

    Parameters
    ----------
    name_or_path : str or Path, optional
        Name (``"adult"``, ``"pediatric"``, ...) or file.

    Returns
    -------
    Demographics
        The covariate model.
    """
    from pathlib import Path

    from pkcsf.clinical.parameters import _check_source, available_parameter_sets

    p = Path(str(name_or_path))
    if p.suffix != ".toml":
        sets = available_parameter_sets("population")
        if str(name_or_path) not in sets:
            check_choice("demographics", str(name_or_path), sorted(sets), ParameterError)
        p = sets[str(name_or_path)]
    from pkcsf.core.paths import read_toml

    data = read_toml(p, ParameterError, "demographics file")
    refs = {str(k): str(v) for k, v in data.get("references", {}).items()}
    sex = data.get("sex", {})
    where = f"{p.name}: sex"
    _check_source(sex.get("source"), refs, where)
    covs = []
    for name, spec in data.get("covariates", {}).items():
        w = f"{p.name}: covariates.{name}"
        _check_source(spec.get("source"), refs, w)
        if spec.get("source") == "assumption" and not spec.get("note"):
            raise ParameterError(f"{w}.note", "", "an assumption needs a note giving the reasoning")
        scale = check_choice(f"{w}.scale", spec.get("scale", "normal"), list(SCALES), ParameterError)
        check_choice(f"{w} name", name, [c for c in COVARIATES if c not in ("SEX", "BSA", "CRCL")], ParameterError)
        lower, upper = float(spec.get("lower", -math.inf)), float(spec.get("upper", math.inf))
        if not lower < upper:
            raise ParameterError(f"{w}.lower/upper", [lower, upper], "lower must be below upper")
        if scale == "uniform":
            if not (math.isfinite(lower) and math.isfinite(upper)):
                raise ParameterError(f"{w}.lower/upper", [lower, upper], "a uniform covariate needs finite lower and upper")
            covs.append(CovariateDistribution(name, scale, ((lower + upper) / 2,) * 2,
                                              ((upper - lower) / math.sqrt(12.0),) * 2, lower, upper, spec.get("source")))
            continue
        if scale == "lms":
            given_by, lms, z_max = _read_lms(spec, w)
            covs.append(CovariateDistribution(name, scale, (math.nan, math.nan), (math.nan, math.nan), lower, upper,
                                              spec.get("source"), given_by, lms, z_max))
            continue
        mean = spec["mean"] if isinstance(spec["mean"], list) else [spec["mean"]] * 2
        sd = spec["sd"] if isinstance(spec["sd"], list) else [spec["sd"]] * 2
        if spec.get("scale") == "lognormal" and spec.get("given_as") == "median_gsd":
            mean = [math.log(m) for m in mean]
            sd = [math.log(s) for s in sd]
        covs.append(CovariateDistribution(name, spec.get("scale", "normal"), tuple(mean), tuple(sd),
                                          spec.get("lower", -math.inf), spec.get("upper", math.inf),
                                          spec.get("source")))
    names = [c.name for c in covs]
    R = np.eye(len(covs))
    for pair, spec in data.get("correlations", {}).items():
        a, b = pair.split("-")
        w = f"{p.name}: correlations.{pair}"
        _check_source(spec.get("source"), refs, w)
        i, j = names.index(check_choice(w, a, names, ParameterError)), names.index(check_choice(w, b, names, ParameterError))
        R[i, j] = R[j, i] = float(spec["value"])
    try:
        np.linalg.cholesky(R)
    except np.linalg.LinAlgError:
        raise ParameterError(f"{p.name}: correlations", R.tolist(), "the correlation matrix must be positive definite") from None
    _check_lms_links(covs, R, p.name)
    return Demographics(data.get("meta", {}).get("name", p.stem), float(sex.get("p_female", 0.5)), tuple(covs), R,
                        refs, data.get("meta", {}).get("description", ""))


def _read_lms(spec, w):
    """Parse ``given_by``, ``x_unit``, ``z_max`` and the ``[lms]`` table (``male``/``female`` rows [x, L, M, S])."""
    given_by = check_choice(f"{w}.given_by", spec.get("given_by", ""),
                            [c for c in COVARIATES if c not in ("SEX", "BSA", "CRCL")], ParameterError)
    tab = spec.get("lms")
    if not isinstance(tab, dict):
        raise ParameterError(f"{w}.lms", tab, "an lms covariate needs a table [covariates.NAME.lms] with male and female rows [x, L, M, S]")
    unit = tab.get("x_unit", "y" if given_by == "AGE" else "")
    if given_by == "AGE":
        check_choice(f"{w}.lms.x_unit", unit, ["y", "month"], ParameterError)
    elif unit:
        raise ParameterError(f"{w}.lms.x_unit", unit, f"x is in the units of {given_by}; x_unit is for AGE tables only")
    factor = 1.0 / 12.0 if unit == "month" else 1.0
    z_max = float(spec.get("z_max", LMS_Z_MAX))
    if not z_max > 0:
        raise ParameterError(f"{w}.z_max", z_max, "must be > 0")
    out = []
    for sex in ("male", "female"):
        rows = tab.get(sex)
        t = np.asarray(rows if rows is not None else [], dtype=float)
        if t.ndim != 2 or t.shape[1] != 4 or len(t) < 2:
            raise ParameterError(f"{w}.lms.{sex}", rows, "needs at least two rows [x, L, M, S]")
        if not np.isfinite(t).all() or (t[:, 2] <= 0).any() or (t[:, 3] <= 0).any():
            raise ParameterError(f"{w}.lms.{sex}", rows, "L must be finite and M, S > 0")
        if (np.diff(t[:, 0]) <= 0).any():
            raise ParameterError(f"{w}.lms.{sex}", t[:, 0].tolist(), "x must increase strictly")
        # 1 + L*S*z must stay > 0 for |z| <= z_max, also between rows (L*S is not linear there)
        f = np.linspace(0.0, 1.0, 11)
        L = (t[:-1, 1, None] * (1 - f) + t[1:, 1, None] * f).ravel()
        S = (t[:-1, 3, None] * (1 - f) + t[1:, 3, None] * f).ravel()
        if (1.0 - np.abs(L * S) * z_max <= 0).any():
            raise ParameterError(f"{w}.z_max", z_max, f"the {sex} LMS curve is undefined (1 + L*S*z <= 0) within |z| <= z_max")
        t[:, 0] *= factor
        out.append(tuple(map(tuple, t.tolist())))
    return given_by, tuple(out), z_max


def _check_lms_links(covs, R, fname):
    """An lms covariate's given_by must be an unconditional covariate of the file whose bounds lie in the table,
    and not correlated with it (z-scores are defined within each value of given_by).
    """
    names = [c.name for c in covs]
    for i, c in enumerate(covs):
        if not c.given_by:
            continue
        w = f"{fname}: covariates.{c.name}.given_by"
        if c.given_by not in names:
            raise ParameterError(w, c.given_by, "must be a covariate of this file; available: " + ", ".join(names))
        j = names.index(c.given_by)
        g = covs[j]
        if g.given_by:
            raise ParameterError(w, c.given_by, "must not itself be an lms covariate")
        lo = max(t[0][0] for t in c.lms)
        hi = min(t[-1][0] for t in c.lms)
        if g.lower < lo - 1e-9 or g.upper > hi + 1e-9:
            raise ParameterError(w, [g.lower, g.upper],
                                 f"the bounds of {g.name} must lie within the LMS table ({lo:g} to {hi:g}, both sexes)")
        if R[i, j] != 0.0:
            raise ParameterError(f"{fname}: correlations.{c.given_by}-{c.name}", float(R[i, j]),
                                 f"{c.name} is conditional on {c.given_by} (its z is a z-score within each {c.given_by}); "
                                 "a correlation between them has no meaning")
