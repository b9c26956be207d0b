"""Population files (parameters/population/*.toml) and the variability/covariate sections of the
physiology and drug files: they load, every entry is sourced, every effect targets a model parameter,
and sampled demographics reproduce the summary values of their sources within Monte-Carlo error."""
import math

import numpy as np
import pandas as pd
import pytest

from pkcsf.clinical import cns
from pkcsf.clinical.parameters import load_parameter_set
from pkcsf.clinical.population import COVARIATES, Population, load_demographics
from pkcsf.core.paths import builtin_dir
from pkcsf.core.tomlio import tomllib

PARAM = builtin_dir("parameters")
POP_FILES = sorted((PARAM / "population").glob("*.toml"))
DRUG_FILES = sorted((PARAM / "drugs").glob("*.toml"))
N = 100_000


@pytest.fixture(scope="module")
def samples():
    return {p.stem: load_demographics(p).sample(N, seed=2024) for p in POP_FILES}


def _model_parameters(drug: str) -> set:
    names = set(cns.setup(drug).parameters)
    d = cns.drug(drug)
    if "FMET_AZ5104" in d.parameters.values:
        names |= set(cns.setup(drug, metabolite=True).parameters)
    if "saturable" in d.variants:
        names |= set(cns.setup(drug, variant="saturable").parameters)
    return names


# ----------------------------------------------------------------- loading and provenance
def test_population_files_exist():
    assert {"adult", "pediatric"} <= {p.stem for p in POP_FILES}


@pytest.mark.parametrize("path", POP_FILES, ids=lambda p: p.stem)
def test_population_file_loads_and_is_sourced(path):
    d = load_demographics(path)
    assert 0.0 <= d.p_female <= 1.0
    assert d.covariates
    raw = tomllib.loads(path.read_text())
    entries = [raw["sex"]] + list(raw.get("covariates", {}).values()) + list(raw.get("correlations", {}).values())
    for e in entries:
        assert e.get("source"), path.name
        if e["source"] in ("assumption", "derived"):
            assert str(e.get("note", "")).strip() or str(e.get("where", "")).strip(), (path.name, e)
        if e["source"] == "assumption":
            assert str(e.get("note", "")).strip(), (path.name, e)
    for c in d.covariates:
        assert c.name in COVARIATES
        assert c.lower < c.upper
    np.linalg.cholesky(d.correlation)        # positive definite


def test_load_by_name_uses_population_folder():
    # physiology/adult.toml and population/adult.toml share a stem; each loader finds its own
    assert load_demographics("adult").name == "adult"
    assert load_parameter_set("adult", "physiology").kind == "physiology"


@pytest.mark.parametrize("path", DRUG_FILES + [PARAM / "physiology" / "adult.toml"], ids=lambda p: p.stem)
def test_variability_and_covariates_sourced_and_in_model(path):
    ps = load_parameter_set(path)
    model = _model_parameters("methotrexate" if ps.kind == "physiology" else ps.name)
    for name, v in ps.variability.items():
        assert name in model, f"{path.name}: variability.{name} is not a model parameter"
        assert 0.0 < v.value < 3.0 and v.source
    for key, eff in ps.covariates.items():
        assert eff.parameter in model, f"{path.name}: covariates.{key} targets unknown {eff.parameter}"
        assert eff.covariate in COVARIATES and eff.source
        if eff.model in ("power", "linear", "exponential"):
            assert eff.factor(np.array([eff.reference]))[0] == pytest.approx(1.0)


def test_osimertinib_cv_from_omega():
    """Brown 2017 reports omega (SD of eta); the files hold cv = sqrt(exp(omega^2) - 1)."""
    var = load_parameter_set("osimertinib", "drugs").variability
    for name, omega in {"KA": 0.89, "CL": 0.46, "V1": 0.52, "CL_AZ5104": 0.52, "V_AZ5104": 0.62}.items():
        assert var[name].value == pytest.approx(math.sqrt(math.expm1(omega ** 2)), abs=2e-3), name


def test_age_table_effects_match_cns_age_scaling():
    phys = load_parameter_set("adult", "physiology")
    ped = load_parameter_set("pediatric", "physiology")
    ages = np.array([0.0, 0.25, 0.5, 0.8, 1.0, 1.5, 2.0, 2.7, 3.0, 4.0, 10.0, 18.0, 60.0])
    expected = np.array([cns._age_fraction(ped, a) for a in ages])
    scaled = set(cns._SCALED_BY_AGE) | (set(cns._FLOWS_BY_AGE) if ped["F_PROD_SCALES_WITH_VOLUME"] == 1.0 else set())
    effects = {e.parameter: e for e in phys.covariates.values() if e.covariate == "AGE"}
    assert set(effects) == scaled
    adult_lumbar = cns.physiology()["values"]["V_SPINAL_LUMBAR"]
    lumbar = np.array([(cns._lumbar_volume_for_age(ped, a) or adult_lumbar) / adult_lumbar for a in ages])
    for e in effects.values():
        if e.parameter == "V_SPINAL_LUMBAR":      # Jang 2019 mL/kg x weight for age (test_physiology_age.py)
            np.testing.assert_allclose(e.factor(ages), lumbar, rtol=0.03)
        else:
            np.testing.assert_allclose(e.factor(ages), expected, rtol=1e-12)


