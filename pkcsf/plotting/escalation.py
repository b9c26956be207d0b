"""Dose-escalation figures: operating characteristics of designs, exposure per dose, exposure-toxicity links."""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from pkcsf.plotting.axes import (
    _log_ticks,
    _title,
    add_legend,
)
from pkcsf.plotting.style import (
    FONT,
    LABEL_FONT,
    PALETTE,
    SMALL_FONT,
    TITLE_FONT,
    _new_axes,
    _series_color,
    pretty_unit,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

#: Trial results of one or several designs: ``pkcsf.trials.TrialResults``, an escalation result
#: (``.trials``) or a dict/list of them. Named, not imported: plotting and trials are sibling layers.
TrialsLike = Any


# ------------------------------------------------------------ escalation
def _trial_dict(results) -> dict:
    """{label: TrialResults} from a TrialResults, an escalation result (``.trials``) or a dict/list of them."""
    def tr(x):
        return getattr(x, "trials", x)

    if isinstance(results, dict):
        return {str(k): tr(v) for k, v in results.items()}
    if isinstance(results, (list, tuple)):
        return {tr(v).design.split(" (")[0].split(":")[0]: tr(v) for v in results}
    t = tr(results)
    return {t.design.split(" (")[0].split(":")[0]: t}


def _dose_labels(doses, dose_unit):
    return [f"{d:g}" for d in doses], f"dose ({dose_unit})"


def _grouped(ax, trials, values, *, none=None, ylabel, dose_unit="mg", ylim=None, fmt="{:.0%}", annotate=True):
    labels = list(trials)
    first = trials[labels[0]]
    K = len(first.doses)
    cats, xlabel = _dose_labels(first.doses, dose_unit)
    if none is not None:
        cats = cats + ["none"]
    width = 0.8 / len(labels)
    for i, lab in enumerate(labels):
        v = np.asarray(values(trials[lab]), dtype=float)
        if none is not None:
            v = np.r_[v, none(trials[lab])]
        xs = np.arange(v.size) + (i - (len(labels) - 1) / 2) * width
        bars = ax.bar(xs, v, width * 0.92, color=_series_color(i), label=lab)
        if annotate and len(labels) * v.size <= 14:
            for b, val in zip(bars, v):
                ax.text(b.get_x() + b.get_width() / 2, b.get_height(), fmt.format(val), ha="center", va="bottom",
                        fontsize=SMALL_FONT - 0.5, color="#333333")
    ax.set_xticks(np.arange(len(cats)), cats, fontsize=FONT)
    ax.set_xlabel(xlabel, fontsize=LABEL_FONT)
    ax.set_ylabel(ylabel, fontsize=LABEL_FONT)
    ax.tick_params(labelsize=FONT)
    if ylim:
        ax.set_ylim(*ylim)
    ax.grid(True, axis="y", alpha=0.25, lw=0.6)
    ax.set_axisbelow(True)
    return K


def _true_mtd(t, target):
    """The dose whose true DLT probability is closest to the target (the usual definition in OC tables)."""
    p = np.asarray(t.true_p_dlt, dtype=float)
    if target is None or not np.all(np.isfinite(p)):
        return None
    return int(np.argmin(np.abs(p - target)))


def p_select(results: TrialsLike, *, target: float = 0.3, dose_unit: str = "mg", ax: Axes | None = None,
             title: str | None = None, legend: bool = True) -> Axes:
    """Probability that each dose (or none) is selected as the MTD, per design.

    The true MTD (the dose whose true DLT probability is closest to ``target``) is shaded.

    Parameters
    ----------
    results : TrialResults, escalation result, or dict or list of them
        Operating characteristics of one or several designs (:func:`pkcsf.trials.simulate_trials`,
        :func:`pkcsf.simulate_escalation`); a dict labels each design.
    target : float
        Target DLT probability: the true MTD (closest true P(DLT)) is marked.
    dose_unit : str
        Unit written on the dose axis (default ``"mg"``).
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: what is shown; ``""`` for none).
    legend : bool
        Add a legend below the panel.

    Returns
    -------
    matplotlib.axes.Axes
        Grouped bars, one group per dose plus "none".

    Examples
    --------
    >>> from pkcsf import plotting as pp, trials
    >>> res = trials.simulate_trials("3+3", [10, 20, 40], p_dlt=[0.05, 0.15, 0.4], n_trials=200, seed=1)
    >>> ax = pp.p_select(res)
    """
    trials = _trial_dict(results)
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7, 4.2))
        ax = axs[0, 0]
    _grouped(ax, trials, lambda t: t.p_select, none=lambda t: t.p_none, ylabel="P(selected as MTD)",
             dose_unit=dose_unit, ylim=(0, 1.08))
    k = _true_mtd(next(iter(trials.values())), target)
    if k is not None:
        ax.axvspan(k - 0.45, k + 0.45, color=PALETTE["yellow"], alpha=0.35, lw=0, zorder=0,
                   label=f"true MTD (P(DLT) closest to {target:.0%})")
    _title(ax, title if title is not None else "dose selected as MTD")
    if legend:
        add_legend(ax.figure if made else ax, ncol=4)
    return ax


