"""Benchmark: adaptive solvers on the reference problem P2, against baselines run in the same process (issue 11).

P2 (``tests/data/problems.json``, ``models/reference_p2.toml``): 28 daily oral doses into a plasma + CSF
model with saturable (Michaelis-Menten) CSF efflux, outputs every hour for 672 h, subjects 0..N-1 as
``bench_engine.subjects``. Engines, at N = 1,000 and 10,000, on 1 and 2 threads:

* ``scipy LSODA loop``: ``bench_engine.run_scipy`` (``solve_ivp(method="LSODA")`` per subject, restarted
  at each dose, Python right-hand side, atol on amounts), timed on 100 subjects and **extrapolated
  linearly** to N (as ``bench_engine.py``).
* ``numba RK45 port``: the peer baseline, written below: SciPy's ``RK45`` algorithm (Dormand-Prince
  5(4), SciPy's initial step selection and step-size rule, Shampine dense output at the output
  times, restart at each dose) with the P2 right-hand side as scalar formulas, compiled with Numba,
  subjects in parallel with ``prange``; atol on amounts (the peers' semantics).
* ``pkcsf rodas5p``, ``pkcsf dopri5`` (explicit Dormand-Prince with switching to Rodas5P,
  ``pkcsf/solvers/explicit.py``) and ``pkcsf expint`` (exponential Runge-Kutta with the saturable term
  linearised at 0, ``pkcsf/solvers/expint.py``): ``pk.simulate`` end to end (validation, events, solve,
  result); atol on concentrations (mg/L) of compartments with a volume.

* ``rodas5p kernel, before`` / ``after``: the Rodas5P kernel of git revision ``--before`` (default: the
  last commit before the issue-11 step changes) and the current one, through the same harness
  (``prepare`` once, then a ``prange`` loop over ``solve_rodas``; no result object): the before/after
  ratio of the solver itself, measured in this process.

Tolerances: the peers' (rtol 1e-6, atol 1e-9) for every engine, plus tighter settings where an engine's
error at the peers' tolerances is far from the others (equal-accuracy comparison).

Reported: best-of wall seconds, the process CPU seconds of that run (the machine is shared: CPU s is
the fairer figure), ratios against the scipy loop (wall and CPU), max relative error against the
reference (``bench_engine.Reference``: subjects 0..99, threshold 1e-6 of each output's peak), steps
per subject. Usage::

    python benchmarks/bench_adaptive.py [--quick] [--before REV] [--out PATH] [--only rk45,rodas5p,expint]
                                        [--sizes 10000] [--threads 2]

``--quick``: N = 1,000 only, scipy on 20 subjects. ``--only``: the engines whose solver key (``rk45``,
``rodas5p``, ``dopri5``, ``expint``, ``kernel``) is listed (the scipy loop always runs); ``--sizes``,
``--threads``: the N and thread counts to run.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

import bench_engine as B  # noqa: E402

import pkcsf as pk  # noqa: E402

PEER = B.PEER
ORDER = B.SPEC["problems"]["oral_mm_efflux"]["param_order"]


# ----------------------------------------------------------- the peer baseline: a Numba port of SciPy's RK45
@njit(cache=True, fastmath=False)
def _p2_rhs(y, pr, out):
    KA, CL, V_C, Q_P, V_P, V_CSF, FU, Q_PASS, VMAX, KM, Q_BULK = (pr[0], pr[2], pr[3], pr[4], pr[5], pr[6],
                                                                pr[7], pr[8], pr[9], pr[10], pr[11])
    c1 = y[1] / V_C
    c2 = y[2] / V_P
    c3 = y[3] / V_CSF
    J = VMAX * c3 / (KM + c3)
    out[0] = -KA * y[0]
    out[1] = KA * y[0] - CL * c1 - Q_P * (c1 - c2) - Q_PASS * FU * c1 + Q_PASS * c3 + J + Q_BULK * c3
    out[2] = Q_P * (c1 - c2)
    out[3] = Q_PASS * FU * c1 - Q_PASS * c3 - J - Q_BULK * c3
    out[4] = c3


_C = np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1])
_A = np.array([[0, 0, 0, 0, 0], [1 / 5, 0, 0, 0, 0], [3 / 40, 9 / 40, 0, 0, 0], [44 / 45, -56 / 15, 32 / 9, 0, 0],
               [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0],
               [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656]])
_B = np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84])
_E = np.array([-71 / 57600, 0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40])
_P = np.array([
    [1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
    [0, 0, 0, 0],
    [0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
    [0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
    [0, 127303824393 / 49829197408, -318862633887 / 49829197408, 701980252875 / 199316789632],
    [0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
    [0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423]])


@njit(cache=True)
def _rms(x, scale):
    s = 0.0
    for i in range(x.shape[0]):
        v = x[i] / scale[i]
        s += v * v
    return math.sqrt(s / x.shape[0])


@njit(cache=True)
def _rk45_interval(pr, y, t0, t1, rtol, atol, hours, k, last, out, scale_out, K, ynew, ytmp, sc, steps):
    """SciPy RK45 from t0 to t1 (fresh start), writing outputs hours[k] in (t0, t1) (t1 too if last)."""
    n = y.shape[0]
    T = hours.shape[0]
    _p2_rhs(y, pr, K[0])
    # select_initial_step (SciPy, order 4)
    for i in range(n):
        sc[i] = atol + abs(y[i]) * rtol
    d0 = _rms(y, sc)
    d1 = _rms(K[0], sc)
    h0 = 1e-6 if (d0 < 1e-5 or d1 < 1e-5) else 0.01 * d0 / d1
    h0 = min(h0, t1 - t0)
    for i in range(n):
        ytmp[i] = y[i] + h0 * K[0, i]
    _p2_rhs(ytmp, pr, K[1])
    for i in range(n):
        ytmp[i] = K[1, i] - K[0, i]
    d2 = _rms(ytmp, sc) / h0
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = max(1e-6, h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / 5.0)
    h_abs = min(100 * h0, h1, t1 - t0)
    t = t0
    while t < t1:
        min_step = 10 * abs(np.nextafter(t, np.inf) - t)
        h_abs = max(h_abs, min_step)
        rejected = False
        while True:
            h = h_abs
            t_new = t + h
            if t_new > t1:
                t_new = t1
            h = t_new - t
            h_abs = h
            for s in range(1, 6):
                for i in range(n):
                    acc = 0.0
                    for j in range(s):
                        acc += _A[s, j] * K[j, i]
                    ytmp[i] = y[i] + h * acc
                _p2_rhs(ytmp, pr, K[s])
            for i in range(n):
                acc = 0.0
                for j in range(6):
                    acc += _B[j] * K[j, i]
                ynew[i] = y[i] + h * acc
            _p2_rhs(ynew, pr, K[6])
            for i in range(n):
                acc = 0.0
                for j in range(7):
                    acc += _E[j] * K[j, i]
                ytmp[i] = acc * h
                sc[i] = atol + max(abs(y[i]), abs(ynew[i])) * rtol
            err = _rms(ytmp, sc)
            if err < 1.0:
                factor = 10.0 if err == 0.0 else min(10.0, 0.9 * err ** -0.2)
                if rejected:
                    factor = min(1.0, factor)
                h_abs *= factor
                break
            h_abs *= max(0.2, 0.9 * err ** -0.2)
            rejected = True
        steps[0] += 1
        while k < T and hours[k] <= t_new and (hours[k] < t1 or last):
            x = (hours[k] - t) / h
            for i in range(n):
                acc = 0.0
                for j in range(7):
                    acc += K[j, i] * (_P[j, 0] * x + _P[j, 1] * x * x + _P[j, 2] * x ** 3 + _P[j, 3] * x ** 4)
                out[k, i] = (y[i] + h * acc) * scale_out[i]
            k += 1
        for i in range(n):
            y[i] = ynew[i]
            K[0, i] = K[6, i]
        t = t_new
    return k


@njit(parallel=True, cache=True)
def rk45_batch(P, amount, dose_times, hours, rtol, atol, out, steps):
    """Every subject (rows of P, problems.json order) with the RK45 port; out (N, T, 5) concentrations."""
    N = P.shape[0]
    for s in prange(N):
        pr = P[s]
        y = np.zeros(5)
        K = np.zeros((7, 5))
        ynew = np.zeros(5)
        ytmp = np.zeros(5)
        sc = np.zeros(5)
        scale_out = np.array([1.0, 1.0 / pr[3], 1.0 / pr[5], 1.0 / pr[6], 1.0])
        nd = dose_times.shape[0]
        k = 0
        for d in range(nd):
            y[0] += amount[s]
            t0 = dose_times[d]
            t1 = dose_times[d + 1] if d + 1 < nd else hours[hours.shape[0] - 1]
            while k < hours.shape[0] and hours[k] == t0:    # output right after the dose
                for i in range(5):
                    out[s, k, i] = y[i] * scale_out[i]
                k += 1
            k = _rk45_interval(pr, y, t0, t1, rtol, atol, hours, k, d == nd - 1, out[s], scale_out, K, ynew,
                               ytmp, sc, steps[s:s + 1])


def run_rk45(pop, tol, threads):
    P = np.ascontiguousarray(pop[ORDER].to_numpy())
    amount = P[:, ORDER.index("F")] * pop["DOSE_AMT"].to_numpy()
    out = np.empty((len(pop), len(B.HOURS), 5))
    steps = np.zeros(len(pop), dtype=np.int64)
    numba.set_num_threads(threads)
    rk45_batch(P, amount, B.dose_times("P2"), B.HOURS, tol["rtol"], tol["atol"], out, steps)
    return out, float(steps.mean())


def run_pkcsf(pop, solver, tol, threads):
    res = pk.simulate("reference_p2", B.regimen("P2"), pop, times=B.HOURS, solver=solver, threads=threads,
                      progress=False, **tol)
    n = min(100, len(pop))
    C = res.amounts[:n, :, :5] / res.volumes[:n, None, :5]
    return C, res.stats["steps"] / len(pop)


#: the last commit before the issue-11 changes to the Rodas5P step (passive states, inverse of the active block,
#: step size kept across doses)
BEFORE_REV = "fc560ad"


def load_kernel(rev: str):
    """``solve_rodas`` of pkcsf/solvers/rodas.py at git revision ``rev`` (compiled here), or None."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:pkcsf/solvers/rodas.py"], check=True,
                             capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"no Rodas5P kernel at {rev!r} ({exc}); before/after rows skipped", flush=True)
        return None
    path = Path(tempfile.mkdtemp(prefix="pkcsf_before_")) / "rodas_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("rodas_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.solve_rodas


