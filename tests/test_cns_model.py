"""Structural properties of the CNS/CSF model (models/cns_csf*.toml with pkcsf.clinical.cns)."""
import re

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.clinical import cns, validation
from pkcsf.core.paths import builtin_dir
from pkcsf.core.tomlio import tomllib

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
    # hours later (against the bulk flow, by mixing only): Shapiro 1975 saw the opposite trip, ventricle -> lumbar, take 4 h
    assert T[np.argmax(lum)] >= 1.5 > T[np.argmax(omm)]
    # and the lumbar sac sees far more after a lumbar dose than after an Ommaya dose early on
    lum_l = _run(st, "lumbar").concentration("spinal_lumbar")[0]
    omm_l = _run(st, "ommaya").concentration("spinal_lumbar")[0]
    early = T <= 4.0
    # (only 2x in v2 since the 3 Dec 2026 calibration drove both spinal mixing clearances up: v2's canal is nearly
    # one well-mixed pool; v3's segmented canal keeps a lumbar dose in the sac, tests/test_cns_v3.py)
    assert np.trapezoid(lum_l[early], T[early]) > 1.5 * np.trapezoid(omm_l[early], T[early])


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



def test_a_route_name_gives_the_liposomal_product_not_free_drug():
    """Setup.simulate(Dose(50, "lumbar")) for DepoCyt used the model's plain lumbar site: all 50 mg free drug, a
    25-fold too high free peak, silently. A route name is now given at the drug's own site for that route."""
    st = cns.setup("cytarabine_liposomal")
    t = np.array([0.01, 1.0, 24.0, 336.0])
    by_route = st.simulate(pk.Dose(50, "lumbar"), times=t)
    by_site = st.simulate(pk.Dose(50, "lumbar_liposomal"), times=t)
    np.testing.assert_array_equal(by_route.amounts, by_site.amounts)
    reg = pk.Dose(50, "ommaya").repeat("14 d", 2)
    np.testing.assert_array_equal(st.simulate(reg, times=t).amounts,
                                  st.simulate(reg.with_sites({"ommaya": "ommaya_liposomal"}), times=t).amounts)
    free = cns.setup("methotrexate")          # routes that are their own sites: unchanged
    assert free.at_drug_sites(pk.Dose(12, "lumbar")) == pk.Dose(12, "lumbar")
    # every form the engine takes: a list, a {subject: regimen} dict, a NONMEM table (route aliases in any case)
    ref = by_site.amounts
    for reg in ([pk.Dose(50, "lumbar")], {1: pk.Regimen([pk.Dose(50, "LUMBAR")])},
                pd.DataFrame({"ID": [1], "TIME": [0.0], "AMT": [50.0], "CMT": ["IT"], "EVID": [1]})):
        np.testing.assert_array_equal(st.simulate(reg, times=t).amounts, ref)
    # v3's upper-lumbar puncture gives the particles too
    v3 = cns.setup("cytarabine_liposomal", model="v3").simulate(pk.Dose(50, "lumbar_high"), times=t)
    assert v3.amount("lipo_spinal_t12l2")[0][0] > 40


@pytest.mark.parametrize(("drug", "dose", "words"), [
    ("cytarabine_liposomal", pk.Dose(50, "iv"), "dose.site: got 'iv'; cytarabine_liposomal can be given by"),
    ("osimertinib", pk.Dose(50, "lumbar"), "dose.site: got 'lumbar'; osimertinib can be given by: iv, oral"),
    ("cytarabine_liposomal", pk.Dose(50, "lumbar", drug="cytarabine"), "dose.drug: got 'cytarabine'"),
])
def test_a_route_the_drug_is_not_given_by_or_another_drug_is_refused(drug, dose, words):
    with pytest.raises(pk.PkcsfError, match=re.escape(words)):
        cns.setup(drug).simulate(dose, times=[0.0, 1.0])


