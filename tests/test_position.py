"""Body position after lumbar doses (pkcsf.clinical.position): parsing, the split solve against references,
mass balance, scenarios, observation rows and the calibration on Blaney 1995."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pkcsf.clinical import cns
from pkcsf.clinical.position import Position, parse_position, simulate_position, upright_intervals
from pkcsf.core.errors import DosingError, ParameterError, PkcsfError
from pkcsf.engine.dosing import Dose, Regimen

T = np.round(np.arange(0.0, 48.0001, 0.25), 10)


@pytest.fixture(scope="module")
def mtx():
    return cns.setup("methotrexate")


@pytest.mark.parametrize("text, windows", [
    ("lying", ()), ("", ()), (None, ()), ("prone", ()),
    ("upright 0-24 h", ((0.0, 24.0),)), ("Upright 1-24h", ((1.0, 24.0),)),
    ("upright 1-16 h, upright 24-40 h", ((1.0, 16.0), (24.0, 40.0))),
])
def test_parse_position(text, windows):
    p = parse_position(text)
    assert p.upright == windows
    assert parse_position(p.text) == p


@pytest.mark.parametrize("text", ["upright", "sitting 0-2 h", "upright 5-2 h", "upright 2-2 h", "upright -1-3 h",
                                  "upright 0-x h"])
def test_a_malformed_position_is_refused_naming_the_rule(text):
    with pytest.raises(ParameterError) as e:
        parse_position(text)
    assert "upright A-B h" in str(e.value)


def test_windows_open_after_each_lumbar_dose_and_merge():
    reg = Regimen([Dose(12, "lumbar", time=0), Dose(12, "ommaya", time=10), Dose(12, "lumbar", time=20)])
    assert upright_intervals("upright 0-24 h", reg, 100) == [(0.0, 44.0)]
    assert upright_intervals("upright 1-5 h", reg, 100) == [(1.0, 5.0), (21.0, 25.0)]
    assert upright_intervals("upright 1-5 h", reg, 22) == [(1.0, 5.0), (21.0, 22.0)]
    assert upright_intervals("lying", reg, 100) == []


def test_a_daily_rhythm_repeats_until_the_next_lumbar_dose():
    p = parse_position("upright 1-15 h daily")
    assert p.daily and p.upright == ((1.0, 15.0),) and parse_position(p.text) == p
    reg = Regimen([Dose(12, "lumbar", time=0), Dose(12, "lumbar", time=84)])
    assert upright_intervals(p, reg, 150) == [(1.0, 15.0), (25.0, 39.0), (49.0, 63.0), (73.0, 84.0), (85.0, 99.0),
                                              (109.0, 123.0), (133.0, 147.0)]
    with pytest.raises(ParameterError, match="B <= 24"):
        parse_position("upright 1-30 h daily")


def test_a_daily_rhythm_is_its_windows_written_out(mtx):
    daily = mtx.simulate(Dose(12, "lumbar"), T, position="upright 1-15 h daily")
    listed = mtx.simulate(Dose(12, "lumbar"), T, position=", ".join(
        f"upright {1 + 24 * k}-{15 + 24 * k} h" for k in range(int(T[-1] // 24) + 1)))
    assert daily.upright == listed.upright
    np.testing.assert_allclose(daily.amounts, listed.amounts, rtol=1e-12, atol=1e-15)


def test_lying_and_a_window_after_the_end_are_the_plain_solve(mtx):
    plain = mtx.simulate(Dose(12, "lumbar"), T)
    for pos in ("lying", "upright 60-70 h"):
        res = mtx.simulate(Dose(12, "lumbar"), T, position=pos)
        np.testing.assert_allclose(res.amounts, plain.amounts, rtol=1e-12, atol=1e-15)


def test_upright_throughout_equals_the_model_with_upright_constant(mtx):
    # reference: one solve with UPRIGHT = 1 from the start
    ref = mtx.with_parameters(UPRIGHT=1.0).simulate(Dose(12, "lumbar"), T)
    res = mtx.simulate(Dose(12, "lumbar"), T, position="upright 0-100 h")
    np.testing.assert_allclose(res.amounts, ref.amounts, rtol=1e-9, atol=1e-12)


def test_the_split_solve_is_exact_before_the_window_and_conserves_mass(mtx):
    plain = mtx.simulate(Dose(12, "lumbar"), T)
    res = mtx.simulate(Dose(12, "lumbar"), T, position="upright 2-24 h")
    before = T <= 2.0
    np.testing.assert_allclose(res.amounts[:, before], plain.amounts[:, before], rtol=1e-12, atol=1e-15)
    total = res.amounts[0].sum(axis=1)           # every state incl. eliminated: the dose, at every time
    np.testing.assert_allclose(total, 12.0, rtol=1e-8)
    assert (res.amounts >= -1e-12).all()
    assert res.upright == [(2.0, 24.0)]


def test_upright_keeps_a_lumbar_dose_low_in_the_ventricles(mtx):
    lying = mtx.simulate(Dose(12, "lumbar"), T)
    up = mtx.simulate(Dose(12, "lumbar"), T, position="upright 0-24 h")
    day = T <= 24
    assert up.concentration("lv")[0][day].max() < 0.2 * lying.concentration("lv")[0][day].max()
    assert up.concentration("spinal_lumbar")[0][day].max() >= lying.concentration("spinal_lumbar")[0][day].max()


def test_v3_and_a_population(mtx):
    st = cns.setup("methotrexate", model="v3")
    lying = st.simulate(Dose(12, "lumbar"), T)
    up = st.simulate(Dose(12, "lumbar"), T, position="upright 0-24 h")
    assert up.concentration("lv")[0].max() < lying.concentration("lv")[0].max()
    params = pd.DataFrame([mtx.parameters] * 3)
    params["Q_MIX_VENT"] *= [0.5, 1.0, 2.0]
    res = simulate_position(mtx, Dose(12, "lumbar"), T, "upright 1-24 h", params)
    assert res.amounts.shape[0] == 3 and res.ok.all()
    one = simulate_position(mtx, Dose(12, "lumbar"), T, "upright 1-24 h", params.iloc[[2]])
    np.testing.assert_allclose(res.amounts[2], one.amounts[0], rtol=1e-10)


def test_a_position_without_a_lumbar_dose_is_refused(mtx):
    with pytest.raises(DosingError, match="lumbar dose"):
        mtx.simulate(Dose(12, "ommaya"), T, position="upright 0-24 h")
    assert mtx.simulate(Dose(12, "ommaya"), T, position="lying").ok.all()


def test_shared_pieces_equal_the_per_subject_segments(mtx):
    """The shared-regimen path (doses split by time) against the per-subject path of time-varying covariates."""
    from pkcsf.clinical.events_segments import solve_segments
    from pkcsf.clinical.position import solve_position

    reg = Regimen([Dose(12, "lumbar", time=0.0), Dose(12, "lumbar", time=24.0), Dose(5, "iv", time=30.0)])
    params = pd.DataFrame([mtx.parameters] * 2)
    params["Q_MIX_SPINAL"] *= [0.5, 2.0]
    for pos, starts, up in (("upright 1-10 h", [0.0, 1.0, 10.0, 25.0, 34.0], (0.0, 1.0, 0.0, 1.0, 0.0)),
                            ("upright 0-10 h", [0.0, 10.0, 24.0, 34.0], (1.0, 0.0, 1.0, 0.0))):   # a dose at an edge
        _, got, status, intervals = solve_position(mtx.model, reg, params, T, pos)
        assert (status == 0).all() and [x for ab in intervals for x in ab if x > 0] == starts[1:]
        starts = np.array(starts)
        seg = np.searchsorted(starts, T, side="right") - 1
        seg_p = [params.assign(UPRIGHT=u) for u in up]
        want, _, _ = solve_segments(mtx.model, [reg] * 2, seg_p, starts, seg, T - starts[seg])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_per_m2_doses_and_the_subject_by_subject_fallback(mtx):
    params = pd.DataFrame([mtx.parameters]).assign(BSA=1.5)
    per_m2 = simulate_position(mtx, Dose("7 * BSA", "lumbar"), T, "upright 0-24 h", params)
    mg = simulate_position(mtx, Dose(10.5, "lumbar"), T, "upright 0-24 h")
    np.testing.assert_allclose(per_m2.amounts, mg.amounts, rtol=1e-12)
    with pytest.raises(DosingError, match="BSA"):
        simulate_position(mtx, Dose("7 * BSA", "lumbar"), T, "upright 0-24 h")
    # an infusion across a window edge is lowered subject by subject (amounts in mg only)
    inf = Regimen([Dose(12, "lumbar"), Dose(100, "iv", time=0.5, duration=2.0)])
    res = mtx.simulate(inf, T, position="upright 1-24 h")
    np.testing.assert_allclose(res.amounts[0].sum(axis=1)[T >= 2.5], 112.0, rtol=1e-8)
    with pytest.raises(DosingError, match="in mg"):
        simulate_position(mtx, Regimen([Dose(12, "lumbar"), Dose("50 * BSA", "iv", time=0.5, duration=2.0)]), T,
                          "upright 1-24 h", params)


def test_scenario_arms_with_a_position():
    from pkcsf.clinical.scenario import Arm, Scenario, run

    arms = [Arm("lying", "12 mg lumbar once", drug="methotrexate"),
            Arm("upright", "12 mg lumbar once", drug="methotrexate", position="upright 0-24 h")]
    res = run(Scenario(arms, subjects=20, days=2, seed=3))
    s = res.summary().set_index(["arm", "group"])
    assert s.loc[("upright", "ventricular"), "cmax_p50"] < 0.2 * s.loc[("lying", "ventricular"), "cmax_p50"]
    assert s.loc[("upright", "ventricular"), "n_failed"] == 0
    with pytest.raises(PkcsfError, match="position"):
        Arm("x", "12 mg lumbar once", drug="methotrexate", position="standing")
    with pytest.raises(PkcsfError, match="lumbar dose"):
        run(Scenario([Arm("o", "12 mg ommaya once", drug="methotrexate", position="upright 0-24 h")], subjects=2,
                     days=1))


def test_scenario_file_position_and_the_command_line(tmp_path, capsys):
    from pkcsf.cli import main
    from pkcsf.clinical.scenario_file import load_scenario

    f = tmp_path / "s.toml"
    f.write_text('drug = "methotrexate"\ndays = 2\n[population]\nsubjects = 5\n'
                 '[[arms]]\nname = "up"\nregimen = "12 mg lumbar once"\nposition = "upright 1-24 h"\n')
    scn, _ = load_scenario(f)
    assert scn.arms[0].position == Position(((1.0, 24.0),))
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "--no-figures", "--quiet"]) in (0, None)
    m = pd.read_csv(tmp_path / "o" / "metrics.csv")
    assert len(m) and m["cmax"].gt(0).all()
    f.write_text(f.read_text().replace("upright 1-24 h", "upright 24-1 h"))
    with pytest.raises(PkcsfError, match=r"arms\[0\]\.position"):
        load_scenario(f)
    assert main(["run", str(f), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert "arms[0].position" in err and "upright A-B h" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists()


def test_observation_rows_with_a_position():
    from pkcsf.clinical.observations import ObservationError, check_observations
    from pkcsf.clinical.validation import run_validation

    row = {"id": "x", "drug": "methotrexate", "route": "lumbar", "dose_mg": 12, "site": "lv",
           "quantity": "position_peak_ratio", "time_h": "0-24", "observed": 0.1, "unit": "1",
           "position": "upright 0-24 h", "ref": "lying"}
    t = run_validation(pd.DataFrame([row]))
    assert 0 < t["predicted"].iloc[0] < 0.2
    with pytest.raises(ObservationError, match="position"):
        check_observations(pd.DataFrame([{**row, "position": "walking"}]))
    with pytest.raises(ObservationError, match="ref"):
        check_observations(pd.DataFrame([{**row, "ref": "spinal_lumbar"}]))


def test_posture_calibration_reproduces_blaney_1995():
    from pkcsf.clinical.calibration import evaluate

    for name in ("posture_upright", "posture_upright_v3"):
        ev = evaluate(name)
        fe = np.array(ev["fold_error"])
        print(name, dict(zip(ev["ids"], np.round(fe, 3))))
        assert (np.abs(np.log(fe)) < np.log(2)).all()


def test_compare_positions(mtx):
    from pkcsf.clinical.position import compare_positions

    t = compare_positions(mtx, 12.0, days=2.0, threshold=0.4544, dt=0.05)
    assert list(t["route"]) == ["ommaya", "lumbar", "lumbar", "lumbar"]
    lying = mtx.simulate(Dose(12, "lumbar"), np.round(np.arange(0, 48.0001, 0.05), 10))
    assert t["cmax"].iloc[1] == pytest.approx(lying.concentration("lv")[0].max(), rel=1e-12)
    assert (t["hours_above"] > 0).all() and t["auc_vs_ommaya"].iloc[0] == 1.0
    with pytest.raises(ParameterError):
        compare_positions(mtx, 12.0, positions=("sideways",))


def test_the_posture_factor_uncertainty_in_an_arm():
    """posture_upright has a covariance (2 ratios, 1 value): an arm can draw the factor per patient."""
    from pkcsf.clinical.scenario import Arm, Scenario, run
    from pkcsf.clinical.uncertainty import usable_calibrations

    assert "posture_upright" in usable_calibrations()
    arm = Arm("up", "12 mg lumbar once", drug="methotrexate", position="upright 1-24 h", uncertainty="posture_upright")
    m = run(Scenario((arm,), subjects=30, days=2, seed=2)).metrics()
    v = m[m["group"] == "ventricular"]
    assert v["uncertainty_draw"].nunique() > 10 and v["auc"].std() > 0 and v["status"].eq("SUCCESS").all()


def test_a_liposomal_lumbar_dose_opens_the_windows_too():
    st = cns.setup("cytarabine_liposomal")
    t = np.round(np.arange(0.0, 72.0001, 0.5), 10)
    lying = st.simulate(Dose(50, st.sites["lumbar"]), t)
    up = st.simulate(Dose(50, st.sites["lumbar"]), t, position="upright 0-48 h")
    assert up.upright == [(0.0, 48.0)]
    assert up.concentration("lipo_lv")[0].max() < lying.concentration("lipo_lv")[0].max()


def test_a_combination_arm_opens_the_windows_for_every_drug():
    """Posture changes the CSF mixing of every drug in the CSF: osimertinib taken by mouth in an arm with a lumbar
    pemetrexed dose gets the windows of the pemetrexed dose (and an arm without any lumbar dose is refused)."""
    from pkcsf.clinical.scenario import Arm, Scenario, run

    reg = Regimen([Dose(80, "oral", ii=24.0, addl=2, drug="osimertinib"), Dose(50, "lumbar", drug="pemetrexed")])
    arms = (Arm("lying", reg), Arm("upright", reg, position="upright 0-48 h"))
    res = run(Scenario(arms, subjects=3, days=3, seed=1))
    s = res.summary().set_index(["arm", "drug", "group"])
    pem = s.xs("pemetrexed", level="drug")
    assert pem.loc[("upright", "ventricular"), "auc_p50"] < 0.5 * pem.loc[("lying", "ventricular"), "auc_p50"]
    assert (s["n_failed"] == 0).all()
    with pytest.raises(PkcsfError, match="lumbar dose in the arm"):
        run(Scenario([Arm("o", "80 mg oral daily x 2 days", drug="osimertinib", position="upright 0-24 h")],
                     subjects=2, days=2))


def test_route_comparison_interval_with_a_position(mtx):
    """The lumbar/Ommaya interval for a patient who sits up after the puncture: its typical value is the typical
    comparison's, and the default is the lying comparison as shipped."""
    from pkcsf.clinical.position import compare_positions
    from pkcsf.clinical.uncertainty import route_comparison_interval

    up = route_comparison_interval("methotrexate", "12 mg", n=20, seed=1, days=3, position="upright 1-24 h")
    lying = route_comparison_interval("methotrexate", "12 mg", n=20, seed=1, days=3)
    r_up, r_lying = (t.set_index("quantity").loc["auc_ratio_lumbar_over_ommaya"] for t in (up, lying))
    assert up["position"].iloc[0] == "upright 1-24 h" and lying["position"].iloc[0] == "lying"
    assert r_up["typical"] < 0.6 * r_lying["typical"] and r_up["lo"] < r_up["typical"] < r_up["hi"]
    typ = compare_positions(mtx, 12.0, positions=("upright 1-24 h",), days=3, dt=0.02)["auc_vs_ommaya"].iloc[1]
    assert r_up["typical"] == pytest.approx(typ, rel=0.02)


