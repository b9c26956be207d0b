"""The work outside the compiled kernels of a large scenario (issue 11): chunks solved on a thread while
the next is sampled and the previous tabulated, and ``summary()``'s percentiles without pandas' copy of the
table, on threads. Both must give the results of the plain path to the last bit.
"""
from __future__ import annotations

import threading
import warnings

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.analysis.summaries import grouped_quantiles
from pkcsf.clinical import scenario_reduce, scenario_results, scenario_run
from pkcsf.clinical.scenario import run
from pkcsf.engine.dosing import Regimen, bolus

Q = (0, 2.5, 5, 33.3, 50, 95, 99.9, 100)


def _pandas(columns, ids, q, rows=None):
    df = pd.DataFrame({f"c{j}": c for j, c in enumerate(columns)})
    df["k"] = ids
    if rows is not None:
        df = df.iloc[rows]
    got = df.groupby("k").quantile([p / 100.0 for p in q])
    return got


@pytest.mark.parametrize("layout", ["tile", "random", "rows", "empty group"])
@pytest.mark.parametrize("threads", [1, 2])
def test_grouped_quantiles_equal_pandas_grouped_quantile(layout, threads):
    rng = np.random.default_rng(1)
    G, n = 5, 5 * 203
    ids = np.tile(np.arange(G), n // G) if layout in ("tile", "rows") else rng.integers(0, G, n)
    if layout == "empty group":
        ids[ids == 3] = 2
    cols = [rng.lognormal(size=n), rng.normal(size=n), np.round(rng.normal(size=n), 1)]
    cols[0][rng.random(n) < 0.1] = np.nan
    cols[2][ids == 1] = np.nan                        # a group without a value in one column
    rows = np.flatnonzero(rng.random(n) > 0.2) if layout == "rows" else None
    got = grouped_quantiles(cols, ids, G, Q, rows=rows, threads=threads)
    want = _pandas(cols, ids, Q, rows)
    for g in range(G):
        for j in range(len(cols)):
            w = want.loc[g, f"c{j}"].to_numpy() if g in want.index.get_level_values(0) else np.full(len(Q), np.nan)
            assert np.array_equal(got[g, j], w, equal_nan=True), (g, j)


def _scenario(**kw):
    """Two arms, one with two drugs (the metrics' arm and drug columns are then not one category each)."""
    combo = Regimen([bolus("12 mg", "ommaya", 0.0, drug="methotrexate"),
                     bolus("30 mg", "lumbar", 24.0, drug="pemetrexed")])
    arms = (pk.Arm("combo", combo), pk.Arm("lumbar", "12 mg lumbar once", drug="methotrexate"))
    opts = dict(subjects=300, days=3, seed=5, chunk_size=64, band_subjects=70,
                thresholds={"methotrexate": ["1 umol/L"], "pemetrexed": ["0.08 umol/L", "1 umol/L"]})
    opts.update(kw)
    return pk.Scenario(arms, **opts)


def _run(scn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(scn, progress=False)


@pytest.mark.parametrize("arms", ["two arms", "one arm"])       # one arm: groups repeat row by row
@pytest.mark.parametrize("failures", [False, True], ids=["all solved", "failures"])
def test_summary_on_threads_equals_pandas(monkeypatch, inject_failures, failures, arms):
    scn = _scenario()
    if arms == "one arm":
        scn = pk.Scenario(scn.arms[1:], subjects=300, days=3, seed=5, chunk_size=64, band_subjects=70)
    with monkeypatch.context() as mp:
        if failures:
            inject_failures(mp, {3: pk.Status.MAX_STEPS, 65: pk.Status.NONFINITE, 299: pk.Status.MAX_STEPS})
        res = _run(scn)
    got = res.summary()
    m = res.metrics()
    assert scenario_results._percentiles_threaded(m, ["cmax"], (50,)) is not None      # the threaded path ran
    with monkeypatch.context() as mp:
        mp.setattr(scenario_results, "_percentiles_threaded", lambda *a: None)
        want = res.summary()
        want_q = res.summary(q=(2.5, 50, 97.5))
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    pd.testing.assert_frame_equal(res.summary(q=(2.5, 50, 97.5)), want_q, check_exact=True)
    assert (got["n_failed"].sum() > 0) == failures


def _spy_solves(mp) -> list:
    """The names of the threads that run the compiled stage of each chunk."""
    threads = []
    solve = scenario_reduce._chunk_solve

    def spy(dr, job):
        threads.append(threading.current_thread().name)
        return solve(dr, job)

    mp.setattr(scenario_reduce, "_chunk_solve", spy)
    mp.setattr(scenario_run, "_chunk_solve", spy)
    return threads


def test_chunks_solved_on_a_thread_equal_one_chunk(monkeypatch, inject_failures):
    fail = {3: pk.Status.MAX_STEPS, 130: pk.Status.NONFINITE}
    with monkeypatch.context() as mp:
        inject_failures(mp, fail)
        threads = _spy_solves(mp)
        chunked = _run(_scenario(chunk_size=64))
        assert len(threads) == 2 * 5 + 1 * 5 and all(t.startswith("pkcsf-chunks") for t in threads)   # overlapped
        threads.clear()
        whole = _run(_scenario(chunk_size=300))
        assert threads == ["MainThread"] * 3            # one chunk per drug: one after the other, in this thread
    pd.testing.assert_frame_equal(chunked.metrics(), whole.metrics(), check_exact=True)
    pd.testing.assert_frame_equal(chunked.failures(), whole.failures(), check_exact=True)
    for name, arm in whole.arms.items():
        for d in arm.profiles:
            assert np.array_equal(chunked[name].profiles[d], arm.profiles[d], equal_nan=True)


def test_chunks_with_targets_are_not_overlapped(monkeypatch):
    threads = _spy_solves(monkeypatch)
    res = _run(_scenario(subjects=130, targets=[pk.Target("ventricular", "0.1 umol/L", "6 h")]))
    assert threads == ["MainThread"] * 9    # (n, T, states) arrays are not held for two chunks at once
    assert len(res.targets()) == 3


def test_chunks_on_one_numba_thread_equal_one_chunk(monkeypatch):
    import numba

    old = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        threads = _spy_solves(monkeypatch)
        chunked = _run(_scenario(subjects=130, chunk_size=32))
    finally:
        numba.set_num_threads(old)
    assert len(threads) == 15 and all(t.startswith("pkcsf-chunks") for t in threads)
    whole = _run(_scenario(subjects=130, chunk_size=130))
    pd.testing.assert_frame_equal(chunked.metrics(), whole.metrics(), check_exact=True)


@pytest.mark.parametrize("where", ["table", "gathering"])
def test_a_failing_chunk_raises_and_leaves_no_chunk_solving(monkeypatch, where):
    calls = []
    if where == "table":              # inside the pipeline
        orig, name, owner = scenario_run._chunk_table, "_chunk_table", scenario_run
    else:                             # in the loop that reads the pipeline's results
        orig, name, owner = scenario_run._Columns.add, "add", scenario_run._Columns

    def broken(*args):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("chunk 2 failed")
        return orig(*args)

    monkeypatch.setattr(owner, name, broken)
    try:
        _run(_scenario(subjects=300, chunk_size=32))
    except RuntimeError as e:
        assert "chunk 2 failed" in str(e)
        # checked while the traceback (and the frames holding the pipeline) is still alive
        assert not [t for t in threading.enumerate() if t.name.startswith("pkcsf-chunks")]
    else:
        raise AssertionError("the failure was not raised")


def test_summary_of_an_event_table_arm_equals_pandas(monkeypatch):
    from pathlib import Path

    csv = Path(__file__).parent / "data" / "nonmem_methotrexate_5pt.csv"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pk.simulate("methotrexate", pd.read_csv(csv))
    got = res.summary()
    monkeypatch.setattr(scenario_results, "_percentiles_threaded", lambda *a: None)
    pd.testing.assert_frame_equal(got, res.summary(), check_exact=True)
