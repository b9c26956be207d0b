"""Start-up: ``import pkcsf`` and ``pkcsf report``, with an empty cache folder (a fresh install: every
kernel compiles) and again with that cache (warm).

    python benchmarks/bench_startup.py              # prints one JSON line; ~3-5 min on 2 cores
    python benchmarks/bench_startup.py --warm 2     # warm report only: before/after table, 2 rounds; ~3 min
    python benchmarks/bench_startup.py --warm 2 --base <commit>    # "before" = that commit (default below)
    python benchmarks/bench_startup.py --import 7  # `import pkcsf`, before (--base) and now, alternating; ~1 min
    python benchmarks/bench_startup.py --compiles  # cold report in one process: CPU s of every Numba compilation; ~2 min

``--warm`` runs the warm report (the user's Numba cache) alternately as it was before this round (the
source of commit ``--base``, extracted with ``git archive`` into a folder kept between runs so its
kernels compile only once) and as it is, each in a fresh process, and prints a table of the medians
with their ratio, measured in the same run. It then checks that the two reports say the same: every CSV
table equal (``settings.csv`` apart: run times and date) and every PNG byte-identical.

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


def timed(cmd, env, cwd=ROOT) -> dict:
    """Run ``cmd`` in ``cwd`` (``python -c`` imports from there first: the source folder being measured)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(cwd))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    notices = [ln for ln in proc.stderr.splitlines() if ln.startswith("pkcsf: compiling")]
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "compile_notices": notices}


def import_time(env, repeats=7, cwd=ROOT) -> float:
    """Best of several: the 'pkcsf' line of python -X importtime (s), source from ``cwd``."""
    best = float("inf")
    for _ in range(repeats):
        p = subprocess.run([sys.executable, "-X", "importtime", "-c", "import pkcsf"], env=env,
                           capture_output=True, text=True, cwd=str(cwd))
        last = [ln for ln in p.stderr.splitlines() if ln.rstrip().endswith("| pkcsf")][-1]
        best = min(best, int(last.split("|")[1]) / 1e6)
    return best


#: the commit this round started from (issue 11, warm report round 4)
BASE_COMMIT = "fc560ad"

_REPORT = """
import sys
from pkcsf.report import build_report
build_report(sys.argv[1], progress=False)
"""