def test_the_bounded_memory_path_gives_the_same_amounts(mtx, monkeypatch):
    import pkcsf.clinical.position as position

    full = simulate_position(mtx, Dose(12, "lumbar"), T, "upright 1-24 h", outputs=["lv", "spinal_lumbar"])
    monkeypatch.setattr(position, "_ALL_STATES_BYTES", 0)
    low = simulate_position(mtx, Dose(12, "lumbar"), T, "upright 1-24 h", outputs=["lv", "spinal_lumbar"])
    assert low.names == full.names == ["lv", "spinal_lumbar"]
    np.testing.assert_allclose(low.amounts, full.amounts, rtol=1e-10, atol=1e-14)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0, 300), min_size=1, max_size=6, unique=True),
       st.floats(0, 20), st.floats(0.5, 4), st.floats(10, 400), st.booleans())
def test_windows_match_their_definition(doses, a, width, t_end, daily):
    """Any doses and window: the upright intervals are disjoint, increasing and inside [0, t_end], and a time is in
    one exactly when the definition says the patient is upright (checked on a grid, away from the edges): within
    [a, b) h after a lumbar dose, or, with 'daily', within [a, b) h of a day since the last lumbar dose."""
    b = min(a + width, 24.0) if daily else a + width
    reg = Regimen([Dose(1, "lumbar", time=t) for t in doses])
    iv = upright_intervals(Position(((a, b),), daily), reg, t_end)
    flat = [x for w in iv for x in w]
    assert flat == sorted(flat) and all(s < e for s, e in iv) and all(0 <= s and e <= t_end for s, e in iv)
    ds = sorted(doses)

    def upright(t):
        if daily:
            last = [d for d in ds if d <= t]
            return bool(last) and a <= (t - last[-1]) % 24.0 < b
        return any(a <= t - d < b for d in ds)

    edges = np.array(flat + [d + a for d in ds] + [d + b for d in ds] + ds + [t_end])
    for t in np.linspace(0.0, t_end, 997)[:-1]:
        if daily:
            near = np.min(np.abs(((t - np.array(ds)) % 24.0)[:, None] - np.array([a, b])[None, :]))
        else:
            near = np.min(np.abs(edges - t))
        if near < 1e-6 or np.min(np.abs(np.array(ds) - t)) < 1e-6:
            continue
        assert upright(t) == any(s <= t < e for s, e in iv), (t, iv)


