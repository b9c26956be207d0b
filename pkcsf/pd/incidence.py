"""Sourced incidences as a read-out: event = Bernoulli(published proportion), per cycle or per patient.

Some toxicities have no published exposure-response, only incidences by arm or by stratum
(chemical arachnoiditis after liposomal cytarabine with or without dexamethasone, denosumab
hypocalcaemia by schedule or by renal function). This module turns such a table into a
seeded, vectorised read-out for scenarios and virtual trials, and says what it is: **the
probability does not depend on the simulated exposure** unless the file says otherwise (no file
does today), so it reproduces the published proportion and nothing more.

File format (``parameters/pd/<name>.toml`` with ``meta.kind = "incidence"``)::

    [references]
    label = "..."
    [incidence.KEY]
    endpoint = "chemical arachnoiditis, any grade"   # what is counted
    per = "cycle"                  # "cycle" (one per dose/cycle given) or "patient" (over the course)
    proportion = 0.33              # as published; or events + n; both: they must agree to the rounding
    events = 49                    # optional: numerator as published (or "derived", see note)
    n = 177                        # optional: denominator (patients or cycles)
    strata = { dexamethasone = true }   # covariates that select the entry
    source = "label"; where = "..."; note = "..."

Every entry needs a source (the rules of ``parameters/README.md``). Confidence intervals are exact
(Clopper-Pearson) when the numerator is known; with a proportion and a denominator only (numerator
not published) they are Wilson intervals and flagged ``approximate``; with a proportion alone there
is none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.core.errors import ParameterError
from pkcsf.core.paths import builtin_dir, read_toml
from pkcsf.pd.parameters import _check_source

__all__ = ["Incidence", "IncidenceSet", "IncidenceEvents", "load_incidence", "available_incidence",
           "bernoulli_events", "exact_ci"]

PER = ("cycle", "patient")


def exact_ci(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of ``k`` events in ``n``.

    Parameters
    ----------
    k : int
        Number of events, 0 <= k <= n.
    n : int
        Number of units (patients or cycles), > 0.
    level : float
        Confidence level (default 0.95).

    Returns
    -------
    low, high : float
        Bounds of the interval of the proportion (0-1).

    Examples
    --------
    >>> [round(x, 3) for x in exact_ci(5, 13)]
    [0.139, 0.684]
    """
    from scipy import stats  # on first use: scipy.stats takes ~0.5 s to import (issue 11)

    a = (1.0 - level) / 2.0
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


def _wilson(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy import stats  # on first use (import cost, issue 11)

    z = float(stats.norm.ppf(0.5 + level / 2.0))
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


@dataclass(frozen=True)
class Incidence:
    """One published incidence: ``proportion`` of ``per`` units with the ``endpoint``.

    Parameters
    ----------
    key, endpoint, per : str
        Entry name, what is counted, ``"cycle"`` or ``"patient"``.
    proportion : float
        The published proportion (0-1).
    events, n : int or None
        Numerator and denominator when published.
    strata : dict
        Covariates selecting the entry.
    source, where, note : str
        Provenance.
    """

    key: str
    endpoint: str
    per: str
    proportion: float
    events: int | None
    n: int | None
    strata: dict = field(default_factory=dict)
    source: str = ""
    where: str = ""
    note: str = ""

    def ci(self, level: float = 0.95) -> tuple[float, float, str]:
        """Confidence interval of the published proportion.

        Parameters
        ----------
        level : float
            Confidence level (default 0.95).

        Returns
        -------
        low, high : float
            Bounds (0-1); NaN without a denominator.
        kind : str
            ``"exact"`` (Clopper-Pearson, numerator known), ``"approximate"`` (Wilson, numerator not
            published) or ``"none"`` (no denominator).
        """
        if self.events is not None and self.n:
            return (*exact_ci(self.events, self.n, level), "exact")
        if self.n:
            return (*_wilson(self.proportion, self.n, level), "approximate")
        return float("nan"), float("nan"), "none"

    def draw_proportions(self, draws: int, seed: int = 0) -> np.ndarray:
        """Proportions drawn from the Jeffreys posterior Beta(k + 1/2, n - k + 1/2) (parameter uncertainty
        for virtual trials).

        Parameters
        ----------
        draws : int
            Number of proportions drawn.
        seed : int
            Seed of the draws (default 0).

        Returns
        -------
        ndarray, shape (draws,)
            Proportions (0-1).

        Raises
        ------
        ParameterError
            The entry has no published denominator (``k`` = proportion x n is used when only the numerator
            is missing).
        """
        if not self.n:
            raise ParameterError(f"incidence {self.key}.n", self.n,
                                 "parameter uncertainty needs the published denominator; this entry has none")
        k = self.events if self.events is not None else self.proportion * self.n
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x1DC]))
        return rng.beta(k + 0.5, self.n - k + 0.5, size=int(draws))


