"""The read-outs of one arm of a scenario run: :class:`ArmResult` (profiles, per-subject metrics, targets,
failures, bands, sampled observations, interval metrics).

Split from :mod:`pkcsf.clinical.scenario_results` (which re-exports it, as does :mod:`pkcsf.clinical.scenario`);
:class:`~pkcsf.clinical.scenario_results.ScenarioResult` holds one per arm.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.analysis.readouts import percentiles
from pkcsf.clinical import cns
from pkcsf.clinical.events import nonmem_wide
from pkcsf.clinical.export import arm_to_xarray
from pkcsf.core.errors import ScenarioError, check_choice
from pkcsf.core.units import concentration_factor, parse_quantity
from pkcsf.engine.dosing import Regimen

if TYPE_CHECKING:
    import xarray

__all__ = ["ArmResult"]

_FAILURE_COLUMNS = ["arm", "drug", "id", "status", "message"]


@dataclass
class ArmResult:
    """Read-outs of one arm.

    Attributes
    ----------
    name : str
        The arm's name.
    times : ndarray (T,), h
    profiles : dict drug -> ndarray (n_band, T, G)
        Group concentrations (``unit``) of the first ``band_subjects`` subjects (NaN for a
        subject whose solve failed).
    typical : dict drug -> ndarray (T, G)
        The typical subject (no random effects; median covariates).
    groups : dict drug -> list of group names (the last axis of profiles)
    metrics : DataFrame
        One row per subject, drug and group (see :func:`run`); a failed subject's read-outs
        are NaN and its ``status`` names the failure.
    targets : DataFrame
        One row per target: fraction of the solved subjects meeting it, ``n`` (solved subjects)
        and ``n_failed`` (excluded).
    dose_times : dict drug -> ndarray
    regimen : Regimen
        The arm's doses (mg).
    setups : dict drug -> Setup
        The set-up each drug was simulated with (model, parameters, sources).
    failed : int
        Number of subjects whose solve failed (excluded from every read-out).
    unit : str
        Concentration unit of the profiles and read-outs.
    failures : DataFrame
        One row per failed subject and drug: ``arm, drug, id, status, message``.
    auc_source : dict
        Drug -> how to solve the band subjects again with AUC accumulators (exact interval AUCs, on demand).
    datasets : dict
        Drug -> the run of an event-table arm (PRED/IPRED at the observation rows).
    """

    name: str
    times: np.ndarray
    profiles: dict
    typical: dict
    groups: dict
    metrics: pd.DataFrame
    targets: pd.DataFrame
    dose_times: dict
    regimen: Regimen
    setups: dict
    failed: int = 0
    unit: str = "umol/L"
    failures: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=_FAILURE_COLUMNS))
    # drug -> how to re-solve the band subjects with AUC accumulators (exact interval AUCs, on demand)
    auc_source: dict = field(default_factory=dict, repr=False)
    # drug -> DatasetRun for an event-table arm (PRED/IPRED at the observation rows, VPC simulations)
    datasets: dict = field(default_factory=dict, repr=False)

    def _dataset(self, drug):
        if not self.datasets:
            raise ScenarioError(f"arm {self.name!r}", "no event table",
                                "observations exist for an arm whose regimen is a NONMEM-style event table")
        drug = drug or next(iter(self.datasets))
        if drug not in self.datasets:
            check_choice(f"arm {self.name!r} drug", drug, list(self.datasets), ScenarioError)
        return drug, self.datasets[drug]

    def observations(self, drug: str | None = None) -> pd.DataFrame:
        """Tidy frame of the observation rows: ``arm, drug, ID, TIME, group, DV, PRED, IPRED, unit`` (see
        :mod:`pkcsf.clinical.events`: PRED is the typical subject with the patient's covariates; IPRED equals
        PRED unless the table gives individual parameters).

        Parameters
        ----------
        drug : str, optional
            The drug (default: the arm's only drug).

        Returns
        -------
        DataFrame
            One row per observation.
        """
        drug, ds = self._dataset(drug)
        obs = ds.observations()
        obs.insert(0, "drug", drug)
        obs.insert(0, "arm", self.name)
        return obs

    def nonmem(self, drug: str | None = None) -> pd.DataFrame:
        """NONMEM-style wide frame: the table's rows with PRED, IPRED, RES, IRES (observation rows).

        Parameters
        ----------
        drug : str, optional
            The drug (default: the arm's only drug).

        Returns
        -------
        DataFrame
            The event table with predictions and residuals.
        """
        drug, ds = self._dataset(drug)
        return nonmem_wide(ds.observations(), ds.data)

    def simulate_observations(self, replicates: int = 200, seed: int = 0, drug: str | None = None) -> pd.DataFrame:
        """The table's design simulated with random effects (for a visual predictive check).

        Parameters
        ----------
        replicates : int, optional
            Number of simulated copies of the design.
        seed : int, optional
            Random seed.
        drug : str, optional
            The drug.

        Returns
        -------
        DataFrame
            Simulated observations, column ``replicate``.
        """
        drug, ds = self._dataset(drug)
        return ds.simulate_observations(replicates, seed)

    def to_xarray(self) -> xarray.Dataset:
        """The band profiles as an xarray Dataset.

        Needs the optional ``xarray`` package (``pip install pkcsf[xarray]``).

        Returns
        -------
        xarray.Dataset
            Dims subject, time, group; one variable per drug; units as attributes
            (:func:`pkcsf.clinical.export.arm_to_xarray`).
        """
        return arm_to_xarray(self)

    def _auc_marks(self, drug):
        """(times (M,), cumulative exact AUC (n_band, M, G)) at the dose times and the end, for the band
        subjects, from the accumulator states (solved again on first use: subject i depends only on the seed).
        """
        cache = self.__dict__.setdefault("_auc_cache", {})
        if drug not in cache and drug in self.auc_source:
            dr, pop, seed, variability, nb = self.auc_source[drug]
            params = dr.individual(pop, nb, seed=seed, start=0, variability=variability)
            _, _, gauc = dr.solve(params, auc=True)
            cache[drug] = (dr.mark_times, gauc[:, dr.mark_idx, :])
        return cache.get(drug)


    def drug_info(self, name: str) -> cns.Drug:
        """The drug object (MW, thresholds, sources) of ``name`` as this run used it.

        Parameters
        ----------
        name : str
            Drug name.

        Returns
        -------
        Drug
            The arm's own (possibly modified) drug, else the stored one.
        """
        if name in self.setups:
            return self.setups[name].drug
        return cns.drug(name)

    def _unique_grid(self, drug):
        """Times without the pre-dose duplicates, the profiles on them, and the pre-dose values."""
        t = self.times
        dup = np.flatnonzero(np.diff(t) == 0)        # index of each left-limit output (a dose or a covariate change)
        keep = np.setdiff1d(np.arange(len(t)), dup)
        prof = self.profiles[drug]
        doses = (self.dose_times or {}).get(drug)
        if doses is not None:
            # a time-varying covariate also repeats a time (events_segments) but starts no dosing interval
            dup = dup[np.isin(t[dup], np.asarray(doses, dtype=float))]
        return t[keep], prof[:, keep], t[dup], prof[:, dup]

    def interval_metrics(self, drug: str | None = None, threshold: float | str | None = None) -> pd.DataFrame:
        """Read-outs per dosing interval (Cmax, Tmax, Cmin, AUC, trough, time above ``threshold``).

        Computed for the band subjects (the first ``band_subjects``) with
        :func:`pkcsf.analysis.metrics.summarize`, dose-aware with the exact pre-dose
        values. ``threshold`` in the scenario's unit (a number) or as text
        with a unit. One row per subject, group and interval.

        Parameters
        ----------
        drug : str, optional
            The drug.
        threshold : float or str, optional
            Threshold for the time above it.

        Returns
        -------
        DataFrame
            One row per subject, group and interval. ``trough`` is the level at the interval's end:
            the pre-dose trough where ``trough_before_dose`` is True, the level at the window's end for the
            last interval (False).
        """
        from pkcsf.analysis import metrics as M

        drug = drug or next(iter(self.profiles))
        t, c, dts, before = self._unique_grid(drug)
        ok = np.isfinite(c).all(axis=(1, 2)) & np.isfinite(before).all(axis=(1, 2))   # failed subjects are NaN
        subjects = np.flatnonzero(ok)
        c, before = c[ok], before[ok]
        thr = threshold
        if isinstance(threshold, str):
            setup = self.setups[drug]
            thr = parse_quantity(threshold, "concentration", mw=setup.mw) * concentration_factor(self.unit, setup.mw)
        df = M.summarize(t, c, dose_times=dts, threshold=thr, compartments=self.groups[drug],
                         method="linear-up/log-down", conc_before=before, subjects=subjects)
        marks = self._auc_marks(drug)
        if marks is not None:           # exact interval AUCs from the accumulators (not the grid)
            mt, cum = marks
            a = np.searchsorted(mt, df["start"].to_numpy())
            b = np.searchsorted(mt, df["end"].to_numpy())
            a, b = np.minimum(a, len(mt) - 1), np.minimum(b, len(mt) - 1)
            if np.array_equal(mt[a], df["start"].to_numpy()) and np.array_equal(mt[b], df["end"].to_numpy()):
                si = df["subject"].to_numpy().astype(int)
                gi = np.asarray(df["compartment"].cat.codes, dtype=int)
                df["auc"] = cum[si, b, gi] - cum[si, a, gi]
        df = df.drop(columns=[k for k in ("conc_unit", "auc_unit") if k in df])
        # the last interval ends at the window's end, not before a dose: its trough is the level there
        df["trough_before_dose"] = np.isin(df["end"].to_numpy(), np.asarray(dts, float))
        df.insert(0, "drug", drug)
        df.insert(0, "arm", self.name)
        df["unit"] = self.unit
        return df

    def sample(self, group: str, times: ArrayLike, *, drug: str | None = None, cv: float = 0.0, lloq: float = 0.0,
               seed: int = 0) -> pd.DataFrame:
        """Concentrations of the band subjects at sampling ``times`` (h), for NCA.

        ``cv``: proportional (log-normal) residual error; ``lloq``: values below
        it are reported as 0 (below the limit of quantification, as
        :func:`pkcsf.analysis.nca.nca` expects). Returns ``id, time, conc, group, unit``.

        Parameters
        ----------
        group : str
            Compartment group.
        times : array_like
            Sampling times (h).
        drug : str, optional
            The drug.
        cv : float, optional
            Proportional residual error.
        lloq : float, optional
            Limit of quantification.
        seed : int, optional
            Random seed of the residual error.

        Returns
        -------
        DataFrame
            ``id, time, conc, group, unit``.
        """
        from pkcsf.analysis import metrics as M
        from pkcsf.clinical.population import normals

        drug = drug or next(iter(self.profiles))
        if group not in self.groups[drug]:
            check_choice("group", group, self.groups[drug], ScenarioError)
        ts = np.atleast_1d(np.asarray(times, dtype=float))
        if (ts < self.times[0]).any() or (ts > self.times[-1]).any() or (np.diff(ts) < 0).any():
            raise ScenarioError("times", ts.tolist()[:5], f"sampling times must be sorted and within 0-{self.times[-1]:g} h")
        t, c, dts, before = self._unique_grid(drug)
        g = self.groups[drug].index(group)
        vals = M.interpolate(t, c[:, :, g], ts, method="linear-up/log-down", dose_times=dts,
                             conc_before=before[:, :, g])
        n = vals.shape[0]
        if cv > 0:
            sd = math.sqrt(math.log1p(cv * cv))
            vals = vals * np.exp(sd * normals(seed, 3, 0, n, len(ts)) - 0.5 * sd * sd)
        if lloq > 0:
            vals = np.where(vals < lloq, 0.0, vals)
        return pd.DataFrame({"id": np.repeat(np.arange(n), len(ts)), "time": np.tile(ts, n),
                             "conc": vals.ravel(), "group": group, "unit": self.unit})

    def bands(self, drug: str | None = None, q: Sequence[float] = (5, 50, 95)) -> pd.DataFrame:
        """Percentiles over subjects at each time: columns drug, group, time, p5, p50, p95 (and typical).

        Parameters
        ----------
        drug : str, optional
            The drug.
        q : sequence of float, optional
            Percentiles.

        Returns
        -------
        DataFrame
            One row per group and time.
        """
        rows = []
        for d in ([drug] if drug else list(self.profiles)):
            prof = self.profiles[d]
            pc = percentiles(prof, q, axis=0) if prof.shape[0] > 1 else np.repeat(prof, len(q), axis=0)
            for g, name in enumerate(self.groups[d]):
                df = pd.DataFrame({"drug": d, "group": name, "time": self.times,
                                   **{f"p{x:g}": pc[i, :, g] for i, x in enumerate(q)},
                                   "typical": self.typical[d][:, g]})
                rows.append(df)
        return pd.concat(rows, ignore_index=True)