def test_simulate_drug_gives_the_position_to_the_arms_with_a_lumbar_dose():
    """pk.simulate / simulate_drug(..., position=...): the lumbar arm sits up, the Ommaya arm is as without it."""
    import pkcsf as pk

    arms = {"lumbar": "12 mg lumbar once", "ommaya": "12 mg ommaya once"}
    up = pk.simulate("methotrexate", arms, days=3, position="upright 1-24 h").summary().set_index(["arm", "group"])
    plain = pk.simulate("methotrexate", arms, days=3).summary().set_index(["arm", "group"])
    assert up.loc[("lumbar", "ventricular"), "auc_p50"] < 0.6 * plain.loc[("lumbar", "ventricular"), "auc_p50"]
    assert up.loc[("ommaya", "ventricular"), "auc_p50"] == pytest.approx(plain.loc[("ommaya", "ventricular"),
                                                                                   "auc_p50"], rel=1e-9)


def test_a_lumbar_dose_at_a_model_site_opens_the_windows_of_an_arm():
    """An arm dosed at a model's own lumbar site (here the liposomal one) opens the windows as a 'lumbar' route does:
    both are found on the model's spinal sites."""
    import pkcsf as pk

    arms = (pk.Arm("route", "50 mg lumbar once", drug="cytarabine_liposomal", position="upright 1-24 h"),
            pk.Arm("site", Dose(50, "lumbar_liposomal"), drug="cytarabine_liposomal", position="upright 1-24 h"))
    m = pk.run(pk.Scenario(arms, days=3)).metrics().set_index(["arm", "group"])
    assert m.loc[("site", "ventricular"), "auc"] == pytest.approx(m.loc[("route", "ventricular"), "auc"], rel=1e-9)


