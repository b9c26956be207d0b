"""Sensitivity analysis (pkcsf.clinical.sensitivity, `pkcsf sensitivity`): local elasticities and Sobol indices
against cases with a known answer, read-out parsing and bad input."""
import math

import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.cli import main
from pkcsf.clinical.sensitivity import parse_readout, sensitivity
from pkcsf.core.errors import ScenarioError


@pytest.fixture(scope="module")
def iv_scenario():
    # an IV bolus: plasma AUC(0-inf) = dose / CL; over 60 days AUC is within rounding of it (7 days until
    # methotrexate's systemic model got a deep compartment with a ~300-h half-life, 4 Dec 2026)
    return pk.Scenario((pk.Arm("iv", "50 mg iv once", drug="methotrexate"),), days=60)


def test_local_elasticity_of_plasma_auc_to_clearance_is_minus_one(iv_scenario):
    res = sensitivity(iv_scenario, "plasma:auc", parameters=["CL", "V1"], factor=1.25)
    t = res.table.set_index("parameter")
    assert t.loc["CL", "elasticity"] == pytest.approx(-1.0, abs=0.03)
    assert abs(t.loc["V1", "elasticity"]) < 0.03
    assert list(res.table["parameter"])[0] == "CL"          # sorted by effect size
    assert res.n_evaluations == 5


def test_sobol_puts_plasma_auc_variance_on_clearance(iv_scenario):
    res = sensitivity(iv_scenario, "iv:plasma:auc", parameters=["CL", "V1"], method="sobol", n=64, factor=2.0)
    t = res.table.set_index("parameter")
    assert t.loc["CL", "ST"] > 0.9 and t.loc["CL", "S1"] > 0.85
    assert t.loc["V1", "ST"] < 0.05
    assert res.n_evaluations == 1 + 64 * (2 + 2)


def test_route_ratio_is_driven_by_csf_flow_and_ventricular_mixing():
    scn = pk.Scenario((pk.Arm("lumbar", "12 mg lumbar once", drug="methotrexate"),
                       pk.Arm("ommaya", "12 mg ommaya once", drug="methotrexate")), days=7)
    res = sensitivity(scn, "lumbar:ventricular:auc / ommaya:ventricular:auc")
    assert 0.0 < res.y_typical < 1.0                          # an Ommaya dose covers the ventricles better
    top = set(res.table["parameter"].head(4))
    assert "Q_CSF" in top                                     # bulk flow carries drug away from the ventricles
    hi = res.table.set_index("parameter").loc["Q_CSF"]
    assert hi["change_high"] < 0 < hi["change_low"]
    fr = res.table[res.table["parameter"].str.startswith("F_")]
    assert (fr["high"] <= 1.0).all()                          # fractions stay fractions


@pytest.mark.parametrize("text, arms, ok", [
    ("a:ventricular:auc / b:ventricular:auc", ["a", "b"], True),
    ("ventricular:time_above[1 umol/L]", ["a"], True),        # the '/' of a unit is not a ratio
    ("ventricular:auc", ["a", "b"], False),                   # two arms: name one
    ("c:ventricular:auc", ["a", "b"], False),
    ("a:x:auc / b:x:auc / a:x:auc", ["a", "b"], False),
    ("", ["a"], False),
])
def test_parse_readout(text, arms, ok):
    if ok:
        num, den = parse_readout(text, arms)
        assert num.group == "ventricular"
    else:
        with pytest.raises(ScenarioError):
            parse_readout(text, arms)


@pytest.mark.parametrize("kw, field", [({"method": "morris"}, "method"), ({"factor": 1.0}, "factor"),
                                       ({"parameters": ["NOPE"]}, "parameters"),
                                       ({"method": "sobol", "n": 100, "parameters": ["CL", "V1"]}, "n"),
                                       ({"method": "sobol", "parameters": ["CL"]}, "parameters")])
def test_bad_input_names_the_field(iv_scenario, kw, field):
    with pytest.raises(ScenarioError) as e:
        sensitivity(iv_scenario, "plasma:auc", **kw)
    assert field in str(e.value)


def test_unknown_metric_lists_the_metrics(iv_scenario):
    with pytest.raises(ScenarioError, match="auc"):
        sensitivity(iv_scenario, "plasma:aux", parameters=["CL"])


def test_cli_writes_table_and_figure(tmp_path, capsys):
    scn = tmp_path / "s.toml"
    scn.write_text('drug = "methotrexate"\ndays = 3\n[[arms]]\nname = "iv"\nregimen = "20 mg iv once"\n')
    out = tmp_path / "out"
    code = main(["sensitivity", str(scn), "--readout", "plasma:auc", "--parameters", "CL,V1", "--factor", "1.5",
                 "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    t = pd.read_csv(out / "sensitivity_local.csv")
    assert list(t["parameter"]) == ["CL", "V1"] and math.isfinite(t["elasticity"][0])
    assert (out / "sensitivity_local.png").stat().st_size > 1000
    assert "elasticity" in capsys.readouterr().out
    assert main(["sensitivity", str(scn), "--readout", "plasma:auc", "--method", "nope"]) == 2
