"""The report sections 1-7: figures, tables and text for each scenario, and the validation."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pkcsf.report.antibody import trastuzumab_section
from pkcsf.report.findings import (
    _ara_findings,
    _compact,
    _f,
    _mtx_findings,
    _osi_findings,
    _pem_findings,
)
from pkcsf.report.html import (
    _Doc,
)

if TYPE_CHECKING:
    from pkcsf.clinical.scenario_results import ScenarioResult

#: figure resolution (dots per inch); tests lower it
_DPI = 130
#: widest figure (inches): at 130 dpi the page (1,036 CSS px of text width) shows it at >= 75 % of its size, so
#: the 8.5-pt labels stay >= 8 pt on screen (checked by tests/test_report.py)
FIG_WIDTH = 11.5


# ------------------------------------------------------------------ uncertainty
#: parameter draws of the route-comparison interval (the report's; docs/model.md gives the posterior)
ROUTE_INTERVAL_DRAWS = 200


def route_interval_table(n: int = ROUTE_INTERVAL_DRAWS) -> pd.DataFrame:
    """Lumbar vs Ommaya methotrexate 12 mg with the calibration's parameter uncertainty, as the report shows it.

    The default CNS model's calibration (``csf_transport``) has no usable linearised covariance (its mixing
    clearances are hardly determined by the calibration data: standard errors of log up to 25), so the interval
    comes from its sampled posterior, stored beside the record (``parameters/calibration/csf_transport_posterior.csv``,
    written by ``python -m pkcsf.clinical.posterior csf_transport``; :mod:`pkcsf.clinical.posterior`):
    :func:`pkcsf.clinical.uncertainty.route_comparison_interval` with ``method="posterior"``.

    Parameters
    ----------
    n : int, optional
        Parameter draws.

    Returns
    -------
    DataFrame
        quantity, typical, median, 5th and 95th percentile (``lo``, ``hi``).
    """
    from pkcsf.clinical.cns import DEFAULT_CNS_MODEL
    from pkcsf.clinical.uncertainty import route_comparison_interval

    t = route_comparison_interval("methotrexate", "12 mg", model=DEFAULT_CNS_MODEL, calibration="csf_transport",
                                  n=n, seed=1, days=7.0, method="posterior")
    labels = {"auc_ratio_lumbar_over_ommaya": "lateral-ventricle AUC, lumbar / Ommaya",
              "time_above_h_lumbar": "hours above 1 µmol/L in the lateral ventricles, lumbar dose",
              "time_above_h_ommaya": "hours above 1 µmol/L in the lateral ventricles, Ommaya dose"}
    out = _interval_table(t, labels)
    out.attrs["p_lumbar_longer"] = t.attrs["p_lumbar_longer"]
    return out


def _route_uncertainty(doc: _Doc, folder: Path):
    """How sure is the route comparison: the calibration's parameter uncertainty (issue 10)."""
    t = route_interval_table()
    t.to_csv(folder / "route_comparison_interval.csv", index=False)
    doc.h(3, "How sure is the route comparison?")
    doc.p("The between-patient bands above do not include the uncertainty of the fitted CSF transport values "
          "themselves. Propagated from the calibration (the posterior of the fitted CSF transport values, sampled "
          "once and stored with them, python -m pkcsf.clinical.posterior csf_transport; "
          f"{ROUTE_INTERVAL_DRAWS} of its draws): the lateral-ventricle AUC after a lumbar dose is "
          f"{_f(t['typical'][0])} of the Ommaya AUC with the fitted values, 90% interval {_f(t['p5'][0])}–"
          f"{_f(t['p95'][0])}. The data agree that an Ommaya dose gives the ventricles "
          "several times the exposure of a lumbar dose, but they do not pin the factor down: a ventricular "
          "concentration measured after a lumbar dose in patients would. The primate data (Blaney 1995, Yen 1978, "
          "held out) say a lumbar dose reaches the ventricles less than this model predicts, so the ratio is "
          "probably an upper estimate. The longer time above 1 µmol/L after a lumbar dose (section 1's caution) "
          f"is not a chance of the fitted values: it holds in {t.attrs['p_lumbar_longer']:.0%} of the parameter "
          "sets, so it comes from the model's structure: the spinal canal empties slowly into the cisterna "
          "magna, from where mixing carries drug into the ventricles (across the sets, the lumbar advantage "
          "shrinks with faster craniocervical mixing, Q_MIX_SPINAL, and grows with faster ventricular mixing, "
          "Q_MIX_VENT). No ventricular measurement after a lumbar dose has tested it.")
    doc.table(_shown(t),
              "Table 2b. Methotrexate 12 mg, one injection, 0–7 days: fitted value and 90% interval from the "
              "calibration's parameter uncertainty (sampled posterior of the default model's calibration).",
              "route_comparison_interval.csv")
    _route_mechanisms(doc, folder, t)