# ------------------------------------------------------- samples vs their sources
def _se_median(x):
    return 1.2533 * np.std(x) / math.sqrt(len(x))


def test_adult_reproduces_brown2017(samples):
    df = samples["adult"]
    assert df["SEX"].mean() == pytest.approx(0.369, abs=4 * math.sqrt(0.369 * 0.631 / N))
    for col, target in {"AGE": 61.0, "WT": 62.0, "ALB": 39.0}.items():
        assert df[col].median() == pytest.approx(target, abs=4 * _se_median(df[col]) + 0.05), col
    assert df["CRCL"].median() == pytest.approx(82.0, abs=1.0)          # Brown 2017 median CrCL
    assert df["AGE"].between(21, 89).all() and df["WT"].between(33, 122).all()


def test_breast_reproduces_bruno2005(samples):
    df = samples["breast"]
    assert (df["SEX"] == 1).all()
    assert df["AGE"].median() == pytest.approx(50.0, abs=0.3)
    assert df["WT"].median() == pytest.approx(70.0, abs=0.3)


# Growth-chart medians (M) of weight (kg) and length/stature (cm), read from the full monthly tables (not the
# half-yearly rows of pediatric.toml, so the file's interpolation is tested too): WHO 2006 wfa/lhfa at 18 months;
# CDC 2000 wtage.csv/statage.csv interpolated linearly between the monthly rows at 30, 60, 120, 180, 213.6 months.
_GROWTH_M = {0: {1.5: (10.9385, 82.2587), 2.5: (13.493, 90.98), 5.0: (18.393, 108.90), 10.0: (31.936, 138.62),
                 15.0: (56.281, 169.94), 17.8: (66.743, 176.03)},
             1: {1.5: (10.2315, 80.7079), 2.5: (12.969, 89.96), 5.0: (17.930, 107.66), 10.0: (32.891, 137.99),
                 15.0: (52.042, 161.86), 17.8: (55.974, 163.09)}}


@pytest.fixture(scope="module")
def children():
    return load_demographics("pediatric").sample(400_000, seed=2025)


def test_pediatric_age_is_uniform_and_sex_ratio(children):
    df = children
    assert df["SEX"].mean() == pytest.approx(0.4265, abs=4 * math.sqrt(0.4265 * 0.5735 / len(df)))
    assert df["AGE"].between(1, 18, inclusive="neither").all()           # no pile-up at the bounds
    counts, _ = np.histogram(df["AGE"], bins=17, range=(1, 18))
    np.testing.assert_allclose(counts / len(df), 1 / 17, atol=0.0015)
    assert "CRCL" not in df and "SCR" not in df      # no creatinine in children (Cockcroft-Gault not valid)


def test_pediatric_follows_growth_charts_at_every_age(children):
    df = children
    for sex, table in _GROWTH_M.items():
        for age, (wt, ht) in table.items():
            band = df[(df["SEX"] == sex) & (df["AGE"].sub(age).abs() < 0.2)]
            assert len(band) > 2000
            assert band["WT"].median() == pytest.approx(wt, rel=0.015), (sex, age)
            assert band["HT"].median() == pytest.approx(ht, rel=0.005), (sex, age)


def test_pediatric_spread_and_weight_height_correlation_within_age(children):
    """Within an age the spread is the chart's (P3-P97) and weight and height are correlated (r 0.707 on the z's)."""
    df = children
    # CDC 2000 wtage.csv / statage.csv, Sex=1, Agemos 120.5: weight P3 24.19264433, P97 49.41515104;
    # stature L 0.505564115, M 138.8234114, S 0.047610108 -> P3 126.6677753, P97 151.5294179 (the csv's columns)
    band = df[(df["SEX"] == 0) & (df["AGE"].sub(120.5 / 12).abs() < 0.1)]
    assert band["WT"].quantile(0.03) == pytest.approx(24.193, rel=0.03)
    assert band["WT"].quantile(0.97) == pytest.approx(49.415, rel=0.03)
    assert band["HT"].quantile(0.03) == pytest.approx(126.67, rel=0.01)
    assert band["HT"].quantile(0.97) == pytest.approx(151.53, rel=0.01)
    r = np.corrcoef(np.log(band["WT"]), np.log(band["HT"]))[0, 1]
    assert r == pytest.approx(0.707, abs=0.04)
    assert np.corrcoef(df["AGE"], df["WT"])[0, 1] > 0.85        # weight rises with age through the charts


def test_pediatric_bsa_plausible_by_age(children):
    """Median BSA by age: Mosteller of the chart medians (the median of a monotone function of two correlated
    z-scores is close to the function of the medians), rising from about 0.5 m2 at 1.5 y to 1.6-1.8 m2 at 18 y."""
    df = children
    med = []
    for age in (1.5, 2.5, 5.0, 10.0, 15.0, 17.8):
        band = df[df["AGE"].sub(age).abs() < 0.2]
        expected = np.mean([math.sqrt(_GROWTH_M[s][age][0] * _GROWTH_M[s][age][1] / 3600) for s in (0, 1)])
        assert band["BSA"].median() == pytest.approx(expected, rel=0.03), age
        med.append(band["BSA"].median())
    assert np.all(np.diff(med) > 0)
    assert 0.45 < med[0] < 0.55 and 1.6 < med[-1] < 1.85
    assert df["BSA"].min() > 0.3 and df["BSA"].max() < 3.2


