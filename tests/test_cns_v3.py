"""CNS model v3 (segmented spinal canal): timing against cisternography, mass balance, read-outs, variants,
calibration records and the route-comparison interval."""
import numpy as np
import pytest

import pkcsf as pk
from pkcsf.clinical import cns
from pkcsf.core.errors import ParameterError
from pkcsf.core.paths import builtin_dir
from pkcsf.core.tomlio import tomllib

SEGMENTS = ["spinal_c1c4", "spinal_c5t2", "spinal_t3t7", "spinal_t8t11", "spinal_t12l2", "spinal_lumbar"]
T = np.round(np.arange(0.0, 48.0001, 0.05), 6)


@pytest.fixture(scope="module")
def mtx():
    return cns.setup("methotrexate", model="v3")


@pytest.fixture(scope="module")
def lumbar12(mtx):
    return mtx.simulate(pk.Dose("12 mg", mtx.sites["lumbar"]), times=T)


def test_cisterna_magna_peaks_on_the_cisternography_time_scale(mtx, lumbar12):
    # Dyke J et al., Clin Imaging 2020;68:1-6 (PMID 32544736): after a lumbar intrathecal gadolinium injection in 8
    # healthy volunteers, 'gadolinium in the intracranial CSF spaces peaked within 1-3 h'; radionuclide
    # cisternography norms: tracer in the basal cisterns at 1 h, over the cerebral area at 3-4 h. The issue's
    # acceptance window is a cisterna-magna peak at 1-4 h (v2 reached ~70 umol/L within 15 min).
    c = lumbar12.concentration("cm", unit="umol/L", mw=mtx.mw)[0]
    tmax = T[np.argmax(c)]
    assert 1.0 <= tmax <= 4.0
    assert c[T == 0.25][0] < 0.1 * c.max()          # no near-instant arrival at the cisterna


def test_mass_balance_lumbar_ommaya_intracisternal(mtx):
    for route in ("lumbar", "ommaya", "intracisternal", "lumbar_high"):
        site = mtx.sites.get(route, route)
        res = pk.simulate(mtx.model, pk.Dose(12.0, site), mtx.parameters, times=T)
        assert np.allclose(res.total_mass()[0], 12.0, rtol=1e-6, atol=1e-9)


def test_groups_and_every_segment_read_out(mtx, lumbar12):
    assert mtx.outputs["lumbar"] == ["spinal_lumbar"]
    assert mtx.outputs["spinal"] == SEGMENTS[:-1]
    for g in ("ventricular", "cisternal", "cranial_sas", "spinal", "lumbar", "plasma", "brain_ecf"):
        assert mtx.outputs[g], g
    for s in SEGMENTS:
        c = lumbar12.concentration(s)[0]
        assert np.all(np.isfinite(c)) and c.max() > 0.0
    # the lumbar dose spreads upwards: peak concentration falls and peaks later with distance from the sac
    peaks = [lumbar12.concentration(s)[0].max() for s in SEGMENTS[::-1]]
    tmax = [T[np.argmax(lumbar12.concentration(s)[0])] for s in SEGMENTS[::-1]]
    assert all(a > b for a, b in zip(peaks, peaks[1:]))
    assert all(a <= b for a, b in zip(tmax, tmax[1:]))


def test_dispersion_falls_towards_the_lumbar_end(mtx):
    # an intracisternal dose spreads down the canal: later and lower peaks with distance, and the front slows down
    # towards the lumbar end, where the CSF oscillation (and so the dispersion) fades
    res = mtx.simulate(pk.Dose(12.0, "intracisternal"), times=T)
    peaks = [res.concentration(s)[0].max() for s in SEGMENTS]
    tmax = [T[np.argmax(res.concentration(s)[0])] for s in SEGMENTS]
    assert all(a > b for a, b in zip(peaks, peaks[1:]))
    assert all(a < b for a, b in zip(tmax, tmax[1:]))
    # delay per vertebral level grows caudally: C1-C4 -> C5-T2 (4.5 levels) vs T12-L2 -> L3-S2 (4 levels)
    assert (tmax[5] - tmax[4]) > (tmax[1] - tmax[0])