def _position(doc: _Doc, folder: Path):
    """Lumbar methotrexate 12 mg with the patient lying or upright after the injection (issue 10, item 1)."""
    from pkcsf.clinical.cns import setup
    from pkcsf.clinical.position import compare_positions

    st = setup("methotrexate")
    um = 1000.0 / st.mw                                  # mg/L -> µmol/L
    t = compare_positions(st, 12.0, ("lying", "upright 1-24 h", "upright 0-24 h", "upright 1-15 h daily"),
                          threshold=1.0 / um)
    t.to_csv(folder / "methotrexate_position.csv", index=False)
    lie, lie1, up, day = t["auc_vs_ommaya"].iloc[1:5]
    doc.h(3, "Does the patient's position after a lumbar puncture matter?")
    doc.p("The model's patients lie after the injection (the posture of the calibration studies' patients is not "
          "reported). Upright posture slows the spinal mixing by a factor calibrated on the one effect size found: "
          "rhesus monkeys placed upright at once after a lumbar methotrexate injection had 1/23 of the ventricular "
          "peak and AUC of monkeys kept prone for the first hour (Blaney 1995; applied to humans unchanged, an "
          f"assumption). For the typical patient the lumbar/Ommaya ventricular AUC ratio goes from {_f(lie)} (lying) to "
          f"{_f(lie1)} when he lies for one hour and then sits up, and {_f(up)} when he sits up at once; the hours above 1 µmol/L hardly "
          "change, because the drug held in the spinal canal rises when he lies down again (here after 24 h). "
          f"Up by day and lying at night (lying 1 h after the puncture, upright until 15 h, each day): {_f(day)}. "
          "Position is a scenario option (position = \"upright 1-24 h\", \"upright 1-15 h daily\").")
    doc.table(t.assign(cmax=(t["cmax"] * um).map(_f), auc=(t["auc"] * um).map(_f),
                       auc_vs_ommaya=t["auc_vs_ommaya"].map(_f), hours_above=t["hours_above"].map(_f))
              .rename(columns={"cmax": "ventricular peak (µmol/L)", "auc": "ventricular AUC 0–7 d (µmol·h/L)",
                               "auc_vs_ommaya": "AUC / Ommaya", "hours_above": "hours above 1 µmol/L"}),
              "Table 2e. Methotrexate 12 mg, one injection, typical patient: lateral ventricles by route and by "
              "position after the lumbar puncture (lying: the calibrated state).", "methotrexate_position.csv")


def lm_population_table(res: ScenarioResult) -> pd.DataFrame:
    """Lumbar vs Ommaya in the named population of patients with leptomeningeal metastases, by what they have.

    Parameters
    ----------
    res : ScenarioResult
        The report's ``mtx_lm`` scenario (arms ``lumbar`` and ``Ommaya``, ``patients="leptomeningeal_metastases"``).

    Returns
    -------
    DataFrame
        One row per route and subgroup (all patients; with a spinal block; with a base-of-brain block; with a
        wholly missed lumbar puncture, lumbar route only; with none of these): number and share of the solved
        patients (a failed subject is left out), median lateral-ventricle AUC
        and hours above the cytotoxic level in the ventricles and the lumbar sac, and the share of patients whose
        ventricles never reach it.
    """
    m = res.metrics()
    m = m[m["status"].eq("SUCCESS")]           # a failed subject's read-outs are NaN: excluded, counted in n
    thr = "time_above[cytotoxic]"
    rows = []
    for arm in res.arms:
        a = m[m["arm"] == arm]
        v = a[a["group"] == "ventricular"].set_index("id")
        lum = a[a["group"] == "lumbar"].set_index("id")[thr]
        blocks = {"spinal block": v["pathology_spinal_block"], "base-of-brain block": v["pathology_convexity_block"]}
        if arm == "lumbar":               # a missed puncture acts on lumbar doses only
            blocks["lumbar puncture wholly missed"] = v["pathology_extra_arachnoid_injection"]
        none = ~np.logical_or.reduce([np.asarray(b, dtype=bool) for b in blocks.values()])
        for label, sel in (("all patients", np.ones(len(v), dtype=bool)), *blocks.items(), ("none of these", none)):
            sel = np.asarray(sel, dtype=bool)
            if not sel.any():
                continue
            rows.append({"route": arm, "patients": label, "n": int(sel.sum()), "share of patients": float(sel.mean()),
                         "ventricular AUC (median)": float(np.median(v["auc"][sel])),
                         "hours above, ventricles (median)": float(np.median(v[thr][sel])),
                         "hours above, lumbar sac (median)": float(np.median(lum[v.index[sel]])),
                         "ventricles never above (share)": float(np.mean(v[thr][sel] <= 0.0))})
    return pd.DataFrame(rows)


