"""Regimen builders, calendar logic, clinician-readable text, BSA- and age-based doses.

Everything here returns a :class:`pkcsf.engine.dosing.Regimen` whose ``end`` is where
the phase ends and whose ``origin`` is where it starts, so that
``induction.then(consolidation)`` chains phases as a clinician would, and
whose doses carry the phase as ``Dose.label`` (and the drug as ``Dose.drug``
for combinations).

Calendar conventions (see docs/regimens.md)
-------------------------------------------
* Time is in hours; time 0 is day 1 of treatment (day *d* = hours
  ``24 (d - 1)`` to ``24 d``). Every phase starts at its own time 0, its
  ``origin``; :meth:`Regimen.then` puts the next phase's origin at this one's
  ``end``.
* **twice weekly** uses real weekdays: doses on ``days`` (default Monday and
  Thursday), day 1 being ``start`` (default Monday), so the gaps are 3 and 4
  days (doses on days 1, 4, 8, 11, ...). ``every="3.5 d"`` gives the evenly
  spaced alternative.
* **monthly** means every 4 weeks (28 days) unless calendar months are asked
  for (``monthly(..., every="calendar", start_date=...)``). In the text
  grammar a duration of "N months" is N x 28 days.
* A phase given as a number of doses ends one dosing interval after its last
  dose (``every 2 weeks x 5`` ends at week 10); a phase given as a time
  ("x 4 weeks", "for 8 weeks") holds the doses before that time and ends there.

Amounts are mg, quantities ("12 mg", "0.5 g"), per body-surface area
("12 mg/m2": a number when ``bsa`` is known, else the per-subject expression
``"12 * BSA"`` read from the population's ``BSA`` column), or expressions over
subject columns.
"""
from __future__ import annotations

import calendar as _calendar
import datetime as _dt
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from pkcsf.engine.dosing import Dose, Regimen
from pkcsf.core.errors import DosingError, PkcsfError, check_array, check_choice, suggest
from pkcsf.engine.expressions import Expression
from pkcsf.core.units import UNITS, parse_quantity

__all__ = [
    "ROUTES", "ROUTE_ALIASES", "INTRATHECAL_ROUTES", "WEEKDAYS", "normalize_route",
    "once", "every", "weekly", "twice_weekly", "monthly", "daily", "on_days",
    "methotrexate_it", "cytarabine_it", "thiotepa_it", "liposomal_cytarabine", "depocyt_label",
    "pemetrexed_pan2019", "pemetrexed_d1d8", "osimertinib", "osimertinib_plus_it_pemetrexed",
    "NAMED_REGIMENS", "REGIMEN_SOURCES", "named_regimen",
    "parse_regimen", "describe_regimen", "RegimenTextError",
    "bsa", "dose_per_bsa", "age_based_dose", "age_based_table", "age_dose_column", "AGE_BASED_DRUGS",
]

# --------------------------------------------------------------------------- routes

#: Dosing sites of the CSF models (intrathecal by lumbar puncture, intraventricular by
#: Ommaya reservoir, intracisternal, intravenous, oral).
ROUTES = ("lumbar", "ommaya", "intracisternal", "iv", "oral")
#: Other names accepted for the routes.
ROUTE_ALIASES = {"intraventricular": "ommaya", "ivt": "ommaya", "icv": "ommaya",
                 "intrathecal": "lumbar", "lp": "lumbar", "intravenous": "iv", "po": "oral"}
#: Routes into the CSF (age-based doses apply to these).
INTRATHECAL_ROUTES = ("lumbar", "ommaya", "intracisternal")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

H_DAY = 24.0
H_WEEK = 168.0
H_MONTH = 672.0          # "monthly" = every 4 weeks


def normalize_route(route, field: str = "route") -> str:
    """The canonical route name (``"icv"`` -> ``"ommaya"``); unknown routes raise listing the valid ones."""
    if not isinstance(route, str) or not route.strip():
        raise DosingError(field, route, "must be a route: " + ", ".join(ROUTES))
    r = route.strip().lower()
    if r in ROUTES:
        return r
    if r in ROUTE_ALIASES:
        return ROUTE_ALIASES[r]
    names = list(ROUTES) + list(ROUTE_ALIASES)
    guess = suggest(r, names)
    fix = f"did you mean {guess!r}?" if guess else None
    raise DosingError(field, route, "allowed routes: " + ", ".join(ROUTES) +
                      " (aliases: " + ", ".join(f"{a}={b}" for a, b in ROUTE_ALIASES.items()) + ")", fix)


# --------------------------------------------------------------------------- small helpers

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_BSA_EXPR = re.compile(rf"^\s*({_NUM})\s*\*\s*BSA\s*$")
_PER_BSA_UNITS = ("mg/m2", "mg/m^2", "mg/m²", "mg/sqm", "mg/m 2")


def _num(x) -> str:
    """Shortest text that reads back as the same float ("12", "3.5", "0.1")."""
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _fmt_time(h: float) -> str:
    """A duration in the largest exact unit: '2 weeks', '3.5 days', '12 h'."""
    if h > 0 and h % H_WEEK == 0:
        n = h / H_WEEK
        return f"{_num(n)} week" + ("" if n == 1 else "s")
    d = h / H_DAY
    if h > 0 and round(d, 3) * H_DAY == h:
        return f"{_num(round(d, 3))} day" + ("" if d == 1 else "s")
    return f"{_num(h)} h"


_TIME_UNITS = {"h": 1.0, "hr": 1.0, "hrs": 1.0, "hour": 1.0, "hours": 1.0,
               "d": H_DAY, "day": H_DAY, "days": H_DAY,
               "w": H_WEEK, "wk": H_WEEK, "wks": H_WEEK, "week": H_WEEK, "weeks": H_WEEK,
               "month": H_MONTH, "months": H_MONTH, "mo": H_MONTH}


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


def _count(n, field: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, float, np.integer, np.floating)) or int(n) != n or n < 1:
        raise DosingError(field, n, "must be a whole number >= 1")
    return int(n)


def _amount(dose, bsa=None, field: str = "dose"):
    """mg (float) or a per-subject expression (str) from a number, quantity, 'x mg/m2' or expression."""
    if isinstance(dose, bool):
        raise DosingError(field, dose, "must be an amount such as '12 mg'")
    if isinstance(dose, (int, float, np.integer, np.floating)):
        x = float(dose)
        if not math.isfinite(x) or x <= 0:
            raise DosingError(field, dose, "must be a finite amount > 0 mg")
        return x
    if not isinstance(dose, str) or not dose.strip():
        raise DosingError(field, dose, "must be an amount such as '12 mg', '12 mg/m2' or an expression such as 'DOSE'")
    m = re.fullmatch(rf"\s*({_NUM})\s*(\S*)\s*", dose)
    if m:
        x, unit = float(m.group(1)), m.group(2)
        if unit.lower() in _PER_BSA_UNITS:
            return dose_per_bsa(x, bsa, field=field)
        if unit == "" or (unit in UNITS and UNITS[unit][0] == "amount" and not UNITS[unit][2]):
            x = x * (UNITS[unit][1] if unit else 1.0)
            if not math.isfinite(x) or x <= 0:
                raise DosingError(field, dose, "must be a finite amount > 0 mg")
            return x
        if unit in UNITS:
            raise DosingError(field, dose, f"an amount unit is needed (mg, g, ug, mg/m2), not a {UNITS[unit][0]} ({unit})")
        raise DosingError(field, dose, "unknown unit; amounts are mg, g, ug or mg/m2")
    try:
        Expression.parse(dose, field)
    except PkcsfError:
        raise DosingError(field, dose, "must be an amount such as '12 mg', '12 mg/m2' or an expression over subject columns such as 'DOSE'") from None
    return dose.strip()


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

def once(dose, route, *, drug=None, label=None, bsa=None, infusion=None) -> Regimen:
    """A single dose at time 0; the phase ends at the dose (``end = 0``)."""
    return _build(dose, route, _Schedule("once", (0.0,), None), end=0.0, drug=drug, label=label, bsa=bsa,
                  infusion=infusion)


