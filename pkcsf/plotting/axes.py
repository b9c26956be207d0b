"""Result access and axis helpers shared by the plotting modules: time and concentration axes, log limits,
threshold lines and their labels, legends.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from pkcsf.plotting.style import (
    FONT,
    LABEL_FONT,
    PALETTE,
    ROUTE_COLORS,
    ROUTE_LABELS,
    SMALL_FONT,
    TITLE_FONT,
    _fmt,
    pretty_unit,
    threshold_text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.legend import Legend

#: What the figures read: a scenario result (``pkcsf.clinical.scenario.ScenarioResult``) or one of its
#: arms (``ArmResult``). Named in the docs, not imported: plotting sits below the clinical layer
#: (tests/test_layers.py), and reads only the attributes ``arms``, ``profiles``, ``groups``, ``times``.
ScenarioLike = Any


# ------------------------------------------------------------ result access
def _arm(result, arm):
    """(name, ArmResult) of a ScenarioResult (default: the first arm) or an ArmResult itself."""
    if hasattr(result, "arms"):
        if arm is None:
            arm = next(iter(result.arms))
        return arm, result[arm]
    return getattr(result, "name", arm), result


def _unit(result) -> str:
    one = getattr(result, "_one_unit", None)
    if one is not None:          # a scenario result: refuses arms in different units (one axis, one unit)
        return one("plotting")
    return getattr(result, "unit", None) or getattr(getattr(result, "scenario", None), "unit", "umol/L")


def _drug(a, drug):
    if drug is None:
        return next(iter(a.profiles))
    if drug not in a.profiles:
        from pkcsf.core.errors import ScenarioError, check_choice

        check_choice("drug", drug, list(a.profiles), ScenarioError)
    return drug


def _groups(a, drug, groups):
    have = a.groups[drug]
    if groups is None:
        return list(have)
    if isinstance(groups, str):
        groups = [groups]
    for g in groups:
        if g not in have:
            from pkcsf.core.errors import ScenarioError, check_choice

            check_choice("group", g, have, ScenarioError)
    return list(groups)


def _present(a, drug, groups):
    """The requested groups this arm has (all when None); in a comparison, arms may differ (liposomal groups)."""
    if groups is None:
        return list(a.groups[drug])
    groups = [groups] if isinstance(groups, str) else list(groups)
    have = [g for g in groups if g in a.groups[drug]]
    if not have:
        _groups(a, drug, groups)      # raises with the valid names
    return have


def _profile(a, drug, group, stat):
    """Concentration-time line of one group: the median of the band subjects or the typical subject."""
    g = a.groups[drug].index(group)
    if stat == "typical" or a.profiles[drug].shape[0] == 1:
        return a.typical[drug][:, g]
    if stat == "median":
        x = a.profiles[drug][:, :, g]
        # np.median when nothing is missing: the same values (the middle one, or the mean of the middle
        # two), without nanmedian's masked-array pass (~4x slower, 0.4 s of the report's figures)
        return np.nanmedian(x, axis=0) if np.isnan(x).any() else np.median(x, axis=0)
    if stat == "mean":
        return np.nanmean(a.profiles[drug][:, :, g], axis=0)
    from pkcsf.core.errors import ScenarioError, check_choice

    check_choice("stat", stat, ["median", "typical", "mean"], ScenarioError)


def _drug_obj(result, drug):
    """The drug object (MW, thresholds, sources) behind ``drug``: the object itself, or the result's own.

    Plotting sits below the clinical layer and never loads drugs itself: a scenario result knows its
    drugs (``result.drug_info(name)``).
    """
    if drug is None or hasattr(drug, "mw"):
        return drug
    lookup = getattr(result, "drug_info", None)
    if lookup is None:
        from pkcsf.core.errors import ScenarioError

        raise ScenarioError("drug", drug, "a drug object, or a result that knows its drugs (a ScenarioResult)")
    return lookup(drug)



def _thresholds(result, drug, which=True) -> list[tuple[str, float]]:
    """(name, value in the result's unit) of the thresholds to draw: the scenario's own or the drug's sourced ones."""
    if which is False or which is None:
        return []
    from pkcsf.core.units import concentration_factor, parse_quantity

    d = _drug_obj(result, drug)
    fac = concentration_factor(_unit(result), d.mw)
    spec = getattr(getattr(result, "scenario", None), "thresholds", None)
    if isinstance(spec, dict):
        spec = spec.get(d.name)
    out = []
    if spec is None:
        out = [(k, v * fac) for k, v in d.thresholds.items()]
    else:
        for s in ([spec] if isinstance(spec, (str, int, float)) else spec):
            out.append((str(s), parse_quantity(s, "concentration", mw=d.mw, default_unit="mg/L") * fac))
    if which is not True:
        names = [which] if isinstance(which, str) else list(which)
        out = [t for t in out if t[0] in names]
    return out


def _given(drug, name, unit) -> str:
    """The threshold as its source gives it (e.g. '0.1 µg/mL') when that unit differs from the plot's, else ''."""
    if drug is None:
        return ""
    try:
        v = drug.parameters.thresholds.get(name)
    except AttributeError:
        return ""
    if v is None or pretty_unit(v.unit) == pretty_unit(unit):
        return ""
    return f"{_fmt(v.given)} {pretty_unit(v.unit)}"


# ----------------------------------------------------------------- time axis
def _days(times) -> bool:
    t = np.asarray(times, dtype=float)
    return t.size > 0 and (t[-1] - t[0]) > 72.0


def _x(times, days: bool):
    t = np.asarray(times, dtype=float)
    return t / 24.0 if days else t


def _time_axis(ax, times, days: bool, label=True):
    from matplotlib.ticker import MultipleLocator

    t = np.asarray(times, dtype=float)
    span = (t[-1] - t[0]) / (24.0 if days else 1.0) if t.size else 1.0
    if days:
        major, minor = ((1, None) if span <= 10 else (2, 1) if span <= 16 else (7, 1) if span <= 63
                        else (14, 7) if span <= 130 else (28, 7))
    else:
        major, minor = ((1, None) if span <= 8 else (2, 1) if span <= 16 else (6, 1) if span <= 36 else (12, 6))
    ax.xaxis.set_major_locator(MultipleLocator(major))
    if minor:
        ax.xaxis.set_minor_locator(MultipleLocator(minor))
    x0, x1 = _x(t[0], days), _x(t[-1], days)
    ax.set_xlim(x0 - 0.012 * (x1 - x0), x1)     # a little room so a dose marker at time 0 is not hidden
    if label:
        ax.set_xlabel("time after first dose (" + ("days" if days else "h") + ")", fontsize=LABEL_FONT)
    ax.tick_params(labelsize=FONT)


def _conc_axis(ax, unit, what="concentration", label=True):
    if label:
        ax.set_ylabel(f"{what} ({pretty_unit(unit)})", fontsize=LABEL_FONT)
    ax.tick_params(labelsize=FONT)


def _dose_markers(ax, a, days: bool, drug=None, size=7):
    """Small route-coloured triangles at the dose times, on the time axis (inside the panel)."""
    import matplotlib.transforms as mtransforms

    reg = getattr(a, "regimen", None)
    if reg is None:
        return
    trans = mtransforms.blended_transform_factory(ax.transData, ax.transAxes)
    by_route = {}
    arm_drugs = list(getattr(a, "profiles", {}) or [])
    for d in reg.expand():
        dd = d.drug or (arm_drugs[0] if len(arm_drugs) == 1 else None)
        if drug is not None and dd not in (None, drug):
            continue
        by_route.setdefault(d.site, []).append(d.time)
    for route, ts in by_route.items():
        ts = np.unique(ts)
        many = ts.size > 40
        ax.scatter(_x(ts, days), np.full(ts.size, 0.0), transform=trans, marker="|" if many else "^",
                   s=size ** 2 * (0.6 if many else 1.0), color=ROUTE_COLORS.get(route, PALETTE["grey"]),
                   clip_on=False, zorder=5, lw=1.0 if many else 0.6, edgecolors="white" if not many else None,
                   label=ROUTE_LABELS.get(route, f"{route} dose"))


def _tail_min(y) -> float:
    """Lowest positive value a curve takes after its own peak (its trough or washed-out tail)."""
    y = np.asarray(y, dtype=float)
    if not np.any(y > 0):
        return np.inf
    k = int(np.nanargmax(y))
    t = y[k:]
    t = t[t > 0]
    return float(t.min()) if t.size else np.inf


def _set_log_limits(ax, peak: float, thresholds, floor: float, tail: float = 0.0):
    """Log y-limits: from ``floor`` x peak, or half the lowest value the curves reach after their peaks when
    that is higher (no empty decades under a steady state), lowered to show a threshold (never below
    1e-6 x peak), up to 2 x peak (raised to show a threshold up to 10 x peak).
    """
    if not np.isfinite(peak) or peak <= 0:
        peak = max([v for _, v in thresholds if v > 0], default=1.0)
    lo = peak * floor
    if np.isfinite(tail) and tail > 0:
        lo = max(lo, tail / 2.0)
    hi = peak * 2.0
    for _, v in thresholds:
        if peak * 1e-6 <= v < lo * 1.2:
            lo = min(lo, v / 2.0)
        if hi < v <= peak * 10:
            hi = v * 1.6
    lo = _round_down(lo)
    ax.set_yscale("log")
    ax.set_ylim(lo, hi)
    _log_ticks(ax)


def _round_down(lo: float) -> float:
    """Move a log-axis floor down to the decade (or 2x / 5x the decade) just below it, so the bottom tick is
    labelled: 0.13 -> 0.1, 0.034 -> 0.02.
    """
    if not (np.isfinite(lo) and lo > 0):
        return lo
    d = 10.0 ** np.floor(np.log10(lo))
    for m in (5.0, 2.0, 1.0):
        if m * d <= lo:
            return m * d
    return d


def _plain(v: float) -> str:
    """Tick label in plain decimals (0.001, 0.05, 20, 1000); powers of ten only outside 1e-4 .. 1e5."""
    if v <= 0:
        return "0"
    e = int(np.floor(np.log10(v) + 1e-9))
    if -4 <= e <= 5:
        digits = max(0, -e)
        return f"{v:.{digits}f}" if e < 0 else f"{v:.0f}"
    m = v / 10 ** e
    return f"$10^{{{e}}}$" if abs(m - 1) < 1e-6 else f"${m:g}\\times10^{{{e}}}$"


def _log_ticks(ax, axis="y"):
    """Readable log ticks: plain decimals; 1-2-5 steps when the axis spans < 2.5 decades, else decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    a = ax.yaxis if axis == "y" else ax.xaxis
    lo, hi = ax.get_ylim() if axis == "y" else ax.get_xlim()
    if lo <= 0 or hi <= 0:
        return
    decades = np.log10(hi / lo)
    subs = (1.0, 2.0, 5.0) if decades < 2.5 else (1.0,)
    a.set_major_locator(LogLocator(base=10, subs=subs, numticks=12))
    a.set_major_formatter(FuncFormatter(lambda v, _: _plain(v)))
    a.set_minor_locator(LogLocator(base=10, subs=np.arange(2, 10) * 1.0, numticks=12))
    a.set_minor_formatter(NullFormatter())


def _set_linear_limits(ax, peak: float, thresholds):
    if not np.isfinite(peak) or peak <= 0:
        peak = 1.0
    hi = peak * 1.08
    for _, v in thresholds:
        if hi < v <= peak * 1.6:
            hi = v * 1.08
    ax.set_ylim(0, hi)


THRESHOLD_STYLE = dict(color="#6E6E6E", lw=1.0, ls=(0, (7, 2, 1.5, 2)), zorder=1)


def _threshold_lines(ax, thresholds, unit, *, labels=True, drug=None, short=False):
    """Grey dash-dot lines at the thresholds, labelled right of the panel (name, value; the source's own unit
    when it differs), pushed apart so labels never overlap; thresholds off the scale are left out.
    ``short=True`` writes the value only (for inner panels of a grid).
    """
    if not thresholds:
        return
    import matplotlib.transforms as mtransforms

    lo, hi = ax.get_ylim()
    log = ax.get_yscale() == "log"

    def frac(v):
        if log:
            return (np.log10(v) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))
        return (v - lo) / (hi - lo)

    items = []
    for name, v in sorted(thresholds, key=lambda t: t[1]):
        if v <= 0 or v < lo or v > hi:
            continue          # off the scale: not drawn (the limits already include thresholds near the data)
        ax.axhline(v, **THRESHOLD_STYLE)
        value = f"{_fmt(v)} {pretty_unit(unit)}"
        text = value if short else threshold_text(name, v, unit, _given(drug, name, unit))
        items.append([frac(v), text])
    if not labels or not items:
        return
    # push labels apart (axes fraction), keeping their order
    items.sort(key=lambda it: it[0])
    gap = 0.05 if short else 0.085
    for k in range(1, len(items)):
        if items[k][0] - items[k - 1][0] < gap:
            items[k][0] = items[k - 1][0] + gap
    if items[-1][0] > 1.05:
        shift = items[-1][0] - 1.05
        for it in items:
            it[0] -= shift
    trans = mtransforms.blended_transform_factory(ax.transAxes, ax.transAxes)
    for y, text in items:
        ax.text(1.015, y, text, transform=trans, fontsize=SMALL_FONT, va="center", ha="left", color="#333333",
                clip_on=False, linespacing=1.0, gid="threshold-label")


def _strip_threshold_labels(ax):
    for t in list(ax.texts):
        if t.get_gid() == "threshold-label":
            t.remove()


def add_legend(fig_or_axes: Figure | Axes | Sequence[Axes], *, ncol: int | None = None, where: str = "below",
               title: str | None = None, extra: Iterable[tuple[Any, str]] | None = None) -> Legend | None:
    """One legend for a figure (or an Axes), built from the unique labels of its panels, outside the data.

    Parameters
    ----------
    fig_or_axes : Figure, Axes or sequence of Axes
        A figure gets one legend for all its panels; Axes get it beside the last one.
    ncol : int, optional
        Columns (default: up to 4 below, 1 on the right), reduced so the entries fit the figure width.
    where : {"below", "right"}
        Centred under the panels, or right of them.
    title : str, optional
        Legend title.
    extra : iterable of (handle, label), optional
        Entries to add after those of the panels.

    Returns
    -------
    matplotlib.legend.Legend or None
        None when no panel has a labelled artist.
    """
    axes = _as_axes_list(fig_or_axes)
    fig = axes[0].figure
    handles, labels = [], []
    for ax in axes:
        for h, l in zip(*ax.get_legend_handles_labels()):
            if l and not l.startswith("_") and l not in labels:
                handles.append(h)
                labels.append(l)
    if extra:
        for h, l in extra:
            handles.append(h)
            labels.append(l)
    if not handles:
        return None
    if ncol is None:
        ncol = min(len(labels), 4 if where == "below" else 1)
    if where == "below":
        # entries must fit the figure width: ~0.068 in per character at this font, plus the handle
        width = fig.get_figwidth() if len(axes) > 1 or is_fig_target(fig_or_axes) else \
            fig.get_figwidth() * axes[0].get_position().width
        per = max(len(l) for l in labels) * 0.068 + 0.75
        ncol = max(1, min(ncol, int(width // per)))
    kw = dict(ncol=ncol, fontsize=FONT - 0.5, frameon=False, title=title)
    is_fig = hasattr(fig_or_axes, "get_axes") and not hasattr(fig_or_axes, "plot")
    if is_fig:
        engine = fig.get_layout_engine()
        if engine is not None and type(engine).__name__ == "ConstrainedLayoutEngine":
            loc = "outside lower center" if where == "below" else "outside right upper"
            return fig.legend(handles, labels, loc=loc, **kw)
        if where == "below":
            return fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.0), **kw)
        return fig.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.0, 1.0), **kw)
    ax = axes[-1]
    if where == "below":
        return ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.2), **kw)
    return ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.25, 1.0), **kw)


def is_fig_target(obj: object) -> bool:
    """True for a Figure (draw one legend for all its panels), False for an Axes.

    Parameters
    ----------
    obj : Figure, Axes or other
        What a plotting function was given to draw its legend on.

    Returns
    -------
    bool
        Whether ``obj`` is a figure (has ``get_axes`` but no ``plot``).
    """
    return hasattr(obj, "get_axes") and not hasattr(obj, "plot")


def _as_axes_list(obj):
    if hasattr(obj, "get_axes") and not hasattr(obj, "plot"):
        return [a for a in obj.get_axes() if a.get_label() != "<colorbar>"]
    if hasattr(obj, "plot"):
        return [obj]
    return list(np.asarray(obj, dtype=object).ravel())


def _title(ax, text):
    if text:
        ax.set_title(text, fontsize=TITLE_FONT, loc="left")
