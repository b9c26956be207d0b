"""Cheap checks that examples and lists in the guides match the program (no simulation is run).

The numbers printed by long runs (report tables, escalation output) are checked by hand when the docs are
updated; here only what costs nothing: that the commands shown parse, that lists of options, steps and files
are those of the code, and that the code snippets define every name they use.
"""
import ast
import builtins
import re
import shlex
from pathlib import Path

import pytest

from pkcsf.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _code_lines(doc: str, prefix: str) -> list[str]:
    """The command lines of the fenced blocks of ``doc`` that start with ``prefix`` (continuations joined)."""
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", doc, re.S):
        text = block.replace("\\\n", " ")
        out += [ln.split("  #")[0].strip() for ln in text.splitlines() if ln.strip().startswith(prefix)]
    return out


def _parse(line: str):
    return build_parser().parse_args(shlex.split(line)[1:])


def test_cli_md_escalate_examples_parse_and_say_which_dlt_model():
    doc = (ROOT / "docs" / "cli.md").read_text()
    lines = _code_lines(doc, "pkcsf escalate")
    assert len(lines) >= 4
    for line in lines:
        args = _parse(line)
        assert args.command == "escalate"
        # pemetrexed has a neutropenia model: an --exposure only drives the DLTs with the link
        if args.drug == "pemetrexed" and "--exposure" in line:
            assert args.dlt == "link" or args.mtd_dose is not None or args.e50 is not None, line
    # the output shown is that of the link, and says so
    assert "Example output of `pkcsf escalate pemetrexed --doses 10,20,30,40,50 --dlt link`" in doc
    assert "DLT model: logistic exposure-toxicity link (--dlt link)" in doc


def test_cli_md_warmup_steps_are_the_code_steps():
    from pkcsf.cli.commands.warmup import STEPS

    doc = (ROOT / "docs" / "cli.md").read_text()
    row = re.search(r"\| `--only STEP \.\.\.` \| only these of (.*?) \|", doc)
    assert row, "docs/cli.md: the warmup --only row"
    assert re.findall(r"`([a-z0-9]+)`", row.group(1)) == list(STEPS)
    for line in _code_lines(doc, "pkcsf warmup"):
        assert set(_parse(line).only or STEPS) <= set(STEPS)


def test_sensitivity_md_commands_write_to_separate_folders():
    doc = (ROOT / "docs" / "sensitivity.md").read_text()
    lines = _code_lines(doc, "pkcsf sensitivity")
    outs = [_parse(line).out for line in lines]
    assert len(lines) >= 2 and None not in outs
    assert len(set(map(str, outs))) == len(outs), "pkcsf replaces its own output folder: one folder per command"


def test_report_md_lists_every_table_the_report_writes():
    doc = (ROOT / "docs" / "report.md").read_text()
    files = doc[doc.index("## Files"):doc.index("## Layout and checks")]
    written = set()
    for src in (ROOT / "pkcsf" / "report").glob("*.py"):
        written |= set(re.findall(r"[\"']([a-z0-9_]+\.csv)[\"']", src.read_text()))
    assert written
    missing = [n for n in sorted(written) if f"`{n}`" not in files and not (
        n.endswith("_summary.csv") and f"`{n.removesuffix('_summary.csv')}`" in files)]
    assert not missing, "docs/report.md 'Files' does not list: " + ", ".join(missing)


def test_regimen_frame_days_count_from_one():
    """docs/regimens.md: time 0 is day 1; twice weekly on Monday and Thursday is days 1, 4, 8, 11."""
    import pkcsf.clinical.regimens as rg

    reg = rg.parse_regimen("12 mg ommaya twice weekly x 4 weeks, then weekly x 4 weeks, then monthly x 6")
    df = reg.to_frame()
    assert df["day"].tolist()[:4] == [1.0, 4.0, 8.0, 11.0]
    assert (df["day"] == df["time_h"] / 24 + 1).all()


def _snippet(path: Path, marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", path.read_text(), re.S)
    return next(b for b in blocks if marker in b)


@pytest.mark.parametrize("path", ["README.md", "docs/engine.md"])
def test_engine_snippet_defines_its_parameters(path):
    """The engine snippet runs as pasted: every name it uses is defined in it, and its parameter table has
    exactly the model's parameters."""
    import pkcsf as pk

    code = _snippet(ROOT / path, 'pk.load_model("reference_p2")')
    tree = ast.parse(code)
    defined = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(a.asname or a.name).split(".")[0] for a in node.names}
    for stmt in tree.body:                       # in order: a name must be bound before it is read
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                assert node.id in defined, f"{path}: '{node.id}' is used before it is defined"
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                defined.add(node.id)
    frames = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "attr", "") == "DataFrame"]
    assert len(frames) == 1
    row = frames[0].args[0].elts[0]              # pd.DataFrame([dict(NAME=value, ...)])
    names = {k.arg for k in row.keywords}
    assert names == set(pk.load_model("reference_p2").parameter_names)
