"""A user's own observations (``pkcsf validate --observations my.csv``): every row is checked against what its
quantity needs (the form of its window, the kind of its unit, its ``ref``) and its drug (route, dose), and a
prediction that cannot be right (not finite, negative, the half-life of a rising curve, a ratio over a reference
without drug) is refused naming the row's id, never reported as a number, and no numpy warning reaches the user.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from pkcsf.cli import main
from pkcsf.clinical.observation_checks import QUANTITY_RULES, NotFalling
from pkcsf.clinical.observations import QUANTITIES, ObservationError, check_observations, quantity_value
from pkcsf.clinical.validation import predict, predict_sets, run_validation, setup_for

HEADER = "id,drug,route,dose_mg,regimen,site,quantity,time_h,ref,observed,unit\n"


def row(**kw) -> dict:
    """A methotrexate lumbar half-life row (as mtx_bleyer_lumbar_t12_slow) with ``kw`` changed."""
    r = {"id": "x", "drug": "methotrexate", "route": "lumbar", "dose_mg": 20.8, "regimen": "bolus",
         "site": "spinal_lumbar", "quantity": "half_life", "time_h": "24-72", "ref": "", "observed": 14.0,
         "unit": "h"}
    r.update(kw)
    return r


def refused(words: tuple, **kw) -> None:
    """check_observations refuses the row naming the file, line, id and the words (column, value, rule)."""
    with pytest.raises(ObservationError) as e:
        check_observations(pd.DataFrame([row(**kw)]), "mine.csv")
    msg = str(e.value)
    assert "mine.csv, line 2 (id 'x')" in msg, msg
    for w in words:
        assert w in msg, msg


def cli(capsys, tmp_path, *lines: str, out: bool = False):
    f = tmp_path / "mine.csv"
    f.write_text(HEADER + "".join(line + "\n" for line in lines))
    argv = ["validate", "--observations", str(f)] + (["--out", str(tmp_path / "v")] if out else [])
    code = main(argv)
    o, e = capsys.readouterr()
    return code, o, e


def one_line_error(code, err, *words):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pkcsf: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in lines[0], lines[0]


def test_every_quantity_has_a_rule():
    assert set(QUANTITY_RULES) == set(QUANTITIES)


# ---------------------------------------------------------------- the window each quantity needs (defects 1, 2)
@pytest.mark.parametrize("kw, words", [
    ({"time_h": "5"}, ("time_h: got '5'", "a < b", "half_life")),
    ({"time_h": "5-5"}, ("time_h: got '5-5'", "a < b")),
    ({"quantity": "peak_concentration", "unit": "umol/L", "time_h": "4"}, ("time_h", "a < b")),
    ({"quantity": "csf_clearance", "unit": "mL/min", "time_h": "0-0"}, ("time_h: got '0-0'", "a < b")),
    ({"quantity": "csf_clearance", "unit": "mL/min", "time_h": "4-48"}, ("time_h: got '4-48'", "'0-b'")),
    ({"quantity": "csf_clearance", "unit": "mL/min", "route": "iv", "dose_mg": 865, "regimen": "infusion 24",
      "site": "lv", "time_h": "0-10"}, ("time_h: got '0-10'", "b > 24 h")),
    ({"quantity": "csf_clearance", "unit": "mL/min", "regimen": "q12 x 3", "time_h": "0-24"}, ("b > 24 h",)),
    ({"quantity": "concentration", "unit": "umol/L", "time_h": "0-24"}, ("time_h: got '0-24'", "a single time")),
    ({"quantity": "css_ratio", "unit": "1", "ref": "plasma", "time_h": "20-24"}, ("a single time",)),
])
def test_a_window_of_the_wrong_form_is_refused(kw, words):
    refused(words, **kw)


def test_the_forms_each_quantity_takes_are_accepted():
    ok = [row(), row(quantity="concentration", unit="umol/L", time_h="24"),
          row(quantity="concentration", unit="umol/L", time_h="24-24"),      # the same time
          row(quantity="csf_clearance", unit="mL/min", time_h="0-48"),
          row(quantity="css_ratio", unit="1", ref="plasma", time_h="24")]
    for i, r in enumerate(ok):
        r["id"] = f"r{i}"
    assert len(check_observations(pd.DataFrame(ok), "mine.csv")) == len(ok)


# ---------------------------------------------------------------- the unit's kind matches the quantity (defect 3)
@pytest.mark.parametrize("quantity, unit, kind, extra", [
    ("time_above", "umol/L", "a time unit", {"ref": "0.1 ug/mL", "time_h": "0-72"}),
    ("time_of_peak", "umol/L", "a time unit", {"time_h": "0-48"}),
    ("half_life", "mg/L", "a time unit", {}),
    ("concentration", "h", "a concentration unit", {"time_h": "24"}),
    ("peak_concentration", "1", "a concentration unit", {"time_h": "0-24"}),
    ("auc_ratio", "mg/L", "a dimensionless unit", {"ref": "plasma", "time_h": "0-24"}),
    ("csf_clearance", "h", "a flow unit", {"time_h": "0-48"}),
    ("auc", "mg/L", "a auc unit", {"time_h": "0-24"}),
    ("half_life", "hourz", "a time unit", {}),
])
def test_a_unit_of_another_kind_is_refused(quantity, unit, kind, extra):
    refused(("unit: got " + repr(unit), kind, quantity), quantity=quantity, unit=unit, **extra)


def test_a_time_in_another_time_unit_is_converted():
    h = predict(pd.Series(row(quantity="time_of_peak", route="ommaya", dose_mg=10.8, time_h="0-48")))
    m = predict(pd.Series(row(quantity="time_of_peak", route="ommaya", dose_mg=10.8, time_h="0-48", unit="min")))
    assert m == pytest.approx(60 * h)


# ---------------------------------------------------------------- the drug's routes, a positive dose (defect 4)
def test_a_route_the_drug_file_does_not_list_and_a_non_positive_dose_are_refused():
    refused(("route: got 'oral'", "a route of methotrexate", "lumbar, ommaya"), route="oral")
    refused(("dose_mg: got 0", "positive"), dose_mg=0)
    refused(("dose_mg: got -5", "positive"), dose_mg=-5)
    refused(("drug: got 'methotrexat'", "did you mean 'methotrexate'?"), drug="methotrexat")
    refused(("site: got ''", "pkcsf models"), site="")
    refused(("ref: got 'oral'", "a route of methotrexate"), quantity="route_peak_ratio", unit="1", ref="oral",
            time_h="0-48")
    # a liposomal row under the free drug's name was simulated as free cytarabine (25.9-fold off, no message)
    refused(("form: got 'liposomal'", "'free'", "cytarabine_liposomal"), drug="cytarabine", form="liposomal")
    check_observations(pd.DataFrame([row(drug="cytarabine_liposomal", form="liposomal", dose_mg=50)]))


def test_a_route_alias_is_read_as_the_route_and_a_compartment_is_dosed_straight_into():
    out = check_observations(pd.DataFrame([row(route="IT"), row(id="y", route="tfv"),
                                           row(id="z", quantity="route_peak_ratio", unit="1", ref="icv",
                                               time_h="0-48")]))
    assert list(out["route"]) == ["lumbar", "tfv", "lumbar"] and out.loc[2, "ref"] == "ommaya"


# ---------------------------------------------------------------- ref (defect 5)
def test_a_missing_or_stray_ref_names_the_ref_column():
    refused(("ref: got ''", "css_ratio", "reference compartment"), quantity="css_ratio", unit="1", time_h="24")
    refused(("ref: got ''", "auc_ratio"), quantity="auc_ratio", unit="1", time_h="0-24")
    refused(("ref: got ''", "threshold"), quantity="time_above", time_h="0-72")
    refused(("ref: got 'ten'", "threshold"), quantity="time_above", time_h="0-72", ref="ten")
    refused(("ref: got '0 ug/mL'", "above 0"), quantity="time_above", time_h="0-72", ref="0 ug/mL")
    refused(("ref: got 'plasma'", "empty for a half_life row"), ref="plasma")


def test_an_unknown_reference_compartment_names_the_ref_column(capsys, tmp_path):
    t = run_validation(pd.DataFrame([row(quantity="css_ratio", unit="1", route="iv", dose_mg=1730,
                                         regimen="infusion 24", time_h="24", ref="plasm", observed=0.02)]))
    assert t.loc[0, "status"].startswith("error") and "observation 'x': ref: got 'plasm'" in t.loc[0, "status"]
    assert "did you mean 'plasma'?" in t.loc[0, "status"] and np.isnan(t.loc[0, "predicted"])
    code, _, err = cli(capsys, tmp_path, "x,methotrexate,iv,1730,infusion 24,spinal_lumbar,css_ratio,24,plasm,0.02,1")
    one_line_error(code, err, "could not be simulated", "ref: got 'plasm'")


# ---------------------------------------------------------------- a file without rows (defect 6)
def test_a_file_with_only_the_header_is_refused(capsys, tmp_path):
    with pytest.raises(ObservationError, match="mine.csv: rows: got 0; at least one observation"):
        check_observations(pd.DataFrame(columns=list(row())), "mine.csv")
    code, _, err = cli(capsys, tmp_path, out=True)
    one_line_error(code, err, "mine.csv: rows: got 0")
    assert not (tmp_path / "v").exists()


# ---------------------------------------------------------------- predictions that cannot be right (defect 1)
@pytest.mark.parametrize("kw, words", [
    ({"route": "ommaya", "dose_mg": 10.8, "time_h": "0-1"}, ("time_h: got '0-1'", "does not fall")),
    ({"time_h": "0-0.001"}, ("time_h: got '0-0.001'", "at least 2 output times")),
    ({"quantity": "auc_ratio", "unit": "1", "route": "ommaya", "dose_mg": 10.8, "site": "lv", "time_h": "0-0.01",
      "ref": "brain_ecf", "observed": 0.5}, ("at least 2 output times",)),
])
@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.filterwarnings("error::numpy.exceptions.RankWarning")
def test_a_prediction_the_curves_do_not_give_is_refused_naming_the_row(kw, words):
    t = run_validation(pd.DataFrame([row(**kw)]))
    status = t.loc[0, "status"]
    assert status.startswith("error: ") and "observation 'x'" in status, status
    for w in words:
        assert w in status, status
    assert np.isnan(t.loc[0, "predicted"]) and np.isnan(t.loc[0, "fold_error"])


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.filterwarnings("error::numpy.exceptions.RankWarning")
def test_the_cli_refuses_the_run_and_writes_nothing(capsys, tmp_path):
    code, out, err = cli(capsys, tmp_path, "x,methotrexate,ommaya,10.8,bolus,spinal_lumbar,half_life,0-1,,14,h",
                         out=True)
    one_line_error(code, err, "could not be simulated", "observation 'x': time_h: got '0-1'", "no half-life")
    assert "inf" not in out and not (tmp_path / "v").exists()


def test_a_set_whose_half_life_does_not_fall_is_infinite_in_an_interval():
    """predict_sets keeps the interval's meaning (pkcsf.clinical.predictive_check): such a set is its top."""
    r = pd.Series(row(route="ommaya", dose_mg=10.8, time_h="0-1"))
    with pytest.raises(NotFalling):
        predict(r)
    st = setup_for(r)
    params = pd.DataFrame([st.parameters] * 2, columns=list(st.model.parameter_names))
    assert np.isposinf(predict_sets(r, st, params)).all()


