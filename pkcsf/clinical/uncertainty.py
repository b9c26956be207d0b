"""Parameter uncertainty from a calibration, and the route comparison with its interval.

A calibration record (``parameters/calibration/<name>.toml``, written by :mod:`pkcsf.clinical.calibration`) holds
the fitted values and the approximate covariance of their logarithms (Gauss-Newton: ``(J'J)^-1 s^2`` from the
least-squares Jacobian, residual variance from the fit). :func:`calibration_draws` samples parameter sets from the
posterior of the calibration objective (or its linearisation); :func:`route_comparison_interval`
simulates a dose by lumbar puncture and by Ommaya for every set and reports the lumbar/Ommaya AUC ratio in a CSF
space (the lateral ventricles by default) and the time above a threshold, each with its interval::

    from pkcsf.clinical.uncertainty import route_comparison_interval
    tab = route_comparison_interval("methotrexate", "12 mg", n=200, seed=1)     # CNS model v3, 0-7 days, lv
    tab[["quantity", "typical", "median", "lo", "hi"]]

The interval reflects the calibration's parameter uncertainty only (the data it was fitted to, their number and
scatter), not between-patient variability and not the structural uncertainty between mechanisms
(docs/model.md compares those).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.calibration import CALIBRATIONS, _predict_all, _rows
from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.paths import builtin_dir
from pkcsf.core.tomlio import tomllib
from pkcsf.core.units import parse_quantity
from pkcsf.engine.dosing import Dose
from pkcsf.engine.simulate import simulate

__all__ = ["calibration_draws", "route_comparison_interval"]


def _record(name: str) -> dict:
    check_choice("calibration", name, sorted(CALIBRATIONS), ParameterError)
    path = builtin_dir("parameters") / "calibration" / f"{name}.toml"
    with open(path, "rb") as fh:
        rec = tomllib.load(fh)
    if "covariance" not in rec:
        raise ParameterError("calibration", name, f"its record {path.name} has no [covariance] (fewer data than "
                             "parameters, or written by an older version): re-run python -m pkcsf.clinical.calibration "
                             f"{name}")
    return rec


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
        calibration data. The effective sample size is in ``.attrs["ess"]``.
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
    cov_names = list(rec["covariance"]["cov_names"])
    cov = np.asarray(rec["covariance"]["cov_log"], dtype=float)
    mu = np.log([rec["fitted"][k]["value"] for k in cov_names])
    lo = np.log([rec["fitted"][k]["bounds"][0] for k in cov_names])
    hi = np.log([rec["fitted"][k]["bounds"][1] for k in cov_names])
    rng = np.random.default_rng(seed)
    w, v = np.linalg.eigh((cov + cov.T) / 2.0)
    if method == "linearized":
        root = v * np.sqrt(np.clip(w, 0.0, None))
        x = np.clip(mu + rng.standard_normal((int(n), len(cov_names))) @ root.T, lo, hi)
        out = pd.DataFrame(np.exp(np.vstack([mu, x])), columns=cov_names)
        out.attrs["ess"] = float(n)
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
    cal = CALIBRATIONS[calibration]
    rows = _rows(cal)
    obs = rows["observed"].to_numpy(dtype=float)
    s2 = float(rec["calibration"]["cost"]) / max(int(rec["calibration"]["n_data"]) - int(rec["calibration"]["n_free"]), 1)
    order = [f.label if sum(g.name == f.name for g in cal.free) > 1 else f.name for f in cal.free]
    idx = [cov_names.index(k) for k in order]
    logw = np.empty(m)
    for i in range(m):
        pred = _predict_all(cal, np.exp(x[i, idx]), rows)
        r = np.log(pred / obs)
        sse = float(np.sum(r ** 2)) if np.all(np.isfinite(r)) else np.inf
        d = x[i] - mu
        logw[i] = -0.5 * sse / s2 + 0.5 * float(d @ prec @ d)
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
        if f.drugs and drug_name not in f.drugs and drug_name not in copies:
            continue
        out[f.as_name or f.name] = float(row[key]) * f.factor
        for t in f.tie:
            out[t] = float(row[key]) * f.factor
    return out


def route_comparison_interval(drug: str | cns.Drug = "methotrexate", dose: str | float = "12 mg", *, model: str = "v3",
                              calibration: str = "csf_transport_v3", n: int = 200, seed: int = 1, days: float = 7.0,
                              threshold: str | float = "1 umol/L", site: str = "lv", level: float = 0.90,
                              method: str = "posterior", proposals: int | None = None) -> pd.DataFrame:
    """Lumbar vs Ommaya for one dose, with the calibration's parameter uncertainty.

    Parameters
    ----------
    drug : str or Drug
        Drug name or object (default methotrexate).
    dose : str or float
        One bolus (``"12 mg"``; a number is mg), given by lumbar puncture and, separately, by Ommaya.
    model : {"v2", "v3"}
        CNS model version (its calibration must match: ``csf_transport`` for v2 has no covariance record).
    calibration : str
        Calibration whose record supplies the fitted values and their covariance.
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

    Returns
    -------
    DataFrame
        One row per quantity -- ``auc_ratio_lumbar_over_ommaya``, ``time_above_h_lumbar``,
        ``time_above_h_ommaya``, ``auc_lumbar_mg_h_per_L``, ``auc_ommaya_mg_h_per_L`` -- with ``typical`` (fitted
        values), ``median``, ``lo``, ``hi``, ``level``, ``n``, ``site``, ``window_h``, ``calibration``, ``model``.
        The per-draw values are in ``.attrs["draws"]``.
    """
    if not 0.0 < float(level) < 1.0:
        raise ParameterError("level", level, "must be a probability between 0 and 1 (0.90 for a 90% interval)")
    if not float(days) > 0.0:
        raise ParameterError("days", days, "must be > 0")
    st = cns.setup(drug, model=model)
    if site not in st.model.compartment_names:
        check_choice("site", site, sorted(st.model.compartment_names), ParameterError)
    mw = st.mw
    thr = float(threshold) if isinstance(threshold, (int, float)) else parse_quantity(threshold, "concentration", mw=mw)
    draws = calibration_draws(calibration, n=n, seed=seed, method=method, proposals=proposals)
    base = dict(st.parameters)
    rows = []
    for _, r in draws.iterrows():
        p = dict(base)
        p.update({k: v for k, v in _changes_for(calibration, st.drug.name, r).items() if k in p})
        rows.append(p)
    params = pd.DataFrame(rows, columns=list(st.model.parameter_names))
    t_end = 24.0 * float(days)
    times = np.unique(np.concatenate([np.arange(0.0, min(48.0, t_end), 0.02), np.arange(48.0, t_end, 0.1), [t_end]]))
    times = times[times <= t_end]
    out = {}
    for route in ("lumbar", "ommaya"):
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
                         "ess": float(draws.attrs.get("ess", np.nan))} for k, v in q.items()])
    tab.attrs["draws"] = pd.concat([draws.reset_index(drop=True), pd.DataFrame(q)], axis=1)
    return tab
