"""Bayesian optimal interval design (Liu & Yuan 2015) with the conventions of the ``BOIN`` R package (Yan et al. 2020),
and isotonic regression (Robertson, Wright & Dykstra 1988).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.core.errors import check_int
from pkcsf.trials.common import TrialError, _check_cohorts, _check_prob

__all__ = ["BOIN", "boin_boundaries", "boin_decision_table", "isotonic_regression"]

# ---------------------------------------------------------------------------
# BOIN
# ---------------------------------------------------------------------------

def boin_boundaries(target: float, p_saf: float | None = None, p_tox: float | None = None) -> tuple[float, float]:
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

    Examples
    --------
    >>> lam_e, lam_d = boin_boundaries(0.3)
    >>> round(lam_e, 3), round(lam_d, 3)
    (0.236, 0.359)
    """
    phi = _check_prob("target", target)
    phi1 = 0.6 * phi if p_saf is None else _check_prob("p_saf", p_saf)
    phi2 = 1.4 * phi if p_tox is None else _check_prob("p_tox", p_tox)
    if not phi1 < phi:
        raise TrialError("p_saf", phi1, f"must be < target ({phi:g})")
    if not phi2 > phi:
        raise TrialError("p_tox", phi2, f"must be > target ({phi:g})")
    if not phi2 < 1.0:
        # the default p_tox = 1.4 x target reaches 1 for a target >= 1/1.4 (0.714): no boundary exists
        raise TrialError("target" if p_tox is None else "p_tox", target if p_tox is None else p_tox,
                         "BOIN needs p_tox = 1.4 x target < 1, i.e. a target DLT rate below 0.714 (or give p_tox < 1)")
    lam_e = math.log((1 - phi1) / (1 - phi)) / math.log(phi * (1 - phi1) / (phi1 * (1 - phi)))
    lam_d = math.log((1 - phi) / (1 - phi2)) / math.log(phi2 * (1 - phi) / (phi * (1 - phi2)))
    return lam_e, lam_d


def boin_decision_table(target: float, max_n: int, *, p_saf: float | None = None, p_tox: float | None = None,
                        cutoff_eli: float = 0.95) -> pd.DataFrame:
    """BOIN decision table for n = 0..max_n patients at a dose.

    Conventions of the ``BOIN`` R package ``get.boundary`` (Yan et al. 2020):
    escalate if ``y <= floor(lambda_e n)``; de-escalate if
    ``y >= ceil(lambda_d n)`` (``lambda_d n + 1`` when that is an integer);
    eliminate the dose and all higher ones if ``n >= 3`` and
    ``P(p > target | y, n) > cutoff_eli`` under a beta(1, 1) prior, i.e.
    ``y >=`` the smallest such count; the de-escalation count is capped at the
    elimination count.

    Parameters
    ----------
    target : float
        Target DLT probability (0 < target < 1).
    max_n : int
        Largest number of patients at a dose.
    p_saf, p_tox : float, optional
        DLT rates deemed safe and toxic (BOIN defaults 0.6 and 1.4 x target).
    cutoff_eli : float, optional
        Posterior probability above which a dose is eliminated (default 0.95).

    Returns
    -------
    DataFrame
        Columns ``n``, ``escalate_if_le``, ``deescalate_if_ge``,
        ``eliminate_if_ge`` (``-1``/``max_n + 1`` mean "never").

    Examples
    --------
    >>> int(boin_decision_table(0.3, 9).set_index("n").loc[3, "escalate_if_le"])
    0
    """
    lam_e, lam_d = boin_boundaries(target, p_saf, p_tox)
    be, bd, belim = _boin_tables(float(target), lam_e, lam_d, check_int("max_n", max_n, 1, TrialError),
                                 float(cutoff_eli))
    return pd.DataFrame({"n": np.arange(max_n + 1), "escalate_if_le": be, "deescalate_if_ge": bd,
                         "eliminate_if_ge": belim})


def _posterior_count_table(target, max_n, cutoff):
    """Smallest DLT count ``y`` with P(p > target | y, m) > cutoff under a beta(1, 1) prior, per ``m``.

    ``max_n + 1`` ("never") for ``m < 3`` or when no count reaches the cutoff (``BOIN::get.boundary``).
    """
    from scipy import stats  # here, not at import: scipy.stats takes ~0.5 s to import (issue 11)

    out = np.full(max_n + 1, max_n + 1, dtype=np.int64)
    for m in range(3, max_n + 1):
        y = np.arange(m + 1)
        hit = np.nonzero(stats.beta.sf(target, y + 1, m - y + 1) > cutoff)[0]
        if hit.size:
            out[m] = hit[0]
    return out


def _boin_tables(target, lam_e, lam_d, max_n, cutoff_eli):
    n = np.arange(max_n + 1)
    be = np.floor(lam_e * n).astype(np.int64)
    ln = lam_d * n
    bd = np.where(np.abs(np.round(ln) - ln) < 1e-12, np.round(ln) + 1, np.ceil(ln)).astype(np.int64)
    belim = _posterior_count_table(target, max_n, cutoff_eli)   # P(p > target | y, m) > cutoff_eli
    bd = np.minimum(bd, belim)
    be[0] = -1
    return be, bd, belim


