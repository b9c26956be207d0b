"""Millions of subjects on a dask ``LocalCluster`` with bounded memory (issue 11).

The scenario of ``bench_scale.py``: methotrexate 12 mg by Ommaya twice weekly x 4 weeks, every
read-out (7 compartment groups; Cmax, Tmax, AUC, last interval, trough, AUC ratios, time above the
thresholds), on a cluster of 2 worker processes x 1 thread (``--memory-limit`` per worker).

Two ways to run a scenario on a cluster:

* ``pkcsf.clinical.scenario.run(scenario, executor=client)``: every chunk of 4,096 subjects is
  simulated and reduced to read-outs on a worker, and the client gathers the per-subject metrics table
  (7 rows per subject, ~103 B a row: 0.7 GB per million subjects). Used here at ``--check`` N to show
  that the cluster gives the numbers of a run in one process.
* **bounded**: ``run(scenario, executor=client, keep="summary")`` (:mod:`pkcsf.clinical.scenario_bounded`;
  :func:`bounded_run` here just calls it): the client keeps at most ``--in-flight`` chunks submitted
  (the workers hold nothing else); each finished chunk's read-outs (float64, exact) are written to one
  file per read-out at the subjects' offset (group-major), and the percentiles are computed one read-out
  and group at a time from those files, exactly (the arithmetic of ``summary()``, failed subjects
  excluded), so neither the workers nor the client hold the table. The client holds one read-out column
  of one group at a time (N x 8 bytes), the solved mask and the kept band profiles; disk: N x 7 groups x
  10 read-outs x 8 bytes (5.6 GB for 10 million, deleted at the end).

Usage::

    python benchmarks/bench_dask.py --check 100000          # cluster run vs one process, same N
    python benchmarks/bench_dask.py 100000 1000000          # bounded runs; one JSON line per N
                                                            # (one N per process for a clean client peak)
    nice -n 10 python benchmarks/bench_dask.py 3000000 --out results/dask.jsonl

Peak memory: each worker's maximum resident set size (``VmHWM`` read in the worker process at the
end, so it covers the whole run), the client's likewise (its peak over the process's life, and its
RSS sampled every 0.2 s during the bounded run); wall time from the first submission to the
last percentile (the cluster's start and the kernels' loading are timed apart).
"""
from __future__ import annotations

import json
import os
import resource
import sys
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
def bounded_run(client, n: int, *, in_flight: int = 8, folder=None):
    """``n`` subjects on ``client``'s workers with bounded memory: the library's
    ``run(scenario, executor=client, keep="summary")`` (:mod:`pkcsf.clinical.scenario_bounded`).
    Returns the :class:`~pkcsf.clinical.scenario_bounded.SummaryResult`.
    """
    from pkcsf.clinical.scenario import run

    return run(scenario(n), executor=client, keep="summary", in_flight=in_flight, scratch=folder, progress=False)


# ------------------------------------------------------------------ measurements
class _RssSampler:
    """The client's largest resident set size while a block runs (sampled every 0.2 s in a thread)."""

    def __enter__(self):
        import threading

        self.max_mb, self._stop = _rss_mb(), threading.Event()

        def loop():
            while not self._stop.wait(0.2):
                self.max_mb = max(self.max_mb, _rss_mb())

        self._t = threading.Thread(target=loop, daemon=True)
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.max_mb = max(self.max_mb, _rss_mb())


def measure_bounded(n: int, workers: int, memory_limit: str, in_flight: int) -> dict:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    lc, client = cluster(workers, memory_limit)
    t1 = time.perf_counter()
    warm = client.run(_warm_worker)
    t2 = time.perf_counter()
    c0 = time.process_time()
    with _RssSampler() as rss:
        r = bounded_run(client, n, in_flight=in_flight)
    wall = time.perf_counter() - t2
    peaks = client.run(_peak_mb)
    cpu_workers = client.run(lambda: time.process_time())
    client.close()
    lc.close()
    s = r.summary().set_index("group")
    return {"subjects": n, "path": "library run(keep='summary')", "workers": workers, "threads_per_worker": 1,
            "memory_limit": memory_limit, "in_flight_chunks": in_flight, "wall_s": round(wall, 1),
            "subjects_per_s": round(n / wall, 1), "cluster_start_s": round(t1 - t0, 1),
            "kernel_load_s": round(t2 - t1, 1), "worker_warmup_s": {k: round(v, 2) for k, v in warm.items()},
            "worker_peak_mb": [round(v, 1) for v in peaks.values()],
            "worker_cpu_s": [round(v, 1) for v in cpu_workers.values()],
            "client_peak_mb": round(_peak_mb(), 1), "client_rss_max_during_run_mb": round(rss.max_mb, 1),
            "client_cpu_s": round(time.process_time() - c0, 1),
            "n_failed": int(s["n_failed"].max()), "cmax_vent_p50": float(s.loc["ventricular", "cmax_p50"]),
            "auc_vent_p50": float(s.loc["ventricular", "auc_p50"]), "load_avg_before": load0,
            "load_avg_after": os.getloadavg()[0]}


def check(n: int, workers: int, memory_limit: str) -> dict:
    """The same N in one process, through ``run(executor=client)`` and through ``run(keep="summary")``."""
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
    s_b = b.summary()
    num = [c for c in s_local.columns if s_local[c].dtype.kind == "f"]
    identical = bool(np.array_equal(s_local[num].to_numpy(), s_exec[num].to_numpy(), equal_nan=True))
    prof = local.arms["methotrexate"].profiles["methotrexate"]
    bands_identical = bool(np.array_equal(prof, on_cluster.arms["methotrexate"].profiles["methotrexate"],
                                          equal_nan=True))
    b_identical = bool(list(s_b.columns) == list(s_local.columns)
                       and np.array_equal(s_local[num].to_numpy(), s_b[num].to_numpy(), equal_nan=True))
    band_same = bool(np.array_equal(b.arms["methotrexate"].profiles["methotrexate"], prof, equal_nan=True))
    return {"subjects": n, "check": True, "local_s": round(t_local, 1), "executor_s": round(t_exec, 1),
            "bounded_s": round(t_bounded, 1), "executor_summary_bit_identical": identical,
            "executor_bands_bit_identical": bands_identical, "bounded_values_compared": int(s_b[num].size),
            "bounded_summary_bit_identical": b_identical, "bounded_bands_bit_identical": band_same,
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
