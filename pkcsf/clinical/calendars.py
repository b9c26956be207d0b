"""Calendar builders of regimens (:func:`once`, :func:`every`, :func:`weekly`, :func:`twice_weekly`,
:func:`monthly`, :func:`daily`, :func:`on_days`) and the dosing patterns (schedules) behind them.

Calendar conventions: see :mod:`pkcsf.clinical.regimens` and docs/regimens.md.
"""
from __future__ import annotations

import calendar as _calendar
import datetime as _dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pkcsf.clinical.dose_rules import _NUM, _amount, _num
from pkcsf.clinical.routes import normalize_route
from pkcsf.core.errors import DosingError, PkcsfError, check_choice, check_int
from pkcsf.core.units import TIME_UNITS, parse_quantity
from pkcsf.engine.dosing import Dose, Regimen

__all__ = ["WEEKDAYS", "once", "every", "weekly", "twice_weekly", "monthly", "daily", "on_days"]

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

H_DAY = 24.0
H_WEEK = 168.0
H_MONTH = TIME_UNITS["month"]   # "monthly" = every 4 weeks (672 h): the package's one time-unit table

def _fmt_time(h: float) -> str:
    """A duration in the largest exact unit: '2 weeks', '3.5 days', '12 h'."""
    if h > 0 and h % H_WEEK == 0:
        n = h / H_WEEK
        return f"{_num(n)} week" + ("" if n == 1 else "s")
    d = h / H_DAY
    if h > 0 and round(d, 3) * H_DAY == h:
        return f"{_num(round(d, 3))} day" + ("" if d == 1 else "s")
    return f"{_num(h)} h"


_TIME_UNITS = TIME_UNITS       # core/units.py: one table for quantities, scenario files and regimen text


def _hours(value, field: str) -> float:
    """A time in hours from a number (h) or text ('3.5 d', '2 weeks', '1 month' = 28 d)."""
    if isinstance(value, str):
        m = re.fullmatch(rf"\s*({_NUM})\s*(months?|mo)\s*", value, re.I)
        if m:
            t = float(m.group(1)) * H_MONTH
        else:
            try:
                t = parse_quantity(value, "time", field=field)
            except PkcsfError as exc:
                raise DosingError(field, value, "must be a time such as '3.5 d', '2 weeks', '12 h' or '1 month' (= 28 d)") from exc
    elif isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise DosingError(field, value, "must be a time in h or text such as '2 weeks'")
    else:
        t = float(value)
    if not math.isfinite(t) or t <= 0:
        raise DosingError(field, value, "must be a finite time > 0")
    return t



def _add_months(d: _dt.date, k: int) -> _dt.date:
    m = d.month - 1 + k
    y, m = d.year + m // 12, m % 12 + 1
    return d.replace(year=y, month=m, day=min(d.day, _calendar.monthrange(y, m)[1]))


# --------------------------------------------------------------------------- schedules

