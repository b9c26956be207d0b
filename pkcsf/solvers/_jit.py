"""``njit`` for the solvers: :func:`pkcsf.core.jit.njit`, compiled once per argument *type*, never per constant.

Numba compiles a function called from compiled code once per distinct argument type, and a constant
argument has its own type: ``_finish(ST_SUCCESS, k, out)`` and ``_finish(ST_NONFINITE, k, out)`` were two
compilations of ``_finish`` (``Literal[int](0)`` and ``Literal[int](3)``), ``refine_peaks(..., 0, ...)`` and
``refine_peaks(..., last_start, ...)`` two compilations of the Cmax refinement (~6 CPU s each on a first
run). The solvers' functions take their arguments as plain types (``int64`` for any integer constant), so
each compiles once whatever its callers pass, and a function called from Python and from compiled code
shares one compilation. Nothing in the solvers needs a constant argument: values are the same, and LLVM
still propagates constants after inlining small functions.
"""
from __future__ import annotations

from collections.abc import Callable

from numba.core import types
from numba.core.registry import CPUDispatcher

from pkcsf.core.jit import njit as _njit

__all__ = ["njit"]


class _PlainTypesDispatcher(CPUDispatcher):
    """A CPU dispatcher whose calls from compiled code are typed without literal (constant) types."""

    def get_call_template(self, args, kws):
        args = tuple(types.unliteral(a) for a in args)
        kws = {k: types.unliteral(v) for k, v in kws.items()}
        return super().get_call_template(args, kws)


def _plain(disp):
    if type(disp) is CPUDispatcher:
        disp.__class__ = _PlainTypesDispatcher
    return disp


def njit(*args: object, **kwargs: object) -> Callable:
    """:func:`pkcsf.core.jit.njit` (same options and cache policy) whose dispatcher compiles one version per
    argument type, not one per constant argument (see the module docstring).

    Parameters
    ----------
    *args, **kwargs
        As for :func:`pkcsf.core.jit.njit`.

    Returns
    -------
    callable
        The dispatcher (or, without a function, the decorator).
    """
    made = _njit(*args, **kwargs)
    if isinstance(made, CPUDispatcher):
        return _plain(made)
    return lambda fn: _plain(made(fn))
