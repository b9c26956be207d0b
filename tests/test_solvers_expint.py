"""The exponential Runge-Kutta solver (``solver="expint"``, pkcsf/solvers/expint.py).

* P2 (oral doses, saturable CSF efflux well below Km) against the Radau reference (tests/data subset):
  within the peers' class at the peer tolerances, < 1e-6 at the pkcsf defaults;
* linear models (N = 0) are solved exactly: equal to the exact solver to ~1e-12 (P1, P2 without the
  saturable term, an infusion crossing sample times);
* physics: mass balance on P2 (a closed model: every dosed mg is somewhere);
* saturated elimination (Km 100x smaller on P2; a two-compartment model dosed 5x above Km): the error
  control shrinks the steps and the result matches Rodas5P at rtol 1e-10 / DOP853;
* the fixed-step order is 4 (the Hochbruck-Ostermann tableau);
* failures: a subject out of steps reports ``MAX_STEPS`` with NaN outputs from there on.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_reference import HOURS, params, reference_errors, regimen
from test_solvers import (
    MM,
    MM_DOSE,
    ONE,
    fitted_slope,
    infusion_exact,
    mm_model,
    mm_reference,
    one_compartment,
    rel_to_peak,
)

import pkcsf as pk
from pkcsf.solvers import resolve_solver

PEER = dict(rtol=1e-6, atol=1e-9)
DAY3 = np.arange(0, 73.0)        # three days of P2: three doses and their transients


def test_names():
    for name in ("expint", "exprk4", "exponential"):
        assert resolve_solver(name) == "expint"


# ---------------------------------------------------------------- reference problem P2
@pytest.mark.parametrize("tol, bound", [({}, 1e-6), (PEER, 5e-4)])
def test_p2_against_the_reference(tol, bound):
    # peers at PEER (benchmarks/bench_adaptive.py): rodas5p 1.1e-4, the Numba RK45 port 1.0e-2
    res = pk.simulate("reference_p2", regimen("P2"), params("P2"), times=HOURS, solver="expint", **tol)
    assert res.solver == "expint" and (res.status == 0).all()
    assert res.stats["nlu"] == 0
    errs = reference_errors("P2", res)
    assert errs["max"] <= bound, errs
    # most steps are one output interval long (the cached exp(L h) of the hour)
    assert res.stats["steps"] <= (2.5 if tol else 20.0) * 672 * 100


def test_p2_mass_balance():
    sub = params("P2").iloc[:6]
    res = pk.simulate("reference_p2", regimen("P2"), sub, times=HOURS, solver="expint")
    names = res.names
    A = res.amounts
    mass = sum(A[:, :, names.index(s)] for s in ("gut_depot", "central", "peripheral", "csf", "eliminated"))
    n_doses = np.searchsorted(np.arange(0, 672, 24.0), HOURS, side="right")
    dosed = (sub["F"] * sub["DOSE_AMT"]).to_numpy()[:, None] * n_doses[None, :]
    np.testing.assert_allclose(mass, dosed, rtol=1e-12)


# ---------------------------------------------------------------- linear models: exact
def test_linear_p1_equals_the_exact_solver():
    sub = params("P1").iloc[:4]
    reg = pk.Dose(12.0, "icv").repeat(every=84, n=8)
    ex = pk.simulate("reference_p1", reg, sub, times=HOURS, solver="exact")
    ei = pk.simulate("reference_p1", reg, sub, times=HOURS, solver="expint")
    assert (ei.status == 0).all()
    assert ei.stats["steps"] == 4 * 672 and ei.stats["rejected"] == 0 and ei.stats["nfev"] == 0
    for i in range(4):
        assert rel_to_peak(ei.amounts[i], ex.amounts[i]) <= 1e-12


def test_linear_p2_without_the_saturable_term_equals_the_exact_solver():
    sub = params("P2").iloc[:3].assign(VMAX=0.0)
    ex = pk.simulate("reference_p2", regimen("P2"), sub, times=HOURS, solver="exact")
    ei = pk.simulate("reference_p2", regimen("P2"), sub, times=HOURS, solver="expint")
    for i in range(3):
        assert rel_to_peak(ei.amounts[i], ex.amounts[i]) <= 1e-12


def test_infusion_crossing_sample_times_is_exact():
    times = np.arange(0, 12.01, 0.5)
    res = pk.simulate(one_compartment(), pk.Dose(30.0, "iv", 0.25, duration=1.5), ONE, times=times, solver="expint")
    assert rel_to_peak(res.concentration("central")[0], infusion_exact(times, 20.0, 0.25, 1.75, ONE["CL"], ONE["V"])) <= 1e-12


# ---------------------------------------------------------------- saturated elimination
def test_saturated_p2_matches_rodas5p():
    """Km and Vmax 100x smaller: C_csf up to ~9x Km, N is no longer small (Km alone 100x smaller does not
    saturate: the efflux clearance grows with it); the steps shrink and the error falls with rtol."""
    sub = params("P2").iloc[:2].assign(KM=lambda d: d["KM"] / 100, VMAX=lambda d: d["VMAX"] / 100)
    reg = pk.Dose("DOSE_AMT", "oral").repeat(every=24, n=3)
    ro = pk.simulate("reference_p2", reg, sub, times=DAY3, solver="rodas5p", rtol=1e-10, atol=1e-14)
    Cr = ro.concentrations()[:, :, :5]
    assert (Cr[:, :, 3] / sub["KM"].to_numpy()[:, None]).max() > 5.0
    mask = Cr > 1e-6 * Cr.max(axis=1, keepdims=True)
    errs = []
    for rtol in (1e-7, 1e-9):
        ei = pk.simulate("reference_p2", reg, sub, times=DAY3, solver="expint", rtol=rtol, atol=rtol * 1e-5)
        assert (ei.status == 0).all()
        assert ei.stats["steps"] > 10 * 72 * 2          # much shorter steps than the hour of P2
        C = ei.concentrations()[:, :, :5]
        errs.append((np.abs(C - Cr)[mask] / Cr[mask]).max())
    assert errs[0] <= 20 * 1e-7 and errs[1] <= 20 * 1e-9, errs


def test_saturated_two_compartment_model_against_dop853():
    times = np.linspace(0, 10, 41)
    res = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=times, solver="expint", rtol=1e-9, atol=1e-12)
    assert (res.status == 0).all()
    assert rel_to_peak(res.amounts[0], mm_reference(times)) <= 1e-7


def test_fixed_step_order_is_4():
    """Steps forced by max_step (one interval 0..10, steps 10 / 2^j; a loose tolerance never rejects)."""
    times = np.array([0.0, 10.0])
    ns = np.array([64, 128, 256])      # h |rho'| <= 0.5 (the limit on steps for an explicit N) from n = 40
    errs = []
    for n in ns:
        res = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=times, solver="expint",
                          rtol=0.1, atol=1.0, max_step=10.0 / n)
        assert res.stats["steps"] == n and res.stats["rejected"] == 0
        errs.append(np.abs(res.amounts[0, -1] - mm_reference(times)[-1]).max())
    order = fitted_slope(10.0 / ns, errs)
    assert abs(order - 4.0) <= 0.5, (order, errs)


# ---------------------------------------------------------------- failures and determinism
def test_too_many_steps_is_reported_never_partial():
    sub = params("P2").iloc[:2]
    with pytest.warns(Warning):
        res = pk.simulate("reference_p2", regimen("P2"), sub, times=HOURS, solver="expint", max_steps=200)
    assert (res.status == pk.Status.MAX_STEPS).all()
    A = res.amounts
    assert np.isnan(A[:, -1]).all()
    for i in range(2):
        reached = np.isfinite(A[i]).all(axis=1)
        first_nan = int(np.argmin(reached))
        assert 0 < first_nan and not reached[first_nan:].any()


def test_a_failing_subject_does_not_touch_the_others():
    """One subject saturated (many short steps, out of steps), the other two solved as on their own."""
    sub = params("P2").iloc[:3].copy()
    sub.loc[1, "KM"] = sub.loc[1, "KM"] / 1e4
    reg = pk.Dose("DOSE_AMT", "oral").repeat(every=24, n=3)
    with pytest.warns(Warning):
        res = pk.simulate("reference_p2", reg, sub, times=DAY3, solver="expint", max_steps=500)
    assert list(res.status) == [0, pk.Status.MAX_STEPS, 0]
    solo = pk.simulate("reference_p2", reg, sub.iloc[[0, 2]], times=DAY3, solver="expint", max_steps=500)
    np.testing.assert_array_equal(res.amounts[[0, 2]], solo.amounts)


def test_frame_of_subjects_equals_solo_runs():
    sub = pd.concat([params("P2").iloc[:2]] * 2, ignore_index=True)
    res = pk.simulate("reference_p2", regimen("P2"), sub, times=HOURS, solver="expint")
    np.testing.assert_array_equal(res.amounts[:2], res.amounts[2:])


def test_infusion_irregular_times_and_troughs_match_rodas5p():
    """Michaelis-Menten with an infusion (the phi_1 path), irregular output times (several ladders) and a
    time listed twice at a dose (pre-dose trough, then the value after): as Rodas5P at tight tolerances."""
    times = np.sort(np.concatenate([[0.0, 0.3, 1.7, 2.0, 2.0, 3.1, 5.0, 6.0, 6.0, 7.25], np.linspace(8, 24, 7)]))
    reg = pk.Dose(MM_DOSE, "central").repeat(every=6, n=2) + pk.Dose(8.0, "central", 2.2, duration=2.9)
    kw = dict(times=times, rtol=1e-10, atol=1e-13)
    ro = pk.simulate(mm_model(), reg, MM, solver="rodas5p", **kw)
    ei = pk.simulate(mm_model(), reg, MM, solver="expint", **kw)
    assert (ei.status == 0).all()
    assert rel_to_peak(ei.amounts[0], ro.amounts[0]) <= 1e-8
    k = int(np.flatnonzero(times == 6.0)[0])
    assert ei.amounts[0, k + 1, 0] - ei.amounts[0, k, 0] == pytest.approx(MM_DOSE, rel=1e-12)
