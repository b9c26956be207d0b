"""Issue 12 (1, 4, 6): NONMEM-style event tables at the drug level (API, scenario file, CLI) with PRED/IPRED
beside DV and a goodness-of-fit figure; per-arm physiology/pathologies/age; Parquet and xarray outputs."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.clinical import events
from pkcsf.clinical.scenario import Arm, Scenario, run
from pkcsf.core.errors import DosingError, OutputError, PkcsfError, ScenarioError

DATA = Path(__file__).parent / "data"
CSV = DATA / "nonmem_methotrexate_5pt.csv"
TOML = DATA / "nonmem_methotrexate_5pt.toml"
# the table's DV were written as PRED x these factors, cycling over the observation rows (4 significant digits)
FACTORS = np.array([1.3, 0.8, 1.1, 0.7, 1.5])


@pytest.fixture(scope="module")
def api_result():
    return pk.simulate("methotrexate", pd.read_csv(CSV))


def _check_observations(obs):
    assert list(obs.columns[:9]) == ["arm", "drug", "ID", "TIME", "group", "DV", "PRED", "IPRED", "unit"]
    assert len(obs) == 15 and sorted(set(obs["ID"])) == [1, 2, 3, 4, 5]
    assert (obs["unit"] == "umol/L").all()
    # groups from names in any case, numbers (4 = lv, 2 = plasma) and routes
    assert set(obs["group"]) == {"ventricular", "plasma", "lumbar", "lv", "cisternal"}
    have = obs["DV"].notna().to_numpy()
    assert have.sum() == 14                       # the last row is a prediction-only time (empty DV)
    ratio = obs["DV"].to_numpy()[have] / obs["PRED"].to_numpy()[have]
    # DV were written as PRED x FACTORS (tests/data/README.md); a later model change moves PRED a little
    assert np.all((ratio > 0.5 * FACTORS[np.arange(15) % 5][have]) & (ratio < 2 * FACTORS[np.arange(15) % 5][have]))
    # no individual parameters in the table: IPRED = PRED (documented)
    np.testing.assert_array_equal(obs["IPRED"].to_numpy(), obs["PRED"].to_numpy())


def test_api_pred_ipred_beside_dv(api_result):
    _check_observations(api_result.observations())
    wide = api_result.nonmem()
    assert len(wide) == 20 and {"PRED", "IPRED", "RES", "IRES", "MDV", "WT", "AGE", "SEX"} <= set(wide.columns)
    dose = wide[wide["EVID"] == 1]
    assert dose["PRED"].isna().all() and (dose["MDV"] == 1).all()
    obs = wide[wide["EVID"] == 0]
    np.testing.assert_allclose(obs["RES"], obs["DV"] - obs["PRED"])
    # the table's row order is kept (doses between observations)
    assert wide["ID"].tolist() == pd.read_csv(CSV)["ID"].tolist()


def test_pred_equals_the_regimen_api_for_one_patient(api_result):
    """Patient 1 (12 mg Ommaya, WT 70, HT 175, AGE 45, male, SCR 0.9) simulated independently with regimen
    text and a one-row population without variability: the same concentrations at 2 h and 24 h."""
    pop = pd.DataFrame({"WT": [70.0], "HT": [175.0], "AGE": [45.0], "SEX": [0.0], "SCR": [0.9]})
    ref = pk.simulate("methotrexate", "12 mg ommaya once", population=pop, variability=False, days=2)
    a = ref["methotrexate"]
    g = a.groups["methotrexate"]
    prof = a.profiles["methotrexate"][0]
    o = api_result.observations()
    o1 = o[o["ID"] == 1]
    for t, grp in ((2.0, "ventricular"), (24.0, "ventricular"), (24.0, "plasma")):
        i = int(np.flatnonzero(a.times == t)[-1])
        got = o1[(o1["TIME"] == t) & (o1["group"] == grp)]["PRED"].item()
        assert got == pytest.approx(prof[i, g.index(grp)], rel=1e-6), (t, grp)


def test_pred_uses_each_patients_covariates():
    df = pd.read_csv(CSV)
    base = pk.simulate("methotrexate", df).observations()
    heavy = df.copy()
    heavy.loc[heavy["ID"] == 4, "WT"] = 120.0          # patient 4 (IV): a covariate effect on plasma PK
    changed = pk.simulate("methotrexate", heavy).observations()
    p4 = base["ID"] == 4
    assert not np.allclose(base.loc[p4, "PRED"], changed.loc[p4, "PRED"])
    np.testing.assert_allclose(base.loc[~p4, "PRED"], changed.loc[~p4, "PRED"])


def test_trough_before_an_addl_dose(api_result):
    """Patient 3: doses at 0 and 84 h (II/ADDL); the 84-h observation is the trough before the second."""
    o = api_result.observations()
    o3 = o[o["ID"] == 3].set_index("TIME")["PRED"]
    assert o3[84.0] < o3[6.0] / 20 and o3[90.0] > 20 * o3[84.0]


def test_observation_row_before_or_after_a_dose_row():
    rows = pd.DataFrame({"ID": [1, 1, 1, 1], "TIME": [0, 24, 24, 24], "AMT": [12, None, 12, None],
                         "CMT": ["ommaya", "ventricular", "ommaya", "ventricular"], "EVID": [1, 0, 1, 0]})
    o = pk.simulate("methotrexate", rows).observations()
    assert o["PRED"].iloc[1] > 20 * o["PRED"].iloc[0]         # row order: trough, then after the dose


def test_text_ids_csv_path_and_a_subject_without_doses(tmp_path):
    df = pd.DataFrame({"id": ["pt-a", "pt-a", "pt-b"], "time": [0, 4, 6], "amt": [12, None, None],
                       "cmt": ["ICV", "ventricular", "plasma"], "evid": [1, 0, 0], "dv": [None, 50, None],
                       "wt": [60, 60, 80]})
    df.to_csv(tmp_path / "ev.csv", index=False)
    data = pk.read_events(tmp_path / "ev.csv")
    assert data.ids == ["pt-a", "pt-b"] and list(data.covariates["WT"]) == [60.0, 80.0]
    o = pk.simulate("methotrexate", str(tmp_path / "ev.csv")).observations()
    assert o["ID"].tolist() == ["pt-a", "pt-b"]
    assert o["PRED"].iloc[0] > 1 and o["PRED"].iloc[1] == 0.0       # pt-b got no dose
    assert o["DV"].iloc[0] == 50 and np.isnan(o["DV"].iloc[1])


def test_time_varying_covariate_read_as_a_timeline():
    """A covariate that changes within a subject is a timeline (tests/test_time_varying_covariates.py)."""
    df = pd.read_csv(CSV)
    df.loc[1, "WT"] = 71                    # patient 1 weighs 71 kg from his 2-h row on, 70 again from 24 h
    data = events.read_events(df)
    assert data.time_varying and list(data.change_times) == [2.0, 24.0]
    assert data.covariates_at(1.0).loc[0, "WT"] == 70 and data.covariates_at(2.0).loc[0, "WT"] == 71


def test_bad_cmt_named():
    df = pd.read_csv(CSV)
    df.loc[0, "CMT"] = "ommayya"
    with pytest.raises(PkcsfError, match="row 0.CMT"):
        pk.simulate("methotrexate", df)
    df = pd.read_csv(CSV)
    df.loc[1, "CMT"] = "99"
    with pytest.raises(DosingError, match="row 1.CMT.*whole numbers from 1 to"):
        pk.simulate("methotrexate", df)


def test_bad_evid_and_dv_refused():
    df = pd.read_csv(CSV)
    df.loc[4, "EVID"] = 4
    with pytest.raises(DosingError, match=r"row 4.EVID.*resets"):
        events.read_events(df)
    df = pd.read_csv(CSV)
    df["DV"] = df["DV"].astype(object)
    df.loc[2, "DV"] = "<0.01"
    with pytest.raises(DosingError, match=r"row 2.DV.*must be a number"):
        events.read_events(df)


def test_unknown_columns_carried_with_a_warning():
    df = pd.read_csv(CSV).assign(STUDY="A")
    with pytest.warns(events.UnusedColumnsWarning, match="STUDY"):
        res = pk.simulate("methotrexate", df)
    assert (res.observations()["STUDY"] == "A").all()


def test_individual_parameter_columns_give_ipred():
    from pkcsf.clinical import cns

    df = pd.read_csv(CSV)
    df["CL"] = 2.0 * cns.setup("methotrexate").parameters["CL"]      # each patient's own plasma clearance
    obs = pk.simulate("methotrexate", df).observations()
    p = (obs["group"] == "plasma").to_numpy()
    assert (obs.loc[p, "IPRED"] < 0.9 * obs.loc[p, "PRED"]).all()
    np.testing.assert_allclose(obs["PRED"], pk.simulate("methotrexate", pd.read_csv(CSV)).observations()["PRED"])


def test_vpc_and_gof_figures(api_result, tmp_path):
    from pkcsf.plotting.gof import gof_plot, vpc_bands, vpc_plot

    arm = api_result["methotrexate"]
    sims = arm.simulate_observations(30, seed=1)
    assert set(sims.columns) == {"REP", "ID", "TIME", "group", "SIM"} and sims["REP"].nunique() == 30
    b = vpc_bands(sims)
    assert (b["p5"] <= b["p50"]).all() and (b["p50"] <= b["p95"]).all()
    obs = api_result.observations()
    axes = gof_plot(obs)
    assert len(axes) == 4
    axes[0].figure.savefig(tmp_path / "gof.png")
    ax = vpc_plot(obs, sims)
    np.asarray(ax).ravel()[0].figure.savefig(tmp_path / "vpc.png")
    assert (tmp_path / "gof.png").stat().st_size > 1000
    with pytest.raises(OutputError, match="DV"):
        gof_plot(obs.assign(DV=np.nan))
    # prediction correction: DV/PRED kept within a bin (the value times the bin's median PRED over its PRED)
    from pkcsf.plotting.gof import prediction_corrected

    pco, pcs = prediction_corrected(obs, sims)
    ok = obs["DV"].notna().to_numpy()
    med = obs[ok].groupby(["group", "TIME"])["PRED"].transform("median").to_numpy()
    np.testing.assert_allclose(pco["DV"].to_numpy(), obs["DV"].to_numpy()[ok] * med / obs["PRED"].to_numpy()[ok])
    assert len(pcs) > 0 and np.isfinite(pcs["SIM"]).all()
    vpc_plot(obs, sims, pred_corrected=True)


def test_scenario_file_events_relative_path(tmp_path):
    from pkcsf.clinical.scenario_file import load_scenario

    shutil.copy(CSV, tmp_path / "patients.csv")
    (tmp_path / "s.toml").write_text('drug = "methotrexate"\n[[arms]]\nname = "pts"\nevents = "patients.csv"\n')
    scn, _ = load_scenario(tmp_path / "s.toml")
    res = run(scn)
    _check_observations(res.observations())
    (tmp_path / "bad.toml").write_text('drug = "methotrexate"\n[[arms]]\nname = "pts"\nevents = "patients.csv"\n'
                                       'regimen = "12 mg ommaya once"\n')
    with pytest.raises(ScenarioError, match=r"arms\[0\].regimen"):
        load_scenario(tmp_path / "bad.toml")
    (tmp_path / "missing.toml").write_text('drug = "methotrexate"\n[[arms]]\nname = "p"\nevents = "nope.csv"\n')
    with pytest.raises(ScenarioError, match=r"arms\[0\].events.*does not exist"):
        load_scenario(tmp_path / "missing.toml")


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pkcsf.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600)


def test_cli_run_event_table_csv_and_figures(tmp_path):
    r = _cli("run", str(TOML), "--out", str(tmp_path / "out"), "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    obs = pd.read_csv(out / "observations.csv")
    _check_observations(obs)
    wide = pd.read_csv(out / "nonmem.csv")
    assert {"PRED", "IPRED", "DV", "RES"} <= set(wide.columns) and len(wide) == 20
    assert (out / "figures" / "goodness_of_fit.png").stat().st_size > 1000
    assert (out / "figures" / "vpc.png").exists()
    import json

    manifest = json.loads((out / "run.json").read_text())
    assert manifest["event_tables"]["patients"]["patients"] == 5
    assert {"observations.csv", "nonmem.csv", "figures/goodness_of_fit.png"} <= set(manifest["files"])


def test_cli_run_ipred_map(tmp_path):
    small = tmp_path / "two.csv"
    df = pd.read_csv(CSV)
    df[df["ID"].isin([1, 5])].to_csv(small, index=False)
    (tmp_path / "s.toml").write_text('drug = "methotrexate"\n[[arms]]\nname = "p"\nevents = "two.csv"\n')
    r = _cli("run", "s.toml", "--out", "out", "--ipred", "map", "--no-figures", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    obs = pd.read_csv(tmp_path / "out" / "observations.csv")
    assert (obs["IPRED_from"] == "MAP").all() and not np.allclose(obs["IPRED"], obs["PRED"])
    wide = pd.read_csv(tmp_path / "out" / "nonmem.csv")
    o = wide[wide["EVID"] == 0]
    np.testing.assert_allclose(o["IPRED"], obs["IPRED"])
    np.testing.assert_allclose(o["IRES"].dropna(), (o["DV"] - o["IPRED"]).dropna())


def test_cli_run_parquet(tmp_path):
    pytest.importorskip("pyarrow", reason="pyarrow (the parquet extra) is not installed")
    r = _cli("run", str(TOML), "--out", str(tmp_path / "out"), "--format", "parquet", "--no-figures", "--quiet",
             cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out"
    for stem in ("metrics", "summary", "bands", "observations", "nonmem"):
        assert (out / f"{stem}.parquet").exists(), stem
    _check_observations(pd.read_parquet(out / "observations.parquet"))
    m = pd.read_parquet(out / "metrics.parquet")
    assert len(m) and "cmax" in m


# ----------------------------------------------------------------------------- per-arm physiology
def test_per_arm_pathology_one_run():
    scn = Scenario((Arm("no shunt", "12 mg ommaya once", drug="methotrexate"),
                    Arm("shunt", "12 mg ommaya once", drug="methotrexate", pathologies={"vp_shunt": True})),
                   days=2)
    s = run(scn).summary().set_index(["arm", "group"])["auc_p50"]
    assert s["shunt", "ventricular"] < 0.95 * s["no shunt", "ventricular"]
    # an arm's pathologies={} removes the scenario's
    scn2 = Scenario((Arm("shunt", "12 mg ommaya once", drug="methotrexate"),
                     Arm("none", "12 mg ommaya once", drug="methotrexate", pathologies={})),
                    days=2, pathologies={"vp_shunt": True})
    s2 = run(scn2).summary().set_index(["arm", "group"])["auc_p50"]
    assert s2["none", "ventricular"] == pytest.approx(s["no shunt", "ventricular"], rel=1e-9)
    assert s2["shunt", "ventricular"] == pytest.approx(s["shunt", "ventricular"], rel=1e-9)


def test_per_arm_age_and_checks():
    scn = Scenario((Arm("adult", "6 mg ommaya once", drug="methotrexate"),
                    Arm("child 2 y", "6 mg ommaya once", drug="methotrexate", age=2)), days=2)
    s = run(scn).summary().set_index(["arm", "group"])["cmax_p50"]
    assert s["child 2 y", "ventricular"] > 1.2 * s["adult", "ventricular"]       # smaller CSF volume
    with pytest.raises(ScenarioError, match="age"):
        Arm("x", "6 mg ommaya once", drug="methotrexate", age=-1)
    with pytest.raises(ScenarioError, match="pathologies"):
        Arm("x", "6 mg ommaya once", drug="methotrexate", pathologies="vp_shunt")


def test_fixed_age_and_age_column_conflict():
    pop = pd.DataFrame({"AGE": [3.0, 10.0], "WT": [14.0, 32.0]})
    with pytest.raises(ScenarioError, match="fixed age.*own AGE column"):
        run(Scenario((Arm("a", "6 mg ommaya once", drug="methotrexate"),), subjects=2, days=1, age=5,
                     population=pop))
    # the same age everywhere is no conflict
    run(Scenario((Arm("a", "6 mg ommaya once", drug="methotrexate"),), subjects=2, days=1, age=5,
                 population=pop.assign(AGE=5.0)))


def test_fixed_age_is_every_subjects_age():
    """One meaning of a child's age: a fixed age is every subject's AGE (weight-for-age drawn at it); without
    it each subject has his own AGE, which also scales his own physiology."""
    from pkcsf.clinical import cns
    from pkcsf.clinical.scenario import population_for

    setup = cns.setup("methotrexate", age=5)
    scn = Scenario((Arm("a", "6 mg ommaya once", drug="methotrexate"),), age=5, population="pediatric")
    pop = population_for(scn, setup)
    cov = pop.covariates(400, 0)
    assert (cov["AGE"] == 5.0).all()
    assert 15 < cov["WT"].median() < 23          # CDC weight-for-age at 5 y: about 18 kg
    assert not any(e.covariate == "AGE" and e.parameter.startswith("V_") for e in pop.effects)   # no double scaling
    free = population_for(Scenario(scn.arms, population="pediatric"), cns.setup("methotrexate"))
    ages = free.covariates(400, 0)["AGE"]
    assert ages.min() < 3 and ages.max() > 15
    assert any(e.covariate == "AGE" for e in free.effects)        # each child's physiology scales with his AGE
    assert scn.population == "pediatric" and not getattr(scn, "fixed", None)


def test_scenario_file_per_arm_physiology(tmp_path):
    from pkcsf.clinical.scenario_file import load_scenario

    (tmp_path / "s.toml").write_text(
        'drug = "methotrexate"\ndays = 2\n[population]\nsubjects = 3\n'
        '[[arms]]\nname = "plain"\nregimen = "12 mg ommaya once"\n'
        '[[arms]]\nname = "shunt"\nregimen = "12 mg ommaya once"\npathologies = { vp_shunt = true }\n'
        '[[arms]]\nname = "child"\nregimen = "12 mg ommaya once"\nage = 4\n')
    scn, _ = load_scenario(tmp_path / "s.toml")
    assert scn.arms[1].pathologies == {"vp_shunt": True} and scn.arms[2].age == 4.0
    (tmp_path / "bad.toml").write_text('drug = "methotrexate"\n[[arms]]\nname = "x"\nregimen = "12 mg ommaya once"\n'
                                       'pathologies = { vp_shuntt = true }\n')
    with pytest.raises(ScenarioError, match=r"arms\[0\].pathologies.vp_shuntt"):
        load_scenario(tmp_path / "bad.toml")


# ----------------------------------------------------------------------------- xarray
def test_to_xarray(api_result):
    pytest.importorskip("xarray", reason="xarray (the xarray extra) is not installed")
    res = pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once", "ommaya": "12 mg ommaya once"},
                           subjects=4, days=1)
    ds = res["lumbar"].to_xarray()
    assert ds["methotrexate"].dims == ("subject", "time", "group")
    assert ds["methotrexate"].attrs["units"] == "umol/L" and ds["time"].attrs["units"] == "h"
    np.testing.assert_array_equal(ds["methotrexate"].to_numpy(), res["lumbar"].profiles["methotrexate"])
    both = res.to_xarray()
    assert both["methotrexate"].dims == ("arm", "subject", "time", "group")
    assert list(both["arm"].to_numpy()) == ["lumbar", "ommaya"]
    pts = api_result.to_xarray()
    assert list(pts["subject"].to_numpy()) == [1, 2, 3, 4, 5]
    mixed = run(Scenario((Arm("pts", pd.read_csv(CSV), drug="methotrexate"),
                          Arm("virtual", "12 mg ommaya once", drug="methotrexate")), subjects=3, days=4))
    mx = mixed.to_xarray()
    assert set(mx["subject"].to_numpy()) == {0, 1, 2} | {f"patient {i}" for i in range(1, 6)}
    v = mixed["virtual"]
    after = np.append(v.times[1:] != v.times[:-1], True)        # the value after a dose where a time repeats
    got = mx["methotrexate"].sel(arm="virtual", subject=1).sel(time=v.times[after]).to_numpy()
    np.testing.assert_array_equal(got, v.profiles["methotrexate"][1][after])


def test_to_xarray_missing_gives_clear_error(monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "xarray":
            raise ImportError("no xarray")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    res = pk.simulate("methotrexate", "12 mg ommaya once", days=1)
    with pytest.raises(OutputError, match=r"pip install 'pkcsf\[xarray\]'"):
        res.to_xarray()


# ----------------------------------------------------------------------------- IPRED from MAP fits
def test_map_ipred_matches_the_forecast_and_moves_toward_dv():
    """Patients 1 and 3 (3 has a trough DV at the time of an II/ADDL dose): IPRED from each patient's MAP
    parameters re-simulated on the arm's grid equals the forecast's own IPRED at his DV, and fits the DV
    better than PRED."""
    from pkcsf.clinical.individual import PRE_DOSE_SHIFT, map_ipred

    df = pd.read_csv(CSV)
    df = df[df["ID"].isin([1, 3])]
    res = pk.simulate("methotrexate", df)
    o = map_ipred(res, samples=100)
    assert (o["IPRED_from"] == "MAP").all()
    for pid in (1, 3):
        oi = o[o["ID"] == pid]
        rows = [{"time": t - (PRE_DOSE_SHIFT if (pid == 3 and t == 84.0) else 0.0), "group": g, "value": v}
                for t, g, v in zip(oi["TIME"], oi["group"], oi["DV"])]
        reg = res["methotrexate"].datasets["methotrexate"].regimens[pid]
        cov = df[df["ID"] == pid].iloc[0][["WT", "HT", "AGE", "SCR"]].astype(float).to_dict()
        cov["SEX"] = 0.0
        fr = pk.forecast("methotrexate", reg, rows, covariates=cov, samples=100)
        np.testing.assert_allclose(oi["IPRED"].to_numpy(), fr.observations["IPRED"].to_numpy(), rtol=1e-6)
        np.testing.assert_allclose(oi["PRED"].to_numpy(), fr.observations["PRED"].to_numpy(), rtol=1e-6)
    err = lambda c: np.sum(np.log(o["DV"] / o[c]) ** 2)  # noqa: E731
    assert err("IPRED") < 0.7 * err("PRED")


# ------------------------------------------------------------------ unreadable tables and bad DV, by row and line
def _scenario(tmp_path, table: str) -> Path:
    scn = tmp_path / "s.toml"
    scn.write_text(f'drug = "methotrexate"\n[[arms]]\nname = "p"\nevents = "{table}"\n')
    return scn


def test_empty_event_table_file_is_a_clear_error(tmp_path, capsys):
    from pkcsf.cli import main

    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DosingError, match=r"event table: got '.*empty\.csv'; the file is empty"):
        events.read_events(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(CSV.read_text().splitlines()[0] + "\n")
    with pytest.raises(DosingError, match=r"event table: got '.*header\.csv'; the file has a header but no rows"):
        events.read_events(tmp_path / "header.csv")
    out = tmp_path / "out"
    assert main(["run", str(_scenario(tmp_path, "empty.csv")), "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "empty.csv" in err and "the file is empty" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_unreadable_csv_is_a_clear_error(tmp_path):
    (tmp_path / "quote.csv").write_text('ID,TIME,AMT,CMT,EVID\n1,0,12,"ommaya,1\n')
    with pytest.raises(DosingError, match=r"quote\.csv'; is not a readable CSV table"):
        events.read_events(tmp_path / "quote.csv")
    (tmp_path / "latin1.csv").write_bytes("ID,TIME,AMT,CMT,EVID,NOTE\n1,0,12,ommaya,1,\xe9\n".encode("latin-1"))
    with pytest.raises(DosingError, match=r"latin1\.csv'; is not UTF-8 text"):
        events.read_events(tmp_path / "latin1.csv")


@pytest.mark.parametrize("dv", [-25.0, float("inf"), float("-inf")])
def test_negative_or_infinite_dv_refused_naming_row_line_and_column(tmp_path, dv):
    df = pd.read_csv(CSV)
    df.loc[1, "DV"] = dv
    with pytest.raises(DosingError, match=r"event table row 1\.DV: got .*a measured concentration must be a "
                                          r"finite number >= 0"):
        events.read_events(df)
    df.to_csv(tmp_path / "neg.csv", index=False)
    with pytest.raises(DosingError, match=r"event table row 1 \(line 3 of neg\.csv\)\.DV: got "):
        events.read_events(tmp_path / "neg.csv")


def test_negative_dv_refused_the_same_way_with_and_without_map_ipred(tmp_path, capsys):
    from pkcsf.cli import main

    df = pd.read_csv(CSV)
    df.loc[1, "DV"] = -25.0
    df.to_csv(tmp_path / "neg.csv", index=False)
    scn = str(_scenario(tmp_path, "neg.csv"))
    errs = []
    for extra in ([], ["--ipred", "map"]):
        out = tmp_path / f"out{len(errs)}"
        assert main(["run", scn, "--out", str(out), "--no-figures", "--quiet", *extra]) == 2
        errs.append(capsys.readouterr().err)
        assert not out.exists()
    assert errs[0] == errs[1]
    assert "event table row 1 (line 3 of neg.csv).DV: got -25.0" in errs[0] and "observations[" not in errs[0]


def test_dv_zero_and_an_unused_negative_dv_are_accepted():
    df = pd.read_csv(CSV)
    df.loc[1, "DV"] = 0.0                       # a measured 0 (e.g. before the first dose)
    df["MDV"] = 0
    df.loc[2, ["DV", "MDV"]] = [-99.0, 1]       # MDV 1: DV not used (a missing-value code)
    obs = events.read_events(df).observations
    assert obs.loc[obs["ROW"] == 1, "DV"].iloc[0] == 0.0 and np.isnan(obs.loc[obs["ROW"] == 2, "DV"].iloc[0])


def test_dose_row_errors_name_the_row_of_the_table(tmp_path):
    """from_nonmem sees the dose rows only; the error names the row of the whole table (and its line)."""
    df = pd.read_csv(CSV)
    third_dose = int(df.index[df["EVID"] == 1][2])          # row 8 of the table, the 3rd dose row
    df.loc[third_dose, "AMT"] = -5.0
    with pytest.raises(DosingError, match=rf"event table row {third_dose}\.AMT: got -5\.0"):
        pk.simulate("methotrexate", df)
    df.to_csv(tmp_path / "amt.csv", index=False)
    with pytest.raises(DosingError, match=rf"row {third_dose} \(line {third_dose + 2} of amt\.csv\)\.AMT"):
        pk.simulate("methotrexate", tmp_path / "amt.csv")


def test_line_numbers_skip_blank_lines(tmp_path):
    text = CSV.read_text().splitlines()
    (tmp_path / "gaps.csv").write_text("\n".join(text[:2] + ["", "   "] + text[2:]) + "\n")
    data = events.read_events(tmp_path / "gaps.csv")
    assert data.lines[:3] == (2, 5, 6) and data.row_label(1) == "event table row 1 (line 5 of gaps.csv)"
    assert events.read_events(pd.read_csv(CSV)).row_label(1) == "event table row 1"


def test_from_nonmem_names_an_empty_file(tmp_path):
    from pkcsf.core.errors import DosingError
    from pkcsf.engine.nonmem import from_nonmem

    f = tmp_path / "empty.csv"
    f.write_text("")
    with pytest.raises(DosingError, match="empty"):
        from_nonmem(str(f))


def test_map_ipred_leaves_a_dv_of_zero_out_of_the_fit_and_says_so():
    from pkcsf.clinical.forecast import UnreliableForecastWarning
    from pkcsf.clinical.individual import map_ipred

    df = pd.read_csv(CSV)
    df = df[df["ID"] == 1].copy()
    first_obs = int(df.index[df["EVID"] == 0][0])
    df.loc[first_obs, "DV"] = 0.0
    res = pk.simulate("methotrexate", df)
    with pytest.warns(UnreliableForecastWarning, match="DV = 0"):
        o = map_ipred(res, samples=100)
    assert (o["IPRED_from"] == "MAP").all() and np.isfinite(o["IPRED"]).all()
