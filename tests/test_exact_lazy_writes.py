"""Issue 11, fewer writes per output: the exact split solver in its lazy mode (the fused read-outs) writes the
passive states (AUC accumulators) only at the ``flush`` outputs, the active states at every output; what it
writes equals the full (non-lazy) solve, and its status is the same, a non-finite subject included."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.engine.simulate import prepare
from pkcsf.solvers.common import ST_NONFINITE
from pkcsf.solvers.exact import exact_workspace, solve_exact_ws
from tests.test_solvers_split import _chain_model


def _problem(tmp_path, n=11):
    path = tmp_path / f"chain{n}.toml"
    path.write_text(_chain_model(n))
    model = pk.load_model(path)
    rng = np.random.default_rng(5)
    sub = pd.DataFrame({"ID": [1]} | {f"K{i}": rng.uniform(0.05, 4.0, 1) for i in range(n)}
                       | {f"V{i}": rng.uniform(0.1, 20.0, 1) for i in range(n)})
    times = np.sort(np.concatenate([np.arange(0.0, 80.0, 0.5), [7.3, 24.0]]))
    return prepare(model, pk.Dose(5.0, "in").repeat(every=24, n=3), sub, times=times, solver="exact")


def _solve(prob, flush, y0, save=None):
    cm = prob.compiled
    S = cm.vol_col.shape[0]
    ev_t, ev_s, ev_a, ev_k, ev_n = prob.events(slice(None))
    order, na, ws = exact_workspace(S, cm.lin_src)
    out = np.full((len(prob.times), S), -7.0)       # a value the solver never writes
    save = np.arange(S) if save is None else save
    st, split = solve_exact_ws(prob.P[0], cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst, cm.lin_col, ev_t[0],
                               ev_s[0], ev_a[0], ev_k[0], ev_n[0], prob.times, y0, save, out,
                               np.zeros(5, dtype=np.int64), order, na, ws, flush)
    assert split
    return st, out, order[:na], order[na:]


# 22 compartments: the output loop's copy compiled for 24 padded active states (issue 11, fourth round);
# 5, 11, 27, 35: the one for any size; saved in order (one contiguous copy per output) or reversed (an indexed scatter)
@pytest.mark.parametrize("n", [5, 11, 22, 27, 35])
@pytest.mark.parametrize("reverse", [False, True])
def test_lazy_writes_active_everywhere_passive_at_flush(tmp_path, n, reverse):
    prob = _problem(tmp_path, n)
    T = len(prob.times)
    flush = np.array([0, 40, T - 1], dtype=np.int64)
    y0 = np.ascontiguousarray(prob.y0[0])
    S = y0.shape[0]
    save = np.arange(S)[::-1].copy() if reverse else None
    st_f, full, act, pas = _solve(prob, np.empty(0, dtype=np.int64), y0, save)
    st_l, lazy, _, _ = _solve(prob, flush, y0, save)
    if reverse:                                     # columns back to state order
        full, lazy = full[:, ::-1], lazy[:, ::-1]
    assert st_f == st_l == 0 and len(pas) >= 2 and len(act) == n
    np.testing.assert_array_equal(lazy[:, act], full[:, act])              # the same chain of steps
    np.testing.assert_allclose(lazy[flush], full[flush], rtol=1e-12, atol=1e-14 * np.abs(full).max())
    mid = np.setdiff1d(np.arange(T), flush)
    assert (lazy[np.ix_(mid, pas)] == -7.0).sum() > 0.9 * len(mid) * len(pas)  # mostly not written (events are)


def test_lazy_status_non_finite(tmp_path):
    prob = _problem(tmp_path)
    T = len(prob.times)
    y0 = np.ascontiguousarray(prob.y0[0]).copy()
    y0[1] = np.nan
    for flush in (np.empty(0, dtype=np.int64), np.array([0, T - 1], dtype=np.int64)):
        assert _solve(prob, flush, y0)[0] == ST_NONFINITE
