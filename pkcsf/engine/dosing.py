"""Doses and regimens: small frozen event objects that compose.

A :class:`Dose` puts an amount into a named dosing **site** of the model (a
route such as ``"ommaya"`` or ``"oral"``, which may split the dose between
compartments and apply bioavailability and lag) or directly into a named
**compartment**. It is a bolus, or a zero-order infusion given by ``rate``
*or* ``duration`` (never both). ``ii``/``addl`` repeat it NONMEM-style.

A :class:`Regimen` is a set of doses. ``a + b`` overlays two regimens (all
doses of both); ``a.then(b)`` starts ``b`` where ``a``'s schedule ends.

Amounts may be expressions over subject columns (``"DOSE"``, ``"12 * BSA"``),
so that one regimen serves a population whose doses differ per subject.

Event semantics (see docs/events.md, tested in tests/test_events.py):

* outputs are right-continuous: the value reported at a dose time includes
  that bolus; an infusion starting at *t* has delivered nothing at *t*;
  an output time listed twice reports the value just before the doses at
  that time (the left limit, e.g. a pre-dose trough), then the value after;
* several doses at the same time are all given before that time is reported;
* a dose with a lag time is given at ``time + lag``;
* bioavailability F scales the amount; an infusion given by ``rate`` keeps
  its rate and lasts ``F * amount / rate``; one given by ``duration`` keeps
  its duration (NONMEM's convention);
* doses after the last output time have no effect on the outputs.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pkcsf.core.errors import DosingError, check_int
from pkcsf.core.units import parse_quantity
from pkcsf.engine.expressions import Expression

if TYPE_CHECKING:
    from pkcsf.engine.model import Model

__all__ = ["Dose", "Regimen", "bolus", "infusion", "oral", "NONMEM_COLUMNS"]

NONMEM_COLUMNS = ["ID", "TIME", "AMT", "CMT", "EVID", "II", "ADDL", "RATE"]


def _time(value, field):
    t = parse_quantity(value, "time", field=field)
    if not np.isfinite(t):
        raise DosingError(field, value, "must be a finite time")
    return t


@dataclass(frozen=True)
class Dose:
    """One dose (or a NONMEM-style repeated dose with ``ii``/``addl``).

    Parameters
    ----------
    amount : float, str
        mg, a quantity such as ``"12 mg"``, or an expression over subject
        columns such as ``"DOSE"`` or ``"12 * BSA"`` (evaluated per subject, in mg).
    site : str
        A dosing site or compartment name of the model.
    time : float or str
        Time of the (first) dose, h or e.g. ``"3 d"``.
    rate, duration : float or str, optional
        Zero-order infusion: rate (mg/h) or duration (h), never both.
    ii : float or str
        Interdose interval of a repeated dose, h or text such as ``"1 week"`` (> 0 when ``addl`` > 0).
    addl : int
        Number of additional doses after the first (NONMEM ``ADDL``; default 0).
    drug : str, optional
        For combination regimens: which drug this dose is.
    label : str
        Free text (e.g. "induction") kept in event tables and reports.

    Raises
    ------
    DosingError
        An empty site, a negative or non-finite amount or time, both ``rate`` and ``duration``, a
        non-positive rate or duration, or ``addl`` > 0 without an interval.

    Examples
    --------
    >>> d = Dose("12 mg", "lumbar", "2 d")
    >>> d.amount, d.time
    (12.0, 48.0)
    >>> Dose(500, "iv", rate="250 mg/h").is_infusion
    True
    """

    amount: float | str
    site: str
    time: float = 0.0
    rate: float | None = None
    duration: float | None = None
    ii: float = 0.0
    addl: int = 0
    drug: str | None = None
    label: str = ""

    def __post_init__(self):
        if not isinstance(self.site, str) or not self.site:
            raise DosingError("dose.site", self.site, "must be the name of a dosing site or compartment")
        amt = self.amount
        if isinstance(amt, str):
            try:
                amt = parse_quantity(amt, "amount", field="dose.amount")
            except Exception:
                try:
                    Expression.parse(amt, "dose.amount")
                except Exception:
                    raise DosingError("dose.amount", self.amount,
                                      "must be an amount such as '12 mg', a number of mg, or an expression over "
                                      "subject columns such as 'DOSE'") from None
        if not isinstance(amt, str):
            if isinstance(amt, bool) or not isinstance(amt, (int, float, np.floating, np.integer)):
                raise DosingError("dose.amount", self.amount, "must be a number of mg or a quantity such as '12 mg'")
            if not np.isfinite(amt) or amt < 0:
                raise DosingError("dose.amount", self.amount, "must be a finite amount >= 0 mg")
            amt = float(amt)
        object.__setattr__(self, "amount", amt)
        t = _time(self.time, "dose.time")
        if t < 0:
            raise DosingError("dose.time", self.time,
                              "dose times must be >= 0 h (time 0 is the start of the simulation)")
        object.__setattr__(self, "time", t)
        if self.rate is not None and self.duration is not None:
            raise DosingError("dose.rate/dose.duration", (self.rate, self.duration),
                              "give an infusion's rate or its duration, never both")
        if self.rate is not None:
            r = parse_quantity(self.rate, "rate", field="dose.rate")
            if not np.isfinite(r) or r <= 0:
                raise DosingError("dose.rate", self.rate, "an infusion rate must be > 0 mg/h")
            object.__setattr__(self, "rate", r)
        if self.duration is not None:
            d = _time(self.duration, "dose.duration")
            if d <= 0:
                raise DosingError("dose.duration", self.duration, "an infusion duration must be > 0 h")
            object.__setattr__(self, "duration", d)
        ii = _time(self.ii, "dose.ii")
        if ii < 0:
            raise DosingError("dose.ii", self.ii, "the interdose interval must be >= 0 h")
        object.__setattr__(self, "ii", ii)
        object.__setattr__(self, "addl", check_int("dose.addl", self.addl, 0, DosingError, whole_floats=True))
        if self.addl > 0 and ii <= 0:
            raise DosingError("dose.ii", self.ii, "repeated doses (addl > 0) need an interdose interval > 0")

    @property
    def is_infusion(self) -> bool:
        """True for a zero-order infusion (a rate or a duration is set)."""
        return self.rate is not None or self.duration is not None

    def expand(self) -> list["Dose"]:
        """The single doses this one stands for (II/ADDL unrolled).

        Returns
        -------
        list of Dose
            ``addl + 1`` doses, ``ii`` apart, each with ``ii = 0`` and ``addl = 0``.
        """
        if self.addl == 0:
            return [self]
        return [replace(self, time=self.time + k * self.ii, ii=0.0, addl=0) for k in range(self.addl + 1)]

    def repeat(self, every: float | str, n: int) -> Regimen:
        """``n`` doses in all, ``every`` apart (h or e.g. ``"1 week"``).

        Parameters
        ----------
        every : float or str
            Interval (h or text).
        n : int
            Number of doses in all (>= 1).

        Returns
        -------
        Regimen
            One compact dose with ``ii`` and ``addl``.

        Examples
        --------
        >>> len(Dose("12 mg", "lumbar").repeat("1 week", 4))
        4
        """
        n = check_int("repeat.n", n, 1, DosingError, whole_floats=True)
        return Regimen([replace(self, ii=_time(every, "repeat.every"), addl=int(n) - 1)])

    def __add__(self, other):
        return Regimen([self]) + other

    __radd__ = __add__

    def describe(self) -> str:
        """The dose in one line of text (amount, site, infusion, times).

        Returns
        -------
        str
            For example ``"12 mg lumbar at 0 h, then every 168 h x 3 more"``.
        """
        amt = f"{self.amount:g} mg" if isinstance(self.amount, float) else f"({self.amount}) mg per subject"
        what = f"{amt} {self.site}"
        if self.rate is not None:
            what += f" infused at {self.rate:g} mg/h"
        elif self.duration is not None:
            what += f" infused over {self.duration:g} h"
        when = f"at {self.time:g} h"
        if self.addl:
            when += f", then every {self.ii:g} h x {self.addl} more"
        return f"{what} {when}"


def bolus(amount: float | str, site: str, time: float | str = 0.0, **kw: object) -> Dose:
    """A bolus dose (all of ``amount`` at ``time``).

    Parameters
    ----------
    amount : float or str
        mg, a quantity such as ``"12 mg"``, or an expression over subject columns (``"DOSE"``).
    site : str
        A dosing site or compartment name of the model.
    time : float or str, optional
        Time of the dose, h or text such as ``"3 d"`` (default 0).
    **kw
        Other :class:`Dose` fields (``ii``, ``addl``, ``drug``, ``label``).

    Returns
    -------
    Dose
        The dose.

    Examples
    --------
    >>> bolus("12 mg", "lumbar", "2 d").time
    48.0
    """
    return Dose(amount, site, time, **kw)


def infusion(amount: float | str, site: str, time: float | str = 0.0, *, rate: float | str | None = None,
             duration: float | str | None = None, **kw: object) -> Dose:
    """A zero-order infusion, given by its rate or its duration (never both).

    Parameters
    ----------
    amount : float or str
        mg, a quantity such as ``"500 mg"``, or an expression over subject columns.
    site : str
        A dosing site or compartment name of the model.
    time : float or str, optional
        Start of the infusion, h or text (default 0).
    rate : float or str, optional
        Infusion rate, mg/h or a quantity such as ``"100 mg/h"``.
    duration : float or str, optional
        Infusion duration, h or text such as ``"30 min"``.
    **kw
        Other :class:`Dose` fields (``ii``, ``addl``, ``drug``, ``label``).

    Returns
    -------
    Dose
        The dose.

    Raises
    ------
    DosingError
        If neither or both of ``rate`` and ``duration`` are given.

    Examples
    --------
    >>> infusion("500 mg", "iv", duration="30 min").duration
    0.5
    """
    if rate is None and duration is None:
        raise DosingError("infusion", amount, "an infusion needs a rate or a duration")
    return Dose(amount, site, time, rate=rate, duration=duration, **kw)


def oral(amount: float | str, time: float | str = 0.0, site: str = "oral", **kw: object) -> Dose:
    """An oral dose (a bolus into the model's ``oral`` site unless ``site`` says otherwise).

    Parameters
    ----------
    amount : float or str
        mg or a quantity such as ``"80 mg"``.
    time : float or str, optional
        Time of the dose, h or text (default 0).
    site : str, optional
        The absorption site of the model (default ``"oral"``).
    **kw
        Other :class:`Dose` fields (``ii``, ``addl``, ``drug``, ``label``).

    Returns
    -------
    Dose
        The dose.

    Examples
    --------
    >>> oral("80 mg").site
    'oral'
    """
    return Dose(amount, site, time, **kw)


class Regimen:
    """An immutable collection of doses. ``+`` overlays; :meth:`then` sequences.

    ``end`` is where the schedule ends: the time of the last dose plus one
    interdose interval where the regimen knows it (set by the builders in
    :mod:`pkcsf.clinical.regimens`), else the last dose time. ``origin`` is where it
    starts: the first dose time unless given (a phase may start before its
    first dose, e.g. days 8 and 15 of a cycle); :meth:`then` puts the next
    regimen's origin at this one's end.

    Parameters
    ----------
    doses : Dose or sequence of Dose, optional
        The doses.
    end : float, optional
        Where the schedule ends (h); default: the last dose time.
    label : str, optional
        Free text (e.g. "induction").
    origin : float, optional
        Where the schedule starts (h); default: the first dose time.

    Examples
    --------
    >>> r = Dose("12 mg", "lumbar").repeat("1 week", 4)
    >>> len(r), r.end
    (4, 504.0)
    """

    __slots__ = ("doses", "_end", "label", "_origin")

    def __init__(self, doses: Dose | Iterable[Dose] = (), *, end: float | None = None, label: str = "",
                 origin: float | None = None) -> None:
        if isinstance(doses, Dose):
            doses = [doses]
        doses = tuple(doses)
        for i, d in enumerate(doses):
            if not isinstance(d, Dose):
                raise DosingError(f"regimen.doses[{i}]", d, "must be a Dose")
        self.doses = doses
        self._end = None if end is None else float(end)
        self.label = label
        self._origin = None if origin is None else float(origin)

    # composition ---------------------------------------------------------
    def __add__(self, other) -> "Regimen":
        if isinstance(other, Dose):
            other = Regimen([other])
        if not isinstance(other, Regimen):
            return NotImplemented
        end = max(self.end, other.end) if (self.doses or other.doses) else None
        origins = [r.origin for r in (self, other) if r.doses or r._origin is not None]
        origin = min(origins) if any(r._origin is not None for r in (self, other)) else None
        return Regimen(self.doses + other.doses, end=end, label=" + ".join(x for x in (self.label, other.label) if x),
                       origin=origin)

    __radd__ = __add__

    def shift(self, dt: float | str) -> Regimen:
        """The regimen moved later by ``dt``; ``end`` and ``origin`` move with it.

        Parameters
        ----------
        dt : float or str
            Shift (h or text such as ``"1 week"``).

        Returns
        -------
        Regimen
            The shifted regimen.
        """
        dt = _time(dt, "shift")
        return Regimen([replace(d, time=d.time + dt) for d in self.doses],
                       end=None if self._end is None else self._end + dt, label=self.label,
                       origin=None if self._origin is None else self._origin + dt)

    def then(self, other: Regimen | Dose, gap: float | str = 0.0) -> Regimen:
        """``other`` shifted so that its origin (first dose unless set) is at this regimen's end (plus ``gap``).

        Parameters
        ----------
        other : Regimen or Dose
            The next phase.
        gap : float or str, optional
            Rest between the phases (h or text).

        Returns
        -------
        Regimen
            Both phases.

        Examples
        --------
        >>> a = Dose("12 mg", "lumbar").repeat("1 week", 2)
        >>> [d.time for d in a.then(a, gap="1 week")]
        [0.0, 168.0, 336.0, 504.0]
        """
        if isinstance(other, Dose):
            other = Regimen([other])
        return self + other.shift(self.end + _time(gap, "gap") - other.origin)

    def repeat(self, every: float | str, n: int) -> Regimen:
        """The whole regimen ``n`` times, each copy ``every`` after the previous.

        Parameters
        ----------
        every : float or str
            Interval between copies (h or text).
        n : int
            Number of copies.

        Returns
        -------
        Regimen
            The repeated regimen.
        """
        every = _time(every, "repeat.every")
        out = Regimen(label=self.label)
        for k in range(int(n)):
            out = out + self.shift(k * every)
        out._end = self.start + (int(n) - 1) * every + (self.end - self.start)
        out._origin = self._origin
        return out

    def with_site(self, site: str) -> "Regimen":
        """The same doses given at ``site`` instead.

        Parameters
        ----------
        site : str
            Dosing site or route.

        Returns
        -------
        Regimen
            The regimen at ``site``.
        """
        return Regimen([replace(d, site=site) for d in self.doses], end=self._end, label=self.label,
                       origin=self._origin)

    def with_sites(self, sites: dict[str, str]) -> "Regimen":
        """The same doses, each at ``sites[its site]`` where the map names it (other doses unchanged).

        Parameters
        ----------
        sites : dict
            Site or route name -> the site to give it at (e.g. ``{"lumbar": "lumbar_liposomal"}``).

        Returns
        -------
        Regimen
            The regimen with the sites replaced (``self`` when no dose is at a mapped site).
        """
        if not any(d.site in sites for d in self.doses):
            return self
        return Regimen([replace(d, site=sites.get(d.site, d.site)) for d in self.doses], end=self._end,
                       label=self.label, origin=self._origin)

    def scaled(self, factor: float) -> "Regimen":
        """Every amount multiplied by ``factor`` (expressions become ``(expr) * factor``).

        Parameters
        ----------
        factor : float
            Multiplier.

        Returns
        -------
        Regimen
            The scaled regimen.
        """
        out = []
        for d in self.doses:
            if isinstance(d.amount, str):
                out.append(replace(d, amount=f"({d.amount}) * {float(factor)!r}"))
            else:
                out.append(replace(d, amount=d.amount * factor))
        return Regimen(out, end=self._end, label=self.label, origin=self._origin)

    # views ---------------------------------------------------------------
    def expand(self) -> list[Dose]:
        """Single doses, II/ADDL unrolled, sorted by time (stable).

        Returns
        -------
        list of Dose
            One dose per administration (``ii = 0``, ``addl = 0``).
        """
        singles = [s for d in self.doses for s in d.expand()]
        return sorted(singles, key=lambda d: d.time)

    @property
    def start(self) -> float:
        """Time of the first dose (h; 0 for an empty regimen)."""
        return min((d.time for d in self.doses), default=0.0)

    @property
    def origin(self) -> float:
        """Where the schedule starts (h): set by the builders, else the first dose time."""
        return self._origin if self._origin is not None else self.start

    @property
    def end(self) -> float:
        """Where the schedule ends (h): set by the builders, else the last dose time."""
        if self._end is not None:
            return self._end
        singles = self.expand()
        return max((d.time for d in singles), default=0.0)

    @property
    def sites(self) -> list[str]:
        """The dosing sites used, sorted."""
        return sorted({d.site for d in self.doses})

    @property
    def drugs(self) -> list[str]:
        """The drugs named by the doses (combination regimens), sorted."""
        return sorted({d.drug for d in self.doses if d.drug})

    def for_drug(self, drug: str) -> "Regimen":
        """The doses of ``drug`` (and the doses that name no drug).

        Parameters
        ----------
        drug : str
            Drug name.

        Returns
        -------
        Regimen
            Those doses.
        """
        return Regimen([d for d in self.doses if d.drug in (drug, None)], end=self._end, label=self.label,
                       origin=self._origin)

    def __len__(self) -> int:
        return len(self.expand())

    def __iter__(self):
        return iter(self.expand())

    def __eq__(self, other):
        return isinstance(other, Regimen) and self.expand() == other.expand()

    def __repr__(self) -> str:
        return f"Regimen({len(self)} doses, {self.start:g}-{self.end:g} h{', ' + self.label if self.label else ''})"

    def describe(self) -> str:
        """The regimen as text, one dose (or repeated dose) per line.

        Returns
        -------
        str
            The lines of :meth:`Dose.describe`, or ``"(no doses)"``.
        """
        lines = [d.describe() for d in self.doses]
        return "\n".join(lines) if lines else "(no doses)"

    def to_frame(self) -> pd.DataFrame:
        """One row per single dose.

        Returns
        -------
        pandas.DataFrame
            Columns ``time_h``, ``day``, ``amount_mg`` (a number, or the expression text),
            ``site``, ``rate_mg_per_h``, ``duration_h``, ``drug``, ``label``; sorted by time.
            ``day`` is the treatment day counted clinically, from 1: ``time_h / 24 + 1`` (time 0
            is day 1; docs/regimens.md, "Calendar conventions").

        Examples
        --------
        >>> Dose("12 mg", "lumbar").repeat("1 d", 2).to_frame()["time_h"].tolist()
        [0.0, 24.0]
        >>> Dose("12 mg", "lumbar").repeat("1 d", 2).to_frame()["day"].tolist()
        [1.0, 2.0]
        """
        rows = [{"time_h": d.time, "day": d.time / 24.0 + 1.0, "amount_mg": d.amount, "site": d.site,
                 "rate_mg_per_h": d.rate, "duration_h": d.duration, "drug": d.drug, "label": d.label}
                for d in self.expand()]
        return pd.DataFrame(rows, columns=["time_h", "day", "amount_mg", "site", "rate_mg_per_h",
                                           "duration_h", "drug", "label"])

    def to_nonmem(self, id: int = 1, model: Model | None = None, compact: bool = True) -> pd.DataFrame:
        """NONMEM-style event table: ``ID TIME AMT CMT EVID II ADDL RATE``.

        ``CMT`` is the site or compartment name; with ``model`` given, a dose
        into a compartment is written as its 1-based number. ``compact=False``
        unrolls II/ADDL into single rows. An infusion given by duration gets
        ``RATE = AMT / duration`` and, in an extra ``DUR`` column, its
        duration, so that :func:`from_nonmem` reads it back as an infusion by
        duration (which keeps its duration, not its rate, under
        bioavailability). The column is only written when such a dose exists.

        Parameters
        ----------
        id : int, optional
            Subject ID written in the ``ID`` column.
        model : Model, optional
            Write compartments as 1-based numbers.
        compact : bool, optional
            Keep II/ADDL (True) or unroll them.

        Returns
        -------
        DataFrame
            One row per dose.
        """
        doses = self.doses if compact else self.expand()
        rows = []
        for d in sorted(doses, key=lambda d: d.time):
            if isinstance(d.amount, str):
                raise DosingError("regimen.to_nonmem", d.amount, "amounts must be numbers to export an event table")
            cmt = d.site
            if model is not None and d.site in model.compartment_names:
                cmt = model.compartment_names.index(d.site) + 1
            if d.rate is not None:
                rate = d.rate
            elif d.duration is not None:
                rate = d.amount / d.duration
            else:
                rate = 0.0
            rows.append({"ID": id, "TIME": d.time, "AMT": d.amount, "CMT": cmt, "EVID": 1,
                         "II": d.ii, "ADDL": d.addl, "RATE": rate,
                         "DUR": d.duration if d.duration is not None else 0.0})
        columns = NONMEM_COLUMNS + (["DUR"] if any(d.duration is not None for d in doses) else [])
        return pd.DataFrame(rows, columns=columns)
