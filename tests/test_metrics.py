"""Tests for pkcsf.analysis.metrics: hand-computed cases, dose-aware intervals, errors, and properties."""
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pkcsf.analysis import curve
from pkcsf.analysis import metrics as m
from pkcsf.analysis.metrics import MetricsError
from pkcsf.core.errors import PkcsfError

LN2 = math.log(2)

# a triangle: 0 at 0 h, 4 mg/L at 2 h, 0 at 4 h
TRI_T = np.array([0.0, 2.0, 4.0])
TRI_C = np.array([[0.0, 4.0, 0.0]])


# ---------------------------------------------------------------------------
# hand-computed cases
# ---------------------------------------------------------------------------

def test_auc_of_a_triangle_whole_and_between_grid_points():
    assert m.auc(TRI_T, TRI_C) == pytest.approx([8.0])            # base 4 * height 4 / 2
    # window [1, 3]: c(1) = c(3) = 2, so two trapezoids (2+4)/2 * 1 each = 6
    assert m.auc(TRI_T, TRI_C, 1, 3) == pytest.approx([6.0])
    # [0.5, 1.5] lies inside one segment: c = 1 and 3, area 2
    assert m.auc(TRI_T, TRI_C, 0.5, 1.5) == pytest.approx([2.0])
    assert m.auc(TRI_T, TRI_C, 1.5, 1.5) == pytest.approx([0.0])
    # linear-up/log-down: the fall 4 -> 0 ends at zero, so it stays linear
    assert m.auc(TRI_T, TRI_C, method="linear-up/log-down") == pytest.approx([8.0])


def test_auc_of_an_exponential_between_grid_points_is_exact_with_log_interpolation():
    t = np.array([0.0, 6, 12, 24])
    c = 10 * np.exp(-0.1 * t)[None]
    exact = 100 * (math.exp(-0.1 * 1.3) - math.exp(-0.1 * 17.7))
    for method in ("log", "linear-up/log-down"):
        assert m.auc(t, c, 1.3, 17.7, method) == pytest.approx([exact], rel=1e-12)
    # the linear trapezoid overestimates a convex decay
    assert m.auc(t, c, 1.3, 17.7, "linear")[0] > exact * 1.01
    # and the interpolated value at 1.3 h is exact too
    assert m.interpolate(t, c, 1.3, method="log") == pytest.approx([10 * math.exp(-0.13)], rel=1e-12)


def test_small_dataset_linear_and_log_down_by_hand():
    t = np.array([0.0, 1, 2, 4])
    c = np.array([[0.0, 4, 2, 1]])
    # linear: 2 + 3 + 3 = 8; log-down: 2 + 2/ln2 + 2/ln2
    assert m.auc(t, c) == pytest.approx([8.0])
    assert m.auc(t, c, method="lin up/log down") == pytest.approx([2 + 4 / LN2], rel=1e-14)
    cum = m.auc_cumulative(t, c, "linear-up/log-down")
    assert cum == pytest.approx(np.array([[0, 2, 2 + 2 / LN2, 2 + 4 / LN2]]), rel=1e-14)


def test_cmax_tmax_cmin_with_windows_and_first_occurrence():
    t = np.array([0.0, 1, 2, 3, 4])
    c = np.array([[1.0, 5, 5, 2, 3], [4.0, 3, 2, 1, 0.5]])
    assert m.cmax(t, c) == pytest.approx([5, 4])
    assert m.tmax(t, c) == pytest.approx([1, 0])                   # first of the plateau
    assert m.cmin(t, c) == pytest.approx([1, 0.5])
    # window [2.5, 3.5]: ends interpolated (3.5, 1.5) and (2.5, 0.75)
    assert m.cmax(t, c, 2.5, 3.5) == pytest.approx([3.5, 1.5])
    assert m.tmax(t, c, 2.5, 3.5) == pytest.approx([2.5, 2.5])
    assert m.cmin(t, c, 2.5, 3.5) == pytest.approx([2, 0.75])
    assert m.cmax(t, c, "30 min", "1.5 h") == pytest.approx([5, 4 - 0.5])