def _lm_population(doc: _Doc, folder: Path, res: ScenarioResult):
    """The route comparison in patients with leptomeningeal metastases (named population; issue 10)."""
    t = lm_population_table(res)
    t.to_csv(folder / "methotrexate_lm_population.csv", index=False)
    row = {(r["route"], r["patients"]): r for _, r in t.iterrows()}
    if ("lumbar", "all patients") not in row or ("Ommaya", "all patients") not in row:
        doc.note("The scenario of patients with leptomeningeal metastases has no solved patient in one arm; "
                 "Table 2d is not shown (see the failures in settings.csv).")
        return
    lum, omm = row[("lumbar", "all patients")], row[("Ommaya", "all patients")]
    blk = row.get(("lumbar", "spinal block"))
    doc.h(3, "In patients with leptomeningeal metastases")
    doc.p("The curves above are for the healthy default physiology. In the named population of patients with "
          "leptomeningeal metastases (pkcsf pathologies leptomeningeal_metastases: every patient has the opened "
          "blood-CSF barrier of leptomeningeal disease; 33% have a spinal and 13% a base-of-brain CSF flow block "
          "on radionuclide flow studies, Chamberlain 1998; 7.1% of lumbar punctures go partly and 6.4% wholly "
          "outside the subarachnoid space) the lateral ventricles stay below 1 µmol/L throughout in "
          f"{lum['ventricles never above (share)']:.0%} of patients after a 12 mg lumbar dose and in "
          f"{omm['ventricles never above (share)']:.0%} after the same dose by Ommaya"
          + (f"; with a spinal block the median ventricular AUC after a lumbar dose is "
             f"{_f(blk['ventricular AUC (median)'])} µmol·h/L (all patients: {_f(lum['ventricular AUC (median)'])})"
             if blk is not None else "") + ". The prevalences are those of the published series, drawn "
          "independently per patient; CSF turnover is not reduced (no measured value in these patients).")
    shown = t.copy()
    for c in ("share of patients", "ventricles never above (share)"):
        shown[c] = [f"{x:.0%}" for x in shown[c]]
    for c in ("ventricular AUC (median)", "hours above, ventricles (median)", "hours above, lumbar sac (median)"):
        shown[c] = shown[c].map(_f)
    doc.table(shown, "Table 2d. Methotrexate 12 mg, one injection, 0–4 days, in patients with leptomeningeal "
              "metastases: median over the patients of each subgroup (AUC in µmol·h/L; hours above 1 µmol/L).",
              "methotrexate_lm_population.csv")


