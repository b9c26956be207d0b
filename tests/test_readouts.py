"""The compiled whole-window read-outs agree with pkcsf.analysis.metrics (linear-up/log-down)."""
import numpy as np
import pytest

from pkcsf.analysis import metrics as M
from pkcsf.analysis.readouts import min_interval_run, whole_window


@pytest.fixture(scope="module")
def curves():
    rng = np.random.default_rng(3)
    times = np.cumsum(rng.uniform(0.1, 2.0, 60))
    times = np.concatenate([[0.0], times])
    conc = np.exp(rng.normal(0, 1.5, (40, times.size, 3)))
    conc[:, ::7, 1] = 0.0                 # zeros (linear segments), flats
    conc[:, 10:14, 2] = conc[:, 10:11, 2]
    return times, conc


def test_whole_window_matches_metrics(curves):
    times, conc = curves
    thr = np.array([0.5, 1.0, 3.0])
    r = whole_window(times, conc, thr)
    kw = dict(method="linear-up/log-down")
    np.testing.assert_allclose(r["cmax"], M.cmax(times, conc), rtol=0, atol=0)
    np.testing.assert_allclose(r["tmax"], M.tmax(times, conc), rtol=0, atol=0)
    np.testing.assert_allclose(r["auc"], M.auc(times, conc, **kw), rtol=1e-12)
    for k, x in enumerate(thr):
        np.testing.assert_allclose(r["time_above"][:, :, k], M.time_above(times, conc, x, **kw), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(r["longest_above"][:, :, k], M.longest_time_above(times, conc, x, **kw),
                                   rtol=1e-12, atol=1e-12)


def test_jump_is_a_zero_length_segment():
    # a bolus at t = 2: listed twice (pre-dose 0.5, post-dose 10), then decay
    times = np.array([0.0, 1.0, 2.0, 2.0, 3.0, 4.0])
    c = np.array([0.0, 1.0, 0.5, 10.0, 5.0, 2.5])[None, :, None]
    r = whole_window(times, c, np.array([0.9]))
    # AUC: 0.5 (0-1) + (1-0.5)/ln2 (1-2, log-down) + 5/ln2 + 2.5/ln2
    expect = 0.5 + 0.5 / np.log(2) + 5 / np.log(2) + 2.5 / np.log(2)
    assert r["auc"][0, 0] == pytest.approx(expect, rel=1e-12)
    assert r["cmax"][0, 0] == 10.0 and r["tmax"][0, 0] == 2.0
    # above 0.9: from the crossing 0.9 h to the crossing after t = 1 (log-down from 1 to 0.5), then 2 -> 4
    t_up = 0.9
    t_down = 1 + np.log(1 / 0.9) / np.log(2)
    assert r["time_above"][0, 0, 0] == pytest.approx((t_down - t_up) + 2.0, rel=1e-12)
    assert r["longest_above"][0, 0, 0] == pytest.approx(2.0, rel=1e-12)


def test_min_interval_run():
    times = np.array([0.0, 0.0, 24.0, 24.0, 48.0])
    c = np.array([[0.0, 4.0, 1.0, 5.0, 2.0]])     # two intervals, log-down decay in each
    run = min_interval_run(times, c, 2.0, starts=[1, 3], ends=[2, 4])
    first = 24 * np.log(4 / 2) / np.log(4 / 1)
    second = 24 * np.log(5 / 2) / np.log(5 / 2)
    assert run[0] == pytest.approx(min(first, second), rel=1e-12)
