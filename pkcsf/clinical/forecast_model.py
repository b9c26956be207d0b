"""The patient's model behind :func:`pkcsf.clinical.forecast.forecast`: the measured observations and the
residual error read from the user's input, the covariate timeline, the predictions of one patient for a batch
of random-effect vectors (:class:`_Individual`), the central-difference Hessian of the MAP objective, the checks
of a forecast (the effective sample size it needs, the prior-predictive check of the observations, the warning
class) and the reading of a forecast file's questions.

Split from :mod:`pkcsf.clinical.forecast` (which re-exports :func:`covariate_timeline` and the private names).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.covariates import COVARIATES
from pkcsf.core.errors import PkcsfError, ScenarioError, check_choice
from pkcsf.core.units import concentration_factor, parse_quantity

__all__ = ["covariate_timeline", "UnreliableForecastWarning"]

DEFAULT_ERROR = {"proportional": 0.30, "additive": None}
#: p-value of the prior-predictive check below which the observations are called inconsistent with the model
CONFLICT_P = 1e-3
#: covariates that must be > 0 (AGE may be 0, a newborn; SEX is 0/1)
_POSITIVE_COVARIATES = ("WT", "HT", "BSA", "SCR", "CRCL", "ALB")


class UnreliableForecastWarning(UserWarning):
    """A forecast whose posterior sample is degenerate (its intervals and probabilities are not reported), or
    whose observations are inconsistent with the population model (its answers may be wrong: check units).
    """


# ------------------------------------------------------------------ inputs
def _observations(obs, unit: str, mw: float, groups) -> pd.DataFrame:
    """Observations -> DataFrame (time h, group, value in ``unit``)."""
    if isinstance(obs, pd.DataFrame):
        rows = obs.to_dict("records")
    elif isinstance(obs, (list, tuple)):
        rows = list(obs)
    else:
        raise ScenarioError("observations", type(obs).__name__, "a DataFrame or a list of {time, group, value} with "
                            "one row per measured concentration")
    if not rows:
        raise ScenarioError("observations", "none", "at least one measured concentration")
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, dict):
            raise ScenarioError(f"observations[{i}]", r, "a row with time, group and value")
        low = {str(k).lower(): v for k, v in r.items()}
        for k in ("time", "group", "value"):
            if k not in low or (isinstance(low[k], float) and math.isnan(low[k])):
                raise ScenarioError(f"observations[{i}].{k}", None, "every observation needs time, group and value")
        t = parse_quantity(low["time"], "time", field=f"observations[{i}].time", default_unit="h")
        g = str(low["group"])
        check_choice(f"observations[{i}].group", g, sorted(groups), ScenarioError)
        u = low.get("unit")
        if u is None or (isinstance(u, float) and math.isnan(u)) or not str(u).strip():
            u = unit                     # a blank cell of an optional unit column: the forecast's unit
        v = low["value"]
        if isinstance(v, str):
            v_mg = parse_quantity(v, "concentration", field=f"observations[{i}].value", mw=mw, default_unit=u)
        else:
            v_mg = parse_quantity(f"{float(v)!r} {u}", "concentration", field=f"observations[{i}].value", mw=mw)
        if not (math.isfinite(t) and t >= 0):
            raise ScenarioError(f"observations[{i}].time", low["time"], "a time >= 0 after the first dose")
        if not (math.isfinite(v_mg) and v_mg > 0):
            raise ScenarioError(f"observations[{i}].value", v, "a positive measured concentration (a value below "
                                "the assay's limit is not supported yet: leave it out)")
        out.append({"time": float(t), "group": g, "value": v_mg * concentration_factor(unit, mw)})
    return pd.DataFrame(out).sort_values("time", kind="stable").reset_index(drop=True)


def _error(error, unit, mw, obs) -> tuple[float, float]:
    e = dict(DEFAULT_ERROR)
    if error is not None:
        if not isinstance(error, dict):
            raise ScenarioError("error", error, "a table {proportional = CV, additive = concentration}")
        for k in error:
            check_choice("error", k, ["proportional", "additive"], ScenarioError)
        e.update(error)
    prop = e["proportional"]
    if isinstance(prop, bool) or not isinstance(prop, (int, float)) or not (0.0 <= prop <= 2.0):
        raise ScenarioError("error.proportional", prop, "a coefficient of variation in [0, 2], e.g. 0.2")
    add = e["additive"]
    if add is None:
        add_u = 0.01 * float(obs["value"].min())
    elif isinstance(add, str):
        add_u = parse_quantity(add, "concentration", field="error.additive", mw=mw) * concentration_factor(unit, mw)
    elif isinstance(add, (int, float)) and not isinstance(add, bool) and add >= 0:
        add_u = float(add)
    else:
        raise ScenarioError("error.additive", add, f"a concentration, e.g. '0.01 umol/L' (a number is in {unit})")
    if prop == 0 and add_u == 0:
        raise ScenarioError("error", error, "a proportional or an additive error must be > 0")
    return float(prop), float(add_u)


# ------------------------------------------------------------------ model
def covariate_timeline(covariates: dict | pd.DataFrame | list | None) -> list[tuple[float, dict]]:
    """The patient's covariates as ``[(from_time_h, {name: value}), ...]``, the first from time 0.

    Parameters
    ----------
    covariates : dict, DataFrame, list of dict or None
        Constant covariates (a dict), or a timeline: rows with a ``time`` (h or ``"2 d"``) and the
        covariates from that time on (last observation carried forward; the first row's values hold from
        time 0; a cell left out or empty carries the previous value).

    Returns
    -------
    list of tuple
        Change points in time order; one entry for constant covariates.

    Raises
    ------
    ScenarioError
        A row without a time, a negative or repeated time, a non-numeric or non-finite value, a covariate out
        of its range (WT, HT, BSA, SCR, CRCL, ALB > 0; AGE >= 0; SEX 0/1 or M/F).
    """
    if covariates is None or isinstance(covariates, dict):
        return [(0.0, {str(k): _covariate(k, v, f"covariates.{k}") for k, v in (covariates or {}).items()})]
    if isinstance(covariates, pd.DataFrame):
        rows = covariates.to_dict("records")
    elif isinstance(covariates, (list, tuple)) and all(isinstance(r, dict) for r in covariates):
        rows = list(covariates)
    else:
        raise ScenarioError("covariates", type(covariates).__name__, "a table {WT = 70, ...} of constant "
                            "covariates, or rows {time, WT, ...} of a covariate timeline")
    if not rows:
        return [(0.0, {})]
    timed = []
    for i, r in enumerate(rows):
        low = {str(k): v for k, v in r.items()}
        key = next((k for k in low if k.lower() == "time"), None)
        if key is None:
            raise ScenarioError(f"covariates[{i}].time", None, "every row of a covariate timeline needs a time (h)")
        t = parse_quantity(low.pop(key), "time", field=f"covariates[{i}].time", default_unit="h")
        if not (math.isfinite(t) and t >= 0):
            raise ScenarioError(f"covariates[{i}].time", t, "a time >= 0 h")
        vals = {}
        for k, v in low.items():
            if v is None or (isinstance(v, float) and math.isnan(v)) or (isinstance(v, str) and not v.strip()):
                continue
            vals[k] = _covariate(k, v, f"covariates[{i}].{k}")
        timed.append((float(t), i, vals))
    timed.sort(key=lambda x: x[0])
    times = [t for t, _, _ in timed]
    if len(set(times)) != len(times):
        dup = next(t for t in times if times.count(t) > 1)
        raise ScenarioError("covariates.time", dup, "one row per time in a covariate timeline")
    keys = list(dict.fromkeys(k for _, _, vals in timed for k in vals))
    current = {k: next(vals[k] for _, _, vals in timed if k in vals) for k in keys}   # first values from 0
    out: list[tuple[float, dict]] = []
    for t, _, vals in timed:
        current = {**current, **vals}
        if not out:
            out.append((0.0, dict(current)))
        elif current != out[-1][1]:
            out.append((t, dict(current)))
    return out


def _covariate(name, v, where: str) -> float:
    """One covariate value as a number, refused (naming ``where``) when out of its range."""
    name = str(name)
    if name == "SEX":
        low = str(v).strip().lower() if not isinstance(v, bool) else ""
        sex = {"m": 0.0, "male": 0.0, "0": 0.0, "0.0": 0.0, "f": 1.0, "female": 1.0, "1": 1.0, "1.0": 1.0}.get(low)
        if sex is None:
            raise ScenarioError(where, v, "SEX is 0 (male) / 1 (female) or M / F")
        return sex
    try:
        x = float(v) if not isinstance(v, bool) else math.nan
    except (TypeError, ValueError):
        x = math.nan
    unit = f" ({COVARIATES[name]})" if name in COVARIATES else ""
    if not math.isfinite(x):
        raise ScenarioError(where, v, f"{name}{unit} must be a finite number")
    if name in _POSITIVE_COVARIATES and x <= 0:
        raise ScenarioError(where, v, f"{name}{unit} must be > 0", "a unit or sign slip?")
    if name == "AGE" and x < 0:
        raise ScenarioError(where, v, "AGE (y) must be >= 0")
    return x


class _Individual:
    """Predictions of one patient for a batch of eta vectors (one virtual subject per vector).

    With a covariate timeline (:func:`covariate_timeline`) the patient is solved in segments
    (:func:`pkcsf.clinical.events_segments.solve_segments`): each segment's typical values come from its
    covariates, the random effects are the same in all.
    """

    def __init__(self, setup, regimen, covariates, unit, times):
        from pkcsf.clinical.scenario import _as_regimen, _sites, population_from_data
        from pkcsf.engine.expressions import Expression

        self.setup = setup
        reg = _as_regimen(regimen, setup.drug.name, "regimen")
        self.reg = _sites(reg, setup, "regimen")
        timeline = covariate_timeline(covariates)
        self.starts = np.array([t for t, _ in timeline])
        self.typicals, self.extras = [], []
        for _, cov in timeline:
            pop = population_from_data(setup, pd.DataFrame([cov]))
            typ = pop.individual(setup.parameters, 1, variability=False)
            self.typicals.append({k: float(typ[k].iloc[0]) for k in setup.parameters})
            self.extras.append({c: float(typ[c].iloc[0]) for c in typ.columns
                                if c not in setup.parameters and c != "ID"})
        self.typical, self.extra = self.typicals[0], self.extras[0]
        self.random_effects = pop.random_effects
        self.omega = np.asarray(pop.omega, dtype=float)
        self.omega_inv = np.linalg.pinv(self.omega) if len(self.random_effects) else np.zeros((0, 0))
        self.dose_columns = set()
        for d in self.reg.doses:
            if isinstance(d.amount, str):
                self.dose_columns.update(Expression.parse(d.amount).names)
        missing = [c for c in self.dose_columns if c not in self.extra]
        if missing:
            per = {"BSA": "mg/m2", "WT": "mg/kg"}.get(missing[0], "a covariate")
            raise ScenarioError("covariates", f"no {missing[0]}", f"a dose is given per {missing[0]} ({per}): give "
                                "the patient's covariates (HT and WT for BSA, WT for mg/kg)")
        if self.dose_columns and len(self.starts) > 1:
            raise ScenarioError("regimen", sorted(self.dose_columns)[0], "a dose given per covariate (mg/m2, mg/kg) "
                                "with time-varying covariates is ambiguous (which time's value?): give the doses "
                                "in mg")
        self.groups = [g for g, cs in setup.outputs.items() if cs]
        self.states, self.W = setup.group_weights(self.groups)
        self.factor = concentration_factor(unit, setup.mw)
        self.times = np.asarray(times, dtype=float)

    def params(self, etas: np.ndarray, segment: int = 0) -> pd.DataFrame:
        """Parameters (one row per eta vector) in covariate segment ``segment`` (0: from time 0)."""
        etas = np.atleast_2d(etas)
        n = len(etas)
        vals = {k: np.full(n, v) for k, v in self.typicals[segment].items()}
        for j, re in enumerate(self.random_effects):
            for p in re.parameters:
                vals[p] = vals[p] * np.exp(etas[:, j])
        df = pd.DataFrame(vals)
        for c in self.dose_columns:
            df[c] = self.extras[segment][c]
        return df

    def predict(self, etas: np.ndarray, reg=None, times=None) -> np.ndarray:
        """Group concentrations (n, T, G) in the forecast's unit."""
        from pkcsf.engine.simulate import prepare

        times = self.times if times is None else np.asarray(times, dtype=float)
        reg = self.reg if reg is None else reg
        if len(self.starts) > 1:
            return self._predict_segments(etas, reg, times)
        prob = prepare(self.setup.model, reg, self.params(etas), times=times, outputs=self.states)
        out, status, _ = prob.solve()
        if np.any(status != 0):
            raise ScenarioError("forecast", f"{int(np.sum(status != 0))} failed solves",
                                "the solver failed for some parameter values; report this case")
        return cns.group_concentrations(prob, out, self.W, self.factor)

    def _predict_segments(self, etas, reg, times) -> np.ndarray:
        from pkcsf.clinical.events_segments import solve_segments

        etas = np.atleast_2d(etas)
        seg = np.searchsorted(self.starts, times, side="right") - 1      # a change time reads the new segment
        tloc = times - self.starts[seg]
        ps = [self.params(etas, k)[list(self.setup.parameters)] for k in range(len(self.starts))]
        amounts, status, probs = solve_segments(self.setup.model, [reg] * len(etas), ps, self.starts, seg, tloc)
        if np.any(status != 0):
            raise ScenarioError("forecast", f"{int(np.sum(status != 0))} failed solves",
                                "the solver failed for some parameter values; report this case")
        names = probs[0].compiled.state_names
        sidx = [names.index(s) for s in self.states]
        conc = np.empty((len(etas), len(times), self.W.shape[1]))
        for k, prob in enumerate(probs):
            pts = seg == k
            V = prob.compiled.volumes(prob.P)[:, sidx]
            conc[:, pts] = (amounts[:, pts][:, :, sidx] @ self.W) * (self.factor / (V @ self.W)[:, None, :])
        return conc


