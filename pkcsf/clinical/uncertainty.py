"""Parameter uncertainty from a calibration, and the route comparison with its interval.

A calibration record (``parameters/calibration/<name>.toml``, written by :mod:`pkcsf.clinical.calibration`) holds
the fitted values and the approximate covariance of their logarithms (Gauss-Newton: ``(J'J)^-1 s^2`` from the
least-squares Jacobian, residual variance from the fit). :func:`calibration_draws` samples parameter sets from the
corresponding log-normal distribution, truncated at the calibration bounds; :func:`route_comparison_interval`
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
from pkcsf.clinical.calibration import CALIBRATIONS
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


def calibration_draws(calibration: str = "csf_transport_v3", n: int = 200, seed: int = 1) -> pd.DataFrame:
    """Parameter sets drawn from a calibration's approximate posterior.

    Returns a DataFrame with one row per draw and one column per fitted value (the record's keys, file units),
    row 0 being the fitted (typical) values; ``log(values)`` ~ N(log(fit), cov_log), clipped at the bounds.
    """
    if int(n) < 1:
        raise ParameterError("n", n, "must be a whole number of draws >= 1")
    rec = _record(calibration)
    cov_names = list(rec["covariance"]["cov_names"])
    cov = np.asarray(rec["covariance"]["cov_log"], dtype=float)
    mu = np.log([rec["fitted"][k]["value"] for k in cov_names])
    lo = np.log([rec["fitted"][k]["bounds"][0] for k in cov_names])
    hi = np.log([rec["fitted"][k]["bounds"][1] for k in cov_names])
    rng = np.random.default_rng(seed)
    # symmetric PSD square root (pinv-based covariances can be singular in directions the data do not inform)
    w, v = np.linalg.eigh((cov + cov.T) / 2.0)
    root = v * np.sqrt(np.clip(w, 0.0, None))
    z = rng.standard_normal((int(n), len(cov_names)))
    x = np.clip(mu + z @ root.T, lo, hi)
    x = np.vstack([mu, x])
    return pd.DataFrame(np.exp(x), columns=cov_names)


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


def route_comparison_interval(drug="methotrexate", dose="12 mg", *, model: str = "v3",
                              calibration: str = "csf_transport_v3", n: int = 200, seed: int = 1, days: float = 7.0,
                              threshold="1 umol/L", site: str = "lv", level: float = 0.90) -> pd.DataFrame:
    """Lumbar vs Ommaya for one dose, with the calibration's parameter uncertainty.

    Parameters
    ----------
    drug : str or Drug
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
    draws = calibration_draws(calibration, n=n, seed=seed)
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
                         "calibration": calibration, "model": model} for k, v in q.items()])
    tab.attrs["draws"] = pd.concat([draws.reset_index(drop=True), pd.DataFrame(q)], axis=1)
    return tab
