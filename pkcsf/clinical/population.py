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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.clinical.covariates import COVARIATES, CovariateEffect
from pkcsf.core.errors import ParameterError, check_choice, check_int

__all__ = ["Population", "RandomEffect", "CovariateEffect", "Demographics", "CovariateDistribution", "uniforms",
           "normals", "bsa_mosteller", "crcl_cockcroft_gault", "lms_value", "load_demographics", "COVARIATES", "SCALES"]

#: covariates a population knows (units): SEX 0 male / 1 female


_STREAM_COVARIATES = 1
_STREAM_ETAS = 2


# ------------------------------------------------------------------ random
def uniforms(seed: int, stream: int, start: int, n: int, d: int) -> np.ndarray:
    """Uniforms in (0, 1), shape (n, d), for subjects ``start .. start+n-1``.

    Subject i always gets the same d numbers for a given (seed, stream),
    whatever ``start`` and ``n`` (counter-based Philox; each subject uses
    a whole number of 4-word blocks).

    Parameters
    ----------
    seed, stream : int
        Random seed and stream.
    start, n : int
        First subject and number of subjects.
    d : int
        Numbers per subject.

    Returns
    -------
    ndarray, shape (n, d)
        Uniforms.

    Examples
    --------
    >>> import numpy as np
    >>> bool(np.all(uniforms(1, 0, 5, 2, 3)[1] == uniforms(1, 0, 0, 7, 3)[6]))
    True
    """
    seed = _check_seed(seed)
    d4 = max(4, -(-d // 4) * 4)
    bg = np.random.Philox(key=np.array([seed, stream], dtype=np.uint64))
    bg.advance(start * (d4 // 4))
    u = np.random.Generator(bg).random((n, d4))[:, :d]
    return u + 2.0 ** -54     # (0, 1): never exactly 0


def ndtri(x):
    """Inverse standard normal CDF (scipy.special.ndtri, imported on first use: import pkcsf stays fast)."""
    from scipy.special import ndtri as f
    return f(x)


def ndtr(x):
    """Standard normal CDF (scipy.special.ndtr, imported on first use)."""
    from scipy.special import ndtr as f
    return f(x)


def normals(seed: int, stream: int, start: int, n: int, d: int) -> np.ndarray:
    """Standard normal deviates (n, d) by the inverse CDF of :func:`uniforms`.

    Parameters
    ----------
    seed, stream : int
        Random seed and stream.
    start, n : int
        First subject and number of subjects.
    d : int
        Numbers per subject.

    Returns
    -------
    ndarray, shape (n, d)
        Deviates.
    """
    return ndtri(uniforms(seed, stream, start, n, d))


def _check_seed(seed) -> int:
    if check_int("seed", seed, 0, ParameterError) >= 2**63:
        raise ParameterError("seed", seed, "must be a whole number between 0 and 2**63 - 1")
    return int(seed)


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

    def value(self, z, sex, given=None) -> np.ndarray:
        """The covariate for standard normal deviates ``z`` (sex 0/1; ``given``: the given_by values)."""
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
        """Covariates of subjects ``start`` to ``start + n - 1`` of the stream ``seed`` (sex, then the table's columns).

        ``fixed``: covariates every subject has (``{"AGE": 5.0}``: a scenario's fixed age); covariates given by
        them (weight- and height-for-age) are drawn at that value.
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
    """Add BSA and CRCL where their inputs are present and they are not given."""
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
    data : DataFrame, optional
        A user population: one row per subject with covariates and/or
        individual parameter values (columns named after parameters are used
        as they are, without random effects).
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

        Returns a DataFrame with an ``ID`` column, the covariates and one
        column per parameter of ``typical`` (base units).

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
    return df.reset_index(drop=True)
