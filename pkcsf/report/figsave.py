"""Saving the report's figures: the same PNG bytes as ``savefig`` after a constrained layout, in less time.

Where the time went (issue 11; cProfile of the report's 16 figures, 110 panels): matplotlib builds a
``Tick`` (two marker lines, a grid line and two texts, ~1 ms each) for every tick location, updates each
one in every layout pass and draws it; ~2,800 of the report's ~3,600 ticks are unlabelled minor ticks of
log and time axes. Three things are left out, none of which shows in the PNG (checked byte for byte by
``tests/test_report_figsave.py`` and on the whole report by ``benchmarks/bench_startup.py --warm``):

* the second draw: ``savefig`` draws a figure that has a layout engine (even the ``"none"`` placeholder)
  once with rendering disabled and then for real; the layout runs here once, the engine is removed;
* unlabelled minor ticks during the layout: they add only a zero-size box at their label anchor, inside
  what the panel and its major tick labels already cover;
* a ``Tick`` per unlabelled minor tick at the draw: each axis's minor tick marks are drawn as one marker
  line with the tick's own marker, size, width, colour and transform (what each ``Tick`` would draw).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["save_figure"]


def save_figure(fig: Figure, path: Path, dpi: float, **kwargs: Any) -> None:
    """Lay out ``fig`` (its layout engine, if any) and save it with one draw.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure; its layout engine is removed (the layout is done).
    path : Path
        The output file.
    dpi : float
        Resolution (dots per inch); the layout runs at it.
    **kwargs
        Passed to ``Figure.savefig`` (``facecolor=...``).
    """
    import matplotlib as mpl

    engine = fig.get_layout_engine()
    if engine is not None:
        fig.set_dpi(dpi)
        with _unlabelled_minor_ticks_off(fig):
            engine.execute(fig)
        with mpl.rc_context({"figure.autolayout": False, "figure.constrained_layout.use": False}):
            fig.set_layout_engine(None)
    with _unlabelled_minor_ticks_as_markers(fig):
        fig.savefig(path, dpi=dpi, **kwargs)


def _unlabelled_minor(fig):
    """(axis, its minor ticker) for every axis of ``fig`` whose minor ticks have no labels."""
    from matplotlib.ticker import NullFormatter, NullLocator

    out = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            tk = axis.minor            # shared axes share this object
            if type(tk.formatter) is NullFormatter and not isinstance(tk.locator, NullLocator):
                out.append((axis, tk))
    return out


@contextlib.contextmanager
def _null_locators(tickers):
    from matplotlib.ticker import NullLocator

    saved = {}
    for tk in tickers:
        if id(tk) not in saved:
            saved[id(tk)] = (tk, tk.locator)
            tk.locator = NullLocator()
    try:
        yield
    finally:
        for tk, loc in saved.values():
            tk.locator = loc


@contextlib.contextmanager
def _unlabelled_minor_ticks_off(fig):
    """Unlabelled minor tickers locate nothing inside the block (for the layout)."""
    with _null_locators([tk for _, tk in _unlabelled_minor(fig)]):
        yield


def _visible_minor_locs(axis) -> np.ndarray:
    """The minor tick locations ``Axis._update_ticks`` draws: those inside the view interval (up to
    rounding: the same closeness test, on the axis's transformed scale).
    """
    locs = np.asarray(axis.get_minorticklocs(), dtype=float)
    lo, hi = sorted(axis.get_view_interval())
    tr = axis.get_transform()
    a, b = sorted(float(v) for v in np.ravel(tr.transform(np.array([[lo], [hi]]))))
    tol = (b - a) * 1e-10
    keep = []
    for loc in locs:
        try:
            v = float(np.ravel(tr.transform(np.array([[loc]])))[0])
        except (AssertionError, ValueError):
            continue
        if a - tol <= v <= b + tol:
            keep.append(loc)
    return np.asarray(keep, dtype=float)


@contextlib.contextmanager
def _unlabelled_minor_ticks_as_markers(fig):
    """Inside the block, each axis's unlabelled minor ticks are one marker line per side instead of one
    ``Tick`` per location (what the ticks would draw: marker, size, width, colour, transform, z-order).
    """
    from matplotlib.lines import Line2D

    todo = []
    for axis, tk in _unlabelled_minor(fig):
        if not axis.get_visible():
            continue
        tmpl = axis.minorTicks[0]                 # a minor tick with this axis's minor tick parameters
        if tmpl.gridline.get_visible() or not tmpl.get_visible():
            continue                              # minor grid lines: left to matplotlib
        todo.append((axis, tk, tmpl))
    added = []
    for axis, _, tmpl in todo:
        locs = _visible_minor_locs(axis)
        if locs.size == 0:
            continue
        ax = axis.axes
        for part, other in ((tmpl.tick1line, 0.0), (tmpl.tick2line, 1.0)):
            if not part.get_visible():
                continue
            ln = Line2D([], [])
            ln.update_from(part)
            const = np.full(locs.size, other)
            ln.set_data((locs, const) if axis.axis_name == "x" else (const, locs))
            ln.set_clip_on(False)                 # a tick line has no clip box or path
            ax.add_artist(ln)
            ln.set_clip_on(False)
            ln.set_zorder(np.nextafter(axis.get_zorder(), np.inf))   # right after its axis
            added.append(ln)
    try:
        with _null_locators([tk for _, tk, _ in todo]):
            yield
    finally:
        for ln in added:
            ln.remove()
