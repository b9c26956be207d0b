"""The docs site (guides in docs/*.md and the API reference rendered from the docstrings) builds with
warnings as errors, and the README's "Where things live" table names only paths that exist."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx")
    pytest.importorskip("myst_parser")
    out = subprocess.run([sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
                          "-d", str(tmp_path / "doctrees"), str(ROOT / "docs"), str(tmp_path / "html")],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, "sphinx build failed:\n" + out.stdout[-5000:] + out.stderr[-10000:]
    api = tmp_path / "html" / "api"
    assert (api / "engine.html").exists() and (api / "pkcsf.html").exists()
    page = (api / "engine.html").read_text()
    assert "pkcsf.engine.simulate.simulate" in page or "simulate" in page


def _where_things_live() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## Where things live")
    end = text.find("\n## ", start + 5)
    return text[start:end if end > 0 else None]


def test_readme_where_things_live_paths_exist():
    section = _where_things_live()
    folders = re.findall(r"`(pkcsf/[\w/]+/)`", section)
    assert folders, "the table names no package folders"
    missing = [f for f in folders if not (ROOT / f).is_dir()]
    # file names in a row belong to the folder(s) of that row
    for row in section.splitlines():
        dirs = re.findall(r"`(pkcsf/[\w/]+/)`", row)
        for name in re.findall(r"`([\w/]+\.py)`", row):
            cands = [ROOT / name, ROOT / "pkcsf" / name] + [ROOT / d / name for d in dirs]
            if not any(c.exists() for c in cands):
                missing.append(f"{name} (row {row[:40]!r})")
    for link in re.findall(r"\]\(([^)#]+)\)", section):
        if not link.startswith("http") and not (ROOT / link).exists():
            missing.append(link)
    assert not missing, "README 'Where things live' names paths that do not exist: " + ", ".join(missing)


def test_every_subpackage_is_in_the_readme_table():
    section = _where_things_live()
    pkgs = sorted(p.name for p in (ROOT / "pkcsf").iterdir()
                  if p.is_dir() and (p / "__init__.py").exists() and not p.name.startswith("_"))
    absent = [p for p in pkgs if f"pkcsf/{p}/" not in section]
    assert not absent, "sub-packages missing from README 'Where things live': " + ", ".join(absent)