def kernel_batch(solve):
    """A prange loop over subjects calling ``solve`` (a ``solve_rodas``), as kernels.batch_rodas does."""
    @njit(parallel=True)
    def run(P, vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km, mm_fu,
            ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save, out, status, rtol, atol, max_steps, max_step, counters):
        sev = 0 if ev_t.shape[0] == 1 else 1
        for i in prange(P.shape[0]):
            ie = i * sev
            status[i] = solve(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, mm_src, mm_dst, mm_vmax, mm_km,
                              mm_fu, ev_t[ie], ev_s[ie], ev_a[ie], ev_k[ie], ev_n[ie], times, y0[0], save, out[i],
                              rtol, atol, max_steps, max_step, counters[i])
    return run


def run_kernel(batch, pop, tol, threads):
    """Problem set up by ``prepare``, then ``batch`` (:func:`kernel_batch`); concentrations of subjects 0..99."""
    from pkcsf.engine.simulate import prepare
    prob = prepare("reference_p2", B.regimen("P2"), pop, times=B.HOURS, solver="rodas5p", **tol)
    cm = prob.compiled
    n = len(pop)
    out = np.empty((n, len(prob.times), len(prob.save)))
    status = np.zeros(n, dtype=np.int64)
    counters = np.zeros((n, 5), dtype=np.int64)
    numba.set_num_threads(threads)
    batch(prob.P, cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst, cm.lin_col, cm.mm_src, cm.mm_dst, cm.mm_vmax,
          cm.mm_km, cm.mm_fu, *prob.events(slice(None)), prob.times, prob.y0, prob.save, out, status,
          prob.rtol, prob.atol, prob.max_steps, prob.max_step, counters)
    assert (status == 0).all()
    m = min(100, n)
    V = cm.volumes(prob.P[:m])[:, prob.save]
    return out[:m, :, :5] / V[:, None, :5], float(counters[:, 0].mean())


