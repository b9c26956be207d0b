"""Observation files: the published (or a user's own) observations the CNS model is judged against.

``parameters/validation/observations.csv`` and its sibling files hold one row per observed number (drug, route,
dose, regimen, model compartment ``site``, quantity, time or window, observed value and unit, role, source).
:func:`load_observations` reads one, :func:`check_observations` checks any table of that shape and names the file,
line, id, column and value of a malformed cell; :mod:`pkcsf.clinical.validation` simulates the rows and
:func:`quantity_value` reads a row's quantity from the simulated curves.

Quantities (``time_h`` is a time or a window ``"a-b"`` in h; ``ref`` is a reference compartment, a route, a position
or a threshold):

=================== =================================================================================
concentration       concentration at ``time_h``
peak_concentration  maximum over the window
time_of_peak        time of that maximum
half_life           ln2 / slope of a log-linear fit over the window
auc_ratio           AUC(site) / AUC(ref compartment) over the window
css_ratio           C(site) / C(ref compartment) at ``time_h`` (end of an infusion or at steady state)
csf_clearance       dose / AUC(site) from 0 to the window end plus the log-linear tail
time_above          time with C(site) above the threshold ``ref`` within the window
steady_state_cmax   maximum over the window (the last dosing interval); ``_cmin`` the minimum
route_peak_ratio    peak at the site after this route / peak after route ``ref`` (same dose)
peak_ratio          peak at the site / peak in compartment ``ref`` (each over the window)
auc                 AUC(site) over the window (row unit, e.g. mg*h/L)
position_peak_ratio peak at the site with the row's ``position`` / peak with position ``ref`` (same dose)
position_auc_ratio  as position_peak_ratio, for the AUC over the window
=================== =================================================================================

``position`` (optional) says when the patient was upright after the lumbar dose (``"upright 1-24 h"``,
:mod:`pkcsf.clinical.position`); empty is lying, the calibrated state.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pkcsf.clinical.position import parse_position
from pkcsf.core.errors import PkcsfError
from pkcsf.core.paths import builtin_dir
from pkcsf.core.units import parse_quantity, to_base

__all__ = ["observations_path", "builtin_observation_files", "observations_file", "check_observations",
           "load_observations", "parse_regimen_cell", "quantity_value", "ObservationError", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "QUANTITIES", "ROLES",
           "PHYSIOLOGY"]

#: physiology used for the rows of each species (NHP rows are compared with the rhesus-scaled model)
PHYSIOLOGY = {"human": "adult", "NHP": "rhesus"}


def observations_path() -> Path:
    """The built-in observations file.

    Returns
    -------
    Path
        ``parameters/validation/observations.csv``.
    """
    return builtin_dir("parameters") / "validation" / "observations.csv"


class ObservationError(PkcsfError):
    """An observations file (or table) is malformed: names the file, the line and id, the column and the value.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


#: columns every observations file must have
REQUIRED_COLUMNS = ("id", "drug", "route", "dose_mg", "site", "quantity", "time_h", "observed", "unit")
#: optional columns (empty when absent; an empty ``regimen`` is a bolus, an empty ``role`` is ``validation``)
OPTIONAL_COLUMNS = ("regimen", "role", "form", "dose_note", "ref", "bound", "population", "species", "source", "where",
                    "note", "age_y", "pathology", "position")
#: the quantities :func:`predict` computes (see the module docstring)
QUANTITIES = ("concentration", "peak_concentration", "time_of_peak", "half_life", "auc_ratio", "css_ratio",
              "csf_clearance", "time_above", "steady_state_cmax", "steady_state_cmin", "route_peak_ratio",
              "peak_ratio", "auc", "position_peak_ratio", "position_auc_ratio")
#: roles of a row: fitted in a documented calibration, never fitted, or the source of a pathology factor (not judged)
ROLES = ("calibration", "validation", "pathology")


def builtin_observation_files() -> dict[str, Path]:
    """The observation files shipped with pkcsf, by name.

    Returns
    -------
    dict
        ``{name: path}`` for every ``parameters/validation/*.csv`` (``observations``, the held-out
        ``observations_v3_candidates``, ``observations_cisternography``).
    """
    folder = builtin_dir("parameters") / "validation"
    return {f.stem: f for f in sorted(folder.glob("*.csv"))}


def observations_file(name_or_path: str | Path) -> Path:
    """Resolve an observations file: an existing path, or the name of a built-in file.

    Parameters
    ----------
    name_or_path : str or Path
        A CSV file, or a name of :func:`builtin_observation_files` (with or without ``.csv``).

    Returns
    -------
    Path
        The file.

    Raises
    ------
    ObservationError
        Neither an existing file nor a built-in name.
    """
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    builtin = builtin_observation_files()
    stem = p.name[:-4] if p.name.endswith(".csv") else p.name
    if str(name_or_path) in (stem, stem + ".csv") and stem in builtin:
        return builtin[stem]
    raise ObservationError("observations", str(name_or_path),
                           "an existing CSV file or a built-in name: " + ", ".join(builtin),
                           "see docs/validation.md for the columns")


