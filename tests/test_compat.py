"""Python 3.10 support (pyproject: requires-python >= 3.10): ``tomllib`` is 3.11+, so every TOML read goes
through :mod:`pkcsf.core.tomlio`, which falls back to the ``tomli`` package (same API) on 3.10."""
from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports_tomllib(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "tomllib" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "tomllib":
            return True
    return False


def test_only_tomlio_imports_tomllib():
    allowed = {ROOT / "pkcsf" / "core" / "tomlio.py"}
    offenders = [str(p.relative_to(ROOT)) for d in ("pkcsf", "tests") for p in sorted((ROOT / d).rglob("*.py"))
                 if p not in allowed and _imports_tomllib(p)]
    assert not offenders, f"import tomllib directly (fails on Python 3.10): {offenders}; use pkcsf.core.tomlio"


def test_pyproject_declares_the_fallback():
    from pkcsf.core.tomlio import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"]
    assert project["requires-python"] == ">=3.10"
    assert any(d.replace(" ", "").startswith("tomli>=") and "python_version<'3.11'" in d.replace(" ", "")
               .replace('"', "'") for d in deps), deps
    assert not any(d.startswith("tomli-w") for d in deps), "nothing imports tomli-w"


def test_runs_with_tomli_instead_of_tomllib(tmp_path):
    # what Python 3.10 sees: no tomllib, a tomli module (here the 3.11 tomllib under that name)
    code = textwrap.dedent("""
        import sys
        try:
            import tomllib
        except ModuleNotFoundError:            # really on Python 3.10: tomli is installed
            import tomli as tomllib
        sys.modules["tomli"] = tomllib
        sys.modules["tomllib"] = None          # 'import tomllib' now raises ModuleNotFoundError
        import pkcsf as pk
        from pkcsf.core import tomlio
        assert tomlio.tomllib.__name__ in ("tomllib", "tomli") and "tomli" in sys.modules
        m = pk.load_model("reference_p1")
        scn, _ = pk.load_scenario(sys.argv[1])
        print(m.name, scn.subjects)
    """)
    s = tmp_path / "s.toml"
    s.write_text('drug = "methotrexate"\n[population]\nsubjects = 2\n[[arms]]\nname = "a"\n'
                 'regimen = "12 mg lumbar once"\n')
    out = subprocess.run([sys.executable, "-c", code, str(s)], capture_output=True, text=True, cwd=tmp_path,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["reference_p1", "2"]


def test_every_module_parses_with_the_python_3_10_grammar():
    """Syntax newer than 3.10 (except*, PEP 695 type parameters, ...) would break the declared Python >= 3.10."""
    bad = []
    for d in ("pkcsf", "tests", "benchmarks"):
        for p in sorted((ROOT / d).rglob("*.py")):
            try:
                ast.parse(p.read_text(encoding="utf-8"), filename=str(p), feature_version=(3, 10))
            except SyntaxError as e:
                bad.append(f"{p.relative_to(ROOT)}:{e.lineno}: {e.msg}")
    assert not bad, "not Python 3.10 syntax:\n" + "\n".join(bad)


def test_pyproject_declares_the_tomli_fallback():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'requires-python = ">=3.10"' in text and "tomli" in text and "python_version < '3.11'" in text