@dataclass(frozen=True)
class _Schedule:
    """A dosing pattern: offsets ``base + k * period`` (k = 0, 1, ...) in hours."""

    kind: str                       # once | regular | twice_weekly | weekdays | on_days | explicit
    bases: tuple = (0.0,)
    period: float | None = None     # None: the bases are all the doses (no repetition)
    days: tuple = ()                # on_days: day numbers as given

    def text(self) -> str:
        """Canonical schedule text (also the default phase label)."""
        if self.kind == "once":
            return "once"
        if self.kind == "regular":
            return _regular_text(self.period)
        if self.kind == "twice_weekly":
            return "twice weekly"
        if self.kind == "on_days":
            return f"on days {_days_text(self.days)} every {_cycle_text(self.period)}"
        if self.kind == "on_hours":
            return f"at hours {_days_text(self.days)} every {_cycle_text(self.period)}"
        return self.kind

    def pairs(self, count=None, until=None):
        """The first ``count`` doses, or all those before ``until``, as (time, base index); plus the natural end.

        The natural end is the time of the next dose of the pattern for a count,
        ``until`` for a time. Times are built as ``base + k * period`` (as
        :meth:`Dose.expand` does), so compact and unrolled doses agree exactly.
        """
        if self.period is None:
            out = [(b, j) for j, b in enumerate(self.bases)]
            out.sort()
            if count is not None:
                out = out[:count]
            if until is not None:
                out = [x for x in out if x[0] < until]
            return out, (until if until is not None else (out[-1][0] if out else 0.0))
        out = []
        k = 0
        while True:
            for j, b in enumerate(self.bases):
                t = b + k * self.period
                if count is not None and len(out) >= count:
                    return out, t
                if until is not None and t >= until:
                    return out, until
                out.append((t, j))
            k += 1
            if len(out) > 100000:
                raise DosingError("schedule", self.text(), "more than 100000 doses; check the duration")

    def offsets(self, count=None, until=None):
        pairs, natural = self.pairs(count, until)
        return [t for t, _ in pairs], natural


def _regular_text(dt: float) -> str:
    if dt <= H_DAY and (H_DAY / dt) == int(H_DAY / dt):
        n = int(H_DAY / dt)
        return {1: "daily", 2: "twice daily", 3: "three times daily", 4: "four times daily"}.get(n, f"{n} times daily")
    if dt == H_WEEK:
        return "weekly"
    if dt == H_MONTH:
        return "monthly"
    return "every " + _fmt_time(dt)


def _cycle_text(c: float) -> str:
    """A cycle length in days ('21 days'), as clinicians write cycles; hours if not whole-ish days."""
    d = c / H_DAY
    return (f"{_num(round(d, 3))} day" + ("" if d == 1 else "s")) if round(d, 3) * H_DAY == c else _fmt_time(c)


def _days_text(days) -> str:
    items = [_num(d) for d in days]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _make_phase(amount, site, sched: _Schedule, *, count=None, until=None, end=None, label=None,
                drug=None, duration=None) -> Regimen:
    """Doses of one phase from its origin 0: one compact II/ADDL dose per base offset of the pattern."""
    pairs, natural = sched.pairs(count, until)
    if not pairs:
        raise DosingError("phase", label or sched.text(), "the phase has no doses (duration too short?)")
    label = sched.text() if label is None else label
    if sched.period is None:
        doses = [Dose(amount, site, t, duration=duration, drug=drug, label=label) for t, _ in pairs]
    else:
        n_per_base = [0] * len(sched.bases)
        for _, j in pairs:
            n_per_base[j] += 1
        doses = [Dose(amount, site, sched.bases[j], ii=sched.period if m > 1 else 0.0, addl=m - 1,
                      duration=duration, drug=drug, label=label)
                 for j, m in enumerate(n_per_base) if m > 0]
    return Regimen(doses, end=natural if end is None else end, label=label, origin=0.0)


def _build(dose, route, sched, *, count=None, until=None, end=None, drug=None, label=None, bsa=None,
           infusion=None) -> Regimen:
    amount = _amount(dose, bsa)
    site = normalize_route(route)
    dur = None if infusion is None else _hours(infusion, "infusion duration")
    return _make_phase(amount, site, sched, count=count, until=until, end=end, label=label, drug=drug, duration=dur)


# --------------------------------------------------------------------------- calendar builders

