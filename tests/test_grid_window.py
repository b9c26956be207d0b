"""The simulated window and its output grid: the window ends where the user said, doses beyond it are named, and
read-outs that depend on the output step say so (issue: silent wrong numbers found by an adversarial review)."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from pkcsf.cli import main
from pkcsf.clinical.scenario import Arm, CoarseGridWarning, DosesAfterEndWarning, Scenario, Target, run


def _quiet_run(scn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = run(scn, progress=False)
    return res, caught


def test_a_step_that_does_not_divide_the_window_still_ends_at_the_window():
    arm = Arm("a", "12 mg lumbar once", drug="methotrexate")
    res, _ = _quiet_run(Scenario([arm], subjects=5, days=1, dt=10, seed=1))
    assert res["a"].times[-1] == pytest.approx(24.0) and res["a"].times[-2] == pytest.approx(20.0)
    full, _ = _quiet_run(Scenario([arm], subjects=5, days=1, dt=0.5, seed=1))
    # the AUC is an exact integral over the same window whatever the step
    np.testing.assert_allclose(res.metrics()["auc"], full.metrics()["auc"], rtol=1e-9)


def test_doses_after_the_window_are_named_and_a_dose_at_the_end_is_not_read_as_a_peak():
    res, caught = _quiet_run(Scenario([Arm("a", "12 mg lumbar weekly x 2", drug="methotrexate")], subjects=5,
                                      days=7, seed=1))
    late = [w for w in caught if issubclass(w.category, DosesAfterEndWarning)]
    assert len(late) == 1 and "1 of 2 doses" in str(late[0].message) and "day 8" in str(late[0].message)
    one, caught1 = _quiet_run(Scenario([Arm("a", "12 mg lumbar once", drug="methotrexate")], subjects=5, days=7,
                                       seed=1))
    assert not [w for w in caught1 if issubclass(w.category, DosesAfterEndWarning)]
    # the dose at 168 h is outside the window: the read-outs are those of the first dose alone
    m, m1 = res.metrics().set_index(["id", "group"]), one.metrics().set_index(["id", "group"])
    np.testing.assert_allclose(m["cmax"], m1["cmax"], rtol=1e-12)
    np.testing.assert_allclose(m["auc"], m1["auc"], rtol=1e-12)


def test_the_run_command_keeps_the_run_s_warnings_in_run_json(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('name = "t"\ndrug = "methotrexate"\ndays = 7\ndt = "16 h"\n[readouts]\nthresholds = ["1 umol/L"]\n'
                 '[[arms]]\nname = "a"\nregimen = "12 mg lumbar weekly x 4"\n')
    assert main(["run", str(f), "--out", str(tmp_path / "o"), "-q", "--subjects", "20"]) == 0
    kept = json.loads((tmp_path / "o" / "run.json").read_text())["warnings"]
    assert any("3 of 4 doses" in w for w in kept)
    assert any("output step" in w for w in kept)


def test_targets_do_not_change_the_read_outs():
    arms = [Arm("o", "12 mg ommaya twice weekly x 2 weeks", drug="methotrexate")]
    plain, _ = _quiet_run(Scenario(arms, subjects=20, days=14, seed=2, dt=4))
    with_t, _ = _quiet_run(Scenario(arms, subjects=20, days=14, seed=2, dt=4,
                                    targets=[Target("ventricular", "1 umol/L", "24 h")]))
    cols = ["cmax", "tmax", "auc", "cmax_last", "auc_last", "trough_last"]
    np.testing.assert_array_equal(plain.metrics()[cols].to_numpy(), with_t.metrics()[cols].to_numpy())


def test_time_above_on_a_coarse_grid_is_flagged_and_a_fine_grid_is_not():
    arm = Arm("a", "12 mg lumbar twice weekly x 2 weeks", drug="methotrexate")
    tg = [Target("ventricular", "1 umol/L", "6 h")]
    _, coarse = _quiet_run(Scenario([arm], subjects=100, days=14, seed=1, dt=24, targets=tg,
                                    thresholds=["1 umol/L"]))
    msgs = [str(w.message) for w in coarse if issubclass(w.category, CoarseGridWarning)]
    assert any("time above" in m and "1 umol/L in ventricular" in m and "target" in m for m in msgs)
    _, fine = _quiet_run(Scenario([arm], subjects=100, days=14, seed=1, dt=0.25, targets=tg,
                                  thresholds=["1 umol/L"]))
    assert not [w for w in fine if issubclass(w.category, CoarseGridWarning)]


def test_the_command_line_shows_the_package_s_warnings_as_one_line(capsys):
    assert main(["escalate", "pemetrexed", "--doses", "10,20", "--days", "1", "--trials", "20", "--subjects", "20",
                 "-q"]) == 0
    err = capsys.readouterr().err
    assert "pkcsf: warning: arm '10 mg': doses at or after the end of the simulated window (1 day)" in err
    assert "DosesAfterEndWarning" not in err and ".py:" not in err
