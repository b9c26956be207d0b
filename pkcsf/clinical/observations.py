"""Observation files: the published (or a user's own) observations the CNS model is judged against.

``parameters/validation/observations.csv`` and its sibling files hold one row per observed number (drug, route,
dose, regimen, model compartment ``site``, quantity, time or window, observed value and unit, role, source).
:func:`load_observations` reads one, :func:`check_observations` checks any table of that shape and names the file,
line, id, column and value of a malformed cell; :mod:`pkcsf.clinical.validation` simulates the rows and
:func:`quantity_value` reads a row's quantity from the simulated curves.

Quantities (``time_h`` is a single time or a window ``"a-b"`` in h, as each quantity needs; ``ref`` is a reference
compartment, a route, a position or a threshold, only for the quantities that name one; the unit is of the kind
shown, e.g. ``umol/L`` for a concentration, ``h`` or ``d`` for a time, ``1`` or ``%`` for a ratio;
:data:`pkcsf.clinical.observation_checks.QUANTITY_RULES`):

=================== ========== ============= =====================================================================
quantity            time_h     unit          value
=================== ========== ============= =====================================================================
concentration       time       concentration concentration at ``time_h``
peak_concentration  window     concentration maximum over the window
time_of_peak        window     time          time of that maximum
half_life           window     time          ln2 / slope of a log-linear fit over the window (the curve must fall)
auc_ratio           window     1             AUC(site) / AUC(ref compartment) over the window
css_ratio           time       1             C(site) / C(ref compartment) at ``time_h`` (end of an infusion or at
                                             steady state)
csf_clearance       ``0-b``    flow          dose (all doses) / AUC(site) from 0 to the window end (after the end
                                             of dosing) plus the log-linear tail
time_above          window     time          time with C(site) above the threshold ``ref`` within the window
steady_state_cmax   window     concentration maximum over the window (the last dosing interval); ``_cmin`` the minimum
route_peak_ratio    window     1             peak at the site after this route / peak after route ``ref`` (same
                                             dose)
peak_ratio          window     1             peak at the site / peak in compartment ``ref`` (each over the window)
auc                 window     auc           AUC(site) over the window (e.g. mg*h/L)
position_peak_ratio window     1             peak at the site with the row's ``position`` / peak with position
                                             ``ref`` (same dose)
position_auc_ratio  window     1             as position_peak_ratio, for the AUC over the window
=================== ========== ============= =====================================================================

A window has a < b and must hold at least two output times of the simulation (every 0.05 h up to 72 h, 0.25 h
up to 1000 h, 2 h beyond). ``route`` is a route the drug file lists (``pkcsf drugs``; aliases such as ``it`` are
read as the route) or a compartment of the model dosed straight into (``tfv``); ``dose_mg`` is > 0 (each dose of
a regimen). A prediction that cannot be right (not finite, negative, a ratio over a reference without drug, the
half-life of a curve that does not fall) is refused naming the row's id, never reported as a number.

``position`` (optional) says when the patient was upright after the lumbar dose (``"upright 1-24 h"``,
:mod:`pkcsf.clinical.position`); empty is lying, the calibrated state.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pkcsf.clinical.observation_format import ObservationError, _window, parse_regimen_cell
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


def check_observations(df: pd.DataFrame, source: str = "observations") -> pd.DataFrame:
    """Check an observations table and return it normalised (text columns as text, ``observed`` and ``dose_mg`` as
    floats, optional columns added empty, route aliases as the route: ``it`` -> ``lumbar``).

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
        A required column is missing, the table has no rows, or a cell is not what its column allows (for the
        row's quantity too: :func:`pkcsf.clinical.observation_checks.check_quantity_row`); the message names the
        file, the line (header = line 1), the row's id, the column and the value.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ObservationError(f"{source}: missing column(s)", ", ".join(missing),
                               "required: " + ", ".join(REQUIRED_COLUMNS),
                               "optional: " + ", ".join(OPTIONAL_COLUMNS))
    if not len(df):
        raise ObservationError(f"{source}: rows", 0, "at least one observation under the header line",
                               "see docs/cli.md (pkcsf validate) for the columns")
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

    for c, rule in (("observed", "a positive finite number"), ("dose_mg", "a positive finite number (mg)")):
        vals = pd.to_numeric(out[c], errors="coerce").astype(float)
        for i, (raw, v) in enumerate(zip(out[c], vals)):
            if not (np.isfinite(v) and v > 0):
                raise ObservationError(where(i, c), raw, rule)
        out[c] = vals
    from pkcsf.clinical.observation_checks import check_quantity_row

    seen, drugs = {}, {}
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
        fixed = check_quantity_row(out.loc[i], lambda col, i=i: where(i, col), drugs)
        out.at[i, "route"], out.at[i, "ref"] = fixed["route"], fixed["ref"]
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


