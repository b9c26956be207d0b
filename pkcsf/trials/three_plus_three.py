"""The traditional 3+3 design and its exact operating characteristics (Storer 1989; Lin & Shih 2001)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.trials.common import TrialError, _check_doses, _check_prob_array
from pkcsf.trials.results import TrialResults

__all__ = ["ThreePlusThree", "three_plus_three_exact"]

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

    Examples
    --------
    >>> ThreePlusThree().describe()
    '3+3 (de-escalation, 6 patients at the MTD)'
    """

    name = "3+3"

    def describe(self) -> str:
        """The design in one line.

        Returns
        -------
        str
            ``"3+3 (de-escalation, 6 patients at the MTD)"``.
        """
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
        patients of dose ``k`` in trial ``j``. Returns (selected, n, x).
        """
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


def three_plus_three_exact(p_dlt: ArrayLike, doses: ArrayLike | None = None) -> TrialResults:
    r"""Exact operating characteristics of :class:`ThreePlusThree`.

    Enumerates the binomial outcomes dose by dose. Escalation passes dose
    ``i`` either with 0/3 (prob. :math:`a_i=(1-p_i)^3`, 3 patients) or with
    1/3 then 0/3 (prob. :math:`b_i=3p_i(1-p_i)^2(1-p_i)^3`, 6 patients); the
    outcomes of different doses are independent. If dose ``j`` is too toxic,
    de-escalation reaches ``j-1``; a dose ``i`` below, conditionally on having
    been passed, had 6 patients with probability :math:`b_i/(a_i+b_i)` (then
    it is the MTD), else 3 patients are added and it is the MTD with
    probability :math:`P(\mathrm{Bin}(3,p_i)\le 1)`. This gives the
    recursion for the probability :math:`G_i` that de-escalation arrives at
    ``i``: :math:`G_i = D_{i+1} + G_{i+1}\,\alpha_{i+1}(1-q_{i+1})` with
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

    Examples
    --------
    >>> res = three_plus_three_exact([0.05, 0.15, 0.4], doses=[10, 20, 40])
    >>> res.p_select.round(3), round(res.p_none, 3)
    (array([0.208, 0.58 , 0.185]), 0.028)
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
