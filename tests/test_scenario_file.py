"""Scenario files (pkcsf.clinical.scenario_file): the examples load, and every kind of mistake gives one clear message."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pandas as pd
import pytest

from pkcsf.clinical.scenario import Scenario
from pkcsf.clinical.scenario_file import SCHEMA, OutputOptions, ScenarioFileError, load_scenario
from pkcsf.core.errors import PkcsfError, ScenarioError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "scenarios").glob("*.toml"))

BASE = """\
name = "test"
drug = "methotrexate"

[population]
subjects = 5
seed = 1

[[arms]]
name = "lumbar"
regimen = "12 mg lumbar once"
"""


def write(tmp_path, text, name="s.toml"):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


def error_of(tmp_path, text) -> ScenarioFileError:
    p = write(tmp_path, text)
    with pytest.raises(ScenarioFileError) as ei:
        load_scenario(p)
    e = ei.value
    msg = str(e)
    assert "\n" not in msg, "one line"
    assert msg.startswith(str(p)), "the message names the file"
    assert isinstance(e, ScenarioError) and isinstance(e, PkcsfError) and isinstance(e, ValueError)
    return e


# ------------------------------------------------------------------ examples
def test_there_are_four_to_six_examples():
    assert 4 <= len(EXAMPLES) <= 6


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_load(path):
    scn, out = load_scenario(path)
    assert isinstance(scn, Scenario) and isinstance(out, OutputOptions)
    assert scn.arms and scn.subjects >= 100
    assert out.format == "csv" and out.figures is True
    assert set(out.arm_regimens) == {a.name for a in scn.arms}


def test_example_contents():
    scn, out = load_scenario(ROOT / "scenarios" / "pemetrexed_dose_levels.toml")
    assert [a.name for a in scn.arms] == ["10 mg", "30 mg", "50 mg"]
    assert out.arm_regimens["30 mg"] == "30 mg lumbar twice weekly x 2 weeks, then weekly x 4 weeks"
    assert [d.amount for d in scn.arms[2].regimen.doses][0] == 50.0
    scn, out = load_scenario(ROOT / "scenarios" / "osimertinib_80_vs_160.toml")
    assert [a.variant for a in scn.arms] == ["linear", "linear", "saturable", "saturable"]
    assert scn.unit == "nmol/L"
    scn, _ = load_scenario(ROOT / "scenarios" / "methotrexate_lumbar_vs_ommaya.toml")
    assert scn.days == 28 and len(scn.targets) == 2 and scn.targets[0].duration == "48 h"
    assert {d.site for d in scn.arms[1].regimen.doses} == {"ommaya"}


def test_minimal_file_and_defaults(tmp_path):
    scn, out = load_scenario(write(tmp_path, BASE, "mini.toml"))
    assert scn.subjects == 5 and scn.seed == 1 and scn.unit == "umol/L" and scn.physiology == "adult"
    assert out.folder == Path("results/mini") and out.format == "csv" and out.figures


def test_dose_schedule_route_inheritance(tmp_path):
    scn, out = load_scenario(write(tmp_path, """\
        drug = "pemetrexed"
        route = "ommaya"
        schedule = "weekly x 2 weeks"
        days = "3 weeks"
        dt = "30 min"
        [[arms]]
        name = "a"
        dose = "10 mg"
        [[arms]]
        name = "b"
        dose = 20
        route = "lumbar"
        """))
    assert out.arm_regimens == {"a": "10 mg ommaya weekly x 2 weeks", "b": "20 mg lumbar weekly x 2 weeks"}
    assert scn.days == 21 and scn.dt == 0.5


def test_named_regimen_forms(tmp_path):
    scn, out = load_scenario(write(tmp_path, """\
        [[arms]]
        name = "by name"
        regimen = "pemetrexed_pan2019"
        dose = "30 mg"
        route = "ommaya"
        [[arms]]
        name = "table"
        regimen = { name = "methotrexate_it", dose = "12 mg", route = "ommaya", maintenance_months = 0 }
        """))
    assert out.arm_regimens["by name"] == "pemetrexed_pan2019(dose='30 mg', route='ommaya')"
    assert len(scn.arms[1].regimen.doses) > 0


def test_population_physiology_readouts(tmp_path):
    scn, out = load_scenario(write(tmp_path, BASE + """\
        [physiology]
        age = 3
        pathologies = { vp_shunt = true }
        [readouts]
        unit = "mg/L"
        groups = ["plasma", "ventricular"]
        thresholds = ["1 umol/L"]
        band_subjects = 3
        [[readouts.targets]]
        group = "ventricular"
        threshold = "1 umol/L"
        duration = "24 h"
        per = "total"
        [outputs]
        folder = "out/x"
        format = "csv"
        figures = false
        """))
    assert scn.age == 3 and scn.pathologies == {"vp_shunt": True}
    assert scn.groups == ("plasma", "ventricular") and scn.thresholds == ["1 umol/L"] and scn.band_subjects == 3
    assert scn.targets[0].per == "total"
    assert out == OutputOptions(Path("out/x"), "csv", False, out.arm_regimens)


def test_csv_population(tmp_path):
    pd.DataFrame({"WT": [60.0, 70.0, 80.0], "CL": [5.0, 5.5, 6.0]}).to_csv(tmp_path / "pts.csv", index=False)
    scn, _ = load_scenario(write(tmp_path, BASE.replace("subjects = 5", 'csv = "pts.csv"')))
    assert isinstance(scn.population, pd.DataFrame) and scn.subjects == 3, "subjects default to the rows"
    e = error_of(tmp_path, BASE.replace("subjects = 5", 'csv = "pts.csv"\nsubjects = 4'))
    assert e.field == "population.subjects" and "only 3 rows" in str(e)
    pd.DataFrame({"WT": [60.0], "CLL": [5.0]}).to_csv(tmp_path / "bad.csv", index=False)
    e = error_of(tmp_path, BASE.replace("subjects = 5", 'csv = "bad.csv"'))
    assert "population.csv column" in str(e) and "'CLL'" in str(e) and "did you mean 'CL'" in str(e)
    pd.DataFrame({"CL": [5.0, -1.0]}).to_csv(tmp_path / "neg.csv", index=False)
    e = error_of(tmp_path, BASE.replace("subjects = 5", 'csv = "neg.csv"'))
    assert "row 2" in str(e) and "> 0" in str(e)
    e = error_of(tmp_path, BASE.replace("subjects = 5", 'csv = "missing.csv"'))
    assert e.field == "population.csv" and "no such file" in str(e)


def test_iiv(tmp_path):
    scn, _ = load_scenario(write(tmp_path, BASE.replace("seed = 1", "seed = 1\niiv = { CL = 0.3 }")))
    (cl,) = [r for r in scn.population.random_effects if r.parameters == ("CL",)]
    assert cl.cv == 0.3 and cl.source == "user"
    e = error_of(tmp_path, BASE.replace("seed = 1", "seed = 1\niiv = { CLL = 0.3 }"))
    assert "did you mean 'CL'" in str(e)
    e = error_of(tmp_path, BASE.replace("seed = 1", "seed = 1\niiv = { CL = -0.3 }"))
    assert "population.iiv.CL" in str(e)


# ------------------------------------------------------------------ one clear message per mistake
@pytest.mark.parametrize("text, field, words", [
    # unknown / misspelled keys, with table path and "did you mean"
    (BASE.replace("seed = 1", "sed = 1"), "population.sed", ["unknown key", "did you mean 'seed'"]),
    (BASE + "subjects = 5\n", "arms[0].subjects", ["unknown key", "belongs in [population]"]),
    ("subjects = 3\n" + BASE, "subjects", ["unknown key", "belongs in [population]"]),
    (BASE.replace('regimen = "12 mg', 'regimne = "12 mg'), "arms[0].regimne", ["did you mean 'regimen'"]),
    (BASE + "[outputs]\nfromat = 'csv'\n", "outputs.fromat", ["did you mean 'format'"]),
    (BASE + "[readouts]\nunits = 'mg/L'\n", "readouts.units", ["did you mean 'unit'"]),
    (BASE + "[[readouts.targets]]\ngroup = 'ventricular'\nthreshold = '1 umol/L'\nduraton = '2 h'\n",
     "readouts.targets[0].duraton", ["did you mean 'duration'"]),
    (BASE + "[physiology]\nage = 5\npathology = { vp_shunt = true }\n", "physiology.pathology",
     ["did you mean 'pathologies'"]),
    # wrong types
    (BASE.replace("subjects = 5", 'subjects = "5"'), "population.subjects", ["whole number"]),
    (BASE.replace("seed = 1", "seed = 1.5"), "population.seed", ["whole number"]),
    (BASE + "[outputs]\nfigures = 'yes'\n", "outputs.figures", ["true or false"]),
    (BASE.replace('name = "test"', "name = 3"), "name", ["must be text"]),
    (BASE.replace("[population]", "population = 3\n[physiology]").replace("subjects = 5\nseed = 1\n", ""),
     "population", ["must be a table"]),
    # unknown drug / route (valid ones listed)
    (BASE.replace('drug = "methotrexate"', 'drug = "methotrexat"'), "drug",
     ["did you mean 'methotrexate'", "pemetrexed"]),
    (BASE + '[[arms]]\nname = "b"\ndrug = "metotrexate"\nregimen = "12 mg ommaya once"\n', "arms[1].drug",
     ["did you mean 'methotrexate'"]),
    (BASE + '[[arms]]\nname = "b"\ndose = "12 mg"\nroute = "ommya"\nschedule = "once"\n', "arms[1].route",
     ["did you mean 'ommaya'", "lumbar"]),
    (BASE.replace("12 mg lumbar once", "12 mg lumbr once"), "arms[0].regimen", ["unknown route", "'lumbar'"]),
    ('[[arms]]\nname = "osi"\ndrug = "osimertinib"\nregimen = "80 mg lumbar once"\n', "arms[0].regimen",
     ["osimertinib can be given by: oral, iv"]),
    # a dose with the wrong unit
    (BASE + '[[arms]]\nname = "b"\ndose = "12 mL"\nroute = "ommaya"\nschedule = "once"\n', "arms[1].dose",
     ["volume", "mg, g or ug"]),
    (BASE.replace("12 mg lumbar once", "12 mL lumbar once"), "arms[0].regimen", ["not a volume (mL)", "mg"]),
    (BASE + '[[arms]]\nname = "b"\ndose = "12 mg/L"\nroute = "ommaya"\nschedule = "once"\n', "arms[1].dose",
     ["concentration"]),
    # impossible values
    (BASE.replace("subjects = 5", "subjects = 0"), "population.subjects", [">= 1"]),
    (BASE + "[physiology]\nage = -2\n", "physiology.age", ["between 0 and 120"]),
    (BASE.replace('drug = "methotrexate"', 'drug = "methotrexate"\ndays = -3'), "days", ["> 0"]),
    (BASE.replace('drug = "methotrexate"', 'drug = "methotrexate"\ndays = "2 mg"'), "days", ["time"]),
    (BASE + "[readouts]\nunit = 'mg'\n", "readouts.unit", ["concentration units", "umol/L"]),
    (BASE + "[readouts]\ngroups = ['ventricle']\n", "readouts.groups[0]", ["did you mean 'ventricular'"]),
    (BASE + "[readouts]\nthresholds = ['1 mg']\n", "readouts.thresholds[0]", ["concentration"]),
    (BASE + "[[readouts.targets]]\ngroup = 'ventricular'\nthreshold = '1 umol/L'\nper = 'daily'\n",
     "readouts.targets[0].per", ["dose, total"]),
    (BASE + "[[readouts.targets]]\ngroup = 'ventricular'\n", "readouts.targets[0].threshold", ["required"]),
    (BASE + "[outputs]\nformat = 'xlsx'\n", "outputs.format", ["csv, parquet"]),
    (BASE + "[physiology]\npathologies = { vp_shuntt = true }\n", "physiology.pathologies.vp_shuntt",
     ["did you mean 'vp_shunt'"]),
    (BASE + "[physiology]\nset = 'adults'\n", "physiology.set", ["did you mean 'adult'"]),
    # arm structure
    ('name = "no arms"\n', "arms", ["at least one [[arms]]"]),
    (BASE + '[[arms]]\nname = "lumbar"\nregimen = "12 mg ommaya once"\n', "arms[1].name", ["unique"]),
    ('drug = "methotrexate"\n[[arms]]\nname = "x"\ndose = "12 mg"\n', "arms[0]", ["'dose' with 'schedule'"]),
    ('drug = "methotrexate"\n[[arms]]\nname = "x"\nregimen = "12 mg lumbar once"\ndose = "3 mg"\n',
     "arms[0].dose", ["inside the regimen text"]),
    ('drug = "methotrexate"\n[[arms]]\nname = "x"\nregimen = "12 mg lumbar once"\nroute = "ommaya"\n',
     "arms[0].route", ["written in the text"]),
    ('drug = "methotrexate"\n[[arms]]\nname = "x"\ndose = "12 mg"\nroute = "lumbar"\nschedule = "12 mg once"\n',
     "arms[0].schedule", ["without dose and route"]),
    ('[[arms]]\nname = "x"\nregimen = { name = "osimertinib", dsoe = "80 mg" }\n', "arms[0].regimen.dsoe",
     ["did you mean 'dose'"]),
    ('[[arms]]\nname = "x"\nregimen = { name = "osimertinb" }\n', "arms[0].regimen.name",
     ["did you mean 'osimertinib'"]),
    ('[[arms]]\nname = "x"\nregimen = "12 mg lumbar once"\n', "arms[0].drug", ["names no drug"]),
    (BASE.replace('regimen = "12 mg lumbar once"', 'regimen = "12 mg lumbar once"\nvariant = "saturable"'),
     "arms[0].variant", ["methotrexate supports: linear"]),
    (BASE.replace('regimen = "12 mg lumbar once"', 'regimen = "12 mg lumbar once"\nvariant = "saturble"'),
     "arms[0].variant", ["did you mean 'saturable'"]),
    ("arms = 3\n", "arms", ["array of tables"]),
])
def test_mistakes(tmp_path, text, field, words):
    e = error_of(tmp_path, text)
    if field is not None:
        assert e.field == field, str(e)
        assert f": {field}" in str(e) or str(e).split(": ", 1)[1].startswith(field), str(e)
    for w in words:
        assert w in str(e), str(e)


def test_toml_syntax_error_names_line(tmp_path):
    e = error_of(tmp_path, 'name = "x"\n[population]\nsubjects = \n')
    assert "not valid TOML" in str(e) and "line 3" in str(e)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ScenarioFileError, match="no such file"):
        load_scenario(tmp_path / "nope.toml")
    with pytest.raises(ScenarioFileError, match="is a folder"):
        load_scenario(tmp_path)


def test_iiv_refused_for_combinations(tmp_path):
    e = error_of(tmp_path, """\
        [population]
        iiv = { CL = 0.3 }
        [[arms]]
        name = "combo"
        regimen = { name = "osimertinib_plus_it_pemetrexed", courses = 1 }
        """)
    assert e.field == "population.iiv" and "single-drug" in str(e)


def test_schema_is_documented():
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    for table, keys in SCHEMA.items():
        for k in keys:
            assert f"`{k}`" in doc, f"{table}.{k} is not documented in docs/scenarios.md"


# ------------------------------------------------------------------ per-arm unit (issue 12)
UNITS_FILE = BASE + """
[readouts]
unit = "umol/L"
groups = ["plasma", "ventricular"]

