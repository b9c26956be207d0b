"""Cost of a body position (pkcsf.clinical.position): an arm whose patients sit up after the lumbar puncture is
solved in one compiled run that switches the rate matrix at the window edges (or, for other solvers and infusions,
in pieces between the window edges) and takes the two-step read-outs. Compared, in one process, with the
same arm lying (one piece, read-outs inside the compiled solve).

    python benchmarks/bench_position.py [--n 10000 100000] [--repeat 3] [--weeks-n 10000]

Prints one table: wall and CPU seconds per arm and N (best of the repeats), and the ratio to the lying arm; and a
second for a 4-week regimen (twice weekly), where every window edge starts a new piece: lying, upright 1-24 h after
each dose (17 pieces) and a daily rhythm, upright 1-15 h daily (57 pieces), at ``--weeks-n`` patients (0: skip).
Also checks the typical patient of the upright arm against a scipy solve_ivp reference solved piece by piece
(max relative error over the CSF spaces).
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def _typical_check():
    """Max relative error of the typical upright patient's CSF amounts against scipy LSODA, solved piece by piece
    with the model's own rate matrices (lying, upright)."""
    import pandas as pd
    from scipy.integrate import solve_ivp

    import pkcsf as pk
    from pkcsf.engine.simulate import prepare

    st = pk.setup("methotrexate")
    times = np.linspace(0.0, 72.0, 289)
    res = st.simulate(pk.Dose(12, "lumbar"), times, position="upright 1-24 h")

    def rates(upright):
        prob = prepare(st.model, pk.Regimen([]), pd.DataFrame([dict(st.parameters, UPRIGHT=upright)]), times=[0.0])
        return prob.compiled.rate_matrix(prob.P[0]), prob.compiled.state_names

    (A0, names), (A1, _) = rates(0.0), rates(1.0)
    y = np.zeros(len(names))
    y[names.index("spinal_lumbar")] = 12.0
    ref = np.zeros((len(times), len(names)))
    for a, b, A in ((0.0, 1.0, A0), (1.0, 24.0, A1), (24.0, 72.0, A0)):
        sel = (times >= a) & (times <= b)
        sol = solve_ivp(lambda t, x, A=A: A @ x, (a, b), y, t_eval=times[sel], method="LSODA", rtol=1e-10,
                        atol=1e-14)
        ref[sel] = sol.y.T
        y = sol.y[:, -1]
    csf = ("lv", "tfv", "cm", "sas_cranial", "spinal_ct", "spinal_lumbar")
    got = res.amounts[0][:, [res.names.index(c) for c in csf]]
    want = ref[:, [names.index(c) for c in csf]]
    big = want > 1e-6 * want.max()
    return float(np.max(np.abs(got[big] - want[big]) / want[big]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--weeks-n", type=int, default=10_000)
    a = ap.parse_args(argv)
    import pkcsf as pk

    arms = {"lying (plain)": pk.Arm("lying", "12 mg lumbar once", drug="methotrexate"),
            "upright 1-24 h": pk.Arm("up", "12 mg lumbar once", drug="methotrexate", position="upright 1-24 h")}
    pk.run(pk.Scenario(tuple(arms.values()), subjects=10, days=3), keep="summary")      # compile / warm the caches
    rows = []
    for n in a.n:
        base = None
        for label, arm in arms.items():
            best = (np.inf, np.inf)
            for _ in range(a.repeat):
                t0, c0 = time.perf_counter(), time.process_time()
                pk.run(pk.Scenario((arm,), subjects=n, days=3, seed=1), keep="summary")
                best = min(best, (time.perf_counter() - t0, time.process_time() - c0))
            base = best if base is None else base
            rows.append((n, label, best[0], best[1], best[0] / base[0], best[1] / base[1]))
    print("| N | arm | wall s | CPU s | x lying (wall) | x lying (CPU) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for n, label, w, c, rw, rc in rows:
        print(f"| {n:,} | {label} | {w:.3g} | {c:.3g} | {rw:.2f} | {rc:.2f} |")
    print(f"\ntypical upright patient against scipy LSODA piece by piece (rtol 1e-10): max relative error "
          f"{_typical_check():.1e}")
    if a.weeks_n:
        _weeks(a.weeks_n)


def _weeks(n):
    """Methotrexate 12 mg twice weekly for 4 weeks: one compiled run that switches the rate matrix at every window
    edge, against one solve per window chained by hand-offs (``position.SWITCH_IN_KERNEL = False``, the way before
    5 Dec 2026), whose cost grows with the number of pieces."""
    import pkcsf as pk
    from pkcsf.clinical import position

    reg = "12 mg lumbar twice weekly x 4 weeks"
    arms = {p: pk.Arm("a", reg, drug="methotrexate", position=p)
            for p in ("lying", "upright 1-24 h", "upright 1-15 h daily")}
    print(f"\n4 weeks twice weekly, N = {n:,} (one run each, after a warm-up)")
    print("| position | pieces | switched in the kernel: wall s | x lying | chained pieces: wall s | x lying | "
          "chained / switched |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    base = None
    for p, arm in arms.items():
        w = {}
        for switch in (True, False):
            position.SWITCH_IN_KERNEL = switch
            pk.run(pk.Scenario((arm,), subjects=10, days=28), keep="summary")
            t0 = time.perf_counter()
            pk.run(pk.Scenario((arm,), subjects=n, days=28, seed=1), keep="summary")
            w[switch] = time.perf_counter() - t0
        position.SWITCH_IN_KERNEL = True
        base = w[True] if base is None else base
        pieces = 2 * len(pk.clinical.position.upright_intervals(p, pk.parse_regimen(reg), 672.0)) + 1
        print(f"| {p} | {pieces} | {w[True]:.3g} | {w[True] / base:.1f} | {w[False]:.3g} | {w[False] / base:.1f} | "
              f"{w[False] / w[True]:.1f} |")


if __name__ == "__main__":
    main()
