"""The one vocabulary of interpolation and AUC methods, shared by :mod:`pkcsf.analysis.metrics` and
:mod:`pkcsf.analysis.nca`.

Each method has one canonical name; PKNCA, WinNonlin and older pkcsf spellings are accepted as aliases
(case-insensitive). A module accepts the subset of methods it implements and says which in its error.
"""
from __future__ import annotations

from collections.abc import Sequence

from pkcsf.core.errors import PkcsfError, check_alias

__all__ = ["AUC_METHOD_DESCRIPTIONS", "METHOD_ALIASES", "check_method"]

#: Canonical method name -> what the curve between two samples is.
AUC_METHOD_DESCRIPTIONS = {
    "linear": "straight line (linear trapezoid)",
    "linear-up/log-down": "straight line when rising or flat, exponential when falling between two positive "
                          "values (PKNCA / WinNonlin 'lin up/log down'; exact for mono-exponential decay)",
    "log": "exponential between any two different positive values, straight line otherwise",
    "lin-log": "straight line up to Tmax, exponential after it unless an end is zero (PKNCA 'lin-log')",
}

#: Accepted spellings (lower case) -> canonical name.
METHOD_ALIASES = {
    "linear": "linear",
    "lin": "linear",
    "linear-up/log-down": "linear-up/log-down",
    "linear up/log down": "linear-up/log-down",
    "lin up/log down": "linear-up/log-down",
    "lin-up/log-down": "linear-up/log-down",
    "linuplogdown": "linear-up/log-down",
    "log": "log",
    "log-linear": "log",
    "loglinear": "log",
    "lin-log": "lin-log",
    "linlog": "lin-log",
}


def check_method(field: str, method: str, allowed: Sequence[str], error: type[PkcsfError] = PkcsfError) -> str:
    """The canonical name of ``method`` if it is one of ``allowed``, else raise ``error`` listing them.

    Parameters
    ----------
    field : str
        The name reported in the error (``"method"``, ``"auc_method"``).
    method : str
        A canonical name or an alias (``"lin up/log down"``), any case.
    allowed : sequence of str
        The canonical names this caller implements.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    str
        The canonical name.

    Examples
    --------
    >>> check_method("method", "lin up/log down", ("linear", "linear-up/log-down"))
    'linear-up/log-down'
    """
    aliases = {k: v for k, v in METHOD_ALIASES.items() if v in allowed}
    return check_alias(field, method, aliases, allowed, error)