def test_settled_particles_stay_where_they_were_injected():
    """LIPO_MOBILITY scales the particles' bulk flow and mixing (docs/model.md, "Decisions", 5 Dec 2026): at 0 the
    encapsulated drug stays in the lumbar sac and only its release moves it; at 1 (shipped) they spread like solute."""
    st = cns.setup("cytarabine_liposomal")
    t = np.linspace(0.0, 96.0, 9)
    p = st.parameters
    settled = st.with_parameters(LIPO_MOBILITY=0.0).simulate(pk.Dose(50, "lumbar"), times=t)
    expected = 50 * (1 - p["F_FREE_INIT"]) * np.exp(-p["K_REL"] * t)
    np.testing.assert_allclose(settled.amount("lipo_spinal_lumbar")[0], expected, rtol=1e-9)
    assert np.all(settled.amount("lipo_spinal_ct")[0] == 0) and np.all(settled.amount("lipo_lv")[0] == 0)
    moving = st.simulate(pk.Dose(50, "lumbar"), times=t)
    assert moving.amount("lipo_sas_cranial")[0][-1] > 0.1 * moving.amount("lipo_spinal_lumbar")[0][-1]

def test_osimertinib_dose_effect_only_as_large_as_a_transporter_km_allows():
    """Issue 10: the saturable variant's Km is bounded to measured transporter Km values (>= 0.59 uM), so from 80 to
    160 mg the CSF/plasma ratio rises by well under 10% (0.5%), not 2.18-fold as in the U-flagged review figures;
    the linear variant keeps a dose-independent ratio. The exact fit of those figures needs a nM Km (comparison
    record osimertinib_csf_saturable_free)."""
    ratios = {}
    for v in ("linear", "saturable"):
        st = cns.setup("osimertinib", variant=v)
        for dose in (80, 160):
            res = st.simulate(pk.Dose(dose, "oral", ii=24, addl=29), times=np.arange(0, 721.0, 1.0))
            ratios[v, dose] = res.concentration("spinal_lumbar")[0][-12] / res.concentration("plasma")[0][-12]
    assert ratios["linear", 160] == pytest.approx(ratios["linear", 80], rel=1e-3)
    assert 1.0 < ratios["saturable", 160] / ratios["saturable", 80] < 1.1
    assert ratios["saturable", 80] == pytest.approx(ratios["linear", 80], rel=0.05)
    km_mg_l = cns.setup("osimertinib", variant="saturable").parameters["KM_EFFLUX"]
    assert km_mg_l / 499.62 * 1e3 >= 0.59                                   # uM: a Km a transporter can have
    free = tomllib.loads((builtin_dir("parameters") / "calibration" / "osimertinib_csf_saturable_free.toml")
                         .read_text())
    assert free["calibration"]["comparison_only"]
    assert free["fitted"]["KM_EFFLUX"]["value"] / 499.62 * 1e3 < 0.01     # the exact fit needs Km < 10 nM


def test_setup_provenance():
    st = cns.setup("osimertinib", variant="saturable", metabolite=True)
    assert "plasma_az5104" in st.model.compartment_names
    assert any(a.name == "FU" for a in st.assumptions())          # the osimertinib FU placeholder is listed
    assert st.parameters["CL_EFFLUX_BBB"] == 0.0                   # saturable variant: CL_EFFLUX_BBB_SAT replaces it
    assert st.parameters["VMAX_EFFLUX_BBB"] > 0
    assert any("Brown" in c for c in st.cite())
    assert st.variability["CL"] == pytest.approx(0.485)


# ----------------------------------------------------------------------------- CSF-facing tissue (v2)
def _slab_model(fractions, depth_cm, area_cm2=1000.0, d_cm2_s=1.2e-6, kp=0.27, k_cap=0.0):
    """A large well-mixed CSF pool facing a tissue slab cut into shells (fractions of depth), built with the same
    formulas as models/cns_csf.toml (diffusion clearance D*KP*A/distance between shell centres)."""
    dt = d_cm2_s * 3600.0
    comps = [pk.Compartment("csf", 10.0)]
    transfers = []
    prev, prev_h = "csf", 0.0
    for i, f in enumerate(fractions, 1):
        h = f * depth_cm
        comps.append(pk.Compartment(f"s{i}", kp * area_cm2 * h * 1e-3))
        dist = (prev_h + h) / 2.0
        transfers.append(pk.exchange(prev, f"s{i}", dt * kp * area_cm2 * 1e-3 / dist))
        if k_cap:
            transfers.append(pk.elimination(f"s{i}", k_cap * kp * area_cm2 * h * 1e-3))
        prev, prev_h = f"s{i}", h
    return pk.Model("slab", tuple(comps), tuple(transfers), (pk.Site("dose", (("csf", 1.0),)),))


