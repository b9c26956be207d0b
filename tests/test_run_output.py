"""What ``pkcsf run`` shows (issue 14): the terminal table clinicians read first (Cmax, AUC, time above each
threshold, per arm and site, with units), every drug of a combination drawn, bands.csv with its unit, and the
first-call compile notice reaching the terminal."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from pkcsf.cli import main

ROOT = Path(__file__).resolve().parents[1]
COMBO = ROOT / "scenarios" / "osimertinib_plus_it_pemetrexed.toml"
MTX = ROOT / "scenarios" / "methotrexate_lumbar_vs_ommaya.toml"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_terminal_table_has_time_above_with_units(capsys, tmp_path):
    code, out, err = _run(capsys, "run", MTX, "--subjects", 3, "--out", tmp_path / "o", "--no-figures")
    assert code == 0, err
    header = next(line for line in out.splitlines() if line.startswith("arm "))
    assert re.search(r"Cmax \(\S+/L\)", header) and re.search(r"AUC \(\S+/L\*h\)", header)
    assert re.search(r"time above .+ \(h\)", header)
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    for arm in summary["arm"].unique():
        assert any(line.startswith(arm) for line in out.splitlines())
    # 'median (p5-p95)', never 'x (x-x)'
    assert not re.search(r"(?<![\d.])(\d+(?:\.\d+)?) \(\1-\1\)", out)
    bands = pd.read_csv(tmp_path / "o" / "bands.csv")
    assert "unit" in bands.columns and set(bands["unit"]) == {"umol/L"}


def test_two_drug_scenario_draws_every_drug(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    code, out, err = _run(capsys, "run", COMBO, "--subjects", 2, "--out", tmp_path / "c")
    assert code == 0, err
    figs = {p.name for p in (tmp_path / "c" / "figures").glob("*.png")}
    for drug in ("osimertinib", "pemetrexed"):
        assert f"population_bands_{drug}.png" in figs, figs
        assert f"{drug}: median" in out                    # one terminal block per drug
    assert "concentration_time.png" in figs
    assert "warning: figure" not in err, err


def test_first_call_compile_notice_reaches_the_terminal(capsys, tmp_path, monkeypatch):
    # the solvers print one line before a slow first compilation; the CLI must not hide it
    from pkcsf.core import jit

    monkeypatch.setattr(jit, "is_cached", lambda dispatcher: False)
    monkeypatch.setattr(jit, "_NOTICED", set())
    code, out, err = _run(capsys, "run", MTX, "--subjects", 1, "--out", tmp_path / "o", "--no-figures", "--quiet")
    assert code == 0, err
    assert "compiling" in err and "once" in err
