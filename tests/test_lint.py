"""Lint in CI: ``ruff check pkcsf tests`` with the configuration in pyproject.toml (pycodestyle, pyflakes,
isort, and numpy-convention docstrings on the public API) must pass."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _ruff():
    try:
        import ruff  # noqa: F401
    except ImportError:
        if shutil.which("ruff") is None:
            pytest.fail("ruff is not installed: pip install -e '.[test]'")
        return ["ruff"]
    return [sys.executable, "-m", "ruff"]


def test_ruff_check_passes():
    out = subprocess.run(_ruff() + ["check", "--no-cache", "--output-format", "concise", "pkcsf", "tests"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, "ruff found problems:\n" + out.stdout + out.stderr
