"""Figures of a sensitivity analysis: tornado (local) and Sobol index bars (global)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from pkcsf.plotting.style import FONT, LABEL_FONT, PALETTE, SMALL_FONT, TITLE_FONT, _new_axes

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

__all__ = ["tornado", "sobol_bars"]


def tornado(table: pd.DataFrame, readout: str, y_typical: float, *, ax: Axes | None = None, top: int = 12,
            factor: float = 2.0) -> Axes:
    """Tornado plot of a local sensitivity table (:class:`pkcsf.clinical.sensitivity.SensitivityResult`).

    Parameters
    ----------
    table : DataFrame
        ``parameter``, ``low``, ``high``, ``change_low``, ``change_high`` (relative changes of the read-out).
    readout : str
        The read-out's name (title).
    y_typical : float
        The typical read-out (subtitle).
    ax : matplotlib Axes, optional
        Draw into this Axes (default: a new figure).
    top : int
        Largest effects shown.
    factor : float
        The factor each parameter was divided and multiplied by (legend).

    Returns
    -------
    matplotlib.axes.Axes
        One bar pair per parameter, the largest effect on top.

    Examples
    --------
    >>> import pandas as pd
    >>> tab = pd.DataFrame({"parameter": ["Q_CSF", "V_LV", "CL"], "low": 0.5, "high": 2.0,
    ...                     "change_low": [0.8, 0.3, -0.1], "change_high": [-0.4, -0.2, 0.05]})
    >>> ax = tornado(tab, "AUC ventricular", 120.0)
    """
    t = table.head(int(top)).iloc[::-1]
    if ax is None:
        ax = _new_axes(figsize=(7.5, 0.42 * len(t) + 1.6))[1][0, 0]
    y = np.arange(len(t))
    lo = 100.0 * t["change_low"].to_numpy(float)
    hi = 100.0 * t["change_high"].to_numpy(float)
    ax.barh(y, lo, color=PALETTE["sky_blue"], label=f"parameter \u00f7 {factor:g}", height=0.7)
    ax.barh(y, hi, color=PALETTE["vermilion"], label=f"parameter \u00d7 {factor:g}", height=0.7, alpha=0.85)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(y, list(t["parameter"]), fontsize=FONT)
    ax.set_xlabel("change of the read-out from the typical patient (%)", fontsize=LABEL_FONT)
    ax.set_title(f"{readout}\n(typical {y_typical:.3g}; one parameter at a time)", fontsize=TITLE_FONT)
    ax.legend(fontsize=SMALL_FONT, loc="lower right", frameon=False)
    ax.tick_params(axis="x", labelsize=FONT)
    return ax


def sobol_bars(table: pd.DataFrame, readout: str, *, ax: Axes | None = None, top: int = 12) -> Axes:
    """First-order (S1) and total (ST) Sobol indices with their 95% confidence intervals.

    Parameters
    ----------
    table : DataFrame
        ``parameter``, ``S1``, ``S1_conf``, ``ST``, ``ST_conf``.
    readout : str
        The read-out's name (title).
    ax : matplotlib Axes, optional
        Draw into this Axes (default: a new figure).
    top : int
        Parameters shown (largest ST).

    Returns
    -------
    matplotlib.axes.Axes
        Two bars (ST, S1) per parameter, the largest ST on top.

    Examples
    --------
    >>> import pandas as pd
    >>> tab = pd.DataFrame({"parameter": ["Q_CSF", "V_LV"], "S1": [0.6, 0.2], "S1_conf": [0.05, 0.04],
    ...                     "ST": [0.7, 0.3], "ST_conf": [0.06, 0.05]})
    >>> ax = sobol_bars(tab, "AUC ventricular")
    """
    t = table.head(int(top)).iloc[::-1]
    if ax is None:
        ax = _new_axes(figsize=(7.5, 0.45 * len(t) + 1.6))[1][0, 0]
    y = np.arange(len(t))
    ax.barh(y + 0.18, t["ST"], xerr=t["ST_conf"], height=0.34, color=PALETTE["blue"], label="total (ST)",
            error_kw={"lw": 0.8})
    ax.barh(y - 0.18, t["S1"], xerr=t["S1_conf"], height=0.34, color=PALETTE["orange"], label="first order (S1)",
            error_kw={"lw": 0.8})
    ax.set_yticks(y, list(t["parameter"]), fontsize=FONT)
    ax.set_xlabel("Sobol index (share of the read-out's variance)", fontsize=LABEL_FONT)
    ax.set_xlim(left=min(0.0, float(np.nanmin(t["S1"] - t["S1_conf"]))))
    ax.set_title(readout, fontsize=TITLE_FONT)
    ax.legend(fontsize=SMALL_FONT, loc="lower right", frameon=False)
    ax.tick_params(axis="x", labelsize=FONT)
    return ax
