"""The pkcsf report: the regimens the leptomeningeal-metastasis field argues about, simulated and explained.

::

    from pkcsf.report import build_report
    path = build_report("report/")          # report/report.html + PNG figures + CSV tables, ~10-20 s

(or ``pkcsf report`` on the command line). What it simulates, for ``subjects`` virtual adults per arm
with the sourced default population (``pkcsf.clinical.scenario.default_population``):

1. methotrexate 12 mg by lumbar puncture versus Ommaya reservoir: one injection (ventricular, cisternal,
   lumbar CSF and plasma; time above 1 µmol/L) and the 4-week twice-weekly induction;
2. pemetrexed 10, 30 and 50 mg by both routes (one injection; time above the sourced IC50s);
3. free cytarabine 50 mg twice weekly versus liposomal cytarabine 50 mg once, over 14 days (free drug and
   encapsulated drug read out separately);
4. osimertinib 80 versus 160 mg daily for 4 weeks (plasma and CSF; CSF concentration relative to the
   label's IC50s), with the linear and the saturable CSF-efflux variants side by side;
5. osimertinib 160 mg daily plus intrathecal pemetrexed 30 mg (one course of Zhong 2024's schedule);
6. population bands (median, 5-95 %) for each; the assumed parameter values; the references; the
   validation summary (fold errors); the software and settings.

Everything is built in a temporary folder next to ``out_dir`` and moved into place only when complete:
a failure leaves ``out_dir`` as it was. Files already in ``out_dir`` with other names are kept.
"""
from __future__ import annotations

import datetime as _dt
import html
import os
import platform
import shutil
import sys
import tempfile
import time as _time
from pathlib import Path

import numpy as np
import pandas as pd

from pkcsf.clinical import regimens as rg
from pkcsf.core.errors import ScenarioError, check_choice
from pkcsf.clinical.scenario import Arm, Scenario, run

__all__ = ["build_report", "REPORT_SCENARIOS"]

#: the simulated scenarios, in report order (name -> one-line description)
REPORT_SCENARIOS = {
    "mtx_single": "methotrexate 12 mg, one injection, lumbar vs Ommaya (4 days)",
    "mtx_induction": "methotrexate 12 mg twice weekly x 4 weeks, lumbar vs Ommaya",
    "pemetrexed": "pemetrexed 10 / 30 / 50 mg, one injection, lumbar vs Ommaya (5 days)",
    "cytarabine": "cytarabine 50 mg twice weekly (free) vs liposomal cytarabine 50 mg once, lumbar (14 days)",
    "osimertinib_linear": "osimertinib 80 vs 160 mg daily for 4 weeks, linear CSF transport",
    "osimertinib_saturable": "osimertinib 80 vs 160 mg daily for 4 weeks, saturable CSF efflux",
    "combination": "osimertinib 160 mg daily + intrathecal pemetrexed 30 mg days 1, 8, 15 (8 weeks)",
}

_DPI = 130


# ------------------------------------------------------------------ scenarios
def _scenarios(subjects: int, seed: int) -> dict[str, Scenario]:
    common = dict(subjects=subjects, seed=seed, band_subjects=min(subjects, 2000))
    pem_arms = tuple(Arm(f"{d} mg {'Ommaya' if r == 'ommaya' else r}", f"{d} mg {r} once", drug="pemetrexed")
                     for d in (10, 30, 50) for r in ("lumbar", "ommaya"))
    osi = {"80 mg": rg.osimertinib("80 mg", 28), "160 mg": rg.osimertinib("160 mg", 28)}
    return {
        "mtx_single": Scenario((Arm("lumbar", "12 mg lumbar once", drug="methotrexate"),
                                Arm("Ommaya", "12 mg ommaya once", drug="methotrexate")), days=4, **common,
                               name="mtx_single"),
        "mtx_induction": Scenario((Arm("lumbar", "12 mg lumbar twice weekly x 4 weeks", drug="methotrexate"),
                                   Arm("Ommaya", "12 mg ommaya twice weekly x 4 weeks", drug="methotrexate")),
                                  days=28, **common, name="mtx_induction"),
        "pemetrexed": Scenario(pem_arms, days=5, **common, name="pemetrexed"),
        "cytarabine": Scenario((Arm("free 50 mg twice weekly", "50 mg lumbar twice weekly x 2 weeks",
                                    drug="cytarabine"),
                                Arm("liposomal 50 mg once", "50 mg lumbar once", drug="cytarabine_liposomal")),
                               days=14, **common, name="cytarabine"),
        "osimertinib_linear": Scenario(tuple(Arm(k, v, drug="osimertinib") for k, v in osi.items()), days=28,
                                       unit="nmol/L", **common, name="osimertinib_linear"),
        "osimertinib_saturable": Scenario(tuple(Arm(k, v, drug="osimertinib", variant="saturable")
                                                for k, v in osi.items()), days=28, unit="nmol/L", **common,
                                          name="osimertinib_saturable"),
        "combination": Scenario((Arm("osimertinib 160 mg + IT pemetrexed 30 mg",
                                     rg.osimertinib_plus_it_pemetrexed(courses=1)),), days=56, dt=0.5, **common,
                                name="combination"),
    }


