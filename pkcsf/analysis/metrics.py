"""Exposure read-outs from simulated concentration-time arrays.

Every function takes the engine's output grid ``times`` (1-D, h, increasing; a time listed twice,
as the engine lists dose times, is read as a dose: the first value is the pre-dose value, the second
the post-dose value) and concentrations ``conc`` of shape ``(n_subjects, n_times)`` or
``(n_subjects, n_times, n_compartments)`` in mg/L, and returns one value per
subject, shape ``(n_subjects,)`` or ``(n_subjects, n_compartments)``
(per-interval functions insert an interval axis: ``(n_subjects, n_intervals)``
or ``(n_subjects, n_intervals, n_compartments)``). Everything is vectorised
over subjects and compartments; the only Python loops run over dosing
intervals or query times.

The curve between grid points
-----------------------------
Between two grid points the concentration is the interpolant chosen by
``method`` (one of :data:`METHODS`), and *every* read-out uses that same
interpolant: AUC is its exact integral, time above a threshold uses its exact
crossing points, a window edge that falls between grid points takes its value
there. So AUC is additive over adjacent windows and read-outs agree with each
other.

* ``"linear"``: straight line (linear trapezoid for AUC).
* ``"linear-up/log-down"``: straight line when rising or flat, exponential
  when falling between two positive values (the PKNCA / WinNonlin
  "lin up/log down" rule; exact for mono-exponential decay).
* ``"log"``: exponential between any two different positive values, straight
  line otherwise (a zero or negative end point).

Dose times, right continuity and troughs
----------------------------------------
The engine's outputs are right-continuous: the value stored at a bolus time is
the value just *after* the bolus. A read-out that must know the value just
*before* a dose (a trough, the last piece of AUC in a dosing interval, a
window that ends at a dose) is made dose-aware by passing ``dose_times``:

* every dose time that falls inside the grid must be one of the grid times
  (the engine puts dose times on its output grid); doses before the first or
  after the last output time are ignored;
* the pre-dose value (left limit) at a dose time is taken from
  ``conc_before`` when it is given, shape ``(n_subjects, n_doses)`` or
  ``(n_subjects, n_doses, n_compartments)``, aligned with ``dose_times``
  (the engine can report it); otherwise it is **the value at the last grid
  point strictly before the dose** (held constant up to the dose). That
  fallback is what a sampled pre-dose trough is; it slightly underestimates
  the last segment's AUC on a falling curve, by at most one grid step times
  the change over that step. Pass ``conc_before`` for exact results;
* on a window ``[start, end]`` the curve takes its right limit at ``start``
  and its left limit at ``end``; a dose strictly inside the window contributes
  both its pre-dose and its post-dose value.

Without ``dose_times`` the grid values are taken as samples of a continuous
curve. Per-interval functions (``*_per_interval``, :func:`trough`,
:func:`summarize` with doses) split the grid at the dose times into intervals
``[dose_k, dose_{k+1}]``, the last one ending at ``end`` (default: the last
output time), and are always dose-aware.

**Trough** of interval *k* is the left limit at its end: the pre-dose value at
the next dose, and for the last interval the value at ``end`` (C at the end of
the simulated interval, e.g. C(tau) when ``end`` is the last dose plus tau).
``cmin`` is different: the minimum of the curve over the window.

Window edges within 1e-9 x max|times| of an output time are taken to be that
output time (so ``end=0.1 * 3`` is the output time 0.3).

Units
-----
Times in h, concentrations in mg/L, AUC in mg*h/L. Thresholds and window
edges may also be given as text with a unit (``"1 umol/L"`` with ``mw=``,
``"2 d"``), parsed by :func:`pkcsf.core.units.parse_quantity`. :func:`summarize`
can report concentrations in another unit (``unit="umol/L", mw=454.44``).
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from pkcsf.analysis.methods import check_method
from pkcsf.core.errors import PkcsfError, check_finite, suggest
from pkcsf.core.units import concentration_factor, parse_quantity

__all__ = [
    "METHODS",
    "MetricsError",
    "interpolate",
    "cmax",
    "tmax",
    "cmin",
    "trough",
    "auc",
    "auc_cumulative",
    "auc_per_interval",
    "time_above",
    "time_above_per_interval",
    "longest_time_above",
    "longest_time_above_per_interval",
    "per_interval",
    "ratio",
    "auc_ratio",
    "conc_ratio",
    "percentiles",
    "fraction_reaching",
    "summarize",
]

#: Interpolation / integration methods, see the module docstring.
METHODS = ("linear", "linear-up/log-down", "log")


class MetricsError(PkcsfError):
    """Invalid input to an exposure read-out (shape, grid, window, threshold)."""


# ----------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------

def _check_method(method) -> str:
    return check_method("method", method, METHODS, MetricsError)


def _check_times(times) -> np.ndarray:
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or t.size < 2:
        raise MetricsError("times", f"array of shape {t.shape}",
                           "must be a 1-D array of at least 2 output times in h")
    bad = ~np.isfinite(t)
    if bad.any():
        i = int(np.argmax(bad))
        raise MetricsError(f"times[{i}]", float(t[i]), "must be finite")
    d = np.diff(t)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0)) + 1
        raise MetricsError(f"times[{i}]", float(t[i]),
                           f"times must be increasing, but times[{i - 1}] = {float(t[i - 1])!r}",
                           "sort the output grid; a time may appear twice only as a dose time (pre- and "
                           "post-dose values, as the engine lists them)")
    return t


def _check_finite_array(field: str, arr: np.ndarray, fix: str | None = None) -> None:
    # One summing pass instead of a boolean copy of a possibly huge array;
    # only when the sum is not finite do we look for the culprit.
    with np.errstate(over="ignore", invalid="ignore"):
        total = arr.sum()
    if np.isfinite(total):
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise MetricsError(f"{field}[{', '.join(map(str, idx))}]", float(arr[idx]),
                           "must be finite (no NaN or inf)", fix)


def _check_conc(conc, n_times: int, field: str = "conc") -> np.ndarray:
    c = np.asarray(conc)
    if c.dtype.kind not in "f":
        c = c.astype(float)
    if c.ndim not in (2, 3):
        raise MetricsError(field, f"array of shape {c.shape}",
                           "must have shape (n_subjects, n_times) or (n_subjects, n_times, n_compartments)")
    if c.shape[1] != n_times:
        raise MetricsError(f"{field}.shape[1]", c.shape[1],
                           f"must equal len(times) = {n_times} (axis 1 is time)")
    if c.shape[0] == 0:
        raise MetricsError(f"{field}.shape[0]", 0, "must hold at least one subject")
    _check_finite_array(field, c, "check the solver status of this subject; drop failed subjects first")
    return c


def _as_time(field: str, value) -> float:
    if isinstance(value, str):
        return parse_quantity(value, "time", field=field)
    return check_finite(field, value, MetricsError)


def _as_threshold(threshold, mw) -> float:
    if isinstance(threshold, str):
        thr = parse_quantity(threshold, "concentration", field="threshold", mw=mw)
    else:
        thr = check_finite("threshold", threshold, MetricsError)
    if thr < 0:
        raise MetricsError("threshold", threshold, "must be >= 0 (a concentration, mg/L)")
    return thr


def _bshape(v: np.ndarray, ndim: int) -> np.ndarray:
    """Reshape a per-segment vector (m,) to broadcast along axis 1 of an ndim array."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


