"""Validation figure: fold errors of the simulated versus published observations."""
from __future__ import annotations

import numpy as np

from pkcsf.plotting.style import (
    FONT, LABEL_FONT, PALETTE, SMALL_FONT, _new_axes,
)
from pkcsf.plotting.axes import (
    _title, add_legend,
)


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
