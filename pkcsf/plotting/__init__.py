"""Plots of pkcsf results, for clinicians: thin functions that take results or frames and return Axes.

Every function takes a result (:class:`pkcsf.clinical.scenario.ScenarioResult`,
:class:`pkcsf.trials.TrialResults`, an escalation result with ``.trials``, or
the validation table of :func:`pkcsf.clinical.validation.run_validation`), draws on the
``ax``/``axes`` given (or on a new figure) and returns the Axes (or the array of
Axes) so that plots compose::

    import pkcsf as pk
    from pkcsf import plotting as pp
    res = pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once", "ommaya": "12 mg ommaya once"},
                           subjects=200, days=4)
    axes = pp.overlay_arms(res, ["ventricular", "lumbar"])     # one panel per compartment, one line per route
    ax = pp.population_band(res, "lumbar", group="ventricular")  # median, 5-95 % band, typical subject dashed
    axes[0].figure.savefig("mtx.png", dpi=150)

Conventions (the same in every plot):

* concentrations in the result's unit (µmol/L by default), written on every axis;
* time in hours up to 3 days, in days beyond, counted from the first dose;
* thresholds (the drug's sourced cytotoxic levels or IC50s, or the scenario's own) as grey lines
  labelled with name and value to the right of the panel (thresholds far off the scale are left out);
* dose times as small triangles on the time axis, coloured by route (lumbar vermilion, Ommaya blue,
  oral black ...);
* log axes are floored at ``floor`` x the highest plotted value (default 1e-4: four decades), or
  lower to show a threshold, never at the 1e-30 noise of a washed-out compartment;
* the Okabe-Ito colour-blind-safe palette; each compartment keeps its colour across figures;
* legends below the panels, outside the data.

matplotlib is imported lazily (importing :mod:`pkcsf` does not import it); without a display and
without an explicit ``MPLBACKEND`` the non-interactive Agg backend is used.
"""
from __future__ import annotations

import os
import sys

import numpy as np

__all__ = [
    "PALETTE", "GROUP_COLORS", "GROUP_LABELS", "ROUTE_COLORS",
    "concentration_time", "linear_and_log", "compare_arms", "overlay_arms",
    "population_band", "population_bands", "time_above", "ic50_ratio",
    "p_select", "patients_per_dose", "dlt_rate", "exposure_by_dose", "exposure_toxicity", "escalation",
    "fold_errors", "add_legend", "pretty_unit",
]

#: Okabe & Ito (2008) colour-blind-safe palette
PALETTE = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
           "yellow": "#F0E442", "blue": "#0072B2", "vermilion": "#D55E00", "purple": "#CC79A7",
           "grey": "#7F7F7F"}
#: one colour per compartment group, the same in every figure (liposomal groups share their space's colour)
GROUP_COLORS = {"plasma": PALETTE["black"], "ventricular": PALETTE["blue"], "cisternal": PALETTE["sky_blue"],
                "cranial_sas": PALETTE["green"], "spinal": PALETTE["orange"], "lumbar": PALETTE["vermilion"],
                "brain_ecf": PALETTE["purple"], "metabolite": PALETTE["grey"]}
GROUP_LABELS = {"plasma": "plasma", "ventricular": "ventricular CSF", "cisternal": "cisterna magna CSF",
                "cranial_sas": "cranial SAS CSF", "spinal": "cervicothoracic spinal CSF",
                "lumbar": "lumbar CSF", "brain_ecf": "brain ECF", "metabolite": "AZ5104 (plasma)"}
#: dose-marker colour per route (an injection site has the colour of its compartment)
ROUTE_COLORS = {"lumbar": PALETTE["vermilion"], "ommaya": PALETTE["blue"], "intraventricular": PALETTE["blue"],
                "intracisternal": PALETTE["sky_blue"], "iv": PALETTE["purple"], "oral": PALETTE["black"]}
ROUTE_LABELS = {"lumbar": "lumbar dose", "ommaya": "Ommaya dose", "intraventricular": "Ommaya dose",
                "intracisternal": "intracisternal dose", "iv": "IV dose", "oral": "oral dose"}
#: colours for arms / designs / series (in order), avoiding black (plasma) and yellow (poor on white)
SERIES = [PALETTE["blue"], PALETTE["vermilion"], PALETTE["green"], PALETTE["orange"], PALETTE["purple"],
          PALETTE["sky_blue"], PALETTE["black"], PALETTE["grey"]]

FONT = 10            # tick labels
LABEL_FONT = 11      # axis labels
TITLE_FONT = 11
SMALL_FONT = 8.5     # threshold labels, notes


# ------------------------------------------------------------------ basics
def _plt():
    """pyplot, imported on first use (Agg when there is no display)."""
    if "matplotlib.pyplot" not in sys.modules:
        import matplotlib

        headless = sys.platform.startswith("linux") and not os.environ.get("DISPLAY") \
            and not os.environ.get("WAYLAND_DISPLAY")
        if headless and not os.environ.get("MPLBACKEND"):
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _new_axes(nrows=1, ncols=1, *, figsize=None, sharey=False, sharex=False):
    plt = _plt()
    if figsize is None:
        figsize = (max(5.5, 4.2 * ncols), 3.6 * nrows + 0.9)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize, sharey=sharey, sharex=sharex, layout="constrained",
                             squeeze=False)
    return fig, axes