# ------------------------------------------------------------------ diagnostics
def _ess_needed(interval: float) -> float:
    """Smallest effective sample size for which the posterior draws give an interval of mass ``interval``.

    The ESS is Kish's, (sum w)^2 / sum w^2, of the SIR importance weights (Kong 1992; Liu 2001, Monte Carlo
    Strategies in Scientific Computing, 2.5.3). The rule: at least 100 effective draws (the tail ESS of the 5%
    and 95% quantiles Vehtari et al. 2021, Bayesian Analysis 16:667, ask per MCMC chain before those quantiles
    are reported; our draws are independent, so one "chain"), and at least 5 effective draws beyond each tail
    quantile (5 / tail mass: 200 for a 95% interval). With fewer, a "90% interval" is one or a few repeated
    draws (a case with ESS 9 had its MAP answer outside its own "interval").
    """
    tail = (1.0 - float(interval)) / 2.0
    return float(max(100.0, math.ceil(5.0 / tail - 1e-9)))


def _prior_check(y, ipred, prop, add, e_map, omega_inv) -> tuple[float, float, int]:
    """Prior-predictive check of the observations (Box 1980): ``(Q, p, index of the largest |IWRES|)``.

    At the MAP, Q = sum IWRES^2 + eta' Omega^-1 eta. For a model linear in eta with normal errors the minimum of
    this quadratic equals (y - PRED)' (R + X Omega X')^-1 (y - PRED), chi-square with n_obs degrees of freedom
    when the observations come from the model; a tiny p flags data the population model (with its residual
    error) cannot produce: a unit slip (mg/L for umol/L, 100x), a wrong time or site, a wrong dose.
    """
    from scipy.stats import chi2

    iwres = (y - ipred) / np.sqrt((prop * ipred) ** 2 + add ** 2)
    q = float(np.sum(iwres ** 2) + e_map @ omega_inv @ e_map)
    return q, float(chi2.sf(q, len(y))), int(np.argmax(np.abs(iwres)))


