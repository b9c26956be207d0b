"""Structural properties of the CNS/CSF model (models/cns_csf*.toml with pkcsf.cns)."""
import numpy as np
import pytest

import pkcsf as pk
from pkcsf import cns

T = np.linspace(0.0, 72.0, 289)


def _run(st, route, dose=12.0, times=T):
    return st.simulate(pk.Dose(dose, st.sites[route]), times=times)


@pytest.mark.parametrize("name", cns.available_drugs())
def test_every_route_every_drug_and_mass_balance(name):
    d = cns.drug(name)
    for variant in d.variants:
        st = cns.setup(d, variant=variant)
        for route in st.sites:
            res = _run(st, route)
            total = res.total_mass()[0]
            assert np.allclose(total, 12.0, rtol=1e-5), (name, variant, route, total[[0, -1]])
            assert np.all(res.amounts >= -1e-9)


def test_lumbar_dose_reaches_ventricles_late_and_weakly():
    st = cns.setup("methotrexate")
    lum = _run(st, "lumbar").concentration("lv")[0]
    omm = _run(st, "ommaya").concentration("lv")[0]
    assert lum.max() < 0.1 * omm.max()
    assert T[np.argmax(lum)] > 4.0 > T[np.argmax(omm)]
    # and the lumbar sac sees far more after a lumbar dose than after an Ommaya dose early on
    lum_l = _run(st, "lumbar").concentration("spinal_lumbar")[0]
    omm_l = _run(st, "ommaya").concentration("spinal_lumbar")[0]
    assert lum_l[4] > 10 * omm_l[4]


def test_ommaya_covers_the_whole_space():
    st = cns.setup("methotrexate")
    res = _run(st, "ommaya")
    for c in ["lv", "tfv", "cm", "sas_cranial", "spinal_ct", "spinal_lumbar"]:
        assert res.concentration(c)[0].max() * 1e3 / st.mw > 1.0, c     # above 1 umol/L everywhere


def test_shunt_and_blocks_move_exposure_the_expected_way():
    base = cns.setup("methotrexate")
    auc = lambda st, route, c: np.trapezoid(_run(st, route).concentration(c)[0], T)
    shunt = cns.setup("methotrexate", pathologies={"vp_shunt": True})
    assert auc(shunt, "ommaya", "spinal_lumbar") < auc(base, "ommaya", "spinal_lumbar")
    assert auc(shunt, "ommaya", "lv") < auc(base, "ommaya", "lv")
    sblock = cns.setup("methotrexate", pathologies={"spinal_block": True})
    assert auc(sblock, "ommaya", "spinal_lumbar") < 0.2 * auc(base, "ommaya", "spinal_lumbar")
    assert auc(sblock, "lumbar", "spinal_lumbar") > auc(base, "lumbar", "spinal_lumbar")
    ablock = cns.setup("methotrexate", pathologies={"aqueduct_block": True})
    assert auc(ablock, "ommaya", "cm") < 0.2 * auc(base, "ommaya", "cm")
    slow = cns.setup("methotrexate", pathologies={"F_TURNOVER": 0.5})
    assert auc(slow, "lumbar", "spinal_lumbar") > auc(base, "lumbar", "spinal_lumbar")
    leak = cns.setup("methotrexate", pathologies={"F_LEAK": 0.5})
    # half the dose in the lumbar sac (plus a trace re-entering from plasma after epidural absorption)
    assert auc(leak, "lumbar", "spinal_lumbar") == pytest.approx(0.5 * auc(base, "lumbar", "spinal_lumbar"), rel=1e-2)


def test_pathology_units_and_errors():
    st = cns.setup("methotrexate", pathologies={"Q_SHUNT": "0.3 mL/min"})
    assert st.parameters["Q_SHUNT"] == pytest.approx(0.018)
    with pytest.raises(pk.ParameterError):
        cns.setup("methotrexate", pathologies={"NOT_A_THING": 1})


def test_pediatric_scaling():
    adult = cns.setup("methotrexate")
    infant = cns.setup("methotrexate", age=0.5)
    child = cns.setup("methotrexate", age=4)
    assert infant.parameters["V_LV"] == pytest.approx(0.5 * adult.parameters["V_LV"])
    assert infant.parameters["Q_CSF"] == pytest.approx(0.5 * adult.parameters["Q_CSF"])
    assert child.parameters["V_SAS_CRANIAL"] == pytest.approx(adult.parameters["V_SAS_CRANIAL"])
    # same dose -> about twice the ventricular concentration in the infant (why IT doses are age-based)
    ci = _run(infant, "ommaya").concentration("lv")[0][4]
    ca = _run(adult, "ommaya").concentration("lv")[0][4]
    assert 1.6 < ci / ca < 2.4


def test_liposomal_sites_and_readouts():
    st = cns.setup("cytarabine_liposomal")
    assert st.sites["lumbar"] == "lumbar_liposomal"
    assert "lumbar_liposomal" in st.outputs
    res = st.simulate(pk.Dose(50, st.sites["lumbar"]), times=np.linspace(0, 336, 337))
    free = res.concentration("spinal_lumbar")[0]
    enc = res.concentration("lipo_spinal_lumbar")[0]
    assert enc[1] > free[1] > 0
    assert free[-1] > cns.drug("cytarabine").thresholds["cytotoxic_low"]


def test_osimertinib_variants_differ_and_ratio_rises_with_dose():
    ratios = {}
    for v in ("linear", "saturable"):
        st = cns.setup("osimertinib", variant=v)
        for dose in (80, 160):
            res = st.simulate(pk.Dose(dose, "oral", ii=24, addl=29), times=np.arange(0, 721.0, 1.0))
            ratios[v, dose] = res.concentration("spinal_lumbar")[0][-12] / res.concentration("plasma")[0][-12]
    assert ratios["linear", 160] == pytest.approx(ratios["linear", 80], rel=1e-3)
    assert ratios["saturable", 160] > 1.5 * ratios["saturable", 80]


def test_setup_provenance():
    st = cns.setup("osimertinib", variant="saturable", metabolite=True)
    assert "plasma_az5104" in st.model.compartment_names
    assert any(a.name == "KM_EFFLUX_CSF" for a in st.assumptions())
    assert any("Brown" in c for c in st.cite())
    assert st.variability["CL"] == pytest.approx(0.485)
