"""The solvers against closed forms, the matrix exponential and their declared order.

* ``expm``/``expm_phi`` (Numba, Padé 13) against ``scipy.linalg.expm``;
* one-compartment IV bolus, oral (Bateman), an infusion that crosses sample
  times and multiple dosing (superposition) against their analytic solutions,
  for every solver;
* the adaptive solvers against the exact one on linear models;
* convergence order: Rodas5P with steps forced by ``max_step`` (fixed-step
  global error ~ h^5), and both adaptive methods through the slope of error
  against the number of steps as the tolerance tightens (~ n^-5), plus
  tolerance proportionality (error ~ rtol);
* the cost of a stiff case (bounds on right-hand-side evaluations);
* the quintic Hermite dense output of Rodas5P between steps.

Errors are relative to the peak (or tolerance-scaled) so that the bounds mean
the same thing for every case.
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy.integrate import solve_ivp

import pkcsf as pk
from pkcsf.solvers.linalg import expm, expm_phi

ADAPTIVE = ["rodas5p", "radau"]
ALL = ["exact", *ADAPTIVE]


# ----------------------------------------------------------------- models
def one_compartment():
    """Central (V) with clearance CL; an IV site and an oral site (gut depot, KA, F)."""
    return pk.Model(
        "one_cpt",
        compartments=[pk.Compartment("gut"), pk.Compartment("central", "V")],
        transfers=[pk.first_order("gut", "central", "KA"), pk.elimination("central", "CL")],
        sites=[pk.Site("iv", (("central", 1.0),)), pk.Site("oral", (("gut", 1.0),), bioavailability="F")],
        parameters=["KA", "F", "CL", "V"],
    )


ONE = dict(KA=1.3, F=0.7, CL=2.0, V=10.0)   # k = 0.2 1/h


def mm_model():
    """Central (V) with saturable elimination and a peripheral exchange: smooth and nonlinear."""
    return pk.Model(
        "mm_two_cpt",
        compartments=[pk.Compartment("central", "V"), pk.Compartment("periph", "VP")],
        transfers=[pk.michaelis_menten("central", None, "VMAX", "KM"), pk.exchange("central", "periph", "Q")],
        parameters=["V", "VMAX", "KM", "Q", "VP"],
    )


MM = dict(V=1.0, VMAX=4.0, KM=2.0, Q=1.0, VP=2.0)
MM_DOSE = 10.0


def mm_rhs(t, y):
    c, cp = y[0] / MM["V"], y[1] / MM["VP"]
    e = MM["VMAX"] * c / (MM["KM"] + c)
    return [-e - MM["Q"] * (c - cp), MM["Q"] * (c - cp), e]


def mm_reference(times):
    """Amounts (central, periph, eliminated) from DOP853 at rtol 1e-13."""
    sol = solve_ivp(mm_rhs, (0.0, times[-1]), [MM_DOSE, 0.0, 0.0], method="DOP853", rtol=1e-13, atol=1e-16,
                    t_eval=times)
    assert sol.success
    return sol.y.T


def rel_to_peak(C, C_exact):
    """max |C - C_exact| / peak(C_exact), over all times."""
    return float(np.max(np.abs(C - C_exact)) / np.max(np.abs(C_exact)))


def fitted_slope(x, y):
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


# -------------------------------------------------------- matrix exponential
def _random_matrices(seed=1):
    rng = np.random.default_rng(seed)
    mats = []
    for n in (1, 2, 3, 5, 7, 12):
        for scale in (1e-3, 0.5, 3.0, 40.0, 400.0):
            if scale <= 3.0:      # general matrices: exp grows like exp(||A||)
                mats.append(rng.standard_normal((n, n)) * scale)
            # a compartmental generator: nonnegative off-diagonal, columns summing to <= 0
            G = rng.exponential(scale, (n, n))
            np.fill_diagonal(G, 0.0)
            G[np.diag_indices(n)] = -G.sum(axis=0) - rng.exponential(scale, n) * (rng.random(n) < 0.5)
            mats.append(G)
    mats.append(np.zeros((4, 4)))
    mats.append(np.triu(np.ones((5, 5)), 1))        # nilpotent
    mats.append(np.array([[-1e4, 0.0], [1e4, -1e-4]]))   # stiff, widely separated rates
    return mats


@pytest.mark.parametrize("k", range(len(_random_matrices())))
def test_expm_matches_scipy(k):
    A = _random_matrices()[k]
    ref = scipy.linalg.expm(A)
    out = np.empty_like(A)
    expm(np.ascontiguousarray(A), out)
    scale = max(1.0, np.abs(ref).max())
    # Padé 13 with scaling and squaring: backward stable; allow growth with ||A|| through the squarings
    tol = 1e-13 * max(1.0, np.abs(A).sum(axis=0).max())
    assert np.abs(out - ref).max() / scale <= tol, (np.abs(out - ref).max() / scale, tol)


@pytest.mark.parametrize("k", range(0, len(_random_matrices()), 3))
@pytest.mark.parametrize("dt", [0.01, 1.0, 24.0])
def test_expm_phi_matches_scipy_block_exponential(k, dt):
    A = _random_matrices()[k]
    n = A.shape[0]
    M = np.zeros((2 * n, 2 * n))
    M[:n, :n] = A * dt
    M[:n, n:] = np.eye(n) * dt
    with np.errstate(all="ignore"):
        R = scipy.linalg.expm(M)
    if not np.isfinite(R).all():        # a general matrix with exp(A dt) beyond float64: not a PK case
        pytest.skip("exp(A dt) overflows")
    E = np.empty((n, n))
    Phi = np.empty((n, n))
    expm_phi(np.ascontiguousarray(A), dt, E, Phi)
    for got, ref in ((E, R[:n, :n]), (Phi, R[:n, n:])):
        scale = max(1.0, np.abs(ref).max())
        assert np.abs(got - ref).max() / scale <= 1e-12 * max(1.0, np.abs(M).sum(axis=0).max())


def test_expm_phi_is_the_integral_of_the_exponential():
    # for invertible A: Phi = A^-1 (exp(A dt) - I); for A = 0: Phi = dt I
    rng = np.random.default_rng(7)
    A = -np.eye(4) * 2.0 + rng.standard_normal((4, 4)) * 0.3
    E, Phi = np.empty((4, 4)), np.empty((4, 4))
    expm_phi(A, 1.7, E, Phi)
    np.testing.assert_allclose(Phi, np.linalg.solve(A, E - np.eye(4)), rtol=1e-12, atol=1e-14)
    expm_phi(np.zeros((3, 3)), 2.5, E[:3, :3].copy(), Phi3 := np.empty((3, 3)))
    np.testing.assert_allclose(Phi3, 2.5 * np.eye(3), rtol=1e-15)


# -------------------------------------------------------------- closed forms
@pytest.mark.parametrize("solver", ALL)
def test_iv_bolus_one_compartment(solver):
    times = np.linspace(0, 48, 97)
    res = pk.simulate(one_compartment(), pk.Dose(100.0, "iv"), ONE, times=times, solver=solver)
    k = ONE["CL"] / ONE["V"]
    exact = 100.0 / ONE["V"] * np.exp(-k * times)
    err = rel_to_peak(res.concentration("central")[0], exact)
    assert err <= (1e-13 if solver == "exact" else 1e-7), err
    # mass: what left the central compartment is in 'eliminated'
    np.testing.assert_allclose(res.amount("eliminated")[0], 100.0 * (1 - np.exp(-k * times)), rtol=0, atol=1e-6)


@pytest.mark.parametrize("solver", ALL)
def test_oral_bateman(solver):
    times = np.linspace(0, 36, 145)
    D = 50.0
    res = pk.simulate(one_compartment(), pk.Dose(D, "oral"), ONE, times=times, solver=solver)
    ka, k, F, V = ONE["KA"], ONE["CL"] / ONE["V"], ONE["F"], ONE["V"]
    exact = F * D * ka / (V * (ka - k)) * (np.exp(-k * times) - np.exp(-ka * times))
    err = rel_to_peak(res.concentration("central")[0], exact)
    assert err <= (1e-13 if solver == "exact" else 1e-7), err
    np.testing.assert_allclose(res.amount("gut")[0], F * D * np.exp(-ka * times), rtol=1e-7, atol=1e-12)


def infusion_exact(times, rate, t_on, t_off, CL, V):
    k = CL / V
    c_end = rate / CL * (1 - np.exp(-k * (t_off - t_on)))
    during = rate / CL * (1 - np.exp(-k * np.clip(times - t_on, 0, None)))
    after = c_end * np.exp(-k * (times - t_off))
    return np.where(times <= t_off, during, after)


@pytest.mark.parametrize("solver", ALL)
def test_infusion_crossing_sample_times(solver):
    # 30 mg over 1.5 h starting at 0.25 h: on and off between the half-hourly samples
    times = np.arange(0, 12.01, 0.5)
    res = pk.simulate(one_compartment(), pk.Dose(30.0, "iv", 0.25, duration=1.5), ONE, times=times, solver=solver)
    exact = infusion_exact(times, 20.0, 0.25, 1.75, ONE["CL"], ONE["V"])
    err = rel_to_peak(res.concentration("central")[0], exact)
    assert err <= (1e-13 if solver == "exact" else 1e-7), err
    assert res.concentration("central")[0, 0] == 0.0


@pytest.mark.parametrize("solver", ALL)
def test_multiple_oral_doses_superpose(solver):
    times = np.linspace(0, 120, 481)
    D, tau, n = 40.0, 12.0, 7
    res = pk.simulate(one_compartment(), pk.Dose(D, "oral").repeat(every=tau, n=n), ONE, times=times, solver=solver)
    ka, k, F, V = ONE["KA"], ONE["CL"] / ONE["V"], ONE["F"], ONE["V"]
    exact = np.zeros_like(times)
    for j in range(n):
        s = np.clip(times - j * tau, 0, None)
        exact += np.where(times >= j * tau,
                          F * D * ka / (V * (ka - k)) * (np.exp(-k * s) - np.exp(-ka * s)), 0.0)
    err = rel_to_peak(res.concentration("central")[0], exact)
    assert err <= (1e-12 if solver == "exact" else 1e-7), err


# ------------------------------------------------------- exact vs adaptive
def _p1_typical():
    import json
    from pathlib import Path

    spec = json.loads((Path(__file__).parent / "data" / "problems.json").read_text())
    return {k: v["value"] for k, v in spec["problems"]["it_linear"]["params"].items()}


@pytest.mark.parametrize("solver", ADAPTIVE)
@pytest.mark.parametrize("tol, bound", [((1e-8, 1e-12), 1e-6), ((1e-11, 1e-15), 1e-9)])
def test_adaptive_matches_exact_on_a_stiff_linear_model(solver, tol, bound):
    # P1 at typical values (time constants from minutes to weeks), with an infusion on top
    regimen = pk.Dose(12.0, "icv").repeat(every=84, n=4) + pk.Dose(200.0, "central", 10.0, duration=2.0)
    times = np.arange(0, 337.0, 0.5)
    ex = pk.simulate("reference_p1", regimen, _p1_typical(), times=times, solver="exact")
    ad = pk.simulate("reference_p1", regimen, _p1_typical(), times=times, solver=solver, rtol=tol[0], atol=tol[1])
    C, Ce = ad.concentrations()[0, :, :6], ex.concentrations()[0, :, :6]
    mask = Ce > 1e-6 * Ce.max(axis=0)
    err = float((np.abs(C - Ce)[mask] / Ce[mask]).max())
    assert err <= bound, err


# -------------------------------------------------------- convergence order
def test_rodas5p_fixed_step_order_is_5():
    """Steps forced by max_step (a loose rtol never rejects): global error ~ h^5."""
    T = 10.0
    ns = np.array([20, 40, 80, 160])
    errs = []
    for n in ns:
        h = T / n
        times = np.linspace(0, T, n + 1)
        res = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=times, solver="rodas5p",
                          rtol=0.1, atol=1.0, max_step=h * (1 + 1e-12))
        assert res.stats["steps"] in (n, n + 1) and res.stats["rejected"] == 0
        errs.append(np.abs(res.amounts[0] - mm_reference(times)).max())
    order = fitted_slope(T / ns, errs)
    assert abs(order - 5.0) <= 0.5, (order, errs)


@pytest.mark.parametrize("solver", ADAPTIVE)
def test_adaptive_order_from_work_precision(solver):
    """As the tolerance tightens, error ~ steps^-5 (order 5) and error ~ rtol (proportionality)."""
    times = np.linspace(0, 10, 11)
    ref = mm_reference(times)
    rtols = np.array([1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9, 1e-10])
    errs, steps = [], []
    for rtol in rtols:
        res = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=times, solver=solver,
                          rtol=rtol, atol=rtol * 1e-2)
        errs.append(np.abs(res.amounts[0] - ref).max() / MM_DOSE)
        steps.append(res.stats["steps"])
    errs, steps = np.array(errs), np.array(steps)
    assert (np.diff(errs) < 0).all() and (np.diff(steps) > 0).all(), (errs, steps)
    order = -fitted_slope(steps, errs)
    assert abs(order - 5.0) <= 0.5, (order, errs, steps)
    proportionality = fitted_slope(rtols, errs)
    assert 0.8 <= proportionality <= 1.3, (proportionality, errs)
    assert (errs <= 10 * rtols).all(), errs / rtols


# ------------------------------------------------------------------ stiffness
def stiff_model():
    """A plasma compartment exchanging with a tiny, fast tissue (rate 1e4 /h) and a slow deep one."""
    return pk.Model(
        "stiff",
        compartments=[pk.Compartment("central", "V"), pk.Compartment("tissue", "VT"), pk.Compartment("deep", "VD")],
        transfers=[pk.elimination("central", "CL"), pk.exchange("central", "tissue", "Q"),
                   pk.exchange("central", "deep", "QD"), pk.michaelis_menten("tissue", None, "VMAX", "KM")],
        parameters=["V", "CL", "VT", "Q", "VD", "QD", "VMAX", "KM"],
    )


STIFF = dict(V=10.0, CL=1.0, VT=1e-3, Q=10.0, VD=100.0, QD=0.05, VMAX=0.0, KM=1.0)


@pytest.mark.parametrize("solver, vmax, max_nfev", [("rodas5p", 0.0, 6000), ("rodas5p", 0.5, 7000),
                                                    ("radau", 0.0, 10000), ("radau", 0.5, 20000)])
def test_stiff_case_costs_few_rhs_evaluations(solver, vmax, max_nfev):
    # fastest rate Q/VT = 1e4 /h over 240 h: an explicit method needs millions of evaluations
    # (RK45 takes ~5e5 for the first 24 h at rtol 1e-8)
    times = np.arange(0, 241.0)
    regimen = pk.Dose(100.0, "central").repeat(every=24, n=5)
    p = dict(STIFF, VMAX=vmax)
    res = pk.simulate(stiff_model(), regimen, p, times=times, solver=solver)
    assert res.stats["nfev"] <= max_nfev, res.stats
    if vmax == 0.0:
        ex = pk.simulate(stiff_model(), regimen, p, times=times, solver="exact")
        assert rel_to_peak(res.amounts[0], ex.amounts[0]) <= 1e-7


# ------------------------------------------------------------- dense output
def test_rodas5p_dense_output_between_steps():
    """Outputs between steps come from the quintic Hermite interpolant; they do not force steps."""
    k = ONE["CL"] / ONE["V"]
    coarse = np.array([0.0, 24.0])
    fine = np.linspace(0.0, 24.0, 2401)
    a = pk.simulate(one_compartment(), pk.Dose(100.0, "iv"), ONE, times=coarse, solver="rodas5p")
    b = pk.simulate(one_compartment(), pk.Dose(100.0, "iv"), ONE, times=fine, solver="rodas5p")
    assert b.stats["steps"] == a.stats["steps"] < 100      # far fewer steps than outputs
    np.testing.assert_array_equal(a.amounts[0, -1], b.amounts[0, -1])
    exact = 100.0 / ONE["V"] * np.exp(-k * fine)
    err = rel_to_peak(b.concentration("central")[0], exact)
    assert err <= 1e-8, err


def test_rodas5p_dense_output_converges_with_the_steps():
    """With steps forced by max_step, the error half-way between steps falls like h^5 too."""
    T = 10.0
    errs = []
    hs = []
    for n in (20, 40, 80, 160):
        h = T / n
        mid = np.arange(n) * h + 0.5 * h
        res = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=mid, solver="rodas5p",
                          rtol=0.1, atol=1.0, max_step=h * (1 + 1e-12))
        errs.append(np.abs(res.amounts[0] - mm_reference(mid)).max())
        hs.append(h)
    order = fitted_slope(hs, errs)
    assert order >= 4.5, (order, errs)


@pytest.mark.parametrize("rtol", [1e-6, 1e-8, 1e-10])
def test_rodas5p_dense_output_error_is_like_the_step_error(rtol):
    # mid-step outputs are as accurate as the step ends, within a small factor
    times = np.linspace(0, 10, 1001)
    ref = mm_reference(times)
    res = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=times, solver="rodas5p",
                      rtol=rtol, atol=rtol * 1e-2)
    ends = pk.simulate(mm_model(), pk.Dose(MM_DOSE, "central"), MM, times=times[[0, -1]], solver="rodas5p",
                       rtol=rtol, atol=rtol * 1e-2)
    err_dense = np.abs(res.amounts[0] - ref).max() / MM_DOSE
    err_end = np.abs(ends.amounts[0, -1] - ref[-1]).max() / MM_DOSE
    assert err_dense <= max(10 * rtol, 1e-13), (err_dense, err_end)


# ------------------------------------------------- saturable elimination to zero
@pytest.mark.parametrize("solver", ADAPTIVE)
@pytest.mark.parametrize("dose", [0.01, 1.0, 10.0])
def test_michaelis_menten_elimination_down_to_zero(solver, dose):
    """A one-compartment Michaelis–Menten model eliminates the dose completely.

    Regression: with the rate clamped to 0 for negative concentrations (a kink
    at 0, and a Jacobian that disagreed with it below 0) Radau stalled in
    Newton failures and stopped at max_steps, and rounding-level negative
    amounts stayed negative.
    """
    m = pk.Model("mm1", compartments=[pk.Compartment("c", "V")],
                 transfers=[pk.michaelis_menten("c", None, "VMAX", "KM")], parameters=["V", "VMAX", "KM"])
    p = dict(V=0.05078125, VMAX=14.0, KM=0.03125)       # fast: first-order rate VMAX/(KM V) ~ 9000 /h at the end
    res = pk.simulate(m, pk.Dose(dose, "c"), p, times=np.array([0.0, 1.0, 96.0]), solver=solver)
    assert (res.status == 0).all() and res.stats["steps"] < 2000, res.stats
    assert abs(res.amount("c")[0, -1]) <= 1e-20 * dose
    assert res.amount("eliminated")[0, -1] == pytest.approx(dose, rel=1e-12)


# ------------------------------------------- model sizes around the padded fast path
@pytest.mark.parametrize("n", [1, 6, 7, 8, 12])
def test_exact_matches_adaptive_for_every_model_size(n):
    """A chain of n compartments (n + 1 states with 'eliminated'): the exact solver's
    8-wide fast path (up to 8 states) and its general path agree with Rodas5P."""
    comps = [pk.Compartment(f"c{i}", f"V{i}") for i in range(n)]
    transfers = [pk.exchange(f"c{i}", f"c{i + 1}", f"Q{i}") for i in range(n - 1)]
    transfers += [pk.elimination(f"c{n - 1}", "CL"), pk.flow("c0", None, "CL0")]
    params = {f"V{i}": 1.0 + 0.5 * i for i in range(n)} | {f"Q{i}": 2.0 / (1 + i) for i in range(n - 1)}
    params |= {"CL": 0.7, "CL0": 0.2}
    m = pk.Model(f"chain{n}", compartments=comps, transfers=transfers, parameters=list(params))
    reg = (pk.Dose(10.0, "c0").repeat(every=12, n=3) + pk.Dose(6.0, f"c{n - 1}", 5.0, duration=7.0)
           + pk.Dose(2.0, f"c{n // 2}", 30.0, rate=0.5))
    times = np.arange(0, 48.0, 0.5)
    ex = pk.simulate(m, reg, params, times=times, solver="exact")
    ad = pk.simulate(m, reg, params, times=times, solver="rodas5p", rtol=1e-11, atol=1e-15)
    assert rel_to_peak(ad.amounts[0], ex.amounts[0]) <= 1e-9
    assert ex.total_mass()[0, -1] == pytest.approx(30.0 + 6.0 + 2.0, rel=1e-12)