def _route_mechanisms(doc: _Doc, folder: Path, interval: pd.DataFrame):
    """Table 2c: the route answer under the mechanisms fitted to the same data and not adopted (structural)."""
    from pkcsf.clinical.uncertainty import route_comparison_mechanisms

    m = route_comparison_mechanisms("methotrexate", "12 mg")
    m.to_csv(folder / "route_comparison_mechanisms.csv", index=False)
    ratio = m["auc_ratio_lumbar_over_ommaya"]
    inside = bool(((ratio >= interval["p5"][0]) & (ratio <= interval["p95"][0])).all())
    flips = [thr for thr in ("1 umol/L", "0.1 umol/L")
             if len(set(np.sign(m[f"hours_above_{thr}_lumbar"] - m[f"hours_above_{thr}_ommaya"]))) > 1]
    doc.p("The interval above is the uncertainty of the fitted values of one model. Which mechanism makes "
          "methotrexate's slow CSF phase (seen in five human series) is not settled: the shipped model has a binding "
          "site in contact with the CSF, calibrated on two of the series (its location is not known); fitted to the "
          "same data, a slow brain-tissue reservoir (beyond the published tissue kinetics) and a blood-to-CSF entry "
          "spread beyond the choroid plexus were tested and not adopted. Table 2c shows what they would "
          "answer: the AUC ratio " + ("stays within the 90% interval of Table 2b" if inside else
                                      "leaves the 90% interval of Table 2b") +
          ("; which route keeps the ventricles longer above " + " and ".join(t.replace("umol", "µmol") for t in flips)
           + " depends on the mechanism." if flips else "; the order of the routes for the time above does not change."))
    shown = pd.DataFrame({
        "mechanism": m["mechanism"], "fit cost (same data)": m["cost"].map(_f),
        "AUC lumbar / Ommaya": m["auc_ratio_lumbar_over_ommaya"].map(_f),
        "h > 1 µmol/L, lumbar": m["hours_above_1 umol/L_lumbar"].map(_f),
        "h > 1 µmol/L, Ommaya": m["hours_above_1 umol/L_ommaya"].map(_f),
        "h > 0.1 µmol/L, lumbar": m["hours_above_0.1 umol/L_lumbar"].map(_f),
        "h > 0.1 µmol/L, Ommaya": m["hours_above_0.1 umol/L_ommaya"].map(_f)})
    doc.table(shown, "Table 2c. Methotrexate 12 mg, one injection, lateral ventricles, 0–7 days, at the fitted "
              "values of each mechanism (structural uncertainty). Fit cost: sum of squared log fold errors over the same "
              "calibration data (lower fits them better; the shipped row with its binding site, which was fitted "
              "with two more data); the alternatives were not adopted, the "
              "reservoir for contradicting the published brain-tissue kinetics and the cisternography timing, the "
              "spread entry for sending mixing clearances to their bounds (docs/model.md, 'Decisions').",
              "route_comparison_mechanisms.csv")


def _interval_table(t: pd.DataFrame, labels: dict) -> pd.DataFrame:
    t = t[t["quantity"].isin(labels)]
    return pd.DataFrame({"quantity": t["quantity"].map(labels), "typical": t["typical"], "median": t["median"],
                         "p5": t["lo"], "p95": t["hi"]}).reset_index(drop=True)


def _shown(t: pd.DataFrame) -> pd.DataFrame:
    return t.assign(**{c: t[c].map(_f) for c in ("typical", "median", "p5", "p95")})


def _pemetrexed_uncertainty(doc: _Doc, folder: Path):
    """Pemetrexed 30 mg, lumbar vs Ommaya, with the calibration's parameter uncertainty (issue 10, item 5)."""
    from pkcsf.clinical.cns import DEFAULT_CNS_MODEL
    from pkcsf.clinical.uncertainty import route_comparison_interval

    t = route_comparison_interval("pemetrexed", "30 mg", model=DEFAULT_CNS_MODEL, calibration="csf_transport",
                                  n=ROUTE_INTERVAL_DRAWS, seed=1, days=7.0, threshold="0.05 umol/L",
                                  method="posterior")
    t = _interval_table(t, {"auc_ratio_lumbar_over_ommaya": "lateral-ventricle AUC, lumbar / Ommaya",
                            "time_above_h_lumbar": "hours above 0.05 µmol/L (EGFR-mutant IC50) in the lateral "
                                                   "ventricles, lumbar dose",
                            "time_above_h_ommaya": "hours above 0.05 µmol/L in the lateral ventricles, Ommaya dose"})
    t.to_csv(folder / "pemetrexed_route_interval.csv", index=False)
    doc.p("With the calibration's parameter uncertainty (its sampled posterior, as Table 2b): pemetrexed takes "
          "methotrexate's CSF transport values (no human intrathecal pemetrexed CSF time course was found to fit "
          "its own), so its lumbar/Ommaya ratio and interval are methotrexate's; the hours above its IC50 are its "
          "own.")
    doc.table(_shown(t), "Table 3b. Pemetrexed 30 mg, one injection, 0–7 days: fitted value and 90% interval from "
              "the calibration's parameter uncertainty (sampled posterior of the default model's calibration).",
              "pemetrexed_route_interval.csv")


