"""Scale: the methotrexate 12 mg Ommaya twice weekly x 4 weeks scenario for N virtual subjects.

Every read-out (metrics table, summary percentiles, bands of the first 2,000 subjects), as a user
runs it::

    res = pk.simulate_drug("methotrexate", "12 mg ommaya twice weekly x 4 weeks", subjects=N, days=28, seed=1)
    res.summary()

Each N runs in a fresh subprocess (peak memory is that process's maximum resident set size), after a
one-subject warm-up in that process (compilation or loading cached kernels is not counted).

    python benchmarks/bench_scale.py 10000 100000          # N values; prints one JSON line per N (with the
                                                          # share of the run when <= 1 thread was runnable)
    python benchmarks/bench_scale.py 10000 --two-step      # read-outs after the solve (the path before issue 11)
    python benchmarks/bench_scale.py 100000 --base main --repeat 3   # a base commit and this tree in
                                                          # alternating fresh processes: medians, ratios, and
                                                          # summary() of both compared to the last bit
    python benchmarks/bench_scale.py --summary 100000 --times 10 --repeat 5   # summary() of N subjects' table
                                                          # repeated 10 times: pandas' grouped quantile and the
                                                          # threaded path, alternating in this process, compared
    python benchmarks/bench_scale.py --one 10000          # (internal) run one N in this process
    python benchmarks/bench_scale.py --parts 1024         # per subject on one thread: exponential, solve,
                                                          # + read-outs, + exact Cmax (CPU time, best of 5)
    python benchmarks/bench_scale.py --parts 1024 --base main --repeat 9   # the same for a base commit's kernels
                                                          # too, alternating in this process, with ratios
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

REGIMEN = "12 mg ommaya twice weekly x 4 weeks"


def one(n: int, two_step: bool = False, save: str | None = None) -> dict:
    import pkcsf as pk

    if two_step:        # the path before issue 11: solve, (n, T, G) concentrations, then read-outs
        from pkcsf.clinical import scenario

        scenario._DrugRun.fused_problem = lambda self, params: None

    pk.simulate_drug("methotrexate", REGIMEN, subjects=1, days=28, seed=1).summary()   # warm-up
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    m0 = time.monotonic()               # (the parent's sampler of runnable threads uses the same clock)
    t0 = time.perf_counter()
    c0 = time.process_time()
    res = pk.simulate_drug("methotrexate", REGIMEN, subjects=n, days=28, seed=1, progress=False)
    t1 = time.perf_counter()
    m1 = time.monotonic()
    summ = res.summary()
    t2 = time.perf_counter()
    m2 = time.monotonic()
    c2 = time.process_time()
    ru2 = resource.getrusage(resource.RUSAGE_SELF)
    m = res.metrics()
    if save:
        summ.to_pickle(save)
    return {"subjects": n, "path": "two-step" if two_step else "fused", "seconds": round(t2 - t0, 3), "simulate_s": round(t1 - t0, 3),
            "summary_s": round(t2 - t1, 3), "cpu_s": round(c2 - c0, 3),
            "sys_s": round(ru2.ru_stime - ru0.ru_stime, 3),    # system CPU: mostly page faults of new memory
            "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1),
            "peak_mb_before_run": round(rss0, 1), "metrics_rows": len(m),
            "metrics_mb": round(m.memory_usage(deep=True).sum() / 2**20, 1),
            "cmax_vent_p50": float(summ.loc[summ.group == "ventricular", "cmax_p50"].iloc[0]),
            "load_avg": os.getloadavg()[0], "monotonic": [m0, m1, m2]}


def _sampled(cmd: list, env: dict, every: float = 0.005) -> dict:
    """Run ``cmd`` (a ``--one`` child), sampling how many of its threads are runnable (state R: running
    or waiting for a core) every ``every`` s. Returns its JSON line, with ``one_runnable_sim``: the
    fraction of the simulation during which at most one of its threads was runnable, and the same
    for ``summary()``, ``one_runnable_summary``. On two cores that is the share of the time a quiet
    machine leaves one core idle; it does not depend on other processes' load (a thread waiting for
    a core is still runnable).
    """
    import glob

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    samples = []
    while proc.poll() is None:
        t, r = time.monotonic(), 0
        for f in glob.glob(f"/proc/{proc.pid}/task/*/stat"):
            try:
                st = open(f).read()
            except OSError:
                continue
            r += st[st.rindex(")") + 2] == "R"
        samples.append((t, r))
        time.sleep(every)
    out, err = proc.communicate()
    if proc.returncode != 0:
        print(err, file=sys.stderr)
        raise SystemExit(proc.returncode)
    row = json.loads(out.strip().splitlines()[-1])
    m0, m1, m2 = row.pop("monotonic")
    for key, a, b in (("one_runnable_sim", m0, m1), ("one_runnable_summary", m1, m2)):
        w = [r for t, r in samples if a <= t <= b]
        row[key] = round(sum(r <= 1 for r in w) / len(w), 3) if w else None
    return row


def _capture(n: int) -> list:
    """The arguments of the compiled fused exact solve of the scenario's first n subjects (no bands)."""
    import pkcsf as pk
    from pkcsf.analysis import readouts as ro

    captured = []
    orig = ro._fused_exact

    class _Capture:
        def __getattr__(self, k):
            return getattr(orig, k)

        def __call__(self, *a):
            captured.append(a)
            return orig(*a)

    ro._fused_exact = _Capture()
    try:
        pk.simulate_drug("methotrexate", REGIMEN, subjects=n, days=28, seed=1, progress=False)
    finally:
        ro._fused_exact = orig
    a = list(max(captured, key=lambda x: x[0].shape[0]))
    a[19] = 0                                           # no bands
    return a


