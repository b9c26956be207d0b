"""Bad input is rejected at the boundary, before anything is computed.

Each mistake raises a :class:`pkcsf.PkcsfError` subclass (a ``ValueError``)
whose message names the field, the value given and what is allowed (the
valid names, where there is a list). ``pk.prepare`` raises the same errors
as ``pk.simulate``, and no kernel runs: ``solve_batch`` is replaced by a spy
that fails the test if it is called.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.solvers import kernels

DATA = Path(__file__).parent / "data"
P1 = {k: v["value"] for k, v in
      json.loads((DATA / "problems.json").read_text())["problems"]["it_linear"]["params"].items()}
P1_NAMES = list(P1)
REG = pk.Dose(12.0, "icv")
TIMES = np.arange(0, 10.0)


@pytest.fixture(autouse=True)
def no_kernel(monkeypatch):
    """Fail if a bad input reaches the compiled solver."""
    calls = []

    def spy(*args, **kw):
        calls.append(args)
        raise AssertionError("solve_batch ran on invalid input")

    monkeypatch.setattr(kernels, "solve_batch", spy)
    yield calls
    assert not calls


def p2_params(n=3):
    return pd.read_csv(DATA / "subjects_P2.csv").iloc[:n].drop(columns="DOSE_AMT")


def check(exc_info, error, *parts):
    """The error's type, and that its message contains every part (field, value, rule)."""
    assert isinstance(exc_info.value, error) and isinstance(exc_info.value, pk.PkcsfError)
    assert isinstance(exc_info.value, ValueError)
    msg = str(exc_info.value)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    return msg


def both(call):
    """Run a bad call through prepare and simulate; both must raise the same error."""
    with pytest.raises(pk.PkcsfError) as a:
        call(pk.prepare)
    with pytest.raises(pk.PkcsfError) as b:
        call(pk.simulate)
    assert type(a.value) is type(b.value) and str(a.value) == str(b.value)
    return a


# ---------------------------------------------------------------- parameters
@pytest.mark.parametrize("name, value, rule", [
    ("V_C", -1.0, "> 0"), ("V_VENT", 0.0, "> 0"), ("V_ECF", np.nan, "> 0"), ("V_P", np.inf, "> 0"),
    ("Q_MIX", -0.1, ">= 0"), ("CL", np.nan, ">= 0"),
])
def test_bad_parameter_values(name, value, rule):
    exc = both(lambda f: f("reference_p1", REG, dict(P1, **{name: value}), times=TIMES))
    check(exc, pk.ParameterError, "subject 0", name, repr(float(value)), rule)


def test_bad_value_names_the_subject_by_id():
    pop = pd.DataFrame([P1, P1, P1]).assign(ID=["a", "b", "c"])
    pop.loc[2, "V_VENT"] = -0.03
    exc = both(lambda f: f("reference_p1", REG, pop, times=TIMES))
    check(exc, pk.ParameterError, "subject 'c'", "V_VENT", "csf_ventricular", "-0.03", "> 0")


def test_unknown_parameter_lists_the_valid_names():
    exc = both(lambda f: f("reference_p1", REG, dict(P1, V_CX=1.0), times=TIMES))
    check(exc, pk.ParameterError, "V_CX", "valid names: " + ", ".join(P1_NAMES), "did you mean")


def test_missing_parameter_lists_the_valid_names():
    p = {k: v for k, v in P1.items() if k != "CL"}
    exc = both(lambda f: f("reference_p1", REG, p, times=TIMES))
    check(exc, pk.ParameterError, "missing CL", ", ".join(P1_NAMES))


def test_parameter_array_of_the_wrong_shape():
    exc = both(lambda f: f("reference_p1", REG, np.ones((3, 5)), times=TIMES))
    check(exc, pk.ParameterError, "(3, 5)", "14", "CL, V_C")


def test_per_subject_columns_of_different_lengths():
    exc = both(lambda f: f("reference_p1", REG, dict(P1, CL=[1.0, 2.0, 3.0], V_C=[40.0, 41.0]), times=TIMES))
    check(exc, pk.ParameterError, "V_C", "2 values", "same length (3)")


def test_parameter_that_is_not_a_number():
    exc = both(lambda f: f("reference_p1", REG, dict(P1, CL="fast"), times=TIMES))
    check(exc, pk.ParameterError, "CL", "'fast'", "must be a number")


