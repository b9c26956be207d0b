"""Observation files: the published (or a user's own) observations the CNS model is judged against.

``parameters/validation/observations.csv`` and its sibling files hold one row per observed number (drug, route,
dose, regimen, model compartment ``site``, quantity, time or window, observed value and unit, role, source).
:func:`load_observations` reads one, :func:`check_observations` checks any table of that shape and names the file,
line, id, column and value of a malformed cell; :mod:`pkcsf.clinical.validation` simulates the rows.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pkcsf.core.errors import PkcsfError
from pkcsf.core.paths import builtin_dir

__all__ = ["observations_path", "builtin_observation_files", "observations_file", "check_observations",
           "load_observations", "parse_regimen_cell", "ObservationError", "REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "QUANTITIES", "ROLES",
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
                    "note", "age_y", "pathology")
#: the quantities :func:`predict` computes (see the module docstring)
QUANTITIES = ("concentration", "peak_concentration", "time_of_peak", "half_life", "auc_ratio", "css_ratio",
              "csf_clearance", "time_above", "steady_state_cmax", "steady_state_cmin", "route_peak_ratio",
              "peak_ratio", "auc")
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
