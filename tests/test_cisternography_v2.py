"""The default CNS model (v2) against cisternography: a lumbar dose reaches the cisterna magna in hours, not minutes
(issue 10, "done when"; the segmented v3 has its own test in test_cns_v3.py)."""
import numpy as np

import pkcsf as pk
from pkcsf.clinical import cns

T = np.round(np.arange(0.0, 24.0001, 0.05), 6)


def test_default_model_cisterna_magna_peaks_on_the_cisternography_time_scale():
    # Dyke J et al., Clin Imaging 2020;68:1-6 (PMID 32544736): after a lumbar intrathecal gadolinium injection in 8
    # healthy volunteers the intracranial CSF signal peaked within 1-3 h (observations_cisternography.csv, 1.73 h);
    # radionuclide cisternography norms: tracer in the basal cisterns at 1 h, over the cerebral area at 3-4 h. The
    # issue's acceptance window is a cisterna-magna peak at 1-4 h. Before the cisternography datum was added to the
    # calibration csf_transport (3 Dec 2026) the default model peaked there at 0.25 h (~70 umol/L within 15 min).
    st = cns.setup("methotrexate")
    assert cns.DEFAULT_CNS_MODEL == "v2"
    res = st.simulate(pk.Dose("12 mg", st.sites["lumbar"]), times=T)
    c = res.concentration("cm", unit="umol/L", mw=st.mw)[0]
    tmax = T[np.argmax(c)]
    assert 1.0 <= tmax <= 4.0
    assert c[T == 0.25][0] < 0.5 * c.max()          # no near-instant arrival at the cisterna


def test_default_model_inert_tracer_reaches_blood_later_than_csf_turnover_alone():
    # Eide 2021 (PMID 33822769, held-out row gbt_eide21_plasma_tmax): the plasma peak of lumbar gadobutrol comes at
    # about 10 h; within 2-fold means after 5 h. The former well-mixed canal gave 4.2 h.
    st = cns.setup("gadobutrol")
    t = np.round(np.arange(0.0, 48.0001, 0.1), 6)
    res = st.simulate(pk.Dose("100 mg", st.sites["lumbar"]), times=t)
    tmax = t[np.argmax(res.concentration("plasma")[0])]
    assert 5.0 <= tmax <= 20.0
