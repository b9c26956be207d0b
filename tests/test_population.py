"""Virtual populations: reproducible per-subject streams, IIV with covariance, covariates, user data."""
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri

import pkcsf as pk
from pkcsf.clinical.population import (
    CovariateEffect,
    Population,
    RandomEffect,
    bsa_mosteller,
    crcl_cockcroft_gault,
    lms_value,
    load_demographics,
    normals,
    uniforms,
)

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


# ------------------------------------------------------------- uniform and LMS (growth-chart) covariates
def test_lms_value_reproduces_published_percentiles():
    # CDC 2000 wtage.csv, Sex=1, Agemos 24: L -0.20615245, M 12.6707633, S 0.108125811; P3 10.38209025, P97 15.59648294
    L, M, S = -0.20615245, 12.6707633, 0.108125811
    assert lms_value(L, M, S, ndtri(0.97)) == pytest.approx(15.59648294, rel=1e-6)
    assert lms_value(L, M, S, ndtri(0.03)) == pytest.approx(10.38209025, rel=1e-6)
    assert lms_value(L, M, S, 0.0) == pytest.approx(M)
    # L = 0 is the log-normal limit; L = 1 is the normal distribution M*(1 + S*z)
    np.testing.assert_allclose(lms_value(0.0, 10.0, 0.1, [-1.0, 1.0]), 10.0 * np.exp([-0.1, 0.1]))
    np.testing.assert_allclose(lms_value(1e-9, 10.0, 0.1, 1.0), 10.0 * np.exp(0.1), rtol=1e-7)
    np.testing.assert_allclose(lms_value(1.0, 80.0, 0.04, [-2.0, 2.0]), [73.6, 86.4])


_LMS_FILE = """
[references]
ref = "test table"
[sex]
p_female = 0.5
source = "assumption"
note = "test"
[covariates.AGE]
scale = "uniform"
lower = 2.0
upper = 10.0
source = "assumption"
note = "test"
[covariates.WT]
scale = "lms"
given_by = "AGE"
source = "ref"
[covariates.WT.lms]
x_unit = "month"
male = [[24, -0.5, 12.0, 0.10], [120, -1.0, 32.0, 0.18]]
female = [[24, 0.0, 11.0, 0.10], [120, -0.8, 33.0, 0.20]]
[covariates.HT]
scale = "lms"
given_by = "AGE"
source = "ref"
z_max = 2.0
[covariates.HT.lms]
male = [[2.0, 1.0, 86.0, 0.04], [10.0, 0.5, 139.0, 0.048]]
female = [[2.0, 1.0, 85.0, 0.04], [10.0, 0.3, 138.0, 0.049]]
[correlations.WT-HT]
value = 0.6
source = "assumption"
note = "test"
"""


def _write(tmp_path, text, name="demo.toml"):
    f = tmp_path / name
    f.write_text(text)
    return f