# --------------------------------------------------------------- formatting
def _f(v) -> str:
    """3 significant digits, plain decimals for the usual range."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 1e-3:
        s = f"{v:.3g}"
        return s if "e" not in s else f"{v:.4f}"
    return f"{v:.2e}"


def _range(med, lo, hi) -> str:
    if not np.isfinite(med):
        return "–"
    if abs(hi - lo) <= 1e-9 * max(1.0, abs(med)):
        return _f(med)
    return f"{_f(med)} ({_f(lo)}–{_f(hi)})"


def _compact(res, groups, thresholds=(), *, drug=None, extra=(), time_unit="h", tmax=True, cmax=True) -> pd.DataFrame:
    """One row per arm and group: median (5th–95th percentile) of the key read-outs, as text.

    ``tmax=False`` for multiple doses (the time of the highest peak says little); ``cmax=False`` when
    ``extra`` gives the last-interval Cmax instead."""
    from pkcsf.plotting import group_label, pretty_unit

    m = res.metrics()
    if drug is not None:
        m = m[m["drug"] == drug]
    unit = pretty_unit(res.unit)
    cols = ([("cmax", f"Cmax ({unit})", 1.0)] if cmax else []) + ([("tmax", "Tmax (h)", 1.0)] if tmax else []) \
        + [("auc", f"AUC ({unit}·h)", 1.0)]
    cols += [c for c in extra if c[0] in m.columns]
    for t in thresholds:
        c = f"time_above[{t}]"
        if c in m.columns:
            cols.append((c, f"time above {_thr_label(res, t, drug)} ({time_unit})", 24.0 if time_unit == "d" else 1.0))
    rows = []
    for (arm, d, g), sub in m.groupby(["arm", "drug", "group"], sort=False):
        if g not in groups:
            continue
        row = {"arm": arm, "drug": d, "compartment": group_label(g)}
        for c, label, scale in cols:
            v = sub[c].to_numpy(dtype=float) / scale
            row[label] = _range(np.median(v), np.percentile(v, 5), np.percentile(v, 95))
        rows.append(row)
    df = pd.DataFrame(rows).drop(columns="drug")
    order = {g: i for i, g in enumerate(groups)}
    key = {group_label(g): i for g, i in order.items()}
    df["_o"] = df["compartment"].map(key)
    arms = list(dict.fromkeys(df["arm"]))
    df["_a"] = df["arm"].map({a: i for i, a in enumerate(arms)})
    return df.sort_values(["_a", "_o"]).drop(columns=["_o", "_a"]).reset_index(drop=True)


def _thr_label(res, name, drug=None):
    from pkcsf.clinical import cns
    from pkcsf.plotting import _threshold_name, pretty_unit
    from pkcsf.core.units import concentration_factor

    d = drug or next(iter(next(iter(res.arms.values())).profiles))
    dd = cns.drug(d)
    if name in dd.thresholds:
        v = dd.thresholds[name] * concentration_factor(res.unit, dd.mw)
        return f"{_threshold_name(name)} {_f(v)} {pretty_unit(res.unit)}"
    return str(name)


def _values(res, arm, group, col, drug=None) -> np.ndarray:
    m = res[arm].metrics
    sel = (m["group"] == group) & ((m["drug"] == drug) if drug else True)
    return m.loc[sel, col].to_numpy(dtype=float)


def _med(res, arm, group, col, drug=None) -> float:
    v = _values(res, arm, group, col, drug)
    return float(np.median(v)) if v.size else float("nan")


def _mtx_findings(mtx) -> list[str]:
    c = "time_above[cytotoxic]"
    vl, vo = _med(mtx, "lumbar", "ventricular", "cmax"), _med(mtx, "Ommaya", "ventricular", "cmax")
    tl, to = _med(mtx, "lumbar", "ventricular", c), _med(mtx, "Ommaya", "ventricular", c)
    al, ao = _med(mtx, "lumbar", "ventricular", "auc"), _med(mtx, "Ommaya", "ventricular", "auc")
    out = [f"After a lumbar injection the ventricular peak is {_f(vl)} µmol/L, {100 * vl / vo:.1f}% of the peak after "
           f"an Ommaya injection ({_f(vo)} µmol/L), reached at {_f(_med(mtx, 'lumbar', 'ventricular', 'tmax'))} h; "
           f"the ventricular AUC is {_f(al / ao * 100)}% of the Ommaya AUC.",
           f"Hours above 1 µmol/L in the ventricles: {_f(tl)} h after lumbar, {_f(to)} h after Ommaya; in the lumbar "
           f"sac: {_f(_med(mtx, 'lumbar', 'lumbar', c))} h and {_f(_med(mtx, 'Ommaya', 'lumbar', c))} h."]
    if tl > to:
        out.append("**Read with caution:** in this model the ventricles stay above 1 µmol/L *longer* after a lumbar "
                   f"than after an Ommaya injection, although the peak is {vo / vl:.0f} times lower. The lumbar sac acts as a "
                   "slowly emptying depot that keeps feeding the ventricles by mixing, while an Ommaya dose is "
                   "washed out of the ventricles by the bulk flow and the ventricular mixing (Q_MIX_VENT, "
                   "calibrated). No validation observation covers the duration of "
                   "ventricular exposure after a lumbar dose (only its peak, Blaney 2001 '< 10%'); clinical series "
                   "describe ventricular levels after lumbar injection as low and inconsistent, so this duration "
                   "should not be used to argue for the lumbar route.")
    return out


def _pem_findings(pem) -> list[str]:
    c = "time_above[ic50_egfr_mutant]"
    parts = []
    for d in (10, 30, 50):
        parts.append(f"{d} mg: {_f(_med(pem, f'{d} mg lumbar', 'ventricular', c))} h (lumbar) / "
                     f"{_f(_med(pem, f'{d} mg Ommaya', 'ventricular', c))} h (Ommaya)")
    pl = [_med(pem, f"{d} mg lumbar", "plasma", "cmax") for d in (10, 30, 50)]
    longer = all(_med(pem, f"{d} mg lumbar", "ventricular", c) > _med(pem, f"{d} mg Ommaya", "ventricular", c)
                 for d in (10, 30, 50))
    return ["Hours with ventricular pemetrexed above the EGFR-mutant IC50 (0.05 µmol/L): " + "; ".join(parts) + "."
            + (" As for methotrexate, the model gives the lumbar route the longer ventricular time above a low level "
               "(see the caution in section 1)." if longer else ""),
            f"Plasma peaks after a lumbar injection: {_f(pl[0])}, {_f(pl[1])} and {_f(pl[2])} µmol/L for 10, 30 and "
            "50 mg (the model is linear, so exposures scale with dose; only the time above a fixed level grows "
            "less than proportionally)."]


def _ara_findings(ara) -> list[str]:
    c = "time_above[cytotoxic]"
    f, l = "free 50 mg twice weekly", "liposomal 50 mg once"
    return [f"Days with free cytarabine above 0.1 µg/mL in the ventricles over 14 days: {_f(_med(ara, f, 'ventricular', c) / 24)} "
            f"with 4 injections of free drug, {_f(_med(ara, l, 'ventricular', c) / 24)} with one liposomal injection; "
            f"in the lumbar sac {_f(_med(ara, f, 'lumbar', c) / 24)} and {_f(_med(ara, l, 'lumbar', c) / 24)} "
            "(14 = the whole window).",
            f"Free-drug peaks are far lower with the liposome (lumbar {_f(_med(ara, l, 'lumbar', 'cmax'))} versus "
            f"{_f(_med(ara, f, 'lumbar', 'cmax'))} µmol/L): the depot trades peak for duration."]


def _osi_findings(lin, sat) -> list[str]:
    col = "trough_last" if "trough_last" in lin["80 mg"].metrics.columns else "trough_end"
    out = []
    for label, res in (("linear", lin), ("saturable", sat)):
        fr = []
        for arm in ("80 mg", "160 mg"):
            v = _values(res, arm, "lumbar", col)
            fr.append(f"{arm}: {100 * np.mean(v >= 6.0):.0f}% (median {_f(np.median(v))} nmol/L)")
        out.append(f"{label.capitalize()} CSF transport: patients whose steady-state lumbar CSF trough reaches the "
                   f"lowest EGFR-mutant IC50 (6 nmol/L): " + "; ".join(fr) + ".")
    hi = {arm: 100 * np.mean(_values(lin, arm, "lumbar", col) >= 54.0) for arm in ("80 mg", "160 mg")}
    ratio = _med(lin, "160 mg", "ventricular", "auc") / _med(lin, "160 mg", "lumbar", "auc")
    out.append(f"Patients whose lumbar CSF trough reaches the highest mutant IC50 (54 nmol/L), linear transport: "
               f"{hi['80 mg']:.0f}% at 80 mg, {hi['160 mg']:.0f}% at 160 mg. Ventricular CSF is lower than lumbar CSF in "
               f"this model ({100 * ratio:.0f}% of its AUC): drug enters the CSF across the barriers, and the "
               "ventricles are flushed by newly produced, drug-free CSF.")
    return out


# ------------------------------------------------------------------ document
class _Doc:
    """A list of blocks rendered to HTML or Markdown."""

    def __init__(self):
        self.blocks = []

    def h(self, level, text, anchor=None):
        self.blocks.append(("h", level, text, anchor))

    def p(self, text):
        self.blocks.append(("p", text))

    def note(self, text):
        self.blocks.append(("note", text))

    def ul(self, items):
        self.blocks.append(("ul", list(items)))

    def fig(self, name, caption):
        self.blocks.append(("fig", name, caption))

    def table(self, df, caption="", csv=None, max_rows=None):
        self.blocks.append(("table", df, caption, csv, max_rows))

    # -- html
    def html(self, title) -> str:
        out = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
               f"<style>{_CSS}</style></head><body><main>"]
        toc = [(b[2], b[3]) for b in self.blocks if b[0] == "h" and b[1] == 2]
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                _, level, text, anchor = b
                a = f" id='{anchor}'" if anchor else ""
                out.append(f"<h{level}{a}>{html.escape(text)}</h{level}>")
                if level == 1 and toc:
                    out.append("<nav><b>Contents</b><ol>" + "".join(
                        f"<li><a href='#{a}'>{html.escape(t)}</a></li>" for t, a in toc if a) + "</ol></nav>")
            elif kind == "p":
                out.append(f"<p>{_inline(b[1])}</p>")
            elif kind == "note":
                out.append(f"<div class='note'>{_inline(b[1])}</div>")
            elif kind == "ul":
                out.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in b[1]) + "</ul>")
            elif kind == "fig":
                _, name, cap = b
                out.append(f"<figure><a href='{name}'><img src='{name}' alt='{html.escape(cap[:120])}'></a>"
                           f"<figcaption>{_inline(cap)}</figcaption></figure>")
            elif kind == "table":
                _, df, cap, csv, max_rows = b
                shown = df if max_rows is None else df.head(max_rows)
                body = shown.to_html(index=False, escape=True, border=0, classes="t", na_rep="–")
                more = f" (first {max_rows} of {len(df)} rows)" if max_rows is not None and len(df) > max_rows else ""
                link = f" Full table: <a href='{csv}'>{csv}</a>{more}." if csv else ""
                out.append(f"<div class='tw'>{body}</div><p class='cap'>{_inline(cap)}{link}</p>")
        out.append("</main></body></html>")
        return "\n".join(out)

    # -- markdown
    def markdown(self) -> str:
        out = []
        for b in self.blocks:
            kind = b[0]
            if kind == "h":
                out.append("#" * b[1] + " " + b[2])
            elif kind == "p":
                out.append(b[1])
            elif kind == "note":
                out.append("> " + b[1])
            elif kind == "ul":
                out.append("\n".join(f"- {i}" for i in b[1]))
            elif kind == "fig":
                out.append(f"![{b[2][:80]}]({b[1]})\n\n*{b[2]}*")
            elif kind == "table":
                _, df, cap, csv, max_rows = b
                shown = df if max_rows is None else df.head(max_rows)
                out.append(_md_table(shown) + "\n\n*" + cap + (f" Full table: [{csv}]({csv})." if csv else "") + "*")
        return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    """Escape, then allow **bold** and `code`."""
    import re

    t = html.escape(text)
    t = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", t)
    t = re.sub(r"`(.+?)`", r"<code>\1</code>", t)
    return t


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    esc = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
    lines = ["| " + " | ".join(esc(c) for c in cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(esc("–" if (isinstance(v, float) and not np.isfinite(v)) else v)
                                       for v in row) + " |")
    return "\n".join(lines)


_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#222;background:#fff;margin:0}
main{max-width:1100px;margin:0 auto;padding:1.5em 2em 4em;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em} h2{margin-top:2.2em;border-bottom:2px solid #0072B2;padding-bottom:.2em}
h3{margin-top:1.6em;color:#0072B2}
figure{margin:1.2em 0} figure img{max-width:100%;border:1px solid #ddd}
figcaption,.cap{font-size:.92em;color:#444;margin-top:.3em}
.note{background:#FFF8E1;border-left:4px solid #E69F00;padding:.6em 1em;margin:1em 0}
.tw{overflow-x:auto} table.t{border-collapse:collapse;font-size:.86em;margin-top:.6em}
table.t th,table.t td{border-bottom:1px solid #ddd;padding:.3em .6em;text-align:left;vertical-align:top}
table.t th{background:#f3f6fa} nav{background:#f7f7f7;padding:.6em 1.2em;margin:1em 0}
code{background:#f3f3f3;padding:0 .2em}
"""


