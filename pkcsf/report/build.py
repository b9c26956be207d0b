"""Building the report: run the scenarios and the validation, write figures, tables and the document."""
from __future__ import annotations

import datetime as _dt
import os
import platform
import time as _time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from pkcsf.clinical.scenario import CoarseGridWarning, run
from pkcsf.core.progress import progress_bar
from pkcsf.report.findings import (
    _f,
)
from pkcsf.report.html import (
    _Doc,
)
from pkcsf.report.references import references
from pkcsf.report.scenarios import (
    REPORT_SCENARIOS,
    _scenarios,
)
from pkcsf.report.sections import (
    _figures,
)


# ------------------------------------------------------------------ tables
def _write_tables(R, val, folder: Path, settings: pd.DataFrame, assumptions: pd.DataFrame, refs: pd.DataFrame):
    R["mtx_single"].summary().to_csv(folder / "methotrexate_single_dose_summary.csv", index=False)
    R["mtx_induction"].summary().to_csv(folder / "methotrexate_induction_summary.csv", index=False)
    R["pemetrexed"].summary().to_csv(folder / "pemetrexed_summary.csv", index=False)
    R["cytarabine"].summary().to_csv(folder / "cytarabine_summary.csv", index=False)
    pd.concat([R["osimertinib_linear"].summary().assign(variant="linear"),
               R["osimertinib_saturable"].summary().assign(variant="saturable")],
              ignore_index=True).to_csv(folder / "osimertinib_summary.csv", index=False)
    R["combination"].summary().to_csv(folder / "combination_summary.csv", index=False)
    bands = []
    for name, res in R.items():
        b = res.bands()
        b.insert(0, "scenario", name)
        b.insert(len(b.columns), "unit", res.unit)
        bands.append(b)
    pd.concat(bands, ignore_index=True).to_csv(folder / "population_bands.csv", index=False, float_format="%.4g")
    val.to_csv(folder / "validation.csv", index=False)
    settings.to_csv(folder / "settings.csv", index=False)
    assumptions.to_csv(folder / "assumptions.csv", index=False)
    refs.to_csv(folder / "references.csv", index=False)


def _assumptions(R) -> pd.DataFrame:
    parts = [res.assumptions() for res in R.values()]
    df = pd.concat(parts, ignore_index=True)
    return df.drop_duplicates(subset=["set", "parameter"]).reset_index(drop=True)


def _references(R) -> pd.DataFrame:
    return references(R)


def _solver_text(res) -> str:
    """Which solver 'auto' picks: exact (matrix exponential) for linear models, Rodas5P when a
    Michaelis-Menten term is active (the saturable osimertinib variant).
    """
    names = set()
    for a in res.arms.values():
        for s in a.setups.values():
            vmax = [v for k, v in s.parameters.items() if k.startswith("VMAX")]
            names.add("Rodas5P (adaptive, stiff)" if any(v > 0 for v in vmax) else "exact (matrix exponential)")
    return ", ".join(sorted(names))


def _settings(R, subjects, seed, elapsed, val_time, background=()) -> pd.DataFrame:
    import matplotlib
    import numba
    import scipy

    from pkcsf.core.version import __version__

    rows = [("pkcsf version", __version__), ("Python", platform.python_version()),
            ("numpy / scipy / numba / pandas / matplotlib",
             f"{np.__version__} / {scipy.__version__} / {numba.__version__} / {pd.__version__} / "
             f"{matplotlib.__version__}"),
            ("platform", f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU"),
            ("date", _dt.datetime.now().strftime("%Y-%m-%d %H:%M")),
            ("virtual patients per arm", str(subjects)), ("random seed", str(seed)),
            ("population", "sourced default (pkcsf.clinical.scenario.default_population): variability and covariate "
                           "effects from the drug and physiology files")]
    for name, res in R.items():
        a = next(iter(res.arms.values()))
        t = a.times
        step = float(np.median(np.diff(np.unique(t)))) if t.size > 1 else 0.0
        rows.append((f"scenario {name}", f"{REPORT_SCENARIOS[name]}; {len(res.arms)} arm(s); output step "
                                         f"{step:g} h over {t[-1] / 24:g} days; unit {res.unit}; solver "
                                         f"{res.scenario.solver} -> {_solver_text(res)}; {elapsed[name]:.1f} s"
                                         + (" (in a second process, beside the other scenarios and the first "
                                            "figures)" if name in background else "")))
    rows.append(("validation", f"pkcsf.clinical.validation.run_validation(), typical patient; {val_time:.1f} s"))
    return pd.DataFrame(rows, columns=["setting", "value"])


# ------------------------------------------------------------------ runs (one in a second process)
#: scenarios simulated in a second process while this one runs the others and draws the first figures
#: (the saturable osimertinib variant: Rodas5P on 31 states, ~20 ms per patient, most of the simulation time)
BACKGROUND = ("osimertinib_saturable",)
#: report sections drawn in the second process after its scenario (the five population-band figures:
#: ~30% of the figure time; they read only the exact-solver scenarios, finished by then)
BACKGROUND_SECTIONS = ("bands",)
#: below this many patients per arm everything runs here (a second process takes ~2-3 s to start)
BACKGROUND_MIN_SUBJECTS = 50


def _run_caught(sc):
    """``run(sc)`` with the warnings it raised recorded: (result, [(category, message, file, line)], seconds).

    Runs in this process or in the report's second process (everything it returns pickles).
    """
    t0 = _time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CoarseGridWarning)
        res = run(sc, progress=False)
    return res, [(w.category, str(w.message), w.filename, w.lineno) for w in caught], _time.perf_counter() - t0