@dataclass
class IncidenceSet:
    """A parsed incidence file: its entries by key, references and meta.

    Parameters
    ----------
    name : str
        Name of the set (``meta.name`` or the file stem).
    path : Path
        The file read.
    meta : dict
        Its ``[meta]`` table.
    references : dict
        Citation key -> full reference.
    entries : dict
        Entry key -> :class:`Incidence`.
    """

    name: str
    path: Path
    meta: dict
    references: dict
    entries: dict

    def find(self, *, endpoint: str | None = None, per: str | None = None, **strata: object) -> Incidence:
        """The single entry whose endpoint, ``per`` and strata match.

        Parameters
        ----------
        endpoint : str, optional
            A substring of the entry's endpoint.
        per : str, optional
            ``"cycle"`` or ``"patient"``.
        **strata
            Covariate values the entry's strata must have, e.g. ``dexamethasone=True``.

        Returns
        -------
        Incidence

        Raises
        ------
        ParameterError
            No entry or more than one matches; the message lists all entries.
        """
        hits = []
        for e in self.entries.values():
            if endpoint is not None and endpoint not in e.endpoint:
                continue
            if per is not None and e.per != per:
                continue
            if any(k not in e.strata or e.strata[k] != v for k, v in strata.items()):
                continue
            hits.append(e)
        if len(hits) != 1:
            have = "; ".join(f"{e.key} (endpoint '{e.endpoint}', per {e.per}, strata {e.strata})"
                             for e in self.entries.values())
            what = f"endpoint={endpoint!r}, per={per!r}, strata={strata}"
            raise ParameterError(f"{self.name} incidence", what,
                                 ("no sourced entry matches" if not hits else f"{len(hits)} entries match") +
                                 "; available: " + have)
        return hits[0]

    def table(self) -> pd.DataFrame:
        """The entries as a table.

        Returns
        -------
        pandas.DataFrame
            One row per entry: key, endpoint, per, ``stratum_*``, proportion, events, n, ci_low, ci_high, ci
            (the interval's kind, see :meth:`Incidence.ci`), source, where.
        """
        rows = []
        for e in self.entries.values():
            lo, hi, kind = e.ci()
            rows.append({"key": e.key, "endpoint": e.endpoint, "per": e.per, **{f"stratum_{k}": v for k, v in
                        e.strata.items()}, "proportion": e.proportion, "events": e.events, "n": e.n,
                         "ci_low": lo, "ci_high": hi, "ci": kind, "source": e.source, "where": e.where})
        return pd.DataFrame(rows)

    def cite(self) -> list[str]:
        """The references of the file and the direct citations of its entries.

        Returns
        -------
        list of str
        """
        direct = sorted({e.source for e in self.entries.values() if e.source not in self.references})
        return list(self.references.values()) + direct


def available_incidence() -> list[str]:
    """Names of the incidence files (``parameters/pd/*.toml`` with ``meta.kind = "incidence"``).

    Returns
    -------
    list of str
        Sorted names, for :func:`load_incidence`.
    """
    d = builtin_dir("parameters") / "pd"
    out = []
    for p in sorted(d.glob("*.toml")):
        if read_toml(p, ParameterError, "PD parameter file").get("meta", {}).get("kind") == "incidence":
            out.append(p.stem)
    return out


def _int_or_none(path, where, x):
    if x is None:
        return None
    if isinstance(x, bool) or not isinstance(x, int) or x < 0:
        raise ParameterError(f"{path.name}:{where}", x, "must be a whole number >= 0")
    return x


