"""The ``pkcsf`` command line.

::

    pkcsf report                                   # built-in scenarios: figures + tables (report/)
    pkcsf run scenarios/methotrexate_lumbar_vs_ommaya.toml --subjects 2000 --out results/mtx
    pkcsf escalate pemetrexed --doses 10,20,30,40,50 --design 3+3 --trials 2000
    pkcsf validate --out validation/
    pkcsf drugs | pkcsf models | pkcsf cite --drug pemetrexed

Conventions (docs/cli.md):

* bad input (a malformed or misspelled scenario, an unknown drug or route, a
  dose with the wrong unit, an output folder that cannot be written ...)
  prints **one line** ``pkcsf: error: <what> (<fix>)`` on stderr and exits
  with code 2; an unexpected failure prints its traceback and exits with 1;
* nothing is ever half-written: results go to a temporary folder next to the
  output folder and are moved into place only when everything succeeded.
  Into an existing folder, files of the same name are replaced and other
  files are left alone;
* progress bars (tqdm, on stderr) for long runs; ``--quiet`` turns them and
  the printed tables off.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
import traceback
from dataclasses import replace
from pathlib import Path

from pkcsf.core.errors import PkcsfError, ScenarioError

__all__ = ["main", "build_parser"]

PROG = "pkcsf"


# ------------------------------------------------------------------ errors
class _UsageError(Exception):
    """An argparse error, reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + error and exits; we want one line and exit 2
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