def quantity_value(row: pd.Series | dict, mw: float, times: np.ndarray, c: np.ndarray, cref: np.ndarray | None,
                   c2: np.ndarray | None) -> float:
    """One subject's value of an observation row's quantity (the table in the module docstring) from its curves.

    Parameters
    ----------
    row : Series or dict
        The observation (``id``, ``quantity``, ``time_h``, ``unit``, ``ref``, ``dose_mg``, ``regimen``).
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
        The value in the row's unit: finite and >= 0 (> 0 for a half-life or a clearance).

    Raises
    ------
    ObservationError
        The curves do not give the quantity, naming the row's id: a window holding fewer than two output times,
        no level above 0 where one is needed, a ratio over a reference without drug, a clearance whose curve
        still rises at the window end, a value that is not finite or is negative;
        :class:`~pkcsf.clinical.observation_checks.NotFalling` for a half-life window over which the curve does
        not fall.
    ValueError
        An unknown quantity.
    """
    from pkcsf.clinical.observation_checks import QUANTITY_RULES, check_curve, checked_prediction

    q = row["quantity"]
    if q not in QUANTITY_RULES:
        raise ValueError(f"unknown quantity {q!r}")
    a, b = _window(row["time_h"])
    c, cref, c2 = check_curve(row, "site", c), check_curve(row, "ref", cref), check_curve(row, "site", c2)
    sel = (times >= a - 1e-9) & (times <= b + 1e-9)
    if QUANTITY_RULES[q][0] != "time" and sel.sum() < 2:
        step = float(times[1] - times[0]) if len(times) > 1 else 0.0
        raise _row_error(row, "time_h", row["time_h"], f"a window holding at least 2 output times of the "
                         f"simulation (every {step:g} h here); it holds {int(sel.sum())}", "widen the window")
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        value = _raw_value(row, q, a, mw, times, sel, c, cref, c2)
    return checked_prediction(row, value)


def _row_error(*args, **kw) -> ObservationError:
    from pkcsf.clinical.observation_checks import row_error

    return row_error(*args, **kw)


def _over(row, num: float, den: float) -> float:
    """``num / den``, refused when the reference ``den`` (the row's ``ref``) has no drug."""
    if not den > 0:
        raise _row_error(row, "ref", row.get("ref", ""), "a reference with drug in the window; its simulated "
                         f"{'AUC' if 'auc' in row['quantity'] else 'level'} is {den:.3g}, so the ratio has no value",
                         "check the reference and the window")
    return num / den


