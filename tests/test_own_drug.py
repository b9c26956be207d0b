"""Your own drug without touching the package (issue 12, point 3).

A user writes a drug file from the template into a folder outside the package, makes the folder known
(add_search_path / PKCSF_PATH / --path) and runs the drug by name in the API, a scenario file and the CLI.
Values given with units are converted; a wrong dimension and an unsourced value are refused by name.
"""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pkcsf as pk
from pkcsf.cli import main
from pkcsf.clinical import cns
from pkcsf.clinical.drugfile import drug_template, write_drug_template
from pkcsf.clinical.parameters import load_parameter_set
from pkcsf.clinical.scenario_file import load_scenario
from pkcsf.core import paths
from pkcsf.core.errors import ParameterError, PkcsfError
from pkcsf.core.paths import builtin_dir

REGIMEN = "40 mg lumbar every 3 weeks x 2"


@pytest.fixture
def search_path(monkeypatch):
    """Isolate the user search path of this process (add_search_path is global)."""
    monkeypatch.setattr(paths, "_USER", [])
    monkeypatch.delenv("PKCSF_PATH", raising=False)


def _fill_as_assumptions(path: Path) -> None:
    """What a user does to a template started from another drug: keep its numbers, state them as assumptions
    (the template's note already says where each number came from)."""
    text = path.read_text()
    path.write_text(text.replace('source = "TODO"', 'source = "assumption"'))


@pytest.fixture
def user_drug(tmp_path, search_path):
    folder = tmp_path / "my_pkcsf"
    path = write_drug_template("mydrug", like="trastuzumab", out=folder)
    _fill_as_assumptions(path)
    pk.add_search_path(folder)
    return folder


def test_template_is_refused_until_every_value_has_a_source(tmp_path, search_path):
    folder = tmp_path / "f"
    path = write_drug_template("mydrug", like="trastuzumab", out=folder)
    assert path == folder / "parameters" / "drugs" / "mydrug.toml"
    pk.add_search_path(folder)
    assert "mydrug" in cns.available_drugs()
    with pytest.raises(ParameterError) as e:
        cns.drug("mydrug")
    msg = str(e.value)
    for name in ("values.MW", "values.CL", "values.PS_BCSFB", "values.D_TISSUE"):
        assert name in msg
    assert "without a source" in msg and "assumption" in msg
    # a blank template (no --like): nan values and TODO sources, refused the same way
    blank = write_drug_template("blankdrug", out=folder)
    with pytest.raises(ParameterError, match="values.CL"):
        load_parameter_set(blank)
    # one value filled in the wrong way: an assumption without its reasoning is refused by name
    _fill_as_assumptions(path)
    text = path.read_text()
    start = text.index("[values.CL]")
    end = text.index("[values.", start + 5)
    block = text[start:end]
    path.write_text(text[:start] + block.replace(block[block.index("note ="):], 'note = ""\n\n') + text[end:])
    with pytest.raises(ParameterError, match=r"values\.CL\.note"):
        cns.drug("mydrug")


def test_user_drug_runs_by_name_in_the_api(user_drug):
    d = cns.drug("mydrug")
    assert d.parameters.path.startswith(str(user_drug))
    tra = cns.drug("trastuzumab")
    assert d.parameters.as_dict() == pytest.approx(tra.parameters.as_dict())
    res = pk.simulate("mydrug", {"lumbar": REGIMEN}, subjects=5, days=42, seed=1, variability=False)
    ref = pk.simulate("trastuzumab", {"lumbar": REGIMEN}, subjects=5, days=42, seed=1, variability=False)
    s, r = res.summary(), ref.summary()
    assert set(s["drug"]) == {"mydrug"}
    np.testing.assert_allclose(s["cmax_p50"].to_numpy(), r["cmax_p50"].to_numpy(), rtol=1e-12)
    a = res.assumptions()
    assert {"CL", "PS_BCSFB"} <= set(a.loc[a["set"] == "mydrug", "parameter"])


def test_user_drug_runs_in_a_scenario_file_and_the_cli(user_drug, tmp_path):
    scn_file = tmp_path / "mine.toml"
    scn_file.write_text(f'name = "my drug"\ndrug = "mydrug"\ndays = 42\n[population]\nsubjects = 4\n'
                        f'[[arms]]\nname = "lumbar"\nregimen = "{REGIMEN}"\n')
    scn, _ = load_scenario(scn_file)
    res = pk.run(scn)
    assert set(res.summary()["drug"]) == {"mydrug"}
    out = tmp_path / "out"
    assert main(["run", str(scn_file), "--out", str(out), "--no-figures", "--quiet"]) == 0
    assert (out / "summary.csv").exists()
    assert "mydrug" in (out / "summary.csv").read_text()


