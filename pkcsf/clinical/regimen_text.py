"""Regimens written as a clinician would: the text grammar and :func:`parse_regimen` (docs/regimens.md)."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass

from pkcsf.clinical.calendars import (
    _TIME_UNITS,
    H_DAY,
    H_MONTH,
    H_WEEK,
    _cycle_text,
    _make_phase,
    _Schedule,
)
from pkcsf.clinical.dose_rules import (
    _DRUG_ALIASES,
    _NUM,
    AGE_BASED_DRUGS,
    AMOUNT_UNITS,
    _bsa_from,
    _num,
    age_based_dose,
    age_dose_column,
    dose_per_bsa,
    dose_per_weight,
    per_size_unit,
)
from pkcsf.clinical.regimen_fold import _Fold
from pkcsf.clinical.regimen_text_words import (
    _DUR_UNITS,
    _FREQ_WORDS,
    _ROUTE_WORDS,
    _SPLIT_ITEMS,
    _SPLIT_PHASES,
    _W,
    _drug_name,
    _hide_quotes_and_labels,
    _known_drugs,
    _normalise_text,
    _restore,
    _usual_route,
)
from pkcsf.clinical.routes import ROUTE_ALIASES, ROUTES, normalize_route
from pkcsf.core.errors import DosingError, suggest
from pkcsf.core.units import UNITS
from pkcsf.engine.dosing import Regimen

__all__ = ["parse_regimen", "RegimenTextError"]

# --------------------------------------------------------------------------- text: errors

class RegimenTextError(DosingError):
    """A regimen text could not be parsed; names the offending fragment and the phase it is in.

    Parameters
    ----------
    fragment : str
        The part of the text that could not be read.
    text : str
        The phase (or whole text) it is in.
    problem : str
        What is wrong.
    allowed : str, optional
        What would be allowed there.
    fix : str, optional
        A hint how to fix it.
    """

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
    def __init__(self, text: str, phase: str, quoted: list | None = None):
        self.s = text
        self.pos = 0
        self.phase = phase
        self.quoted = quoted or []

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
        raise RegimenTextError(_restore(str(fragment), self.quoted), self.phase, problem, allowed, fix)


def _time_unit_hours(unit: str, cur: _Cursor, fragment: str) -> float:
    u = unit.lower()
    if u not in _TIME_UNITS:
        cur.error(fragment, "unknown time unit", "use h, days, weeks or months (= 28 days)")
    return _TIME_UNITS[u]


def _positive(x: float, cur: _Cursor, fragment: str, what: str) -> float:
    if not math.isfinite(x) or x <= 0:
        cur.error(fragment, f"{what} must be > 0")
    return x


_Q = r"q\.?\s*(?=\d)"       # "q" before an interval: "q12h", "q 2w", "q.12h" (a dotted q, not q 0.12 h)


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
        m = cur.match(rf"(?:every\s*|{_Q})({_NUM})\s*[- ]?\s*([a-z]+)\.?{_W}(?:\s+cycles?{_W})?")
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
        (r"(?:once\s+(?:a\s+|per\s+)?day|once\s+daily|daily|every\s+day|q\.?d\.?|od)", 24.0),
        (r"(?:twice\s+(?:a\s+|per\s+)?day|twice\s+daily|bid|b\.i\.d\.?)", 12.0),
        (r"(?:(?:three\s+times|thrice)\s+(?:a\s+|per\s+)?day|(?:three\s+times|thrice)\s+daily|tid|t\.i\.d\.?)", 8.0),
        (r"(?:four\s+times\s+(?:a\s+|per\s+)?day|four\s+times\s+daily|qid|q\.i\.d\.?)", 6.0),
        (r"(?:twice\s+(?:a\s+|per\s+)?week|twice\s+weekly|two\s+times\s+(?:a\s+|per\s+)?week|biw)", "twice_weekly"),
        (r"(?:once\s+(?:a\s+|per\s+)?week|once\s+weekly|weekly|every\s+week|q\.?w\.?|q1w)", H_WEEK),
        (r"(?:once\s+(?:a\s+|per\s+)?month|once\s+monthly|monthly|every\s+month|q4w)", H_MONTH),
        (r"(?:every\s+other\s+day|q\.?o\.?d\.?)", 48.0),
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
    # "q12h", "q 2 w", "q.12h", "q.4.h.": with the dot of "q.d."/"b.i.d.", "q.12h" is every 12 h, never 0.12 h
    m = cur.match(rf"{_Q}({_NUM})\s*\.?\s*([a-z]+)\.?{_W}")
    if m:
        return _Schedule("regular", (0.0,), _positive(float(m.group(1)), cur, m.group(0), "the interval")
                         * _time_unit_hours(m.group(2), cur, m.group(0)))
    m = cur.peek(r"q(?:\s+\.|\s*\.\s*\.)\d\S*")
    if m:
        cur.error(m.group(0), "ambiguous interval (a dotted 'q.' or a decimal point?)",
                  fix="write e.g. 'q5h' or 'every 0.5 h'")
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


def _second_drug(cur: _Cursor, ph: _Phase, w: str, given_by: str):
    """Take the drug word ``w`` at the cursor as the phase's drug; a different one than it has is an error."""
    name = _DRUG_ALIASES.get(w.lower().rstrip(","), w.lower().rstrip(","))
    if ph.drug is not None and ph.drug != name:
        cur.error(w, f"a second drug in one phase ({given_by} {ph.drug})", fix="join regimens of two drugs with '+'")
    cur.pos = cur.s.index(w, cur.pos) + len(w)
    ph.drug = name


