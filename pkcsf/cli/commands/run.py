"""``pkcsf run``: simulate a scenario file and write its tables and figures."""
from __future__ import annotations

import contextlib
import json
import shutil
import sys
import textwrap
import time
import warnings as _warnings
from dataclasses import replace
from typing import TYPE_CHECKING

from pkcsf.cli._util import (
    _F,
    PROG,
    _bars,
    _check_format,
    _cli_error,
    _desc,
    _nonneg_int,
    _plotting,
    _positive_int,
    _save_figure,
    _scenario_refs,
    _Staging,
    _version,
    _write_table,
)
from pkcsf.core.errors import PkcsfError, ScenarioError

if TYPE_CHECKING:
    import argparse

    import pandas as pd

    from pkcsf.clinical.scenario_results import ScenarioResult

#: fields of a Scenario -> the scenario-file keys that set them (a refusal names what the user wrote)
_FILE_KEYS = {"subjects": "population.subjects", "band_subjects": "readouts.band_subjects", "seed": "population.seed",
              "unit": "readouts.unit", "groups": "readouts.groups", "thresholds": "readouts.thresholds",
              "physiology": "physiology.set", "age": "physiology.age", "pathologies": "physiology.pathologies"}


def _dt(text):
    """--dt: a number of hours or a time with its unit, like the scenario file's dt."""
    try:
        return float(text)
    except ValueError:
        return str(text)


@contextlib.contextmanager
def _executor(address):
    """A dask client connected to the scheduler at ``address`` (closed at the end), or None."""
    if address is None:
        yield None
        return
    try:
        from distributed import Client
    except ImportError:
        raise ScenarioError("--scheduler", address, "needs dask.distributed",
                            "pip install 'pkcsf[distributed]'") from None
    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as e:
        raise ScenarioError("--scheduler", address, f"no dask scheduler answered there ({e})",
                            "start one with 'dask scheduler' and workers with 'dask worker ADDRESS'") from None
    try:
        yield client
    finally:
        client.close()