def test_cli_path_option_and_pkcsf_path_env(user_drug, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(paths, "_USER", [])          # only --path makes the folder known now
    assert main(["drugs", "mydrug"]) == 2
    assert "mydrug" in capsys.readouterr().err
    assert main(["drugs", "mydrug", "--path", str(user_drug)]) == 0
    assert "mydrug" in capsys.readouterr().out
    env = dict(os.environ, PKCSF_PATH=str(user_drug))
    p = subprocess.run([sys.executable, "-m", "pkcsf", "drugs", "mydrug", "--brief"], env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "mydrug" in p.stdout


def test_new_drug_command(tmp_path, search_path, capsys):
    assert main(["new-drug", "itab", "--like", "sintilimab", "--out", str(tmp_path)]) == 0
    path = tmp_path / "parameters" / "drugs" / "itab.toml"
    assert path.exists() and str(path) in capsys.readouterr().out
    text = path.read_text()
    assert 'name = "itab"' in text and "sintilimab's value" in text and 'source = "TODO"' in text
    assert main(["new-drug", "itab", "--out", str(tmp_path)]) == 2          # exists: refused
    assert "exists" in capsys.readouterr().err
    assert main(["new-drug", "9bad name", "--out", str(tmp_path)]) == 2


def test_template_file_matches_the_generator():
    shipped = builtin_dir("parameters") / "drugs" / "TEMPLATE.toml.txt"
    assert shipped.read_text() == drug_template("mydrug")
    assert "TEMPLATE" not in cns.available_drugs()


def test_with_values_accepts_units_and_refuses_a_wrong_dimension():
    tra = cns.drug("trastuzumab")
    d = tra.with_values(CL="0.20 L/d", V1="3100 mL", PS_BCSFB="0.001 mL/min", KEL_CSF="0.1 1/day")
    p = d.parameters.values
    assert p["CL"].value == pytest.approx(0.20 / 24)
    assert (p["CL"].given, p["CL"].unit, p["CL"].source) == (0.20, "L/d", "user")
    assert p["V1"].value == pytest.approx(3.1)
    assert p["PS_BCSFB"].value == pytest.approx(0.001 * 0.06)
    assert p["KEL_CSF"].value == pytest.approx(0.1 / 24)
    assert d.parameters.values["V2"] == tra.parameters.values["V2"]
    # a bare number is in pkcsf's base unit (L/h here)
    assert tra.with_values(CL=0.01).parameters.values["CL"].value == 0.01
    # the setup and every run use the changed values
    assert cns.setup(d).parameters["CL"] == pytest.approx(0.20 / 24)
    # set by the user: listed with the assumptions, never silently sourced
    assert "CL" in {v.name for v in d.parameters.assumptions()}
    with pytest.raises(PkcsfError) as e:
        tra.with_values(CL="3 L")
    msg = str(e.value)
    assert "CL" in msg and "3 L" in msg and "L/h" in msg and "flow" in msg
    with pytest.raises(PkcsfError, match="unit"):
        tra.with_values(CL="0.2 furlongs")
    with pytest.raises(ParameterError, match="PS_BCSFB"):
        tra.with_values(PS_BCFSB="0.001 mL/min")           # misspelt: refused with the closest name


def test_modified_drug_is_honoured_by_simulate():
    tra = cns.drug("trastuzumab")
    fast = tra.with_values(CL="2.25 L/d")                 # 10x the sourced clearance
    kw = dict(subjects=1, days=21, variability=False)
    a = pk.simulate(tra, {"iv": "420 mg iv once"}, **kw).summary()
    b = pk.simulate(fast, {"iv": "420 mg iv once"}, **kw).summary()
    pa = a.loc[a["group"] == "plasma", "auc_p50"].iloc[0]
    pb = b.loc[b["group"] == "plasma", "auc_p50"].iloc[0]
    assert pb < 0.5 * pa


def test_sintilimab_and_nivolumab_run():
    res = pk.simulate("sintilimab", {"lumbar": REGIMEN}, subjects=50, days=42, seed=2)
    s = res.summary()
    lum = s.loc[s["group"] == "lumbar", "cmax_p50"].iloc[0]
    plasma = s.loc[s["group"] == "plasma", "cmax_p50"].iloc[0]
    assert lum > 10 * plasma > 0
    a = res.assumptions()
    assert {"CL", "V1", "PS_BCSFB"} <= set(a.loc[a["set"] == "sintilimab", "parameter"])
    niv = pk.simulate("nivolumab", {"ommaya": "50 mg ommaya every 2 weeks x 2"}, subjects=5, days=28)
    assert np.isfinite(niv.summary()["cmax_p50"]).all()
