"""The exact solver's status (issue 11: taken from the outputs at the last output time alone): a non-finite
value anywhere makes the subject ST_NONFINITE, whichever path (<= 8 states with or without infusions, the
dense path of a larger model with an infusion), including a non-finite dose at the last output time."""
import numpy as np
import pytest

import pkcsf as pk
from pkcsf.engine.dosing import infusion
from pkcsf.solvers import kernels as K
from pkcsf.solvers.common import ST_NONFINITE, ST_SUCCESS


def _params(model, n):
    m = pk.load_model(model)
    rng = np.random.default_rng(3)
    return {k: rng.uniform(0.5, 2.0, n) for k in m.parameter_names}


def _solve(prob, change):
    """Every subject's events in its own row; ``change(ev_t, ev_a)`` edits them; returns (out, status)."""
    cm = prob.compiled
    n = prob.n_subjects
    ev = [np.array(np.broadcast_to(a, (n,) + a.shape[1:])) for a in prob.events(slice(None))]
    change(ev[0], ev[2])
    out = np.empty((n, len(prob.times), len(prob.save)))
    status = np.zeros(n, dtype=np.int64)
    counters = np.zeros((n, 5), dtype=np.int64)
    K.solve_batch(K.METHOD_EXACT, prob.P, cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst, cm.lin_col, cm.mm_src,
                  cm.mm_dst, cm.mm_vmax, cm.mm_km, cm.mm_fu, *ev, prob.times, prob.y0, prob.save, out, status,
                  prob.rtol, prob.atol, prob.max_steps, prob.max_step, counters)
    return out, status


@pytest.mark.parametrize("outputs", [None, ["brain_ecf", "central"]])
@pytest.mark.parametrize("with_infusion", [False, True])
def test_p1_non_finite_dose_fails_the_subject(outputs, with_infusion):
    reg = pk.Dose(12.0, "icv").repeat(every=24, n=3)
    if with_infusion:
        reg = reg + infusion(5.0, "central", 30.0, duration=2.0)
    times = np.array([0.0, 1.0, 2.5, 24.0, 24.0, 30.0, 48.0, 60.0, 72.0, 72.0])
    prob = pk.prepare("reference_p1", reg, _params("reference_p1", 5), times=times, outputs=outputs)
    if with_infusion:      # the bolus at 72 h, the last output time, is event 4 (after the infusion's start and stop)
        assert prob.events(slice(None))[0][0].tolist() == [0.0, 24.0, 30.0, 32.0, 48.0]

    def change(ev_t, ev_a):
        ev_a[1, 0] = np.nan        # subject 1: the first dose
        ev_a[2, 1] = np.inf        # subject 2: the second dose
        ev_t[3, -1] = 72.0         # subject 3: an infinite dose at the last output time only
        ev_a[3, -1] = np.inf
    out, status = _solve(prob, change)
    # subject 3's last dose goes to csf_ventricular: seen only when that state is saved (as before issue 11)
    last = ST_NONFINITE if outputs is None else ST_SUCCESS
    assert status.tolist() == [ST_SUCCESS, ST_NONFINITE, ST_NONFINITE, last, ST_SUCCESS]
    assert np.isfinite(out[[0, 4]]).all()
    assert np.isfinite(out[3, :-1]).all() and np.isfinite(out[3, -1]).all() == (outputs is not None)


def test_dense_path_non_finite_dose_fails_the_subject():
    s = pk.setup("methotrexate")
    prob = pk.prepare(s.model, pk.Dose(12.0, "ommaya") + infusion(100.0, "iv", 5.0, duration=2.0),
                      {k: np.full(3, v) for k, v in s.parameters.items()}, times=np.arange(0, 25.0))
    assert prob.compiled.n_states > 8

    def change(ev_t, ev_a):
        ev_a[1, 0] = np.nan
    out, status = _solve(prob, change)
    assert status.tolist() == [ST_SUCCESS, ST_NONFINITE, ST_SUCCESS]
