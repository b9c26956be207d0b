"""Blood-CSF barrier state as a pathology (issue 10): F_BCSFB scales the passive blood-CSF permeability."""
import numpy as np
import pytest

from pkcsf.clinical import cns, validation
from pkcsf.core.errors import ParameterError
from pkcsf.engine.dosing import Dose


def test_leptomeningeal_disease_opens_the_barrier():
    intact = cns.setup("methotrexate")
    lm = cns.setup("methotrexate", pathologies={"leptomeningeal_disease": True})
    assert lm.parameters["PS_BCSFB"] == pytest.approx(5.25 * intact.parameters["PS_BCSFB"])
    assert any("F_BCSFB" in n for n in lm.notes)
    rt = cns.setup("methotrexate", pathologies={"after_cranial_radiotherapy": True})
    assert rt.parameters["PS_BCSFB"] == pytest.approx(5.5 * intact.parameters["PS_BCSFB"])
    # everything else unchanged
    assert {k for k in intact.parameters if intact.parameters[k] != lm.parameters[k]} == {"PS_BCSFB"}


def test_barrier_factor_raises_csf_during_iv_infusion():
    times = np.linspace(0, 24, 25)
    c = {}
    for name, patho in (("intact", None), ("lm", {"F_BCSFB": 3.0})):
        st = cns.setup("methotrexate", pathologies=patho)
        res = st.simulate(Dose(1000.0, "iv", duration=24.0), times=times)
        c[name] = res.concentration("spinal_lumbar")[0][-1] / res.concentration("plasma")[0][-1]
    assert 2.0 < c["lm"] / c["intact"] <= 3.0 + 1e-9


def test_barrier_factor_out_of_range_is_refused():
    with pytest.raises(ParameterError, match="F_BCSFB"):
        cns.setup("methotrexate", pathologies={"F_BCSFB": 50})


def test_observation_rows_carry_their_pathology():
    obs = validation.load_observations()
    row = obs[obs["id"] == "mtx_shapiro_iv_vent"].iloc[0]
    assert validation.pathologies_for(row) == {"leptomeningeal_disease": True}
    bleyer = obs[obs["id"] == "mtx_bleyer_lumbar_t12_fast"].iloc[0]
    assert validation.pathologies_for(bleyer) is None
    assert set(obs["pathology"]) <= {"", "leptomeningeal_disease"}
