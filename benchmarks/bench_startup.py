"""Start-up: ``import pkcsf`` and ``pkcsf report``, with an empty cache folder (a fresh install: every
kernel compiles) and again with that cache (warm).

    python benchmarks/bench_startup.py              # prints one JSON line; ~3-5 min on 2 cores
    python benchmarks/bench_startup.py --warm 2     # warm report only: before/after table, 2 rounds; ~3 min

``--warm`` runs the warm report (the user's Numba cache) alternately as it was before this round
(figures saved with ``bbox_inches="tight"``: each drawn twice) and as it is, each in a fresh process,
and prints a table of the medians with their ratio, measured in the same run.

Each measurement is a fresh subprocess; CPU seconds are the child's user+system time (on a shared
machine the wall time also holds the time other jobs took the cores).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def timed(cmd, env) -> dict:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(ROOT))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    notices = [ln for ln in proc.stderr.splitlines() if ln.startswith("pkcsf: compiling")]
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "compile_notices": notices}


def import_time(env, repeats=7) -> float:
    """Best of several: the 'pkcsf' line of python -X importtime (s)."""
    best = float("inf")
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pkcsf"], env=env,
                           capture_output=True, text=True, cwd=str(ROOT))
        last = [ln for ln in p.stderr.splitlines() if ln.rstrip().endswith("| pkcsf")][-1]
        best = min(best, int(last.split("|")[1]) / 1e6)
    return best


#: the report as before this round: every figure drawn twice, the first time for its tight bounding box
_BEFORE = """
import sys
import matplotlib.pyplot as plt
import pkcsf.report.sections as S
def _save(fig, folder, name):
    fig.savefig(folder / name, dpi=S._DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return name
S._save = _save
from pkcsf.report import build_report
build_report(sys.argv[1], progress=False)
"""
_NOW = """
import sys
from pkcsf.report import build_report
build_report(sys.argv[1], progress=False)
"""


def warm(rounds: int) -> None:
    """Warm report, before/after, alternating; a table of the medians and their ratios."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    rows = {"before (tight bbox)": [], "now": []}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="pkcsf-report-") as rep:
        timed([sys.executable, "-c", _NOW, rep], env)               # make sure every kernel is cached
        for _ in range(rounds):
            for label, code in zip(rows, (_BEFORE, _NOW)):
                rows[label].append(timed([sys.executable, "-c", code, rep], env))
                load.append(os.getloadavg()[0])
    med = {k: {m: float(np.median([r[m] for r in v])) for m in ("wall_s", "cpu_s")} for k, v in rows.items()}
    base = med["before (tight bbox)"]
    print(f"warm `build_report` (200 patients per arm), {rounds} round(s), median; load average "
          f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print("| report | wall s | CPU s | wall vs before | CPU vs before |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for k, v in med.items():
        print(f"| {k} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {v['wall_s'] / base['wall_s']:.2f} | "
              f"{v['cpu_s'] / base['cpu_s']:.2f} |")
    print(json.dumps({"warm_report": rows, "load_average": load}))


def main():
    if "--warm" in sys.argv:
        i = sys.argv.index("--warm")
        return warm(int(sys.argv[i + 1]) if len(sys.argv) > i + 1 else 2)
    out = {"load_average_before": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="pkcsf-cache-") as cache, \
            tempfile.TemporaryDirectory(prefix="pkcsf-report-") as rep:
        env = dict(os.environ, PKCSF_CACHE_DIR=cache, OPENBLAS_NUM_THREADS="1")
        out["import_pkcsf_s"] = round(import_time(env), 3)
        cmd = [sys.executable, "-m", "pkcsf.cli", "report", "--out", rep, "--quiet"]
        out["report_cold"] = timed(cmd, env)
        out["report_warm"] = timed(cmd, env)
    out["load_average_after"] = os.getloadavg()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
