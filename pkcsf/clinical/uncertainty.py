"""Parameter uncertainty from a calibration, and the route comparison with its interval.

A calibration record (``parameters/calibration/<name>.toml``, written by :mod:`pkcsf.clinical.calibration`) holds
the fitted values and the approximate covariance of their logarithms (Gauss-Newton: ``(J'J)^-1 s^2`` from the
least-squares Jacobian, residual variance from the fit). :func:`calibration_draws` samples parameter sets from the
posterior of the calibration objective (or its linearisation); :func:`route_comparison_interval`
simulates a dose by lumbar puncture and by Ommaya for every set and reports the lumbar/Ommaya AUC ratio in a CSF
space (the lateral ventricles by default) and the time above a threshold, each with its interval;
:func:`dose_comparison_interval` does the same for repeated doses of one route at several dose levels (e.g.
osimertinib's CSF/plasma ratio at 80 vs 160 mg daily)::

    from pkcsf.clinical.uncertainty import route_comparison_interval
    tab = route_comparison_interval("methotrexate", "12 mg", n=200, seed=1)     # default model, 0-7 days, lv
    tab[["quantity", "typical", "median", "lo", "hi"]]

In populations, ``Arm(..., uncertainty="osimertinib_csf")`` gives every virtual patient his own parameter set from
the calibration's uncertainty (:func:`apply_uncertainty`, as rxode2's ``thetaMat`` with one draw per subject), so
the bands combine parameter uncertainty with between-patient variability.

The interval reflects the calibration's parameter uncertainty only (the data it was fitted to, their number and
scatter), not between-patient variability and not the structural uncertainty between mechanisms:
:func:`route_comparison_mechanisms` gives the same comparison under the mechanisms that were fitted to the same data
and not adopted (comparison calibrations; docs/model.md compares them).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.calibration import CALIBRATIONS, evaluate
from pkcsf.clinical.position import parse_position, simulate_position
from pkcsf.clinical.posterior import _log_likelihood, _log_space, _record, stored_draws
from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.units import parse_quantity
from pkcsf.engine.dosing import Dose
from pkcsf.engine.simulate import simulate

__all__ = ["calibration_draws", "route_comparison_interval", "route_comparison_mechanisms",
           "dose_comparison_interval", "check_uncertainty",
           "usable_calibrations", "concerns", "uncertainty_effects", "apply_uncertainty"]


def calibration_draws(calibration: str = "csf_transport_v3", n: int = 200, seed: int = 1, *,
                      method: str = "posterior", proposals: int | None = None) -> pd.DataFrame:
    """Parameter sets drawn from a calibration's uncertainty.

    Parameters
    ----------
    calibration : str
        Name of a calibration with a ``[covariance]`` in its record.
    n, seed : int
        Number of draws and random seed (same seed, same draws).
    method : {"posterior", "linearized"}
        ``"linearized"``: log(values) ~ N(log(fit), cov_log) (Gauss-Newton covariance of the record), truncated
        at the bounds -- fast, but where the data hardly inform a parameter the linearisation spreads draws over
        fits that the data exclude. ``"posterior"`` (default): sampling-importance-resampling of the posterior
        of the calibration's own objective -- likelihood exp(-sum(log(pred/obs)^2) / (2 s^2)), s^2 = cost/(n_data -
        n_free) of the fit, flat prior in log-parameters within the bounds -- with the linearised distribution
        (variances capped at 4, i.e. a factor e^2 per SD) as proposal; every proposal is simulated against the
        calibration data. The effective sample size is in ``.attrs["ess"]``. When the calibration has stored
        posterior draws (``parameters/calibration/<name>_posterior.csv``, written by ``python -m
        pkcsf.clinical.posterior NAME``: an MCMC sample of the same posterior, many more simulations), they are
        used instead, at once (``.attrs["stored"]``).
    proposals : int, optional
        Number of proposals for ``"posterior"`` (default ``max(3 n, 60)``).

    Returns
    -------
    DataFrame
        One column per fitted value (the record's keys, file units), row 0 the fitted (typical) values, then ``n``
        draws.
    """
    check_choice("method", method, ["linearized", "posterior"], ParameterError)
    if int(n) < 1:
        raise ParameterError("n", n, "must be a whole number of draws >= 1")
    rec = _record(calibration)
    cov_names, cov, mu, lo, hi = _log_space(rec)
    rng = np.random.default_rng(seed)
    w, v = np.linalg.eigh((cov + cov.T) / 2.0)
    if method == "linearized":
        root = v * np.sqrt(np.clip(w, 0.0, None))
        x = np.clip(mu + rng.standard_normal((int(n), len(cov_names))) @ root.T, lo, hi)
        out = pd.DataFrame(np.exp(np.vstack([mu, x])), columns=cov_names)
        out.attrs["ess"] = float(n)
        return out
    stored = stored_draws(calibration)
    if stored is not None:
        # the stored posterior sample (python -m pkcsf.clinical.posterior NAME): n of its draws, without
        # replacement while there are enough of them
        k = len(stored)
        pick = rng.permutation(k)[:int(n)] if int(n) <= k else rng.integers(0, k, size=int(n))
        x = stored[cov_names].to_numpy(dtype=float)[pick]
        out = pd.DataFrame(np.vstack([np.exp(mu), x]), columns=cov_names)
        out.attrs.update({"ess": float(stored.attrs["ess"]), "proposals": int(stored.attrs["steps"]) * int(stored.attrs["walkers"]),
                          "stored": True})
        return out
    # posterior by sampling-importance-resampling; proposal = linearised normal with capped variances, truncated
    # at the bounds by rejection (the truncation constant is the same for every proposal and cancels)
    wp = np.clip(w, 1e-6, 4.0)
    root = v * np.sqrt(wp)
    prec = (v / wp) @ v.T
    m = int(proposals) if proposals is not None else max(3 * int(n), 60)
    xs = []
    while len(xs) < m:
        x = mu + rng.standard_normal((2 * m, len(cov_names))) @ root.T
        xs.extend(x[np.all((x >= lo) & (x <= hi), axis=1)])
    x = np.asarray(xs[:m])
    loglik, _ = _log_likelihood(calibration, rec, cov_names)
    logw = np.empty(m)
    for i in range(m):
        d = x[i] - mu
        logw[i] = loglik(x[i]) + 0.5 * float(d @ prec @ d)
    wts = np.exp(logw - np.max(logw[np.isfinite(logw)]))
    wts[~np.isfinite(wts)] = 0.0
    wts /= wts.sum()
    pick = rng.choice(m, size=int(n), replace=True, p=wts)
    out = pd.DataFrame(np.exp(np.vstack([mu, x[pick]])), columns=cov_names)
    out.attrs["ess"] = float(1.0 / np.sum(wts ** 2))
    out.attrs["proposals"] = m
    return out


def _changes_for(calibration: str, drug_name: str, row: pd.Series) -> dict:
    """Model-parameter values (base units) of one draw that apply to ``drug_name``."""
    cal = CALIBRATIONS[calibration]
    dup = {f.name for f in cal.free if sum(g.name == f.name for g in cal.free) > 1}
    out = {k: v for k, v, drugs in cal.fixed if not drugs or drug_name in drugs}
    for f in cal.free:
        key = f.label if f.name in dup else f.name
        copies = {a.split("/", 1)[1] for a in f.also if a.startswith("drugs/")}
        # a value kept in a drug's file belongs to that drug even when the fit names no drug (one-drug fits)
        owners = set(f.drugs) or ({f.file.split("/", 1)[1]} if f.file.startswith("drugs/") else set())
        if owners and drug_name not in owners and drug_name not in copies:
            continue
        out[f.as_name or f.name] = float(row[key]) * f.factor
        for t in f.tie:
            out[t] = float(row[key]) * f.factor
    return out


def _parameter_table(st: cns.Setup, calibration: str, draws: pd.DataFrame) -> pd.DataFrame:
    """One row of model parameters per draw: the set-up's values with the draw's calibrated ones."""
    base = dict(st.parameters)
    rows = []
    for _, r in draws.iterrows():
        p = dict(base)
        p.update({k: v for k, v in _changes_for(calibration, st.drug.name, r).items() if k in p})
        rows.append(p)
    return pd.DataFrame(rows, columns=list(st.model.parameter_names))


#: the calibration of each CNS model version's CSF transport (the route comparison's default)
ROUTE_CALIBRATION = {"v2": "csf_transport", "v3": "csf_transport_v3"}


def route_comparison_interval(drug: str | cns.Drug = "methotrexate", dose: str | float = "12 mg", *,
                              model: str | None = None, calibration: str | None = None, n: int = 200, seed: int = 1, days: float = 7.0,
                              threshold: str | float = "1 umol/L", site: str = "lv", level: float = 0.90,
                              method: str = "posterior", proposals: int | None = None,
                              position: str | None = None) -> pd.DataFrame:
    """Lumbar vs Ommaya for one dose, with the calibration's parameter uncertainty.

    Parameters
    ----------
    drug : str or Drug
        Drug name or object (default methotrexate).
    dose : str or float
        One bolus (``"12 mg"``; a number is mg), given by lumbar puncture and, separately, by Ommaya.
    model : {"v2", "v3"}, optional
        CNS model version (default :data:`pkcsf.clinical.cns.DEFAULT_CNS_MODEL`).
    calibration : str, optional
        Calibration whose record supplies the fitted values and their uncertainty (default: the model's own,
        :data:`ROUTE_CALIBRATION`; ``csf_transport`` ships its sampled posterior, so ``method="posterior"`` is
        instant for the default model).
    n, seed : int
        Number of parameter draws and the random seed (same seed, same draws).
    days : float
        Window of the AUC and of the time above the threshold, from the dose.
    threshold : str or float
        Concentration for the time above (``"1 umol/L"``; a number is mg/L).
    site : str
        CSF compartment read out (``"lv"`` lateral ventricles; any compartment name, e.g. ``"spinal_t3t7"``).
    level : float
        Central interval probability (0.90: 5th-95th percentiles).
    method, proposals :
        How the parameter sets are drawn (see :func:`calibration_draws`).
    position : str, optional
        When the patient is upright after the lumbar dose (``"upright 1-24 h"``, :mod:`pkcsf.clinical.position`);
        default lying, the calibrated state. The posture factor itself is held at its fitted value.

    Returns
    -------
    DataFrame
        One row per quantity -- ``auc_ratio_lumbar_over_ommaya``, ``time_above_h_lumbar``,
        ``time_above_h_ommaya``, ``auc_lumbar_mg_h_per_L``, ``auc_ommaya_mg_h_per_L`` -- with ``typical`` (fitted
        values), ``median``, ``lo``, ``hi``, ``level``, ``n``, ``site``, ``window_h``, ``calibration``, ``model``.
        The per-draw values are in ``.attrs["draws"]``; ``.attrs["p_lumbar_longer"]`` is the share of the draws
        in which the lumbar dose keeps the site above the threshold longer than the Ommaya dose.
    """
    if not 0.0 < float(level) < 1.0:
        raise ParameterError("level", level, "must be a probability between 0 and 1 (0.90 for a 90% interval)")
    if not float(days) > 0.0:
        raise ParameterError("days", days, "must be > 0")
    model = model or cns.DEFAULT_CNS_MODEL
    check_choice("model", model, sorted(ROUTE_CALIBRATION), ParameterError)
    calibration = calibration or ROUTE_CALIBRATION[model]
    st = cns.setup(drug, model=model)
    if site not in st.model.compartment_names:
        check_choice("site", site, sorted(st.model.compartment_names), ParameterError)
    mw = st.mw
    thr = float(threshold) if isinstance(threshold, (int, float)) else parse_quantity(threshold, "concentration", mw=mw)
    draws = calibration_draws(calibration, n=n, seed=seed, method=method, proposals=proposals)
    params = _parameter_table(st, calibration, draws)
    t_end = 24.0 * float(days)
    times = np.unique(np.concatenate([np.arange(0.0, min(48.0, t_end), 0.02), np.arange(48.0, t_end, 0.1), [t_end]]))
    times = times[times <= t_end]
    out = {}
    for route in ("lumbar", "ommaya"):
        if route == "lumbar" and position is not None:
            res = simulate_position(st, Dose(dose, st.sites[route]), times, position, params, outputs=[site])
        else:
            res = simulate(st.model, Dose(dose, st.sites[route]), params, times=times, outputs=[site])
        c = res.concentration(site)                       # (N, T) mg/L
        out[f"auc_{route}"] = np.trapezoid(c, times, axis=1)
        above = c[:, :-1] > thr
        out[f"above_{route}"] = (np.diff(times)[None, :] * above).sum(axis=1)
    q = {"auc_ratio_lumbar_over_ommaya": out["auc_lumbar"] / out["auc_ommaya"],
         "time_above_h_lumbar": out["above_lumbar"], "time_above_h_ommaya": out["above_ommaya"],
         "auc_lumbar_mg_h_per_L": out["auc_lumbar"], "auc_ommaya_mg_h_per_L": out["auc_ommaya"]}
    a = (1.0 - float(level)) / 2.0
    tab = pd.DataFrame([{"quantity": k, "typical": float(v[0]), "median": float(np.median(v[1:])),
                         "lo": float(np.quantile(v[1:], a)), "hi": float(np.quantile(v[1:], 1.0 - a)),
                         "level": float(level), "n": int(len(v) - 1), "site": site, "window_h": t_end,
                         "calibration": calibration, "model": model, "method": method,
                         "position": parse_position(position).text,
                         "ess": float(draws.attrs.get("ess", np.nan))} for k, v in q.items()])
    tab.attrs["draws"] = pd.concat([draws.reset_index(drop=True), pd.DataFrame(q)], axis=1)
    tab.attrs["p_lumbar_longer"] = float(np.mean(out["above_lumbar"][1:] > out["above_ommaya"][1:]))
    return tab


#: comparison fits of the default model's CSF transport whose mechanism changes the route answer (docs/model.md,
#: "Decisions", 4 Dec 2026), with a label for readers
ROUTE_MECHANISMS = {"csf_transport": "as shipped (CSF-side binding site; tissue loss within the published 0.5-5 h)",
                    "csf_transport_tissue_free": "brain tissue as a slow reservoir (~50 h; beyond the published range)",
                    "csf_transport_barrier_site": "blood-to-CSF entry spread beyond the choroid plexus"}


def _shipped_cost(name: str) -> float:
    """A calibration's objective on its data with the model as used: the record's cost, or, for a fit that held a
    value another calibration fits afterwards (csf_transport: methotrexate's CSF-side binding site), the cost with
    that value as shipped.
    """
    if not CALIBRATIONS[name].held:
        return float(_record(name)["calibration"]["cost"])
    return float(evaluate(name, held=False)["cost"])


def route_comparison_mechanisms(drug: str | cns.Drug = "methotrexate", dose: str | float = "12 mg", *,
                                calibrations: dict | None = None, days: float = 7.0,
                                thresholds: tuple = ("1 umol/L", "0.1 umol/L"), site: str = "lv") -> pd.DataFrame:
    """The route comparison at the fitted values of competing mechanisms: structural uncertainty.

    Each calibration (the shipped one and comparison fits to the same data with another mechanism) is simulated at
    its own fitted values (:func:`route_comparison_interval`'s ``typical``), so the rows differ only by mechanism.
    The posterior interval of one calibration does not contain this spread.

    Parameters
    ----------
    drug : str or Drug
        Drug name or object (its CSF transport must be what the calibrations fit: methotrexate, pemetrexed).
    dose : str or float
        One bolus, given by lumbar puncture and, separately, by Ommaya.
    calibrations : dict, optional
        ``{calibration name: label}`` (default :data:`ROUTE_MECHANISMS`).
    days : float
        Window from the dose.
    thresholds : tuple of str or float
        Concentrations for the hours above (``"1 umol/L"``; a number is mg/L).
    site : str
        CSF compartment read out.

    Returns
    -------
    DataFrame
        One row per calibration: ``calibration``, ``mechanism``, ``cost`` (its objective on the same data, with the
        model as used: for csf_transport with methotrexate's CSF-side binding site, which its fit held at 0),
        ``auc_ratio_lumbar_over_ommaya`` and, per threshold, ``hours_above_<threshold>_lumbar`` and ``_ommaya``.
    """
    rows = []
    for cal, label in (calibrations or ROUTE_MECHANISMS).items():
        row = {"calibration": cal, "mechanism": label, "cost": _shipped_cost(cal)}
        for thr in thresholds:
            t = route_comparison_interval(drug, dose, calibration=cal, method="linearized", n=1, days=days,
                                          threshold=thr, site=site).set_index("quantity")["typical"]
            row["auc_ratio_lumbar_over_ommaya"] = float(t["auc_ratio_lumbar_over_ommaya"])
            row[f"hours_above_{thr}_lumbar"] = float(t["time_above_h_lumbar"])
            row[f"hours_above_{thr}_ommaya"] = float(t["time_above_h_ommaya"])
        rows.append(row)
    return pd.DataFrame(rows)


def dose_comparison_interval(drug: str | cns.Drug = "osimertinib", doses: tuple = ("80 mg", "160 mg"), *,
                             route: str = "oral", every_h: float = 24.0, days: int = 30,
                             calibration: str = "osimertinib_csf", variant: str = "linear", site: str = "spinal_lumbar",
                             ref: str = "plasma", pathologies: dict | None = None, n: int = 200, seed: int = 1,
                             level: float = 0.90, method: str = "linearized",
                             proposals: int | None = None) -> pd.DataFrame:
    """Steady-state exposure ratio of a CSF space to plasma at several dose levels, with the calibration's
    parameter uncertainty (e.g. osimertinib 80 vs 160 mg daily: does the CSF/plasma ratio rise with dose?).

    Each parameter set of :func:`calibration_draws` is simulated for every dose level (``doses`` every
    ``every_h`` hours for ``days`` days by ``route``); the ratio is AUC(site)/AUC(ref) over the last dosing interval.
    The same draws serve every dose, so the ratio between dose levels (``ratio_change_<last>_vs_<first>``) has its
    own, narrower interval: it answers "does the ratio depend on dose" without the uncertainty shared by both
    levels.

    Parameters
    ----------
    drug : str or Drug
        Drug name or object.
    doses : tuple of str or float
        Dose levels (``"80 mg"``; a number is mg), at least one.
    route : str
        Dosing route of the repeated doses (``"oral"``, ``"iv"``, ``"lumbar"`` ...).
    every_h : float
        Dosing interval (h).
    days : int
        Number of doses is ``days * 24 / every_h``; the last interval is read out.
    calibration : str
        Calibration whose record supplies the fitted values and their covariance; its model version and variant
        must be the ones simulated.
    variant : {"linear", "saturable"}
        CSF efflux description.
    site, ref : str
        Compartments whose exposure ratio is reported (``site`` / ``ref``).
    pathologies : dict, optional
        As :func:`pkcsf.clinical.cns.setup` (the osimertinib data come from patients with leptomeningeal
        disease: ``{"leptomeningeal_disease": True}``).
    n, seed : int
        Number of parameter draws and the random seed (same seed, same draws).
    level : float
        Central interval probability (0.90: 5th-95th percentiles).
    method, proposals :
        How the parameter sets are drawn (see :func:`calibration_draws`; default ``"linearized"``).

    Returns
    -------
    DataFrame
        One row per quantity -- ``ratio_<dose>`` per dose level and, with two or more levels,
        ``ratio_change_<last>_vs_<first>`` -- with ``typical`` (fitted values), ``median``, ``lo``, ``hi``,
        ``level``, ``n``, ``site``, ``ref``, ``calibration``, ``variant``, ``method``, ``at_bound`` (fitted values of
        the record at a bound of their fit: the covariance does not describe their uncertainty there, so the
        interval is conditional on them). The per-draw values are in ``.attrs["draws"]``.

    Raises
    ------
    ParameterError
        An empty dose list, a level outside (0, 1), days or interval not > 0, a compartment the model lacks, or a
        calibration fitted with another variant or model version.
    """
    if not 0.0 < float(level) < 1.0:
        raise ParameterError("level", level, "must be a probability between 0 and 1 (0.90 for a 90% interval)")
    if not doses:
        raise ParameterError("doses", doses, "give at least one dose level, e.g. ('80 mg', '160 mg')")
    if not float(every_h) > 0.0:
        raise ParameterError("every_h", every_h, "must be a dosing interval in hours > 0")
    if isinstance(days, bool) or not isinstance(days, (int, np.integer)) or days < 1:
        raise ParameterError("days", days, "must be a whole number of days >= 1")
    rec = _record(calibration)
    cal_variant = rec["calibration"].get("variant", "linear")
    cal_model = rec["calibration"].get("model", "v2")
    if cal_variant != variant:
        raise ParameterError("variant", variant, f"calibration {calibration!r} was fitted with variant "
                                                 f"{cal_variant!r}: use that variant or its calibration")
    st = cns.setup(drug, variant=variant, pathologies=pathologies, model=cal_model)
    for field, name in (("site", site), ("ref", ref)):
        if name not in st.model.compartment_names:
            check_choice(field, name, sorted(st.model.compartment_names), ParameterError)
    if route not in st.sites:
        check_choice("route", route, sorted(st.sites), ParameterError)
    draws = calibration_draws(calibration, n=n, seed=seed, method=method, proposals=proposals)
    params = _parameter_table(st, calibration, draws)
    n_doses = int(round(float(days) * 24.0 / float(every_h)))
    t_last = float(every_h) * (n_doses - 1)
    times = np.unique(np.concatenate([[0.0], np.linspace(t_last, t_last + float(every_h), 241)]))
    sel = times >= t_last
    ratios = {}
    labels = []
    for dose in doses:
        label = dose if isinstance(dose, str) else f"{float(dose):g} mg"
        labels.append(label.replace(" ", ""))
        res = simulate(st.model, Dose(dose, st.sites[route], ii=float(every_h), addl=n_doses - 1), params,
                       times=times, outputs=[site, ref])
        a_site = np.trapezoid(res.concentration(site)[:, sel], times[sel], axis=1)
        a_ref = np.trapezoid(res.concentration(ref)[:, sel], times[sel], axis=1)
        ratios[f"ratio_{labels[-1]}"] = a_site / a_ref
    q = dict(ratios)
    if len(labels) > 1:
        q[f"ratio_change_{labels[-1]}_vs_{labels[0]}"] = ratios[f"ratio_{labels[-1]}"] / ratios[f"ratio_{labels[0]}"]
    a = (1.0 - float(level)) / 2.0
    at_bound = ", ".join(rec["calibration"].get("at_bound", []))
    tab = pd.DataFrame([{"quantity": k, "typical": float(v[0]), "median": float(np.median(v[1:])),
                         "lo": float(np.quantile(v[1:], a)), "hi": float(np.quantile(v[1:], 1.0 - a)),
                         "level": float(level), "n": int(len(v) - 1), "site": site, "ref": ref,
                         "calibration": calibration, "variant": variant, "method": method, "at_bound": at_bound,
                         "ess": float(draws.attrs.get("ess", np.nan))} for k, v in q.items()])
    tab.attrs["draws"] = pd.concat([draws.reset_index(drop=True), pd.DataFrame(q)], axis=1)
    return tab


# ------------------------------------------------------------------ parameter uncertainty in populations
#: size of the pool of calibration draws a population's subjects pick from (default)
UNCERTAINTY_POOL = 1000


def check_uncertainty(spec: object, field: str) -> dict:
    """Check an arm's parameter-uncertainty option.

    Parameters
    ----------
    spec : str or dict
        A calibration name (``"osimertinib_csf"``) or ``{"calibration": name, "method": "linearized" |
        "posterior", "pool": 1000}``.
    field : str
        Where it came from, for the error message (``arms['80 mg'].uncertainty``).

    Returns
    -------
    dict
        ``{"calibration", "method", "pool"}``.

    Raises
    ------
    ParameterError
        Not a name or table, an unknown calibration or key, a calibration whose record has no covariance, one with
        a fitted value at a bound of its fit (the covariance does not describe that value's uncertainty, so draws
        would understate it: refused rather than giving a too-narrow band), with method "linearized" one whose
        data hardly determine a fitted value (standard error of its log above :data:`MAX_SE_LOG`), or a calibration of another CNS model
        version than the scenarios simulate.
    """
    if isinstance(spec, str):
        spec = {"calibration": spec}
    if not isinstance(spec, dict):
        raise ParameterError(field, spec, "must be a calibration name (e.g. 'osimertinib_csf') or a table "
                                          "{calibration = ..., method = 'linearized' | 'posterior', pool = 1000}")
    for k in spec:
        check_choice(f"{field} key", k, ["calibration", "method", "pool"], ParameterError)
    name = spec.get("calibration")
    check_choice(f"{field}.calibration", name, sorted(CALIBRATIONS), ParameterError)
    method = spec.get("method", "linearized")
    check_choice(f"{field}.method", method, ["linearized", "posterior"], ParameterError)
    pool = spec.get("pool", UNCERTAINTY_POOL)
    if isinstance(pool, bool) or not isinstance(pool, (int, np.integer)) or not 10 <= pool <= 100_000:
        raise ParameterError(f"{field}.pool", pool, "must be a whole number of parameter sets from 10 to 100000")
    try:
        rec = _record(name)
    except ParameterError as e:
        raise ParameterError(f"{field}.calibration", name, e.allowed) from None
    meta = rec["calibration"]
    if meta.get("comparison_only"):
        raise ParameterError(f"{field}.calibration", name, "is a comparison fit whose values are not the shipped "
                                                           "ones; use the calibration behind the parameter files")
    if meta.get("at_bound"):
        raise ParameterError(f"{field}.calibration", name,
                             f"has fitted values at a bound of the fit ({', '.join(meta['at_bound'])}): its covariance "
                             "does not describe their uncertainty, so the draws would give too narrow a band. "
                             "Calibrations that can be used: " + ", ".join(usable_calibrations()))
    if meta.get("model", "v2") != cns.DEFAULT_CNS_MODEL:
        raise ParameterError(f"{field}.calibration", name, f"was fitted with CNS model {meta.get('model')!r}; "
                                                           f"scenarios simulate {cns.DEFAULT_CNS_MODEL!r}")
    vague = _undetermined(rec) if method == "linearized" else []
    if vague:
        raise ParameterError(f"{field}.calibration", name,
                             f"has parameters its data hardly determine ({', '.join(vague)}: standard error of the "
                             f"log value above {MAX_SE_LOG:g}): a linearised covariance that wide gives meaningless "
                             "draws (method = 'posterior' reweights them by the likelihood). Calibrations that can be used: " + ", ".join(usable_calibrations()))
    return {"calibration": name, "method": method, "pool": int(pool)}


def usable_calibrations() -> list:
    """Calibrations whose parameter uncertainty populations can draw from (a covariance, nothing at a bound,
    the scenarios' CNS model, not a comparison fit).

    Returns
    -------
    list of str
    """
    out = []
    for name in sorted(CALIBRATIONS):
        try:
            rec = _record(name)
        except ParameterError:
            continue
        m = rec["calibration"]
        if (not m.get("at_bound") and not m.get("comparison_only") and not _undetermined(rec)
                and m.get("model", "v2") == cns.DEFAULT_CNS_MODEL):
            out.append(name)
    return out


#: largest standard error of log(value) a population may draw from (e^2 = 7.4-fold at one SE): beyond it the
#: linearised covariance says the data do not determine the value, and draws from it would be meaningless
MAX_SE_LOG = 2.0


def _undetermined(rec: dict) -> list:
    """Fitted parameters of a calibration record whose SE of log(value) exceeds :data:`MAX_SE_LOG`."""
    out = []
    for k, f in rec.get("fitted", {}).items():
        se = f.get("se_log")
        if isinstance(se, (int, float)) and not isinstance(se, bool) and (not math.isfinite(se) or se > MAX_SE_LOG):
            out.append(k)
    return out


def concerns(calibration: str, setup: cns.Setup) -> bool:
    """Whether a calibration fits any parameter of this set-up's drug (or of the physiology it uses).

    Parameters
    ----------
    calibration : str
        Calibration name.
    setup : Setup
        A drug's set-up.

    Returns
    -------
    bool
    """
    rec = _record(calibration)
    row = pd.Series({k: v["value"] for k, v in rec["fitted"].items()})
    return any(k in setup.parameters for k in _changes_for(calibration, setup.drug.name, row))


def uncertainty_effects(setup: cns.Setup, spec: dict, seed: int) -> tuple[list, np.ndarray] | None:
    """The pool of parameter sets subjects draw from, as factors on the setup's values.

    Parameters
    ----------
    setup : Setup
        The arm's setup for one drug.
    spec : dict
        From :func:`check_uncertainty`.
    seed : int
        The scenario's seed (the pool is the same for the same seed).

    Returns
    -------
    (list of str, ndarray) or None
        Parameter names and factors, shape (pool, names): draw / fitted value; None when the calibration concerns
        no parameter of this drug.
    """
    name = spec["calibration"]
    draws = calibration_draws(name, n=spec["pool"], seed=seed, method=spec["method"])
    keys, f = draw_factors(name, setup, draws)
    return (keys, f) if keys else None


def draw_factors(calibration: str, setup: cns.Setup, draws: pd.DataFrame,
                 only: set | None = None) -> tuple[list, np.ndarray]:
    """A calibration's draws as factors on a set-up's values: draw / fitted value, per parameter of the set-up.

    Parameters
    ----------
    calibration : str
        Calibration name.
    setup : Setup
        The set-up whose values the factors multiply (so its own scaling -- barrier state, age, species -- stays).
    draws : DataFrame
        From :func:`calibration_draws`: row 0 the fitted values, then the draws.
    only : set of str, optional
        Keep only these parameter names (e.g. the calibration's free values, not its fixed ones).

    Returns
    -------
    (list of str, ndarray)
        Parameter names and factors, shape (draws - 1, names); an empty list when the calibration concerns no
        parameter of this set-up.
    """
    typical = _changes_for(calibration, setup.drug.name, draws.iloc[0])
    keys = [k for k, v in typical.items() if k in setup.parameters and v != 0 and (only is None or k in only)]
    f = np.empty((len(draws) - 1, len(keys)))
    for i in range(1, len(draws)):
        ch = _changes_for(calibration, setup.drug.name, draws.iloc[i])
        f[i - 1] = [ch[k] / typical[k] for k in keys]
    return keys, f


def apply_uncertainty(params: pd.DataFrame, effects: tuple, seed: int, start: int) -> pd.DataFrame:
    """Give each subject one parameter set of the pool (factors on his own values, so covariate effects and
    between-patient variability stay), drawn from its own counter-based stream: subject i gets the same set
    whatever N, the chunk size or the number of workers.

    Parameters
    ----------
    params : DataFrame
        One row per subject, subjects ``start .. start+n-1``.
    effects : tuple
        From :func:`uncertainty_effects`.
    seed : int
        The scenario's seed.
    start : int
        Index of the first subject.

    Returns
    -------
    DataFrame
        The parameters, plus the column ``uncertainty_draw`` (index of the subject's set in the pool).
    """
    from pkcsf.clinical.streams import _STREAM_UNCERTAINTY, uniforms

    keys, f = effects
    params = params.copy()
    idx = np.minimum((uniforms(seed, _STREAM_UNCERTAINTY, start, len(params), 1)[:, 0] * len(f)).astype(np.int64),
                     len(f) - 1)
    for j, k in enumerate(keys):
        params[k] = params[k].to_numpy(dtype=float) * f[idx, j]
    params["uncertainty_draw"] = idx
    return params
