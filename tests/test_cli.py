"""The pkcsf command line: every command, every error path (exit 2, one line, nothing written).

Commands run in-process through ``main([...])`` for speed; the installed console script is run once.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pandas as pd
import pytest

import pkcsf
from pkcsf.cli import build_parser, main
from pkcsf.core.errors import ScenarioError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "scenarios").glob("*.toml"))
MTX = ROOT / "scenarios" / "methotrexate_lumbar_vs_ommaya.toml"
COMMANDS = ["report", "run", "escalate", "validate", "drugs", "models", "cite", "new-drug", "warmup",
            "sensitivity", "forecast", "pathologies"]
ESC = ["--doses", "10,20", "--schedule", "once", "--subjects", "5", "--trials", "50"]


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_user_error(code, out, err, *words):
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pkcsf: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]


def listing(folder: Path) -> dict:
    """path -> bytes of every file under ``folder`` (to compare before/after)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def no_temp_left(parent: Path):
    left = [p.name for p in parent.iterdir() if ".pkcsf-tmp-" in p.name]
    assert not left, left


def scenario(tmp_path, text, name="s.toml") -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return p


GOOD = """\
drug = "methotrexate"
[population]
subjects = 3
[readouts]
groups = ["plasma", "ventricular", "lumbar"]
[[arms]]
name = "lumbar"
regimen = "12 mg lumbar once"
[outputs]
figures = false
"""


# ------------------------------------------------------------------ help
@pytest.mark.parametrize("command", COMMANDS)
def test_help_of_each_command_shows_an_example(capsys, command):
    code, out, err = cli(capsys, command, "--help")
    assert code == 0 and err == ""
    assert "example" in out and f"pkcsf {command}" in out
    assert "--quiet" in out


def test_top_level_help_version_and_no_command(capsys):
    code, out, _ = cli(capsys, "--help")
    assert code == 0 and all(c in out for c in COMMANDS) and "examples:" in out
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and pkcsf.__version__ in out
    code, out, _ = cli(capsys)
    assert code == 2 and "COMMAND" in out


def test_parser_has_every_command():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert sorted(sub.choices) == sorted(COMMANDS)


@pytest.mark.parametrize("argv, words", [
    (["bogus"], ["invalid choice", "'run'"]),
    (["run"], ["required", "SCENARIO"]),
    (["run", MTX, "--subjects", "0"], ["--subjects", ">= 1"]),
    (["run", MTX, "--subjects", "many"], ["--subjects", "whole number"]),
    (["run", MTX, "--format", "xlsx"], ["--format", "csv"]),
    (["escalate", "pemetrexed"], ["--doses"]),
    (["escalate", "pemetrexed", "--doses", "10", "--trials", "-3"], ["--trials"]),
    (["run", MTX, "--frobnicate"], ["unrecognized arguments"]),
])
def test_usage_errors_are_one_line(capsys, argv, words):
    assert_user_error(*cli(capsys, *argv), *words)


# ------------------------------------------------------------------ run
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_run_each_example(capsys, tmp_path, path):
    out_dir = tmp_path / "out"
    code, out, err = cli(capsys, "run", path, "--subjects", 3, "--out", out_dir, "--no-figures")
    assert code == 0, err
    files = {p.name for p in out_dir.iterdir()}
    assert {"metrics.csv", "summary.csv", "bands.csv", "targets.csv", "assumptions.csv", "references.txt",
            "scenario.toml", "run.json"} <= files
    m = pd.read_csv(out_dir / "metrics.csv")
    assert m["id"].nunique() == 3 and m["cmax"].gt(0).all()
    man = json.loads((out_dir / "run.json").read_text())
    assert man["subjects"] == 3 and man["files"] and set(man["arms"]) == set(m["arm"])
    assert "wrote" in out and "Cmax (" in out and "AUC (" in out
    no_temp_left(tmp_path)


def test_run_with_figures_seed_and_manifest(capsys, tmp_path):
    out_dir = tmp_path / "mtx"
    code, out, err = cli(capsys, "run", MTX, "--subjects", 4, "--seed", 9, "--out", out_dir)
    assert code == 0, err
    figs = sorted(p.name for p in (out_dir / "figures").glob("*.png"))
    assert "concentration_time.png" in figs and len(figs) >= 2
    man = json.loads((out_dir / "run.json").read_text())
    assert man["seed"] == 9 and man["subjects"] == 4
    assert all((out_dir / f).exists() for f in man["files"])
    refs = (out_dir / "references.txt").read_text()
    assert "model cns_csf" in refs
    t = pd.read_csv(out_dir / "targets.csv")
    assert len(t) == 4 and t["fraction"].between(0, 1).all()


