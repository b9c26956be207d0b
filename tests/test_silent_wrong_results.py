"""Issue 9, "Silent wrong results": each class of silently wrong number has a test here.

Every test fails on the behaviour before the fix (a wrong number returned
without a word) and passes now (the right number, or a clear error, or a
warning that names what was excluded).
"""
from __future__ import annotations

import numpy as np
import pytest

import pkcsf as pk
from pkcsf.engine.expressions import Expression


# ---------------------------------------------------------------- 1. expression arity
def _one_compartment(cl_expr: str) -> pk.Model:
    return pk.Model.from_dict({
        "model": {"name": "one"},
        "parameters": {"CL": {"unit": "L/h"}, "CLMIN": {"unit": "L/h"}, "V": {"unit": "L"}},
        "derived": {"CLX": cl_expr},
        "compartments": [{"name": "central", "volume": "V"}],
        "transfers": [{"type": "flow", "from": "central", "coefficient": "CLX"}],
        "sites": [{"name": "iv", "targets": "central"}],
    })


@pytest.mark.parametrize("text, fname, given, allowed", [
    ("max(CL, CLMIN, V)", "max", 3, 2),
    ("min(CL)", "min", 1, 2),
    ("exp(CL, V)", "exp", 2, 1),
    ("sqrt(CL, V, V)", "sqrt", 3, 1),
    ("log()", "log", 0, 1),
    ("abs(CL, V)", "abs", 2, 1),
])
def test_function_arity_is_checked_at_parse_time(text, fname, given, allowed):
    # before: numpy's extra positional argument is `out`, so max(CL, CLMIN, V) overwrote V
    with pytest.raises(pk.ModelError) as exc:
        _one_compartment(text)
    msg = str(exc.value)
    assert text in msg and f"'{fname}'" in msg
    assert f"got {given} argument" in msg and f"exactly {allowed} argument" in msg
    assert "derived.CLX" in msg


@pytest.mark.parametrize("text", ["exp(x=CL)", "max(CL, V, out=V)", "max(*CL)", "exp(**CL)", "exp + CL"])
def test_functions_take_no_keywords_no_out_no_star(text):
    with pytest.raises(pk.ModelError):
        Expression.parse(text, "derived.X")


def test_two_argument_max_leaves_its_inputs_alone():
    cols = {"CL": np.array([1.0, 3.0]), "CLMIN": np.array([2.0, 2.0]), "V": np.array([50.0, 50.0])}
    before = {k: v.copy() for k, v in cols.items()}
    out = Expression.parse("max(CL, CLMIN) / V").evaluate(cols)
    np.testing.assert_allclose(out, [2.0 / 50, 3.0 / 50])
    for k in cols:
        np.testing.assert_array_equal(cols[k], before[k])
    # and through a model: 100 mg into V = 50 L gives 2 mg/L at t = 0+
    res = pk.simulate(_one_compartment("max(CL, CLMIN)"), pk.Dose(100.0, "iv"),
                      {"CL": 1.0, "CLMIN": 2.0, "V": 50.0}, times=[0.0, 1e-9])
    assert np.ravel(res.concentration("central"))[-1] == pytest.approx(2.0, rel=1e-6)


# ---------------------------------------------------------------- 5. a modified Drug object is honoured
def _plasma_auc(res) -> float:
    s = res.summary()
    return float(s.loc[s["group"] == "plasma", "auc_p50"].iloc[0])


def test_modified_drug_object_is_simulated_everywhere():
    # before: pk.simulate(drug) and simulate_drug took drug.name and ran the file's values
    d = pk.drug("methotrexate")
    d4 = d.with_values(CL=d.parameters["CL"] * 4)
    assert d4.parameters["CL"] == pytest.approx(4 * d.parameters["CL"])
    reg = "12 mg iv once"
    base = _plasma_auc(pk.simulate(d, reg, days=7, unit="mg/L"))
    assert base == pytest.approx(_plasma_auc(pk.simulate("methotrexate", reg, days=7, unit="mg/L")))
    runs = {
        "pk.simulate": pk.simulate(d4, reg, days=7, unit="mg/L"),
        "pk.simulate_drug": pk.simulate_drug(d4, {"iv": reg}, days=7, unit="mg/L"),
        "Scenario": pk.run(pk.Scenario((pk.Arm("iv", reg, drug=d4),), days=7, unit="mg/L")),
    }
    for how, res in runs.items():
        ratio = _plasma_auc(res) / base
        # plasma AUC = dose / CL for an IV bolus; the CNS spaces return drug to plasma, so about 1/4
        assert ratio == pytest.approx(0.25, abs=0.02), (how, ratio)
        assert res.drug_info("methotrexate").parameters["CL"] == pytest.approx(d4.parameters["CL"])