def every(dose, route, interval, n, *, drug=None, label=None, bsa=None, infusion=None) -> Regimen:
    """``n`` doses ``interval`` apart (h or text such as ``"2 weeks"``); ends one interval after the last.

    Label defaults to the schedule ("every 2 weeks", "weekly", "daily", ...).
    """
    dt = _hours(interval, "every.interval")
    return _build(dose, route, _Schedule("regular", (0.0,), dt), count=_count(n, "every.n"), drug=drug,
                  label=label, bsa=bsa, infusion=infusion)


def weekly(dose, route, weeks, *, drug=None, label=None, bsa=None, infusion=None) -> Regimen:
    """One dose a week for ``weeks`` weeks (doses on days 1, 8, 15, ...); ends at ``weeks`` x 7 days."""
    return every(dose, route, H_WEEK, _count(weeks, "weekly.weeks"), drug=drug, label=label, bsa=bsa,
                 infusion=infusion)


_WEEKDAY_NAMES = {n: i for i, names in enumerate(
    [("mon", "monday"), ("tue", "tues", "tuesday"), ("wed", "wednesday"), ("thu", "thur", "thurs", "thursday"),
     ("fri", "friday"), ("sat", "saturday"), ("sun", "sunday")]) for n in names}


def _weekday(name, field) -> int:
    if isinstance(name, str) and name.strip().lower() in _WEEKDAY_NAMES:
        return _WEEKDAY_NAMES[name.strip().lower()]
    check_choice(field, name, WEEKDAYS, DosingError)
    raise AssertionError  # pragma: no cover


