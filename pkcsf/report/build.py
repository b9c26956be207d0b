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
def _csv_field(v: str) -> str:
    # csv.QUOTE_MINIMAL, as pandas writes: quoted when it holds the separator, a quote or a line break
    return '"' + v.replace('"', '""') + '"' if any(c in v for c in ',"\r\n') else v


def write_csv(df: pd.DataFrame, path: Path, float_format: str, formats: dict[str, str] | None = None) -> None:
    """``df.to_csv(path, index=False, float_format=float_format)``, the same bytes, ~4x faster.

    pandas formats a float column value by value through several layers (0.7 s of the report for the
    100,000-row band table); here each column is formatted in one pass and the rows joined.

    Parameters
    ----------
    df : DataFrame
        The table (float, integer, boolean and text columns).
    path : Path
        The CSV file.
    float_format : str
        ``%``-format of float values (``"%.4g"``); NaN is written as an empty field.
    formats : dict of str to str, optional
        Another ``%``-format for some float columns (``{"time": "%.12g"}``).
    """
    cols = [_csv_field(str(c)) for c in df.columns]
    body = []
    for c in df.columns:
        s = df[c]
        if pd.api.types.is_float_dtype(s.dtype):
            fmt = (formats or {}).get(c, float_format).__mod__
            body.append([fmt(v) if v == v else "" for v in s.to_numpy(dtype=float).tolist()])
        elif pd.api.types.is_integer_dtype(s.dtype) and not s.hasnans:
            body.append([str(v) for v in s.to_numpy().tolist()])
        elif pd.api.types.is_string_dtype(s.dtype) or isinstance(s.dtype, pd.CategoricalDtype):
            codes, uniques = pd.factorize(s, use_na_sentinel=True)      # each distinct text formatted once
            text = [_csv_field(str(v)) for v in uniques] + [""]          # code -1 (missing): empty
            body.append([text[k] for k in codes.tolist()])
        else:                                    # boolean, mixed objects: as pandas prints them
            body.append([_csv_field(str(v)) if not (v is None or v is pd.NA or (isinstance(v, float) and v != v))
                         else "" for v in s.astype(object).tolist()])
    lines = [",".join(cols)]
    lines.extend(",".join(row) for row in zip(*body))
    with open(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(os.linesep.join(lines) + os.linesep)           # pandas' line end


def _write_tables(R, val, folder: Path, settings: pd.DataFrame, assumptions: pd.DataFrame, refs: pd.DataFrame):
    R["mtx_single"].summary().to_csv(folder / "methotrexate_single_dose_summary.csv", index=False)
    R["mtx_induction"].summary().to_csv(folder / "methotrexate_induction_summary.csv", index=False)
    R["pemetrexed"].summary().to_csv(folder / "pemetrexed_summary.csv", index=False)
    R["cytarabine"].summary().to_csv(folder / "cytarabine_summary.csv", index=False)
    pd.concat([R["osimertinib_linear"].summary().assign(variant="linear"),
               R["osimertinib_saturable"].summary().assign(variant="saturable")],
              ignore_index=True).to_csv(folder / "osimertinib_summary.csv", index=False)
    R["combination"].summary().to_csv(folder / "combination_summary.csv", index=False)
    R["trastuzumab"].summary().to_csv(folder / "trastuzumab_summary.csv", index=False)
    bands = []
    for name, res in R.items():
        b = res.bands()
        b.insert(0, "scenario", name)
        b.insert(len(b.columns), "unit", res.unit)
        bands.append(b)
    # concentrations to 4 significant digits; times in full (at 4 digits 100.25 h read 100.2 and 1315.5 h
    # read 1316, the next output time: 6,496 rows of the pemetrexed and combination bands)
    write_csv(pd.concat(bands, ignore_index=True), folder / "population_bands.csv", float_format="%.4g",
              formats={"time": "%.12g"})
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


def _settings(R, subjects, seed, elapsed, val_time) -> pd.DataFrame:
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
                                         f"{res.scenario.solver} -> {_solver_text(res)}; {elapsed[name]:.1f} s"))
    rows.append(("validation", f"pkcsf.clinical.predictive_check.validation_intervals(n={VALIDATION_SETS}, seed=1): "
                 "typical patient, and the 90% interval of each prediction over "
                 f"{VALIDATION_SETS} parameter sets of the CSF transport's posterior; {val_time:.1f} s"))
    return pd.DataFrame(rows, columns=["setting", "value"])