# ---------------------------------------------------------------- 6. NONMEM event tables
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from pkcsf.engine.nonmem import from_nonmem  # noqa: E402

_P1 = {k: v["value"] for k, v in json.loads((Path(__file__).parent / "data" / "problems.json").read_text())
       ["problems"]["it_linear"]["params"].items()}


def _table(**cols):
    n = len(next(iter(cols.values())))
    base = {"TIME": [0.0] * n, "AMT": [12.0] * n, "CMT": ["icv"] * n}
    base.update(cols)
    return pd.DataFrame(base)


def test_nonmem_ids_never_merge_and_text_ids_are_labels():
    # before: 1 and 1.5 became one subject (int(ID)); 'pt-01' crashed in int()
    regs = from_nonmem(_table(ID=[1, 1.5], AMT=[12.0, 24.0]))
    assert list(regs) == [1, 1.5]
    assert [r.doses[0].amount for r in regs.values()] == [12.0, 24.0]
    regs = from_nonmem(_table(ID=["pt-01", "pt-02", "pt-01"]))
    assert {k: len(r.doses) for k, r in regs.items()} == {"pt-01": 2, "pt-02": 1}
    # the results carry the labels, also when numbers and text are mixed
    res = pk.simulate("reference_p1", _table(ID=[1, "pt-02"], AMT=[12.0, 24.0]), _P1, times=[0.0, 1.0])
    assert list(res.ids) == [1, "pt-02"]
    assert list(res.to_frame()["id"].unique()) == [1, "pt-02"]


def test_nonmem_counts_must_be_whole_numbers():
    # before: ADDL 2.5 was silently truncated to 2 doses
    with pytest.raises(pk.DosingError) as exc:
        from_nonmem(_table(ID=[1], II=[24.0], ADDL=[2.5]))
    assert "row 0.ADDL" in str(exc.value) and "2.5" in str(exc.value)
    with pytest.raises(pk.DosingError, match=r"row 0\.EVID.*1\.5"):
        from_nonmem(_table(ID=[1], EVID=[1.5]))
    assert from_nonmem(_table(ID=[1], II=[24.0], ADDL=[2.0]))[1].doses[0].addl == 2


@pytest.mark.parametrize("cols", [{"TIME": [0.0], "time": [1.0]}, {"AMT": [1.0], "amt": [2.0]},
                                  {"ID": [1], "id": [2]}])
def test_nonmem_duplicate_columns_are_errors(cols):
    # before: one of TIME / time was used silently
    df = _table(ID=[1]) if "ID" not in cols else _table(TIME=[0.0])
    for k, v in cols.items():
        df[k] = v
    with pytest.raises(pk.DosingError) as exc:
        from_nonmem(df)
    msg = str(exc.value)
    assert "case-insensitive" in msg and all(k in msg for k in cols)


@pytest.mark.parametrize("col, value, row", [("EVID", np.nan, 1), ("ID", np.nan, 1), ("AMT", "ten", 1),
                                             ("TIME", "noon", 0), ("II", "daily", 1)])
def test_nonmem_bad_cells_name_column_row_and_value(col, value, row):
    df = _table(ID=[1, 2], EVID=[1, 1], II=[0.0, 0.0]).astype(object)
    df.loc[row, col] = value
    with pytest.raises(pk.DosingError) as exc:
        from_nonmem(df)
    msg = str(exc.value)
    assert f"row {row}.{col}" in msg and repr(value) in msg


# ---------------------------------------------------------------- 2. failed subjects in scenario read-outs
import warnings  # noqa: E402

from hypothesis import HealthCheck, given, settings  # noqa: E402
from strategies import failed_subjects  # noqa: E402

from pkcsf.clinical.scenario import FailedSubjectsWarning  # noqa: E402
from pkcsf.engine import simulate as engine_simulate  # noqa: E402

_N = 8
_TARGET = pk.Target("ventricular", "0.1 umol/L", "6 h", per="total")


def _mtx_scenario(**kw):
    return pk.Scenario((pk.Arm("ommaya", "12 mg ommaya once", drug="methotrexate"),), subjects=_N, days=2,
                       seed=3, targets=(_TARGET,), **kw)


