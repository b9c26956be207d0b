"""pkcsf.report.figsave: the report's figures saved with one draw and no Tick per unlabelled minor tick give
the same PNG bytes as matplotlib's own savefig after a constrained layout (issue 11)."""
import numpy as np
import pytest

from pkcsf.plotting.axes import _log_ticks, _time_axis
from pkcsf.report.figsave import save_figure

plt = pytest.importorskip("matplotlib.pyplot")


def _figure(kind: str):
    t = np.linspace(0.0, 28 * 24.0, 400)
    y = 50.0 * np.exp(-t / 90.0) + 0.02
    if kind == "grid":          # log y and a time axis with minor ticks, shared y, figure legend
        fig, axs = plt.subplots(2, 2, figsize=(8, 6), layout="constrained", sharey=True)
        for k, ax in enumerate(axs.flat):
            ax.plot(t / 24.0, y * (k + 1), label=f"arm {k}")
            ax.set_yscale("log")
            ax.set_ylim(0.01, 300)
            _log_ticks(ax)
            _time_axis(ax, t, days=True)
            ax.set_title(f"panel {k}")
            ax.grid(True, which="major", alpha=0.25, lw=0.6)
        axs[0, 1].set_ylabel("")
        fig.legend(*axs[0, 0].get_legend_handles_labels(), loc="outside lower center", ncol=2)
    elif kind == "narrow":      # 1-2-5 log ticks (under 2.5 decades), hour axis, ticks on all sides
        fig, ax = plt.subplots(figsize=(5, 3.5), layout="constrained")
        ax.plot(t[:60], y[:60])
        ax.set_yscale("log")
        ax.set_ylim(5, 60)
        _log_ticks(ax)
        _time_axis(ax, t[:60], days=False)
        ax.tick_params(which="both", top=True, right=True, direction="inout")
        ax.set_ylabel("concentration (µmol/L)")
    else:                       # log x (the validation figure's axis), no layout engine
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.scatter([0.3, 1.0, 2.5, 7.0], [1, 2, 3, 4])
        ax.set_xscale("log")
        ax.set_xlim(0.2, 10)
        _log_ticks(ax, "x")
    return fig


@pytest.mark.parametrize("kind", ["grid", "narrow", "plain"])
def test_same_png_bytes_as_savefig(tmp_path, kind):
    ref, new = _figure(kind), _figure(kind)
    ref.savefig(tmp_path / "ref.png", dpi=80, facecolor="white")
    save_figure(new, tmp_path / "new.png", 80, facecolor="white")
    assert (tmp_path / "ref.png").read_bytes() == (tmp_path / "new.png").read_bytes()
    plt.close(ref)
    plt.close(new)


def test_the_figure_is_left_as_it_was(tmp_path):
    fig = _figure("grid")
    ax = fig.axes[0]
    children = list(ax.get_children())
    locator = ax.yaxis.get_minor_locator()
    save_figure(fig, tmp_path / "f.png", 60)
    assert ax.yaxis.get_minor_locator() is locator
    assert list(ax.get_children())[:len(children)] == children and len(ax.get_children()) == len(children)
    assert fig.get_layout_engine() is None          # the layout is done
    plt.close(fig)


def test_median_profile_is_nanmedian():
    """plotting.axes._profile takes np.median when nothing is missing: the same numbers as np.nanmedian."""
    from types import SimpleNamespace

    from pkcsf.plotting.axes import _profile

    rng = np.random.default_rng(1)
    for n in (2, 7, 200):
        x = rng.lognormal(0.0, 3.0, (n, 50, 2))
        x[:, 0, :] = 0.0
        a = SimpleNamespace(groups={"d": ["g0", "g1"]}, profiles={"d": x}, typical={"d": x[0]})
        assert np.array_equal(_profile(a, "d", "g1", "median"), np.nanmedian(x[:, :, 1], axis=0))
        x[0, 3, 1] = np.nan
        assert np.array_equal(_profile(a, "d", "g1", "median"), np.nanmedian(x[:, :, 1], axis=0), equal_nan=True)
