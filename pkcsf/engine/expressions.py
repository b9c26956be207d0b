"""Tiny, safe arithmetic expressions over parameter names.

Model files may give a transfer coefficient or a dose fraction as an
expression (``"PS_BCSF * FU"``, ``"1 - F_LEAK"``). Expressions are parsed
once with :mod:`ast`, checked against a whitelist (numbers, parameter names,
``+ - * / **``, and ``exp log sqrt min max abs``) and evaluated vectorised on
NumPy columns, one value per subject.
"""
from __future__ import annotations

import ast
import operator
from dataclasses import dataclass

import numpy as np

from pkcsf.core.errors import ModelError

__all__ = ["Expression", "MAX_CHARS", "MAX_NODES", "MAX_DEPTH"]

MAX_CHARS = 10_000      # a model expression is a line or two; these bound the work a file can ask for
MAX_NODES = 2_000
MAX_DEPTH = 100

_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
# Each function takes exactly this many positional arguments. They are called
# through fixed-arity wrappers, never as raw NumPy ufuncs: a ufunc's extra
# positional argument is ``out``, so ``max(CL, CLMIN, V)`` passed straight to
# np.maximum would overwrite V in place (issue 9).
_FUNCS = {"exp": lambda x: np.exp(x), "log": lambda x: np.log(x),
          "sqrt": lambda x: np.sqrt(x), "abs": lambda x: np.abs(x),
          "min": lambda x, y: np.minimum(x, y), "max": lambda x, y: np.maximum(x, y)}
_ARITY = {"exp": 1, "log": 1, "sqrt": 1, "abs": 1, "min": 2, "max": 2}


#: parsed expressions by their text (a model's validation parses the same few thousand texts again and again)
_PARSED: dict = {}
_PARSED_MAX = 100_000


@dataclass(frozen=True)
class Expression:
    """A parsed expression; ``names`` are the parameters it reads.

    Build with :meth:`Expression.parse`; arithmetic, parameter names, numbers and a few functions
    (``exp``, ``log``, ``sqrt``, ``min``, ``max``, ...) are allowed, nothing else.

    Parameters
    ----------
    text : str
        The expression as written.
    names : tuple of str
        The names it reads.

    Examples
    --------
    >>> e = Expression.parse("CL * (WT / 70) ** 0.75")
    >>> e.names
    ('CL', 'WT')
    """

    text: str
    names: tuple[str, ...]
    _tree: ast.AST

    @classmethod
    def parse(cls, text: str | float, field: str = "expression") -> Expression:
        """Parse and check ``text`` (a name, a number or an arithmetic expression).

        Parameters
        ----------
        text : str or float
            The expression.
        field : str, optional
            Named in errors.

        Returns
        -------
        Expression
            The parsed expression.

        Raises
        ------
        ModelError
            For syntax errors, unknown functions, wrong arity, or text that is too long or too deep.
        """
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = repr(float(text))
        if isinstance(text, str):
            hit = _PARSED.get(text)
            if hit is not None and type(hit) is cls:   # the same text parses to the same (immutable) expression
                return hit
        if not isinstance(text, str) or not text.strip():
            raise ModelError(field, text, "must be a parameter name, a number or an arithmetic expression")
        if len(text) > MAX_CHARS:
            raise ModelError(field, f"{len(text)} characters", f"an expression may have at most {MAX_CHARS} characters",
                             "split it into derived parameters")
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            raise ModelError(field, text, "is not a valid arithmetic expression") from None
        except (RecursionError, MemoryError, ValueError):
            raise ModelError(field, text, f"is nested too deeply (at most {MAX_DEPTH} levels)") from None
        _check_size(tree, field, text)
        names: list[str] = []
        callees: set[int] = set()  # ids of the Name nodes that are a call's function
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                if node.id in _FUNCS:
                    if id(node) not in callees:
                        raise ModelError(field, text, f"'{node.id}' is a function: call it as "
                                         f"{node.id}(...) with {_arity_text(node.id)}")
                elif node.id not in names:
                    names.append(node.id)
            elif isinstance(node, ast.Call):
                if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
                    raise ModelError(field, text, "only these functions are allowed: " + ", ".join(_FUNCS))
                fname = node.func.id
                callees.add(id(node.func))
                if node.keywords:
                    raise ModelError(field, text, f"function '{fname}' takes positional arguments only "
                                     f"({_arity_text(fname)}); keyword arguments such as "
                                     f"'{node.keywords[0].arg or '**'}=' are not allowed")
                if any(isinstance(a, ast.Starred) for a in node.args):
                    raise ModelError(field, text, f"function '{fname}' takes {_arity_text(fname)}; "
                                     "*arguments are not allowed")
                if len(node.args) != _ARITY[fname]:
                    raise ModelError(field, text, f"function '{fname}' got {len(node.args)} "
                                     f"argument{'s' if len(node.args) != 1 else ''}; it takes "
                                     f"{_arity_text(fname)}")
            elif isinstance(node, ast.BinOp):
                if type(node.op) not in _BINOPS:
                    raise ModelError(field, text, "only + - * / ** are allowed")
            elif isinstance(node, ast.UnaryOp):
                if type(node.op) not in _UNARY:
                    raise ModelError(field, text, "only unary + and - are allowed")
            elif isinstance(node, ast.Constant):
                if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
                    raise ModelError(field, text, "constants must be numbers")
                try:
                    float(node.value)
                except OverflowError:
                    raise ModelError(field, text, "a number is too large (beyond 1.8e308)") from None
            elif not isinstance(node, (ast.Load, ast.operator, ast.unaryop, ast.expr_context)):
                raise ModelError(field, text, f"'{type(node).__name__}' is not allowed in an expression")
        _constant_parts(tree, field, text)
        out = cls(text.strip(), tuple(names), tree)
        if len(_PARSED) < _PARSED_MAX:       # successes only: an error names its field, so it is raised each time
            _PARSED[text] = out
        return out

    @property
    def is_name(self) -> bool:
        """True when the expression is a bare parameter name."""
        return isinstance(self._tree, ast.Name)

    @property
    def constant(self) -> float | None:
        """The value if the expression has no names, else None."""
        if self.names:
            return None
        return float(self.evaluate({}))

    def evaluate(self, columns: dict[str, np.ndarray]) -> np.ndarray | float:
        """Evaluate over ``columns`` (name -> array), vectorised.

        Parameters
        ----------
        columns : dict of str to ndarray
            A value (scalar or array, one per subject) for every name in :attr:`names`.

        Returns
        -------
        ndarray or float
            The value per subject (broadcast from the columns), or a float for a constant.

        Examples
        --------
        >>> import numpy as np
        >>> Expression.parse("CL * 2").evaluate({"CL": np.array([1.0, 2.0])})
        array([2., 4.])
        """
        return _eval(self._tree, columns)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:   # the parsed tree is an internal detail (an ast object's address)
        return f"Expression({self.text!r}, names={self.names!r})"


