"""BOIN12 (efficacy-toxicity design, issue 13): rules on their definitions, behaviour, and the PK-driven escalation.

No printed BOIN12 operating characteristics of a reference implementation were found, so the design is tested
on the definitions of Lin et al. (2020) as implemented in the R package ``escalation`` (R/boin12_logic.R,
R/select_boin12_obd.R) and on behaviour that must hold.
"""
import numpy as np
import pytest
from scipy import stats

from pkcsf.trials import BOIN, BOIN12, TrialError, boin12_desirability, simulate_trials

DOSES = [1, 2, 3, 4, 5]


def test_benchmark_and_desirability_definitions():
    d = BOIN12(target=0.35, eff_min=0.25, u_none=40, u_both=60)
    # u_bar = 100*0.25*0.65 + 40*0.65*0.75 + 60*0.35*0.25 + 0 = 41; u_b = 41 + (100 - 41)/2
    assert d.benchmark == pytest.approx(70.5)
    # 6 patients: 2 response only, 2 neither, 1 both, 1 DLT only -> x = (200 + 80 + 60 + 0)/100 = 3.4
    got = boin12_desirability(6, 2, 2, 1, 1, 70.5)
    assert got == pytest.approx(stats.beta.sf(0.705, 1 + 3.4, 1 + 6 - 3.4))
    # untried dose: the prior, 1 - u_b/100
    assert boin12_desirability(0, 0, 0, 0, 0, 70.5) == pytest.approx(1 - 0.705)


def test_obd_selection_is_highest_desirability_at_or_below_the_isotonic_mtd():
    d = BOIN12(target=0.30)
    n, x, e, b = [3, 6, 9, 3], [0, 1, 3, 2], [1, 5, 5, 3], [0, 1, 2, 2]
    # DLT rates 0, 0.17, 0.33, 0.67 (monotone): MTD = level 2 (closest to 0.30); level 3 not eligible
    score = boin12_desirability(np.array(n), np.array(e) - b, np.array(n) - x - np.array(e) + b, np.array(b),
                                np.array(x) - b, d.benchmark, d.u_none, d.u_both)
    assert d.select_obd(n, x, e, b)[0] == int(np.argmax(score[:3]))
    assert d.select_obd(n, x, e, b)[0] == 1           # 5/6 responders at level 1 beat 5/9 at level 2


def test_efficacy_plateau_boin12_prefers_the_obd_boin_the_mtd():
    tox, eff = [0.05, 0.10, 0.15, 0.30, 0.45], [0.10, 0.30, 0.50, 0.52, 0.55]
    r12 = simulate_trials(BOIN12(target=0.35), DOSES, tox, p_eff=eff, n_trials=3000, seed=1)
    rb = simulate_trials(BOIN(target=0.35), DOSES, tox, p_eff=eff, n_trials=3000, seed=1)
    assert int(np.argmax(r12.p_select)) == 2 and int(np.argmax(rb.p_select)) == 3
    assert r12.p_select[2] - rb.p_select[2] > 6 * np.hypot(r12.p_select_se[2], rb.p_select_se[2])
    # expected responders: Wald's identity E[responders] = p_eff * E[n] (within Monte Carlo error)
    for res in (r12, rb):
        assert np.all(np.abs(res.mean_eff - np.array(eff) * res.mean_n) < 5 * res.mean_eff_se + 1e-9)
    s = r12.summary()
    for col in ("p_select_se", "mean_n_se", "mean_dlt_se", "true_p_eff", "mean_eff", "mean_eff_se"):
        assert col in s.columns


def test_boin12_safety_and_futility():
    toxic = simulate_trials(BOIN12(), [1, 2, 3], [0.6, 0.7, 0.8], p_eff=[0.5] * 3, n_trials=1000, seed=2)
    assert toxic.p_none > 0.85 and toxic.mean_trial_size < 20
    futile = simulate_trials(BOIN12(), [1, 2, 3], [0.05, 0.1, 0.15], p_eff=[0.02, 0.03, 0.05], n_trials=1000,
                             seed=2)
    assert futile.p_none > 0.4
    good = simulate_trials(BOIN12(), [1, 2, 3], [0.05, 0.1, 0.15], p_eff=[0.4, 0.5, 0.6], n_trials=1000, seed=2)
    assert good.p_none < 0.02