def patients_per_dose(results: TrialsLike, *, dose_unit: str = "mg", ax: Axes | None = None,
                      title: str | None = None, legend: bool = True) -> Axes:
    """Expected number of patients treated at each dose, per design.

    Parameters
    ----------
    results : TrialResults, escalation result, or dict or list of them
        Operating characteristics of one or several designs (:func:`pkcsf.trials.simulate_trials`,
        :func:`pkcsf.simulate_escalation`); a dict labels each design.
    dose_unit : str
        Unit written on the dose axis (default ``"mg"``).
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: what is shown; ``""`` for none).
    legend : bool
        Add a legend below the panel.

    Returns
    -------
    matplotlib.axes.Axes
        Grouped bars, one group per dose.
    """
    trials = _trial_dict(results)
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7, 4.2))
        ax = axs[0, 0]
    _grouped(ax, trials, lambda t: t.mean_n, ylabel="patients treated (mean per trial)", dose_unit=dose_unit,
             fmt="{:.1f}")
    top = max(float(np.max(t.mean_n)) for t in trials.values())
    ax.set_ylim(0, top * 1.18 + 0.1)
    sizes = ", ".join(f"{k}: {t.mean_trial_size:.1f}" for k, t in trials.items())
    _title(ax, title if title is not None else f"patients per dose (mean trial size {sizes})")
    if legend:
        add_legend(ax.figure if made else ax, ncol=4)
    return ax


def dlt_rate(results: TrialsLike, *, target: float = 0.3, dose_unit: str = "mg", ax: Axes | None = None,
             title: str | None = None, legend: bool = True) -> Axes:
    """True DLT probability per dose (line) and the pooled observed DLT rate of each design (markers).

    Parameters
    ----------
    results : TrialResults, escalation result, or dict or list of them
        Operating characteristics of one or several designs (:func:`pkcsf.trials.simulate_trials`,
        :func:`pkcsf.simulate_escalation`); a dict labels each design.
    target : float
        Target DLT probability, drawn as a horizontal line.
    dose_unit : str
        Unit written on the dose axis (default ``"mg"``).
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: what is shown; ``""`` for none).
    legend : bool
        Add a legend below the panel.

    Returns
    -------
    matplotlib.axes.Axes
        The panel.
    """
    trials = _trial_dict(results)
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7, 4.2))
        ax = axs[0, 0]
    first = next(iter(trials.values()))
    K = len(first.doses)
    x = np.arange(K)
    ax.plot(x, first.true_p_dlt, color="#222222", lw=2, marker="o", ms=6, label="true P(DLT)")
    markers = ["s", "D", "^", "v", "P"]
    for i, (lab, t) in enumerate(trials.items()):
        off = (i - (len(trials) - 1) / 2) * 0.12
        ax.plot(x + off, t.observed_dlt_rate, ls="none", marker=markers[i % len(markers)], ms=7,
                color=_series_color(i), label=f"observed, {lab}", mec="white", mew=0.6)
    if target is not None:
        ax.axhline(target, color="#555555", lw=1, ls=(0, (4, 3)))
        ax.text(1.01, target, f"target\n{target:.0%}", transform=ax.get_yaxis_transform(), va="center",
                fontsize=SMALL_FONT, color="#333333")
    cats, xlabel = _dose_labels(first.doses, dose_unit)
    ax.set_xticks(x, cats, fontsize=FONT)
    ax.set_xlabel(xlabel, fontsize=LABEL_FONT)
    ax.set_ylabel("DLT probability", fontsize=LABEL_FONT)
    top = np.nanmax([np.nanmax(first.true_p_dlt)] + [np.nanmax(t.observed_dlt_rate) for t in trials.values()])
    ax.set_ylim(0, min(1.0, max(0.5, top * 1.15)))
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.tick_params(labelsize=FONT)
    ax.grid(True, alpha=0.25, lw=0.6)
    _title(ax, title if title is not None else "DLT rate: true vs observed")
    if legend:
        add_legend(ax.figure if made else ax, ncol=3)
    return ax


