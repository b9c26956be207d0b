"""Concentration-time figures: arms side by side, arms overlaid per compartment, CSF/IC50 ratio; one arm's
figures (:func:`concentration_time`, :func:`linear_and_log`) are in :mod:`pkcsf.plotting.single_arm`, re-exported
here.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from pkcsf.analysis.readouts import percentiles
from pkcsf.plotting.axes import (
    ScenarioLike,
    _conc_axis,
    _days,
    _dose_markers,
    _drug,
    _drug_obj,
    _log_ticks,
    _present,
    _profile,
    _round_down,
    _set_linear_limits,
    _set_log_limits,
    _strip_threshold_labels,
    _tail_min,
    _threshold_lines,
    _thresholds,
    _time_axis,
    _title,
    _unit,
    _x,
    add_legend,
)

# one arm's figures live in pkcsf.plotting.single_arm; they stay importable from here
from pkcsf.plotting.single_arm import _stat_text, concentration_time, linear_and_log  # noqa: F401
from pkcsf.plotting.style import (
    ARM_DASHES,
    FONT,
    LABEL_FONT,
    SMALL_FONT,
    TITLE_FONT,
    _below_note,
    _fmt,
    _group_style,
    _is_quantity,
    _new_axes,
    _threshold_name,
    arm_styles,
    drug_label,
    group_label,
    pretty_unit,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes



# ------------------------------------------------------ arms compared
def compare_arms(result: ScenarioLike, arms: Sequence[str] | None = None, *, drug: str | None = None,
                 groups: Sequence[str] | str | None = None, stat: str = "median", log: bool = True,
                 thresholds: bool | str | Sequence[str] = True, doses: bool = True, floor: float = 1e-4,
                 axes: Sequence[Axes] | None = None, legend: bool = True, title: str | None = None,
                 ncols: int | None = None) -> np.ndarray:
    """Arms side by side, one panel per arm (shared concentration axis), one line per compartment group.

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run`.
    arms : list of str, optional
        Arms to show, in order (default: all).
    drug : str, optional
        Drug of a combination arm (default: the arm's first drug).
    groups : list of str, optional
        Compartment groups; may name groups only some arms have (e.g. ``lumbar_liposomal``): each arm
        shows those it has.
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
    axes : sequence of Axes, optional
        Draw into these Axes, one per panel (default: a new figure).
    legend : bool
        Add one legend below the panels.
    title : str, optional
        Title (default: drug, arm and what the line shows; ``""`` for none).
    ncols : int, optional
        Panels per row of a new figure (default: up to 3).

    Returns
    -------
    ndarray of Axes, shape (n_arms,)
        One panel per arm.

    Examples
    --------
    >>> import pkcsf as pk
    >>> from pkcsf import plotting as pp
    >>> res = pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once",
    ...                                         "ommaya": "12 mg ommaya once"}, subjects=50, days=2)  # doctest: +SKIP
    >>> axes = pp.compare_arms(res, groups=["ventricular", "lumbar"])  # doctest: +SKIP
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


def drugs_of(result: ScenarioLike) -> list[str]:
    """Every drug of a result, in arm order (a combination arm has several).

    Parameters
    ----------
    result : ScenarioResult or ArmResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run` (or one arm of it).

    Returns
    -------
    list of str
        Drug names, each once.
    """
    out = []
    arms = result.arms.values() if hasattr(result, "arms") else [result]
    for a in arms:
        out += [d for d in a.profiles if d not in out]
    return out


def compare_drugs(result: ScenarioLike, arms: Sequence[str] | None = None, *, drugs: Sequence[str] | None = None,
                  groups: Sequence[str] | str | None = None, stat: str = "median", log: bool = True,
                  thresholds: bool | str | Sequence[str] = True, doses: bool = True, floor: float = 1e-4,
                  axes: np.ndarray | Sequence[Axes] | None = None, legend: bool = True,
                  title: str | None = None) -> np.ndarray:
    """Every drug of a combination: one row of panels per drug, one column per arm.

    Each row is on its own concentration scale, with that drug's thresholds. An arm without a drug leaves
    its panel empty, saying so.

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run` with a combination regimen.
    arms : list of str, optional
        Arms to show, in order (default: all).
    drugs : list of str, optional
        Drugs, one row each (default: :func:`drugs_of`).
    groups : list of str, optional
        Compartment groups (``"ventricular"``, ``"lumbar"``, ...; default: all of the arm's).
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
    axes : array of Axes, shape (n_drugs, n_arms), optional
        Draw into these (default: a new figure).
    legend : bool
        Add one legend below the panels.
    title : str, optional
        Title (default: drug, arm and what the line shows; ``""`` for none).

    Returns
    -------
    ndarray of Axes, shape (n_drugs, n_arms)
        Indexed ``[drug, arm]``.
    """
    names = list(result.arms) if arms is None else list(arms)
    drugs = drugs_of(result) if drugs is None else list(drugs)
    made = axes is None
    if made:
        nc = len(names)
        fig, axs = _new_axes(len(drugs), nc, figsize=(min(4.3 * nc + 1.6, 11.0), 3.4 * len(drugs) + 1.0))
        axes = axs
    axes = np.asarray(axes, dtype=object).reshape(len(drugs), len(names))
    for i, d in enumerate(drugs):
        have = [nm for nm in names if d in result[nm].profiles]
        for j, nm in enumerate(names):
            if nm not in have:
                axes[i, j].set_axis_off()
                axes[i, j].text(0.5, 0.5, f"{nm}: no {drug_label(d)}", ha="center", va="center",
                                transform=axes[i, j].transAxes, fontsize=FONT, color="#555555")
        row = [axes[i, names.index(nm)] for nm in have]
        grp = groups
        if groups is not None:
            grp = [g for g in ([groups] if isinstance(groups, str) else groups)
                   if any(g in result[nm].groups[d] for nm in have)] or None
        compare_arms(result, have, drug=d, groups=grp, stat=stat, log=log, thresholds=thresholds, doses=doses,
                     floor=floor, axes=row, legend=False)
        for ax, nm in zip(row, have):
            ax.set_title(f"{drug_label(d)}: {nm}", fontsize=TITLE_FONT, loc="left")
        if row and not _last_col(row[-1], True):          # the row's last panel keeps its threshold labels
            _threshold_lines(row[-1], _thresholds(result, d, thresholds), _unit(result),
                             drug=_drug_obj(result, d))
    if made:
        a0 = result[names[0]]
        d0 = drugs[0] if drugs[0] in a0.profiles else next(iter(a0.profiles))
        fig.suptitle(title if title is not None else f"every drug of the regimen: {_stat_text(stat, a0, d0)}",
                     fontsize=TITLE_FONT + 1)
    if legend:
        add_legend(axes[0, 0].figure if made else list(axes.ravel()), ncol=5)
    return axes


def _last_col(ax, default):
    ss = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    return ss.is_last_col() if ss is not None else default


def _first_col(ax, default):
    ss = ax.get_subplotspec() if hasattr(ax, "get_subplotspec") else None
    return ss.is_first_col() if ss is not None else default


def overlay_arms(result: ScenarioLike, groups: Sequence[str] | str, arms: Sequence[str] | None = None, *,
                 drug: str | None = None, stat: str = "median", log: bool = True,
                 thresholds: bool | str | Sequence[str] = True, doses: bool = False, floor: float = 1e-4,
                 axes: Sequence[Axes] | None = None, legend: bool = True, title: str | None = None,
                 sharey: bool = False, ncols: int | None = None, band: bool = False,
                 styles: Mapping[str, Mapping[str, object]] | None = None) -> np.ndarray:
    """One panel per compartment group, one line per arm: e.g. lumbar versus Ommaya in each CSF space.

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run`.
    groups : str or list of str
        Compartment groups, one panel each.
    arms : list of str, optional
        Arms to show, in order (default: all).
    drug : str, optional
        Drug of a combination arm (default: the arm's first drug).
    stat : {"median", "typical", "mean"}
        Line drawn: median or mean of the virtual patients, or the typical patient.
    log : bool
        Log concentration axis (floored at ``floor`` x the highest value shown).
    thresholds : bool, str or list of str
        Draw the drug's (or the scenario's) thresholds, or only the named ones; False for none.
    doses : bool
        Dose markers on the time axis (default False: arms dose at different times).
    floor : float
        Lower end of a log axis relative to the highest value shown (default 1e-4: four decades).
    axes : sequence of Axes, optional
        Draw into these Axes, one per panel (default: a new figure).
    legend : bool
        Add one legend below the panels.
    title : str, optional
        Title (default: drug, arm and what the line shows; ``""`` for none).
    sharey : bool
        Put all panels on one concentration scale.
    ncols : int, optional
        Panels per row of a new figure.
    band : bool
        Shade each arm's 5-95 % band of patients.
    styles : dict, optional
        ``{arm: {"color": ..., "ls": ...}}`` to override the default colours (route colours when each arm
        has one route, else the palette in order).

    Returns
    -------
    ndarray of Axes, shape (n_groups,)
        One panel per group.

    Examples
    --------
    >>> import pkcsf as pk
    >>> from pkcsf import plotting as pp
    >>> res = pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once",
    ...                                         "ommaya": "12 mg ommaya once"}, subjects=50, days=2)  # doctest: +SKIP
    >>> axes = pp.overlay_arms(res, ["ventricular", "lumbar"], band=True)  # doctest: +SKIP
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
    arm_style = arm_styles(result, names)
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
            st = {"lw": 1.8, **arm_style[nm]}
            st.update((styles or {}).get(nm, {}))
            col = st["color"]
            ax.plot(x, np.where(y > 0, y, np.nan) if log else y, label=nm, **st)
            if band and a.profiles[d].shape[0] > 1:
                k = a.groups[d].index(g)
                lo, hi = percentiles(a.profiles[d][:, :, k], [5, 95], axis=0)
                ax.fill_between(x, np.where(lo > 0, lo, np.nan) if log else lo, hi, color=col, alpha=0.18, lw=0)
                peak = max(peak, float(np.nanmax(hi)) / 1.5)
                tail = min(tail, _tail_min(lo))
            thr = thr or _thresholds(result, d, thresholds)
            if doses:
                _dose_markers(ax, a, days, drug=d)
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


