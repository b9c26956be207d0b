"""The curve behind every read-out of :mod:`pkcsf.analysis.metrics`: input checks, the interpolant between
grid points (dose-aware), and the kernels that read a window of it (max, min, area, time above).
"""
from __future__ import annotations

import math

import numpy as np

from pkcsf.analysis.methods import check_method
from pkcsf.core.errors import PkcsfError, check_finite
from pkcsf.core.units import parse_quantity

__all__ = ["METHODS", "MetricsError"]


#: Interpolation / integration methods, see the module docstring.
METHODS = ("linear", "linear-up/log-down", "log")


class MetricsError(PkcsfError):
    """Invalid input to an exposure read-out (shape, grid, window, threshold).

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`.
    """


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