def pretty_unit(unit: str) -> str:
    """'umol/L' -> 'µmol/L' (labels only)."""
    u = str(unit)
    for a in ("umol", "μmol", "uM"):
        u = u.replace(a, "µmol" if a != "uM" else "µM")
    u = u.replace("ug/", "µg/").replace("mcg/", "µg/").replace("μg/", "µg/")
    return u.replace("*h", "·h").replace(" x h", "·h")


def _fmt(v: float) -> str:
    """A concentration for a label: 3 significant digits, no scientific notation for common values."""
    v = float(v)
    if v == 0:
        return "0"
    a = abs(v)
    if 1e-3 <= a < 1e5:
        s = f"{v:.3g}"
        return s if "e" not in s else f"{v:.0f}"
    return f"{v:.2g}"


_THRESHOLD_NAMES = {"cytotoxic": "cytotoxic", "cytotoxic_low": "cytotoxic (low)",
                    "ic50_egfr_mutant_low": "IC50 EGFRm (low)", "ic50_egfr_mutant_high": "IC50 EGFRm (high)",
                    "ic50_egfr_wildtype": "IC50 EGFR wild-type", "ic50_egfr_mutant": "IC50 EGFRm (H3255)",
                    "ic50_bac": "IC50 H1666", "ic50_resistant": "IC50 resistant (H441)",
                    "reference_dose_conc": "reference level", "target": "target"}


def _threshold_name(name: str) -> str:
    if name in _THRESHOLD_NAMES:
        return _THRESHOLD_NAMES[name]
    s = str(name).replace("_", " ")
    for a, b in (("ic50", "IC50"), ("egfr", "EGFR"), ("wildtype", "wild-type")):
        s = s.replace(a, b)
    return s


def drug_label(drug: str) -> str:
    """'cytarabine_liposomal' -> 'liposomal cytarabine'."""
    d = str(drug)
    if d.endswith("_liposomal"):
        return "liposomal " + d[: -len("_liposomal")]
    return d.replace("_", " ")


def group_label(group: str) -> str:
    if group.endswith("_liposomal"):
        base = group[: -len("_liposomal")]
        return GROUP_LABELS.get(base, base).replace(" CSF", "") + " (encapsulated)"
    return GROUP_LABELS.get(group, group.replace("_", " "))


def _group_style(group: str) -> dict:
    base = group[: -len("_liposomal")] if group.endswith("_liposomal") else group
    style = {"color": GROUP_COLORS.get(base, PALETTE["grey"]), "lw": 1.8}
    if group.endswith("_liposomal"):
        style.update(ls=":", lw=2.2)
    return style


def _below_note(ax, names):
    """Say in the panel which curves never reach the visible range (rather than silently leaving them out)."""
    if names:
        ax.text(0.99, 0.025, "below the scale: " + ", ".join(names), transform=ax.transAxes, ha="right",
                va="bottom", fontsize=SMALL_FONT, color="#555555", gid="below-note")


def _series_color(i: int) -> str:
    return SERIES[i % len(SERIES)]


def _arm_colors(result, names) -> dict:
    """Arm colours: the route colour when every arm uses one route and the routes differ (lumbar vermilion,
    Ommaya blue ...), else the series palette in order."""
    routes = []
    for nm in names:
        reg = getattr(result[nm], "regimen", None)
        sites = {d.site for d in reg.doses} if reg is not None else set()
        sites = {"ommaya" if s == "intraventricular" else s for s in sites}
        routes.append(next(iter(sites)) if len(sites) == 1 else None)
    if all(r in ROUTE_COLORS for r in routes) and len(set(routes)) == len(routes):
        return {nm: ROUTE_COLORS[r] for nm, r in zip(names, routes)}
    return {nm: _series_color(i) for i, nm in enumerate(names)}


# ------------------------------------------------------------ result access
def _arm(result, arm):
    """(name, ArmResult) of a ScenarioResult (default: the first arm) or an ArmResult itself."""
    if hasattr(result, "arms"):
        if arm is None:
            arm = next(iter(result.arms))
        return arm, result[arm]
    return getattr(result, "name", arm), result


def _unit(result) -> str:
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
        return np.nanmedian(a.profiles[drug][:, :, g], axis=0)
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
    1e-6 x peak), up to 2 x peak (raised to show a threshold up to 10 x peak)."""
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
    labelled: 0.13 -> 0.1, 0.034 -> 0.02."""
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
    ``short=True`` writes the value only (for inner panels of a grid)."""
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
        given = _given(drug, name, unit)
        value = f"{_fmt(v)} {pretty_unit(unit)}"
        if short:
            text = value
        elif given:
            text = f"{_threshold_name(name)} {given}\n= {value}"
        else:
            text = f"{_threshold_name(name)}\n{value}"
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


def add_legend(fig_or_axes, *, ncol=None, where="below", title=None, extra=None):
    """One legend for a figure (or an Axes), built from the unique labels of its panels, outside the data.

    ``where``: ``"below"`` (centred under the panels) or ``"right"``.
    Returns the Legend.
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