[[arms]]
name = "lumbar mg/L"
regimen = "12 mg lumbar once"
unit = "mg/L"
"""


def test_arm_unit_in_a_file(tmp_path):
    scn, _ = load_scenario(write(tmp_path, UNITS_FILE))
    assert [a.unit for a in scn.arms] == [None, "mg/L"] and scn.unit == "umol/L"
    e = error_of(tmp_path, UNITS_FILE.replace('unit = "mg/L"', 'unit = "mg/dl"'))
    assert e.field == "arms[1].unit" and "'mg/dl'" in str(e) and "umol/L" in str(e) and "mg/L" in str(e)
    e = error_of(tmp_path, UNITS_FILE.replace('unit = "mg/L"', 'unit = 5'))
    assert e.field == "arms[1].unit"


def test_arm_unit_through_pkcsf_run(tmp_path, capsys):
    """Tables carry each arm's unit; figures that would put two units on one axis are skipped with a warning."""
    import json

    from pkcsf.cli import main

    p = write(tmp_path, "days = 2\n" + UNITS_FILE.replace("subjects = 5", "subjects = 1"))
    code = main(["run", str(p), "--out", str(tmp_path / "o"), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, err
    o = tmp_path / "o"
    summ = pd.read_csv(o / "summary.csv")
    assert dict(summ.groupby("arm")["unit"].first()) == {"lumbar": "umol/L", "lumbar mg/L": "mg/L"}
    bands = pd.read_csv(o / "bands.csv")
    assert dict(bands.groupby("arm")["unit"].first()) == {"lumbar": "umol/L", "lumbar mg/L": "mg/L"}
    m = pd.read_csv(o / "metrics.csv")
    assert dict(m.groupby("arm")["unit"].first()) == {"lumbar": "umol/L", "lumbar mg/L": "mg/L"}
    run = json.loads((o / "run.json").read_text())
    assert run["arm_units"] == {"lumbar": "umol/L", "lumbar mg/L": "mg/L"}
    assert any("different units" in w for w in run["warnings"]) and "different units" in err
