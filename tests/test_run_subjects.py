"""kernels.run_subjects: the ranges of subjects handed to the threads cover every subject exactly once."""
from __future__ import annotations

import threading

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
