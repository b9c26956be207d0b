"""PD-driven escalation: each virtual patient's DLT comes from his own PK -> PD (dlt="neutropenia")."""
import numpy as np
import pytest

import pkcsf as pk
from pkcsf.clinical import pd_toxicity as pdtox
from pkcsf.clinical.escalation import EscalationError
from pkcsf.trials import designs as T

IV_DOSES = [300, 500, 700, 900, 1200]


@pytest.fixture(scope="module")
def iv_pd():
    """IV pemetrexed (one 21-day cycle, no vitamins), DLT = grade >= 3 neutropenia from each patient's PK/PD."""
    return pk.simulate_escalation("pemetrexed", IV_DOSES, route="iv", schedule="once", days=21, trials=2000,
                                  subjects=200, seed=3, dlt="neutropenia", supplemented=False)


def test_pool_outcomes_are_per_patient_and_monotone(iv_pd):
    r = iv_pd
    assert set(np.unique(r.p_dlt)) <= {0.0, 1.0}                 # outcomes, not probabilities
    assert np.array_equal(r.p_dlt, (r.pd["grade"] >= 3).astype(float))
    frac = r.p_dlt.mean(axis=1)
    assert np.all(np.diff(frac) >= 0) and frac[0] < 0.05 and frac[-1] > 0.25
    # same patient (column) at every dose: his nadir falls as the dose rises
    assert np.all(np.diff(r.pd["nadir"], axis=0) <= 1e-9)
    s = r.summary()
    assert {"anc_nadir_p5", "anc_nadir_p50", "p_grade4", "typical_grade"} <= set(s.columns)
    assert r.provenance["dlt_model"] == "neutropenia" and "Friberg" in r.provenance["pd_model"]


def test_operating_characteristics_differ_from_typical_patient_shortcut(iv_pd):
    """Where the dose-toxicity relation is steep relative to the between-patient spread, the mean (typical)
    patient's DLT probability is 0 at a dose where a large fraction of patients have grade >= 3 neutropenia:
    the shortcut's 3+3 selects that dose every time, the per-patient trials mostly do not."""
    r = iv_pd
    typical = (r.pd["typical_grade"] >= 3).astype(float)
    frac = r.p_dlt.mean(axis=1)
    k = len(IV_DOSES) - 1
    assert typical[k] == 0.0 and frac[k] > 0.3                    # typical patient grade <= 2, 40 % of patients >= 3
    shortcut = T.three_plus_three_exact(typical, IV_DOSES)
    assert shortcut.p_select[k] == pytest.approx(1.0)
    se = r.trials.p_select_se[k]
    assert r.trials.p_select[k] < 0.3 and shortcut.p_select[k] - r.trials.p_select[k] > 10 * se


def test_per_patient_trials_follow_the_pool_fractions(iv_pd):
    """Trial patients are drawn independently from the pools: the operating characteristics equal the exact
    3+3 computed from the per-dose DLT fractions (within Monte Carlo error). The PD model changes the fractions."""
    r = iv_pd
    exact = T.three_plus_three_exact(r.p_dlt.mean(axis=1), IV_DOSES)
    assert np.all(np.abs(r.trials.p_select - exact.p_select) < 4 * r.trials.p_select_se + 0.005)


def test_vitamin_supplementation_lowers_the_dlt_fractions():
    kw = dict(route="iv", schedule="once", days=21, trials=200, subjects=150, seed=5, dlt="neutropenia")
    unsup = pk.simulate_escalation("pemetrexed", [900, 1200], supplemented=False, **kw)
    sup = pk.simulate_escalation("pemetrexed", [900, 1200], supplemented=True, **kw)
    assert np.all(sup.p_dlt.mean(axis=1) < unsup.p_dlt.mean(axis=1))


def test_intrathecal_reality_check_flags_the_miss():
    """Pan 2019: 2/2 dose-limiting myelosuppression at 15 mg IT (no vitamins). Plasma exposure after IT dosing is
    ~1 % of an IV cycle, so the plasma-driven model predicts ~0: the miss is reported, not hidden."""
    r = pk.simulate_escalation("pemetrexed", [10, 15, 20], trials=200, subjects=100, seed=1, dlt="neutropenia",
                               supplemented=False)
    c = r.pd["observed_checks"].set_index("key")
    assert c.loc["pan2019_10mg", "verdict"] == "within CI"
    assert c.loc["pan2019_15mg", "verdict"] == "MISS: below CI"
    assert any(n.startswith("REALITY CHECK MISS") for n in r.summary().attrs["notes"])
    assert "reality check" in str(r)


def test_pd_option_errors():
    with pytest.raises(EscalationError, match="not used with dlt='neutropenia'"):
        pk.simulate_escalation("pemetrexed", [10, 20], dlt="neutropenia", mtd_dose=10, trials=10, subjects=5)
    with pytest.raises(pk.PkcsfError, match="no neutropenia"):
        pk.simulate_escalation("methotrexate", [10, 20], dlt="neutropenia", trials=10, subjects=5)
    with pytest.raises(pk.PkcsfError, match="did you mean 'neutropenia'"):
        pk.simulate_escalation("pemetrexed", [10, 20], dlt="neutropnia", trials=10, subjects=5)
    with pytest.raises(pk.PkcsfError, match="dlt_grade"):
        pk.simulate_escalation("pemetrexed", [10, 20], dlt="neutropenia", dlt_grade=5, trials=10, subjects=5)


def test_clopper_pearson():
    lo, hi = pdtox.clopper_pearson(2, 2)
    assert hi == 1.0 and lo == pytest.approx(0.1581, abs=1e-4)
    lo, hi = pdtox.clopper_pearson(0, 6)
    assert lo == 0.0 and hi == pytest.approx(0.4593, abs=1e-4)


def test_dlt_window_limits_the_evaluation():
    kw = dict(route="iv", schedule="once", days=21, trials=100, subjects=100, seed=5, dlt="neutropenia",
              supplemented=False)
    full = pk.simulate_escalation("pemetrexed", [1200], **kw)
    early = pk.simulate_escalation("pemetrexed", [1200], dlt_window=2, **kw)    # nadir comes around day 7
    assert early.p_dlt.mean() < full.p_dlt.mean() and early.provenance["dlt_window_h"] == 48.0
    # cumulative toxicity over the whole course is still reported (issue 13): equal to the full-window DLTs
    course = early.summary()["p_dlt_grade_course"].to_numpy()[0]
    assert course == pytest.approx(full.p_dlt.mean()) and course > early.p_dlt.mean()
    with pytest.raises(EscalationError, match="dlt_window"):
        pk.simulate_escalation("pemetrexed", [1200], dlt_window=-1, **kw)