@pytest.mark.parametrize("k_cap", [0.0, 0.1])
def test_tissue_shells_match_a_fine_discretisation(k_cap):
    """The three shells of models/cns_csf.toml (1/12, 1/4, 2/3 of the depth) take up drug from CSF within 13% of a
    30-shell discretisation of the same slab at 1 h and within 10% from 4 h to a week (the basis of the shell
    choice documented in the model; the CSF concentrations of the full model differ by < 8%)."""
    st = cns.setup("methotrexate")
    p = st.parameters
    depth = p["V_BRAIN"] * 1e3 / ((p["A_VENT"] + p["A_PIA"]) * 1e4)
    t = np.array([1.0, 4.0, 12.0, 24.0, 48.0, 96.0, 168.0])
    out = {}
    for name, fr in (("coarse", [1 / 12, 3 / 12, 8 / 12]), ("fine", [1 / 30] * 30)):
        m = _slab_model(fr, depth, k_cap=k_cap)
        res = pk.simulate(m, pk.Dose(100.0, "dose"), {}, times=t)
        out[name] = 100.0 - res.amount("csf")[0]          # drug that went into the tissue (or was lost from it)
    np.testing.assert_allclose(out["coarse"][0], out["fine"][0], rtol=0.13)
    np.testing.assert_allclose(out["coarse"][1:], out["fine"][1:], rtol=0.10)


def test_tissue_loss_is_bounded_by_the_published_half_time():
    """The CSF-facing tissue exchanges methotrexate with the CSF by diffusion (Blasberg's D and distribution space)
    and loses it to blood within the published 0.5-5 h (Li 2013, Ohata 1985, Blasberg 1975): it no longer acts as
    the months-long reservoir that produced Bleyer's 14-h slow phase (issue 10). Its effect on the late lumbar
    decline is therefore modest (within a factor 2 of no tissue at all); without methotrexate's CSF-side binding site
    (K_BIND 0) the late half-life stays far below Bleyer's 14 h, and the site, not the tissue, gives it."""
    st = cns.setup("methotrexate").with_parameters(K_BIND=0.0)
    p = st.parameters
    t_half_tissue = np.log(2) * p["KP_TISSUE"] * p["V_BRAIN"] / (p["PS_BBB"] + p["CL_EFFLUX_BBB"])
    assert 0.5 <= t_half_tissue <= 5.0
    t = np.arange(0.0, 72.01, 0.5)

    def late_t12(s):
        c = s.simulate(pk.Dose(20.8, "lumbar"), times=t).concentration("spinal_lumbar")[0]
        sel = t >= 24
        return np.log(2) / -np.polyfit(t[sel], np.log(c[sel]), 1)[0]

    with_tissue, without = late_t12(st), late_t12(st.with_parameters(KP_TISSUE=1e-6))
    assert 0.5 * without < with_tissue < 2.0 * without
    assert with_tissue < 7.0                                      # brain tissue alone: not Bleyer's 14 h
    # with the binding site: within 2-fold of Bleyer's 14 h until the Joerger refit (4 Dec 2026, late night), 6.8 h
    # since, a flagged calibration miss; the site, not the tissue, still gives most of the slow phase
    slow = late_t12(cns.setup("methotrexate"))
    assert slow > 7.0 or ("mtx_bleyer_lumbar_t12_slow" in validation.HYPOTHESES and slow > 1.5 * with_tissue)


def test_passive_blood_csf_entry_is_at_the_choroid_plexus():
    """F_BCSFB_CP = 1: during an IV infusion of a drug that barely enters brain tissue the ventricles (choroid plexus)
    are above the slowly drained lumbar sac, not the other way round (the previous volume-spread entry let the
    lumbar sac equilibrate with unbound plasma)."""
    st = cns.setup("methotrexate")
    res = st.simulate(pk.Dose(865, "iv", duration=24), times=np.array([24.0]))
    assert res.concentration("lv")[0][-1] > res.concentration("spinal_lumbar")[0][-1]