def load_incidence(name_or_path: str | Path) -> IncidenceSet:
    """Read an incidence file, checking sources and proportions.

    A published proportion must agree with its numerator/denominator to the rounding (0.5 percentage points).

    Parameters
    ----------
    name_or_path : str or Path
        A name from :func:`available_incidence` or the path of a ``.toml`` file.

    Returns
    -------
    IncidenceSet

    Raises
    ------
    ParameterError
        Unknown name, an entry without a source, a bad ``per``, count or proportion.

    Examples
    --------
    >>> s = load_incidence("arachnoiditis_liposomal_cytarabine")
    >>> s.find(endpoint="any grade", per="cycle", dexamethasone=True).proportion
    0.33
    """
    p = Path(str(name_or_path))
    if p.suffix != ".toml":
        names = available_incidence()
        if str(name_or_path) not in names:
            raise ParameterError("incidence set", name_or_path, "allowed: " + ", ".join(names))
        p = builtin_dir("parameters") / "pd" / f"{name_or_path}.toml"
    raw = read_toml(p, ParameterError, "incidence file")
    refs = dict(raw.get("references", {}))
    entries = {}
    for key, spec in raw.get("incidence", {}).items():
        where = f"incidence.{key}"
        src = _check_source(where, spec, refs, p)
        per = spec.get("per")
        if per not in PER:
            raise ParameterError(f"{p.name}:{where}.per", per, "allowed: " + ", ".join(PER))
        ev = _int_or_none(p, f"{where}.events", spec.get("events"))
        n = _int_or_none(p, f"{where}.n", spec.get("n"))
        if ev is not None and (n is None or ev > n or n == 0):
            raise ParameterError(f"{p.name}:{where}.events", ev, f"events need a denominator n >= events > 0 (n = {n})")
        prop = spec.get("proportion")
        if prop is None:
            if ev is None:
                raise ParameterError(f"{p.name}:{where}", spec, "needs 'proportion' or 'events' and 'n'")
            prop = ev / n
        if isinstance(prop, bool) or not isinstance(prop, (int, float)) or not 0.0 <= prop <= 1.0:
            raise ParameterError(f"{p.name}:{where}.proportion", prop, "must be a number in [0, 1]")
        if ev is not None and abs(ev / n - prop) > 0.0051:       # published percentages are rounded
            raise ParameterError(f"{p.name}:{where}.proportion", prop,
                                 f"disagrees with events/n = {ev}/{n} = {ev / n:.4f} beyond the rounding")
        strata = dict(spec.get("strata", {}))
        entries[key] = Incidence(key, str(spec.get("endpoint", key)), per, float(prop), ev, n, strata, src,
                                 str(spec.get("where", "")), str(spec.get("note", "")))
    if not entries:
        raise ParameterError(f"{p.name}:incidence", None, "an incidence file needs at least one [incidence.KEY]")
    return IncidenceSet(str(raw.get("meta", {}).get("name", p.stem)), p, dict(raw.get("meta", {})), refs, entries)


@dataclass(eq=False)
class IncidenceEvents:
    """Events drawn per subject (rows) and unit (columns: cycles or doses; one column for per-patient).

    Attributes
    ----------
    events : ndarray of bool, shape (N, C)
        Event in that unit.
    exposed : ndarray of bool, shape (N, C)
        Unit given (a cycle or dose that happened).
    probability : ndarray, shape (N, C)
        Probability used for each exposed unit (0 where not exposed).
    label : str
        What was counted, with its source.
    """

    events: np.ndarray
    exposed: np.ndarray
    probability: np.ndarray
    label: str = ""

    @property
    def any(self) -> np.ndarray:
        """(N,) at least one event."""
        return self.events.any(axis=1)

    @property
    def count(self) -> np.ndarray:
        """(N,) number of events."""
        return self.events.sum(axis=1)

    @property
    def first(self) -> np.ndarray:
        """(N,) index of the first unit with an event, -1 for none."""
        if self.events.shape[1] == 0:
            return np.full(self.events.shape[0], -1)
        f = np.argmax(self.events, axis=1)
        return np.where(self.any, f, -1)

    def fraction(self) -> float:
        """Fraction of subjects with at least one event.

        Returns
        -------
        float
            NaN without subjects.
        """
        return float(self.any.mean()) if self.events.shape[0] else float("nan")

    def per_unit_fraction(self) -> float:
        """Events per exposed unit (cycles or doses).

        Returns
        -------
        float
            NaN without exposed units.
        """
        n = int(self.exposed.sum())
        return float(self.events.sum() / n) if n else float("nan")

    def frame(self) -> pd.DataFrame:
        """The events per subject.

        Returns
        -------
        pandas.DataFrame
            One row per subject: id, units (exposed), events, any, first (unit index, -1 none).
        """
        return pd.DataFrame({"id": np.arange(self.events.shape[0]), "units": self.exposed.sum(axis=1),
                             "events": self.count, "any": self.any, "first": self.first})


def bernoulli_events(probability: ArrayLike, exposed: ArrayLike, *, seed: int = 0, label: str = "") -> IncidenceEvents:
    """Independent Bernoulli events in every exposed unit.

    Subject ``i`` depends only on ``(seed, i, number of columns)``, not on how many subjects are drawn
    (uniforms are drawn row by row from one stream).

    Parameters
    ----------
    probability : array_like, broadcastable to ``exposed``
        Probability per unit, each in [0, 1].
    exposed : array_like of bool, shape (N, C)
        Units given.
    seed : int, optional
        Seed.
    label : str, optional
        Stored with the result.

    Returns
    -------
    IncidenceEvents
    """
    ex = np.asarray(exposed)
    if ex.ndim != 2:
        raise ParameterError("exposed", f"shape {ex.shape}", "must be (subjects, units)")
    ex = ex.astype(bool)
    p = np.broadcast_to(np.asarray(probability, dtype=float), ex.shape)
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ParameterError("probability", p.ravel()[:5].tolist(), "every probability must be in [0, 1]")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ParameterError("seed", seed, "must be a whole number")
    u = np.random.default_rng(np.random.SeedSequence([int(seed), 0xA2AC])).random(ex.shape)
    pe = np.where(ex, p, 0.0)
    return IncidenceEvents(ex & (u < pe), ex, pe, label)
