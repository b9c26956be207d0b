"""Sensitivity analysis (pkcsf.clinical.sensitivity, `pkcsf sensitivity`): local elasticities and Sobol indices
against cases with a known answer, read-out parsing and bad input."""
import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.cli import main
from pkcsf.clinical import cns
from pkcsf.clinical.scenario import DosesAfterEndWarning
from pkcsf.clinical.sensitivity import parse_readout, sensitivity
from pkcsf.core.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent


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


# ---- arms with different set-ups: each arm's own typical value is perturbed (bug: the first arm's was used)
def _typical_run(scn) -> pd.DataFrame:
    """The scenario's typical patient by a direct run: no random effects, no covariate effects."""
    return pk.run(replace(scn, population=pk.Population(), variability=False, subjects=1, band_subjects=1,
                          targets=())).metrics()


def _value(m: pd.DataFrame, arm: str, group: str, metric: str) -> float:
    return float(m[(m["arm"] == arm) & (m["group"] == group)][metric].iloc[0])


def _one_arm(arm, days, **values) -> pd.DataFrame:
    """One arm run alone with some parameters set to absolute values (its own set-up for the rest)."""
    scn = pk.Scenario((arm,), days=days, unit="mg/L", variability=False, subjects=1,
                      population=pd.DataFrame({k: [v] for k, v in values.items()}))
    return pk.run(scn).metrics()


@pytest.mark.parametrize("order", [("mtx", "pem"), ("pem", "mtx")])
def test_two_drugs_each_arm_keeps_its_own_clearance(order):
    arms = {"mtx": pk.Arm("mtx", "12 mg lumbar once", drug="methotrexate"),
            "pem": pk.Arm("pem", "12 mg lumbar once", drug="pemetrexed")}
    scn = pk.Scenario(tuple(arms[a] for a in order), days=2, unit="mg/L")
    res = sensitivity(scn, "pem:plasma:auc / mtx:plasma:auc", parameters=["CL"], factor=2.0)
    cl = {d: cns.setup(d).parameters["CL"] for d in ("methotrexate", "pemetrexed")}
    assert cl["methotrexate"] != pytest.approx(cl["pemetrexed"], rel=0.05)
    typ = _typical_run(scn)
    direct = _value(typ, "pem", "plasma", "auc") / _value(typ, "mtx", "plasma", "auc")
    assert res.y_typical == pytest.approx(direct, rel=1e-9)   # was the methotrexate CL in the pemetrexed arm
    row = res.table.set_index("parameter").loc["CL"]
    assert row["typical"] == pytest.approx(cl["pemetrexed"])  # the read-out's arm; the table names plain "CL"
    assert row["high"] == pytest.approx(2 * cl["pemetrexed"])
    assert f"mtx: {cl['methotrexate']:.6g}" in row["typical_by_arm"] and "pem: " in row["typical_by_arm"]
    assert res.settings["typical_by_arm"]["CL"] == {"mtx": cl["methotrexate"], "pem": cl["pemetrexed"]}
    # CL x 2: each arm's own CL doubled
    hi = (_value(_one_arm(arms["pem"], 2, CL=2 * cl["pemetrexed"]), "pem", "plasma", "auc")
          / _value(_one_arm(arms["mtx"], 2, CL=2 * cl["methotrexate"]), "mtx", "plasma", "auc"))
    assert row["y_high"] == pytest.approx(hi, rel=1e-9)


