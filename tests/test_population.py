"""Virtual populations: reproducible per-subject streams, IIV with covariance, covariates, user data."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pkcsf as pk
from pkcsf.population import (CovariateEffect, Population, RandomEffect, bsa_mosteller, crcl_cockcroft_gault,
                              normals, uniforms)

TYP = {"CL": 10.0, "V": 50.0, "KA": 1.0}


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 300), start=st.integers(0, 500), d=st.integers(1, 9), seed=st.integers(0, 2**40))
def test_uniform_streams_do_not_depend_on_chunking(n, start, d, seed):
    full = uniforms(seed, 2, 0, start + n, d)
    assert np.array_equal(uniforms(seed, 2, start, n, d), full[start:])
    assert (full > 0).all() and (full < 1).all()


def test_subject_i_is_the_same_for_every_n_and_chunking():
    pop = Population({"CL": 0.3, "V": 0.25}, correlation={("CL", "V"): 0.6})
    big = pop.individual(TYP, 1000, seed=11)
    parts = pd.concat([pop.individual(TYP, m, seed=11, start=a) for a, m in ((0, 7), (7, 500), (507, 493))],
                      ignore_index=True)
    pd.testing.assert_frame_equal(big, parts)
    small = pop.individual(TYP, 10, seed=11)
    pd.testing.assert_frame_equal(small, big.iloc[:10])
    other = pop.individual(TYP, 10, seed=12)
    assert not np.allclose(other["CL"], small["CL"])


def test_variability_and_correlation_are_recovered():
    pop = Population({"CL": 0.3, "V": 0.5}, correlation={("CL", "V"): -0.4})
    df = pop.individual(TYP, 40000, seed=3)
    eta = np.log(df[["CL", "V"]].to_numpy() / [TYP["CL"], TYP["V"]])
    sd_expected = np.sqrt(np.log1p(np.array([0.3, 0.5]) ** 2))
    np.testing.assert_allclose(eta.std(axis=0), sd_expected, rtol=0.02)
    assert abs(np.corrcoef(eta.T)[0, 1] - (-0.4)) < 0.02
    assert abs(eta.mean(axis=0)).max() < 0.01
    assert (df["KA"] == 1.0).all()          # no random effect on KA


def test_full_covariance_and_one_eta_on_several_parameters():
    flow = RandomEffect("eta_flow", ("CL", "KA"), omega2=0.09)
    pop = Population([flow, RandomEffect("eta_V", "V", omega2=0.04)], covariance=[[0.09, 0.03], [0.03, 0.04]])
    df = pop.individual(TYP, 20000, seed=5)
    np.testing.assert_allclose(df["CL"] / TYP["CL"], df["KA"] / TYP["KA"])   # the same eta
    eta = np.log(df[["CL", "V"]].to_numpy() / [TYP["CL"], TYP["V"]])
    np.testing.assert_allclose(np.cov(eta.T), [[0.09, 0.03], [0.03, 0.04]], atol=0.004)


def test_bad_population_inputs_are_named():
    with pytest.raises(pk.ParameterError, match="positive semi-definite"):
        Population({"CL": 0.3, "V": 0.3}, correlation=[[1, 2], [2, 1]])
    with pytest.raises(pk.ParameterError, match="seed"):
        Population({"CL": 0.3}).individual(TYP, 3, seed=-1)
    with pytest.raises(pk.ParameterError, match="cv or omega2"):
        RandomEffect("e", "CL")
    with pytest.raises(pk.ParameterError, match="QQ"):
        Population({"QQ": 0.3}).individual(TYP, 3, seed=1)
    with pytest.raises(pk.ParameterError, match="population data column"):
        Population(data=pd.DataFrame({"CL": [1.0], "SHOE_SIZE": [44]})).individual(TYP, 1, seed=1)
    with pytest.raises(pk.ParameterError, match="finite number"):
        Population(data=pd.DataFrame({"CL": [1.0, "x"]}))


def test_covariate_effects_and_user_data():
    data = pd.DataFrame({"ID": [101, 102, 103], "WT": [50.0, 62.0, 100.0], "HT": [160.0, 170.0, 185.0],
                         "V": [40.0, 45.0, 60.0]})
    eff = CovariateEffect("CL", "WT", "power", reference=62.0, exponent=0.56)
    pop = Population(None, effects=[eff], data=data)
    df = pop.individual(TYP, 3, seed=0)
    np.testing.assert_allclose(df["CL"], TYP["CL"] * (data["WT"] / 62.0) ** 0.56)
    np.testing.assert_allclose(df["V"], data["V"])                       # given values are used as they are
    np.testing.assert_allclose(df["BSA"], bsa_mosteller(data["HT"], data["WT"]))
    assert df["ID"].tolist() == [101, 102, 103]
    tab = CovariateEffect("V", "AGE", "table", x=(0, 2, 18), y=(0.3, 0.8, 1.0))
    np.testing.assert_allclose(tab.factor(np.array([1.0, 10.0, 30.0])), [0.55, 0.9, 1.0])


def test_derived_covariates():
    # Mosteller: 180 cm, 80 kg -> 2.0 m2; Cockcroft-Gault: (140-40)*70/(72*1.0) = 97.2 mL/min, x0.85 for women
    assert bsa_mosteller(180, 80) == pytest.approx(2.0)
    np.testing.assert_allclose(crcl_cockcroft_gault([40, 40], [70, 70], [1.0, 1.0], [0, 1]),
                               [97.2222, 97.2222 * 0.85], rtol=1e-4)


def test_normals_are_standard():
    z = normals(1, 2, 0, 200000, 2)
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
