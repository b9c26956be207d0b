"""Dosing routes of the CSF models: the one list of route names, their aliases, and :func:`normalize_route`."""
from __future__ import annotations

from pkcsf.core.errors import DosingError, suggest

__all__ = ["ROUTES", "ROUTE_ALIASES", "INTRATHECAL_ROUTES", "normalize_route"]

# --------------------------------------------------------------------------- routes

#: Dosing sites of the CSF models (intrathecal by lumbar puncture, intraventricular by
#: Ommaya reservoir, intracisternal, intravenous, oral).
ROUTES = ("lumbar", "ommaya", "intracisternal", "iv", "oral")
#: Other names accepted for the routes.
ROUTE_ALIASES = {"intraventricular": "ommaya", "intraventricularly": "ommaya", "ivt": "ommaya", "icv": "ommaya",
                 "intrathecal": "lumbar", "intrathecally": "lumbar", "it": "lumbar", "lp": "lumbar",
                 "intracisternally": "intracisternal", "intravenous": "iv", "intravenously": "iv", "po": "oral",
                 "orally": "oral"}
#: Routes into the CSF (age-based doses apply to these).
INTRATHECAL_ROUTES = ("lumbar", "ommaya", "intracisternal")

def normalize_route(route: str, field: str = "route") -> str:
    """The canonical route name (``"icv"`` -> ``"ommaya"``); unknown routes raise listing the valid ones.

    Parameters
    ----------
    route : str
        A route name or alias (any case).
    field : str, optional
        Named in errors.

    Returns
    -------
    str
        One of :data:`ROUTES`.

    Examples
    --------
    >>> normalize_route("ICV")
    'ommaya'
    """
    if not isinstance(route, str) or not route.strip():
        raise DosingError(field, route, "must be a route: " + ", ".join(ROUTES))
    r = route.strip().lower()
    if r in ROUTES:
        return r
    if r in ROUTE_ALIASES:
        return ROUTE_ALIASES[r]
    names = list(ROUTES) + list(ROUTE_ALIASES)
    guess = suggest(r, names)
    fix = f"did you mean {guess!r}?" if guess else None
    raise DosingError(field, route, "allowed routes: " + ", ".join(ROUTES) +
                      " (aliases: " + ", ".join(f"{a}={b}" for a, b in ROUTE_ALIASES.items()) + ")", fix)
