"""The words of the regimen text (drugs, routes, frequencies) and the rewriting of a text before it is parsed.

Split from :mod:`pkcsf.clinical.regimen_text` (the grammar and :func:`~pkcsf.clinical.regimen_text.parse_regimen`;
docs/regimens.md), which reads a text with these tables. Nothing here raises: the parser reports every mistake.
"""
from __future__ import annotations

import re

from pkcsf.clinical.dose_rules import _DRUG_ALIASES
from pkcsf.clinical.routes import ROUTE_ALIASES, ROUTES, normalize_route

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


def _drug_name(words: str, drugs: set[str]) -> str | None:
    """The drug ``words`` name ("Methotrexate", "MTX", "liposomal cytarabine", "DepoCyt"), None if no drug."""
    key = " ".join(words.lower().split())
    if key in _DRUG_ALIASES:
        return _DRUG_ALIASES[key]
    return key if key in drugs else None


def _usual_route(drug_name: str | None) -> str | None:
    """The route a drug's file names as the one it is given by in practice (``[options] usual_route``, e.g.
    osimertinib: oral), used when a phase names none; None without one.
    """
    if not drug_name:
        return None
    try:
        from pkcsf.clinical.parameters import load_parameter_set

        usual = load_parameter_set(str(drug_name), "drugs").options.get("usual_route")
    except Exception:  # pragma: no cover - an unknown drug is reported where the doses are placed
        return None
    return None if usual is None else normalize_route(str(usual), f"{drug_name}.usual_route")


_SPLIT_ITEMS = re.compile(r"(?<![eE])\+")
_SPLIT_PHASES = re.compile(r"\s*,?\s*\bthen\b\s*,?\s*", re.I)
# a bare label: "induction: ...", at the start of an item or a phase ("from day 8:" is no label but the start day)
_BARE_LABEL = re.compile(r"(^\s*|\+\s*|,?\s*\bthen\s+|,\s*)(?!then\b|from\s+day\s+[-+.\d])([A-Za-z][^:\x00\"'+,]*?)\s*:",
                         re.I)


def _hide_quotes_and_labels(text: str) -> tuple[str, list[str], set[int]]:
    """``text`` with each quoted text and each bare label replaced by a placeholder (kept as written, not
    normalised); the texts hidden (quoted ones with their quotes) and the indices of the bare labels.
    """
    quoted: list[str] = []
    bare: set[int] = set()

    def _hide(m):
        quoted.append(m.group(0))
        return f"\x00{len(quoted) - 1}\x00"

    def _hide_label(m):             # a bare label is kept as written ("three times daily: ..."), not normalised
        bare.add(len(quoted))
        quoted.append(m.group(2))
        return f"{m.group(1)}\x00{len(quoted) - 1}\x00:"

    hidden = re.sub(r'"[^"]*"|\'[^\']*\'', _hide, text)
    return _BARE_LABEL.sub(_hide_label, hidden), quoted, bare


def _restore(text: str, quoted: list) -> str:
    return re.sub(r"\x00(\d+)\x00", lambda m: quoted[int(m.group(1))], text)


#: counts written as words (``"every two weeks"``)
_NUMBER_WORDS = {w: str(i) for i, w in enumerate(("two", "three", "four", "five", "six", "seven", "eight", "nine",
                                                  "ten", "eleven", "twelve"), start=2)}


def _normalise_text(text: str) -> str:
    t = text.replace("×", " x ").replace("&", " and ").replace("\u00a0", " ")
    t = re.sub(r"\b(liposomal\s+cytarabine|cytarabine\s+liposomal|liposomal_cytarabine)\b", "cytarabine_liposomal",
               t, flags=re.I)
    t = re.sub(r"\b(x)(\d)", r"\1 \2", t)
    t = re.sub(r"\blumbar\s+puncture\b", "lumbar", t, flags=re.I)     # "by lumbar puncture"
    t = re.sub(r"\bby\s+mouth\b", "oral", t, flags=re.I)
    # counts in words ("every two weeks", "for four weeks"); "one" stays a word ("one dose" is 'once')
    t = re.sub(r"\b(" + "|".join(_NUMBER_WORDS) + r")\b", lambda m: _NUMBER_WORDS[m.group(1).lower()], t,
               flags=re.I)
    # "on days 1 and 8 of a 21-day cycle" = "on days 1 and 8 every 21 days"
    t = re.sub(r"\bof\s+(?:a|an|each|every)\s+(\d+)[- ]?days?\s+cycles?\b", r"every \1 days", t, flags=re.I)
    return " ".join(t.split())