def _log_slope(row, t: np.ndarray, y: np.ndarray) -> float:
    """Slope of log(y) against t over the levels above 0 (at least two)."""
    import warnings

    ok = y > 0
    if ok.sum() < 2:
        raise _row_error(row, "time_h", row["time_h"], f"a window with at least 2 simulated levels above 0 at "
                         f"{row.get('site', '')!r}; it has {int(ok.sum())}", "move the window to where the drug is")
    with warnings.catch_warnings():
        warnings.simplefilter("error", np.exceptions.RankWarning)
        try:
            return float(np.polyfit(t[ok], np.log(y[ok]), 1)[0])
        except (np.exceptions.RankWarning, np.linalg.LinAlgError):
            raise _row_error(row, "time_h", row["time_h"], "a window over which a log-linear fit is well "
                             "conditioned", "widen the window") from None


def _raw_value(row, q, a, mw, times, sel, c, cref, c2) -> float:
    """The quantity from the checked curves (before the check of the value)."""
    from pkcsf.clinical.observation_checks import NotFalling

    unit = row["unit"]

    def conv(x):  # mg/L -> row unit
        return x / to_base(1.0, unit, "concentration", mw=mw)

    def hours(x):  # h -> row unit
        return x / to_base(1.0, unit, "time")

    def ratio(x):  # fraction -> row unit (1, %)
        return x / to_base(1.0, unit, "dimensionless")

    if q == "concentration":
        return float(conv(np.interp(a, times, c)))
    if q in ("peak_concentration", "steady_state_cmax"):
        return float(conv(c[sel].max()))
    if q == "steady_state_cmin":
        return float(conv(c[sel].min()))
    if q == "time_of_peak":
        if not c[sel].max() > 0:
            raise _row_error(row, "time_h", row["time_h"], "a window in which the drug reaches "
                             f"{row.get('site', '')!r}; its simulated level is 0 throughout, so it has no peak")
        return float(hours(times[sel][np.argmax(c[sel])]))
    if q == "half_life":
        slope = _log_slope(row, times[sel], c[sel])
        if not slope < 0:
            k = int(np.argmax(c))
            fix = (f"start the window after the simulated peak (at {times[k]:g} h)" if k < len(c) - 1 else
                   "the simulated level still rises at the window end: start the window after the peak")
            raise _row_error(row, "time_h", row["time_h"], f"a window over which the simulated concentration at "
                             f"{row.get('site', '')!r} falls; it does not fall over this one, so it has no half-life",
                             fix, error=NotFalling)
        return float(hours(math.log(2) / -slope))
    if q == "auc_ratio":
        return float(ratio(_over(row, np.trapezoid(c[sel], times[sel]), np.trapezoid(cref[sel], times[sel]))))
    if q == "css_ratio":
        return float(ratio(_over(row, np.interp(a, times, c), np.interp(a, times, cref))))
    if q == "csf_clearance":
        auc = np.trapezoid(c[sel], times[sel])
        slope = _log_slope(row, times[sel][-20:], c[sel][-20:])
        if not slope < 0:
            raise _row_error(row, "time_h", row["time_h"], f"a window ending once the simulated concentration at "
                             f"{row.get('site', '')!r} falls (to extrapolate the AUC to infinity); it still rises "
                             "at the end of this one", "end the window later")
        auc += c[sel][-1] / -slope
        cl_L_h = row["dose_mg"] * parse_regimen_cell(row.get("regimen", ""))[2] / auc
        return float(cl_L_h / to_base(1.0, unit, "flow"))
    if q == "time_above":
        thr = parse_quantity(row["ref"], "concentration", mw=mw)
        dt = np.diff(times[sel])
        above = (c[sel][:-1] > thr)
        return float(hours(np.sum(dt[above])))
    if q == "peak_ratio":
        return float(ratio(_over(row, c[sel].max(), cref[sel].max())))
    if q == "auc":
        return float(np.trapezoid(c[sel], times[sel]) / to_base(1.0, unit, "auc", mw=mw))
    if q in ("route_peak_ratio", "position_peak_ratio"):
        return float(ratio(_over(row, c[sel].max(), c2[sel].max())))
    return float(ratio(_over(row, np.trapezoid(c[sel], times[sel]), np.trapezoid(c2[sel], times[sel]))))
