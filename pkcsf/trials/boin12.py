r"""BOIN12: utility-based phase I/II design on toxicity and efficacy (Lin, Zhou, Yan, Li & Yuan 2020).

Each patient has two binary outcomes, a DLT (toxicity) and a response (efficacy). A patient's outcome
pair has a utility: 100 for response without DLT (``u1``), ``u_none`` for neither (``u2``, default 40),
``u_both`` for response with DLT (``u3``, default 60) and 0 for a DLT without response (``u4``). Per
dose, the "pseudo-count" of utility ``x = (u1 y1 + u2 y2 + u3 y3 + u4 y4) / 100`` out of ``n`` patients
gives a beta(1 + x, 1 + n - x) posterior of the standardised utility; the desirability score of the
dose is ``P(utility > u_b | data)`` with the benchmark ``u_b`` halfway between the highest undesirable
utility ``u_bar`` (a dose with toxicity ``target`` and efficacy ``eff_min``) and 100.

Conduct, after each cohort at the current dose ``d`` with ``n_d`` patients and observed DLT rate
``p_d`` (BOIN boundaries ``lambda_e``, ``lambda_d`` of the toxicity ``target``), as implemented by
Sweeting and Brock in the R package ``escalation`` (``get_boin12``, file R/boin12_logic.R, written "to
get concordance with the published paper and software"):

1. dose exploration: if ``n_d >= explore_n`` (default 9), ``p_d < lambda_d``, ``d`` is not the top dose
   and ``d + 1`` is untried, escalate;
2. else if ``p_d >= lambda_d``: de-escalate (stay at the lowest dose);
3. else if ``lambda_e < p_d < lambda_d`` and ``n_d >= n_star`` (default 6): the one of ``d - 1``, ``d``
   with the higher desirability among the admissible ones (the lower on a tie);
4. else, among the admissible doses of ``d - 1, d, d + 1``, the one with the highest desirability (the
   higher on a tie, as the BOIN12 Shiny application); stop with no dose if none is admissible.

A dose is admissible when ``P(p_T > target | data) < c_t`` (0.95) and ``P(p_E < eff_min | data) < c_e``
(0.90), beta(1, 1) priors. In addition (BOIN's own safety rule, ``BOIN::get.oc``) a dose with
``n >= 3`` and ``P(p_T > target | data) > c_t`` is eliminated together with every higher dose for the rest
of the trial, and the trial stops with no dose when the lowest is eliminated; no move goes to an
eliminated dose.

Final choice of the optimal biological dose (``escalation::select_boin12_obd``): isotonic regression of
the observed DLT rates of the tried doses gives the MTD (estimate closest to ``target``, the higher on a
tie); among the tried, non-eliminated doses up to the MTD, the one with the highest desirability score.

The outcomes of a patient are drawn independently given his probabilities: ``p_eff`` and ``p_dlt`` per
dose, or per virtual patient when both come from his simulated exposure (then toxicity and response are
correlated through the patient). Default utilities (``u2 = 40``, ``u3 = 60``) and ``eff_min = 0.25`` are
the examples of the ``escalation`` documentation, to be set with the clinicians.

References
----------
Lin R, Zhou Y, Yan F, Li D, Yuan Y (2020). BOIN12: Bayesian optimal interval phase I/II trial design for
utility-based dose finding in immunotherapy and targeted therapies. JCO Precis Oncol 4:1393-1402.
doi:10.1200/PO.20.00257
Brock K (2019). trialr / escalation R packages (get_boin12, select_boin12_obd), CRAN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.core.errors import check_int
from pkcsf.trials.boin import _isotonic_masked, _posterior_count_table, boin_boundaries
from pkcsf.trials.common import TrialError, _check_prob

__all__ = ["BOIN12", "boin12_desirability"]

U1, U4 = 100.0, 0.0


def boin12_desirability(n: ArrayLike, y_eff_only: ArrayLike, y_none: ArrayLike, y_both: ArrayLike,
                        y_tox_only: ArrayLike, u_b: float, u2: float = 40.0, u3: float = 60.0) -> np.ndarray:
    """``P(standardised utility > u_b / 100 | data)`` under a beta(1, 1) prior (the desirability score / 100).

    Parameters
    ----------
    n : array-like
        Patients per dose.
    y_eff_only, y_none, y_both, y_tox_only : array-like
        Patients with response only, neither, both, DLT only.
    u_b : float
        Benchmark utility (0-100).
    u2, u3 : float
        Utilities (0-100) of "neither response nor DLT" and of "response and DLT"; response only is 100
        and DLT only 0 (Lin et al. 2020). Defaults 40 and 60.

    Returns
    -------
    ndarray
        Probabilities in [0, 1], the shape of ``n`` broadcast with the counts.

    Examples
    --------
    Six patients at a dose: two with a response only, two with neither, one with both, one with a DLT only.

    >>> round(float(boin12_desirability(6, 2, 2, 1, 1, 50.0)), 3)
    0.617
    """
    from scipy import stats  # on first use (import cost, issue 11)

    n = np.asarray(n, dtype=float)
    x = (U1 * np.asarray(y_eff_only) + u2 * np.asarray(y_none) + u3 * np.asarray(y_both)
         + U4 * np.asarray(y_tox_only)) / 100.0
    return stats.beta.sf(u_b / 100.0, 1.0 + x, 1.0 + n - x)


@dataclass(frozen=True)
class BOIN12:
    """BOIN12 phase I/II design (Lin et al. 2020); see the module docstring for the rules and sources.

    Parameters
    ----------
    target : float
        Highest acceptable DLT rate ``phi_T`` (default 0.30).
    eff_min : float
        Lowest acceptable response rate ``phi_E`` (default 0.25).
    max_n, cohort_size, start : int
        Defaults 30, 3, 0.
    u_none, u_both : float
        Utilities of "neither" and of "response with DLT" (defaults 40 and 60; ``u1 = 100``, ``u4 = 0``).
    n_star : int
        Default 6.
    explore_n : int
        Patients at a dose after which an untried next dose is explored (default 9).
    c_t, c_e : float
        Admissibility cutoffs (defaults 0.95, 0.90).

    Examples
    --------
    >>> from pkcsf.trials import BOIN12
    >>> BOIN12().describe()
    'BOIN12 (DLT target 0.3, lowest response rate 0.25, utilities 100/60/40/0, benchmark 71.5, max_n 30, cohort 3)'
    >>> BOIN12().select_obd(n=[3, 6, 3], x=[0, 1, 2], e=[1, 3, 2], b=[0, 1, 1])
    array([1])
    """

    target: float = 0.30
    eff_min: float = 0.25
    max_n: int = 30
    cohort_size: int = 3
    start: int = 0
    u_none: float = 40.0
    u_both: float = 60.0
    n_star: int = 6
    explore_n: int = 9
    c_t: float = 0.95
    c_e: float = 0.90

    name = "boin12"
    uses_efficacy = True

    def __post_init__(self):
        object.__setattr__(self, "target", _check_prob("BOIN12.target", self.target))
        object.__setattr__(self, "eff_min", _check_prob("BOIN12.eff_min", self.eff_min))
        cs = check_int("BOIN12.cohort_size", self.cohort_size, 1, TrialError)
        mx = check_int("BOIN12.max_n", self.max_n, 1, TrialError)
        if mx % cs:
            raise TrialError("BOIN12.max_n", mx, f"must be a multiple of cohort_size ({cs})",
                             f"use max_n={(mx // cs + 1) * cs}")
        check_int("BOIN12.start", self.start, 0, TrialError)
        check_int("BOIN12.n_star", self.n_star, 1, TrialError)
        check_int("BOIN12.explore_n", self.explore_n, 1, TrialError)
        for f in ("u_none", "u_both"):
            v = getattr(self, f)
            try:
                x = float(v)
            except (TypeError, ValueError):
                raise TrialError(f"BOIN12.{f}", v, "must be a utility between 0 and 100") from None
            if not (math.isfinite(x) and 0.0 <= x <= 100.0):
                raise TrialError(f"BOIN12.{f}", v, "must be a utility between 0 and 100 (u1 = 100, u4 = 0)")
            object.__setattr__(self, f, x)
        _check_prob("BOIN12.c_t", self.c_t)
        _check_prob("BOIN12.c_e", self.c_e)

    @property
    def boundaries(self) -> tuple[float, float]:
        """BOIN (lambda_e, lambda_d) of the toxicity target."""
        return boin_boundaries(self.target)

    @property
    def benchmark(self) -> float:
        """The utility benchmark ``u_b = u_bar + (100 - u_bar) / 2``."""
        pt, pe = self.target, self.eff_min
        u_bar = U1 * pe * (1 - pt) + self.u_none * (1 - pt) * (1 - pe) + self.u_both * pt * pe + U4 * pt * (1 - pe)
        return u_bar + (100.0 - u_bar) / 2.0

    def describe(self) -> str:
        """The design and its settings in one line.

        Returns
        -------
        str
            DLT target, lowest response rate, utilities, benchmark, ``max_n`` and cohort size.
        """
        return (f"BOIN12 (DLT target {self.target:g}, lowest response rate {self.eff_min:g}, utilities "
                f"100/{self.u_both:g}/{self.u_none:g}/0, benchmark {self.benchmark:.1f}, max_n {self.max_n}, "
                f"cohort {self.cohort_size})")

    def _slots(self, K: int) -> int:
        return self.max_n

    def _check_k(self, K: int) -> None:
        if self.start >= K:
            raise TrialError("BOIN12.start", self.start, f"must be a level index 0..{K - 1}")

    def _notes(self):
        return ("BOIN12: the selected dose is the optimal biological dose (highest desirability at or below the "
                "isotonic MTD), not the MTD; p_select describes that choice.",)

    # ------------------------------------------------------------------ tables
    def _tables(self):
        from scipy import stats  # on first use (import cost, issue 11)

        M = self.max_n
        nn = np.arange(M + 1)[:, None]
        yy = np.arange(M + 1)[None, :]
        valid = yy <= nn
        tox_ok = valid & (stats.beta.sf(self.target, 1 + yy, 1 + np.maximum(nn - yy, 0)) < self.c_t)
        eff_ok = valid & (stats.beta.cdf(self.eff_min, 1 + yy, 1 + np.maximum(nn - yy, 0)) < self.c_e)
        belim = _posterior_count_table(self.target, M, self.c_t)
        return tox_ok, eff_ok, belim

    def _scores(self, n, x, e, b):
        """Desirability (J, K) from patients n, DLTs x, responses e, both b."""
        return boin12_desirability(n, e - b, n - x - e + b, b, x - b, self.benchmark, self.u_none, self.u_both)

    def select_obd(self, n: ArrayLike, x: ArrayLike, e: ArrayLike, b: ArrayLike,
                   eliminated: ArrayLike | None = None) -> np.ndarray:
        """Final OBD choice (vectorised over rows); ``-1`` for none.

        Parameters
        ----------
        n, x, e, b : array-like of int, shape (K,) or (J, K)
            Per dose (and trial): patients, patients with a DLT, with a response, with both.
        eliminated : array-like of bool, shape (J, K), optional
            Doses eliminated by the safety rule; default: derived from ``n`` and ``x``
            (``n >= 3`` and ``P(p_T > target) > c_t``, with every higher dose).

        Returns
        -------
        ndarray of int, shape (J,)
            Selected level (0-based) per trial, ``-1`` when no dose is selected.
        """
        n, x, e, b = (np.atleast_2d(np.asarray(a, dtype=np.int64)) for a in (n, x, e, b))
        J, K = n.shape
        if eliminated is None:
            belim = self._tables()[2]
            el = (n >= 3) & (x >= belim[np.minimum(n, self.max_n)])
            first = np.where(el.any(axis=1), el.argmax(axis=1), K)
            eliminated = np.arange(K)[None, :] >= first[:, None]
        tried = n > 0
        rate = np.where(tried, x / np.maximum(n, 1), 0.0)
        fit = _isotonic_masked(rate, np.ones_like(rate), tried)
        dist = np.where(tried, np.abs(fit - self.target), np.inf)
        # the highest tried dose among those closest to the target (ties: tail, as select_boin12_obd)
        best = dist.min(axis=1, keepdims=True)
        close = tried & (np.abs(dist - best) <= 1e-12)
        mtd = K - 1 - np.argmax(close[:, ::-1], axis=1)
        score = self._scores(n, x, e, b)
        ok = tried & ~eliminated & (np.arange(K)[None, :] <= mtd[:, None])
        sc = np.where(ok, score, -np.inf)
        sel = sc.argmax(axis=1)             # which.max: the lowest on a tie
        sel[~ok.any(axis=1)] = -1
        return sel

    # ------------------------------------------------------------------ conduct
    def _run(self, C, CE, CB):
        """Trials in lock-step; ``C``, ``CE``, ``CB`` (J, K, S+1): cumulative DLTs, responses, both."""
        J, K, _ = C.shape
        tox_ok, eff_ok, belim = self._tables()
        le, ld = self.boundaries
        cs = self.cohort_size
        n = np.zeros((J, K), dtype=np.int64)
        x = np.zeros((J, K), dtype=np.int64)
        e = np.zeros((J, K), dtype=np.int64)
        b = np.zeros((J, K), dtype=np.int64)
        d = np.full(J, self.start, dtype=np.int64)
        elim_from = np.full(J, K, dtype=np.int64)
        stopped = np.zeros(J, dtype=bool)
        alive = np.ones(J, dtype=bool)
        rows = np.arange(J)
        lv = np.arange(K)
        for _ in range(self.max_n // cs):
            act = rows[alive]
            if not act.size:
                break
            dd = d[act]
            n1 = n[act, dd] + cs
            n[act, dd] = n1
            x[act, dd] = x1 = C[act, dd, n1]
            e[act, dd] = CE[act, dd, n1]
            b[act, dd] = CB[act, dd, n1]
            # BOIN elimination of the current dose and all above; stop if the lowest is eliminated
            el = x1 >= belim[n1]
            elim_from[act[el]] = np.minimum(elim_from[act[el]], dd[el])
            stop = elim_from[act] == 0
            # admissibility of d-1, d, d+1 (and never an eliminated dose)
            na, xa, ea = n[act], x[act], e[act]
            adm = tox_ok[na, xa] & eff_ok[na, ea] & (lv[None, :] < elim_from[act][:, None])
            near = np.abs(lv[None, :] - dd[:, None]) <= 1
            cand = adm & near
            score = self._scores(na, xa, ea, b[act])
            p = x1 / n1
            nxt = dd.copy()
            decided = np.zeros(act.size, dtype=bool)
            # 1. dose exploration
            explore = ((n1 >= self.explore_n) & (p < ld) & (dd < K - 1)
                       & (na[np.arange(act.size), np.minimum(dd + 1, K - 1)] == 0)
                       & (dd + 1 < elim_from[act]))
            nxt[explore] = dd[explore] + 1
            decided |= explore
            # 2. de-escalate
            down = ~decided & (p >= ld)
            nxt[down] = np.maximum(dd[down] - 1, 0)
            decided |= down
            # 3. between the boundaries with n >= n_star: d-1 or d
            mid = ~decided & (p > le) & (p < ld) & (n1 >= self.n_star)
            if mid.any():
                i = np.nonzero(mid)[0]
                lo = np.maximum(dd[i] - 1, 0)
                a_lo = (dd[i] > 0) & cand[i, lo]
                a_d = cand[i, dd[i]]
                both = a_lo & a_d
                pick = np.where(both, np.where(score[i, lo] >= score[i, dd[i]], lo, dd[i]),
                                np.where(a_lo, lo, np.where(a_d, dd[i], 0)))
                nxt[i] = pick
            decided |= mid
            # 4. the most desirable admissible neighbour, the higher on a tie; none admissible: stop
            rest = ~decided
            none = rest & ~cand.any(axis=1)
            stop |= none
            go = rest & ~none
            if go.any():
                i = np.nonzero(go)[0]
                sc = np.where(cand[i], score[i], -np.inf)
                mx = sc.max(axis=1, keepdims=True)
                top = cand[i] & (sc >= mx)
                nxt[i] = K - 1 - np.argmax(top[:, ::-1], axis=1)
            nxt = np.minimum(nxt, np.maximum(elim_from[act] - 1, 0))
            stopped[act[stop]] = True
            alive[act[stop]] = False
            d[act] = nxt
        eliminated = lv[None, :] >= elim_from[:, None]
        sel = self.select_obd(n, x, e, b, eliminated)
        sel[stopped] = -1
        return sel, n, x, e
