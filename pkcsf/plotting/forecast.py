"""Figure of an individual forecast: observations, population and individual predictions, posterior interval."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from pkcsf.plotting.style import FONT, GROUP_COLORS, LABEL_FONT, PALETTE, SMALL_FONT, TITLE_FONT, _new_axes, pretty_unit

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["forecast_plot"]


def forecast_plot(result: Any, *, group: str | None = None, ax: Axes | None = None) -> Axes | np.ndarray:
    """One panel per observed group (or ``group``): DV, PRED (dashed), IPRED (solid) and its interval (band).

    Parameters
    ----------
    result : ForecastResult
        From :func:`pkcsf.clinical.forecast.forecast`.
    group : str, optional
        Only this compartment group (default: every group with an observation).
    ax : matplotlib Axes, optional
        With ``group``: draw into this Axes.

    Returns
    -------
    matplotlib.axes.Axes or ndarray of Axes

    Examples
    --------
    >>> import pkcsf as pk
    >>> from pkcsf.plotting.forecast import forecast_plot
    >>> res = pk.forecast("methotrexate", "12 mg ommaya once",
    ...                   [{"time": 2.0, "group": "ventricular", "value": 50.0}])  # doctest: +SKIP
    >>> ax = forecast_plot(res)  # doctest: +SKIP
    """
    groups = [group] if group else list(dict.fromkeys(result.observations["group"]))
    if ax is None:
        _, axes = _new_axes(1, len(groups), figsize=(5.2 * len(groups), 4.0))
        axes = axes.ravel()
    else:
        axes = np.array([ax])
    unit = pretty_unit(result.unit)
    days = result.profile["time"].max() > 72
    sc = 24.0 if days else 1.0
    for a, g in zip(axes, groups):
        p = result.profile[result.profile["group"] == g]
        col = GROUP_COLORS.get(g, PALETTE["blue"])
        t = p["time"].to_numpy() / sc
        pos = p["hi"].to_numpy() > 0
        a.fill_between(t[pos], p["lo"].to_numpy()[pos], p["hi"].to_numpy()[pos], color=col, alpha=0.2, lw=0,
                       label=f"{result.interval:.0%} interval (posterior)")
        a.plot(t, p["IPRED"], color=col, lw=1.8, label="this patient (MAP, IPRED)")
        a.plot(t, p["PRED"], color=PALETTE["grey"], lw=1.2, ls="--", label="typical patient (PRED)")
        o = result.observations[result.observations["group"] == g]
        a.plot(o["time"] / sc, o["DV"], "o", color="black", ms=6, label="measured (DV)", zorder=5)
        a.set_yscale("log")
        vals = np.concatenate([p["lo"].to_numpy()[pos], o["DV"].to_numpy()])
        if len(vals):       # the band, the MAP curve and every measured level inside (no band: a degenerate sample)
            top = np.nanmax(np.concatenate([p["hi"].to_numpy()[pos], p["IPRED"].to_numpy(), o["DV"].to_numpy()]))
            a.set_ylim(max(vals.min(), p["IPRED"].max() * 1e-4) / 2, top * 2)
        a.set_xlabel("time after the first dose (" + ("days" if days else "h") + ")", fontsize=LABEL_FONT)
        a.set_ylabel(f"{g} concentration ({unit})", fontsize=LABEL_FONT)
        a.set_title(f"{result.drug}: {g}", fontsize=TITLE_FONT)
        a.tick_params(labelsize=FONT)
        a.legend(fontsize=SMALL_FONT, frameon=False, loc="upper right")
    return axes[0] if len(axes) == 1 else axes