def test_v2_stays_the_default_and_unknown_model_is_refused():
    # methotrexate's file gives a CSF-side binding site (K_BIND > 0): the v2 model with it; v3 has none
    assert cns.setup("methotrexate").model.name == "cns_csf_binding"
    assert cns.setup("cytarabine").model.name == "cns_csf"
    assert cns.setup("methotrexate", model="v3").model.name == "cns_csf_v3"
    # a model without the site says that it does not use K_BIND rather than dropping it silently
    assert any(n.startswith("K_BIND") and "not used" in n for n in cns.setup("methotrexate", model="v3").notes)
    assert not any(n.startswith("K_BIND") for n in cns.setup("methotrexate").notes)
    assert cns.DEFAULT_CNS_MODEL == "v2"
    with pytest.raises(ParameterError, match="model"):
        cns.setup("methotrexate", model="v4")


@pytest.mark.parametrize("drug,kw,model_name", [
    ("cytarabine_liposomal", {}, "cns_csf_v3_liposomal"),
    ("osimertinib", {"variant": "saturable"}, "cns_csf_v3_saturable"),
    ("osimertinib", {"metabolite": True}, "cns_csf_v3_az5104"),
])
def test_variants_build_and_keep_mass(drug, kw, model_name):
    st = cns.setup(drug, model="v3", **kw)
    assert st.model.name == model_name
    route = "lumbar" if "lumbar" in st.sites else "oral"
    res = pk.simulate(st.model, pk.Dose(10.0, st.sites[route]), st.parameters, times=np.linspace(0, 24, 25))
    assert np.allclose(res.total_mass()[0], 10.0, rtol=1e-5)


def test_v3_calibration_records():
    cal = builtin_dir("parameters") / "calibration"
    with open(cal / "csf_transport_v3.toml", "rb") as fh:
        rec = tomllib.load(fh)
    assert rec["calibration"]["model"] == "v3"
    assert "cisternography_dyke2020_cm_tmax" in [d["id"] for d in rec["data"]]
    # tissue loss fixed at the published middle (1.58 h) since 3 Dec 2026: the fit put it at a bound
    assert "CL_EFFLUX_BBB_V3" not in rec["fitted"]
    names = rec["covariance"]["cov_names"]
    cov = np.asarray(rec["covariance"]["cov_log"])
    assert cov.shape == (len(names), len(names)) and np.allclose(cov, cov.T, rtol=1e-4, atol=1e-12)
    for alt in ("csf_transport_v3_reservoir", "csf_transport_v3_absorption", "csf_transport_v3_dispersion"):
        with open(cal / f"{alt}.toml", "rb") as fh:
            r = tomllib.load(fh)
        assert r["calibration"]["comparison_only"] is True
        assert r["calibration"]["cost"] > 0


def test_route_comparison_interval_small():
    from pkcsf.clinical.uncertainty import calibration_draws, route_comparison_interval

    d1 = calibration_draws("csf_transport_v3", n=6, seed=3, method="linearized")
    d2 = calibration_draws("csf_transport_v3", n=6, seed=3, method="linearized")
    assert d1.equals(d2) and len(d1) == 7
    tab = route_comparison_interval("methotrexate", "12 mg", model="v3", n=6, seed=3, days=2, method="linearized")
    assert tab["calibration"][0] == "csf_transport_v3"
    r = tab.set_index("quantity")
    ratio = r.loc["auc_ratio_lumbar_over_ommaya"]
    assert 0.0 < ratio["lo"] <= ratio["median"] <= ratio["hi"] < 1.0
    assert r.loc["time_above_h_ommaya", "typical"] > 0.0
    with pytest.raises(ParameterError, match="level"):
        route_comparison_interval("methotrexate", "12 mg", n=2, level=90)


def test_posterior_draws_are_reweighted_by_the_calibration_data():
    from pkcsf.clinical.uncertainty import calibration_draws

    d = calibration_draws("csf_transport_v3", n=3, seed=2, proposals=2)   # 2 proposals x 11 data (slow part)
    assert len(d) == 4 and 1.0 <= d.attrs["ess"] <= 2.0 + 1e-9 and d.attrs["proposals"] == 2
    rec = tomllib.load(open(builtin_dir("parameters") / "calibration" / "csf_transport_v3.toml", "rb"))
    for k in d.columns:                                   # every draw within the calibration bounds
        lo, hi = rec["fitted"][k]["bounds"]
        assert ((d[k] >= lo * (1 - 1e-9)) & (d[k] <= hi * (1 + 1e-9))).all()
