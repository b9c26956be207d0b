"""Tests for pkcsf.trials: virtual dose-escalation trials.

Reference values: exact 3+3 operating characteristics (hand arithmetic and a
brute-force enumeration of the outcome tree), the published BOIN boundaries
(Liu & Yuan 2015; Yuan et al. 2016), adaptive quadrature for the CRM
posterior, and deterministic trials (DLT probabilities 0 or 1).
"""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from pkcsf.core.errors import PkcsfError
from pkcsf.trials.designs import (
    BOIN,
    CRM,
    DESIGNS,
    LogisticExposureToxicity,
    ThreePlusThree,
    TrialError,
    _isotonic_masked,
    _weighted_quantiles,
    boin_boundaries,
    boin_decision_table,
    crm_posterior,
    crm_skeleton,
    isotonic_regression,
    simulate_trials,
    three_plus_three_exact,
)

DOSES5 = [10.0, 20.0, 40.0, 60.0, 80.0]
CURVE5 = [0.05, 0.10, 0.20, 0.35, 0.50]


# ---------------------------------------------------------------------------
# 3+3: exact operating characteristics
# ---------------------------------------------------------------------------

def test_exact_one_dose_by_hand():
    # One dose, p = 0.2. P(0/3) = 0.8^3 = 0.512; P(1/3) = 3*0.2*0.64 = 0.384;
    # P(<=1 of 3) = 0.896. The top (only) dose is selected after
    # 0/3 then <=1/3 (0.512*0.896 = 0.458752) or 1/3 then 0/3 (0.384*0.512 = 0.196608).
    res = three_plus_three_exact([0.2])
    assert res.p_select[0] == pytest.approx(0.458752 + 0.196608, abs=1e-12)   # 0.65536
    assert res.p_none == pytest.approx(1 - 0.65536, abs=1e-12)
    # 3 patients, plus 3 more unless >= 2/3 (prob 0.896): 3 + 3*0.896
    assert res.mean_n[0] == pytest.approx(5.688, abs=1e-12)
    assert res.mean_dlt[0] == pytest.approx(0.2 * 5.688, abs=1e-12)
    assert res.mean_trial_size == pytest.approx(5.688, abs=1e-12)


def test_exact_two_doses_by_hand():
    # p = (0.2, 0.5).
    # Dose 1: 0/3 = 0.512, 1/3 = 0.384, 1/3 then 0/3 = 0.384*0.512 = 0.196608,
    #   passed = 0.512 + 0.196608 = 0.708608.
    # Dose 2 (top): 0/3 = 0.125, 1/3 = 0.375, <=1 of 3 = 0.5;
    #   passes with 0/3 then <=1/3 (0.125*0.5) or 1/3 then 0/3 (0.375*0.125) = 0.109375.
    p_top = 0.708608 * 0.109375                                     # 0.077504
    # Dose 1 selected when dose 2 is too toxic (0.890625) and dose 1 had 1/6
    # (0.196608) or had 0/3 and then <=1 of 3 more (0.512*0.896).
    p_one = (0.196608 + 0.512 * 0.896) * 0.890625                  # 0.58368
    # no MTD: dose 1 too toxic at first, or 0/3, dose 2 toxic, then >=2 of 3 more
    p_none = (1 - 0.708608) + 0.512 * 0.890625 * 0.104             # 0.338816
    n1 = 3 + 3 * 0.384 + 3 * 0.512 * 0.890625                      # 5.52
    n2 = 0.708608 * (3 + 3 * (0.125 + 0.375))                      # 3.188736
    res = three_plus_three_exact([0.2, 0.5])
    np.testing.assert_allclose(res.p_select, [p_one, p_top], atol=1e-12)
    assert res.p_none == pytest.approx(p_none, abs=1e-12)
    assert p_one + p_top + p_none == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(res.mean_n, [n1, n2], atol=1e-12)
    np.testing.assert_allclose(res.mean_dlt, [0.2 * n1, 0.5 * n2], atol=1e-12)