def ic50_ratio(result: ScenarioLike, *, drug: str = "osimertinib",
               groups: Sequence[str] | str = ("lumbar", "ventricular"), threshold: str | None = None,
               arms: Sequence[str] | None = None, band: bool = True, ax: Axes | None = None,
               title: str | None = None, legend: bool = True, reference: bool = True,
               floor: float | None = None) -> Axes:
    """CSF concentration divided by a published IC50 (log axis), per arm and compartment.

    Above 1 the free CSF concentration exceeds that IC50. Colour: compartment (as in every figure);
    line style: arm (:func:`arm_styles`).

    Parameters
    ----------
    result : ScenarioResult
        From :func:`pkcsf.simulate_drug` / :func:`pkcsf.run`.
    drug : str
        The drug whose thresholds are the IC50s (default ``"osimertinib"``).
    groups : str or list of str
        Compartment groups, one line each per arm.
    threshold : str, optional
        The IC50 to divide by (default: the drug's first threshold, for osimertinib the lowest
        EGFR-mutant IC50).
    arms : list of str, optional
        Arms to show, in order (default: all).
    band : bool
        Shade the 5-95 % band of patients.
    ax : matplotlib.axes.Axes, optional
        Draw into this Axes (default: a new figure).
    title : str, optional
        Title (default: drug, arm and what the line shows; ``""`` for none).
    legend : bool
        Add one legend below the panels.
    reference : bool
        Draw the drug's other thresholds as reference ratios.
    floor : float, optional
        Lowest ratio shown relative to the highest (default: from the late concentrations).

    Returns
    -------
    matplotlib.axes.Axes
        The panel.

    Raises
    ------
    ScenarioError
        A drug without a sourced threshold, or an unknown ``threshold`` name.
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
    arm_style = arm_styles(result, names)
    if len({str(arm_style[nm]["ls"]) for nm in names}) < len(names):
        # colour is the compartment here, so the arms need their own line styles even when they share a
        # route (e.g. osimertinib 80 vs 160 mg, both oral: one style each, in arm order)
        arm_style = {nm: {**arm_style[nm], "ls": ARM_DASHES[i % len(ARM_DASHES)]} for i, nm in enumerate(names)}
    days = any(_days(result[nm].times) for nm in names)
    top, bottom = 0.0, np.inf
    for i, nm in enumerate(names):
        a = result[nm]
        x = _x(a.times, days)
        for j, g in enumerate(groups):
            k = a.groups[drug].index(g)
            col = _group_style(g)["color"]
            med = _profile(a, drug, g, "median") / tval
            ax.plot(x, np.where(med > 0, med, np.nan), color=col, ls=arm_style[nm]["ls"], lw=1.8,
                    label=f"{nm}, {group_label(g)}")
            if band and a.profiles[drug].shape[0] > 1:
                lo, hi = percentiles(a.profiles[drug][:, :, k], [5, 95], axis=0) / tval
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
    items = [(r, f"C = {_fmt(v)} {pretty_unit(_unit(result))}" if _is_quantity(n) else
              f"C = {_threshold_name(n)}\n({_fmt(v)} {pretty_unit(_unit(result))})")
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
