"""Reading NONMEM-style event tables (``ID TIME AMT CMT EVID II ADDL RATE``, optional ``SS DUR MDV DV``) into
one :class:`~pkcsf.engine.dosing.Regimen` per subject: :func:`from_nonmem`. Split out of ``dosing.py``
(issue 8); writing a regimen as such a table is :meth:`pkcsf.engine.dosing.Regimen.to_nonmem`.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pkcsf.core.errors import DosingError, check_choice, check_finite
from pkcsf.engine.dosing import NONMEM_COLUMNS, Dose, Regimen

if TYPE_CHECKING:
    from pkcsf.engine.model import Model

__all__ = ["from_nonmem"]


def from_nonmem(table: pd.DataFrame | str | Path, model: Model | None = None) -> dict:
    """Read a NONMEM-style event table (DataFrame or CSV path).

    Columns ``ID TIME AMT CMT EVID II ADDL RATE`` (upper or lower case, each
    at most once: ``TIME`` and ``time`` together are an error; only
    ``TIME``, ``AMT`` and ``CMT`` are required). ``CMT`` may be a site or
    compartment name, or a 1-based compartment number (needs ``model``).
    Rows with ``EVID`` 0 or 2 (observations, other events) are skipped;
    ``EVID`` 1 is a dose; ``EVID`` 3/4 (resets) and ``SS`` are not supported
    and raise. ``RATE`` > 0 is an infusion rate in mg/h; ``RATE`` -1/-2
    (modelled rate/duration) raise. A ``DUR`` column (h) gives an infusion
    by duration; a row with both ``RATE`` and ``DUR`` (as :meth:`Regimen.to_nonmem`
    writes them) is an infusion by duration if ``RATE * DUR == AMT``, else an
    error. ``EVID``, ``ADDL`` and numeric ``CMT`` must be whole numbers
    (``ADDL`` 2.5 is an error, never 2). ``ID`` is a label: whole numbers
    become ints, other numbers (1.5) and text (``pt-01``) are kept as they are,
    so that distinct IDs never merge; results carry these labels.
    Returns ``{ID: Regimen}``.

    Parameters
    ----------
    table : DataFrame, str or Path
        The event table, or the path of a CSV file.
    model : Model, optional
        Needed when ``CMT`` holds compartment numbers.

    Returns
    -------
    dict
        Subject ID -> :class:`Regimen` (see above).

    Examples
    --------
    >>> import pandas as pd
    >>> regs = from_nonmem(pd.DataFrame({"ID": [1, 1], "TIME": [0, 24], "AMT": [12, 12], "CMT": ["icv", "icv"]}))
    >>> len(regs[1])
    2
    """
    if not isinstance(table, pd.DataFrame):
        try:
            table = pd.read_csv(table)
        except FileNotFoundError:
            raise DosingError("event table", str(table), "the file does not exist") from None
        except pd.errors.EmptyDataError:
            raise DosingError("event table", str(table), "the file is empty: a CSV file with a header line "
                              "(ID, TIME, AMT, CMT, ...) and one row per event") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as e:
            raise DosingError("event table", str(table), f"cannot be read as a CSV file ({e})") from None
    seen: dict[str, str] = {}
    for c in table.columns:
        key = str(c).upper()
        if key in seen:
            raise DosingError("event table columns", [seen[key], str(c)],
                              f"each column may appear once (column names are case-insensitive: both are {key})")
        seen[key] = str(c)
    df = table.rename(columns={c: str(c).upper() for c in table.columns})
    for col in ("TIME", "AMT", "CMT"):
        if col not in df.columns:
            raise DosingError("event table columns", list(table.columns),
                              f"a {col} column is required (columns: {', '.join(NONMEM_COLUMNS)})")
    allowed = set(NONMEM_COLUMNS) | {"SS", "DUR", "MDV", "DV"}
    extra = [c for c in df.columns if c not in allowed]
    if extra:
        raise DosingError("event table columns", extra[0], "allowed columns: " + ", ".join(sorted(allowed)))
    out: dict = {}
    names = None if model is None else model.compartment_names
    for i, row in enumerate(df.itertuples(index=False)):
        r = row._asdict()
        where = f"event table row {i}"
        sid = _nonmem_id(r.get("ID", 1), f"{where}.ID")
        if "EVID" in r:
            evid = _nonmem_count(r["EVID"], f"{where}.EVID",
                                 "must be a whole number: 0 (observation), 1 (dose) or 2 (other)")
        else:
            amt = _nonmem_number(r["AMT"], f"{where}.AMT", missing_ok=True)
            evid = 1 if amt > 0 else 0
        if evid in (0, 2):
            continue
        if evid != 1:
            raise DosingError(f"{where}.EVID", evid,
                              "supported: 0 (observation), 1 (dose), 2 (other); resets (3, 4) are not supported")
        if r.get("SS", 0) not in (0, None) and not pd.isna(r.get("SS", 0)):
            raise DosingError(f"{where}.SS", r["SS"],
                              "steady-state doses are not supported; give the doses explicitly (e.g. with II/ADDL)")
        cmt = r["CMT"]
        if isinstance(cmt, (int, float, np.integer, np.floating)) and not isinstance(cmt, bool):
            if names is None:
                raise DosingError(f"{where}.CMT", cmt, "a compartment number needs the model (pass model=...) "
                                  "or use the site/compartment name")
            if not math.isfinite(cmt) or cmt != int(cmt) or not 1 <= int(cmt) <= len(names):
                raise DosingError(f"{where}.CMT", cmt, f"compartment numbers are whole numbers from 1 to {len(names)}")
            cmt = names[int(cmt) - 1]
        else:
            cmt = str(cmt)
            if model is not None:
                check_choice(f"{where}.CMT", cmt, model.site_names + model.compartment_names, DosingError)
        amt = _nonmem_number(r["AMT"], f"{where}.AMT")
        time = _nonmem_number(r["TIME"], f"{where}.TIME")
        rate = _nonmem_number(r.get("RATE"), f"{where}.RATE", missing_ok=True)
        dur = _nonmem_number(r.get("DUR"), f"{where}.DUR", missing_ok=True) or None
        if rate < 0:
            raise DosingError(f"{where}.RATE", rate, "modelled rates/durations (RATE -1, -2) are not supported; "
                              "give RATE in mg/h or a DUR column")
        if rate > 0 and dur is not None:
            if not abs(rate * dur - amt) <= 1e-9 * abs(amt):
                raise DosingError(f"{where}.RATE/DUR", (rate, dur),
                                  f"give RATE or DUR; when both are given they must agree (RATE * DUR = AMT = {amt:g})")
            rate = 0.0       # an infusion by duration (keeps its duration under bioavailability)
        ii = _nonmem_number(r.get("II"), f"{where}.II", missing_ok=True)
        addl = _nonmem_count(r.get("ADDL"), f"{where}.ADDL", "must be a whole number of additional doses >= 0",
                             missing_ok=True)
        try:
            dose = Dose(amt, cmt, time, rate=rate if rate > 0 else None, duration=dur, ii=ii, addl=addl)
        except DosingError as exc:   # named by the table's column (AMT, not the Dose keyword 'amount')
            key = exc.field.split(".")[-1]
            col = _DOSE_TO_COLUMN.get(key.lower(), key.upper())
            raise DosingError(f"{where}.{col}", exc.value, exc.allowed, exc.fix) from None
        out.setdefault(sid, []).append(dose)
    return {k: Regimen(v) for k, v in out.items()}


_DOSE_TO_COLUMN = {"amount": "AMT", "time": "TIME", "rate": "RATE", "duration": "DUR", "ii": "II", "addl": "ADDL",
                   "site": "CMT", "every": "II", "n": "ADDL"}


def _is_missing(value) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or \
        (not isinstance(value, str) and bool(pd.isna(value)))


def _nonmem_number(value, where: str, *, missing_ok: bool = False) -> float:
    """A finite number from a table cell; an empty cell is 0 where ``missing_ok``."""
    if _is_missing(value):
        if missing_ok:
            return 0.0
        raise DosingError(where, value, "must be a number (the cell is empty or NaN)")
    if isinstance(value, bool):
        raise DosingError(where, value, "must be a number")
    return check_finite(where, value, DosingError)


def _nonmem_count(value, where: str, rule: str, *, missing_ok: bool = False) -> int:
    """A whole number from a table cell: 2.0 is 2, 2.5 is an error (never truncated)."""
    if _is_missing(value) and not missing_ok:
        raise DosingError(where, value, rule + " (the cell is empty or NaN)")
    x = _nonmem_number(value, where, missing_ok=missing_ok)
    if x != int(x):
        raise DosingError(where, value, rule)
    return int(x)


def _nonmem_id(value, where: str):
    """A subject label: whole numbers become ints, other numbers and text are kept (IDs never merge)."""
    if _is_missing(value):
        raise DosingError(where, value, "every row needs a subject ID (a number or a text label)")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (bool, np.bool_)):
        raise DosingError(where, value, "must be a number or a text label")
    if isinstance(value, (int, np.integer)):
        return int(value)
    x = float(value)
    if not math.isfinite(x):
        raise DosingError(where, value, "must be a finite number or a text label")
    return int(x) if x == int(x) else x