def _parse_phase(text: str, drugs: set[str], quoted: list, bare: set[int] = frozenset()) -> _Phase:
    shown = _restore(text, quoted).strip()
    cur = _Cursor(text, shown, quoted)
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
    # a bare label that is a drug name ("Methotrexate: 12 mg IT ...") names the phase's drug; "quote" it to keep it
    m = cur.match(r"(\x00\d+\x00|[A-Za-z][^:\x00]*?)\s*:")
    given_by = "the phase already gives"
    if m:
        label = _restore(m.group(1), quoted).strip()
        is_bare = not m.group(1).startswith("\x00") or int(m.group(1)[1:-1]) in bare
        ph.drug = _drug_name(label, drugs) if is_bare else None
        ph.label = None if ph.drug else (label if is_bare else label[1:-1])
        if ph.drug:
            given_by = f"the label {label + ':'!r} names"
    # the drug before the dose, as prescriptions are often written: "methotrexate 12 mg lumbar ..."
    w = cur.word()
    nxt = cur.word(1)
    if (w is not None and nxt is not None and (w.lower() in drugs or w.lower() in _DRUG_ALIASES)
            and (re.match(_NUM, nxt) or re.fullmatch(r"age[- ]?based", nxt, re.I))):
        _second_drug(cur, ph, w, given_by)
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
                cur.error(num_text, "the dose has no unit", "amount units: " + AMOUNT_UNITS,
                          f"write e.g. '{num_text} mg'")
            cur.pos = mu.end()
            size = per_size_unit(unit)
            if size is not None:
                kind = "mg/m2" if size[0] == "bsa" else "mg/kg"
                val = x * size[1]
            elif unit in UNITS and UNITS[unit][0] == "amount" and not UNITS[unit][2]:
                kind, val = "mg", x * UNITS[unit][1]
            elif unit in UNITS and UNITS[unit][0] == "amount":
                cur.error(frag, "molar amounts need the molecular weight", fix="give the dose in mg")
            elif unit in UNITS:
                cur.error(frag, f"an amount unit is expected, not a {UNITS[unit][0]} ({unit})",
                          "amount units: " + AMOUNT_UNITS)
            else:
                cur.error(frag, "unknown dose unit", "amount units: " + AMOUNT_UNITS)
            if not math.isfinite(x) or x <= 0:
                cur.error(frag, "the dose must be > 0 and finite")
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
        if ph.route is None and (lw in drugs or lw in _DRUG_ALIASES):
            _second_drug(cur, ph, w, given_by)
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
            if w in UNITS or lw in UNITS:       # "12 mg mg lumbar": a unit where a drug name would be
                cur.error(w, f"a second unit ({w}) where a drug name or the route is expected",
                          fix="write the unit once, e.g. '12 mg lumbar once'")
            cur.pos = cur.s.index(w, cur.pos) + len(w)
            ph.drug = lw
            continue
        if ph.route is None and (nxt and re.match(r"(?:once|daily|twice|weekly|monthly|every|on|q\.?\d|bid|tid)", nxt)):
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


