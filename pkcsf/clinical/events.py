"""NONMEM-style event tables at the drug level: doses, covariates and observations of real patients.

A table has one row per event, columns ``ID TIME AMT CMT EVID`` (``II ADDL RATE DUR SS MDV`` optional; any
case), covariate columns and a ``DV`` column:

* ``EVID`` 1 rows are doses (read by :func:`pkcsf.engine.nonmem.from_nonmem`); ``CMT`` is a route
  (``lumbar``, ``ommaya``, ``intracisternal``, ``iv``, ``oral`` and their aliases), a dosing site or
  compartment of the drug's model, or a 1-based compartment number of that model, in any case; names and
  numbers may be mixed in one column.
* ``EVID`` 0 rows are observations: they define the output times, and ``CMT`` names what was measured: a
  compartment group (``ventricular``, ``lumbar``, ``plasma``, ...), a model compartment (name or number),
  or a route, read as the group it doses into (``ommaya`` -> ventricular, ``intracisternal`` -> cisternal,
  ``lumbar`` -> lumbar, ``iv``/``oral`` -> plasma). ``DV`` (in the scenario's unit) is carried as it is;
  an empty ``DV`` is a prediction-only time. Without an ``EVID`` column, rows with ``AMT`` > 0 are doses.
  An observation at the time of a dose of the same subject is the value **before** the dose when its row
  comes first in the table (a trough, as NONMEM reads records in order), else the value after; at the
  time of a dose implied by ``II``/``ADDL`` (no row of its own) it is the value before that dose.
* Covariate columns (``WT HT AGE SEX SCR ALB BSA CRCL``, see :data:`~pkcsf.clinical.covariates.COVARIATES`)
  become each subject's covariates. ``SEX`` is 0 (male) / 1 (female) or ``M``/``F``. **Covariates may change
  within a subject**, by last observation carried forward: a value holds from its row's ``TIME`` until the next
  row (in time order) with a different value; the first value holds from time 0 (before the first row too);
  an empty cell carries the previous value; rows of one subject at one time must agree. Such subjects are
  solved in segments between the change times (:mod:`pkcsf.clinical.events_segments`); an ``SS`` dose of a
  subject whose covariates change is refused. Individual parameter columns stay constant within a subject.
  Any other column is carried to the output unchanged.

Predictions: ``PRED`` is the typical subject with the patient's own covariates and doses (no random effects).
``IPRED`` is the patient's individual prediction; for a data set of real patients without individual
parameters it equals ``PRED`` (the individual random effects are unknown: estimate them from the DV with
:func:`pkcsf.clinical.forecast.forecast`). A table may give individual parameters as columns named after model
parameters; then ``IPRED`` uses them.
"""
from __future__ import annotations

import csv
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pkcsf.clinical.covariates import COVARIATES
from pkcsf.clinical.events_run import DatasetRun
from pkcsf.clinical.routes import ROUTE_ALIASES, ROUTES
from pkcsf.core.errors import DosingError, check_choice
from pkcsf.engine.dosing import NONMEM_COLUMNS, Regimen
from pkcsf.engine.nonmem import _nonmem_id, from_nonmem

if TYPE_CHECKING:
    from pkcsf.clinical.cns import Setup

__all__ = ["EventData", "read_events", "DatasetRun", "OBSERVATION_COLUMNS", "ROUTE_GROUPS", "is_event_table"]

#: columns of the tidy observation frame
OBSERVATION_COLUMNS = ["ID", "TIME", "group", "DV", "PRED", "IPRED", "unit"]
#: an observation named by a route is read in the group that route doses into
ROUTE_GROUPS = {"ommaya": "ventricular", "intracisternal": "cisternal", "lumbar": "lumbar", "iv": "plasma",
                "oral": "plasma"}
_EVENT_COLUMNS = set(NONMEM_COLUMNS) | {"SS", "DUR", "MDV", "DV"}


class UnusedColumnsWarning(UserWarning):
    """Columns of an event table that are neither NONMEM columns nor covariates: carried, not used."""


