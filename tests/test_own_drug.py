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


# ------------------------------------------------------------------ values outside their physical domain
def _set_value(path: Path, name: str, line: str) -> None:
    """Replace the line ``value = ...`` (or ``unit = ...``) of ``[values.<name>]`` in a drug file."""
    text = path.read_text()
    start = text.index(f"[values.{name}]")
    key = line.split("=")[0].strip()
    i = text.index(f"\n{key} = ", start) + 1
    j = text.index("\n", i)
    path.write_text(text[:i] + line + text[j:])


@pytest.fixture
def user_file(user_drug):
    return user_drug / "parameters" / "drugs" / "mydrug.toml"


@pytest.mark.parametrize("name, value, allowed", [
    ("MW", "0.0", "MW > 0"),
    ("MW", "-5.0", "MW > 0"),
    ("FU", "2.0", "0 < FU <= 1"),
    ("FU", "0.0", "0 < FU <= 1"),
    ("V1", "0.0", "V1 > 0"),
    ("V2", "-1.0", "V2 > 0"),
    ("CL", "0.0", "CL > 0"),
    ("Q", "-0.1", "Q >= 0"),
    ("PS_BCSFB", "-1e-3", "PS_BCSFB >= 0"),
    ("CL_EFFLUX_CSF", "-0.1", "CL_EFFLUX_CSF >= 0"),
    ("PS_BBB", "-1e-3", "PS_BBB >= 0"),
    ("D_TISSUE", "0.0", "D_TISSUE > 0"),
    ("KP_TISSUE", "0.0", "KP_TISSUE > 0"),
    ("KEL_CSF", "-0.5", "KEL_CSF >= 0"),
])
def test_a_value_outside_its_domain_is_refused_naming_file_value_and_range(user_file, name, value, allowed):
    _set_value(user_file, name, f"value = {value}")
    with pytest.raises(ParameterError) as e:
        cns.drug("mydrug")
    msg = str(e.value)
    assert f"mydrug.toml: values.{name}" in msg and allowed in msg, msg
    assert repr(float(value)).rstrip("0").rstrip(".") in msg or f"{float(value):g}" in msg, msg


def test_a_value_outside_its_domain_stops_the_cli_with_one_line(user_file, user_drug, tmp_path, capsys):
    _set_value(user_file, "MW", "value = 0.0")          # was a ZeroDivisionError in concentration_factor
    assert main(["drugs", "mydrug"]) == 2
    err = capsys.readouterr().err
    assert "values.MW" in err and "MW > 0" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    scn = tmp_path / "s.toml"
    scn.write_text(f'drug = "mydrug"\ndays = 7\n[[arms]]\nname = "a"\nregimen = "{REGIMEN}"\n')
    out = tmp_path / "out"
    assert main(["run", str(scn), "--out", str(out), "--no-figures", "--quiet"]) == 2
    assert "values.MW" in capsys.readouterr().err
    assert not out.exists()                             # nothing written
    _set_value(user_file, "MW", "value = -5.0")         # was: exit 0 with negative concentrations and AUCs
    assert main(["run", str(scn), "--out", str(out), "--no-figures", "--quiet"]) == 2
    assert "-5 g/mol" in capsys.readouterr().err and not out.exists()


def test_a_percentage_or_another_unit_is_checked_in_base_units(user_file):
    _set_value(user_file, "FU", "value = 150.0")
    _set_value(user_file, "FU", 'unit = "%"')
    with pytest.raises(ParameterError, match=r"values\.FU: got '150 %'; .*150 % = 1\.5.*0 < FU <= 1"):
        cns.drug("mydrug")
    _set_value(user_file, "FU", "value = 87.0")
    assert cns.drug("mydrug").parameters["FU"] == pytest.approx(0.87)


def test_a_unit_of_the_wrong_kind_is_refused(user_file):
    _set_value(user_file, "CL", 'unit = "L"')           # a volume given for a clearance
    with pytest.raises(ParameterError, match=r"values\.CL\.unit: got 'L'; .*flow unit, not a volume.*L/h"):
        cns.drug("mydrug")


def test_missing_mw_says_required_and_missing(user_file):
    text = user_file.read_text()
    start = text.index("[values.MW]")
    user_file.write_text(text[:start] + text[text.index("[values.", start + 5):])
    with pytest.raises(ParameterError) as e:
        cns.drug("mydrug")
    msg = str(e.value)
    assert "mydrug.toml: values" in msg and "MW missing" in msg and "required and missing: MW" in msg
    assert "allowed: CL" not in msg


def test_an_infinite_value_is_refused_as_not_finite(user_file):
    _set_value(user_file, "CL", "value = inf")
    with pytest.raises(ParameterError) as e:
        cns.drug("mydrug")
    msg = str(e.value)
    assert "values.CL.value: got inf; must be a finite number" in msg and "without a source" not in msg
    _set_value(user_file, "CL", "value = nan")          # nan is the template's placeholder: still unsourced
    with pytest.raises(ParameterError, match="without a source.*values.CL"):
        cns.drug("mydrug")


