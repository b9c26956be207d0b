"""What each observation quantity needs, and the checks of a row and of a predicted value against it.

:data:`QUANTITY_RULES` gives, for every quantity of :data:`pkcsf.clinical.observations.QUANTITIES`, the form of
``time_h`` (a single time, or a window of positive length), the kind of the row's unit and what ``ref`` is.
:func:`check_quantity_row` checks one row of an observations table against it and against its drug (the routes
its file lists); :func:`check_curve` and :func:`checked_prediction` refuse a simulated curve or a predicted value
that cannot be right (not finite, negative, a ratio over nothing), naming the row's id.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np

from pkcsf.clinical.observation_format import ObservationError, _window, parse_regimen_cell
from pkcsf.clinical.position import parse_position
from pkcsf.clinical.routes import ROUTE_ALIASES, ROUTES
from pkcsf.core.errors import PkcsfError
from pkcsf.core.units import parse_quantity, to_base

__all__ = ["QUANTITY_RULES", "NotFalling", "check_quantity_row", "row_error", "check_curve", "checked_prediction"]

#: quantity -> (form of ``time_h``, kind of the unit, what ``ref`` is). Forms: ``time`` a single time (``"24"``),
#: ``window`` a window ``"a-b"`` with a < b, ``from 0`` a window ``"0-b"``; ``ref`` ``""`` means it must be empty.
QUANTITY_RULES: dict[str, tuple[str, str, str]] = {
    "concentration": ("time", "concentration", ""),
    "peak_concentration": ("window", "concentration", ""),
    "time_of_peak": ("window", "time", ""),
    "half_life": ("window", "time", ""),
    "auc_ratio": ("window", "dimensionless", "compartment"),
    "css_ratio": ("time", "dimensionless", "compartment"),
    "csf_clearance": ("from 0", "flow", ""),
    "time_above": ("window", "time", "threshold"),
    "steady_state_cmax": ("window", "concentration", ""),
    "steady_state_cmin": ("window", "concentration", ""),
    "route_peak_ratio": ("window", "dimensionless", "route"),
    "peak_ratio": ("window", "dimensionless", "compartment"),
    "auc": ("window", "auc", ""),
    "position_peak_ratio": ("window", "dimensionless", "position"),
    "position_auc_ratio": ("window", "dimensionless", "position"),
}

#: quantities whose value must be > 0 (a clearance or a half-life of 0 is no value); every other is >= 0
_POSITIVE = ("half_life", "csf_clearance")

_REF_RULE = {
    "compartment": "the reference compartment of the ratio (e.g. 'plasma', 'lv'; pkcsf models lists them)",
    "route": "the other route of the ratio (same dose)",
    "threshold": "the concentration threshold, a number and a unit (e.g. '0.1 ug/mL')",
    "position": "the reference position of the ratio",
}


class NotFalling(ObservationError):
    """The simulated curve does not fall over a half-life window: there is no half-life to give.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


def _route(value: str, drug, field: str) -> str:
    """A route column (or a route_peak_ratio ``ref``): a route the drug file lists (aliases accepted, returned
    canonical), or any other name, taken as a compartment of the model dosed straight into (the model refuses
    an unknown one when the row is simulated).
    """
    key = value.strip().lower()
    if key not in ROUTES and key not in ROUTE_ALIASES:
        if not value:
            raise ObservationError(field, value, f"a route of {drug.name}: " + ", ".join(drug.routes))
        return value
    canonical = ROUTE_ALIASES.get(key, key)
    if canonical not in drug.routes:
        raise ObservationError(field, value, f"a route of {drug.name}: " + ", ".join(drug.routes),
                               f"parameters/drugs/{drug.name}.toml lists the routes it has values for")
    return canonical


