"""Osimertinib's metabolite AZ5104 (``metabolite=True``) in mass and molar units.

The model keeps AZ5104 in parent-mass equivalents (one molecule of AZ5104 per molecule of osimertinib formed), so a
molar unit counts molecules with osimertinib's MW, and a mass unit must be AZ5104's own mass (x MW_AZ5104 / MW).
Before the fix a mass unit reported osimertinib-mass equivalents: Cmax 0.02708 mg/L for 54.20 nmol/L (x 499.62)
instead of 0.02632 mg/L (x 485.59).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pkcsf.clinical import cns
from pkcsf.clinical.scenario import Arm, Scenario, run

MW = 499.62
MW_AZ5104 = 485.59
POP = pd.DataFrame({"ID": [1], "WT": [62.0], "ALB": [39.0], "AGE": [60.0], "HT": [160.0]})
# 0.005 mg/L of AZ5104 itself, written in nmol/L
THR_MASS = "0.005 mg/L"
THR_SAME = f"{0.005 / MW_AZ5104 * 1e6!r} nmol/L"


def _run(unit, solver="auto", events=False):
    if events:
        rows = [{"ID": 1, "TIME": 24.0 * k, "AMT": 80.0, "CMT": "oral", "EVID": 1, "WT": 62.0, "ALB": 39.0,
                 "AGE": 60.0, "HT": 160.0} for k in range(3)]
        arm = Arm("m", pd.DataFrame(rows), drug="osimertinib", metabolite=True, unit=unit)
        scn = Scenario((arm,), days=3, groups=["plasma", "metabolite"], thresholds=["10 nmol/L", THR_MASS, THR_SAME])
    else:
        arm = Arm("m", "80 mg oral daily x 3 days", drug="osimertinib", metabolite=True, unit=unit)
        scn = Scenario((arm,), subjects=1, days=3, seed=1, population=POP, variability=False, solver=solver,
                       groups=["plasma", "metabolite"], thresholds=["10 nmol/L", THR_MASS, THR_SAME])
    res = run(scn, progress=False)
    return res.metrics().set_index("group"), res["m"]


@pytest.mark.parametrize("how", [dict(), dict(solver="radau"), dict(events=True)], ids=["fused", "radau", "events"])
def test_metabolite_mass_unit_is_own_mass(how):
    mg, arm_mg = _run("mg/L", **how)
    nm, arm_nm = _run("nmol/L", **how)
    for col in ("cmax", "auc", "auc_last", "trough_last", "cmax_last"):
        if col not in mg:
            continue
        # AZ5104 in mg/L = nmol/L x MW_AZ5104 (its own mass), osimertinib with its own MW
        np.testing.assert_allclose(mg.loc["metabolite", col], nm.loc["metabolite", col] * MW_AZ5104 * 1e-6,
                                   rtol=1e-6, err_msg=col)
        np.testing.assert_allclose(mg.loc["plasma", col], nm.loc["plasma", col] * MW * 1e-6, rtol=1e-6, err_msg=col)
    # the band profiles too
    g = arm_mg.groups["osimertinib"].index("metabolite")
    np.testing.assert_allclose(arm_mg.profiles["osimertinib"][..., g],
                               arm_nm.profiles["osimertinib"][..., g] * MW_AZ5104 * 1e-6, rtol=1e-6)
    # thresholds do not depend on the result unit; a mass threshold is AZ5104's own mass on the metabolite group
    for thr in ("10 nmol/L", THR_MASS, THR_SAME):
        np.testing.assert_allclose(mg[f"time_above[{thr}]"], nm[f"time_above[{thr}]"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(mg.loc["metabolite", f"time_above[{THR_MASS}]"],
                               mg.loc["metabolite", f"time_above[{THR_SAME}]"], rtol=1e-6, atol=1e-6)
    assert mg.loc["metabolite", f"time_above[{THR_MASS}]"] > 0


def test_group_factors():
    st = cns.setup("osimertinib", metabolite=True)
    f = st.group_factors(["plasma", "metabolite", "plasma_az5104"], "mg/L")
    np.testing.assert_allclose(f, [1.0, MW_AZ5104 / MW, MW_AZ5104 / MW])
    f = st.group_factors(["plasma", "metabolite"], "nmol/L")
    np.testing.assert_allclose(f, [1e6 / MW, 1e6 / MW])
    assert st.group_mw("lumbar") == MW and st.group_mw("metabolite") == MW_AZ5104
