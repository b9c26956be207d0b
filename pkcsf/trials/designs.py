"""Virtual dose-escalation trials and their operating characteristics.

A trial designer picks dose levels and a design; :func:`simulate_trials` runs
thousands of virtual trials and returns a :class:`TrialResults` with the
operating characteristics (probability of selecting each dose or none,
expected patients and DLTs per dose, mean trial size, ...).

Toxicity enters in one of two ways:

1. **true DLT probabilities**, one per dose level (``p_dlt``, shape ``(K,)``);
2. **per-patient exposures** from the pharmacokinetic simulation
   (``exposure``, shape ``(K, m)``: ``m`` virtual patients per dose level, in
   whatever exposure metric the link expects, e.g. plasma AUC in mg*h/L or
   CSF Cmax in mg/L) and an exposure-toxicity ``link`` such as
   :class:`LogisticExposureToxicity` that turns each exposure into that
   patient's DLT probability. Each virtual trial patient is drawn with
   replacement from the pool of its dose level and has a DLT with
   probability ``link(exposure)``.

Designs (small frozen objects, or their names ``"3+3"``, ``"boin"``, ``"crm"``):

* :class:`ThreePlusThree`: the traditional 3+3 with de-escalation and six
  patients required at the declared MTD (variant spelled out in its docstring;
  exact operating characteristics in :func:`three_plus_three_exact`);
* :class:`BOIN`: Bayesian optimal interval design (Liu & Yuan 2015), with
  the conventions of the ``BOIN`` R package (Yan et al. 2020);
* :class:`CRM`: one-parameter power-model continual reassessment method
  (O'Quigley, Pepe & Fisher 1990) with the ``dfcrm`` defaults (Cheung 2011)
  and Lee & Cheung (2009) skeletons (:func:`crm_skeleton`).

Speed and reproducibility. All trials of a chunk run in lock-step, cohort by
cohort, on NumPy state arrays. Random numbers come from a counter-based
generator (Philox keyed by ``seed``): trial ``j`` reads the ``j``-th fixed-size
block of the stream, so its outcome depends only on ``(seed, j)`` and the
design's block size, never on ``n_trials`` or on the chunking. Every dose
level has a fixed number of patient "slots" per trial, each with its own
uniform(s); the design consumes the slots of a dose in order.

Dose levels are indexed from 0 in arrays (``selected`` is ``-1`` when no dose
is selected); ``doses`` carries the dose values for display.

References
----------
Storer BE (1989). Design and analysis of phase I clinical trials.
*Biometrics* 45:925-937.
Lin Y, Shih WJ (2001). Statistical properties of the traditional algorithm-based
designs for phase I cancer clinical trials. *Biostatistics* 2:203-215.
Liu S, Yuan Y (2015). Bayesian optimal interval designs for phase I clinical
trials. *J R Stat Soc C* 64:507-523. doi:10.1111/rssc.12089
Yuan Y, Hess KR, Hilsenbeck SG, Gilbert MR (2016). Bayesian optimal interval
design: a simple and well-performing design for phase I oncology trials.
*Clin Cancer Res* 22:4291-4301. doi:10.1158/1078-0432.CCR-16-0592
Yan F, Zhang L, Zhou Y, Pan H, Liu S, Yuan Y (2020). BOIN: an R package for
designing single-agent and drug-combination dose-finding trials using Bayesian
optimal interval designs. *J Stat Softw* 94(13). doi:10.18637/jss.v094.i13
O'Quigley J, Pepe M, Fisher L (1990). Continual reassessment method: a
practical design for phase 1 clinical trials in cancer. *Biometrics* 46:33-48.
Cheung YK (2011). *Dose Finding by the Continual Reassessment Method*.
Chapman & Hall/CRC (R package ``dfcrm``).
Lee SM, Cheung YK (2009). Model calibration in the continual reassessment
method. *Clin Trials* 6:227-238. doi:10.1177/1740774509105076
Robertson T, Wright FT, Dykstra RL (1988). *Order Restricted Statistical
Inference*. Wiley (min-max formula for isotonic regression, Thm 1.4.4).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkcsf.core.errors import PkcsfError, check_choice

__all__ = [
    "TrialError",
    "ThreePlusThree",
    "BOIN",
    "CRM",
    "DESIGNS",
    "LogisticExposureToxicity",
    "TrialResults",
    "CrmPosterior",
    "simulate_trials",
    "three_plus_three_exact",
    "boin_boundaries",
    "boin_decision_table",
    "crm_skeleton",
    "crm_posterior",
    "isotonic_regression",
]

#: Default slope of :class:`LogisticExposureToxicity` on the natural-log
#: exposure scale (an assumption, see the class docstring).
DEFAULT_SLOPE = 2.0
#: Default DLT probability at the exposure of the literature MTD
#: (an assumption, see :meth:`LogisticExposureToxicity.from_mtd_exposure`).
DEFAULT_P_AT_MTD = 0.30

_DEFAULT_CRM_PRIOR_SD = math.sqrt(1.34)  # dfcrm: scale = sqrt(1.34), i.e. variance 1.34
_ELEMENTS_PER_CHUNK = 1 << 22  # ~32 MB of float64 per work array


class TrialError(PkcsfError):
    """A trial design, a toxicity scenario or a simulation option is invalid."""


# ---------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------

def _check_int(field_name, value, minimum=1):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TrialError(field_name, value, f"must be an integer >= {minimum}")
    if value < minimum:
        raise TrialError(field_name, value, f"must be an integer >= {minimum}")
    return int(value)


def _check_prob(field_name, value, *, open_interval=True):
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise TrialError(field_name, value, "must be a number") from None
    if open_interval:
        if not (0.0 < x < 1.0):
            raise TrialError(field_name, value, "must be a probability strictly between 0 and 1")
    elif not (0.0 <= x <= 1.0):
        raise TrialError(field_name, value, "must be a probability between 0 and 1")
    return x


def _check_prob_array(field_name, values, *, open_interval=False):
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        raise TrialError(field_name, values, "must be an array of probabilities") from None
    if arr.ndim != 1 or arr.size == 0:
        raise TrialError(field_name, values, "must be a non-empty 1-D array (one probability per dose level)")
    lo_ok = arr > 0 if open_interval else arr >= 0
    hi_ok = arr < 1 if open_interval else arr <= 1
    bad = ~(np.isfinite(arr) & lo_ok & hi_ok)
    if bad.any():
        i = int(np.argmax(bad))
        rule = "strictly between 0 and 1" if open_interval else "between 0 and 1"
        raise TrialError(f"{field_name}[{i}]", float(arr[i]), f"must be a probability {rule}")
    return arr


def _check_doses(doses):
    try:
        arr = np.asarray(doses, dtype=float)
    except (TypeError, ValueError):
        raise TrialError("doses", doses, "must be numbers (the dose of each level, e.g. mg)") from None
    if arr.ndim != 1 or arr.size == 0:
        raise TrialError("doses", doses, "must be a non-empty 1-D array, one dose per level")
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        i = int(np.argmax(bad))
        raise TrialError(f"doses[{i}]", float(arr[i]), "must be finite and > 0")
    if arr.size > 1 and not np.all(np.diff(arr) > 0):
        i = int(np.argmax(~(np.diff(arr) > 0))) + 1
        raise TrialError(f"doses[{i}]", float(arr[i]),
                         f"doses must be strictly increasing (doses[{i - 1}] = {arr[i - 1]:g})",
                         "list the dose levels from lowest to highest")
    return arr


# ---------------------------------------------------------------------------
# exposure-toxicity link
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LogisticExposureToxicity:
    r"""Logistic exposure-toxicity link: DLT probability of one patient.

    .. math::

        p(E) = \frac{1}{1 + \exp\{-\mathrm{slope}\,(\log E - \log E_{50})\}}

    (or ``slope * (E - e50)`` when ``log_exposure=False``).

    Parameters
    ----------
    e50 : float
        Exposure with a 50 % DLT probability, in the unit of the exposure
        passed to :func:`simulate_trials` (e.g. mg*h/L for AUC). > 0.
    slope : float
        Steepness; per natural-log unit of exposure when ``log_exposure``,
        else per exposure unit. > 0. Default :data:`DEFAULT_SLOPE` = 2.
    log_exposure : bool
        Model on log exposure (default) or on exposure itself.
    source, note : str
        Provenance of the link. The default is ``"assumption"``.

    Notes
    -----
    **The default is a user-overridable assumption, not a literature value.**
    :meth:`from_mtd_exposure` anchors the curve at the dose the literature calls
    the MTD: the caller passes the (typical) exposure at that dose, and ``e50``
    is chosen so that the DLT probability there is 30 % (the usual target of
    phase I oncology designs, i.e. the MTD "definition" of the 3+3 era). The
    default slope of 2 per log unit means the odds of a DLT multiply by
    :math:`2^2 = 4` per doubling of exposure: about 10 % at half the MTD
    exposure and 63 % at twice it, a steep curve as usually seen for cytotoxic
    DLTs (myelosuppression, neurotoxicity). Replace it by a fitted
    exposure-toxicity model whenever one exists.
    """

    e50: float
    slope: float = DEFAULT_SLOPE
    log_exposure: bool = True
    source: str = "assumption"
    note: str = ""

    def __post_init__(self):
        for name in ("e50", "slope"):
            v = getattr(self, name)
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise TrialError(f"LogisticExposureToxicity.{name}", v, "must be a number > 0") from None
            if not (math.isfinite(x) and x > 0):
                raise TrialError(f"LogisticExposureToxicity.{name}", v, "must be finite and > 0")
            object.__setattr__(self, name, x)

    @classmethod
    def from_mtd_exposure(cls, mtd_exposure, *, p_at_mtd=DEFAULT_P_AT_MTD, slope=DEFAULT_SLOPE,
                          log_exposure=True, source="assumption", note=""):
        """Link anchored at the exposure of the literature MTD.

        Parameters
        ----------
        mtd_exposure : float
            Typical exposure at the dose the literature calls the MTD (> 0),
            in the exposure unit used for the trial.
        p_at_mtd : float
            DLT probability assumed at that exposure (default 0.30).
        slope : float
            See the class; default 2 per natural-log unit.

        Returns
        -------
        LogisticExposureToxicity
            with ``e50 = mtd_exposure * exp(-logit(p_at_mtd) / slope)`` (log
            scale) or ``mtd_exposure - logit(p_at_mtd) / slope`` (linear).
        """
        try:
            e = float(mtd_exposure)
        except (TypeError, ValueError):
            raise TrialError("mtd_exposure", mtd_exposure, "must be a number > 0") from None
        if not (math.isfinite(e) and e > 0):
            raise TrialError("mtd_exposure", mtd_exposure, "must be finite and > 0")
        p = _check_prob("p_at_mtd", p_at_mtd)
        s = float(slope)
        if not (math.isfinite(s) and s > 0):
            raise TrialError("slope", slope, "must be finite and > 0")
        logit = math.log(p / (1 - p))
        e50 = e * math.exp(-logit / s) if log_exposure else e - logit / s
        if not e50 > 0:
            raise TrialError("mtd_exposure", mtd_exposure,
                             "gives e50 <= 0 on the linear scale", "use log_exposure=True or a larger slope")
        if not note:
            note = f"anchored: p = {p:g} at exposure {e:g} (literature MTD), slope {s:g}"
        return cls(e50, s, log_exposure, source, note)

    def __call__(self, exposure):
        """DLT probability for each exposure (array-like, >= 0)."""
        e = np.asarray(exposure, dtype=float)
        with np.errstate(divide="ignore", over="ignore"):
            if self.log_exposure:
                z = self.slope * (np.log(e) - math.log(self.e50))
            else:
                z = self.slope * (e - self.e50)
            return 1.0 / (1.0 + np.exp(-z))


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
    notes : tuple of str
        Conventions worth knowing when reading the numbers.
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

    @property
    def mean_trial_size_se(self) -> float:
        if self.exact:
            return 0.0
        if self.n_trials < 2:
            return float("nan")
        return float(self.n_treated.sum(axis=1).std(ddof=1) / math.sqrt(self.n_trials))

    def summary(self) -> pd.DataFrame:
        """One row per dose level plus a last row (``level = -1``) for "no dose selected".

        Columns: ``level`` (0-based), ``dose``, ``true_p_dlt``, ``p_select``,
        ``p_select_se``, ``mean_n``, ``mean_dlt``, ``observed_dlt_rate``, and
        for exposure input ``exposure_p05``, ``exposure_p50``,
        ``exposure_p95`` (and ``p_target_attained`` with an efficacy target).
        ``DataFrame.attrs`` holds ``design``, ``n_trials``, ``mean_trial_size``,
        ``p_none`` and ``notes``.
        """
        K = len(self.doses)
        cols = {
            "level": np.r_[np.arange(K), -1],
            "dose": np.r_[self.doses, np.nan],
            "true_p_dlt": np.r_[self.true_p_dlt, np.nan],
            "p_select": np.r_[self.p_select, self.p_none],
            "p_select_se": np.r_[self.p_select_se, self.p_none_se],
            "mean_n": np.r_[self.mean_n, np.nan],
            "mean_dlt": np.r_[self.mean_dlt, np.nan],
            "observed_dlt_rate": np.r_[self.observed_dlt_rate, np.nan],
        }
        if self.exposure_percentiles is not None:
            for j, q in enumerate(("p05", "p50", "p95")):
                cols[f"exposure_{q}"] = np.r_[self.exposure_percentiles[:, j], np.nan]
        if self.p_target_attained is not None:
            cols["p_target_attained"] = np.r_[self.p_target_attained, np.nan]
        df = pd.DataFrame(cols)
        df.attrs.update(design=self.design, n_trials=self.n_trials, mean_trial_size=self.mean_trial_size,
                        p_none=self.p_none, notes=list(self.notes))
        return df

    def per_trial(self) -> pd.DataFrame:
        """One row per simulated trial: ``trial``, ``selected`` (level, -1 none),
        ``selected_dose`` (NaN for none), ``n_total``, ``dlt_total``."""
        if self.exact:
            raise TrialError("per_trial", None, "exact results have no individual trials",
                             "use simulate_trials for per-trial output")
        sel = self.selected
        dose = np.where(sel >= 0, self.doses[np.clip(sel, 0, None)], np.nan)
        return pd.DataFrame({"trial": np.arange(self.n_trials), "selected": sel, "selected_dose": dose,
                             "n_total": self.n_treated.sum(axis=1), "dlt_total": self.n_dlt.sum(axis=1)})

    def __str__(self) -> str:
        head = f"{self.design}: " + ("exact" if self.exact else f"{self.n_trials} simulated trials")
        head += f", mean trial size {self.mean_trial_size:.2f}, P(no MTD) {self.p_none:.3f}"
        return head + "\n" + self.summary().to_string(index=False)


# ---------------------------------------------------------------------------
# 3+3
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ThreePlusThree:
    """The traditional 3+3 design, with de-escalation and 6 patients at the MTD.

    Variant implemented (Storer 1989 "design A" plus the common requirement of
    six patients at the declared MTD, as in Lin & Shih 2001):

    1. Start at the lowest dose; treat cohorts of 3.
    2. At a dose first reached while escalating:

       * 0/3 DLT: escalate (at the **top** dose: treat 3 more instead);
       * 1/3: treat 3 more; with <= 1/6 escalate (at the top dose: stop and
         select the top dose); with >= 2/6 the dose is too toxic;
       * >= 2/3: the dose is too toxic.

    3. When a dose is too toxic, de-escalate to the next lower dose:

       * if it already has 6 patients (it had 1/6), it is the MTD;
       * if it has only 3 (0/3), treat 3 more there: <= 1/6 makes it the MTD,
         >= 2/6 makes it too toxic and de-escalation continues;
       * below the lowest dose: no MTD (the trial selects none).

    So the MTD is the highest dose with <= 1 DLT among 6 patients below a
    too-toxic dose. If no dose is too toxic the top dose is selected with 6
    patients (0 or 1 DLT): the MTD was **not reached** within the tested range
    and may be higher (:attr:`TrialResults.notes` says so). A common laxer
    variant stops at the top dose after 0/3 and selects it with only 3
    patients; that variant is not implemented. Doses are never re-escalated to
    after a de-escalation. At most 6 patients are treated at any dose, so a
    trial has at most ``6 K`` patients.
    """

    name = "3+3"

    def describe(self) -> str:
        return "3+3 (de-escalation, 6 patients at the MTD)"

    def _slots(self, K: int) -> int:
        return 6

    def _check_k(self, K: int) -> None:
        return None

    def _notes(self):
        return ("3+3: selecting the top dose means no tested dose was too toxic; "
                "the MTD was not reached and may lie above the tested range.",)

    def _run(self, C: np.ndarray):
        """Run trials in lock-step. ``C[j, k, s]``: DLTs among the first ``s``
        patients of dose ``k`` in trial ``j``. Returns (selected, n, x)."""
        J, K, _ = C.shape
        n = np.zeros((J, K), dtype=np.int64)
        x = np.zeros((J, K), dtype=np.int64)
        d = np.zeros(J, dtype=np.int64)
        deesc = np.zeros(J, dtype=bool)       # in the de-escalation phase
        sel = np.full(J, -2, dtype=np.int64)  # -2: running
        act = np.arange(J)
        top = K - 1
        while act.size:
            dd = d[act]
            n1 = n[act, dd] + 3
            x1 = C[act, dd, n1]
            n[act, dd] = n1
            x[act, dd] = x1
            toxic = x1 >= 2
            esc = ~deesc[act] & ~toxic
            expand = esc & (n1 == 3) & ((x1 == 1) | (dd == top))
            passed = esc & ~expand                      # 0/3 or <=1/6 while escalating
            go_up = passed & (dd < top)
            select_here = (passed & (dd == top)) | (deesc[act] & ~toxic)
            d[act[go_up]] += 1
            sel[act[select_here]] = dd[select_here]
            # too toxic: de-escalate
            t = act[toxic]
            if t.size:
                below = d[t] - 1
                none = below < 0
                sel[t[none]] = -1
                t, below = t[~none], below[~none]
                deesc[t] = True
                d[t] = below
                has6 = n[t, below] >= 6
                sel[t[has6]] = below[has6]
            act = act[sel[act] == -2]
        return sel, n, x


def three_plus_three_exact(p_dlt, doses=None) -> TrialResults:
    """Exact operating characteristics of :class:`ThreePlusThree`.

    Enumerates the binomial outcomes dose by dose. Escalation passes dose
    ``i`` either with 0/3 (prob. :math:`a_i=(1-p_i)^3`, 3 patients) or with
    1/3 then 0/3 (prob. :math:`b_i=3p_i(1-p_i)^2(1-p_i)^3`, 6 patients); the
    outcomes of different doses are independent. If dose ``j`` is too toxic,
    de-escalation reaches ``j-1``; a dose ``i`` below, conditionally on having
    been passed, had 6 patients with probability :math:`b_i/(a_i+b_i)` (then
    it is the MTD), else 3 patients are added and it is the MTD with
    probability :math:`P(\\mathrm{Bin}(3,p_i)\\le 1)`. This gives the
    recursion for the probability :math:`G_i` that de-escalation arrives at
    ``i``: :math:`G_i = D_{i+1} + G_{i+1}\\,\\alpha_{i+1}(1-q_{i+1})` with
    :math:`D_j` the probability that ``j`` is found too toxic while
    escalating. Expected DLTs follow from Wald's identity,
    ``E[DLT_k] = p_k E[n_k]``. Cost O(K).

    Parameters
    ----------
    p_dlt : array-like, shape (K,)
        True DLT probability per dose level, in [0, 1].
    doses : array-like, shape (K,), optional
        Dose values for display (default 1..K).

    Returns
    -------
    TrialResults
        with ``n_trials=None``.
    """
    p = _check_prob_array("p_dlt", p_dlt)
    K = p.size
    doses = np.arange(1.0, K + 1) if doses is None else _check_doses(doses)
    if doses.size != K:
        raise TrialError("doses", doses, f"must have one dose per level ({K} levels in p_dlt)")
    q0 = (1 - p) ** 3                  # 0/3
    q1 = 3 * p * (1 - p) ** 2          # exactly 1/3
    qe = q0 + q1                       # <= 1 DLT among 3 added patients
    a = q0.copy()                      # pass with 3 patients (non-top)
    b = q1 * q0                        # pass with 6 patients, 1 DLT
    passed = a + b
    with np.errstate(invalid="ignore", divide="ignore"):
        alpha = np.where(passed > 0, a / np.where(passed > 0, passed, 1), 0.0)
    beta = np.where(passed > 0, 1 - alpha, 0.0)
    pass_top = q0[-1] * qe[-1] + b[-1]          # top dose: 0/3 then <=1/3, or 1/3 then 0/3
    reach = np.ones(K)                          # R_i = P(escalation reaches dose i)
    for i in range(1, K):
        reach[i] = reach[i - 1] * passed[i - 1]
    toxic_first = 1 - passed
    toxic_first[-1] = 1 - pass_top
    D = reach * toxic_first                     # found too toxic while escalating
    G = np.zeros(K)                             # G_i: de-escalation arrives at i (i < K-1)
    for i in range(K - 2, -1, -1):
        G[i] = D[i + 1] + (G[i + 1] * alpha[i + 1] * (1 - qe[i + 1]) if i + 1 < K - 1 else 0.0)
    p_select = G * (beta + alpha * qe)
    p_select[-1] = reach[-1] * pass_top
    p_none = D[0] + (G[0] * alpha[0] * (1 - qe[0]) if K > 1 else 0.0)
    first_n = 3 + 3 * q1                        # expansion iff exactly 1/3
    first_n[-1] = 3 + 3 * (q0[-1] + q1[-1])     # top also expands after 0/3
    mean_n = reach * first_n + 3 * G * alpha
    mean_dlt = p * mean_n
    return TrialResults(design=ThreePlusThree().describe(), doses=doses, true_p_dlt=p, p_select=p_select,
                        p_none=float(p_none), mean_n=mean_n, mean_dlt=mean_dlt,
                        mean_trial_size=float(mean_n.sum()), notes=ThreePlusThree()._notes())


# ---------------------------------------------------------------------------
# BOIN
# ---------------------------------------------------------------------------

def boin_boundaries(target, p_saf=None, p_tox=None):
    r"""BOIN escalation and de-escalation boundaries :math:`(\lambda_e, \lambda_d)`.

    Liu & Yuan (2015), eq. (3):

    .. math::

        \lambda_e = \frac{\log\frac{1-\phi_1}{1-\phi}}{\log\frac{\phi(1-\phi_1)}{\phi_1(1-\phi)}},\qquad
        \lambda_d = \frac{\log\frac{1-\phi}{1-\phi_2}}{\log\frac{\phi_2(1-\phi)}{\phi(1-\phi_2)}}

    with :math:`\phi_1 = 0.6\phi` and :math:`\phi_2 = 1.4\phi` by default.
    For :math:`\phi = 0.25`: (0.197, 0.298); for 0.30: (0.236, 0.358).

    Parameters
    ----------
    target : float
        Target DLT rate :math:`\phi`, in (0, 1).
    p_saf, p_tox : float, optional
        :math:`\phi_1 < \phi` (highest rate deemed sub-therapeutic) and
        :math:`\phi_2 > \phi` (lowest rate deemed overly toxic).

    Returns
    -------
    (float, float)
    """
    phi = _check_prob("target", target)
    phi1 = 0.6 * phi if p_saf is None else _check_prob("p_saf", p_saf)
    phi2 = 1.4 * phi if p_tox is None else _check_prob("p_tox", p_tox)
    if not phi1 < phi:
        raise TrialError("p_saf", phi1, f"must be < target ({phi:g})")
    if not phi2 > phi:
        raise TrialError("p_tox", phi2, f"must be > target ({phi:g})")
    lam_e = math.log((1 - phi1) / (1 - phi)) / math.log(phi * (1 - phi1) / (phi1 * (1 - phi)))
    lam_d = math.log((1 - phi) / (1 - phi2)) / math.log(phi2 * (1 - phi) / (phi * (1 - phi2)))
    return lam_e, lam_d


def boin_decision_table(target, max_n, *, p_saf=None, p_tox=None, cutoff_eli=0.95):
    """BOIN decision table for n = 0..max_n patients at a dose.

    Conventions of the ``BOIN`` R package ``get.boundary`` (Yan et al. 2020):
    escalate if ``y <= floor(lambda_e n)``; de-escalate if
    ``y >= ceil(lambda_d n)`` (``lambda_d n + 1`` when that is an integer);
    eliminate the dose and all higher ones if ``n >= 3`` and
    ``P(p > target | y, n) > cutoff_eli`` under a beta(1, 1) prior, i.e.
    ``y >=`` the smallest such count; the de-escalation count is capped at the
    elimination count.

    Returns
    -------
    DataFrame
        Columns ``n``, ``escalate_if_le``, ``deescalate_if_ge``,
        ``eliminate_if_ge`` (``-1``/``max_n + 1`` mean "never").
    """
    lam_e, lam_d = boin_boundaries(target, p_saf, p_tox)
    be, bd, belim = _boin_tables(float(target), lam_e, lam_d, _check_int("max_n", max_n), float(cutoff_eli))
    return pd.DataFrame({"n": np.arange(max_n + 1), "escalate_if_le": be, "deescalate_if_ge": bd,
                         "eliminate_if_ge": belim})


def _boin_tables(target, lam_e, lam_d, max_n, cutoff_eli):
    n = np.arange(max_n + 1)
    be = np.floor(lam_e * n).astype(np.int64)
    ln = lam_d * n
    bd = np.where(np.abs(np.round(ln) - ln) < 1e-12, np.round(ln) + 1, np.ceil(ln)).astype(np.int64)
    belim = np.full(max_n + 1, max_n + 1, dtype=np.int64)
    from scipy import stats      # here, not at import: scipy.stats takes ~0.5 s to import (issue 11)

    for m in range(3, max_n + 1):
        y = np.arange(m + 1)
        post = stats.beta.sf(target, y + 1, m - y + 1)   # P(p > target | y, m), beta(1,1) prior
        hit = np.nonzero(post > cutoff_eli)[0]
        if hit.size:
            belim[m] = hit[0]
    bd = np.minimum(bd, belim)
    be[0] = -1
    return be, bd, belim


def isotonic_regression(values, weights=None):
    """Weighted isotonic (non-decreasing) regression by pool-adjacent-violators.

    Parameters
    ----------
    values : array-like, shape (K,)
    weights : array-like, shape (K,), optional
        Positive weights (default 1).

    Returns
    -------
    ndarray, shape (K,)
        The non-decreasing sequence closest to ``values`` in weighted least squares.
    """
    v = np.asarray(values, dtype=float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float)
    if v.ndim != 1 or w.shape != v.shape:
        raise TrialError("weights", weights, "must have the shape of values (1-D)")
    if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w)) and np.all(w > 0)):
        raise TrialError("values/weights", (values, weights), "values must be finite and weights finite and > 0")
    blocks = []   # [mean, weight, count]
    for vi, wi in zip(v, w):
        blocks.append([vi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(c, m) for m, _, c in blocks]) if blocks else v.copy()


def _isotonic_masked(v, w, mask):
    """Row-wise weighted isotonic regression over the masked entries.

    Uses the min-max formula fit_i = max_{s<=i} min_{t>=i} Av(s, t) with s, t
    restricted to masked indices (Robertson, Wright & Dykstra 1988), which is
    exact and vectorises over rows; O(K^3) per row, fine for dose levels.
    Unmasked entries are NaN.
    """
    J, K = v.shape
    wm = np.where(mask, w, 0.0)
    W = np.concatenate([np.zeros((J, 1)), np.cumsum(wm, axis=1)], axis=1)
    V = np.concatenate([np.zeros((J, 1)), np.cumsum(wm * np.where(mask, v, 0.0), axis=1)], axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        A = (V[:, None, 1:] - V[:, :-1, None]) / (W[:, None, 1:] - W[:, :-1, None])  # A[j, s, t]
    fit = np.full((J, K), np.nan)
    for i in range(K):
        sub = A[:, : i + 1, i:]
        sub = np.where(mask[:, None, i:], sub, np.inf).min(axis=2)
        sub = np.where(mask[:, : i + 1], sub, -np.inf).max(axis=1)
        fit[:, i] = sub
    fit[~mask] = np.nan
    return fit


@dataclass(frozen=True)
class BOIN:
    """Bayesian optimal interval design (Liu & Yuan 2015).

    Conduct (as the ``BOIN`` R package ``get.oc``, Yan et al. 2020): treat
    cohorts of ``cohort_size`` starting at level ``start``; after each cohort,
    with ``y/n`` the cumulative DLT rate at the current dose:

    * if ``y/n <= lambda_e`` and the next dose exists and is not eliminated:
      escalate;
    * else if ``y/n >= lambda_d`` (and not at the lowest dose): de-escalate;
    * else stay.

    Elimination: if ``n >= 3`` and ``P(p > target | data) > cutoff_eli``
    (beta(1, 1) prior) the current dose and all higher doses are eliminated;
    if it is the lowest dose the trial stops with no MTD. The trial ends at
    ``max_n`` patients, or (if ``n_earlystop`` is set) once ``n_earlystop``
    patients have been treated at the current dose and the next decision
    would be to stay there (``BOIN`` >= 2.7 convention).

    MTD selection (``select.mtd``): among doses treated and not eliminated,
    isotonic regression (weighted pool-adjacent-violators with the ``BOIN``
    package's weights, the inverse posterior variance under a beta(0.05,
    0.05) prior, applied to ``(y + 0.05)/(n + 0.1)``) and selection of the
    dose whose estimate is closest to the target. Ties are broken as in the
    paper and the package by adding ``rank * 1e-10`` to the estimates: among
    tied doses the **lower** one is chosen if the estimate is above the
    target, the **higher** one if below.

    Parameters
    ----------
    target : float
        Target DLT rate, in (0, 1). Default 0.30.
    max_n : int
        Maximum sample size, a multiple of ``cohort_size``. Default 30.
    cohort_size : int
        Default 3.
    start : int
        Starting level (0-based). Default 0.
    p_saf, p_tox : float, optional
        :math:`\\phi_1, \\phi_2`; defaults 0.6 and 1.4 times the target.
    cutoff_eli : float
        Elimination cutoff, default 0.95.
    n_earlystop : int, optional
        See above; default None (off; the package's default 100 is also off
        for usual sample sizes).
    """

    target: float = 0.30
    max_n: int = 30
    cohort_size: int = 3
    start: int = 0
    p_saf: float | None = None
    p_tox: float | None = None
    cutoff_eli: float = 0.95
    n_earlystop: int | None = None

    name = "boin"

    def __post_init__(self):
        object.__setattr__(self, "target", _check_prob("BOIN.target", self.target))
        cs = _check_int("BOIN.cohort_size", self.cohort_size)
        mx = _check_int("BOIN.max_n", self.max_n)
        if mx % cs:
            raise TrialError("BOIN.max_n", mx, f"must be a multiple of cohort_size ({cs})",
                             f"use max_n={(mx // cs + 1) * cs}")
        _check_int("BOIN.start", self.start, 0)
        _check_prob("BOIN.cutoff_eli", self.cutoff_eli)
        if self.n_earlystop is not None:
            _check_int("BOIN.n_earlystop", self.n_earlystop)
        boin_boundaries(self.target, self.p_saf, self.p_tox)   # validates p_saf/p_tox

    @property
    def boundaries(self):
        """(lambda_e, lambda_d)."""
        return boin_boundaries(self.target, self.p_saf, self.p_tox)

    def describe(self) -> str:
        le, ld = self.boundaries
        return (f"BOIN (target {self.target:g}, lambda_e {le:.3f}, lambda_d {ld:.3f}, "
                f"max_n {self.max_n}, cohort {self.cohort_size})")

    def _slots(self, K: int) -> int:
        return self.max_n

    def _check_k(self, K: int) -> None:
        if self.start >= K:
            raise TrialError("BOIN.start", self.start, f"must be a level index 0..{K - 1}")

    def _notes(self):
        return ("BOIN: MTD selected by isotonic regression of (y+0.05)/(n+0.1) (BOIN R package select.mtd).",)

    def _tables(self):
        le, ld = self.boundaries
        return _boin_tables(self.target, le, ld, self.max_n, self.cutoff_eli)

    def select_mtd(self, n, y):
        """MTD selected from the final data (``BOIN::select.mtd``), vectorised.

        Parameters
        ----------
        n, y : array-like of int, shape (K,) or (J, K)
            Patients and DLTs per dose.

        Returns
        -------
        int or ndarray of int
            Selected level (0-based), ``-1`` for none.
        """
        n = np.asarray(n)
        y = np.asarray(y)
        single = n.ndim == 1
        n2, y2 = np.atleast_2d(n).astype(np.int64), np.atleast_2d(y).astype(np.int64)
        if n2.max(initial=0) > self.max_n:
            raise TrialError("n", n, f"must be <= max_n ({self.max_n}) at every dose")
        out = self._select(n2, y2, self._tables()[2])
        return int(out[0]) if single else out

    def _select(self, n, x, belim):
        J, K = n.shape
        el = (n >= 3) & (x >= belim[n])
        first = np.where(el.any(axis=1), el.argmax(axis=1), K)
        adm = (n > 0) & (np.arange(K)[None, :] < first[:, None])
        none = (first == 0) | ~adm.any(axis=1)
        phat = (x + 0.05) / (n + 0.1)
        var = (x + 0.05) * (n - x + 0.05) / ((n + 0.1) ** 2 * (n + 1.1))
        fit = _isotonic_masked(phat, 1.0 / var, adm)
        rank = np.cumsum(adm, axis=1)
        score = np.where(adm, np.abs(fit + rank * 1e-10 - self.target), np.inf)
        sel = score.argmin(axis=1)
        sel[none] = -1
        return sel

    def _run(self, C: np.ndarray):
        J, K, _ = C.shape
        be, bd, belim = self._tables()
        cs = self.cohort_size
        n = np.zeros((J, K), dtype=np.int64)
        x = np.zeros((J, K), dtype=np.int64)
        d = np.full(J, self.start, dtype=np.int64)
        elim_from = np.full(J, K, dtype=np.int64)
        sel = np.full(J, -2, dtype=np.int64)
        alive = np.ones(J, dtype=bool)
        rows = np.arange(J)
        for _ in range(self.max_n // cs):
            act = rows[alive]
            if not act.size:
                break
            dd = d[act]
            n1 = n[act, dd] + cs
            x1 = C[act, dd, n1]
            n[act, dd] = n1
            x[act, dd] = x1
            el = x1 >= belim[n1]
            elim_from[act[el]] = np.minimum(elim_from[act[el]], dd[el])
            stop_none = el & (dd == 0)
            up_cond = (x1 <= be[n1]) & (dd < K - 1)
            up = up_cond & (dd + 1 < elim_from[act])
            down = ~up_cond & (x1 >= bd[n1]) & (dd > 0)
            stop = stop_none
            if self.n_earlystop is not None:
                stop = stop | ((n1 >= self.n_earlystop) & ~up & ~down)
            sel[act[stop_none]] = -1
            alive[act[stop]] = False
            d[act] = dd + up - down
        todo = sel == -2
        if todo.any():
            sel[todo] = self._select(n[todo], x[todo], belim)
        return sel, n, x


# ---------------------------------------------------------------------------
# CRM
# ---------------------------------------------------------------------------

def crm_skeleton(target, halfwidth, prior_mtd, n_doses):
    """CRM skeleton by indifference intervals (Lee & Cheung 2009; ``dfcrm::getprior``).

    For the power model ``p_k = s_k^exp(a)``, the skeleton puts ``s`` at the
    prior MTD equal to the target and spaces the others so that the model
    switches its recommendation from level ``k`` to ``k+1`` exactly where
    ``p_k = target - halfwidth`` and ``p_{k+1} = target + halfwidth``:
    ``log s_{k+1} = log s_k * log(target + halfwidth) / log(target - halfwidth)``.

    Parameters
    ----------
    target : float
        Target DLT rate.
    halfwidth : float
        Half-width ``delta`` of the indifference interval, ``0 < delta < min(target, 1 - target)``.
        Lee & Cheung (2009) calibrate it by simulation; 0.05 to 0.10 is usual.
    prior_mtd : int
        Level (0-based) assumed to be the MTD a priori.
    n_doses : int
        Number of levels K.

    Returns
    -------
    ndarray, shape (K,)
        Increasing skeleton in (0, 1).
    """
    phi = _check_prob("target", target)
    try:
        delta = float(halfwidth)
    except (TypeError, ValueError):
        raise TrialError("halfwidth", halfwidth, "must be a number") from None
    if not (0 < delta < min(phi, 1 - phi)):
        raise TrialError("halfwidth", halfwidth, f"must be > 0 and < min(target, 1 - target) = {min(phi, 1 - phi):g}")
    K = _check_int("n_doses", n_doses)
    nu = _check_int("prior_mtd", prior_mtd, 0)
    if nu >= K:
        raise TrialError("prior_mtd", prior_mtd, f"must be a level index 0..{K - 1}")
    ratio = math.log(phi + delta) / math.log(phi - delta)    # in (0, 1)
    logs = np.empty(K)
    logs[nu] = math.log(phi)
    for k in range(nu - 1, -1, -1):
        logs[k] = logs[k + 1] / ratio
    for k in range(nu + 1, K):
        logs[k] = logs[k - 1] * ratio
    return np.exp(logs)


class _CrmGrid:
    """Quadrature for the CRM posterior of ``a`` (power model, normal prior).

    Whole-line integrals (normaliser, posterior means): trapezoid rule on a
    uniform grid over ``[-L, L]``, ``L = max(10, 8 prior_sd)``. The integrands
    are smooth and decay like the normal prior, for which the trapezoid rule
    converges geometrically; 401 points (step 0.05) agree with adaptive
    quadrature to ~1e-15 for trial-sized data.

    Tail probabilities P(p_k > target) = P(a < a*_k) with
    ``a*_k = log(log(target) / log(s_k))``: composite Simpson rule on
    ``[-L, a*_k]`` with half the step (error O(h^4), ~1e-7), divided by the
    whole-line normaliser.
    """

    def __init__(self, skeleton, prior_sd, grid_size):
        self.skeleton = np.asarray(skeleton, dtype=float)
        self.prior_sd = float(prior_sd)
        self.L = max(10.0, 8.0 * self.prior_sd)
        self.a = np.linspace(-self.L, self.L, grid_size)
        self.h = self.a[1] - self.a[0]
        qw = np.full(grid_size, self.h)
        qw[[0, -1]] *= 0.5
        self.log_qw_prior = np.log(qw) - self.a**2 / (2 * self.prior_sd**2)
        self.logp, self.log1mp = self._logp(self.a)
        self.p = np.exp(self.logp)
        self._tails = {}

    def _logp(self, a):
        logp = np.outer(np.log(self.skeleton), np.exp(a))      # (K, G)
        return logp, np.log(-np.expm1(logp))

    def _loglik(self, n, y, logp, log1mp, log_w):
        return y @ logp + (n - y) @ log1mp + log_w

    def posterior(self, n, y, tail_level=None, target=None):
        """Normalised grid weights (J, G) and, if asked, P(p_level > target) (J,)."""
        y = np.asarray(y, dtype=float)
        n = np.asarray(n, dtype=float)
        ll = self._loglik(n, y, self.logp, self.log1mp, self.log_qw_prior)
        shift = ll.max(axis=1, keepdims=True)
        w = np.exp(ll - shift)
        z = w.sum(axis=1, keepdims=True)
        w /= z
        if tail_level is None:
            return w, None
        logp, log1mp, log_w = self._tail_nodes(tail_level, target)
        if logp is None:
            return w, np.zeros(w.shape[0])
        lt = self._loglik(n, y, logp, log1mp, log_w) - shift
        return w, np.exp(lt).sum(axis=1) / z[:, 0]

    def _tail_nodes(self, level, target):
        key = (level, target)
        if key not in self._tails:
            a_star = math.log(math.log(target) / math.log(self.skeleton[level]))
            if a_star <= -self.L:
                self._tails[key] = (None, None, None)
            else:
                m = 2 * max(1, math.ceil((a_star + self.L) / self.h))   # even number of intervals, step <= h/2
                a = np.linspace(-self.L, a_star, m + 1)
                sw = np.ones(m + 1)
                sw[1:-1:2], sw[2:-1:2] = 4.0, 2.0
                sw *= (a[1] - a[0]) / 3.0
                logp, log1mp = self._logp(a)
                self._tails[key] = (logp, log1mp, np.log(sw) - a**2 / (2 * self.prior_sd**2))
        return self._tails[key]


@dataclass(frozen=True)
class CrmPosterior:
    """Posterior summaries of the one-parameter power-model CRM.

    Attributes (shape ``(K,)`` per dose, or with a leading trial axis)
    ----------
    mean_a, sd_a : posterior mean and SD of ``a``.
    p_mean : posterior mean DLT probability per dose, E[s_k^exp(a)].
    p_plugin : plug-in DLT probability ``s_k^exp(E[a])`` (what ``dfcrm`` reports).
    p_over : posterior P(p_k > target) per dose (NaN if no target given).
    """

    mean_a: np.ndarray
    sd_a: np.ndarray
    p_mean: np.ndarray
    p_plugin: np.ndarray
    p_over: np.ndarray


def crm_posterior(skeleton, n, y, *, prior_sd=_DEFAULT_CRM_PRIOR_SD, target=None, grid_size=401) -> CrmPosterior:
    """Posterior of the power-model CRM ``p_k = s_k^exp(a)``, ``a ~ N(0, prior_sd^2)``.

    Parameters
    ----------
    skeleton : array-like, shape (K,)
        Strictly increasing prior guesses in (0, 1).
    n, y : array-like of int, shape (K,) or (J, K)
        Patients and DLTs per dose (binomial likelihood).
    prior_sd : float
        Prior SD of ``a``; default ``sqrt(1.34)`` (``dfcrm`` default prior
        variance 1.34, O'Quigley & Shen 1996).
    target : float, optional
        If given, ``p_over`` holds P(p_k > target | data).
    grid_size : int
        Quadrature points (see :class:`_CrmGrid`).

    Returns
    -------
    CrmPosterior
    """
    s = _check_skeleton(skeleton)
    sd = float(prior_sd)
    if not (math.isfinite(sd) and sd > 0):
        raise TrialError("prior_sd", prior_sd, "must be finite and > 0")
    grid = _CrmGrid(s, sd, _check_int("grid_size", grid_size, 11))
    n_arr, y_arr = np.asarray(n), np.asarray(y)
    single = n_arr.ndim == 1
    n2, y2 = np.atleast_2d(n_arr).astype(float), np.atleast_2d(y_arr).astype(float)
    if n2.shape != y2.shape or n2.shape[1] != s.size:
        raise TrialError("n, y", (n, y), f"must have the same shape, with {s.size} doses (skeleton length)")
    if np.any(n2 < 0) or np.any(y2 < 0) or np.any(y2 > n2):
        raise TrialError("n, y", (n, y), "need 0 <= y <= n at every dose")
    w, _ = grid.posterior(n2, y2)
    mean_a = w @ grid.a
    sd_a = np.sqrt(np.maximum(w @ grid.a**2 - mean_a**2, 0))
    p_mean = w @ grid.p.T
    p_plugin = s[None, :] ** np.exp(mean_a)[:, None]
    if target is None:
        p_over = np.full_like(p_mean, np.nan)
    else:
        t = _check_prob("target", target)
        p_over = np.stack([grid.posterior(n2, y2, k, t)[1] for k in range(s.size)], axis=1)
    if single:
        return CrmPosterior(mean_a[0], sd_a[0], p_mean[0], p_plugin[0], p_over[0])
    return CrmPosterior(mean_a, sd_a, p_mean, p_plugin, p_over)


def _check_skeleton(skeleton):
    s = _check_prob_array("skeleton", skeleton, open_interval=True)
    if s.size > 1 and not np.all(np.diff(s) > 0):
        i = int(np.argmax(~(np.diff(s) > 0))) + 1
        raise TrialError(f"skeleton[{i}]", float(s[i]), "the skeleton must be strictly increasing",
                         "use crm_skeleton(target, halfwidth, prior_mtd, K)")
    return s


_CRM_ESTIMATES = ("posterior_mean", "plugin")
_CRM_RESTRICTIONS = ("no_skip_untried", "dfcrm", "none")


@dataclass(frozen=True)
class CRM:
    """Continual reassessment method, one-parameter power ("empiric") model.

    Model ``p_k = s_k^exp(a)`` with skeleton ``s`` and prior
    ``a ~ N(0, prior_sd^2)``, ``prior_sd = sqrt(1.34)`` by default: the
    ``dfcrm`` default (``scale = sqrt(1.34)``, i.e. prior **variance** 1.34;
    O'Quigley, Pepe & Fisher 1990; Cheung 2011). Posterior by quadrature on a
    grid (see :func:`crm_posterior`).

    Conduct: start at level ``start``; after each cohort the recommended dose
    is the one whose estimated DLT probability is closest to the target,
    the estimate being the posterior mean of ``p_k`` (``estimate=
    "posterior_mean"``) or the ``dfcrm`` plug-in ``s_k^exp(E[a])``
    (``"plugin"``). ``restriction`` limits escalation:

    * ``"no_skip_untried"`` (default): never above the highest dose tried so
      far plus one;
    * ``"dfcrm"``: ``dfcrm::crmsim(restrict=TRUE)``: at most one level above
      the current dose, and no escalation right after a cohort whose DLT
      fraction is >= target (coherence);
    * ``"none"``.

    The trial stops at ``max_n`` patients and selects the (unrestricted)
    recommended dose, as ``dfcrm`` does. Optional safety stop: if
    ``safety_cutoff`` is set, stop with no MTD once >= 3 patients were treated
    at the lowest dose and P(p_0 > target | data) > ``safety_cutoff``.

    Parameters
    ----------
    target : float
        Target DLT rate. Default 0.30.
    skeleton : array-like, optional
        Prior DLT guesses (strictly increasing, one per level). Default:
        :func:`crm_skeleton` with ``halfwidth`` and ``prior_mtd``
        (middle level) for the number of levels simulated.
    halfwidth : float
        For the default skeleton; default 0.05 (an assumption, calibrate it).
    prior_mtd : int, optional
        For the default skeleton; default the middle level ``(K - 1) // 2``.
    max_n, cohort_size, start : int
        Defaults 30, 3, 0.
    prior_sd : float
    estimate : {"posterior_mean", "plugin"}
    restriction : {"no_skip_untried", "dfcrm", "none"}
    safety_cutoff : float, optional
    grid_size : int
        Quadrature points, default 401.
    """

    target: float = 0.30
    skeleton: tuple | None = None
    halfwidth: float = 0.05
    prior_mtd: int | None = None
    max_n: int = 30
    cohort_size: int = 3
    start: int = 0
    prior_sd: float = _DEFAULT_CRM_PRIOR_SD
    estimate: str = "posterior_mean"
    restriction: str = "no_skip_untried"
    safety_cutoff: float | None = None
    grid_size: int = 401

    name = "crm"

    def __post_init__(self):
        object.__setattr__(self, "target", _check_prob("CRM.target", self.target))
        if self.skeleton is not None:
            object.__setattr__(self, "skeleton", tuple(_check_skeleton(self.skeleton).tolist()))
        cs = _check_int("CRM.cohort_size", self.cohort_size)
        mx = _check_int("CRM.max_n", self.max_n)
        if mx % cs:
            raise TrialError("CRM.max_n", mx, f"must be a multiple of cohort_size ({cs})",
                             f"use max_n={(mx // cs + 1) * cs}")
        _check_int("CRM.start", self.start, 0)
        sd = float(self.prior_sd)
        if not (math.isfinite(sd) and sd > 0):
            raise TrialError("CRM.prior_sd", self.prior_sd, "must be finite and > 0")
        check_choice("CRM.estimate", self.estimate, _CRM_ESTIMATES, TrialError)
        check_choice("CRM.restriction", self.restriction, _CRM_RESTRICTIONS, TrialError)
        if self.safety_cutoff is not None:
            _check_prob("CRM.safety_cutoff", self.safety_cutoff)
        _check_int("CRM.grid_size", self.grid_size, 11)

    def skeleton_for(self, K: int) -> np.ndarray:
        """The skeleton used with K dose levels."""
        if self.skeleton is not None:
            return np.asarray(self.skeleton)
        nu = (K - 1) // 2 if self.prior_mtd is None else self.prior_mtd
        return crm_skeleton(self.target, self.halfwidth, nu, K)

    def describe(self) -> str:
        return (f"CRM (power model, target {self.target:g}, prior sd {self.prior_sd:.3g}, "
                f"{self.estimate}, {self.restriction}, max_n {self.max_n}, cohort {self.cohort_size})")

    def _slots(self, K: int) -> int:
        return self.max_n

    def _check_k(self, K: int) -> None:
        if self.skeleton is not None and len(self.skeleton) != K:
            raise TrialError("CRM.skeleton", self.skeleton, f"must have one value per dose level ({K})")
        if self.start >= K:
            raise TrialError("CRM.start", self.start, f"must be a level index 0..{K - 1}")
        if self.skeleton is None and self.prior_mtd is not None and not (0 <= self.prior_mtd < K):
            raise TrialError("CRM.prior_mtd", self.prior_mtd, f"must be a level index 0..{K - 1}")

    def _notes(self):
        return ("CRM: the final selection is the unrestricted recommendation (dfcrm convention).",)

    def _run(self, C: np.ndarray):
        J, K, _ = C.shape
        grid = _CrmGrid(self.skeleton_for(K), float(self.prior_sd), self.grid_size)
        cs = self.cohort_size
        n = np.zeros((J, K), dtype=np.int64)
        x = np.zeros((J, K), dtype=np.int64)
        d = np.full(J, self.start, dtype=np.int64)
        hi = d.copy()
        sel = np.full(J, -2, dtype=np.int64)
        alive = np.ones(J, dtype=bool)
        rows = np.arange(J)
        n_cohorts = self.max_n // cs
        s = grid.skeleton
        for c in range(n_cohorts):
            act = rows[alive]
            if not act.size:
                break
            dd = d[act]
            n0 = n[act, dd]
            x0 = x[act, dd]
            n1 = n0 + cs
            x1 = C[act, dd, n1]
            n[act, dd] = n1
            x[act, dd] = x1
            w, p_over0 = grid.posterior(n[act], x[act], None if self.safety_cutoff is None else 0, self.target)
            if self.estimate == "posterior_mean":
                ptox = w @ grid.p.T
            else:
                ptox = s[None, :] ** np.exp(w @ grid.a)[:, None]
            rec = np.abs(ptox - self.target).argmin(axis=1)
            stop = np.zeros(act.size, dtype=bool)
            if self.safety_cutoff is not None:
                stop = (n[act, 0] >= 3) & (p_over0 > self.safety_cutoff)
                sel[act[stop]] = -1
                alive[act[stop]] = False
            if c == n_cohorts - 1:
                sel[act[~stop]] = rec[~stop]
                break
            if self.restriction == "no_skip_untried":
                rec = np.minimum(rec, hi[act] + 1)
            elif self.restriction == "dfcrm":
                coherent_cap = np.where((x1 - x0) / cs >= self.target, dd, dd + 1)
                rec = np.minimum(rec, coherent_cap)
            d[act] = rec
            hi[act] = np.maximum(hi[act], rec)
        return sel, n, x


DESIGNS = {"3+3": ThreePlusThree, "boin": BOIN, "crm": CRM}


def _resolve_design(design):
    if isinstance(design, (ThreePlusThree, BOIN, CRM)):
        return design
    if isinstance(design, type) and design in DESIGNS.values():
        return design()
    if isinstance(design, str):
        key = design.strip().lower()
        key = {"3plus3": "3+3", "three_plus_three": "3+3", "threeplusthree": "3+3"}.get(key, key)
        check_choice("design", key, list(DESIGNS), TrialError)
        return DESIGNS[key]()
    raise TrialError("design", design, "allowed: " + ", ".join(DESIGNS) + " (a name or a design object)")


# ---------------------------------------------------------------------------
# simulation
# ---------------------------------------------------------------------------

def _resolve_toxicity(K, p_dlt, exposure, link):
    if isinstance(p_dlt, tuple) and len(p_dlt) == 2 and callable(p_dlt[1]):
        if exposure is not None or link is not None:
            raise TrialError("p_dlt", "(exposure, link)", "give exposure and link either as a tuple or as keywords, not both")
        exposure, link = p_dlt
        p_dlt = None
    if p_dlt is not None:
        if exposure is not None or link is not None:
            raise TrialError("p_dlt", "given", "give either p_dlt or exposure with link, not both")
        p = _check_prob_array("p_dlt", p_dlt)
        if p.size != K:
            raise TrialError("p_dlt", p_dlt, f"must have one probability per dose level ({K})")
        return p, None
    if exposure is None or link is None:
        raise TrialError("toxicity", None, "give p_dlt (one DLT probability per dose) or both exposure and link")
    if not callable(link):
        raise TrialError("link", link, "must be callable: exposure array -> DLT probability array",
                         "e.g. LogisticExposureToxicity.from_mtd_exposure(...)")
    if isinstance(exposure, np.ndarray) and exposure.ndim == 2:
        rows = list(exposure)
    else:
        try:
            rows = list(exposure)
        except TypeError:
            raise TrialError("exposure", exposure, "must be an array (K, m) or K arrays of exposures") from None
    if len(rows) != K:
        raise TrialError("exposure", f"{len(rows)} dose levels", f"must have one row of exposures per dose level ({K})")
    m = np.zeros(K, dtype=np.int64)
    E_rows, P_rows = [], []
    for k, row in enumerate(rows):
        try:
            r = np.asarray(row, dtype=float)
        except (TypeError, ValueError):
            raise TrialError(f"exposure[{k}]", row, "must be numbers") from None
        if r.ndim != 1 or r.size == 0:
            raise TrialError(f"exposure[{k}]", row, "must be a non-empty 1-D array of exposures")
        bad = ~(np.isfinite(r) & (r >= 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise TrialError(f"exposure[{k}, {i}]", float(r[i]), "exposures must be finite and >= 0")
        pr = np.asarray(link(r), dtype=float)
        if pr.shape != r.shape:
            raise TrialError("link", link, f"must return one probability per exposure (got shape {pr.shape} for {r.shape})")
        badp = ~(np.isfinite(pr) & (pr >= 0) & (pr <= 1))
        if badp.any():
            i = int(np.argmax(badp))
            raise TrialError(f"link(exposure[{k}, {i}])", float(pr[i]), "must be a probability between 0 and 1")
        m[k] = r.size
        E_rows.append(r)
        P_rows.append(pr)
    mmax = int(m.max())
    E = np.full((K, mmax), np.nan)
    P = np.zeros((K, mmax))
    for k in range(K):
        E[k, : m[k]] = E_rows[k]
        P[k, : m[k]] = P_rows[k]
    p_true = np.array([P_rows[k].mean() for k in range(K)])
    return p_true, (E, P, m)


def _seed_sequence(seed):
    if isinstance(seed, np.random.SeedSequence):
        return seed, seed
    if seed is None:
        ss = np.random.SeedSequence()
        return ss, ss.entropy
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TrialError("seed", seed, "must be None, an integer >= 0 or a numpy SeedSequence")
    return np.random.SeedSequence(int(seed)), int(seed)


def _weighted_quantiles(values, counts, qs):
    """Inverted-CDF quantiles of ``values`` repeated ``counts`` times."""
    total = counts.sum()
    if total == 0:
        return np.full(len(qs), np.nan)
    order = np.argsort(values, kind="stable")
    cw = np.cumsum(counts[order])
    pos = np.searchsorted(cw, np.asarray(qs) * total, side="left")
    return values[order][np.minimum(pos, len(values) - 1)]


def simulate_trials(design, doses, p_dlt=None, *, exposure=None, link=None, n_trials=10_000, seed=None,
                    efficacy_target=None, chunk_size=None) -> TrialResults:
    """Simulate virtual dose-escalation trials and return operating characteristics.

    Parameters
    ----------
    design : ThreePlusThree, BOIN, CRM or str
        A design object, or a name in :data:`DESIGNS` (``"3+3"``, ``"boin"``,
        ``"crm"``) for the design with default settings.
    doses : array-like, shape (K,)
        Dose of each level (e.g. mg), strictly increasing, > 0.
    p_dlt : array-like, shape (K,), or tuple (exposure, link), optional
        True DLT probability per dose (mode 1), or the pair of mode 2.
    exposure : array-like, shape (K, m), or K 1-D arrays, optional
        Mode 2: simulated exposures of a pool of virtual patients per dose
        (finite, >= 0; pools may differ in size). Trial patients are drawn
        from the pool of their dose uniformly with replacement.
    link : callable, optional
        Mode 2: exposure -> per-patient DLT probability, e.g.
        :class:`LogisticExposureToxicity`.
    n_trials : int
        Number of virtual trials (default 10,000).
    seed : int, numpy SeedSequence or None
        Reproducibility. Trial ``j`` depends only on ``(seed, j)`` (and the
        design's per-trial block size), not on ``n_trials``. None draws fresh
        entropy (stored in ``result.seed``).
    efficacy_target : float, optional
        Mode 2: exposure target; reports the fraction of each dose's pool with
        exposure >= target (``p_target_attained``).
    chunk_size : int, optional
        Trials simulated together (memory vs. speed); does not change results.

    Returns
    -------
    TrialResults

    Examples
    --------
    >>> res = simulate_trials("3+3", [10, 20, 40, 60, 80], [0.05, 0.1, 0.2, 0.35, 0.5], seed=1)
    >>> res.summary()  # doctest: +SKIP
    """
    des = _resolve_design(design)
    doses = _check_doses(doses)
    K = doses.size
    p_true, pool = _resolve_toxicity(K, p_dlt, exposure, link)
    des._check_k(K)
    n_trials = _check_int("n_trials", n_trials)
    if efficacy_target is not None:
        if pool is None:
            raise TrialError("efficacy_target", efficacy_target, "needs exposure input (mode 2)",
                             "pass exposure=... and link=...")
        efficacy_target = float(efficacy_target)
        if not (math.isfinite(efficacy_target) and efficacy_target >= 0):
            raise TrialError("efficacy_target", efficacy_target, "must be finite and >= 0")
    ss, seed_used = _seed_sequence(seed)
    key = ss.generate_state(2, np.uint64)

    S = des._slots(K)
    r = 1 if pool is None else 2
    used = K * S * r
    B = -(-used // 4) * 4             # whole Philox blocks (4 x 64 bits) per trial
    grid_cost = getattr(des, "grid_size", 0)
    if chunk_size is None:
        chunk_size = max(256, _ELEMENTS_PER_CHUNK // (B + K * (S + 1) + 2 * grid_cost))
    chunk_size = _check_int("chunk_size", chunk_size)

    selected = np.empty(n_trials, dtype=np.int64)
    n_treated = np.empty((n_trials, K), dtype=np.int64)
    n_dlt = np.empty((n_trials, K), dtype=np.int64)
    counts = None if pool is None else np.zeros(pool[0].shape, dtype=np.int64)
    slot = np.arange(S)
    for j0 in range(0, n_trials, chunk_size):
        J = min(chunk_size, n_trials - j0)
        bitgen = np.random.Philox(key=key)
        bitgen.advance(j0 * (B // 4))
        U = np.random.Generator(bitgen).random((J, B))[:, :used].reshape(J, K, S, r)
        if pool is None:
            tox = U[..., 0] < p_true[None, :, None]
        else:
            E, P, m = pool
            idx = (U[..., 0] * m[None, :, None]).astype(np.int64)
            idx = np.minimum(idx, (m - 1)[None, :, None])
            tox = U[..., 1] < P[np.arange(K)[None, :, None], idx]
        C = np.zeros((J, K, S + 1), dtype=np.int64)
        np.cumsum(tox, axis=2, out=C[..., 1:])
        sel, n, x = des._run(C)
        selected[j0:j0 + J] = sel
        n_treated[j0:j0 + J] = n
        n_dlt[j0:j0 + J] = x
        if pool is not None:
            treated = slot[None, None, :] < n[:, :, None]         # (J, K, S)
            for k in range(K):
                counts[k] += np.bincount(idx[:, k, :][treated[:, k, :]], minlength=counts.shape[1])

    p_select = np.bincount(selected[selected >= 0], minlength=K) / n_trials
    p_none = float(np.mean(selected < 0))
    mean_n = n_treated.mean(axis=0)
    mean_dlt = n_dlt.mean(axis=0)
    pct = p_att = None
    if pool is not None:
        E, P, m = pool
        pct = np.vstack([_weighted_quantiles(E[k, : m[k]], counts[k, : m[k]], (0.05, 0.5, 0.95)) for k in range(K)])
        if efficacy_target is not None:
            p_att = np.array([np.mean(E[k, : m[k]] >= efficacy_target) for k in range(K)])
    notes = des._notes()
    if pool is not None:
        notes = notes + ("true_p_dlt is the mean per-patient DLT probability over each dose's exposure pool.",)
    return TrialResults(design=des.describe(), doses=doses, true_p_dlt=p_true, p_select=p_select, p_none=p_none,
                        mean_n=mean_n, mean_dlt=mean_dlt, mean_trial_size=float(n_treated.sum(axis=1).mean()),
                        n_trials=n_trials, seed=seed_used, selected=selected, n_treated=n_treated, n_dlt=n_dlt,
                        exposure_percentiles=pct, p_target_attained=p_att, efficacy_target=efficacy_target,
                        notes=notes)