# ----------------------------------------------------------------------------
# the curve and its windows
# ----------------------------------------------------------------------------

class _Window:
    """The curve on ``[s, e]`` as segments: times t0, t1 (m,), end values a, b (N, m, ...).

    ``logmask`` (or None) marks exponential segments. It is decided on the
    whole grid segment, before a window edge cuts it, so a cut segment keeps
    its parent's interpolant (a linear fall to 0 stays linear when cut).
    """

    __slots__ = ("t0", "t1", "a", "b", "method", "logmask")

    def __init__(self, t0, t1, a, b, method, logmask):
        self.t0, self.t1, self.a, self.b, self.method, self.logmask = t0, t1, a, b, method, logmask

    def rows(self, sl):
        mask = None if self.logmask is None else self.logmask[sl]
        return _Window(self.t0, self.t1, self.a[sl], self.b[sl], self.method, mask)


def _engine_grid(times, conc, dose_times, conc_before):
    """Accept the engine's own grids: a time listed twice is a dose, its first value the pre-dose value.

    The scenario runner (and ``pk.simulate`` with dose times in ``times``) lists each dose time twice,
    the value before and the value after the dose. Here the pair becomes one grid point (the post-dose
    value) plus a dose at that time whose ``conc_before`` is the first value. A time listed three
    times, or a grid that goes back in time, is still refused by :func:`_check_times`.
    """
    t = np.asarray(times, dtype=float)
    if t.ndim != 1 or t.size < 3:
        return times, conc, dose_times, conc_before
    second = np.flatnonzero(np.diff(t) == 0) + 1          # the post-dose copy of each repeated time
    if second.size == 0 or (np.diff(second) == 1).any():
        return times, conc, dose_times, conc_before
    c = _check_conc(conc, t.size)
    first = second - 1
    pre = c[:, first]
    keep = np.ones(t.size, dtype=bool)
    keep[first] = False
    t2, c2, dup = t[keep], c[:, keep], t[second]
    if dose_times is None:
        if conc_before is not None:
            raise MetricsError("conc_before", "an array", "needs dose_times (the times it refers to)")
        return t2, c2, dup, pre
    if conc_before is not None:                          # the caller's own pre-dose values win
        return t2, c2, dose_times, conc_before
    d = np.union1d(np.atleast_1d(np.asarray(dose_times, dtype=float)), dup)
    g = np.clip(np.searchsorted(t2, d) - 1, 0, t2.size - 1)
    cb = c2[:, g].copy()                                 # the value at the last grid point before the dose
    on_dup = np.searchsorted(dup, d)
    hit = (on_dup < dup.size) & (dup[np.minimum(on_dup, dup.size - 1)] == d)
    cb[:, hit] = pre[:, on_dup[hit]]
    return t2, c2, d, cb


