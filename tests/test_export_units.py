"""ScenarioResult.to_xarray labels the data with the arms' own units (``Arm(..., unit=...)``), not the scenario's
default (before: a dataset of nmol/L data said ``unit: umol/L``).
"""
import numpy as np
import pytest

from pkcsf.clinical.export import scenario_to_xarray
from pkcsf.clinical.scenario import Arm, Scenario, run


def _res(*units):
    arms = tuple(Arm(f"a{i}", "12 mg lumbar once", drug="methotrexate", unit=u) for i, u in enumerate(units))
    return run(Scenario(arms, subjects=2, days=1, groups=["plasma", "lumbar"]), progress=False)


def test_to_xarray_says_the_arms_unit_not_the_scenarios():
    pytest.importorskip("xarray", reason="xarray (the xarray extra) is not installed")
    res = _res("nmol/L", "nmol/L")
    assert res.scenario.unit == "umol/L"
    ds = res.to_xarray()
    assert ds.attrs["unit"] == "nmol/L"
    for v in ("methotrexate", "methotrexate_typical"):
        assert ds[v].attrs["units"] == "nmol/L"
    assert list(ds["unit"].to_numpy()) == ["nmol/L", "nmol/L"]
    # and the numbers are those nmol/L
    np.testing.assert_array_equal(ds["methotrexate"].sel(arm="a0").to_numpy()[:, -1],
                                  res["a0"].profiles["methotrexate"][:, -1])


def test_arms_with_different_units_do_not_claim_one():
    pytest.importorskip("xarray", reason="xarray (the xarray extra) is not installed")
    res = _res("nmol/L", "mg/L")
    ds = scenario_to_xarray(res)           # res.to_xarray() refuses mixed units; the export itself must not lie
    assert "unit" not in ds.attrs and "units" not in ds["methotrexate"].attrs
    assert list(ds["unit"].to_numpy()) == ["nmol/L", "mg/L"]
    assert ds["methotrexate"].sel(arm="a1")["unit"].item() == "mg/L"
