"""PK-driven virtual dose escalation (pkcsf.clinical.escalation): exposures, link, trials, errors.

Pools are small (a few dozen virtual patients, 2-3 dose levels) to keep the file fast.
"""
from __future__ import annotations

import numpy as np
import pytest

from pkcsf.clinical.escalation import (
    LITERATURE_MTD,
    EfficacyTarget,
    EscalationError,
    EscalationResult,
    parse_exposure,
    simulate_escalation,
)
from pkcsf.core.errors import PkcsfError
from pkcsf.trials import designs as T

SHORT = "weekly x 2 weeks"          # a short schedule: fast simulations
FAST = dict(schedule=SHORT, subjects=20, trials=300, seed=3)


@pytest.fixture(scope="module")
def pem():
    return simulate_escalation("pemetrexed", [10, 20, 40], iiv={"CL": 0.3},
                               efficacy="lumbar:time_above >= 48 h at 0.1 umol/L", **FAST)


def test_result_shape_and_summary(pem):
    assert isinstance(pem, EscalationResult)
    assert pem.exposures.shape == (3, 20) and pem.p_dlt.shape == (3, 20)
    s = pem.summary()
    assert list(s["dose"][:3]) == [10, 20, 40] and np.isnan(s["dose"].iloc[-1])
    for c in ("p_select", "p_select_se", "mean_n", "mean_dlt", "observed_dlt_rate", "true_p_dlt",
              "exposure_p5", "exposure_p50", "exposure_p95", "efficacy_attainment"):
        assert c in s.columns
    assert s["p_select"].sum() == pytest.approx(1.0)
    assert s.attrs["exposure"] == "plasma:auc" and s.attrs["exposure_unit"] == "umol/L*h"
    assert s.attrs["n_trials"] == 300
    assert "Pan" in s.attrs["link"] or "literature" in s.attrs["link"]
    assert pem.trials.n_trials == 300 and pem.exposure_frame().shape[0] == 60
    assert 0 <= pem.efficacy_attainment.min() and pem.efficacy_attainment.max() <= 1
    assert any("Pan Z" in r for r in pem.cite()) and any("Storer" in r for r in pem.cite())
    assert pem.provenance["mtd_dose_mg"] == 10.0 and pem.provenance["regimens"]["20 mg"] == f"20 mg lumbar {SHORT}"
    assert "3+3" in str(pem)


def test_exposures_increase_with_dose_same_patients(pem):
    E = pem.exposures
    assert np.all(np.diff(E, axis=0) > 0), "each virtual patient's exposure rises with dose"
    # linear PK: the same patients at double the dose have double the AUC
    np.testing.assert_allclose(E[1] / E[0], 2.0, rtol=1e-6)
    assert np.ptp(E[0]) > 0, "iiv gives a spread"
    s = pem.summary()
    assert s["exposure_p5"][0] < s["exposure_p50"][0] < s["exposure_p95"][0]
    assert np.all(np.diff(s["true_p_dlt"][:3]) > 0)


def test_default_link_is_anchored_at_the_mtd(pem):
    lk = pem.link
    assert isinstance(lk, T.LogisticExposureToxicity)
    mtd_exp = np.median(pem.exposures[0])         # 10 mg is the literature MTD and the first level
    assert lk(mtd_exp) == pytest.approx(0.30, abs=1e-9)
    assert lk.slope == T.DEFAULT_SLOPE and lk.source == "assumption"
    assert LITERATURE_MTD[("pemetrexed", "lumbar")][0] == 10.0


def test_reproducible_and_seed_sensitive():
    a = simulate_escalation("pemetrexed", [10, 20], iiv={"CL": 0.3}, **FAST)
    b = simulate_escalation("pemetrexed", [10, 20], iiv={"CL": 0.3}, **FAST)
    np.testing.assert_array_equal(a.exposures, b.exposures)
    np.testing.assert_array_equal(a.trials.selected, b.trials.selected)
    c = simulate_escalation("pemetrexed", [10, 20], iiv={"CL": 0.3}, **{**FAST, "seed": 4})
    assert not np.array_equal(a.exposures, c.exposures)


def test_mtd_dose_outside_levels_is_simulated():
    r = simulate_escalation("pemetrexed", [20, 40], mtd_dose="15 mg", **FAST)
    # linear PK, the same patients at every dose: the median exposure at 15 mg is 3/4 of that at 20 mg
    assert r.link(np.median(r.exposures[0]) * 15 / 20) == pytest.approx(0.30, rel=1e-6)
    assert "15 mg" in r.provenance["regimens"]


def test_link_makes_top_dose_clearly_toxic():
    # the literature MTD anchors P(DLT) = 0.3 at 10 mg: 40 and 80 mg are far above it
    r = simulate_escalation("pemetrexed", [5, 10, 40, 80], design="3+3", **FAST)
    s = r.summary()
    assert s["true_p_dlt"].iloc[3] > 0.9
    assert s["p_select"].iloc[3] < 0.01 and s["p_select"].iloc[2] < 0.05
    assert s["p_select"].iloc[:2].sum() > 0.4


def test_link_makes_top_dose_clearly_safe():
    link = T.LogisticExposureToxicity(e50=1e6, slope=2.0, source="test")   # DLT ~ never
    r = simulate_escalation("pemetrexed", [10, 20, 30], link=link, design="boin", **FAST)
    s = r.summary()
    assert s["true_p_dlt"].iloc[:3].max() < 1e-6
    assert s["p_select"].iloc[2] == pytest.approx(1.0)
    assert r.provenance["mtd_dose_mg"] is None and "source: test" in r.provenance["link"]


