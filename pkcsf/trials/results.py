"""Operating characteristics of simulated trials (:class:`TrialResults`)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkcsf.trials.common import TrialError

__all__ = ["TrialResults"]

# ---------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class TrialResults:
    """Operating characteristics of a design for one toxicity scenario.

    From :func:`simulate_trials` (Monte Carlo; per-trial arrays kept) or
    :func:`three_plus_three_exact` (exact; ``n_trials`` is None).

    Attributes
    ----------
    design : str
        Description of the design and its settings.
    doses : ndarray, shape (K,)
        Dose of each level (as given).
    true_p_dlt : ndarray, shape (K,)
        True DLT probability per dose; for exposure input the mean of the
        per-patient probabilities over the pool.
    p_select : ndarray, shape (K,)
        Probability of selecting each dose as the MTD.
    p_none : float
        Probability of selecting no dose (all doses too toxic / early stop).
    mean_n, mean_dlt : ndarray, shape (K,)
        Expected number of patients treated and of DLTs at each dose.
    mean_trial_size : float
        Expected number of patients per trial.
    n_trials : int or None
        Number of simulated trials (None for exact results).
    seed : int or None
        Seed (entropy) that reproduces the run.
    selected : ndarray of int, shape (n_trials,)
        Selected level per trial, ``-1`` for none.
    n_treated, n_dlt : ndarray of int, shape (n_trials, K)
        Patients and DLTs per trial and dose.
    exposure_percentiles : ndarray, shape (K, 3), or None
        5th, 50th, 95th percentile (inverted-CDF empirical quantile) of the
        exposures of all patients treated at each dose, over all trials
        (exposure input only; NaN where nobody was treated).
    p_target_attained : ndarray, shape (K,), or None
        Fraction of the exposure pool of each dose with exposure >=
        ``efficacy_target`` (exposure input with an efficacy target only).
    efficacy_target : float or None
        The exposure an efficacious dose should reach (exposure input only), in the exposure unit.
    notes : tuple of str
        Conventions worth knowing when reading the numbers.
    true_p_eff : ndarray, shape (K,), or None
        True response probability per dose (pool mean with exposure input), when responses were simulated.
    n_eff : ndarray of int, shape (n_trials, K), or None
        Responders per trial and dose.

    Examples
    --------
    >>> from pkcsf.trials import simulate_trials
    >>> res = simulate_trials("3+3", [10, 20, 40], p_dlt=[0.05, 0.15, 0.4], n_trials=200, seed=1)
    >>> res  # doctest: +ELLIPSIS
    TrialResults('3+3': 200 simulated trials, seed=1, 3 doses, most selected dose 20 (P=0.690), ...)
    >>> list(res.summary().columns[:4])
    ['level', 'dose', 'true_p_dlt', 'p_select']
    """

    design: str
    doses: np.ndarray
    true_p_dlt: np.ndarray
    p_select: np.ndarray
    p_none: float
    mean_n: np.ndarray
    mean_dlt: np.ndarray
    mean_trial_size: float
    n_trials: int | None = None
    seed: object = None
    selected: np.ndarray | None = None
    n_treated: np.ndarray | None = None
    n_dlt: np.ndarray | None = None
    exposure_percentiles: np.ndarray | None = None
    p_target_attained: np.ndarray | None = None
    efficacy_target: float | None = None
    notes: tuple = ()
    true_p_eff: np.ndarray | None = None
    n_eff: np.ndarray | None = None

    @property
    def exact(self) -> bool:
        """True for exact (enumerated) operating characteristics."""
        return self.n_trials is None

    @property
    def observed_dlt_rate(self) -> np.ndarray:
        """Pooled observed DLT rate per dose: E[DLTs] / E[patients] (NaN if never treated)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.mean_n > 0, self.mean_dlt / np.where(self.mean_n > 0, self.mean_n, 1), np.nan)

    @property
    def p_select_se(self) -> np.ndarray:
        """Monte Carlo standard error of :attr:`p_select` (zeros if exact)."""
        if self.exact:
            return np.zeros_like(self.p_select)
        return np.sqrt(self.p_select * (1 - self.p_select) / self.n_trials)

    @property
    def p_none_se(self) -> float:
        """Monte Carlo standard error of :attr:`p_none` (0 if exact)."""
        if self.exact:
            return 0.0
        return math.sqrt(self.p_none * (1 - self.p_none) / self.n_trials)

    @property
    def mean_n_se(self) -> np.ndarray:
        """Monte Carlo standard error of :attr:`mean_n` (zeros if exact)."""
        if self.exact:
            return np.zeros_like(self.mean_n)
        if self.n_trials < 2:
            return np.full_like(self.mean_n, np.nan)
        return self.n_treated.std(axis=0, ddof=1) / math.sqrt(self.n_trials)

    def _mean_se(self, per_trial) -> np.ndarray:
        if self.exact:
            return np.zeros(per_trial.shape[1] if per_trial is not None else len(self.doses))
        if self.n_trials < 2:
            return np.full(per_trial.shape[1], np.nan)
        return per_trial.std(axis=0, ddof=1) / math.sqrt(self.n_trials)

    @property
    def mean_dlt_se(self) -> np.ndarray:
        """Monte Carlo standard error of :attr:`mean_dlt` (zeros if exact)."""
        return self._mean_se(self.n_dlt)

    @property
    def mean_eff(self) -> np.ndarray | None:
        """Expected responders per dose (None when responses were not simulated)."""
        return None if self.n_eff is None else self.n_eff.mean(axis=0)

    @property
    def mean_eff_se(self) -> np.ndarray | None:
        """Monte Carlo standard error of :attr:`mean_eff`."""
        return None if self.n_eff is None else self._mean_se(self.n_eff)

    @property
    def mean_trial_size_se(self) -> float:
        """Monte Carlo standard error of :attr:`mean_trial_size` (0 if exact)."""
        if self.exact:
            return 0.0
        if self.n_trials < 2:
            return float("nan")
        return float(self.n_treated.sum(axis=1).std(ddof=1) / math.sqrt(self.n_trials))

    def summary(self) -> pd.DataFrame:
        """One row per dose level plus a last row (``level = -1``) for "no dose selected".

        Columns: ``level`` (0-based), ``dose``, ``true_p_dlt``, ``p_select``,
        ``p_select_se``, ``mean_n``, ``mean_n_se``, ``mean_dlt``, ``mean_dlt_se`` (Monte Carlo standard
        errors; 0 for exact results), ``observed_dlt_rate``, with simulated responses ``true_p_eff``,
        ``mean_eff``, ``mean_eff_se``, and
        for exposure input ``exposure_p05``, ``exposure_p50``,
        ``exposure_p95`` (and ``p_target_attained`` with an efficacy target).
        ``DataFrame.attrs`` holds ``design``, ``n_trials``, ``mean_trial_size``,
        ``p_none`` and ``notes``.

        Returns
        -------
        pandas.DataFrame
            K + 1 rows, the columns above.
        """
        K = len(self.doses)
        cols = {
            "level": np.r_[np.arange(K), -1],
            "dose": np.r_[self.doses, np.nan],
            "true_p_dlt": np.r_[self.true_p_dlt, np.nan],
            "p_select": np.r_[self.p_select, self.p_none],
            "p_select_se": np.r_[self.p_select_se, self.p_none_se],
            "mean_n": np.r_[self.mean_n, np.nan],
            "mean_n_se": np.r_[self.mean_n_se, np.nan],
            "mean_dlt": np.r_[self.mean_dlt, np.nan],
            "mean_dlt_se": np.r_[self.mean_dlt_se, np.nan],
            "observed_dlt_rate": np.r_[self.observed_dlt_rate, np.nan],
        }
        if self.n_eff is not None:
            cols["true_p_eff"] = np.r_[self.true_p_eff, np.nan]
            cols["mean_eff"] = np.r_[self.mean_eff, np.nan]
            cols["mean_eff_se"] = np.r_[self.mean_eff_se, np.nan]
        if self.exposure_percentiles is not None:
            for j, q in enumerate(("p05", "p50", "p95")):
                cols[f"exposure_{q}"] = np.r_[self.exposure_percentiles[:, j], np.nan]
        if self.p_target_attained is not None:
            cols["p_target_attained"] = np.r_[self.p_target_attained, np.nan]
        df = pd.DataFrame(cols)
        df.attrs.update(design=self.design, n_trials=self.n_trials, mean_trial_size=self.mean_trial_size,
                        mean_trial_size_se=self.mean_trial_size_se, p_none=self.p_none, p_none_se=self.p_none_se,
                        notes=list(self.notes))
        return df

    def per_trial(self) -> pd.DataFrame:
        """One row per simulated trial.

        Returns
        -------
        pandas.DataFrame
            Columns ``trial``, ``selected`` (level, -1 none), ``selected_dose`` (NaN for none),
            ``n_total``, ``dlt_total``.

        Raises
        ------
        TrialError
            For exact results (:func:`~pkcsf.trials.three_plus_three_exact`), which have no trials.
        """
        if self.exact:
            raise TrialError("per_trial", None, "exact results have no individual trials",
                             "use simulate_trials for per-trial output")
        sel = self.selected
        dose = np.where(sel >= 0, self.doses[np.clip(sel, 0, None)], np.nan)
        return pd.DataFrame({"trial": np.arange(self.n_trials), "selected": sel, "selected_dose": dose,
                             "n_total": self.n_treated.sum(axis=1), "dlt_total": self.n_dlt.sum(axis=1)})

    def __repr__(self) -> str:
        # one line: the per-trial arrays (n_trials x K) would make the dataclass repr thousands of characters
        run = "exact" if self.exact else f"{self.n_trials} simulated trials, seed={self.seed!r}"
        best = int(np.argmax(self.p_select)) if len(self.p_select) else -1
        top = f", most selected dose {self.doses[best]:g} (P={self.p_select[best]:.3f})" if best >= 0 else ""
        return (f"TrialResults({self.design.split(' (')[0]!r}: {run}, {len(self.doses)} doses{top}, "
                f"P(none)={self.p_none:.3f}, mean trial size {self.mean_trial_size:.2f})")

    def __str__(self) -> str:
        head = f"{self.design}: " + ("exact" if self.exact else f"{self.n_trials} simulated trials")
        head += f", mean trial size {self.mean_trial_size:.2f}, P(no MTD) {self.p_none:.3f}"
        return head + "\n" + self.summary().to_string(index=False)