def test_time_above_with_crossings_between_grid_points():
    # triangle crosses 2 mg/L at 1 h and 3 h
    assert m.time_above(TRI_T, TRI_C, 2.0) == pytest.approx([2.0])
    assert m.time_above(TRI_T, TRI_C, 2.0, 1.5, 4) == pytest.approx([1.5])
    assert m.time_above(TRI_T, TRI_C, 0.0) == pytest.approx([4.0])
    assert m.time_above(TRI_T, TRI_C, 5.0) == pytest.approx([0.0])
    # two peaks above 1 mg/L: [0.5, 1.5] and [2.5, 3.5]
    t = np.array([0.0, 1, 2, 3, 4])
    c = np.array([[0.0, 2, 0, 2, 0]])
    assert m.time_above(t, c, 1.0) == pytest.approx([2.0])
    assert m.longest_time_above(t, c, 1.0) == pytest.approx([1.0])


def test_time_above_log_crossing_is_exact_for_exponential_decay():
    t = np.array([0.0, 12, 24])
    c = 8 * np.exp(-0.2 * t)[None]
    thr = 1.0                                      # crossed at ln(8)/0.2 = 10.397 h
    assert m.time_above(t, c, thr, method="log") == pytest.approx([math.log(8) / 0.2], rel=1e-12)
    lin = m.time_above(t, c, thr)[0]               # the chord lies above the curve
    assert lin > math.log(8) / 0.2


def test_threshold_with_molar_units():
    mw = 500.0                                     # 1 umol/L = 0.5 mg/L
    c = np.array([[0.0, 1.0, 0.0]])
    assert m.time_above(TRI_T, c, "1 umol/L", mw=mw) == pytest.approx(m.time_above(TRI_T, c, 0.5))
    with pytest.raises(PkcsfError, match="molecular weight"):
        m.time_above(TRI_T, c, "1 umol/L")


# ---------------------------------------------------------------------------
# dosing intervals, troughs, right continuity
# ---------------------------------------------------------------------------

K = 0.1
DOSES = np.array([0.0, 24.0, 48.0])
GRID = np.arange(0.0, 73.0, 3.0)


def _bolus_profile(t, doses=DOSES, c0=10.0, k=K):
    """Right-continuous superposition of boluses: value at a dose time includes it."""
    return sum(np.where(t >= d, c0 * np.exp(-k * (t - d)), 0.0) for d in doses)


def _pre_dose(doses=DOSES, c0=10.0, k=K):
    return np.array([sum(c0 * np.exp(-k * (d - e)) for e in doses if e < d) for d in doses])


CONC = _bolus_profile(GRID)[None, :]
PRE = _pre_dose()[None, :]


def test_troughs_left_limit_with_and_without_conc_before():
    exact = m.trough(GRID, CONC, DOSES, conc_before=PRE)
    # intervals [0,24], [24,48], [48,72]: troughs at 24 h, 48 h (pre-dose) and at 72 h
    assert exact[0, :2] == pytest.approx(PRE[0, 1:], rel=1e-14)
    assert exact[0, 2] == pytest.approx(_bolus_profile(np.array([72.0]))[0], rel=1e-14)
    # without conc_before: the last grid point strictly before the dose (21 h, 45 h)
    held = m.trough(GRID, CONC, DOSES)
    assert held[0, 0] == pytest.approx(CONC[0, 7])      # 21 h
    assert held[0, 1] == pytest.approx(CONC[0, 15])     # 45 h
    # never the post-dose value stored at the dose time
    assert held[0, 0] < CONC[0, 8]


def test_auc_per_interval_is_exact_with_conc_before_and_log_interpolation():
    per = m.auc_per_interval(GRID, CONC, DOSES, method="log", conc_before=PRE)
    # AUC of the interval starting at dose k: (C(d_k+) / K) * (1 - exp(-24 K))
    c_after = PRE[0] + 10
    expected = c_after / K * (1 - math.exp(-24 * K))
    assert per[0] == pytest.approx(expected, rel=1e-12)
    assert per.sum() == pytest.approx(m.auc(GRID, CONC, method="log", dose_times=DOSES, conc_before=PRE)[0],
                                      rel=1e-13)
    # blind to the doses, the last segment of each interval climbs to the post-dose value
    blind = m.auc(GRID, CONC, 0, 24, "log")[0]
    assert blind > per[0, 0] + 1
    # hold fallback: the last segment (21 -> 24 h) is flat at C(21)
    held = m.auc_per_interval(GRID, CONC, DOSES, method="log")
    assert held[0, 0] == pytest.approx(m.auc(GRID, CONC, 0, 21, "log")[0] + 3 * CONC[0, 7], rel=1e-13)