def base_checkout(commit: str) -> Path:
    """The source of ``commit`` in a folder kept between runs (its Numba cache stays warm)."""
    full = subprocess.run(["git", "rev-parse", commit], cwd=ROOT, capture_output=True, text=True, check=True)
    sha = full.stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"pkcsf-bench-base-{sha[:12]}"
    if not (folder / "pkcsf" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def same_report(a: Path, b: Path) -> dict:
    """Every CSV table of two reports equal (max relative difference of numbers; text identical) and every
    PNG byte-identical; settings.csv (run times, date) apart."""
    import pandas as pd

    worst, text_diff, num_diff = 0.0, [], {}
    for fa in sorted(a.glob("*.csv")):
        if fa.name == "settings.csv":
            continue
        da, db = pd.read_csv(fa), pd.read_csv(b / fa.name)
        if list(da.columns) != list(db.columns) or da.shape != db.shape:
            text_diff.append(fa.name)
            continue
        for c in da.columns:
            x, y = da[c], db[c]
            if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
                x, y = x.to_numpy(float), y.to_numpy(float)
                if not np.array_equal(np.isnan(x), np.isnan(y)):
                    text_diff.append(f"{fa.name}:{c}")
                    continue
                m = np.isfinite(x)
                d = np.abs(x[m] - y[m]) / np.maximum(np.abs(x[m]), 1e-300)
                r = float(d.max()) if d.size else 0.0
                worst = max(worst, r)
                if r:
                    num_diff[f"{fa.name}:{c}"] = r
            elif not x.astype(object).fillna("<nan>").map(str).equals(y.astype(object).fillna("<nan>").map(str)):
                text_diff.append(f"{fa.name}:{c}")
    pngs = sorted(a.glob("*.png"))
    png_diff = [p.name for p in pngs if p.read_bytes() != (b / p.name).read_bytes()]
    return {"csv_tables": len(list(a.glob("*.csv"))) - 1, "csv_max_rel_diff": worst, "csv_columns_differing": num_diff,
            "csv_text_diffs": text_diff, "png": len(pngs), "png_not_identical": png_diff}


def warm(rounds: int, commit: str = BASE_COMMIT) -> None:
    """Warm report, before (``commit``) and now, alternating; a table of the medians and their ratios."""
    base_src = base_checkout(commit)
    srcs = {f"before ({commit})": base_src, "now": ROOT}
    envs = {k: dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(src)) for k, src in srcs.items()}
    rows = {k: [] for k in envs}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="pkcsf-report-") as tmp:
        reps = {k: Path(tmp) / f"r{i}" for i, k in enumerate(envs)}
        for k, env in envs.items():                                 # make sure every kernel is cached
            timed([sys.executable, "-c", _REPORT, str(reps[k])], env, srcs[k])
        for _ in range(rounds):
            for k, env in envs.items():
                rows[k].append(timed([sys.executable, "-c", _REPORT, str(reps[k])], env, srcs[k]))
                load.append(os.getloadavg()[0])
        same = same_report(*reps.values())
    med = {k: {m: float(np.median([r[m] for r in v])) for m in ("wall_s", "cpu_s")} for k, v in rows.items()}
    base = next(iter(med.values()))
    print(f"warm `build_report` (200 patients per arm), {rounds} round(s), median; load average "
          f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print("| report | wall s | CPU s | wall vs before | CPU vs before |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for k, v in med.items():
        print(f"| {k} | {v['wall_s']:.1f} | {v['cpu_s']:.1f} | {v['wall_s'] / base['wall_s']:.2f} | "
              f"{v['cpu_s'] / base['cpu_s']:.2f} |")
    print(f"same report: {same['csv_tables']} CSV tables, max relative difference {same['csv_max_rel_diff']:g} "
          f"(columns that differ: {same['csv_columns_differing'] or 'none'}), text differences "
          f"{same['csv_text_diffs'] or 'none'}; {same['png']} PNGs, not byte-identical: "
          f"{same['png_not_identical'] or 'none'}")
    print(json.dumps({"warm_report": rows, "load_average": load, "same_report": same}))


def imports(repeats: int, commit: str = BASE_COMMIT) -> None:
    """``import pkcsf`` before (``commit``) and now, alternating; best of ``repeats`` each (``-X importtime``)."""
    srcs = {f"before ({commit})": base_checkout(commit), "now": ROOT}
    best = {k: float("inf") for k in srcs}
    load = [os.getloadavg()[0]]
    for _ in range(repeats):
        for k, src in srcs.items():
            env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(src))
            best[k] = min(best[k], import_time(env, repeats=1, cwd=src))
        load.append(os.getloadavg()[0])
    base = next(iter(best.values()))
    print(f"`import pkcsf`, best of {repeats}, alternating; load average {min(load):.1f}-{max(load):.1f}")
    print("| import | s | vs before |")
    print("| --- | ---: | ---: |")
    for k, v in best.items():
        print(f"| {k} | {v:.2f} | {v / base:.2f} |")


_COMPILES = r"""
import json, sys, time
import numba.core.event as ev
stack, recs = [], []

class Timer(ev.Listener):               # every Numba compilation (nested: a kernel compiles what it calls)
    def on_start(self, e):
        stack.append([time.process_time(), 0.0])

    def on_end(self, e):
        c0, inner = stack.pop()
        spent = time.process_time() - c0
        if stack:
            stack[-1][1] += spent
        f = getattr((e.data or {}).get("dispatcher"), "py_func", None)
        recs.append((len(stack), spent, spent - inner, f"{f.__module__}.{f.__qualname__}" if f else "?"))

ev.register("numba:compile", Timer())
c0 = time.process_time()
from pkcsf.report import build_report
build_report(sys.argv[1], progress=False)
print(json.dumps({"cpu_s": time.process_time() - c0, "compiles": recs}))
"""


def compiles() -> None:
    """The cold report in one process (empty cache folder): CPU seconds of each kernel's first compilation
    (a kernel's time includes what it calls that was not compiled yet) and the functions whose own share
    (without the functions they call) is largest."""
    with tempfile.TemporaryDirectory(prefix="pkcsf-cache-") as cache, \
            tempfile.TemporaryDirectory(prefix="pkcsf-report-") as rep:
        env = dict(os.environ, PKCSF_CACHE_DIR=cache, OPENBLAS_NUM_THREADS="1")
        load = os.getloadavg()[0]
        p = subprocess.run([sys.executable, "-c", _COMPILES, rep], env=env, capture_output=True, text=True,
                           cwd=str(ROOT))
        if p.returncode != 0:
            raise SystemExit(p.stderr[-3000:])
    out = json.loads(p.stdout.strip().splitlines()[-1])
    recs = out["compiles"]
    total = sum(r[1] for r in recs if r[0] == 0)
    print(f"cold `build_report` in one process (load average {load:.1f}): {out['cpu_s']:.1f} CPU s, of which "
          f"Numba compilation {total:.1f}")
    print("| compiled on first use | CPU s |")
    print("| --- | ---: |")
    for depth, spent, _, name in recs:
        if depth == 0:
            print(f"| `{name}` | {spent:.1f} |")
    own: dict[str, float] = {}
    for _, _, mine, name in recs:
        own[name] = own.get(name, 0.0) + mine
    print("| function (own share, without what it calls) | CPU s |")
    print("| --- | ---: |")
    for name, v in sorted(own.items(), key=lambda kv: -kv[1])[:12]:
        print(f"| `{name}` | {v:.1f} |")


def main():
    if "--compiles" in sys.argv:
        return compiles()
    if "--import" in sys.argv:
        i = sys.argv.index("--import")
        n = int(sys.argv[i + 1]) if len(sys.argv) > i + 1 and sys.argv[i + 1].isdigit() else 7
        return imports(n, sys.argv[sys.argv.index("--base") + 1] if "--base" in sys.argv else BASE_COMMIT)
    if "--warm" in sys.argv:
        i = sys.argv.index("--warm")
        rounds = int(sys.argv[i + 1]) if len(sys.argv) > i + 1 and sys.argv[i + 1].isdigit() else 2
        commit = sys.argv[sys.argv.index("--base") + 1] if "--base" in sys.argv else BASE_COMMIT
        return warm(rounds, commit)
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
