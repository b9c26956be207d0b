"""What a virtual escalation returns: :class:`EscalationResult` (operating characteristics per dose, the
exposure pools, provenance) and :class:`ScheduleComparison` (the same escalation under several schedules).

Public names are re-exported by :mod:`pkcsf.clinical.escalation`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pkcsf.clinical.escalation_spec import EfficacyTarget, ExposureSpec
from pkcsf.trials import designs as T

__all__ = ["EscalationResult", "ScheduleComparison"]


@dataclass(eq=False)
class EscalationResult:
    """Operating characteristics of a PK-driven virtual escalation; see :func:`simulate_escalation`.

    Attributes
    ----------
    drug, route : str
        The drug and its route.
    trials : TrialResults
        The design's operating characteristics (per-trial arrays included).
    doses : ndarray (K,), mg
    exposures : ndarray (K, m)
        One exposure per virtual patient (row: dose level; same patient in the same column).
    p_dlt : ndarray (K, m)
        ``link(exposures)``: each pool patient's DLT probability.
    pd : dict or None
        With ``dlt="neutropenia"``: per pool patient ``nadir`` (1e9/L), ``grade``, ``time_to_nadir`` (h), shape
        (K, m); the typical patient's ``typical_nadir`` and ``typical_grade`` (K,); ``observed_checks``
        (published DLT rates vs predicted, a DataFrame); the model description.
    efficacy_values : ndarray (K, m) or None
        The efficacy read-out of each pool patient (unit of the efficacy metric).
    link : callable
    exposure : ExposureSpec
    exposure_unit : str
    efficacy : EfficacyTarget or None
    efficacy_threshold : float or None
        The efficacy target's value in the unit of the efficacy metric.
    provenance : dict
        Drug, route, regimen per dose, design, link and its source, seeds, pool size, timings, version.
    references : list of str
        The references behind the run (:meth:`cite`).
    notes : tuple of str
        What the reader should know (assumed link, missing variability, PD caveats, reality-check misses).
    """

    drug: str
    route: str
    doses: np.ndarray
    exposure: ExposureSpec
    exposure_unit: str
    exposures: np.ndarray
    p_dlt: np.ndarray
    link: object
    trials: T.TrialResults
    efficacy: EfficacyTarget | None
    efficacy_values: np.ndarray | None
    efficacy_threshold: float | None
    provenance: dict
    references: list = field(default_factory=list)
    notes: tuple = ()
    pd: dict | None = None

    @property
    def efficacy_attainment(self) -> np.ndarray | None:
        """Fraction of each dose's pool meeting the efficacy target (K,), or None."""
        if self.efficacy_values is None:
            return None
        return (self.efficacy_values >= self.efficacy_threshold - 1e-12).mean(axis=1)

    def summary(self) -> pd.DataFrame:
        """The operating characteristics per dose level.

        Returns
        -------
        pandas.DataFrame
            One row per dose level and a last row ``dose = NaN`` for "no dose selected". Columns: ``level``, ``dose`` (mg), ``p_select``, ``mean_n`` (expected patients treated), ``mean_dlt``
            (expected DLTs), each followed by its Monte Carlo standard error (``*_se``), ``observed_dlt_rate``
            (E[DLT]/E[n]), ``true_p_dlt`` (mean DLT probability over the dose's pool) and ``true_p_dlt_se`` (its
            sampling error over the pool's ``subjects``), with simulated responses ``true_p_eff``, ``mean_eff``,
            ``mean_eff_se``, ``exposure_p5``, ``exposure_p50``, ``exposure_p95`` (percentiles of the pool, in
            ``attrs["exposure_unit"]``) and, with an efficacy target, ``efficacy_attainment`` (fraction of the
            pool meeting it) and ``efficacy_attainment_se``. ``attrs``: design, n_trials, mean_trial_size,
            p_none, exposure, exposure_unit, link, efficacy, notes.
        """
        tr = self.trials
        # the trial read-outs as the trials module reports them; the exposure columns here describe
        # the whole pool of each dose (the trials module's describe the patients actually treated)
        base = tr.summary()
        cols = ["level", "dose", "p_select", "p_select_se", "mean_n", "mean_n_se", "mean_dlt", "mean_dlt_se",
                "observed_dlt_rate", "true_p_dlt"]
        cols += [c for c in ("true_p_eff", "mean_eff", "mean_eff_se") if c in base.columns]
        df = base[cols].copy()
        df["dose"] = np.r_[self.doses, np.nan]
        # sampling error of the pool itself (m virtual patients per dose), not of the trial simulation
        m = self.p_dlt.shape[1]
        df.insert(df.columns.get_loc("true_p_dlt") + 1, "true_p_dlt_se",
                  np.r_[self.p_dlt.std(axis=1, ddof=1) / math.sqrt(m) if m > 1 else np.full(len(self.doses), np.nan),
                        np.nan])
        pct = np.percentile(self.exposures, [5, 50, 95], axis=1)
        for q, row in zip((5, 50, 95), pct):
            df[f"exposure_p{q}"] = np.r_[row, np.nan]
        att = self.efficacy_attainment
        if att is not None:
            df["efficacy_attainment"] = np.r_[att, np.nan]
            df["efficacy_attainment_se"] = np.r_[np.sqrt(att * (1 - att) / self.efficacy_values.shape[1]), np.nan]
        if self.pd is not None:        # per-patient PD read-outs of each dose's pool
            nad = np.percentile(self.pd["nadir"], [5, 50], axis=1)
            df["anc_nadir_p5"] = np.r_[nad[0], np.nan]
            df["anc_nadir_p50"] = np.r_[nad[1], np.nan]
            df["p_grade4"] = np.r_[(self.pd["grade"] >= 4).mean(axis=1), np.nan]
            df["typical_grade"] = np.r_[self.pd["typical_grade"].astype(float), np.nan]
            if "grade_course" in self.pd:      # cumulative over the whole simulated course (all cycles)
                df["p_dlt_grade_course"] = np.r_[(self.pd["grade_course"] >= self.pd["dlt_grade"]).mean(axis=1),
                                                 np.nan]
        df.attrs.update(base.attrs)
        df.attrs.update(exposure=self.exposure.label, exposure_unit=self.exposure_unit,
                        link=self.provenance["link"], efficacy=None if self.efficacy is None else self.efficacy.label,
                        notes=list(self.notes) + list(tr.notes))
        return df

    def exposure_frame(self) -> pd.DataFrame:
        """The exposure pools, tidy.

        Returns
        -------
        pandas.DataFrame
            One row per dose and virtual patient: ``dose`` (mg), ``id``, ``exposure``, ``p_dlt``; with the PD
            DLT model also ``anc_nadir`` (1e9/L) and ``neutropenia_grade``, with an efficacy target ``efficacy`` and
            ``efficacy_met``.
        """
        K, m = self.exposures.shape
        df = pd.DataFrame({"dose": np.repeat(self.doses, m), "id": np.tile(np.arange(m), K),
                           "exposure": self.exposures.ravel(), "p_dlt": self.p_dlt.ravel()})
        if self.pd is not None:
            df["anc_nadir"] = self.pd["nadir"].ravel()
            df["neutropenia_grade"] = self.pd["grade"].ravel()
        if self.efficacy_values is not None:
            df["efficacy"] = self.efficacy_values.ravel()
            df["efficacy_met"] = df["efficacy"] >= self.efficacy_threshold - 1e-12
        df.attrs.update(exposure=self.exposure.label, unit=self.exposure_unit)
        return df

    def cite(self) -> list[str]:
        """References behind the run: drug and physiology parameters, the MTD anchor, the design.

        Returns
        -------
        list of str
        """
        return list(self.references)

    def __repr__(self) -> str:
        return (f"EscalationResult({self.drug} {self.route}, doses {self.doses.tolist()} mg, {self.trials.design}, "
                f"{self.trials.n_trials} trials, exposure {self.exposure.label} [{self.exposure_unit}])")

    def __str__(self) -> str:
        s = self.summary()
        head = (f"{self.drug} by {self.route}: {s.attrs['design']}, {s.attrs['n_trials']} virtual trials, "
                f"exposure {s.attrs['exposure']} ({s.attrs['exposure_unit']})\nlink: {s.attrs['link']}")
        out = head + "\n" + s.to_string(index=False)
        if self.pd is not None and len(self.pd["observed_checks"]):
            c = self.pd["observed_checks"]
            lines = [f"  {r.key}: {r.dose:g} mg, observed {r.events}/{r.n} (95% CI {r.ci_low:.0%}-{r.ci_high:.0%}), "
                     f"predicted {'-' if np.isnan(r.predicted) else format(r.predicted, '.1%')}: {r.verdict}"
                     for r in c.itertuples()]
            out += "\nreality check (published haematological DLTs):\n" + "\n".join(lines)
        return out