def test_p_eff_keeps_other_designs_reproducible_and_is_required_by_boin12():
    a = simulate_trials("boin", DOSES, [0.05, 0.1, 0.2, 0.3, 0.45], n_trials=500, seed=3)
    b = simulate_trials("boin", DOSES, [0.05, 0.1, 0.2, 0.3, 0.45], n_trials=500, seed=3)
    assert np.array_equal(a.selected, b.selected) and a.n_eff is None
    with pytest.raises(TrialError, match="p_eff"):
        simulate_trials("boin12", DOSES, [0.05, 0.1, 0.2, 0.3, 0.45], n_trials=10, seed=3)
    with pytest.raises(TrialError, match="p_eff"):
        simulate_trials("boin12", DOSES, [0.05, 0.1, 0.2, 0.3, 0.45], p_eff=[0.1, 0.2], n_trials=10, seed=3)
    with pytest.raises(TrialError, match="u_both"):
        BOIN12(u_both=120)


def test_escalation_boin12_uses_each_patients_response():
    from pkcsf.clinical.escalation import EscalationError, simulate_escalation

    r = simulate_escalation("pemetrexed", [5, 10, 15, 20], design="boin12", dlt="neutropenia", subjects=40,
                            trials=300, seed=1, efficacy="lumbar:time_above[200 umol/L] >= 3 h")
    att = r.efficacy_attainment
    assert np.allclose(r.trials.true_p_eff, att)          # the design saw the pool's own responders
    assert att[0] < 0.25 < att[1]                         # 5 mg futile, 10 mg and above respond
    # no DLT predicted at these IT doses: BOIN escalates to the top, BOIN12 stops at the first efficacious dose
    assert int(np.argmax(r.trials.p_select)) == 1
    assert int(np.argmax(simulate_trials("boin", r.doses, r.trials.true_p_dlt, n_trials=300, seed=1).p_select)) == 3
    assert "BOIN12" in r.trials.design and any("Lin R" in c for c in r.cite())
    s = r.summary()
    for col in ("p_select_se", "mean_n_se", "mean_dlt_se", "true_p_dlt_se", "mean_eff_se", "efficacy_attainment_se"):
        assert col in s.columns and np.all(np.isfinite(s[col].to_numpy()[:-1]))
    # default response (>= 1 log10 tumour-cell kill) where a CSF site exists; refused for IV without efficacy=
    with pytest.raises(EscalationError, match="efficacy"):
        simulate_escalation("pemetrexed", [100, 200], route="iv", design="boin12", schedule="once", trials=10)


def test_compare_schedules_twice_weekly_vs_d1d8():
    """Twice weekly x 2 weeks then weekly x 4 weeks gives 8 doses in 6 weeks, D1/D8 q21d x 2 cycles gives 4:
    with one fixed exposure-toxicity link on plasma AUC the former must be more toxic at every dose.
    """
    from pkcsf.clinical.escalation import DEFAULT_SCHEDULE, compare_schedules
    from pkcsf.trials import LogisticExposureToxicity

    link = LogisticExposureToxicity(e50=60.0, slope=2.0, source="assumption", note="test")
    cmp = compare_schedules("pemetrexed", [10, 20, 30],
                            {"twice weekly": DEFAULT_SCHEDULE, "D1/D8 q21d": "on days 1 and 8 every 21 days x 2 cycles"},
                            design="boin", dlt="link", link=link, exposure="plasma:auc", subjects=40, trials=400,
                            seed=4, days=49)
    t = cmp.table()
    tw, d18 = t[t["schedule"] == "twice weekly"], t[t["schedule"] == "D1/D8 q21d"]
    ratio = tw["exposure_p50"].to_numpy() / d18["exposure_p50"].to_numpy()
    assert np.all((ratio > 1.6) & (ratio < 2.4))              # about twice the plasma AUC
    assert np.all(tw["true_p_dlt"].to_numpy() > d18["true_p_dlt"].to_numpy())
    # the mean selected dose is lower with the more toxic schedule, beyond Monte Carlo error
    def mean_dose(df):
        return float((df["p_select"] * df["dose"]).sum())
    assert mean_dose(tw) < mean_dose(d18)
    ov = cmp.overall()
    assert list(ov["schedule"]) == ["twice weekly", "D1/D8 q21d"]
    for col in ("p_none_se", "mean_trial_size_se", "total_dlt_se"):
        assert np.all(np.isfinite(ov[col]))
    a, b = ov.iloc[0], ov.iloc[1]
    assert a["total_dlt"] - b["total_dlt"] > 3 * np.hypot(a["total_dlt_se"], b["total_dlt_se"])