@pytest.mark.parametrize("pos", ["upright 1-15 h daily", "upright 0-24 h", "upright 1-24 h"])
def test_the_switched_kernel_equals_the_chained_pieces(mtx, monkeypatch, pos):
    """One compiled run that switches the rate matrix at the window edges against one solve per window chained by
    hand-offs, for a population with varied mixing and doses per m2, across several lumbar doses."""
    import pkcsf.clinical.position as position

    used = []
    real = position._solve_switched
    monkeypatch.setattr(position, "_solve_switched", lambda *a: used.append(real(*a) is not None) or real(*a))
    params = pd.DataFrame([mtx.parameters] * 4).assign(BSA=[1.2, 1.5, 1.8, 2.1])
    params["Q_MIX_LUMBAR"] *= [0.5, 1.0, 1.5, 2.0]
    reg = Regimen([Dose("7 * BSA", "lumbar", time=0.0), Dose("7 * BSA", "lumbar", time=84.0), Dose(5, "iv", time=90)])
    times = np.round(np.arange(0.0, 168.0001, 0.5), 10)
    fast = simulate_position(mtx, reg, times, pos, params)
    assert used == [True]
    monkeypatch.setattr(position, "SWITCH_IN_KERNEL", False)
    chained = simulate_position(mtx, reg, times, pos, params)
    assert fast.ok.all() and chained.ok.all()
    np.testing.assert_allclose(fast.amounts, chained.amounts, rtol=1e-10, atol=1e-13)
    total = fast.amounts.sum(axis=2)                 # mass balance: every dose is somewhere (or eliminated)
    assert (fast.amounts >= -1e-12).all() and np.all(np.diff(total, axis=1) <= 7 * 2.1 + 5 + 1e-9)


def test_an_infusion_takes_the_chained_pieces(mtx, monkeypatch):
    import pkcsf.clinical.position as position

    used = []
    real = position._solve_switched
    monkeypatch.setattr(position, "_solve_switched", lambda *a: used.append(real(*a) is not None) or real(*a))
    mtx.simulate(Regimen([Dose(12, "lumbar"), Dose(100, "iv", time=0.5, duration=2.0)]), T, position="upright 1-24 h")
    assert used == [False]


def test_simulate_with_a_position_reads_every_drug_of_a_combination_text():
    """pk.simulate("osimertinib", "... + 30 mg pemetrexed lumbar ...", position=...) refused the pemetrexed dose as
    'osimertinib can be given by: iv, oral': the lumbar doses were checked against the first drug only."""
    import pkcsf as pk

    res = pk.simulate("osimertinib", "160 mg oral daily x 3 days + 30 mg pemetrexed lumbar once", days=3,
                      position="upright 1-24 h")
    assert res.scenario.arms[0].position == parse_position("upright 1-24 h")