def _problems(ess, n_draws, ess_needed, interval, samples, check, worst, at_bound, unit) -> list[str]:
    """The messages of a forecast's failed checks: a degenerate sample; observations inconsistent with the model."""
    problems = []
    q, p_check, n_obs = check
    if ess < ess_needed:
        need = math.ceil(samples * ess_needed / max(ess, 1e-9))
        problems.append(
            f"the posterior sample is degenerate: effective sample size {ess:.1f} of {n_draws} weighted draws, below "
            f"the {ess_needed:.0f} a {interval:.0%} interval needs; the intervals, dose_90 and the posterior "
            "probabilities are not reported (NaN). "
            + (f"Raise samples (the ESS grows in proportion: about samples={need}), and check" if need <= 100_000
               else f"Raising samples will not help (about samples={need} would be needed): check")
            + " the observations' units, times and sites")
    if p_check < CONFLICT_P or at_bound:
        why = ([f"prior-predictive check chi-square {q:.1f} on {n_obs} degrees of freedom, p {_p_text(p_check)}; "
                f"worst: {worst['group']} at {worst['time']:g} h, DV {worst['DV']:.3g} {unit} against IPRED "
                f"{worst['IPRED']:.3g} (IWRES {worst['IWRES']:.1f})"] if p_check < CONFLICT_P else []) \
            + ([f"{', '.join(at_bound)} at the bound of the search (5 SD of the population)"] if at_bound else [])
        problems.append(f"the observations are inconsistent with the population model ({'; '.join(why)}): the MAP "
                        f"and every answer may be wrong. Check the observations' units (a bare number is in {unit}; "
                        "mg/L and umol/L differ by the molecular weight), their times and sites, the doses, and the "
                        "residual error ([error]) of your assay")
    return problems