def test_pediatric_samples_do_not_depend_on_chunking():
    d = load_demographics("pediatric")
    full = d.sample(300, seed=7)
    parts = pd.concat([d.sample(120, seed=7), d.sample(180, seed=7, start=120)], ignore_index=True)
    pd.testing.assert_frame_equal(full, parts)
    pd.testing.assert_frame_equal(d.sample(20, seed=7, start=250), full.iloc[250:270].reset_index(drop=True))


@pytest.mark.parametrize("name", ["adult", "breast"])
def test_normal_lognormal_files_sample_as_before(name):
    """The normal/log-normal mapping is the original one: correlated normals from the covariate stream, per-sex mean
    + SD*z (exp for log-normal), clipped; BSA and CRCL derived (regression against a re-implementation)."""
    from scipy.special import ndtri

    from pkcsf.clinical.population import derive_covariates, uniforms

    d = load_demographics(name)
    n, k = 3000, len(d.covariates)
    u = uniforms(31, 1, 40, n, k + 1)
    sex = (u[:, 0] < d.p_female).astype(np.int64)
    z = ndtri(u[:, 1:]) @ np.linalg.cholesky(d.correlation).T
    out = {"SEX": sex}
    for j, c in enumerate(d.covariates):
        x = np.where(sex == 1, c.mean[1], c.mean[0]) + np.where(sex == 1, c.sd[1], c.sd[0]) * z[:, j]
        out[c.name] = np.clip(np.exp(x) if c.scale == "lognormal" else x, c.lower, c.upper)
    pd.testing.assert_frame_equal(d.sample(n, seed=31, start=40), derive_covariates(pd.DataFrame(out)), check_exact=True)


def test_bsa_and_crcl_plausible(samples):
    a = samples["adult"]
    assert 1.6 < a["BSA"].median() < 1.9
    assert a["BSA"].quantile(0.01) > 1.1 and a["BSA"].quantile(0.99) < 2.4
    assert 40 < a["CRCL"].quantile(0.05) and a["CRCL"].quantile(0.95) < 160
    b = samples["breast"]
    assert 1.6 < b["BSA"].median() < 2.0
    p = samples["pediatric"]
    young, old = p[p["AGE"] < 3], p[(p["AGE"] > 15) & (p["AGE"] < 18)]
    assert 0.4 < young["BSA"].median() < 0.7 and 1.5 < old["BSA"].median() < 2.0


def test_samples_are_reproducible():
    d = load_demographics("adult")
    full = d.sample(50, seed=7)
    part = d.sample(20, seed=7, start=30)
    pd.testing.assert_frame_equal(full.iloc[30:].reset_index(drop=True), part)


# ------------------------------------------------------------------- end to end
def test_population_with_file_effects_runs():
    s = cns.setup("osimertinib")
    ps = load_parameter_set("osimertinib", "drugs")
    # the file also holds AZ5104 entries, used only with setup(..., metabolite=True): keep this model's
    effects = [e for e in ps.covariates.values() if e.parameter in s.parameters]
    cvs = {k: cv for k, cv in s.variability.items() if k in s.parameters}
    assert {e.parameter for e in effects} == {"CL", "V1"} and set(cvs) == {"KA", "CL", "V1"}
    pop = Population(random_effects=cvs, demographics="adult", effects=effects)
    ind = pop.individual(s.parameters, n=20_000, seed=3)
    typical = Population(demographics="adult", effects=effects)
    ti = typical.individual(s.parameters, n=20_000, seed=3, variability=False)
    assert np.median(ti["CL"]) == pytest.approx(s.parameters["CL"], rel=0.02)      # median WT = 62 kg reference
    sd_eta = np.std(np.log(ind["CL"] / ti["CL"]))
    assert sd_eta == pytest.approx(math.sqrt(math.log1p(0.485 ** 2)), rel=0.03)


def test_user_dataframe_population():
    df = pd.DataFrame({"ID": [1, 2, 3], "SEX": [0, 1, 1], "AGE": [45, 60, 72], "WT": [80.0, 55.0, 62.0],
                       "HT": [180.0, 160.0, 158.0], "SCR": [0.9, 0.7, 1.1]})
    s = cns.setup("pemetrexed")
    ps = load_parameter_set("pemetrexed", "drugs")
    ind = Population(data=df, effects=list(ps.covariates.values())).individual(s.parameters, n=3)
    crcl = (140 - df["AGE"]) * df["WT"] / (72 * df["SCR"]) * np.where(df["SEX"] == 1, 0.85, 1.0)
    np.testing.assert_allclose(ind["CRCL"], crcl)
    np.testing.assert_allclose(ind["CL"], s.parameters["CL"] * (1 + 0.005301 * (crcl - 90)))