def is_fig_target(obj) -> bool:
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


# ------------------------------------------------------ concentration-time
def concentration_time(result, arm=None, *, drug=None, groups=None, stat="median", log=True, thresholds=True,
                       doses=True, floor=1e-4, ax=None, title=None, legend=True, days=None, ylim=None,
                       mark_below=True, short_labels=False):
    """Concentration-time curves of one arm, one line per compartment group.

    Parameters
    ----------
    result : ScenarioResult or ArmResult
    arm : str, optional
        Arm name (default: the first arm).
    drug : str, optional
        Drug of a combination arm (default: the first).
    groups : list of str, optional
        Compartment groups (default: all of the arm's; liposomal groups dotted).
    stat : {"median", "typical", "mean"}
        Line drawn: median of the band subjects, or the typical subject.
    log : bool
        Log concentration axis (floored at ``floor`` x the highest value shown).
    thresholds : bool, str or list of str
        Draw the drug's (or the scenario's) thresholds, or only the named ones.
    doses : bool
        Dose markers (route-coloured triangles) on the time axis.
    ax : Axes, optional
    days : bool, optional
        Time in days (default: when the simulated span exceeds 3 days).
    ylim : (lo, hi), optional
        Fixed concentration limits (e.g. to share a scale between figures).
    mark_below : bool
        Add "(below the scale)" to the legend label of a curve that never enters the panel.
    short_labels : bool
        Label thresholds by value only (inner panels of a grid).

    Returns
    -------
    Axes
    """
    name, a = _arm(result, arm)
    drug = _drug(a, drug)
    groups = _groups(a, drug, groups)
    unit = _unit(result)
    days = _days(a.times) if days is None else days
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7.5, 4.6))
        ax = axs[0, 0]
    x = _x(a.times, days)
    lines = [(g, _profile(a, drug, g, stat)) for g in groups]
    peak = max((float(np.nanmax(y)) for _, y in lines if y.size), default=0.0)
    tail = min((_tail_min(y) for _, y in lines), default=np.inf)
    thr = _thresholds(result, drug, thresholds)
    if ylim is not None:
        ax.set_yscale("log" if log else "linear")
        ax.set_ylim(*ylim)
        if log:
            _log_ticks(ax)
    elif log:
        _set_log_limits(ax, peak, thr, floor, tail)
    else:
        _set_linear_limits(ax, peak, thr)
    lo = ax.get_ylim()[0]
    below = []
    for g, y in lines:
        yy = np.where(y > 0, y, np.nan) if log else y
        label = group_label(g)
        if log and not np.any(y >= lo):
            if mark_below:
                label += " (below the scale)"
            else:
                below.append(group_label(g))
        ax.plot(x, yy, label=label, **_group_style(g))
    _below_note(ax, below)
    _time_axis(ax, a.times, days)
    _conc_axis(ax, unit, f"{drug_label(drug)} concentration")
    if doses:
        _dose_markers(ax, a, days)
    _threshold_lines(ax, thr, unit, drug=_drug_obj(result, drug), short=short_labels)
    ax.grid(True, which="major", alpha=0.25, lw=0.6)
    _title(ax, title if title is not None else f"{drug_label(drug)}, {name}: {_stat_text(stat, a, drug)}")
    if legend:
        add_legend(ax.figure if made else ax, ncol=4)
    return ax


def _stat_text(stat, a, drug):
    n = a.profiles[drug].shape[0]
    if stat == "typical" or n == 1:
        return "typical patient"
    return f"{stat} of {n} virtual patients"


def linear_and_log(result, arm=None, *, drug=None, groups=None, stat="median", thresholds=True, doses=True,
                   floor=1e-4, axes=None, title=None, legend=True):
    """The same arm on a linear and a log concentration axis, side by side (array of 2 Axes).

    The linear panel shows what dominates (the peak near the injection site); the log panel shows the
    compartments 10-1000x lower and how long each stays above a threshold.
    """
    name, a = _arm(result, arm)
    drug = _drug(a, drug)
    made = axes is None
    if made:
        fig, axs = _new_axes(1, 2, figsize=(12.5, 4.6))
        axes = axs[0]
    concentration_time(result, name, drug=drug, groups=groups, stat=stat, log=False, thresholds=thresholds,
                       doses=doses, ax=axes[0], title="linear scale", legend=False)
    concentration_time(result, name, drug=drug, groups=groups, stat=stat, log=True, thresholds=thresholds,
                       doses=doses, floor=floor, ax=axes[1], title="log scale", legend=False)
    if made:
        axes[0].figure.suptitle(title if title is not None else
                                f"{drug_label(drug)}, {name}: {_stat_text(stat, a, drug)}",
                                fontsize=TITLE_FONT + 1)
    if legend:
        add_legend(axes[0].figure if made else axes, ncol=5)
    return np.asarray(axes)


