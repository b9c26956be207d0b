"""Implausible covariates of a user's population are refused, naming the column, the row/ID, the value, the unit,
the plausible range and the likely unit slip (before: only finiteness was checked, so HT = 1.75 (metres) gave a
BSA of 0.18 m2 and an 8 g/m2 methotrexate Cmax of 42 instead of about 690 umol/L, and ALB = 3.9 (g/dL) an
osimertinib Cmax 3.6 times too high).
"""
import math

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.clinical.covariates import COVARIATES
from pkcsf.clinical.population import (
    COVARIATE_RANGES,
    CovariateDistribution,
    Demographics,
    Population,
    load_demographics,
)
from pkcsf.core.errors import ParameterError

GOOD = {"ID": [7, 8], "SEX": [0, 1], "AGE": [50.0, 6.0], "WT": [70.0, 20.0], "HT": [175.0, 115.0],
        "SCR": [0.9, 0.4], "ALB": [39.0, 40.0]}


def test_every_covariate_has_a_range_with_its_unit():
    assert set(COVARIATE_RANGES) == set(COVARIATES)
    for name, (unit, lo, hi, slips) in COVARIATE_RANGES.items():
        assert unit == COVARIATES[name] and lo < hi
        for a, b, hint in slips:        # a slip is outside the plausible range
            assert b <= lo or a >= hi or (a, b) == (2.0, 2.0), name
            assert name in hint


@pytest.mark.parametrize("column, value, slip", [
    ("HT", 1.75, "1.75: metres? HT is in cm"),
    ("HT", 1750.0, "mm?"),
    ("WT", -70.0, "sign slip"),
    ("WT", 0.0, "missing value"),
    ("WT", 154.0 / 0.4536 * 1.5, "pounds?"),
    ("WT", 70000.0, "grams?"),
    ("BSA", 20.0, "ft2?"),
    ("AGE", 600.0, "months?"),
    ("AGE", -1.0, "sign slip"),
    ("ALB", 3.9, "3.9: g/dL? ALB is in g/L"),
    ("CRCL", -50.0, "sign slip"),
    ("CRCL", 6000.0, "mL/h?"),
    ("SCR", 88.0, "umol/L? SCR is in mg/dL"),
    ("SEX", 2, "1/2 coding?"),
    ("SEX", 0.5, "SEX"),
])
def test_implausible_covariate_is_refused_with_unit_range_and_slip(column, value, slip):
    df = pd.DataFrame(GOOD).assign(BSA=[1.9, 0.8], CRCL=[90.0, 100.0])
    df[column] = df[column].astype(float)
    df.loc[1, column] = value
    with pytest.raises(ParameterError) as e:
        Population(data=df)
    msg = str(e.value)
    unit, lo, hi, _ = COVARIATE_RANGES[column]
    assert f"population data[{column!r}] row 1 (ID 8)" in msg
    assert f"got {float(value)!r}" in msg
    assert slip in msg
    if column != "SEX":
        assert f"{column} is in {unit}: plausible values {lo:g} to {hi:g} {unit}" in msg


def test_first_offending_row_is_named_without_id_and_as_a_dataframe_demographics():
    df = pd.DataFrame({"HT": [170.0, 1.6, 1.7], "WT": [70.0, 60.0, 65.0]}, index=[10, 11, 12])
    with pytest.raises(ParameterError, match=r"population data\['HT'\] row 11: got 1\.6; HT is in cm"):
        Population(demographics=df)


def test_plausible_values_and_range_edges_pass():
    df = pd.DataFrame(GOOD)
    pop = Population(data=df)
    assert pop.size == 2
    edges = pd.DataFrame({"AGE": [0.0, 120.0], "WT": [0.3, 350.0], "HT": [30.0, 250.0], "BSA": [0.1, 4.0],
                          "CRCL": [0.0, 300.0], "ALB": [10.0, 70.0], "SCR": [0.1, 20.0], "SEX": [0, 1]})
    Population(data=edges)


def test_shipped_demographics_pass():
    for name in ("adult", "pediatric", "breast"):
        Population(demographics=name)


def test_demographics_in_the_wrong_unit_are_refused():
    ht_m = CovariateDistribution("HT", "normal", (1.77, 1.63), (0.07, 0.065), 1.44, 1.98)
    demo = Demographics("metres", 0.5, (ht_m,), np.eye(1))
    with pytest.raises(ParameterError, match=r"demographics 'metres': covariates\.HT lower: got 1\.44; HT is in cm.*"
                                             r"metres\? HT is in cm"):
        Population(demographics=demo)
    alb = load_demographics("adult")
    bad = [c if c.name != "ALB" else CovariateDistribution("ALB", "normal", (3.9, 3.9), (0.6, 0.6))
           for c in alb.covariates]
    demo = Demographics("gdl", alb.p_female, tuple(bad), alb.correlation)
    with pytest.raises(ParameterError, match=r"covariates\.ALB mean: got 3\.9; ALB is in g/L.*g/dL\?"):
        Population(demographics=demo)


def test_simulate_refuses_height_in_metres_instead_of_a_tiny_bsa_dose():
    # before: accepted, BSA 0.18 m2, plasma Cmax 42 umol/L for 8 g/m2 (about 690 with HT 175 cm)
    ok = pd.DataFrame({"ID": [1], "WT": [70.0], "HT": [175.0], "AGE": [50.0], "CRCL": [87.0]})
    res = pk.simulate("methotrexate", "8 g/m2 iv over 4 h once", days=2, population=ok, variability=False,
                      groups=["plasma"])
    cmax = float(res.metrics()["cmax"].iloc[0])
    assert 500 < cmax < 900 and math.isfinite(cmax)
    bad = ok.assign(HT=[1.75])
    with pytest.raises(ParameterError, match=r"\['HT'\] row 0 \(ID 1\): got 1\.75.*metres\?"):
        pk.simulate("methotrexate", "8 g/m2 iv over 4 h once", days=2, population=bad, variability=False,
                    groups=["plasma"])
    neg = ok.assign(WT=[-70.0])
    with pytest.raises(ParameterError, match=r"\['WT'\] row 0 \(ID 1\): got -70\.0"):
        pk.simulate("methotrexate", "8 g/m2 iv over 4 h once", days=2, population=neg, variability=False,
                    groups=["plasma"])