@pytest.fixture(scope="module")
def mtx_baseline():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FailedSubjectsWarning)
        res = pk.run(_mtx_scenario())
    m = res.metrics()
    ids = sorted(m["id"].unique().tolist())
    assert len(ids) == _N and (m["status"] == "SUCCESS").all()
    return res, ids


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fail_idx=failed_subjects(_N))
def test_failed_subjects_are_excluded_from_every_statistic(monkeypatch, mtx_baseline, fail_idx, inject_failures):
    # before: failed subjects read cmax 0 / time_above 0 and stayed in percentiles and target fractions
    base, ids = mtx_baseline
    fail = {ids[i]: st for i, st in fail_idx.items()}
    with monkeypatch.context() as mp:
        inject_failures(mp, fused=False, fail=fail)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = pk.run(_mtx_scenario())
    msgs = [str(w.message) for w in caught if issubclass(w.category, FailedSubjectsWarning)]
    if not fail:
        assert not msgs
    else:   # one warning, naming the arm, how many, which ids and why
        assert len(msgs) == 1
        assert "'ommaya'" in msgs[0] and f"{len(fail)} of {_N} subjects failed" in msgs[0]
        for sid, st in fail.items():
            assert str(sid) in msgs[0] and st.name in msgs[0]
    ok_ids = [i for i in ids if i not in fail]
    ref = base.metrics()
    ref = ref[ref["id"].isin(ok_ids)]
    m = res.metrics()
    assert m.loc[m["id"].isin(list(fail)), "cmax"].isna().all()
    assert set(m.loc[m["id"].isin(list(fail)), "status"]) <= {s.name for s in fail.values()}
    summ = res.summary()
    assert (summ["n"] == len(ok_ids)).all() and (summ["n_failed"] == len(fail)).all()
    for q in (5, 50, 95):
        for col in ("cmax", "auc", "time_above[cytotoxic]" if "time_above[cytotoxic]" in m else "tmax"):
            want = ref.groupby("group", sort=False)[col].quantile(q / 100.0)
            got = summ.set_index("group")[f"{col}_p{q}"].reindex(want.index)
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=0)
    tg = res.targets().iloc[0]
    assert tg["n"] == len(ok_ids) and tg["n_failed"] == len(fail) and tg["subjects"] == _N
    assert 0.0 <= tg["fraction"] <= 1.0
    # bands: the failed band subjects are NaN and left out of the percentiles
    prof = res["ommaya"].profiles["methotrexate"]
    bad_rows = [ids.index(s) for s in fail]
    assert np.isnan(prof[bad_rows]).all() and np.isfinite(np.delete(prof, bad_rows, axis=0)).all()
    assert np.isfinite(res.bands()[["p5", "p50", "p95"]].to_numpy()).all()
    res["ommaya"].interval_metrics()          # runs on the solved subjects only


def test_target_fraction_counts_solved_subjects_only(monkeypatch, mtx_baseline, inject_failures):
    base, ids = mtx_baseline
    tgt_all = base.targets().iloc[0]
    # a target every solved subject meets: a failed subject must not pull the fraction below 1
    easy = pk.Target("plasma", "1e-6 umol/L", "1 h", per="total")
    with monkeypatch.context() as mp:
        inject_failures(mp, fused=False, fail={ids[0]: pk.Status.MAX_STEPS, ids[3]: pk.Status.NONFINITE})
        with pytest.warns(FailedSubjectsWarning, match=r"2 of 8 subjects failed.*MAX_STEPS.*NONFINITE"):
            res = pk.run(pk.Scenario((pk.Arm("ommaya", "12 mg ommaya once", drug="methotrexate"),), subjects=_N,
                                     days=2, seed=3, targets=(easy,)))
    t = res.targets().iloc[0]
    assert t["fraction"] == 1.0 and t["n"] == 6 and t["n_failed"] == 2
    assert tgt_all["n_failed"] == 0 and tgt_all["n"] == _N
    f = res.failures()
    assert sorted(f["id"].tolist()) == sorted([ids[0], ids[3]]) and set(f["arm"]) == {"ommaya"}


