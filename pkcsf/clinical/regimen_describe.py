"""A regimen back to clinician-readable text (:func:`describe_regimen`), read back by :func:`parse_regimen`."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pkcsf.clinical.calendars import H_DAY, H_WEEK, _fmt_time, _Schedule
from pkcsf.clinical.dose_rules import _BSA_EXPR, _WT_EXPR, _num
from pkcsf.clinical.regimen_text_words import _drug_name, _known_drugs
from pkcsf.clinical.routes import ROUTES
from pkcsf.core.errors import DosingError
from pkcsf.engine.dosing import Regimen

__all__ = ["describe_regimen"]

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
    m = _WT_EXPR.match(a)
    if m:
        return f"{_num(float(m.group(1)))} mg/kg"
    if a.startswith("AGEDOSE_"):
        return "age-based"
    raise DosingError("describe_regimen", a, "only amounts in mg, '<x> * BSA' (mg/m2) or '<x> * WT' (mg/kg) can be "
                      "written as text")


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
    """A label as written in the text: bare if it reads back unchanged, else quoted (a bare drug name before ":"
    names the phase's drug, and "from day N" its start).
    """
    if (re.fullmatch(r"[A-Za-z][^:\x00\"'+,&×]*", label) and label == label.strip()
            and not re.search(r"\bthen\b|\s{2}|^from\s+day\b", label, re.I)
            and _drug_name(label, _known_drugs()) is None):
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
    and mg/kg doses (``"x * WT"``) read back with ``parse_regimen(text, bsa="BSA", weight="WT")``.

    Parameters
    ----------
    reg : Regimen
        Doses into routes, amounts in mg, mg/m2 or mg/kg.

    Returns
    -------
    str
        The text.

    Examples
    --------
    >>> from pkcsf.clinical.regimen_text import parse_regimen
    >>> describe_regimen(parse_regimen("12 mg lumbar weekly x 4"))
    '12 mg lumbar weekly x 4 weeks'
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