@dataclass(eq=False)
class ScheduleComparison:
    """Operating characteristics of the same escalation under several schedules; see :func:`compare_schedules`.

    Attributes
    ----------
    results : dict
        Schedule name -> :class:`EscalationResult`.
    """

    results: dict

    def table(self) -> pd.DataFrame:
        """The operating characteristics per schedule and dose level.

        Returns
        -------
        pandas.DataFrame
            One row per schedule and dose level: ``schedule``, ``level``, ``dose``, ``p_select``,
            ``p_select_se``, ``mean_n``, ``mean_n_se``, ``mean_dlt``, ``mean_dlt_se``, ``true_p_dlt``,
            ``true_p_dlt_se`` and, when present, ``true_p_eff``, ``mean_eff``, ``mean_eff_se``,
            ``efficacy_attainment`` (``_se``), ``p_dlt_grade_course``, ``exposure_p50``. The ``*_se`` of trial
            read-outs are Monte Carlo errors of the trial simulation given the pool; those of ``true_p_dlt``
            and ``efficacy_attainment`` are the sampling errors of the pool of virtual patients.
        """
        rows = []
        keep = ["level", "dose", "p_select", "p_select_se", "mean_n", "mean_n_se", "mean_dlt", "mean_dlt_se",
                "observed_dlt_rate", "true_p_dlt", "true_p_dlt_se", "true_p_eff", "mean_eff", "mean_eff_se",
                "efficacy_attainment", "efficacy_attainment_se", "p_dlt_grade_course", "exposure_p50"]
        for name, r in self.results.items():
            s = r.summary()
            df = s.loc[s["level"] >= 0, [c for c in keep if c in s.columns]].copy()
            df.insert(0, "schedule", name)
            rows.append(df)
        out = pd.concat(rows, ignore_index=True)
        out.attrs["exposure"] = next(iter(self.results.values())).exposure.label
        return out

    def overall(self) -> pd.DataFrame:
        """The trial totals per schedule.

        Returns
        -------
        pandas.DataFrame
            One row per schedule: ``p_none`` (no dose selected) and the trial totals, each with its Monte Carlo
            standard error (``total_dlt``: DLTs per trial; ``total_eff``: responders per trial when simulated).
        """
        out = []
        for name, r in self.results.items():
            t = r.trials
            N = t.n_trials
            tot = t.n_dlt.sum(axis=1)
            row = {"schedule": name, "p_none": t.p_none, "p_none_se": t.p_none_se,
                   "mean_trial_size": t.mean_trial_size, "mean_trial_size_se": t.mean_trial_size_se,
                   "total_dlt": float(tot.mean()), "total_dlt_se": float(tot.std(ddof=1) / math.sqrt(N)) if N > 1
                   else float("nan")}
            if t.n_eff is not None:
                te = t.n_eff.sum(axis=1)
                row["total_eff"] = float(te.mean())
                row["total_eff_se"] = float(te.std(ddof=1) / math.sqrt(N)) if N > 1 else float("nan")
            row["regimen_example"] = next(iter(r.provenance["regimens"].values()))
            out.append(row)
        return pd.DataFrame(out)
