"""The validation with parameter uncertainty: a posterior predictive check.

:func:`validation_intervals` simulates every published observation (``pkcsf validate``'s table) with parameter sets
drawn from a calibration's uncertainty -- by default the sampled posterior of the CSF transport, the calibration
behind the route comparison -- and sets the central interval of the predictions beside each prediction. For each
miss it says whether the uncertainty of the fitted values reaches the observation::

    from pkcsf.clinical.predictive_check import validation_intervals
    tab = validation_intervals(n=200, seed=1)          # about half a minute: each row's sets are solved together
    tab[["id", "fold_error", "interval_fold_lo", "interval_fold_hi", "interval_reaches_2fold"]]

``pkcsf validate --uncertainty 200`` prints and writes the same table; the report's section 7 shows it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.calibration import CALIBRATIONS
from pkcsf.clinical.uncertainty import ROUTE_CALIBRATION, calibration_draws, draw_factors
from pkcsf.core.errors import ParameterError, check_choice

__all__ = ["validation_intervals"]


def validation_intervals(observations: pd.DataFrame | str | None = None, *, model: str | None = None,
                         calibration: str | Sequence[str] | None = None, n: int = 100, seed: int = 1, level: float = 0.90,
                         method: str = "posterior", progress: bool | None = None) -> pd.DataFrame:
    """The validation table with an interval on every prediction: a posterior predictive check.

    Every observation is simulated with ``n`` parameter sets drawn from a calibration's uncertainty (by default the
    sampled posterior of the CSF transport, the calibration behind the route comparison), each applied as a factor
    on the row's own set-up values (so the row's barrier state, age or species scaling stays), and the central
    ``level`` interval of the predictions is set beside the prediction with the fitted values. It answers, per
    miss, whether the uncertainty of the fitted values reaches the observation (a miss inside the interval is one
    the data used for the calibration do not rule out) or not (a miss the calibrated model cannot produce: the
    structure, the physiology or the observation is in question).

    Only the named calibrations' values vary. Values fitted afterwards on top of them (methotrexate's CSF-side binding
    site, the rhesus CSF efflux) keep their fitted values, as in
    :func:`pkcsf.clinical.uncertainty.route_comparison_interval`, so a row those later fits were made to match (a
    calibration row of theirs) gets a wider interval than a joint refit would give; the values of other drugs' own
    calibrations (osimertinib, trastuzumab, liposomal release) do not vary, and their rows get no interval where
    the calibration does not enter them.

    A parameter set with which a row cannot be simulated is left out of that row's interval and counted
    (``interval_n`` below ``n``; :func:`~pkcsf.clinical.validation.markdown` and ``pkcsf validate`` say so). A
    half-life that does not fall in its window (infinite) is a value, kept at the top of the interval.

    Parameters
    ----------
    observations : DataFrame or str, optional
        As :func:`pkcsf.clinical.validation.run_validation` (default: the built-in ``observations.csv``).
    model : {"v2", "v3"}, optional
        CNS model version (default :data:`pkcsf.clinical.cns.DEFAULT_CNS_MODEL`).
    calibration : str or sequence of str, optional
        Calibration(s) whose uncertainty is drawn (default: the model's CSF transport,
        :data:`pkcsf.clinical.uncertainty.ROUTE_CALIBRATION`). Several are drawn independently of each other (each
        set combines one draw of each); two that fit the same value are refused. ``["csf_transport",
        "cytarabine_liposomal"]`` adds the liposomal release's own uncertainty.
    n, seed : int
        Number of parameter sets and the seed (same seed, same sets).
    level : float
        Central interval probability (0.90: 5th-95th percentiles of the predictions).
    method : {"posterior", "linearized"}
        How the sets are drawn (:func:`pkcsf.clinical.uncertainty.calibration_draws`; the stored posterior sample
        when there is one).
    progress : bool, optional
        Progress bar over the observations (default: none).

    Returns
    -------
    DataFrame
        :func:`~pkcsf.clinical.validation.run_validation`'s table plus ``interval_lo`` and ``interval_hi`` (row
        unit), ``interval_fold_lo`` and ``interval_fold_hi`` (divided by the observed value), ``interval_n`` (sets
        the row could be simulated with), ``within_interval`` (the observation inside the interval; for a
        limit, ``bound`` upper/lower, some of the interval on the allowed side) and ``interval_reaches_2fold``
        (some of the interval within 2-fold of the observation: for a miss, whether the calibration's
        uncertainty could bring it within 2-fold); all empty for a row the calibration's values do not enter.
        A row the uncertainty hardly moves has a narrow interval, so a prediction close to the observation can
        still lie outside it: ``within_interval`` is about the calibration's reach, not about the fit.
        ``.attrs`` holds ``calibration``, ``n``, ``level``, ``method`` and ``ess``.

    Raises
    ------
    ParameterError
        An unknown model version or calibration, a calibration named twice or two that fit the same value, ``n`` not
        a whole number from 2 to 10000, ``level`` not in (0, 1).
    """
    from pkcsf.clinical import validation as V
    from pkcsf.core.progress import progress_bar

    model = model or cns.DEFAULT_CNS_MODEL
    check_choice("model", model, sorted(ROUTE_CALIBRATION), ParameterError)
    names = ([calibration] if isinstance(calibration, str) else list(calibration)) if calibration else \
        [ROUTE_CALIBRATION[model]]
    if not names:
        raise ParameterError("calibration", calibration, "must name at least one calibration")
    for name in names:
        check_choice("calibration", name, sorted(CALIBRATIONS), ParameterError)
    if len(set(names)) < len(names):
        raise ParameterError("calibration", calibration, "names a calibration twice")
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= 10_000:
        raise ParameterError("n", n, "must be a whole number of parameter sets from 2 to 10000")
    if not 0.0 < float(level) < 1.0:
        raise ParameterError("level", level, "must be a probability between 0 and 1 (0.90 for a 90% interval)")
    obs = (V.check_observations(observations) if isinstance(observations, pd.DataFrame)
           else V.load_observations(observations))
    table = V.run_validation(obs, model=model)
    # one set of draws per calibration (independent: each its own seed); no model value may be fitted by two
    draws, free = {}, {}
    for k, name in enumerate(names):
        draws[name] = calibration_draws(name, n=int(n), seed=seed + k, method=method)
        free[name] = {f.as_name or f.name for f in CALIBRATIONS[name].free} | {t for f in CALIBRATIONS[name].free
                                                                               for t in f.tie}
    for i, a_ in enumerate(names):
        for b_ in names[i + 1:]:
            both = free[a_] & free[b_]
            if both:
                raise ParameterError("calibration", f"{a_} + {b_}", f"fit the same values ({', '.join(sorted(both))}); "
                                                                    "draw from one of them")
    cols = {k: [] for k in ("interval_lo", "interval_hi", "interval_n")}
    a = (1.0 - float(level)) / 2.0
    bar = progress_bar(progress, total=len(obs), desc="intervals", unit="observation")
    try:
        for _, r in obs.iterrows():
            for variant in cns.drug(r["drug"]).variants:
                st = V.setup_for(r, variant, model)
                fac = [draw_factors(name, st, draws[name], only=free[name]) for name in names]
                keys = [k for ks, _ in fac for k in ks]                  # disjoint: checked above
                if not keys or r["role"] == "pathology":
                    for k in cols:
                        cols[k].append(np.nan)
                    continue
                factors = np.hstack([f for _, f in fac])                 # (n, keys)
                params = pd.DataFrame([st.parameters] * int(n), columns=list(st.model.parameter_names))
                params[keys] = params[keys].to_numpy(dtype=float) * factors
                preds = V.predict_sets(r, st, params)    # all sets in one solve; a set that fails is NaN, counted
                ok = ~np.isnan(preds)
                cols["interval_n"].append(int(ok.sum()))
                cols["interval_lo"].append(_quantile(preds[ok], a))
                cols["interval_hi"].append(_quantile(preds[ok], 1.0 - a))
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    out = table.copy()
    for k, v in cols.items():
        out[k] = v
    obs_v = out["observed"].astype(float)
    out["interval_fold_lo"] = out["interval_lo"] / obs_v
    out["interval_fold_hi"] = out["interval_hi"] / obs_v
    lo, hi, bound = out["interval_lo"], out["interval_hi"], out["bound"].fillna("")
    has = lo.notna() & hi.notna()               # an infinite end (a half-life that does not fall) is an end
    inside = np.where(bound == "upper", lo <= obs_v, np.where(bound == "lower", hi >= obs_v, (lo <= obs_v) & (obs_v <= hi)))
    reach = np.where(bound == "upper", lo <= 2.0 * obs_v, np.where(bound == "lower", hi >= obs_v / 2.0,
                                                                   (lo <= 2.0 * obs_v) & (hi >= obs_v / 2.0)))
    out["within_interval"] = pd.Series(inside, index=out.index, dtype=object).where(has, None)
    out["interval_reaches_2fold"] = pd.Series(reach, index=out.index, dtype=object).where(has, None)
    out.attrs.update({"calibration": " + ".join(names), "n": int(n), "level": float(level), "method": method,
                      "ess": float(min(d.attrs.get("ess", np.nan) for d in draws.values()))})
    return out


def _quantile(x: np.ndarray, q: float) -> float:
    """The q-quantile of predictions that may include infinite values (a half-life that does not fall): those
    count as the largest (or smallest) values rather than being dropped; NaN when there is nothing to take it of.
    """
    if not len(x):
        return float("nan")
    big = np.finfo(float).max / 4.0
    v = float(np.quantile(np.clip(x, -big, big), q, method="linear"))
    return float(np.sign(v) * np.inf) if abs(v) >= big / 2.0 else v