def _percent_formatter():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)


def exposure_by_dose(exposures: Any, doses: Any = None, *, exposure_label: str = "exposure",
                     exposure_unit: str = "", dose_unit: str = "mg", log: bool = True,
                     link: Callable[[np.ndarray], np.ndarray] | None = None, ax: Axes | None = None,
                     title: str | None = None, legend: bool = True) -> Axes:
    """Distribution of the per-patient exposure at each dose (box: quartiles; whiskers: 5-95 %).

    Parameters
    ----------
    exposures : array, list, dict, DataFrame, TrialResults or escalation result
        An array (K, m), a list of K arrays, a dict {dose: array}, a DataFrame with one column per dose, a
        TrialResults with exposure percentiles (drawn as 5-50-95 % ranges), or an escalation result with
        ``.exposures``.
    doses : array-like, shape (K,), optional
        Dose of each level (default: from ``exposures``, else 1..K).
    exposure_label : str
        Name of the exposure on its axis (``"CSF AUC"``).
    exposure_unit : str
        Unit of the exposure (written on the axis).
    dose_unit : str
        Unit written on the dose axis (default ``"mg"``).
    log : bool
        Log exposure axis.
    link : callable, optional
        Exposure -> P(DLT) (e.g. :class:`pkcsf.trials.LogisticExposureToxicity`): adds the DLT probability
        at each dose's median exposure on a second axis.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: what is shown; ``""`` for none).
    legend : bool
        Add a legend below the panel.

    Returns
    -------
    matplotlib.axes.Axes
        The panel (the second axis of ``link`` is its twin).
    """
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7, 4.2))
        ax = axs[0, 0]
    pct = None
    if hasattr(exposures, "exposures") and getattr(exposures, "exposures") is not None:
        ex = exposures.exposures
        if doses is None and hasattr(exposures, "trials"):
            doses = exposures.trials.doses
        exposures = ex
    if hasattr(exposures, "exposure_percentiles"):
        pct = np.asarray(exposures.exposure_percentiles)
        doses = exposures.doses if doses is None else doses
        data = None
    elif isinstance(exposures, dict):
        doses = list(exposures) if doses is None else doses
        data = [np.asarray(v, dtype=float).ravel() for v in exposures.values()]
    elif hasattr(exposures, "to_numpy") and hasattr(exposures, "columns"):   # DataFrame: columns = doses
        doses = list(exposures.columns) if doses is None else doses
        data = [exposures[c].dropna().to_numpy(dtype=float) for c in exposures.columns]
    else:
        data = [np.asarray(v, dtype=float).ravel() for v in exposures]
    K = len(data) if data is not None else len(pct)
    doses = np.arange(1, K + 1) if doses is None else np.asarray(doses, dtype=float)
    x = np.arange(K)
    col = PALETTE["blue"]
    if data is not None:
        clean = [d[np.isfinite(d) & ((d > 0) if log else True)] for d in data]
        ax.boxplot(clean, positions=x, widths=0.5, whis=(5, 95), showfliers=False, patch_artist=True,
                   boxprops=dict(facecolor=col, alpha=0.35, edgecolor=col),
                   medianprops=dict(color="#222222", lw=1.6), whiskerprops=dict(color=col),
                   capprops=dict(color=col), tick_labels=[f"{d:g}" for d in doses])
        ax.plot([], [], color=col, lw=6, alpha=0.35, label="25-75 % (whiskers 5-95 %)")
        allv = np.concatenate([c for c in clean if c.size]) if any(c.size for c in clean) else np.array([1.0])
    else:
        ax.errorbar(x, pct[:, 1], yerr=[pct[:, 1] - pct[:, 0], pct[:, 2] - pct[:, 1]], fmt="o", color=col,
                    capsize=4, label="median (5-95 %) of treated patients")
        ax.set_xticks(x, [f"{d:g}" for d in doses])
        allv = pct[np.isfinite(pct)].ravel()
    if log:
        ax.set_yscale("log")
        _log_ticks(ax)
    ax.set_xlabel(f"dose ({dose_unit})", fontsize=LABEL_FONT)
    ax.set_ylabel(f"{exposure_label}" + (f" ({pretty_unit(exposure_unit)})" if exposure_unit else ""),
                  fontsize=LABEL_FONT)
    ax.tick_params(labelsize=FONT)
    ax.grid(True, axis="y", which="major", alpha=0.25, lw=0.6)
    if link is not None and allv.size:
        # P(DLT) that the link gives at each dose's median exposure, on a second axis
        med = [np.median(c) if c.size else np.nan for c in clean] if data is not None else list(pct[:, 1])
        p = np.asarray(link(np.asarray(med, dtype=float)), dtype=float)
        ax2 = ax.twinx()
        ax2.plot(x, p, color=PALETTE["vermilion"], marker="o", lw=1.5, label="P(DLT) at the median exposure (link)")
        ax2.set_ylabel("P(DLT) from the link", fontsize=LABEL_FONT, color=PALETTE["vermilion"])
        ax2.yaxis.set_major_formatter(_percent_formatter())
        ax2.set_ylim(0, min(1.0, max(0.5, float(np.nanmax(p)) * 1.2)))
        ax2.tick_params(labelsize=FONT, colors=PALETTE["vermilion"])
    _title(ax, title if title is not None else f"{exposure_label} per dose")
    if legend:
        add_legend(ax.figure if made else ax, ncol=2)
    return ax


