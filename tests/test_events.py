"""Event semantics of the engine (see docs/events.md and pkcsf/engine/dosing.py).

* outputs are right-continuous: the value at a dose time includes the bolus;
  an infusion starting at t has delivered nothing at t, one ending at t all;
  an output time listed twice reports the value before, then after, its doses;
* several doses at one time are all given before that time is reported;
* a dose between output times, back-to-back and overlapping infusions;
* an infusion is given by rate or by duration, never both;
* lag time shifts a dose; bioavailability F scales its amount; an infusion
  given by rate keeps its rate (and lasts F * amount / rate), one given by
  duration keeps its duration (NONMEM's convention);
* II/ADDL expansion; doses after the last output time change nothing;
* event times a few ulps apart;
* NONMEM-style event tables: CMT by name or number, upper or lower case
  columns, EVID 0 rows ignored, export -> import round trip.

Every solver must agree on these, so most tests run all three.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk

SOLVERS = ["exact", "rodas5p", "radau"]
P = dict(KA=0.8, F=0.6, TLAG=1.5, CL=2.0, V=10.0, FR=0.25)
K = P["CL"] / P["V"]


def site_model():
    """Gut depot -> central -> out; sites with bioavailability, lag and a split."""
    return pk.Model(
        "events",
        compartments=[pk.Compartment("gut"), pk.Compartment("central", "V")],
        transfers=[pk.first_order("gut", "central", "KA"), pk.elimination("central", "CL")],
        sites=[
            pk.Site("iv", (("central", 1.0),)),
            pk.Site("iv_f", (("central", 1.0),), bioavailability="F"),
            pk.Site("oral", (("gut", 1.0),), bioavailability="F", lag="TLAG"),
            pk.Site("split", (("central", "FR"), ("gut", "1 - FR"))),
        ],
        parameters=["KA", "F", "TLAG", "CL", "V", "FR"],
    )


def sim(regimen, times, solver="exact", **kw):
    return pk.simulate(site_model(), regimen, P, times=np.asarray(times, dtype=float), solver=solver, **kw)


def close(solver):
    """Tolerance for comparing a solver's amounts with closed forms (mg)."""
    return dict(rtol=1e-12, atol=1e-12) if solver == "exact" else dict(rtol=1e-6, atol=1e-9)


# ----------------------------------------------------- right-continuity
@pytest.mark.parametrize("solver", SOLVERS)
def test_bolus_is_included_at_its_own_time(solver):
    res = sim(pk.Dose(100.0, "iv", 2.0), [0, 1, 2, 3], solver)
    central = res.amount("central")[0]
    assert central[0] == 0.0 and central[1] == 0.0
    assert central[2] == 100.0           # reported just after the bolus, exactly
    np.testing.assert_allclose(central[3], 100.0 * np.exp(-K), **close(solver))