# ---------------------------------------------------------------- 3. step budget scales with the window
def test_step_budget_scales_with_the_window():
    from pkcsf.engine.simulate import MAX_STEPS_PER_DAY, MIN_MAX_STEPS, step_budget

    assert step_budget(24.0) == MIN_MAX_STEPS == 200_000          # short windows: the former fixed default
    assert step_budget(3650 * 24.0) == 3650 * MAX_STEPS_PER_DAY   # 10 years: 7.3 million, not 200,000
    scn = pk.Scenario((pk.Arm("a", "80 mg oral daily x 10 days", drug="osimertinib"),), days=3650)
    assert scn.step_budget(3650 * 24.0) == 3650 * 2000
    assert pk.Scenario(scn.arms, max_steps_per_day=100).step_budget(300 * 24.0) == 30_000
    assert pk.Scenario(scn.arms, max_steps=5000).step_budget(3650 * 24.0) == 5000
    with pytest.raises(pk.ScenarioError, match="max_steps_per_day"):
        pk.Scenario(scn.arms, max_steps_per_day=0)
    with pytest.raises(pk.ScenarioError, match="max_steps"):
        pk.Scenario(scn.arms, max_steps=2.5)


def test_long_saturable_run_is_rescued_by_the_per_day_budget():
    # Daily oral osimertinib with saturable CSF efflux takes ~15-20 adaptive steps a day (~50-70 before its Km
    # was bounded to measured transporter values, 3 Dec 2026); a fixed budget (here 5,000: the old fixed
    # 200,000 scaled down 40x, as 300 days stand in for 10 years) that suffices for 100 days fails for 300
    # days. The failed subjects are excluded, never used partially. A per-day budget (50 a day, also scaled
    # down) rescues every subject.
    arm = pk.Arm("osi", "80 mg oral daily x 300 days", drug="osimertinib", variant="saturable")
    kw = dict(subjects=2, seed=1, dt=24.0, groups=("ventricular",))
    short = pk.run(pk.Scenario((arm,), days=100, max_steps=5_000, **kw))
    assert short.failures().empty
    with pytest.warns(FailedSubjectsWarning, match="MAX_STEPS"):
        fixed = pk.run(pk.Scenario((arm,), days=300, max_steps=5_000, **kw))
    assert fixed.summary()["n_failed"].max() >= 1
    assert fixed.metrics().query("status != 'SUCCESS'")["cmax"].isna().all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FailedSubjectsWarning)
        scaled = pk.run(pk.Scenario((arm,), days=300, max_steps_per_day=50, **kw))
        default = pk.run(pk.Scenario((arm,), days=300, **kw))
    assert scaled.failures().empty and (scaled.summary()["n_failed"] == 0).all()
    pd.testing.assert_frame_equal(scaled.summary(), default.summary())


# ---------------------------------------------------------------- 4. AUC read-outs do not depend on the output step
def test_auc_readouts_are_exact_integrals_independent_of_dt():
    # before: a trapezoid on the output grid: ventricular AUC +5.8% at dt 4 h vs the exact integral
    arm = pk.Arm("weekly", "30 mg ommaya weekly x 9 weeks", drug="pemetrexed")
    s = {dt: pk.run(pk.Scenario((arm,), days=63, dt=dt, unit="mg/L")).summary().set_index("group")
         for dt in (4.0, 0.1)}
    for group in ("ventricular", "lumbar", "plasma"):
        for col in ("auc_p50", "auc_last_p50", "ratio_auc_plasma_p50"):
            a, b = s[4.0].loc[group, col], s[0.1].loc[group, col]
            assert a == pytest.approx(b, rel=1e-3), (group, col, a, b)
    # and the integral is the right one: a fine-grid trapezoid converges to it
    from pkcsf.analysis.readouts import whole_window

    res = pk.run(pk.Scenario((arm,), days=63, dt=0.05, unit="mg/L"))
    a = res["weekly"]
    g = a.groups["pemetrexed"].index("ventricular")
    fine = whole_window(a.times, a.profiles["pemetrexed"])["auc"][0, g]
    assert res.summary().set_index("group").loc["ventricular", "auc_p50"] == pytest.approx(fine, rel=1e-3)


def test_scenario_file_takes_max_steps_per_day(tmp_path):
    from pkcsf.clinical.scenario_file import ScenarioFileError, load_scenario

    text = ('drug = "methotrexate"\nmax_steps_per_day = 500\n[[arms]]\nname = "a"\n'
            'regimen = "12 mg ommaya once"\n')
    f = tmp_path / "s.toml"
    f.write_text(text)
    scn, _ = load_scenario(f)
    assert scn.max_steps_per_day == 500 and scn.step_budget(100 * 24.0) == 50_000
    f.write_text(text.replace("500", "0"))
    with pytest.raises(ScenarioFileError, match="max_steps_per_day"):
        load_scenario(f)