def _start_background(scen: dict, subjects: int) -> dict:
    """Submit the BACKGROUND scenarios to one spawned worker process; {} when not worth it or not possible.

    Subject *i* depends only on the seed and *i*, so the results are identical to a run here
    (checked bit for bit on the summaries and bands).
    """
    import multiprocessing

    names = [n for n in BACKGROUND if n in scen]
    if (not names or subjects < BACKGROUND_MIN_SUBJECTS or (os.cpu_count() or 1) < 2
            or multiprocessing.parent_process() is not None or not _spawn_is_safe()):
        return {}
    from concurrent.futures import ProcessPoolExecutor

    try:
        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        out = {"pool": pool}
        for n in names:
            out[n] = pool.submit(_run_caught, scen[n])
    except (OSError, RuntimeError, ValueError):     # no second process here (sandbox, limits): run in this one
        return {}
    return out


def _spawn_is_safe() -> bool:
    """A spawned process re-imports the ``__main__`` module unless it is a package's ``__main__``
    (``python -m pkcsf``, ``python -m pytest``), an interactive session or a pkcsf module: a user's
    script without an ``if __name__ == "__main__":`` guard would run again there, so only these use
    a second process.
    """
    import sys

    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", "") or ""
    return (main is None or not getattr(main, "__file__", None) or name.endswith(".__main__")
            or name == "pkcsf" or name.startswith("pkcsf."))


def _outcome(background: dict, name: str, sc):
    """The background scenario's outcome; computed here instead if the worker could not deliver it
    (a broken or killed worker process, an unpicklable object): the numbers are the same either way.
    """
    from concurrent.futures.process import BrokenProcessPool
    from pickle import PicklingError

    try:
        return background[name].result()
    except (BrokenProcessPool, PicklingError, OSError, EOFError):
        background.pop(name, None)             # the settings table then does not say "in a second process"
        return _run_caught(sc)


def _draw_in_background(background: dict, R, folder: Path) -> dict:
    """Submit the sections of :data:`BACKGROUND_SECTIONS` to the second process (after its scenario);
    returns {section: callable giving its document blocks}, which draws the section here instead if the
    second process cannot (the figures are the same files either way).
    """
    if not background:
        return {}
    from concurrent.futures.process import BrokenProcessPool
    from pickle import PicklingError

    from pkcsf.report import sections as S

    out = {}
    for name in BACKGROUND_SECTIONS:
        needs = S.SECTION_NEEDS[name]
        try:
            fut = background["pool"].submit(S._draw_sections, (name,), {k: R[k] for k in needs}, None, folder,
                                            S._DPI)
        except (BrokenProcessPool, RuntimeError, OSError):
            continue

        def blocks(name=name, fut=fut):
            try:
                return fut.result()[name]
            except (BrokenProcessPool, PicklingError, OSError, EOFError):
                d = S._Doc()
                dict(S.SECTIONS)[name](R, None, folder, d)
                return d.blocks

        out[name] = blocks
    return out


class _Results(dict):
    """The scenario results by name, in report order; a pending one (a background run) is collected
    on first use, so figures that do not need it are drawn meanwhile.
    """

    def __init__(self):
        super().__init__()
        self._pending = {}

    def pending(self, name, get):
        self._pending[name] = get
        super().__setitem__(name, None)       # keeps the report order

    def __getitem__(self, name):
        if name in self._pending:
            super().__setitem__(name, self._pending.pop(name)())
        return super().__getitem__(name)

    def resolve(self):
        for name in list(self._pending):
            self[name]

    def values(self):
        self.resolve()
        return super().values()

    def items(self):
        self.resolve()
        return super().items()


# ------------------------------------------------------------------ build
def _progress_bar(progress, total):
    """The report's bar: the one progress bar of pkcsf (stderr), so compile notices and warnings stay visible."""
    return progress_bar(bool(progress), total=total, desc="pkcsf report", unit="step")