def parse_regimen_cell(text: str) -> tuple[float, float, int]:
    """The ``regimen`` cell of an observation row: ``(infusion duration h, dosing interval h, number of doses)``.

    ``"bolus"`` (or empty) is ``(0, 0, 1)``, ``"infusion H"`` is ``(H, 0, 1)``, ``"qH x N"`` is ``(0, H, N)``.

    Parameters
    ----------
    text : str
        The cell.

    Returns
    -------
    tuple of (float, float, int)
        Duration, interval and number of doses.

    Raises
    ------
    ValueError
        Not one of the three forms, or a non-positive number.
    """
    r = (text or "").strip() or "bolus"
    if r == "bolus":
        return 0.0, 0.0, 1
    if r.startswith("infusion"):
        dur = float(r.split()[1])
        if dur > 0:
            return dur, 0.0, 1
    elif r.startswith("q"):
        every, n = r[1:].split("x")
        every, n = float(every), int(n)
        if every > 0 and n >= 1:
            return 0.0, every, n
    raise ValueError(f"unknown regimen {text!r}")


def check_observations(df: pd.DataFrame, source: str = "observations") -> pd.DataFrame:
    """Check an observations table and return it normalised (text columns as text, ``observed`` and ``dose_mg`` as
    floats, optional columns added empty).

    A table read with plain ``pandas.read_csv`` (empty cells as NaN) is accepted as well as one read with
    :func:`load_observations`.

    Parameters
    ----------
    df : DataFrame
        One row per observation, with :data:`REQUIRED_COLUMNS` (and any of :data:`OPTIONAL_COLUMNS`).
    source : str, optional
        Name used in error messages (the file name).

    Returns
    -------
    DataFrame
        A normalised copy.

    Raises
    ------
    ObservationError
        A required column is missing, or a cell is not what its column allows; the message names the file, the
        line (header = line 1), the row's id, the column and the value.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ObservationError(f"{source}: missing column(s)", ", ".join(missing),
                               "required: " + ", ".join(REQUIRED_COLUMNS),
                               "optional: " + ", ".join(OPTIONAL_COLUMNS))
    out = df.copy().reset_index(drop=True)
    for c in OPTIONAL_COLUMNS:
        if c not in out.columns:
            out[c] = ""
    for c in out.columns:
        if c in ("observed", "dose_mg"):
            continue
        col = out[c].astype(object)
        out[c] = ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else
                  (f"{v:g}" if isinstance(v, float) else str(v)).strip() for v in col]

    out["regimen"] = [r or "bolus" for r in out["regimen"]]
    out["role"] = [r or "validation" for r in out["role"]]

    def where(i, col):
        rid = out.at[i, "id"]
        return f"{source}, line {i + 2} (id {rid!r}): {col}"

    for c, rule in (("observed", "a positive finite number"), ("dose_mg", "a finite number >= 0 (mg)")):
        vals = pd.to_numeric(out[c], errors="coerce").astype(float)
        for i, (raw, v) in enumerate(zip(out[c], vals)):
            ok = np.isfinite(v) and (v > 0 if c == "observed" else v >= 0)
            if not ok:
                raise ObservationError(where(i, c), raw, rule)
        out[c] = vals
    seen = {}
    for i in range(len(out)):
        rid = out.at[i, "id"]
        if not rid:
            raise ObservationError(where(i, "id"), rid, "a non-empty identifier")
        if rid in seen:
            raise ObservationError(where(i, "id"), rid, f"unique ids (also on line {seen[rid] + 2})")
        seen[rid] = i
        for col, choices in (("quantity", QUANTITIES), ("role", ROLES), ("bound", ("", "upper", "lower")),
                             ("species", ("",) + tuple(PHYSIOLOGY))):
            if out.at[i, col] not in choices:
                raise ObservationError(where(i, col), out.at[i, col], "one of " + ", ".join(repr(x) for x in choices))
        try:
            a, b = _window(out.at[i, "time_h"])
            ok = np.isfinite(a) and np.isfinite(b) and 0 <= a <= b
        except ValueError:
            ok = False
        if not ok:
            raise ObservationError(where(i, "time_h"), out.at[i, "time_h"], "a time in h ('24') or a window 'a-b' with "
                                   "0 <= a <= b ('72-336')")
        try:
            parse_regimen_cell(out.at[i, "regimen"])
        except (ValueError, IndexError):
            raise ObservationError(where(i, "regimen"), out.at[i, "regimen"],
                                   "'bolus', 'infusion H' (hours) or 'qH x N' (every H hours, N doses)") from None
        try:
            parse_position(out.at[i, "position"])
        except PkcsfError as exc:
            raise ObservationError(where(i, "position"), out.at[i, "position"], exc.allowed) from None
        if out.at[i, "quantity"].startswith("position_"):
            try:
                parse_position(out.at[i, "ref"])
            except PkcsfError as exc:
                raise ObservationError(where(i, "ref"), out.at[i, "ref"], "the reference position of a "
                                       "position_* ratio: " + exc.allowed) from None
        age = out.at[i, "age_y"]
        if age:
            try:
                ok = float(age) >= 0
            except ValueError:
                ok = False
            if not ok:
                raise ObservationError(where(i, "age_y"), age, "empty (adult) or an age in years >= 0")
    return out


def load_observations(path: str | Path | None = None) -> pd.DataFrame:
    """The published observations used for validation (``parameters/validation/observations.csv``).

    Parameters
    ----------
    path : str or Path, optional
        Another observations file of the same format, or the name of a built-in one
        (:func:`builtin_observation_files`).

    Returns
    -------
    DataFrame
        One row per observation, ``observed`` and ``dose_mg`` as floats, other columns as text.

    Raises
    ------
    ObservationError
        The file does not exist or is malformed (:func:`check_observations`).
    """
    f = observations_path() if path is None else observations_file(path)
    try:
        df = pd.read_csv(f, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise ObservationError("observations", str(f), "a CSV file with a header line", str(exc)) from None
    return check_observations(df, f.name)


def _window(text) -> tuple[float, float]:
    s = str(text)
    if "-" in s:
        a, b = s.split("-")
        return float(a), float(b)
    return float(s), float(s)


def quantity_value(row: pd.Series | dict, mw: float, times: np.ndarray, c: np.ndarray, cref: np.ndarray | None,
                   c2: np.ndarray | None) -> float:
    """One subject's value of an observation row's quantity (the table in the module docstring) from its curves.

    Parameters
    ----------
    row : Series or dict
        The observation (``quantity``, ``time_h``, ``unit``, ``ref``, ``dose_mg``).
    mw : float
        Molar mass of the drug (g/mol), for molar units.
    times : ndarray, shape (T,)
        Output times (h).
    c : ndarray, shape (T,)
        Concentration (mg/L) at the row's site.
    cref : ndarray or None
        Concentration in the reference compartment ``ref`` (the ``*_ratio`` quantities between compartments).
    c2 : ndarray or None
        Concentration at the site after the other route (``route_peak_ratio``) or with the reference position
        (``position_*_ratio``).

    Returns
    -------
    float
        The value in the row's unit.

    Raises
    ------
    ValueError
        An unknown quantity, or a curve that does not give it (no positive level in a half-life window).
    """
    q = row["quantity"]
    a, b = _window(row["time_h"])
    unit = row["unit"]

    def conv(x):  # mg/L -> row unit
        return x / to_base(1.0, unit, "concentration", mw=mw)

    sel = (times >= a - 1e-9) & (times <= b + 1e-9)
    if q == "concentration":
        return float(conv(np.interp(a, times, c)))
    if q in ("peak_concentration", "steady_state_cmax"):
        return float(conv(c[sel].max()))
    if q == "steady_state_cmin":
        return float(conv(c[sel].min()))
    if q == "time_of_peak":
        return float(times[sel][np.argmax(c[sel])])
    if q == "half_life":
        y = c[sel]
        ok = y > 0
        slope = np.polyfit(times[sel][ok], np.log(y[ok]), 1)[0]
        return float(math.log(2) / -slope) if slope < 0 else float("inf")
    if q == "auc_ratio":
        return float(np.trapezoid(c[sel], times[sel]) / np.trapezoid(cref[sel], times[sel]))
    if q == "css_ratio":
        return float(np.interp(a, times, c) / np.interp(a, times, cref))
    if q == "csf_clearance":
        auc = np.trapezoid(c[sel], times[sel])
        tail = times[sel][-20:]
        k = -np.polyfit(tail, np.log(c[sel][-20:]), 1)[0]
        auc += c[sel][-1] / k
        cl_L_h = row["dose_mg"] / auc
        return float(cl_L_h / to_base(1.0, unit, "flow"))
    if q == "time_above":
        thr = parse_quantity(row["ref"], "concentration", mw=mw)
        dt = np.diff(times[sel])
        above = (c[sel][:-1] > thr)
        return float(np.sum(dt[above]))
    if q == "peak_ratio":
        return float(c[sel].max() / cref[sel].max())
    if q == "auc":
        return float(np.trapezoid(c[sel], times[sel]) / to_base(1.0, unit, "auc", mw=mw))
    if q in ("route_peak_ratio", "position_peak_ratio"):
        return float(c[sel].max() / c2[sel].max())
    if q == "position_auc_ratio":
        return float(np.trapezoid(c[sel], times[sel]) / np.trapezoid(c2[sel], times[sel]))
    raise ValueError(f"unknown quantity {q!r}")