@pytest.mark.parametrize("solver", SOLVERS)
def test_dose_at_time_zero_is_reported_at_zero(solver):
    res = sim(pk.Dose(100.0, "iv"), [0, 5], solver)
    assert res.amount("central")[0, 0] == 100.0
    np.testing.assert_allclose(res.concentration("central")[0, 0], 10.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_several_doses_at_the_same_time_are_all_given_before_reporting(solver):
    reg = pk.Dose(100.0, "iv", 2.0) + pk.Dose(50.0, "central", 2.0) + pk.Dose(20.0, "split", 2.0)
    res = sim(reg, [0, 2, 4], solver)
    assert res.amount("central")[0, 1] == pytest.approx(150.0 + 20.0 * P["FR"], rel=1e-15)
    assert res.amount("gut")[0, 1] == pytest.approx(20.0 * (1 - P["FR"]), rel=1e-15)
    # the same as one dose of the sum
    one = sim(pk.Dose(150.0 + 20.0 * P["FR"], "central", 2.0) + pk.Dose(20.0 * (1 - P["FR"]), "gut", 2.0),
              [0, 2, 4], solver)
    np.testing.assert_allclose(res.amounts, one.amounts, **close(solver))


@pytest.mark.parametrize("solver", SOLVERS)
def test_dose_between_output_times(solver):
    res = sim(pk.Dose(100.0, "iv", 1.5), [0, 1, 2, 3], solver)
    central = res.amount("central")[0]
    assert central[0] == 0.0 and central[1] == 0.0
    np.testing.assert_allclose(central[2:], 100.0 * np.exp(-K * (np.array([2.0, 3.0]) - 1.5)), **close(solver))


# ------------------------------------------------- an output time listed twice
@pytest.mark.parametrize("solver", SOLVERS)
def test_repeated_output_time_reports_before_then_after_the_doses(solver):
    # trough and peak at a dose time: [.., 12, 12, ..] gives the left limit, then the value after
    times = [0, 0, 6, 12, 12, 18]
    res = sim(pk.Dose(100.0, "iv").repeat(every=12, n=2), times, solver)
    central = res.amount("central")[0]
    assert central[0] == 0.0 and central[1] == 100.0            # time 0: before, after the first dose
    trough = 100.0 * np.exp(-K * 12.0)
    np.testing.assert_allclose(central[3], trough, **close(solver))
    np.testing.assert_allclose(central[4], trough + 100.0, **close(solver))
    # a single listing of a dose time is the value after (right-continuous)
    single = sim(pk.Dose(100.0, "iv").repeat(every=12, n=2), [0, 6, 12, 18], solver)
    np.testing.assert_allclose(single.amounts[0], res.amounts[0, [1, 2, 4, 5]], **close(solver))


@pytest.mark.parametrize("solver", SOLVERS)
def test_repeated_output_time_without_a_dose_repeats_the_value(solver):
    reg = pk.Dose(100.0, "iv") + pk.Dose(30.0, "iv", 4.0, duration=2.0)    # infusion starts at 4
    res = sim(reg, [0, 3, 3, 4, 4, 8], solver)
    a = res.amounts[0]
    np.testing.assert_array_equal(a[1], a[2])
    np.testing.assert_allclose(a[3], a[4], rtol=1e-15)      # an infusion start is continuous


def test_an_output_time_may_appear_at_most_twice():
    with pytest.raises(pk.SolverError, match="at most twice"):
        sim(pk.Dose(100.0, "iv"), [0, 12, 12, 12, 24])


# --------------------------------------------------------------- infusions
def test_infusion_takes_rate_or_duration_never_both():
    with pytest.raises(pk.DosingError) as exc:
        pk.Dose(30.0, "iv", rate=10.0, duration=3.0)
    msg = str(exc.value)
    assert "rate" in msg and "duration" in msg and "never both" in msg
    with pytest.raises(pk.DosingError, match="rate or a duration"):
        pk.infusion(30.0, "iv")


@pytest.mark.parametrize("solver", SOLVERS)
def test_infusion_by_rate_equals_by_duration(solver):
    times = np.arange(0, 12.0, 0.5)
    a = sim(pk.Dose(30.0, "iv", 1.0, rate=10.0), times, solver)
    b = sim(pk.Dose(30.0, "iv", 1.0, duration=3.0), times, solver)
    np.testing.assert_allclose(a.amounts, b.amounts, **close(solver))


@pytest.mark.parametrize("solver", SOLVERS)
def test_infusion_start_and_stop_on_output_times(solver):
    # 30 mg from 1 h to 4 h; outputs at the start, inside and at the end
    times = np.array([0.0, 1.0, 2.5, 4.0, 6.0])
    res = sim(pk.Dose(30.0, "iv", 1.0, duration=3.0), times, solver)
    delivered = res.total_mass()[0]
    assert delivered[0] == 0.0 and delivered[1] == 0.0     # nothing delivered at the start time
    np.testing.assert_allclose(delivered[2:], [15.0, 30.0, 30.0], rtol=1e-12)
    rate = 10.0
    c_end = rate / P["CL"] * (1 - np.exp(-K * 3.0)) * P["V"]
    np.testing.assert_allclose(res.amount("central")[0, 3], c_end, **close(solver))
    np.testing.assert_allclose(res.amount("central")[0, 4], c_end * np.exp(-K * 2.0), **close(solver))


@pytest.mark.parametrize("solver", SOLVERS)
def test_back_to_back_and_overlapping_infusions(solver):
    times = np.arange(0, 10.0, 0.25)
    back_to_back = pk.Dose(10.0, "iv", 0.0, duration=1.0) + pk.Dose(20.0, "iv", 1.0, duration=2.0)
    res = sim(back_to_back, times, solver)
    expected = np.interp(times, [0, 1, 3, 10], [0, 10, 30, 30])
    np.testing.assert_allclose(res.total_mass()[0], expected, rtol=1e-12, atol=1e-12)
    overlapping = pk.Dose(10.0, "iv", 0.0, rate=5.0) + pk.Dose(10.0, "iv", 1.0, rate=10.0)
    res = sim(overlapping, times, solver)
    expected = np.interp(times, [0, 1, 2, 10], [0, 5, 20, 20])
    np.testing.assert_allclose(res.total_mass()[0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_infusion_running_past_the_last_output(solver):
    res = sim(pk.Dose(100.0, "iv", 2.0, duration=10.0), [0, 4, 7], solver)
    np.testing.assert_allclose(res.total_mass()[0], [0.0, 20.0, 50.0], rtol=1e-12, atol=1e-12)


# -------------------------------------------------- lag and bioavailability
@pytest.mark.parametrize("solver", SOLVERS)
def test_lag_time_shifts_the_dose(solver):
    times = np.arange(0, 24.0, 0.5)
    lagged = sim(pk.Dose(40.0, "oral", 2.0), times, solver)
    # the lag delays the dose to 3.5 h; nothing arrives before that
    gut = lagged.amount("gut")[0]
    assert (gut[times < 3.5] == 0).all()
    assert gut[times == 3.5][0] == pytest.approx(P["F"] * 40.0, rel=1e-15)   # right-continuous at time + lag
    shifted = pk.simulate(site_model(), pk.Dose(40.0, "oral", 3.5), dict(P, TLAG=0.0), times=times, solver=solver)
    np.testing.assert_allclose(lagged.amounts, shifted.amounts, **close(solver))


@pytest.mark.parametrize("solver", SOLVERS)
def test_bioavailability_scales_the_amount(solver):
    res = sim(pk.Dose(40.0, "iv_f", 1.0), [0, 1, 5], solver)
    assert res.amount("central")[0, 1] == pytest.approx(P["F"] * 40.0, rel=1e-15)
    assert res.total_mass()[0, -1] == pytest.approx(P["F"] * 40.0, rel=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_infusion_with_bioavailability_follows_nonmem(solver):
    times = np.arange(0, 12.0, 0.5)
    F = P["F"]
    # by rate: the rate is kept, the infusion lasts F * amount / rate = 0.6 * 30 / 10 = 1.8 h
    by_rate = sim(pk.Dose(30.0, "iv_f", 0.0, rate=10.0), times, solver)
    np.testing.assert_allclose(by_rate.total_mass()[0], np.minimum(10.0 * times, F * 30.0), rtol=1e-12, atol=1e-12)
    # by duration: the duration is kept, the rate is F * amount / duration
    by_dur = sim(pk.Dose(30.0, "iv_f", 0.0, duration=3.0), times, solver)
    np.testing.assert_allclose(by_dur.total_mass()[0], F * 30.0 * np.minimum(times / 3.0, 1.0), rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------ II/ADDL
@pytest.mark.parametrize("solver", SOLVERS)
def test_ii_addl_expands_to_single_doses(solver):
    times = np.arange(0, 72.0, 1.0)
    a = pk.Dose(10.0, "oral", 1.0, ii=12.0, addl=3)
    b = pk.Regimen([pk.Dose(10.0, "oral", 1.0 + 12.0 * j) for j in range(4)])
    c = pk.Dose(10.0, "oral", 1.0).repeat(every=12.0, n=4)
    assert [d.time for d in pk.Regimen([a]).expand()] == [1.0, 13.0, 25.0, 37.0]
    assert pk.Regimen([a]) == b == c
    ra, rb, rc = (sim(r, times, solver) for r in (a, b, c))
    np.testing.assert_array_equal(ra.amounts, rb.amounts)
    np.testing.assert_array_equal(ra.amounts, rc.amounts)
    assert ra.total_mass()[0, -1] == pytest.approx(4 * 10.0 * P["F"], rel=1e-12)


def test_addl_needs_an_interval():
    with pytest.raises(pk.DosingError, match="interdose interval"):
        pk.Dose(10.0, "iv", addl=2)


@pytest.mark.parametrize("solver", SOLVERS)
def test_doses_after_the_last_output_change_nothing(solver):
    times = np.arange(0, 25.0, 1.0)
    base = pk.Dose(10.0, "iv", 0.0).repeat(every=8, n=3)
    later = base + pk.Dose(99.0, "iv", 24.5) + pk.Dose(5.0, "oral", 30.0) + pk.Dose(7.0, "iv", 100.0, duration=2.0)
    np.testing.assert_array_equal(sim(base, times, solver).amounts, sim(later, times, solver).amounts)
    # a dose exactly at the last output time is reported there (right-continuous)
    at_end = sim(base + pk.Dose(99.0, "iv", 24.0), times, solver)
    assert at_end.amount("central")[0, -1] - sim(base, times, solver).amount("central")[0, -1] == pytest.approx(99.0)


# -------------------------------------------------- event times ulps apart
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("case", ["doses", "output", "infusion_end", "tiny_time"])
def test_event_times_a_few_ulps_apart(solver, case):
    # regression: Rodas5P stopped with STEP_TOO_SMALL, Radau with a non-finite state
    one_ulp = np.nextafter(1.0, 2.0)
    if case == "doses":
        reg, times = pk.Dose(10.0, "iv", 1.0) + pk.Dose(5.0, "iv", one_ulp), [0.0, 1.0, 48.0]
    elif case == "output":
        reg, times = pk.Dose(10.0, "iv", 1.0), [0.0, 1.0, one_ulp, 48.0]
    elif case == "infusion_end":
        reg, times = pk.Dose(10.0, "iv", 0.0, duration=1.0) + pk.Dose(5.0, "iv", one_ulp), [0.0, 1.0, 48.0]
    else:
        reg, times = pk.Dose(10.0, "iv", 1e-300), [0.0, 5e-324, 48.0]
    res = sim(reg, times, solver)
    ex = sim(reg, times, "exact")
    assert (res.status == 0).all()
    np.testing.assert_allclose(res.amounts, ex.amounts, rtol=1e-6, atol=1e-9)


# ------------------------------------------------------ per-subject regimens
@pytest.mark.parametrize("solver", SOLVERS)
def test_per_subject_regimens(solver):
    regs = {7: pk.Dose(10.0, "iv"), 9: pk.Dose(20.0, "iv", 2.0, duration=1.0) + pk.Dose(5.0, "oral")}
    res = sim(regs, [0, 2, 3, 10], solver)
    assert list(res.ids) == [7, 9]
    for r, (i, reg) in enumerate(regs.items()):
        one = sim(reg, [0, 2, 3, 10], solver)
        np.testing.assert_array_equal(res.amounts[r], one.amounts[0])


# --------------------------------------------------------------- NONMEM
def _table():
    return pd.DataFrame({
        "ID":   [1, 1, 1, 1, 2, 2],
        "TIME": [0.0, 0.0, 2.0, 12.0, 0.0, 1.0],
        "AMT":  [0.0, 40.0, 30.0, 0.0, 20.0, 10.0],
        "CMT":  ["central", "oral", "central", "central", "iv", "gut"],
        "EVID": [0, 1, 1, 0, 1, 1],
        "II":   [0.0, 12.0, 0.0, 0.0, 0.0, 0.0],
        "ADDL": [0, 2, 0, 0, 0, 0],
        "RATE": [0.0, 0.0, 15.0, 0.0, 0.0, 0.0],
        "DV":   [0.1, np.nan, np.nan, 3.2, np.nan, np.nan],
    })


def _expected():
    return {1: pk.Dose(40.0, "oral", 0.0, ii=12.0, addl=2) + pk.Dose(30.0, "central", 2.0, rate=15.0),
            2: pk.Dose(20.0, "iv", 0.0) + pk.Dose(10.0, "gut", 1.0)}


def test_nonmem_import_with_names_skips_observations():
    got = pk.from_nonmem(_table(), model=site_model())
    assert got == _expected()
    assert len(got[1]) == 4 and len(got[2]) == 2      # the EVID 0 rows are not doses


def test_nonmem_import_with_compartment_numbers():
    t = _table()
    t["CMT"] = [2, "oral", 2, 2, "iv", 1]            # 1 = gut, 2 = central (1-based, model order)
    assert pk.from_nonmem(t, model=site_model()) == _expected()
    with pytest.raises(pk.DosingError, match="needs the model"):
        pk.from_nonmem(t)
    t.loc[5, "CMT"] = 3
    with pytest.raises(pk.DosingError, match="from 1 to 2"):
        pk.from_nonmem(t, model=site_model())


def test_nonmem_import_lower_case_columns_and_csv(tmp_path):
    t = _table().rename(columns=str.lower)
    assert pk.from_nonmem(t, model=site_model()) == _expected()
    path = tmp_path / "events.csv"
    _table().to_csv(path, index=False)
    assert pk.from_nonmem(path, model=site_model()) == _expected()


def test_nonmem_import_without_evid_treats_amounts_as_doses():
    t = _table().drop(columns=["EVID"])
    assert pk.from_nonmem(t, model=site_model()) == _expected()


@pytest.mark.parametrize("solver", SOLVERS)
def test_simulate_accepts_an_event_table(solver):
    times = np.arange(0, 36.0, 0.5)
    res = pk.simulate(site_model(), _table(), P, times=times, solver=solver)
    assert list(res.ids) == [1, 2]
    for r, (i, reg) in enumerate(_expected().items()):
        one = sim(reg, times, solver)
        np.testing.assert_array_equal(res.amounts[r], one.amounts[0])


@pytest.mark.parametrize("compact", [True, False])
def test_nonmem_export_import_round_trip(compact):
    m = site_model()
    reg = (pk.Dose(40.0, "oral", 0.0, ii=12.0, addl=2) + pk.Dose(30.0, "central", 2.0, rate=15.0)
           + pk.Dose(5.0, "gut", 3.0) + pk.Dose(8.0, "iv", 4.0, duration=2.0))
    table = reg.to_nonmem(id=3, model=m, compact=compact)
    assert list(table.columns[:8]) == pk.engine.dosing.NONMEM_COLUMNS
    assert table.loc[table["AMT"] == 5.0, "CMT"].item() == 1          # compartments as 1-based numbers
    back = pk.from_nonmem(table, model=m)
    assert list(back) == [3]
    times = np.arange(0, 48.0, 0.5)
    np.testing.assert_allclose(sim(back[3], times).amounts, sim(reg, times).amounts, rtol=1e-13, atol=1e-13)


def test_nonmem_round_trip_keeps_a_duration_infusion_with_bioavailability():
    # an infusion given by duration keeps its duration under F; the exported table must say so
    m = site_model()
    reg = pk.Regimen([pk.Dose(30.0, "iv_f", 1.0, duration=3.0)])
    back = pk.from_nonmem(reg.to_nonmem(model=m), model=m)[1]
    times = np.arange(0, 12.0, 0.25)
    np.testing.assert_allclose(sim(back, times).amounts, sim(reg, times).amounts, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("change, message", [
    ({"EVID": 3}, "resets"),
    ({"RATE": -2.0}, "modelled rates"),
    ({"SS": 1}, "steady-state"),
    ({"CMT": "brain"}, "allowed: "),
    ({"AMT": -5.0}, ">= 0 mg"),
    ({"RATE": 15.0, "DUR": 1.0}, "must agree"),
])
def test_nonmem_import_rejects_unsupported_rows(change, message):
    t = _table()
    for col, value in change.items():
        if col not in t.columns:
            t[col] = 0
        t.loc[1, col] = value
    with pytest.raises(pk.DosingError, match=message) as exc:
        pk.from_nonmem(t, model=site_model())
    assert "row 1" in str(exc.value)


def test_nonmem_import_requires_time_amt_cmt():
    with pytest.raises(pk.DosingError, match="a CMT column is required"):
        pk.from_nonmem(_table().drop(columns=["CMT"]))
    with pytest.raises(pk.DosingError, match="allowed columns"):
        pk.from_nonmem(_table().assign(WT=70.0))
