"""References as citations: authors, title, journal year;vol:pages, DOI/PMID, without the internal remarks
that the parameter files keep for their curators.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from pkcsf.clinical import regimens as rg

#: words that mark a parenthetical remark as a curator's note, not part of a citation
_INTERNAL = ("from memory", "dossier", "flag", "believed", "not shown", "not captured", "via ", "truncated",
             "NOT RETRIEVED", "scilit", "transcription", "record http", "first author")
_BARE = re.compile(r"^\s*(10\.\d{4,9}/\S+|PMID\s*\d+|PMC\d+)\s*$", re.I)
_JOURNAL_END = re.compile(r"(19|20)\d{2}\s*;\s*[\w()\s]+(:\s*[\w\-–]+)?")


def _parentheticals(text: str):
    """(start, end) of each top-level ' (...)' group (a space before it: '1986;1(8494)' is not one)."""
    out, depth, start = [], 0, None
    for i, ch in enumerate(text):
        if ch == "(":
            if depth == 0 and i > 0 and text[i - 1] == " ":
                start = i - 1
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0 and start is not None:
                out.append((start, i + 1))
                start = None
    return out


def split_citation(text: str, *, keep_trailing: bool = False) -> tuple[str, str]:
    """Split a source text into the citation and a note.

    Curators' remarks ('flagged from memory', 'via ...') are dropped; the trailing remark on what was
    taken from the paper ('(abstract: CL 91.6 mL/min ...)') becomes the note.

    Parameters
    ----------
    text : str
        The source as the parameter or regimen files write it.
    keep_trailing : bool, optional
        Keep a trailing parenthesis in the citation (for regimens, where it names the source).

    Returns
    -------
    tuple of (str, str)
        The citation and the note ('' when there is none).
    """
    t = " ".join(str(text).split())
    note = ""
    for a, b in reversed(_parentheticals(t)):
        inner = t[a + 2:b - 1]
        internal = any(w.lower() in inner.lower() for w in _INTERNAL)
        trailing = not t[b:].strip(" .;,") and not keep_trailing
        if internal or trailing:
            if trailing and not internal:
                note = inner if not note else f"{inner}; {note}"
            t = (t[:a] + t[b:]).strip()
    t = re.sub(r"\s+([.,;:])", r"\1", t).strip(" ;,")
    if t.startswith("label:"):
        t = t[len("label:"):].strip()
    return t, note


def _from_where(key: str, where: str) -> str | None:
    """The citation at the head of a parameter's ``where`` ('Godfrey C, ... Br J Clin Pharmacol
    1998;46(4):369-76 (abstract): ...'), followed by its DOI/PMID, or None when it holds none.
    """
    w = " ".join(str(where or "").split())
    m = _JOURNAL_END.search(w)
    if not m or m.start() > 400:
        return None
    head = w[: m.end()].strip(" .;,")
    ident = f"doi {key}" if key.startswith("10.") else key
    return f"{head}. {ident}"


def bare_citations(results: Iterable[Any]) -> dict[str, str]:
    """Full citations of the sources given only as an identifier (a DOI or a PMID).

    They come from the ``where`` of the values that use them (the parameter files write the full
    reference there).

    Parameters
    ----------
    results : iterable of ScenarioResult
        Scenario results whose arms' setups hold the parameter sets.

    Returns
    -------
    dict of str to str
        ``{DOI or PMID: citation}``.
    """
    out: dict[str, str] = {}
    for res in results:
        for a in res.arms.values():
            for setup in getattr(a, "setups", {}).values():
                for pset in getattr(setup, "sets", []):
                    entries = []
                    for attr in ("values", "thresholds", "variability"):
                        entries += list(getattr(pset, attr, {}).values())
                    for e in entries:
                        src = str(getattr(e, "source", ""))
                        if _BARE.match(src) and src not in out:
                            c = _from_where(src, getattr(e, "where", ""))
                            if c:
                                out[src] = c
    return out


def references(R: Mapping[str, Any]) -> pd.DataFrame:
    """Every source the report's runs used, then the regimens' sources, one row each.

    Parameters
    ----------
    R : mapping of str to ScenarioResult
        The report's scenario results by name.

    Returns
    -------
    DataFrame
        Columns ``key``, ``citation`` and ``note``, one row per distinct citation.
    """
    raw = []
    for res in R.values():
        for r in res.cite():
            if r not in raw:
                raw.append(r)
    bare = bare_citations(R.values())
    rows = []
    for r in raw:
        key, _, text = r.partition("] ")
        key = key.lstrip("[") if text else ""
        text = text or r
        if _BARE.match(text):
            ident = text.strip()
            text = bare.get(ident, f"doi {ident}" if ident.startswith("10.") else ident)
            key = key or ident
        cit, note = split_citation(text)
        rows.append({"key": key, "citation": cit, "note": note})
    for name in ("methotrexate_it", "pemetrexed_pan2019", "liposomal_cytarabine", "osimertinib",
                 "osimertinib_plus_it_pemetrexed"):
        src = rg.REGIMEN_SOURCES.get(name)
        if src:
            cit, note = split_citation(src, keep_trailing=True)     # the parenthesis names the source
            rows.append({"key": f"regimen:{name}", "citation": cit, "note": note})
    df = pd.DataFrame(rows, columns=["key", "citation", "note"])
    return df.drop_duplicates(subset=["citation"]).reset_index(drop=True)