def exposure_toxicity(link: Any, exposures: Any = None, doses: Any = None, *, exposure_label: str = "exposure",
                      exposure_unit: str = "", dose_unit: str = "mg", target: float = 0.3, ax: Axes | None = None,
                      title: str | None = None, legend: bool = True) -> Axes:
    """An exposure-toxicity link as a curve (P(DLT) against exposure, log axis), with each dose's exposure range.

    For each dose a horizontal bar spans the 5-95 % exposure of its patients at the height of the
    DLT probability at the median exposure (dot), labelled with the dose.

    Parameters
    ----------
    link : callable or escalation result
        Exposure -> P(DLT) (e.g. :class:`pkcsf.trials.LogisticExposureToxicity`), or an escalation result
        whose ``.link``, ``.exposures``, ``.doses`` and ``.exposure_unit`` are used.
    exposures : optional
        Per-patient exposures per dose, as in :func:`exposure_by_dose`.
    doses : array-like, optional
        Dose of each level (labels).
    exposure_label : str
        Name of the exposure on its axis (``"CSF AUC"``).
    exposure_unit : str
        Unit of the exposure (written on the axis).
    dose_unit : str
        Unit written on the dose axis (default ``"mg"``).
    target : float
        Target DLT probability, drawn as a horizontal line.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: what is shown; ``""`` for none).
    legend : bool
        Add a legend below the panel.

    Returns
    -------
    matplotlib.axes.Axes
        The panel.
    """
    if hasattr(link, "link") and hasattr(link, "exposures"):
        res = link
        link, exposures = res.link, res.exposures if exposures is None else exposures
        doses = res.doses if doses is None else doses
        exposure_unit = exposure_unit or getattr(res, "exposure_unit", "")
        if exposure_label == "exposure" and getattr(res, "exposure", None) is not None:
            exposure_label = str(getattr(res.exposure, "label", exposure_label))
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7.5, 4.4))
        ax = axs[0, 0]
    pools = [] if exposures is None else [np.asarray(e, dtype=float).ravel() for e in exposures]
    pools = [e[np.isfinite(e) & (e > 0)] for e in pools]
    allv = np.concatenate(pools) if pools and any(p.size for p in pools) else np.array([getattr(link, "e50", 1.0)])
    e50 = getattr(link, "e50", float(np.median(allv)))
    lo, hi = min(allv.min(), e50) / 3, max(allv.max(), e50) * 3
    e = np.geomspace(lo, hi, 300)
    ax.plot(e, link(e), color=PALETTE["vermilion"], lw=2, label="P(DLT) given by the link")
    if target is not None:
        ax.axhline(target, color="#6E6E6E", lw=1, ls=(0, (4, 3)))
        ax.text(1.01, target, f"target\n{target:.0%}", transform=ax.get_yaxis_transform(), va="center",
                fontsize=SMALL_FONT, color="#333333")
    if pools:
        doses = np.arange(1, len(pools) + 1) if doses is None else np.asarray(doses, dtype=float)
        for k, (d, pool) in enumerate(zip(doses, pools)):
            if not pool.size:
                continue
            a, m, b = np.percentile(pool, [5, 50, 95])
            pm = float(link(np.array([m]))[0])
            ax.plot([a, b], [pm, pm], color=PALETTE["blue"], lw=3, alpha=0.45, solid_capstyle="butt",
                    label="5-95 % of patients' exposure" if k == 0 else None)
            ax.plot([m], [pm], "o", color=PALETTE["blue"], ms=5, label="median exposure of a dose" if k == 0 else None)
            ax.annotate(f"{d:g} {dose_unit}", (b, pm), xytext=(4, 0), textcoords="offset points", va="center",
                        fontsize=SMALL_FONT, color="#333333")
    ax.set_xscale("log")
    ax.set_xlim(lo, hi)
    _log_ticks(ax, "x")
    ax.set_ylim(0, 1.02)
    ax.yaxis.set_major_formatter(_percent_formatter())
    ax.set_xlabel(f"{exposure_label}" + (f" ({pretty_unit(exposure_unit)})" if exposure_unit else ""),
                  fontsize=LABEL_FONT)
    ax.set_ylabel("probability of a DLT", fontsize=LABEL_FONT)
    ax.tick_params(labelsize=FONT)
    ax.grid(True, alpha=0.25, lw=0.6)
    _title(ax, title if title is not None else "exposure-toxicity link")
    if legend:
        add_legend(ax.figure if made else ax, ncol=3)
    return ax