def once(dose: float | str, route: str, *, drug: str | None = None, label: str | None = None,
         bsa: float | str | None = None, infusion: float | str | None = None) -> Regimen:
    """A single dose at time 0; the phase ends at the dose (``end = 0``).

    Parameters
    ----------
    dose : float or str
        mg, a quantity (``"12 mg"``), per body-surface area (``"12 mg/m2"``) or an expression over subject
        columns (``"DOSE"``).
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` or an alias (see :mod:`pkcsf.clinical.routes`).
    drug : str, optional
        The drug of these doses (combination regimens).
    label : str, optional
        Phase label (default: the schedule's text).
    bsa : float or str, optional
        Body-surface area (m2) for mg/m2 doses, or ``"BSA"`` for the population column.
    infusion : float or str, optional
        Infusion duration (h or text); default: bolus.

    Returns
    -------
    Regimen
        The phase, from its own time 0 (its ``origin``) to its ``end``.

    Examples
    --------
    >>> once("12 mg", "lumbar").end
    0.0
    """
    return _build(dose, route, _Schedule("once", (0.0,), None), end=0.0, drug=drug, label=label, bsa=bsa,
                  infusion=infusion)


def every(dose: float | str, route: str, interval: float | str, n: int, *, drug: str | None = None,
          label: str | None = None, bsa: float | str | None = None, infusion: float | str | None = None) -> Regimen:
    """``n`` doses ``interval`` apart (h or text such as ``"2 weeks"``); ends one interval after the last.

    Label defaults to the schedule ("every 2 weeks", "weekly", "daily", ...).

    Parameters
    ----------
    dose : float or str
        mg, a quantity (``"12 mg"``), per body-surface area (``"12 mg/m2"``) or an expression over subject
        columns (``"DOSE"``).
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` or an alias (see :mod:`pkcsf.clinical.routes`).
    interval : float or str
        Time between doses (h or text).
    n : int
        Number of doses.
    drug : str, optional
        The drug of these doses (combination regimens).
    label : str, optional
        Phase label (default: the schedule's text).
    bsa : float or str, optional
        Body-surface area (m2) for mg/m2 doses, or ``"BSA"`` for the population column.
    infusion : float or str, optional
        Infusion duration (h or text); default: bolus.

    Returns
    -------
    Regimen
        The phase, from its own time 0 (its ``origin``) to its ``end``.

    Examples
    --------
    >>> [d.time for d in every("12 mg", "lumbar", "2 weeks", 3)]
    [0.0, 336.0, 672.0]
    """
    dt = _hours(interval, "every.interval")
    n = check_int("every.n", n, 1, DosingError, whole_floats=True)
    return _build(dose, route, _Schedule("regular", (0.0,), dt), count=n, drug=drug,
                  label=label, bsa=bsa, infusion=infusion)


def weekly(dose: float | str, route: str, weeks: int, *, drug: str | None = None, label: str | None = None,
           bsa: float | str | None = None, infusion: float | str | None = None) -> Regimen:
    """One dose a week for ``weeks`` weeks (doses on days 1, 8, 15, ...); ends at ``weeks`` x 7 days.

    Parameters
    ----------
    dose : float or str
        mg, a quantity (``"12 mg"``), per body-surface area (``"12 mg/m2"``) or an expression over subject
        columns (``"DOSE"``).
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` or an alias (see :mod:`pkcsf.clinical.routes`).
    weeks : int
        Number of weeks (one dose each).
    drug : str, optional
        The drug of these doses (combination regimens).
    label : str, optional
        Phase label (default: the schedule's text).
    bsa : float or str, optional
        Body-surface area (m2) for mg/m2 doses, or ``"BSA"`` for the population column.
    infusion : float or str, optional
        Infusion duration (h or text); default: bolus.

    Returns
    -------
    Regimen
        The phase, from its own time 0 (its ``origin``) to its ``end``.

    Examples
    --------
    >>> weekly("12 mg", "lumbar", 4).end
    672.0
    """
    weeks = check_int("weekly.weeks", weeks, 1, DosingError, whole_floats=True)
    return every(dose, route, H_WEEK, weeks, drug=drug, label=label, bsa=bsa,
                 infusion=infusion)


_WEEKDAY_NAMES = {n: i for i, names in enumerate(
    [("mon", "monday"), ("tue", "tues", "tuesday"), ("wed", "wednesday"), ("thu", "thur", "thurs", "thursday"),
     ("fri", "friday"), ("sat", "saturday"), ("sun", "sunday")]) for n in names}


