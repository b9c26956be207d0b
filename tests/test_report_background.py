"""The report's second process (issue 11): the saturable osimertinib scenario is simulated in a spawned
worker while the report runs the rest; its numbers must be those of a run in this process.
"""
from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from dataclasses import replace

import numpy as np
import pytest

import pkcsf.report.build as B
from pkcsf.report.scenarios import _scenarios


def _small():
    sc = _scenarios(3, 7)["osimertinib_saturable"]
    return replace(sc, days=2, subjects=3, band_subjects=3)


def _same(a, b):
    sa, sb = a.summary(), b.summary()
    num = [c for c in sa.columns if sa[c].dtype.kind == "f"]
    assert np.array_equal(sa[num].to_numpy(), sb[num].to_numpy(), equal_nan=True)
    ba, bb = a.bands(), b.bands()
    num = [c for c in ba.columns if ba[c].dtype.kind == "f"]
    assert np.array_equal(ba[num].to_numpy(), bb[num].to_numpy(), equal_nan=True)


def test_background_run_is_identical_to_a_local_run():
    sc = _small()
    bg = B._start_background({"osimertinib_saturable": sc}, B.BACKGROUND_MIN_SUBJECTS)
    try:
        if not bg:
            pytest.skip("no second process here (a __main__ that spawn would re-run, or no second core)")
        res, caught, seconds = B._outcome(bg, "osimertinib_saturable", sc)
    finally:
        if bg:
            bg["pool"].shutdown(wait=True)
    local, _, _ = B._run_caught(sc)
    _same(res, local)
    assert seconds > 0 and all(len(w) == 4 for w in caught)


def test_small_reports_and_child_processes_run_everything_here():
    sc = _small()
    assert B._start_background({"osimertinib_saturable": sc}, B.BACKGROUND_MIN_SUBJECTS - 1) == {}
    assert B._start_background({"mtx_single": sc}, 10_000) == {}


def test_a_broken_worker_falls_back_to_this_process():
    class Broken:
        def result(self):
            raise BrokenProcessPool("worker killed")

    sc = _small()
    bg = {"osimertinib_saturable": Broken()}
    res, _, _ = B._outcome(bg, "osimertinib_saturable", sc)
    _same(res, B._run_caught(sc)[0])
    assert "osimertinib_saturable" not in bg          # the settings then do not claim a second process


def test_pending_results_resolve_on_first_use_in_report_order():
    R = B._Results()
    R["a"] = 1
    calls = []
    R.pending("b", lambda: calls.append("b") or 2)
    R["c"] = 3
    assert calls == [] and list(R) == ["a", "b", "c"]
    assert R["b"] == 2 and R["b"] == 2 and calls == ["b"]
    R.pending("d", lambda: 4)
    assert list(R.values()) == [1, 2, 3, 4]
