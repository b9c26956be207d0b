"""IPRED for the patients of an event table: each patient's MAP parameters from his own DV.

Without individual parameters, an event-table arm's IPRED equals PRED (:mod:`pkcsf.clinical.events`).
:func:`map_ipred` runs the Bayesian forecast (:func:`pkcsf.clinical.forecast.forecast`: maximum a posteriori
random effects given the population model, its variability and a residual error) for every patient with at
least one DV, then simulates each patient with his MAP parameters on the arm's own grid, so that IPRED is
read at every observation row by the same rules as PRED (a pre-dose observation is the value before the
dose; such a DV is fitted at ``t - 1e-9`` h, where the forecast's grid reads the value before the dose too).
With time-varying covariates each patient's forecast takes his covariate timeline (solved in segments, the
same random effects throughout) and IPRED uses his MAP random effects in every segment.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from pkcsf.clinical.forecast import UnreliableForecastWarning, forecast
from pkcsf.core.errors import ScenarioError

__all__ = ["map_ipred", "PRE_DOSE_SHIFT"]

#: h: a DV read before a dose at its time is fitted this much earlier (the concentration is continuous there)
PRE_DOSE_SHIFT = 1e-9


def map_ipred(result: Any, *, error: dict | None = None, samples: int = 200, seed: int = 0) -> pd.DataFrame:
    """The observation rows of every event-table arm of ``result`` with IPRED from each patient's MAP fit.

    Parameters
    ----------
    result : ScenarioResult
        A run with at least one event-table arm (``pk.simulate(drug, table)``).
    error : dict, optional
        Residual error ``{"proportional": CV, "additive": concentration}`` (see :func:`forecast`).
    samples, seed
        Posterior draws of each forecast (the IPRED is the MAP; the draws give its interval elsewhere).

    Returns
    -------
    DataFrame
        ``arm, drug, ID, TIME, group, DV, PRED, IPRED, unit`` as :meth:`ScenarioResult.observations`, with
        ``IPRED`` from the MAP parameters and ``IPRED_from``: ``"MAP"``, or ``"PRED (no DV)"`` for a patient
        without a usable DV (IPRED = PRED), ``"PRED (no dose)"`` for a patient without doses.
    """
    parts = []
    by_name = {a.name: a for a in result.scenario.arms}
    for name, arm in result.arms.items():
        sa = by_name[name].scenario_for(result.scenario) if name in by_name else result.scenario
        for drug, ds in arm.datasets.items():
            parts.append(_arm_map(name, drug, ds, sa, error, samples, seed))
    if not parts:
        raise ScenarioError("result", "no event-table arm", "map_ipred needs an arm whose regimen is a NONMEM-style "
                            "event table with DV")
    return pd.concat(parts, ignore_index=True)


def _arm_map(name, drug, ds, scn, error, samples, seed) -> pd.DataFrame:
    setup = ds.setup
    obs = ds.observations()
    groups = [g for g, cs in setup.outputs.items() if cs]
    seg_params = ds.segment_params(variability=False)     # one table (constant covariates) or one per segment
    # a DV read before a dose at its time (the left of a repeated grid time, or the extra point read before a
    # dose at a covariate change)
    T = len(ds.times)
    i = np.minimum(ds.obs_index, T - 1)
    nxt = np.minimum(i + 1, T - 1)
    pre = (ds.obs_index >= T) | ((ds.times[i] == ds.times[nxt]) & (i + 1 < T))
    how = {}
    for k, pid in enumerate(ds.data.ids):
        reg = ds.regimens[pid]
        sel = (obs["ID"] == pid).to_numpy() & obs["DV"].notna().to_numpy() & obs["group"].isin(groups).to_numpy()
        blq = sel & (obs["DV"].to_numpy(dtype=float) <= 0.0)
        if blq.any():       # a DV of 0 (below the assay's limit) carries no level the MAP fit can use
            warnings.warn(f"arm {name!r}, patient {pid}: {int(blq.sum())} observation(s) with DV = 0 (below the "
                          "limit of quantification) left out of the MAP fit (their PRED and IPRED are still given)",
                          UnreliableForecastWarning, stacklevel=3)
            sel = sel & ~blq
        if not len(reg.doses):
            how[pid] = "PRED (no dose)"
            continue
        if not sel.any():
            how[pid] = "PRED (no DV)"
            continue
        t = obs["TIME"].to_numpy()[sel] - np.where(pre[sel], PRE_DOSE_SHIFT, 0.0)
        rows = [{"time": float(ti), "group": g, "value": float(v)}
                for ti, g, v in zip(t, obs["group"].to_numpy()[sel], obs["DV"].to_numpy()[sel])]
        cov = _patient_covariates(ds, k, pid, obs["TIME"].to_numpy()[sel & pre])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", UnreliableForecastWarning)
            fr = forecast(setup.drug, reg, rows, covariates=cov, physiology=scn.physiology, age=scn.age,
                          pathologies=scn.pathologies, variant=setup.variant, unit=ds.unit, error=error,
                          samples=samples, seed=seed)
        for w in caught:        # the IPRED is the MAP: a small posterior sample does not matter, data that
            if not issubclass(w.category, UnreliableForecastWarning):    # contradict the model do
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            elif "inconsistent" in str(w.message):
                warnings.warn(f"arm {name!r}, patient {pid}: {w.message}", UnreliableForecastWarning, stacklevel=3)
        starts = fr._model.starts
        for j, params in enumerate(seg_params):
            a = 0.0 if ds.starts is None else float(ds.starts[j])
            m = int(np.searchsorted(starts, a, side="right") - 1)
            values = fr._model.params(fr._map[None, :], m).iloc[0]
            for p in setup.parameters:
                if p in params.columns:
                    params.loc[k, p] = float(values[p])
        how[pid] = "MAP"
    conc, _ = ds.solve(seg_params)
    out = obs.copy()
    out["IPRED"] = ds.at_observations(conc)
    out["IPRED_from"] = [how[i] for i in out["ID"]]
    out.insert(0, "drug", drug)
    out.insert(0, "arm", name)
    return out


def _patient_covariates(ds, k, pid, pre_dose_times):
    """Patient ``k``'s covariates for the forecast: a dict, or his timeline (rows ``{time, ...}``).

    A DV read before a dose at a covariate change time is fitted at ``t - PRE_DOSE_SHIFT`` with the new
    covariates (as PRED reads it): that change is moved ``2 * PRE_DOSE_SHIFT`` h earlier for the fit.
    """
    if ds.starts is None:
        return {c: float(v) for c, v in ds.data.covariates.iloc[k].items() if c != "ID"}
    tl = ds.data.timeline[ds.data.timeline["ID"] == pid]
    rows = []
    for _, r in tl.iterrows():
        t = float(r["TIME"])
        if t > 0 and np.any(np.asarray(pre_dose_times, dtype=float) == t):
            t -= 2 * PRE_DOSE_SHIFT
        rows.append({"time": t, **{c: float(r[c]) for c in tl.columns[2:]}})
    return rows