def parse_regimen(text: str, drug: str | None = None, bsa: float | str | None = None, age: float | str | None = None,
                  *, height_cm: float | None = None, weight_kg: float | None = None,
                  weight: float | str | None = None) -> Regimen:
    """Read a regimen written as a clinician would (grammar in docs/regimens.md).

    Examples::

        parse_regimen("12 mg ommaya twice weekly x 4 weeks, then weekly x 4 weeks, then monthly x 6")
        parse_regimen("30 mg ommaya on days 1 and 8 every 21 days x 4 cycles")
        parse_regimen("160 mg oral once daily for 8 weeks + 30 mg lumbar weekly x 3")
        parse_regimen("12 mg/m2 lumbar once", bsa=1.7)
        parse_regimen("6 mg/kg iv every 3 weeks x 6", weight=70)
        parse_regimen("age-based methotrexate lumbar twice weekly x 2 weeks", age=2)

    Parameters
    ----------
    text : str
        ``item + item ...``; an item is ``[from day N,] phase, then phase, ...``;
        a phase is ``[label:] [dose] [drug] [route] frequency duration`` or
        ``rest for <time>``. A label that is a drug name (``"Methotrexate: 12 mg
        IT weekly x 4"``) names the phase's drug. A phase without its own dose,
        drug or route inherits them from the previous phase of its item, the
        dose and route only if it gives the same drug (or none).
    drug : str, optional
        Drug of the doses that name none (and of "age-based" doses).
    bsa : float or "BSA", optional
        Body-surface area (m²) for mg/m2 doses; ``"BSA"`` keeps them as the
        per-subject expression ``"<x> * BSA"`` (the population's BSA column).
    age : float or "AGE", optional
        Age in years, for "age-based" doses; ``"AGE"`` doses each subject of a
        population by its own age (the amount becomes the per-subject column
        :func:`age_dose_column`, filled by the scenario from ``AGE``). The age
        at the start of the regimen fixes the dose of the whole regimen: a
        child who turns 3 during it keeps the under-3 dose.
    height_cm, weight_kg : float, optional
        Alternative to ``bsa`` (Mosteller formula, :func:`bsa`); ``weight_kg`` alone
        serves mg/kg doses.
    weight : float or "WT", optional
        Body weight (kg) for mg/kg doses; ``"WT"`` keeps them as the per-subject
        expression ``"<x> * WT"`` (the population's WT column). Default ``weight_kg``.

    Returns
    -------
    Regimen
        The doses (mg) at the drug's sites, labelled with the text.

    Raises
    ------
    RegimenTextError (a DosingError, a ValueError)
        Naming the offending fragment and the phase; nothing is returned half-parsed.

    Examples
    --------
    >>> parse_regimen("12 mg ommaya twice weekly x 4 weeks", drug="methotrexate")
    Regimen(8 doses, 0-672 h, twice weekly)
    """
    if not isinstance(text, str) or not text.strip():
        raise RegimenTextError(str(text), str(text), "empty regimen text",
                               fix="e.g. '12 mg lumbar twice weekly x 4 weeks'")
    if bsa is None and height_cm is not None:
        if weight_kg is None:
            raise DosingError("height_cm/weight_kg", (height_cm, weight_kg), "give both height_cm and weight_kg")
        bsa = _bsa_from(height_cm, weight_kg)
    if weight is None:
        weight = weight_kg
    drugs = _known_drugs()
    ctx_drug = None if drug is None else _DRUG_ALIASES.get(str(drug).lower(), str(drug).lower())
    hidden, quoted, bare = _hide_quotes_and_labels(text)
    norm = _normalise_text(hidden)
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
        phases = [_parse_phase(p, drugs, quoted, bare) for p in _SPLIT_PHASES.split(item_text)]
        items.append((start, phases, _restore(item_text, quoted)))
    # everything parsed: now build (errors here are about missing inherited values). Phases and items are
    # combined by _Fold (the semantics of Regimen.then and +, in time linear in the number of doses).
    total = _Fold()
    for start, phases, item_text in items:
        reg = _Fold()
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
                amount, drug_i, route, infusion = _resolve(ph, prev, ctx_drug, bsa, age, drugs, weight)
                r = _make_phase(amount, route, ph.sched, count=ph.count,
                                until=(ph.until if ph.cycles is None else ph.cycles * ph.sched.period),
                                end=(0.0 if ph.sched.kind == "once" else None), label=ph.label, drug=drug_i,
                                duration=infusion)
                prev = (amount, drug_i, route, infusion)
                prev_once = ph.sched.kind == "once"
            reg.then(r)
        if not reg.doses:
            raise RegimenTextError(item_text, item_text, "no doses (only rests)")
        total.add(reg.regimen(), shift=start)
    return total.regimen()


