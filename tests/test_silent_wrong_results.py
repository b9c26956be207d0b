"""Issue 9, "Silent wrong results": each class of silently wrong number has a test here.

Every test fails on the behaviour before the fix (a wrong number returned
without a word) and passes now (the right number, or a clear error, or a
warning that names what was excluded).
"""
from __future__ import annotations

import numpy as np
import pytest

import pkcsf as pk
from pkcsf.engine.expressions import Expression


# ---------------------------------------------------------------- 1. expression arity
def _one_compartment(cl_expr: str) -> pk.Model:
    return pk.Model.from_dict({
        "model": {"name": "one"},
        "parameters": {"CL": {"unit": "L/h"}, "CLMIN": {"unit": "L/h"}, "V": {"unit": "L"}},
        "derived": {"CLX": cl_expr},
        "compartments": [{"name": "central", "volume": "V"}],
        "transfers": [{"type": "flow", "from": "central", "coefficient": "CLX"}],
        "sites": [{"name": "iv", "targets": "central"}],
    })


@pytest.mark.parametrize("text, fname, given, allowed", [
    ("max(CL, CLMIN, V)", "max", 3, 2),
    ("min(CL)", "min", 1, 2),
    ("exp(CL, V)", "exp", 2, 1),
    ("sqrt(CL, V, V)", "sqrt", 3, 1),
    ("log()", "log", 0, 1),
    ("abs(CL, V)", "abs", 2, 1),
])
def test_function_arity_is_checked_at_parse_time(text, fname, given, allowed):
    # before: numpy's extra positional argument is `out`, so max(CL, CLMIN, V) overwrote V
    with pytest.raises(pk.ModelError) as exc:
        _one_compartment(text)
    msg = str(exc.value)
    assert text in msg and f"'{fname}'" in msg
    assert f"got {given} argument" in msg and f"exactly {allowed} argument" in msg
    assert "derived.CLX" in msg


@pytest.mark.parametrize("text", ["exp(x=CL)", "max(CL, V, out=V)", "max(*CL)", "exp(**CL)", "exp + CL"])
def test_functions_take_no_keywords_no_out_no_star(text):
    with pytest.raises(pk.ModelError):
        Expression.parse(text, "derived.X")


def test_two_argument_max_leaves_its_inputs_alone():
    cols = {"CL": np.array([1.0, 3.0]), "CLMIN": np.array([2.0, 2.0]), "V": np.array([50.0, 50.0])}
    before = {k: v.copy() for k, v in cols.items()}
    out = Expression.parse("max(CL, CLMIN) / V").evaluate(cols)
    np.testing.assert_allclose(out, [2.0 / 50, 3.0 / 50])
    for k in cols:
        np.testing.assert_array_equal(cols[k], before[k])
    # and through a model: 100 mg into V = 50 L gives 2 mg/L at t = 0+
    res = pk.simulate(_one_compartment("max(CL, CLMIN)"), pk.Dose(100.0, "iv"),
                      {"CL": 1.0, "CLMIN": 2.0, "V": 50.0}, times=[0.0, 1e-9])
    assert np.ravel(res.concentration("central"))[-1] == pytest.approx(2.0, rel=1e-6)


# ---------------------------------------------------------------- 5. a modified Drug object is honoured
def _plasma_auc(res) -> float:
    s = res.summary()
    return float(s.loc[s["group"] == "plasma", "auc_p50"].iloc[0])


def test_modified_drug_object_is_simulated_everywhere():
    # before: pk.simulate(drug) and simulate_drug took drug.name and ran the file's values
    d = pk.drug("methotrexate")
    d4 = d.with_values(CL=d.parameters["CL"] * 4)
    assert d4.parameters["CL"] == pytest.approx(4 * d.parameters["CL"])
    reg = "12 mg iv once"
    base = _plasma_auc(pk.simulate(d, reg, days=7, unit="mg/L"))
    assert base == pytest.approx(_plasma_auc(pk.simulate("methotrexate", reg, days=7, unit="mg/L")))
    runs = {
        "pk.simulate": pk.simulate(d4, reg, days=7, unit="mg/L"),
        "pk.simulate_drug": pk.simulate_drug(d4, {"iv": reg}, days=7, unit="mg/L"),
        "Scenario": pk.run(pk.Scenario((pk.Arm("iv", reg, drug=d4),), days=7, unit="mg/L")),
    }
    for how, res in runs.items():
        ratio = _plasma_auc(res) / base
        # plasma AUC = dose / CL for an IV bolus; the CNS spaces return drug to plasma, so about 1/4
        assert ratio == pytest.approx(0.25, abs=0.02), (how, ratio)
        assert res.drug_info("methotrexate").parameters["CL"] == pytest.approx(d4.parameters["CL"])