def escalation(results: TrialsLike, *, exposures: Any = None, exposure_label: str = "exposure",
               exposure_unit: str = "", target: float = 0.3, dose_unit: str = "mg",
               link: Callable[[np.ndarray], np.ndarray] | None = None, axes: Any = None, title: str | None = None,
               legend: bool = True) -> np.ndarray:
    """Operating characteristics of dose-escalation designs on a 2 x 2 grid.

    P(select) per dose (and none), patients per dose, DLT rate true vs observed, and the exposure
    distribution per dose (the panel is left out when there is no exposure).

    Parameters
    ----------
    results : TrialResults, escalation result, or dict or list of them
        Operating characteristics of one or several designs (:func:`pkcsf.trials.simulate_trials`,
        :func:`pkcsf.simulate_escalation`); a dict labels each design.
    exposures : optional
        Per-patient exposures per dose (as in :func:`exposure_by_dose`); default: the result's
        ``.exposures`` or the exposure percentiles of the trial results.
    exposure_label : str
        Name of the exposure on its axis (``"CSF AUC"``).
    exposure_unit : str
        Unit of the exposure (written on the axis).
    target : float
        Target DLT probability: the true MTD (closest true P(DLT)) is marked.
    dose_unit : str
        Unit written on the dose axis (default ``"mg"``).
    link : callable, optional
        Exposure -> P(DLT), drawn on the exposure panel.
    axes : array of 4 Axes, optional
        Draw into these (default: a new 2 x 2 figure).
    title : str, optional
        Figure title.
    legend : bool
        Add one legend below the panels.

    Returns
    -------
    ndarray of Axes, shape (4,)
        P(select), patients per dose, DLT rate, exposure.

    Examples
    --------
    >>> from pkcsf import plotting as pp, trials
    >>> res = {d: trials.simulate_trials(d, [10, 20, 40], p_dlt=[0.05, 0.15, 0.4], n_trials=200, seed=1)
    ...        for d in ("3+3", "boin")}
    >>> pp.escalation(res).shape
    (4,)
    """
    trials = _trial_dict(results)
    if exposures is None:
        for v in (results.values() if isinstance(results, dict) else
                  (results if isinstance(results, (list, tuple)) else [results])):
            if getattr(v, "exposures", None) is not None:
                exposures = v
                break
        else:
            first = next(iter(trials.values()))
            if first.exposure_percentiles is not None:
                exposures = first
    made = axes is None
    if made:
        fig, axs = _new_axes(2, 2, figsize=(12.5, 8.2))
        axes = axs
    axes = np.asarray(axes, dtype=object).ravel()
    p_select(trials, target=target, dose_unit=dose_unit, ax=axes[0], legend=False)
    patients_per_dose(trials, dose_unit=dose_unit, ax=axes[1], legend=False)
    dlt_rate(trials, target=target, dose_unit=dose_unit, ax=axes[2], legend=False)
    if exposures is not None:
        exposure_by_dose(exposures, next(iter(trials.values())).doses, exposure_label=exposure_label,
                         exposure_unit=exposure_unit, dose_unit=dose_unit, link=link, ax=axes[3], legend=False)
    else:
        axes[3].set_axis_off()
        axes[3].text(0.5, 0.5, "no exposure input\n(toxicity given as P(DLT) per dose)", ha="center",
                     va="center", fontsize=FONT, color="#555555", transform=axes[3].transAxes)
    if made and title:
        axes[0].figure.suptitle(title, fontsize=TITLE_FONT + 1)
    if legend:
        add_legend(axes[0].figure if made else list(axes[:3]), ncol=6)
    return axes
