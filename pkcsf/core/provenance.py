"""Where a value comes from: the one rule for a source string, shared by every parameter file reader
(:mod:`pkcsf.clinical.parameters`, :mod:`pkcsf.pd.parameters`).

A source is a key of the file's ``[references]``, a literature identifier (DOI, ``doi:...``, PMID, PMC id),
a URL, a label (``label:TAGRISSO``), or one of :data:`SPECIAL_SOURCES` (``assumption`` needs its reasoning in
``note``, ``calibrated`` names its calibration record, ``derived`` is computed from other sourced values).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SOURCE_PATTERNS", "SPECIAL_SOURCES", "USER", "Value", "is_citation"]

#: Literature identifiers and URLs accepted as a source without a ``[references]`` entry.
SOURCE_PATTERNS = (
    re.compile(r"^10\.\d{4,9}/\S+$"),                 # DOI
    re.compile(r"^doi[: ]\s*10\.\d{4,9}/\S+$", re.I),
    re.compile(r"^PMID[: ]?\s*\d+", re.I),
    re.compile(r"^PMC\d+", re.I),
    re.compile(r"^https?://\S+$"),
    re.compile(r"^label:.+", re.I),
)
#: Sources that are not citations (each with its own rule, see the module docstring).
SPECIAL_SOURCES = ("assumption", "calibrated", "derived")


def is_citation(source: str) -> bool:
    """Whether ``source`` is a literature identifier or URL (see :data:`SOURCE_PATTERNS`).

    Parameters
    ----------
    source : str
        The source as written.

    Returns
    -------
    bool
        True for a DOI, ``doi:...``, a PMID, a PMC id, a URL or ``label:...``.

    Examples
    --------
    >>> is_citation("PMID 6366138"), is_citation("10.3389/fonc.2019.00838"), is_citation("my guess")
    (True, True, False)
    """
    return any(p.match(source.strip()) for p in SOURCE_PATTERNS)


#: source of a value changed in Python (``with_values``): listed with the assumptions of a run
USER = "user"


@dataclass(frozen=True)
class Value:
    """One sourced value (``value`` in base units; ``given``/``unit`` as written).

    Parameters
    ----------
    name, unit, source, where, note, calibration, citation : str
        As in the file (``citation``: the reference text of ``source``).
    value, given : float
        Base-unit and written value.
    range : tuple of float, optional
        Plausible range, as written.
    alternatives : tuple, optional
        Other published values.
    """

    name: str
    value: float
    unit: str
    given: float
    source: str
    where: str = ""
    note: str = ""
    range: tuple[float, float] | None = None
    calibration: str = ""
    citation: str = ""
    alternatives: tuple = ()

    @property
    def is_assumption(self) -> bool:
        """An assumption of the file, or a value set by the user in Python (neither has a literature source)."""
        return self.source in ("assumption", USER)
