"""Virtual trials: :func:`simulate_trials` runs a design over thousands of trials in lock-step (see
:mod:`pkcsf.trials.designs` for the toxicity inputs and the random-number scheme).
"""
from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.core.errors import check_choice, check_int
from pkcsf.core.memory import available_memory, format_bytes
from pkcsf.trials.boin import BOIN
from pkcsf.trials.boin12 import BOIN12
from pkcsf.trials.common import (
    _ELEMENTS_PER_CHUNK,
    TrialError,
    _check_doses,
    _check_prob_array,
)
from pkcsf.trials.crm import CRM
from pkcsf.trials.results import TrialResults
from pkcsf.trials.three_plus_three import ThreePlusThree

__all__ = ["DESIGNS", "simulate_trials"]

DESIGNS = {"3+3": ThreePlusThree, "boin": BOIN, "crm": CRM, "boin12": BOIN12}


def _resolve_design(design):
    if isinstance(design, (ThreePlusThree, BOIN, CRM, BOIN12)):
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
            raise TrialError("p_dlt", "(exposure, link)",
                             "give exposure and link either as a tuple or as keywords, not both")
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
            raise TrialError("link", link,
                             f"must return one probability per exposure (got shape {pr.shape} for {r.shape})")
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


def _resolve_efficacy(K, p_eff, pool):
    """Per-dose (K,) response probabilities, or per pool patient (K, m) aligned with the exposure pool."""
    if p_eff is None:
        return None
    if pool is None:
        pe = _check_prob_array("p_eff", p_eff)
        if pe.size != K:
            raise TrialError("p_eff", p_eff, f"must have one response probability per dose level ({K})")
        return pe
    m = pool[2]
    try:
        rows = list(p_eff)
    except TypeError:
        raise TrialError("p_eff", p_eff, "with exposure input: one row of per-patient response probabilities "
                                         "per dose level, aligned with the exposure pool") from None
    if len(rows) != K:
        raise TrialError("p_eff", f"{len(rows)} rows", f"must have one row per dose level ({K})")
    PE = np.zeros(pool[1].shape)
    for k, row in enumerate(rows):
        r = _check_prob_array(f"p_eff[{k}]", row)
        if r.size != m[k]:
            raise TrialError(f"p_eff[{k}]", f"{r.size} values", f"must match the exposure pool of the dose ({m[k]})")
        PE[k, : m[k]] = r
    return PE


def _check_trials_memory(n_trials: int, K: int, *, efficacy: bool) -> None:
    """Refuse ``n_trials`` whose per-trial results (int64 selected dose, treated and DLT counts per dose, and
    responder counts with ``efficacy``) need more than 80 % of the available memory.

    Called by :func:`simulate_trials` and, before any exposure pool is simulated, by
    :func:`pkcsf.clinical.escalation.simulate_escalation` (issue 9).
    """
    need = 8 * n_trials * (1 + 2 * K + (K if efficacy else 0))      # the per-trial results kept
    have = available_memory()
    if have is not None and need > 0.8 * have:
        raise TrialError("n_trials", n_trials, f"the results of {n_trials:,} trials need about {format_bytes(need)} "
                         f"of memory, more than the {format_bytes(have)} available",
                         "fewer trials (10,000 give Monte Carlo errors below 0.5 percentage points)")


