"""What a scenario's window and default population give, checked against what the user asked (review of 5 Dec 2026):
infusion ends on the output grid, infusions running past the end named, subjects=1 as the typical patient, a table
of patients used whole, a child's age with a child's size, and event-table arms read out like simulated ones."""
from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.clinical.scenario import DosesAfterEndWarning


def _plasma(res, col="cmax_p50"):
    return float(res.summary().query("group == 'plasma'")[col].iloc[0])


def test_a_short_infusion_peak_is_read_at_its_end_whatever_the_step():
    """A 10-min infusion between hourly outputs read its plasma Cmax 33% low with no warning: its end was neither an
    output nor refined. Infusion ends are outputs now."""
    coarse = pk.simulate("pemetrexed", "500 mg/m2 iv over 10 min every 3 weeks x 2", days=42, unit="mg/L")
    fine = pk.simulate("pemetrexed", "500 mg/m2 iv over 10 min every 3 weeks x 2", days=42, dt=1 / 60, unit="mg/L")
    assert _plasma(coarse) == pytest.approx(_plasma(fine), rel=1e-9)


def test_an_infusion_past_the_end_is_named_and_the_default_window_covers_it():
    with pytest.warns(DosesAfterEndWarning, match="an infusion runs past the end.*0.5 days"):
        pk.simulate("methotrexate", "methotrexate 1000 mg iv over 24 h once", days=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DosesAfterEndWarning)
        res = pk.simulate("methotrexate", "methotrexate 1000 mg iv over 14 days once", unit="mg/L")
    assert res.scenario.arms[0].name and max(res.arms["methotrexate"].times) >= 14 * 24


def test_one_subject_is_the_typical_patient_unless_variability_is_asked_for():
    """The docs said subjects=1 is the typical patient; it was one random patient (lumbar Cmax 13% off)."""
    typ = pk.simulate("methotrexate", "12 mg lumbar once", days=2)
    off = pk.simulate("methotrexate", "12 mg lumbar once", days=2, variability=False)
    rnd = pk.simulate("methotrexate", "12 mg lumbar once", days=2, variability=True)
    lumbar = lambda r: float(r.summary().query("group == 'lumbar'")["cmax_p50"].iloc[0])  # noqa: E731
    assert lumbar(typ) == lumbar(off) != lumbar(rnd)
    from dataclasses import replace
    scn = pk.Scenario((pk.Arm("a", "12 mg lumbar once", drug="methotrexate"),))
    assert not scn.draws_variability and replace(scn, subjects=50).draws_variability   # decided again on replace


def test_a_table_of_patients_is_used_whole():
    """pk.simulate(drug, text, population=df) used the first row only (subjects defaulted to 1)."""
    df = pd.DataFrame({"WT": [50.0, 90.0, 70.0], "HT": [160.0, 185.0, 175.0], "AGE": [40.0, 60.0, 50.0],
                       "SEX": [1, 0, 0]})
    res = pk.simulate("methotrexate", "8 g/m2 iv over 4 h once", population=df, days=2)
    assert res.metrics()["id"].nunique() == 3


def test_a_child_gets_a_child_size_and_an_infant_is_asked_for_a_table():
    """age=6 drew adult weights and heights (62 kg, 172 cm; CrCl 139 mL/min) for the six-year-olds."""
    scn = pk.Scenario((pk.Arm("a", "8 g/m2 iv over 4 h once", drug="methotrexate"),), subjects=100, days=2, age=6)
    pop = pk.clinical.scenario.population_for(scn, pk.clinical.cns.setup("methotrexate", age=6))
    wt = pop.individual(pk.clinical.cns.setup("methotrexate", age=6).parameters, 100, seed=1)["WT"]
    assert 15 < float(np.median(wt)) < 30
    with pytest.raises(pk.ScenarioError, match="age: got 0.5; at least 1 year with the built-in demographics"):
        pk.run(pk.Scenario((pk.Arm("a", "6 mg lumbar once", drug="methotrexate"),), days=1, age=0.5))


def test_an_event_table_arm_has_the_last_interval_readouts_and_names_late_doses():
    df = pd.DataFrame({"ID": [1, 1], "TIME": [0.0, 72.0], "AMT": [12.0, 12.0], "CMT": ["lumbar", "lumbar"],
                       "EVID": [1, 1]})
    ev = pk.run(pk.Scenario((pk.Arm("ev", df, drug="methotrexate"),), days=5, unit="mg/L")).metrics()
    lum = ev.query("group == 'lumbar'").iloc[0]
    assert lum["cmax_last"] == pytest.approx(lum["cmax"]) and lum["auc_last"] == pytest.approx(lum["auc"] / 2, rel=1e-3)
    assert 0 < lum["trough_last"] < 0.1
    with pytest.warns(DosesAfterEndWarning, match="1 of 2 doses, from day 4"):
        pk.run(pk.Scenario((pk.Arm("ev", df, drug="methotrexate"),), days=2))


def test_the_metabolite_clearance_moves_with_the_parent_clearance_as_sourced():
    """Brown 2017 reports r = 0.90 between the parent and AZ5104 CL/F random effects; the default population drew
    them independently (AZ5104/parent AUC ratio 9.4-fold between the 5th and 95th percentiles; ~2.1 with r = 0.9)."""
    scn = pk.Scenario((pk.Arm("m", "80 mg oral daily x 14 days", drug="osimertinib", metabolite=True),),
                      subjects=400, days=14, seed=2, unit="nmol/L")
    m = pk.run(scn).metrics()
    ratio = (m[m.group == "metabolite"].set_index("id")["auc"] / m[m.group == "plasma"].set_index("id")["auc"])
    p5, p95 = np.percentile(ratio, [5, 95])
    assert p95 / p5 < 3.0


def test_methotrexate_creatinine_clearance_is_truncated_at_140_as_in_joerger():
    e = pk.clinical.cns.drug("methotrexate").parameters.covariates["CL_CRCL"]
    assert e.upper == 140.0 and e.factor(200.0) == e.factor(140.0) > e.factor(87.0) == 1.0


def test_one_group_given_as_text_is_that_group():
    res = pk.simulate("methotrexate", "12 mg lumbar once", days=1, groups="plasma")
    assert list(res.summary()["group"]) == ["plasma"]


def test_interval_metrics_says_which_troughs_are_pre_dose():
    """The last interval ends at the window's end: its 'trough' is the level there, not a pre-dose trough."""
    res = pk.simulate("osimertinib", "80 mg oral daily x 5 days", days=5)
    df = res.arms["osimertinib"].interval_metrics().query("compartment == 'plasma'")
    assert df["trough_before_dose"].tolist() == [True, True, True, True, False]
