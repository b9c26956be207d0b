"""One-parameter power-model continual reassessment method (O'Quigley, Pepe & Fisher 1990) with the ``dfcrm``
defaults (Cheung 2011) and Lee & Cheung (2009) skeletons.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.core.errors import check_choice, check_int
from pkcsf.trials.common import (
    _DEFAULT_CRM_PRIOR_SD,
    TrialError,
    _check_cohorts,
    _check_prob,
    _check_prob_array,
)

__all__ = ["CRM", "CrmPosterior", "crm_skeleton", "crm_posterior"]

# ---------------------------------------------------------------------------
# CRM
# ---------------------------------------------------------------------------

def crm_skeleton(target: float, halfwidth: float, prior_mtd: int, n_doses: int) -> np.ndarray:
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

    Examples
    --------
    >>> crm_skeleton(0.3, 0.05, prior_mtd=2, n_doses=5).round(3)
    array([0.123, 0.204, 0.3  , 0.402, 0.501])
    """
    phi = _check_prob("target", target)
    try:
        delta = float(halfwidth)
    except (TypeError, ValueError):
        raise TrialError("halfwidth", halfwidth, "must be a number") from None
    if not (0 < delta < min(phi, 1 - phi)):
        raise TrialError("halfwidth", halfwidth, f"must be > 0 and < min(target, 1 - target) = {min(phi, 1 - phi):g}")
    K = check_int("n_doses", n_doses, 1, TrialError)
    nu = check_int("prior_mtd", prior_mtd, 0, TrialError)
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

    Each attribute has shape ``(K,)`` per dose, or a leading trial axis.

    Attributes
    ----------
    mean_a, sd_a : posterior mean and SD of ``a``.
    p_mean : posterior mean DLT probability per dose, E[s_k^exp(a)].
    p_plugin : plug-in DLT probability ``s_k^exp(E[a])`` (what ``dfcrm`` reports).
    p_over : posterior P(p_k > target) per dose (NaN if no target given).

    Examples
    --------
    >>> post = crm_posterior([0.1, 0.2, 0.3], n=[3, 3, 0], y=[0, 1, 0])
    >>> post.p_mean.shape
    (3,)
    """

    mean_a: np.ndarray
    sd_a: np.ndarray
    p_mean: np.ndarray
    p_plugin: np.ndarray
    p_over: np.ndarray


def crm_posterior(skeleton: ArrayLike, n: ArrayLike, y: ArrayLike, *, prior_sd: float = _DEFAULT_CRM_PRIOR_SD,
                  target: float | None = None, grid_size: int = 401) -> CrmPosterior:
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

    Examples
    --------
    Three patients at each of the two lowest doses, one DLT at the second:

    >>> post = crm_posterior([0.1, 0.2, 0.3], n=[3, 3, 0], y=[0, 1, 0], target=0.3)
    >>> post.p_mean.round(3)
    array([0.14 , 0.234, 0.324])
    >>> post.p_over.round(3)
    array([0.111, 0.301, 0.528])
    """
    s = _check_skeleton(skeleton)
    sd = float(prior_sd)
    if not (math.isfinite(sd) and sd > 0):
        raise TrialError("prior_sd", prior_sd, "must be finite and > 0")
    grid = _CrmGrid(s, sd, check_int("grid_size", grid_size, 11, TrialError))
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
_CRM_SAFETY_RULES = ("model", "beta")


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
    recommended dose, as ``dfcrm`` does (``dfcrm`` itself has no stopping
    rule). **Safety stop** (on by default): after each cohort, once at least
    ``safety_min_n`` patients were treated at the lowest dose, the trial stops
    with no MTD when P(p_1 > ``safety_threshold`` | data) > ``safety_cutoff``
    (p_1: DLT probability of the lowest dose). ``safety_rule`` says where the
    probability comes from:

    * ``"model"`` (default): the CRM posterior itself (exact quadrature).
      This is the rule of ``escalation::stop_when_too_toxic(dose = 1,
      tox_threshold, confidence)`` and ``dtpcrm::stop_for_excess_toxicity_empiric
      (tox_lim, prob_cert, dose = 1)`` (Yap et al. 2017, Clin Cancer Res
      23:7440, doi:10.1158/1078-0432.CCR-17-0582), both on top of ``dfcrm``
      (they approximate the posterior of the slope by a normal, pkcsf
      integrates it);
    * ``"beta"``: a beta(1, 1) posterior from the lowest dose's own data
      (``crmPack::StoppingLowestDoseHSRBeta(target, prob)``, a "hard safety
      rule" independent of the working model, as BOIN's elimination).

    Defaults: threshold = the target, cutoff 0.9, ``safety_min_n`` 3 (the
    ``crmPack`` example ``StoppingLowestDoseHSRBeta(target = 0.3, prob = 0.9)``;
    the ``dtpcrm`` vignette uses ``tox_lim = target + 0.1``, ``prob_cert = 0.72``;
    calibrate for your trial). ``safety_cutoff=None`` turns the stop off
    (the plain ``dfcrm::crmsim`` behaviour).

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
        Prior SD of the power-model parameter ``a``; default ``sqrt(1.34)`` (``dfcrm`` default).
    estimate : {"posterior_mean", "plugin"}
        The DLT estimate the dose is chosen on (above); default ``"posterior_mean"``.
    restriction : {"no_skip_untried", "dfcrm", "none"}
        The escalation restriction (above); default ``"no_skip_untried"``.
    safety_cutoff : float or None
        Default 0.9; None: no safety stop.
    grid_size : int
        Quadrature points, default 401.
    safety_threshold : float, optional
        Default: the target.
    safety_rule : {"model", "beta"}
        Where the probability of the safety stop comes from (above); default ``"model"``.
    safety_min_n : int
        Patients at the lowest dose before the safety stop may act; default 3.

    Examples
    --------
    >>> from pkcsf.trials import CRM, simulate_trials
    >>> design = CRM(target=0.3, skeleton=(0.1, 0.2, 0.3, 0.45))
    >>> res = simulate_trials(design, [10, 20, 40, 80], p_dlt=[0.05, 0.1, 0.3, 0.5], n_trials=200, seed=1)
    >>> len(res.summary())
    5
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
    safety_cutoff: float | None = 0.9
    grid_size: int = 401
    safety_threshold: float | None = None
    safety_rule: str = "model"
    safety_min_n: int = 3

    name = "crm"

    def __post_init__(self):
        object.__setattr__(self, "target", _check_prob("CRM.target", self.target))
        if self.skeleton is not None:
            object.__setattr__(self, "skeleton", tuple(_check_skeleton(self.skeleton).tolist()))
        _check_cohorts("CRM", self.cohort_size, self.max_n, self.start)
        sd = float(self.prior_sd)
        if not (math.isfinite(sd) and sd > 0):
            raise TrialError("CRM.prior_sd", self.prior_sd, "must be finite and > 0")
        check_choice("CRM.estimate", self.estimate, _CRM_ESTIMATES, TrialError)
        check_choice("CRM.restriction", self.restriction, _CRM_RESTRICTIONS, TrialError)
        if self.safety_cutoff is not None:
            _check_prob("CRM.safety_cutoff", self.safety_cutoff)
        if self.safety_threshold is not None:
            _check_prob("CRM.safety_threshold", self.safety_threshold)
        check_choice("CRM.safety_rule", self.safety_rule, _CRM_SAFETY_RULES, TrialError)
        check_int("CRM.safety_min_n", self.safety_min_n, 0, TrialError)
        check_int("CRM.grid_size", self.grid_size, 11, TrialError)

    def skeleton_for(self, K: int) -> np.ndarray:
        """The skeleton used with K dose levels.

        Parameters
        ----------
        K : int
            Number of dose levels.

        Returns
        -------
        ndarray, shape (K,)
            The given ``skeleton``, else :func:`crm_skeleton` with ``halfwidth`` and ``prior_mtd``.
        """
        if self.skeleton is not None:
            return np.asarray(self.skeleton)
        nu = (K - 1) // 2 if self.prior_mtd is None else self.prior_mtd
        return crm_skeleton(self.target, self.halfwidth, nu, K)

    @property
    def safety_level(self) -> float:
        """The DLT rate of the safety stop (``safety_threshold``, default the target)."""
        return self.target if self.safety_threshold is None else float(self.safety_threshold)

    def describe(self) -> str:
        """The design and its settings in one line.

        Returns
        -------
        str
            Target, prior SD, estimate, restriction, safety stop, ``max_n`` and cohort size.
        """
        safety = ("no safety stop" if self.safety_cutoff is None else
                  f"stop if P(p1 > {self.safety_level:g}) > {self.safety_cutoff:g} ({self.safety_rule})")
        return (f"CRM (power model, target {self.target:g}, prior sd {self.prior_sd:.3g}, "
                f"{self.estimate}, {self.restriction}, {safety}, max_n {self.max_n}, cohort {self.cohort_size})")

    def p_lowest_too_toxic(self, n: ArrayLike, y: ArrayLike) -> float | np.ndarray:
        """P(p_1 > safety threshold | data) under :attr:`safety_rule`.

        Parameters
        ----------
        n, y : array-like of int, shape (K,) or (J, K)
            Patients and DLTs per dose (and trial).

        Returns
        -------
        float or ndarray, shape (J,)
            The posterior probability that the lowest dose is too toxic: a float for 1-D data.
        """
        n2, y2 = np.atleast_2d(np.asarray(n, dtype=float)), np.atleast_2d(np.asarray(y, dtype=float))
        if self.safety_rule == "beta":
            from scipy import stats  # on first use (import cost, issue 11)

            out = stats.beta.sf(self.safety_level, y2[:, 0] + 1, n2[:, 0] - y2[:, 0] + 1)
        else:
            grid = _CrmGrid(self.skeleton_for(n2.shape[1]), float(self.prior_sd), self.grid_size)
            out = grid.posterior(n2, y2, 0, self.safety_level)[1]
        return float(out[0]) if np.ndim(n) == 1 else out

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
            model_tail = self.safety_cutoff is not None and self.safety_rule == "model"
            w, p_over0 = grid.posterior(n[act], x[act], 0 if model_tail else None, self.safety_level)
            if self.estimate == "posterior_mean":
                ptox = w @ grid.p.T
            else:
                ptox = s[None, :] ** np.exp(w @ grid.a)[:, None]
            rec = np.abs(ptox - self.target).argmin(axis=1)
            stop = np.zeros(act.size, dtype=bool)
            if self.safety_cutoff is not None:
                if self.safety_rule == "beta":
                    from scipy import stats  # on first use (import cost, issue 11)

                    p_over0 = stats.beta.sf(self.safety_level, x[act, 0] + 1, n[act, 0] - x[act, 0] + 1)
                stop = (n[act, 0] >= max(self.safety_min_n, 1)) & (p_over0 > self.safety_cutoff)
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
