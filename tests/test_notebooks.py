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
