"""One arm's concentration-time figures: :func:`concentration_time` (one panel) and :func:`linear_and_log`
(the same profile on linear and log axes side by side).

Split from :mod:`pkcsf.plotting.profiles` (which re-exports both and builds its multi-arm figures on them).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pkcsf.plotting.axes import (
    ScenarioLike,
    _arm,
    _conc_axis,
    _days,
    _dose_markers,
    _drug,
    _drug_obj,
    _groups,
    _log_ticks,
    _profile,
    _set_linear_limits,
    _set_log_limits,
    _tail_min,
    _threshold_lines,
    _thresholds,
    _time_axis,
    _title,
    _unit,
    _x,
    add_legend,
)
from pkcsf.plotting.style import (
    TITLE_FONT,
    _below_note,
    _group_style,
    _new_axes,
    drug_label,
    group_label,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


# ------------------------------------------------------ concentration-time
def concentration_time(result: ScenarioLike, arm: str | None = None, *, drug: str | None = None,
                       groups: Sequence[str] | str | None = None, stat: str = "median", log: bool = True,
                       thresholds: bool | str | Sequence[str] = True, doses: bool = True, floor: float = 1e-4,
                       ax: Axes | None = None, title: str | None = None, legend: bool = True,
                       days: bool | None = None, ylim: tuple[float, float] | None = None, mark_below: bool = True,
                       short_labels: bool = False) -> Axes:
    """Concentration-time curves of one arm, one line per compartment group.

    Parameters
    ----------
    result : ScenarioResult or ArmResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run` (or one arm of it).
    arm : str, optional
        Arm name (default: the first arm).
    drug : str, optional
        Drug of a combination arm (default: the arm's first drug).
    groups : list of str, optional
        Compartment groups (default: all of the arm's; liposomal groups dotted).
    stat : {"median", "typical", "mean"}
        Line drawn: median or mean of the virtual patients, or the typical patient.
    log : bool
        Log concentration axis (floored at ``floor`` x the highest value shown).
    thresholds : bool, str or list of str
        Draw the drug's (or the scenario's) thresholds, or only the named ones; False for none.
    doses : bool
        Dose markers (route-coloured triangles) on the time axis.
    floor : float
        Lower end of a log axis relative to the highest value shown (default 1e-4: four decades).
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: drug, arm and what the line shows; ``""`` for none).
    legend : bool
        Add one legend below the panels.
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
    matplotlib.axes.Axes
        The panel.

    Raises
    ------
    ScenarioError
        An unknown arm, drug or compartment group (the error lists those of the result).

    Examples
    --------
    >>> import pkcsf as pk
    >>> from pkcsf import plotting as pp
    >>> res = pk.simulate_drug("methotrexate", "12 mg ommaya once", subjects=50, days=2)  # doctest: +SKIP
    >>> ax = pp.concentration_time(res, groups=["ventricular", "lumbar"])  # doctest: +SKIP
    >>> ax.figure.savefig("mtx.png", dpi=150)  # doctest: +SKIP
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
        _dose_markers(ax, a, days, drug=drug)
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


def linear_and_log(result: ScenarioLike, arm: str | None = None, *, drug: str | None = None,
                   groups: Sequence[str] | str | None = None, stat: str = "median",
                   thresholds: bool | str | Sequence[str] = True, doses: bool = True, floor: float = 1e-4,
                   axes: Sequence[Axes] | None = None, title: str | None = None, legend: bool = True) -> np.ndarray:
    """The same arm on a linear and a log concentration axis, side by side.

    The linear panel shows what dominates (the peak near the injection site); the log panel shows the
    compartments 10-1000x lower and how long each stays above a threshold.

    Parameters
    ----------
    result : ScenarioResult or ArmResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run` (or one arm of it).
    arm : str, optional
        Arm name (default: the first arm).
    drug : str, optional
        Drug of a combination arm (default: the arm's first drug).
    groups : list of str, optional
        Compartment groups (``"ventricular"``, ``"lumbar"``, ...; default: all of the arm's).
    stat : {"median", "typical", "mean"}
        Line drawn: median or mean of the virtual patients, or the typical patient.
    thresholds : bool, str or list of str
        Draw the drug's (or the scenario's) thresholds, or only the named ones; False for none.
    doses : bool
        Dose markers (route-coloured triangles) on the time axis.
    floor : float
        Lower end of a log axis relative to the highest value shown (default 1e-4: four decades).
    axes : sequence of 2 Axes, optional
        Draw into these (default: a new figure).
    title : str, optional
        Title (default: drug, arm and what the line shows; ``""`` for none).
    legend : bool
        Add one legend below the panels.

    Returns
    -------
    ndarray of Axes, shape (2,)
        The linear and the log panel.
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
