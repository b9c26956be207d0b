"""Paediatric lumbosacral CSF volume from Jang 2019 (issue 10): setup(age=...) and the per-subject AGE effect."""
import numpy as np
import pytest

from pkcsf.clinical import cns
from pkcsf.clinical.parameters import load_parameter_set


@pytest.mark.parametrize("age, lo, hi", [(2.0, 0.80, 0.92), (5.0, 0.74, 0.86), (9.0, 0.68, 0.74), (15.0, 0.52, 0.56)])
def test_lumbar_volume_per_kg_matches_jang(age, lo, hi):
    """mL/kg of the lumbosacral sac at the median weight for age lies in Jang's group values (0.86 toddlers and
    preschoolers, 0.71 school age, 0.54 adolescents), not 2-4x above them as the CSF volume fraction gave."""
    v_ml = cns.physiology(age=age)["values"]["V_SPINAL_LUMBAR"] * 1e3
    assert lo <= v_ml / cns.median_weight_for_age(age) <= hi


def test_adult_and_infant_lumbar_volume():
    adult = cns.physiology()["values"]["V_SPINAL_LUMBAR"]
    assert cns.physiology(age=30)["values"]["V_SPINAL_LUMBAR"] == adult
    inf = cns.physiology(age=0.5)["values"]["V_SPINAL_LUMBAR"] * 1e3
    assert 5.0 < inf < 7.0                                    # 0.85 mL/kg x ~7 kg, not the fraction-scaled 25 mL


def test_per_subject_age_table_matches_setup():
    """The V_SPINAL_LUMBAR ~ AGE table of adult.toml is the same lumbar volume as setup(age=...)."""
    adult_set = load_parameter_set("adult", "physiology")
    eff = adult_set.covariates["V_SPINAL_LUMBAR_AGE"]
    ped = load_parameter_set("pediatric", "physiology")
    adult = cns.physiology()["values"]["V_SPINAL_LUMBAR"]
    ages = np.linspace(0.0, 17.9, 60)
    table = np.interp(ages, eff.x, eff.y)
    exact = np.array([cns._lumbar_volume_for_age(ped, a) / adult for a in ages])
    np.testing.assert_allclose(table, exact, rtol=0.03)
    np.testing.assert_allclose(np.interp(eff.x[:-1], eff.x, eff.y),
                               [cns._lumbar_volume_for_age(ped, a) / adult for a in eff.x[:-1]], rtol=2e-3)


def test_age_scaling_of_a_monkey_is_refused():
    """The age scaling is human CSF growth (pediatric.toml); with physiology 'rhesus' it is refused naming the
    field, not applied silently to a monkey."""
    import pkcsf as pk
    from pkcsf.core.errors import ParameterError

    with pytest.raises(ParameterError, match=r"^age: got 5; age scaling is defined for human physiology only"):
        cns.physiology("rhesus", age=5)
    with pytest.raises(ParameterError, match="physiology 'rhesus' is rhesus"):
        pk.simulate("methotrexate", {"a": "12 mg lumbar once"}, subjects=2, physiology="rhesus", age=5)
    assert cns.physiology("rhesus")["species"] == "rhesus"


def test_rhesus_population_gets_no_human_age_tables():
    """A population with AGE under the rhesus physiology does not get the human CSF growth tables of adult.toml
    (they are listed as skipped), while the human physiology does."""
    import pandas as pd

    from pkcsf.clinical.scenario_population import default_population, population_from_data

    data = pd.DataFrame({"AGE": [3.0, 40.0], "WT": [14.0, 70.0]})
    human = {(e.parameter, e.covariate) for e in population_from_data(cns.setup("methotrexate"), data).effects}
    st = cns.setup("methotrexate", physiology="rhesus")
    rhesus = {(e.parameter, e.covariate) for e in population_from_data(st, data).effects}
    assert ("V_SPINAL_LUMBAR", "AGE") in human and not any(c == "AGE" for _, c in rhesus)
    assert any(s.startswith("V_SPINAL_LUMBAR ~ AGE") for s in default_population(st, demographics="pediatric").skipped)
