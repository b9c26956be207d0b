"""Benchmark: the PK-driven escalation pipeline (pkcsf.clinical.escalation.simulate_escalation).

Times the whole pipeline for intrathecal pemetrexed by lumbar puncture, 5 dose
levels (10-50 mg, Pan 2019 schedule: 6 weeks, 8 injections), ``--subjects``
virtual patients per dose pool and ``--trials`` 3+3 trials, and reports
separately:

* the **exposure pools** (one Scenario per dose level: population sampling,
  compiled solve, read-outs), per dose and in total, with subject-simulations
  per second;
* the **trials** themselves (``pkcsf.trials.simulate_trials`` on those pools),
  and, on the same pools, BOIN and CRM for comparison;
* the **first call** (imports, model compilation, caches) apart from the best
  of ``--repeat`` further runs.

Checks: probabilities of selection sum to 1, exposures rise with dose for every
virtual patient, and the default link gives P(DLT) = 0.30 at the median
exposure of the literature MTD (10 mg).

Usage::

    python benchmarks/bench_escalation.py [--trials 10000] [--subjects 500] [--repeat 3]

Writes ``benchmarks/results/escalation.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pkcsf  # noqa: E402
from pkcsf.clinical.escalation import simulate_escalation  # noqa: E402
from pkcsf.trials.designs import simulate_trials  # noqa: E402

DOSES = [10.0, 20.0, 30.0, 40.0, 50.0]


def _run(args, seed):
    t0 = time.perf_counter()
    res = simulate_escalation("pemetrexed", DOSES, route="lumbar", design="3+3", exposure="plasma:auc",
                              subjects=args.subjects, trials=args.trials, seed=seed, progress=False)
    return res, time.perf_counter() - t0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--subjects", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "escalation.json"))
    args = ap.parse_args(argv)

    first, first_total = _run(args, seed=1)
    runs = [_run(args, seed=100 + r) for r in range(args.repeat)]
    best, best_total = min(runs, key=lambda x: x[1])
    p = best.provenance

    # checks
    s = best.summary()
    assert abs(s["p_select"].sum() - 1.0) < 1e-12
    assert np.all(np.diff(best.exposures, axis=0) > 0)
    assert abs(best.link(np.median(best.exposures[0])) - 0.30) < 1e-9

    # other designs on the same pools: trial time only
    designs = {}
    for name in ("3+3", "boin", "crm"):
        simulate_trials(name, best.doses, exposure=best.exposures, link=best.link, n_trials=args.trials, seed=1)
        ts = []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            tr = simulate_trials(name, best.doses, exposure=best.exposures, link=best.link, n_trials=args.trials,
                                 seed=10 + r)
            ts.append(time.perf_counter() - t0)
        designs[name] = {"seconds": min(ts), "trials_per_s": args.trials / min(ts),
                         "p_select": tr.p_select.round(4).tolist(), "p_none": round(tr.p_none, 4),
                         "mean_trial_size": round(tr.mean_trial_size, 3)}

    n_sim = args.subjects * len(DOSES)
    row = {
        "drug": "pemetrexed", "route": "lumbar", "doses_mg": DOSES, "schedule": p["regimens"]["10 mg"],
        "exposure": p["exposure"], "design": p["design"], "subjects_per_dose": args.subjects,
        "trials": args.trials,
        "total_seconds": best_total,
        "pk_pool_seconds": p["pk_seconds"],
        "pk_pool_seconds_per_dose": p["pk_seconds_per_dose"],
        "subject_simulations_per_s": n_sim / p["pk_seconds"],
        "trial_seconds": p["trial_seconds"],
        "trials_per_s": args.trials / p["trial_seconds"],
        "first_call_total_seconds": first_total,
        "first_call_pk_pool_seconds": first.provenance["pk_seconds"],
        "all_runs_total_seconds": [round(t, 3) for _, t in runs],
        "p_select": s["p_select"].round(4).tolist(),
        "mean_n": s["mean_n"][:-1].round(3).tolist(),
        "true_p_dlt": s["true_p_dlt"][:-1].round(4).tolist(),
        "exposure_p50": s["exposure_p50"][:-1].round(3).tolist(),
        "exposure_unit": p["exposure_unit"],
        "link": p["link"],
        "designs_on_same_pools": designs,
    }
    print(f"pemetrexed lumbar, {len(DOSES)} doses x {args.subjects} virtual patients, {args.trials} 3+3 trials")
    print(f"  first call (imports, compilation): {first_total:8.3f} s (pools {first.provenance['pk_seconds']:.3f} s)")
    print(f"  whole pipeline (best of {args.repeat}):  {best_total:8.3f} s")
    print(f"    exposure pools:                {p['pk_seconds']:8.3f} s  ({n_sim / p['pk_seconds']:,.0f} subject "
          f"simulations/s; per dose: " + ", ".join(f"{k} {v:.3f}" for k, v in p["pk_seconds_per_dose"].items()) + ")")
    print(f"    trials:                        {p['trial_seconds']:8.3f} s  ({args.trials / p['trial_seconds']:,.0f} "
          "trials/s)")
    for name, d in designs.items():
        print(f"  {name:>5} on the same pools:         {d['seconds']:8.3f} s  (P(select) {d['p_select']}, "
              f"P(none) {d['p_none']})")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "benchmark": "bench_escalation",
        "pkcsf": pkcsf.__version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "numba_threads": os.environ.get("NUMBA_NUM_THREADS", "default"),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "repeat": args.repeat,
    }
    out.write_text(json.dumps({"meta": meta, "results": [row]}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