def check_quantity_row(row: Mapping, where: Callable[[str], str], drugs: dict) -> dict[str, str]:
    """Check one row against its quantity's rule (:data:`QUANTITY_RULES`) and its drug.

    Parameters
    ----------
    row : mapping
        The row (text cells; ``quantity``, ``regimen`` and ``position`` already checked).
    where : callable
        ``where(column)`` -> the text naming the file, line, id and column in an error.
    drugs : dict
        Drugs already loaded, by name (filled in).

    Returns
    -------
    dict
        ``{"route": ..., "ref": ...}``: the route (and a route_peak_ratio's ``ref``) as canonical names.

    Raises
    ------
    ObservationError
        An unknown drug, a route the drug file does not list, an empty site, a ``time_h`` of the wrong form, a
        unit of another kind or a ``ref`` the quantity does not take.
    """
    from pkcsf.clinical.drugs import drug as load_drug

    q = row["quantity"]
    form, kind, ref_kind = QUANTITY_RULES[q]
    name = row["drug"]
    if name not in drugs:
        try:
            drugs[name] = load_drug(name)
        except PkcsfError as exc:
            raise ObservationError(where("drug"), name, exc.allowed, exc.fix) from None
    d = drugs[name]
    given_form = str(row.get("form", "") or "").strip()
    if given_form and given_form.lower() != "nan" and given_form != d.form:
        raise ObservationError(where("form"), given_form, f"{name}'s form, {d.form!r} (the form comes from the drug: for "
                               f"another form name that drug, e.g. 'cytarabine_liposomal' for the liposomal product)")
    out = {"route": _route(row["route"], d, where("route")), "ref": row["ref"]}
    if not row["site"]:
        raise ObservationError(where("site"), row["site"], "a compartment or read-out group of the model (e.g. "
                               "'spinal_lumbar', 'lv', 'plasma'; pkcsf models lists them)")
    a, b = _window(row["time_h"])
    if form == "time" and b > a:
        raise ObservationError(where("time_h"), row["time_h"], f"a single time in h for a {q} row ('24'); a window "
                               "'a-b' is for the quantities taken over a window (peak_concentration, auc, ...)")
    if form != "time" and not b > a:
        raise ObservationError(where("time_h"), row["time_h"], f"a window 'a-b' with a < b for a {q} row ('0-48'): "
                               f"the {q} is taken over it")
    if form == "from 0":
        dur, every, n = parse_regimen_cell(row["regimen"])
        end = max(dur, every * (n - 1))
        if a != 0 or not b > end:
            raise ObservationError(where("time_h"), row["time_h"], f"a window '0-b' from the first dose to a time "
                                   f"after the end of dosing (b > {end:g} h): the {q} is the dose over the AUC from 0 "
                                   "to infinity")
    try:
        to_base(1.0, row["unit"], kind, mw=1.0, field="unit")       # the kind only (mw: any, for molar units)
    except PkcsfError as exc:
        raise ObservationError(where("unit"), row["unit"], f"a {kind} unit for a {q} row; {exc.allowed}") from None
    ref = row["ref"]
    if not ref_kind:
        if ref:
            raise ObservationError(where("ref"), ref, f"empty for a {q} row (ref is the reference of the ratios, "
                                   "the threshold of time_above)")
        return out
    if not ref:
        raise ObservationError(where("ref"), ref, f"a {q} row needs {_REF_RULE[ref_kind]}")
    if ref_kind == "route":
        out["ref"] = _route(ref, d, where("ref"))
    elif ref_kind == "position":
        try:
            parse_position(ref)
        except PkcsfError as exc:
            raise ObservationError(where("ref"), ref, f"a {q} row needs {_REF_RULE[ref_kind]}: {exc.allowed}") from None
    elif ref_kind == "threshold":
        try:
            ok = parse_quantity(ref, "concentration", field="ref", mw=d.mw) > 0
        except PkcsfError:
            ok = False
        if not ok:
            raise ObservationError(where("ref"), ref, f"a {q} row needs {_REF_RULE[ref_kind]}, above 0")
    return out


def row_error(row: Mapping, column: str, value: object, allowed: str, fix: str | None = None,
              error: type[ObservationError] = ObservationError) -> ObservationError:
    """An error about a row that was simulated: names its id and the column to change.

    Parameters
    ----------
    row : mapping
        The observation.
    column : str
        The column the problem is in.
    value : object
        Its value.
    allowed : str
        What the simulated curve gives and what is needed.
    fix : str, optional
        A hint.
    error : type of ObservationError, optional
        The class returned.

    Returns
    -------
    ObservationError
        The error (to raise).
    """
    return error(f"observation {row.get('id', '?')!r}: {column}", value, allowed, fix)


def check_curve(row: Mapping, what: str, c: np.ndarray | None) -> np.ndarray | None:
    """A simulated concentration curve, checked: finite, and not negative beyond rounding (which is set to 0).

    Parameters
    ----------
    row : mapping
        The observation.
    what : str
        Which curve (named in the error: ``"site"``, ``"ref"``...).
    c : ndarray or None
        The curve (mg/L).

    Returns
    -------
    ndarray or None
        The curve with rounding below 0 set to 0 (a new array when changed); None for None.

    Raises
    ------
    ObservationError
        A non-finite or a clearly negative level (the solve went wrong).
    """
    if c is None:
        return None
    c = np.asarray(c, dtype=float)
    bad = ~np.isfinite(c)
    if bad.any():
        raise row_error(row, what, row.get(what, what), f"a finite simulated concentration; it is "
                        f"{c[bad][0]!r} at output {int(np.argmax(bad))}", "the solve failed for this row")
    tol = 1e-9 * float(np.max(np.abs(c), initial=0.0)) + 1e-15
    if (c < -tol).any():
        raise row_error(row, what, row.get(what, what), f"a simulated concentration >= 0; it reaches "
                        f"{float(c.min()):.3g} mg/L", "the solve went wrong for this row")
    return np.where(c < 0, 0.0, c) if (c < 0).any() else c


def checked_prediction(row: Mapping, value: float) -> float:
    """The predicted value of a row, if it is possible: finite, >= 0 (> 0 for a half-life or a clearance).

    Parameters
    ----------
    row : mapping
        The observation (``quantity``).
    value : float
        The prediction.

    Returns
    -------
    float
        ``value``.

    Raises
    ------
    ObservationError
        A value that cannot be right, naming the row's id.
    """
    v = float(value)
    q = row["quantity"]
    if not math.isfinite(v) or v < 0 or (q in _POSITIVE and v == 0):
        raise row_error(row, "time_h", row.get("time_h", ""), f"a window over which the simulated {q} is a finite "
                        f"number {'> 0' if q in _POSITIVE else '>= 0'}; it came out {v!r}",
                        "check the window and the site of the row")
    return v
