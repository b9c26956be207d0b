"""Benchmark: virtual dose-escalation trials (pkcsf.trials).

Times 10,000 virtual trials over 5 dose levels for the 3+3 (true DLT
probabilities, and per-patient exposures with a logistic link), BOIN and CRM
designs, reports trials per second and, for the 3+3, the accuracy against the
exact operating characteristics (largest |simulated - exact| / Monte Carlo SE
over the selection probabilities). The first call of each design is timed
separately (warm-up: imports, tables, allocation); the reported time is the
best of ``--repeat`` further runs.

Usage::

    python benchmarks/bench_trials.py [--trials 10000] [--repeat 3]

Writes ``benchmarks/results/trials.json``.
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

from pkcsf.trials.designs import (  # noqa: E402
    BOIN,
    CRM,
    LogisticExposureToxicity,
    ThreePlusThree,
    simulate_trials,
    three_plus_three_exact,
)

DOSES = [10.0, 20.0, 40.0, 60.0, 80.0]
P_DLT = [0.05, 0.10, 0.20, 0.35, 0.50]


def _cases():
    rng = np.random.default_rng(2024)
    # lognormal exposures (CV ~50 %) proportional to dose, 1000 virtual patients per level
    exposure = rng.lognormal(np.log(np.array(DOSES))[:, None], 0.47, size=(len(DOSES), 1000))
    link = LogisticExposureToxicity.from_mtd_exposure(60.0)
    return [
        ("3+3", ThreePlusThree(), dict(p_dlt=P_DLT)),
        ("3+3 (exposure)", ThreePlusThree(), dict(exposure=exposure, link=link)),
        ("BOIN", BOIN(target=0.30, max_n=30), dict(p_dlt=P_DLT)),
        ("CRM", CRM(target=0.30, max_n=30), dict(p_dlt=P_DLT)),
    ]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "trials.json"))
    args = ap.parse_args(argv)

    rows = []
    for label, design, tox in _cases():
        t0 = time.perf_counter()
        simulate_trials(design, DOSES, n_trials=args.trials, seed=1, **tox)
        warm = time.perf_counter() - t0
        times = []
        for r in range(args.repeat):
            t0 = time.perf_counter()
            res = simulate_trials(design, DOSES, n_trials=args.trials, seed=100 + r, **tox)
            times.append(time.perf_counter() - t0)
        best = min(times)
        row = {
            "design": label,
            "description": res.design,
            "trials": args.trials,
            "doses": len(DOSES),
            "seconds": best,
            "seconds_first_call": warm,
            "trials_per_s": args.trials / best,
            "mean_trial_size": res.mean_trial_size,
            "p_select": res.p_select.round(4).tolist(),
            "p_none": round(res.p_none, 4),
        }
        if isinstance(design, ThreePlusThree):
            exact = three_plus_three_exact(res.true_p_dlt)
            se = np.sqrt(exact.p_select * (1 - exact.p_select) / args.trials)
            row["max_abs_z_vs_exact"] = float(np.max(np.abs(res.p_select - exact.p_select) / se))
        rows.append(row)

    print(f"{'design':<16} {'trials':>8} {'seconds':>9} {'trials/s':>11} {'first call s':>13} {'max|z| exact':>13}")
    for r in rows:
        z = f"{r['max_abs_z_vs_exact']:.2f}" if "max_abs_z_vs_exact" in r else "-"
        print(f"{r['design']:<16} {r['trials']:>8} {r['seconds']:>9.3f} {r['trials_per_s']:>11.0f} "
              f"{r['seconds_first_call']:>13.3f} {z:>13}")

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "benchmark": "bench_trials",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "p_dlt": P_DLT,
        "doses": DOSES,
        "repeat": args.repeat,
    }
    out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