def _osimertinib_uncertainty(doc: _Doc, folder: Path):
    """Osimertinib CSF/plasma at 80 vs 160 mg with the calibration's parameter uncertainty (issue 10, item 5)."""
    from pkcsf.clinical.uncertainty import dose_comparison_interval

    t = dose_comparison_interval("osimertinib", ("80 mg", "160 mg"), pathologies={"leptomeningeal_disease": True},
                                 n=ROUTE_INTERVAL_DRAWS, seed=1)
    t = _interval_table(t, {"ratio_80mg": "lumbar CSF / plasma AUC, 80 mg daily",
                            "ratio_160mg": "lumbar CSF / plasma AUC, 160 mg daily",
                            "ratio_change_160mg_vs_80mg": "change of that ratio from 80 to 160 mg"})
    t.to_csv(folder / "osimertinib_ratio_interval.csv", index=False)
    doc.p("How sure is the CSF penetration? Drawn from the calibration of osimertinib's BBB efflux (its "
          "covariance, fitted to the two published ratios, ~1% at 80 mg and 2.18% at 160 mg, in patients with "
          "leptomeningeal disease): the lumbar CSF/plasma ratio at steady state is "
          f"{_f(t['typical'][0] * 100)}% (90% interval {_f(t['p5'][0] * 100)}–{_f(t['p95'][0] * 100)}%) at both doses; "
          "with linear transport the ratio cannot change with dose in any draw. Both published ratios lie inside "
          "that interval, so the data are consistent with one ratio; the saturable variant has no interval (two "
          "data, two values: no covariance).")
    doc.table(_shown(t), "Table 5b. Osimertinib, last dosing interval of 30 days, patients with leptomeningeal "
              "disease: fitted value and 90% interval from the calibration's parameter uncertainty "
              f"({ROUTE_INTERVAL_DRAWS} draws, linearised).", "osimertinib_ratio_interval.csv")