# ------------------------------------------------------------------ output folders
class _Staging:
    """A temporary folder next to ``target``; :meth:`commit` moves its files into ``target``.

    Checked at creation: the target is not a file, its nearest existing
    ancestor is a writable folder. Nothing is created at ``target`` before
    :meth:`commit`; :meth:`discard` (on any error) removes the temporary folder.
    """

    def __init__(self, target, field: str = "--out"):
        self.target = Path(os.path.abspath(os.path.expanduser(str(target))))
        t = self.target
        if t.exists() and not t.is_dir():
            raise ScenarioError(field, str(target), "exists and is a file, not a folder",
                                "choose another output folder")
        anc = t.parent
        while not anc.exists():
            anc = anc.parent
        if not anc.is_dir():
            raise ScenarioError(field, str(target), f"cannot be created: {anc} is a file",
                                "choose an output folder whose parents are folders")
        if not os.access(anc, os.W_OK | os.X_OK):
            raise ScenarioError(field, str(target), f"cannot be written: no write permission in {anc}",
                                "choose a folder you can write to")
        try:
            self.tmp = Path(tempfile.mkdtemp(prefix=f".{t.name or 'out'}.pkcsf-tmp-", dir=anc))
        except OSError as e:
            raise ScenarioError(field, str(target), f"cannot be written: {e.strerror or e}",
                                "choose a folder you can write to") from None
        self.files: list[str] = []

    def path(self, name: str) -> Path:
        p = self.tmp / name
        p.parent.mkdir(parents=True, exist_ok=True)
        self.files.append(name)
        return p

    def commit(self) -> Path:
        t = self.target
        if not t.exists():
            t.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.tmp, t)
        else:
            _merge(self.tmp, t)
            shutil.rmtree(self.tmp, ignore_errors=True)
        return t

    def discard(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            self.discard()
        return False


def _merge(src: Path, dst: Path):
    for entry in src.iterdir():
        d = dst / entry.name
        if entry.is_dir() and d.is_dir():
            _merge(entry, d)
        else:
            if d.is_dir():
                shutil.rmtree(d)
            os.replace(entry, d)


def _write_table(df, stage: _Staging, stem: str, fmt: str) -> str:
    name = f"{stem}.{fmt}"
    if fmt == "parquet":
        df.to_parquet(stage.path(name), index=False)
    else:
        df.to_csv(stage.path(name), index=False)
    return name


def _check_format(fmt: str, field="--format"):
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            try:
                import fastparquet  # noqa: F401
            except ImportError:
                raise ScenarioError(field, fmt, "parquet needs pyarrow, which is not installed",
                                    "pip install pyarrow, or use --format csv") from None


def _bars(args) -> bool:
    """Progress bars: on a terminal, unless --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _say(args, *lines):
    if not getattr(args, "quiet", False):
        for ln in lines:
            print(ln)


def _save_figure(stage, name, make, warnings):
    """Draw with ``make()`` (returns Axes or an array of Axes) and save; a plotting failure is a warning."""
    try:
        import numpy as np

        axes = make()
        ax = np.asarray(axes, dtype=object).ravel()[0]
        fig = ax.figure
        fig.savefig(stage.path(f"figures/{name}.png"), dpi=130, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return f"figures/{name}.png"
    except Exception as e:  # plotting is optional: the tables are the result
        warnings.append(f"figure {name} skipped: {type(e).__name__}: {_one_line(e)}")
        if "figures/" + name + ".png" in stage.files:
            stage.files.remove("figures/" + name + ".png")
        return None


def _plotting():
    try:
        import matplotlib

        if not os.environ.get("MPLBACKEND"):
            matplotlib.use("Agg")
        import pkcsf.plotting as plotting
    except ImportError:
        return None
    return plotting


# ------------------------------------------------------------------ commands
def _cmd_report(args) -> int:
    try:
        from pkcsf.report import build_report
    except ImportError as e:
        print(f"{PROG}: error: the report builder (pkcsf.report) is not available in this installation: {e}",
              file=sys.stderr)
        return 1
    import inspect

    kwargs = {"progress": _bars(args), "fmt": args.format}
    if args.subjects is not None:
        kwargs["subjects"] = args.subjects
    if args.seed is not None:
        kwargs["seed"] = args.seed
    params = inspect.signature(build_report).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    t0 = time.perf_counter()
    with _Staging(args.out) as stage:
        try:
            made = build_report(stage.tmp, **kwargs)
        except PkcsfError as e:
            opt = {"fmt": "--format", "subjects": "--subjects", "seed": "--seed"}.get(e.field)
            if opt is None:
                raise
            raise ScenarioError(opt, e.value, e.allowed, e.fix) from None
        rel = None
        if made is not None:
            try:
                rel = Path(made).resolve().relative_to(stage.tmp.resolve())
            except ValueError:
                rel = None
        target = stage.commit()
    where = target / rel if rel is not None else target
    _say(args, f"report written to {where} ({time.perf_counter() - t0:.1f} s)")
    return 0


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


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


def _version() -> str:
    from pkcsf.core.version import __version__

    return __version__


def _model_refs(setup) -> list[str]:
    return [f"model {setup.model.name}: {r}" for r in getattr(setup.model, "references", ())]


def _setup_refs(setup, population=None) -> list[str]:
    """Model, parameter-set and population references of one setup.

    ``Setup.cite()`` lists the sources of values and thresholds; the sources of
    the between-subject variability, of the covariate effects and of the
    demographics are added here (they shape every population run too).
    """
    from pkcsf.clinical.parameters import SPECIAL_SOURCES

    refs = _model_refs(setup) + list(setup.cite())
    for ps in setup.sets:
        keys = [v.source for v in getattr(ps, "variability", {}).values()]
        keys += [getattr(e, "source", "") for e in getattr(ps, "covariates", {}).values()]
        for k in keys:
            if k in ps.references:
                refs.append(f"[{k}] {ps.references[k]}")
            elif k and k not in SPECIAL_SOURCES and k != "user":
                refs.append(k)
    demo = getattr(population, "demographics", None)
    for k, v in (getattr(demo, "sources", None) or {}).items():
        refs.append(f"[{k}] {v}")
    out = []
    for r in refs:
        if r not in out:
            out.append(r)
    return out


def _scenario_refs(scn, out=None) -> list[str]:
    """References behind a scenario: models, parameter sets, population and the named regimens used."""
    from pkcsf.clinical import cns
    from pkcsf.clinical.regimens import REGIMEN_SOURCES
    from pkcsf.clinical.scenario import population_for as _population_for

    refs = []
    for arm in scn.arms:
        for d in _arm_drugs(arm):
            s = cns.setup(d, physiology=scn.physiology, variant=arm.variant, pathologies=scn.pathologies,
                          age=scn.age, metabolite=arm.metabolite)
            try:
                pop = _population_for(scn, s)
            except PkcsfError:
                pop = None
            refs += [r for r in _setup_refs(s, pop) if r not in refs]
    if out is not None:
        for text in out.arm_regimens.values():
            name = text.split("(", 1)[0]
            r = f"regimen {name}: {REGIMEN_SOURCES[name]}" if name in REGIMEN_SOURCES else None
            if r and r not in refs:
                refs.append(r)
    return refs


def _arm_drugs(arm) -> list[str]:
    from pkcsf.clinical import cns
    from pkcsf.clinical.scenario import _as_regimen

    reg = _as_regimen(arm.regimen, arm.drug, "regimen")
    out = []
    for dz in reg.doses:
        d = cns.drug(dz.drug or arm.drug).name
        if d not in out:
            out.append(d)
    return out


def _parse_iiv(text):
    if text is None:
        return None
    out = {}
    for part in [p for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise ScenarioError("--iiv", text, "must be PARAMETER=CV pairs separated by commas", "e.g. --iiv CL=0.3,V1=0.2")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise ScenarioError("--iiv", part, "the CV must be a number (a fraction: 0.3 = 30 %)") from None
    return out


def _cmd_escalate(args) -> int:
    import numpy as np
    import pandas as pd

    from pkcsf.trials import designs as T
    from pkcsf.clinical.escalation import simulate_escalation

    design = args.design
    dkw = {}
    if args.target_dlt is not None:
        dkw["target"] = args.target_dlt
    if args.max_n is not None:
        dkw["max_n"] = args.max_n
    if dkw:
        key = design.strip().lower()
        if key == "3+3":
            raise ScenarioError("--target-dlt/--max-n", dkw, "apply to boin and crm only (3+3 has fixed rules)")
        if key in T.DESIGNS:
            design = T.DESIGNS[key](**dkw)
    link = None
    if args.e50 is not None:
        if args.mtd_dose is not None:
            raise ScenarioError("--e50", args.e50, "give either --e50 (your own link) or --mtd-dose, not both")
        link = T.LogisticExposureToxicity(args.e50, args.slope if args.slope is not None else T.DEFAULT_SLOPE,
                                          source="user", note="given on the command line")
    if args.out is not None:
        _check_format(args.format)
    stage = _Staging(args.out) if args.out is not None else None
    warnings: list[str] = []
    try:
        kw = dict(route=args.route, design=design, exposure=args.exposure, link=link, mtd_dose=args.mtd_dose,
                  efficacy=args.efficacy, subjects=args.subjects, trials=args.trials, seed=args.seed,
                  days=args.days, unit=args.unit, iiv=_parse_iiv(args.iiv), variant=args.variant,
                  progress=_bars(args))
        if args.schedule is not None:
            kw["schedule"] = args.schedule
        if args.p_at_mtd is not None:
            kw["p_at_mtd"] = args.p_at_mtd
        if args.slope is not None and link is None:
            kw["slope"] = args.slope
        res = simulate_escalation(args.drug, args.doses, **kw)
        summary = res.summary()
        if stage is not None:
            fmt = args.format
            files = [_write_table(summary, stage, "escalation_summary", fmt),
                     _write_table(res.exposure_frame(), stage, "exposures", fmt),
                     _write_table(res.trials.per_trial(), stage, "trials", fmt)]
            stage.path("references.txt").write_text("\n".join(res.cite()) + "\n", encoding="utf-8")
            files.append("references.txt")
            pp = _plotting()
            if pp is not None and hasattr(pp, "escalation"):
                lk = res.link if isinstance(res.link, T.LogisticExposureToxicity) else None
                f = _save_figure(stage, "escalation", lambda: pp.escalation(
                    {res.trials.design.split(" (")[0]: res}, exposures=res, exposure_label=res.exposure.label,
                    exposure_unit=res.exposure_unit, link=lk), warnings)
                if f:
                    files.append(f)
            prov = dict(res.provenance)
            prov.update(command="pkcsf " + " ".join(args.argv), notes=list(summary.attrs["notes"]),
                        p_none=res.trials.p_none, mean_trial_size=res.trials.mean_trial_size,
                        files=files + ["escalation.json"], warnings=warnings)
            stage.path("escalation.json").write_text(json.dumps(prov, indent=2, default=_json_default) + "\n",
                                                     encoding="utf-8")
            target = stage.commit()
    except BaseException:
        if stage is not None:
            stage.discard()
        raise
    for w in warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if not args.quiet:
        a = summary.attrs
        print(f"{res.drug} by {res.route}, doses {', '.join(f'{d:g}' for d in res.doses)} mg")
        print(f"design: {a['design']}; {a['n_trials']} virtual trials; mean trial size {a['mean_trial_size']:.1f}; "
              f"P(no dose selected) {a['p_none']:.3f}")
        print(f"exposure: {a['exposure']} ({a['exposure_unit']}); pool of {args.subjects} virtual patients per dose")
        print(f"link: {a['link']}")
        if a.get("efficacy"):
            print(f"efficacy target: {a['efficacy']}")
        show = summary.copy()
        show["dose"] = [f"{d:g} mg" if np.isfinite(d) else "none" for d in show["dose"]]
        show = show.drop(columns=["level", "p_select_se"])
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(show.to_string(index=False, float_format=lambda x: f"{x:.3g}", na_rep="-"))
        for n in a["notes"]:
            print(textwrap.fill("note: " + n, width=110, subsequent_indent="  "))
        p = res.provenance
        print(f"time: exposure pools {p['pk_seconds']:.2f} s, trials {p['trial_seconds']:.3f} s")
        if stage is not None:
            print(f"wrote {len(files) + 1} files to {target}")
    return 0


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _cmd_validate(args) -> int:
    import numpy as np
    import pandas as pd

    from pkcsf.clinical.validation import run_validation, write_validation_report

    stage = _Staging(args.out) if args.out is not None else None
    try:
        table = run_validation()
        if stage is not None:
            write_validation_report(stage.tmp, table)
            target = stage.commit()
    except BaseException:
        if stage is not None:
            stage.discard()
        raise
    if not args.quiet:
        cols = ["id", "drug", "variant", "quantity", "observed", "predicted", "unit", "fold_error", "status"]
        with pd.option_context("display.width", 200, "display.max_rows", 1000, "display.max_colwidth", 40):
            print(table[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        judged = table[~table["status"].str.startswith("not judged")]
        fe = judged["fold_error"].to_numpy(dtype=float)
        ok = np.isfinite(fe) & (fe > 0)
        gm = float(np.exp(np.mean(np.abs(np.log(fe[ok]))))) if ok.any() else float("nan")
        print(f"\n{len(judged)} judged points: {int(judged['within_2fold'].sum())} within 2-fold, "
              f"{int(judged['within_1_5fold'].sum())} within 1.5-fold; geometric mean fold error {gm:.2f}; "
              f"{int(judged['status'].str.startswith('FAIL').sum())} failures "
              f"({int((judged['status'] == 'FAIL (flagged)').sum())} flagged with a hypothesis)")
        if stage is not None:
            print(f"wrote validation.csv and validation.png to {target}")
    return 0


def _cmd_drugs(args) -> int:
    from pkcsf.clinical import cns
    from pkcsf.core.units import concentration_factor

    names = cns.available_drugs()
    if args.name:
        from pkcsf.core.errors import check_choice

        check_choice("drug", args.name.lower(), names, ScenarioError)
        names = [args.name.lower()]
    for i, n in enumerate(names):
        d = cns.drug(n)
        print(f"{d.name}: {d.form} form, MW {d.mw:g} g/mol")
        print(f"  routes: {', '.join(d.routes)}; CSF efflux variants: {', '.join(d.variants)}")
        if d.thresholds:
            thr = "; ".join(f"{k} {v:.4g} mg/L = {v * concentration_factor('umol/L', d.mw):.4g} umol/L"
                            for k, v in d.thresholds.items())
            print(f"  thresholds: {thr}")
        else:
            print("  thresholds: none sourced")
        if d.parameters.description:
            print(textwrap.fill(d.parameters.description, width=110, initial_indent="  ", subsequent_indent="  "))
        if not args.brief:
            print("  sources:")
            for r in d.sources:
                print(textwrap.fill(r, width=110, initial_indent="    - ", subsequent_indent="      "))
        if i < len(names) - 1:
            print()
    return 0


def _cmd_models(args) -> int:
    from pkcsf.engine.model import available_models, load_model

    models = available_models()
    names = sorted(models)
    if args.name:
        from pkcsf.core.errors import check_choice

        check_choice("model", args.name, names, ScenarioError)
        names = [args.name]
    for i, n in enumerate(names):
        m = load_model(n)
        print(f"{m.name}: {len(m.compartments)} compartments, {len(m.transfers)} transfers, "
              f"{len(m.parameters)} parameters ({models[n]})")
        print(textwrap.fill("compartments: " + ", ".join(m.compartment_names), width=110, initial_indent="  ",
                            subsequent_indent="    "))
        print(textwrap.fill("dosing sites: " + "; ".join(f"{s.name} -> {_site_targets(s)}" for s in m.sites),
                            width=110, initial_indent="  ", subsequent_indent="    "))
        if m.description and not args.brief:
            print(textwrap.fill(" ".join(m.description.split()), width=110, initial_indent="  ",
                                subsequent_indent="  "))
        if i < len(names) - 1:
            print()
    return 0


def _site_targets(site) -> str:
    """'spinal_lumbar (1 - F_LEAK), epidural (F_LEAK)' or 'plasma'."""
    parts = []
    for comp, frac in site.targets:
        parts.append(comp if str(frac) in ("1", "1.0") else f"{comp} ({frac})")
    return ", ".join(parts)


def _cmd_cite(args) -> int:
    from pkcsf.clinical import cns

    if (args.scenario is None) == (args.drug is None):
        raise ScenarioError("cite", args.scenario or args.drug, "give a scenario file or --drug NAME (one of them)",
                            "e.g. pkcsf cite scenarios/pemetrexed_dose_levels.toml, or pkcsf cite --drug pemetrexed")
    refs = []
    if args.scenario is not None:
        from pkcsf.clinical.scenario_file import load_scenario

        scn, out = load_scenario(args.scenario)
        refs = _scenario_refs(scn, out)
        head = f"References behind {args.scenario} ({scn.name}):"
    else:
        from pkcsf.core.errors import check_choice

        name = check_choice("--drug", args.drug.lower(), cns.available_drugs(), ScenarioError)
        variant = args.variant
        s = cns.setup(name, variant=variant)
        from pkcsf.clinical.scenario import default_population

        refs = _setup_refs(s, default_population(s))
        head = f"References behind {name} ({variant} CSF efflux, adult physiology):"
    print(head)
    for r in refs:
        print(textwrap.fill(r, width=110, initial_indent="- ", subsequent_indent="  "))
    return 0


# ------------------------------------------------------------------ parser
_F = argparse.RawDescriptionHelpFormatter


def _desc(text: str) -> str:
    """Paragraphs filled to 90 columns (RawDescriptionHelpFormatter keeps the epilog's layout as written)."""
    return "\n\n".join(textwrap.fill(" ".join(par.split()), width=90) for par in text.split("\n\n"))


def _common():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no printed tables")
    return p


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog=PROG, formatter_class=_F,
        description=_desc("Simulate how drugs reach and leave the cerebrospinal fluid (leptomeningeal metastases): "
                    "scenarios, reports, virtual dose-escalation trials, validation."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf report                                     # built-in scenarios -> report/
              pkcsf run scenarios/methotrexate_lumbar_vs_ommaya.toml --subjects 500 --out results/mtx
              pkcsf escalate pemetrexed --doses 10,20,30,40,50 --design 3+3 --trials 2000
              pkcsf validate --out validation/
              pkcsf drugs
              pkcsf cite --drug pemetrexed

            Run 'pkcsf COMMAND --help' for the options of a command; docs/cli.md has them all.
            Bad input prints one line 'pkcsf: error: ...' and exits with code 2."""))
    parser.add_argument("--version", action="version", version=f"pkcsf {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser(
        "report", parents=[common], formatter_class=_F, help="build the report of the built-in scenarios",
        description=_desc("Run the built-in scenarios (methotrexate lumbar vs Ommaya, pemetrexed dose levels, "
                    "liposomal vs free cytarabine, osimertinib 80 vs 160 mg, osimertinib + IT pemetrexed, "
                    "validation, escalation) and write a report a clinician can read: report.html, PNG figures "
                    "and CSV tables."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf report                              # writes report/report.html
              pkcsf report --out /tmp/lm-report --subjects 2000 --seed 7
              pkcsf report --quiet"""))
    p.add_argument("--out", default="report", metavar="DIR", help="output folder (default: report/)")
    p.add_argument("--subjects", type=_positive_int, metavar="N",
                   help="virtual subjects per arm (default: the report's own)")
    p.add_argument("--seed", type=_nonneg_int, metavar="S", help="random seed (default: the report's own)")
    p.add_argument("--format", default="html", metavar="FMT", help="report format: html (default) or md")
    p.set_defaults(func=_cmd_report)

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

    p = sub.add_parser(
        "escalate", parents=[common], formatter_class=_F, help="virtual dose-escalation trials driven by the PK",
        description=_desc("Simulate exposure pools (one Scenario per dose level, the same virtual patients at every dose), "
                    "link exposure to DLT probability and run virtual 3+3, BOIN or CRM trials. Prints the operating "
                    "characteristics per dose: P(selected), expected patients treated, expected DLTs, DLT rate, "
                    "exposure percentiles and efficacy attainment.\n\n"
                    "Default link: logistic in log exposure, P(DLT) = 0.30 at the median exposure of the dose the "
                    "literature calls the MTD (pemetrexed by lumbar puncture: 10 mg, Pan et al. 2019), slope 2 "
                    "(odds x4 per doubling of exposure). It is an assumption: give --mtd-dose, or --e50/--slope, "
                    "from your own data."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf escalate pemetrexed --doses 10,20,30,40,50
              pkcsf escalate pemetrexed --doses 10,20,30,40,50 --design boin --trials 5000 --out results/esc
              pkcsf escalate pemetrexed --doses 10,15,20,30 --exposure lumbar:cmax --iiv CL=0.3
              pkcsf escalate methotrexate --doses 6,9,12,15 --route ommaya --mtd-dose 12 \\
                  --schedule "twice weekly x 4 weeks" --efficacy "ventricular:time_above[1 umol/L] >= 48 h"

            --exposure GROUP:METRIC; GROUP one of plasma, ventricular, cisternal, cranial_sas, spinal, lumbar,
            brain_ecf; METRIC one of cmax, auc, trough_end, time_above[THRESHOLD], longest_above[THRESHOLD]."""))
    p.add_argument("drug", metavar="DRUG", help="drug name (see 'pkcsf drugs')")
    p.add_argument("--doses", required=True, metavar="D1,D2,...", help="dose levels in mg, increasing (e.g. 10,20,30)")
    p.add_argument("--route", default="lumbar", help="lumbar (default), ommaya, intracisternal, iv or oral")
    p.add_argument("--schedule", metavar="TEXT",
                   help="schedule without dose and route (default: 'twice weekly x 2 weeks, then weekly x 4 weeks')")
    p.add_argument("--design", default="3+3", help="3+3 (default), boin or crm")
    p.add_argument("--target-dlt", type=float, metavar="P", help="target DLT rate of boin/crm (default 0.30)")
    p.add_argument("--max-n", type=_positive_int, metavar="N", help="maximum sample size of boin/crm (default 30)")
    p.add_argument("--trials", type=_positive_int, default=2000, metavar="N", help="virtual trials (default 2000)")
    p.add_argument("--subjects", type=_positive_int, default=500, metavar="N",
                   help="virtual patients per dose pool (default 500)")
    p.add_argument("--exposure", default="plasma:auc", metavar="GROUP:METRIC",
                   help="exposure driving toxicity (default plasma:auc)")
    p.add_argument("--mtd-dose", metavar="MG", help="dose (mg) the literature calls the MTD: anchors the default link")
    p.add_argument("--p-at-mtd", type=float, metavar="P", help="DLT probability at the MTD exposure (default 0.30)")
    p.add_argument("--slope", type=float, metavar="S", help="logistic slope per log unit of exposure (default 2)")
    p.add_argument("--e50", type=float, metavar="E", help="your own link: exposure with 50%% DLT probability")
    p.add_argument("--efficacy", metavar="TARGET", help="per-patient target, e.g. 'lumbar:time_above[0.1 umol/L] >= 48 h'")
    p.add_argument("--iiv", metavar="P=CV,...", help="extra between-subject variability, e.g. CL=0.3,V1=0.2")
    p.add_argument("--variant", default="linear", help="CSF efflux variant (osimertinib: linear or saturable)")
    p.add_argument("--unit", default="umol/L", help="concentration unit of the exposures (default umol/L)")
    p.add_argument("--days", type=float, metavar="D", help="simulated days (default: 7 days after the last dose)")
    p.add_argument("--seed", type=_nonneg_int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="write tables, figure and escalation.json to this folder")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format (default csv)")
    p.set_defaults(func=_cmd_escalate)

    p = sub.add_parser(
        "validate", parents=[common], formatter_class=_F, help="compare the model with published observations",
        description=_desc("Simulate every published observation of parameters/validation/observations.csv and print "
                    "the fold error (predicted/observed) of each; with --out also write validation.csv and the "
                    "predicted-vs-observed plot validation.png."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf validate
              pkcsf validate --out validation/"""))
    p.add_argument("--out", metavar="DIR", help="write validation.csv and validation.png here")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser(
        "drugs", parents=[common], formatter_class=_F, help="list the drugs with routes, MW, thresholds, sources",
        description=_desc("List every drug and formulation: form, molecular weight, routes, CSF efflux variants, "
                    "cytotoxic thresholds (mg/L and umol/L) and the sources of its parameters."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf drugs
              pkcsf drugs pemetrexed
              pkcsf drugs --brief"""))
    p.add_argument("name", nargs="?", metavar="DRUG", help="only this drug")
    p.add_argument("--brief", action="store_true", help="without the sources")
    p.set_defaults(func=_cmd_drugs)

    p = sub.add_parser(
        "models", parents=[common], formatter_class=_F, help="list the models with compartments and sites",
        description=_desc("List the compartmental models found in models/ (and user paths): compartments, dosing "
                    "sites and description."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf models
              pkcsf models cns_csf_liposomal"""))
    p.add_argument("name", nargs="?", metavar="MODEL", help="only this model")
    p.add_argument("--brief", action="store_true", help="without the descriptions")
    p.set_defaults(func=_cmd_models)

    p = sub.add_parser(
        "cite", parents=[common], formatter_class=_F, help="references behind a scenario or a drug",
        description=_desc("Print the references behind a run: the model, every parameter set used (drug, physiology, "
                    "pathologies) and the named regimens' sources."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf cite scenarios/osimertinib_80_vs_160.toml
              pkcsf cite --drug pemetrexed
              pkcsf cite --drug osimertinib --variant saturable"""))
    p.add_argument("scenario", nargs="?", metavar="SCENARIO.toml", help="a scenario file")
    p.add_argument("--drug", metavar="NAME", help="a drug instead of a scenario")
    p.add_argument("--variant", default="linear", help="CSF efflux variant with --drug (default linear)")
    p.set_defaults(func=_cmd_cite)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``pkcsf`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except PkcsfError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (nothing was written)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'pkcsf drugs | head'
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception:  # unexpected: show where
        traceback.print_exc()
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
