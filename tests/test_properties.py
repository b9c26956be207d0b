"""Physical and computational properties of the engine on random models (Hypothesis).

Random compartment models, regimens and parameters come from
``tests/strategies.py``. Properties:

* mass balance: every transfer moves mass between states (or into
  ``eliminated``), so ``res.total_mass()`` equals the doses delivered so far,
  to 1e-9 relative, for linear models (exact and adaptive solvers) and for
  Michaelis–Menten models (adaptive solvers);
* non-negativity (exact: rounding only; adaptive: atol-level noise);
* dose linearity and superposition for linear models; zero dose gives zero;
* a batch equals a loop of single runs (bit for bit), and results do not
  depend on the thread count or the chunk size (bit for bit).

Example counts are modest so that the file runs in well under a minute.
"""
from __future__ import annotations

import numba
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import administered, models, output_times, parameters, populations, regimens, scale_doses

import pkcsf as pk

ADAPTIVE = ["rodas5p", "radau"]
PROPS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def linear_case(draw, **kw):
    case = draw(models(nonlinear=False, **kw))
    p = draw(parameters(case))
    reg = draw(regimens(case))
    times = draw(output_times(reg))
    return case, p, reg, times


@st.composite
def nonlinear_case(draw, **kw):
    case = draw(models(nonlinear=True, **kw))
    p = draw(parameters(case))
    reg = draw(regimens(case))
    times = draw(output_times(reg))
    return case, p, reg, times


def _mass_error(res, reg, times):
    given_so_far = administered(reg, times)
    total = res.total_mass()[0]
    scale = max(given_so_far.max(), 1e-300)
    return float(np.abs(total - given_so_far).max() / scale)


# ------------------------------------------------------------- mass balance
@PROPS
@given(linear_case())
@pytest.mark.parametrize("solver", ["exact", *ADAPTIVE])
def test_mass_balance_linear(solver, case):
    c, p, reg, times = case
    res = pk.simulate(c.model, reg, p, times=times, solver=solver)
    assert _mass_error(res, reg, times) <= 1e-9


@PROPS
@given(nonlinear_case())
@pytest.mark.parametrize("solver", ADAPTIVE)
def test_mass_balance_michaelis_menten(solver, case):
    c, p, reg, times = case
    res = pk.simulate(c.model, reg, p, times=times, solver=solver)
    assert res.solver == solver
    assert _mass_error(res, reg, times) <= 1e-9


# ----------------------------------------------------------- non-negativity
@PROPS
@given(linear_case())
@pytest.mark.parametrize("solver", ["exact", *ADAPTIVE])
def test_non_negative_linear(solver, case):
    c, p, reg, times = case
    res = pk.simulate(c.model, reg, p, times=times, solver=solver)
    dose_scale = sum(d.amount for d in reg.expand())
    if solver == "exact":
        floor = -1e-12 * dose_scale                       # rounding of exp(A dt) y
    else:
        floor = -10 * res.atol * res.volumes[0] - 1e-12 * dose_scale   # amounts: atol (mg/L) x volume
    assert (res.amounts[0] >= floor).all(), (res.amounts[0].min(axis=0), floor)


@PROPS
@given(nonlinear_case())
def test_non_negative_michaelis_menten(case):
    c, p, reg, times = case
    res = pk.simulate(c.model, reg, p, times=times, solver="rodas5p")
    dose_scale = sum(d.amount for d in reg.expand())
    floor = -10 * res.atol * res.volumes[0] - 1e-12 * dose_scale
    assert (res.amounts[0] >= floor).all(), (res.amounts[0].min(axis=0), floor)


# ------------------------------------------------------ linearity, superposition
@PROPS
@given(linear_case(), st.floats(0.001, 1000.0))
def test_dose_linearity_exact(case, factor):
    c, p, reg, times = case
    a = pk.simulate(c.model, reg, p, times=times, solver="exact")
    b = pk.simulate(c.model, scale_doses(reg, factor), p, times=times, solver="exact")
    scale = np.abs(a.amounts).max() * factor
    assert np.abs(b.amounts - factor * a.amounts).max() <= 1e-12 * scale + 1e-300


@FEW
@given(linear_case(), st.floats(0.1, 10.0))
@pytest.mark.parametrize("solver", ADAPTIVE)
def test_dose_linearity_adaptive(solver, case, factor):
    # the step sequence depends on atol (absolute), so agreement is to the tolerance, not to rounding
    c, p, reg, times = case
    kw = dict(times=times, solver=solver, rtol=1e-10, atol=1e-14)
    a = pk.simulate(c.model, reg, p, **kw)
    b = pk.simulate(c.model, scale_doses(reg, factor), p, **kw)
    scale = np.abs(a.amounts).max() * factor
    assert np.abs(b.amounts - factor * a.amounts).max() <= 1e-7 * scale


@st.composite
def two_regimens(draw):
    case = draw(models(nonlinear=False))
    p = draw(parameters(case))
    r1 = draw(regimens(case))
    r2 = draw(regimens(case))
    times = draw(output_times(r1 + r2))
    return case, p, r1, r2, times


