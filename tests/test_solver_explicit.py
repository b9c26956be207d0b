"""The explicit Dormand–Prince 5(4) solver with switching to Rodas5P (``solver="dopri5"``, pkcsf/solvers/explicit.py).

* P2 (oral doses, saturable CSF efflux) against the Radau reference (tests/data subset), at the pkcsf
  defaults and at the peer tolerances (where it must not be less accurate than a port of SciPy's RK45
  with the peers' absolute tolerance on amounts: 1.0e-2 in benchmarks/bench_adaptive.py);
* closed forms (IV bolus, Bateman, an infusion crossing sample times) and the fixed-step order 5;
* physics: mass balance (P2), dose linearity (P1);
* a stiff model: the stiffness test hands the subject to Rodas5P, the result matches the exact
  solution and Rodas5P, and costs what Rodas5P costs (not millions of explicit evaluations);
* a subject that runs out of steps reports ``MAX_STEPS`` and NaN outputs from there, never a partial result.
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
    STIFF,
    fitted_slope,
    infusion_exact,
    mm_model,
    mm_reference,
    one_compartment,
    rel_to_peak,
    stiff_model,
)

import pkcsf as pk
from pkcsf.solvers import resolve_solver

PEER = dict(rtol=1e-6, atol=1e-9)


def test_names():
    for name in ("dopri5", "auto-switch", "rk45", "explicit"):
        assert resolve_solver(name) == "dopri5"


# ---------------------------------------------------------------- reference problem P2
@pytest.mark.parametrize("tol, bound", [({}, 1e-5), (PEER, 5e-3)])
def test_p2_against_the_reference(tol, bound):
    res = pk.simulate("reference_p2", regimen("P2"), params("P2"), times=HOURS, solver="dopri5", **tol)
    assert res.solver == "dopri5" and (res.status == 0).all()
    assert res.stats["nlu"] == 0          # P2 is not stiff for an explicit method at these tolerances
    errs = reference_errors("P2", res)
    assert errs["max"] <= bound, errs


def test_p2_mass_balance():
    sub = params("P2").iloc[:6]
    res = pk.simulate("reference_p2", regimen("P2"), sub, times=HOURS, solver="dopri5")
    names = res.names
    A = res.amounts
    mass = sum(A[:, :, names.index(s)] for s in ("gut_depot", "central", "peripheral", "csf", "eliminated"))
    n_doses = np.searchsorted(np.arange(0, 672, 24.0), HOURS, side="right")
    dosed = (sub["F"] * sub["DOSE_AMT"]).to_numpy()[:, None] * n_doses[None, :]
    np.testing.assert_allclose(mass, dosed, rtol=1e-9)


# ---------------------------------------------------------------- closed forms and order
def test_closed_forms():
    times = np.linspace(0, 36, 145)
    k, ka, F, V = ONE["CL"] / ONE["V"], ONE["KA"], ONE["F"], ONE["V"]
    res = pk.simulate(one_compartment(), pk.Dose(100.0, "iv"), ONE, times=times, solver="dopri5")
    assert rel_to_peak(res.concentration("central")[0], 100.0 / V * np.exp(-k * times)) <= 1e-7
    res = pk.simulate(one_compartment(), pk.Dose(50.0, "oral").repeat(every=12, n=3), ONE, times=times,
                      solver="dopri5")
    exact = sum(np.where(times >= s, F * 50.0 * ka / (V * (ka - k))
                         * (np.exp(-k * np.clip(times - s, 0, None)) - np.exp(-ka * np.clip(times - s, 0, None))), 0)
                for s in (0.0, 12.0, 24.0))
    assert rel_to_peak(res.concentration("central")[0], exact) <= 1e-7
    times = np.arange(0, 12.01, 0.5)
    res = pk.simulate(one_compartment(), pk.Dose(30.0, "iv", 0.25, duration=1.5), ONE, times=times, solver="dopri5")
    assert rel_to_peak(res.concentration("central")[0], infusion_exact(times, 20.0, 0.25, 1.75, ONE["CL"], V)) <= 1e-7


def test_fixed_step_order_is_5():
    """Steps forced by max_step (a loose tolerance never rejects): global error ~ h^5 (tableau check)."""
    T = 10.0
    ns = np.array([40, 80, 160, 320])   # asymptotic range (at h = 0.5 the error still falls faster)
    errs = []
    for n in ns:
        times = np.linspace(0, T, n + 1)
        res = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=times, solver="dopri5",
                          rtol=0.1, atol=1.0, max_step=T / n * (1 + 1e-12))
        assert res.stats["steps"] in (n, n + 1) and res.stats["rejected"] == 0
        errs.append(np.abs(res.amounts[0] - mm_reference(times)).max())
    order = fitted_slope(T / ns, errs)
    assert abs(order - 5.0) <= 0.5, (order, errs)


def test_dense_output_between_steps_is_accurate():
    """Outputs between steps come from the quartic dense output: 1,000 outputs cost no extra step."""
    fine = np.linspace(0, 10, 1001)
    coarse = np.array([0.0, 10.0])
    a = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=fine, solver="dopri5", rtol=1e-9, atol=1e-12)
    b = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=coarse, solver="dopri5", rtol=1e-9, atol=1e-12)
    assert a.stats["steps"] == b.stats["steps"]
    assert np.abs(a.amounts[0] - mm_reference(fine)).max() / MM_DOSE <= 1e-7


# ---------------------------------------------------------------- physics
def test_p1_dose_linearity():
    sub = params("P1").iloc[:4]
    one = pk.simulate("reference_p1", pk.Dose(12.0, "icv").repeat(every=84, n=8), sub, times=HOURS, solver="dopri5")
    two = pk.simulate("reference_p1", pk.Dose(24.0, "icv").repeat(every=84, n=8), sub, times=HOURS, solver="dopri5")
    ex = pk.simulate("reference_p1", pk.Dose(12.0, "icv").repeat(every=84, n=8), sub, times=HOURS, solver="exact")
    C1, C2, Ce = one.concentrations(), two.concentrations(), ex.concentrations()
    mask = Ce > 1e-6 * Ce.max(axis=1, keepdims=True)
    assert (np.abs(C2 - 2 * C1)[mask] / (2 * C1[mask])).max() <= 1e-6
    assert (np.abs(C1 - Ce)[mask] / Ce[mask]).max() <= 1e-5


# ---------------------------------------------------------------- stiffness switch
@pytest.mark.parametrize("vmax", [0.0, 0.5])
def test_stiff_model_switches_to_rodas5p(vmax):
    # fastest rate Q/VT = 1e4 /h over 240 h: explicit steps alone would need millions of evaluations
    times = np.arange(0, 241.0)
    reg = pk.Dose(100.0, "central").repeat(every=24, n=5)
    p = dict(STIFF, VMAX=vmax)
    res = pk.simulate(stiff_model(), reg, p, times=times, solver="dopri5")
    ro = pk.simulate(stiff_model(), reg, p, times=times, solver="rodas5p")
    assert (res.status == 0).all()
    assert res.stats["nlu"] > 0 and res.stats["nfev"] <= 2 * ro.stats["nfev"] + 2000, (res.stats, ro.stats)
    assert rel_to_peak(res.amounts[0], ro.amounts[0]) <= 1e-7
    if vmax == 0.0:
        ex = pk.simulate(stiff_model(), reg, p, times=times, solver="exact")
        assert rel_to_peak(res.amounts[0], ex.amounts[0]) <= 1e-7


def test_stiff_subjects_switch_alone():
    """In one batch, only the stiff subject goes to Rodas5P; the others match their own solo runs."""
    times = np.arange(0, 49.0)
    reg = pk.Dose(100.0, "central").repeat(every=24, n=2)
    pop = pd.DataFrame([dict(STIFF, VT=1.0, Q=0.1), dict(STIFF), dict(STIFF, VT=1.0, Q=0.1)])
    res = pk.simulate(stiff_model(), reg, pop, times=times, solver="dopri5")
    solo = pk.simulate(stiff_model(), reg, pop.iloc[[0]], times=times, solver="dopri5")
    assert solo.stats["nlu"] == 0
    np.testing.assert_array_equal(res.amounts[0], solo.amounts[0])
    np.testing.assert_array_equal(res.amounts[0], res.amounts[2])


# ---------------------------------------------------------------- failures
def test_too_many_steps_is_reported_never_partial():
    sub = params("P2").iloc[:2]
    with pytest.warns(Warning):
        res = pk.simulate("reference_p2", regimen("P2"), sub, times=HOURS, solver="dopri5", max_steps=200)
    assert (res.status == pk.Status.MAX_STEPS).all()
    A = res.amounts
    # every output the solver did not reach is NaN; the last one in particular
    assert np.isnan(A[:, -1]).all()
    for i in range(2):
        reached = np.isfinite(A[i]).all(axis=1)
        first_nan = int(np.argmin(reached))
        assert not reached[first_nan:].any()