def _arity_text(fname: str) -> str:
    n = _ARITY[fname]
    return f"exactly {n} argument{'s' if n != 1 else ''}"


def _check_size(tree, field, text):
    """At most MAX_NODES nodes and MAX_DEPTH levels (checked without recursion)."""
    stack, n = [(tree, 1)], 0
    while stack:
        node, depth = stack.pop()
        n += 1
        if depth > MAX_DEPTH:
            raise ModelError(field, text, f"is nested too deeply (at most {MAX_DEPTH} levels of operations)",
                             "split it into derived parameters")
        if n > MAX_NODES:
            raise ModelError(field, text, f"is too long (at most {MAX_NODES} terms and operators)",
                             "split it into derived parameters")
        stack.extend((c, depth + 1) for c in ast.iter_child_nodes(node))


def _constant_parts(node, field, text):
    """Value of a name-free sub-expression (checked finite), or None if it reads a parameter."""
    if isinstance(node, ast.Name):
        return None
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    kids = [_constant_parts(c, field, text) for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)
            and not (isinstance(node, ast.Call) and c is node.func)]
    if any(k is None for k in kids):
        return None
    with np.errstate(all="ignore"):
        value = np.float64(_eval(node, {}))
    if not np.isfinite(value):
        raise ModelError(field, text, f"the part {ast.unparse(node)!r} evaluates to {value} "
                         "(overflow, division by zero or a logarithm of 0)")
    return value


def _eval(node, cols):
    if isinstance(node, ast.Constant):
        return np.float64(node.value)
    if isinstance(node, ast.Name):
        return cols[node.id]
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, cols), _eval(node.right, cols))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, cols))
    if isinstance(node, ast.Call):
        return _FUNCS[node.func.id](*[_eval(a, cols) for a in node.args])
    raise TypeError(type(node).__name__)  # unreachable after parse()