def test_rhesus_physiology_scales_the_human_set():
    hum = cns.setup("methotrexate")
    rh = cns.setup("methotrexate", physiology="rhesus")
    v_h = sum(hum.parameters[k] for k in ("V_LV", "V_TFV", "V_CM", "V_SAS_CRANIAL", "V_SPINAL_CT", "V_SPINAL_LUMBAR"))
    v_r = sum(rh.parameters[k] for k in ("V_LV", "V_TFV", "V_CM", "V_SAS_CRANIAL", "V_SPINAL_CT", "V_SPINAL_LUMBAR"))
    assert v_r == pytest.approx(0.015)                                    # Yaksh 2017: 15 mL
    fv = v_r / v_h
    assert rh.parameters["A_PIA"] == pytest.approx(hum.parameters["A_PIA"] * fv ** (2 / 3))
    assert rh.parameters["Q_CSF"] == pytest.approx(41.4e-6 * 60)          # 41.4 uL/min
    fq = rh.parameters["Q_CSF"] / hum.parameters["Q_CSF"]
    assert rh.parameters["Q_MIX_LUMBAR"] == pytest.approx(hum.parameters["Q_MIX_LUMBAR"] * fq)
    assert rh.parameters["PS_BCSFB"] == pytest.approx(hum.parameters["PS_BCSFB"] * fv)   # barrier scaled with size
    # the species value replaces the human one
    assert rh.parameters["CL_EFFLUX_CSF"] == pytest.approx(cns.drug("methotrexate").parameters["CL_EFFLUX_CSF_RHESUS"])
    res = rh.simulate(pk.Dose(0.5, "ommaya"), times=np.linspace(0, 48, 97))
    assert np.allclose(res.total_mass()[0], 0.5, rtol=1e-5)


def test_children_scale_tissue_too():
    adult = cns.setup("methotrexate")
    infant = cns.setup("methotrexate", age=0.5)
    assert infant.parameters["V_BRAIN"] == pytest.approx(0.5 * adult.parameters["V_BRAIN"])
    assert infant.parameters["A_PIA"] == pytest.approx(0.5 * adult.parameters["A_PIA"])
    assert infant.parameters["Q_MIX_LUMBAR"] == pytest.approx(0.5 * adult.parameters["Q_MIX_LUMBAR"])


def test_binding_site_model_follows_the_drug_values():
    """The CSF-side binding site (models/cns_csf_binding.toml) is used exactly when the drug gives K_BIND > 0:
    methotrexate's file does; K_BIND=0 returns to cns_csf; another drug can be given one; mass is kept."""
    assert cns.setup("methotrexate").model.name == "cns_csf_binding"
    assert cns.setup(cns.drug("methotrexate").with_values(K_BIND=0)).model.name == "cns_csf"
    st = cns.setup(cns.drug("cytarabine").with_values(K_BIND="0.01 1/h", K_UNBIND="0.05 1/h"))
    assert st.model.name == "cns_csf_binding" and st.parameters["K_BIND"] == pytest.approx(0.01)
    mtx = cns.setup("methotrexate")
    res = mtx.simulate(pk.Dose(12.0, "lumbar"), times=np.array([0.0, 24.0, 168.0]))
    bound = sum(res.amount(f"bound_{c}")[0] for c in ("lv", "tfv", "cm", "sas_cranial", "spinal_ct", "spinal_lumbar"))
    assert bound[1] > 0 and bound[2] < bound[1]                       # filled, then released
    total = sum(res.amount(c)[0] for c in mtx.model.compartment_names) + res.amount("eliminated")[0]
    np.testing.assert_allclose(total, 12.0, rtol=1e-9)


def test_binding_site_model_exact_solution_matches_an_adaptive_solver():
    """The binding-site model is linear: the exact (matrix-exponential) solution is the oracle for Rodas5P."""
    st = cns.setup("methotrexate")
    t = np.array([0.5, 2.0, 8.0, 24.0, 48.0, 96.0])
    exact = st.simulate(pk.Dose(12.0, "lumbar"), times=t)
    ode = st.simulate(pk.Dose(12.0, "lumbar"), times=t, solver="rodas5p", rtol=1e-9, atol=1e-12)
    for c in ("spinal_lumbar", "lv", "bound_spinal_lumbar", "bound_lv", "plasma"):
        np.testing.assert_allclose(ode.amount(c)[0], exact.amount(c)[0], rtol=1e-5, atol=1e-9)