def compare_arms(result, arms=None, *, drug=None, groups=None, stat="median", log=True, thresholds=True,
                 doses=True, floor=1e-4, axes=None, legend=True, title=None, ncols=None):
    """Arms side by side, one panel per arm (shared concentration axis), one line per compartment group.

    ``groups`` may name groups only some arms have (e.g. ``lumbar_liposomal``); each arm shows those it has.
    Returns the array of Axes (one per arm).
    """
    names = list(result.arms) if arms is None else list(arms)
    made = axes is None
    if made:
        n = len(names)
        ncols = ncols or min(n, 3)
        nrows = -(-n // ncols)
        fig, axs = _new_axes(nrows, ncols, figsize=(4.3 * ncols + 1.2, 3.5 * nrows + 1.0), sharey=True)
        axes_all = axs.ravel()
        for extra in axes_all[n:]:
            extra.set_visible(False)
        axes = axes_all[:n]
    axes = list(np.asarray(axes, dtype=object).ravel())
    peak, tail = 0.0, np.inf
    thr = []
    days_any = False
    for nm in names:
        a = result[nm]
        d = _drug(a, drug)
        days_any |= _days(a.times)
        for g in _present(a, d, groups):
            y = _profile(a, d, g, stat)
            peak = max(peak, float(np.nanmax(y)))
            tail = min(tail, _tail_min(y))
        thr = thr or _thresholds(result, d, thresholds)
    # one scale for all panels
    tmp = axes[0]
    if log:
        _set_log_limits(tmp, peak, thr, floor, tail)
    else:
        _set_linear_limits(tmp, peak, thr)
    ylim = tmp.get_ylim()
    for i, (nm, ax) in enumerate(zip(names, axes)):
        a = result[nm]
        d = _drug(a, drug)
        concentration_time(result, nm, drug=d, groups=_present(a, d, groups), stat=stat, log=log,
                           thresholds=thresholds, doses=doses, ax=ax, title=nm, legend=False, days=days_any, ylim=ylim,
                           mark_below=False)
        # shared scale: threshold labels only right of the last panel of each row; y label on the first column
        if not _last_col(ax, i == len(axes) - 1):
            _strip_threshold_labels(ax)
        if not _first_col(ax, i == 0):
            ax.set_ylabel("")
    if made:
        axes[0].figure.suptitle(title if title is not None else
                                f"{drug_label(_drug(result[names[0]], drug))}: "
                                f"{_stat_text(stat, result[names[0]], _drug(result[names[0]], drug))}",
                                fontsize=TITLE_FONT + 1)
    if legend:
        add_legend(axes[0].figure if made else axes, ncol=5)
    return np.asarray(axes, dtype=object)


def _last_col(ax, default):
    ss = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    return ss.is_last_col() if ss is not None else default


def _first_col(ax, default):
    ss = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    return ss.is_first_col() if ss is not None else default


def overlay_arms(result, groups, arms=None, *, drug=None, stat="median", log=True, thresholds=True, doses=False,
                 floor=1e-4, axes=None, legend=True, title=None, sharey=False, ncols=None, band=False, styles=None):
    """One panel per compartment group, one line per arm: e.g. lumbar versus Ommaya in each CSF space.

    ``band=True`` shades each arm's 5-95 % band. ``sharey`` puts all panels on one scale.
    ``styles``: ``{arm: {"color": ..., "ls": ...}}`` to override the default colours (route colours when
    each arm has one route, else the palette in order).
    Returns the array of Axes (one per group).
    """
    groups = [groups] if isinstance(groups, str) else list(groups)
    names = list(result.arms) if arms is None else list(arms)
    unit = _unit(result)
    made = axes is None
    if made:
        n = len(groups)
        ncols = ncols or min(n, 2 if n == 4 else 3)
        nrows = -(-n // ncols)
        fig, axs = _new_axes(nrows, ncols, figsize=(4.6 * ncols + 1.3, 3.3 * nrows + 1.1), sharey=sharey)
        for extra in axs.ravel()[n:]:
            extra.set_visible(False)
        axes = axs.ravel()[:n]
    axes = list(np.asarray(axes, dtype=object).ravel())
    days = any(_days(result[nm].times) for nm in names)
    colors = _arm_colors(result, names)
    all_peak = 0.0
    per = []
    for g, ax in zip(groups, axes):
        peak, tail = 0.0, np.inf
        thr = []
        for nm in names:
            a = result[nm]
            d = _drug(a, drug)
            x = _x(a.times, days)
            y = _profile(a, d, g, stat)
            peak = max(peak, float(np.nanmax(y)))
            tail = min(tail, _tail_min(y))
            st = {"color": colors[nm], "lw": 1.8}
            st.update((styles or {}).get(nm, {}))
            col = st["color"]
            ax.plot(x, np.where(y > 0, y, np.nan) if log else y, label=nm, **st)
            if band and a.profiles[d].shape[0] > 1:
                k = a.groups[d].index(g)
                lo, hi = np.nanpercentile(a.profiles[d][:, :, k], [5, 95], axis=0)
                ax.fill_between(x, np.where(lo > 0, lo, np.nan) if log else lo, hi, color=col, alpha=0.18, lw=0)
                peak = max(peak, float(np.nanmax(hi)) / 1.5)
                tail = min(tail, _tail_min(lo))
            thr = thr or _thresholds(result, d, thresholds)
            if doses:
                _dose_markers(ax, a, days)
        per.append((ax, g, peak, tail, thr, d))
        all_peak = max(all_peak, peak)
    all_tail = min(p[3] for p in per) if per else np.inf
    for j, (ax, g, peak, tail, thr, d) in enumerate(per):
        if log:
            _set_log_limits(ax, all_peak if sharey else peak, thr, floor, all_tail if sharey else tail)
            lo = ax.get_ylim()[0]
            _below_note(ax, [nm for nm in names if not np.any(_profile(result[nm], _drug(result[nm], drug), g, stat)
                                                              >= lo)])
        else:
            _set_linear_limits(ax, all_peak if sharey else peak, thr)
        _time_axis(ax, result[names[0]].times, days)
        _conc_axis(ax, unit, "concentration", label=not (sharey and not _first_col(ax, j == 0)))
        _threshold_lines(ax, thr, unit, drug=_drug_obj(result, d))
        ax.grid(True, which="major", alpha=0.25, lw=0.6)
        _title(ax, group_label(g))
    if made:
        d0 = _drug(result[names[0]], drug)
        axes[0].figure.suptitle(title if title is not None else
                                f"{drug_label(d0)}: {_stat_text(stat, result[names[0]], d0)}"
                                + (", shaded 5-95% of patients" if band else ""),
                                fontsize=TITLE_FONT + 1)
    if legend:
        add_legend(axes[0].figure if made else axes, ncol=min(len(names) + 3, 6))
    return np.asarray(axes, dtype=object)


# ------------------------------------------------------------ population
def population_band(result, arm=None, *, group, drug=None, q=(5, 95), log=False, thresholds=True, doses=True,
                    floor=1e-4, ax=None, title=None, legend=True, color=None, short_labels=False):
    """Population band of one compartment group: median line, ``q`` band shaded, typical subject dashed.

    When the drug has no sourced between-subject variability the band collapses onto the median;
    the panel then says so (it is not a plotting error).
    """
    name, a = _arm(result, arm)
    drug = _drug(a, drug)
    (group,) = _groups(a, drug, [group])
    unit = _unit(result)
    days = _days(a.times)
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7.5, 4.4))
        ax = axs[0, 0]
    k = a.groups[drug].index(group)
    prof = a.profiles[drug][:, :, k]
    x = _x(a.times, days)
    col = color or _group_style(group)["color"]
    n = prof.shape[0]
    lo, med, hi = (np.nanpercentile(prof, [q[0], 50, q[1]], axis=0) if n > 1 else (prof[0], prof[0], prof[0]))
    typ = a.typical[drug][:, k]
    pos = (lambda v: np.where(v > 0, v, np.nan)) if log else (lambda v: v)
    ax.fill_between(x, pos(lo), pos(hi), color=col, alpha=0.25, lw=0, label=f"{q[0]:g}-{q[1]:g}% of patients")
    ax.plot(x, pos(med), color=col, lw=2.0, label="median")
    ax.plot(x, pos(typ), color="#222222", lw=1.3, ls=(0, (5, 3)), label="typical patient")
    thr = _thresholds(result, drug, thresholds)
    peak = float(np.nanmax(np.concatenate([hi, typ])))
    if log:
        _set_log_limits(ax, peak / 1.5, thr, floor, _tail_min(lo))
    else:
        _set_linear_limits(ax, peak, thr)
    _time_axis(ax, a.times, days)
    _conc_axis(ax, unit, "concentration")
    if doses:
        _dose_markers(ax, a, days)
    _threshold_lines(ax, thr, unit, drug=_drug_obj(result, drug), short=short_labels)
    ax.grid(True, which="major", alpha=0.25, lw=0.6)
    width = np.nanmax(np.abs(hi - lo)) / peak if peak > 0 else 0.0
    if n == 1 or width < 1e-6:
        ax.text(0.98, 0.96, "no between-patient variability sourced\nfor this drug: band = median",
                transform=ax.transAxes, ha="right", va="top", fontsize=SMALL_FONT, color="#444444",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#BBBBBB", alpha=0.9))
    _title(ax, title if title is not None else f"{drug_label(drug)}, {name}: {group_label(group)} ({n} virtual patients)")
    if legend:
        add_legend(ax.figure if made else ax, ncol=5)
    return ax


def population_bands(result, groups, arms=None, *, drug=None, q=(5, 95), log=False, thresholds=True, axes=None,
                     legend=True, title=None, floor=1e-4):
    """Grid of :func:`population_band`: rows are arms, columns compartment groups. Returns the 2-D array of Axes."""
    groups = [groups] if isinstance(groups, str) else list(groups)
    names = list(result.arms) if arms is None else list(arms)
    made = axes is None
    if made:
        fig, axes = _new_axes(len(names), len(groups), figsize=(4.4 * len(groups) + 1.3, 3.1 * len(names) + 1.0))
    axes = np.asarray(axes, dtype=object).reshape(len(names), len(groups))
    for i, nm in enumerate(names):
        for j, g in enumerate(groups):
            ax = axes[i, j]
            population_band(result, nm, group=g, drug=drug, q=q, log=log, thresholds=thresholds, ax=ax,
                            title=f"{nm}: {group_label(g)}", legend=False, floor=floor,
                            short_labels=j < len(groups) - 1)
            if i < len(names) - 1:
                ax.set_xlabel("")
            if j > 0:
                ax.set_ylabel("")
        axes[i, 0].set_ylabel(f"concentration ({pretty_unit(_unit(result))})", fontsize=LABEL_FONT)
    if made and title:
        fig.suptitle(title, fontsize=TITLE_FONT + 1)
    if legend:
        add_legend(axes[0, 0].figure if made else list(axes.ravel()), ncol=6)
    return axes


# --------------------------------------------------------------- summaries
def time_above(result, threshold=None, *, groups=None, arms=None, drug=None, unit="h", per_dose=False, q=(5, 95),
               ax=None, title=None, legend=True):
    """Time above a threshold per arm (bars: median; whiskers: ``q`` percentiles), one bar per compartment group.

    ``threshold`` is a threshold name of the metrics (default: the drug's first); ``unit`` ``"h"`` or ``"days"``.
    ``per_dose=True`` divides by the number of doses of each arm (time above per injection).
    """
    names = list(result.arms) if arms is None else list(arms)
    m = result.metrics()
    drugs = {nm: drug or _drug(result[nm], None) for nm in names}      # each arm's drug (free vs liposomal)
    d = drugs[names[0]]
    m = m[m["arm"].isin(names)]
    m = m[m["drug"].to_numpy() == m["arm"].map(drugs).to_numpy()]
    cols = [c for c in m.columns if c.startswith("time_above[") and m[c].notna().any()]
    if not cols:
        from pkcsf.core.errors import ScenarioError

        raise ScenarioError("threshold", threshold, f"the result has no time-above read-out for {d}")
    col = cols[0] if threshold is None else f"time_above[{threshold}]"
    if col not in m.columns:
        from pkcsf.core.errors import ScenarioError, check_choice

        check_choice("threshold", threshold, [c[len("time_above["):-1] for c in cols], ScenarioError)
    groups = _groups(result[names[0]], d, groups)
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(max(6.5, 1.1 * len(names) * max(1, len(groups)) * 0.45 + 3), 4.3))
        ax = axs[0, 0]
    scale = 24.0 if unit in ("d", "day", "days") else 1.0
    width = 0.8 / len(groups)
    for j, g in enumerate(groups):
        med, lo, hi = [], [], []
        for nm in names:
            v = m.loc[(m["arm"] == nm) & (m["group"] == g), col].to_numpy(dtype=float) / scale
            if per_dose:
                v = v / max(1, len(result[nm].dose_times.get(drugs[nm], [1])))
            if v.size == 0:
                v = np.array([np.nan])
            med.append(np.median(v))
            lo.append(np.percentile(v, q[0]))
            hi.append(np.percentile(v, q[1]))
        xs = np.arange(len(names)) + (j - (len(groups) - 1) / 2) * width
        med, lo, hi = map(np.asarray, (med, lo, hi))
        ax.bar(xs, med, width * 0.92, color=_group_style(g)["color"], label=group_label(g))
        if np.any(hi - lo > 1e-9):
            ax.errorbar(xs, med, yerr=[med - lo, hi - med], fmt="none", ecolor="#333333", elinewidth=1, capsize=2)
    ax.set_xticks(np.arange(len(names)), names, fontsize=FONT)
    if max(len(str(n)) for n in names) * len(names) > 60:
        ax.tick_params(axis="x", labelrotation=25)
        for t in ax.get_xticklabels():
            t.set_ha("right")
    thr_name = col[len("time_above["):-1]
    thr_val = dict(_thresholds(result, d, True)).get(thr_name)
    value = f"{_fmt(thr_val)} {pretty_unit(_unit(result))}" if thr_val else thr_name
    given = _given(_drug_obj(result, d), thr_name, _unit(result)) if thr_val else ""
    ax.set_ylabel(f"time above {given or value} (" + ("days" if scale == 24 else "h")
                  + (" per dose" if per_dose else "") + ")", fontsize=LABEL_FONT)
    if title is None:
        what = _threshold_name(thr_name) + " " + (f"{given} = {value}" if given else value) if thr_val else thr_name
        title = f"{drug_label(d)}: time above {what}\nbars: median patient; whiskers: {q[0]:g}-{q[1]:g}% of patients"
    ax.tick_params(labelsize=FONT)
    ax.grid(True, axis="y", alpha=0.25, lw=0.6)
    ax.set_axisbelow(True)
    # the read-out cannot exceed the simulated window: mark it, so that a bar at the top reads as
    # "above for the whole window" rather than as a measured duration
    window = max(float(result[nm].times[-1] - result[nm].times[0]) for nm in names) / scale
    if not per_dose:
        top = ax.get_ylim()[1]
        if window <= 1.15 * top:
            ax.axhline(window, color="#6E6E6E", ls=":", lw=1)
            ax.set_ylim(top=max(top, window * 1.12))
            ax.text(ax.get_xlim()[1], window, f"end of the simulated window ({_fmt(window)} "
                    + ("days" if scale == 24 else "h") + "): a bar here stays above for the whole window",
                    ha="right", va="bottom", fontsize=FONT - 1.5, color="#555555")
    _title(ax, title)
    if legend:
        add_legend(ax.figure if made else ax, ncol=4)
    return ax