def test_uniform_and_lms_covariates(tmp_path):
    d = load_demographics(_write(tmp_path, _LMS_FILE))
    assert [c.scale for c in d.covariates] == ["uniform", "lms", "lms"]
    df = d.sample(200_000, seed=4)
    assert list(df.columns) == ["SEX", "AGE", "WT", "HT", "BSA"]
    # uniform: flat over [2, 10], nothing piled at the bounds
    counts, _ = np.histogram(df["AGE"], bins=8, range=(2, 10))
    np.testing.assert_allclose(counts / len(df), 1 / 8, atol=0.004)
    assert df["AGE"].between(2, 10, inclusive="neither").all()
    # lms: invert the LMS transform with L, M, S interpolated at each subject's age -> the subject's z-scores
    zs = {}
    for col, rows in (("WT", ([[2, -0.5, 12, .10], [10, -1, 32, .18]], [[2, 0, 11, .10], [10, -.8, 33, .20]])),
                      ("HT", ([[2, 1, 86, .04], [10, .5, 139, .048]], [[2, 1, 85, .04], [10, .3, 138, .049]]))):
        z = np.empty(len(df))
        for sex in (0, 1):
            t = np.array(rows[sex], float)
            m = df["SEX"] == sex
            L, M, S = (np.interp(df.loc[m, "AGE"], t[:, 0], t[:, j]) for j in (1, 2, 3))
            x = df.loc[m, col].to_numpy()
            z[m.to_numpy()] = np.where(np.abs(L) < 1e-12, np.log(x / M) / S, ((x / M) ** L - 1) / (L * S))
        zs[col] = z
    assert abs(zs["WT"].mean()) < 0.01 and abs(zs["WT"].std() - 1) < 0.01     # standard normal z-scores
    assert np.abs(zs["HT"]).max() <= 2.0 + 1e-9                               # clipped at z_max = 2
    assert np.isclose(np.abs(zs["HT"]), 2.0).mean() == pytest.approx(2 * 0.02275, abs=0.003)
    assert np.corrcoef(zs["WT"], zs["HT"])[0, 1] == pytest.approx(0.6, abs=0.015)   # on the z's (HT's clipped at 2)
    assert abs(np.corrcoef(zs["WT"], df["AGE"])[0, 1]) < 0.01                  # z-scores do not depend on age
    # medians by age follow M(age)
    for sex, m_at in ((0, lambda a: np.interp(a, [2, 10], [12, 32])), (1, lambda a: np.interp(a, [2, 10], [11, 33]))):
        for a in (3.0, 6.0, 9.0):
            band = df[(df["SEX"] == sex) & (df["AGE"].sub(a).abs() < 0.1)]
            assert band["WT"].median() == pytest.approx(m_at(a), rel=0.02), (sex, a)


def test_lms_file_errors_are_named(tmp_path):
    def err(old, new, match):
        assert old in _LMS_FILE
        with pytest.raises(pk.ParameterError, match=match):
            load_demographics(_write(tmp_path, _LMS_FILE.replace(old, new, 1)))
    err('lower = 2.0', 'lower = 1.0', "within the LMS table")                       # age outside the table
    err('upper = 10.0', '', "finite lower and upper")                                # uniform needs bounds
    err('[[24, -0.5, 12.0, 0.10], [120', '[[124, -0.5, 12.0, 0.10], [120', "increase strictly")
    err('[[24, -0.5, 12.0, 0.10], [120', '[[24, -0.5, -12.0, 0.10], [120', "M, S > 0")
    err('given_by = "AGE"', 'given_by = "AEG"', "AGE")                                # unknown covariate, with a hint
    err('given_by = "AGE"\nsource = "ref"\nz_max', 'given_by = "ALB"\nsource = "ref"\nz_max', "covariate of this file")
    err('x_unit = "month"', 'x_unit = "week"', "month")
    err('[covariates.WT.lms]\nx_unit = "month"\nmale', '[covariates.WT.lmz]\nx_unit = "month"\nmale', "lms")
    err('\n[covariates.WT.lms]', '\nz_max = 6.0\n[covariates.WT.lms]', "undefined")   # 1 - 1.0*0.18*6 <= 0
    err('z_max = 2.0', 'z_max = 0', "> 0")
    err('[correlations.WT-HT]', '[correlations.AGE-WT]', "no meaning")               # z-scores are within-age
    err('scale = "uniform"', 'scale = "uniformm"', "uniform")


def test_lms_value_outside_its_table_is_refused(tmp_path):
    wt = load_demographics(_write(tmp_path, _LMS_FILE)).covariates[1]
    assert float(wt.value(0.0, 1, 6.0)) == pytest.approx(22.0)             # M halfway between 11 and 33 kg
    with pytest.raises(pk.ParameterError, match="covers 2 to 10"):
        wt.value([0.0, 0.0], [0, 1], [5.0, 10.5])                           # no silent flat extrapolation


def test_lms_subjects_do_not_depend_on_chunking(tmp_path):
    d = load_demographics(_write(tmp_path, _LMS_FILE))
    full = d.sample(400, seed=9)
    parts = pd.concat([d.sample(150, seed=9), d.sample(250, seed=9, start=150)], ignore_index=True)
    pd.testing.assert_frame_equal(full, parts)