def isotonic_regression(values: ArrayLike, weights: ArrayLike | None = None) -> np.ndarray:
    """Weighted isotonic (non-decreasing) regression by pool-adjacent-violators.

    Parameters
    ----------
    values : array-like, shape (K,)
        The sequence to fit (finite), e.g. observed DLT rates per dose.
    weights : array-like, shape (K,), optional
        Positive weights (default 1).

    Returns
    -------
    ndarray, shape (K,)
        The non-decreasing sequence closest to ``values`` in weighted least squares.

    Examples
    --------
    >>> isotonic_regression([0.1, 0.3, 0.2, 0.4])
    array([0.1 , 0.25, 0.25, 0.4 ])
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
    r"""Bayesian optimal interval design (Liu & Yuan 2015).

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

    Extra safety (``extrasafe=True``, ``BOIN::get.oc``/``select.mtd``
    argument of the same name): the trial also stops with no MTD when the
    current dose is the lowest, >= 3 patients were treated there and
    ``P(p_1 > target | data) > cutoff_eli - offset`` (beta(1, 1) prior), and
    the same rule removes every dose at the final selection.

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
        :math:`\phi_1, \phi_2`; defaults 0.6 and 1.4 times the target.
    cutoff_eli : float
        Elimination cutoff, default 0.95.
    n_earlystop : int, optional
        See above; default None (off; the package's default 100 is also off
        for usual sample sizes).
    extrasafe : bool
        The stricter stopping rule at the lowest dose (default False, as in the package).
    offset : float
        ``cutoff_eli - offset`` is the extra-safety cutoff; default 0.05 (package default), in [0, 0.5).

    Examples
    --------
    >>> from pkcsf.trials import BOIN, simulate_trials
    >>> BOIN(target=0.3).describe()
    'BOIN (target 0.3, lambda_e 0.236, lambda_d 0.359, max_n 30, cohort 3)'
    >>> res = simulate_trials(BOIN(target=0.3), [10, 20, 40], p_dlt=[0.05, 0.15, 0.4], n_trials=500, seed=1)
    >>> res.summary()["p_select"].round(3).tolist()
    [0.008, 0.518, 0.472, 0.002]
    """

    target: float = 0.30
    max_n: int = 30
    cohort_size: int = 3
    start: int = 0
    p_saf: float | None = None
    p_tox: float | None = None
    cutoff_eli: float = 0.95
    n_earlystop: int | None = None
    extrasafe: bool = False
    offset: float = 0.05

    name = "boin"

    def __post_init__(self):
        object.__setattr__(self, "target", _check_prob("BOIN.target", self.target))
        _check_cohorts("BOIN", self.cohort_size, self.max_n, self.start)
        _check_prob("BOIN.cutoff_eli", self.cutoff_eli)
        if self.n_earlystop is not None:
            check_int("BOIN.n_earlystop", self.n_earlystop, 1, TrialError)
        if not isinstance(self.extrasafe, (bool, np.bool_)):
            raise TrialError("BOIN.extrasafe", self.extrasafe, "must be True or False")
        try:
            off = float(self.offset)
        except (TypeError, ValueError):
            raise TrialError("BOIN.offset", self.offset, "must be a number in [0, 0.5)") from None
        if not (0.0 <= off < 0.5) or not off < float(self.cutoff_eli):
            raise TrialError("BOIN.offset", self.offset, "must be in [0, 0.5) and below cutoff_eli "
                                                         "(BOIN::get.oc refuses offset >= 0.5)")
        boin_boundaries(self.target, self.p_saf, self.p_tox)   # validates p_saf/p_tox

    @property
    def boundaries(self) -> tuple[float, float]:
        """BOIN escalation and de-escalation boundaries (lambda_e, lambda_d) of the target."""
        return boin_boundaries(self.target, self.p_saf, self.p_tox)

    def describe(self) -> str:
        """The design and its settings in one line.

        Returns
        -------
        str
            Target, boundaries ``lambda_e``/``lambda_d``, ``max_n`` and cohort size.
        """
        le, ld = self.boundaries
        extra = f", extrasafe offset {self.offset:g}" if self.extrasafe else ""
        return (f"BOIN (target {self.target:g}, lambda_e {le:.3f}, lambda_d {ld:.3f}, "
                f"max_n {self.max_n}, cohort {self.cohort_size}{extra})")

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

    def select_mtd(self, n: ArrayLike, y: ArrayLike) -> int | np.ndarray:
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

    def _stop_table(self):
        """Extra-safety stopping counts at the lowest dose (``get.boundary(extrasafe=TRUE)$stop_boundary``)."""
        return _posterior_count_table(self.target, self.max_n, float(self.cutoff_eli) - float(self.offset))

    def _select(self, n, x, belim):
        J, K = n.shape
        el = (n >= 3) & (x >= belim[n])
        if self.extrasafe:    # select.mtd(extrasafe=TRUE): the lowest dose too toxic removes every dose
            el[:, 0] |= (n[:, 0] >= 3) & (x[:, 0] >= self._stop_table()[n[:, 0]])
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
        bstop = self._stop_table() if self.extrasafe else None
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
            if bstop is not None:   # get.oc: checked where an elimination boundary exists at n, at the lowest dose
                stop_none = stop_none | ((dd == 0) & (n1 >= 3) & (belim[n1] <= n1) & (x1 >= bstop[n1]))
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