def _weekday(name, field) -> int:
    if isinstance(name, str) and name.strip().lower() in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES[name.strip().lower()]
    check_choice(field, name, WEEKDAYS, DosingError)
    raise AssertionError  # pragma: no cover


def twice_weekly(dose: float | str, route: str, weeks: int, days: Sequence[str] = ("Mon", "Thu"), *,
                 start: str = "Mon", every: float | str | None = None, drug: str | None = None,
                 label: str | None = None, bsa: float | str | None = None,
                 infusion: float | str | None = None) -> Regimen:
    """Twice-weekly doses for ``weeks`` weeks, by real weekdays (default) or evenly spaced.

    **Weekday logic (default):** day 1 (time 0) is a ``start`` weekday (default
    Monday) and doses fall on the weekdays in ``days`` (default Monday and
    Thursday), so the gaps alternate 3 and 4 days: days 1, 4, 8, 11, ...
    If ``start`` is not one of ``days`` the first dose falls later than day 1
    (the phase still starts on day 1: ``origin = 0``). Any number of weekdays
    may be given (``days=("Mon", "Wed", "Fri")`` is three times weekly).

    **Evenly spaced:** ``every="3.5 d"`` gives doses every 3.5 days instead
    (``days`` and ``start`` are ignored).

    The phase ends after ``weeks`` full weeks (``weeks`` x 168 h).

    Parameters
    ----------
    dose : float or str
        mg, a quantity (``"12 mg"``), per body-surface area (``"12 mg/m2"``) or an expression over subject
        columns (``"DOSE"``).
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` or an alias (see :mod:`pkcsf.clinical.routes`).
    weeks : int
        Number of weeks.
    days : sequence of str, optional
        The two weekdays (default Monday and Thursday).
    start : str, optional
        Weekday of day 1 (default Monday).
    every : float or str, optional
        Evenly spaced doses this far apart instead of weekdays (``"3.5 d"``).
    drug : str, optional
        The drug of these doses (combination regimens).
    label : str, optional
        Phase label (default: the schedule's text).
    bsa : float or str, optional
        Body-surface area (m2) for mg/m2 doses, or ``"BSA"`` for the population column.
    infusion : float or str, optional
        Infusion duration (h or text); default: bolus.

    Returns
    -------
    Regimen
        The phase, from its own time 0 (its ``origin``) to its ``end``.

    Examples
    --------
    >>> [d.time / 24 + 1 for d in twice_weekly("12 mg", "lumbar", 2)]
    [1.0, 4.0, 8.0, 11.0]
    """
    weeks = check_int("twice_weekly.weeks", weeks, 1, DosingError, whole_floats=True)
    if every is not None:
        dt = _hours(every, "twice_weekly.every")
        return _build(dose, route, _Schedule("regular", (0.0,), dt), until=weeks * H_WEEK, end=weeks * H_WEEK,
                      drug=drug, label=label, bsa=bsa, infusion=infusion)
    if isinstance(days, str):
        days = (days,)
    idx = [_weekday(d, "twice_weekly.days") for d in days]
    if not idx or len(set(idx)) != len(idx):
        raise DosingError("twice_weekly.days", days, "give distinct weekdays, e.g. ('Mon', 'Thu')")
    s = _weekday(start, "twice_weekly.start")
    bases = tuple(sorted(((i - s) % 7) * H_DAY for i in idx))
    default = (sorted(idx) == [0, 3] and s == 0)
    kind = "twice_weekly" if default else "weekdays"
    sched = _Schedule(kind, bases, H_WEEK)
    if label is None and not default:
        label = ("twice weekly" if len(idx) == 2 else f"{len(idx)} times weekly") + \
            f" on {'/'.join(WEEKDAYS[i] for i in sorted(idx))} (day 1 = {WEEKDAYS[s]})"
    return _build(dose, route, sched, until=weeks * H_WEEK, end=weeks * H_WEEK, drug=drug, label=label, bsa=bsa,
                  infusion=infusion)