# ------------------------------------------------------------------ figures
def _save(fig, folder: Path, name: str) -> str:
    fig.savefig(folder / name, dpi=_DPI, bbox_inches="tight", facecolor="white")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return name


def _pem_styles(res):
    from pkcsf.plotting import ROUTE_COLORS

    styles = {}
    dash = {"10": (0, (1.5, 1.5)), "30": (0, (5, 2)), "50": "-"}
    for nm in res.arms:
        dose = nm.split()[0]
        route = "ommaya" if "Ommaya" in nm else "lumbar"
        styles[nm] = {"color": ROUTE_COLORS[route], "ls": dash.get(dose, "-"), "lw": 1.4 + 0.3 * (dose == "50")}
    return styles


def _figures(R: dict, val: pd.DataFrame, folder: Path, doc: _Doc, tick):
    """Draw every figure into ``folder`` and add the sections to ``doc``."""
    import pkcsf.plotting as pp

    plt = pp._plt()
    unit_um = pp.pretty_unit("umol/L")

    # ---------------------------------------------------------- methotrexate
    mtx, ind = R["mtx_single"], R["mtx_induction"]
    doc.h(2, "1. Methotrexate 12 mg: lumbar puncture versus Ommaya reservoir", "mtx")
    doc.p("One intrathecal injection of 12 mg, by lumbar puncture (into the lumbar sac) or through an Ommaya "
          "reservoir (into a lateral ventricle). CSF is produced in the ventricles and flows towards the cranial "
          "subarachnoid space, away from the lumbar sac; drug spreads against that flow only by mixing. "
          "Each panel is one CSF space (or plasma), each line one route.")
    axes = pp.overlay_arms(mtx, ["ventricular", "cisternal", "lumbar", "plasma"], band=True, ncols=2,
                           title="methotrexate 12 mg, one injection: median and 5–95% of virtual patients")
    doc.fig(_save(axes[0].figure, folder, "fig01_methotrexate_routes.png"),
            "Figure 1. Methotrexate after one 12 mg injection, lumbar (vermilion) versus Ommaya (blue), in the "
            f"ventricles, cisterna magna, lumbar sac and plasma (log scale, {unit_um}). Solid line: median patient; "
            "shaded: 5–95% of patients. Grey dash-dot line: the 1 µmol/L level usually taken as cytotoxic.")
    axes = pp.compare_arms(mtx, groups=["ventricular", "cisternal", "cranial_sas", "spinal", "lumbar", "plasma"],
                           doses=True, title="methotrexate 12 mg: every CSF space, by route (median patient)")
    doc.fig(_save(axes[0].figure, folder, "fig02_methotrexate_all_spaces.png"),
            "Figure 2. The same simulation, one panel per route with all CSF spaces (shared scale). The triangle "
            "on the time axis marks the injection.")
    ax = pp.time_above(mtx, "cytotoxic", groups=["ventricular", "cisternal", "cranial_sas", "lumbar"])
    doc.fig(_save(ax.figure, folder, "fig03_methotrexate_time_above.png"),
            "Figure 3. Hours above 1 µmol/L after one 12 mg injection, per CSF space and route (bar: median "
            "patient; whiskers: 5th–95th percentile where patients differ).")
    doc.h(3, "What the numbers say")
    doc.ul(_mtx_findings(mtx))
    groups = ["ventricular", "cisternal", "cranial_sas", "lumbar", "plasma"]
    doc.table(_compact(mtx, groups, ["cytotoxic"]),
              "Table 1. Methotrexate, one 12 mg injection: median (5th–95th percentile) over virtual patients.",
              "methotrexate_single_dose_summary.csv")
    doc.table(_compact(ind, groups, ["cytotoxic"], time_unit="d", tmax=False),
              "Table 2. Methotrexate 12 mg twice weekly for 4 weeks (8 injections): totals over the 4 weeks.",
              "methotrexate_induction_summary.csv")
    tick()

    # ------------------------------------------------------------ pemetrexed
    pem = R["pemetrexed"]
    doc.h(2, "2. Pemetrexed 10, 30 and 50 mg by both routes", "pemetrexed")
    doc.p("One intrathecal injection of pemetrexed (10 mg, the phase-1 MTD of Pan 2019; 30 and 50 mg, the doses "
          "of later studies), by lumbar puncture or Ommaya reservoir. Colour: route; line style: dose. The grey "
          "lines are the sourced IC50s of three NSCLC cell lines (72-h exposure in vitro).")
    axes = pp.overlay_arms(pem, ["ventricular", "cisternal", "lumbar", "plasma"], styles=_pem_styles(pem), ncols=2,
                           title="pemetrexed, one injection (median patient)")
    doc.fig(_save(axes[0].figure, folder, "fig04_pemetrexed_doses_routes.png"),
            "Figure 4. Pemetrexed concentrations after one injection of 10 (dotted), 30 (dashed) or 50 mg (solid) "
            f"by lumbar puncture (vermilion) or Ommaya (blue), log scale, {unit_um}.")
    fig, axs = plt.subplots(1, 2, figsize=(13, 4.6), layout="constrained")
    pp.time_above(pem, "ic50_egfr_mutant", groups=["ventricular", "cisternal", "lumbar"], ax=axs[0], legend=False,
                  title="above the EGFR-mutant IC50 (H3255)")
    pp.time_above(pem, "ic50_resistant", groups=["ventricular", "cisternal", "lumbar"], ax=axs[1], legend=False,
                  title="above the resistant-line IC50 (H441)")
    pp.add_legend(fig, ncol=3)
    doc.fig(_save(fig, folder, "fig05_pemetrexed_time_above.png"),
            "Figure 5. Hours above two IC50s after one injection, per dose, route and CSF space. 72-h in-vitro "
            "IC50s are a reference scale, not a proven clinical target.")
    doc.h(3, "What the numbers say")
    doc.ul(_pem_findings(pem))
    doc.table(_compact(pem, ["ventricular", "cisternal", "lumbar", "plasma"], ["ic50_egfr_mutant", "ic50_resistant"]),
              "Table 3. Pemetrexed, one injection: median (5th–95th percentile).", "pemetrexed_summary.csv")
    tick()

    # ------------------------------------------------------------ cytarabine
    ara = R["cytarabine"]
    doc.h(2, "3. Free versus liposomal cytarabine", "cytarabine")
    doc.p("Free cytarabine 50 mg twice weekly (4 injections in 2 weeks) versus liposomal cytarabine (DepoCyt) "
          "50 mg once, both by lumbar puncture. Liposomes are a depot: the encapsulated drug (dotted lines) moves "
          "with the CSF and releases free cytarabine slowly. Only free drug is active; the encapsulated "
          "concentrations are shown to explain the free ones.")
    axes = pp.compare_arms(ara, groups=["ventricular", "lumbar", "ventricular_liposomal", "lumbar_liposomal"],
                           doses=True, ncols=2,
                           title="cytarabine 50 mg by lumbar puncture (median patient)")
    doc.fig(_save(axes[0].figure, folder, "fig06_cytarabine_free_vs_liposomal.png"),
            "Figure 6. Free cytarabine (solid) and encapsulated cytarabine (dotted) in ventricular and lumbar CSF "
            "over 14 days (shared log scale). Grey lines: the two cytotoxic levels in use (0.1 and 0.02 µg/mL). "
            "Plasma levels are far lower (Table 4).")
    ax = pp.time_above(ara, "cytotoxic", groups=["ventricular", "cisternal", "cranial_sas", "lumbar"], unit="d")
    doc.fig(_save(ax.figure, folder, "fig07_cytarabine_time_above.png"),
            "Figure 7. Days with free cytarabine above 0.1 µg/mL over the 14 days.")
    doc.h(3, "What the numbers say")
    doc.ul(_ara_findings(ara))
    ara_groups = ["ventricular", "cisternal", "lumbar", "plasma", "ventricular_liposomal", "lumbar_liposomal"]
    doc.table(_compact(ara, ara_groups, ["cytotoxic", "cytotoxic_low"], time_unit="d", tmax=False),
              "Table 4. Cytarabine over 14 days: median (5th–95th percentile). 'encapsulated' rows are drug "
              "still inside liposomes.", "cytarabine_summary.csv")
    tick()

    # ----------------------------------------------------------- osimertinib
    lin, sat = R["osimertinib_linear"], R["osimertinib_saturable"]
    doc.h(2, "4. Osimertinib 80 versus 160 mg daily", "osimertinib")
    doc.p("Oral osimertinib once daily for 4 weeks (Brown 2017 population PK). The CSF/plasma ratio comes from "
          "one calibration: about 1% at 80 mg and 2.2% at 160 mg. Concentrations here are in nmol/L, the unit "
          "of the label's IC50s.")
    doc.note("**The saturable variant rests on two unverified review figures.** The CSF/plasma ratios behind it "
             "(0.08–1.12% at 80 mg, 2.18% at 160 mg) come from a 2025 review citing a 2023 paper whose primary "
             "data were not found (flag U). With only two numbers, the saturable efflux (Vmax, with Km fixed by "
             "assumption) fits them exactly by construction; it is a hypothesis for why the ratio would rise "
             "with dose, not a finding. The linear variant (one permeability, ratio independent of dose) is the "
             "default.")
    axes = pp.overlay_arms(lin, ["plasma", "lumbar", "ventricular"], band=True,
                           title="osimertinib daily, linear CSF transport: median and 5–95% of virtual patients")
    doc.fig(_save(axes[0].figure, folder, "fig08_osimertinib_plasma_csf.png"),
            "Figure 8. Osimertinib 80 mg (blue) and 160 mg (vermilion) daily: plasma, lumbar CSF and ventricular "
            "CSF over 4 weeks (log scale, nmol/L; shaded 5–95% of patients). Grey lines: label IC50s "
            "(EGFR-mutant 6–54 nmol/L; wild-type 480 nmol/L).")
    fig, axs = plt.subplots(1, 2, figsize=(13.5, 4.8), layout="constrained", sharey=True)
    pp.ic50_ratio(lin, ax=axs[0], legend=False, title="linear CSF transport (default)")
    pp.ic50_ratio(sat, ax=axs[1], legend=False, title="saturable CSF efflux (rests on 2 unverified figures)")
    lo = min(a.get_ylim()[0] for a in axs)
    hi = max(a.get_ylim()[1] for a in axs)
    for a in axs:
        a.set_ylim(lo, hi)
        pp._log_ticks(a)
    for t in list(axs[0].texts):
        t.remove()
    axs[1].set_ylabel("")
    pp.add_legend(fig, ncol=4)
    doc.fig(_save(fig, folder, "fig09_osimertinib_csf_ic50.png"),
            "Figure 9. CSF concentration divided by the lowest EGFR-mutant IC50 of the label (6 nmol/L), lumbar "
            "(solid) and ventricular (dashed) CSF; above 1 the CSF concentration exceeds that IC50. Reference "
            "lines: the highest mutant IC50 (54 nmol/L) and the wild-type IC50 (480 nmol/L). Left: linear "
            "transport; right: saturable efflux. Osimertinib's unbound fraction in CSF is assumed to be 1 "
            "(CSF has little protein); IC50s are in vitro (cell culture, with serum).")
    doc.h(3, "What the numbers say")
    doc.ul(_osi_findings(lin, sat))
    extra = [("cmax_last", "Cmax last day ({u})"), ("trough_last", "trough last day ({u})"),
             ("ratio_auc_plasma", "AUC ratio to plasma")]
    tabs = []
    for label, res in (("linear", lin), ("saturable", sat)):
        u = pp.pretty_unit(res.unit)
        t = _compact(res, ["plasma", "lumbar", "ventricular"],
                     ["ic50_egfr_mutant_low", "ic50_egfr_mutant_high"],
                     extra=[(c, lab.format(u=u), 1.0) for c, lab in extra], time_unit="d", tmax=False,
                     cmax=False)
        t.insert(0, "CSF transport", label)
        tabs.append(t)
    doc.table(pd.concat(tabs, ignore_index=True),
              "Table 5. Osimertinib over 4 weeks: median (5th–95th percentile); 'last day' = the last dosing "
              "interval (steady state).", "osimertinib_summary.csv")
    tick()

    # ----------------------------------------------------------- combination
    com = R["combination"]
    doc.h(2, "5. Osimertinib 160 mg plus intrathecal pemetrexed", "combination")
    doc.p("Osimertinib 160 mg daily with intrathecal pemetrexed 30 mg by lumbar puncture on days 1, 8 and 15 "
          "(one course of Zhong 2024's schedule, 8 weeks). The model has no interaction between the two drugs: "
          "each follows its own pharmacokinetics; the figure puts them on one time line.")
    fig, axs = plt.subplots(1, 2, figsize=(13.5, 4.7), layout="constrained")
    arm = next(iter(com.arms))
    pp.concentration_time(com, arm, drug="osimertinib", groups=["plasma", "lumbar", "ventricular"], ax=axs[0],
                          legend=False, title="osimertinib 160 mg daily")
    pp.concentration_time(com, arm, drug="pemetrexed", groups=["plasma", "lumbar", "ventricular"], ax=axs[1],
                          legend=False, title="pemetrexed 30 mg intrathecal")
    pp.add_legend(fig, ncol=5)
    doc.fig(_save(fig, folder, "fig10_osimertinib_plus_pemetrexed.png"),
            f"Figure 10. The combination over 8 weeks (median patient, log scale, {unit_um}). Ticks on the time "
            "axis: daily oral doses (black) and lumbar injections (vermilion triangles).")
    doc.table(_compact(com, ["plasma", "lumbar", "ventricular"], ["ic50_egfr_mutant_low", "ic50_egfr_mutant_high"],
                       drug="osimertinib", time_unit="d", tmax=False).drop(columns=["arm"]),
              "Table 6a. Osimertinib in the combination, 8 weeks: median (5th–95th percentile).",
              "combination_summary.csv")
    doc.table(_compact(com, ["plasma", "lumbar", "ventricular"], ["ic50_egfr_mutant", "ic50_resistant"],
                       drug="pemetrexed", time_unit="d", tmax=False).drop(columns=["arm"]),
              "Table 6b. Pemetrexed in the combination (3 injections), 8 weeks: median (5th–95th percentile).")
    tick()

    # ------------------------------------------------------- population bands
    doc.h(2, "6. How much patients differ: population bands", "bands")
    doc.p("Each panel: the median patient (solid), the 5th–95th percentile of the virtual patients (shaded) and "
          "the typical patient (all parameters at their typical values, dashed). The spread comes only from the "
          "between-patient variability that a source reports (CSF volumes and production, systemic clearance "
          "...); where no source gives a spread, the band collapses onto the median and the panel says so.")
    specs = [("fig11_bands_methotrexate.png", mtx, ["lumbar", "Ommaya"], ["ventricular", "lumbar", "plasma"], None,
              "methotrexate 12 mg, one injection"),
             ("fig12_bands_pemetrexed.png", pem, ["30 mg lumbar", "30 mg Ommaya"], ["ventricular", "lumbar", "plasma"],
              None, "pemetrexed 30 mg, one injection"),
             ("fig13_bands_cytarabine.png", ara, None, ["ventricular", "lumbar", "plasma"], None,
              "cytarabine 50 mg: free twice weekly vs liposomal once"),
             ("fig14_bands_osimertinib.png", lin, None, ["plasma", "lumbar", "ventricular"], None,
              "osimertinib daily (linear CSF transport)")]
    for k, (name, res, arms, groups, drug, what) in enumerate(specs):
        axes = pp.population_bands(res, groups, arms, drug=drug, log=True, title=what)
        doc.fig(_save(axes[0, 0].figure, folder, name), f"Figure {11 + k}. Population bands: {what} (log scale).")
    fig, axs = plt.subplots(2, 3, figsize=(14.5, 7.4), layout="constrained")
    for j, g in enumerate(["plasma", "lumbar", "ventricular"]):
        pp.population_band(com, arm, drug="osimertinib", group=g, log=True, ax=axs[0, j], legend=False,
                           title=f"osimertinib: {pp.group_label(g)}")
        pp.population_band(com, arm, drug="pemetrexed", group=g, log=True, ax=axs[1, j], legend=False,
                           title=f"pemetrexed: {pp.group_label(g)}")
    pp.add_legend(fig, ncol=5)
    doc.fig(_save(fig, folder, "fig15_bands_combination.png"),
            "Figure 15. Population bands: osimertinib 160 mg daily + intrathecal pemetrexed 30 mg (log scale).")
    tick()

    # ------------------------------------------------------------ validation
    doc.h(2, "7. How far to trust it: validation against published observations", "validation")
    doc.p("Each published observation (concentrations, half-lives, ratios, times above a level) simulated with "
          "the typical patient and compared as predicted/observed (the fold error). Within 2-fold is the usual "
          "acceptance for physiologically based models; failures stay in the table with a written hypothesis.")
    ax = pp.fold_errors(val)
    doc.fig(_save(ax.figure, folder, "fig16_validation_fold_errors.png"),
            "Figure 16. Fold error of every validation observation (log scale), grouped by drug; shaded: within "
            "1.5- and 2-fold. Orange: misses with a written hypothesis; triangles: the observation is a limit.")
    doc.table(_validation_summary(val), "Table 7. Validation by drug and CSF-transport variant. Fold errors over "
              "point observations (limits such as '< 10%' pass or fail on their side of the limit).", "validation.csv")
    fails = val[~val["within_2fold"].astype(bool) & (val["role"] != "pathology")]
    if len(fails):
        doc.table(fails[["id", "drug", "variant", "quantity", "observed", "predicted", "unit", "fold_error",
                         "hypothesis"]].assign(observed=lambda d: d["observed"].map(_f),
                                               predicted=lambda d: d["predicted"].map(_f),
                                               fold_error=lambda d: d["fold_error"].map(_f)),
                  "Table 8. Observations missed by more than 2-fold, with the hypothesis for each.")
    tick()