def timed(fn, repeat):
    """Best wall time of ``repeat`` calls, the process CPU time of that call, and its value."""
    best, cpu, value = np.inf, np.nan, None
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        v = fn()
        wall, used = time.perf_counter() - t0, time.process_time() - c0
        if wall < best:
            best, cpu, value = wall, used, v
    return best, cpu, value


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="N = 1,000 only, scipy on 20 subjects")
    ap.add_argument("--before", default=BEFORE_REV, help="git revision of the 'before' Rodas5P kernel")
    ap.add_argument("--out", default=str(HERE / "results" / "adaptive.json"))
    ap.add_argument("--only", default="", help="comma-separated solver keys: rk45, rodas5p, dopri5, expint, kernel")
    ap.add_argument("--sizes", default="", help="comma-separated N (default 1000,10000; --quick: 1000)")
    ap.add_argument("--threads", default="", help="comma-separated thread counts (default 1 and 2)")
    args = ap.parse_args(argv)
    Ns = [1000] if args.quick else [1000, 10000]
    if args.sizes:
        Ns = [int(x) for x in args.sizes.split(",")]
    scipy_n = 20 if args.quick else 100
    max_threads = min(2, numba.config.NUMBA_NUM_THREADS)
    ref = B.Reference("P2")
    load_before = os.getloadavg()

    # engines: (label, runner, tolerances); tighter settings for the equal-accuracy comparison
    engines = [
        ("numba RK45 port", "rk45", PEER),
        ("numba RK45 port", "rk45", dict(rtol=1e-6, atol=1e-11)),
        ("numba RK45 port", "rk45", dict(rtol=1e-8, atol=1e-13)),
        ("pkcsf rodas5p", "rodas5p", PEER),
        ("pkcsf rodas5p", "rodas5p", dict(rtol=3e-7, atol=3e-12)),
        ("pkcsf rodas5p", "rodas5p", dict(rtol=1e-7, atol=1e-12)),
        ("pkcsf dopri5", "dopri5", PEER),
        ("pkcsf dopri5", "dopri5", dict(rtol=1e-7, atol=1e-12)),
        ("pkcsf dopri5", "dopri5", dict(rtol=5e-8, atol=5e-13)),
        ("pkcsf dopri5", "dopri5", dict(rtol=3e-8, atol=3e-13)),
        ("pkcsf expint", "expint", PEER),
        ("pkcsf expint", "expint", dict(rtol=3e-7, atol=3e-12)),
        ("pkcsf expint", "expint", dict(rtol=2e-7, atol=2e-12)),
        ("pkcsf expint", "expint", dict(rtol=1e-7, atol=1e-12)),
    ]
    from pkcsf.solvers.rodas import solve_rodas
    batches = {"after": kernel_batch(solve_rodas)}
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    before = load_kernel(args.before) if (not only or "kernel" in only) else None
    if before is not None:
        batches["before"] = kernel_batch(before)
        for tol in (PEER, dict(rtol=1e-7, atol=1e-12)):
            engines += [(f"rodas5p kernel, before ({args.before})", "kernel:before", tol),
                        ("rodas5p kernel, after", "kernel:after", tol)]

    if only:
        engines = [e for e in engines if e[1].split(":")[0] in only]

    def run(solver, pop, tol, threads):
        if solver.startswith("kernel:"):
            return run_kernel(batches[solver.split(":")[1]], pop, tol, threads)
        if solver == "rk45":
            out, steps = run_rk45(pop, tol, threads)
            return out[:100], steps
        return run_pkcsf(pop, solver, tol, threads)

    # compile / load every kernel before timing
    small = B.subjects("P2", 4)
    for _, solver, tol in engines:
        run(solver, small, tol, max_threads)

    rows = []
    t_sc, c_sc, C_sc = timed(lambda: B.run_scipy("P2", B.subjects("P2", scipy_n)), 1)
    scipy_err = ref.error(C_sc)
    print(f"scipy LSODA loop, {scipy_n} subjects: {t_sc:.2f} s wall, {c_sc:.2f} s CPU, err {scipy_err:.1e}", flush=True)
    for n in Ns:
        pop = B.subjects("P2", n)
        base_wall, base_cpu = t_sc / scipy_n * n, c_sc / scipy_n * n
        rows.append(dict(N=n, engine=f"scipy LSODA loop (extrapolated from N = {scipy_n})", threads=1, tol=PEER,
                         wall=base_wall, cpu=base_cpu, err=scipy_err, steps=None))
        thread_counts = ([int(x) for x in args.threads.split(",")] if args.threads else sorted({1, max_threads}))
        for threads in thread_counts:
            for label, solver, tol in engines:
                wall, cpu, (C, steps) = timed(lambda: run(solver, pop, tol, threads), 3 if n <= 1000 else 2)
                rows.append(dict(N=n, engine=label, threads=threads, tol=tol, wall=wall, cpu=cpu,
                                 err=ref.error(C), steps=steps))
                r = rows[-1]
                print(f"  N={n:>6} {label:<30} {threads} thr rtol {tol['rtol']:.0e} atol {tol['atol']:.0e}: "
                      f"{wall:8.3f} s wall {cpu:8.3f} s CPU  err {r['err']:.1e}  steps {steps:.0f}", flush=True)
                del C
        for r in rows:
            if r["N"] == n:
                r["x_scipy_wall"] = base_wall / r["wall"]
                r["x_scipy_cpu"] = base_cpu / r["cpu"]
    load_after = os.getloadavg()
    print()
    print(table(rows))
    print(f"\nload average before {load_before}, after {load_after}; {os.cpu_count()} CPUs; "
          f"scipy rows extrapolated from {scipy_n} subjects (wall {t_sc:.2f} s, CPU {c_sc:.2f} s)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"benchmark": "bench_adaptive", "date": time.strftime("%Y-%m-%d %H:%M:%S"),
                               "load_before": load_before, "load_after": load_after, "rows": rows},
                              indent=1, default=float))


def table(rows) -> str:
    lines = ["| N | engine | thr | rtol / atol | wall s | CPU s | x scipy (wall) | x scipy (CPU) | max rel err | "
             "steps/subject |",
             "| ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        steps = "" if r["steps"] is None else f"{r['steps']:,.0f}"
        lines.append(f"| {r['N']:,} | {r['engine']} | {r['threads']} | {r['tol']['rtol']:.0e} / {r['tol']['atol']:.0e} | "
                     f"{r['wall']:.4g} | {r['cpu']:.4g} | {r['x_scipy_wall']:,.0f} | {r['x_scipy_cpu']:,.0f} | "
                     f"{r['err']:.1e} | {steps} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