def monthly(dose: float | str, route: str, months: int, every: float | str = "28 d", *,
            start_date: _dt.date | str | None = None, drug: str | None = None, label: str | None = None,
            bsa: float | str | None = None, infusion: float | str | None = None) -> Regimen:
    """``months`` monthly doses. **Monthly means every 4 weeks (28 days)** unless asked otherwise.

    ``every`` may be another interval ("30 d", "1 month" = 28 d) or ``"calendar"``:
    calendar months counted from ``start_date`` (a :class:`datetime.date` or
    ISO text "2025-01-31"; the day of month is kept, clipped to short months:
    Jan 31 -> Feb 28 -> Mar 31). The phase ends one month after the last dose.

    Parameters
    ----------
    dose : float or str
        mg, a quantity (``"12 mg"``), per body-surface area (``"12 mg/m2"``) or an expression over subject
        columns (``"DOSE"``).
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` or an alias (see :mod:`pkcsf.clinical.routes`).
    months : int
        Number of doses.
    every : str, optional
        ``"28 d"`` (default), another interval, or ``"calendar"``.
    start_date : datetime.date or str, optional
        First day, for calendar months.
    drug : str, optional
        The drug of these doses (combination regimens).
    label : str, optional
        Phase label (default: the schedule's text).
    bsa : float or str, optional
        Body-surface area (m2) for mg/m2 doses, or ``"BSA"`` for the population column.
    infusion : float or str, optional
        Infusion duration (h or text); default: bolus.

    Returns
    -------
    Regimen
        The phase, from its own time 0 (its ``origin``) to its ``end``.

    Examples
    --------
    >>> monthly("12 mg", "lumbar", 3).end / 24
    84.0
    """
    months = check_int("monthly.months", months, 1, DosingError, whole_floats=True)
    if isinstance(every, str) and every.strip().lower() in ("calendar", "calendar month", "calendar months"):
        if start_date is None:
            raise DosingError("monthly.start_date", None, "calendar months need the date of day 1",
                              "pass start_date=datetime.date(...) or e.g. '2025-01-31'")
        if isinstance(start_date, str):
            try:
                start_date = _dt.date.fromisoformat(start_date.strip())
            except ValueError:
                raise DosingError("monthly.start_date", start_date, "must be an ISO date such as '2025-01-31'") from None
        if isinstance(start_date, _dt.datetime):
            start_date = start_date.date()
        if not isinstance(start_date, _dt.date):
            raise DosingError("monthly.start_date", start_date, "must be a datetime.date or ISO text")
        offs = tuple((_add_months(start_date, k) - start_date).days * H_DAY for k in range(months))
        end = (_add_months(start_date, months) - start_date).days * H_DAY
        return _build(dose, route, _Schedule("explicit", offs, None), end=end, drug=drug,
                      label="monthly (calendar months)" if label is None else label, bsa=bsa, infusion=infusion)
    dt = _hours(every, "monthly.every")
    return _build(dose, route, _Schedule("regular", (0.0,), dt), count=months, drug=drug, label=label, bsa=bsa,
                  infusion=infusion)