# ---------------------------------------------------------------- 7. tiny doses keep linearity
@pytest.mark.parametrize("solver", ["rodas5p", "radau"])
def test_adaptive_solvers_are_dose_linear_from_1e_12_to_1e3_mg(solver):
    # before: the absolute tolerance 1e-12 did not scale: a 1e-12 mg dose was 2.3% off with rodas5p
    times = np.linspace(0.0, 48.0, 49)
    ref = pk.simulate("reference_p1", pk.Dose(1.0, "icv"), _P1, times=times, solver="exact").amounts
    floor = 1e-6 * np.abs(ref).max()
    for dose in (1e-12, 1e-9, 1e-6, 1e-3, 1.0, 1e3):
        res = pk.simulate("reference_p1", pk.Dose(dose, "icv"), _P1, times=times, solver=solver)
        err = np.max(np.abs(res.amounts / dose - ref) / (np.abs(ref) + floor))
        assert err < 100 * res.rtol, (dose, err)           # rtol 1e-7: within 1e-5 relative
        if dose < 1.0:
            assert res.atol == pytest.approx(engine_simulate.DEFAULT_ATOL * dose)
        else:
            assert res.atol == engine_simulate.DEFAULT_ATOL   # doses >= 1 mg: numerics unchanged


def test_cmax_between_outputs_is_flagged_with_the_step_that_would_do():
    # before: a peak between output times was under-read silently (cisternal Cmax after a lumbar dose:
    # 54.7 mg/L at dt 4 h, 84.5 at dt 0.05 h, i.e. 35% low)
    from pkcsf.clinical.scenario import CoarseGridWarning

    arm = pk.Arm("w", "30 mg lumbar weekly x 3 weeks", drug="pemetrexed")
    # Radau takes the two-step path (grid Cmax, not refined): the warning must fire (since 5 Dec 2026 a scenario with
    # targets reads out inside the exact solve like one without, so it no longer serves here)
    with pytest.warns(CoarseGridWarning, match=r"cisternal by ~\d+% or more.*dt <= [\d.]+ h") as rec:
        coarse = pk.run(pk.Scenario((arm,), days=21, dt=4.0, unit="mg/L", groups=("cisternal",), solver="radau"))
    assert len([w for w in rec if issubclass(w.category, CoarseGridWarning)
                and "Cmax" in str(w.message)]) == 1
    assert coarse["w"].cmax_grid_error["pemetrexed"]["cisternal"] > 0.1
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoarseGridWarning)
        fine = pk.run(pk.Scenario((arm,), days=21, dt=0.05, unit="mg/L", groups=("cisternal",), solver="radau"))
        # the exact solver refines every Cmax between outputs, with or without targets: exact, and no warning
        fused = pk.run(pk.Scenario((arm,), days=21, dt=4.0, unit="mg/L", groups=("cisternal",),
                                   targets=(pk.Target("cisternal", "1 umol/L", "0 h"),)))
    assert fine["w"].cmax_grid_error["pemetrexed"]["cisternal"] < 1e-2   # the flag threshold is 1%
    assert fused["w"].cmax_grid_error["pemetrexed"]["cisternal"] == 0.0
    c4, c005, cx = (r.summary().set_index("group").loc["cisternal", "cmax_p50"] for r in (coarse, fine, fused))
    assert c4 < 0.8 * c005       # the flag was right: the 4-h grid read-out is far too low (typical patient: 0.74)
    assert c005 <= cx < 1.01 * c005     # the refined read-out is the peak (the 0.05-h grid reads 0.15% low)


def test_exact_cmax_between_outputs_needs_no_grid_warning():
    """Issue 9: with the exact solver every subject's Cmax is refined between output times (single dose), so a
    coarse grid gives the fine grid's Cmax and no CoarseGridWarning (the warning stays where refinement is not
    claimed: adaptive solvers, repeated equal doses)."""
    from pkcsf.clinical.scenario import CoarseGridWarning

    arm = pk.Arm("once", "12 mg lumbar once", drug="methotrexate")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CoarseGridWarning)
        coarse = pk.run(pk.Scenario((arm,), days=2, dt=4.0, unit="mg/L", groups=("cisternal",), subjects=20, seed=2))
    fine = pk.run(pk.Scenario((arm,), days=2, dt=0.01, unit="mg/L", groups=("cisternal",), subjects=20, seed=2))
    assert coarse["once"].cmax_grid_error["methotrexate"]["cisternal"] == 0.0
    c, f = (r.metrics().query("group == 'cisternal'")["cmax"].to_numpy() for r in (coarse, fine))
    np.testing.assert_allclose(c, f, rtol=1e-3)       # the 0.01-h grid itself reads within ~1e-4 of the peak
    assert np.all(c >= f * (1 - 1e-9))