def test_thresholds_variability_and_covariates_are_checked(user_file):
    text = user_file.read_text()
    good = text
    i = text.index("[thresholds.")
    j = text.index("\nvalue = ", i) + 1
    user_file.write_text(text[:j] + "value = -1.0" + text[text.index("\n", j):])
    with pytest.raises(ParameterError, match=r"thresholds\.\w+: got '-1 .*> 0"):
        cns.drug("mydrug")
    i = good.index("[variability.")
    j = good.index("\ncv = ", i) + 1
    user_file.write_text(good[:j] + "cv = -0.3" + good[good.index("\n", j):])
    with pytest.raises(ParameterError, match=r"variability\.\w+: got -0\.3; a coefficient of variation.*>= 0"):
        cns.drug("mydrug")
    i = good.index("[covariates.")
    j = good.index("\nreference = ", i) + 1
    user_file.write_text(good[:j] + "reference = 0.0" + good[good.index("\n", j):])
    with pytest.raises(ParameterError, match=r"covariates\.\w+\.reference: got 0\.0; .*must be > 0"):
        cns.drug("mydrug")
    user_file.write_text(good.replace("\nvalue = 0.225\n", '\nvalue = 0.225\nrange = "wide"\n'))
    with pytest.raises(ParameterError, match=r"values\.CL\.range: got 'wide'; must be two numbers"):
        cns.drug("mydrug")


def test_form_and_route_values_are_required_and_checked(user_file):
    text = user_file.read_text()
    user_file.write_text(text.replace('form = "antibody"', 'form = "liposome"'))
    with pytest.raises(ParameterError, match=r"options\.form: got 'liposome'.*allowed: free, antibody, liposomal"):
        cns.drug("mydrug")
    user_file.write_text(text.replace('routes = ["lumbar"', 'routes = ["oral", "lumbar"'))
    with pytest.raises(ParameterError, match=r"required and missing: KA .*F_ORAL .*leave oral out"):
        cns.drug("mydrug")
    extra = ('\n[values.KA]\nvalue = 0.5\nunit = "1/h"\nsource = "assumption"\nnote = "test"\n'
             '\n[values.F_ORAL]\nvalue = 1.5\nunit = "1"\nsource = "assumption"\nnote = "test"\n')
    user_file.write_text(text.replace('routes = ["lumbar"', 'routes = ["po", "lumbar"') + extra)
    with pytest.raises(ParameterError, match=r"values\.F_ORAL: got 1\.5; .*0 <= F_ORAL <= 1"):
        cns.drug("mydrug")


def test_values_of_model_variants_and_species_have_the_domain_of_the_value_they_replace(user_file):
    extra = '\n[values.PS_BCSFB_V3]\nvalue = -0.001\nunit = "mL/min"\nsource = "assumption"\nnote = "test"\n'
    user_file.write_text(user_file.read_text() + extra)
    with pytest.raises(ParameterError, match=r"values\.PS_BCSFB_V3: .*replaces PS_BCSFB.*PS_BCSFB_V3 >= 0"):
        cns.drug("mydrug")


def test_with_values_is_checked_the_same_way():
    tra = cns.drug("trastuzumab")
    with pytest.raises(ParameterError, match=r"trastuzumab\.MW: got .0 g/mol.; .*MW > 0"):
        tra.with_values(MW=0)
    with pytest.raises(ParameterError, match=r"trastuzumab\.FU: got 2\.0; .*0 < FU <= 1"):
        tra.with_values(FU=2.0)
    with pytest.raises(ParameterError, match=r"osimertinib\.FMET_AZ5104: .*0 <= FMET_AZ5104 < 1"):
        cns.drug("osimertinib").with_values(FMET_AZ5104=1.0)
    with pytest.raises(ParameterError, match=r"cytarabine_liposomal\.LIPO_SIEVE: .*0 <= LIPO_SIEVE <= 1"):
        cns.drug("cytarabine_liposomal").with_values(LIPO_SIEVE=-0.1)
    assert tra.with_values(Q=0, KEL_CSF=0).parameters["Q"] == 0.0      # zero where zero means "none"


def test_a_molar_value_is_converted_with_mw(tmp_path, search_path):
    """A value written in a molar unit (KM_EFFLUX in umol/L) is used in mg/L, converted with the drug's MW."""
    folder = tmp_path / "f"
    path = write_drug_template("osilike", like="osimertinib", out=folder)
    _fill_as_assumptions(path)
    osi = cns.drug("osimertinib")
    km_umol = osi.parameters["KM_EFFLUX"] / osi.mw * 1e3
    _set_value(path, "KM_EFFLUX", f"value = {km_umol!r}")
    _set_value(path, "KM_EFFLUX", 'unit = "umol/L"')
    pk.add_search_path(folder)
    d = cns.drug("osilike")
    assert d.parameters["KM_EFFLUX"] == pytest.approx(osi.parameters["KM_EFFLUX"], rel=1e-12)
    assert cns.setup(d, variant="saturable").parameters["KM_EFFLUX"] == pytest.approx(osi.parameters["KM_EFFLUX"])


# ------------------------------------------------------------------ new-drug leaves nothing behind on failure
def test_new_drug_with_a_name_too_long_writes_nothing(tmp_path, capsys):
    out = tmp_path / "my9"
    assert main(["new-drug", "x" * 300, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "new drug name" in err and "at most" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_new_drug_removes_what_it_created_when_writing_fails(tmp_path, monkeypatch):
    import errno

    def full(self, target):
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(Path, "replace", full)
    out = tmp_path / "a" / "b"
    with pytest.raises(OSError, match="No space"):
        write_drug_template("mydrug", like="trastuzumab", out=out)
    assert list(tmp_path.iterdir()) == []               # no folder, no partial file
    (tmp_path / "keep").mkdir()                         # a folder that was there before stays
    with pytest.raises(OSError):
        write_drug_template("mydrug", out=tmp_path / "keep")
    assert [p.name for p in tmp_path.iterdir()] == ["keep"] and list((tmp_path / "keep").iterdir()) == []