def _brute_force_3p3(p):
    """Enumerate every cohort outcome of the 3+3 variant (independent of the DP)."""
    K = len(p)
    sel = np.zeros(K + 1)                  # last entry: none
    en = np.zeros(K)
    ex = np.zeros(K)

    def finish(prob, k, n, x):
        sel[k] += prob
        en[:] += prob * np.asarray(n)
        ex[:] += prob * np.asarray(x)

    def treat(prob, d, deesc, n, x):
        for c in range(4):
            pc = stats.binom.pmf(c, 3, p[d])
            if pc == 0:
                continue
            n2, x2 = list(n), list(x)
            n2[d] += 3
            x2[d] += c
            decide(prob * pc, d, deesc, n2, x2)

    def decide(prob, d, deesc, n, x):
        if x[d] >= 2:                                   # too toxic
            down = d - 1
            if down < 0:
                finish(prob, K, n, x)
            elif n[down] >= 6:
                finish(prob, down, n, x)
            else:
                treat(prob, down, True, n, x)
        elif deesc:                                     # expansion below passed
            finish(prob, d, n, x)
        elif n[d] == 3 and (x[d] == 1 or d == K - 1):   # expand (1/3, or top dose)
            treat(prob, d, False, n, x)
        elif d == K - 1:
            finish(prob, d, n, x)
        else:
            treat(prob, d + 1, False, n, x)

    treat(1.0, 0, False, [0] * K, [0] * K)
    return sel, en, ex


@pytest.mark.parametrize("p", [
    [0.3], [0.0], [1.0], [0.1, 0.4], [0.0, 1.0], [0.05, 0.15, 0.3, 0.5],
    [0.5, 0.2, 0.6, 0.1], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0],
])
def test_exact_matches_brute_force_enumeration(p):
    sel, en, ex = _brute_force_3p3(p)
    res = three_plus_three_exact(p)
    np.testing.assert_allclose(res.p_select, sel[:-1], atol=1e-12)
    assert res.p_none == pytest.approx(sel[-1], abs=1e-12)
    np.testing.assert_allclose(res.mean_n, en, atol=1e-12)
    np.testing.assert_allclose(res.mean_dlt, ex, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=7))
def test_exact_is_a_distribution(p):
    res = three_plus_three_exact(p)
    assert np.all(res.p_select >= -1e-15)
    assert res.p_select.sum() + res.p_none == pytest.approx(1.0, abs=1e-12)
    assert np.all(res.mean_n <= 6 + 1e-12)
    assert res.mean_n[0] >= 3 - 1e-12


def test_simulated_3p3_matches_exact_within_monte_carlo_error():
    n = 200_000
    sim = simulate_trials("3+3", DOSES5, CURVE5, n_trials=n, seed=20240601)
    ex = three_plus_three_exact(CURVE5, DOSES5)
    se_sel = np.sqrt(ex.p_select * (1 - ex.p_select) / n)
    assert np.all(np.abs(sim.p_select - ex.p_select) <= 4 * se_sel)
    assert abs(sim.p_none - ex.p_none) <= 4 * math.sqrt(ex.p_none * (1 - ex.p_none) / n)
    assert np.all(np.abs(sim.mean_n - ex.mean_n) <= 4 * sim.mean_n_se)
    se_dlt = sim.n_dlt.std(axis=0, ddof=1) / math.sqrt(n)
    assert np.all(np.abs(sim.mean_dlt - ex.mean_dlt) <= 4 * se_dlt)
    assert abs(sim.mean_trial_size - ex.mean_trial_size) <= 4 * sim.mean_trial_size_se
    # every trial obeys the variant: <= 6 per dose, selected dose has exactly 6 and <= 1 DLT
    assert sim.n_treated.max() <= 6
    s = sim.selected
    has = s >= 0
    rows = np.nonzero(has)[0]
    assert np.all(sim.n_treated[rows, s[has]] == 6)
    assert np.all(sim.n_dlt[rows, s[has]] <= 1)


