"""Pathologies that only some patients have (Arm.prevalence, pkcsf/clinical/prevalence.py)."""
import subprocess
import sys

import numpy as np
import pytest

from pkcsf.clinical.prevalence import subjects_with
from pkcsf.clinical.scenario import Arm, Scenario, run
from pkcsf.core.errors import ScenarioError

REG = "12 mg ommaya once"


def _lumbar_auc(res, arm):
    m = res.metrics()
    return m[(m["arm"] == arm) & (m["group"] == "lumbar")].reset_index(drop=True)


def test_prevalence_zero_and_one_equal_none_and_everyone():
    arms = [Arm("open", REG, drug="methotrexate"),
            Arm("p0", REG, drug="methotrexate", prevalence={"spinal_block": 0.0}),
            Arm("blocked", REG, drug="methotrexate", pathologies={"spinal_block": True}),
            Arm("p1", REG, drug="methotrexate", prevalence={"spinal_block": 1.0})]
    res = run(Scenario(arms, subjects=40, days=2, seed=3), progress=False)
    for a, b in (("open", "p0"), ("blocked", "p1")):
        np.testing.assert_array_equal(_lumbar_auc(res, a)["auc"], _lumbar_auc(res, b)["auc"])
    assert not _lumbar_auc(res, "p0")["pathology_spinal_block"].any()
    assert _lumbar_auc(res, "p1")["pathology_spinal_block"].all()


def test_each_subject_gets_its_drawn_pathology_reproducibly():
    """With a spinal block an Ommaya dose does not reach the lumbar sac: exactly the subjects the draw selects
    (subjects_with) have a near-zero lumbar AUC, about the prevalence of them, whatever the chunk size."""
    prev = {"spinal_block": 0.33, "convexity_block": 0.13}
    arm = Arm("mix", REG, drug="methotrexate", prevalence=prev)
    a = _lumbar_auc(run(Scenario([arm], subjects=300, days=2, seed=7, chunk_size=7), progress=False), "mix")
    b = _lumbar_auc(run(Scenario([arm], subjects=300, days=2, seed=7, chunk_size=64), progress=False), "mix")
    np.testing.assert_array_equal(a["auc"], b["auc"])
    drawn = subjects_with(7, prev, 300)
    np.testing.assert_array_equal(a["pathology_spinal_block"].to_numpy(), drawn["spinal_block"].to_numpy())
    np.testing.assert_array_equal(a["pathology_convexity_block"].to_numpy(), drawn["convexity_block"].to_numpy())
    low = a["auc"].to_numpy() < 1e-3 * np.median(a["auc"])
    np.testing.assert_array_equal(low, drawn["spinal_block"].to_numpy())
    assert abs(low.mean() - 0.33) < 0.06


def test_summary_ignores_the_pathology_labels():
    res = run(Scenario([Arm("o", REG, drug="methotrexate"),
                        Arm("m", REG, drug="methotrexate", prevalence={"spinal_block": 0.5})], subjects=20, days=1),
              progress=False)
    s = res.summary()
    assert not any(c.startswith("pathology_") for c in s.columns)
    assert s["n"].eq(20).all()


@pytest.mark.parametrize("prev, match", [({"spinal_blok": 0.3}, "did you mean 'spinal_block'"),
                                          ({"spinal_block": 1.5}, "probability from 0 to 1"),
                                          ({"spinal_block": True}, "probability from 0 to 1"),
                                          ("spinal_block", "must be a table")])
def test_bad_prevalence_is_refused_naming_the_field(prev, match):
    with pytest.raises(ScenarioError, match=match) as e:
        Arm("x", REG, drug="methotrexate", prevalence=prev)
    assert "arms['x'].prevalence" in str(e.value)


_TOML = 'drug = "methotrexate"\ndays = 1\n[population]\nsubjects = 20\n[[arms]]\nname = "x"\nregimen = "12 mg lumbar once"\n'


def _pkcsf_run(folder, arm_line: str, name: str):
    """``pkcsf run`` on a one-arm scenario file with ``arm_line`` added to the arm."""
    (folder / f"{name}.toml").write_text(_TOML + arm_line + "\n")
    return subprocess.run([sys.executable, "-m", "pkcsf.cli", "run", f"{name}.toml", "--out", name, "--no-figures",
                           "--quiet"], cwd=folder, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("good, columns, bad, message", [
    ("prevalence = { spinal_block = 0.33 }", ["pathology_spinal_block"],
     "prevalence = { spinal_block = 2 }", "arms[0].prevalence.spinal_block: got 2"),
    ('patients = "leptomeningeal_metastases"', ["pathology_spinal_block", "pathology_extra_arachnoid_injection"],
     'patients = "lm"', "arms[0].patients: got 'lm'")])
def test_scenario_file_and_cli(tmp_path, good, columns, bad, message):
    r = _pkcsf_run(tmp_path, good, "ok")
    assert r.returncode == 0, r.stderr
    head = (tmp_path / "ok" / "metrics.csv").read_text().splitlines()[0]
    assert all(c in head.split(",") for c in columns)
    r = _pkcsf_run(tmp_path, bad, "bad")
    assert r.returncode == 2 and message in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "bad").exists()


def test_event_table_arm_refuses_a_prevalence():
    import pandas as pd

    df = pd.DataFrame({"ID": [1], "TIME": [0.0], "AMT": [12.0], "CMT": ["ommaya"], "EVID": [1]})
    with pytest.raises(ScenarioError, match="real patients"):
        Arm("t", df, drug="methotrexate", prevalence={"spinal_block": 0.3})


