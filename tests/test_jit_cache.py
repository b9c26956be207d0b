"""The compiled-kernel cache is keyed on the source of every module with compiled code (pkcsf.core.jit)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pkcsf.core.jit as jit

PKG = Path(jit.__file__).resolve().parent.parent


def _copy(tmp_path):
    dst = tmp_path / "pkcsf"
    shutil.copytree(PKG, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_an_edit_of_a_helper_file_selects_a_new_cache(tmp_path, monkeypatch):
    """Editing linalg.py (called by the kernels defined in kernels.py) changes the key: no stale kernel."""
    dst = _copy(tmp_path)
    monkeypatch.setattr(jit, "_PKG", dst)
    before = jit.source_key()
    assert jit.source_key() == before                      # deterministic
    p = dst / "solvers" / "linalg.py"
    p.write_text(p.read_text() + "\n# an edit\n")
    assert jit.source_key() != before


def test_files_without_compiled_code_do_not_change_the_key(tmp_path, monkeypatch):
    dst = _copy(tmp_path)
    monkeypatch.setattr(jit, "_PKG", dst)
    before = jit.source_key()
    p = dst / "clinical" / "regimens.py"
    p.write_text(p.read_text() + "\n# an edit\n")
    assert jit.source_key() == before


def test_cache_dir_follows_pkcsf_cache_dir_and_falls_back(tmp_path):
    env = dict(os.environ, PKCSF_CACHE_DIR=str(tmp_path / "c"))
    code = "import pkcsf.core.jit as j, numba; print(j.CACHE_DIR); print(numba.config.CACHE_DIR)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    d, nd = out.stdout.split()
    assert d == nd and Path(d).parent == tmp_path / "c"
    # an unwritable PKCSF_CACHE_DIR and HOME: falls back to the temporary folder, still cached
    ro = tmp_path / "ro"
    ro.write_text("a file, not a folder")
    env = dict(os.environ, PKCSF_CACHE_DIR=str(ro / "x"), HOME=str(ro / "home"), XDG_CACHE_HOME=str(ro / "xdg"),
               TMPDIR=str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    d = out.stdout.split()[0]
    assert Path(d).parent.parent == tmp_path / "tmp"