def is_event_table(value: Any) -> bool:
    """Whether ``value`` is an event table: a DataFrame, an :class:`EventData` or a path to a ``.csv`` file.

    Parameters
    ----------
    value : object
        A regimen as a user gave it.

    Returns
    -------
    bool
        True for a DataFrame, an :class:`EventData` or a ``.csv`` path.
    """
    if isinstance(value, (pd.DataFrame, EventData)):
        return True
    return isinstance(value, (str, Path)) and str(value).strip().lower().endswith(".csv")


@dataclass(frozen=True, eq=False)
class EventData:
    """A NONMEM-style table split into doses, covariates and observations (see the module docstring).

    Attributes
    ----------
    doses : DataFrame
        The dose rows (upper-case NONMEM columns; ``CMT`` as written).
    covariates : DataFrame
        One row per subject: ``ID`` and the covariate columns (constant within a subject).
    observations : DataFrame
        The ``EVID`` 0 rows: ``ID, TIME, CMT, DV, ROW`` (``ROW``: the row in the table) and carried columns.
    ids : list
        Subject labels in order of first appearance.
    carried : tuple of str
        Columns carried to the output unchanged.
    parameters : DataFrame
        Individual parameter columns given in the table (one row per subject), possibly empty.
    source : str
        Where the table came from (a path, or ``"table"``).
    timeline : DataFrame
        ``ID, TIME`` and the covariate columns: one row per subject and time from which its covariates hold
        (the first at TIME 0, then one per change; last observation carried forward, see the module
        docstring). ``covariates`` is its TIME 0 part.
    lines : tuple of int
        For a table read from a CSV file: the line of the file each row starts on (empty otherwise).
    """

    doses: pd.DataFrame
    covariates: pd.DataFrame
    observations: pd.DataFrame
    ids: list
    carried: tuple = ()
    parameters: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = "table"
    timeline: pd.DataFrame = field(default_factory=pd.DataFrame)
    lines: tuple = ()

    def __repr__(self):
        return (f"EventData({self.source}: {len(self.ids)} subjects, {len(self.doses)} dose rows, "
                f"{len(self.observations)} observation rows, covariates {list(self.covariates.columns[1:])})")

    def row_label(self, row: int) -> str:
        """How messages name a row of the table: ``event table row 3`` (0 is the first row under the header),
        with its line for a CSV file: ``event table row 3 (line 5 of patients.csv)``.

        Parameters
        ----------
        row : int
            The row (``ROW`` of :attr:`doses` and :attr:`observations`).

        Returns
        -------
        str
            The label.
        """
        return _row_label(int(row), self.lines, self.source)

    @property
    def n(self) -> int:
        """Number of subjects."""
        return len(self.ids)

    @property
    def time_varying(self) -> bool:
        """Whether any subject's covariates change after time 0."""
        return bool(len(self.timeline)) and bool((self.timeline["TIME"] > 0).any())

    @property
    def change_times(self) -> np.ndarray:
        """Sorted times (h, > 0) at which some subject's covariates change (empty when none do)."""
        if not len(self.timeline):
            return np.zeros(0)
        t = self.timeline["TIME"].to_numpy(dtype=float)
        return np.unique(t[t > 0])

    def covariates_at(self, time: float) -> pd.DataFrame:
        """The covariates in effect at ``time`` (h): one row per subject, the columns of ``covariates``.

        Parameters
        ----------
        time : float
            Time (h). A value given at a change time holds from that time on (right-continuous).

        Returns
        -------
        DataFrame
            ``ID`` and the covariate columns, subjects in the order of ``ids``.
        """
        if not self.time_varying:
            return self.covariates.copy()
        tl = self.timeline[self.timeline["TIME"] <= float(time)]
        last = tl.groupby("ID", sort=False).tail(1).set_index("ID")
        out = self.covariates.copy()
        for c in out.columns[1:]:
            out[c] = [float(last.loc[i, c]) for i in out["ID"]]
        return out

    # -------------------------------------------------------------- resolution against a drug model
    def regimens_for(self, setup: Setup) -> dict:
        """The dose rows as one regimen per subject on the sites of ``setup``'s model.

        Parameters
        ----------
        setup : Setup
            The drug set-up (:func:`pkcsf.clinical.cns.setup`): ``CMT`` routes and numbers resolve against it.

        Returns
        -------
        dict
            ``{ID: Regimen}``; subjects without doses get an empty regimen.
        """
        df = self.doses.copy()
        model = setup.model
        lower_sites = {s.lower(): s for s in list(model.site_names) + list(model.compartment_names)}
        cmts = []
        for row, cmt in zip(df["ROW"], df["CMT"]):
            cmts.append(_dose_site(cmt, f"{self.row_label(row)}.CMT", setup, lower_sites))
        df["CMT"] = cmts
        cols = [c for c in df.columns if c in _EVENT_COLUMNS or c == "ID"]
        try:
            regs = from_nonmem(df[cols], model=model) if len(df) else {}
        except DosingError as exc:     # from_nonmem counts the dose rows only: name the row of the table
            m = re.match(r"event table row (\d+)(.*)$", exc.field, re.S)
            if m is None or int(m.group(1)) >= len(df):
                raise
            raise DosingError(self.row_label(df["ROW"].iloc[int(m.group(1))]) + m.group(2), exc.value,
                              exc.allowed, exc.fix) from None
        return {i: regs.get(i, Regimen([])) for i in self.ids}

    def readout_of(self, setup: Setup, cmt: str | float, where: str) -> str:
        """The group or compartment an observation's ``CMT`` names in ``setup``.

        Parameters
        ----------
        setup : Setup
            The drug set-up.
        cmt : str or float
            The observation's ``CMT``: a group, a compartment name or number, or a route.
        where : str
            The row, for messages.

        Returns
        -------
        str
            A compartment group or compartment name.
        """
        comps = list(setup.model.compartment_names)
        if _is_number(cmt):
            k = _whole(cmt, where, len(comps))
            return comps[k - 1]
        if not isinstance(cmt, str) or not cmt.strip():
            raise DosingError(where, cmt, "an observation needs CMT: a group (" + ", ".join(
                g for g, c in setup.outputs.items() if c) + "), a compartment or a route")
        s = cmt.strip()
        if s.isdigit():
            return comps[_whole(s, where, len(comps)) - 1]
        low = s.lower()
        groups = {g.lower(): g for g, c in setup.outputs.items() if c}
        if low in groups:
            return groups[low]
        route = ROUTE_ALIASES.get(low, low)
        if route in ROUTE_GROUPS and ROUTE_GROUPS[route] in setup.outputs:
            return ROUTE_GROUPS[route]
        lc = {c.lower(): c for c in comps}
        if low in lc:
            return lc[low]
        check_choice(where, s, list(groups.values()) + list(ROUTES) + comps, DosingError)
        raise AssertionError  # pragma: no cover


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _whole(v, where, n) -> int:
    x = float(v)
    if not math.isfinite(x) or x != int(x) or not 1 <= int(x) <= n:
        raise DosingError(where, v, f"compartment numbers are whole numbers from 1 to {n} (the drug model's "
                          "compartments in order; or use a route, site or compartment name)")
    return int(x)