@PROPS
@given(two_regimens())
def test_superposition_exact(case):
    c, p, r1, r2, times = case
    a = pk.simulate(c.model, r1, p, times=times, solver="exact").amounts
    b = pk.simulate(c.model, r2, p, times=times, solver="exact").amounts
    ab = pk.simulate(c.model, r1 + r2, p, times=times, solver="exact").amounts
    scale = max(np.abs(a).max(), np.abs(b).max())
    assert np.abs(ab - (a + b)).max() <= 1e-11 * scale


@FEW
@given(two_regimens())
@pytest.mark.parametrize("solver", ADAPTIVE)
def test_superposition_adaptive(solver, case):
    c, p, r1, r2, times = case
    kw = dict(times=times, solver=solver, rtol=1e-10, atol=1e-14)
    a = pk.simulate(c.model, r1, p, **kw).amounts
    b = pk.simulate(c.model, r2, p, **kw).amounts
    ab = pk.simulate(c.model, r1 + r2, p, **kw).amounts
    scale = max(np.abs(a).max(), np.abs(b).max())
    assert np.abs(ab - (a + b)).max() <= 1e-7 * scale


@PROPS
@given(st.one_of(linear_case(), nonlinear_case()))
@pytest.mark.parametrize("solver", ["auto", *ADAPTIVE])
def test_zero_dose_gives_zero(solver, case):
    c, p, reg, times = case
    res = pk.simulate(c.model, scale_doses(reg, 0.0), p, times=times, solver=solver)
    assert (res.amounts == 0.0).all()
    assert (res.status == 0).all()


# -------------------------------------------------- batch, threads, chunks
@st.composite
def population_case(draw, nonlinear=None):
    if nonlinear is None:
        nonlinear = draw(st.booleans())
    case = draw(models(nonlinear=nonlinear))
    pop = draw(populations(case))
    reg = draw(regimens(case))
    times = draw(output_times(reg))
    return case, pop, reg, times


@FEW
@given(population_case(nonlinear=False))
def test_batch_equals_loop_exact(case):
    c, pop, reg, times = case
    batch = pk.simulate(c.model, reg, pop, times=times, solver="exact")
    for i in range(len(pop)):
        one = pk.simulate(c.model, reg, pop.iloc[[i]], times=times, solver="exact")
        np.testing.assert_array_equal(batch.amounts[i], one.amounts[0])


@FEW
@given(population_case())
@pytest.mark.parametrize("solver", ADAPTIVE)
def test_batch_equals_loop_adaptive(solver, case):
    c, pop, reg, times = case
    batch = pk.simulate(c.model, reg, pop, times=times, solver=solver)
    for i in range(len(pop)):
        one = pk.simulate(c.model, reg, pop.iloc[[i]], times=times, solver=solver)
        np.testing.assert_array_equal(batch.amounts[i], one.amounts[0])
        np.testing.assert_array_equal(batch.per_subject_counters[i], one.per_subject_counters[0])


@FEW
@given(population_case())
@pytest.mark.parametrize("solver", ["auto", *ADAPTIVE])
def test_threads_and_chunks_do_not_change_results(solver, case):
    c, pop, reg, times = case
    ref = pk.simulate(c.model, reg, pop, times=times, solver=solver, threads=1)
    runs = [dict(threads=min(2, numba.config.NUMBA_NUM_THREADS)), dict(chunk_size=1, progress=False),
            dict(chunk_size=3, threads=min(2, numba.config.NUMBA_NUM_THREADS), progress=False)]
    for kw in runs:
        other = pk.simulate(c.model, reg, pop, times=times, solver=solver, **kw)
        np.testing.assert_array_equal(other.amounts, ref.amounts, err_msg=str(kw))
        np.testing.assert_array_equal(other.status, ref.status)


@FEW
@given(population_case(nonlinear=False))
def test_per_subject_regimens_equal_shared_regimen(case):
    # a list of identical regimens (one per subject) takes the per-subject event path
    c, pop, reg, times = case
    shared = pk.simulate(c.model, reg, pop, times=times, solver="exact")
    per = pk.simulate(c.model, [reg] * len(pop), pop, times=times, solver="exact")
    np.testing.assert_array_equal(per.amounts, shared.amounts)


def test_prepare_solve_by_rows_equals_simulate():
    # Problem.solve on slices (the streaming path) gives the same numbers as simulate
    model = pk.load_model("reference_p2")
    pop = pd.read_csv(__import__("pathlib").Path(__file__).parent / "data" / "subjects_P2.csv").iloc[:7]
    reg = pk.Dose("DOSE_AMT", "oral").repeat(every=24, n=3)
    times = np.arange(0, 97.0, 3.0)
    res = pk.simulate(model, reg, pop, times=times)
    prob = pk.prepare(model, reg, pop, times=times)
    for rows in (slice(0, 3), slice(3, 7)):
        out, status, _ = prob.solve(rows)
        np.testing.assert_array_equal(out, res.amounts[rows])
        assert (status == 0).all()