class _Curve:
    """Validated inputs: grid, concentrations, method and the dose discontinuities."""

    def __init__(self, times, conc, method="linear", dose_times=None, conc_before=None):
        times, conc, dose_times, conc_before = _engine_grid(times, conc, dose_times, conc_before)
        self.times = _check_times(times)
        self.conc = _check_conc(conc, self.times.size)
        self.method = _check_method(method)
        self.tol = 1e-9 * max(1.0, float(np.abs(self.times).max()))
        self.dose_grid = np.zeros(0, dtype=np.intp)   # grid indices >= 1 of doses (jumps)
        self.pre = None                                 # (N, n_jumps, ...) pre-dose values
        self.dose_on_grid = np.zeros(0)                 # dose times in [t0, t_end), for intervals
        if dose_times is not None:
            self._set_doses(dose_times, conc_before)
        elif conc_before is not None:
            raise MetricsError("conc_before", "an array", "needs dose_times (the times it refers to)")

    # -- doses ---------------------------------------------------------------
    def _set_doses(self, dose_times, conc_before):
        d = np.atleast_1d(np.asarray(dose_times, dtype=float))
        if d.ndim != 1:
            raise MetricsError("dose_times", f"array of shape {d.shape}", "must be a 1-D array of times in h")
        bad = ~np.isfinite(d)
        if bad.any():
            i = int(np.argmax(bad))
            raise MetricsError(f"dose_times[{i}]", float(d[i]), "must be finite")
        if (np.diff(d) < 0).any():
            i = int(np.argmax(np.diff(d) < 0)) + 1
            raise MetricsError(f"dose_times[{i}]", float(d[i]), "dose times must be sorted (non-decreasing)")
        t = self.times
        inside = (d >= t[0] - self.tol) & (d <= t[-1] + self.tol)
        g = np.clip(np.searchsorted(t, d), 0, t.size - 1)
        g_prev = np.clip(g - 1, 0, t.size - 1)
        g = np.where(np.abs(t[g_prev] - d) < np.abs(t[g] - d), g_prev, g)
        off = inside & (np.abs(t[g] - d) > self.tol)
        if off.any():
            k = int(np.argmax(off))
            raise MetricsError(f"dose_times[{k}]", float(d[k]),
                               "a dose time inside the output grid must be one of the output times "
                               "(the value stored there is the post-dose value)",
                               "include the dose times in the simulation's output times")
        if conc_before is not None:
            cb = np.asarray(conc_before)
            if cb.dtype.kind != "f":
                cb = cb.astype(float)
            want = (self.conc.shape[0], d.size) + self.conc.shape[2:]
            if cb.shape != want:
                raise MetricsError("conc_before", f"array of shape {cb.shape}",
                                   f"must have shape {want} (subjects, dose_times, compartments...)")
            _check_finite_array("conc_before", cb)
        # jumps: doses on a grid point after the first one; duplicates keep the first dose
        jump = inside & (g >= 1)
        idx_k = np.flatnonzero(jump)
        gj, first = np.unique(g[idx_k], return_index=True)
        idx_k = idx_k[first]
        self.dose_grid = gj.astype(np.intp)
        if conc_before is not None:
            self.pre = cb[:, idx_k]
        else:
            self.pre = self.conc[:, gj - 1]
        self.dose_on_grid = np.unique(t[g[inside & (g < t.size - 1)]])

    def _pre_at(self, gi: int):
        """Pre-dose values at grid index gi, or None if no dose there."""
        if self.dose_grid.size == 0:
            return None
        k = int(np.searchsorted(self.dose_grid, gi))
        if k < self.dose_grid.size and self.dose_grid[k] == gi:
            return self.pre[:, k]
        return None

    # -- windows -------------------------------------------------------------
    def bounds(self, start, end) -> tuple[float, float]:
        t = self.times
        s = t[0] if start is None else _as_time("start", start)
        e = t[-1] if end is None else _as_time("end", end)
        rule = f"must lie within the output grid [{t[0]:g}, {t[-1]:g}] h"
        if s < t[0] - self.tol or s > t[-1] + self.tol:
            raise MetricsError("start", start, rule)
        if e < t[0] - self.tol or e > t[-1] + self.tol:
            raise MetricsError("end", end, rule)
        s, e = self._snap(s), self._snap(e)
        if e < s:
            raise MetricsError("end", end, f"must be >= start ({s:g} h)")
        return s, e

    def _snap(self, x: float) -> float:
        """X clipped to the grid and, within tol of an output time, set to that time.

        (So ``end=0.1 * 3`` means the output time 0.3, and a window ending
        there on a dose takes the pre-dose value.)
        """
        t = self.times
        x = min(max(x, t[0]), t[-1])
        j = int(np.searchsorted(t, x))
        for g in (j - 1, j):
            if 0 <= g < t.size and abs(t[g] - x) <= self.tol:
                return float(t[g])
        return x

    def _interp(self, t0, t1, a, b, x):
        """Value at x of the segment interpolant with end values a, b (N, ...)."""
        f = (x - t0) / (t1 - t0)
        out = a + (b - a) * f
        mask = _logmask(a, b, self.method)
        if mask is not None and mask.any():
            la, lb = np.log(a[mask]), np.log(b[mask])     # logs, not their ratio: no overflow
            out[mask] = np.exp(la + f * (lb - la))
        return out

    def value_at(self, x: float, side: str = "right") -> np.ndarray:
        """Concentration at time x (N, ...); side='left' gives the pre-dose value at a dose."""
        t, c = self.times, self.conc
        j = int(np.searchsorted(t, x, side="right")) - 1
        j = min(max(j, 0), t.size - 1)
        if abs(t[j] - x) <= self.tol:
            if side == "left":
                pre = self._pre_at(j)
                if pre is not None:
                    return pre.copy()
            return c[:, j].copy()
        if j + 1 < t.size and abs(t[j + 1] - x) <= self.tol:   # x just below a grid point
            return self.value_at(float(t[j + 1]), side)
        b = self._pre_at(j + 1)
        b = c[:, j + 1] if b is None else b
        return self._interp(t[j], t[j + 1], c[:, j], b, x)

    def window(self, s: float, e: float) -> _Window:
        t, c = self.times, self.conc
        if e <= s:
            v = self.value_at(s, "right")[:, None]
            return _Window(np.array([s]), np.array([s]), v, v, self.method, None)
        T = t.size
        js = min(max(int(np.searchsorted(t, s + self.tol, side="right")) - 1, 0), T - 2)
        je = min(max(int(np.searchsorted(t, e - self.tol, side="left")) - 1, js), T - 2)
        t0 = t[js:je + 1].copy()
        t1 = t[js + 1:je + 2].copy()
        a = c[:, js:je + 1]
        b = c[:, js + 1:je + 2]
        lo, hi = np.searchsorted(self.dose_grid, [js + 1, je + 2])
        left = s > t0[0] + self.tol
        right = e < t1[-1] - self.tol
        if hi > lo or right:
            b = b.copy()
            for k in range(lo, hi):
                b[:, self.dose_grid[k] - 1 - js] = self.pre[:, k]
        logmask = _logmask(a, b, self.method)
        va = self._interp(t0[0], t1[0], a[:, 0], b[:, 0], s) if left else None
        vb = self._interp(t0[-1], t1[-1], a[:, -1], b[:, -1], e) if right else None
        if left:
            a = a.copy()
            a[:, 0] = va
        if right:
            b[:, -1] = vb
        # edges within tol of a grid point use its value, but keep reported times inside [s, e]
        t0[0] = s
        t1[-1] = e
        return _Window(t0, t1, a, b, self.method, logmask)

    def intervals(self, end) -> list[tuple[float, float]]:
        t = self.times
        e = t[-1] if end is None else self._snap(_as_time("end", end))
        starts = self.dose_on_grid
        if starts.size == 0:
            raise MetricsError("dose_times", "no dose before the last output time",
                               f"at least one dose time must lie in [{t[0]:g}, {t[-1]:g}) h")
        if e > t[-1] + self.tol:
            raise MetricsError("end", end, f"must be <= the last output time ({t[-1]:g} h)")
        starts = starts[starts < e - self.tol]
        if starts.size == 0:
            raise MetricsError("end", end, f"must be after the first dose ({self.dose_on_grid[0]:g} h)")
        ends = np.append(starts[1:], min(e, t[-1]))
        return list(zip(starts.tolist(), ends.tolist()))