def _cmd_run(args) -> int:
    import pandas as pd

    from pkcsf.clinical.scenario import CoarseGridWarning, DosesAfterEndWarning, FailedSubjectsWarning, run
    from pkcsf.clinical.scenario_file import load_scenario

    if args.scratch is not None and not args.summary_only:
        raise ScenarioError("--scratch", args.scratch, "is used with --summary-only only",
                            "add --summary-only, or leave --scratch out")
    scn, out = load_scenario(args.scenario)
    changes = {}
    if args.subjects is not None:
        pop = scn.population
        rows = len(pop) if isinstance(pop, pd.DataFrame) else getattr(pop, "size", None)
        if rows is not None and args.subjects > rows:
            raise ScenarioError("--subjects", args.subjects, f"the scenario's CSV population has only {rows} rows")
        changes["subjects"] = args.subjects
    if args.seed is not None:
        changes["seed"] = args.seed
    if args.dt is not None:
        changes["dt"] = args.dt        # a number (h) or a time with its unit; checked by Scenario
    if changes:
        try:
            scn = replace(scn, **changes)
        except PkcsfError as e:
            raise _cli_error(e, {"dt": "--dt", "subjects": "--subjects", "seed": "--seed"}) from None
    fmt = args.format or out.format
    _check_format(fmt, "--format" if args.format else "outputs.format")
    figures = out.figures and not args.no_figures
    folder = args.out if args.out is not None else out.folder
    warnings: list[str] = []
    run_warnings = (FailedSubjectsWarning, CoarseGridWarning, DosesAfterEndWarning, UserWarning)

    def _ours(category) -> bool:      # the package's own warnings are printed and kept in run.json
        return issubclass(category, run_warnings) and category.__module__.startswith("pkcsf")

    t0 = time.perf_counter()
    with _Staging(folder, "--out" if args.out is not None else "outputs.folder") as stage:
        with _warnings.catch_warnings(record=True) as caught:
            for cat in run_warnings:
                _warnings.simplefilter("always", cat)
            keep = "summary" if args.summary_only else "metrics"
            try:
                with _executor(args.scheduler) as executor:
                    res = run(scn, progress=_bars(args), executor=executor, keep=keep,
                              **({"scratch": args.scratch} if args.summary_only else {}))
            except PkcsfError as e:     # name the option the user typed (--dt, --subjects), else the file's key
                names = dict(_FILE_KEYS, **{k: f"--{k}" for k in ("dt", "subjects", "seed", "scratch")
                                            if getattr(args, k) is not None})
                raise _cli_error(e, names) from None
        for w in caught:        # the run's own warnings: printed below and kept in run.json; others re-issued
            if _ours(w.category):
                warnings.append(str(w.message))
            else:
                _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        written = []
        if not args.summary_only:       # --summary-only: the per-subject table was never held
            written.append(_write_table(res.metrics(), stage, "metrics", fmt))
        summary = res.summary()
        written.append(_write_table(summary, stage, "summary", fmt))
        bands = res.bands()
        units = bands.pop("unit") if "unit" in bands.columns else bands["arm"].map(res.units)
        bands.insert(bands.columns.get_loc("time") + 1 if "time" in bands.columns else len(bands.columns),
                     "unit", units)      # each arm's unit, of p5 / p50 / p95 / typical; time in h
        written.append(_write_table(bands, stage, "bands", fmt))
        targets = res.targets()
        written.append(_write_table(targets, stage, "targets", fmt))
        written.append(_write_table(res.assumptions(), stage, "assumptions", fmt))
        obs = None
        if any(a.datasets for a in res.arms.values()):      # event-table arms: PRED/IPRED beside DV
            obs, wide = _observations(res, args.ipred)
            written.append(_write_table(_table_safe(obs), stage, "observations", fmt))
            written.append(_write_table(_table_safe(wide), stage, "nonmem", fmt))
        refs = _scenario_refs(scn, out)
        stage.path("references.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
        written.append("references.txt")
        shutil.copyfile(args.scenario, stage.path("scenario.toml"))
        written.append("scenario.toml")
        if figures and res.unit is None:
            warnings.append("figures skipped: the arms read out in different units (" + ", ".join(
                f"{k}: {v}" for k, v in res.units.items()) + ") and the figures put arms on one axis")
        elif figures:
            written += _run_figures(res, stage, warnings, obs, per_subject=not args.summary_only)
        failed = {name: a.failed for name, a in res.arms.items()}
        manifest = {
            "command": "pkcsf " + " ".join(args.argv), "scenario": str(args.scenario), "name": scn.name,
            "pkcsf_version": _version(), "subjects": scn.subjects, "seed": scn.seed, "unit": scn.unit,
            "arm_units": dict(res.units),
            "arms": {a.name: out.arm_regimens.get(a.name, "") for a in scn.arms},
            "failed_subjects": failed, "elapsed_s": round(res.elapsed, 3), "format": fmt, "keep": keep,
            "scheduler": args.scheduler,
            "event_tables": {nm: {"patients": a.datasets[d].data.n, "source": a.datasets[d].data.source,
                                  "ipred": args.ipred} for nm, a in res.arms.items() for d in a.datasets},
            "files": written + ["run.json"], "warnings": warnings,
        }
        stage.path("run.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        target = stage.commit()
    for w in warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if not args.quiet:
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            tables = {nm: a.datasets[d].data.n for nm, a in res.arms.items() for d in a.datasets}
            what = ", ".join(f"{nm}: event table of {n} patients" for nm, n in tables.items())
            if len(tables) < len(res.arms):
                what = f"{scn.subjects} subjects per arm" + (f" ({what})" if what else "")
            print(f"{scn.name}: {what}, seed {scn.seed}, {res.elapsed:.1f} s")
            print(readout_table(res, summary))
            if len(targets):
                print()
                print(targets.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
            print(f"\nwrote {len(written) + 1} files to {target} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _observations(res, ipred: str):
    """(tidy, NONMEM-style) observation tables; ``ipred="map"``: IPRED from each patient's MAP fit to his DV."""
    obs, wide = res.observations(), res.nonmem()
    if ipred == "map":
        from pkcsf.clinical.individual import map_ipred

        obs = map_ipred(res, seed=res.scenario.seed)
        o = (wide["EVID"] == 0).to_numpy()
        wide.loc[o, "IPRED"] = obs["IPRED"].to_numpy()
        wide["IRES"] = wide["DV"] - wide["IPRED"]
    return obs, wide


def _table_safe(df):
    """Columns of mixed Python types (an ID or CMT column holding numbers and text) as text.

    Every table format (Parquet too) can then hold them.
    """
    df = df.copy()
    for c in df.columns:
        if df[c].dtype == object and len({type(v) for v in df[c].dropna()}) > 1:
            df[c] = df[c].map(lambda v: v if v is None or (isinstance(v, float) and v != v) else str(v))
    return df


def _g(v) -> str:
    """A read-out for the terminal: 3 significant digits, no exponent for the usual range."""
    import math

    if v is None or not math.isfinite(v):
        return "-"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    s = f"{v:.3g}"
    return s if "e" not in s else f"{v:.2e}"


def _cell(sub, col, window=None) -> str:
    """'median (p5-p95)' of a summary column; 'whole window (>= N h)' when every patient is above the
    threshold for the whole simulated window (the read-out is then the window length, not a result).
    """
    import math

    lo, med, hi = (float(sub[f"{col}_{p}"]) for p in ("p5", "p50", "p95"))
    if not math.isfinite(med):
        return "-"
    if window is not None and lo >= window * (1 - 1e-6):
        return f"whole window (>= {_g(window)} h)"
    if window is not None and lo >= window * 0.99:
        return f"to the end of the window (>= {math.floor(lo * 10) / 10:.1f} of {_g(window)} h)"
    if abs(hi - lo) <= 1e-9 * max(1.0, abs(med)) or _g(lo) == _g(hi) == _g(med):
        return _g(med)
    return f"{_g(med)} ({_g(lo)}-{_g(hi)})"


def readout_table(res: ScenarioResult, summary: pd.DataFrame) -> str:
    """The compact terminal table of a scenario run.

    Per drug, one row per arm and site with Cmax, AUC and the time above each threshold of that drug, as
    'median (5th-95th percentile)' over the virtual patients, units in the header.

    Parameters
    ----------
    res : ScenarioResult
        The run (its arms give each site's time window).
    summary : pandas.DataFrame
        ``res.summary()``: percentiles per drug, arm and site.

    Returns
    -------
    str
        The table, one line per row, blocks per drug and unit.
    """
    lines = []
    for (drug, unit), sd in summary.groupby(["drug", "unit"], sort=False, observed=True):   # arms may differ in unit
        thr = [c[: -len("_p50")] for c in sd.columns
               if c.startswith("time_above[") and c.endswith("_p50") and sd[c].notna().any()]
        cols = ["arm", "site", f"Cmax ({unit})", f"AUC ({unit}*h)"] + [
            f"time above {c[len('time_above['):-1]} (h)" for c in thr]
        rows = []
        for r in sd.itertuples(index=False):
            sub = dict(zip(sd.columns, r))
            a = res[sub["arm"]]
            window = float(a.times[-1] - a.times[0])
            rows.append([sub["arm"], sub["group"], _cell(sub, "cmax"), _cell(sub, "auc")]
                        + [_cell(sub, c, window) for c in thr])
        width = [max(len(str(x)) for x in [c] + [row[k] for row in rows]) for k, c in enumerate(cols)]
        fmt = lambda row: "  ".join(str(x).ljust(w) for x, w in zip(row, width)).rstrip()  # noqa: E731
        lines.append(f"\n{drug}: median (5th-95th percentile) over virtual patients")
        lines.append(fmt(cols))
        lines += [fmt(row) for row in rows]
    return "\n".join(lines)


def _run_figures(res, stage, warnings, obs=None, per_subject=True) -> list[str]:
    import pandas as pd

    pp = _plotting()
    if pp is None:
        warnings.append("figures skipped: matplotlib or pkcsf.plotting is not available")
        return []
    out = []
    groups = []
    for a in res.arms.values():
        for d, gs in a.groups.items():
            groups += [g for g in gs if g not in groups]
    drugs = pp.drugs_of(res)
    if len(drugs) > 1:
        # a combination: every drug drawn, one row of panels per drug
        out.append(_save_figure(stage, "concentration_time", lambda: pp.compare_drugs(res), warnings))
    else:
        out.append(_save_figure(stage, "concentration_time", lambda: pp.compare_arms(res), warnings))
    for d in drugs:
        sfx = f"_{d}" if len(drugs) > 1 else ""
        arms = [nm for nm, a in res.arms.items() if d in a.profiles]
        dgroups = [g for g in groups if any(g in res[nm].groups[d] for nm in arms)]
        if len(arms) > 1:
            csf = [g for g in dgroups if g != "plasma" and all(g in res[nm].groups[d] for nm in arms)][:5]
            csf += ["plasma"] if "plasma" in dgroups else []
            out.append(_save_figure(stage, f"arms_by_compartment{sfx}",
                                    lambda: pp.overlay_arms(res, csf, arms, drug=d), warnings))
        gsel = [g for g in ("plasma", "ventricular", "lumbar") if all(g in res[nm].groups[d] for nm in arms)] \
            or dgroups[:3]
        out.append(_save_figure(stage, f"population_bands{sfx}",
                                lambda: pp.population_bands(res, gsel, arms, drug=d,
                                                            rows="groups" if len(gsel) > len(arms) else "arms"),
                                warnings))
        if not per_subject:         # time above a threshold per subject needs the metrics table
            continue
        m = res.metrics()
        m = m[m["drug"] == d]
        if any(c.startswith("time_above[") and m[c].notna().any() for c in m.columns):
            out.append(_save_figure(stage, f"time_above{sfx}", lambda: pp.time_above(res, arms=arms, drug=d),
                                    warnings))
    if any(a.datasets for a in res.arms.values()):
        from pkcsf.plotting.gof import gof_plot, vpc_plot

        obs = res.observations() if obs is None else obs
        if obs["DV"].notna().any():
            out.append(_save_figure(stage, "goodness_of_fit", lambda: gof_plot(obs), warnings))

            def vpc():          # 200 replicates of the tables' designs, with random effects
                sims = pd.concat([a.simulate_observations(200, res.scenario.seed, d).assign(arm=nm)
                                  for nm, a in res.arms.items() for d in a.datasets], ignore_index=True)
                return vpc_plot(obs, sims)

            out.append(_save_figure(stage, "vpc", vpc, warnings))
    return [f for f in out if f]


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the sub-command(s) of this module to the ``pkcsf`` parser.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command registry of the ``pkcsf`` parser (``parser.add_subparsers()``).
    common : argparse.ArgumentParser
        The parent parser with the options every command shares (``--quiet``, ``--no-progress``...).
    """
    p = sub.add_parser(
        "run", parents=[common], formatter_class=_F, help="simulate a scenario file (TOML)",
        description=_desc("Simulate a scenario file and write its tables (metrics per subject, summary percentiles, "
                    "bands over time, targets, assumptions), references, a copy of the scenario, run.json and "
                    "figures. The file format is in docs/scenarios.md; examples are in scenarios/."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf run scenarios/methotrexate_lumbar_vs_ommaya.toml
              pkcsf run scenarios/pemetrexed_dose_levels.toml --subjects 2000 --seed 3 --out results/pem
              pkcsf run my_scenario.toml --format parquet --no-figures --quiet
              pkcsf run big.toml --subjects 10000000 --summary-only --scheduler tcp://host:8786
              pkcsf run patients.toml     # an arm with events = "patients.csv": observations.csv, nonmem.csv,
                                          # goodness_of_fit.png and vpc.png (PRED/IPRED beside DV)

            Output folder: --out, else outputs.folder of the file, else results/<file name>.
            Files of the same name in an existing folder are replaced; nothing is written on error."""))
    p.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file")
    p.add_argument("--subjects", type=_positive_int, metavar="N", help="virtual subjects per arm (overrides the file)")
    p.add_argument("--seed", type=_nonneg_int, metavar="S", help="random seed (overrides the file)")
    p.add_argument("--dt", metavar="STEP", type=_dt,
                   help="output step: hours ('0.5') or a time ('30 min'); overrides the file's dt")
    p.add_argument("--out", metavar="DIR", help="output folder (overrides outputs.folder)")
    p.add_argument("--format", choices=["csv", "parquet"], help="table format (overrides outputs.format)")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures")
    p.add_argument("--ipred", choices=["pred", "map"], default="pred",
                   help="event-table arms: IPRED = PRED (default: the patients' random effects are unknown), or "
                        "map: each patient's maximum a posteriori fit to his DV (pkcsf.clinical.individual)")
    p.add_argument("--summary-only", action="store_true",
                   help="keep the population summary, bands, targets and failures but not the per-subject metrics "
                        "table (no metrics file): bounded memory for millions of subjects (docs/scenarios.md)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="simulate the population chunks on a dask cluster (tcp://host:8786; needs "
                        "pkcsf[distributed]); results are the same as in this process")
    p.add_argument("--scratch", metavar="DIR",
                   help="with --summary-only: folder for the temporary read-out files (default: the system's "
                        "temporary folder; removed at the end)")
    p.set_defaults(func=_cmd_run)