def test_other_exposures_designs_and_named_schedule():
    r = simulate_escalation("pemetrexed", [10, 20], exposure="lumbar:cmax", design="crm",
                            schedule="pemetrexed_pan2019", subjects=10, trials=50, seed=1, unit="mg/L")
    assert r.exposure_unit == "mg/L" and r.trials.design.startswith("CRM")
    assert r.provenance["regimens"]["10 mg"].startswith("pemetrexed_pan2019(")
    r = simulate_escalation("pemetrexed", [10, 20], exposure="ventricular:time_above[ic50_bac]", **FAST)
    assert r.exposure_unit == "h" and np.all(r.exposures[1] >= r.exposures[0])
    r = simulate_escalation("pemetrexed", [10, 20], **{**FAST, "schedule": lambda d: f"{d:g} mg lumbar once"})
    assert r.provenance["regimens"]["10 mg"].endswith("lumbar once")


def test_oral_saturable_osimertinib():
    r = simulate_escalation("osimertinib", [80, 160], route="oral", schedule="daily x 7 days", mtd_dose=160,
                            variant="saturable", exposure="ventricular:cmax", subjects=10, trials=50)
    assert np.all(r.exposures[1] > r.exposures[0])


def test_parse_exposure_and_efficacy():
    assert parse_exposure("plasma:auc").label == "plasma:auc"
    assert parse_exposure("lumbar:time_above[0.1 umol/L]").threshold == "0.1 umol/L"
    a = EfficacyTarget.parse("lumbar:time_above[0.1 umol/L] >= 48 h")
    b = EfficacyTarget.parse("lumbar:time_above >= 48 h at 0.1 umol/L")
    c = EfficacyTarget.parse({"exposure": "lumbar:time_above[0.1 umol/L]", "at_least": "2 d"})
    assert a == b and a.value("umol/L", 427.41) == 48.0 and c.value("umol/L", 427.41) == 48.0
    assert EfficacyTarget.parse("ventricular:cmax >= 1 umol/L").value("mg/L", 427.41) == pytest.approx(0.42741)
    assert EfficacyTarget.parse("plasma:auc >= 20 umol/L*h").value("umol/L", 427.41) == pytest.approx(20)
    assert EfficacyTarget.parse("plasma:auc >= 1 mg*h/L").value("umol/L", 427.41) == pytest.approx(1000 / 427.41)


@pytest.mark.parametrize("kwargs, field, words", [
    (dict(drug="pemetrexd"), "drug", ["did you mean 'pemetrexed'"]),
    (dict(route="lumbr"), "route", ["did you mean 'lumbar'"]),
    (dict(route="oral"), "route", ["pemetrexed can be given by"]),
    (dict(doses=[]), "doses", ["at least one"]),
    (dict(doses=["10 mL", "20 mg"]), "doses[0]", ["mg, g or ug", "volume"]),
    (dict(doses=[20, 10]), "doses[1]", ["strictly increasing"]),
    (dict(doses=[10, -5]), "doses[1]", ["> 0"]),
    (dict(design="bion"), "design", ["did you mean 'boin'"]),
    (dict(exposure="plasma"), "exposure", ["group:metric"]),
    (dict(exposure="plasma:cmx"), "exposure metric", ["did you mean 'cmax'"]),
    (dict(exposure="plasm:auc"), "exposure group", ["did you mean 'plasma'"]),
    (dict(exposure="lumbar:time_above"), "exposure", ["needs a threshold"]),
    (dict(exposure="lumbar:time_above[3 mg]"), "exposure threshold", ["concentration"]),
    (dict(exposure="plasma:time_above[1 umol/L]"), "exposure", ["median exposure at the MTD dose"]),
    (dict(drug="methotrexate"), "mtd_dose", ["no literature MTD", "give mtd_dose"]),
    (dict(mtd_dose="10 mL"), "mtd_dose", ["mg"]),
    (dict(link=T.LogisticExposureToxicity(1.0), mtd_dose=10), "mtd_dose", ["not both"]),
    (dict(link="steep"), "link", ["callable"]),
    (dict(p_at_mtd=1.5), "p_at_mtd", ["between 0 and 1"]),
    (dict(schedule="10 mg weekly x 2"), "schedule", ["without the dose"]),
    (dict(schedule="wekly x 2"), "schedule", ["unknown frequency", "wekly x 2"]),
    (dict(subjects=0), "subjects", [">= 1"]),
    (dict(trials=2.5), "trials", [">= 1"]),
    (dict(seed=-1), "seed", [">= 0"]),
    (dict(iiv={"CLL": 0.3}), "iiv parameter", ["did you mean 'CL'"]),
    (dict(iiv={"CL": 5}), "iiv.CL", ["between 0 and 3"]),
    (dict(efficacy="lumbar:cmax"), "efficacy", [">="]),
    (dict(efficacy="lumbar:cmax >= 1 h"), "efficacy.at_least", ["concentration"]),
    (dict(efficacy={"exposure": "lumbar:cmax", "at_leas": "1 umol/L"}), "efficacy.at_leas",
     ["did you mean 'at_least'"]),
    (dict(unit="mg"), "unit", ["concentration unit"]),
])
def test_errors(kwargs, field, words):
    args = dict(drug="pemetrexed", doses=[10, 20], schedule="once", subjects=2, trials=10)
    args.update(kwargs)
    drug, doses = args.pop("drug"), args.pop("doses")
    with pytest.raises(PkcsfError) as ei:
        simulate_escalation(drug, doses, **args)
    e = ei.value
    assert isinstance(e, ValueError)
    assert e.field == field, str(e)
    for w in words:
        assert w in str(e), str(e)


def test_escalation_error_is_a_scenario_error():
    from pkcsf.core.errors import ScenarioError

    assert issubclass(EscalationError, ScenarioError)
