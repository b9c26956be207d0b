"""Start-up: ``import pkcsf`` and ``pkcsf report``, with an empty cache folder (a fresh install: every
kernel compiles) and again with that cache (warm).

    python benchmarks/bench_startup.py              # prints one JSON line; ~3-5 min on 2 cores

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


def main():
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
