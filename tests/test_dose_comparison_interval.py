"""dose_comparison_interval: a steady-state CSF/plasma ratio at several dose levels with the calibration's
parameter uncertainty (issue 10, item 5: osimertinib 80 vs 160 mg with an interval)."""
import numpy as np
import pytest

from pkcsf.clinical.uncertainty import dose_comparison_interval
from pkcsf.core.errors import ParameterError

LM = {"leptomeningeal_disease": True}


@pytest.fixture(scope="module")
def osi():
    return dose_comparison_interval("osimertinib", ("80 mg", "160 mg"), pathologies=LM, n=40, seed=3)


def test_rows_and_interval_contain_the_typical_value(osi):
    assert list(osi["quantity"]) == ["ratio_80mg", "ratio_160mg", "ratio_change_160mg_vs_80mg"]
    for _, r in osi.iterrows():
        assert r["lo"] <= r["median"] <= r["hi"]
        assert r["n"] == 40 and r["level"] == 0.9 and r["calibration"] == "osimertinib_csf"
    # the calibrated CSF/plasma ratio is of the order of the data it was fitted to (1% and 2.18%)
    assert 0.005 < osi["typical"][0] < 0.03
    assert len(osi.attrs["draws"]) == 41


def test_linear_transport_gives_no_dose_effect_in_any_draw(osi):
    # linear kinetics: the ratio cannot depend on dose, whatever the parameter values (a property, not a fit)
    ch = osi.attrs["draws"]["ratio_change_160mg_vs_80mg"].to_numpy()
    assert np.allclose(ch, 1.0, rtol=1e-9)


def test_same_seed_same_interval(osi):
    again = dose_comparison_interval("osimertinib", ("80 mg", "160 mg"), pathologies=LM, n=40, seed=3)
    assert np.array_equal(again[["lo", "hi"]].to_numpy(), osi[["lo", "hi"]].to_numpy())


@pytest.mark.parametrize("kwargs, field", [
    ({"doses": ()}, "doses"),
    ({"level": 1.5}, "level"),
    ({"days": 0}, "days"),
    ({"every_h": -1}, "every_h"),
    ({"site": "nowhere"}, "site"),
    ({"variant": "saturable"}, "variant"),                      # the record was fitted with the linear variant
    ({"variant": "saturable", "calibration": "osimertinib_csf_saturable"}, "calibration"),   # 2 data, 2 values
])
def test_bad_input_names_the_field(kwargs, field):
    with pytest.raises(ParameterError) as e:
        dose_comparison_interval("osimertinib", **{"n": 5, **kwargs})
    assert field in str(e.value)
