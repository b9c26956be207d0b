"""Lint in CI: ``ruff check pkcsf tests models benchmarks docs/alternatives`` with the configuration in pyproject.toml (pycodestyle with lines of
at most 120 characters, pyflakes, isort, and numpy-convention docstrings on the public API) must pass.

The numpydoc content of the docstrings (every parameter documented, Returns, Examples) is checked by
tests/test_docstrings.py; the examples run in tests/test_docstring_examples.py."""
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
    out = subprocess.run(_ruff() + ["check", "--no-cache", "--output-format", "concise", "pkcsf", "tests", "models",
                                         "benchmarks", "docs/alternatives"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, "ruff found problems:\n" + out.stdout + out.stderr