def test_run_quiet_prints_nothing(capsys, tmp_path):
    code, out, err = cli(capsys, "run", scenario(tmp_path, GOOD), "--out", tmp_path / "o", "--quiet")
    assert code == 0 and out == "" and err == ""


def test_run_uses_outputs_folder_relative_to_cwd(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    p = scenario(tmp_path, GOOD.replace("figures = false", 'figures = false\nfolder = "res/a"'))
    assert cli(capsys, "run", p, "--quiet")[0] == 0
    assert (tmp_path / "res" / "a" / "summary.csv").exists()
    p = scenario(tmp_path, GOOD, "named.toml")
    assert cli(capsys, "run", p, "--quiet")[0] == 0
    assert (tmp_path / "results" / "named" / "summary.csv").exists()


def test_run_into_existing_folder_keeps_other_files(capsys, tmp_path):
    # a folder pkcsf wrote (it carries .pkcsf-output.json) is replaced whole; files the user added are kept
    out_dir = tmp_path / "o"
    p = scenario(tmp_path, GOOD)
    assert cli(capsys, "run", p, "--out", out_dir, "--quiet")[0] == 0
    assert (out_dir / ".pkcsf-output.json").exists()
    (out_dir / "notes.txt").write_text("mine")
    (out_dir / "summary.csv").write_text("old")
    assert cli(capsys, "run", p, "--out", out_dir, "--quiet")[0] == 0
    assert (out_dir / "notes.txt").read_text() == "mine"
    assert (out_dir / "summary.csv").read_text() != "old"
    no_temp_left(tmp_path)


def test_run_refuses_a_folder_pkcsf_did_not_write(capsys, tmp_path):
    out_dir = tmp_path / "o"
    out_dir.mkdir()
    (out_dir / "thesis.tex").write_text("mine")
    assert_user_error(*cli(capsys, "run", scenario(tmp_path, GOOD), "--out", out_dir, "--quiet"),
                      "--out", "did not write", ".pkcsf-output.json")
    assert listing(out_dir) == {"thesis.tex": b"mine"}
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(capsys, "run", scenario(tmp_path, GOOD), "--out", empty, "--quiet")[0] == 0
    assert (empty / "summary.csv").exists()
    no_temp_left(tmp_path)


@pytest.mark.parametrize("text, words", [
    ('name = "x"\n[population]\nsubjects = \n', ["not valid TOML", "line 3"]),
    (GOOD.replace("subjects = 3", "subjets = 3"), ["population.subjets", "did you mean 'subjects'"]),
    (GOOD.replace('drug = "methotrexate"', 'drug = "methotrexat"'), ["drug", "did you mean 'methotrexate'"]),
    (GOOD.replace("12 mg lumbar once", "12 mg lumbr once"), ["arms[0].regimen", "did you mean 'lumbar'"]),
    (GOOD.replace('regimen = "12 mg lumbar once"', 'dose = "12 mL"\nroute = "lumbar"\nschedule = "once"'),
     ["arms[0].dose", "volume", "mg"]),
    (GOOD.replace("subjects = 3", "subjects = -1"), ["population.subjects", ">= 1"]),
    (GOOD + '[[arms]]\nname = "osi"\ndrug = "osimertinib"\nregimen = "80 mg lumbar once"\n',
     ["arms[1].regimen", "osimertinib can be given by"]),
])
def test_run_bad_scenarios(capsys, tmp_path, text, words):
    out_dir = tmp_path / "o"
    assert_user_error(*cli(capsys, "run", scenario(tmp_path, text), "--out", out_dir), "s.toml", *words)
    assert not out_dir.exists()
    no_temp_left(tmp_path)


def test_run_missing_file(capsys, tmp_path):
    assert_user_error(*cli(capsys, "run", tmp_path / "nope.toml"), "no such file")


def test_run_unwritable_outputs(capsys, tmp_path):
    p = scenario(tmp_path, GOOD)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert_user_error(*cli(capsys, "run", p, "--out", blocker), "--out", "is a file")
    assert_user_error(*cli(capsys, "run", p, "--out", blocker / "sub"), "--out", "cannot be created")
    assert blocker.read_text() == "x"
    p2 = scenario(tmp_path, GOOD.replace("figures = false", f'figures = false\nfolder = "{blocker}/x"'), "t.toml")
    assert_user_error(*cli(capsys, "run", p2), "outputs.folder", "cannot be created")
    no_temp_left(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0 if hasattr(os, "geteuid") else True,
                    reason="root can write anywhere; permissions cannot be tested")
def test_run_read_only_folder(capsys, tmp_path):  # pragma: no cover - not run as root
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert_user_error(*cli(capsys, "run", scenario(tmp_path, GOOD), "--out", ro / "x"), "cannot be written")
    finally:
        ro.chmod(0o700)


def test_run_parquet(capsys, tmp_path):
    p = scenario(tmp_path, GOOD)
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert_user_error(*cli(capsys, "run", p, "--out", tmp_path / "o", "--format", "parquet"),
                          "parquet", "pip install pyarrow")
        assert not (tmp_path / "o").exists()
        return
    assert cli(capsys, "run", p, "--out", tmp_path / "o", "--format", "parquet", "--quiet")[0] == 0
    assert (tmp_path / "o" / "metrics.parquet").exists()


def test_run_failure_midway_writes_nothing_and_keeps_old_contents(capsys, tmp_path, monkeypatch):
    import pkcsf.clinical.scenario as S

    out_dir = tmp_path / "o"
    assert cli(capsys, "run", scenario(tmp_path, GOOD), "--out", out_dir, "--quiet")[0] == 0   # a previous run
    (out_dir / "notes.txt").write_text("mine")
    before = listing(out_dir)

    def boom(*a, **k):
        raise ScenarioError("arms", "x", "simulated failure in the middle of a run")

    monkeypatch.setattr(S, "run", boom)
    assert_user_error(*cli(capsys, "run", scenario(tmp_path, GOOD), "--out", out_dir, "--quiet"),
                      "simulated failure")
    assert listing(out_dir) == before
    assert_user_error(*cli(capsys, "run", scenario(tmp_path, GOOD), "--out", tmp_path / "new", "--quiet"))
    assert not (tmp_path / "new").exists()
    no_temp_left(tmp_path)


def test_unexpected_errors_show_a_traceback_and_exit_1(capsys, tmp_path, monkeypatch):
    import pkcsf.clinical.scenario as S

    def bug(*a, **k):
        raise RuntimeError("a bug")

    monkeypatch.setattr(S, "run", bug)
    code, out, err = cli(capsys, "run", scenario(tmp_path, GOOD), "--out", tmp_path / "o")
    assert code == 1 and "Traceback" in err and "RuntimeError: a bug" in err
    assert not (tmp_path / "o").exists()
    no_temp_left(tmp_path)


def test_run_subjects_beyond_csv_rows(capsys, tmp_path):
    pd.DataFrame({"WT": [60.0, 70.0]}).to_csv(tmp_path / "p.csv", index=False)
    p = scenario(tmp_path, GOOD.replace("subjects = 3", 'csv = "p.csv"'))
    assert_user_error(*cli(capsys, "run", p, "--subjects", 5, "--out", tmp_path / "o"), "--subjects", "2 rows")


# ------------------------------------------------------------------ escalate
def test_escalate_prints_operating_characteristics(capsys):
    code, out, err = cli(capsys, "escalate", "pemetrexed", *ESC, "--seed", 2, "--dlt", "link")
    assert code == 0, err
    assert "p_select" in out and "mean_n" in out and "exposure_p50" in out and "none" in out
    assert "link:" in out and "Pan et al. 2019" in out and "time: exposure pools" in out


def test_escalate_pemetrexed_uses_the_pd_model_by_default_and_says_so(capsys):
    code, out, err = cli(capsys, "escalate", "pemetrexed", *ESC, "--seed", 2)
    assert code == 0, err
    assert "DLT model: per-patient pharmacodynamics (default for pemetrexed" in out
    assert "anc_nadir_p50" in out and "reality check" in out and "pan2019_10mg" in out
    code, out, err = cli(capsys, "escalate", "pemetrexed", *ESC, "--mtd-dose", "10")
    assert code == 0 and "DLT model: logistic exposure-toxicity link (--mtd-dose given)" in out, err
    code, out, err = cli(capsys, "escalate", "methotrexate", *ESC, "--dlt", "neutropenia")
    assert code != 0 and "no neutropenia" in err


def test_escalate_writes_outputs(capsys, tmp_path):
    out_dir = tmp_path / "esc"
    code, out, err = cli(capsys, "escalate", "pemetrexed", *ESC, "--design", "boin", "--target-dlt", "0.25",
                         "--max-n", "12", "--iiv", "CL=0.3", "--exposure", "lumbar:cmax",
                         "--efficacy", "lumbar:time_above[0.1 umol/L] >= 24 h", "--out", out_dir)
    assert code == 0, err
    s = pd.read_csv(out_dir / "escalation_summary.csv")
    assert list(s["dose"][:2]) == [10, 20] and "efficacy_attainment" in s
    assert len(pd.read_csv(out_dir / "trials.csv")) == 50
    assert len(pd.read_csv(out_dir / "exposures.csv")) == 10
    prov = json.loads((out_dir / "escalation.json").read_text())
    assert prov["design"].startswith("BOIN (target 0.25") and prov["exposure"] == "lumbar:cmax"
    assert prov["iiv"] == {"CL": 0.3} and prov["trials"] == 50
    assert "Pan Z" in (out_dir / "references.txt").read_text()
    assert (out_dir / "figures" / "escalation.png").exists() or any("figure" in w for w in prov["warnings"])
    no_temp_left(tmp_path)


def test_escalate_own_link_and_mtd_dose(capsys):
    code, out, err = cli(capsys, "escalate", "methotrexate", *ESC, "--mtd-dose", "15", "--p-at-mtd", "0.2",
                         "--slope", "3", "--quiet")
    assert code == 0 and out == "", err
    code, out, err = cli(capsys, "escalate", "methotrexate", *ESC, "--e50", "40", "--slope", "2")
    assert code == 0 and "e50 = 40" in out, err


@pytest.mark.parametrize("argv, words", [
    (["nodrug", *ESC], ["drug", "allowed"]),
    (["pemetrexd", *ESC], ["did you mean 'pemetrexed'"]),
    (["pemetrexed", *ESC, "--route", "lumbr"], ["route", "did you mean 'lumbar'"]),
    (["pemetrexed", *ESC, "--route", "oral"], ["pemetrexed can be given by"]),
    (["pemetrexed", "--doses", "10 mL,20 mL"], ["doses[0]", "mg"]),
    (["pemetrexed", "--doses", "30,20"], ["doses[1]", "increasing"]),
    (["pemetrexed", *ESC, "--design", "bion"], ["did you mean 'boin'"]),
    (["pemetrexed", *ESC, "--exposure", "plasm:auc"], ["did you mean 'plasma'"]),
    (["pemetrexed", *ESC, "--target-dlt", "0.2"], ["boin and crm only"]),
    (["pemetrexed", *ESC, "--design", "crm", "--target-dlt", "1.2"], ["--target-dlt", "between 0 and 1"]),
    (["pemetrexed", *ESC, "--e50", "3", "--mtd-dose", "10"], ["--e50", "not both"]),
    (["pemetrexed", *ESC, "--iiv", "CL:0.3"], ["--iiv", "PARAMETER=CV"]),
    (["pemetrexed", *ESC, "--iiv", "CLX=0.3"], ["did you mean 'CL'"]),
    (["methotrexate", *ESC], ["no literature MTD", "mtd_dose"]),
    (["pemetrexed", *ESC, "--schedule", "wekly x 2"], ["unknown frequency"]),
    (["pemetrexed", *ESC, "--efficacy", "lumbar:cmax >= 2 h"], ["--efficacy"]),
])
def test_escalate_errors(capsys, tmp_path, argv, words):
    out_dir = tmp_path / "o"
    assert_user_error(*cli(capsys, "escalate", *argv, "--out", out_dir), *words)
    assert not out_dir.exists()
    no_temp_left(tmp_path)


def test_escalate_unwritable_out(capsys, tmp_path):
    f = tmp_path / "f"
    f.write_text("")
    assert_user_error(*cli(capsys, "escalate", "pemetrexed", *ESC, "--out", f / "x"), "--out", "cannot be created")


# ------------------------------------------------------------------ validate, drugs, models, cite
def test_validate_prints_and_writes(capsys, tmp_path):
    code, out, err = cli(capsys, "validate", "--out", tmp_path / "v")
    assert code == 0, err
    assert "fold_error" in out and "within 2-fold" in out and "geometric mean fold error" in out
    assert (tmp_path / "v" / "validation.csv").exists() and (tmp_path / "v" / "validation.png").exists()
    assert (tmp_path / "v" / "validation.md").exists() and "validation rows: " in out
    f = tmp_path / "f"
    f.write_text("")
    assert_user_error(*cli(capsys, "validate", "--out", f), "is a file")


def test_validate_with_uncertainty(capsys, tmp_path):
    """`pkcsf validate --uncertainty N`: the 90% interval of each prediction from the CSF transport's posterior."""
    mine = tmp_path / "mine.csv"
    mine.write_text("id,drug,route,dose_mg,site,quantity,time_h,observed,unit\n"
                    "b,methotrexate,ommaya,12,lv,peak_concentration,0-6,300,umol/L\n")
    code, out, err = cli(capsys, "validate", "--observations", mine, "--uncertainty", "3", "--out", tmp_path / "v")
    assert code == 0, err
    assert "interval_fold_lo" in out and "parameter uncertainty (90% intervals, 3 sets of csf_transport)" in out
    t = pd.read_csv(tmp_path / "v" / "validation.csv")
    assert t["interval_lo"].notna().all() and (t["interval_n"] == 3).all()
    assert "90% interval" in (tmp_path / "v" / "validation.md").read_text()
    assert_user_error(*cli(capsys, "validate", "--observations", mine, "--uncertainty", "1"), "--uncertainty", "from 2 to 10000")


def test_validate_own_observations(capsys, tmp_path):
    """A user's own observations file (only the required columns), a built-in file by name, and the errors."""
    mine = tmp_path / "mine.csv"
    mine.write_text("id,drug,route,dose_mg,site,quantity,time_h,observed,unit\n"
                    "a,methotrexate,lumbar,12,spinal_lumbar,concentration,24,1.0,umol/L\n"
                    "b,methotrexate,ommaya,12,lv,peak_concentration,0-6,300,umol/L\n")
    code, out, err = cli(capsys, "validate", "--observations", mine, "--out", tmp_path / "v")
    assert code == 0, err
    t = pd.read_csv(tmp_path / "v" / "validation.csv")
    assert list(t["id"]) == ["a", "b"] and set(t["role"]) == {"validation"} and t["fold_error"].notna().all()
    code, out, err = cli(capsys, "validate", "--observations", "observations_cisternography")
    assert code == 0, err
    assert "cisternography_dyke2020_cm_tmax" in out
    # malformed file: one line naming the file, line, id, column and value; nothing written
    bad = tmp_path / "bad.csv"
    bad.write_text("id,drug,route,dose_mg,site,quantity,time_h,observed,unit\n"
                   "a,methotrexate,lumbar,12,spinal_lumbar,cmax,24,1.0,umol/L\n")
    assert_user_error(*cli(capsys, "validate", "--observations", bad, "--out", tmp_path / "w"),
                      "bad.csv, line 2 (id 'a'): quantity", "'cmax'", "peak_concentration")
    assert not (tmp_path / "w").exists()
    # a row the model cannot simulate stops the run, nothing written
    bad.write_text("id,drug,route,dose_mg,site,quantity,time_h,observed,unit\n"
                   "a,methotrexate,lumbar,12,brainstem,concentration,24,1.0,umol/L\n")
    assert_user_error(*cli(capsys, "validate", "--observations", bad, "--out", tmp_path / "w"),
                      "could not be simulated", "brainstem")
    assert not (tmp_path / "w").exists()
    assert_user_error(*cli(capsys, "validate", "--observations", tmp_path / "nope.csv"),
                      "nope.csv", "observations_v3_candidates")


def test_drugs(capsys):
    code, out, _ = cli(capsys, "drugs")
    assert code == 0
    for name in pkcsf.clinical.cns.available_drugs():
        assert f"{name}:" in out
    assert "MW 427.41 g/mol" in out and "routes:" in out and "thresholds:" in out and "sources:" in out
    code, out, _ = cli(capsys, "drugs", "pemetrexed", "--brief")
    assert code == 0 and out.startswith("pemetrexed:") and "sources:" not in out and "methotrexate:" not in out
    assert_user_error(*cli(capsys, "drugs", "pemetrexd"), "did you mean 'pemetrexed'")


def test_models(capsys):
    code, out, _ = cli(capsys, "models")
    assert code == 0 and "cns_csf:" in out and "compartments:" in out and "dosing sites:" in out
    code, out, _ = cli(capsys, "models", "cns_csf_liposomal", "--brief")
    assert code == 0 and out.startswith("cns_csf_liposomal:")
    assert_user_error(*cli(capsys, "models", "cns_cfs"), "did you mean 'cns_csf'")


def test_cite(capsys):
    code, out, _ = cli(capsys, "cite", ROOT / "scenarios" / "pemetrexed_dose_levels.toml")
    assert code == 0 and "References behind" in out and "model cns_csf" in out and "alimta_label" in out
    assert "condon1986" in out, "variability sources are cited too"
    code, out, _ = cli(capsys, "cite", ROOT / "scenarios" / "cytarabine_liposomal_vs_free.toml")
    assert code == 0 and "regimen liposomal_cytarabine" in out
    code, out, _ = cli(capsys, "cite", "--drug", "osimertinib", "--variant", "saturable")
    assert code == 0 and "saturable" in out and "cns_csf_saturable" in out
    assert_user_error(*cli(capsys, "cite"), "give a scenario file or --drug")
    assert_user_error(*cli(capsys, "cite", "--drug", "pemetrexd"), "did you mean 'pemetrexed'")
    assert_user_error(*cli(capsys, "cite", "--drug", "pemetrexed", "--variant", "saturable"), "variant")


# ------------------------------------------------------------------ report (the builder is faked: fast)
@pytest.fixture
def fake_report(monkeypatch):
    calls = []
    mod = types.ModuleType("pkcsf.report")

    def build_report(out_dir, *, subjects=1000, seed=0, progress=True, fmt="html"):
        calls.append(dict(out_dir=Path(out_dir), subjects=subjects, seed=seed, progress=progress, fmt=fmt))
        if fmt != "html":
            raise ScenarioError("fmt", fmt, "allowed: html")
        out = Path(out_dir)
        (out / "figures").mkdir(parents=True, exist_ok=True)
        (out / "figures" / "a.png").write_bytes(b"png")
        (out / "report.html").write_text("<html></html>")
        return out / "report.html"

    mod.build_report = build_report
    monkeypatch.setitem(sys.modules, "pkcsf.report", mod)
    monkeypatch.setattr(pkcsf, "report", mod, raising=False)
    return calls


def test_report_default_folder(capsys, tmp_path, monkeypatch, fake_report):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(capsys, "report")
    assert code == 0, err
    assert (tmp_path / "report" / "report.html").exists() and (tmp_path / "report" / "figures" / "a.png").exists()
    assert "report written to" in out and str(tmp_path / "report" / "report.html") in out
    call = fake_report[0]
    assert call["fmt"] == "html" and call["subjects"] == 1000 and call["progress"] is False
    assert call["out_dir"].parent == tmp_path, "built in a temporary folder next to the target"
    no_temp_left(tmp_path)


def test_report_options_and_failure(capsys, tmp_path, fake_report):
    assert cli(capsys, "report", "--out", tmp_path / "r", "--subjects", 50, "--seed", 4, "--quiet")[0] == 0
    assert fake_report[-1]["subjects"] == 50 and fake_report[-1]["seed"] == 4
    assert_user_error(*cli(capsys, "report", "--out", tmp_path / "r2", "--format", "pdf"), "--format", "html")
    assert not (tmp_path / "r2").exists()
    no_temp_left(tmp_path)


# ------------------------------------------------------------------ the installed console script
def test_console_script(tmp_path):
    exe = shutil.which("pkcsf")
    cmd = [exe] if exe else [sys.executable, "-m", "pkcsf.cli"]
    ok = subprocess.run(cmd + ["drugs", "pemetrexed", "--brief"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("pemetrexed:"), ok.stderr
    bad = subprocess.run(cmd + ["escalate", "pemetrexd", "--doses", "10", "--out", str(tmp_path / "o")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("pkcsf: error: ")
    assert not (tmp_path / "o").exists()


def test_docs_cover_every_command_and_option():
    doc = (ROOT / "docs" / "cli.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name, p in sub.choices.items():
        assert f"## `pkcsf {name}" in doc, name
        for action in p._actions:
            for opt in action.option_strings:
                if opt.startswith("--") and opt != "--help":
                    assert opt in doc, f"pkcsf {name} {opt} is not in docs/cli.md"
