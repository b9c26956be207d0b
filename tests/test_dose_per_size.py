"""Doses per body size: per m2 in mg, g or ug (mg/m2, g/m2) and per kg of body weight (mg/kg), in the builders,
the regimen text, its inverse, scenario files and per-subject populations."""
from __future__ import annotations

import numpy as np
import pytest

from pkcsf.clinical import scenario
from pkcsf.clinical.dose_rules import dose_per_weight, per_size_unit
from pkcsf.clinical.regimens import describe_regimen, every, once, parse_regimen
from pkcsf.clinical.scenario_file import parse_scenario
from pkcsf.core.errors import DosingError, PkcsfError
from pkcsf.core.tomlio import tomllib


def test_units_per_size():
    assert per_size_unit("mg/m2") == ("bsa", 1.0)
    assert per_size_unit("g/m2") == ("bsa", 1000.0)
    assert per_size_unit("ug/m2") == ("bsa", 1e-3)
    assert per_size_unit("mg/kg") == ("weight", 1.0)
    assert per_size_unit("ug/kg") == ("weight", 1e-3)
    assert per_size_unit("mg") is None and per_size_unit("mL") is None


def test_builders_per_kg_and_grams_per_m2():
    assert once("6 mg/kg", "iv").expand()[0].amount == "6 * WT"
    assert once("6 mg/kg", "iv", bsa=1.8).expand()[0].amount == "6 * WT"     # bsa does not serve a per-kg dose
    assert once("5 g/m2", "iv", bsa=1.7).expand()[0].amount == pytest.approx(8500.0)
    assert once("5 g/m2", "iv").expand()[0].amount == "5000 * BSA"
    assert dose_per_weight(6, 70) == pytest.approx(420.0) and dose_per_weight(0.5) == "0.5 * WT"
    with pytest.raises(DosingError, match="body weight between"):
        dose_per_weight(6, 0.1)
    with pytest.raises(DosingError, match="per-kg dose must be > 0"):
        dose_per_weight(0, 70)


def test_text_per_kg_needs_the_weight():
    with pytest.raises(DosingError, match="needs the body weight.*weight=") as exc:
        parse_regimen("6 mg/kg trastuzumab iv every 3 weeks x 3")
    assert "6 mg/kg" in str(exc.value)
    reg = parse_regimen("6 mg/kg trastuzumab iv every 3 weeks x 3", weight=70)
    assert [d.amount for d in reg.expand()] == pytest.approx([420.0] * 3)
    assert parse_regimen("6 mg/kg iv once", weight_kg=50).expand()[0].amount == pytest.approx(300.0)
    assert parse_regimen("6 mg/kg iv once", weight="WT").expand()[0].amount == "6 * WT"
    # height and weight give the BSA for mg/m2 and the weight for mg/kg in one text
    reg = parse_regimen("12 mg/m2 lumbar once + 2 mg/kg iv once", height_cm=180, weight_kg=80)
    assert sorted(d.amount for d in reg.expand()) == pytest.approx([24.0, 160.0])
    assert parse_regimen("5 g/m2 methotrexate iv over 24 h once", bsa=2.0).expand()[0].amount == pytest.approx(1e4)
    with pytest.raises(DosingError, match="unknown dose unit.*per kg \\(mg/kg\\)"):
        parse_regimen("6 mg/lb iv once", weight=70)


def test_describe_round_trips_per_kg():
    reg = every("6 mg/kg", "iv", "3 weeks", 3, drug="trastuzumab")
    text = describe_regimen(reg)
    assert text.startswith("6 mg/kg trastuzumab iv")
    assert parse_regimen(text, weight="WT") == reg


def test_scenario_file_doses_each_patient_by_weight():
    text = """
drug = "trastuzumab"
days = 21
[population]
subjects = 40
seed = 3
[readouts]
unit = "mg/L"
groups = ["plasma"]
[[arms]]
name = "per_kg"
dose = "6 mg/kg"
route = "iv"
schedule = "once"
[[arms]]
name = "flat"
dose = "420 mg"
route = "iv"
schedule = "once"
"""
    scn, _ = parse_scenario(tomllib.loads(text))
    res = scenario.run(scn)
    m = res.metrics()
    pl = m[m["group"] == "plasma"].set_index(["arm", "id"])["auc"]
    per_kg, flat = pl.loc["per_kg"].to_numpy(), pl.loc["flat"].to_numpy()
    assert np.all(np.isfinite(per_kg)) and np.all(per_kg > 0)
    # the same subjects: a per-kg dose spreads the exposure differently from a flat dose
    assert not np.allclose(per_kg, flat)


def test_scenario_file_refuses_a_dose_per_pound():
    text = '''drug = "trastuzumab"
days = 7
[[arms]]
name = "a"
dose = "6 mg/lb"
route = "iv"
schedule = "once"
'''
    with pytest.raises(PkcsfError, match="arms\\[0\\].dose.*per kg: mg/kg"):
        parse_scenario(tomllib.loads(text))
