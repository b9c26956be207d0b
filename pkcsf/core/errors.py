"""Errors and the few shared validators that raise them.

Every user mistake becomes a :class:`PkcsfError` (a ``ValueError``) whose
message names the field, the value given and what is allowed, and where it
helps, the fix. Validation happens at the boundary (when a model, a regimen,
a parameter set or a scenario is built), before anything is compiled or
computed.
"""
from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from enum import IntEnum
from pathlib import Path

import numpy as np

__all__ = [
    "PkcsfError",
    "ModelError",
    "ParameterError",
    "DosingError",
    "ScenarioError",
    "SolverError",
    "OutputError",
    "Status",
    "check_choice",
    "check_int",
    "check_keys",
    "check_finite",
    "check_positive",
    "check_nonnegative",
    "check_fraction",
    "suggest",
]


class PkcsfError(ValueError):
    """A user-facing error: names the field, the value and what is allowed.

    Parameters
    ----------
    field, value, allowed, fix
        As the attributes.

    Attributes
    ----------
    field : str
        Where the problem is (``"compartments[2].volume"``, ``"dose.unit"``).
    value : object
        What was given.
    allowed : str
        The rule or the allowed choices.
    fix : str or None
        A hint how to fix it.

    Examples
    --------
    >>> str(PkcsfError("dose.unit", "mgg", "allowed: mg, g, ug", "did you mean 'mg'?"))
    "dose.unit: got 'mgg'; allowed: mg, g, ug (did you mean 'mg'?)"
    """

    def __init__(self, field: str, value: object, allowed: str, fix: str | None = None) -> None:
        self.field = field
        self.value = value
        self.allowed = allowed
        self.fix = fix
        msg = f"{field}: got {_short(value)}; {allowed}"
        if fix:
            msg += f" ({fix})"
        super().__init__(msg)


class ModelError(PkcsfError):
    """A model definition is inconsistent (unknown compartment, bad transfer).

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


class ParameterError(PkcsfError):
    """A parameter value or parameter file is invalid or lacks its source.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


class DosingError(PkcsfError):
    """A dose, regimen or event table is invalid.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


class ScenarioError(PkcsfError):
    """A scenario file or a command-line argument is invalid.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


class SolverError(PkcsfError):
    """A solver option is invalid, or a single-subject run failed.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


class OutputError(PkcsfError):
    """An output file could not be written (disk full, I/O error, permissions); nothing was written.

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


class Status(IntEnum):
    """Per-subject outcome of a solve. Each member carries its message.

    Attributes
    ----------
    SUCCESS, MAX_STEPS, STEP_TOO_SMALL, NONFINITE, NEWTON_FAILED : Status
        The outcomes; the kernels return the same integers (``ST_*`` in :mod:`pkcsf.solvers.kernels`).

    Examples
    --------
    >>> Status(0).message
    'solved'
    """

    SUCCESS = 0
    MAX_STEPS = 1
    STEP_TOO_SMALL = 2
    NONFINITE = 3
    NEWTON_FAILED = 4

    @property
    def message(self) -> str:
        """What the status means, and what to do about it."""
        return _STATUS_MESSAGES[self]


_STATUS_MESSAGES = {
    Status.SUCCESS: "solved",
    Status.MAX_STEPS: ("the adaptive solver reached max_steps before the last output time; "
                       "raise max_steps or loosen rtol/atol"),
    Status.STEP_TOO_SMALL: "the step size fell below the smallest representable step (the problem may be ill-posed)",
    Status.NONFINITE: "a non-finite value (NaN or inf) appeared in the state; check the parameters of this subject",
    Status.NEWTON_FAILED: "the implicit solver's Newton iterations failed to converge at the smallest step",
}


