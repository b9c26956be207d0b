"""Scale: the methotrexate 12 mg Ommaya twice weekly x 4 weeks scenario for N virtual subjects.

Every read-out (metrics table, summary percentiles, bands of the first 2,000 subjects), as a user
runs it::

    res = pk.simulate_drug("methotrexate", "12 mg ommaya twice weekly x 4 weeks", subjects=N, days=28, seed=1)
    res.summary()

Each N runs in a fresh subprocess (peak memory is that process's maximum resident set size), after a
one-subject warm-up in that process (compilation or loading cached kernels is not counted).

    python benchmarks/bench_scale.py 10000 100000          # N values; prints one JSON line per N
    python benchmarks/bench_scale.py 10000 --two-step      # read-outs after the solve (the path before issue 11)
    python benchmarks/bench_scale.py --one 10000          # (internal) run one N in this process
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

REGIMEN = "12 mg ommaya twice weekly x 4 weeks"


def one(n: int, two_step: bool = False) -> dict:
    import pkcsf as pk

    if two_step:        # the path before issue 11: solve, (n, T, G) concentrations, then read-outs
        from pkcsf.clinical import scenario

        scenario._DrugRun.reduce = lambda self, params, keep: None

    pk.simulate_drug("methotrexate", REGIMEN, subjects=1, days=28, seed=1).summary()   # warm-up
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = pk.simulate_drug("methotrexate", REGIMEN, subjects=n, days=28, seed=1, progress=False)
    t1 = time.perf_counter()
    summ = res.summary()
    t2 = time.perf_counter()
    c2 = time.process_time()
    m = res.metrics()
    return {"subjects": n, "path": "two-step" if two_step else "fused", "seconds": round(t2 - t0, 3), "simulate_s": round(t1 - t0, 3),
            "summary_s": round(t2 - t1, 3), "cpu_s": round(c2 - c0, 3),
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
            "peak_mb_before_run": round(rss0, 1), "metrics_rows": len(m),
            "metrics_mb": round(m.memory_usage(deep=True).sum() / 2**20, 1),
            "cmax_vent_p50": float(summ.loc[summ.group == "ventricular", "cmax_p50"].iloc[0]),
            "load_avg": os.getloadavg()[0]}


def main(argv):
    if argv and argv[0] == "--one":
        print(json.dumps(one(int(argv[1]), two_step="--two-step" in argv)), flush=True)
        return
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    extra = ["--two-step"] if "--two-step" in argv else []
    for a in [x for x in argv if x != "--two-step"] or ["10000", "100000"]:
        r = subprocess.run([sys.executable, __file__, "--one", a] + extra, capture_output=True, text=True, env=env)
        if r.returncode != 0:
            print(r.stderr, file=sys.stderr)
            raise SystemExit(r.returncode)
        print(r.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
