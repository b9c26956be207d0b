"""Parameter uncertainty in populations (Arm(uncertainty=...), pkcsf.clinical.uncertainty): each subject draws
his own parameter set from a calibration's uncertainty, as rxode2's thetaMat with one draw per subject."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pkcsf.clinical.scenario import Arm, Scenario, run
from pkcsf.clinical.uncertainty import usable_calibrations
from pkcsf.core.errors import ScenarioError

REG = "80 mg oral daily x 10"
LM = {"leptomeningeal_disease": True}


def _lumbar(res, arm):
    m = res.metrics()
    return m[(m["arm"] == arm) & (m["group"] == "lumbar")].reset_index(drop=True)


@pytest.fixture(scope="module")
def res():
    arms = [Arm("none", REG, drug="osimertinib"),
            Arm("unc", REG, drug="osimertinib", uncertainty="osimertinib_csf")]
    return run(Scenario(arms, subjects=300, days=10, pathologies=LM, seed=11), progress=False)


def test_uncertainty_widens_the_csf_penetration_band(res):
    a, b = _lumbar(res, "none")["ratio_auc_plasma"], _lumbar(res, "unc")["ratio_auc_plasma"]
    spread = lambda x: np.quantile(x, 0.95) / np.quantile(x, 0.05)   # noqa: E731
    assert spread(b) > 1.5 * spread(a)
    # the same patients (same covariates and random effects): only the drawn calibration values differ
    assert 0.7 < np.median(b) / np.median(a) < 1.4


def test_draws_are_reproducible_whatever_the_chunk_size():
    arm = Arm("unc", REG, drug="osimertinib", uncertainty={"calibration": "osimertinib_csf", "pool": 50})
    a = _lumbar(run(Scenario([arm], subjects=120, days=10, seed=5, chunk_size=7), progress=False), "unc")
    b = _lumbar(run(Scenario([arm], subjects=120, days=10, seed=5, chunk_size=64), progress=False), "unc")
    np.testing.assert_array_equal(a["uncertainty_draw"], b["uncertainty_draw"])
    np.testing.assert_array_equal(a["auc"], b["auc"])
    assert a["uncertainty_draw"].between(0, 49).all() and a["uncertainty_draw"].nunique() > 30


def test_summary_ignores_the_draw_label(res):
    s = res.summary()
    assert "uncertainty_draw" not in "".join(s.columns)


@pytest.mark.parametrize("spec, match", [
    ("osimertinib_cfs", "did you mean 'osimertinib_csf'"),
    ("csf_transport", "hardly determine"),                       # v2 mixing: SE of log up to 25, refused
    ("csf_transport_v3", "CNS model 'v3'"),
    ("osimertinib_csf_saturable", "no \\[covariance\\]"),       # 2 data, 2 values
    ({"calibration": "osimertinib_csf", "pool": 3}, "from 10 to 100000"),
    ({"calibration": "osimertinib_csf", "methd": "posterior"}, "did you mean 'method'"),
    (3, "must be a calibration name"),
])
def test_bad_uncertainty_is_refused_naming_the_field(spec, match):
    with pytest.raises(ScenarioError, match=match) as e:
        Arm("x", REG, drug="osimertinib", uncertainty=spec)
    assert "arms['x'].uncertainty" in str(e.value)


def test_a_calibration_of_another_drug_is_refused_at_run():
    arm = Arm("x", "12 mg ommaya once", drug="methotrexate", uncertainty="osimertinib_csf")
    with pytest.raises(ScenarioError, match="concerns no parameter of methotrexate"):
        run(Scenario([arm], subjects=5, days=1), progress=False)


def test_event_table_arm_refuses_uncertainty():
    df = pd.DataFrame({"ID": [1], "TIME": [0.0], "AMT": [80.0], "CMT": ["oral"], "EVID": [1]})
    with pytest.raises(ScenarioError, match="event-table"):
        Arm("t", df, drug="osimertinib", uncertainty="osimertinib_csf")


def test_usable_calibrations_are_listed():
    assert "osimertinib_csf" in usable_calibrations() and "csf_transport" not in usable_calibrations()


def test_scenario_file_and_cli(tmp_path):
    (tmp_path / "s.toml").write_text(
        'drug = "osimertinib"\ndays = 5\n[population]\nsubjects = 30\n[[arms]]\nname = "80 mg"\n'
        'regimen = "80 mg oral daily x 5"\nuncertainty = "osimertinib_csf"\n')
    r = subprocess.run([sys.executable, "-m", "pkcsf.cli", "run", "s.toml", "--out", "out", "--no-figures", "--quiet"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "out" / "metrics.csv").read_text().splitlines()[0].endswith("uncertainty_draw")
    (tmp_path / "bad.toml").write_text(
        'drug = "osimertinib"\ndays = 1\n[[arms]]\nname = "x"\nregimen = "80 mg oral daily x 1"\n'
        'uncertainty = "csf_transport"\n')
    r = subprocess.run([sys.executable, "-m", "pkcsf.cli", "run", "bad.toml", "--out", "out2", "--quiet"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 2 and "arms[0].uncertainty.calibration: got 'csf_transport'" in r.stderr
    assert "Traceback" not in r.stderr and not (tmp_path / "out2").exists()