#: dose per body size: (to mg, what it needs, how to give it)
_PER_SIZE = {
    "mg/m2": (dose_per_bsa, "the body-surface area",
              "pass bsa=<m2>, or height_cm and weight_kg, or bsa='BSA' to read each subject's BSA column"),
    "mg/kg": (dose_per_weight, "the body weight",
              "pass weight=<kg> (or weight_kg), or weight='WT' to read each subject's WT column"),
}


def _resolve(ph: _Phase, prev, ctx_drug, bsa_value, age, drugs, weight=None):
    # a phase inherits the dose, route and infusion of the previous one only if it gives the same drug (or none)
    same = prev is not None and (ph.drug is None or ph.drug == prev[1])
    if ph.amount is None:
        if prev is None:
            raise RegimenTextError(ph.text, ph.text, "missing dose", fix="start the first phase with a dose, e.g. '12 mg'")
        amount, drug_i, route_prev, infusion = prev
        if not same:
            was = f"{_num(amount) + ' mg' if isinstance(amount, float) else amount} {drug_i or '(drug not named)'}"
            raise RegimenTextError(ph.text, ph.text, f"missing dose of {ph.drug}",
                                   f"a phase takes the dose of the previous phase ({was}) only for the same drug",
                                   f"write its dose, e.g. '{ph.drug} <N> mg ...'")
        route = ph.route or route_prev
        return amount, drug_i, route, (ph.infusion if ph.infusion is not None else infusion)
    drug_i = ph.drug or (prev[1] if prev else None) or ctx_drug
    route = ph.route or (prev[2] if same else None) or _usual_route(drug_i)
    if route is None:
        raise RegimenTextError(ph.text, ph.text, "missing route", "allowed routes: " + ", ".join(ROUTES),
                               "e.g. '12 mg lumbar weekly x 4'" + ("" if prev is None else
                               f"; the route of the previous phase ({prev[2]}) is kept only for the same drug"))
    kind = ph.amount[0]
    if kind == "mg":
        amount = ph.amount[1]
    elif kind in _PER_SIZE:
        to_mg, what, fix = _PER_SIZE[kind]
        size = bsa_value if kind == "mg/m2" else weight
        frag = f"{_num(ph.amount[1])} {kind}"
        if size is None:
            raise RegimenTextError(frag, ph.text, f"a dose per {kind[3:]} needs {what}", fix=fix)
        try:
            amount = to_mg(ph.amount[1], size)
        except DosingError as exc:
            raise RegimenTextError(frag, ph.text, str(exc)) from None
    else:
        if age is None:
            raise RegimenTextError("age-based", ph.text, "an age-based dose needs the age",
                                   fix="pass age=<years> (e.g. parse_regimen(text, age=2)), or age='AGE' to "
                                       "read each subject's AGE column")
        if drug_i is None:
            raise RegimenTextError("age-based", ph.text, "an age-based dose needs the drug",
                                   "drugs with age-based tables: " + ", ".join(AGE_BASED_DRUGS),
                                   "name it ('age-based methotrexate lumbar ...') or pass drug=...")
        years = _age_years(age, ph)
        try:
            if years == "AGE":
                age_based_dose(drug_i, 18.0, route)          # checks the drug and the route
                return age_dose_column(drug_i), drug_i, route, ph.infusion
            # the age at the start of the regimen doses the whole regimen (docs/regimens.md)
            amount = age_based_dose(drug_i, years, route)
        except DosingError as exc:
            raise RegimenTextError("age-based", ph.text, str(exc)) from None
    return amount, drug_i, route, ph.infusion


def _age_years(age, ph: _Phase) -> float | str:
    """``age`` as one number of years, or ``"AGE"`` (each subject's column); anything else is refused."""
    if isinstance(age, str) and age == "AGE":
        return age
    try:
        if isinstance(age, bool):
            raise TypeError(age)
        return float(age)       # "3" reads as 3 years; [1, 2] and "abc" do not
    except (TypeError, ValueError):
        near = isinstance(age, str) and age.strip().upper() == "AGE"
        raise RegimenTextError("age-based", ph.text, f"age: got {age!r}; must be the age in years (one number) or "
                               "'AGE' (each subject's AGE column of a population)",
                               fix="did you mean age='AGE'?" if near else "e.g. parse_regimen(text, age=2)") from None