def _dose_site(cmt, where, setup, lower_sites) -> str:
    comps = list(setup.model.compartment_names)
    if _is_number(cmt) or (isinstance(cmt, str) and cmt.strip().isdigit()):
        return comps[_whole(cmt, where, len(comps)) - 1]
    if not isinstance(cmt, str) or not cmt.strip():
        raise DosingError(where, cmt, "a dose needs CMT: a route (" + ", ".join(ROUTES) + "), a site or a compartment")
    low = cmt.strip().lower()
    if ROUTE_ALIASES.get(low, low) in ROUTES or low in lower_sites:     # a route, or a site or compartment
        return setup.drug_site(lower_sites.get(low, cmt), field=where)   # the drug's own (liposomal) site
    check_choice(where, cmt.strip(), list(ROUTES) + sorted(set(lower_sites.values())), DosingError)
    raise AssertionError  # pragma: no cover


def _sex(v, where):
    if isinstance(v, str):
        s = v.strip().lower()
        if s in ("m", "male", "0"):
            return 0.0
        if s in ("f", "female", "1"):
            return 1.0
        raise DosingError(where, v, "SEX is 0 (male) / 1 (female) or M / F")
    x = float(v)
    if x not in (0.0, 1.0):
        raise DosingError(where, v, "SEX is 0 (male) / 1 (female) or M / F")
    return x