# ------------------------------------------------------------------ build
#: parameter sets of the CSF transport's posterior behind each validation prediction's interval (section 7; the
#: 5th and 95th percentiles of 50 sets move by a few percent between seeds, enough to tell a miss the
#: calibration's uncertainty reaches from one it does not)
VALIDATION_SETS = 50


def _progress_bar(progress, total):
    """The report's bar: the one progress bar of pkcsf (stderr), so compile notices and warnings stay visible."""
    return progress_bar(bool(progress), total=total, desc="pkcsf report", unit="step")


def _build(folder: Path, *, subjects, seed, progress, fmt) -> Path:
    import pkcsf.plotting as pp
    from pkcsf.clinical.predictive_check import validation_intervals

    pp._plt()                                       # Agg when headless, before any figure
    t_start = _time.perf_counter()
    scen = _scenarios(subjects, seed)
    bar = _progress_bar(progress, len(scen) + 1 + 8 + 1)   # runs, validation, sections, files

    def tick(text=None):
        if bar is not None:
            if text:
                bar.set_postfix_str(text, refresh=False)
            bar.update(1)

    try:
        R, elapsed, grid_notes = {}, {}, []
        for name, sc in scen.items():
            if bar is not None:
                bar.set_postfix_str(name, refresh=True)
            t0 = _time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", CoarseGridWarning)
                R[name] = run(sc, progress=False)
            for w in caught:              # grid notes go into the report; every other warning is shown as usual
                if issubclass(w.category, CoarseGridWarning):
                    # one note per scenario, named: two scenarios with the same arm names (osimertinib's linear
                    # and saturable CSF efflux) would otherwise read as the same note twice
                    grid_notes.append(f"scenario {name!r}: {w.message}")
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            elapsed[name] = _time.perf_counter() - t0
            tick()
        if bar is not None:
            bar.set_postfix_str("validation", refresh=True)
        t0 = _time.perf_counter()
        val = validation_intervals(n=VALIDATION_SETS, seed=1)
        val_time = _time.perf_counter() - t0
        tick()

        doc = _Doc()
        doc.h(1, "pkcsf: intrathecal and CNS-penetrating drugs in the CSF, simulated")
        failed = sum(a.failed for r in R.values() for a in r.arms.values())
        doc.p(f"Virtual patients per arm: **{subjects}** (seed {seed}). Concentrations are of free drug unless "
              "marked 'encapsulated'. 'Ventricular' is the lateral plus third and fourth ventricles (Ommaya "
              "site); 'lumbar' the lumbosacral sac (lumbar-puncture site and the usual sampling site); "
              "'cisterna magna', 'cranial SAS' (the subarachnoid space over the convexity) and 'cervicothoracic "
              "spinal' are the spaces between. Time 0 is the first dose. Tables give the median patient "
              "and, in brackets, the 5th–95th percentile over patients.")
        doc.note("These are model predictions from a physiologically based CSF model calibrated to a small set of "
                 "published data (section 7). Parameter values marked as assumptions are listed in section 8; "
                 "read the numbers as a tool to compare regimens and to reason about CSF pharmacokinetics, not "
                 "as measurements." + (f" {failed} patient simulations did not finish and are excluded."
                                       if failed else ""))
        if grid_notes:
            doc.note("Cmax is read on each scenario's output grid; where a peak falls between output times it reads "
                     "low by the amounts below (AUCs are exact integrals and do not depend on the grid): "
                     + " ".join(grid_notes))
        if bar is not None:
            bar.set_postfix_str("figures", refresh=True)
        _figures(R, val, folder, doc, tick)

        assumptions = _assumptions(R)
        refs = _references(R)
        settings = _settings(R, subjects, seed, elapsed, val_time)
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
                "uncertainty (Table 2b); `pemetrexed_route_interval.csv` (Table 3b) and "
                "`osimertinib_ratio_interval.csv` (Table 5b) likewise for pemetrexed and for osimertinib 80 vs 160 mg; "
                "`route_comparison_mechanisms.csv` (Table 2c): the same comparison under the mechanisms fitted to the "
                "same data and not adopted",
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
        if bar is not None:
            bar.close()
