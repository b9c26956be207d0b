"""``run(..., keep="summary")``: the bounded-memory run (pkcsf.clinical.scenario_bounded, issue 11).

Its summary must equal a full run's to the last bit (same seed, failed subjects excluded and counted the
same way), on any executor with ``submit``; it keeps no per-subject table and leaves no scratch file.
"""
from __future__ import annotations

import concurrent.futures as cf
import threading
import warnings

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.clinical import scenario_bounded
from pkcsf.clinical.scenario import FailedSubjectsWarning, run
from pkcsf.core.errors import ScenarioError
from pkcsf.engine.dosing import Regimen, bolus

LABELS = ["arm", "drug", "group", "unit", "n", "n_failed"]


def _scenario(targets=(), **kw):
    """Two arms, one with two drugs given by different routes and each drug with its own thresholds (the
    summary's columns are then a union), 300 subjects in chunks of 64 (the last one short)."""
    combo = Regimen([bolus("12 mg", "ommaya", 0.0, drug="methotrexate"),
                     bolus("30 mg", "lumbar", 24.0, drug="pemetrexed")])
    arms = (pk.Arm("combo", combo), pk.Arm("lumbar", "12 mg lumbar once", drug="methotrexate"))
    opts = dict(subjects=300, days=3, seed=5, chunk_size=64, band_subjects=70, targets=targets,
                thresholds={"methotrexate": ["1 umol/L"], "pemetrexed": ["0.08 umol/L", "1 umol/L"]})
    opts.update(kw)
    return pk.Scenario(arms, **opts)


def _same_summary(full: pd.DataFrame, got: pd.DataFrame) -> None:
    assert list(got.columns) == list(full.columns)
    for c in LABELS:
        assert got[c].astype(str).tolist() == full[c].astype(str).tolist(), c
    num = [c for c in full.columns if c not in LABELS]
    a, b = full[num].to_numpy(np.float64), got[num].to_numpy(np.float64)
    # to the last bit: the same order statistics, the same interpolation
    assert np.array_equal(a.view(np.int64)[~np.isnan(a)], b.view(np.int64)[~np.isnan(a)])
    assert np.array_equal(np.isnan(a), np.isnan(b))


def _same_rest(full, got) -> None:
    pd.testing.assert_frame_equal(got.targets(), full.targets())
    pd.testing.assert_frame_equal(got.failures(), full.failures())
    for name, arm in full.arms.items():
        for d in arm.profiles:
            assert np.array_equal(got[name].profiles[d], arm.profiles[d], equal_nan=True)
            assert np.array_equal(got[name].typical[d], arm.typical[d], equal_nan=True)
            assert got[name].cmax_grid_error[d] == arm.cmax_grid_error[d]
        assert got[name].failed == arm.failed


class _OutOfOrderExecutor:
    """Runs each job inside ``submit`` (one thread: numba's kernels are never entered twice at once) and
    completes every other future 50 ms later, so that chunks come back out of order."""

    def __init__(self):
        self.submitted, self.completed = 0, []

    def submit(self, fn, *args):
        fut = cf.Future()
        value = fn(*args)
        self.submitted += 1
        k = self.submitted

        def done():
            if not fut.cancelled():
                fut.set_result(value)
                self.completed.append(k)

        if k % 2:
            threading.Timer(0.05, done).start()
        else:
            done()
        return fut


@pytest.fixture(scope="module")
def full_run():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run(_scenario(), progress=False)


def test_summary_equals_a_full_run_with_chunks_out_of_order(full_run, tmp_path):
    ex = _OutOfOrderExecutor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(_scenario(), executor=ex, keep="summary", in_flight=3, scratch=tmp_path, progress=False)
    assert ex.completed != sorted(ex.completed) and ex.submitted == 3 * 5       # 3 drugs x 5 chunks
    _same_summary(full_run.summary(), res.summary())
    _same_rest(full_run, res)
    assert list(tmp_path.iterdir()) == []            # scratch removed
    # a subset of the kept percentiles; the others are refused naming the fix
    sub = res.summary(q=[50])
    assert [c for c in sub.columns if c.startswith("cmax_")] == ["cmax_p50", "cmax_last_p50"]
    assert np.array_equal(sub["auc_p50"], full_run.summary()["auc_p50"])
    with pytest.raises(ScenarioError, match=r"q: got \[10\]; this run kept the percentiles \[5, 50, 95\]"):
        res.summary(q=[10, 50])