def _logmask(a, b, method):
    """Where the segment interpolant is exponential, or None if nowhere."""
    if method == "linear":
        return None
    if method == "linear-up/log-down":
        return (a > b) & (b > 0)
    return (a > 0) & (b > 0) & (a != b)


# ----------------------------------------------------------------------------
# kernels on a window
# ----------------------------------------------------------------------------

def _k_cmax(w: _Window):
    return np.maximum(w.a.max(axis=1), w.b.max(axis=1))


def _k_cmin(w: _Window):
    return np.minimum(w.a.min(axis=1), w.b.min(axis=1))


def _k_tmax(w: _Window):
    m = np.expand_dims(_k_cmax(w), 1)
    hit_a, hit_b = w.a == m, w.b == m
    ta = np.where(hit_a.any(axis=1), w.t0[hit_a.argmax(axis=1)], np.inf)
    tb = np.where(hit_b.any(axis=1), w.t1[hit_b.argmax(axis=1)], np.inf)
    return np.minimum(ta, tb)


def _seg_area(w: _Window):
    a, b = w.a, w.b
    dt = _bshape(w.t1 - w.t0, a.ndim)
    area = np.add(a, b, dtype=float)
    area *= 0.5 * dt
    mask = w.logmask
    if mask is not None and mask.any():
        aa, bb = a[mask], b[mask]
        lr = np.log(aa) - np.log(bb)
        flat = lr == 0                     # a cut so short that both ends are equal
        lr[flat] = 1.0
        dd = np.broadcast_to(dt, a.shape)[mask]
        area[mask] = np.where(flat, dd * aa, dd * (aa - bb) / lr)
    return area


def _k_auc(w: _Window):
    return _seg_area(w).sum(axis=1)


def _seg_above(w: _Window, thr: float):
    """Time (h) at or above thr in each segment, (N, m, ...)."""
    a, b = w.a, w.b
    dt = np.broadcast_to(_bshape(w.t1 - w.t0, a.ndim), a.shape)
    ua = a >= thr
    ub = b >= thr
    out = np.where(ua & ub, dt, 0.0)
    cross = ua ^ ub
    if cross.any():
        aa, bb, dd, up = a[cross], b[cross], dt[cross], ub[cross]
        f = (aa - thr) / (aa - bb)                    # crossing, as a fraction of the segment
        mask = None if w.logmask is None else w.logmask[cross]
        if mask is not None and thr > 0 and mask.any():
            am, bm = aa[mask], bb[mask]
            la = np.log(am)
            f[mask] = (la - math.log(thr)) / (la - np.log(bm))
        out[cross] = np.where(up, (1.0 - f) * dd, f * dd)
    return out


def _k_time_above(w: _Window, thr: float):
    return _seg_above(w, thr).sum(axis=1)


def _k_longest(w: _Window, thr: float):
    # Each segment's interpolant is monotone, so its part at/above thr is one
    # piece touching at least one end. Runs join across a grid point when the
    # left segment ends at/above thr and the right one starts at/above thr
    # (after a dose the two values differ). A run's length is the sum of its
    # segments' pieces: cumulative sums reset at the breaks.
    s = _seg_above(w, thr)
    np.cumsum(s, axis=1, out=s)
    if s.shape[1] == 1:
        return s[:, 0]
    broken = (w.b[:, :-1] < thr) | (w.a[:, 1:] < thr)
    base = np.where(broken, s[:, :-1], 0.0)
    np.maximum.accumulate(base, axis=1, out=base)
    s[:, 1:] -= base
    return s.max(axis=1)


#: Kernels run on blocks of subjects whose window slice is at most this many
#: bytes, so their temporaries stay bounded whatever the number of subjects.
_BLOCK_BYTES = 1 << 25