def ic50_ratio(result, *, drug="osimertinib", groups=("lumbar", "ventricular"), threshold=None, arms=None,
               band=True, ax=None, title=None, legend=True, reference=True, floor=None):
    """CSF concentration divided by a published IC50 (log axis), per arm and compartment.

    ``threshold`` names the IC50 (default: the drug's first threshold, for osimertinib the lowest
    EGFR-mutant IC50); the other thresholds of the drug are drawn as reference ratios (``reference``).
    Above 1 the free CSF concentration exceeds that IC50. Colour: arm; line style: compartment.
    """
    names = list(result.arms) if arms is None else list(arms)
    groups = [groups] if isinstance(groups, str) else list(groups)
    thr = _thresholds(result, drug, True)
    if not thr:
        from pkcsf.core.errors import ScenarioError

        raise ScenarioError("drug", drug, "has no sourced IC50/threshold to divide by")
    if threshold is None:
        tname, tval = thr[0]
    else:
        match = [t for t in thr if t[0] == threshold]
        if not match:
            from pkcsf.core.errors import ScenarioError, check_choice

            check_choice("threshold", threshold, [t[0] for t in thr], ScenarioError)
        tname, tval = match[0]
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(7.5, 4.4))
        ax = axs[0, 0]
    styles = ["-", (0, (5, 2)), (0, (1.5, 1.5)), (0, (6, 2, 1, 2))]
    days = any(_days(result[nm].times) for nm in names)
    top, bottom = 0.0, np.inf
    for i, nm in enumerate(names):
        a = result[nm]
        col = _series_color(i)
        x = _x(a.times, days)
        for j, g in enumerate(groups):
            k = a.groups[drug].index(g)
            med = _profile(a, drug, g, "median") / tval
            ax.plot(x, np.where(med > 0, med, np.nan), color=col, ls=styles[j % len(styles)], lw=1.8,
                    label=f"{nm}, {group_label(g)}")
            if band and a.profiles[drug].shape[0] > 1:
                lo, hi = np.nanpercentile(a.profiles[drug][:, :, k], [5, 95], axis=0) / tval
                ax.fill_between(x, np.where(lo > 0, lo, np.nan), hi, color=col, alpha=0.12, lw=0)
                top = max(top, float(np.nanmax(hi)))
            top = max(top, float(np.nanmax(med)))
            late = med[a.times >= a.times[-1] * 0.25]
            if late.size and np.nanmin(late) > 0:
                bottom = min(bottom, float(np.nanmin(late)))
    ax.set_yscale("log")
    refs = [(tname, 1.0)] + ([(n, v / tval) for n, v in thr if n != tname] if reference else [])
    lo = min(bottom / 3 if np.isfinite(bottom) else top * 1e-3, 0.5)
    if floor is not None:
        lo = max(lo, top * floor)
    lo = _round_down(lo)
    hi = max(top * 2.5, 2.0)
    for _, r in refs:
        if hi < r <= top * 30:
            hi = r * 1.6
    ax.set_ylim(lo, hi)
    _log_ticks(ax)
    for n, r in refs:
        if lo <= r <= hi:
            ax.axhline(r, color="#555555", lw=1.2 if r == 1.0 else 0.9, ls="-" if r == 1.0 else (0, (4, 3)), zorder=1)
    items = [(r, f"C = {_threshold_name(n)}\n({_fmt(v)} {pretty_unit(_unit(result))})")
             for (n, r), v in zip(refs, [tval] + [v for n, v in thr if n != tname])]
    vis = [(r, t) for r, t in items if lo <= r <= hi]
    # reuse the de-overlapping placement of threshold labels
    _place_right_labels(ax, [(r, t) for r, t in vis])
    _time_axis(ax, result[names[0]].times, days)
    ax.set_ylabel(f"CSF concentration / IC50\n(IC50 = {_fmt(tval)} {pretty_unit(_unit(result))}, "
                  f"{_threshold_name(tname)})", fontsize=LABEL_FONT - 0.5)
    ax.tick_params(labelsize=FONT)
    ax.grid(True, which="major", alpha=0.25, lw=0.6)
    _title(ax, title if title is not None else f"{drug}: CSF exposure relative to IC50")
    if legend:
        add_legend(ax.figure if made else ax, ncol=2)
    return ax


