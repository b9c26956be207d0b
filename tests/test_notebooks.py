"""The notebooks in notebooks/ run top to bottom (executed on a temporary copy) and are committed clean."""
import os
import shutil
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
CELL_TIMEOUT = 240          # s per cell: generous, for a first run that compiles the numba kernels
BUDGET = 60                 # s per notebook once compiled (the documented target)


def test_there_are_notebooks():
    names = [p.name for p in NOTEBOOKS]
    assert {"01_explore_regimen.ipynb", "02_dose_escalation_pemetrexed.ipynb",
            "03_csf_circulation_teaching.ipynb"} <= set(names)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_clean(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: clear the outputs before committing"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    work = tmp_path / path.name
    shutil.copy(path, work)
    # the kernel imports pkcsf from this checkout, whatever is installed
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    monkeypatch.delenv("DISPLAY", raising=False)
    nb = nbformat.read(work, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    t0 = time.perf_counter()
    client.execute()                  # raises CellExecutionError with the failing cell and traceback
    elapsed = time.perf_counter() - t0
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert images >= 3, "the notebook should show its figures"
    # time is reported, never asserted (the first run in a fresh environment also compiles the kernels)
    print(f"{path.name}: {elapsed:.0f} s")


# ------------------------------------------------ issue 14: what a student reads
TEACHING = [p for p in NOTEBOOKS if p.name[:2] in ("01", "02", "03")]


@pytest.mark.parametrize("path", TEACHING, ids=[p.stem for p in TEACHING])
def test_public_api_only(path):
    import re

    nb = nbformat.read(path, as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # internal arrays of a result (index juggling over subjects x times x groups) and private helpers
    assert not re.search(r"\.(profiles|typical)\[|\.groups\[[^\]]+\]\.index\(", code), path.name
    assert not re.search(r"\b(pp|pk|esc)\._\w+", code), path.name


@pytest.mark.parametrize("path", TEACHING, ids=[p.stem for p in TEACHING])
def test_questions_are_answered_with_computed_numbers(path):
    import re

    nb = nbformat.read(path, as_version=4)
    cells = nb.cells
    k = next((i for i, c in enumerate(cells) if c.cell_type == "markdown" and "Answers, computed" in c.source), None)
    assert k is not None, f"{path.name}: the questions have no computed answers"
    after = cells[k + 1:]
    assert sum(c.cell_type == "code" and "print(" in c.source for c in after) >= 2, path.name
    # the answers' numbers come from the code: no hard-coded percentages or hours in the answer text
    for c in after:
        if c.cell_type == "markdown":
            assert not re.search(r"\d+(\.\d+)?\s*(%|h\b)", c.source), (path.name, c.source[:120])
