"""Individual Bayesian forecasting: a patient's measured concentrations -> his own profile, with an interval.

Therapeutic drug monitoring for the CSF. Given the doses a patient received, one or more measured
concentrations (CSF at a named site, or plasma) and the population model (typical values, covariate
effects and between-subject variability of the drug and physiology files), :func:`forecast` finds the
**maximum a posteriori** (MAP) random effects of this patient,

    OFV(eta) = sum_j [ (y_j - f_j(eta))^2 / var_j + ln var_j ] + eta' Omega^-1 eta,
    var_j = (prop * f_j)^2 + add^2,

(-2 log posterior up to a constant; the usual NONMEM POSTHOC objective with a combined residual error),
and the individual profile (IPRED) beside the population prediction (PRED). The interval of the profile
comes from the posterior of eta: a Laplace (normal) approximation at the MAP, refined by sampling
importance resampling (SIR: draws from the normal approximation re-weighted by the exact posterior), so a
non-normal posterior still gets honest intervals; the effective sample size is reported.

Questions a clinician asks are methods of the result: :meth:`ForecastResult.time_below` ("when will this
patient's ventricular methotrexate fall below 0.1 umol/L?") and :meth:`ForecastResult.dose_for` ("which dose
keeps him above 1 umol/L for 48 h?").

The residual error defaults (proportional 30%, additive 1% of the lowest observation) are an assumption:
assay CVs of methotrexate immunoassays are about 5-10%, the rest is model misspecification; give your own
(``error={"proportional": 0.15, "additive": "0.02 umol/L"}``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkcsf.clinical import cns

# the patient model (inputs, covariate timeline, predictions, Hessian) lives in its own module; its names
# stay importable from here
from pkcsf.clinical.forecast_model import (
    DEFAULT_ERROR,  # noqa: F401 (re-exported)
    _error,
    _hessian,
    _Individual,
    _observations,
    covariate_timeline,
)
from pkcsf.core.errors import ScenarioError, check_choice
from pkcsf.core.units import parse_quantity

__all__ = ["forecast", "ForecastResult", "covariate_timeline"]
#: largest next dose searched by the forecast file's keep_above question (mg; ForecastResult.dose_for's default)
_MAX_DOSE_SEARCHED = 100.0


# ------------------------------------------------------------------ result
@dataclass
class ForecastResult:
    """Outcome of :func:`forecast`.

    Attributes
    ----------
    drug : str
        The drug's name.
    unit : str
        Concentration unit of every value.
    observations : DataFrame
        ``time`` (h), ``group``, ``DV`` (observed), ``PRED`` (population, typical patient with his
        covariates), ``IPRED`` (individual, MAP), ``IWRES`` (weighted individual residual).
    etas : Series
        MAP random effects (name -> value).
    eta_sd : Series
        Their posterior standard deviations (Laplace approximation).
    parameters : Series
        The patient's MAP parameters (base units; with a covariate timeline, those from time 0).
    typical : Series
        The population's typical parameters with the patient's covariates (from time 0).
    profile : DataFrame
        ``time``, ``group``, ``PRED``, ``IPRED``, ``lo``, ``median``, ``hi`` (``interval`` of the posterior).
    interval : float
        Probability mass of the profile interval (e.g. 0.9).
    ess : float
        Effective sample size of the importance-resampled posterior draws.
    ofv : float
        Objective at the MAP.
    """

    drug: str
    unit: str
    observations: pd.DataFrame
    etas: pd.Series
    eta_sd: pd.Series
    parameters: pd.Series
    typical: pd.Series
    profile: pd.DataFrame
    interval: float
    ess: float
    ofv: float
    _model: object = field(default=None, repr=False)
    _draws: np.ndarray = field(default=None, repr=False)
    _map: np.ndarray = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"ForecastResult({self.drug}; {len(self.observations)} observations; "
                f"{len(self.etas)} random effects; OFV {self.ofv:.2f}; ESS {self.ess:.0f})")

    def _curves(self, group, draws=True):
        m = self._model
        check_choice("group", group, m.groups, ScenarioError)
        j = m.groups.index(group)
        return m.times, self.profile_ipred[:, j], (self.profile_draws[:, :, j] if draws else None)

    def time_below(self, group: str, threshold: str | float, *, after: float | None = None) -> dict:
        """When the patient's concentration in ``group`` falls (and stays) below ``threshold``.

        Parameters
        ----------
        group : str
            ``ventricular``, ``lumbar``, ``plasma``, ...
        threshold : str or float
            A concentration (``"0.1 umol/L"``; a number is in the result's unit).
        after : float, optional
            Hours; default the last dose.

        Returns
        -------
        dict
            ``map`` (h, from the MAP profile), ``lo`` and ``hi`` (the interval from the posterior draws),
            ``threshold`` (in the result's unit). ``inf`` when it stays above within the simulated window.
        """
        thr = self._threshold(threshold)
        t, ipred, draws = self._curves(group)
        start = self._last_dose() if after is None else float(after)

        def crossing(c):
            above = np.nonzero((c >= thr) & (t >= start))[0]
            if len(above) == 0:
                return start
            k = above[-1]
            if k + 1 >= len(t):
                return math.inf
            c0, c1 = c[k], c[k + 1]           # log-linear interpolation between outputs
            if c1 <= 0 or c0 <= 0:
                return float(t[k + 1])
            return float(t[k] + (t[k + 1] - t[k]) * math.log(c0 / thr) / math.log(c0 / c1))

        d = np.array([crossing(c) for c in draws])
        a = (1 - self.interval) / 2
        fin = np.where(np.isfinite(d), d, np.nan)
        lo = float(np.nanquantile(fin, a)) if np.isfinite(d).mean() > a else math.inf
        hi = float(np.nanquantile(fin, 1 - a)) if np.isfinite(d).mean() >= 1 - a else math.inf
        return {"map": crossing(ipred), "lo": lo, "hi": hi, "threshold": thr, "unit": self.unit}

    def dose_for(self, group: str, threshold: str | float, duration: str | float, *, at: float | None = None, route: str | None = None,
                 max_dose: float = _MAX_DOSE_SEARCHED) -> dict:
        """The smallest next dose keeping this patient's ``group`` above ``threshold`` for ``duration``.

        Parameters
        ----------
        group : str
            Compartment group (``ventricular``, ``lumbar``, ``plasma``, ...).
        threshold : str or float
            Concentration (a number is in the result's unit).
        duration : str or float
            ``"48 h"`` (a number is in h).
        at : float or str, optional
            Time of the next dose (h, or ``"3.5 d"``); default one dosing interval after the last dose, and
            3.5 days (the twice-weekly induction interval) after a single dose.
        route : str, optional
            Route of the next dose; default the route of the last dose.
        max_dose : float
            Largest dose searched (mg).

        Returns
        -------
        dict
            ``map`` (mg, for the MAP patient), ``p_target`` (posterior probability that this dose meets the
            target), ``dose_90`` (mg, the dose meeting it with 90% posterior probability; inf if above
            ``max_dose``).
        """
        from pkcsf.engine.dosing import Dose, Regimen

        m = self._model
        thr = self._threshold(threshold)
        dur = parse_quantity(duration, "time", field="duration", default_unit="h")
        doses = list(m.reg.expand())
        last = max(doses, key=lambda d: d.time)
        times_d = sorted({d.time for d in doses})
        if at is None:     # one dosing interval after the last dose; after a single dose, 3.5 days (twice weekly)
            at = last.time + ((times_d[-1] - times_d[-2]) if len(times_d) > 1 else 84.0)
        elif isinstance(at, str):
            at = parse_quantity(at, "time", field="at", default_unit="h")
        site = last.site if route is None else m.setup.sites.get(route, route)
        if route is not None and route not in m.setup.sites:
            check_choice("route", route, sorted(m.setup.sites), ScenarioError)
        grid = np.linspace(float(at), float(at) + dur, 97)
        j = m.groups.index(group) if group in m.groups else check_choice("group", group, m.groups, ScenarioError)
        # linear model: the concentration from the new dose scales with its amount; one unit-dose run plus the
        # background of the earlier doses gives every candidate dose at once
        unit_reg = Regimen([Dose(1.0, site, float(at))])
        etas = np.vstack([self._map, self._draws])
        back = m.predict(etas, times=grid)[:, :, j]
        one = m.predict(etas, reg=unit_reg, times=grid)[:, :, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            need = np.nanmax(np.where(one > 0, (thr - back) / one, np.inf), axis=1)   # mg per subject
        need = np.clip(need, 0.0, None)
        dose_map = float(need[0])
        post = need[1:]
        d90 = float(np.quantile(post, 0.9))
        return {"map": dose_map if dose_map <= max_dose else math.inf,
                "dose_90": d90 if d90 <= max_dose else math.inf,
                "p_target_at_map_dose": float(np.mean(post <= dose_map)), "at": float(at), "site": site}

    def _threshold(self, threshold) -> float:
        if isinstance(threshold, str):
            return parse_quantity(threshold, "concentration", field="threshold", mw=self._model.setup.mw) \
                * self._model.factor
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or threshold <= 0:
            raise ScenarioError("threshold", threshold, f"a positive concentration (a number is in {self.unit})")
        return float(threshold)

    def _last_dose(self) -> float:
        return max(d.time for d in self._model.reg.expand())

    def plot(self, group: str | None = None, ax: Any = None) -> Any:
        """Observed, PRED, IPRED and the posterior interval for each observed group.

        Parameters
        ----------
        group : str, optional
            One group (default: every observed group).
        ax : matplotlib Axes, optional
            Axes to draw on.

        Returns
        -------
        matplotlib Axes
            The figure's axes.
        """
        from pkcsf.plotting.forecast import forecast_plot

        return forecast_plot(self, group=group, ax=ax)


# ------------------------------------------------------------------ the fit
def forecast(drug: str | cns.Drug, regimen: Any, observations: pd.DataFrame | list, *,
             covariates: dict | pd.DataFrame | list | None = None, physiology: str = "adult",
             age: float | None = None, pathologies: dict | list | None = None, variant: str = "linear",
             unit: str = "umol/L",
             error: dict | None = None, days: float | None = None, dt: float | None = None,
             interval: float = 0.9, samples: int = 1000, seed: int = 0) -> ForecastResult:
    """Individual MAP forecast of a patient from measured concentrations (see the module docstring).

    Parameters
    ----------
    drug : str or Drug
        The drug (a name or a :class:`~pkcsf.clinical.cns.Drug`).
    regimen : str, Regimen or Dose
        The doses the patient received (and any planned ones), e.g. ``"12 mg ommaya on days 0, 3"``.
    observations : DataFrame or list of dict
        One row per measured concentration: ``time`` (h or ``"6 h"``), ``group`` (``ventricular``,
        ``lumbar``, ``cisternal``, ``cranial_sas``, ``spinal``, ``plasma``, ...), ``value`` (a number in
        ``unit`` or a quantity ``"35 umol/L"``), optional ``unit``.
    covariates : dict, DataFrame or list of dict, optional
        The patient's covariates (``WT``, ``HT``, ``AGE``, ``SEX``, ``SCR``, ``ALB``): covariate effects of the
        drug and physiology files apply. Covariates that change: rows ``{time, WT, ...}`` (a timeline, last
        observation carried forward, see :func:`covariate_timeline`); the patient is then solved in segments
        between the change times with the same random effects throughout, and ``parameters``/``typical`` of
        the result are those from time 0.
    physiology, age, pathologies, variant
        As for :func:`pkcsf.clinical.cns.setup`.
    unit : str
        Concentration unit of the results (and of numeric observations).
    error : dict, optional
        Residual error ``{"proportional": CV, "additive": concentration}`` (default 0.30 and 1% of the
        lowest observation: an assumption, see the module docstring).
    days, dt : float, optional
        Simulated window (default: 7 days after the last dose or observation) and output step (h).
    interval : float
        Probability mass of the profile interval (default 0.9).
    samples : int
        Posterior draws (sampling importance resampling).
    seed : int
        Random seed of the posterior draws.

    Returns
    -------
    ForecastResult

    Examples
    --------
    >>> import pkcsf as pk
    >>> res = pk.forecast("methotrexate", "12 mg ommaya once",
    ...                   [{"time": 6, "group": "ventricular", "value": 25.0},
    ...                    {"time": 24, "group": "ventricular", "value": 4.0}])      # doctest: +SKIP
    >>> res.time_below("ventricular", "0.1 umol/L")                                   # doctest: +SKIP
    """
    from scipy.optimize import minimize

    if not (0.0 < float(interval) < 1.0):
        raise ScenarioError("interval", interval, "a probability in (0, 1), e.g. 0.9")
    if isinstance(samples, bool) or not isinstance(samples, int) or not (100 <= samples <= 100_000):
        raise ScenarioError("samples", samples, "an integer in [100, 100000]")
    setup = cns.setup(drug, physiology, variant, pathologies, age=age)
    mw = setup.mw
    groups = [g for g, cs in setup.outputs.items() if cs]
    obs = _observations(observations, unit, mw, groups)
    prop, add = _error(error, unit, mw, obs)
    # the window and the output grid (observation times on the grid)
    from pkcsf.clinical.scenario import _as_regimen

    reg0 = _as_regimen(regimen, setup.drug.name, "regimen")
    dose_end = max(d.time for d in reg0.expand())
    end = float(days) * 24.0 if days is not None else max(dose_end, float(obs["time"].max())) + 168.0
    step = float(dt) if dt is not None else (0.25 if end <= 24 * 14 else 1.0)
    times = np.unique(np.concatenate([np.arange(0.0, end + step / 2, step), obs["time"].to_numpy()]))
    model = _Individual(setup, regimen, covariates, unit, times)
    k = len(model.random_effects)
    if k == 0:
        raise ScenarioError("drug", setup.drug.name, "has no between-subject variability in its parameter files: "
                            "there is nothing to individualise")
    oi = np.searchsorted(times, obs["time"].to_numpy())
    og = np.array([model.groups.index(g) for g in obs["group"]])
    y = obs["value"].to_numpy()
    t_obs = np.unique(obs["time"].to_numpy())                  # the fit needs the observation times only
    oi_obs = np.searchsorted(t_obs, obs["time"].to_numpy())

    def ofv_batch(E):
        c = model.predict(E, times=t_obs)[:, oi_obs, og]      # (n, n_obs)
        var = (prop * c) ** 2 + add ** 2
        res = ((y - c) ** 2 / var + np.log(var)).sum(axis=1)
        prior = np.einsum("ni,ij,nj->n", E, model.omega_inv, E)
        return res + prior

    h = 1e-4

    def fun_grad(e):
        # one batch: the point and k central-difference pairs (a forward difference's O(h) gradient error stopped
        # the search ~0.002 OFV units short of the minimum)
        E = np.vstack([e, e + h * np.eye(k), e - h * np.eye(k)])
        f = ofv_batch(E)
        return float(f[0]), (f[1:k + 1] - f[k + 1:]) / (2 * h)

    best = None
    for start in (np.zeros(k),):
        r = minimize(fun_grad, start, jac=True, method="L-BFGS-B", bounds=[(-5 * math.sqrt(max(model.omega[i, i], 1e-12)),
                     5 * math.sqrt(max(model.omega[i, i], 1e-12))) for i in range(k)],
                     options={"maxiter": 500, "ftol": 1e-12, "gtol": 1e-7})
        if best is None or r.fun < best.fun:
            best = r
    e_map = best.x
    ofv_map = float(ofv_batch(e_map[None, :])[0])
    # Laplace approximation: Hessian of OFV/2 by central differences (one batch)
    H = _hessian(ofv_batch, e_map, 1e-3) / 2.0
    try:
        cov = np.linalg.inv(H)
        cov = (cov + cov.T) / 2
        np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        cov = model.omega.copy()                               # fall back on the prior's spread
    rng = np.random.default_rng(seed)
    # SIR: proposals from a widened normal approximation, weights from the exact posterior
    prop_cov = 1.5 ** 2 * cov
    L = np.linalg.cholesky(prop_cov + 1e-12 * np.eye(k))
    Z = rng.standard_normal((samples * 3, k))
    prop_draws = e_map + Z @ L.T
    logq = -0.5 * np.sum(Z ** 2, axis=1)
    logp = -0.5 * ofv_batch(prop_draws)
    lw = logp - logq
    w = np.exp(lw - lw.max())
    w /= w.sum()
    ess = float(1.0 / np.sum(w ** 2))
    idx = rng.choice(len(w), size=samples, replace=True, p=w)
    draws = prop_draws[idx]
    # profiles
    C_map = model.predict(e_map[None, :])[0]
    C_typ = model.predict(np.zeros((1, k)))[0]
    uniq, inv = np.unique(draws, axis=0, return_inverse=True)   # resampling repeats draws: solve each once
    C_draws = model.predict(uniq)[np.ravel(inv)]
    a = (1 - interval) / 2
    lo, med, hi = np.quantile(C_draws, [a, 0.5, 1 - a], axis=0)
    T, G = C_map.shape
    profile = pd.DataFrame({"time": np.repeat(times, G), "group": np.tile(model.groups, T),
                            "PRED": C_typ.ravel(), "IPRED": C_map.ravel(), "lo": lo.ravel(), "median": med.ravel(),
                            "hi": hi.ravel()})
    ipred = C_map[oi, og]
    obs_out = obs.rename(columns={"value": "DV"}).assign(PRED=C_typ[oi, og], IPRED=ipred,
                                                        IWRES=(y - ipred) / np.sqrt((prop * ipred) ** 2 + add ** 2))
    names = [re.name for re in model.random_effects]
    par = model.params(e_map[None, :]).iloc[0][list(setup.parameters)]
    res = ForecastResult(setup.drug.name, unit, obs_out, pd.Series(e_map, index=names),
                         pd.Series(np.sqrt(np.clip(np.diag(cov), 0, None)), index=names),
                         par, pd.Series(model.typical), profile, float(interval), ess, ofv_map,
                         _model=model, _draws=draws, _map=e_map)
    res.profile_ipred = C_map
    res.profile_draws = C_draws
    return res


# ------------------------------------------------------------------ forecast files
_FILE_KEYS = {"drug", "regimen", "observations", "patient", "error", "physiology", "age", "pathologies", "variant",
              "unit", "days", "dt", "interval", "samples", "seed", "questions", "description", "name"}


def load_forecast_file(path: str | Path) -> tuple[dict, dict]:
    """Read a forecast file (TOML): ``(keyword arguments of forecast(), questions)``.

    The file names the ``drug``, the ``regimen`` the patient received (regimen text), the measured
    ``observations`` (an array of tables ``{time, group, value}``, or the path of a CSV file with those
    columns), the ``[patient]`` covariates (or ``[[patient]]`` rows with a ``time``: a covariate timeline, see
    :func:`covariate_timeline`), an optional ``[error]`` and ``[questions]`` with ``below =
    ["GROUP CONC", ...]`` (when does the concentration fall below CONC) and ``keep_above = ["GROUP CONC
    DURATION", ...]`` (which next dose keeps it above CONC for DURATION; ``next_dose_at = "84 h"`` sets its
    time). See docs/forecast.md.

    Parameters
    ----------
    path : str or Path
        The forecast file.

    Returns
    -------
    tuple of dict
        Keyword arguments for :func:`forecast` and the questions.
    """
    from pkcsf.core.paths import read_toml

    p = Path(path)
    data = read_toml(p, ScenarioError, "forecast file")
    for k in data:
        check_choice(f"{p.name}: key", k, sorted(_FILE_KEYS), ScenarioError)
    for k in ("drug", "regimen", "observations"):
        if k not in data:
            raise ScenarioError(f"{p.name}: {k}", None, f"a forecast file needs {k} (see docs/forecast.md)")
    obs = data["observations"]
    if isinstance(obs, str):
        f = (p.parent / obs) if not Path(obs).is_absolute() else Path(obs)
        if not f.exists():
            raise ScenarioError(f"{p.name}: observations", obs, "no such CSV file (columns time, group, value)")
        obs = pd.read_csv(f)
    kwargs = {k: v for k, v in data.items() if k not in ("drug", "regimen", "observations", "patient", "questions",
                                                         "description", "name")}
    patient = data.get("patient", {})         # a table, or an array of tables {time, WT, ...} (a timeline)
    kwargs["covariates"] = [dict(r) for r in patient] if isinstance(patient, list) else dict(patient)
    q = data.get("questions", {})
    for k in q:
        check_choice(f"{p.name}: questions", k, ["below", "keep_above", "next_dose_at"], ScenarioError)
    return {"drug": data["drug"], "regimen": data["regimen"], "observations": obs, **kwargs}, dict(q)


def answer_questions(res: ForecastResult, questions: dict) -> list[str]:
    """One sentence per question of a forecast file, with the numbers and their interval.

    Parameters
    ----------
    res : ForecastResult
        The forecast.
    questions : dict
        ``below`` and/or ``keep_above`` lists (see :func:`load_forecast_file`).

    Returns
    -------
    list of str
    """
    lines = []
    for q in questions.get("below", []):
        parts = str(q).split(None, 1)
        if len(parts) != 2:
            raise ScenarioError("questions.below", q, "'GROUP CONCENTRATION', e.g. 'ventricular 0.1 umol/L'")
        r = res.time_below(parts[0], parts[1])
        pct = f"{res.interval:.0%}"
        lines.append(f"{res.drug} in {parts[0]} CSF falls below {parts[1]} at {_h(r['map'])} after the first dose "
                     f"(MAP; {pct} interval {_h(r['lo'])} to {_h(r['hi'])})")
    at = questions.get("next_dose_at")
    for q in questions.get("keep_above", []):
        parts = str(q).split()
        if len(parts) < 5:
            raise ScenarioError("questions.keep_above", q, "'GROUP CONCENTRATION UNIT DURATION UNIT', e.g. "
                                "'ventricular 1 umol/L 48 h'")
        group, conc, dur = parts[0], " ".join(parts[1:3]), " ".join(parts[3:5])
        r = res.dose_for(group, conc, dur, at=at)
        if not math.isfinite(r["map"]):
            lines.append(f"no next dose at {_h(r['at'])} ({r['site']}) up to {_MAX_DOSE_SEARCHED:g} mg keeps this patient's "
                         f"{group} CSF above {conc} for {dur} (MAP)")
            continue
        d90 = (f"{r['dose_90']:.3g} mg does so" if math.isfinite(r["dose_90"])
               else f"no dose up to {_MAX_DOSE_SEARCHED:g} mg does so")
        lines.append(f"a next dose at {_h(r['at'])} ({r['site']}) of {r['map']:.3g} mg keeps this patient's {group} "
                     f"CSF above {conc} for {dur} (MAP); {d90} with 90% posterior probability")
    return lines


def _h(t: float) -> str:
    if not math.isfinite(t):
        return "beyond the simulated window"
    return f"{t:.0f} h ({t / 24:.1f} days)" if t >= 48 else f"{t:.1f} h"
