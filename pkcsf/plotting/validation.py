"""Validation figure: fold errors of the simulated versus published observations."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pkcsf.plotting.axes import (
    _title,
    add_legend,
)
from pkcsf.plotting.style import (
    FONT,
    LABEL_FONT,
    PALETTE,
    SMALL_FONT,
    _new_axes,
    drug_label,
    pretty_unit,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

# ------------------------------------------------------------ validation
_QUANTITY_LABELS = {
    "concentration": "concentration", "peak_concentration": "peak concentration", "time_of_peak": "time of peak",
    "half_life": "half-life", "auc_ratio": "AUC ratio", "css_ratio": "steady-state ratio",
    "route_peak_ratio": "peak ratio between routes", "peak_ratio": "peak ratio", "csf_clearance": "CSF clearance",
    "auc": "AUC", "time_above": "time above", "steady_state_cmax": "steady-state Cmax",
    "steady_state_cmin": "steady-state trough", "position_peak_ratio": "peak ratio between postures",
    "position_auc_ratio": "AUC ratio between postures",
}
_SITE_LABELS = {
    "lv": "ventricular CSF", "tfv": "3rd/4th-ventricle CSF", "spinal_lumbar": "lumbar CSF", "plasma": "plasma",
    "sas_cranial": "cranial SAS CSF", "cm": "cisterna magna CSF", "lipo_lv": "ventricular CSF (encapsulated)",
    "lipo_lumbar": "lumbar CSF (encapsulated)", "plasma_az5104": "plasma AZ5104", "ommaya": "Ommaya dose",
}
_ROUTE_LABELS = {"ommaya": "Ommaya", "iv": "IV", "lumbar": "lumbar", "oral": "oral", "intracisternal": "intracisternal"}


def _text(v) -> str:
    return "" if v is None or (isinstance(v, float) and not np.isfinite(v)) else str(v).strip()


def short_source(source: object, *, truncate: bool = True) -> str:
    """A source in a few words: first author and year of a citation label; PMIDs and DOIs as they are.

    Parameters
    ----------
    source : str
        ``"label:<citation>"``, a DOI (``"10.…"``), a URL or a PMID (None or NaN gives ``""``).
    truncate : bool
        Shorten a long DOI and write a URL as "online record".

    Returns
    -------
    str
        The short text.

    Examples
    --------
    >>> short_source("label:Balis FM et al. Cancer Chemother Pharmacol 2000;45(3):259-64")
    'Balis 2000'
    """
    import re

    s = _text(source)
    if s.startswith("label:"):
        body = s[len("label:"):]
        year = re.search(r"\b(19|20)\d{2}\b", body)
        author = re.match(r"\s*([A-Z][A-Za-z'\-]+)\s+[A-Z]{1,3}\b", body)
        if author and year:
            return f"{author.group(1)} {year.group(0)}"
        return body.split(",")[0].split(" (")[0][:40]
    if s.startswith("10."):
        return "doi " + (s if len(s) <= 24 or not truncate else s[:8] + "…" + s[-10:])
    if s.startswith(("http://", "https://")):
        return "online record" if truncate else "online record, " + s
    return s


_COMPACT = {"steady-state ratio": "Css ratio", "steady-state Cmax": "Css max", "steady-state trough": "Css trough",
            "peak ratio between routes": "route peak ratio", "peak concentration": "peak", "time of peak": "Tmax",
            "3rd/4th-ventricle CSF": "4th-ventricle CSF", " (monkey)": " NHP", " variant]": "]"}


def observation_label(row: Mapping[str, Any] | Any, *, source: bool = True, variant: bool = True, drug: bool = True,
                      truncate: bool = True, compact: bool = False) -> str:
    """A validation observation in words.

    Parameters
    ----------
    row : mapping or namedtuple
        A row of :func:`pkcsf.clinical.validation.run_validation` (``drug``, ``dose_mg``, ``route``,
        ``quantity``, ``site``, ``ref``, ``time_h``, ``species``, ``variant``, ``source``).
    source : bool
        Append the short source (:func:`short_source`).
    variant : bool
        Append the model variant unless it is the linear one.
    drug : bool
        Start with the drug name.
    truncate : bool
        Shorten long DOIs and URLs in the source.
    compact : bool
        Shorter words, for figure row labels.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> observation_label({"drug": "methotrexate", "dose_mg": 10.8, "route": "ommaya", "quantity": "concentration",
    ...                    "site": "lv", "time_h": 1, "source": "PMID 806016"})
    'methotrexate 10.8 mg Ommaya: concentration, ventricular CSF, 1 h (PMID 806016)'
    """
    g = row.get if hasattr(row, "get") else (lambda k, d=None: getattr(row, k, d))
    name = drug_label(_text(g("drug"))) if drug else ""
    dose = g("dose_mg")
    try:
        dose = f" {float(dose):g} mg"
    except (TypeError, ValueError):
        dose = ""
    route = _ROUTE_LABELS.get(_text(g("route")), _text(g("route")))
    q = _text(g("quantity"))
    what = _QUANTITY_LABELS.get(q, q.replace("_", " "))
    site = _SITE_LABELS.get(_text(g("site")), _text(g("site")).replace("_", " "))
    ref = _text(g("ref"))
    if ref and q == "time_above":
        what = f"time above {pretty_unit(ref)}"
    elif ref:
        site = f"{site} / {_SITE_LABELS.get(ref, ref.replace('_', ' '))}"
    t = _text(g("time_h"))
    when = f", {t} h" if t else ""
    species = " (monkey)" if _text(g("species")).upper() == "NHP" else ""
    var = _text(g("variant"))
    tail = f" [{var} variant]" if variant and var and var != "linear" else ""
    src = f" ({short_source(g('source'), truncate=truncate)})" if source and _text(g("source")) else ""
    text = f"{name}{dose} {route}{species}: {what}, {site}{when}{tail}"
    if compact:                       # figure row labels: the same words, shorter (the table keeps them whole)
        for a, b in _COMPACT.items():
            text = text.replace(a, b)
        if len(src) > 26:
            src = src[:24] + "…)"
    return (text + src).strip()



def fold_errors(table: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None, legend: bool = True,
                variant: str | Sequence[str] | None = None) -> Axes:
    """Predicted/observed fold error of each validation observation (log axis; 1.5- and 2-fold bands shaded).

    Points are grouped by drug; bounds (limits such as "< 10 %") drawn as open triangles pointing to the
    allowed side; observations that are not judged (pathology examples) in grey.

    Parameters
    ----------
    table : DataFrame
        :func:`pkcsf.clinical.validation.run_validation` output (``fold_error``, ``drug``, ``id``,
        ``variant``, ...); with the columns of :func:`pkcsf.clinical.predictive_check.validation_intervals`
        (``interval_fold_lo``, ``interval_fold_hi``) each point gets its interval as a grey line.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure sized to the number of observations).
    title : str, optional
        Title (default: what is shown).
    legend : bool
        Add a legend below the panel.
    variant : str or list of str, optional
        Only these model variants.

    Returns
    -------
    matplotlib.axes.Axes
        The panel.
    """
    df = table.copy()
    if variant is not None:
        df = df[df["variant"].isin([variant] if isinstance(variant, str) else variant)]
    df = df[np.isfinite(df["fold_error"].astype(float)) & (df["fold_error"].astype(float) > 0)]
    df = df.sort_values(["drug", "id", "variant"], kind="stable").reset_index(drop=True)     # ids only order rows
    n = len(df)
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(10.4, max(4.0, 0.22 * n + 1.8)))
        ax = axs[0, 0]
    y = np.arange(n)[::-1]
    ax.axvspan(0.5, 2.0, color=PALETTE["sky_blue"], alpha=0.15, lw=0, label="within 2-fold")
    ax.axvspan(1 / 1.5, 1.5, color=PALETTE["sky_blue"], alpha=0.25, lw=0, label="within 1.5-fold")
    ax.axvline(1.0, color="#333333", lw=0.9)
    status = df["status"].astype(str)
    cat = np.where(status.str.startswith("pass"), "pass",
                   np.where(status.str.startswith("not judged"), "not judged",
                            np.where(status.str.contains("flagged"), "fail (hypothesis written)", "fail")))
    colors = {"pass": PALETTE["blue"], "fail (hypothesis written)": PALETTE["orange"], "fail": PALETTE["vermilion"],
              "not judged": PALETTE["grey"]}
    fe = df["fold_error"].astype(float).to_numpy()
    bound = df["bound"].astype(str).to_numpy()
    if "interval_fold_lo" in df.columns:      # the prediction's interval over a calibration's parameter sets
        lo_i, hi_i = df["interval_fold_lo"].astype(float).to_numpy(), df["interval_fold_hi"].astype(float).to_numpy()
        ok_i = np.isfinite(lo_i) & np.isfinite(hi_i) & (lo_i > 0)
        if ok_i.any():
            ax.hlines(y[ok_i], lo_i[ok_i], hi_i[ok_i], colors="#777777", lw=1.4, zorder=2,
                      label=f"{df.attrs.get('level', 0.9):.0%} interval (parameter uncertainty)")
    for c, colr in colors.items():
        sel = cat == c
        if not sel.any():
            continue
        mk = np.where(bound[sel] == "upper", "<", np.where(bound[sel] == "lower", ">", "o"))
        for m in np.unique(mk):
            s = mk == m
            ax.scatter(fe[sel][s], y[sel][s], marker=m, s=30, color=colr, zorder=3, label=c if m == "o" else None)
        if not (mk == "o").any():
            ax.scatter([], [], marker="o", s=30, color=colr, label=c)
    if (bound == "upper").any():
        ax.scatter([], [], marker="<", s=30, color="#555555", label="observation is an upper limit")
    if (bound == "lower").any():
        ax.scatter([], [], marker=">", s=30, color="#555555", label="observation is a lower limit")
    # the drug is named on the right
    lab = [observation_label(r._asdict(), drug=False, compact=True) for r in df.itertuples()]
    ax.set_yticks(y, lab, fontsize=SMALL_FONT - 0.5)
    ax.set_xscale("log")
    lo = min(0.2, fe.min() / 1.5) if n else 0.2
    hi = max(5.0, fe.max() * 1.5) if n else 5.0
    if n and "interval_fold_lo" in df.columns:
        iv = df[["interval_fold_lo", "interval_fold_hi"]].astype(float).to_numpy()
        iv = iv[np.isfinite(iv).all(axis=1) & (iv[:, 0] > 0)]
        if len(iv):
            lo, hi = min(lo, iv[:, 0].min() / 1.2), max(hi, iv[:, 1].max() * 1.2)
    ax.set_xlim(lo, hi)
    ax.set_ylim(-0.8, n - 0.2)
    ax.set_xlabel("fold error (predicted / observed)", fontsize=LABEL_FONT)
    ax.tick_params(axis="x", labelsize=FONT)
    from matplotlib.ticker import FixedLocator, NullFormatter

    ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20) if lo <= t <= hi]
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.set_xticklabels([f"{t:g}" for t in ticks])
    ax.xaxis.set_minor_formatter(NullFormatter())
    # drug separators
    drugs = df["drug"].to_numpy()
    for i in range(1, n):
        if drugs[i] != drugs[i - 1]:
            ax.axhline(y[i] + 0.5, color="#BBBBBB", lw=0.7)
    starts = [0] + [i for i in range(1, n) if drugs[i] != drugs[i - 1]]
    ends = starts[1:] + [n]
    for s, e in zip(starts, ends):
        ax.text(1.01, (y[s] + y[e - 1]) / 2, drug_label(drugs[s]), transform=ax.get_yaxis_transform(), va="center",
                fontsize=SMALL_FONT, color="#333333")
    ax.grid(True, axis="x", alpha=0.25, lw=0.6)
    _title(ax, title if title is not None else "validation: predicted / observed")
    if legend:
        add_legend(ax.figure if made else ax, ncol=3)
    return ax