def _plain(value) -> str:
    """A value as a user wrote it: ``nan``, ``1.5``, ``'ten'``, ``[1, 2]`` (no ``np.float64(...)`` wrappers)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return repr(value)                                  # nan, inf, 1e-09
    if isinstance(value, np.ndarray):
        return _plain(value.tolist())
    if isinstance(value, (list, tuple)):
        inner = ", ".join(_plain(v) for v in value[:20]) + (", ..." if len(value) > 20 else "")
        return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_plain(k)}: {_plain(v)}" for k, v in list(value.items())[:20]) + "}"
    return repr(value)


def _short(value) -> str:
    """The value shown in an error: whole for text up to 300 characters (a file path must stay readable),
    otherwise cut at 80 characters.
    """
    text = _plain(value)
    limit = 300 if isinstance(value, (str, Path)) else 80
    return text if len(text) <= limit else text[:limit - 3] + "..."


def suggest(name: str, choices: Iterable[str]) -> str | None:
    """Closest match of ``name`` among ``choices`` (for 'did you mean').

    Parameters
    ----------
    name : str
        What was given.
    choices : iterable of str
        The valid names.

    Returns
    -------
    str or None
        The closest valid name (similarity >= 0.6), or None.

    Examples
    --------
    >>> suggest("lumbr", ["lumbar", "ommaya"])
    'lumbar'
    """
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return match[0] if match else None


def check_choice(field: str, value: object, choices: Iterable[str], error: type[PkcsfError] = PkcsfError) -> object:
    """Return ``value`` if it is one of ``choices``, else raise listing them.

    Parameters
    ----------
    field : str
        The name reported in the error.
    value : object
        What was given.
    choices : iterable of str
        The allowed values, listed in the error.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    object
        ``value``.

    Examples
    --------
    >>> check_choice("solver", "exact", ["exact", "rodas5p"])
    'exact'
    """
    choices = list(choices)
    if value in choices:
        return value
    if not choices:
        raise error(field, value, "nothing is allowed here (the list of choices is empty)")
    guess = suggest(value, choices)
    fix = f"did you mean {guess!r}?" if guess else None
    raise error(field, value, "allowed: " + ", ".join(map(str, choices)), fix)


def check_alias(field: str, value: object, aliases: Mapping[str, str], choices: Iterable[object],
                error: type[PkcsfError] = PkcsfError) -> str:
    """Canonical name of ``value`` via ``aliases`` (case-insensitive); raise listing ``choices``.

    Parameters
    ----------
    field : str
        The name reported in the error.
    value : object
        What was given (compared as ``str(value).strip().lower()``).
    aliases : mapping of str to str
        Lower-case spelling -> canonical name.
    choices : iterable
        The names listed in the error as allowed.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    str
        The canonical name.

    Raises
    ------
    PkcsfError
        (``error``) for an unknown name, with the closest spelling as a hint.

    Examples
    --------
    >>> check_alias("route", "IT", {"it": "lumbar", "lumbar": "lumbar"}, ["lumbar"])
    'lumbar'
    """
    key = str(value).strip().lower()
    if key in aliases:
        return aliases[key]
    guess = suggest(key, aliases)
    raise error(field, value, "allowed: " + ", ".join(map(str, choices)),
                f"did you mean {aliases[guess]!r}?" if guess else None)


def check_finite(field: str, value: object, error: type[PkcsfError] = PkcsfError) -> float:
    """``value`` as a float if it is a finite number, else raise ``error`` naming the field, the value and the rule.

    Parameters
    ----------
    field : str
        The name reported in the error.
    value : object
        What was given.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    float
        The value.

    Examples
    --------
    >>> check_finite("dose", 0.5)
    0.5
    """
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise error(field, value, "must be a number") from None
    if not math.isfinite(x):
        raise error(field, value, "must be a finite number")
    return x


def check_positive(field: str, value: object, error: type[PkcsfError] = PkcsfError) -> float:
    """``value`` as a float if it is a finite number > 0, else raise ``error`` naming the field, the value and the rule.

    Parameters
    ----------
    field : str
        The name reported in the error.
    value : object
        What was given.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    float
        The value.

    Examples
    --------
    >>> check_positive("dose", 0.5)
    0.5
    """
    x = check_finite(field, value, error)
    if x <= 0:
        raise error(field, value, "must be > 0")
    return x


def check_nonnegative(field: str, value: object, error: type[PkcsfError] = PkcsfError) -> float:
    """``value`` as a float if it is a finite number >= 0, else raise ``error`` naming field, value and rule.

    Parameters
    ----------
    field : str
        The name reported in the error.
    value : object
        What was given.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    float
        The value.

    Examples
    --------
    >>> check_nonnegative("dose", 0.5)
    0.5
    """
    x = check_finite(field, value, error)
    if x < 0:
        raise error(field, value, "must be >= 0")
    return x


def check_fraction(field: str, value: object, error: type[PkcsfError] = PkcsfError) -> float:
    """``value`` as a float if it is a number between 0 and 1, else raise ``error`` naming field, value and rule.

    Parameters
    ----------
    field : str
        The name reported in the error.
    value : object
        What was given.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    float
        The value.

    Examples
    --------
    >>> check_fraction("dose", 0.5)
    0.5
    """
    x = check_finite(field, value, error)
    if not 0 <= x <= 1:
        raise error(field, value, "must be between 0 and 1")
    return x


def check_array(field: str, values: object, *, positive: bool = False, nonnegative: bool = False,
                error: type[PkcsfError] = PkcsfError) -> np.ndarray:
    """Check a numeric array; report the first offending element by index.

    Parameters
    ----------
    field : str
        The name reported in the error (with the index of the first bad element, ``"times[3]"``).
    values : array_like
        Numbers (converted to float64).
    positive, nonnegative : bool
        Require every element > 0 (or >= 0); finite is always required.
    error : type of PkcsfError, optional
        The error class raised.

    Returns
    -------
    ndarray of float64
        ``values`` as an array.

    Raises
    ------
    PkcsfError
        (``error``) naming the first element that breaks the rule.

    Examples
    --------
    >>> check_array("times", [0.0, 1.0, 2.0], nonnegative=True)
    array([0., 1., 2.])
    """
    arr = np.asarray(values, dtype=float)
    bad = ~np.isfinite(arr)
    rule = "must be finite"
    if positive:
        bad |= ~(arr > 0)
        rule = "must be finite and > 0"
    elif nonnegative:
        bad |= ~(arr >= 0)
        rule = "must be finite and >= 0"
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"{field}[{', '.join(map(str, idx))}]" if arr.ndim else field
        raise error(where, arr[idx].item() if arr.ndim else arr.item(), rule)
    return arr


def check_int(field: str, value: object, minimum: int = 1, error: type[PkcsfError] = PkcsfError, *,
              whole_floats: bool = False) -> int:
    """Return ``value`` as an ``int`` if it is a whole number >= ``minimum``, else raise ``error``.

    Parameters
    ----------
    field : str
        The name reported in the error (``"trials.n_trials"``).
    value : object
        What was given. Booleans and text are refused (``"5"`` is not 5).
    minimum : int, optional
        The smallest allowed value (default 1).
    error : type of PkcsfError, optional
        The error class raised.
    whole_floats : bool, optional
        Accept floats with no fractional part (``2.0`` but never ``2.5``); default False.

    Returns
    -------
    int
        The value.

    Raises
    ------
    PkcsfError
        (``error``) naming the field, the value and the rule.

    Examples
    --------
    >>> check_int("n", 3)
    3
    >>> check_int("n", 2.0, whole_floats=True)
    2
    """
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if (not ok and whole_floats and isinstance(value, (float, np.floating))
            and math.isfinite(value) and float(value).is_integer()):
        ok = True
    rule = f"must be a whole number >= {minimum}"
    if not ok:
        raise error(field, value, rule + (" (without quotes)" if isinstance(value, str) else ""))
    if value < minimum:
        raise error(field, value, rule)
    return int(value)


def check_keys(where: str, mapping: Mapping, allowed: Iterable[str], error: type[PkcsfError] = PkcsfError, *,
               hint: Callable[[str], str | None] | None = None) -> None:
    """Refuse a key of ``mapping`` (a TOML table, an options dict) that is not in ``allowed``.

    The one key check of pkcsf: the error names the key's path (``where.key``), its value, every allowed
    key and the closest one.

    Parameters
    ----------
    where : str
        Path of the table (``"population"``, ``"compartments[2]"``); ``""`` for the top level.
    mapping : mapping
        The table read.
    allowed : iterable of str
        The allowed keys, in the order the message lists them.
    error : type of PkcsfError, optional
        The error class raised.
    hint : callable, optional
        ``hint(key) -> str or None``: a fix to suggest when no allowed key is close (e.g. "belongs in
        [population]").

    Raises
    ------
    PkcsfError
        (``error``) for the first unknown key.

    Examples
    --------
    >>> check_keys("blq", {"first": "keep"}, ["first", "middle", "last"])
    >>> try:
    ...     check_keys("blq", {"frist": "keep"}, ["first", "middle", "last"])
    ... except PkcsfError as exc:
    ...     print(exc)
    blq.frist: got 'keep'; unknown key; allowed keys: first, middle, last (did you mean 'first'?)
    """
    allowed = [str(a) for a in allowed]
    for key in mapping:
        if key in allowed:
            continue
        guess = suggest(key, allowed)
        fix = f"did you mean {guess!r}?" if guess else (hint(key) if hint is not None else None)
        field = f"{where}.{key}" if where else str(key)
        raise error(field, mapping[key], "unknown key; allowed keys: " + ", ".join(allowed), fix)