@pytest.mark.parametrize("first", ["lmd", "plain"])
def test_pathology_arm_keeps_its_own_values_against_a_plain_arm(first):
    path = {"leptomeningeal_disease": True}
    arms = {"lmd": pk.Arm("lmd", "12 mg lumbar once", drug="methotrexate", pathologies=path),
            "plain": pk.Arm("plain", "12 mg lumbar once", drug="methotrexate")}
    scn = pk.Scenario((arms[first], arms["lmd" if first == "plain" else "plain"]), days=2, unit="mg/L")
    ro = "lmd:lumbar:auc / plain:lumbar:auc"
    res = sensitivity(scn, ro, parameters=["PS_BCSFB", "CL"])
    typ = _typical_run(scn)
    direct = _value(typ, "lmd", "lumbar", "auc") / _value(typ, "plain", "lumbar", "auc")
    assert direct < 0.99                                       # the pathology changes the read-out
    assert res.y_typical == pytest.approx(direct, rel=1e-9)    # was 1.000: one arm's PS_BCSFB for both
    ps = {k: cns.setup("methotrexate", pathologies=p).parameters["PS_BCSFB"] for k, p in (("lmd", path), ("plain", {}))}
    row = res.table.set_index("parameter").loc["PS_BCSFB"]
    assert row["typical"] == pytest.approx(ps["lmd"]) and row["typical_by_arm"]
    hi = (_value(_one_arm(arms["lmd"], 2, PS_BCSFB=2 * ps["lmd"]), "lmd", "lumbar", "auc")
          / _value(_one_arm(arms["plain"], 2, PS_BCSFB=2 * ps["plain"]), "plain", "lumbar", "auc"))
    assert row["y_high"] == pytest.approx(hi, rel=1e-9)
    assert res.table.set_index("parameter").loc["CL", "typical_by_arm"] == ""   # the same in both arms


def test_child_arm_keeps_its_own_volumes_against_an_adult_arm():
    scn = pk.Scenario((pk.Arm("child", "12 mg lumbar once", drug="methotrexate", age=3),
                       pk.Arm("adult", "12 mg lumbar once", drug="methotrexate")), days=1, unit="mg/L")
    res = sensitivity(scn, "child:lumbar:cmax / adult:lumbar:cmax", parameters=["V_SPINAL_LUMBAR"])
    typ = _typical_run(scn)
    direct = _value(typ, "child", "lumbar", "cmax") / _value(typ, "adult", "lumbar", "cmax")
    assert direct > 2.0                                        # a 3-year-old's smaller lumbar sac
    assert res.y_typical == pytest.approx(direct, rel=1e-9)    # was 1.000: the adult's volume in the child


@pytest.fixture(scope="module")
def liposomal_scenario():
    scn, _ = pk.load_scenario(ROOT / "scenarios" / "cytarabine_liposomal_vs_free.toml")
    return replace(scn, days=4, targets=())


def test_parameter_only_one_arm_has_leaves_the_other_arm_alone(liposomal_scenario):
    scn = liposomal_scenario
    lipo, free = (a.name for a in scn.arms)
    with pytest.warns(DosesAfterEndWarning):
        res = sensitivity(scn, f"{lipo}:lumbar:cmax / {free}:lumbar:cmax", parameters=["F_FREE_INIT", "CL"])
        typ = _typical_run(scn)
    direct = _value(typ, lipo, "lumbar", "cmax") / _value(typ, free, "lumbar", "cmax")
    assert res.y_typical == pytest.approx(direct, rel=1e-9)
    row = res.table.set_index("parameter").loc["F_FREE_INIT"]
    assert row["change_high"] > 0.5                            # more free drug at once in the liposomal arm
    assert f"{free}: not in its model" in row["typical_by_arm"]
    with pytest.warns(DosesAfterEndWarning):
        alone = sensitivity(scn, f"{free}:lumbar:cmax", parameters=["F_FREE_INIT"])
    t = alone.table.iloc[0]
    assert t["y_low"] == t["y_high"] == alone.y_typical        # the free arm's model has no F_FREE_INIT


def test_cli_sensitivity_of_the_liposomal_scenario(capsys):
    code = main(["sensitivity", str(ROOT / "scenarios" / "cytarabine_liposomal_vs_free.toml"), "--readout",
                 "liposomal 50 mg q2w:lumbar:cmax", "--parameters", "F_FREE_INIT,CL"])
    out = capsys.readouterr()
    assert code == 0, out.err                                  # was: population data column: got 'F_FREE_INIT'
    assert "F_FREE_INIT" in out.out
