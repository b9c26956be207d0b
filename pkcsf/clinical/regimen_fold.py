"""Regimens combined in linear time: :class:`_Fold` chains ``Regimen.then`` and ``+`` without copying the doses
at each step (the regimen-text parser, :mod:`pkcsf.clinical.regimen_text`, builds every regimen with it).

Split from :mod:`pkcsf.clinical.regimen_text`, which re-exports it.
"""
from __future__ import annotations

from pkcsf.engine.dosing import Regimen


class _Fold:
    """``a.then(b).then(c)`` and ``a + b + c`` without rebuilding a Regimen at each step.

    Regimen objects are immutable, so a chain of n ``then``/``+`` copies O(n) doses n times (a 10,000-item
    regimen text took 89 s). This keeps the running doses, end, origin and label, with exactly the rules of
    :meth:`Regimen.__add__` and :meth:`Regimen.then` (checked against them in tests/test_bad_input.py).
    """

    __slots__ = ("doses", "_end", "_origin", "labels", "_first", "_tmax", "_tmin", "empty")

    def __init__(self):
        self.doses: list = []
        self._end = self._origin = None
        self.labels: list = []
        self._first = None              # the first regimen as given (a fold of one is that regimen)
        self._tmax = self._tmin = None  # latest single-dose time (II/ADDL unrolled), earliest dose time
        self.empty = True

    @property
    def end(self) -> float:
        if self._end is not None:
            return self._end
        return self._tmax if self._tmax is not None else 0.0

    @property
    def origin(self) -> float:
        if self._origin is not None:
            return self._origin
        return self._tmin if self._tmin is not None else 0.0

    def _take(self, r: Regimen, dt: float):
        for d in r.doses:
            t = d.time + dt
            last = t + d.addl * d.ii
            self._tmax = last if self._tmax is None else max(self._tmax, last, t)
            self._tmin = t if self._tmin is None else min(self._tmin, t)
        self.doses.extend(r.doses if dt == 0 else r.shift(dt).doses)

    def add(self, r: Regimen, shift: float = 0.0):
        """``self + r.shift(shift)``."""
        if shift:
            r = r.shift(shift)
        if self.empty:
            self._first, self.empty = r, False
            self._end, self._origin, self.labels = r._end, r._origin, [r.label] if r.label else []
            self._take(r, 0.0)
            return
        self._first = None
        has = bool(self.doses) or bool(r.doses)
        origins = [x.origin for x, live in ((self, bool(self.doses) or self._origin is not None),
                                            (r, bool(r.doses) or r._origin is not None)) if live]
        origin = min(origins) if (self._origin is not None or r._origin is not None) else None
        end = max(self.end, r.end) if has else None
        self._take(r, 0.0)
        self._end, self._origin = end, origin
        if r.label:
            self.labels.append(r.label)

    def then(self, r: Regimen):
        """``self.then(r)``: r shifted so that its origin is at this fold's end."""
        if self.empty:
            self.add(r)
        else:
            self.add(r, shift=self.end - r.origin)

    def regimen(self) -> Regimen:
        if self._first is not None:
            return self._first
        return Regimen(self.doses, end=self._end, label=" + ".join(self.labels), origin=self._origin)