# ------------------------------------------------------------------ figures
def _save(fig, folder: Path, name: str) -> str:
    # One draw per figure, no 'tight' box (constrained layout keeps every artist inside the canvas; the
    # tight box was the canvas plus 0.1 in, nothing cropped), minor ticks without a Tick each: see
    # pkcsf.report.figsave (the same PNG bytes as savefig after the layout).
    import matplotlib.pyplot as plt

    from pkcsf.report.figsave import save_figure

    save_figure(fig, folder / name, _DPI, facecolor="white")
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
    doc.note("**Early lumbar-route values in the cranial spaces are still fast in this (default, v2) model.** Its "
             "spinal canal is two mixed pools: since its calibration includes the cisternography timing (3 Dec "
             "2026) the cisterna magna peaks about 1 h after a lumbar dose (cisternography: 1–4 h, Dyke 2020), but "
             "the front arrives within minutes and the ventricles peak within 2–3 h, whereas with normal CSF flow "
             "cisternography shows the ventricles only at 24 h (Chamberlain 1998) and primates given a lumbar dose "
             "have ventricular peaks ~10× below the model's (Blaney 1995). The segmented canal of CNS model v3 "
             "(`model=\"v3\"`) has a slower front. Read the first hours of the lumbar curves in "
             "the ventricles as an upper estimate.")
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
    _route_uncertainty(doc, folder)
    _lm_population(doc, folder, R["mtx_lm"])
    _position(doc, folder)
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
    fig, axs = plt.subplots(1, 2, figsize=(FIG_WIDTH, 4.6), layout="constrained")
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
    _pemetrexed_uncertainty(doc, folder)
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
    doc.p("Oral osimertinib once daily for 4 weeks (Brown 2017 population PK). The CSF/plasma ratio is calibrated "
          "to two review figures (about 1% at 80 mg, 2.18% at 160 mg; flag U); the model gives about 1.5% at both "
          "doses. Concentrations here are in nmol/L, the unit of the label's IC50s.")
    doc.note("**The data do not support a CSF/plasma ratio that rises with dose.** The two review figures behind "
             "the calibration (0.08–1.12% at 80 mg, 2.18% at 160 mg) come from a 2025 review citing a 2023 paper "
             "whose primary data were not found (flag U). A saturable BBB efflux fits them exactly only with a "
             "transporter Km of about 1 nmol/L, 170–430 times below the lowest Km measured for P-gp or BCRP "
             "substrates; with Km bounded to the measured range (at least 0.59 µmol/L) the saturable variant "
             "behaves like the linear one (ratio +0.5% from 80 to 160 mg). Both variants are shown; the linear "
             "one is the default (docs/model.md).")
    axes = pp.overlay_arms(lin, ["plasma", "lumbar", "ventricular", "cisternal"], band=True, ncols=2,
                           title="osimertinib daily, linear CSF transport: median and 5–95% of virtual patients")
    doc.fig(_save(axes[0].figure, folder, "fig08_osimertinib_plasma_csf.png"),
            "Figure 8. Osimertinib 80 mg (blue) and 160 mg (vermilion) daily: plasma, lumbar, ventricular and "
            "cisterna magna CSF over 4 weeks (log scale, nmol/L; shaded 5–95% of patients). Grey lines: label IC50s "
            "(EGFR-mutant 6–54 nmol/L; wild-type 480 nmol/L).")
    fig, axs = plt.subplots(1, 2, figsize=(FIG_WIDTH, 4.8), layout="constrained", sharey=True)
    pp.ic50_ratio(lin, ax=axs[0], legend=False, title="linear CSF transport (default)")
    pp.ic50_ratio(sat, ax=axs[1], legend=False, title="saturable CSF efflux (Km in the measured transporter range)")
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
            "(vermilion) and ventricular (blue) CSF, 80 mg solid and 160 mg dashed; above 1 the CSF concentration exceeds that IC50. Reference "
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
    _osimertinib_uncertainty(doc, folder)
    tick()

    # ----------------------------------------------------------- combination
    com = R["combination"]
    doc.h(2, "5. Osimertinib 160 mg plus intrathecal pemetrexed", "combination")
    doc.p("Osimertinib 160 mg daily with intrathecal pemetrexed 30 mg by lumbar puncture on days 1, 8 and 15 "
          "(one course of Zhong 2024's schedule, 8 weeks). The model has no interaction between the two drugs: "
          "each follows its own pharmacokinetics; the figure puts them on one time line.")
    fig, axs = plt.subplots(1, 2, figsize=(FIG_WIDTH, 4.7), layout="constrained")
    arm = next(iter(com.arms))
    pp.concentration_time(com, arm, drug="osimertinib", groups=["plasma", "lumbar", "ventricular"], ax=axs[0],
                          legend=False, title="osimertinib 160 mg daily")
    pp.concentration_time(com, arm, drug="pemetrexed", groups=["plasma", "lumbar", "ventricular"], ax=axs[1],
                          legend=False, title="pemetrexed 30 mg intrathecal")
    pp.add_legend(fig, ncol=5)
    doc.fig(_save(fig, folder, "fig10_osimertinib_plus_pemetrexed.png"),
            f"Figure 10. The combination over 8 weeks (median patient, log scale, {unit_um}). Marks on the time "
            "axis: each drug's doses, daily oral osimertinib (black, left) and lumbar pemetrexed injections "
            "(vermilion triangles, right).")
    doc.table(_compact(com, ["plasma", "lumbar", "ventricular"], ["ic50_egfr_mutant_low", "ic50_egfr_mutant_high"],
                       drug="osimertinib", time_unit="d", tmax=False).drop(columns=["arm"]),
              "Table 6a. Osimertinib in the combination, 8 weeks: median (5th–95th percentile).",
              "combination_summary.csv")
    doc.table(_compact(com, ["plasma", "lumbar", "ventricular"], ["ic50_egfr_mutant", "ic50_resistant"],
                       drug="pemetrexed", time_unit="d", tmax=False).drop(columns=["arm"]),
              "Table 6b. Pemetrexed in the combination (3 injections), 8 weeks: median (5th–95th percentile).")
    tick()
    trastuzumab_section(doc, folder, R["trastuzumab"], _save, FIG_WIDTH)
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
        axes = pp.population_bands(res, groups, arms, drug=drug, log=True, title=what, rows="groups")
        doc.fig(_save(axes[0, 0].figure, folder, name), f"Figure {11 + k}. Population bands: {what} (log scale).")
    fig, axs = plt.subplots(3, 2, figsize=(FIG_WIDTH - 1.0, 10.5), layout="constrained")
    for j, g in enumerate(["plasma", "lumbar", "ventricular"]):
        pp.population_band(com, arm, drug="osimertinib", group=g, log=True, ax=axs[j, 0], legend=False,
                           title=f"osimertinib: {pp.group_label(g)}")
        pp.population_band(com, arm, drug="pemetrexed", group=g, log=True, ax=axs[j, 1], legend=False,
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
    from pkcsf.clinical.validation import counts

    by_role = counts(val)
    doc.p(" ".join(f"**{role.capitalize()} rows** ({'never fitted' if role == 'validation' else 'used in a documented fit'}): "
                   f"{n}, of which {w2} ({w2 / n:.0%}) within 2-fold and {w15} ({w15 / n:.0%}) within 1.5-fold."
                   for role, (n, w2, w15) in sorted(by_role.items(), key=lambda kv: kv[0] != "validation")))
    iv = "interval_lo" in val.columns
    if iv:
        from pkcsf.clinical.validation import miss_reach

        m = miss_reach(val)
        doc.p(f"The fitted CSF transport values are uncertain (section 1): each prediction was also made with "
              f"{val.attrs.get('n')} parameter sets of their posterior, and its 90% interval is the line through "
              f"the point in Figure 16. Of the {m['misses']} validation observations missed by more than 2-fold, "
              f"{m['reach']} have an interval that reaches within 2-fold (the calibration data do not rule them out) "
              f"and {m['outside']} do not (across the uncertainty of the fitted values the model misses them: the structure, "
              "the physiology or the observation is in question; Table 8). Values fitted afterwards on top of the "
              "CSF transport (methotrexate's CSF-side binding site, the rhesus CSF efflux) and other drugs' own "
              "calibrations are held at their fitted values.")
    ax = pp.fold_errors(val)
    doc.fig(_save(ax.figure, folder, "fig16_validation_fold_errors.png"),
            "Figure 16. Fold error of every validation observation (log scale), grouped by drug; shaded: within "
            "1.5- and 2-fold. Orange: misses with a written hypothesis; triangles: the observation is a limit."
            + (" Grey line: the 90% interval of the prediction over the CSF transport's posterior." if iv else ""))
    doc.table(_validation_summary(val), "Table 7. Validation by drug and CSF-transport variant. Fold errors over "
              "point observations (limits such as '< 10%' pass or fail on their side of the limit).", "validation.csv")
    fails = val[~val["within_2fold"].astype(bool) & (val["role"] != "pathology")]
    if len(fails):
        table, hyps = _misses(val, fails)
        doc.table(table, "Table 8. Observations missed by more than 2-fold. The hypothesis for each miss is "
                  "written once below the table (H1, H2 ...) and referenced by its number.", "validation.csv",
                  widths={"observation": "46%"})
        doc.p("**Hypotheses for the misses**")
        doc.ol(hyps, "hyp")
    tick()


def _unit_text(u) -> str:
    from pkcsf.plotting import pretty_unit

    u = "" if u is None or (isinstance(u, float) and not np.isfinite(u)) else str(u)
    return "" if u in ("", "1", "-") else " " + pretty_unit(u)


def _misses(val: pd.DataFrame, fails: pd.DataFrame):
    """Table 8 (one row per missed observation, readable labels, values with units) and the hypotheses,
    each written once: identical texts share one number; observation ids inside a text become labels.
    """
    import re

    from pkcsf.plotting import observation_label

    labels = {r.id: observation_label(r._asdict(), truncate=False) for r in val.itertuples()}
    hyps: list[str] = []
    rows = []
    for r in fails.itertuples():
        h = r.hypothesis if isinstance(r.hypothesis, str) and r.hypothesis.strip() else ""
        ref = "–"
        if h:
            h = " ".join(h.split())
            h = re.sub(r"\b(" + "|".join(map(re.escape, sorted(labels, key=len, reverse=True))) + r")\b",
                       lambda m: f"'{labels[m.group(1)]}'", h)
            if h not in hyps:
                hyps.append(h)
            ref = f"H{hyps.index(h) + 1}"
        u = _unit_text(r.unit)
        bound = {"upper": "< ", "lower": "> "}.get(str(r.bound), "")
        row = {"observation": labels[r.id], "observed": f"{bound}{_f(r.observed)}{u}",
               "predicted": f"{_f(r.predicted)}{u}", "fold error": f"{_f(r.fold_error)}x"}
        if "interval_fold_lo" in fails.columns:
            lo, hi = getattr(r, "interval_fold_lo"), getattr(r, "interval_fold_hi")
            row["90% interval"] = f"{_f(lo)}-{_f(hi)}x" if pd.notna(lo) and pd.notna(hi) else "–"
        row["hypothesis"] = ref
        rows.append(row)
    return pd.DataFrame(rows), [f"**H{k}.** {h}" for k, h in enumerate(hyps, 1)]


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