def _validation_summary(val: pd.DataFrame) -> pd.DataFrame:
    rows = []
    judged = val[val["role"] != "pathology"]
    for (d, v), sub in judged.groupby(["drug", "variant"], sort=True):
        fe = sub["fold_error"].astype(float)
        point = sub["bound"].fillna("").astype(str).str.strip() == ""     # limits ('< 10 %') are not misses
        ok = np.isfinite(fe) & (fe > 0) & point
        rows.append({"drug": d, "variant": v, "observations": len(sub),
                     "within 1.5-fold": int(sub["within_1_5fold"].sum()),
                     "within 2-fold": int(sub["within_2fold"].sum()),
                     "median fold error (point obs.)": _f(float(np.exp(np.median(np.log(fe[ok])))))
                     if ok.any() else "–",
                     "largest miss, x-fold (point obs.)": _f(float(np.exp(np.max(np.abs(np.log(fe[ok]))))))
                     if ok.any() else "–"})
    return pd.DataFrame(rows)


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
    refs = []
    for res in R.values():
        for r in res.cite():
            if r not in refs:
                refs.append(r)
    rows = []
    for r in refs:
        key, _, text = r.partition("] ")
        rows.append({"key": key.lstrip("[") if text else "", "reference": text or r})
    for name in ("methotrexate_it", "pemetrexed_pan2019", "liposomal_cytarabine", "osimertinib",
                 "osimertinib_plus_it_pemetrexed"):
        src = rg.REGIMEN_SOURCES.get(name)
        if src:
            rows.append({"key": f"regimen:{name}", "reference": src})
    return pd.DataFrame(rows, columns=["key", "reference"])


