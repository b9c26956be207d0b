"""kernels.run_subjects: the ranges of subjects handed to the threads cover every subject exactly once."""
from __future__ import annotations

import threading
import time

import numba
import numpy as np
import pytest

from pkcsf.solvers.kernels import run_subjects


@pytest.mark.parametrize("n", [0, 1, 2, 7, 64, 1001])
@pytest.mark.parametrize("threads", [1, 2])
def test_every_subject_once(n, threads):
    if threads > numba.config.NUMBA_NUM_THREADS:
        pytest.skip("one Numba thread only")
    seen = np.zeros(n, dtype=np.int64)
    ranges = []
    lock = threading.Lock()

    def kernel(i0, i1, out, tag):            # a stand-in for a nogil driver: writes rows i0..i1-1 only
        assert tag == "x"
        with lock:
            ranges.append((i0, i1))
        out[i0:i1] += 1

    old = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        run_subjects(kernel, n, seen, "x")
    finally:
        numba.set_num_threads(old)
    assert np.all(seen == 1)
    assert all(0 <= a <= b <= n for a, b in ranges)
    if threads == 1 or n <= 1:
        assert ranges == [(0, n)]            # in the calling thread, one call


def test_an_error_in_a_range_is_raised():
    def kernel(i0, i1):
        if i0 <= 3 < i1:
            raise RuntimeError("subject 3")

    old = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        with pytest.raises(RuntimeError, match="subject 3"):
            run_subjects(kernel, 10)
    finally:
        numba.set_num_threads(old)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork on this platform")
def test_a_forked_child_gets_its_own_pool():
    import os

    from pkcsf.solvers import kernels

    old = numba.get_num_threads()
    numba.set_num_threads(min(2, numba.config.NUMBA_NUM_THREADS))
    try:
        run_subjects(lambda i0, i1: None, 8)          # the parent's pool exists
        pid = os.fork()
        if pid == 0:                                  # child: must not wait on the parent's (absent) threads
            ok = not kernels._POOL
            out = np.zeros(8, dtype=np.int64)

            def k(i0, i1):
                out[i0:i1] += 1
            run_subjects(k, 8)
            os._exit(0 if ok and np.all(out == 1) else 1)
        for _ in range(600):                          # a hang (the old behaviour) fails instead of blocking
            done, code = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.1)
        else:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
            raise AssertionError("the forked child hung waiting for the parent's threads")
        assert os.waitstatus_to_exitcode(code) == 0
    finally:
        numba.set_num_threads(old)
