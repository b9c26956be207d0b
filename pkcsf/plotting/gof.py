"""Observed data against the model: goodness-of-fit panels and a visual predictive check.

Both take frames (no scenario objects), so that any tool's output can be drawn:

* :func:`gof_plot` takes the tidy observation frame (``ID, TIME, group, DV, PRED, IPRED, unit``; e.g.
  ``ScenarioResult.observations()``);
* :func:`vpc_plot` takes it and the simulated replicates (``REP, ID, TIME, group, SIM``; e.g.
  ``ArmResult.simulate_observations(200)``).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from pkcsf.core.errors import OutputError
from pkcsf.plotting.style import FONT, GROUP_COLORS, LABEL_FONT, PALETTE, SMALL_FONT, TITLE_FONT, _new_axes, pretty_unit

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["gof_plot", "vpc_plot", "vpc_bands", "prediction_corrected"]


def _observed(obs):
    need = {"TIME", "group", "DV", "PRED"}
    if not need <= set(obs.columns):
        raise OutputError("observations", sorted(obs.columns), "needs the columns " + ", ".join(sorted(need))
                          + " (ScenarioResult.observations())")
    o = obs[np.isfinite(obs["DV"].to_numpy(dtype=float))]
    if o.empty:
        raise OutputError("observations", "no DV", "a goodness-of-fit figure needs observation rows with a DV")
    return o


def _unit(obs):
    return pretty_unit(str(obs["unit"].iloc[0])) if "unit" in obs.columns and len(obs) else ""


def _identity(ax, values, log):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v) & ((v > 0) if log else np.isfinite(v))]
    if not v.size:
        return
    lo, hi = v.min(), v.max()
    lo, hi = (lo / 2, hi * 2) if log else (lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.plot([lo, hi], [lo, hi], color=PALETTE["grey"], lw=1.0, ls="--", label="identity", zorder=1)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)


def gof_plot(obs: pd.DataFrame, *, log: bool = True, axes: Sequence[Axes] | np.ndarray | None = None) -> np.ndarray:
    """Goodness of fit: DV vs PRED, DV vs IPRED (identity line), and the residual vs time and vs PRED
    (``ln(DV/PRED)`` with ``log``, else ``DV - PRED``).

    Parameters
    ----------
    obs : DataFrame
        ``TIME, group, DV, PRED`` (and ``IPRED``, ``unit``); rows without DV are left out.
    log : bool
        Log axes for the concentration panels (default; CSF concentrations span decades).
    axes : array of 4 Axes, optional
        Draw into these (default: a new 2 x 2 figure).

    Returns
    -------
    ndarray of Axes, shape (4,)
        DV vs PRED, DV vs IPRED, residual vs time, residual vs PRED.

    Raises
    ------
    OutputError
        A frame without the columns ``TIME, group, DV, PRED``, or without any DV.

    Examples
    --------
    >>> import pandas as pd
    >>> obs = pd.DataFrame({"ID": [1, 1, 2, 2], "TIME": [1.0, 4.0, 1.0, 4.0], "group": "ventricular",
    ...                     "DV": [10.0, 2.0, 14.0, 3.5], "PRED": [12.0, 2.5, 12.0, 2.5],
    ...                     "IPRED": [10.5, 2.1, 13.0, 3.2], "unit": "umol/L"})
    >>> gof_plot(obs).shape
    (4,)
    """
    o = _observed(obs)
    if axes is None:
        _, axes = _new_axes(2, 2, figsize=(9.5, 8.0))
    axes = np.asarray(axes).ravel()
    unit = _unit(o)
    groups = list(dict.fromkeys(o["group"]))
    ipred = "IPRED" in o.columns
    dv, pred = o["DV"].to_numpy(dtype=float), o["PRED"].to_numpy(dtype=float)
    if log:             # concentrations spanning decades: the residual on the log scale, ln(DV/PRED)
        with np.errstate(divide="ignore", invalid="ignore"):
            res = np.where((dv > 0) & (pred > 0), np.log(dv / pred), np.nan)
        res_label = "residual ln(DV / PRED)"
    else:
        res = dv - pred
        res_label = f"residual DV - PRED ({unit})"
    for g in groups:
        s = o["group"].to_numpy() == g
        kw = dict(color=GROUP_COLORS.get(g, PALETTE["blue"]), ms=6, ls="none", marker="o", alpha=0.85, label=g)
        axes[0].plot(o["PRED"][s], o["DV"][s], **kw)
        if ipred:
            axes[1].plot(o["IPRED"][s], o["DV"][s], **kw)
        axes[2].plot(o["TIME"][s], res[s], **kw)
        axes[3].plot(o["PRED"][s], res[s], **kw)
    both = np.concatenate([o["DV"].to_numpy(float), o["PRED"].to_numpy(float)]
                          + ([o["IPRED"].to_numpy(float)] if ipred else []))
    for ax, x, label in ((axes[0], "PRED", "population prediction PRED"),
                         (axes[1], "IPRED", "individual prediction IPRED")):
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
        _identity(ax, both, log)
        ax.set_xlabel(f"{label} ({unit})", fontsize=LABEL_FONT)
        ax.set_ylabel(f"observed DV ({unit})", fontsize=LABEL_FONT)
    if not ipred:
        axes[1].text(0.5, 0.5, "no IPRED", ha="center", va="center", transform=axes[1].transAxes)
    axes[0].set_title("DV vs PRED", fontsize=TITLE_FONT)
    axes[1].set_title("DV vs IPRED" + (" (= PRED without individual parameters)" if ipred and np.allclose(
        o["IPRED"].to_numpy(float), o["PRED"].to_numpy(float), equal_nan=True) else ""), fontsize=TITLE_FONT - 1)
    for ax, xl in ((axes[2], "time after the first dose (h)"), (axes[3], f"PRED ({unit})")):
        ax.axhline(0.0, color=PALETTE["grey"], lw=1.0, ls="--")
        ax.set_xlabel(xl, fontsize=LABEL_FONT)
        ax.set_ylabel(res_label, fontsize=LABEL_FONT)
    if log:
        axes[3].set_xscale("log")
    axes[2].set_title("residuals vs time", fontsize=TITLE_FONT)
    axes[3].set_title("residuals vs PRED", fontsize=TITLE_FONT)
    for ax in axes:
        ax.tick_params(labelsize=FONT)
    axes[0].legend(fontsize=SMALL_FONT, frameon=False, loc="upper left")
    return axes


def vpc_bands(sims: pd.DataFrame, q: Sequence[float] = (5, 50, 95)) -> pd.DataFrame:
    """Percentiles of the simulated observations per group and nominal time.

    Parameters
    ----------
    sims : DataFrame
        ``TIME, group, SIM`` (e.g. ``ArmResult.simulate_observations(200)``).
    q : sequence of float
        Percentiles in [0, 100].

    Returns
    -------
    pandas.DataFrame
        Columns ``group, TIME``, one column ``p<q>`` per percentile (``p5, p50, p95``) and ``n`` (simulated
        values at that time).

    Raises
    ------
    OutputError
        A frame without ``TIME, group, SIM``.

    Examples
    --------
    >>> import pandas as pd
    >>> sims = pd.DataFrame({"TIME": [1, 1, 1], "group": "csf", "SIM": [1.0, 2.0, 3.0]})
    >>> vpc_bands(sims, q=(50,))[["group", "TIME", "p50", "n"]].to_dict("records")
    [{'group': 'csf', 'TIME': 1, 'p50': 2.0, 'n': 3}]
    """
    import pandas as pd

    if not {"TIME", "group", "SIM"} <= set(sims.columns):
        raise OutputError("simulations", sorted(sims.columns), "needs TIME, group, SIM "
                          "(ArmResult.simulate_observations())")
    g = sims.groupby(["group", "TIME"], sort=True)["SIM"]
    out = pd.concat([g.quantile(x / 100.0).rename(f"p{x:g}") for x in q] + [g.size().rename("n")], axis=1)
    return out.reset_index()


def prediction_corrected(obs: pd.DataFrame, sims: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Prediction-corrected observations and simulations (pcVPC, Bergstrand et al., AAPS J 2011;13:143).

    Each value is multiplied by the median PRED of its (group, TIME) bin over its own PRED, so that patients
    on different doses or routes observed at one time are comparable.

    Parameters
    ----------
    obs : DataFrame
        ``ID, TIME, group, DV, PRED``, one row per subject, time and group.
    sims : DataFrame
        ``ID, TIME, group, SIM`` (replicates of the same design).

    Returns
    -------
    (DataFrame, DataFrame)
        ``obs`` with ``DV`` corrected and ``sims`` with ``SIM`` corrected (simulated rows without an
        observation are dropped).

    Raises
    ------
    OutputError
        Missing columns, no DV, or repeated ID/TIME/group rows.

    Examples
    --------
    Every subject has the bin's median PRED here, so nothing changes:

    >>> import pandas as pd
    >>> obs = pd.DataFrame({"ID": [1, 1, 2, 2], "TIME": [1.0, 4.0, 1.0, 4.0], "group": "ventricular",
    ...                     "DV": [10.0, 2.0, 14.0, 3.5], "PRED": [12.0, 2.5, 12.0, 2.5],
    ...                     "IPRED": [10.5, 2.1, 13.0, 3.2], "unit": "umol/L"})
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sims = pd.DataFrame({"REP": np.repeat(np.arange(50), 4), "ID": np.tile([1, 1, 2, 2], 50),
    ...                      "TIME": np.tile([1.0, 4.0, 1.0, 4.0], 50), "group": "ventricular",
    ...                      "SIM": np.tile([12.0, 2.5, 12.0, 2.5], 50) * rng.lognormal(0, 0.3, 200)})
    >>> o, s = prediction_corrected(obs, sims)
    >>> o["DV"].tolist(), len(s)
    ([10.0, 2.0, 14.0, 3.5], 200)
    """
    o = _observed(obs).copy()
    keys = ["ID", "TIME", "group"]
    if o.duplicated(keys).any():
        raise OutputError("observations", "repeated ID/TIME/group rows",
                          "prediction correction needs one observation per subject, time and group")
    bin_pred = o.groupby(["group", "TIME"])["PRED"].transform("median")
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(o["PRED"] > 0, bin_pred / o["PRED"], np.nan)
    o["DV"] = o["DV"] * factor
    f = o.assign(_f=factor)[keys + ["_f"]]
    s = sims.merge(f, on=keys, how="inner")
    s["SIM"] = s["SIM"] * s["_f"]
    return o, s.drop(columns="_f")