def simulate_trials(design: str | object, doses: ArrayLike, p_dlt: ArrayLike | None = None, *,
                    exposure: ArrayLike | None = None, link: Callable | None = None, n_trials: int = 10_000,
                    seed: int | None = None, efficacy_target: float | None = None, chunk_size: int | None = None,
                    p_eff: ArrayLike | None = None) -> TrialResults:
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
    p_eff : array-like, optional
        Response (efficacy) probabilities: shape (K,) with ``p_dlt``, or one per pool patient (K, m) with
        ``exposure`` (aligned with it; 0/1 for decided outcomes). Required by efficacy-toxicity designs
        (:class:`BOIN12`); with the others it only adds the expected responders (``mean_eff``). A patient's
        response is drawn independently of his DLT given his probabilities. Giving it changes the random
        stream (one more uniform per patient).

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
    uses_eff = getattr(des, "uses_efficacy", False)
    if uses_eff and p_eff is None:
        raise TrialError("p_eff", None, f"{des.name} needs the response probability of each dose (or pool patient)",
                         "pass p_eff=[...]")
    PE = _resolve_efficacy(K, p_eff, pool)
    n_trials = check_int("n_trials", n_trials, 1, TrialError)
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
    r = (1 if pool is None else 2) + (PE is not None)
    used = K * S * r
    B = -(-used // 4) * 4             # whole Philox blocks (4 x 64 bits) per trial
    grid_cost = getattr(des, "grid_size", 0)
    if chunk_size is None:
        chunk_size = max(256, _ELEMENTS_PER_CHUNK // (B + K * (S + 1) + 2 * grid_cost))
    chunk_size = check_int("chunk_size", chunk_size, 1, TrialError)

    _check_trials_memory(n_trials, K, efficacy=PE is not None)
    selected = np.empty(n_trials, dtype=np.int64)
    n_treated = np.empty((n_trials, K), dtype=np.int64)
    n_dlt = np.empty((n_trials, K), dtype=np.int64)
    n_eff = None if PE is None else np.empty((n_trials, K), dtype=np.int64)
    counts = None if pool is None else np.zeros(pool[0].shape, dtype=np.int64)
    slot = np.arange(S)
    for j0 in range(0, n_trials, chunk_size):
        J = min(chunk_size, n_trials - j0)
        bitgen = np.random.Philox(key=key)
        bitgen.advance(j0 * (B // 4))
        U = np.random.Generator(bitgen).random((J, B))[:, :used].reshape(J, K, S, r)
        if pool is None:
            tox = U[..., 0] < p_true[None, :, None]
            eff = None if PE is None else U[..., 1] < PE[None, :, None]
        else:
            E, P, m = pool
            idx = (U[..., 0] * m[None, :, None]).astype(np.int64)
            idx = np.minimum(idx, (m - 1)[None, :, None])
            tox = U[..., 1] < P[np.arange(K)[None, :, None], idx]
            eff = None if PE is None else U[..., 2] < PE[np.arange(K)[None, :, None], idx]
        C = np.zeros((J, K, S + 1), dtype=np.int64)
        np.cumsum(tox, axis=2, out=C[..., 1:])
        if eff is not None:
            CE = np.zeros((J, K, S + 1), dtype=np.int64)
            np.cumsum(eff, axis=2, out=CE[..., 1:])
        if uses_eff:
            CB = np.zeros((J, K, S + 1), dtype=np.int64)
            np.cumsum(tox & eff, axis=2, out=CB[..., 1:])
            sel, n, x, ne = des._run(C, CE, CB)
        else:
            sel, n, x = des._run(C)
            if eff is not None:
                ne = np.take_along_axis(CE, n[:, :, None], axis=2)[:, :, 0]
        selected[j0:j0 + J] = sel
        n_treated[j0:j0 + J] = n
        n_dlt[j0:j0 + J] = x
        if n_eff is not None:
            n_eff[j0:j0 + J] = ne
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
    p_eff_true = None
    if PE is not None:
        p_eff_true = PE if pool is None else np.array([PE[k, : pool[2][k]].mean() for k in range(K)])
    notes = des._notes()
    if pool is not None:
        notes = notes + ("true_p_dlt is the mean per-patient DLT probability over each dose's exposure pool.",)
        if PE is not None:
            notes = notes + ("true_p_eff is the mean per-patient response probability over each dose's pool.",)
    return TrialResults(design=des.describe(), doses=doses, true_p_dlt=p_true, p_select=p_select, p_none=p_none,
                        mean_n=mean_n, mean_dlt=mean_dlt, mean_trial_size=float(n_treated.sum(axis=1).mean()),
                        n_trials=n_trials, seed=seed_used, selected=selected, n_treated=n_treated, n_dlt=n_dlt,
                        exposure_percentiles=pct, p_target_attained=p_att, efficacy_target=efficacy_target,
                        notes=notes, true_p_eff=p_eff_true, n_eff=n_eff)
