"""Report section 5b: intrathecal trastuzumab, weekly by lumbar puncture or Ommaya against IV every 3 weeks, with
its check against Le Tilly 2021's population model (the held-out rows ``tra_letilly21_*``).
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

import pandas as pd

from pkcsf.report.findings import _compact, _f, _med

if TYPE_CHECKING:
    from pkcsf.clinical.scenario_results import ScenarioResult
    from pkcsf.report.html import _Doc

#: the report scenario's arms (name -> regimen text); patients with the leptomeningeal barrier state
TRASTUZUMAB_ARMS = {
    "IT 150 mg weekly (lumbar)": "150 mg lumbar weekly x 8",
    "IT 150 mg weekly (Ommaya)": "150 mg ommaya weekly x 8",
    "IV 6 mg/kg every 3 weeks": "6 mg/kg iv every 3 weeks x 3",
}
#: the held-out observations this section reports (observations_v3_candidates.csv)
LETILLY_ROWS = "tra_letilly21_"


def letilly_check() -> pd.DataFrame:
    """The model against Le Tilly 2021's typical-patient values (held-out rows ``tra_letilly21_*``): one row each,
    with observed, predicted and fold error (:func:`pkcsf.clinical.validation.run_validation`).

    Returns
    -------
    DataFrame
        The validation rows (``id``, ``quantity``, ``site``, ``observed``, ``predicted``, ``unit``, ``fold_error``).
    """
    from pkcsf.clinical.observations import load_observations
    from pkcsf.clinical.validation import run_validation

    obs = load_observations("observations_v3_candidates")
    return run_validation(obs[obs["id"].str.startswith(LETILLY_ROWS)].reset_index(drop=True))


def _fold(v: pd.DataFrame, rid: str) -> float:
    return float(v.loc[v["id"] == LETILLY_ROWS + rid, "fold_error"].iloc[0])


def trastuzumab_section(doc: _Doc, folder: Path, res: ScenarioResult, save: Callable, width: float) -> None:
    """Section 5b of the report: figure 10b, table 6c and the check against the published population model.

    Parameters
    ----------
    doc : _Doc
        The report being written.
    folder : Path
        Where the figure goes.
    res : ScenarioResult
        The report's ``trastuzumab`` scenario (arms :data:`TRASTUZUMAB_ARMS`).
    save : callable
        ``save(fig, folder, name) -> name``: the report's figure writer.
    width : float
        Figure width (inches), the report's widest.
    """
    import pkcsf.plotting as pp

    it_l, it_o, iv = TRASTUZUMAB_ARMS
    doc.h(2, "5b. Intrathecal trastuzumab", "trastuzumab")
    doc.p("HER2-positive breast cancer with leptomeningeal metastases: trastuzumab 150 mg once a week for 8 weeks "
          "by lumbar puncture or Ommaya reservoir (the highest dose of the phase I/II trial of Bonneau 2018), "
          "against the intravenous maintenance dose, 6 mg/kg every 3 weeks (each virtual patient's weight). All "
          "patients have the opened blood–CSF barrier of leptomeningeal disease. The grey line is the trial's "
          "target CSF concentration, 30 mg/L.")
    fig, axs = pp._plt().subplots(1, 3, figsize=(width, 4.6), layout="constrained")
    pp.overlay_arms(res, ["lumbar", "ventricular", "plasma"], band=True, axes=axs, legend=False)
    fig.suptitle("trastuzumab: intrathecal weekly vs intravenous every 3 weeks")
    pp.add_legend(fig, ncol=3)
    doc.fig(save(fig, folder, "fig10b_trastuzumab_it_vs_iv.png"),
            "Figure 10b. Trastuzumab over 8 weeks, median patient and 5–95% of patients (log scale, mg/L), in the "
            "lumbar sac, the ventricles and plasma.")
    v = letilly_check()
    lum = _med(res, it_l, "lumbar", "auc") / _med(res, iv, "lumbar", "auc")
    ven = _med(res, it_o, "ventricular", "auc") / _med(res, iv, "ventricular", "auc")
    pl = _med(res, it_l, "plasma", "auc") / _med(res, iv, "plasma", "auc")
    trough = float(v.loc[v["id"] == LETILLY_ROWS + "it_csf_trough_derived", "predicted"].iloc[0])
    obs = v.set_index("id")["observed"]
    published = obs[LETILLY_ROWS + "it_csf_auc"] / obs[LETILLY_ROWS + "iv_csf_auc"]   # 150 mg IT vs 120 mg IV weekly
    doc.h(3, "What the numbers say")
    doc.ul([
        f"Intrathecal dosing gives the CSF {_f(lum)} times the 8-week AUC of intravenous dosing in the lumbar sac "
        f"(lumbar puncture) and {_f(ven)} times in the ventricles (Ommaya); the trial's population model gives "
        f"{_f(published)} times for 150 mg intrathecal against 120 mg intravenous weekly. The intrathecal dose reaches blood "
        f"with the CSF's bulk flow: plasma AUC {_f(pl)} times that of the intravenous regimen (8 × 150 mg "
        "against 3 × 6 mg/kg).",
        "Against the published population model of the same trial's patients (Le Tilly 2021, typical patient; "
        "held-out, never fitted): the CSF AUC of 150 mg weekly is "
        f"{_f(_fold(v, 'it_csf_auc'))}× its value, serum AUC {_f(_fold(v, 'it_serum_auc'))}×, and after IV dosing "
        f"CSF {_f(_fold(v, 'iv_csf_auc'))}× and serum {_f(_fold(v, 'iv_serum_auc'))}×.",
        "**The CSF troughs disagree.** A week after 150 mg the model's lumbar CSF holds "
        f"{_f(trough)} mg/L, fed from plasma, where the population model's typical trough is about 30 mg/L "
        f"({_f(_fold(v, 'it_csf_trough_derived'))}×): the model washes an intrathecal antibody out with the bulk "
        "flow within a day (as cynomolgus monkeys do, half-life 5 h), the population model holds it for days. "
        "Read the time above 30 mg/L as a lower estimate (docs/validation.md gives the hypotheses).",
    ])
    t = _compact(res, ["lumbar", "ventricular", "plasma"], ["target"], time_unit="d", tmax=False)
    doc.table(t, "Table 6c. Trastuzumab over 8 weeks: median (5th–95th percentile) over virtual patients.",
              "trastuzumab_summary.csv")
