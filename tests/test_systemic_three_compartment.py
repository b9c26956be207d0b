"""The third systemic compartment (V3, Q3; methotrexate's Joerger 2006 model, docs/model.md "Decisions")."""
import numpy as np
from scipy.linalg import expm

import pkcsf as pk
from pkcsf.clinical import cns


def _three_compartment_plasma(p, dose, t):
    """Plasma concentration after an IV bolus of a three-compartment model, by the matrix exponential."""
    cl, v1, v2, q, v3, q3 = (p[k] for k in ("CL", "V1", "V2", "Q", "V3", "Q3"))
    k = np.array([[-(cl + q + q3) / v1, q / v2, q3 / v3],
                  [q / v1, -q / v2, 0.0],
                  [q3 / v1, 0.0, -q3 / v3]])
    return np.array([(expm(k * ti) @ [dose, 0.0, 0.0])[0] / v1 for ti in t])


def test_methotrexate_plasma_is_joergers_three_compartment_model():
    """After an IV bolus the model's plasma follows the closed three-compartment solution (the CNS exchanges
    remove ~1e-4 of the flux), with the slow third phase: the deep compartment holds drug at 72 h."""
    st = cns.setup("methotrexate")
    p = st.parameters
    assert p["Q3"] > 0 and p["V3"] > 5 * p["V1"]
    t = np.array([0.5, 2.0, 6.0, 12.0, 24.0, 48.0, 72.0, 120.0])
    res = st.simulate(pk.Dose(1000.0, "iv"), times=t)
    got = res.concentration("plasma")[0]
    want = _three_compartment_plasma(p, 1000.0, t)
    np.testing.assert_allclose(got, want, rtol=5e-3)
    assert res.amount("deep")[0][-2] > 0.01 * 1000.0


def test_a_drug_without_q3_keeps_its_deep_compartment_empty():
    """Q3 defaults to 0 (drugs.py): a two-compartment drug's deep compartment stays empty."""
    st = cns.setup("pemetrexed")
    assert st.parameters["Q3"] == 0.0
    res = st.simulate(pk.Dose(500.0, "iv"), times=np.array([1.0, 24.0]))
    assert np.all(res.amount("deep")[0] == 0.0)