T = np.round(np.arange(0.0, 48.0 + 0.025, 0.05), 10)


def value(c, cref=None, c2=None, **kw):
    return quantity_value(pd.Series(row(**kw)), 454.44, T, c, cref, c2)


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.filterwarnings("error::numpy.exceptions.RankWarning")
def test_quantity_value_refuses_impossible_curves_and_values():
    falling = 10.0 * np.exp(-0.1 * T)
    assert value(falling, time_h="2-12") == pytest.approx(math.log(2) / 0.1)
    rising = 1.0 - np.exp(-0.1 * T)
    with pytest.raises(NotFalling, match="observation 'x': time_h: got '2-12'.*no half-life"):
        value(rising, time_h="2-12")
    # a clearance whose curve still rises at the window end (the AUC cannot be extrapolated)
    with pytest.raises(ObservationError, match="observation 'x': time_h.*still rises"):
        value(rising, quantity="csf_clearance", unit="mL/min", time_h="0-48")
    # all doses of a regimen enter the clearance
    one = value(falling, quantity="csf_clearance", unit="mL/min", time_h="0-48")
    assert value(falling, quantity="csf_clearance", unit="mL/min", time_h="0-48",
                 regimen="q12 x 3") == pytest.approx(3 * one)
    # a ratio over a reference without drug
    with pytest.raises(ObservationError, match="observation 'x': ref: got 'brain_ecf'.*no value"):
        value(falling, np.zeros_like(T), quantity="auc_ratio", unit="1", time_h="0-24", ref="brain_ecf")
    with pytest.raises(ObservationError, match="ref.*no value"):
        value(falling, np.zeros_like(T), quantity="css_ratio", unit="1", time_h="24", ref="plasma")
    # a percentage is a ratio in %
    assert value(falling, falling / 4, quantity="peak_ratio", unit="%", time_h="0-24", ref="plasma") == \
        pytest.approx(400.0)
    # a curve that is not finite or clearly negative (a failed solve); rounding below 0 is 0
    with pytest.raises(ObservationError, match="observation 'x': site.*finite"):
        value(np.where(T > 5, np.nan, falling), quantity="peak_concentration", unit="mg/L", time_h="0-24")
    with pytest.raises(ObservationError, match="observation 'x': site.*>= 0"):
        value(falling - 1.0, quantity="concentration", unit="mg/L", time_h="47")
    assert value(np.where(T > 40, -1e-18, falling), quantity="concentration", unit="mg/L", time_h="45") == 0.0
    # no drug at the site: no time of peak
    with pytest.raises(ObservationError, match="no peak"):
        value(np.zeros_like(T), quantity="time_of_peak", time_h="0-24")