def test_summary_in_this_process_and_other_percentiles(tmp_path):
    scn = _scenario(subjects=130)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = run(scn, progress=False)
        res = run(scn, keep="summary", q=(2.5, 50, 97.5), scratch=tmp_path, progress=False)
    _same_summary(full.summary(q=(2.5, 50, 97.5)), res.summary())
    assert "p97.5" in res.summary().columns[-1]


def test_no_per_subject_table(full_run, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(_scenario(subjects=64), keep="summary", scratch=tmp_path, progress=False)
    with pytest.raises(ScenarioError, match="keep: got 'summary'; a run with keep='summary' keeps.*not the per-subject metrics"):
        res.metrics()
    with pytest.raises(ScenarioError, match="keep: got 'summary'; arm 'combo' of a run.*keep='metrics'"):
        res["combo"].metrics
    assert "summary only" in repr(res) and "summary only" in repr(res["combo"])
    res.bands()                              # the band subjects are kept
    res["lumbar"].interval_metrics()


@pytest.mark.filterwarnings("ignore::pkcsf.clinical.scenario.CoarseGridWarning")
@pytest.mark.parametrize("targets", [(), (pk.Target("ventricular", "0.1 umol/L", "6 h"),
                                          pk.Target("lumbar", "0.1 umol/L", "6 h", per="total"))],
                         ids=["fused", "targets"])
def test_failed_subjects_excluded_and_counted_as_in_a_full_run(monkeypatch, tmp_path, targets, inject_failures):
    fail = {3: pk.Status.MAX_STEPS, 65: pk.Status.NONFINITE, 100: pk.Status.MAX_STEPS, 299: pk.Status.MAX_STEPS}
    with monkeypatch.context() as mp:
        inject_failures(mp, fail)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = run(_scenario(targets), progress=False)
        with cf.ThreadPoolExecutor(1) as ex, pytest.warns(FailedSubjectsWarning, match="4 of 300 subjects failed"):
            res = run(_scenario(targets), executor=ex, keep="summary", in_flight=3, scratch=tmp_path,
                      progress=False)
    s = res.summary()
    assert (s["n"] == 296).all() and (s["n_failed"] == 4).all()
    _same_summary(full.summary(), s)
    _same_rest(full, res)
    assert sorted(set(res.failures()["id"])) == sorted(fail)


class _LazyExecutor:
    """An executor of the bare protocol (``submit`` returning an object with ``result()``) that runs a job
    when its result is asked for, and counts the jobs submitted and not yet read."""

    def __init__(self):
        self.outstanding = self.most = 0

    def submit(self, fn, *args):
        ex = self
        ex.outstanding += 1
        ex.most = max(ex.most, ex.outstanding)

        class Lazy:
            def result(self):
                if not hasattr(self, "value"):
                    self.value = fn(*args)
                    ex.outstanding -= 1
                return self.value

            def cancel(self):
                return False

        return Lazy()


def test_in_flight_bound_on_any_executor(full_run, tmp_path):
    ex = _LazyExecutor()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(_scenario(), executor=ex, keep="summary", in_flight=3, scratch=tmp_path, progress=False)
    assert ex.most == 3 and ex.outstanding == 0
    _same_summary(full_run.summary(), res.summary())


def test_scratch_removed_when_a_chunk_fails(monkeypatch, tmp_path):
    chunk = scenario_bounded._chunk

    def broken(dr, pop, seed, variability, start, *args):
        if start == 128:
            raise RuntimeError("worker lost")
        return chunk(dr, pop, seed, variability, start, *args)

    monkeypatch.setattr(scenario_bounded, "_chunk", broken)
    with cf.ThreadPoolExecutor(1) as ex, pytest.raises(RuntimeError, match="worker lost"):
        run(_scenario(), executor=ex, keep="summary", in_flight=2, scratch=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="worker lost"):          # in this process too
        run(_scenario(), keep="summary", scratch=tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_clear_errors(tmp_path):
    table = pd.DataFrame({"ID": [1, 1], "TIME": [0, 24], "AMT": [12, None], "CMT": ["ommaya", "ventricular"],
                          "EVID": [1, 0]})
    scn = pk.Scenario((pk.Arm("pts", table, drug="methotrexate"),), days=2)
    with pytest.raises(ScenarioError, match=r"arms\['pts'\].regimen: got 'an event table'.*keep='metrics'"):
        run(scn, keep="summary", scratch=tmp_path)
    ok = _scenario(subjects=10)
    with pytest.raises(ScenarioError, match="keep: got 'table'"):
        run(ok, keep="table")
    with pytest.raises(ScenarioError, match="scratch: got .*must be an existing folder"):
        run(ok, keep="summary", scratch=tmp_path / "missing")
    with pytest.raises(ScenarioError, match="in_flight"):
        run(ok, keep="summary", in_flight=0, scratch=tmp_path)
    with pytest.raises(ScenarioError, match="q: got .*between 0 and 100"):
        run(ok, keep="summary", q=(5, 150), scratch=tmp_path)
    with pytest.raises(ScenarioError, match="executor: got 'int'.*submit"):
        run(ok, keep="summary", executor=3, scratch=tmp_path)
    with pytest.raises(ScenarioError, match="scratch: got .*free"):
        scenario_bounded._check_resources(ok, scenario_bounded._plan(ok), 64, tmp_path, disk=1000)
    assert list(tmp_path.iterdir()) == []


def test_quantiles_match_pandas_grouped_quantile():
    rng = np.random.default_rng(0)
    q = (0, 2.5, 5, 33.3, 50, 95, 99.9, 100)
    for m in (1, 2, 3, 7, 100, 1001):
        x = rng.lognormal(size=m)
        x[rng.random(m) < 0.1] = np.nan
        want = pd.DataFrame({"k": 0, "x": x}).groupby("k")["x"].quantile([p / 100.0 for p in q]).to_numpy()
        got = np.array(scenario_bounded.quantiles(x, q))
        assert np.array_equal(got, want, equal_nan=True), m


def test_dask_local_cluster(full_run, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(processes=False, n_workers=1, threads_per_worker=1, dashboard_address=":0") as lc, \
            distributed.Client(lc) as client, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = run(_scenario(), executor=client, keep="summary", scratch=tmp_path, progress=False)
    _same_summary(full_run.summary(), res.summary())
    _same_rest(full_run, res)
    assert list(tmp_path.iterdir()) == []


def test_cli_summary_only(tmp_path):
    from pkcsf.cli import main

    toml = tmp_path / "s.toml"
    toml.write_text('name = "s"\ndays = 2\n[population]\nsubjects = 150\nseed = 2\n[[arms]]\nname = "lumbar"\n'
                    'drug = "methotrexate"\nregimen = "12 mg lumbar once"\n', encoding="utf-8")
    base = ["run", str(toml), "--no-figures", "--quiet"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(base + ["--out", str(tmp_path / "full")]) == 0
        assert main(base + ["--out", str(tmp_path / "summ"), "--summary-only", "--scratch", str(tmp_path)]) == 0
    assert not (tmp_path / "summ" / "metrics.csv").exists() and (tmp_path / "full" / "metrics.csv").exists()
    assert (tmp_path / "summ" / "summary.csv").read_bytes() == (tmp_path / "full" / "summary.csv").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "s.toml", "summ"]      # scratch removed
    assert main(base + ["--scratch", str(tmp_path)]) == 2            # --scratch without --summary-only