def test_exposure_mode_matches_exact_at_pool_mean():
    # Mode 2: a patient drawn uniformly from the pool has a DLT with the pool-mean
    # probability, independently of the others, so the exact OC at that mean apply.
    rng = np.random.default_rng(7)
    expo = np.exp(rng.normal(np.log(np.array(DOSES5))[:, None], 0.6, (5, 400)))
    link = LogisticExposureToxicity.from_mtd_exposure(60.0)
    n = 40_000
    sim = simulate_trials(ThreePlusThree(), DOSES5, exposure=expo, link=link, n_trials=n, seed=11)
    np.testing.assert_allclose(sim.true_p_dlt, link(expo).mean(axis=1))
    ex = three_plus_three_exact(sim.true_p_dlt, DOSES5)
    se = np.sqrt(ex.p_select * (1 - ex.p_select) / n)
    assert np.all(np.abs(sim.p_select - ex.p_select) <= 4 * se)
    assert np.all(np.abs(sim.mean_n - ex.mean_n) <= 4 * sim.mean_n_se)
    pct = sim.exposure_percentiles
    assert pct.shape == (5, 3) and np.all(np.diff(pct, axis=1) >= 0)


@pytest.mark.parametrize("p, n_expected, sel_expected", [
    ([0, 0, 1, 1, 1], [3, 6, 3, 0, 0], 1),   # lower dose had 3: expanded to 6, then selected
    ([0, 0, 0, 0, 0], [3, 3, 3, 3, 6], 4),   # top dose expanded to 6 and selected
    ([1, 0, 0, 0, 0], [3, 0, 0, 0, 0], -1),  # lowest dose too toxic: no MTD
    ([0, 1, 1, 1, 1], [6, 3, 0, 0, 0], 0),
])
def test_3p3_deterministic_paths(p, n_expected, sel_expected):
    res = simulate_trials("3+3", DOSES5, p, n_trials=3, seed=0)
    assert np.all(res.n_treated == n_expected)
    assert np.all(res.selected == sel_expected)


# ---------------------------------------------------------------------------
# BOIN
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("target, lam_e, lam_d", [(0.25, 0.197, 0.298), (0.30, 0.236, 0.358)])
def test_boin_boundaries_published(target, lam_e, lam_d):
    # Liu & Yuan (2015); Yuan et al. (2016) Table 1. The tables print 3 decimals
    # (lambda_d = 0.35852 for 0.30 is printed 0.358), hence the 1e-3 tolerance.
    le, ld = boin_boundaries(target)
    assert le == pytest.approx(lam_e, abs=1e-3)
    assert ld == pytest.approx(lam_d, abs=1e-3)