def _build(folder: Path, *, subjects, seed, progress, fmt) -> Path:
    import pkcsf.plotting as pp
    from pkcsf.clinical.validation import run_validation

    pp._plt()                                       # Agg when headless, before any figure
    t_start = _time.perf_counter()
    scen = _scenarios(subjects, seed)
    bar = _progress_bar(progress, len(scen) + 1 + 7 + 1)   # runs, validation, sections, files

    def tick(text=None):
        if bar is not None:
            if text:
                bar.set_postfix_str(text, refresh=False)
            bar.update(1)

    background = _start_background(scen, subjects)
    try:
        R, elapsed, grid_notes = _Results(), {}, {}

        def collect(name, outcome):
            res, caught, seconds = outcome
            for category, message, filename, lineno in caught:   # grid notes go into the report; every other
                if issubclass(category, CoarseGridWarning):      # warning is shown as usual
                    grid_notes.setdefault(name, []).append(message)
                else:
                    warnings.warn_explicit(message, category, filename, lineno)
            elapsed[name] = seconds
            tick()
            return res

        for name, sc in scen.items():
            if name in background:
                R.pending(name, lambda name=name: collect(name, _outcome(background, name, scen[name])))
                continue
            if bar is not None:
                bar.set_postfix_str(name, refresh=True)
            R[name] = collect(name, _run_caught(sc))
        remote = _draw_in_background(background, R, folder)
        if bar is not None:
            bar.set_postfix_str("validation", refresh=True)
        t0 = _time.perf_counter()
        val = run_validation()
        val_time = _time.perf_counter() - t0
        tick()

        doc = _Doc()
        doc.h(1, "pkcsf: intrathecal and CNS-penetrating drugs in the CSF, simulated")
        doc.p(f"Virtual patients per arm: **{subjects}** (seed {seed}). Concentrations are of free drug unless "
              "marked 'encapsulated'. 'Ventricular' is the lateral plus third and fourth ventricles (Ommaya "
              "site); 'lumbar' the lumbosacral sac (lumbar-puncture site and the usual sampling site); "
              "'cisterna magna', 'cranial SAS' (the subarachnoid space over the convexity) and 'cervicothoracic "
              "spinal' are the spaces between. Time 0 is the first dose. Tables give the median patient "
              "and, in brackets, the 5th–95th percentile over patients.")
        at = len(doc.blocks)          # the notes below need every result: written after the figures
        if bar is not None:
            bar.set_postfix_str("figures", refresh=True)
        _figures(R, val, folder, doc, tick, **({"remote": remote} if remote else {}))
        R.resolve()
        failed = sum(a.failed for r in R.values() for a in r.arms.values())
        intro = _Doc()
        intro.note("These are model predictions from a physiologically based CSF model calibrated to a small set of "
                   "published data (section 7). Parameter values marked as assumptions are listed in section 8; "
                   "read the numbers as a tool to compare regimens and to reason about CSF pharmacokinetics, not "
                   "as measurements." + (f" {failed} patient simulations did not finish and are excluded."
                                         if failed else ""))
        notes = [m for name in scen for m in grid_notes.get(name, [])]       # in report order
        if notes:
            intro.note("Cmax is read on each scenario's output grid; where a peak falls between output times it reads "
                       "low by the amounts below (AUCs are exact integrals and do not depend on the grid): "
                       + " ".join(notes))
        doc.blocks[at:at] = intro.blocks

        assumptions = _assumptions(R)
        refs = _references(R)
        settings = _settings(R, subjects, seed, elapsed, val_time, [n for n in background if n != "pool"])
        doc.h(2, "8. Parameter values that are assumptions", "assumptions")
        doc.p("Values with no direct published source, with the reasoning behind each (from the parameter files; "
              "`ScenarioResult.assumptions()`). Changing them changes the predictions above.")
        doc.table(assumptions.assign(value=assumptions["value"].map(_f)), "Table 9. Assumed parameter values.",
                  "assumptions.csv")
        doc.h(2, "9. References", "references")
        doc.p("Sources of the parameter values, thresholds and regimens used above (what each value is "
              "taken from is in `references.csv` and the parameter files).")
        doc.ol(list(refs["citation"]), "refs")
        doc.h(2, "10. Software and settings", "settings")
        total = _time.perf_counter() - t_start
        settings.loc[len(settings)] = ["simulation + figures time", f"{total:.1f} s"]
        doc.table(settings, "Table 10. Software, settings and run times.", "settings.csv")
        doc.h(2, "Files", "files")
        doc.ul(["`*.png`: the figures above (click a figure to open it full size)",
                "`*_summary.csv`: population percentiles (5th, 50th, 95th) of every read-out per arm, drug and "
                "compartment (pkcsf `ScenarioResult.summary()`; concentrations in the scenario unit, AUC in unit·h, "
                "times in h)",
                "`population_bands.csv`: the bands of the figures (scenario, arm, drug, compartment, time in h, "
                "p5, p50, p95, typical)",
                "`route_comparison_interval.csv`: the lumbar/Ommaya comparison with the calibration's parameter "
                "uncertainty (Table 2b)",
                "`validation.csv`, `assumptions.csv`, `references.csv`, `settings.csv`"])
        _write_tables(R, val, folder, settings, assumptions, refs)
        tick()
        if fmt == "html":
            path = folder / "report.html"
            path.write_text(doc.html("pkcsf report"), encoding="utf-8")
        else:
            path = folder / "report.md"
            path.write_text(doc.markdown(), encoding="utf-8")
        return path
    finally:
        if background:
            background["pool"].shutdown(wait=False, cancel_futures=True)
        if bar is not None:
            bar.close()