def _place_right_labels(ax, items):
    """Text labels right of the panel at data y-values (log or linear), pushed apart so they never overlap."""
    import matplotlib.transforms as mtransforms

    lo, hi = ax.get_ylim()
    log = ax.get_yscale() == "log"
    pos = []
    for y, text in items:
        f = ((np.log10(y) - np.log10(lo)) / (np.log10(hi) - np.log10(lo))) if log else (y - lo) / (hi - lo)
        pos.append([f, text])
    pos.sort(key=lambda p: p[0])
    for k in range(1, len(pos)):
        if pos[k][0] - pos[k - 1][0] < 0.1:
            pos[k][0] = pos[k - 1][0] + 0.1
    trans = mtransforms.blended_transform_factory(ax.transAxes, ax.transAxes)
    for f, text in pos:
        ax.text(1.015, f, text, transform=trans, fontsize=SMALL_FONT, va="center", ha="left", color="#333333",
                clip_on=False, linespacing=1.0)


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


def p_select(results, *, target=0.3, dose_unit="mg", ax=None, title=None, legend=True):
    """Probability that each dose (or none) is selected as the MTD, per design.

    The true MTD (the dose whose true DLT probability is closest to ``target``) is shaded.
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


def patients_per_dose(results, *, dose_unit="mg", ax=None, title=None, legend=True):
    """Expected number of patients treated at each dose, per design."""
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


def dlt_rate(results, *, target=0.3, dose_unit="mg", ax=None, title=None, legend=True):
    """True DLT probability per dose (line) and the pooled observed DLT rate of each design (markers)."""
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


def exposure_by_dose(exposures, doses=None, *, exposure_label="exposure", exposure_unit="", dose_unit="mg",
                     log=True, link=None, ax=None, title=None, legend=True):
    """Distribution of the per-patient exposure at each dose (box: quartiles; whiskers: 5-95 %).

    ``exposures``: array (K, m), a list of K arrays, a dict {dose: array}, a TrialResults with exposure
    percentiles (drawn as 5-50-95 % ranges), or an escalation result with ``.exposures``.
    ``link`` (callable exposure -> P(DLT), e.g. :class:`pkcsf.trials.LogisticExposureToxicity`) adds the
    exposure-toxicity curve on a second axis.
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