def test_boin_decision_table_target_030():
    t = boin_decision_table(0.30, 30).set_index("n").loc[[3, 6, 9, 12, 15, 18, 21, 24, 27, 30]]
    # Escalation / de-escalation counts of the published table (Yuan et al. 2016, target 0.3)
    assert list(t.escalate_if_le) == [0, 1, 2, 2, 3, 4, 4, 5, 6, 7]
    assert list(t.deescalate_if_ge) == [2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    # Elimination: smallest y with P(p > 0.3 | y, n) > 0.95 under beta(1, 1), checked by brute force
    for n, y in t.eliminate_if_ge.items():
        post = [1 - stats.beta.cdf(0.3, k + 1, n - k + 1) for k in range(n + 1)]
        assert post[y] > 0.95 and post[y - 1] <= 0.95
    assert t.eliminate_if_ge[3] == 3 and t.eliminate_if_ge[6] == 4


def test_boin_all_safe_selects_top_dose():
    res = simulate_trials(BOIN(target=0.3), DOSES5, [0.01, 0.01, 0.02, 0.02, 0.03], n_trials=2000, seed=5)
    assert res.p_select.argmax() == 4
    assert res.p_select[4] > 0.9


def test_boin_toxic_first_dose_mostly_no_mtd():
    res = simulate_trials(BOIN(target=0.3), DOSES5, [0.8, 0.85, 0.9, 0.95, 0.99], n_trials=2000, seed=5)
    assert res.p_none > 0.9
    assert res.mean_trial_size < 10


def test_boin_deterministic_paths():
    res = simulate_trials("boin", DOSES5, [0, 0, 1, 1, 1], n_trials=2, seed=0)
    # 0/3, 0/3, 3/3 (dose 2 eliminated), back to dose 1, stays (dose 2 eliminated)
    assert np.all(res.n_treated == [3, 24, 3, 0, 0])
    assert np.all(res.selected == 1)
    res = simulate_trials("boin", DOSES5, [0] * 5, n_trials=2, seed=0)
    assert np.all(res.n_treated == [3, 3, 3, 3, 18]) and np.all(res.selected == 4)


def test_boin_selection_tie_convention():
    b = BOIN(target=0.3, max_n=30)
    # tied isotonic estimates below the target -> the higher dose
    assert b.select_mtd([3, 3, 0], [0, 0, 0]) == 1
    # tied estimates above the target (3/6 each, not eliminated) -> the lower dose
    assert b.select_mtd([6, 6, 0], [3, 3, 0]) == 0
    # 3/6 then 2/6 violate monotonicity; pooled to one estimate above 0.3 -> lower dose
    assert b.select_mtd([6, 6, 0], [3, 2, 0]) == 0
    # lowest dose eliminated -> none
    assert b.select_mtd([3, 0, 0], [3, 0, 0]) == -1


def _select_mtd_reference(n, y, target, belim):
    """Literal transcription of BOIN::select.mtd (scalar, with PAVA)."""
    K = len(n)
    elim = K
    for i in range(K):
        if n[i] >= 3 and y[i] >= belim[n[i]]:
            elim = i
            break
    adm = [i for i in range(K) if n[i] > 0 and i < elim]
    if elim == 0 or not adm:
        return -1
    yy = np.array([y[i] for i in adm], float)
    nn = np.array([n[i] for i in adm], float)
    phat = (yy + 0.05) / (nn + 0.1)
    var = (yy + 0.05) * (nn - yy + 0.05) / ((nn + 0.1) ** 2 * (nn + 1.1))
    fit = isotonic_regression(phat, 1 / var) + np.arange(1, len(adm) + 1) * 1e-10
    return adm[int(np.argmin(np.abs(fit - target)))]


def test_boin_vectorised_selection_matches_reference():
    b = BOIN(target=0.25, max_n=30)
    belim = b._tables()[2]
    rng = np.random.default_rng(3)
    n = rng.integers(0, 5, (3000, 5)) * 3
    y = rng.binomial(n, rng.uniform(0, 0.7, (3000, 5)))
    got = b.select_mtd(n, y)
    want = [_select_mtd_reference(n[j], y[j], 0.25, belim) for j in range(len(n))]
    np.testing.assert_array_equal(got, want)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1), st.floats(0.1, 10), st.booleans()), min_size=1, max_size=7))