def read_events(table: pd.DataFrame | str | Path | EventData, *, base_dir: str | Path | None = None,
                parameters: list[str] | tuple = ()) -> EventData:
    """Split a NONMEM-style table into doses, covariates (with their timeline) and observations.

    See the module docstring for the columns and the rules (observation at a dose time, time-varying
    covariates by last observation carried forward).

    Parameters
    ----------
    table : DataFrame, str, Path or EventData
        The table, or the path of a CSV file (an :class:`EventData` is returned as it is).
    base_dir : str or Path, optional
        Folder a relative path is read from.
    parameters : list of str, optional
        Model parameter names a column may give per subject (individual values, constant per subject).

    Returns
    -------
    EventData
        Doses, covariates at time 0, covariate timeline, observations, individual parameters.

    Raises
    ------
    DosingError
        A missing or duplicated column, a bad cell (naming row and column), two values of a covariate at one
        time of one subject, a changing parameter column, or an ``SS`` dose of a subject whose covariates
        change.

    Examples
    --------
    >>> import pandas as pd
    >>> from pkcsf.clinical.events import read_events
    >>> table = pd.DataFrame({"ID": [1, 1, 1], "TIME": [0.0, 24.0, 48.0], "AMT": [12.0, None, None],
    ...                       "CMT": ["ommaya", None, None], "EVID": [1, 0, 0], "WT": [70.0, 70.0, 82.0]})
    >>> data = read_events(table)
    >>> data.time_varying
    True
    """
    if isinstance(table, EventData):
        return table
    source = "table"
    if not isinstance(table, pd.DataFrame):
        if not isinstance(table, (str, Path)):
            raise DosingError("event table", type(table).__name__, "must be a DataFrame or the path of a CSV file")
        path = Path(table)
        if base_dir is not None and not path.is_absolute():
            path = Path(base_dir) / path
        if not path.exists():
            raise DosingError("event table", str(path), "the file does not exist")
        source = str(path)
        table = _read_csv(path)
    if len(table) == 0:
        raise DosingError("event table", "0 rows" if source == "table" else source,
                          ("" if source == "table" else "the file has a header but no rows: ") + "an event table "
                          "needs at least one row (under a header with ID, TIME, AMT, CMT, EVID, DV, ...: one row "
                          "per dose or observation; see docs/event_tables.md)")
    lines = _csv_lines(source, len(table)) if source != "table" else ()

    def at(i: int) -> str:
        return _row_label(i, lines, source)
    seen: dict[str, str] = {}
    for c in table.columns:
        key = str(c).strip().upper()
        if key in seen:
            raise DosingError("event table columns", [seen[key], str(c)],
                              f"each column may appear once (column names are case-insensitive: both are {key})")
        seen[key] = str(c)
    df = table.rename(columns={c: str(c).strip().upper() for c in table.columns}).reset_index(drop=True)
    for col in ("TIME", "CMT"):
        if col not in df.columns:
            raise DosingError("event table columns", list(table.columns),
                              f"a {col} column is required (columns: {', '.join(NONMEM_COLUMNS)}, covariates, DV)")
    if "EVID" not in df.columns and "AMT" not in df.columns:
        raise DosingError("event table columns", list(table.columns), "an EVID or an AMT column is required")
    df["ROW"] = np.arange(len(df))
    df["ID"] = [_nonmem_id(v, f"{at(i)}.ID") for i, v in enumerate(df["ID"])] if "ID" in df else 1
    if "EVID" in df:
        evid = []
        for i, v in enumerate(df["EVID"]):
            x = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
            if pd.isna(x) or x != int(x) or int(x) not in (0, 1, 2):
                raise DosingError(f"{at(i)}.EVID", v, "must be 0 (observation), 1 (dose) or 2 (other); "
                                  "resets (3, 4) are not supported")
            evid.append(int(x))
        evid = np.array(evid)
    else:
        amt = pd.to_numeric(df["AMT"], errors="coerce").fillna(0.0).to_numpy()
        evid = np.where(amt > 0, 1, 0)
    df["EVID"] = evid
    param_names = {p.upper(): p for p in parameters}
    covs = [c for c in df.columns if c in COVARIATES]
    pcols = [c for c in df.columns if c in param_names and c not in COVARIATES]
    carried = [c for c in df.columns if c not in _EVENT_COLUMNS and c not in covs and c not in pcols and c != "ROW"]
    if carried:
        warnings.warn(f"event table columns {carried} are neither NONMEM columns nor covariates ("
                      + ", ".join(COVARIATES) + "): carried to the output, not used", UnusedColumnsWarning,
                      stacklevel=2)
    ids = list(dict.fromkeys(df["ID"].tolist()))
    row_time = pd.to_numeric(df["TIME"], errors="coerce").to_numpy(dtype=float)
    if covs:
        bad = ~np.isfinite(row_time) | (row_time < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DosingError(f"{at(i)}.TIME", df["TIME"].iloc[i], "must be a finite time >= 0 (h)")
    cov_rows, par_rows, timeline = [], [], []
    for sid in ids:
        sel = np.flatnonzero((df["ID"] == sid).to_numpy())
        sel = sel[np.argsort(row_time[sel], kind="stable")]          # time order; table order at equal times
        row = {"ID": sid}
        courses = {}
        for c in covs + pcols:
            where = f"event table column {c} (ID {sid!r})"
            vals = [_cell(df[c].iloc[i], c, where) for i in sel]
            if all(v is None for v in vals):
                raise DosingError(where, "empty on every row", "give the subject's value (a covariate or parameter "
                                  "column needs a value for every subject)")
            if c in pcols:
                distinct = sorted({v for v in vals if v is not None})
                if len(distinct) > 1:
                    raise DosingError(where, distinct, "an individual parameter column must be constant within a "
                                      "subject (time-varying covariates are supported, time-varying parameters "
                                      "are not)")
                row[c] = distinct[0]
                continue
            courses[c] = _locf(vals, row_time[sel], sel, where)
            row[c] = courses[c][0][1]
        # the subject's covariate timeline: a new entry wherever any covariate changes
        starts = sorted({t for course in courses.values() for t, _ in course})
        for t in starts:
            timeline.append({"ID": sid, "TIME": float(t),
                             **{c: [v for tt, v in courses[c] if tt <= t][-1] for c in covs}})
        cov_rows.append({k: v for k, v in row.items() if k == "ID" or k in covs})
        par_rows.append({("ID" if k == "ID" else param_names[k]): v for k, v in row.items()
                         if k == "ID" or k in pcols})
    timeline = pd.DataFrame(timeline, columns=["ID", "TIME"] + covs)
    changing = set(timeline.loc[timeline["TIME"] > 0, "ID"])
    if changing and "SS" in df.columns:
        for i, (sid, ev, ss) in enumerate(zip(df["ID"], df["EVID"], df["SS"])):
            if ev == 1 and sid in changing and not _missing(ss) and ss not in (0, 0.0, "0"):
                raise DosingError(f"{at(i)}.SS", ss, "a steady-state dose cannot be combined with "
                                  f"time-varying covariates (subject {sid!r}'s covariates change): a steady state "
                                  "assumes the same parameters over all past doses; give the doses explicitly "
                                  "(AMT with II/ADDL from the first dose) and SS 0")
    doses = df[df["EVID"] == 1].reset_index(drop=True)
    if (df["EVID"] == 1).any() and "AMT" not in df.columns:
        raise DosingError("event table columns", list(table.columns), "dose rows (EVID 1) need an AMT column")
    obs = df[df["EVID"] == 0].copy()
    for i, t in zip(obs["ROW"], obs["TIME"]):
        x = pd.to_numeric(pd.Series([t]), errors="coerce").iloc[0]
        if pd.isna(x) or not math.isfinite(x) or x < 0:
            raise DosingError(f"{at(i)}.TIME", t, "must be a finite time >= 0 (h)")
    obs["TIME"] = pd.to_numeric(obs["TIME"]).astype(float)
    if "DV" in obs:
        dv = pd.to_numeric(obs["DV"], errors="coerce")
        given = obs["DV"].map(lambda v: not (v is None or (isinstance(v, str) and not v.strip())
                                             or (not isinstance(v, str) and pd.isna(v))))
        bad = given & dv.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DosingError(f"{at(int(obs['ROW'].iloc[i]))}.DV", obs["DV"].iloc[i],
                              "must be a number in the scenario's unit, or empty (a prediction-only time); a value "
                              "below the limit of quantification is not a number: leave DV empty or give the limit")
        obs["DV"] = dv
    else:
        obs["DV"] = np.nan
    if "MDV" in obs:       # MDV 1 on an observation row: a prediction-only time (DV not used)
        mdv = pd.to_numeric(obs["MDV"], errors="coerce").fillna(0).to_numpy()
        obs.loc[mdv == 1, "DV"] = np.nan
    # a measured concentration: finite and >= 0 on every observation row whose DV is used
    dv = obs["DV"].to_numpy(dtype=float)
    bad = ~np.isnan(dv) & ~(np.isfinite(dv) & (dv >= 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DosingError(f"{at(int(obs['ROW'].iloc[i]))}.DV", float(dv[i]),
                          "a measured concentration must be a finite number >= 0 in the scenario's unit, or empty "
                          "(a prediction-only time); a value below the limit of quantification: leave DV empty")
    keep = ["ID", "TIME", "CMT", "DV", "ROW"] + carried
    params = pd.DataFrame(par_rows) if pcols else pd.DataFrame()
    return EventData(doses, pd.DataFrame(cov_rows), obs[keep].reset_index(drop=True), ids, tuple(carried),
                     params, source, timeline, lines)


def _row_label(i: int, lines: tuple, source: str) -> str:
    """``event table row i``, with its line for a CSV file (``(line 5 of patients.csv)``)."""
    return f"event table row {i}" + (f" (line {lines[i]} of {Path(source).name})" if i < len(lines) else "")


def _read_csv(path: Path) -> pd.DataFrame:
    """The CSV file as a table; an empty file, a file that is not a CSV table or not text is a DosingError."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DosingError("event table", str(path), "the file is empty: an event table needs a header (ID, TIME, "
                          "AMT, CMT, EVID, DV, ...) and at least one row (see docs/event_tables.md)") from None
    except pd.errors.ParserError as exc:
        raise DosingError("event table", str(path), "is not a readable CSV table: "
                          + " ".join(str(exc).split())) from None
    except UnicodeDecodeError as exc:
        raise DosingError("event table", str(path), f"is not UTF-8 text (byte {exc.start}): save it as a UTF-8 "
                          "CSV file") from None


def _csv_lines(path: str, n_rows: int) -> tuple:
    """The line of the file on which each of the ``n_rows`` data rows starts (the header is line 1 or later;
    blank lines are skipped, as pandas does), or ``()`` when they cannot be matched one to one.
    """
    starts, end = [], 0
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            for rec in reader:
                first, end = end + 1, reader.line_num
                if rec and not (len(rec) == 1 and not rec[0].strip()):
                    starts.append(first)
    except (OSError, UnicodeDecodeError, csv.Error):
        return ()
    return tuple(starts[1:]) if len(starts) == n_rows + 1 else ()


def _missing(v) -> bool:
    return v is None or (isinstance(v, str) and not v.strip()) or (not isinstance(v, str) and bool(pd.isna(v)))


def _cell(v, col: str, where: str) -> float | None:
    """A covariate or parameter cell as a number (SEX: 0/1 or M/F), None when empty."""
    if _missing(v):
        return None
    if col == "SEX":
        return _sex(v, where)
    try:
        x = float(v)
    except (TypeError, ValueError):
        raise DosingError(where, v, "must be a number") from None
    if not math.isfinite(x):
        raise DosingError(where, x, "must be finite numbers")
    return x


def _locf(vals: list, times: np.ndarray, rows: np.ndarray, where: str) -> list[tuple[float, float]]:
    """A covariate's course ``[(from_time, value), ...]`` by last observation carried forward.

    ``vals`` and ``times`` are the subject's rows in time order (table order at equal times). The first
    entry is at time 0 with the first given value (it holds before the first row too); an empty cell
    carries the previous value; rows at one time must agree.
    """
    at: dict[float, float] = {}
    for v, t, r in zip(vals, times, rows):
        if v is None:
            continue
        t = float(t)
        if t in at and at[t] != v:
            raise DosingError(f"{where} at TIME {t:g}", [at[t], v], "rows of one subject at the same time must "
                              "give the same value (a value holds from its row's time; which of two would hold "
                              "is ambiguous): give one value per time")
        at.setdefault(t, v)
    course = []
    for t in sorted(at):
        if not course:
            course.append((0.0, at[t]))
        elif at[t] != course[-1][1]:
            course.append((t, at[t]))
    return course


def nonmem_wide(obs: pd.DataFrame, data: EventData) -> pd.DataFrame:
    """NONMEM-style wide frame: every dose and observation row of the table in order.

    Parameters
    ----------
    obs : DataFrame
        The tidy observations (:meth:`DatasetRun.observations`), one row per observation row.
    data : EventData
        The table.

    Returns
    -------
    DataFrame
        The rows with ``PRED``, ``IPRED``, ``RES = DV - PRED`` and ``IRES = DV - IPRED`` on the observation
        rows, ``MDV``, and each row's covariates (those in effect at its time).
    """
    d = data.doses.copy()
    o = data.observations.copy()
    o["EVID"] = 0
    o["PRED"] = obs["PRED"].to_numpy()
    o["IPRED"] = obs["IPRED"].to_numpy()
    o["GROUP"] = obs["group"].to_numpy()
    wide = pd.concat([d, o], ignore_index=True).sort_values("ROW", kind="stable")
    wide["RES"] = wide["DV"] - wide["PRED"] if "DV" in wide else np.nan
    wide["IRES"] = wide["DV"] - wide["IPRED"] if "DV" in wide else np.nan
    if data.time_varying:        # each row shows the covariates in effect at its time
        tl = data.timeline
        t = pd.to_numeric(wide["TIME"]).to_numpy(dtype=float)
        for c in tl.columns[2:]:
            vals = []
            for sid, ti in zip(wide["ID"], t):
                sub = tl[(tl["ID"] == sid) & (tl["TIME"] <= ti)]
                vals.append(float(sub[c].iloc[-1]))
            wide[c] = vals
    else:
        cov = data.covariates.set_index("ID")
        for c in cov.columns:
            wide[c] = wide["ID"].map(cov[c])
    first = [c for c in ("ID", "TIME", "AMT", "CMT", "EVID", "II", "ADDL", "RATE", "DUR", "DV", "PRED", "IPRED",
                         "RES", "IRES", "GROUP") if c in wide]
    rest = [c for c in wide.columns if c not in first and c not in ("ROW", "MDV")]
    wide = wide[first + rest].reset_index(drop=True)
    wide.insert(wide.columns.get_loc("EVID") + 1, "MDV", (wide["EVID"] != 0).astype(int)
                | wide["DV"].isna().astype(int))
    return wide
