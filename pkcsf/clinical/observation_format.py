"""The cells of an observations file that both the file's checks (:mod:`pkcsf.clinical.observations`) and the
per-quantity rules (:mod:`pkcsf.clinical.observation_checks`) read: the error class, the ``regimen`` cell and the
``time_h`` window.
"""
from __future__ import annotations

from pkcsf.core.errors import PkcsfError

__all__ = ["ObservationError", "parse_regimen_cell"]


class ObservationError(PkcsfError):
    """An observations file (or table) is malformed: names the file, the line and id, the column and the value.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


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


def _window(text) -> tuple[float, float]:
    s = str(text)
    if "-" in s:
        a, b = s.split("-")
        return float(a), float(b)
    return float(s), float(s)