# ---------------------------------------------------------------- 6. NONMEM event tables
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import pandas as pd  # noqa: E402

from pkcsf.engine.dosing import from_nonmem  # noqa: E402

_P1 = {k: v["value"] for k, v in json.loads((Path(__file__).parent / "data" / "problems.json").read_text())
       ["problems"]["it_linear"]["params"].items()}


def _table(**cols):
    n = len(next(iter(cols.values())))
    base = {"TIME": [0.0] * n, "AMT": [12.0] * n, "CMT": ["icv"] * n}
    base.update(cols)
    return pd.DataFrame(base)


def test_nonmem_ids_never_merge_and_text_ids_are_labels():
    # before: 1 and 1.5 became one subject (int(ID)); 'pt-01' crashed in int()
    regs = from_nonmem(_table(ID=[1, 1.5], AMT=[12.0, 24.0]))
    assert list(regs) == [1, 1.5]
    assert [r.doses[0].amount for r in regs.values()] == [12.0, 24.0]
    regs = from_nonmem(_table(ID=["pt-01", "pt-02", "pt-01"]))
    assert {k: len(r.doses) for k, r in regs.items()} == {"pt-01": 2, "pt-02": 1}
    # the results carry the labels, also when numbers and text are mixed
    res = pk.simulate("reference_p1", _table(ID=[1, "pt-02"], AMT=[12.0, 24.0]), _P1, times=[0.0, 1.0])
    assert list(res.ids) == [1, "pt-02"]
    assert list(res.to_frame()["id"].unique()) == [1, "pt-02"]


def test_nonmem_counts_must_be_whole_numbers():
    # before: ADDL 2.5 was silently truncated to 2 doses
    with pytest.raises(pk.DosingError) as exc:
        from_nonmem(_table(ID=[1], II=[24.0], ADDL=[2.5]))
    assert "row 0.ADDL" in str(exc.value) and "2.5" in str(exc.value)
    with pytest.raises(pk.DosingError, match=r"row 0\.EVID.*1\.5"):
        from_nonmem(_table(ID=[1], EVID=[1.5]))
    assert from_nonmem(_table(ID=[1], II=[24.0], ADDL=[2.0]))[1].doses[0].addl == 2


@pytest.mark.parametrize("cols", [{"TIME": [0.0], "time": [1.0]}, {"AMT": [1.0], "amt": [2.0]},
                                  {"ID": [1], "id": [2]}])
def test_nonmem_duplicate_columns_are_errors(cols):
    # before: one of TIME / time was used silently
    df = _table(ID=[1]) if "ID" not in cols else _table(TIME=[0.0])
    for k, v in cols.items():
        df[k] = v
    with pytest.raises(pk.DosingError) as exc:
        from_nonmem(df)
    msg = str(exc.value)
    assert "case-insensitive" in msg and all(k in msg for k in cols)


@pytest.mark.parametrize("col, value, row", [("EVID", np.nan, 1), ("ID", np.nan, 1), ("AMT", "ten", 1),
                                             ("TIME", "noon", 0), ("II", "daily", 1)])
def test_nonmem_bad_cells_name_column_row_and_value(col, value, row):
    df = _table(ID=[1, 2], EVID=[1, 1], II=[0.0, 0.0]).astype(object)
    df.loc[row, col] = value
    with pytest.raises(pk.DosingError) as exc:
        from_nonmem(df)
    msg = str(exc.value)
    assert f"row {row}.{col}" in msg and repr(value) in msg