# ---------------------------------------------------------- doses and regimens
def test_unknown_dosing_site_lists_sites_and_compartments():
    exc = both(lambda f: f("reference_p1", pk.Dose(12.0, "icvv"), P1, times=TIMES))
    check(exc, pk.DosingError, "site", "'icvv'", "allowed: icv, central, peripheral, csf_ventricular",
          "did you mean 'icv'")


def test_infusion_with_rate_and_duration():
    with pytest.raises(pk.DosingError) as exc:
        pk.Dose(12.0, "icv", rate=1.0, duration=2.0)
    check(exc, pk.DosingError, "dose.rate/dose.duration", "(1.0, 2.0)", "never both")


@pytest.mark.parametrize("kw, field, rule", [
    (dict(amount=-12.0), "dose.amount", ">= 0 mg"),
    (dict(amount=float("nan")), "dose.amount", ">= 0 mg"),
    (dict(time=-1.0), "dose.time", ">= 0 h"),
    (dict(rate=-1.0), "dose.rate", "> 0 mg/h"),
    (dict(duration=0.0), "dose.duration", "> 0 h"),
    (dict(addl=2), "dose.ii", "interdose interval > 0"),
    (dict(addl=1.5, ii=12.0), "dose.addl", "whole number"),
])
def test_bad_dose_fields(kw, field, rule):
    args = dict(amount=12.0, site="icv") | kw
    with pytest.raises(pk.DosingError) as exc:
        pk.Dose(**args)
    check(exc, pk.DosingError, field, rule)


def test_dose_amount_expression_without_its_column():
    exc = both(lambda f: f("reference_p2", pk.Dose("DOSE", "oral"), p2_params(), times=TIMES))
    check(exc, pk.DosingError, "'DOSE'", "subject columns")


def test_dose_amount_expression_negative_for_one_subject():
    pop = p2_params().assign(DOSE=[80.0, -80.0, 160.0])
    exc = both(lambda f: f("reference_p2", pk.Dose("DOSE", "oral"), pop, times=TIMES))
    check(exc, pk.DosingError, "subject 1", "-80.0", ">= 0 mg")


def test_dose_into_an_accumulator():
    exc = both(lambda f: f("reference_p2", pk.Dose(1.0, "auc_csf"), p2_params(), times=TIMES))
    check(exc, pk.DosingError, "'auc_csf'", "accumulator")


def test_one_regimen_per_subject_needs_the_right_count():
    pop = pd.DataFrame([P1, P1, P1])
    exc = both(lambda f: f("reference_p1", [pk.Regimen([REG]), pk.Regimen([REG])], pop, times=TIMES))
    check(exc, pk.DosingError, "2 regimens", "3 subjects")


# ----------------------------------------------------------------- times
@pytest.mark.parametrize("times, field, value, rule", [
    ([0.0, 2.0, 1.0], "times[2]", "1.0", "must be sorted"),
    ([-1.0, 2.0], "times[0]", "-1.0", ">= 0 h"),
    ([0.0, np.nan], "times[1]", "nan", "finite"),
    ([], "times", "[]", "at least one"),
    (None, "times", "None", "required"),
])
def test_bad_output_times(times, field, value, rule):
    exc = both(lambda f: f("reference_p1", REG, P1, times=times))
    check(exc, pk.SolverError, field, value, rule)


# ----------------------------------------------------------------- models
def test_transfer_to_a_missing_compartment():
    with pytest.raises(pk.ModelError) as exc:
        pk.Model("m", compartments=[pk.Compartment("a", "V")], transfers=[pk.flow("a", "b", "Q")],
                 parameters=["V", "Q"])
    check(exc, pk.ModelError, "transfers[0].to", "'b'", "allowed: a")
    with pytest.raises(pk.ModelError) as exc:
        pk.Model("m", compartments=[pk.Compartment("a", "V")], transfers=[pk.exchange("c", "a", "Q")],
                 parameters=["V", "Q"])
    check(exc, pk.ModelError, "transfers[0].from", "'c'", "allowed: a")


def test_transfer_to_a_missing_compartment_in_a_model_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[parameters]\nV = {unit = "L"}\nQ = {unit = "L/h"}\n'
                    '[[compartments]]\nname = "plasma"\nvolume = "V"\n'
                    '[[transfers]]\ntype = "flow"\nfrom = "plasma"\nto = "csf"\nQ = "Q"\n')
    with pytest.raises(pk.ModelError) as exc:
        pk.prepare(str(path), REG, {"V": 1.0, "Q": 1.0}, times=TIMES)
    check(exc, pk.ModelError, "transfers[0].to", "'csf'", "allowed: plasma")