def exposure_toxicity(link, exposures=None, doses=None, *, exposure_label="exposure", exposure_unit="",
                      dose_unit="mg", target=0.3, ax=None, title=None, legend=True):
    """An exposure-toxicity link as a curve (P(DLT) against exposure, log axis), with each dose's exposure range.

    ``link`` may be an escalation result (its ``.link``, ``.exposures``, ``.doses`` and ``.exposure_unit`` are
    used). For each dose a horizontal bar spans the 5-95 % exposure of its patients at the height of the
    DLT probability at the median exposure (dot), labelled with the dose.
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


def escalation(results, *, exposures=None, exposure_label="exposure", exposure_unit="", target=0.3,
               dose_unit="mg", link=None, axes=None, title=None, legend=True):
    """Operating characteristics of dose-escalation designs on a 2 x 2 grid (array of 4 Axes).

    P(select) per dose (and none), patients per dose, DLT rate true vs observed, and the exposure
    distribution per dose (from ``exposures``, the result's ``.exposures`` or the exposure percentiles
    of the trial results; the panel is left out when there is no exposure).
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


# ------------------------------------------------------------ validation
def fold_errors(table, *, ax=None, title=None, legend=True, variant=None):
    """Predicted/observed fold error of each validation observation (log axis; 1.5- and 2-fold bands shaded).

    ``table``: :func:`pkcsf.clinical.validation.run_validation` output. Points are grouped by drug; bounds
    (limits such as "< 10 %") drawn as open triangles pointing to the allowed side; observations that
    are not judged (pathology examples) in grey.
    """
    df = table.copy()
    if variant is not None:
        df = df[df["variant"].isin([variant] if isinstance(variant, str) else variant)]
    df = df[np.isfinite(df["fold_error"].astype(float)) & (df["fold_error"].astype(float) > 0)]
    df = df.sort_values(["drug", "id", "variant"], kind="stable").reset_index(drop=True)
    n = len(df)
    made = ax is None
    if made:
        _, axs = _new_axes(figsize=(8.6, max(4.0, 0.2 * n + 1.6)))
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
    lab = [f"{r.id}" + (f" [{r.variant}]" if r.variant != "linear" else "") for r in df.itertuples()]
    ax.set_yticks(y, lab, fontsize=7)
    ax.set_xscale("log")
    lo = min(0.2, fe.min() / 1.5) if n else 0.2
    hi = max(5.0, fe.max() * 1.5) if n else 5.0
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
        ax.text(1.01, (y[s] + y[e - 1]) / 2, drugs[s], transform=ax.get_yaxis_transform(), va="center",
                fontsize=SMALL_FONT, color="#333333")
    ax.grid(True, axis="x", alpha=0.25, lw=0.6)
    _title(ax, title if title is not None else "validation: predicted / observed")
    if legend:
        add_legend(ax.figure if made else ax, ncol=3)
    return ax
