"""How much the output step may change the read-outs that are interpolated between output times: time above a
threshold and the target fractions (Cmax has its own estimate, :func:`pkcsf.clinical.scenario_results._cmax_grid_error`,
and is refined between outputs by the exact solver; AUCs are exact integrals).

The band subjects' profiles are read again on each half of the grid (every other output time, the dose limits and
both ends kept). For a smooth profile the error of a crossing interpolated between outputs falls with the square of
the step, so the error at the step used is about a third of the difference (Richardson); a peak or a crossing the
coarser grid misses shows as a large difference. A target counts the band subjects whose verdict (met / not met)
changes between the grid and either half: those subjects could change with a finer step too.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pkcsf.analysis.readouts import whole_window

#: relative error of a time above a threshold (estimated from the grid) above which a run warns
ABOVE_GRID_RTOL = 2e-2
#: share of the band subjects whose target verdict changes on a half grid, above which a run warns
TARGET_GRID_FLIPS = 1e-2


def _half_grids(T: int, right: np.ndarray, left: np.ndarray) -> list[np.ndarray]:
    keep = np.zeros(T, dtype=bool)
    keep[[0, T - 1]] = True
    keep[np.asarray(right, dtype=int)] = True
    keep[np.asarray(left, dtype=int)] = True
    idx = np.arange(T)
    return [keep | (idx % 2 == parity) for parity in (0, 1)]


def threshold_grid_error(dr: Any, times: np.ndarray, prof: np.ndarray, targets: tuple) -> dict:
    """Estimated effect of the output step on one drug's time-above and target read-outs.

    Parameters
    ----------
    dr : _DrugRun
        The drug of an arm (:class:`pkcsf.clinical.scenario_reduce._DrugRun`): groups, thresholds, dose limits.
    times : ndarray, shape (T,)
        Output times (h).
    prof : ndarray, shape (n_band, T, G)
        The band subjects' group concentrations, in the arm's unit (failed subjects, with NaN, are left out).
    targets : tuple of Target
        The scenario's targets (those of other drugs are skipped).

    Returns
    -------
    dict
        ``{"time_above": {(group, threshold name): relative error}, "targets": {label: share of band subjects
        whose verdict changes}}``: the time above's largest over its 5th, 50th and 95th percentiles of the band
        subjects and both half grids; a target's largest over both half grids.
    """
    T = len(times)
    ok = np.isfinite(prof).all(axis=(1, 2)) if prof.size else np.zeros(0, dtype=bool)
    p = prof[ok] if prof.size else prof
    out: dict = {"time_above": {}, "targets": {}}
    if T < 5 or p.shape[0] == 0:
        return out
    halves = _half_grids(T, dr.right, dr.left)
    step = float(np.median(np.diff(np.unique(times))))
    if len(dr.thr_unit):
        # judged on the percentiles a summary reports (5, 50, 95), not subject by subject: a subject whose peak
        # barely touches the threshold has a crossing of a fraction of a step whatever the step
        q = (5, 50, 95)
        full = np.percentile(whole_window(times, p, dr.thr_unit)["time_above"], q, axis=0)    # (3, G, K)
        worst = np.zeros(full.shape[1:])
        for keep in halves:
            half = np.percentile(whole_window(times[keep], p[:, keep, :], dr.thr_unit)["time_above"], q, axis=0)
            rel = np.abs(full - half) / 3.0 / np.maximum(full, 2.0 * step)
            worst = np.maximum(worst, rel.max(axis=0))
        for g, group in enumerate(dr.groups):
            for k, (name, _) in enumerate(dr.thresholds):
                out["time_above"][(group, name)] = float(worst[g, k])
    for tg in targets:
        if tg.group not in dr.groups or (tg.drug is not None and tg.drug != dr.drug):
            continue
        met = dr.target(tg, p)
        out["targets"][tg.label] = max(float(np.mean(dr.target(tg, p, keep) != met)) for keep in halves)
    return out


def grid_warning_parts(arm_name: str, drug: str, est: dict) -> tuple[list[str], float]:
    """The phrases of the coarse-grid warning for one arm and drug, and the factor by which the step should shrink.

    Parameters
    ----------
    arm_name, drug : str
        For the message.
    est : dict
        :func:`threshold_grid_error`'s result.

    Returns
    -------
    tuple
        ``(phrases, shrink)``: one phrase per read-out beyond its tolerance, and the factor (<= 1) to multiply the
        step by (1 when nothing is beyond).
    """
    parts, shrink = [], 1.0
    bad = {k: e for k, e in est.get("time_above", {}).items() if e > ABOVE_GRID_RTOL}
    if bad:
        parts.append(f"arm {arm_name!r} ({drug}): time above " + ", ".join(
            f"{thr} in {g} by ~{100 * e:.2g}%" for (g, thr), e in sorted(bad.items(), key=lambda x: -x[1])))
        shrink = min(shrink, float(np.sqrt(ABOVE_GRID_RTOL / max(bad.values()))))
    flips = {k: f for k, f in est.get("targets", {}).items() if f > TARGET_GRID_FLIPS}
    if flips:
        parts.append(f"arm {arm_name!r} ({drug}): target " + ", ".join(
            f"'{k}' changes for {100 * f:.2g}% of the band subjects on a half grid" for k, f in flips.items()))
        shrink = min(shrink, 0.25)
    return parts, shrink
