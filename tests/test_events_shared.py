"""Problem.events: a shared regimen that gives every subject the same events is built once (issue 11);
the arrays are those of the general construction, which returns one row when every row is the same."""
import numpy as np
import pandas as pd

import pkcsf as pk
from pkcsf.engine.dosing import infusion
from pkcsf.engine.problem import _build_events


def _general(prob):
    P = prob.P
    base = {n: P[:, j] for j, n in enumerate(prob.compiled.parameter_names)}
    groups = [(spec, np.arange(P.shape[0])) for spec in prob.specs]
    return _build_events(prob.compiled, groups, P, prob.extras, base, prob.ids)


def _params(n, seed=0):
    m = pk.load_model("reference_p1")
    rng = np.random.default_rng(seed)
    return pd.DataFrame({k: rng.uniform(0.5, 2.0, n) for k in m.parameter_names})


def test_same_events_for_all_is_the_general_construction():
    reg = pk.Dose(12.0, "icv").repeat(every=84, n=3) + infusion(50.0, "central", 10.5, duration=3.0) \
        + infusion(20.0, "central", 200.0, rate=4.0)
    prob = pk.prepare("reference_p1", reg, _params(50), times=np.arange(0, 300.0))
    fast = prob.events(slice(None))
    slow = _general(prob)
    assert fast[0].shape[0] == 1
    for a, b in zip(fast, slow):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    # a chunk of rows: the same single row
    for a, b in zip(prob.events(slice(10, 20)), slow):
        assert np.array_equal(a, b)


def test_per_subject_amounts_keep_one_row_per_subject():
    df = _params(6)
    df["DOSE"] = np.arange(1.0, 7.0)
    prob = pk.prepare("reference_p1", pk.Dose("DOSE", "icv").repeat(every=84, n=2), df, times=np.arange(0, 200.0))
    ev = prob.events(slice(None))
    assert ev[0].shape == (6, 2)
    assert np.array_equal(ev[2][:, 0], np.arange(1.0, 7.0))
    for a, b in zip(ev, _general(prob)):
        assert np.array_equal(a, b)


def test_bioavailability_that_varies_keeps_one_row_per_subject():
    m = pk.load_model("reference_p2")
    rng = np.random.default_rng(1)
    df = pd.DataFrame({k: rng.uniform(0.5, 2.0, 5) for k in m.parameter_names})
    df["F"] = np.linspace(0.2, 0.9, 5)
    df["VMAX"] = 0.0
    prob = pk.prepare("reference_p2", pk.Dose(80.0, "oral").repeat(every=24, n=3), df, times=np.arange(0, 100.0))
    ev = prob.events(slice(None))
    assert ev[0].shape == (5, 3)
    for a, b in zip(ev, _general(prob)):
        assert np.array_equal(a, b)