def _base_package(commit: str) -> str:
    """The package of a base commit, importable as ``pkcsf_base`` (its kernels only: an empty top level)."""
    import re
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp(prefix="pkcsf_base_"))
    repo = Path(__file__).resolve().parent.parent
    tar = subprocess.run(["git", "-C", str(repo), "archive", commit, "pkcsf"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=tar, check=True)
    (root / "pkcsf").rename(root / "pkcsf_base")
    for f in (root / "pkcsf_base").rglob("*.py"):
        f.write_text(re.sub(r"\b(from|import) pkcsf\b", r"\1 pkcsf_base", f.read_text()))
    (root / "pkcsf_base" / "__init__.py").write_text("")
    return str(root)


def _kernels(ex, ro, build_matrix):
    """The parts of the fused exact path, compiled against the modules given (this tree's or a base commit's)."""
    import numba
    import numpy as np

    lazy_flush = ro._lazy_flush

    @numba.njit
    def expm_only(P, vol_col, lin_type, lin_src, lin_dst, lin_col):
        S = vol_col.shape[0]
        order, na, ws = ex.exact_workspace(S, lin_src)
        c_dt, c_E, M = ws[6], ws[7], ws[12]
        A = np.empty((S, S))
        counters = np.zeros(5, dtype=np.int64)
        acc = 0.0
        for i in range(P.shape[0]):
            build_matrix(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, A)
            for r in range(S):
                for j in range(na):
                    M[r, j] = A[order[r], order[j]]
            for c in range(c_dt.shape[0]):
                c_dt[c] = -1.0
            acc += c_E[ex._split_slot(1.0, M, A, order, na, ws, np.zeros(1, dtype=np.int64), counters), 0, 0]
        return acc

    @numba.njit
    def fused_parts(P, vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t, ev_s, ev_a, ev_k, ev_n, times, y0, save,
                    W, factor, thr, last_start, trough_at, nb, band, status, cmax, tmax, auc, above, longest,
                    cmax_last, auc_last, trough, refined, do_reduce, do_refine):
        # _fused_exact's loop on one thread, parts switched off
        N, T, S_m, G, Sw = P.shape[0], times.shape[0], vol_col.shape[0], W.shape[1], W.shape[0]
        sev = 0 if ev_t.shape[0] == 1 else 1
        sy0 = 0 if y0.shape[0] == 1 else 1
        every = np.arange(S_m)
        flush = lazy_flush(save, Sw, lin_src, last_start, T)   # the library's rule (readouts._lazy_flush)
        out = np.empty((T, S_m))
        conc = np.empty((T, G))
        vol = np.empty(G)
        counters = np.zeros(5, dtype=np.int64)
        thr0 = np.empty((G, 0))
        tm_tail = np.empty(G)
        wv = np.zeros((S_m, G))
        order, na, ws = ex.exact_workspace(S_m, lin_src)
        u, ub, v, vn, wg = np.empty(na), np.empty(na), np.empty(na), np.empty(na), np.empty(na)
        memo, samp, rc, coef = np.empty((G, 3)), np.empty((65, na)), np.empty(2), np.zeros(64)
        for i in range(N):
            ie = i * sev
            st, split = ex.solve_exact_ws(P[i], vol_col, lin_type, lin_src, lin_dst, lin_col, ev_t[ie], ev_s[ie],
                                          ev_a[ie], ev_k[ie], ev_n[ie], times, y0[i * sy0], every, out, counters,
                                          order, na, ws, flush)
            if not do_reduce:
                continue
            ro._reduce_subject(i, st, P[i], vol_col, save, save, W, factor, times, out, conc, vol, thr, last_start,
                               trough_at, nb, band, cmax, tmax, auc, above, longest, cmax_last, auc_last, trough,
                               thr0, tm_tail)
            if do_refine and split and st == 0:
                for g in range(G):
                    for j in range(Sw):
                        wv[save[j], g] = W[j, g] * vol[g]
                    memo[g, 0] = -1.0
                rc[0] = -1.0
                ex.refine_peaks(times, out, conc, 0, wv, cmax[i], tmax[i], ev_t[ie], ev_n[ie], order, na, ws,
                                u, ub, v, vn, wg, coef, memo, samp, rc)
                ex.refine_peaks(times, out, conc, last_start, wv, cmax_last[i], tm_tail, ev_t[ie], ev_n[ie], order,
                                na, ws, u, ub, v, vn, wg, coef, memo, samp, rc)

    return expm_only, fused_parts


def parts(n: int, base: str | None = None, repeat: int = 5) -> dict:
    """CPU µs per subject on one thread for the parts of the fused exact path, on the scenario's first n subjects.

    The arguments of the compiled fused solve are captured from a real run; the parts are then timed in
    this process (best of ``repeat``): the matrix exponential alone, the solve, the solve + read-outs, and
    the solve + read-outs + exact Cmax/Tmax between outputs (the full per-subject kernel). ``base``: a
    commit whose kernels are timed too, alternating with this tree's (the same process, the same inputs),
    with the largest relative difference of their read-outs.
    """
    import importlib

    import numba
    import numpy as np

    from pkcsf.analysis import readouts as ro
    from pkcsf.solvers import exact as ex
    from pkcsf.solvers.common import build_matrix

    a = _capture(n)
    P = a[0]
    versions = {"this": _kernels(ex, ro, build_matrix)}
    if base:
        sys.path.insert(0, _base_package(base))
        bro = importlib.import_module("pkcsf_base.analysis.readouts")
        bex = importlib.import_module("pkcsf_base.solvers.exact")
        bcm = importlib.import_module("pkcsf_base.solvers.common")
        versions = {"base": _kernels(bex, bro, bcm.build_matrix), **versions}
    numba.set_num_threads(1)
    outs = {}
    for name, (expm_only, fused_parts) in versions.items():      # compile and warm up; keep the read-outs
        expm_only(P, *a[1:6])
        b = [x.copy() if isinstance(x, np.ndarray) else x for x in a]
        fused_parts(*b, 1, 1)
        outs[name] = b
    parts_ = {"exponential_us": lambda f: f[0](P, *a[1:6])}
    for key, flags in (("solve_us", (0, 0)), ("solve_readouts_us", (1, 0)), ("total_us", (1, 1))):
        parts_[key] = (lambda fl: (lambda f: f[1](*a, *fl)))(flags)
    res = {name: {k: np.inf for k in parts_} for name in versions}
    for _ in range(repeat):
        for key, call in parts_.items():
            for name, f in versions.items():
                c0 = time.process_time()
                call(f)
                res[name][key] = min(res[name][key], time.process_time() - c0)
    r = {"subjects": int(P.shape[0])}
    for name in versions:
        for key in parts_:
            r[f"{key}" if len(versions) == 1 else f"{name}_{key}"] = round(res[name][key] * 1e6 / P.shape[0], 1)
    if base:
        for key in parts_:
            r[f"ratio_{key}"] = round(res["this"][key] / res["base"][key], 3)
        # read-outs: cmax 22, tmax 23, auc 24, above 25, longest 26, cmax_last 27, auc_last 28, trough 29, refined 30
        for idx, nm in ((22, "cmax"), (23, "tmax"), (24, "auc"), (25, "time_above"), (27, "cmax_last"),
                        (28, "auc_last"), (29, "trough")):
            x, y = outs["base"][idx], outs["this"][idx]
            r[f"maxrel_{nm}"] = float(np.max(np.abs(x - y) / np.maximum(np.abs(x), 1e-300)))
        r["refined_equal"] = bool(np.array_equal(outs["base"][30], outs["this"][30]))
    r["load_avg"] = round(os.getloadavg()[0], 2)
    return r


def summary_ab(n: int, times: int = 10, repeat: int = 5) -> dict:
    """``summary()`` of a table of ``n * times`` subjects: the scenario's metrics for ``n`` subjects repeated
    ``times`` times (ids shifted; Cmax, Tmax and AUC of copy k scaled by 1 + 0.001 k so the copies differ), with
    pandas' grouped quantile (the path before) and with the threaded path, alternating in this process (wall
    and CPU seconds, best of ``repeat``); the two tables compared with ``check_exact=True``.
    """
    import warnings

    import numpy as np
    import pandas as pd

    import pkcsf as pk
    from pkcsf.clinical import scenario_results as sr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pk.simulate_drug("methotrexate", REGIMEN, subjects=n, days=28, seed=1, progress=False)
    arm = next(iter(res.arms.values()))
    m = arm.metrics
    parts = []
    for k in range(times):
        d = m.copy()
        d["id"] = d["id"] + k * n
        for c in ("cmax", "tmax", "auc"):
            d[c] = d[c] * (1 + 1e-3 * k)
        parts.append(d)
    arm.metrics = pd.concat(parts, ignore_index=True)
    del parts
    threaded = sr._percentiles_threaded
    paths = {"pandas": lambda *a: None, "threaded": threaded}
    best = {k: [np.inf, np.inf] for k in paths}
    out = {}
    for _ in range(repeat):
        for k, f in paths.items():
            sr._percentiles_threaded = f
            try:
                t, c = time.perf_counter(), time.process_time()
                out[k] = res.summary()
                t, c = time.perf_counter() - t, time.process_time() - c
            finally:
                sr._percentiles_threaded = threaded
            best[k] = [min(best[k][0], t), min(best[k][1], c)]
    pd.testing.assert_frame_equal(out["pandas"], out["threaded"], check_exact=True)
    return {"rows": len(arm.metrics), "pandas_s": round(best["pandas"][0], 3), "pandas_cpu_s": round(best["pandas"][1], 3),
            "threaded_s": round(best["threaded"][0], 3), "threaded_cpu_s": round(best["threaded"][1], 3),
            "ratio_wall": round(best["threaded"][0] / best["pandas"][0], 3),
            "ratio_cpu": round(best["threaded"][1] / best["pandas"][1], 3), "identical": True,
            "load_avg": round(os.getloadavg()[0], 2)}


def base_checkout(commit: str):
    """The source of ``commit`` in a folder kept between runs, and its own Numba cache folder."""
    import tempfile
    from pathlib import Path

    repo = Path(__file__).resolve().parent.parent
    sha = subprocess.run(["git", "-C", str(repo), "rev-parse", commit], capture_output=True, text=True,
                         check=True).stdout.strip()
    folder = Path(tempfile.gettempdir()) / f"pkcsf-bench-base-{sha[:12]}"
    if not (folder / "pkcsf" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(["git", "-C", str(repo), "archive", sha], capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True)
    return folder, folder.with_name(folder.name + "-numba")


def ab(n: int, commit: str, repeat: int) -> None:
    """``n`` subjects with a base commit's source and with this tree, in alternating fresh processes
    (``repeat`` rounds after one warm-up round that fills both Numba caches); a table of the medians and
    their ratios, and the two ``summary()`` tables compared with ``check_exact=True``.
    """
    import tempfile
    from pathlib import Path

    import numpy as np
    import pandas as pd

    src, cache = base_checkout(commit)
    here = Path(__file__).resolve().parent.parent
    envs = {f"base ({commit})": dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(src),
                                     PKCSF_CACHE_DIR=str(cache)),
            "this tree": dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(here))}
    rows = {k: [] for k in envs}
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="pkcsf-scale-") as tmp:
        saved = {k: str(Path(tmp) / f"summary{i}.pkl") for i, k in enumerate(envs)}
        for r in range(repeat + 1):
            for k, env in envs.items():
                cmd = [sys.executable, __file__, "--one", str(n if r else min(n, 1000)), "--save", saved[k]]
                row = _sampled(cmd, env)
                if r:                                   # round 0 only fills the caches
                    rows[k].append(row)
                    print(json.dumps({"code": k, **row}), flush=True)
                load.append(os.getloadavg()[0])
        a, b = (pd.read_pickle(p) for p in saved.values())
        try:
            pd.testing.assert_frame_equal(a, b, check_exact=True)
            same = "identical (assert_frame_equal, check_exact=True)"
        except AssertionError as e:
            same = f"DIFFERENT: {e}"
    keys = ("seconds", "simulate_s", "summary_s", "cpu_s", "peak_mb", "one_runnable_sim", "one_runnable_summary")
    med = {k: {m: float(np.median([r[m] for r in v])) for m in keys} for k, v in rows.items()}
    base = next(iter(med.values()))
    print(f"\n{n:,} subjects, {repeat} round(s) alternating fresh processes, median; load average "
          f"{min(load):.1f}-{max(load):.1f} on {os.cpu_count()} cores")
    print("| code | wall s | simulate s | summary() s | CPU s | CPU µs per subject | peak MB | CPU vs base | "
          "wall vs base | simulate / summary() with <= 1 runnable thread |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for k, v in med.items():
        print(f"| {k} | {v['seconds']:.2f} | {v['simulate_s']:.2f} | {v['summary_s']:.3f} | {v['cpu_s']:.2f} | "
              f"{v['cpu_s'] / n * 1e6:.0f} | {v['peak_mb']:.0f} | {v['cpu_s'] / base['cpu_s']:.3f} | "
              f"{v['seconds'] / base['seconds']:.3f} | {100 * v['one_runnable_sim']:.1f}% / "
              f"{100 * v['one_runnable_summary']:.0f}% |")
    print(f"summary(): {same}")


def main(argv):
    if argv and argv[0] == "--parts":
        n = int(argv[1]) if len(argv) > 1 and not argv[1].startswith("--") else 1024
        base = argv[argv.index("--base") + 1] if "--base" in argv else None
        rep = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 5
        print(json.dumps(parts(n, base, rep)), flush=True)
        return
    if argv and argv[0] == "--summary":
        n = int(argv[1]) if len(argv) > 1 and not argv[1].startswith("--") else 100000
        times = int(argv[argv.index("--times") + 1]) if "--times" in argv else 10
        rep = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 5
        print(json.dumps(summary_ab(n, times, rep)), flush=True)
        return
    if argv and argv[0] == "--one":
        save = argv[argv.index("--save") + 1] if "--save" in argv else None
        print(json.dumps(one(int(argv[1]), two_step="--two-step" in argv, save=save)), flush=True)
        return
    if "--base" in argv:
        rep = int(argv[argv.index("--repeat") + 1]) if "--repeat" in argv else 3
        ab(int(argv[0]), argv[argv.index("--base") + 1], rep)
        return
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    extra = ["--two-step"] if "--two-step" in argv else []
    for a in [x for x in argv if x != "--two-step"] or ["10000", "100000"]:
        print(json.dumps(_sampled([sys.executable, __file__, "--one", a] + extra, env)), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