def vpc_plot(obs: pd.DataFrame, sims: pd.DataFrame, *, q: Sequence[float] = (5, 50, 95), log: bool = True,
             pred_corrected: bool = False, axes: Sequence[Axes] | np.ndarray | None = None) -> Axes | np.ndarray:
    """Visual predictive check: observed DV over the simulated ``q`` percentiles of the population at each
    nominal observation time, one panel per observed group.

    The percentiles pool every simulated subject observed at that time and group (a nominal-time VPC, not
    prediction-corrected): with patients on different doses or routes in one table, read each time point
    against the patients observed there.

    Parameters
    ----------
    obs : DataFrame
        ``TIME, group, DV`` (rows without DV are left out).
    sims : DataFrame
        ``TIME, group, SIM``: the data set's design simulated with random effects.
    q : sequence of three floats
        Percentiles (low, median, high) of the simulated band.
    log : bool
        Log concentration axis.
    pred_corrected : bool
        Prediction-corrected VPC (:func:`prediction_corrected`): for tables mixing doses or routes.
    axes : array of Axes, optional
        One per observed group (default: a new figure).

    Returns
    -------
    Axes or ndarray of Axes
        One panel per observed group (a single Axes for one group).

    Examples
    --------
    >>> import pandas as pd
    >>> obs = pd.DataFrame({"ID": [1, 1, 2, 2], "TIME": [1.0, 4.0, 1.0, 4.0], "group": "ventricular",
    ...                     "DV": [10.0, 2.0, 14.0, 3.5], "PRED": [12.0, 2.5, 12.0, 2.5],
    ...                     "IPRED": [10.5, 2.1, 13.0, 3.2], "unit": "umol/L"})
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> sims = pd.DataFrame({"REP": np.repeat(np.arange(50), 4), "ID": np.tile([1, 1, 2, 2], 50),
    ...                      "TIME": np.tile([1.0, 4.0, 1.0, 4.0], 50), "group": "ventricular",
    ...                      "SIM": np.tile([12.0, 2.5, 12.0, 2.5], 50) * rng.lognormal(0, 0.3, 200)})
    >>> ax = vpc_plot(obs, sims)        # one observed group: one Axes
    """
    o = _observed(obs)
    if pred_corrected:
        o, sims = prediction_corrected(obs, sims)
    bands = vpc_bands(sims, q)
    groups = list(dict.fromkeys(o["group"]))
    if axes is None:
        nc = min(3, len(groups))
        nr = -(-len(groups) // nc)
        _, axes = _new_axes(nr, nc, figsize=(5.0 * nc, 4.2 * nr))
        for ax in np.asarray(axes).ravel()[len(groups):]:
            ax.set_visible(False)
    axes = np.asarray(axes).ravel()
    unit = _unit(o)
    lo, mid, hi = (f"p{x:g}" for x in q)
    for ax, g in zip(axes, groups):
        b = bands[bands["group"] == g]
        col = GROUP_COLORS.get(g, PALETTE["blue"])
        ax.fill_between(b["TIME"], b[lo], b[hi], color=col, alpha=0.22, lw=0,
                        label=f"simulated {q[0]:g}-{q[2]:g}%")
        ax.plot(b["TIME"], b[mid], color=col, lw=1.6, marker="_", ms=12, label="simulated median")
        ax.vlines(b["TIME"], b[lo], b[hi], color=col, lw=4, alpha=0.45)     # visible at a single time too
        s = o[o["group"] == g]
        ax.plot(s["TIME"], s["DV"], "o", color="black", ms=5, label="observed DV", zorder=5)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("time after the first dose (h)", fontsize=LABEL_FONT)
        ax.set_ylabel(f"{g} concentration ({unit})", fontsize=LABEL_FONT)
        ax.set_title(("prediction-corrected VPC: " if pred_corrected else "VPC: ") + g, fontsize=TITLE_FONT)
        ax.tick_params(labelsize=FONT)
        ax.legend(fontsize=SMALL_FONT, frameon=False, loc="upper right")
    return axes[0] if len(axes) == 1 else axes