def test_derived_parameter_cycle():
    with pytest.raises(pk.ModelError) as exc:
        pk.Model("m", compartments=[pk.Compartment("a", "V")], transfers=[pk.elimination("a", "A")],
                 parameters=["V"], derived={"A": "B * 2", "B": "A + 1"})
    check(exc, pk.ModelError, "derived", "A -> B -> A", "cycle")


def test_transfer_with_an_unknown_parameter_lists_the_parameters():
    with pytest.raises(pk.ModelError) as exc:
        pk.Model("m", compartments=[pk.Compartment("a", "V")], transfers=[pk.elimination("a", "CLX")],
                 parameters=["V", "CL"])
    check(exc, pk.ModelError, "transfers[0].coefficient", "'CLX'", "allowed: CL, V", "did you mean 'CL'")


@pytest.mark.parametrize("volume", [-1.0, 0.0])
def test_constant_volume_must_be_positive(volume):
    with pytest.raises(pk.ModelError) as exc:
        pk.Model("m", compartments=[pk.Compartment("a", volume)])
    check(exc, pk.ModelError, "compartments[0].volume", repr(volume), "> 0 L")


def test_unknown_model_name_lists_the_models():
    exc = both(lambda f: f("reference_p3", REG, P1, times=TIMES))
    check(exc, pk.ModelError, "'reference_p3'", "reference_p1, reference_p2", "nor a drug", "did you mean")


def test_model_of_the_wrong_type():
    exc = both(lambda f: f(42, REG, P1, times=TIMES))
    check(exc, pk.SolverError, "model", "'int'", "pkcsf Model")


# ---------------------------------------------------------- solver options
def test_unknown_solver_lists_the_solvers():
    exc = both(lambda f: f("reference_p1", REG, P1, times=TIMES, solver="lsoda"))
    check(exc, pk.SolverError, "solver", "'lsoda'", "allowed: auto, exact, expm, matrix-exponential, rodas5p",
          "radau")


def test_exact_solver_on_a_nonlinear_model():
    exc = both(lambda f: f("reference_p2", pk.Dose(80.0, "oral"), p2_params(), times=TIMES, solver="exact"))
    check(exc, pk.SolverError, "solver", "'exact'", "linear model", "subject 0", "Michaelis-Menten",
          "solver='adaptive'")


def test_exact_solver_is_fine_when_every_vmax_is_zero(no_kernel, monkeypatch):
    prob = pk.prepare("reference_p2", pk.Dose(80.0, "oral"), p2_params().assign(VMAX=0.0), times=TIMES,
                      solver="exact")
    assert prob.method == "exact"


@pytest.mark.parametrize("kw, field, rule", [
    (dict(rtol=0.0), "rtol", "[1e-14, 0.1]"),
    (dict(rtol=0.5), "rtol", "[1e-14, 0.1]"),
    (dict(atol=-1.0), "atol", "[0, 1]"),
    (dict(atol="small"), "atol", "must be a number"),
    (dict(max_steps=0), "max_steps", ">= 1"),
    (dict(max_step=0.0), "max_step", "> 0 h"),
    (dict(outputs=["csf"]), "outputs", "allowed: central, peripheral"),
    (dict(y0={"central": -1.0}), "y0", ">= 0 mg"),
    (dict(y0={"plasma": 1.0}), "y0", "allowed: central"),
])
def test_bad_solver_options(kw, field, rule):
    exc = both(lambda f: f("reference_p1", REG, P1, times=TIMES, **kw))
    check(exc, pk.SolverError, field, rule)


def test_thread_count_out_of_range():
    with pytest.raises(pk.SolverError) as exc:
        pk.simulate("reference_p1", REG, P1, times=TIMES, threads=0)
    check(exc, pk.SolverError, "threads", "0", "between 1 and")


# ----------------------------------------------------------------- event tables
def test_bad_event_table_is_rejected_before_solving():
    table = pd.DataFrame({"ID": [1], "TIME": [0.0], "AMT": [12.0], "CMT": ["brain"], "EVID": [1]})
    exc = both(lambda f: f("reference_p1", table, P1, times=TIMES))
    check(exc, pk.DosingError, "CMT", "'brain'", "allowed: icv, central")


def test_the_spy_sees_a_valid_run(no_kernel):
    # the fixture would notice a kernel call: a valid run reaches it
    with pytest.raises(AssertionError, match="solve_batch ran"):
        pk.simulate("reference_p1", REG, P1, times=TIMES)
    assert len(no_kernel) == 1
    no_kernel.clear()
