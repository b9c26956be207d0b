"""What a scenario run returns: :class:`ScenarioResult` (tables, bands, plots, provenance) holding one
:class:`~pkcsf.clinical.scenario_arm.ArmResult` per arm (re-exported here), and the warnings a run gives about
failed subjects and coarse Cmax grids.

Public names are re-exported by :mod:`pkcsf.clinical.scenario`.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pkcsf.clinical import cns
from pkcsf.clinical.export import scenario_to_xarray

# the arm half lives in pkcsf.clinical.scenario_arm; ArmResult and _FAILURE_COLUMNS stay importable from here
from pkcsf.clinical.scenario_arm import _FAILURE_COLUMNS, ArmResult  # noqa: F401
from pkcsf.clinical.scenario_spec import Scenario
from pkcsf.core.errors import ScenarioError, Status, check_choice

if TYPE_CHECKING:
    import xarray

__all__ = ["ArmResult", "ScenarioResult", "FailedSubjectsWarning", "CoarseGridWarning", "DosesAfterEndWarning",
           "CMAX_GRID_RTOL"]


class CoarseGridWarning(UserWarning):
    """The output step is too coarse for some Cmax read-outs: a peak falls between output times and
    the read-out is low by more than 1% (the estimate is in ``ArmResult.cmax_grid_error``).
    """


#: relative Cmax error (estimated from the grid) above which a run warns
CMAX_GRID_RTOL = 1e-2


class DosesAfterEndWarning(UserWarning):
    """Some doses of a regimen fall at or after the end of the simulated window and are not simulated: the
    read-outs cover the doses before the end (set ``days`` to include them).
    """


class RegimenDrugWarning(UserWarning):
    """A regimen given with a drug (``pk.simulate("cytarabine_liposomal", "cytarabine 50 mg IT once")``) names only
    other drugs: what the regimen names is simulated, and the drug given first is not used.
    """


class FailedSubjectsWarning(UserWarning):
    """Some virtual subjects could not be solved; they are excluded from every read-out
    (NaN in the per-subject metrics, ``status`` column) and counted in ``n_failed``.
    """



class ScenarioResult:
    """The outcome of :func:`run`: one :class:`ArmResult` per arm, plus provenance.

    Parameters
    ----------
    scenario : Scenario
        What was run.
    arms : dict of str to ArmResult
        Results per arm.
    elapsed : float
        Wall time (s).
    """

    def __init__(self, scenario: Scenario, arms: dict, elapsed: float):
        self.scenario = scenario
        self.arms = arms
        self.elapsed = elapsed
        #: arm name -> concentration unit of its read-outs (an arm may set its own, ``Arm(..., unit=...)``)
        self.units = {name: a.unit for name, a in arms.items()}
        #: the concentration unit of every arm, or None when the arms' units differ (see :attr:`units`)
        self.unit = scenario.unit if not arms else (next(iter(self.units.values()))
                                                    if len(set(self.units.values())) == 1 else None)

    def __repr__(self):
        unit = self.unit if self.unit is not None else "per arm (" + ", ".join(
            f"{k}: {v}" for k, v in self.units.items()) + ")"
        return (f"ScenarioResult({', '.join(self.arms)}; {self.scenario.subjects} subjects; unit {unit}; "
                f"{self.elapsed:.1f} s)")

    def _one_unit(self, what: str) -> str:
        """The common unit of the arms, or a refusal naming ``what`` cannot mix them."""
        if self.unit is None:
            raise ScenarioError("arms unit", self.units, f"{what} puts every arm on one concentration scale, so the "
                                "arms' units must agree", "use one unit for every arm, or call it on each arm "
                                "(res[name])" if what != "plot" else "use one unit for every arm")
        return self.unit

    def drug_info(self, name: str) -> cns.Drug:
        """The drug object (MW, thresholds, sources) of ``name`` as this run used it.

        Parameters
        ----------
        name : str
            Drug name.

        Returns
        -------
        Drug
            The first arm's own (possibly modified) drug of that name, else the stored one.
        """
        arm = next((a for a in self.arms.values() if name in a.setups), None)
        return arm.drug_info(name) if arm is not None else cns.drug(name)

    def __getitem__(self, arm: str) -> ArmResult:
        if arm not in self.arms:
            check_choice("arm", arm, list(self.arms), ScenarioError)
        return self.arms[arm]

    def metrics(self) -> pd.DataFrame:
        """Per-subject read-outs of every arm.

        Returns
        -------
        pandas.DataFrame
            One row per arm, subject, drug and group (a failed subject's read-outs are NaN, its ``status``
            names the failure).
        """
        return pd.concat([a.metrics for a in self.arms.values()], ignore_index=True)

    def summary(self, q: Sequence[float] = (5, 50, 95)) -> pd.DataFrame:
        """Population percentiles of each read-out, per arm, drug and group.

        Failed subjects are excluded from every percentile; ``n`` counts the subjects the
        percentiles are taken over and ``n_failed`` those excluded (see :meth:`failures`).

        Parameters
        ----------
        q : sequence of float, optional
            Percentiles (default 5, 50, 95).

        Returns
        -------
        DataFrame
            One row per arm, drug, group and read-out.
        """
        m = self.metrics()
        value_cols = [c for c in m.columns if c not in ("arm", "id", "drug", "group", "unit", "auc_unit", "status")
                      and not c.startswith("pathology_") and c != "uncertainty_draw"]   # labels, not read-outs
        got = _percentiles_threaded(m, value_cols, q)
        out, n_solved, n_rows = got if got is not None else _percentiles_pandas(m, value_cols, q)
        out.insert(3, "unit", [self.arms[a].unit for a in out["arm"]])      # each arm's own unit
        out.insert(4, "n", n_solved.astype(int))
        out.insert(5, "n_failed", (n_rows - n_solved).astype(int))
        return out

    def targets(self) -> pd.DataFrame:
        """Target attainment of every arm.

        Returns
        -------
        pandas.DataFrame
            One row per arm and target: fraction of the solved subjects meeting it, ``n`` (solved subjects)
            and ``n_failed`` (excluded).
        """
        return pd.concat([a.targets for a in self.arms.values()], ignore_index=True)

    def failures(self) -> pd.DataFrame:
        """The subjects whose solve failed, in every arm.

        Returns
        -------
        pandas.DataFrame
            One row per failed subject and drug: ``arm, drug, id, status, message``.
        """
        return pd.concat([a.failures for a in self.arms.values()], ignore_index=True)

    def observations(self) -> pd.DataFrame:
        """PRED/IPRED beside DV at the observation rows of every event-table arm.

        Returns
        -------
        pandas.DataFrame
            Tidy, one row per observation (see :meth:`ArmResult.observations`).

        Raises
        ------
        ScenarioError
            No arm's regimen is an event table with observation rows.
        """
        parts = [a.observations(d) for a in self.arms.values() for d in a.datasets]
        if not parts:
            raise ScenarioError("observations", "no event-table arm",
                                "an arm's regimen must be a NONMEM-style event table with observation rows")
        return pd.concat(parts, ignore_index=True)

    def nonmem(self) -> pd.DataFrame:
        """NONMEM-style wide frame of every event-table arm.

        Returns
        -------
        pandas.DataFrame
            The tables' rows with PRED, IPRED, RES, IRES, ``ARM`` and ``DRUG`` columns first.

        Raises
        ------
        ScenarioError
            No arm's regimen is an event table.
        """
        parts = []
        for a in self.arms.values():
            for d in a.datasets:
                w = a.nonmem(d)
                w.insert(0, "DRUG", d)
                w.insert(0, "ARM", a.name)
                parts.append(w)
        if not parts:
            raise ScenarioError("nonmem", "no event-table arm",
                                "an arm's regimen must be a NONMEM-style event table")
        return pd.concat(parts, ignore_index=True)

    def to_xarray(self) -> xarray.Dataset:
        """Every arm's band profiles as one xarray Dataset.

        Returns
        -------
        xarray.Dataset
            Dims arm, subject, time, group (see :meth:`ArmResult.to_xarray`; arms on different time grids are
            aligned with NaN).

        Raises
        ------
        ScenarioError
            The arms have different units (one variable per drug has one unit): use
            ``res[arm].to_xarray()``.
        """
        self._one_unit("to_xarray")
        return scenario_to_xarray(self)

    def plot(self, groups: Sequence[str] = ("ventricular", "cisternal", "lumbar", "plasma"),
             **kwargs: object) -> np.ndarray:
        """Median and 5–95% band per compartment group, every arm overlaid (see
        :func:`pkcsf.plotting.overlay_arms`, which takes the same keywords). Returns the Axes.

        Parameters
        ----------
        groups : sequence of str, optional
            Compartment groups, one panel each.
        **kwargs
            As :func:`pkcsf.plotting.overlay_arms`.

        Returns
        -------
        ndarray of Axes
            The panels.
        """
        from pkcsf.plotting import overlay_arms

        self._one_unit("plot")
        first = next(iter(self.arms.values()))
        have = set(first.groups[next(iter(first.groups))])
        kwargs.setdefault("band", self.scenario.subjects > 1)
        return overlay_arms(self, [g for g in groups if g in have], **kwargs)

    def bands(self) -> pd.DataFrame:
        """Percentile bands of every arm's concentration-time profiles.

        Returns
        -------
        pandas.DataFrame
            :meth:`ArmResult.bands` of every arm, with a column ``arm``, in :attr:`unit`; when the arms'
            units differ, a ``unit`` column gives each row's.
        """
        out = pd.concat([a.bands().assign(arm=name) for name, a in self.arms.items()], ignore_index=True)
        if self.unit is None:
            out["unit"] = out["arm"].map(self.units)
        return out

    def assumptions(self) -> pd.DataFrame:
        """Every parameter value behind this run that is an assumption, with its reasoning.

        Returns
        -------
        pandas.DataFrame
            One row per value: set, parameter, value, unit, note.
        """
        rows = []
        seen = set()
        for a in self.arms.values():
            for d, s in a.setups.items():
                for ps in s.sets:
                    for v in ps.assumptions():
                        key = (ps.name, v.name)
                        if key in seen:
                            continue
                        seen.add(key)
                        rows.append({"set": ps.name, "parameter": v.name, "value": v.given, "unit": v.unit,
                                     "note": v.note})
        return pd.DataFrame(rows, columns=["set", "parameter", "value", "unit", "note"])

    def cite(self) -> list[str]:
        """Every reference behind this run's values (all arms and drugs), without repeats.

        Returns
        -------
        list of str
        """
        refs = []
        for a in self.arms.values():
            for s in a.setups.values():
                for r in s.cite():
                    if r not in refs:
                        refs.append(r)
        return refs


_KEYS = ["arm", "drug", "group"]


def _percentiles_pandas(m: pd.DataFrame, value_cols: list, q: Sequence[float]) -> tuple:
    """``summary()``'s percentiles by pandas: (table of the keys and the ``<read-out>_p<q>`` columns, solved
    subjects and rows per arm, drug and group). Failed subjects are left out of the percentiles.
    """
    solved = m["status"].eq("SUCCESS") if "status" in m else pd.Series(True, index=m.index)
    counts = solved.groupby([m[k] for k in _KEYS], sort=False, observed=True).agg(["sum", "size"])
    if not solved.all():        # no copy of a table of millions of rows when every subject was solved
        m = m[solved]
    g = m.groupby(_KEYS, sort=False, observed=True)[value_cols]
    qs = [x / 100.0 for x in q]
    allq = g.quantile(qs)           # every percentile from one sort per group (2x faster than one call each)
    parts = []
    for x, f in zip(q, qs):
        s = allq.xs(f, level=-1) if len(allq) else g.quantile(f)     # (no solved subject: empty table)
        s.columns = [f"{c}_p{x:g}" for c in s.columns]
        parts.append(s)
    out = pd.concat(parts, axis=1)
    cols = [f"{c}_p{x:g}" for c in value_cols for x in q]
    out = out[cols].reindex(counts.index).reset_index()
    out.columns = _KEYS + cols
    return out, counts["sum"].to_numpy(), counts["size"].to_numpy()


def _percentiles_threaded(m: pd.DataFrame, value_cols: list, q: Sequence[float]) -> tuple | None:
    """:func:`_percentiles_pandas` without copying the table, the read-outs shared between threads
    (:func:`pkcsf.analysis.summaries.grouped_quantiles`): the same table to the last bit. None where it does
    not apply (a read-out column that is not float64, a row without an arm, drug or group).

    Each row's group is numbered in the order the groups first appear; the keys, their order and their types
    come from pandas' own grouping of those first rows (one per group), which sees the groups in the same order
    as the whole table does.
    """
    from pkcsf.analysis.summaries import grouped_quantiles

    if not len(m) or any(m[c].dtype != np.float64 for c in value_cols):
        return None
    keys = []
    for k in _KEYS:
        s = m[k]
        if isinstance(s.dtype, pd.CategoricalDtype):
            codes, size = s.cat.codes.to_numpy(), len(s.cat.categories)
        else:
            codes, uniq = pd.factorize(s, sort=False)
            size = len(uniq)
        if codes.min() < 0:
            return None                 # a missing key (pandas drops the row): the pandas path
        if size > 1:                    # (one value: the same in every row)
            keys.append((codes, size))
    wide = np.int32 if math.prod(size for _, size in keys) < 2**31 else np.int64
    comb = np.zeros(len(m), dtype=wide)
    for codes, size in keys:
        comb *= size
        comb += codes
    K = math.prod(size for _, size in keys)
    if len(m) % K == 0 and bool((comb.reshape(-1, K) == np.arange(K, dtype=wide)).all()):
        ids, first = comb, np.arange(K)           # rows 0, 1, ..., K-1 repeated (a metrics table): numbered
    else:
        ids, uniq = pd.factorize(comb, sort=False)        # 0, 1, ... in order of first appearance
        K = len(uniq)
        first = np.searchsorted(np.maximum.accumulate(ids), np.arange(K))
    del comb
    small = m.iloc[first]
    grp = pd.Series(np.arange(K), index=small.index).groupby([small[k] for k in _KEYS], sort=False,
                                                             observed=True)
    at = grp.ngroup().to_numpy()      # group k of ids is row at[k] of pandas' table
    index = grp.size().index
    if len(index) != K or not np.array_equal(np.sort(at), np.arange(K)):
        return None                     # (not expected) one group per first row: else the pandas path
    solved = m["status"].eq("SUCCESS").to_numpy() if "status" in m else np.ones(len(m), dtype=bool)
    n_rows = np.bincount(ids, minlength=K)
    every = bool(solved.all())
    n_solved = n_rows if every else np.bincount(ids[solved], minlength=K)
    import numba

    vals = grouped_quantiles([m[c].to_numpy() for c in value_cols], ids, K, q,
                             rows=None if every else np.flatnonzero(solved), threads=numba.get_num_threads())
    cols = [f"{c}_p{x:g}" for c in value_cols for x in q]
    table = np.empty((K, len(cols)))
    table[at] = vals.reshape(K, len(cols))
    out = pd.DataFrame(table, index=index, columns=cols).reset_index()
    out.columns = _KEYS + cols
    ns, nr = np.empty(K, dtype=np.int64), np.empty(K, dtype=np.int64)
    ns[at], nr[at] = n_solved, n_rows
    return out, ns, nr


def _cmax_grid_error(times, prof, right, left, refined=None) -> np.ndarray:
    """Estimated relative error (G,) of grid Cmax read-outs, the largest over the band subjects and doses.

    A peak between output times is under-read. Within each dosing interval (from the right limit of a dose
    to the left limit of the next), the profile sampled at every other output time (both halves) gives the
    read-out at twice the step; for a smooth peak the error falls with the square of the step, so the error
    at the step used is about a third of the difference (Richardson). A peak just after a dose shows as a
    large difference in one of the halves.

    ``refined`` (n_band, G): the band subjects' Cmax refined between outputs by the exact solver at the grid
    maximum (another dose's peak is not refined when the peaks are alike). The refined read-out is then low only
    if another interval's peak is higher: each interval's peak is estimated (grid peak plus its estimated
    under-read) and compared with the estimate of the interval holding the grid maximum, whose true height is the
    refined value; doses alike give zero.
    """
    G = prof.shape[2]
    T = len(times)
    ok = np.isfinite(prof).all(axis=(1, 2))
    if refined is not None:
        ok &= np.isfinite(refined).all(axis=1)
    p = prof if ok.all() else prof[ok]        # (no copy of the band profiles when every subject was solved)
    if T < 3 or p.shape[0] == 0:
        return np.zeros(G)
    starts = np.unique(np.concatenate([[0], np.asarray(right, dtype=int)]))
    ends = np.append(starts[1:], T)
    worst = np.zeros(G)
    shape = (p.shape[0], G)
    top, top_est, highest = np.full(shape, -np.inf), np.zeros(shape), np.zeros(shape)
    for a, b in zip(starts, ends):
        seg = p[:, a:b, :]
        c_h = seg.max(axis=1)
        rel_seg = np.zeros(shape)
        if seg.shape[1] >= 3:
            for parity in (0, 1):
                idx = np.arange(seg.shape[1])
                mask = (idx % 2 == parity) | (idx == 0) | (idx == seg.shape[1] - 1)
                c_2h = seg[:, mask, :].max(axis=1)
                with np.errstate(divide="ignore", invalid="ignore"):
                    rel = np.where(c_h > 0, (c_h - c_2h) / c_h, 0.0)
                rel_seg = np.maximum(rel_seg, rel)
            worst = np.maximum(worst, rel_seg.max(axis=0))
        est = c_h * (1.0 + rel_seg / 3.0)     # the interval's peak height, estimated
        up = c_h > top
        top = np.where(up, c_h, top)
        top_est = np.where(up, est, top_est)
        highest = np.maximum(highest, est)
    if refined is None:
        return worst / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        short = np.where(top_est > 0, highest / top_est - 1.0, 0.0)
    return np.clip(short.max(axis=0), 0.0, None)


def _warn_coarse_grid(res: "ScenarioResult") -> None:
    """One warning per run naming the Cmax read-outs the output step may under-read, and a step that would do."""
    parts = []
    dt = None
    for name, a in res.arms.items():
        errs = getattr(a, "cmax_grid_error", {})
        for drug, per_group in errs.items():
            bad = {g: e for g, e in per_group.items() if e > CMAX_GRID_RTOL}
            if not bad:
                continue
            step = float(np.median(np.diff(np.unique(a.times)))) if len(a.times) > 1 else 0.0
            # error ~ step^2 for a smooth peak; a quarter of that step for peaks just after a dose (the
            # estimate is low there)
            need = 0.25 * step * math.sqrt(CMAX_GRID_RTOL / max(bad.values()))
            dt = need if dt is None else min(dt, need)
            parts.append(f"arm {name!r} ({drug}): " + ", ".join(f"{g} by ~{100 * e:.2g}% or more"
                                                             for g, e in sorted(bad.items(), key=lambda x: -x[1])))
    if parts:
        events = any(getattr(a, "datasets", None) for a in res.arms.values())
        auc = ("AUCs of simulated arms are exact integrals and do not depend on dt; those of event-table arms are "
               "read on the output grid, as Cmax" if events else "AUCs are exact integrals and do not depend on dt")
        warnings.warn("Cmax read-outs are low: peaks fall between output times (" + "; ".join(parts)
                      + f"); use an output step dt <= {dt:.2g} h for Cmax within {100 * CMAX_GRID_RTOL:g}% "
                      f"({auc})", CoarseGridWarning, stacklevel=3)
    from pkcsf.clinical.grid_error import ABOVE_GRID_RTOL, grid_warning_parts

    parts, dt = [], None
    for name, a in res.arms.items():
        step = float(np.median(np.diff(np.unique(a.times)))) if len(a.times) > 1 else 0.0
        for drug, est in getattr(a, "above_grid_error", {}).items():
            more, shrink = grid_warning_parts(name, drug, est)
            if more:
                parts += more
                dt = step * shrink if dt is None else min(dt, step * shrink)
    if parts:
        warnings.warn("time above a threshold and target fractions are read between output times and depend on the "
                      "output step (" + "; ".join(parts) + f"); use an output step dt <= {dt:.2g} h for them within "
                      f"about {100 * ABOVE_GRID_RTOL:g}%", CoarseGridWarning, stacklevel=3)


def _warn_failures(res: "ScenarioResult") -> None:
    """One warning per run naming every arm with failed subjects: how many, which ids, why."""
    fails = res.failures()
    if fails.empty:
        return
    parts = []
    for (arm, drug), f in fails.groupby(["arm", "drug"], sort=False):
        subj = f[f["id"].astype(str) != "typical"]
        ids = subj["id"].tolist()
        shown = ", ".join(map(str, ids[:20])) + (f" ... ({len(ids) - 20} more)" if len(ids) > 20 else "")
        why = "; ".join(f"{st}: {Status[st].message}" for st in dict.fromkeys(f["status"]))
        what = f"{len(ids)} of {res.scenario.subjects} subjects failed" if ids else "no subject failed"
        if len(subj) < len(f):
            what += " and the typical subject failed (its profile is NaN)"
        parts.append(f"arm {arm!r} ({drug}): {what}" + (f" (ids {shown})" if ids else "") + f" [{why}]")
    warnings.warn("excluded from every read-out, percentile and target fraction (NaN in metrics, counted in "
                  "n_failed): " + " | ".join(parts), FailedSubjectsWarning, stacklevel=3)