def _solver_text(res) -> str:
    """Which solver 'auto' picks: exact (matrix exponential) for linear models, Rodas5P when a
    Michaelis-Menten term is active (the saturable osimertinib variant)."""
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
    rows.append(("validation", f"pkcsf.clinical.validation.run_validation(), typical patient; {val_time:.1f} s"))
    return pd.DataFrame(rows, columns=["setting", "value"])


# ------------------------------------------------------------------ build
def _progress_bar(progress, total):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="pkcsf report", unit="step", file=sys.stderr)


def build_report(out_dir, *, subjects: int = 200, seed: int = 2024, progress: bool = True,
                 fmt: str = "html") -> Path:
    """Simulate the built-in scenarios and write a report a clinician can read.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created if needed). Receives ``report.html`` (or ``report.md``), the figures
        (``fig*.png``) and the tables (``*.csv``). Other files already there are kept; same-named
        files are replaced.
    subjects : int
        Virtual patients per arm (default 200: population bands from 200 patients; about 10-20 s).
    seed : int
        Random seed (patient *i* is the same in every arm).
    progress : bool
        Show a progress bar (stderr).
    fmt : {"html", "md"}
        Report format. Figures and tables are the same.

    Returns
    -------
    Path
        The report file (``out_dir/report.html`` or ``out_dir/report.md``).

    Notes
    -----
    Atomic: everything is built in a temporary folder next to ``out_dir`` and moved in only when
    complete; on any error the temporary folder is removed and ``out_dir`` is left as it was.
    """
    check_choice("fmt", fmt, ["html", "md"], ScenarioError)
    if isinstance(subjects, bool) or not isinstance(subjects, (int, np.integer)) or subjects < 1:
        raise ScenarioError("subjects", subjects, "must be a whole number >= 1")
    out = Path(os.path.abspath(os.path.expanduser(str(out_dir))))
    if out.exists() and not out.is_dir():
        raise ScenarioError("out_dir", str(out_dir), "exists and is a file, not a folder", "choose another folder")
    anc = out.parent
    while not anc.exists():
        anc = anc.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name or 'report'}.pkcsf-tmp-", dir=anc))
    try:
        path = _build(tmp, subjects=int(subjects), seed=seed, progress=progress, fmt=fmt)
        _commit(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out / path.name


def _commit(tmp: Path, out: Path):
    """Move the finished files into ``out`` (rename when it does not exist yet)."""
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, out)
        return
    for entry in tmp.iterdir():
        dst = out / entry.name
        if dst.is_dir() and not entry.is_dir():
            shutil.rmtree(dst)
        os.replace(entry, dst)
    shutil.rmtree(tmp, ignore_errors=True)


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

    try:
        R, elapsed = {}, {}
        for name, sc in scen.items():
            if bar is not None:
                bar.set_postfix_str(name, refresh=True)
            t0 = _time.perf_counter()
            R[name] = run(sc, progress=False)
            elapsed[name] = _time.perf_counter() - t0
            tick()
        if bar is not None:
            bar.set_postfix_str("validation", refresh=True)
        t0 = _time.perf_counter()
        val = run_validation()
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
        doc.ul([f"[{k}] {r}" if k else r for k, r in refs.itertuples(index=False)])
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