def _blocks(w: _Window):
    n = w.a.shape[0]
    rows = max(1, _BLOCK_BYTES // max(1, w.a[0].size * 8))
    for i in range(0, n, rows):
        sl = slice(i, min(i + rows, n))
        yield sl, w.rows(sl)


def _apply(kernel, w: _Window, *args):
    """kernel(w, *args) computed block by block over subjects (vectorised within a block)."""
    parts = [kernel(part, *args) for _, part in _blocks(w)]
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


# ----------------------------------------------------------------------------
# public read-outs
# ----------------------------------------------------------------------------

def interpolate(times, conc, at, *, method="linear", side="right", dose_times=None, conc_before=None):
    """Concentrations at arbitrary times, with the read-outs' interpolant.

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h, strictly increasing.
    conc : array_like, shape (n_subjects, n_times[, n_compartments])
        Concentrations, mg/L.
    at : float, str or array_like, shape (n_at,)
        Query times in h (inside the grid).
    method : str
        One of :data:`METHODS`.
    side : {"right", "left"}
        At a dose time (with ``dose_times``): "right" gives the stored
        post-dose value, "left" the pre-dose value.
    dose_times, conc_before
        See the module docstring.

    Returns
    -------
    ndarray, shape (n_subjects[, n_compartments]) for a scalar ``at``, else
    (n_subjects, n_at[, n_compartments]); mg/L.
    """
    if side not in ("right", "left"):
        raise MetricsError("side", side, "allowed: right, left")
    cur = _Curve(times, conc, method, dose_times, conc_before)
    scalar = isinstance(at, str) or np.ndim(at) == 0
    ats = [at] if scalar else list(np.asarray(at, dtype=float).ravel())
    t, out = cur.times, []
    for i, x in enumerate(ats):
        field = "at" if scalar else f"at[{i}]"
        x = _as_time(field, x)
        if x < t[0] - cur.tol or x > t[-1] + cur.tol:
            raise MetricsError(field, x, f"must lie within the output grid [{t[0]:g}, {t[-1]:g}] h")
        out.append(cur.value_at(cur._snap(x), side))
    return out[0] if scalar else np.stack(out, axis=1)


def _run(kernel, times, conc, start, end, method, dose_times, conc_before, thr=None):
    cur = _Curve(times, conc, method, dose_times, conc_before)
    w = cur.window(*cur.bounds(start, end))
    return _apply(kernel, w) if thr is None else _apply(kernel, w, thr)


def cmax(times, conc, start=None, end=None, *, method="linear", dose_times=None, conc_before=None):
    """Highest concentration on the window ``[start, end]``.

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h, strictly increasing.
    conc : array_like, shape (n_subjects, n_times) or (n_subjects, n_times, n_compartments)
        Concentrations, mg/L, finite.
    start, end : float or str, optional
        Window in h (default: the whole grid); may fall between grid points,
        where the value is interpolated with ``method``.
    method : str
        Interpolant between grid points, one of :data:`METHODS`.
    dose_times : array_like, shape (n_doses,), optional
        Dose times (h); makes the read-out dose-aware (module docstring).
    conc_before : array_like, shape (n_subjects, n_doses[, n_compartments]), optional
        Pre-dose concentrations at ``dose_times``, mg/L.

    Returns
    -------
    ndarray, shape (n_subjects,) or (n_subjects, n_compartments)
        mg/L.
    """
    return _run(_k_cmax, times, conc, start, end, method, dose_times, conc_before)


def tmax(times, conc, start=None, end=None, *, method="linear", dose_times=None, conc_before=None):
    """Time (h) of the first occurrence of :func:`cmax` on the window.

    Same parameters as :func:`cmax`; returns shape (n_subjects[, n_compartments]), h.
    """
    return _run(_k_tmax, times, conc, start, end, method, dose_times, conc_before)


def cmin(times, conc, start=None, end=None, *, method="linear", dose_times=None, conc_before=None):
    """Lowest concentration on the window ``[start, end]`` (mg/L).

    With ``dose_times`` the pre-dose values at doses inside the window and at
    its end count. Same parameters and shapes as :func:`cmax`. For the
    pre-dose concentration of each dosing interval use :func:`trough`.
    """
    return _run(_k_cmin, times, conc, start, end, method, dose_times, conc_before)


def auc(times, conc, start=None, end=None, method="linear", *, dose_times=None, conc_before=None):
    """Area under the concentration curve on ``[start, end]`` (mg*h/L).

    The exact integral of the interpolant named by ``method`` ("linear"
    trapezoids, or "linear-up/log-down": log trapezoids on falling segments),
    so a window edge between grid points is interpolated consistently and
    ``auc(a, b) + auc(b, c) == auc(a, c)``.

    Parameters
    ----------
    times, conc, start, end, dose_times, conc_before
        As in :func:`cmax`.
    method : str
        One of :data:`METHODS`.

    Returns
    -------
    ndarray, shape (n_subjects,) or (n_subjects, n_compartments)
        mg*h/L.
    """
    return _run(_k_auc, times, conc, start, end, method, dose_times, conc_before)


def auc_cumulative(times, conc, method="linear", *, dose_times=None, conc_before=None):
    """AUC from ``times[0]`` to each grid time (mg*h/L).

    Returns
    -------
    ndarray, shape (n_subjects, n_times[, n_compartments])
        Column 0 is 0. With ``dose_times`` the segment ending at a dose uses
        the pre-dose value (module docstring).
    """
    cur = _Curve(times, conc, method, dose_times, conc_before)
    w = cur.window(cur.times[0], cur.times[-1])
    out = np.zeros(cur.conc.shape, dtype=float)
    for rows, part in _blocks(w):
        np.cumsum(_seg_area(part), axis=1, out=out[rows, 1:])
    return out


def time_above(times, conc, threshold, start=None, end=None, *, method="linear", mw=None,
               dose_times=None, conc_before=None):
    """Time (h) on ``[start, end]`` during which the concentration is at or above ``threshold``.

    Crossings between grid points are solved on the interpolant: linearly,
    or on the exponential through the two points with ``method="log"`` /
    ``"linear-up/log-down"`` (closer to the truth when concentrations decay
    exponentially between samples).

    Parameters
    ----------
    threshold : float or str
        mg/L, or text with a unit such as ``"1 umol/L"`` (molar units need
        ``mw``). Must be >= 0.
    mw : float, optional
        Molecular weight, g/mol, for molar thresholds.
    times, conc, start, end, method, dose_times, conc_before
        As in :func:`cmax`.

    Returns
    -------
    ndarray, shape (n_subjects[, n_compartments])
        h, between 0 and ``end - start``.
    """
    return _run(_k_time_above, times, conc, start, end, method, dose_times, conc_before,
                _as_threshold(threshold, mw))


def longest_time_above(times, conc, threshold, start=None, end=None, *, method="linear", mw=None,
                       dose_times=None, conc_before=None):
    """Longest continuous run (h) at or above ``threshold`` on ``[start, end]``.

    A target such as "at least 1 umol/L for at least 48 h after each dose"
    is ``longest_time_above_per_interval(...) >= 48``. Runs continue across a
    dose when both the pre-dose and the post-dose values are at or above the
    threshold. Parameters and shapes as in :func:`time_above`.
    """
    return _run(_k_longest, times, conc, start, end, method, dose_times, conc_before,
                _as_threshold(threshold, mw))


_KERNELS: dict[Callable, tuple[Callable, bool]] = {
    cmax: (_k_cmax, False),
    tmax: (_k_tmax, False),
    cmin: (_k_cmin, False),
    auc: (_k_auc, False),
    time_above: (_k_time_above, True),
    longest_time_above: (_k_longest, True),
}


def per_interval(metric, times, conc, dose_times, end=None, *, threshold=None, method="linear", mw=None,
                 conc_before=None):
    """Apply a window read-out to every dosing interval.

    Intervals are ``[dose_k, dose_{k+1}]`` for the dose times inside the grid,
    the last ending at ``end`` (default: the last output time). The curve is
    dose-aware: each interval ends on the pre-dose value of the next dose.

    Parameters
    ----------
    metric : callable or str
        One of :func:`cmax`, :func:`tmax`, :func:`cmin`, :func:`auc`,
        :func:`time_above`, :func:`longest_time_above` (or its name).
    times, conc, method, conc_before
        As in :func:`cmax`.
    dose_times : array_like, shape (n_doses,)
        Dose times, h.
    end : float or str, optional
        End of the last interval, h.
    threshold, mw
        For the threshold read-outs.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
    """
    if isinstance(metric, str):
        names = {f.__name__: f for f in _KERNELS}
        if metric not in names:
            guess = suggest(metric, names)
            raise MetricsError("metric", metric, "allowed: " + ", ".join(names),
                               f"did you mean {guess!r}?" if guess else None)
        metric = names[metric]
    if metric not in _KERNELS:
        raise MetricsError("metric", getattr(metric, "__name__", metric),
                           "allowed: " + ", ".join(f.__name__ for f in _KERNELS))
    kernel, needs_thr = _KERNELS[metric]
    if dose_times is None:
        raise MetricsError("dose_times", None, "per-interval read-outs need the dose times")
    if needs_thr:
        if threshold is None:
            raise MetricsError("threshold", None, f"{metric.__name__} needs a threshold (mg/L)")
        thr = _as_threshold(threshold, mw)
    cur = _Curve(times, conc, method, dose_times, conc_before)
    out = [_apply(kernel, cur.window(s, e), thr) if needs_thr else _apply(kernel, cur.window(s, e))
           for s, e in cur.intervals(end)]
    return np.stack(out, axis=1)


def auc_per_interval(times, conc, dose_times, end=None, method="linear", *, conc_before=None):
    """AUC (mg*h/L) of each dosing interval, shape (n_subjects, n_intervals[, n_compartments]).

    See :func:`per_interval` for the intervals and :func:`auc` for the method.
    """
    return per_interval(auc, times, conc, dose_times, end, method=method, conc_before=conc_before)


def time_above_per_interval(times, conc, threshold, dose_times, end=None, *, method="linear", mw=None,
                            conc_before=None):
    """Time (h) at or above ``threshold`` in each dosing interval.

    Shape (n_subjects, n_intervals[, n_compartments]); see :func:`time_above`.
    """
    return per_interval(time_above, times, conc, dose_times, end, threshold=threshold, method=method, mw=mw,
                        conc_before=conc_before)


def longest_time_above_per_interval(times, conc, threshold, dose_times, end=None, *, method="linear",
                                    mw=None, conc_before=None):
    """Longest continuous run (h) at or above ``threshold`` in each dosing interval.

    Shape (n_subjects, n_intervals[, n_compartments]); see :func:`longest_time_above`.
    """
    return per_interval(longest_time_above, times, conc, dose_times, end, threshold=threshold,
                        method=method, mw=mw, conc_before=conc_before)


def trough(times, conc, dose_times, end=None, *, conc_before=None, method="linear"):
    """Trough of each dosing interval: the concentration just before the next dose (mg/L).

    For interval *k* = ``[dose_k, dose_{k+1}]`` this is the left limit at
    ``dose_{k+1}``: ``conc_before[:, k+1]`` when given, else the value at the
    last grid point strictly before ``dose_{k+1}``. The last interval's trough
    is the value at ``end`` (default: the last output time).

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h.
    conc : array_like, shape (n_subjects, n_times[, n_compartments])
        mg/L.
    dose_times : array_like, shape (n_doses,)
        h; those inside the grid must be grid times.
    end : float or str, optional
        End of the last interval, h.
    conc_before : array_like, shape (n_subjects, n_doses[, n_compartments]), optional
        Pre-dose (left-limit) concentrations at ``dose_times``, mg/L.
    method : str
        Interpolant, used only if ``end`` falls between grid points.

    Returns
    -------
    ndarray, shape (n_subjects, n_intervals[, n_compartments])
        mg/L.
    """
    if dose_times is None:
        raise MetricsError("dose_times", None, "troughs need the dose times")
    cur = _Curve(times, conc, method, dose_times, conc_before)
    return np.stack([cur.value_at(e, "left") for _, e in cur.intervals(end)], axis=1)


# ----------------------------------------------------------------------------
# ratios and population summaries
# ----------------------------------------------------------------------------

def ratio(numerator, denominator):
    """Element-wise ``numerator / denominator``, NaN where the denominator is 0.

    For CSF/plasma or lumbar/ventricular ratios of any read-out (AUC, Cmax,
    concentrations at given times). Shapes broadcast.
    """
    num = np.asarray(numerator, dtype=float)
    den = np.asarray(denominator, dtype=float)
    try:
        shape = np.broadcast_shapes(num.shape, den.shape)
    except ValueError:
        raise MetricsError("denominator", f"array of shape {den.shape}",
                           f"must broadcast with the numerator's shape {num.shape}") from None
    out = np.full(shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _pair(conc_num, conc_den):
    a, b = np.asarray(conc_num), np.asarray(conc_den)
    if a.shape != b.shape:
        raise MetricsError("conc_den", f"array of shape {b.shape}",
                           f"must have the same shape as conc_num {a.shape}")
    return a, b


def auc_ratio(times, conc_num, conc_den, start=None, end=None, method="linear", *, dose_times=None,
              conc_before=None):
    """Ratio of AUCs over ``[start, end]``, e.g. CSF/plasma or lumbar/ventricular.

    Parameters
    ----------
    conc_num, conc_den : array_like, shape (n_subjects, n_times[, ...])
        Numerator and denominator concentrations (mg/L), e.g. ``conc[..., csf]``
        and ``conc[..., plasma]``.
    conc_before : tuple of two arrays, optional
        Pre-dose values for numerator and denominator (with ``dose_times``).
    times, start, end, method, dose_times
        As in :func:`auc`.

    Returns
    -------
    ndarray, shape (n_subjects[, ...])
        Dimensionless; NaN where the denominator AUC is 0.
    """
    a, b = _pair(conc_num, conc_den)
    cb_a, cb_b = (None, None) if conc_before is None else conc_before
    return ratio(auc(times, a, start, end, method, dose_times=dose_times, conc_before=cb_a),
                 auc(times, b, start, end, method, dose_times=dose_times, conc_before=cb_b))


def conc_ratio(times, conc_num, conc_den, at, *, method="linear", side="right", dose_times=None,
               conc_before=None):
    """Ratio of concentrations at the times ``at`` (e.g. CSF/plasma at 2, 6, 24 h).

    Returns
    -------
    ndarray, shape (n_subjects[, ...]) for a scalar ``at``, else (n_subjects, n_at[, ...])
        Dimensionless; NaN where the denominator is 0.
    """
    a, b = _pair(conc_num, conc_den)
    cb_a, cb_b = (None, None) if conc_before is None else conc_before
    kw = dict(method=method, side=side, dose_times=dose_times)
    return ratio(interpolate(times, a, at, conc_before=cb_a, **kw),
                 interpolate(times, b, at, conc_before=cb_b, **kw))


def percentiles(values, q: Sequence[float] = (5, 50, 95), *, axis: int = 0, ignore_nan: bool = True):
    """Percentiles across subjects.

    Parameters
    ----------
    values : array_like
        Read-outs with subjects along ``axis`` (e.g. shape (n_subjects, n_compartments)).
    q : sequence of float
        Percentiles in [0, 100].
    ignore_nan : bool
        Skip NaN (e.g. failed subjects, undefined ratios); else NaN propagates.

    Returns
    -------
    ndarray, shape (len(q),) + values.shape without ``axis``
    """
    qs = np.atleast_1d(np.asarray(q, dtype=float))
    bad = ~np.isfinite(qs) | (qs < 0) | (qs > 100)
    if bad.any():
        raise MetricsError("q", q, "percentiles must lie in [0, 100]")
    v = np.asarray(values, dtype=float)
    fn = np.nanpercentile if ignore_nan else np.percentile
    return fn(v, qs, axis=axis)


def fraction_reaching(condition, *, axis: int = 0):
    """Fraction of subjects for which ``condition`` holds (e.g. ``cmax >= target``).

    Parameters
    ----------
    condition : array_like of bool
        Subjects along ``axis``.

    Returns
    -------
    float or ndarray
        Fraction in [0, 1], shape of ``condition`` without ``axis``.
    """
    c = np.asarray(condition)
    if c.dtype != bool:
        if c.dtype.kind == "f" and np.isnan(c).any():
            raise MetricsError("condition", "array with NaN", "must be boolean (compare read-outs to a target first)")
        if not np.isin(c, (0, 1)).all():
            raise MetricsError("condition", f"array of dtype {c.dtype}", "must be boolean (or 0/1)")
        c = c.astype(bool)
    if c.size == 0:
        raise MetricsError("condition", "empty array", "needs at least one subject")
    return c.mean(axis=axis)


# ----------------------------------------------------------------------------
# summarize
# ----------------------------------------------------------------------------

def _auc_unit(unit: str) -> str:
    if unit in ("mg/L", "mg/l"):
        return "mg*h/L"
    if unit.endswith("/L") or unit.endswith("/l"):
        return unit[:-2] + "*h/L"
    return unit + "*h"


def summarize(times, conc, dose_times=None, threshold=None, *, compartments=None, subjects=None, start=None,
              end=None, method="linear", conc_before=None, unit="mg/L", mw=None) -> pd.DataFrame:
    """Tidy table of exposure read-outs: one row per subject x compartment (x dosing interval).

    Parameters
    ----------
    times : array_like, shape (n_times,)
        Output grid, h.
    conc : array_like, shape (n_subjects, n_times[, n_compartments])
        mg/L.
    dose_times : array_like, shape (n_doses,), optional
        If given, one row per dosing interval (see :func:`per_interval`) and a
        ``trough`` column; ``start`` must then be None.
    threshold : float or str, optional
        If given, ``time_above`` and ``longest_time_above`` columns (h).
        mg/L or text with a unit (``"1 umol/L"`` with ``mw``).
    compartments : sequence of str, optional
        Compartment names (length n_compartments; one name for 2-D ``conc``).
        Default "0", "1", ...
    subjects : array_like, shape (n_subjects,), optional
        Subject ids (default 0..n_subjects-1; pass the ids of the chunk when
        summarising a large population chunk by chunk).
    start, end : float or str, optional
        Window (h) without doses; ``end`` is the end of the last interval with doses.
    method : str
        Interpolant, one of :data:`METHODS` (also used for AUC).
    conc_before : array_like, optional
        Pre-dose concentrations at ``dose_times`` (module docstring).
    unit : str
        Concentration unit of the output (default mg/L); AUC is reported in
        that unit times h.
    mw : float, optional
        Molecular weight (g/mol) for molar units.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject, compartment, [interval, start, end,] cmax, tmax,
        cmin, auc, [trough,] [threshold, time_above, longest_time_above,]
        conc_unit, auc_unit, time_unit, method``. Times in h.

    Notes
    -----
    Memory: the input is not copied; a window makes at most two copies of its
    slice (only where it must patch pre-dose or interpolated edge values), and
    the read-outs run on blocks of subjects of about 32 MiB, so the peak is
    about the size of the input plus a few hundred MiB at most.
    """
    cur = _Curve(times, conc, method, dose_times, conc_before)
    c = cur.conc
    n = c.shape[0]
    n_cmt = 1 if c.ndim == 2 else c.shape[2]
    if compartments is None:
        names = [str(i) for i in range(n_cmt)]
    else:
        names = [compartments] if isinstance(compartments, str) else [str(x) for x in compartments]
        if len(names) != n_cmt:
            raise MetricsError("compartments", compartments,
                               f"must name {n_cmt} compartment(s), one per slice of conc's last axis")
    if subjects is None:
        ids = np.arange(n)
    else:
        ids = np.asarray(subjects)
        if ids.shape != (n,):
            raise MetricsError("subjects", f"array of shape {ids.shape}", f"must have shape ({n},)")
    thr = None if threshold is None else _as_threshold(threshold, mw)
    factor = concentration_factor(unit, mw)

    if dose_times is not None:
        if start is not None:
            raise MetricsError("start", start, "must be None when dose_times are given "
                                               "(intervals start at the doses)")
        windows = cur.intervals(end)
    else:
        windows = [cur.bounds(start, end)]
    cols: dict[str, list] = {k: [] for k in ("cmax", "tmax", "cmin", "auc", "trough", "time_above",
                                            "longest_time_above")}
    for s, e in windows:
        w = cur.window(s, e)
        cols["cmax"].append(_apply(_k_cmax, w))
        cols["tmax"].append(_apply(_k_tmax, w))
        cols["cmin"].append(_apply(_k_cmin, w))
        cols["auc"].append(_apply(_k_auc, w))
        if dose_times is not None:
            cols["trough"].append(w.b[:, -1].copy())
        if thr is not None:
            cols["time_above"].append(_apply(_k_time_above, w, thr))
            cols["longest_time_above"].append(_apply(_k_longest, w, thr))
        del w

    k = len(windows)

    def flat(arrs):   # list over windows of (N[, C]) -> ravel in (subject, compartment, window) order
        x = np.stack(arrs, axis=-1)                     # (N[, C], K)
        return x.reshape(n * n_cmt * k)

    out = {
        "subject": np.repeat(ids, n_cmt * k),
        "compartment": pd.Categorical.from_codes(np.tile(np.repeat(np.arange(n_cmt), k), n), names),
    }
    if dose_times is not None:
        out["interval"] = np.tile(np.arange(k), n * n_cmt)
        out["start"] = np.tile([s for s, _ in windows], n * n_cmt)
        out["end"] = np.tile([e for _, e in windows], n * n_cmt)
    out["cmax"] = flat(cols["cmax"]) * factor
    out["tmax"] = flat(cols["tmax"])
    out["cmin"] = flat(cols["cmin"]) * factor
    out["auc"] = flat(cols["auc"]) * factor
    if dose_times is not None:
        out["trough"] = flat(cols["trough"]) * factor
    if thr is not None:
        out["threshold"] = np.full(n * n_cmt * k, thr * factor)
        out["time_above"] = flat(cols["time_above"])
        out["longest_time_above"] = flat(cols["longest_time_above"])
    frame = pd.DataFrame(out)
    frame["conc_unit"] = unit
    frame["auc_unit"] = _auc_unit(unit)
    frame["time_unit"] = "h"
    frame["method"] = cur.method
    return frame
