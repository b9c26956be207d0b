"""Millions of subjects on a dask ``LocalCluster`` with bounded memory (issue 11).

The scenario of ``bench_scale.py``: methotrexate 12 mg by Ommaya twice weekly x 4 weeks, every
read-out (7 compartment groups; Cmax, Tmax, AUC, last interval, trough, AUC ratios, time above the
thresholds), on a cluster of 2 worker processes x 1 thread (``--memory-limit`` per worker).

Two ways to run a scenario on a cluster:

* ``pkcsf.clinical.scenario.run(scenario, executor=client)``: every chunk of 4,096 subjects is
  simulated and reduced to read-outs on a worker, and the client gathers the per-subject metrics table
  (7 rows per subject, ~103 B a row: 0.7 GB per million subjects). Used here at ``--check`` N to show
  that the cluster gives the numbers of a run in one process.
* **bounded** (this script, :func:`bounded_run`): the client keeps at most ``--in-flight`` chunks
  submitted (the workers hold nothing else); each finished chunk's read-outs (float64, exact) are
  written column by column to files at the subject's offset, and the percentiles are computed one
  column at a time from those files, exactly (``np.percentile``, linear interpolation, failed subjects
  excluded), so neither the workers nor the client hold the table. The client holds one read-out column
  of every subject and group at a time (N x 7 x 8 bytes: 560 MB for 10 million), the status mask and
  the kept band profiles; disk: N x 7 groups x 10 read-outs x 8 bytes (5.6 GB for 10 million, deleted
  at the end).

Usage::

    python benchmarks/bench_dask.py --check 100000          # cluster run vs one process, same N
    python benchmarks/bench_dask.py 100000 1000000          # bounded runs; one JSON line per N
    nice -n 10 python benchmarks/bench_dask.py 3000000 --out results/dask.jsonl

Peak memory: each worker's maximum resident set size (``VmHWM`` read in the worker process at the
end, so it covers the whole run), the client's likewise; wall time from the first submission to the
last percentile (the cluster's start and the kernels' loading are timed apart).
"""
from __future__ import annotations

import json
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REGIMEN = "12 mg ommaya twice weekly x 4 weeks"
Q = (5, 50, 95)


def scenario(n: int):
    from pkcsf.clinical.scenario import Arm, Scenario

    return Scenario((Arm("methotrexate", REGIMEN, drug="methotrexate"),), subjects=n, days=28, seed=1)


def cluster(workers: int, memory_limit: str):
    from dask.distributed import Client, LocalCluster

    env = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(HERE.parent), os.environ.get("PYTHONPATH", "")) if p)}
    lc = LocalCluster(n_workers=workers, threads_per_worker=1, memory_limit=memory_limit, processes=True,
                      dashboard_address=None, env=env)
    return lc, Client(lc)