def test_per_interval_cmax_cmin_and_end_between_grid_points():
    cmaxes = m.per_interval(m.cmax, GRID, CONC, DOSES, conc_before=PRE)
    assert cmaxes[0] == pytest.approx(PRE[0] + 10)
    cmins = m.per_interval("cmin", GRID, CONC, DOSES, conc_before=PRE)
    assert cmins[0, :2] == pytest.approx(PRE[0, 1:])
    # the last interval may end between grid points
    per = m.auc_per_interval(GRID, CONC, DOSES, end=60.5, method="log", conc_before=PRE)
    assert per.shape == (1, 3)
    assert per[0, 2] == pytest.approx((PRE[0, 2] + 10) / K * (1 - math.exp(-12.5 * K)), rel=1e-12)


def test_cmin_over_several_intervals_counts_the_pre_dose_values():
    assert m.cmin(GRID, CONC, 0, 72, dose_times=DOSES, conc_before=PRE)[0] == pytest.approx(PRE[0, 1])
    # a window that ends at a dose ends on the pre-dose value
    assert m.cmax(GRID, CONC, 12, 24, dose_times=DOSES, conc_before=PRE)[0] == pytest.approx(
        10 * math.exp(-1.2))


def test_longest_time_above_per_interval_and_runs_across_a_dose():
    thr = 4.0
    longest = m.longest_time_above_per_interval(GRID, CONC, thr, DOSES, method="log", conc_before=PRE)
    total = m.time_above_per_interval(GRID, CONC, thr, DOSES, method="log", conc_before=PRE)
    exact = np.log((PRE[0] + 10) / thr) / K        # one run from each dose down to 4 mg/L
    assert longest[0] == pytest.approx(exact, rel=1e-12)
    assert total[0] == pytest.approx(exact, rel=1e-12)
    # at 1 mg/L (below every trough after the first dose) the run from 0 h never breaks
    whole = m.longest_time_above(GRID, CONC, 0.3, method="log", dose_times=DOSES, conc_before=PRE)
    assert whole[0] == pytest.approx(72.0)
    # but a target "at or above 4 mg/L for >= 12 h after each dose" holds in every interval
    assert (longest >= 9).all()


def test_dose_times_must_be_on_the_grid():
    with pytest.raises(MetricsError, match=r"dose_times\[1\]: got 25.0; a dose time inside the output grid"):
        m.trough(GRID, CONC, [0, 25])
    # doses after the last output time are ignored
    assert m.trough(GRID, CONC, [0, 24, 100]).shape == (1, 2)


# ---------------------------------------------------------------------------
# ratios, percentiles, summaries
# ---------------------------------------------------------------------------

def test_ratios():
    t = np.array([0.0, 1, 2])
    plasma = np.array([[0.0, 10, 5], [0.0, 0, 0]])
    csf = np.array([[0.0, 1, 1], [0.0, 1, 1]])
    r = m.auc_ratio(t, csf, plasma)
    assert r[0] == pytest.approx((0.5 + 1) / (5 + 7.5))
    assert np.isnan(r[1])
    cr = m.conc_ratio(t, csf, plasma, [1, 2])
    assert cr.shape == (2, 2)
    assert cr[0] == pytest.approx([0.1, 0.2])
    assert m.ratio([1, 2], [0, 4]) == pytest.approx([np.nan, 0.5], nan_ok=True)
    with pytest.raises(MetricsError, match="conc_den"):
        m.auc_ratio(t, csf, plasma[:1])