def twice_weekly(dose, route, weeks, days=("Mon", "Thu"), *, start="Mon", every=None, drug=None, label=None,
                 bsa=None, infusion=None) -> Regimen:
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
    """
    weeks = _count(weeks, "twice_weekly.weeks")
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


def monthly(dose, route, months, every="28 d", *, start_date=None, drug=None, label=None, bsa=None,
            infusion=None) -> Regimen:
    """``months`` monthly doses. **Monthly means every 4 weeks (28 days)** unless asked otherwise.

    ``every`` may be another interval ("30 d", "1 month" = 28 d) or ``"calendar"``:
    calendar months counted from ``start_date`` (a :class:`datetime.date` or
    ISO text "2025-01-31"; the day of month is kept, clipped to short months:
    Jan 31 -> Feb 28 -> Mar 31). The phase ends one month after the last dose.
    """
    months = _count(months, "monthly.months")
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


def daily(dose, route, days, times_per_day=1, *, drug=None, label=None, bsa=None, infusion=None) -> Regimen:
    """``times_per_day`` evenly spaced doses a day (every 24/``times_per_day`` h) for ``days`` days."""
    days = _count(days, "daily.days")
    tpd = _count(times_per_day, "daily.times_per_day")
    return _build(dose, route, _Schedule("regular", (0.0,), H_DAY / tpd), until=days * H_DAY, end=days * H_DAY,
                  drug=drug, label=label, bsa=bsa, infusion=infusion)


def on_days(dose, route, days=(1, 8), cycle="21 d", cycles=1, *, drug=None, label=None, bsa=None,
            infusion=None) -> Regimen:
    """Doses on the given days of each cycle (day 1 = the cycle's first day), ``cycles`` cycles.

    ``on_days("30 mg", "ommaya", [1, 8], "21 d", 4)`` gives doses on days 1, 8,
    22, 29, 43, 50, 64, 71; the phase ends after the last cycle (day 85 = 84 d).
    Days may be fractional (day 4.5 = 84 h). A day listed twice is dosed twice.
    """
    c = _hours(cycle, "on_days.cycle")
    cycles = _count(cycles, "on_days.cycles")
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


# --------------------------------------------------------------------------- named regimens

REGIMEN_SOURCES = {
    "methotrexate_it": "Liao et al. 2025 (review of intrathecal therapy for leptomeningeal metastases), citing "
                       "Beauchesne P. Intrathecal chemotherapy for treatment of leptomeningeal dissemination of "
                       "metastatic tumours. Lancet Oncol 2010;11(9):871-9: methotrexate 10-15 mg twice weekly x 4 "
                       "weeks (induction), weekly x 4 weeks (consolidation), then monthly (maintenance)",
    "cytarabine_it": "same schedule as methotrexate_it (Beauchesne, Lancet Oncol 2010;11:871); cytarabine 25-100 mg",
    "thiotepa_it": "same schedule as methotrexate_it (Beauchesne, Lancet Oncol 2010;11:871); thiotepa 10 mg",
    "liposomal_cytarabine": "DepoCyt(e) 50 mg intrathecally every 2 weeks (Glantz et al.; DepoCyt prescribing "
                            "information)",
    "depocyt_label": "label:DepoCyt (cytarabine liposome injection) US prescribing information, Dosage and "
                     "Administration: induction 50 mg every 14 days x 2 (weeks 1, 3); consolidation every 14 days "
                     "x 3 (weeks 5, 7, 9) plus one dose at week 13; maintenance every 28 days x 4 (weeks 17, 21, "
                     "25, 29)",
    "pemetrexed_pan2019": "Pan Z, et al. A pilot phase 1 study of intrathecal pemetrexed for refractory "
                          "leptomeningeal metastases from non-small-cell lung cancer. Front Oncol 2019;9:838. "
                          "doi:10.3389/fonc.2019.00838 (PMID 31544065): twice per week for 2 weeks (induction), "
                          "then once per week for 4 weeks (consolidation); MTD 10 mg",
    "pemetrexed_d1d8": "Li et al. 2023, Clin Lung Cancer: intrathecal pemetrexed via Ommaya reservoir on days 1 and "
                       "8 every 21 days (schedule as given in the project brief; dose not verified here)",
    "osimertinib": "label:TAGRISSO (osimertinib) 80 mg once daily; 160 mg once daily for leptomeningeal "
                   "metastases per Yang JCH et al., BLOOM study, J Clin Oncol 2020;38:538",
    "osimertinib_plus_it_pemetrexed": "Zhong et al., Front Oncol 2024;14:1377451: osimertinib 160 mg daily plus "
                                      "intrathecal pemetrexed 30 mg, 2-3 injections per course every 2-3 months "
                                      "(course structure here is a stated default, see the docstring)",
}


def _methotrexate_schedule(dose, route, maintenance_months, drug, bsa) -> Regimen:
    ind = twice_weekly(dose, route, 4, drug=drug, label="induction", bsa=bsa)
    con = weekly(dose, route, 4, drug=drug, label="consolidation", bsa=bsa)
    reg = ind.then(con)
    if maintenance_months:
        reg = reg.then(monthly(dose, route, _count(maintenance_months, "maintenance_months"), drug=drug,
                               label="maintenance", bsa=bsa))
    return reg


def methotrexate_it(dose="12 mg", route="lumbar", *, maintenance_months=6, bsa=None) -> Regimen:
    """Intrathecal methotrexate 10-15 mg: induction, consolidation, maintenance.

    * induction: twice weekly (Mon/Thu) x 4 weeks: days 1, 4, 8, 11, 15, 18, 22, 25;
    * consolidation: weekly x 4 weeks: days 29, 36, 43, 50;
    * maintenance: monthly (every 28 days) x ``maintenance_months`` from day 57
      (clinically "until progression": give the number of months to simulate;
      0 omits it).

    Source: Liao et al. 2025 review, citing Beauchesne P, Lancet Oncol
    2010;11(9):871-9. Doses are labelled induction/consolidation/maintenance
    and carry ``drug="methotrexate"``.
    """
    return _methotrexate_schedule(dose, route, maintenance_months, "methotrexate", bsa)


def cytarabine_it(dose="50 mg", route="lumbar", *, maintenance_months=6, bsa=None) -> Regimen:
    """Intrathecal (free) cytarabine 25-100 mg on the methotrexate schedule (see :func:`methotrexate_it`).

    Source of the schedule: Beauchesne, Lancet Oncol 2010;11:871 (as for methotrexate). The default
    50 mg is a mid-range choice within 25-100 mg. ``drug="cytarabine"``.
    """
    return _methotrexate_schedule(dose, route, maintenance_months, "cytarabine", bsa)


def thiotepa_it(dose="10 mg", route="lumbar", *, maintenance_months=6, bsa=None) -> Regimen:
    """Intrathecal thiotepa 10 mg on the methotrexate schedule (see :func:`methotrexate_it`).

    Source of the schedule: Beauchesne, Lancet Oncol 2010;11:871. ``drug="thiotepa"``.
    """
    return _methotrexate_schedule(dose, route, maintenance_months, "thiotepa", bsa)


def liposomal_cytarabine(n=6, route="lumbar", *, dose="50 mg") -> Regimen:
    """Liposomal cytarabine (DepoCyt) 50 mg every 2 weeks, ``n`` doses (default 6 = 12 weeks).

    Source: DepoCyt prescribing information and its trials (every 14 days). The
    full label schedule with maintenance is :func:`depocyt_label`.
    ``drug="cytarabine_liposomal"`` (the liposome is handled by the drug, not the route).
    """
    return every(dose, route, "14 d", n, drug="cytarabine_liposomal", label="every 2 weeks")


def depocyt_label(route="lumbar", *, dose="50 mg") -> Regimen:
    """The DepoCyt label schedule for lymphomatous meningitis (10 doses over 29 weeks).

    * induction: 50 mg every 14 days x 2 (weeks 1 and 3: days 1, 15);
    * consolidation: every 14 days x 3 (weeks 5, 7, 9: days 29, 43, 57) plus one
      dose at week 13 (day 85); the phase runs to week 17;
    * maintenance: every 28 days x 4 (weeks 17, 21, 25, 29: days 113, 141, 169, 197);
      ends at day 225 (week 33).

    "Week w" is its first day, day 7(w - 1) + 1. Source: DepoCyt (cytarabine
    liposome injection) US prescribing information, Dosage and Administration.
    """
    drug = "cytarabine_liposomal"
    ind = every(dose, route, "14 d", 2, drug=drug, label="induction")
    con = on_days(dose, route, [1, 15, 29, 57], "12 weeks", 1, drug=drug, label="consolidation")
    mnt = every(dose, route, "28 d", 4, drug=drug, label="maintenance")
    return ind.then(con).then(mnt)


def pemetrexed_pan2019(dose="10 mg", route="lumbar", *, bsa=None) -> Regimen:
    """Intrathecal pemetrexed: twice weekly x 2 weeks, then weekly x 4 weeks.

    Source: Pan Z et al., Front Oncol 2019;9:838 (phase 1; doses escalated from
    10 mg, MTD 10 mg, hence the default; later studies used up to 50 mg).
    Induction on days 1, 4, 8, 11 (Mon/Thu); consolidation on days 15, 22, 29, 36.
    """
    drug = "pemetrexed"
    return twice_weekly(dose, route, 2, drug=drug, label="induction", bsa=bsa).then(
        weekly(dose, route, 4, drug=drug, label="consolidation", bsa=bsa))


def pemetrexed_d1d8(dose="30 mg", route="ommaya", *, cycles=4, bsa=None) -> Regimen:
    """Intrathecal pemetrexed by Ommaya reservoir on days 1 and 8 of 21-day cycles.

    Source: Li et al. 2023, Clin Lung Cancer (schedule). The default 30 mg is
    an assumption inside the 10-50 mg range used for intrathecal pemetrexed.
    """
    return on_days(dose, route, [1, 8], "21 d", cycles, drug="pemetrexed", bsa=bsa)


def osimertinib(dose="80 mg", days=28) -> Regimen:
    """Oral osimertinib once daily (80 mg standard; 160 mg for leptomeningeal disease, BLOOM).

    Source: TAGRISSO label (80 mg daily); Yang JCH et al., J Clin Oncol 2020;38:538 (160 mg in LM).
    """
    return daily(dose, "oral", days, drug="osimertinib", label="daily")


def osimertinib_plus_it_pemetrexed(osimertinib_dose="160 mg", pemetrexed_dose="30 mg", route="lumbar", *,
                                   courses=3, injections_per_course=3, injection_interval="1 week",
                                   course_interval="8 weeks") -> Regimen:
    """Osimertinib 160 mg daily plus courses of intrathecal pemetrexed 30 mg.

    Zhong et al. (Front Oncol 2024;14:1377451) gave 2-3 intrathecal pemetrexed
    injections per course, a course every 2-3 months. **Defaults chosen here:**
    3 injections one week apart per course (days 1, 8, 15 of the course),
    a course every 8 weeks ("2 months" = 2 x 28 days), 3 courses; osimertinib
    daily from day 1 through the end of the last course interval
    (``courses`` x ``course_interval``). Pemetrexed doses are labelled
    "course k", osimertinib doses "daily".
    """
    ci = _hours(course_interval, "course_interval")
    ii = _hours(injection_interval, "injection_interval")
    courses = _count(courses, "courses")
    n_inj = _count(injections_per_course, "injections_per_course")
    if (n_inj - 1) * ii >= ci:
        raise DosingError("injection_interval", injection_interval,
                          "the injections of a course must fit inside the course interval")
    total = courses * ci
    if total % H_DAY:
        raise DosingError("course_interval", course_interval, "must be a whole number of days")
    osi = daily(osimertinib_dose, "oral", int(total / H_DAY), drug="osimertinib", label="daily")
    it = Regimen()
    for k in range(courses):
        c = every(pemetrexed_dose, route, ii, n_inj, drug="pemetrexed", label=f"course {k + 1}")
        it = it + Regimen(c.doses, end=ci, origin=0.0).shift(k * ci)
    return osi + it


NAMED_REGIMENS = {
    "methotrexate_it": methotrexate_it,
    "cytarabine_it": cytarabine_it,
    "thiotepa_it": thiotepa_it,
    "liposomal_cytarabine": liposomal_cytarabine,
    "depocyt_label": depocyt_label,
    "pemetrexed_pan2019": pemetrexed_pan2019,
    "pemetrexed_d1d8": pemetrexed_d1d8,
    "osimertinib": osimertinib,
    "osimertinib_plus_it_pemetrexed": osimertinib_plus_it_pemetrexed,
}


def named_regimen(name: str, **kwargs) -> Regimen:
    """A named clinical regimen by name (see :data:`NAMED_REGIMENS`; sources in :data:`REGIMEN_SOURCES`)."""
    check_choice("regimen name", name, sorted(NAMED_REGIMENS), DosingError)
    return NAMED_REGIMENS[name](**kwargs)


# --------------------------------------------------------------------------- BSA and age

def bsa(height_cm, weight_kg, method: str = "mosteller"):
    """Body-surface area (m²) from height (cm) and weight (kg); vectorised over arrays.

    * ``"mosteller"`` (default): sqrt(height x weight / 3600) -- Mosteller RD.
      Simplified calculation of body-surface area. N Engl J Med 1987;317(17):1098 (PMID 3657876).
    * ``"dubois"``: 0.007184 x weight^0.425 x height^0.725 -- Du Bois D, Du Bois EF. A formula
      to estimate the approximate surface area if height and weight be known. Arch Intern Med
      1916;17:863-71.

    Returns a float for scalar inputs, else an ndarray (broadcast).
    """
    h = check_array("height_cm", height_cm, positive=True, error=DosingError)
    w = check_array("weight_kg", weight_kg, positive=True, error=DosingError)
    if np.any(h < 20) or np.any(h > 300):
        bad = h[(h < 20) | (h > 300)].flat[0] if h.ndim else float(h)
        raise DosingError("height_cm", float(bad), "must be a height in cm between 20 and 300",
                          "give the height in cm, not m" if bad < 20 else None)
    if np.any(w > 500):
        raise DosingError("weight_kg", float(np.max(w)), "must be a weight in kg (<= 500)")
    m = str(method).strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    m = {"dubois": "dubois", "duboisdubois": "dubois", "mosteller": "mosteller"}.get(m, m)
    check_choice("bsa.method", m, ["mosteller", "dubois"], DosingError)
    if m == "mosteller":
        from pkcsf.clinical.population import bsa_mosteller

        out = bsa_mosteller(h, w)
    else:
        out = 0.007184 * w ** 0.425 * h ** 0.725
    return float(out) if np.ndim(out) == 0 else out


_bsa_from = bsa


def dose_per_bsa(mg_per_m2, bsa=None, *, field: str = "dose"):
    """A per-m² dose as mg (``bsa`` in m² given) or as the per-subject expression ``"<x> * BSA"``.

    ``bsa=None`` or ``bsa="BSA"`` gives the expression: each subject's dose is
    then read from the population's ``BSA`` column.
    """
    x = float(mg_per_m2)
    if not math.isfinite(x) or x <= 0:
        raise DosingError(field, mg_per_m2, "a per-m2 dose must be > 0 mg/m2")
    if bsa is None or (isinstance(bsa, str) and bsa == "BSA"):
        return f"{_num(x)} * BSA"
    if isinstance(bsa, bool) or not isinstance(bsa, (int, float, np.integer, np.floating)):
        raise DosingError("bsa", bsa, "must be a body-surface area in m² (a number) or 'BSA' (the population column)")
    if not math.isfinite(bsa) or not 0.05 <= bsa <= 5:
        raise DosingError("bsa", bsa, "must be a body-surface area between 0.05 and 5 m²")
    return x * float(bsa)


#: Drugs with an age-based intrathecal dose table.
AGE_BASED_DRUGS = ("methotrexate", "cytarabine")
_DRUG_ALIASES = {"mtx": "methotrexate", "ara-c": "cytarabine", "arac": "cytarabine", "cytosine arabinoside": "cytarabine",
                 "depocyt": "cytarabine_liposomal", "depocyte": "cytarabine_liposomal",
                 "liposomal_cytarabine": "cytarabine_liposomal", "liposomal cytarabine": "cytarabine_liposomal",
                 "cytarabine liposomal": "cytarabine_liposomal"}


@lru_cache(maxsize=1)
def _age_tables():
    from pkcsf.clinical.parameters import load_parameter_set

    ps = load_parameter_set("age_based_intrathecal", kind="dosing")
    tables = {}
    for drug, spec in ps.options.get("tables", {}).items():
        edges = [ps.values[k] for k in spec["age_edges"]]
        doses = [ps.values[k] for k in spec["doses"]]
        tables[drug] = (tuple(edges), tuple(doses), tuple(spec["routes"]), tuple(spec.get("band_labels", ())),
                        spec.get("table_source", ""))
    return ps, tables


def _age_drug(drug, field="drug") -> str:
    d = str(drug).strip().lower() if drug is not None else ""
    d = _DRUG_ALIASES.get(d, d)
    if d == "cytarabine_liposomal":
        raise DosingError(field, drug, "liposomal cytarabine has no age-based table (adults: 50 mg; the label does "
                                       "not recommend it in children)")
    check_choice(field, d, AGE_BASED_DRUGS, DosingError)
    return d


def age_based_dose(drug, age, route="lumbar"):
    """Age-based intrathecal dose (mg) for ``drug`` at ``age`` (years; scalar or array).

    Bands are completed years: < 1, 1 to < 2, 2 to < 3, >= 3 y. Tables and their
    sources: ``parameters/dosing/age_based_intrathecal.toml`` (methotrexate
    6/8/10/12 mg, the regimen of Bleyer et al. 1983, PMID 6366138; cytarabine
    20/30/50/70 mg). Most numbers could not be verified in the primary tables and
    are marked ``assumption`` there; see :func:`age_based_table`.
    """
    d = _age_drug(drug)
    r = normalize_route(route)
    _, tables = _age_tables()
    edges, doses, routes, _, _ = tables[d]
    if r not in routes:
        raise DosingError("route", route, "age-based doses are intrathecal; allowed routes: " + ", ".join(routes))
    a = check_array("age", age, nonnegative=True, error=DosingError)
    if np.any(a > 130):
        raise DosingError("age", float(np.max(a)), "must be an age in years (0-130)")
    idx = np.searchsorted(np.array([e.value for e in edges]), a, side="right")
    out = np.array([v.value for v in doses])[idx]
    return float(out) if np.ndim(out) == 0 else out


def age_dose_column(drug) -> str:
    """Name of the per-subject column holding the age-based dose of ``drug`` (e.g.
    ``"AGEDOSE_METHOTREXATE"``): a regimen parsed with ``age="AGE"`` doses each
    subject by this column, which :mod:`pkcsf.clinical.scenario` fills from the
    subject's ``AGE`` with :func:`age_based_dose`."""
    return "AGEDOSE_" + _age_drug(drug).upper()


def age_based_table(drug):
    """The age-based table of ``drug`` as a DataFrame: age_from, age_to (y), dose_mg, source, where, note."""
    import pandas as pd

    d = _age_drug(drug)
    ps, tables = _age_tables()
    edges, doses, routes, labels, _ = tables[d]
    lo = [0.0] + [e.value for e in edges]
    hi = [e.value for e in edges] + [math.inf]
    rows = [{"band": labels[i] if i < len(labels) else "", "age_from": lo[i], "age_to": hi[i], "dose_mg": v.value,
             "source": v.source, "where": v.where, "note": v.note} for i, v in enumerate(doses)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- text: errors

class RegimenTextError(DosingError):
    """A regimen text could not be parsed; names the offending fragment and the phase it is in."""

    def __init__(self, fragment: str, text: str, problem: str, allowed: str = "", fix: str | None = None):
        self.fragment = fragment
        self.text = text
        self.problem = problem
        super().__init__("regimen text", fragment, (problem + ("; " + allowed if allowed else "")), fix)
        msg = f"regimen text: {problem}: {fragment!r} in {text!r}"
        if allowed:
            msg += f"; {allowed}"
        if fix:
            msg += f" ({fix})"
        self.args = (msg,)


# --------------------------------------------------------------------------- text: grammar

_KNOWN_DRUGS = ("methotrexate", "cytarabine", "cytarabine_liposomal", "pemetrexed", "thiotepa", "osimertinib",
                "topotecan", "etoposide", "trastuzumab", "rituximab", "hydrocortisone", "dexamethasone")
_FREQ_WORDS = ["once", "daily", "once daily", "twice daily", "three times daily", "weekly", "twice weekly",
               "monthly", "every", "every other day", "fortnightly", "on days", "bid", "tid", "qd"]
_ROUTE_WORDS = list(ROUTES) + list(ROUTE_ALIASES)
_DUR_UNITS = r"doses?|injections?|administrations?|times|cycles?|courses?|weeks?|wks?|w|days?|d|hours?|hrs?|h|months?|mo"
_W = r"(?![\w])"    # end of word


def _known_drugs() -> set[str]:
    names = set(_KNOWN_DRUGS)
    try:
        from pkcsf.clinical.parameters import available_parameter_sets

        names |= set(available_parameter_sets("drugs"))
    except Exception:  # pragma: no cover - a broken search path must not break parsing
        pass
    return names


@dataclass
class _Phase:
    text: str
    label: str | None = None
    rest: float | None = None
    amount: tuple | None = None
    drug: str | None = None
    route: str | None = None
    infusion: float | None = None
    sched: _Schedule | None = None
    count: int | None = None
    until: float | None = None
    cycles: int | None = None


class _Cursor:
    def __init__(self, text: str, phase: str):
        self.s = text
        self.pos = 0
        self.phase = phase

    def ws(self):
        while self.pos < len(self.s) and self.s[self.pos].isspace():
            self.pos += 1

    def match(self, pattern: str):
        self.ws()
        m = re.compile(pattern, re.I).match(self.s, self.pos)
        if m:
            self.pos = m.end()
        return m

    def peek(self, pattern: str):
        self.ws()
        return re.compile(pattern, re.I).match(self.s, self.pos)

    def word(self, offset_words: int = 0):
        self.ws()
        rest = self.s[self.pos:].split()
        return rest[offset_words] if len(rest) > offset_words else None

    def at_end(self) -> bool:
        self.ws()
        return self.pos >= len(self.s)

    def rest(self) -> str:
        self.ws()
        return self.s[self.pos:]

    def error(self, fragment, problem, allowed="", fix=None):
        raise RegimenTextError(fragment, self.phase, problem, allowed, fix)


def _time_unit_hours(unit: str, cur: _Cursor, fragment: str) -> float:
    u = unit.lower()
    if u not in _TIME_UNITS:
        cur.error(fragment, "unknown time unit", "use h, days, weeks or months (= 28 days)")
    return _TIME_UNITS[u]


def _positive(x: float, cur: _Cursor, fragment: str, what: str) -> float:
    if not math.isfinite(x) or x <= 0:
        cur.error(fragment, f"{what} must be > 0")
    return x


def _parse_schedule(cur: _Cursor) -> _Schedule | None:
    """Match a frequency at the cursor; None if there is none."""
    start = cur.pos
    m = cur.match(r"(on\s+days?|at\s+hours?)\s+")
    if m:
        by_day = m.group(1).lower().startswith("on")
        what = "on days" if by_day else "at hours"
        example = "'on days 1 and 8 every 21 days'" if by_day else "'at hours 0 and 6 every 24 h'"
        days = []
        m = cur.match(rf"({_NUM})")
        if not m:
            cur.error(cur.rest() or cur.s[start:], f"'{what}' needs numbers", fix=f"e.g. {example}")
        days.append(m.group(1))
        while True:
            m = cur.match(rf"(?:,\s*and|,|and|&)\s*({_NUM})")
            if not m:
                break
            days.append(m.group(1))
        m = cur.match(rf"(?:every|q)\s*({_NUM})\s*[- ]?\s*([a-z]+){_W}(?:\s+cycles?{_W})?")
        if not m:
            cur.error(cur.s[start:cur.pos].strip() + " " + (cur.word() or ""),
                      f"'{what} ...' needs the cycle length", fix=f"e.g. {example}")
        frag = m.group(0)
        c = _positive(float(m.group(1)), cur, frag, "the cycle length") * _time_unit_hours(m.group(2), cur, frag)
        vals = []
        for d in days:
            x = float(d)
            if by_day and (not math.isfinite(x) or x < 1):
                cur.error(d, "days are numbered from 1 (day 1 = first day of the cycle)")
            if not by_day and (not math.isfinite(x) or x < 0):
                cur.error(d, "hours are counted from 0 (the start of the cycle)")
            h = (x - 1) * H_DAY if by_day else x
            if h >= c:
                cur.error(d, f"{'day' if by_day else 'hour'} {d} lies outside a cycle of {_cycle_text(c)}")
            vals.append(x)
        vals.sort()
        if by_day:
            return _Schedule("on_days", tuple((x - 1) * H_DAY for x in vals), c, tuple(vals))
        return _Schedule("on_hours", tuple(vals), c, tuple(vals))
    table = [
        (r"(?:once\s+(?:a\s+|per\s+)?day|once\s+daily|daily|every\s+day|q\.?d\.?|od|q24h)", 24.0),
        (r"(?:twice\s+(?:a\s+|per\s+)?day|twice\s+daily|bid|b\.i\.d\.?|q12h)", 12.0),
        (r"(?:(?:three\s+times|thrice)\s+(?:a\s+|per\s+)?day|(?:three\s+times|thrice)\s+daily|tid|t\.i\.d\.?|q8h)", 8.0),
        (r"(?:four\s+times\s+(?:a\s+|per\s+)?day|four\s+times\s+daily|qid|q\.i\.d\.?|q6h)", 6.0),
        (r"(?:twice\s+(?:a\s+|per\s+)?week|twice\s+weekly|two\s+times\s+(?:a\s+|per\s+)?week|biw)", "twice_weekly"),
        (r"(?:once\s+(?:a\s+|per\s+)?week|once\s+weekly|weekly|every\s+week|qw|q1w)", H_WEEK),
        (r"(?:once\s+(?:a\s+|per\s+)?month|once\s+monthly|monthly|every\s+month|q4w)", H_MONTH),
        (r"(?:every\s+other\s+day|qod)", 48.0),
        (r"(?:every\s+other\s+week|fortnightly)", 336.0),
    ]
    for pattern, val in table:
        if cur.match(pattern + _W):
            if val == "twice_weekly":
                return _Schedule("twice_weekly", (0.0, 72.0), H_WEEK)
            return _Schedule("regular", (0.0,), val)
    m = cur.peek(r"bi-?weekly|bi-?monthly")
    if m:
        cur.error(m.group(0), "ambiguous frequency", fix="write 'twice weekly' or 'every 2 weeks' "
                  "('twice monthly' is not in the grammar: use 'every 2 weeks' or 'every 14 days')")
    m = cur.match(rf"({_NUM})\s+times\s+(?:a\s+|per\s+)?(day|daily|week|weekly){_W}")
    if m:
        n = _positive(float(m.group(1)), cur, m.group(0), "the number of times")
        if n != int(n):
            cur.error(m.group(0), "the number of times must be whole")
        if m.group(2).lower().startswith("day") or m.group(2).lower() == "daily":
            return _Schedule("regular", (0.0,), H_DAY / n)
        if n == 1:
            return _Schedule("regular", (0.0,), H_WEEK)
        if n == 2:
            return _Schedule("twice_weekly", (0.0, 72.0), H_WEEK)
        cur.error(m.group(0), "only once or twice weekly are in the text grammar",
                  fix="use pkcsf.clinical.regimens.twice_weekly(..., days=('Mon', 'Wed', 'Fri')) for other weekdays")
    m = cur.match(rf"q\s*({_NUM})\s*(h|d|w){_W}")
    if m:
        return _Schedule("regular", (0.0,), _positive(float(m.group(1)), cur, m.group(0), "the interval")
                         * _TIME_UNITS[m.group(2).lower()])
    m = cur.match(rf"every\s+({_NUM})")
    if m:
        mu = re.compile(rf"\s*([a-z]+){_W}", re.I).match(cur.s, cur.pos)
        if not mu or mu.group(1).lower() not in _TIME_UNITS:
            cur.error(m.group(0), "the interval needs a time unit", "h, days, weeks or months (= 28 days)",
                      f"e.g. 'every {m.group(1)} weeks'")
        cur.pos = mu.end()
        frag = m.group(0) + mu.group(0)
        dt = _positive(float(m.group(1)), cur, frag, "the interval")
        return _Schedule("regular", (0.0,), dt * _TIME_UNITS[mu.group(1).lower()])
    if cur.match(r"(?:once|single\s+dose|one\s+dose|stat)" + _W):
        return _Schedule("once", (0.0,), None)
    if cur.peek(r"every" + _W):
        cur.error(" ".join(cur.rest().split()[:2]), "unknown frequency",
                  "write 'every N days', 'every N weeks', 'every day', 'every week', 'every other day'")
    return None


def _unknown_frequency(cur: _Cursor, word: str):
    guess = suggest(word.lower(), _FREQ_WORDS)
    cur.error(word, "unknown frequency",
              "allowed: once, daily, twice daily, three times daily, weekly, twice weekly, monthly (= 28 days), "
              "every N h/days/weeks, every other day, q12h/q2w, on days 1 and 8 every 21 days",
              f"did you mean {guess!r}?" if guess else None)


def _restore(text: str, quoted: list) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: quoted[int(m.group(1))], text)


def _parse_phase(text: str, drugs: set[str], quoted: list) -> _Phase:
    shown = _restore(text, quoted).strip()
    cur = _Cursor(text, shown)
    ph = _Phase(shown)
    if not text.strip():
        cur.error(text, "empty phase", fix="remove the extra 'then' or ','")
    # rest phase: "rest for 2 weeks"
    m = cur.match(r"(?:rest|pause|break|off\s+treatment)" + _W)
    if m:
        cur.match(r"(?:for|x)" + _W)
        m2 = cur.match(rf"({_NUM})\s*([a-z]+){_W}")
        if not m2:
            cur.error(cur.rest() or text.strip(), "a rest needs a duration", fix="e.g. 'rest for 2 weeks'")
        h = _positive(float(m2.group(1)), cur, m2.group(0), "a rest") * _time_unit_hours(m2.group(2), cur, m2.group(0))
        if not cur.at_end():
            cur.error(cur.rest(), "unexpected text after a rest")
        ph.rest = h
        return ph
    # label: "induction: ..."
    m = cur.match(r"(\x00\d+\x00|[A-Za-z][^:\x00]*?)\s*:")
    if m:
        ph.label = _restore(m.group(1), quoted).strip()
        if m.group(1).startswith("\x00"):
            ph.label = ph.label[1:-1]
    # amount
    if cur.match(r"age[- ]?based" + _W):
        ph.amount = ("age",)
    else:
        m = cur.peek(rf"({_NUM})(?!\s*times{_W})")      # '2 times daily' is a frequency, not a dose
        if m:
            cur.pos = m.end()
            num_text = m.group(1)
            x = float(num_text)
            mu = re.compile(r"\s*([A-Za-zµμ][\w/^²µμ]*)").match(cur.s, cur.pos)
            unit = mu.group(1) if mu else ""
            frag = (num_text + " " + unit).strip()
            if not unit or unit.lower() in _ROUTE_WORDS or unit.lower() in drugs:
                cur.error(num_text, "the dose has no unit", "amount units: mg, g, ug, mg/m2",
                          f"write e.g. '{num_text} mg'")
            cur.pos = mu.end()
            if unit.lower() in _PER_BSA_UNITS:
                kind = "mg/m2"
                val = x
            elif unit in UNITS and UNITS[unit][0] == "amount" and not UNITS[unit][2]:
                kind, val = "mg", x * UNITS[unit][1]
            elif unit in UNITS and UNITS[unit][0] == "amount":
                cur.error(frag, "molar amounts need the molecular weight", fix="give the dose in mg")
            elif unit in UNITS:
                cur.error(frag, f"an amount unit is expected, not a {UNITS[unit][0]} ({unit})",
                          "amount units: mg, g, ug, mg/m2")
            else:
                cur.error(frag, "unknown dose unit", "amount units: mg, g, ug, mg/m2")
            if not math.isfinite(x) or x <= 0:
                cur.error(frag, "the dose must be > 0")
            ph.amount = (kind, val)
    # drug, route
    while True:
        w = cur.word()
        if w is None:
            break
        lw = w.lower().rstrip(",")
        if lw in ("via", "by"):
            cur.match(r"(?:via|by)" + _W)
            continue
        if ph.drug is None and ph.route is None and (lw in drugs or lw in _DRUG_ALIASES):
            cur.pos = cur.s.index(w, cur.pos) + len(w)
            ph.drug = _DRUG_ALIASES.get(lw, lw)
            continue
        if ph.route is None and lw in _ROUTE_WORDS:
            cur.pos = cur.s.index(w, cur.pos) + len(w)
            ph.route = normalize_route(lw)
            continue
        if cur.peek(r"(?:x|×|for|over)" + _W) or cur.peek(r"on\s+days?" + _W):
            break
        save = cur.pos
        sched = _parse_schedule(cur)
        cur.pos = save
        if sched is not None:
            break
        # an unknown word: a misspelt route, a misspelt frequency or a drug name
        nxt = (cur.word(1) or "").lower()
        rguess = suggest(lw, _ROUTE_WORDS)
        if ph.route is None and rguess:
            cur.error(w, "unknown route", "allowed routes: " + ", ".join(ROUTES) + " (also " +
                      ", ".join(ROUTE_ALIASES) + ")", f"did you mean {rguess!r}?")
        if suggest(lw, _FREQ_WORDS):
            _unknown_frequency(cur, w)
        if ph.route is None and ph.drug is None and nxt in _ROUTE_WORDS and re.fullmatch(r"[a-z][\w\-]*", lw):
            cur.pos = cur.s.index(w, cur.pos) + len(w)
            ph.drug = lw
            continue
        if ph.route is None and (nxt and re.match(r"(?:once|daily|twice|weekly|monthly|every|on|q\d|bid|tid)", nxt)):
            cur.error(w, "unknown route", "allowed routes: " + ", ".join(ROUTES) + " (also " +
                      ", ".join(ROUTE_ALIASES) + ")")
        _unknown_frequency(cur, w)
    # infusion
    m = cur.match(rf"over\s+({_NUM})\s*([a-z]+){_W}")
    if m:
        ph.infusion = _positive(float(m.group(1)), cur, m.group(0), "an infusion duration") * \
            ({"min": 1 / 60, "mins": 1 / 60, "minute": 1 / 60, "minutes": 1 / 60}.get(m.group(2).lower())
             or _time_unit_hours(m.group(2), cur, m.group(0)))
    # schedule
    sched = _parse_schedule(cur)
    if sched is None:
        if cur.at_end() or cur.peek(r"(?:x|×|for)" + _W):
            cur.error(text.strip(), "missing frequency", "e.g. 'weekly', 'twice weekly', 'every 2 weeks', "
                      "'daily', 'monthly', 'once', 'on days 1 and 8 every 21 days'")
        _unknown_frequency(cur, cur.word())
    ph.sched = sched
    # duration
    m = cur.match(r"(?:x|×|for)" + _W)
    if m:
        if cur.peek(r"until" + _W):
            cur.error(cur.rest(), "an open-ended duration cannot be simulated",
                      fix="give a number of doses or a time, e.g. 'x 6' or 'for 6 months'")
        m2 = cur.match(rf"({_NUM})\s*(?:({_DUR_UNITS}){_W})?")
        if not m2:
            cur.error(cur.rest() or text.strip(), "the duration needs a number", fix="e.g. 'x 4 weeks' or 'x 6'")
        frag = m2.group(0).strip()
        x = float(m2.group(1))
        unit = (m2.group(2) or "").lower()
        if sched.kind == "once":
            cur.error(frag, "'once' takes no duration", fix="remove it, or write e.g. 'every 2 weeks x 1'")
        if not math.isfinite(x) or x <= 0:
            cur.error(frag, "the duration must be > 0")
        if unit in ("", "dose", "doses", "injection", "injections", "administration", "administrations", "times",
                    "cycle", "cycles", "course", "courses"):
            if x != int(x):
                cur.error(frag, "a number of doses or cycles must be whole")
            cyclic = sched.kind in ("on_days", "on_hours")
            if unit.startswith(("cycle", "course")) and not cyclic:
                cur.error(frag, "'cycles' needs an 'on days ... every ...' schedule", fix="count doses: 'x N'")
            if cyclic and (unit == "" or unit.startswith(("cycle", "course"))):
                ph.cycles = int(x)
            else:
                ph.count = int(x)
        else:
            ph.until = x * _TIME_UNITS[unit]
    elif sched.kind != "once":
        if cur.peek(r"until" + _W):
            cur.error(cur.rest(), "an open-ended duration cannot be simulated",
                      fix="give a number of doses or a time, e.g. 'x 6' or 'for 6 months'")
        fix = "add 'x N cycles'" if sched.kind in ("on_days", "on_hours") else "add 'x N' (N doses) or 'for N weeks'"
        cur.error(text.strip(), "missing duration", fix=fix)
    if not cur.at_end():
        rest = cur.rest()
        fix = "separate phases with ', then' and overlaid regimens with '+'" if rest.startswith(",") else None
        cur.error(rest, "unexpected text", fix=fix)
    return ph


_SPLIT_ITEMS = re.compile(r"(?<![eE])\+")
_SPLIT_PHASES = re.compile(r"\s*,?\s*\bthen\b\s*,?\s*", re.I)


def _normalise_text(text: str) -> str:
    t = text.replace("×", " x ").replace("&", " and ").replace("\u00a0", " ")
    t = re.sub(r"\b(liposomal\s+cytarabine|cytarabine\s+liposomal|liposomal_cytarabine)\b", "cytarabine_liposomal",
               t, flags=re.I)
    t = re.sub(r"\b(x)(\d)", r"\1 \2", t)
    return " ".join(t.split())


def parse_regimen(text: str, drug: str | None = None, bsa=None, age=None, *, height_cm=None,
                  weight_kg=None) -> Regimen:
    """Read a regimen written as a clinician would (grammar in docs/regimens.md).

    Examples::

        parse_regimen("12 mg ommaya twice weekly x 4 weeks, then weekly x 4 weeks, then monthly x 6")
        parse_regimen("30 mg ommaya on days 1 and 8 every 21 days x 4 cycles")
        parse_regimen("160 mg oral once daily for 8 weeks + 30 mg lumbar weekly x 3")
        parse_regimen("12 mg/m2 lumbar once", bsa=1.7)
        parse_regimen("age-based methotrexate lumbar twice weekly x 2 weeks", age=2)

    Parameters
    ----------
    text : str
        ``item + item ...``; an item is ``[from day N,] phase, then phase, ...``;
        a phase is ``[label:] [dose] [drug] [route] frequency duration`` or
        ``rest for <time>``. A phase without its own dose, drug or route
        inherits them from the previous phase of its item.
    drug : str, optional
        Drug of the doses that name none (and of "age-based" doses).
    bsa : float or "BSA", optional
        Body-surface area (m²) for mg/m2 doses; ``"BSA"`` keeps them as the
        per-subject expression ``"<x> * BSA"`` (the population's BSA column).
    age : float or "AGE", optional
        Age in years, for "age-based" doses; ``"AGE"`` doses each subject of a
        population by its own age (the amount becomes the per-subject column
        :func:`age_dose_column`, filled by the scenario from ``AGE``).
    height_cm, weight_kg : float, optional
        Alternative to ``bsa`` (Mosteller formula, :func:`bsa`).

    Raises
    ------
    RegimenTextError (a DosingError, a ValueError)
        Naming the offending fragment and the phase; nothing is returned half-parsed.
    """
    if not isinstance(text, str) or not text.strip():
        raise RegimenTextError(str(text), str(text), "empty regimen text",
                               fix="e.g. '12 mg lumbar twice weekly x 4 weeks'")
    if bsa is None and (height_cm is not None or weight_kg is not None):
        if height_cm is None or weight_kg is None:
            raise DosingError("height_cm/weight_kg", (height_cm, weight_kg), "give both height_cm and weight_kg")
        bsa = _bsa_from(height_cm, weight_kg)
    drugs = _known_drugs()
    ctx_drug = None if drug is None else _DRUG_ALIASES.get(str(drug).lower(), str(drug).lower())
    quoted: list[str] = []

    def _hide(m):
        quoted.append(m.group(0))
        return f"\x00{len(quoted) - 1}\x00"

    norm = _normalise_text(re.sub(r'"[^"]*"|\'[^\']*\'', _hide, text))
    if re.search(r'["\']', norm):
        raise RegimenTextError(text, text, "unbalanced quote", fix="quote a label as \"my label\": ...")
    items = []
    for item_text in _SPLIT_ITEMS.split(norm):
        item_text = item_text.strip()
        if not item_text:
            raise RegimenTextError(text, text, "empty item around '+'", fix="remove the extra '+'")
        start = 0.0
        m = re.match(rf"from\s+day\s+({_NUM})\s*[,:]?\s*", item_text, re.I)
        if m:
            day = float(m.group(1))
            if not math.isfinite(day) or day < 1:
                raise RegimenTextError(m.group(0).strip(), _restore(item_text, quoted), "days are numbered from 1")
            start = (day - 1) * H_DAY
            item_text = item_text[m.end():]
        phases = [_parse_phase(p, drugs, quoted) for p in _SPLIT_PHASES.split(item_text)]
        items.append((start, phases, _restore(item_text, quoted)))
    # everything parsed: now build (errors here are about missing inherited values)
    total = None
    for start, phases, item_text in items:
        reg = None
        prev = None          # (amount, drug, route, infusion) of the previous dosing phase
        prev_once = False
        for ph in phases:
            if ph.rest is not None:
                r = Regimen([], end=ph.rest, origin=0.0)
                prev_once = False
            else:
                if prev_once:
                    raise RegimenTextError(ph.text, item_text, "a phase right after 'once' would start at the time "
                                           "of that dose", fix="insert 'rest for <time>' before it, or use '+' "
                                           "to give both at the same time")
                amount, drug_i, route, infusion = _resolve(ph, prev, ctx_drug, bsa, age, drugs)
                r = _make_phase(amount, route, ph.sched, count=ph.count,
                                until=(ph.until if ph.cycles is None else ph.cycles * ph.sched.period),
                                end=(0.0 if ph.sched.kind == "once" else None), label=ph.label, drug=drug_i,
                                duration=infusion)
                prev = (amount, drug_i, route, infusion)
                prev_once = ph.sched.kind == "once"
            reg = r if reg is None else reg.then(r)
        if not reg.doses:
            raise RegimenTextError(item_text, item_text, "no doses (only rests)")
        if start:
            reg = reg.shift(start)
        total = reg if total is None else total + reg
    return total


def _resolve(ph: _Phase, prev, ctx_drug, bsa_value, age, drugs):
    if ph.amount is None:
        if prev is None:
            raise RegimenTextError(ph.text, ph.text, "missing dose", fix="start the first phase with a dose, e.g. '12 mg'")
        amount, drug_i, route_prev, infusion = prev
        route = ph.route or route_prev
        return amount, (ph.drug or drug_i), route, (ph.infusion if ph.infusion is not None else infusion)
    route = ph.route or (prev[2] if prev else None)
    if route is None:
        raise RegimenTextError(ph.text, ph.text, "missing route", "allowed routes: " + ", ".join(ROUTES),
                               "e.g. '12 mg lumbar weekly x 4'")
    drug_i = ph.drug or (prev[1] if prev else None) or ctx_drug
    kind = ph.amount[0]
    if kind == "mg":
        amount = ph.amount[1]
    elif kind == "mg/m2":
        if bsa_value is None:
            raise RegimenTextError(f"{_num(ph.amount[1])} mg/m2", ph.text, "a dose per m2 needs the body-surface area",
                                   fix="pass bsa=<m2>, or height_cm and weight_kg, or bsa='BSA' to read each "
                                       "subject's BSA column")
        try:
            amount = dose_per_bsa(ph.amount[1], bsa_value)
        except DosingError as exc:
            raise RegimenTextError(f"{_num(ph.amount[1])} mg/m2", ph.text, str(exc)) from None
    else:
        if age is None:
            raise RegimenTextError("age-based", ph.text, "an age-based dose needs the age",
                                   fix="pass age=<years> (e.g. parse_regimen(text, age=2)), or age='AGE' to "
                                       "read each subject's AGE column")
        if drug_i is None:
            raise RegimenTextError("age-based", ph.text, "an age-based dose needs the drug",
                                   "drugs with age-based tables: " + ", ".join(AGE_BASED_DRUGS),
                                   "name it ('age-based methotrexate lumbar ...') or pass drug=...")
        try:
            if isinstance(age, str) and age == "AGE":
                age_based_dose(drug_i, 18.0, route)          # checks the drug and the route
                return age_dose_column(drug_i), drug_i, route, ph.infusion
            amount = age_based_dose(drug_i, age, route)
        except DosingError as exc:
            raise RegimenTextError("age-based", ph.text, str(exc)) from None
        if not isinstance(amount, float):
            raise RegimenTextError("age-based", ph.text, "age must be a single number here",
                                   fix="for a population, build one regimen per age band")
    return amount, drug_i, route, ph.infusion


# --------------------------------------------------------------------------- text: describe

@dataclass
class _Group:
    key: tuple
    t0: float
    offs: list
    order: int

    @property
    def last(self) -> float:
        return self.offs[-1]


def _amount_text(a) -> str:
    if isinstance(a, float):
        return f"{_num(a)} mg"
    m = _BSA_EXPR.match(a)
    if m:
        return f"{_num(float(m.group(1)))} mg/m2"
    if a.startswith("AGEDOSE_"):
        return "age-based"
    raise DosingError("describe_regimen", a, "only amounts in mg or '<x> * BSA' (mg/m2) can be written as text")


def _analyse(offs):
    """(schedule, count form) for offsets from 0: regular, twice weekly, periodic on-days or None."""
    n = len(offs)
    if n == 1:
        return _Schedule("once", (0.0,), None), None
    diffs = [b - a for a, b in zip(offs, offs[1:])]
    if all(d == diffs[0] for d in diffs) and diffs[0] > 0:
        return _Schedule("regular", (0.0,), diffs[0]), n
    tw = _Schedule("twice_weekly", (0.0, 72.0), H_WEEK)
    if tw.offsets(n)[0] == list(offs):
        return tw, n
    for p in range(2, n // 2 + 1):
        if n % p:
            continue
        c = offs[p] - offs[0]
        if c > offs[p - 1] and all(offs[i + p] - offs[i] == c for i in range(n - p)):
            return _cyclic(offs[:p], c), n // p
    return None, None


def _cyclic(offs, c) -> _Schedule:
    """'on days ...' when every offset is an exact day number, else 'at hours ...'."""
    days = tuple(round(o / H_DAY + 1, 6) for o in offs)
    if all((d - 1) * H_DAY == o for d, o in zip(days, offs)):
        return _Schedule("on_days", tuple(offs), c, days)
    return _Schedule("on_hours", tuple(offs), c, tuple(offs))


def _plan(g: _Group, target):
    """Schedule text, duration text, rest after (h) for a group whose phase should end at ``target`` (relative)."""
    offs = g.offs
    sched, cnt = _analyse(offs)
    if sched is not None and sched.kind == "once":
        rest = target if target is not None and target > 0 else 0.0
        return sched.text(), "", 0.0, rest
    if sched is None:     # irregular: one cycle holding every dose
        c = target if (target is not None and target > offs[-1]) else (math.floor(offs[-1] / H_DAY) + 1) * H_DAY
        sched = _cyclic(offs, c)
        return sched.text(), "x 1 cycle", c, 0.0
    if sched.kind in ("on_days", "on_hours"):
        natural = cnt * sched.period
        dur = f"x {cnt} cycle" + ("" if cnt == 1 else "s")
    else:
        n = cnt
        natural = sched.offsets(n)[1]
        dt = sched.period
        if sched.kind == "twice_weekly":
            dur = f"x {n // 2} weeks" if n % 2 == 0 else f"x {n}"
            if n == 2:
                dur = "x 1 week"
        elif dt <= H_DAY and H_DAY / dt == int(H_DAY / dt):
            tpd = int(H_DAY / dt)
            if n % tpd == 0:
                days = n // tpd
                dur = f"for {days // 7} weeks" if days % 7 == 0 and days > 28 else f"x {days} day" + ("" if days == 1 else "s")
            else:
                dur = f"x {n}"
        elif dt == H_WEEK:
            dur = f"x {n} week" + ("" if n == 1 else "s")
        else:
            dur = f"x {n}"
    rest = 0.0
    if target is not None and target != natural:
        if offs[-1] < target < natural:
            return sched.text(), "for " + _fmt_time(target), target, 0.0
        if target > natural:
            rest = target - natural
    return sched.text(), dur, natural, rest


def _label_text(label: str) -> str:
    """A label as written in the text: bare if it reads back unchanged, else quoted."""
    if (re.fullmatch(r"[A-Za-z][^:\x00\"'+,&×]*", label) and label == label.strip()
            and not re.search(r"\bthen\b|\s{2}", label, re.I)):
        return label
    if '"' not in label:
        return f'"{label}"'
    if "'" not in label:
        return f"'{label}'"
    raise DosingError("describe_regimen", label, "a label with both quote characters cannot be written as text")


def describe_regimen(reg: Regimen) -> str:
    """The regimen as clinician-readable text that :func:`parse_regimen` reads back.

    Doses are grouped into phases by label, amount, route, drug and infusion
    duration; each phase is written as the simplest frequency that reproduces
    its dose times exactly (regular, twice weekly, on days ... every ...,
    or a single cycle listing every day). Phases that follow each other are
    joined with ", then" (with "rest for ..." for gaps), overlapping ones with
    " + ". A label is written ("induction: ...") unless it is the default
    label of the written frequency. Dose times round-trip exactly; ``end``
    round-trips where the grammar can express it. mg/m2 doses (``"x * BSA"``)
    read back with ``parse_regimen(text, bsa="BSA")``.
    """
    singles = reg.expand()
    if not singles:
        raise DosingError("describe_regimen", reg, "the regimen has no doses")
    groups: dict[tuple, _Group] = {}
    for d in singles:
        if d.rate is not None:
            raise DosingError("describe_regimen", d.rate, "infusions given by rate cannot be written; give a duration")
        if d.site not in ROUTES:
            raise DosingError("describe_regimen", d.site, "only doses into a route can be written as text; "
                              "routes: " + ", ".join(ROUTES))
        _amount_text(d.amount)
        key = (d.label, d.amount, d.site, d.drug, d.duration)
        layer = 0       # a second dose at the same time (same key) goes to a second, overlaid phase
        while (key, layer) in groups and groups[(key, layer)].t0 + groups[(key, layer)].offs[-1] == d.time:
            layer += 1
        if (key, layer) not in groups:
            groups[(key, layer)] = _Group(key, d.time, [], len(groups))
        groups[(key, layer)].offs.append(d.time - groups[(key, layer)].t0)
    # assign phases to chains in an order independent of how simultaneous doses happen to be listed,
    # so that the text of a regimen and of its read-back are the same
    ordered = sorted(groups.values(), key=lambda g: (g.t0, tuple(str(x) for x in g.key), g.order))
    chains: list[list[_Group]] = []
    for g in ordered:
        # a phase without a drug cannot follow one with a drug in a chain (the text would inherit it)
        cands = [ch for ch in chains if ch[-1].t0 + ch[-1].last < g.t0 and not (g.key[3] is None and ch[-1].key[3])]
        if cands:
            max(cands, key=lambda ch: ch[-1].t0 + ch[-1].last).append(g)
        else:
            chains.append([g])
    chains.sort(key=lambda ch: (ch[0].t0, ch[0].order))
    # targets: the next phase's start; for last phases, the regimen's end where expressible
    targets = [[(ch[i + 1].t0 - ch[i].t0) if i + 1 < len(ch) else None for i in range(len(ch))] for ch in chains]
    ends = [ch[-1].t0 + _plan(ch[-1], None)[2] for ch in chains]
    E, M = reg.end, max(ends)
    if E > M:
        k = ends.index(M)
        targets[k][-1] = E - chains[k][-1].t0
    elif E < M:
        for k, ch in enumerate(chains):
            if ends[k] > E and E - ch[-1].t0 > ch[-1].last:
                targets[k][-1] = E - ch[-1].t0
    items = []
    for ch, tg in zip(chains, targets):
        parts = []
        prev = None
        t0 = ch[0].t0
        prefix = ""
        if t0 > 0:
            day = t0 / H_DAY + 1
            prefix = f"from day {_num(round(day, 6))}, " if (round(day, 6) - 1) * H_DAY == t0 else ""
            if not prefix:
                parts.append(f"rest for {_fmt_time(t0)}")
        for g, target in zip(ch, tg):
            label, amount, site, drug, dur = g.key
            stext, dtext, _, rest = _plan(g, target)
            spec = (amount, drug, site, dur)
            words = []
            if label and label != stext:
                words.append(f"{_label_text(label)}:")
            if spec != prev:
                words.append(_amount_text(amount))
                if drug:
                    words.append(drug)
                words.append(site)
                if dur is not None:
                    words.append(f"over {_fmt_time(dur)}")
            words.append(stext)
            if dtext:
                words.append(dtext)
            parts.append(" ".join(words))
            if rest > 0:
                parts.append(f"rest for {_fmt_time(rest)}")
            prev = spec
        items.append(prefix + ", then ".join(parts))
    return " + ".join(items)