def test_masked_isotonic_equals_pava(rows):
    v = np.array([r[0] for r in rows])
    w = np.array([r[1] for r in rows])
    mask = np.array([r[2] for r in rows])
    fit = _isotonic_masked(v[None], w[None], mask[None])[0]
    assert np.all(np.isnan(fit[~mask]))
    if mask.any():
        np.testing.assert_allclose(fit[mask], isotonic_regression(v[mask], w[mask]), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------------
# CRM
# ---------------------------------------------------------------------------

def test_crm_posterior_matches_adaptive_quadrature():
    s = np.array([0.05, 0.12, 0.25, 0.40, 0.55])
    n = np.array([3, 6, 9, 3, 0])
    y = np.array([0, 1, 3, 2, 0])
    sd = math.sqrt(1.34)

    def dens(a):
        p = s ** np.exp(a)
        return np.exp(-a * a / (2 * sd * sd)) * np.prod(p**y * (1 - p) ** (n - y))

    kw = dict(epsabs=0, epsrel=1e-12, limit=200)
    Z = integrate.quad(dens, -30, 30, **kw)[0]
    mean_a = integrate.quad(lambda a: a * dens(a), -30, 30, **kw)[0] / Z
    p_mean = [integrate.quad(lambda a, k=k: s[k] ** np.exp(a) * dens(a), -30, 30, **kw)[0] / Z for k in range(5)]
    p_over = [integrate.quad(dens, -30, math.log(math.log(0.3) / math.log(s[k])), **kw)[0] / Z for k in range(5)]
    post = crm_posterior(s, n, y, target=0.3)
    assert post.mean_a == pytest.approx(mean_a, abs=1e-10)
    np.testing.assert_allclose(post.p_mean, p_mean, atol=1e-10)
    np.testing.assert_allclose(post.p_plugin, s ** math.exp(mean_a), atol=1e-10)
    np.testing.assert_allclose(post.p_over, p_over, atol=1e-6)
    # no data: the prior; E[a] = 0
    prior = crm_posterior(s, np.zeros(5), np.zeros(5))
    assert prior.mean_a == pytest.approx(0, abs=1e-12)
    assert prior.sd_a == pytest.approx(sd, rel=1e-9)


def test_crm_skeleton_lee_cheung():
    target, delta = 0.25, 0.05
    s = crm_skeleton(target, delta, 2, 5)
    r = math.log(0.30) / math.log(0.20)
    np.testing.assert_allclose(s, [0.25 ** (1 / r**2), 0.25 ** (1 / r), 0.25, 0.25**r, 0.25 ** (r**2)])
    # indifference intervals: where p_k = target - delta, p_{k+1} = target + delta
    for k in range(4):
        a = math.log(math.log(target - delta) / math.log(s[k]))
        assert s[k + 1] ** math.exp(a) == pytest.approx(target + delta, rel=1e-12)
    assert np.all(np.diff(crm_skeleton(0.3, 0.08, 0, 6)) > 0)
    with pytest.raises(TrialError, match="halfwidth"):
        crm_skeleton(0.25, 0.3, 2, 5)
    with pytest.raises(TrialError, match="prior_mtd"):
        crm_skeleton(0.25, 0.05, 5, 5)


def test_crm_behaviour():
    # All doses safe: escalates one level per cohort (no skipping), then stays on top.
    res = simulate_trials(CRM(), DOSES5, [0] * 5, n_trials=3, seed=0)
    assert np.all(res.n_treated == [3, 3, 3, 3, 18]) and np.all(res.selected == 4)
    # no skipping of untried doses: treated levels are contiguous from the start level
    res = simulate_trials(CRM(skeleton=(0.02, 0.05, 0.1, 0.2, 0.3), target=0.3), DOSES5, CURVE5,
                          n_trials=3000, seed=1)
    treated = res.n_treated > 0
    hi = treated.shape[1] - 1 - np.argmax(treated[:, ::-1], axis=1)
    assert np.all(treated.sum(axis=1) == hi + 1)
    assert res.p_select[3] == res.p_select.max()         # true MTD: 0.35 is the closest to 0.30
    # very toxic doses: without a stopping rule CRM picks the lowest, with one it stops
    tox = [0.85, 0.9, 0.92, 0.95, 0.97]
    assert simulate_trials(CRM(safety_cutoff=None), DOSES5, tox, n_trials=500, seed=2).p_select[0] == 1.0
    stop = simulate_trials("crm", DOSES5, tox, n_trials=500, seed=2)      # the default safety stop (0.9)
    assert stop.p_none > 0.95 and stop.mean_trial_size < 8


def test_crm_dfcrm_restriction_is_coherent():
    res = simulate_trials(CRM(restriction="dfcrm", estimate="plugin"), DOSES5, CURVE5, n_trials=2000, seed=4)
    assert res.p_select.sum() + res.p_none == pytest.approx(1.0)
    assert np.all(res.n_treated.sum(axis=1) == 30)


# ---------------------------------------------------------------------------
# exposure link, percentiles
# ---------------------------------------------------------------------------

def test_logistic_link():
    link = LogisticExposureToxicity.from_mtd_exposure(50.0)
    assert link(50.0) == pytest.approx(0.30)
    assert link(0.0) == 0.0
    assert link(25.0) == pytest.approx(1 / (1 + math.exp(-(math.log(0.3 / 0.7) - 2 * math.log(2)))))
    assert link.source == "assumption"
    lin = LogisticExposureToxicity.from_mtd_exposure(50.0, slope=0.1, log_exposure=False)
    assert lin(50.0) == pytest.approx(0.30) and lin(lin.e50) == pytest.approx(0.5)
    with pytest.raises(TrialError, match="e50"):
        LogisticExposureToxicity(-1.0)


def test_weighted_quantiles_match_numpy_inverted_cdf():
    rng = np.random.default_rng(0)
    for _ in range(20):
        v = rng.normal(size=30)
        c = rng.integers(0, 5, 30)
        if c.sum() == 0:
            continue
        want = np.percentile(np.repeat(v, c), [5, 50, 95], method="inverted_cdf")
        np.testing.assert_allclose(_weighted_quantiles(v, c, (0.05, 0.5, 0.95)), want)


def test_exposure_outputs_and_ragged_pools():
    rng = np.random.default_rng(2)
    pools = [rng.lognormal(np.log(d), 0.4, size=m) for d, m in zip(DOSES5, (50, 80, 120, 60, 30))]
    link = LogisticExposureToxicity.from_mtd_exposure(60.0)
    res = simulate_trials("3+3", DOSES5, (pools, link), n_trials=2000, seed=3, efficacy_target=35.0)
    df = res.summary()
    for col in ("exposure_p05", "exposure_p50", "exposure_p95", "p_target_attained"):
        assert col in df
    np.testing.assert_allclose(res.p_target_attained, [np.mean(p >= 35.0) for p in pools])
    np.testing.assert_allclose(res.true_p_dlt, [link(p).mean() for p in pools])
    assert list(df.level) == [0, 1, 2, 3, 4, -1]
    assert df.p_select.sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------
# reproducibility
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("design", ["3+3", BOIN(target=0.25), CRM(target=0.25)])
def test_same_seed_same_result_and_trial_j_independent_of_n_trials(design):
    a = simulate_trials(design, DOSES5, CURVE5, n_trials=120, seed=99)
    b = simulate_trials(design, DOSES5, CURVE5, n_trials=120, seed=99)
    np.testing.assert_array_equal(a.selected, b.selected)
    np.testing.assert_array_equal(a.n_treated, b.n_treated)
    np.testing.assert_array_equal(a.summary().to_numpy(), b.summary().to_numpy())
    c = simulate_trials(design, DOSES5, CURVE5, n_trials=37, seed=99, chunk_size=10)
    np.testing.assert_array_equal(c.selected, a.selected[:37])
    np.testing.assert_array_equal(c.n_treated, a.n_treated[:37])
    np.testing.assert_array_equal(c.n_dlt, a.n_dlt[:37])
    d = simulate_trials(design, DOSES5, CURVE5, n_trials=120, seed=100)
    assert not np.array_equal(d.n_dlt, a.n_dlt)


def test_exposure_mode_trial_j_independent_of_n_trials():
    rng = np.random.default_rng(5)
    expo = rng.lognormal(np.log(np.array(DOSES5))[:, None], 0.5, (5, 100))
    link = LogisticExposureToxicity.from_mtd_exposure(60.0)
    a = simulate_trials("boin", DOSES5, exposure=expo, link=link, n_trials=80, seed=1)
    b = simulate_trials("boin", DOSES5, exposure=expo, link=link, n_trials=30, seed=1, chunk_size=7)
    np.testing.assert_array_equal(a.n_dlt[:30], b.n_dlt)
    np.testing.assert_array_equal(a.selected[:30], b.selected)


def test_seed_none_is_recorded_and_reproducible():
    a = simulate_trials("3+3", DOSES5, CURVE5, n_trials=50)
    b = simulate_trials("3+3", DOSES5, CURVE5, n_trials=50, seed=a.seed)
    np.testing.assert_array_equal(a.n_dlt, b.n_dlt)


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_probabilities_outside_unit_interval():
    with pytest.raises(TrialError, match=r"p_dlt\[2\].*between 0 and 1"):
        simulate_trials("3+3", DOSES5, [0.1, 0.2, 1.3, 0.4, 0.5])
    with pytest.raises(TrialError, match=r"p_dlt\[0\]"):
        three_plus_three_exact([-0.1, 0.2])
    with pytest.raises(TrialError, match="one probability per dose level"):
        simulate_trials("3+3", DOSES5, [0.1, 0.2])
    with pytest.raises(TrialError, match="target"):
        BOIN(target=1.2)


def test_doses_must_increase():
    with pytest.raises(TrialError, match=r"doses\[2\].*strictly increasing"):
        simulate_trials("3+3", [10, 20, 15, 30, 40], CURVE5)
    with pytest.raises(TrialError, match="strictly increasing"):
        simulate_trials("3+3", [10, 20, 20, 30, 40], CURVE5)
    with pytest.raises(TrialError, match=r"doses\[0\].*> 0"):
        simulate_trials("3+3", [-1, 20, 30, 40, 50], CURVE5)
    with pytest.raises(TrialError, match=r"skeleton\[2\].*strictly increasing"):
        CRM(skeleton=(0.1, 0.2, 0.2, 0.3, 0.4))
    with pytest.raises(TrialError, match="one value per dose level"):
        simulate_trials(CRM(skeleton=(0.1, 0.2, 0.3)), DOSES5, CURVE5)


def test_unknown_design_lists_valid_names():
    with pytest.raises(TrialError) as err:
        simulate_trials("mtpi", DOSES5, CURVE5)
    msg = str(err.value)
    assert "design" in msg and "'mtpi'" in msg
    for name in DESIGNS:
        assert name in msg
    with pytest.raises(PkcsfError, match="did you mean 'boin'"):
        simulate_trials("bion", DOSES5, CURVE5)
    assert isinstance(err.value, ValueError)


def test_negative_exposures_and_bad_links():
    link = LogisticExposureToxicity(50.0)
    expo = np.full((5, 10), 20.0)
    expo[3, 4] = -1.0
    with pytest.raises(TrialError, match=r"exposure\[3, 4\].*>= 0"):
        simulate_trials("3+3", DOSES5, exposure=expo, link=link)
    with pytest.raises(TrialError, match="one row of exposures per dose level"):
        simulate_trials("3+3", DOSES5, exposure=np.ones((4, 10)), link=link)
    with pytest.raises(TrialError, match="link"):
        simulate_trials("3+3", DOSES5, exposure=np.ones((5, 10)), link=lambda e: e * 2)
    with pytest.raises(TrialError, match="either p_dlt or exposure"):
        simulate_trials("3+3", DOSES5, CURVE5, exposure=np.ones((5, 10)), link=link)
    with pytest.raises(TrialError, match="exposure input"):
        simulate_trials("3+3", DOSES5, CURVE5, efficacy_target=3.0)
    with pytest.raises(TrialError, match="give p_dlt"):
        simulate_trials("3+3", DOSES5)


def test_bad_options():
    with pytest.raises(TrialError, match="multiple of cohort_size"):
        BOIN(max_n=31)
    with pytest.raises(TrialError, match="n_trials"):
        simulate_trials("3+3", DOSES5, CURVE5, n_trials=0)
    with pytest.raises(TrialError, match="seed"):
        simulate_trials("3+3", DOSES5, CURVE5, seed=-3)
    with pytest.raises(TrialError, match="allowed: posterior_mean, plugin"):
        CRM(estimate="median")
    with pytest.raises(TrialError, match="start"):
        simulate_trials(BOIN(start=7), DOSES5, CURVE5)


def test_trial_count_that_cannot_fit_in_memory_is_refused_in_one_line():
    """10^12 trials would need ~TiB for their results: refused naming n_trials, before any allocation."""
    from pkcsf.trials import simulate_trials
    from pkcsf.trials.common import TrialError

    with pytest.raises(TrialError, match="n_trials.*memory"):
        simulate_trials("3+3", [10.0, 20.0, 30.0], [0.1, 0.2, 0.3], n_trials=10**12, seed=1)