def test_percentiles_and_fraction_reaching():
    v = np.arange(101.0)[:, None] * [1, 2]
    p = m.percentiles(v)
    assert p.shape == (3, 2)
    assert p[:, 0] == pytest.approx([5, 50, 95])
    v[0, 0] = np.nan
    assert m.percentiles(v, q=[50])[0, 0] == pytest.approx(50.5)
    assert np.isnan(m.percentiles(v, q=[50], ignore_nan=False)[0, 0])
    assert m.fraction_reaching(np.array([True, False, True, True])) == 0.75
    assert m.fraction_reaching(v[:, 1] >= 100) == pytest.approx(101 // 2 / 101, abs=0.01)
    with pytest.raises(MetricsError, match="q"):
        m.percentiles(v, q=[101])
    with pytest.raises(MetricsError, match="boolean"):
        m.fraction_reaching(np.array([0.5, 1.0]))


def test_summarize_per_interval_matches_the_functions():
    conc3 = np.stack([CONC, 0.1 * CONC], axis=2).repeat(3, axis=0)          # (3, T, 2)
    pre3 = np.stack([PRE, 0.1 * PRE], axis=2).repeat(3, axis=0)
    df = m.summarize(GRID, conc3, DOSES, threshold=1.0, compartments=["plasma", "csf"],
                     subjects=[10, 11, 12], conc_before=pre3, method="log")
    assert isinstance(df, pd.DataFrame) and len(df) == 3 * 2 * 3
    assert list(df.columns[:6]) == ["subject", "compartment", "interval", "start", "end", "cmax"]
    for col in ("tmax", "cmin", "auc", "trough", "time_above", "longest_time_above", "conc_unit", "auc_unit"):
        assert col in df.columns
    row = df[(df.subject == 11) & (df.compartment == "csf") & (df.interval == 1)].iloc[0]
    assert (row.start, row.end) == (24, 48)
    assert row.auc == pytest.approx(m.auc_per_interval(GRID, conc3, DOSES, method="log", conc_before=pre3)[1, 1, 1])
    assert row.trough == pytest.approx(0.1 * PRE[0, 2])
    assert row.cmax == pytest.approx(0.1 * (PRE[0, 1] + 10))
    assert row.time_above == pytest.approx(np.log((PRE[0, 1] + 10) / 10) / K)
    assert row.conc_unit == "mg/L" and row.auc_unit == "mg*h/L" and row.time_unit == "h"


def test_summarize_whole_window_and_units():
    conc = np.array([[0.0, 4.0, 0.0], [0.0, 2.0, 0.0]])
    df = m.summarize(TRI_T, conc, compartments="csf", unit="umol/L", mw=500.0)
    assert list(df.subject) == [0, 1] and list(df.compartment) == ["csf", "csf"]
    assert df.cmax.tolist() == pytest.approx([8.0, 4.0])        # 4 mg/L = 8 umol/L at 500 g/mol
    assert df.auc.tolist() == pytest.approx([16.0, 8.0])
    assert df.auc_unit.iloc[0] == "umol*h/L"
    with pytest.raises(MetricsError, match="compartments"):
        m.summarize(TRI_T, conc, compartments=["a", "b"])
    with pytest.raises(MetricsError, match="start.*dose_times"):
        m.summarize(TRI_T, conc, dose_times=[0], start=1)


# ---------------------------------------------------------------------------
# errors name the argument, the value and the rule
# ---------------------------------------------------------------------------

def test_errors():
    with pytest.raises(MetricsError, match=r"conc.shape\[1\]: got 4; must equal len\(times\) = 3"):
        m.auc(TRI_T, np.zeros((2, 4)))
    with pytest.raises(MetricsError, match=r"conc: got 'array of shape \(3,\)'"):
        m.auc(TRI_T, np.zeros(3))
    with pytest.raises(MetricsError, match=r"times\[2\]: got 1.0; times must be increasing"):
        m.auc([0, 2, 1], np.zeros((1, 3)))
    bad = TRI_C.copy()
    bad[0, 1] = np.nan
    with pytest.raises(MetricsError, match=r"conc\[0, 1\]: got nan; must be finite"):
        m.cmax(TRI_T, bad)
    with pytest.raises(MetricsError, match=r"end: got 5; must lie within the output grid \[0, 4\] h"):
        m.auc(TRI_T, TRI_C, 0, 5)
    with pytest.raises(MetricsError, match=r"end: got 1; must be >= start \(2 h\)"):
        m.auc(TRI_T, TRI_C, 2, 1)
    with pytest.raises(MetricsError, match=r"threshold: got -1.0; must be >= 0"):
        m.time_above(TRI_T, TRI_C, -1.0)
    with pytest.raises(MetricsError, match=r"method: got 'lin-up'.*allowed: linear, linear-up/log-down, log"):
        m.auc(TRI_T, TRI_C, method="lin-up")
    with pytest.raises(MetricsError, match=r"conc_before: got 'array of shape \(1, 2\)'"):
        m.trough(GRID, CONC, DOSES, conc_before=np.zeros((1, 2)))
    with pytest.raises(MetricsError, match="metric"):
        m.per_interval("cmaks", GRID, CONC, DOSES)
    assert issubclass(MetricsError, PkcsfError) and issubclass(MetricsError, ValueError)


# ---------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------

METHOD = st.sampled_from(m.METHODS)


@st.composite
def profiles(draw, n_subjects=3, n_cmt=None):
    n_t = draw(st.integers(2, 12))
    steps = draw(arrays(float, n_t - 1, elements=st.floats(0.05, 10)))
    times = np.concatenate([[0.0], np.cumsum(steps)])
    shape = (n_subjects, n_t) if n_cmt is None else (n_subjects, n_t, n_cmt)
    conc = draw(arrays(float, shape, elements=st.one_of(st.just(0.0), st.floats(0.0, 100.0))))
    return times, conc


@settings(max_examples=60, deadline=None)
@given(data=profiles(), method=METHOD, u=st.tuples(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1)))
def test_auc_is_additive_over_adjacent_windows(data, method, u):
    times, conc = data
    a, b, c = sorted(times[0] + np.array(u) * (times[-1] - times[0]))
    whole = m.auc(times, conc, a, c, method)
    parts = m.auc(times, conc, a, b, method) + m.auc(times, conc, b, c, method)
    np.testing.assert_allclose(parts, whole, rtol=1e-9, atol=1e-9)
    assert (whole >= -1e-12).all()
    cum = m.auc_cumulative(times, conc, method)
    np.testing.assert_allclose(cum[:, -1], m.auc(times, conc, method=method), rtol=1e-12, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(data=profiles(), method=METHOD, thr=st.tuples(st.floats(0, 120), st.floats(0, 120)),
       u=st.tuples(st.floats(0, 1), st.floats(0, 1)))
def test_time_above_bounded_and_monotone_in_threshold(data, method, thr, u):
    times, conc = data
    s, e = sorted(times[0] + np.array(u) * (times[-1] - times[0]))
    lo, hi = sorted(thr)
    above_lo = m.time_above(times, conc, lo, s, e, method=method)
    above_hi = m.time_above(times, conc, hi, s, e, method=method)
    tol = 1e-9 * max(1.0, times[-1])
    assert (above_lo >= -tol).all() and (above_lo <= e - s + tol).all()
    assert (above_hi <= above_lo + tol).all()
    longest = m.longest_time_above(times, conc, lo, s, e, method=method)
    assert (longest <= above_lo + tol).all() and (longest >= -tol).all()
    # when the curve never dips below the threshold, the run spans the window
    full = m.cmin(times, conc, s, e, method=method) >= lo
    np.testing.assert_allclose(longest[full], e - s, rtol=1e-12, atol=tol)
    np.testing.assert_allclose(above_lo[full], e - s, rtol=1e-12, atol=tol)


@settings(max_examples=40, deadline=None)
@given(data=profiles(n_cmt=3), method=METHOD, u=st.tuples(st.floats(0, 1), st.floats(0, 1)),
       thr=st.floats(0, 100))
def test_3d_input_equals_each_compartment_as_2d(data, method, u, thr):
    times, conc = data
    s, e = sorted(times[0] + np.array(u) * (times[-1] - times[0]))
    for fn, args in [(m.cmax, ()), (m.tmax, ()), (m.cmin, ()), (m.auc, ())]:
        full = fn(times, conc, s, e, method=method) if fn is not m.auc else fn(times, conc, s, e, method)
        assert full.shape == (conc.shape[0], 3)
        for k in range(3):
            one = fn(times, conc[:, :, k], s, e, method=method) if fn is not m.auc else fn(
                times, conc[:, :, k], s, e, method)
            # equal up to summation order (numpy sums strided axes differently)
            np.testing.assert_allclose(full[:, k], one, rtol=1e-13, atol=1e-13)
    for fn in (m.time_above, m.longest_time_above):
        full = fn(times, conc, thr, s, e, method=method)
        for k in range(3):
            np.testing.assert_allclose(full[:, k], fn(times, conc[:, :, k], thr, s, e, method=method),
                                       rtol=1e-13, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(data=profiles(n_subjects=4), method=METHOD)
def test_batch_equals_one_subject_at_a_time_and_blocks_do_not_matter(data, method):
    times, conc = data
    batch = m.auc(times, conc, method=method)
    longest = m.longest_time_above(times, conc, 10.0, method=method)
    for i in range(conc.shape[0]):
        assert m.auc(times, conc[i:i + 1], method=method)[0] == batch[i]
    old = curve._BLOCK_BYTES
    try:
        curve._BLOCK_BYTES = 1                                   # one subject per block
        np.testing.assert_array_equal(m.auc(times, conc, method=method), batch)
        np.testing.assert_array_equal(m.longest_time_above(times, conc, 10.0, method=method), longest)
    finally:
        curve._BLOCK_BYTES = old


def test_summarize_peak_memory_is_a_small_multiple_of_the_input():
    import tracemalloc
    rng = np.random.default_rng(0)
    t = np.linspace(0, 96, 193)
    conc = rng.uniform(0, 5, (3000, t.size, 2))
    tracemalloc.start()
    try:
        m.summarize(t, conc, np.arange(0, 96, 24.0), threshold=2.0, method="log")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * conc.nbytes
