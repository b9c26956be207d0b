"""Units: the engine's base units and the conversions users meet.

Base units inside pkcsf: amount **mg**, time **h**, volume **L**, flow or
clearance **L/h**, concentration **mg/L**. Molar concentrations need the
molecular weight (g/mol): 1 µmol/L = MW/1000 mg/L.

Quantities are written as text ("12 mg", "1 umol/L", "3.5 d", "0.35 mL/min")
or given as numbers already in base units.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pkcsf.core.errors import PkcsfError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["parse_quantity", "to_base", "from_base", "concentration_factor", "UNITS", "KINDS", "TIME_UNITS"]

_MICRO = ("u", "µ", "μ", "mc")

# unit -> (kind, factor to base unit, needs_mw)
# For molar units the factor is per g/mol of MW: value_mg_per_L = value * factor * MW.
UNITS: dict[str, tuple[str, float, bool]] = {}


# a name that means different things in two kinds ("month": 4 weeks as a time, 1/12 year as an age):
# UNITS keeps the first kind; the others are found by (kind, name) when the kind is known
_OTHER_KIND: dict[tuple[str, str], tuple[str, float, bool]] = {}


def _add(kind, names, factor, needs_mw=False):
    for n in names:
        if n in UNITS and UNITS[n][0] != kind:
            _OTHER_KIND[(kind, n)] = (kind, factor, needs_mw)
        else:
            UNITS[n] = (kind, factor, needs_mw)


_add("amount", ["mg"], 1.0)
_add("amount", ["g"], 1e3)
_add("amount", [p + "g" for p in _MICRO], 1e-3)
_add("amount", ["ng"], 1e-6)
_add("amount", ["mmol"], 1.0, True)          # mmol * MW(g/mol) = mg
_add("amount", [p + "mol" for p in _MICRO], 1e-3, True)
_add("amount", ["nmol"], 1e-6, True)

_add("concentration", ["mg/L", "mg/l", "ug/mL", "µg/mL", "μg/mL", "mcg/mL", "ug/ml", "mcg/ml", "µg/ml"], 1.0)
_add("concentration", ["g/L", "g/l", "mg/mL", "mg/ml"], 1e3)
_add("concentration", ["ug/L", "µg/L", "μg/L", "mcg/L", "ng/mL", "ng/ml", "ug/l"], 1e-3)
_add("concentration", ["ng/L", "pg/mL"], 1e-6)
_add("concentration", ["M", "mol/L", "mol/l"], 1e3, True)
_add("concentration", ["mM", "mmol/L", "mmol/l"], 1.0, True)
_add("concentration", [p + s for p in _MICRO for s in ("M", "mol/L", "mol/l")], 1e-3, True)
_add("concentration", ["nM", "nmol/L", "nmol/l"], 1e-6, True)

# The one table of time units (hours) for the whole package: quantities (dt = "15 min"), scenario files,
# the command line, regimen text and calendars all read it. A month is 4 weeks (672 h), pkcsf's dosing
# convention everywhere ("monthly" = every 28 days, "x 6 months" = 6 x 28 days; docs/regimens.md);
# calendar months exist only as monthly(..., every="calendar"). An *age* in months ("18 months") is
# 1/12 year, as in the WHO/CDC growth charts: that is the age kind below, not a duration.
TIME_UNITS: dict[str, float] = {
    **dict.fromkeys(["h", "hr", "hrs", "hour", "hours"], 1.0),
    **dict.fromkeys(["min", "mins", "minute", "minutes"], 1 / 60),
    **dict.fromkeys(["s", "sec", "second", "seconds"], 1 / 3600),
    **dict.fromkeys(["d", "day", "days"], 24.0),
    **dict.fromkeys(["w", "wk", "wks", "week", "weeks"], 168.0),
    **dict.fromkeys(["month", "months", "mo"], 672.0),
}
for _name, _hours in TIME_UNITS.items():
    _add("time", [_name], _hours)

_add("volume", ["L", "l"], 1.0)
_add("volume", ["mL", "ml"], 1e-3)
_add("volume", ["uL", "µL", "μL", "ul"], 1e-6)

_add("flow", ["L/h", "l/h"], 1.0)
_add("flow", ["mL/h", "ml/h"], 1e-3)
_add("flow", ["mL/min", "ml/min"], 0.06)
_add("flow", ["L/min", "l/min"], 60.0)
_add("flow", ["L/d", "L/day", "l/day"], 1 / 24)
_add("flow", ["mL/d", "mL/day", "ml/day"], 1e-3 / 24)
_add("flow", ["uL/min", "µL/min"], 6e-5)

_add("dose_per_bsa", ["mg/m2", "mg/m^2", "mg/m²"], 1.0)
_add("dose_per_bsa", ["g/m2", "g/m^2", "g/m²"], 1e3)
_add("dose_per_bsa", [p + s for p in _MICRO for s in ("g/m2", "g/m^2", "g/m²")], 1e-3)
_add("dose_per_weight", ["mg/kg"], 1.0)
_add("dose_per_weight", ["g/kg"], 1e3)
_add("dose_per_weight", [p + "g/kg" for p in _MICRO], 1e-3)
_add("rate", ["mg/h"], 1.0)
_add("rate", ["mg/min"], 60.0)
_add("rate", ["mg/d", "mg/day"], 1 / 24)

_add("rate_constant", ["1/h", "h-1", "/h", "h^-1"], 1.0)
_add("rate_constant", ["1/min", "min-1", "/min"], 60.0)
_add("rate_constant", ["1/d", "1/day", "d-1", "/day", "day-1"], 1 / 24)
_add("rate_constant", ["1/week", "1/wk"], 1 / 168)
_add("dimensionless", ["1", "-", "", "fraction", "ratio"], 1.0)
_add("dimensionless", ["%"], 0.01)
_add("molar_mass", ["g/mol", "Da"], 1.0)
_add("mass", ["kg"], 1.0)
_add("length", ["cm"], 1.0)
_add("length", ["m"], 100.0)
_add("age", ["y", "yr", "year", "years"], 1.0)
_add("age", ["month", "months", "mo"], 1 / 12)
_add("area", ["m2", "m^2", "m²"], 1.0)
_add("renal", ["mL/min/1.73m2", "mL/min/1.73 m2"], 1.0)
_add("auc", ["mg*h/L", "mg·h/L", "mg h/L", "ug*h/mL", "µg·h/mL"], 1.0)
_add("auc", ["umol*h/L", "µmol·h/L", "uM*h", "µM·h"], 1e-3, True)

KINDS = sorted({k for k, _, _ in UNITS.values()})
BASE = {"amount": "mg", "concentration": "mg/L", "time": "h", "volume": "L", "flow": "L/h",
        "dose_per_bsa": "mg/m2", "dose_per_weight": "mg/kg", "rate": "mg/h", "auc": "mg*h/L", "rate_constant": "1/h",
        "dimensionless": "1", "molar_mass": "g/mol", "mass": "kg", "length": "cm", "age": "y",
        "area": "m2", "renal": "mL/min/1.73m2"}

_NUMBER_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")


def _units_of(kind: str) -> list[str]:
    return [u for u, (k, _, _) in UNITS.items() if k == kind] + [u for (k, u) in _OTHER_KIND if k == kind]


def to_base(value: float, unit: str, kind: str | None = None, *, mw: float | None = None,
            field: str = "value") -> float:
    """Convert ``value`` in ``unit`` to pkcsf's base unit of its kind.

    Parameters
    ----------
    value : float
        The number in ``unit``.
    unit : str
        Its unit (see :data:`UNITS`).
    kind : str, optional
        The expected kind (``"time"``, ``"concentration"``, ...); a unit of another kind raises.
    mw : float, optional
        Molecular weight (g/mol), for molar units.
    field : str, optional
        Named in errors.

    Returns
    -------
    float
        The value in the base unit (mg, L, h, mg/L, L/h, 1/h).

    Examples
    --------
    >>> to_base(30, "min", "time")
    0.5
    """
    unit = unit.strip()
    if unit not in UNITS:
        allowed = _units_of(kind) if kind else list(UNITS)
        raise PkcsfError(f"{field}.unit", unit, "allowed units: " + ", ".join(allowed))
    k, factor, needs_mw = _OTHER_KIND.get((kind, unit), UNITS[unit])
    if kind is not None and k != kind:
        raise PkcsfError(f"{field}.unit", unit,
                         f"a {kind} is needed here, not a {k}; allowed units: " + ", ".join(_units_of(kind)))
    if needs_mw:
        if mw is None:
            raise PkcsfError(f"{field}.unit", unit,
                             "molar units need the drug's molecular weight",
                             "give the value in mass units or pick a drug")
        factor = factor * mw
    return value * factor


def from_base(value: float | np.ndarray, unit: str, kind: str | None = None, *, mw: float | None = None,
              field: str = "unit") -> float | np.ndarray:
    """Convert from the base unit of ``kind`` into ``unit`` (arrays allowed).

    Parameters
    ----------
    value : float or ndarray
        Values in the base unit of ``kind``.
    unit : str
        The target unit.
    kind : str, optional
        The expected kind; a unit of another kind raises.
    mw : float, optional
        Molecular weight (g/mol), for molar units.
    field : str, optional
        Named in errors.

    Returns
    -------
    float or ndarray
        The values in ``unit``.

    Examples
    --------
    >>> from_base(0.5, "min", "time")
    30.0
    """
    return value / to_base(1.0, unit, kind, mw=mw, field=field)


def concentration_factor(unit: str, mw: float | None = None) -> float:
    """Multiply a concentration in mg/L by this to express it in ``unit``.

    Parameters
    ----------
    unit : str
        A concentration unit (``"mg/L"``, ``"ug/mL"``, ``"umol/L"``, ``"nM"``).
    mw : float, optional
        Molecular weight (g/mol), needed for molar units.

    Returns
    -------
    float
        The factor.

    Examples
    --------
    >>> concentration_factor("ug/mL")
    1.0
    >>> round(concentration_factor("umol/L", mw=454.44), 4)
    2.2005
    """
    return 1.0 / to_base(1.0, unit, "concentration", mw=mw, field="unit")


def parse_quantity(text: str | float, kind: str, *, field: str = "value", mw: float | None = None,
                   default_unit: str | None = None) -> float:
    """Parse ``"12 mg"`` (or a bare number in base units) into base units.

    Parameters
    ----------
    text : str or float
        A number followed by a unit, or a number (taken in ``default_unit``,
        or in the base unit of ``kind``).
    kind : str
        One of :data:`KINDS` (amount, concentration, time, volume, flow, ...).
    field : str
        Name used in error messages.
    mw : float, optional
        Molecular weight in g/mol, needed for molar units.
    default_unit : str, optional
        The unit of a bare number, and of a number given without a unit (default: the base unit).

    Returns
    -------
    float
        The value in the base unit of ``kind`` (mg, mg/L, h, L, L/h, ...).

    Raises
    ------
    PkcsfError
        Text that is not a number and a unit, a unit of another kind, or a molar unit without ``mw``.

    Examples
    --------
    >>> parse_quantity("12 mg", "amount")
    12.0
    >>> parse_quantity("2 d", "time")
    48.0
    """
    if isinstance(text, bool):
        raise PkcsfError(field, text, f"must be a {kind} such as '{_example(kind)}'")
    if isinstance(text, (int, float)):
        value = float(text)
        unit = default_unit or BASE[kind]
    else:
        m = _NUMBER_UNIT.match(str(text))
        if not m:
            raise PkcsfError(field, text, f"must be a number and a unit, e.g. '{_example(kind)}'")
        value = float(m.group(1))
        unit = m.group(2) or default_unit or BASE[kind]
    return to_base(value, unit, kind, mw=mw, field=field)


def _example(kind: str) -> str:
    return {"amount": "12 mg", "concentration": "1 umol/L", "time": "24 h", "volume": "5 mL",
            "flow": "0.35 mL/min", "dose_per_bsa": "12 mg/m2", "dose_per_weight": "6 mg/kg", "rate": "2 mg/h",
            "auc": "10 mg*h/L"}.get(kind, "1")