def daily(dose: float | str, route: str, days: int, times_per_day: int = 1, *, drug: str | None = None,
          label: str | None = None, bsa: float | str | None = None, infusion: float | str | None = None) -> Regimen:
    """``times_per_day`` evenly spaced doses a day (every 24/``times_per_day`` h) for ``days`` days.

    Parameters
    ----------
    dose : float or str
        mg, a quantity (``"12 mg"``), per body-surface area (``"12 mg/m2"``) or an expression over subject
        columns (``"DOSE"``).
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` or an alias (see :mod:`pkcsf.clinical.routes`).
    days : int
        Number of days.
    times_per_day : int, optional
        Doses a day, evenly spaced.
    drug : str, optional
        The drug of these doses (combination regimens).
    label : str, optional
        Phase label (default: the schedule's text).
    bsa : float or str, optional
        Body-surface area (m2) for mg/m2 doses, or ``"BSA"`` for the population column.
    infusion : float or str, optional
        Infusion duration (h or text); default: bolus.

    Returns
    -------
    Regimen
        The phase, from its own time 0 (its ``origin``) to its ``end``.

    Examples
    --------
    >>> len(daily("80 mg", "oral", 7, 2))
    14
    """
    days = check_int("daily.days", days, 1, DosingError, whole_floats=True)
    tpd = check_int("daily.times_per_day", times_per_day, 1, DosingError, whole_floats=True)
    return _build(dose, route, _Schedule("regular", (0.0,), H_DAY / tpd), until=days * H_DAY, end=days * H_DAY,
                  drug=drug, label=label, bsa=bsa, infusion=infusion)


def on_days(dose: float | str, route: str, days: Sequence[float] = (1, 8), cycle: float | str = "21 d",
            cycles: int = 1, *, drug: str | None = None, label: str | None = None, bsa: float | str | None = None,
            infusion: float | str | None = None) -> Regimen:
    """Doses on the given days of each cycle (day 1 = the cycle's first day), ``cycles`` cycles.

    ``on_days("30 mg", "ommaya", [1, 8], "21 d", 4)`` gives doses on days 1, 8,
    22, 29, 43, 50, 64, 71; the phase ends after the last cycle (day 85 = 84 d).
    Days may be fractional (day 4.5 = 84 h). A day listed twice is dosed twice.

    Parameters
    ----------
    dose : float or str
        mg, a quantity (``"12 mg"``), per body-surface area (``"12 mg/m2"``) or an expression over subject
        columns (``"DOSE"``).
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` or an alias (see :mod:`pkcsf.clinical.routes`).
    days : sequence of float, optional
        Days of each cycle (day 1 is the cycle's first day).
    cycle : float or str, optional
        Cycle length (default 21 d).
    cycles : int, optional
        Number of cycles.
    drug : str, optional
        The drug of these doses (combination regimens).
    label : str, optional
        Phase label (default: the schedule's text).
    bsa : float or str, optional
        Body-surface area (m2) for mg/m2 doses, or ``"BSA"`` for the population column.
    infusion : float or str, optional
        Infusion duration (h or text); default: bolus.

    Returns
    -------
    Regimen
        The phase, from its own time 0 (its ``origin``) to its ``end``.

    Examples
    --------
    >>> [d.time / 24 + 1 for d in on_days("30 mg", "ommaya", [1, 8], "21 d", 2)]
    [1.0, 8.0, 22.0, 29.0]
    """
    c = _hours(cycle, "on_days.cycle")
    cycles = check_int("on_days.cycles", cycles, 1, DosingError, whole_floats=True)
    if isinstance(days, (int, float)):
        days = (days,)
    ds = []
    for d in days:
        if isinstance(d, bool) or not isinstance(d, (int, float, np.integer, np.floating)) or not math.isfinite(d) or d < 1:
            raise DosingError("on_days.days", d, "days are numbered from 1 (day 1 = the first day of the cycle)")
        if (d - 1) * H_DAY >= c:
            raise DosingError("on_days.days", d, f"day {_num(d)} is outside a cycle of {_cycle_text(c)}")
        ds.append(float(d))
    if not ds:
        raise DosingError("on_days.days", days, "give at least one day, e.g. [1, 8]")
    ds.sort()
    sched = _Schedule("on_days", tuple((d - 1) * H_DAY for d in ds), c, tuple(ds))
    return _build(dose, route, sched, until=cycles * c, end=cycles * c, drug=drug, label=label, bsa=bsa,
                  infusion=infusion)
