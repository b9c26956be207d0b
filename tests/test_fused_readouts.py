"""The read-outs computed inside the compiled solve (``analysis.readouts.solve_and_read_out``) equal
the two-step path (solve, group concentrations, :func:`whole_window`)."""
from __future__ import annotations

import numpy as np
from test_reference import params, regimen

from pkcsf.analysis.readouts import solve_and_read_out, whole_window
from pkcsf.engine.simulate import prepare


def test_fused_readouts_equal_the_two_step_path():
    sub = params("P1").iloc[:12].copy()
    times = np.sort(np.concatenate([np.arange(0, 200.0), [84.0]]))      # a dose time listed twice
    prob = prepare("reference_p1", regimen("P1"), sub, times=times, solver="exact")
    out, status, _ = prob.solve()
    S = out.shape[2]
    W = np.zeros((S, 2))
    W[0, 0] = 1.0                      # group 0: the first state; group 1: states 1 and 2 pooled
    W[1, 1] = W[2, 1] = 1.0
    factor = 2.5
    V = prob.compiled.volumes(prob.P)[:, prob.save]
    conc = (out @ W) * (factor / (V @ W))[:, None, :]
    thr = np.array([[0.1, 1.0], [0.01, 0.5]])
    last, trough = 150, 84
    ref = whole_window(times, conc, thr)
    tail = whole_window(times[last:], conc[:, last:])
    r, st, band = solve_and_read_out(prob, W, factor, thr, last, trough, keep=5)
    assert (st == status).all()
    for k in ("auc", "time_above", "longest_above"):
        np.testing.assert_allclose(r[k], ref[k], rtol=1e-13, atol=0, err_msg=k)
    # Cmax/Tmax: the exact solver refines the grid maximum between outputs (tests/test_solvers_exact_cmax.py),
    # so never below the grid read-out; the same where the peak is at an output (a dose)
    assert (r["cmax"] >= ref["cmax"] * (1 - 1e-13)).all() and (r["cmax_last"] >= tail["cmax"] * (1 - 1e-13)).all()
    same = r["cmax"] <= ref["cmax"] * (1 + 1e-13)
    np.testing.assert_allclose(r["tmax"][same], ref["tmax"][same], rtol=1e-13)
    assert (r["cmax"] - ref["cmax"] <= 0.05 * ref["cmax"]).all()       # a 1-h grid: the peaks are close
    np.testing.assert_allclose(r["auc_last"], tail["auc"], rtol=1e-13)
    np.testing.assert_allclose(r["trough_last"], conc[:, trough, :], rtol=1e-13)
    np.testing.assert_allclose(band, conc[:5], rtol=1e-13)