def _p_text(p: float) -> str:
    return "< 1e-16" if p < 1e-16 else f"= {p:.1g}"


# ------------------------------------------------------------------ questions of a forecast file
def _question_list(questions: dict, key: str) -> list:
    q = questions.get(key, [])
    return [q] if isinstance(q, str) else list(q)


def _split_question(q, where: str, n: int, form: str) -> tuple[str, list[str]]:
    """``'GROUP Q1 [UNIT] Q2 [UNIT]'`` -> group and ``n`` quantities (a quantity without a unit is a bare number)."""
    tokens = str(q).split()
    if len(tokens) < 2:
        raise ScenarioError(where, q, form)
    quantities, rest = [], tokens[1:]
    while rest:
        if not _is_number(rest[0]):
            raise ScenarioError(where, q, form)
        k = 2 if len(rest) > 1 and not _is_number(rest[1]) else 1
        quantities.append(" ".join(rest[:k]))
        rest = rest[k:]
    if len(quantities) != n:
        raise ScenarioError(where, q, form)
    return tokens[0], quantities


def _asking(where: str, ask):
    """``ask()``, its errors naming the question (``questions.keep_above[0] (duration): got ...``)."""
    try:
        return ask()
    except PkcsfError as e:
        raise type(e)(f"{where} ({e.field})", e.value, e.allowed, e.fix) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _conc_text(conc: str, unit: str) -> str:
    return f"{conc} {unit}" if _is_number(conc) else conc


def _time_value(value, name: str) -> float:
    """A time (h, or ``"3.5 d"``) that must be finite and >= 0."""
    t = parse_quantity(value, "time", field=name, default_unit="h")
    if not (math.isfinite(t) and t >= 0):
        raise ScenarioError(name, value, "a finite time >= 0 after the first dose, e.g. '84 h' (a number is in h)")
    return t


def _hessian(f, x, h):
    """Central-difference Hessian of a batch function f((n, k)) -> (n,), in one batch."""
    k = len(x)
    pts = [x]
    for i in range(k):
        for j in range(i, k):
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                p = x.copy()
                p[i] += si * h
                p[j] += sj * h
                pts.append(p)
    vals = f(np.array(pts))
    H = np.zeros((k, k))
    n = 1
    for i in range(k):
        for j in range(i, k):
            fpp, fpm, fmp, fmm = vals[n:n + 4]
            n += 4
            H[i, j] = H[j, i] = (fpp - fpm - fmp + fmm) / (4 * h * h)
    return H
