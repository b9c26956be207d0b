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

import copy
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pkcsf.analysis.readouts import whole_window
from pkcsf.clinical.cns import group_concentrations
from pkcsf.clinical.covariates import COVARIATES
from pkcsf.clinical.events_segments import solve_segments
from pkcsf.clinical.population import Population
from pkcsf.clinical.routes import ROUTE_ALIASES, ROUTES
from pkcsf.core.errors import DosingError, ScenarioError, Status, check_choice
from pkcsf.core.units import concentration_factor
from pkcsf.engine.dosing import NONMEM_COLUMNS, Regimen
from pkcsf.engine.nonmem import _nonmem_id, from_nonmem
from pkcsf.engine.simulate import prepare

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
    """

    doses: pd.DataFrame
    covariates: pd.DataFrame
    observations: pd.DataFrame
    ids: list
    carried: tuple = ()
    parameters: pd.DataFrame = field(default_factory=pd.DataFrame)
    source: str = "table"
    timeline: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __repr__(self):
        return (f"EventData({self.source}: {len(self.ids)} subjects, {len(self.doses)} dose rows, "
                f"{len(self.observations)} observation rows, covariates {list(self.covariates.columns[1:])})")

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
        for i, (row, cmt) in enumerate(zip(df["ROW"], df["CMT"])):
            where = f"event table row {row}.CMT"
            cmts.append(_dose_site(cmt, where, setup, lower_sites))
        df["CMT"] = cmts
        cols = [c for c in df.columns if c in _EVENT_COLUMNS or c == "ID"]
        regs = from_nonmem(df[cols], model=model) if len(df) else {}
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
    route = ROUTE_ALIASES.get(low, low)
    if route in ROUTES:
        if route not in setup.sites:
            raise DosingError(where, cmt, f"{setup.drug.name} can be given by: " + ", ".join(sorted(setup.sites)))
        return setup.sites[route]
    if low in lower_sites:
        return lower_sites[low]
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
        table = pd.read_csv(path)
    if len(table) == 0:
        raise DosingError("event table", "0 rows", "needs at least one row")
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
    df["ID"] = [_nonmem_id(v, f"event table row {i}.ID") for i, v in enumerate(df["ID"])] if "ID" in df else 1
    if "EVID" in df:
        evid = []
        for i, v in enumerate(df["EVID"]):
            x = pd.to_numeric(pd.Series([v]), errors="coerce").iloc[0]
            if pd.isna(x) or x != int(x) or int(x) not in (0, 1, 2):
                raise DosingError(f"event table row {i}.EVID", v, "must be 0 (observation), 1 (dose) or 2 (other); "
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
            raise DosingError(f"event table row {i}.TIME", df["TIME"].iloc[i], "must be a finite time >= 0 (h)")
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
                raise DosingError(f"event table row {i}.SS", ss, "a steady-state dose cannot be combined with "
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
            raise DosingError(f"event table row {i}.TIME", t, "must be a finite time >= 0 (h)")
    obs["TIME"] = pd.to_numeric(obs["TIME"]).astype(float)
    if "DV" in obs:
        dv = pd.to_numeric(obs["DV"], errors="coerce")
        given = obs["DV"].map(lambda v: not (v is None or (isinstance(v, str) and not v.strip())
                                             or (not isinstance(v, str) and pd.isna(v))))
        bad = given & dv.isna()
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DosingError(f"event table row {obs['ROW'].iloc[i]}.DV", obs["DV"].iloc[i],
                              "must be a number in the scenario's unit, or empty (a prediction-only time); a value "
                              "below the limit of quantification is not a number: leave DV empty or give the limit")
        if not np.isfinite(dv.dropna().to_numpy(dtype=float)).all():
            raise DosingError("event table column DV", "inf", "must be finite numbers")
        obs["DV"] = dv
    else:
        obs["DV"] = np.nan
    if "MDV" in obs:       # MDV 1 on an observation row: a prediction-only time (DV not used)
        mdv = pd.to_numeric(obs["MDV"], errors="coerce").fillna(0).to_numpy()
        obs.loc[mdv == 1, "DV"] = np.nan
    keep = ["ID", "TIME", "CMT", "DV", "ROW"] + carried
    params = pd.DataFrame(par_rows) if pcols else pd.DataFrame()
    return EventData(doses, pd.DataFrame(cov_rows), obs[keep].reset_index(drop=True), ids, tuple(carried),
                     params, source, timeline)


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


class DatasetRun:
    """Simulate the subjects of an :class:`EventData` for one drug set-up: PRED (typical parameters with
    each subject's covariates), IPRED, profiles on a grid and simulated replicates for a VPC.

    With time-varying covariates (``data.time_varying``) every solve runs in segments between the change
    times (:func:`pkcsf.clinical.events_segments.solve_segments`): ``starts`` holds the segment starts,
    the grid lists each change time twice (left limit with the old covariates, right limit with the new,
    after any dose at that time), and an observation read before a dose at a change time gets an extra
    point after the grid (new covariates, amounts before the dose).

    Parameters
    ----------
    data : EventData
        The table's doses, covariates and observations.
    setup : Setup
        From :func:`pkcsf.clinical.cns.setup`.
    population : Population
        Random effects and covariate effects; its data are ``data.covariates``.
    unit : str
        Concentration unit of DV, PRED and IPRED.
    groups : list of str
        Compartment groups of the profiles (plasma first).
    times : ndarray
        Profile grid (h); observation and dose times are added.
    solver : str, optional
        Engine solver name.
    max_steps : int, optional
        Adaptive-solver step budget (per segment with time-varying covariates).
    thresholds : list of tuple, optional
        ``(label, value in mg/L)`` for the time-above read-outs of :meth:`metrics`.
    """

    def __init__(self, data: EventData, setup: Setup, population: Population, unit: str, groups: list[str],
                 times: np.ndarray, *, solver: str = "auto", max_steps: int | None = None,
                 thresholds: list | tuple = ()):
        self.data, self.setup, self.population = data, setup, population
        self.unit, self.groups = unit, list(groups)
        self.factor = concentration_factor(unit, setup.mw)
        self.regimens = data.regimens_for(setup)
        self.solver, self.max_steps = solver, max_steps
        self.thresholds = list(thresholds)
        obs = data.observations
        self.obs_readout = [data.readout_of(setup, c, f"event table row {r}.CMT")
                            for c, r in zip(obs["CMT"], obs["ROW"])]
        readouts = list(self.groups) + [r for r in dict.fromkeys(self.obs_readout) if r not in self.groups]
        self.readouts = readouts
        self.states, self.W = setup.group_weights(readouts)
        # dose times per subject (each listed twice on the grid: before / after)
        self.dose_times = {i: np.array(sorted({d.time for d in reg.expand()})) for i, reg in self.regimens.items()}
        all_doses = np.concatenate([v for v in self.dose_times.values()] + [np.zeros(0)])
        base = np.asarray(times, dtype=float)
        t_obs = obs["TIME"].to_numpy(dtype=float)
        dose_t = np.unique(all_doses)
        end = max(base[-1], t_obs.max() if len(t_obs) else 0.0)
        #: segment start times (h) when covariates change within a subject, else None
        self.starts = None
        self._virtual: dict = {}
        if data.time_varying:
            self._segment_grid(base, t_obs, dose_t, end)
        else:
            grid = np.union1d(np.setdiff1d(np.union1d(base, t_obs), dose_t), np.zeros(0))
            self.times = np.sort(np.concatenate([grid, dose_t, dose_t]), kind="stable")
            self.times = self.times[self.times <= end]
        # which grid index each observation reads: before a dose at the same time if its row comes first
        dose_rows = data.doses
        idx = []
        for sid, t, row in zip(obs["ID"], t_obs, obs["ROW"]):
            lo = int(np.searchsorted(self.times, t, side="left"))
            hi = int(np.searchsorted(self.times, t, side="right")) - 1
            first_dose_row = dose_rows.loc[(dose_rows["ID"] == sid)
                                           & (pd.to_numeric(dose_rows["TIME"]) == t), "ROW"]
            if len(first_dose_row):      # a dose row at this time: the table's order decides
                before = row < first_dose_row.min()
            else:                        # a dose implied by II/ADDL: the observation comes first (a trough)
                before = bool(np.any(self.dose_times[sid] == t))
            if before and float(t) in self._virtual:   # before a dose at a covariate change: new covariates
                idx.append(self._virtual[float(t)])
            else:
                idx.append(lo if before else hi)
        self.obs_index = np.array(idx, dtype=int)
        self.obs_subject = np.array([data.ids.index(i) for i in obs["ID"]], dtype=int)
        self.obs_col = np.array([readouts.index(r) for r in self.obs_readout], dtype=int)
        self._pred = None
        self._ipred = None

    def _segment_grid(self, base, t_obs, dose_t, end) -> None:
        """The grid of a table whose covariates change: each change time is listed twice, the left limit
        (end of the old segment, old covariates) then the right limit (new covariates, after any dose at
        that time); other dose times twice (before / after the doses). Observations read before a dose at
        a change time get an extra point after the grid (new covariates, before the dose).
        """
        chg = self.data.change_times
        chg = chg[chg <= end]
        self.starts = np.concatenate([[0.0], chg])
        plain = np.setdiff1d(np.union1d(base, t_obs), np.union1d(dose_t, chg))
        entries = [(t, 2) for t in plain]
        entries += [e for t in np.setdiff1d(dose_t, chg) for e in ((t, 1), (t, 2))]
        entries += [e for t in chg for e in ((t, 0), (t, 2))]
        entries = sorted(e for e in entries if e[0] <= end)
        self.times = np.array([e[0] for e in entries], dtype=float)
        kinds = np.array([e[1] for e in entries], dtype=int)
        virtual = np.intersect1d(dose_t, chg)
        self._virtual = {float(t): len(self.times) + j for j, t in enumerate(virtual)}
        t_all = np.concatenate([self.times, virtual])
        seg = np.searchsorted(self.starts, t_all, side="right") - 1
        seg[:len(kinds)] -= (kinds == 0)            # a left limit reads the end of the previous segment
        self._seg = seg.astype(np.int64)
        self._tloc = t_all - self.starts[self._seg]
        self._order = np.concatenate([np.ones(len(self.times), int), np.zeros(len(virtual), int)])

    # -------------------------------------------------------------- solving
    def params(self, *, variability: bool, seed: int = 0) -> pd.DataFrame:
        """Each patient's parameters: typical values with his covariates (with ``variability``: random effects).

        With time-varying covariates these are the parameters of the first segment (covariates at time 0);
        :meth:`segment_params` gives every segment's.

        Parameters
        ----------
        variability : bool
            Apply the population's random effects.
        seed : int, optional
            Random seed of the random effects.

        Returns
        -------
        DataFrame
            ``ID``, covariates and one column per model parameter (base units), one row per patient.
        """
        n = self.data.n
        p = self.population.individual(self.setup.parameters, n, seed=seed, variability=variability)
        return p

    def segment_params(self, *, variability: bool, seed: int = 0) -> list[pd.DataFrame]:
        """Each patient's parameters in every covariate segment (one table per segment start in ``starts``).

        The random effects of a patient are the same in every segment (the same seed and subject index);
        only the covariates, hence the covariate effects, change.

        Parameters
        ----------
        variability : bool
            Apply the population's random effects.
        seed : int, optional
            Random seed of the random effects.

        Returns
        -------
        list of DataFrame
            One :meth:`params`-like table per segment (a single table when no covariate changes).
        """
        if self.starts is None:
            return [self.params(variability=variability, seed=seed)]
        if self.population.data is None:
            raise ScenarioError("population", self.population, "time-varying covariates need a population whose "
                                "data are the table's covariates")
        out = []
        for a in self.starts:
            pop = copy.copy(self.population)
            pop.data = self.data.covariates_at(a).reset_index(drop=True)
            out.append(pop.individual(self.setup.parameters, self.data.n, seed=seed, variability=variability))
        return out

    def solve(self, params: pd.DataFrame | list[pd.DataFrame], regimens: dict | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Readout concentrations (n, T, R) in ``unit`` and solver status (NaN for failed subjects).

        Parameters
        ----------
        params : DataFrame or list of DataFrame
            One row per subject (an ``ID`` column naming its regimen); with time-varying covariates a list
            with one table per segment (:meth:`segment_params`).
        regimens : dict, optional
            ``{ID: Regimen}`` (default: the table's).

        Returns
        -------
        tuple
            ``(conc, status)``: concentrations (n, T', R) with T' >= ``len(times)`` (the points after the
            grid are observation-only values, see :meth:`_segment_grid`), and :class:`Status` codes.
        """
        regimens = self.regimens if regimens is None else regimens
        model_params = set(self.setup.model.parameter_names)
        budget = {} if self.max_steps is None else {"max_steps": self.max_steps}
        if self.starts is not None:
            if isinstance(params, pd.DataFrame):
                raise ScenarioError("params", "one table", "the covariates of this table change with time: give "
                                    f"one parameter table per covariate segment ({len(self.starts)}; see "
                                    "DatasetRun.segment_params)")
            return self._solve_segments(params, regimens, model_params)
        if isinstance(params, list):
            params, = params
        cols = [c for c in params.columns if c in model_params or c == "ID"]
        prob = prepare(self.setup.model, regimens, params[cols],
                       times=self.times, outputs=self.states, solver=self.solver, **budget)
        out, status, _ = prob.solve()
        conc = group_concentrations(prob, out, self.W, self.factor)
        conc[status != 0] = np.nan
        return conc, status

    def _solve_segments(self, seg_params, regimens, model_params):
        if len(seg_params) != len(self.starts):
            raise ScenarioError("params", f"{len(seg_params)} tables", f"one per covariate segment "
                                f"({len(self.starts)})")
        cols = [c for c in seg_params[0].columns if c in model_params]
        regs = [regimens[i] for i in seg_params[0]["ID"]]
        amounts, status, probs = solve_segments(self.setup.model, regs, [p[cols] for p in seg_params],
                                                self.starts, self._seg, self._tloc, order=self._order,
                                                solver=self.solver, max_steps=self.max_steps)
        names = probs[0].compiled.state_names
        sidx = [names.index(s) for s in self.states]
        n, M = amounts.shape[:2]
        conc = np.full((n, M, self.W.shape[1]), np.nan)
        for k, prob in enumerate(probs):
            pts = self._seg == k
            V = prob.compiled.volumes(prob.P)[:, sidx]
            conc[:, pts] = (amounts[:, pts][:, :, sidx] @ self.W) * (self.factor / (V @ self.W)[:, None, :])
        conc[status != 0] = np.nan
        return conc, status

    @property
    def pred(self) -> tuple[np.ndarray, np.ndarray]:
        """(conc (n, T, R), status) of the typical subject with each patient's covariates."""
        if self._pred is None:
            self._pred = self.solve(self.segment_params(variability=False))
        return self._pred

    @property
    def ipred(self) -> tuple[np.ndarray, np.ndarray]:
        """(conc, status) with the table's individual parameters where given, else PRED."""
        if self._ipred is None:
            given = self.data.parameters
            if given.empty:
                self._ipred = self.pred
            else:
                ps = self.segment_params(variability=False)
                for p in ps:
                    for c in given.columns:
                        if c != "ID":
                            p[c] = given[c].to_numpy(dtype=float)
                self._ipred = self.solve(ps)
        return self._ipred

    def at_observations(self, conc: np.ndarray) -> np.ndarray:
        """The values of ``conc`` (n, T, R) at the observation rows.

        Parameters
        ----------
        conc : ndarray, shape (n, T', R)
            From :meth:`solve`.

        Returns
        -------
        ndarray, shape (n_observations,)
        """
        return conc[self.obs_subject, self.obs_index, self.obs_col]

    def observations(self) -> pd.DataFrame:
        """Tidy frame: ``ID, TIME, group, DV, PRED, IPRED, unit`` (one row per observation row).

        Returns
        -------
        DataFrame
            One row per observation row of the table, with the carried columns.
        """
        obs = self.data.observations
        out = pd.DataFrame({"ID": obs["ID"].to_numpy(), "TIME": obs["TIME"].to_numpy(),
                            "group": self.obs_readout, "DV": obs["DV"].to_numpy(dtype=float),
                            "PRED": self.at_observations(self.pred[0]),
                            "IPRED": self.at_observations(self.ipred[0]), "unit": self.unit})
        for c in self.data.carried:
            out[c] = obs[c].to_numpy()
        return out

    def simulate_observations(self, replicates: int = 200, seed: int = 0) -> pd.DataFrame:
        """The data set's design simulated ``replicates`` times with random effects (a visual predictive
        check): ``REP, ID, TIME, group, SIM`` in ``unit`` (failed subjects are dropped).

        Parameters
        ----------
        replicates : int, optional
            Number of simulated copies of the design.
        seed : int, optional
            Replicate ``r`` uses the random effects of seed ``seed + r``.

        Returns
        -------
        DataFrame
            ``REP, ID, TIME, group, SIM`` (one row per replicate and observation row).
        """
        if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
            raise ScenarioError("replicates", replicates, "must be a whole number >= 1")
        parts = []
        obs = self.data.observations
        n = self.data.n
        block = max(1, 2000 // max(n, 1))          # replicates solved together (one engine call)
        for r0 in range(0, int(replicates), block):
            reps = range(r0, min(int(replicates), r0 + block))
            ps, regs = [], {}
            for r in reps:      # replicate r: seed + r; subjects relabelled (r, k) so their doses stay theirs
                segs = self.segment_params(variability=True, seed=int(seed) + r)
                for p in segs:
                    p["ID"] = [f"{r}|{k}" for k in range(n)]
                ps.append(segs)
                regs.update({f"{r}|{k}": self.regimens[i] for k, i in enumerate(self.data.ids)})
            stacked = [pd.concat([segs[k] for segs in ps], ignore_index=True) for k in range(len(ps[0]))]
            conc, status = self.solve(stacked, regs)
            for j, r in enumerate(reps):
                sim = conc[j * n + self.obs_subject, self.obs_index, self.obs_col]
                parts.append(pd.DataFrame({"REP": r, "ID": obs["ID"].to_numpy(), "TIME": obs["TIME"].to_numpy(),
                                           "group": self.obs_readout, "SIM": sim}))
        out = pd.concat(parts, ignore_index=True)
        return out[np.isfinite(out["SIM"])].reset_index(drop=True)

    # -------------------------------------------------------------- scenario pieces
    def group_profiles(self, conc: np.ndarray) -> np.ndarray:
        """The compartment-group part (n, T, G) of ``conc`` on ``times``.

        Parameters
        ----------
        conc : ndarray, shape (n, T', R)
            From :meth:`solve`.

        Returns
        -------
        ndarray, shape (n, T, G)
        """
        return conc[:, :len(self.times), :len(self.groups)]

    def metrics(self, arm_name: str, drug: str) -> pd.DataFrame:
        """Per-subject read-outs of the PRED profiles over the whole window.

        Cmax, Tmax, AUC (linear-up/log-down on the grid, which holds every dose, observation and covariate
        change time; a change time is a jump pair, so the AUC is continuous through it), ratio_auc_plasma,
        time_above / longest_above per threshold.

        Parameters
        ----------
        arm_name : str
            The arm's name (a column of the result).
        drug : str
            The drug's name.

        Returns
        -------
        DataFrame
            One row per subject and group; failed subjects have NaN values and their status.
        """
        conc, status = self.pred
        prof = np.ascontiguousarray(self.group_profiles(conc))
        n, T, G = prof.shape
        thr = np.array([v * self.factor for _, v in self.thresholds])
        r = whole_window(self.times, np.nan_to_num(prof), thr)
        out = {"arm": arm_name, "id": np.repeat(np.array(self.data.ids, dtype=object), G), "drug": drug,
               "group": np.tile(self.groups, n), "unit": self.unit, "cmax": r["cmax"].ravel(),
               "tmax": r["tmax"].ravel(), "auc": r["auc"].ravel()}
        pl = r["auc"][:, self.groups.index("plasma")]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ratio_auc_plasma"] = (r["auc"] / pl[:, None]).ravel()
        for k, (label, _) in enumerate(self.thresholds):
            out[f"time_above[{label}]"] = r["time_above"][:, :, k].ravel()
            out[f"longest_above[{label}]"] = r["longest_above"][:, :, k].ravel()
        df = pd.DataFrame(out)
        failed = np.repeat(status != 0, G)
        if failed.any():
            value_cols = [c for c in df.columns if c not in ("arm", "id", "drug", "group", "unit")]
            df.loc[failed, value_cols] = np.nan
        df["auc_unit"] = f"{self.unit}*h"
        df["status"] = np.repeat([Status(int(x)).name for x in status], G)
        return df


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
