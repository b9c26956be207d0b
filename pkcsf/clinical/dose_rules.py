"""Dose amounts: mg, quantities, per body-surface area (:func:`bsa`, :func:`dose_per_bsa`), per body weight
(:func:`dose_per_weight`) and age-based intrathecal doses.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.clinical.routes import normalize_route
from pkcsf.core.errors import DosingError, PkcsfError, check_array, check_choice
from pkcsf.core.units import UNITS
from pkcsf.engine.expressions import Expression

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["bsa", "dose_per_bsa", "dose_per_weight", "per_size_unit", "age_based_dose", "age_based_table", "age_dose_column", "AGE_BASED_DRUGS"]

# --------------------------------------------------------------------------- small helpers

_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_BSA_EXPR = re.compile(rf"^\s*({_NUM})\s*\*\s*BSA\s*$")
_WT_EXPR = re.compile(rf"^\s*({_NUM})\s*\*\s*WT\s*$")
_PER_BSA_UNITS = ("mg/m2", "mg/m^2", "mg/m²", "mg/sqm", "mg/m 2")
#: The amount units a dose may be written in, for messages.
AMOUNT_UNITS = "mg, g, ug, per m2 (mg/m2, g/m2) or per kg (mg/kg)"


def per_size_unit(unit: str) -> tuple[str, float] | None:
    """``("bsa", f)`` for a dose unit per m² of body surface, ``("weight", f)`` for one per kg of body weight
    (``f`` converts to mg/m² or mg/kg), None for any other unit.

    Parameters
    ----------
    unit : str
        A unit as written (``"g/m2"``, ``"mg/kg"``).

    Returns
    -------
    tuple of (str, float) or None

    Examples
    --------
    >>> per_size_unit("g/m2"), per_size_unit("mg/kg"), per_size_unit("mg")
    (('bsa', 1000.0), ('weight', 1.0), None)
    """
    if unit.lower() in _PER_BSA_UNITS:
        return "bsa", 1.0
    kind, factor, _ = UNITS.get(unit, (None, 0.0, False))
    if kind == "dose_per_bsa":
        return "bsa", factor
    if kind == "dose_per_weight":
        return "weight", factor
    return None

def _num(x) -> str:
    """Shortest text that reads back as the same float ("12", "3.5", "0.1")."""
    x = float(x)
    if x == int(x) and abs(x) < 1e15:
        return str(int(x))
    return repr(x)


def _amount(dose, bsa=None, field: str = "dose", weight=None):
    """Mg (float) or a per-subject expression (str) from a number, quantity, 'x mg/m2', 'x mg/kg' or expression."""
    if isinstance(dose, bool):
        raise DosingError(field, dose, "must be an amount such as '12 mg'")
    if isinstance(dose, (int, float, np.integer, np.floating)):
        x = float(dose)
        if not math.isfinite(x) or x <= 0:
            raise DosingError(field, dose, "must be a finite amount > 0 mg")
        return x
    if not isinstance(dose, str) or not dose.strip():
        raise DosingError(field, dose, "must be an amount such as '12 mg', '12 mg/m2' or an expression such as 'DOSE'")
    m = re.fullmatch(rf"\s*({_NUM})\s*(\S*)\s*", dose)
    if m:
        x, unit = float(m.group(1)), m.group(2)
        size = per_size_unit(unit)
        if size is not None:
            per, factor = size
            return (dose_per_bsa(x * factor, bsa, field=field) if per == "bsa"
                    else dose_per_weight(x * factor, weight, field=field))
        if unit == "" or (unit in UNITS and UNITS[unit][0] == "amount" and not UNITS[unit][2]):
            x = x * (UNITS[unit][1] if unit else 1.0)
            if not math.isfinite(x) or x <= 0:
                raise DosingError(field, dose, "must be a finite amount > 0 mg")
            return x
        if unit in UNITS:
            raise DosingError(field, dose, f"an amount unit is needed ({AMOUNT_UNITS}), not a {UNITS[unit][0]} ({unit})")
        raise DosingError(field, dose, f"unknown unit; amounts are {AMOUNT_UNITS}")
    try:
        Expression.parse(dose, field)
    except PkcsfError:
        raise DosingError(field, dose, "must be an amount such as '12 mg', '12 mg/m2', '6 mg/kg' or an expression over "
                                       "subject columns such as 'DOSE'") from None
    return dose.strip()

# --------------------------------------------------------------------------- BSA and age

def bsa(height_cm: ArrayLike, weight_kg: ArrayLike, method: str = "mosteller") -> float | np.ndarray:
    """Body-surface area (m²) from height (cm) and weight (kg); vectorised over arrays.

    * ``"mosteller"`` (default): sqrt(height x weight / 3600) -- Mosteller RD.
      Simplified calculation of body-surface area. N Engl J Med 1987;317(17):1098 (PMID 3657876).
    * ``"dubois"``: 0.007184 x weight^0.425 x height^0.725 -- Du Bois D, Du Bois EF. A formula
      to estimate the approximate surface area if height and weight be known. Arch Intern Med
      1916;17:863-71.

    Parameters
    ----------
    height_cm, weight_kg : float or array_like
        Height (cm) and weight (kg).
    method : {"mosteller", "dubois"}, optional
        Formula.

    Returns
    -------
    float or ndarray
        BSA (m²): a float for scalar inputs, else an array (broadcast).

    Examples
    --------
    >>> round(bsa(170, 70), 3)
    1.818
    """
    h = check_array("height_cm", height_cm, positive=True, error=DosingError)
    w = check_array("weight_kg", weight_kg, positive=True, error=DosingError)
    if np.any(h < 20) or np.any(h > 300):
        bad = h[(h < 20) | (h > 300)].flat[0] if h.ndim else float(h)
        raise DosingError("height_cm", float(bad), "must be a height in cm between 20 and 300",
                          "give the height in cm, not m" if bad < 20 else None)
    if np.any(w > 500):
        raise DosingError("weight_kg", float(np.max(w)), "must be a weight in kg (<= 500)")
    m = str(method).strip().lower().replace(" ", "").replace("-", "").replace("_", "")
    m = {"dubois": "dubois", "duboisdubois": "dubois", "mosteller": "mosteller"}.get(m, m)
    check_choice("bsa.method", m, ["mosteller", "dubois"], DosingError)
    if m == "mosteller":
        from pkcsf.clinical.population import bsa_mosteller

        out = bsa_mosteller(h, w)
    else:
        out = 0.007184 * w ** 0.425 * h ** 0.725
    return float(out) if np.ndim(out) == 0 else out


_bsa_from = bsa


def dose_per_bsa(mg_per_m2: float, bsa: float | str | None = None, *, field: str = "dose") -> float | str:
    """A per-m² dose as mg (``bsa`` in m² given) or as the per-subject expression ``"<x> * BSA"``.

    ``bsa=None`` or ``bsa="BSA"`` gives the expression: each subject's dose is
    then read from the population's ``BSA`` column.

    Parameters
    ----------
    mg_per_m2 : float
        Dose per m2.
    bsa : float or str, optional
        Body-surface area (m2), or None / ``"BSA"`` for the per-subject expression.
    field : str, optional
        Named in errors.

    Returns
    -------
    float or str
        mg, or the expression ``"<x> * BSA"``.

    Examples
    --------
    >>> dose_per_bsa(12, 1.5), dose_per_bsa(12)
    (18.0, '12 * BSA')
    """
    return _dose_per(mg_per_m2, bsa, field, ("m2", "BSA", "bsa", "a body-surface area", "m²", 0.05, 5.0))


def _dose_per(x, size, field: str, spec: tuple) -> float | str:
    """``x`` mg per unit of body size as mg (``size`` given) or as the expression ``"<x> * COLUMN"``; ``spec``:
    (per, column, size field, what the size is, its unit, lowest, highest).
    """
    per, column, size_field, what, unit, lo, hi = spec
    v = float(x)
    if not math.isfinite(v) or v <= 0:
        raise DosingError(field, x, f"a per-{per} dose must be > 0 mg/{per}")
    if size is None or (isinstance(size, str) and size == column):
        return f"{_num(v)} * {column}"
    if isinstance(size, bool) or not isinstance(size, (int, float, np.integer, np.floating)):
        raise DosingError(size_field, size, f"must be {what} in {unit} (a number) or '{column}' (the population column)")
    if not math.isfinite(size) or not lo <= size <= hi:
        raise DosingError(size_field, size, f"must be {what} between {lo:g} and {hi:g} {unit}")
    return v * float(size)


def dose_per_weight(mg_per_kg: float, weight: float | str | None = None, *, field: str = "dose") -> float | str:
    """A per-kg dose as mg (``weight`` in kg given) or as the per-subject expression ``"<x> * WT"``.

    ``weight=None`` or ``weight="WT"`` gives the expression: each subject's dose is
    then read from the population's ``WT`` column (kg).

    Parameters
    ----------
    mg_per_kg : float
        Dose per kg of body weight.
    weight : float or str, optional
        Body weight (kg), or None / ``"WT"`` for the per-subject expression.
    field : str, optional
        Named in errors.

    Returns
    -------
    float or str
        mg, or the expression ``"<x> * WT"``.

    Examples
    --------
    >>> dose_per_weight(6, 70), dose_per_weight(6)
    (420.0, '6 * WT')
    """
    return _dose_per(mg_per_kg, weight, field, ("kg", "WT", "weight", "a body weight", "kg", 0.3, 500.0))


#: Drugs with an age-based intrathecal dose table.
AGE_BASED_DRUGS = ("methotrexate", "cytarabine")
_DRUG_ALIASES = {"mtx": "methotrexate", "ara-c": "cytarabine", "arac": "cytarabine", "cytosine arabinoside": "cytarabine",
                 "depocyt": "cytarabine_liposomal", "depocyte": "cytarabine_liposomal",
                 "liposomal_cytarabine": "cytarabine_liposomal", "liposomal cytarabine": "cytarabine_liposomal",
                 "cytarabine liposomal": "cytarabine_liposomal"}


@lru_cache(maxsize=1)
def _age_tables():
    from pkcsf.clinical.parameters import load_parameter_set

    ps = load_parameter_set("age_based_intrathecal", kind="dosing")
    tables = {}
    for drug, spec in ps.options.get("tables", {}).items():
        edges = [ps.values[k] for k in spec["age_edges"]]
        doses = [ps.values[k] for k in spec["doses"]]
        tables[drug] = (tuple(edges), tuple(doses), tuple(spec["routes"]), tuple(spec.get("band_labels", ())),
                        spec.get("table_source", ""))
    return ps, tables


def _age_drug(drug, field="drug") -> str:
    d = str(drug).strip().lower() if drug is not None else ""
    d = _DRUG_ALIASES.get(d, d)
    if d == "cytarabine_liposomal":
        raise DosingError(field, drug, "liposomal cytarabine has no age-based table (adults: 50 mg; the label does "
                                       "not recommend it in children)")
    check_choice(field, d, AGE_BASED_DRUGS, DosingError)
    return d


def age_based_dose(drug: str, age: ArrayLike, route: str = "lumbar") -> float | np.ndarray:
    """Age-based intrathecal dose (mg) for ``drug`` at ``age`` (years; scalar or array).

    Bands are completed years: < 1, 1 to < 2, 2 to < 3, >= 3 y. Tables and their
    sources: ``parameters/dosing/age_based_intrathecal.toml`` (methotrexate
    6/8/10/12 mg, the regimen of Bleyer et al. 1983, PMID 6366138; cytarabine
    20/30/50/70 mg). Most numbers could not be verified in the primary tables and
    are marked ``assumption`` there; see :func:`age_based_table`.

    Parameters
    ----------
    drug : str
        ``methotrexate`` or ``cytarabine`` (aliases accepted).
    age : float or array_like
        Age in years.
    route : str, optional
        An intrathecal route.

    Returns
    -------
    float or ndarray
        mg.

    Examples
    --------
    >>> age_based_dose("methotrexate", [0.5, 2.5, 10]).tolist()
    [6.0, 10.0, 12.0]
    """
    d = _age_drug(drug)
    r = normalize_route(route)
    _, tables = _age_tables()
    edges, doses, routes, _, _ = tables[d]
    if r not in routes:
        raise DosingError("route", route, "age-based doses are intrathecal; allowed routes: " + ", ".join(routes))
    a = check_array("age", age, nonnegative=True, error=DosingError)
    if np.any(a > 130):
        raise DosingError("age", float(np.max(a)), "must be an age in years (0-130)")
    idx = np.searchsorted(np.array([e.value for e in edges]), a, side="right")
    out = np.array([v.value for v in doses])[idx]
    return float(out) if np.ndim(out) == 0 else out


def age_dose_column(drug: str) -> str:
    """Name of the per-subject column holding the age-based dose of ``drug`` (e.g.
    ``"AGEDOSE_METHOTREXATE"``): a regimen parsed with ``age="AGE"`` doses each
    subject by this column, which :mod:`pkcsf.clinical.scenario` fills from the
    subject's ``AGE`` with :func:`age_based_dose`.

    Parameters
    ----------
    drug : str
        ``methotrexate`` or ``cytarabine``.

    Returns
    -------
    str
        The column name.

    Examples
    --------
    >>> age_dose_column("mtx")
    'AGEDOSE_METHOTREXATE'
    """
    return "AGEDOSE_" + _age_drug(drug).upper()


def age_based_table(drug: str) -> pd.DataFrame:
    """The age-based table of ``drug`` as a DataFrame: age_from, age_to (y), dose_mg, source, where, note.

    Parameters
    ----------
    drug : str
        ``methotrexate`` or ``cytarabine``.

    Returns
    -------
    DataFrame
        One row per age band.
    """
    import pandas as pd

    d = _age_drug(drug)
    ps, tables = _age_tables()
    edges, doses, routes, labels, _ = tables[d]
    lo = [0.0] + [e.value for e in edges]
    hi = [e.value for e in edges] + [math.inf]
    rows = [{"band": labels[i] if i < len(labels) else "", "age_from": lo[i], "age_to": hi[i], "dose_mg": v.value,
             "source": v.source, "where": v.where, "note": v.note} for i, v in enumerate(doses)]
    return pd.DataFrame(rows)