def test_interval_read_outs_of_band_subjects_have_their_pathologies():
    """The band subjects are solved again for exact interval AUCs: with their drawn pathologies too."""
    arm = Arm("m", REG, drug="methotrexate", prevalence={"spinal_block": 0.5})
    res = run(Scenario([arm], subjects=30, days=2, seed=11, band_subjects=30), progress=False)
    im = res["m"].interval_metrics()
    lum = im[im["compartment"] == "lumbar"].sort_values("subject")
    whole = _lumbar_auc(res, "m").sort_values("id")
    np.testing.assert_allclose(lum["auc"].to_numpy(), whole["auc"].to_numpy(), rtol=1e-9, atol=1e-12)


def test_missed_lumbar_punctures_as_a_sourced_mixture():
    """F_LEAK's sourced failure rates (6.4% wholly, 7.1% partly outside the subarachnoid space): subjects drawn
    'extra_arachnoid_injection' get no drug into the CSF, the others all of it (typical F_LEAK 0)."""
    prev = {"extra_arachnoid_injection": 0.064, "lumbar_leak": 0.071}
    res = run(Scenario([Arm("lp", "12 mg lumbar once", drug="methotrexate", prevalence=prev)], subjects=400, days=1,
                       seed=5), progress=False)
    m = _lumbar_auc(res, "lp")
    miss = m["pathology_extra_arachnoid_injection"].to_numpy()
    leak = m["pathology_lumbar_leak"].to_numpy()
    assert 0.03 < miss.mean() < 0.10
    ok = ~miss & ~leak
    miss = miss & ~leak          # independent draws: a subject drawn both gets the later name's value (0.3)
    assert m["auc"][miss].max() < 0.05 * m["auc"][ok].min()


def test_named_patient_population_leptomeningeal_metastases():
    """Arm(patients=...) = its pathologies for every patient + its prevalence (the arm's own entries win); the
    same subjects as the spelled-out arm; unknown names and event tables refused; scenario file and CLI."""
    from pkcsf.clinical.prevalence import check_patients, patient_populations

    spec = patient_populations()["leptomeningeal_metastases"]
    assert spec["pathologies"] == ["leptomeningeal_disease"] and spec["prevalence"]["spinal_block"] == 0.33
    assert set(spec["sources"]) <= {"rk27", "altered_cns_mtx", "chamberlain1998", "myelo_subdural"}
    preset = check_patients("leptomeningeal_metastases", "f")
    named = Arm("lm", "12 mg lumbar once", drug="methotrexate", patients="leptomeningeal_metastases")
    assert named.prevalence == preset["prevalence"]
    spelled = Arm("sp", "12 mg lumbar once", drug="methotrexate", pathologies=preset["pathologies"],
                  prevalence=preset["prevalence"])
    own = Arm("own", "12 mg lumbar once", drug="methotrexate", patients="leptomeningeal_metastases",
              prevalence={"spinal_block": 0.0}, pathologies={"vp_shunt": True})
    assert own.prevalence["spinal_block"] == 0.0 and own.prevalence["convexity_block"] == 0.13
    scn = Scenario([named, spelled, own], subjects=60, days=1, seed=2)
    assert own.scenario_for(scn).pathologies == {"leptomeningeal_disease": True, "vp_shunt": True}
    res = run(scn, progress=False)
    a, b = _lumbar_auc(res, "lm"), _lumbar_auc(res, "sp")
    np.testing.assert_array_equal(a["auc"], b["auc"])
    np.testing.assert_array_equal(a["pathology_spinal_block"], b["pathology_spinal_block"])
    with pytest.raises(ScenarioError, match="did you mean 'leptomeningeal_metastases'") as e:
        Arm("x", REG, drug="methotrexate", patients="leptomeningeal_metastasis")
    assert "arms['x'].patients" in str(e.value)
    import pandas as pd

    df = pd.DataFrame({"ID": [1], "TIME": [0.0], "AMT": [12.0], "CMT": ["ommaya"], "EVID": [1]})
    with pytest.raises(ScenarioError, match="real patients"):
        Arm("t", df, drug="methotrexate", patients="leptomeningeal_metastases")


def test_named_patient_populations_are_listed():
    r = subprocess.run([sys.executable, "-m", "pkcsf.cli", "pathologies", "--brief"], capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0 and "leptomeningeal_metastases (patient population" in r.stdout
    assert "spinal_block 33.0%" in r.stdout


def test_simulate_drug_gives_every_arm_the_named_population():
    import pkcsf as pk

    a = pk.simulate_drug("methotrexate", {"lp": "12 mg lumbar once"}, subjects=30, days=1, seed=4,
                         patients="leptomeningeal_metastases")
    b = run(Scenario([Arm("lp", "12 mg lumbar once", drug="methotrexate", patients="leptomeningeal_metastases")],
                     subjects=30, days=1, seed=4), progress=False)
    np.testing.assert_array_equal(_lumbar_auc(a, "lp")["auc"], _lumbar_auc(b, "lp")["auc"])
    assert "pathology_spinal_block" in a.metrics().columns


def test_unknown_simulate_option_is_named_not_a_type_error():
    import pkcsf as pk

    with pytest.raises(ScenarioError, match="did you mean 'patients'"):
        pk.simulate("methotrexate", "12 mg lumbar once", subjects=3, days=1, patient="leptomeningeal_metastases")
    # words other tools use for the number of subjects or the duration are pointed to pkcsf's option
    for word, ours in (("n", "subjects"), ("nsim", "subjects"), ("duration", "days")):
        with pytest.raises(ScenarioError, match=f"option '{word}'.*did you mean '{ours}'"):
            pk.simulate("methotrexate", "12 mg lumbar once", **{word: 3})
