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

Every forecast is checked, and a failed check is a :class:`UnreliableForecastWarning` and a mark on the result
(``problems``) and on every answer (``reliable``, ``note``): a degenerate posterior sample (Kish's effective
sample size below 100, see :func:`~pkcsf.clinical.forecast_model._ess_needed`) leaves the intervals, ``dose_90``
and the posterior probabilities out (NaN); observations the population model cannot produce (a prior-predictive
chi-square check, p < 0.001, or a random effect at the 5 SD bound of the search: typically a unit slip) flag
every answer; a MAP answer outside its own posterior interval is flagged as such, never printed as consistent.

Questions a clinician asks are methods of the result: :meth:`ForecastResult.time_below` ("when will this
patient's ventricular methotrexate fall below 0.1 umol/L?") and :meth:`ForecastResult.dose_for` ("which dose
keeps him above 1 umol/L for 48 h?").

The residual error defaults (proportional 30%, additive 1% of the lowest observation) are an assumption:
assay CVs of methotrexate immunoassays are about 5-10%, the rest is model misspecification; give your own
(``error={"proportional": 0.15, "additive": "0.02 umol/L"}``).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pkcsf.clinical import cns

# the patient model (inputs, covariate timeline, predictions, Hessian) lives in its own module; its names
# stay importable from here
from pkcsf.clinical.forecast_model import (
    CONFLICT_P,
    DEFAULT_ERROR,  # noqa: F401 (re-exported)
    UnreliableForecastWarning,
    _asking,
    _conc_text,
    _error,
    _ess_needed,
    _hessian,
    _Individual,
    _is_number,
    _observations,
    _prior_check,
    _problems,
    _question_list,
    _split_question,
    _time_value,
    covariate_timeline,
)
from pkcsf.core.errors import PkcsfError, ScenarioError, check_choice
from pkcsf.core.units import parse_quantity

__all__ = ["forecast", "ForecastResult", "covariate_timeline", "UnreliableForecastWarning"]
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
        Effective sample size (Kish's) of the ``proposals`` importance-weighted posterior draws.
    ofv : float
        Objective at the MAP.
    proposals : int
        Number of weighted draws (3 x ``samples``).
    ess_needed : float
        The ESS below which the intervals are not reported (NaN): 100 for a 90% interval.
    prior_check_p : float
        p-value of the prior-predictive check of the observations (< 0.001: inconsistent with the model).
    problems : list of str
        What makes this forecast unreliable (each was also issued as an :class:`UnreliableForecastWarning`);
        empty when every check passed. ``reliable`` and ``interval_reliable`` summarise them.
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
    proposals: int = 0
    ess_needed: float = 0.0
    prior_check_p: float = math.nan
    problems: list = field(default_factory=list)
    _conflict: bool = field(default=False, repr=False)
    _model: object = field(default=None, repr=False)
    _draws: np.ndarray = field(default=None, repr=False)
    _map: np.ndarray = field(default=None, repr=False)

    def __repr__(self) -> str:
        return (f"ForecastResult({self.drug}; {len(self.observations)} observations; "
                f"{len(self.etas)} random effects; OFV {self.ofv:.2f}; ESS {self.ess:.0f} of {self.proposals}"
                + ("" if self.reliable else f"; NOT RELIABLE: {len(self.problems)} problem(s), see .problems") + ")")

    @property
    def interval_reliable(self) -> bool:
        """Whether the posterior sample is large enough for the intervals (ESS >= ``ess_needed``).

        Returns
        -------
        bool
        """
        return bool(self.ess >= self.ess_needed)

    @property
    def reliable(self) -> bool:
        """Whether every check passed (no ``problems``).

        Returns
        -------
        bool
        """
        return not self.problems

    def _notes(self, notes: list[str]) -> dict:
        if not self.interval_reliable:
            notes.insert(0, f"{self.interval:.0%} interval not reported: ESS {self.ess:.0f} of {self.proposals} "
                            f"posterior draws (at least {self.ess_needed:.0f} needed)")
        if self._conflict:
            notes.append("the observations are inconsistent with the model: check their units, times and sites")
        return {"reliable": not notes, "note": "; ".join(notes)}

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
            ``map`` (h, from the MAP profile), ``lo`` and ``hi`` (the interval from the posterior draws; NaN when
            the posterior sample is degenerate), ``threshold`` (in the result's unit), ``unit``,
            ``map_in_interval`` (None without an interval), ``reliable`` and ``note`` (why not: a degenerate sample,
            the MAP outside its own interval, observations inconsistent with the model). ``inf`` when it stays
            above within the simulated window.
        """
        thr = self._threshold(threshold)
        t, ipred, draws = self._curves(group)
        start = self._last_dose() if after is None else _time_value(after, "after")

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

        t_map, lo, hi, notes, inside = crossing(ipred), math.nan, math.nan, [], None
        if self.interval_reliable:
            d = np.array([crossing(c) for c in draws])
            a = (1 - self.interval) / 2
            fin = np.where(np.isfinite(d), d, np.nan)
            lo = float(np.nanquantile(fin, a)) if np.isfinite(d).mean() > a else math.inf
            hi = float(np.nanquantile(fin, 1 - a)) if np.isfinite(d).mean() >= 1 - a else math.inf
            inside = bool(lo <= t_map <= hi)
            if not inside:                # the MAP patient is not typical of his own posterior
                notes.append(f"the MAP ({_h(t_map)}) lies outside its {self.interval:.0%} posterior interval "
                             f"({_h(lo)} to {_h(hi)}): the posterior is far from normal")
        return {"map": t_map, "lo": lo, "hi": hi, "threshold": thr, "unit": self.unit, "map_in_interval": inside,
                **self._notes(notes)}

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
            ``map`` (mg, for the MAP patient), ``p_target_at_map_dose`` (posterior probability that this dose
            meets the target), ``dose_90`` (mg, the dose meeting it with 90% posterior probability; inf if above
            ``max_dose``; both NaN when the posterior sample is degenerate), ``at``, ``site``, ``map_in_interval``
            (False: the MAP dose is above ``dose_90`` or below the posterior's central interval; None without a
            posterior), ``reliable`` and ``note`` (why not, also observations inconsistent with the model).
        """
        from pkcsf.engine.dosing import Dose, Regimen

        m = self._model
        thr = self._threshold(threshold)
        dur = parse_quantity(duration, "time", field="duration", default_unit="h")
        if not (math.isfinite(dur) and dur > 0):
            raise ScenarioError("duration", duration, "a positive, finite duration, e.g. '48 h' (a number is in h)")
        if isinstance(max_dose, bool) or not isinstance(max_dose, numbers.Real) or not 0 < max_dose < math.inf:
            raise ScenarioError("max_dose", max_dose, "a positive, finite dose in mg")
        doses = list(m.reg.expand())
        last = max(doses, key=lambda d: d.time)
        times_d = sorted({d.time for d in doses})
        if at is None:     # one dosing interval after the last dose; after a single dose, 3.5 days (twice weekly)
            at = last.time + ((times_d[-1] - times_d[-2]) if len(times_d) > 1 else 84.0)
        else:
            at = _time_value(at, "at")
        site = last.site if route is None else m.setup.drug_site(route, field="route", error=ScenarioError,
                                                                   strict=True)
        grid = np.linspace(float(at), float(at) + dur, 97)
        j = m.groups.index(group) if group in m.groups else check_choice("group", group, m.groups, ScenarioError)
        # linear model: the concentration from the new dose scales with its amount; one unit-dose run plus the
        # background of the earlier doses gives every candidate dose at once
        unit_reg = Regimen([Dose(1.0, site, float(at))])
        etas = np.vstack([self._map, self._draws])
        back = m.predict(etas, times=grid)[:, :, j]
        one = m.predict(etas, reg=unit_reg, times=grid)[:, :, j]
        with np.errstate(divide="ignore", invalid="ignore"):
            # where the new dose does not reach the site yet, the earlier doses alone must keep the level (no dose
            # is needed there if they do; none would do if they do not). Before, every such time counted as
            # needing an infinite dose: "no dose up to 100 mg" for a patient far above the target
            per_time = np.where(one > 0, (thr - back) / one, np.where(back >= thr, 0.0, np.inf))
            need = np.nanmax(per_time, axis=1)   # mg per subject
        need = np.clip(need, 0.0, None)
        dose_map = float(need[0])
        post = need[1:]
        d90, p_map, notes, inside = math.nan, math.nan, [], None
        if self.interval_reliable:
            # a draw no dose can serve counts as the largest dose (an infinite one would make the quantile NaN)
            finite = np.where(np.isfinite(post), post, np.finfo(float).max)
            d90, p_map = float(np.quantile(finite, 0.9)), float(np.mean(post <= dose_map))
            inside = bool(d90 >= dose_map and p_map >= (1 - self.interval) / 2)
            if not inside:                      # the MAP patient is not typical of his own posterior
                notes.append(f"the MAP dose lies outside the posterior's central {self.interval:.0%} of doses "
                             f"({p_map:.0%} of the posterior needs at most it; {d90:.3g} mg meets the target with "
                             "90% posterior probability): the posterior is far from normal")
        return {"map": dose_map if dose_map <= max_dose else math.inf,
                "dose_90": d90 if not d90 > max_dose else math.inf,
                "p_target_at_map_dose": p_map, "at": float(at), "site": site, "map_in_interval": inside,
                **self._notes(notes)}

    def _threshold(self, threshold) -> float:
        """A concentration in the result's unit (a bare number, or a number without a unit, is in it)."""
        allowed = f"a positive, finite concentration, e.g. '0.1 {self.unit}' (a bare number is in {self.unit})"
        if isinstance(threshold, bool) or not isinstance(threshold, (str, numbers.Real)):
            raise ScenarioError("threshold", threshold, allowed)
        value = parse_quantity(threshold if isinstance(threshold, str) else float(threshold), "concentration",
                               field="threshold", mw=self._model.setup.mw, default_unit=self.unit)
        if not (math.isfinite(value) and value > 0):
            raise ScenarioError("threshold", threshold, allowed)
        return value * self._model.factor

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

        if self.interval_reliable:
            return forecast_plot(self, group=group, ax=ax)
        # a degenerate posterior sample: no band (the profile's interval is NaN), and the figure says why
        from pkcsf.plotting.style import SMALL_FONT

        p = self.profile.assign(lo=self.profile["IPRED"], hi=self.profile["IPRED"])
        axes = forecast_plot(dataclasses.replace(self, profile=p), group=group, ax=ax)
        groups = [group] if group else list(dict.fromkeys(self.observations["group"]))
        for a, g in zip(np.atleast_1d(axes), groups):
            for c in list(a.collections):
                c.remove()
            dv = self.observations.loc[self.observations["group"] == g, "DV"]
            if len(dv):                      # the measured values in view (the band no longer sets the top)
                a.set_ylim(a.get_ylim()[0], max(a.get_ylim()[1], 2 * float(dv.max())))
            a.legend(fontsize=SMALL_FONT, frameon=False, loc="upper right")
            a.text(0.02, 0.02, f"{self.interval:.0%} interval not reliable (ESS {self.ess:.0f} of {self.proposals})",
                   transform=a.transAxes, fontsize=SMALL_FONT, color="firebrick")
        return axes


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
        The doses the patient received (and any planned ones), e.g. ``"12 mg ommaya twice weekly x 1 week"``.
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
        Posterior draws (sampling importance resampling, from 3 x ``samples`` weighted proposals).
    seed : int
        Random seed of the posterior draws.

    Returns
    -------
    ForecastResult
        With ``problems`` (empty when every check passed).

    Warns
    -----
    UnreliableForecastWarning
        A degenerate posterior sample (effective sample size below ``ess_needed``: the intervals are NaN), or
        observations inconsistent with the population model (a prior-predictive check with p < 0.001, or a
        random effect at the search bound: check the units).

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
    bound = 5 * np.sqrt(np.maximum(np.diag(model.omega), 1e-12))     # the search stays within 5 SD of the prior
    for start in (np.zeros(k),):
        r = minimize(fun_grad, start, jac=True, method="L-BFGS-B", bounds=[(-b, b) for b in bound],
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
    ess = float(1.0 / np.sum(w ** 2))       # Kish's effective sample size of the weighted proposals
    ess_needed = _ess_needed(interval)      # below it the intervals are not reported (see _ess_needed)
    idx = rng.choice(len(w), size=samples, replace=True, p=w)
    draws = prop_draws[idx]
    # profiles
    C_map = model.predict(e_map[None, :])[0]
    C_typ = model.predict(np.zeros((1, k)))[0]
    uniq, inv = np.unique(draws, axis=0, return_inverse=True)   # resampling repeats draws: solve each once
    C_draws = model.predict(uniq)[np.ravel(inv)]
    a = (1 - interval) / 2
    lo, med, hi = np.quantile(C_draws, [a, 0.5, 1 - a], axis=0)
    if ess < ess_needed:                    # a degenerate sample: its quantiles are not an interval
        lo, med, hi = (np.full_like(x, np.nan) for x in (lo, med, hi))
    T, G = C_map.shape
    profile = pd.DataFrame({"time": np.repeat(times, G), "group": np.tile(model.groups, T),
                            "PRED": C_typ.ravel(), "IPRED": C_map.ravel(), "lo": lo.ravel(), "median": med.ravel(),
                            "hi": hi.ravel()})
    ipred = C_map[oi, og]
    obs_out = obs.rename(columns={"value": "DV"}).assign(PRED=C_typ[oi, og], IPRED=ipred,
                                                        IWRES=(y - ipred) / np.sqrt((prop * ipred) ** 2 + add ** 2))
    names = [re.name for re in model.random_effects]
    par = model.params(e_map[None, :]).iloc[0][list(setup.parameters)]
    q, p_check, worst = _prior_check(y, ipred, prop, add, e_map, model.omega_inv)
    at_bound = [n for n, e, b, v in zip(names, e_map, bound, np.diag(model.omega)) if v > 1e-12 and abs(e) >= b * 0.999]
    problems = _problems(ess, len(w), ess_needed, interval, samples, (q, p_check, len(y)), obs_out.iloc[worst],
                         at_bound, unit)
    for msg in problems:
        warnings.warn(msg, UnreliableForecastWarning, stacklevel=2)
    res = ForecastResult(setup.drug.name, unit, obs_out, pd.Series(e_map, index=names),
                         pd.Series(np.sqrt(np.clip(np.diag(cov), 0, None)), index=names),
                         par, pd.Series(model.typical), profile, float(interval), ess, ofv_map,
                         proposals=len(w), ess_needed=ess_needed, prior_check_p=p_check, problems=problems,
                         _conflict=bool(p_check < CONFLICT_P or at_bound), _model=model, _draws=draws, _map=e_map)
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
    try:                                      # checked here to name the file's table
        covariate_timeline(kwargs["covariates"])
    except PkcsfError as e:
        raise type(e)(e.field.replace("covariates", f"{p.name}: patient", 1), e.value, e.allowed, e.fix) from None
    q = data.get("questions", {})
    for k in q:
        check_choice(f"{p.name}: questions", k, ["below", "keep_above", "next_dose_at"], ScenarioError)
    return {"drug": data["drug"], "regimen": data["regimen"], "observations": obs, **kwargs}, dict(q)


def answer_questions(res: ForecastResult, questions: dict) -> list[str]:
    """One sentence per question of a forecast file, with the numbers, their unit and their interval.

    A bare number is a concentration in the forecast's unit (``res.unit``) and a duration in h. An answer that
    is not reliable (see :meth:`ForecastResult.time_below`) says so and why, in the sentence.

    Parameters
    ----------
    res : ForecastResult
        The forecast.
    questions : dict
        ``below`` and/or ``keep_above`` lists, ``next_dose_at`` (see :func:`load_forecast_file`).

    Returns
    -------
    list of str

    Raises
    ------
    ScenarioError
        A question that cannot be read, or a non-positive or non-finite level or duration, or a negative
        ``next_dose_at``; the error names the question (``questions.keep_above[0]``).
    """
    lines = []
    pct = f"{res.interval:.0%}"
    for i, q in enumerate(_question_list(questions, "below")):
        where = f"questions.below[{i}]"
        group, (conc,) = _split_question(q, where, 1, f"'GROUP CONCENTRATION', e.g. 'ventricular 0.1 {res.unit}'")
        r = _asking(where, lambda: res.time_below(group, conc))
        shown = bool(r["map_in_interval"])      # never an interval the MAP answer lies outside
        lines.append(f"{res.drug} in {_space(group)} falls below {_conc_text(conc, res.unit)} at {_h(r['map'])} after "
                     f"the first dose (MAP" + (f"; {pct} interval {_h(r['lo'])} to {_h(r['hi'])}" if shown else "")
                     + ")" + (f"; NOT RELIABLE: {r['note']}" if r["note"] else ""))
    at = questions.get("next_dose_at")
    if at is not None:
        at = _time_value(at, "questions.next_dose_at")
    for i, q in enumerate(_question_list(questions, "keep_above")):
        where = f"questions.keep_above[{i}]"
        group, (conc, dur) = _split_question(q, where, 2, "'GROUP CONCENTRATION DURATION', e.g. 'ventricular 1 "
                                             f"{res.unit} 48 h'")
        r = _asking(where, lambda: res.dose_for(group, conc, dur, at=at))
        conc, dur = _conc_text(conc, res.unit), (f"{dur} h" if _is_number(dur) else dur)
        flag = f"; NOT RELIABLE: {r['note']}" if r["note"] else ""
        if not math.isfinite(r["map"]):
            lines.append(f"no next dose at {_h(r['at'])} ({r['site']}) up to {_MAX_DOSE_SEARCHED:g} mg keeps this patient's "
                         f"{_space(group)} above {conc} for {dur} (MAP){flag}")
            continue
        d90 = ("" if not r["map_in_interval"] else
               f"; {r['dose_90']:.3g} mg does so with 90% posterior probability" if math.isfinite(r["dose_90"])
               else f"; no dose up to {_MAX_DOSE_SEARCHED:g} mg does so with 90% posterior probability")
        lines.append(f"a next dose at {_h(r['at'])} ({r['site']}) of {r['map']:.3g} mg keeps this patient's "
                     f"{_space(group)} above {conc} for {dur} (MAP){d90}{flag}")
    return lines


def _space(group: str) -> str:
    """A read-out group as the answers name it: 'plasma', 'ventricular CSF', 'brain_ecf' as is."""
    return group if group in ("plasma", "brain_ecf") else f"{group} CSF"


def _h(t: float) -> str:
    if not math.isfinite(t):
        return "beyond the simulated window"
    return f"{t:.0f} h ({t / 24:.1f} days)" if t >= 48 else f"{t:.1f} h"