def _peak_mb() -> float:
    """This process's peak resident set size (VmHWM). Not ``ru_maxrss``: that survives ``execve``, so a
    worker started from the client would report the client's peak.
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _warm_worker() -> float:
    """Load the cached kernels in a worker (one subject); returns the seconds it took."""
    import pkcsf as pk

    t = time.perf_counter()
    pk.simulate_drug("methotrexate", REGIMEN, subjects=1, days=28, seed=1).summary()
    return time.perf_counter() - t


# ------------------------------------------------------------------ the bounded run
def _compact_chunk(dr, pop, seed: int, variability: bool, start: int, n: int, nb: int, arm: str) -> dict:
    """One chunk on a worker: simulate and read out (:func:`pkcsf.clinical.scenario_reduce._chunk`),
    then return the read-outs as one float64 array (n * G, M) in the table's row order, the status per
    row, and the band profiles of the first ``nb`` subjects (only the first chunk has any).
    """
    from pkcsf.clinical.scenario_reduce import _chunk

    r = _chunk(dr, pop, seed, variability, start, n, nb, arm, ())
    df = r["readouts"]
    cols = [c for c in df.columns if c not in ("arm", "id", "drug", "group", "unit", "auc_unit", "status")]
    return {"start": start, "n": n, "cols": cols, "values": df[cols].to_numpy(np.float64),
            "ok": (df["status"] == "SUCCESS").to_numpy(), "failed": r["failed"], "band": r["band"],
            "groups": list(df["group"].cat.categories), "rss_mb": _rss_mb()}


def bounded_run(client, n: int, *, chunk: int = 4096, in_flight: int = 8, nb: int = 2000, folder=None) -> dict:
    """Simulate ``n`` subjects on ``client``'s workers and return the summary percentiles, exactly, with
    bounded memory (see the module docstring). Returns {"summary": {(group, column): (p5, p50, p95)},
    "n_failed", "band", "client_rss_max_mb", "worker_rss_max_mb"}.
    """
    from dask.distributed import as_completed

    from pkcsf.clinical import cns
    from pkcsf.clinical.scenario_population import population_for
    from pkcsf.clinical.scenario_reduce import _DrugRun
    from pkcsf.clinical.scenario_run import _grid, _split_by_drug, _variant_for

    scn = scenario(n)
    arm = scn.arms[0]
    sa = arm.scenario_for(scn)
    regs = _split_by_drug(arm, sa.age)
    (drug, reg), = regs.items()
    setup = cns.setup(arm.drug_object(drug), physiology=sa.physiology, variant=_variant_for(arm, drug),
                      pathologies=sa.pathologies, age=sa.age, metabolite=arm.metabolite)
    times, end = _grid(sa, regs)
    dr = _DrugRun(sa, arm, drug, reg, setup, times, end)
    pop = population_for(sa, setup)
    G = len(dr.groups)
    nb = min(n, nb)
    dr_f, pop_f = client.scatter([dr, pop], broadcast=True)     # sent once, not with every chunk
    jobs = [(s, min(chunk, n - s)) for s in range(0, n, chunk)]
    tmp = Path(folder or tempfile.mkdtemp(prefix="pkcsf-dask-"))
    tmp.mkdir(parents=True, exist_ok=True)
    files, cols = {}, None
    ok_all = np.zeros(n * G, dtype=bool)
    band = np.empty((nb, len(times), G))
    failed = 0
    client_max = _rss_mb()
    worker_rss = []

    def submit(job):
        s, k = job
        return client.submit(_compact_chunk, dr_f, pop_f, scn.seed, scn.variability, s, k, nb, arm.name,
                             pure=False)

    todo = iter(jobs)
    t_start = time.perf_counter()
    ac = as_completed([submit(j) for _, j in zip(range(in_flight), todo)])     # (range first: zip would
    done = 0                                                                     # take one job too many)
    try:
        for fut in ac:
            r = fut.result()
            fut.release()                        # nothing stays on the workers
            done += 1
            nxt = next(todo, None)
            if nxt is not None:
                ac.add(submit(nxt))
            if cols is None:
                cols = r["cols"]
                files = {c: open(tmp / f"col{j}.f8", "w+b") for j, c in enumerate(cols)}
            a, k = r["start"] * G, r["n"] * G
            for j, c in enumerate(cols):
                f = files[c]
                f.seek(a * 8)
                f.write(np.ascontiguousarray(r["values"][:, j]).tobytes())
            ok_all[a:a + k] = r["ok"]
            failed += r["failed"]
            if r["band"] is not None:
                band[r["start"]:r["start"] + len(r["band"])] = r["band"]
            worker_rss.append(r["rss_mb"])
            client_max = max(client_max, _rss_mb())
            del r
            if done % 100 == 0:
                el = time.perf_counter() - t_start
                print(json.dumps({"progress": f"{done}/{len(jobs)} chunks", "elapsed_s": round(el, 1),
                                  "subjects_per_s": round(min(done * chunk, n) / el, 1),
                                  "client_rss_mb": round(client_max, 1),
                                  "worker_rss_at_chunk_end_max_mb": round(max(worker_rss), 1),
                                  "load": os.getloadavg()[0]}), file=sys.stderr, flush=True)
        if done != len(jobs):
            raise RuntimeError(f"{done} of {len(jobs)} chunks came back")
        summary = {}
        for c in cols:
            f = files[c]
            f.flush()
            f.seek(0)
            v = np.fromfile(f, dtype=np.float64, count=n * G).reshape(n, G)
            ok = ok_all.reshape(n, G)
            for g in range(G):
                x = v[ok[:, g], g]
                p = np.nanpercentile(x, Q) if np.isnan(x).any() else np.percentile(x, Q)
                summary[(dr.groups[g], c)] = tuple(float(y) for y in p)
            client_max = max(client_max, _rss_mb())
            del v
    finally:
        for f in files.values():
            f.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return {"summary": summary, "n_failed": failed, "band": band, "client_rss_max_mb": client_max,
            "worker_rss_max_mb_seen": max(worker_rss) if worker_rss else None}


# ------------------------------------------------------------------ measurements
def measure_bounded(n: int, workers: int, memory_limit: str, in_flight: int) -> dict:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    lc, client = cluster(workers, memory_limit)
    t1 = time.perf_counter()
    warm = client.run(_warm_worker)
    t2 = time.perf_counter()
    c0 = time.process_time()
    r = bounded_run(client, n, in_flight=in_flight)
    wall = time.perf_counter() - t2
    peaks = client.run(_peak_mb)
    cpu_workers = client.run(lambda: time.process_time())
    client.close()
    lc.close()
    s = r["summary"]
    return {"subjects": n, "path": "bounded", "workers": workers, "threads_per_worker": 1,
            "memory_limit": memory_limit, "in_flight_chunks": in_flight, "wall_s": round(wall, 1),
            "subjects_per_s": round(n / wall, 1), "cluster_start_s": round(t1 - t0, 1),
            "kernel_load_s": round(t2 - t1, 1), "worker_warmup_s": {k: round(v, 2) for k, v in warm.items()},
            "worker_peak_mb": [round(v, 1) for v in peaks.values()],
            "worker_cpu_s": [round(v, 1) for v in cpu_workers.values()],
            "worker_rss_at_chunk_end_max_mb": round(r["worker_rss_max_mb_seen"], 1),
            "client_peak_mb": round(_peak_mb(), 1),
            "client_rss_max_mb": round(r["client_rss_max_mb"], 1), "client_cpu_s": round(time.process_time() - c0, 1),
            "n_failed": r["n_failed"], "cmax_vent_p50": s[("ventricular", "cmax")][1],
            "auc_vent_p50": s[("ventricular", "auc")][1], "load_avg_before": load0,
            "load_avg_after": os.getloadavg()[0]}


def check(n: int, workers: int, memory_limit: str) -> dict:
    """The same N in one process, through ``run(executor=client)`` and through :func:`bounded_run`."""
    import pandas as pd

    from pkcsf.clinical.scenario import run

    t = time.perf_counter()
    local = run(scenario(n), progress=False)
    t_local = time.perf_counter() - t
    s_local = local.summary()
    lc, client = cluster(workers, memory_limit)
    client.run(_warm_worker)
    t = time.perf_counter()
    on_cluster = run(scenario(n), progress=False, executor=client)
    t_exec = time.perf_counter() - t
    s_exec = on_cluster.summary()
    t = time.perf_counter()
    b = bounded_run(client, n)
    t_bounded = time.perf_counter() - t
    client.close()
    lc.close()
    num = [c for c in s_local.columns if s_local[c].dtype.kind == "f"]
    identical = bool(np.array_equal(s_local[num].to_numpy(), s_exec[num].to_numpy(), equal_nan=True))
    bands_identical = bool(np.array_equal(local.arms["methotrexate"].profiles["methotrexate"],
                                          on_cluster.arms["methotrexate"].profiles["methotrexate"], equal_nan=True))
    worst = 0.0
    rows = 0
    for _, row in s_local.iterrows():
        for c in {c.rsplit("_p", 1)[0] for c in num if c.endswith("_p5")}:
            got = b["summary"][(row["group"], c)]
            want = [row[f"{c}_p{q}"] for q in Q]
            for x, y in zip(got, want):
                rows += 1
                if not (np.isnan(x) and np.isnan(y)) and x != y:
                    worst = max(worst, abs(x - y) / max(abs(y), 1e-300))
    band_same = bool(np.array_equal(b["band"], local.arms["methotrexate"].profiles["methotrexate"][:len(b["band"])]))
    del pd
    return {"subjects": n, "check": True, "local_s": round(t_local, 1), "executor_s": round(t_exec, 1),
            "bounded_s": round(t_bounded, 1), "executor_summary_bit_identical": identical,
            "executor_bands_bit_identical": bands_identical, "bounded_percentiles_compared": rows,
            "bounded_max_rel_diff_vs_summary": worst, "bounded_bands_bit_identical": band_same,
            "load_avg": os.getloadavg()[0]}


def main(argv):
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="*", type=int)
    ap.add_argument("--check", type=int, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--memory-limit", default="2.5GB")
    ap.add_argument("--in-flight", type=int, default=4)
    ap.add_argument("--out", default=None, help="append the JSON lines to this file (relative: benchmarks/)")
    a = ap.parse_args(argv)
    from pkcsf.clinical.scenario import CoarseGridWarning

    warnings.simplefilter("ignore", CoarseGridWarning)     # the hourly grid's Cmax note, known for this scenario
    out = []
    if a.check:
        out.append(check(a.check, a.workers, a.memory_limit))
        print(json.dumps(out[-1]), flush=True)
    for n in a.n:
        out.append(measure_bounded(n, a.workers, a.memory_limit, a.in_flight))
        print(json.dumps(out[-1]), flush=True)
    if a.out:
        p = Path(a.out)
        p = p if p.is_absolute() else HERE / p
        with open(p, "a") as f:
            for r in out:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
