"""``pkcsf run``: simulate a scenario file and write its tables and figures."""
from __future__ import annotations

import json
import shutil
import sys
import textwrap
import time
from dataclasses import replace

from pkcsf.core.errors import ScenarioError

from pkcsf.cli._util import PROG, _F, _Staging, _write_table, _check_format, _bars, _save_figure, _plotting, _positive_int, _nonneg_int, _version, _scenario_refs, _desc


def _cmd_run(args) -> int:
    import pandas as pd

    from pkcsf.clinical.scenario import run
    from pkcsf.clinical.scenario_file import load_scenario

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
    if changes:
        scn = replace(scn, **changes)
    fmt = args.format or out.format
    _check_format(fmt, "--format" if args.format else "outputs.format")
    figures = out.figures and not args.no_figures
    folder = args.out if args.out is not None else out.folder
    warnings: list[str] = []
    t0 = time.perf_counter()
    with _Staging(folder, "--out" if args.out is not None else "outputs.folder") as stage:
        res = run(scn, progress=_bars(args))
        written = []
        written.append(_write_table(res.metrics(), stage, "metrics", fmt))
        summary = res.summary()
        written.append(_write_table(summary, stage, "summary", fmt))
        written.append(_write_table(res.bands(), stage, "bands", fmt))
        targets = res.targets()
        written.append(_write_table(targets, stage, "targets", fmt))
        written.append(_write_table(res.assumptions(), stage, "assumptions", fmt))
        refs = _scenario_refs(scn, out)
        stage.path("references.txt").write_text("\n".join(refs) + "\n", encoding="utf-8")
        written.append("references.txt")
        shutil.copyfile(args.scenario, stage.path("scenario.toml"))
        written.append("scenario.toml")
        if figures:
            written += _run_figures(res, stage, warnings)
        failed = {name: a.failed for name, a in res.arms.items()}
        manifest = {
            "command": "pkcsf " + " ".join(args.argv), "scenario": str(args.scenario), "name": scn.name,
            "pkcsf_version": _version(), "subjects": scn.subjects, "seed": scn.seed, "unit": scn.unit,
            "arms": {a.name: out.arm_regimens.get(a.name, "") for a in scn.arms},
            "failed_subjects": failed, "elapsed_s": round(res.elapsed, 3), "format": fmt,
            "files": written + ["run.json"], "warnings": warnings,
        }
        stage.path("run.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        target = stage.commit()
    for w in warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if any(failed.values()):
        print(f"{PROG}: warning: failed solves (subjects) per arm: {failed}", file=sys.stderr)
    if not args.quiet:
        cols = [c for c in ("arm", "drug", "group", "unit", "cmax_p50", "auc_p50") if c in summary.columns]
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(f"{scn.name}: {scn.subjects} subjects per arm, seed {scn.seed}, {res.elapsed:.1f} s")
            print(summary[cols].to_string(index=False, float_format=lambda x: f"{x:.4g}"))
            if len(targets):
                print()
                print(targets.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
            print(f"\nwrote {len(written) + 1} files to {target} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _run_figures(res, stage, warnings) -> list[str]:
    pp = _plotting()
    if pp is None:
        warnings.append("figures skipped: matplotlib or pkcsf.plotting is not available")
        return []
    out = []
    groups = []
    for a in res.arms.values():
        for d, gs in a.groups.items():
            groups += [g for g in gs if g not in groups]
    if hasattr(pp, "compare_arms"):
        out.append(_save_figure(stage, "concentration_time", lambda: pp.compare_arms(res), warnings))
    if len(res.arms) > 1 and hasattr(pp, "overlay_arms"):
        csf = [g for g in groups if g != "plasma"][:5] + (["plasma"] if "plasma" in groups else [])
        out.append(_save_figure(stage, "arms_by_compartment", lambda: pp.overlay_arms(res, csf), warnings))
    if hasattr(pp, "population_bands"):
        gsel = [g for g in ("plasma", "ventricular", "lumbar") if g in groups] or groups[:3]
        out.append(_save_figure(stage, "population_bands", lambda: pp.population_bands(res, gsel), warnings))
    has_thr = any(c.startswith("time_above[") for c in res.metrics().columns)
    if has_thr and hasattr(pp, "time_above"):
        out.append(_save_figure(stage, "time_above", lambda: pp.time_above(res), warnings))
    return [f for f in out if f]


def register(sub, common) -> None:
    """Add the sub-command(s) of this module to the ``pkcsf`` parser."""
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

            Output folder: --out, else outputs.folder of the file, else results/<file name>.
            Files of the same name in an existing folder are replaced; nothing is written on error."""))
    p.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file")
    p.add_argument("--subjects", type=_positive_int, metavar="N", help="virtual subjects per arm (overrides the file)")
    p.add_argument("--seed", type=_nonneg_int, metavar="S", help="random seed (overrides the file)")
    p.add_argument("--out", metavar="DIR", help="output folder (overrides outputs.folder)")
    p.add_argument("--format", choices=["csv", "parquet"], help="table format (overrides outputs.format)")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures")
    p.set_defaults(func=_cmd_run)
