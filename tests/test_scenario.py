"""Scenarios: read-outs against hand-computed cases, reproducibility across chunking, errors."""
import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.scenario import Arm, Scenario, Target, run

POP = pk.Population({"CL": 0.3, "V_LV": 0.25, "Q_CSF": 0.2})


def test_readouts_do_not_depend_on_chunking_or_n():
    arm = Arm("ommaya", "12 mg ommaya twice weekly x 2 weeks", drug="methotrexate")
    kw = dict(days=14, seed=4, population=POP, thresholds=["1 umol/L"])
    a = run(Scenario([arm], subjects=60, chunk_size=7, **kw)).metrics()
    b = run(Scenario([arm], subjects=60, chunk_size=64, **kw)).metrics()
    c = run(Scenario([arm], subjects=25, **kw)).metrics()
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a[a["id"] < 25].reset_index(drop=True), c)


def test_iv_bolus_auc_and_units_against_hand_computation():
    # IV methotrexate bolus: plasma AUC(0-inf) = dose / CL; the window to 7 days catches nearly all of it
    typical = pk.Population(None)
    res = run(Scenario([Arm("iv", "50 mg iv once", drug="methotrexate")], days=7, unit="mg/L", population=typical))
    setup = pk.setup("methotrexate")
    m = res.metrics().query("group == 'plasma'").iloc[0]
    # the CSF and brain hold a little drug, so plasma AUC is slightly below dose/CL
    assert m["auc"] == pytest.approx(50.0 / setup.parameters["CL"], rel=0.01)
    assert m["tmax"] == 0.0
    assert m["cmax"] == pytest.approx(50.0 / setup.parameters["V1"], rel=1e-9)
    res_u = run(Scenario([Arm("iv", "50 mg iv once", drug="methotrexate")], days=7, unit="umol/L",
                         population=typical))
    mu = res_u.metrics().query("group == 'plasma'").iloc[0]
    assert mu["cmax"] == pytest.approx(m["cmax"] / setup.mw * 1000, rel=1e-12)


def test_pre_dose_values_make_auc_additive_over_doses():
    # two identical lumbar doses 14 days apart: the second interval's AUC equals the first's (no carry-over
    # after 14 days), which only holds if the grid reports the value before each bolus (no false ramp)
    res = run(Scenario([Arm("x", "12 mg lumbar every 14 days x 2", drug="methotrexate")], days=28, unit="mg/L",
                       population=pk.Population(None), dt=1.0))
    arm = res["x"]
    t = arm.times
    c = arm.profiles["methotrexate"][0, :, arm.groups["methotrexate"].index("lumbar")]
    i = np.searchsorted(t, 336.0)                       # the first of the two entries at the second dose
    assert t[i] == t[i + 1] == 336.0 and c[i] < 1e-3 * c[i + 1]
    first = pk.metrics.auc(t[1:i + 1], c[None, 1:i + 1], method="linear-up/log-down")[0]   # t[0] = t[1] = 0: first dose
    second = pk.metrics.auc(t[i + 1:], c[None, i + 1:], method="linear-up/log-down")[0]
    total = res.metrics().query("group == 'lumbar'")["auc"].iloc[0]
    assert total == pytest.approx(first + second, rel=1e-12)
    assert second == pytest.approx(first, rel=1e-3)


def test_lumbar_versus_ommaya_and_targets():
    res = run(Scenario([Arm("lumbar", "12 mg lumbar once", drug="methotrexate"),
                        Arm("ommaya", "12 mg ommaya once", drug="methotrexate")],
                       subjects=40, days=5, seed=2, population=POP,
                       targets=[Target("ventricular", "1 umol/L", "6 h"), Target("lumbar", "1 umol/L", "6 h")]))
    s = res.summary().set_index(["arm", "group"])
    assert s.loc[("ommaya", "ventricular"), "auc_p50"] > 5 * s.loc[("lumbar", "ventricular"), "auc_p50"]
    assert s.loc[("lumbar", "lumbar"), "auc_p50"] > s.loc[("ommaya", "lumbar"), "auc_p50"]
    tg = res.targets().set_index(["arm", "target"])["fraction"]
    assert tg[("ommaya", "ventricular >= 1 umol/L for >= 6 h after each dose")] == 1.0
    bands = res["ommaya"].bands()
    assert {"p5", "p50", "p95", "typical"} <= set(bands.columns)
    assert (bands["p5"] <= bands["p50"] + 1e-12).all() and (bands["p50"] <= bands["p95"] + 1e-12).all()


def test_combination_arm_has_both_drugs():
    text = "160 mg osimertinib oral daily x 14 days + 30 mg pemetrexed lumbar once"
    res = run(Scenario([Arm("combo", text)], days=14, population=pk.Population(None)))
    assert set(res.metrics()["drug"]) == {"osimertinib", "pemetrexed"}


def test_errors_name_the_problem():
    with pytest.raises(pk.PkcsfError, match="oral"):
        run(Scenario([Arm("x", "12 mg oral once", drug="methotrexate")], days=2))
    with pytest.raises(pk.PkcsfError, match="needs a drug"):
        run(Scenario([Arm("x", pk.Dose(12, "lumbar"))], days=2))
    with pytest.raises(pk.ScenarioError, match="subjects"):
        Scenario([Arm("x", "12 mg lumbar once", drug="methotrexate")], subjects=0)
    with pytest.raises(pk.ScenarioError, match="unit"):
        Scenario([Arm("x", "12 mg lumbar once", drug="methotrexate")], unit="mg")
    with pytest.raises(pk.ScenarioError, match="unique"):
        Scenario([Arm("x", "12 mg lumbar once", drug="methotrexate")] * 2)
    with pytest.raises(pk.PkcsfError, match="group"):
        run(Scenario([Arm("x", "12 mg lumbar once", drug="methotrexate")], days=2, groups=("ventricles",)))
