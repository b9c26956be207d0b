"""Population figures: bands (median, percentiles, typical patient) and time above a threshold."""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pkcsf.analysis.readouts import percentiles
from pkcsf.plotting.axes import (
    ScenarioLike,
    _arm,
    _conc_axis,
    _days,
    _dose_markers,
    _drug,
    _drug_obj,
    _given,
    _groups,
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
    FONT,
    LABEL_FONT,
    SMALL_FONT,
    TITLE_FONT,
    _fmt,
    _group_style,
    _new_axes,
    drug_label,
    group_label,
    pretty_unit,
    threshold_text,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes


# ------------------------------------------------------------ population
def _spans_decades(med, hi, decades: float = 2.0) -> bool:
    """True when, from the median's peak on, the band spans more than ``decades`` powers of ten (a washing-out
    injection: a linear axis would flatten everything but the peak). The rise before the peak (oral absorption,
    the first doses towards a steady state) does not count.
    """
    med = np.asarray(med, dtype=float)
    if not np.any(med > 0):
        return False
    k = int(np.nanargmax(med))
    top = float(np.nanmax(np.asarray(hi, dtype=float)[k:]))
    tail = med[k:]
    tail = tail[np.isfinite(tail) & (tail > 0)]
    return bool(tail.size) and top / float(tail.min()) > 10.0 ** decades


def population_band(result: ScenarioLike, arm: str | None = None, *, group: str, drug: str | None = None,
                    q: tuple[float, float] = (5, 95), log: bool | str = "auto",
                    thresholds: bool | str | Sequence[str] = True, doses: bool = True, floor: float = 1e-4,
                    ax: Axes | None = None, title: str | None = None, legend: bool = True,
                    color: str | None = None, short_labels: bool = False) -> Axes:
    """Population band of one compartment group: median line, ``q`` band shaded, typical subject dashed.

    When the drug has no sourced between-subject variability the band collapses onto the median;
    the panel then says so (it is not a plotting error).

    Parameters
    ----------
    result : ScenarioResult or ArmResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run` (or one arm of it).
    arm : str, optional
        Arm name (default: the first arm).
    group : str
        The compartment group (``"ventricular"``, ``"lumbar"``, ...).
    drug : str, optional
        Drug of a combination arm (default: the arm's first drug).
    q : (float, float)
        Percentiles of the shaded band (default 5-95).
    log : bool or "auto"
        Log concentration axis; ``"auto"`` (default) when the band spans more than two decades (a single
        injection washing out), else linear.
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
    color : str, optional
        Band colour (default: the group's colour).
    short_labels : bool
        Label thresholds by value only (inner panels of a grid).

    Returns
    -------
    matplotlib.axes.Axes
        The panel.

    Raises
    ------
    ScenarioError
        An unknown arm, drug or group, or a ``log`` other than True, False, "auto".

    Examples
    --------
    >>> import pkcsf as pk
    >>> from pkcsf import plotting as pp
    >>> res = pk.simulate_drug("methotrexate", "12 mg ommaya once", subjects=200, days=2)  # doctest: +SKIP
    >>> ax = pp.population_band(res, group="ventricular")  # doctest: +SKIP
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
    lo, med, hi = (percentiles(prof, [q[0], 50, q[1]], axis=0) if n > 1 else (prof[0], prof[0], prof[0]))
    typ = a.typical[drug][:, k]
    if isinstance(log, str):
        if log != "auto":
            from pkcsf.core.errors import ScenarioError, check_choice

            check_choice("log", log, [True, False, "auto"], ScenarioError)
        log = _spans_decades(med, hi)
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
        _dose_markers(ax, a, days, drug=drug)
    _threshold_lines(ax, thr, unit, drug=_drug_obj(result, drug), short=short_labels)
    ax.grid(True, which="major", alpha=0.25, lw=0.6)
    width = np.nanmax(np.abs(hi - lo)) / peak if peak > 0 else 0.0
    if n == 1 or width < 1e-6:
        ax.text(0.98, 0.96, "no between-patient variability sourced\nfor this drug: band = median",
                transform=ax.transAxes, ha="right", va="top", fontsize=SMALL_FONT, color="#444444",
                bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#BBBBBB", alpha=0.9))
    _title(ax, title if title is not None else
           f"{drug_label(drug)}, {name}: {group_label(group)} ({n} virtual patients)")
    if legend:
        add_legend(ax.figure if made else ax, ncol=5)
    return ax


def population_bands(result: ScenarioLike, groups: Sequence[str] | str, arms: Sequence[str] | None = None, *,
                     drug: str | None = None, q: tuple[float, float] = (5, 95), log: bool | str = "auto",
                     thresholds: bool | str | Sequence[str] = True, axes: np.ndarray | None = None,
                     legend: bool = True, title: str | None = None, floor: float = 1e-4,
                     rows: str = "arms") -> np.ndarray:
    """Grid of :func:`population_band`, one panel per arm and compartment group.

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run`.
    groups : str or list of str
        Compartment groups.
    arms : list of str, optional
        Arms to show, in order (default: all).
    drug : str, optional
        Drug of a combination arm (default: the arm's first drug).
    q : (float, float)
        Percentiles of the shaded bands.
    log : bool or "auto"
        As in :func:`population_band`, decided per panel.
    thresholds : bool, str or list of str
        Draw the drug's (or the scenario's) thresholds, or only the named ones; False for none.
    axes : array of Axes, optional
        Draw into these (shape of the grid; default: a new figure).
    legend : bool
        Add one legend below the panels.
    title : str, optional
        Figure title.
    floor : float
        Lower end of a log axis relative to the highest value shown (default 1e-4: four decades).
    rows : {"arms", "groups"}
        ``"arms"`` (default): rows are arms, columns groups; ``"groups"``: rows are groups, columns arms
        (narrower when there are more groups than arms).

    Returns
    -------
    ndarray of Axes, shape (n_arms, n_groups)
        Indexed ``[arm, group]`` in both layouts.
    """
    from pkcsf.core.errors import ScenarioError, check_choice

    check_choice("rows", rows, ["arms", "groups"], ScenarioError)
    groups = [groups] if isinstance(groups, str) else list(groups)
    names = list(result.arms) if arms is None else list(arms)
    nr, nc = (len(names), len(groups)) if rows == "arms" else (len(groups), len(names))
    made = axes is None
    if made:
        fig, axes = _new_axes(nr, nc, figsize=(min(3.9 * nc + 1.6, 11.0), 2.9 * nr + 1.0))
    axes = np.asarray(axes, dtype=object).reshape(nr, nc)
    if rows == "groups":
        axes = axes.T
    for i, nm in enumerate(names):
        for j, g in enumerate(groups):
            ax = axes[i, j]
            r, c = (i, j) if rows == "arms" else (j, i)
            population_band(result, nm, group=g, drug=drug, q=q, log=log, thresholds=thresholds, ax=ax,
                            title=f"{nm}: {group_label(g)}", legend=False, floor=floor,
                            short_labels=c < nc - 1)
            if r < nr - 1:
                ax.set_xlabel("")
            if c > 0:
                ax.set_ylabel("")
            else:
                ax.set_ylabel(f"concentration ({pretty_unit(_unit(result))})", fontsize=LABEL_FONT)
    if made and title:
        fig.suptitle(title, fontsize=TITLE_FONT + 1)
    if legend:
        add_legend(axes[0, 0].figure if made else list(axes.ravel()), ncol=6)
    return axes


# --------------------------------------------------------------- summaries
def time_above(result: ScenarioLike, threshold: str | None = None, *, groups: Sequence[str] | str | None = None,
               arms: Sequence[str] | None = None, drug: str | None = None, unit: str = "h", per_dose: bool = False,
               q: tuple[float, float] = (5, 95), ax: Axes | None = None, title: str | None = None,
               legend: bool = True) -> Axes:
    """Time above a threshold per arm (bars: median; whiskers: ``q`` percentiles), one bar per compartment group.

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run`, with a time-above read-out.
    threshold : str, optional
        A threshold name of the read-outs (default: the drug's first).
    groups : list of str, optional
        Compartment groups (``"ventricular"``, ``"lumbar"``, ...; default: all of the arm's).
    arms : list of str, optional
        Arms to show, in order (default: all).
    drug : str, optional
        Drug (default: each arm's first).
    unit : {"h", "days"}
        Unit of the bars.
    per_dose : bool
        Divide by the number of doses of each arm (time above per injection).
    q : (float, float)
        Percentiles of the whiskers.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: drug, arm and what the line shows; ``""`` for none).
    legend : bool
        Add one legend below the panels.

    Returns
    -------
    matplotlib.axes.Axes
        The panel.

    Raises
    ------
    ScenarioError
        A result without a time-above read-out, or an unknown ``threshold``.
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
        what = threshold_text(thr_name, thr_val, _unit(result), given, one_line=True) if thr_val else thr_name
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
