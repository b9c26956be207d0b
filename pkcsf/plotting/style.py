"""Colours, fonts, labels and the lazy pyplot import shared by every pkcsf figure."""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

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
    """A unit as printed on a figure: micro as µ, ``*h`` as ``·h`` (labels only).

    Parameters
    ----------
    unit : str
        A unit as pkcsf writes it (``"umol/L"``, ``"mg*h/L"``).

    Returns
    -------
    str
        The label text.

    Examples
    --------
    >>> pretty_unit("umol/L")
    'µmol/L'
    """
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


def _is_quantity(name) -> bool:
    """True when a threshold's name is itself a value with a unit ('1 umol/L', a scenario's own threshold)."""
    import re

    return bool(re.match(r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*[A-Za-zµμ%]", str(name)))


def threshold_text(name: str, value: float, unit: str, given: str = "", *, one_line: bool = False) -> str:
    """One label per threshold: 'cytotoxic 1 µmol/L', or the value alone when the name is the value.

    ``'1 umol/L'`` is written once, as ``'1 µmol/L'``; a value given in another unit reads
    ``'0.1 µg/mL = 0.41 µmol/L'``.

    Parameters
    ----------
    name : str
        The threshold's name (``"cytotoxic"``) or a quantity (``"1 umol/L"``).
    value : float
        The threshold in ``unit``.
    unit : str
        The figure's concentration unit.
    given : str, optional
        The value as the source gives it, when in another unit (``"0.1 µg/mL"``).
    one_line : bool
        Join name and value with a space instead of a line break.

    Returns
    -------
    str
        The label.

    Examples
    --------
    >>> threshold_text("cytotoxic", 1.0, "umol/L", one_line=True)
    'cytotoxic 1 µmol/L'
    """
    val = f"{_fmt(value)} {pretty_unit(unit)}"
    sep = " " if one_line else "\n"
    if _is_quantity(name):
        import re

        m = re.match(r"^\s*(\S+)\s*(.*)$", str(name))
        num, u = m.group(1), m.group(2).strip()
        if not u or pretty_unit(u) == pretty_unit(unit):
            return val
        try:
            num = _fmt(float(num))
        except ValueError:
            pass
        return f"{num} {pretty_unit(u)}{sep}= {val}"
    if given:
        return f"{_threshold_name(name)} {given}{sep}= {val}"
    return f"{_threshold_name(name)}{sep}{val}"


def drug_label(drug: str) -> str:
    """A drug name in words: ``'cytarabine_liposomal'`` -> ``'liposomal cytarabine'``.

    Parameters
    ----------
    drug : str
        A drug name of ``parameters/drugs/``.

    Returns
    -------
    str
        The label.
    """
    d = str(drug)
    if d.endswith("_liposomal"):
        return "liposomal " + d[: -len("_liposomal")]
    return d.replace("_", " ")


def group_label(group: str) -> str:
    """A compartment group in words: ``'ventricular'`` -> ``'ventricular CSF'``.

    Parameters
    ----------
    group : str
        A compartment group (``"lumbar_liposomal"`` -> ``"lumbar (encapsulated)"``).

    Returns
    -------
    str
        The label.
    """
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


#: line styles that tell apart arms sharing one route colour (in arm order)
ARM_DASHES = ["-", (0, (5, 2)), (0, (1.5, 1.5)), (0, (6, 2, 1, 2)), (0, (8, 3)), (0, (3, 1, 1, 1, 1, 1))]


def _arm_route(arm) -> str | None:
    """The one route of an arm ('ommaya' for intraventricular), or None when it has several or none."""
    reg = getattr(arm, "regimen", None)
    sites = {d.site for d in reg.doses} if reg is not None else set()
    sites = {"ommaya" if s == "intraventricular" else s for s in sites}
    return next(iter(sites)) if len(sites) == 1 else None


def arm_styles(result: Any, names: Sequence[str] | None = None) -> dict[str, dict[str, object]]:
    """``{arm: {"color": ..., "ls": ...}}``, the same mapping in every figure.

    When every arm has a single known route and the routes differ, the colour is the route's
    (:data:`ROUTE_COLORS`: lumbar vermilion, Ommaya blue, intracisternal sky blue, IV purple, oral black) and
    arms sharing a route are told apart by line style, in arm order; otherwise (one route for all, or mixed
    routes) arms take :data:`SERIES` colours by their position in the result. The colour of an arm therefore
    never depends on which or how many arms a figure shows.

    Parameters
    ----------
    result : ScenarioResult
        The result whose arms are drawn.
    names : list of str, optional
        The arms of this figure (default: all).

    Returns
    -------
    dict
        ``{arm: {"color": ..., "ls": ...}}`` for each of ``names``.
    """
    names = list(result.arms) if names is None else list(names)
    arms = getattr(result, "arms", None) or {}
    routes = [_arm_route(arms.get(nm)) if nm in arms else None for nm in names]
    if names and all(r in ROUTE_COLORS for r in routes) and len(set(routes)) > 1:
        seen: dict = {}
        out = {}
        for nm, r in zip(names, routes):
            k = seen.get(r, 0)
            seen[r] = k + 1
            out[nm] = {"color": ROUTE_COLORS[r], "ls": ARM_DASHES[k % len(ARM_DASHES)]}
        return out
    order = list(arms) if arms else names                # position in the result, not in this figure
    return {nm: {"color": _series_color(order.index(nm) if nm in order else i), "ls": "-"}
            for i, nm in enumerate(names)}


def _arm_colors(result, names) -> dict:
    """Arm colours of :func:`arm_styles`."""
    return {nm: st["color"] for nm, st in arm_styles(result, names).items()}
