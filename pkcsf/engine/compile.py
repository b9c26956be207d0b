"""Turn a :class:`~pkcsf.engine.model.Model` into the flat tables the kernels read.

pkcsf does not generate code per model. Every model is lowered to the same
small set of integer/float tables (a list of linear transfers, a list of
Michaelis–Menten terms, the volume of each state, the dosing sites), and one
set of Numba kernels, compiled once per machine and cached on disk
(``cache=True``), reads them. Compiling a model is therefore cheap Python
work done once per model (and memoised); there is no per-model LLVM
compilation, and every model, parameter set and regimen reuses the same
machine code.

The parameter vector a kernel sees is a row of ``P`` (float64): the model's
parameters in declaration order, then derived parameters, then one column
per distinct expression used by a transfer, site or volume. The
name-to-column map is built once here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.engine.expressions import Expression
from pkcsf.engine.model import ELIMINATED, Model

__all__ = ["CompiledModel", "compile_model", "LIN_FLOW", "LIN_RATE", "LIN_ACCUMULATE"]

LIN_FLOW = 0        # rate = coef * C_source = coef / V_source * A_source
LIN_RATE = 1        # rate = coef * A_source
LIN_ACCUMULATE = 2  # d target = C_source, source unchanged


@dataclass(frozen=True)
class SiteTable:
    """A dosing site lowered to kernel tables: where a dose goes, in which fractions, with what F and lag.

    Attributes
    ----------
    name : str
        The site name (``"icv"``, ``"oral"``...).
    states : ndarray of int64, shape (n_targets,)
        The states that receive the dose.
    fractions : ndarray of int64, shape (n_targets,)
        Column of ``P`` holding each target's fraction of the dose, or -1 for 1.0.
    bioavailability : int
        Column of ``P`` holding the bioavailability, or -1 for 1.0.
    lag : int
        Column of ``P`` holding the lag time (h), or -1 for none.
    """

    name: str
    states: np.ndarray       # int64 (n_targets,)
    fractions: np.ndarray    # int64 column of P, or -1 for 1.0
    bioavailability: int     # column or -1
    lag: int                 # column or -1


@dataclass(frozen=True, eq=False)
class CompiledModel:
    """A model lowered to kernel tables. Build with :func:`compile_model`.

    Attributes
    ----------
    model : Model
        The model compiled.
    state_names : list of str
        Compartments in model order, then ``"eliminated"``.
    columns : list of str
        Names of the columns of the parameter matrix ``P`` (parameters,
        derived parameters, then expression columns).
    n_params : int
        Number of model parameters (the first columns of ``P``).
    expressions : tuple of (int, Expression)
        The computed columns (derived parameters and expressions), in evaluation order.
    vol_col : ndarray of int, shape (n_states,)
        Column of each state's volume, -1 for amount-only states.
    lin_type, lin_src, lin_dst, lin_col : ndarray of int, shape (n_linear,)
        Linear transfers: type (``LIN_FLOW``, ``LIN_RATE``, ``LIN_ACCUMULATE``), source state, target
        state, column of the coefficient.
    mm_src, mm_dst, mm_vmax, mm_km, mm_fu : ndarray of int, shape (n_saturable,)
        Michaelis–Menten terms: source, target, Vmax column, Km column, fu
        column (-1: fu = 1).
    is_mass : ndarray of bool, shape (n_states,)
        Whether each state counts in the mass balance.
    sites : dict of str to SiteTable
        The dosing sites.
    """

    model: Model
    state_names: list
    columns: list
    n_params: int
    expressions: tuple          # (column index, Expression) for columns >= n_params
    vol_col: np.ndarray
    lin_type: np.ndarray
    lin_src: np.ndarray
    lin_dst: np.ndarray
    lin_col: np.ndarray
    mm_src: np.ndarray
    mm_dst: np.ndarray
    mm_vmax: np.ndarray
    mm_km: np.ndarray
    mm_fu: np.ndarray
    is_mass: np.ndarray         # bool per state: counts in mass balance
    sites: dict

    def __repr__(self) -> str:
        return (f"CompiledModel({self.model.name!r}: {self.n_states} states, {len(self.columns)} columns, "
                f"{len(self.lin_type)} linear and {len(self.mm_src)} saturable transfers)")

    @property
    def n_states(self) -> int:
        """Number of states: the compartments plus the eliminated-amount state."""
        return len(self.state_names)

    @property
    def sink(self) -> int:
        """Index of the eliminated-amount state (the last one)."""
        return self.n_states - 1

    @property
    def parameter_names(self) -> list:
        """The model's parameter names (the first columns of ``P``)."""
        return self.columns[: self.n_params]

    @property
    def has_nonlinear(self) -> bool:
        """True when the model has saturable (Michaelis-Menten) transfers."""
        return len(self.mm_src) > 0

    def column(self, name: str) -> int:
        """Column of ``P`` holding parameter (or derived parameter) ``name``.

        Parameters
        ----------
        name : str
            Parameter name.

        Returns
        -------
        int
            Column index.
        """
        try:
            return self.columns.index(name)
        except ValueError:
            check_choice("parameter", name, self.parameter_names, ParameterError)
            raise

    def volumes(self, P: np.ndarray) -> np.ndarray:
        """Volumes (L) of every state; 1.0 for amount-only states.

        Parameters
        ----------
        P : ndarray, shape (N, n_columns)
            Parameter matrix from :meth:`evaluate`.

        Returns
        -------
        ndarray, shape (N, n_states)
            Volumes, L.
        """
        V = np.ones((P.shape[0], self.n_states))
        has = self.vol_col >= 0
        V[:, has] = P[:, self.vol_col[has]]
        return V

    def evaluate(self, base: np.ndarray) -> np.ndarray:
        """Append derived and expression columns to base parameters.

        Parameters
        ----------
        base : ndarray, shape (N, n_params)
            Parameter values in declaration order, base units.

        Returns
        -------
        ndarray, shape (N, n_columns)
            The parameter matrix ``P``, C-contiguous float64.
        """
        base = np.asarray(base, dtype=np.float64)
        N = base.shape[0]
        P = np.empty((N, len(self.columns)), dtype=np.float64)
        P[:, : self.n_params] = base
        cols = {name: P[:, i] for i, name in enumerate(self.columns[: self.n_params])}
        with np.errstate(all="ignore"):
            for idx, expr in self.expressions:
                val = expr.evaluate(cols)
                P[:, idx] = val
                cols[self.columns[idx]] = P[:, idx]
        return P

    def active_nonlinear(self, P: np.ndarray) -> bool:
        """True if some Michaelis–Menten term has Vmax > 0 for some subject.

        Parameters
        ----------
        P : ndarray, shape (N, n_columns)
            Parameter matrix from :meth:`evaluate`.

        Returns
        -------
        bool
            False when the model has no saturable transfer or every Vmax is 0.
        """
        if not self.has_nonlinear:
            return False
        return bool(np.any(P[:, self.mm_vmax] != 0.0))

    def rate_matrix(self, p_row: np.ndarray) -> np.ndarray:
        """The linear part as a matrix ``A`` (dA/dt = A @ amounts), for one subject.

        Parameters
        ----------
        p_row : ndarray, shape (n_columns,)
            One row of the parameter matrix ``P``.

        Returns
        -------
        ndarray, shape (n_states, n_states)
            The rate matrix, 1/h.
        """
        from pkcsf.solvers.kernels import build_matrix

        A = np.zeros((self.n_states, self.n_states))
        build_matrix(np.ascontiguousarray(p_row, dtype=np.float64), self.vol_col, self.lin_type, self.lin_src,
                     self.lin_dst, self.lin_col, A)
        return A


def _topological(parsed: dict) -> list:
    """Derived names ordered so that each comes after the derived names it reads."""
    order: list = []
    seen: set = set()

    def visit(n):
        if n in seen or n not in parsed:
            return
        seen.add(n)
        for m in parsed[n].names:
            visit(m)
        order.append(n)

    for n in parsed:
        visit(n)
    return order


@functools.lru_cache(maxsize=64)
def _compile_cached(model: Model) -> CompiledModel:
    return _compile(model)


def compile_model(model: Model) -> CompiledModel:
    """Lower ``model`` to kernel tables (memoised per model object).

    Parameters
    ----------
    model : Model
        A validated model.

    Returns
    -------
    CompiledModel
        Index tables of states, parameter columns, transfers and sites.

    Examples
    --------
    >>> from pkcsf.engine.model import load_model
    >>> compile_model(load_model("reference_p1")).n_states
    7
    """
    if isinstance(model, CompiledModel):
        return model
    try:
        return _compile_cached(model)
    except TypeError:  # unhashable (should not happen: models are frozen)
        return _compile(model)


def _compile(model: Model) -> CompiledModel:
    columns = list(model.parameter_names)
    n_params = len(columns)
    expressions: list = []
    text_to_col: dict[str, int] = {}

    parsed = {name: Expression.parse(text, f"derived.{name}") for name, text in model.derived}
    for name in _topological(parsed):
        columns.append(name)
        expressions.append((len(columns) - 1, parsed[name]))
        text_to_col[name] = len(columns) - 1

    def col(value) -> int:
        if value is None:
            return -1
        e = Expression.parse(value)
        if e.is_name and e.text in columns:
            return columns.index(e.text)
        key = e.text
        if key not in text_to_col:
            columns.append(f"<{key}>")
            expressions.append((len(columns) - 1, e))
            text_to_col[key] = len(columns) - 1
        return text_to_col[key]

    names = model.compartment_names
    state_names = names + [ELIMINATED]
    sink = len(state_names) - 1
    index = {n: i for i, n in enumerate(names)}

    vol_col = np.array([col(c.volume) for c in model.compartments] + [-1], dtype=np.int64)
    lt, ls, ld, lc = [], [], [], []
    ms, md, mv, mk, mf = [], [], [], [], []
    for t in model.transfers:
        s = index[t.source]
        d = sink if t.target is None else index[t.target]
        if t.type == "flow":
            lt.append(LIN_FLOW); ls.append(s); ld.append(d); lc.append(col(t.coefficient))
        elif t.type == "exchange":
            c = col(t.coefficient)
            lt += [LIN_FLOW, LIN_FLOW]; ls += [s, d]; ld += [d, s]; lc += [c, c]
        elif t.type in ("first_order", "release"):
            lt.append(LIN_RATE); ls.append(s); ld.append(d); lc.append(col(t.coefficient))
        elif t.type == "accumulate":
            lt.append(LIN_ACCUMULATE); ls.append(s); ld.append(d); lc.append(-1)
        elif t.type == "michaelis_menten":
            ms.append(s); md.append(d); mv.append(col(t.vmax)); mk.append(col(t.km)); mf.append(col(t.fu))
    sites = {}
    for s in model.sites:
        sites[s.name] = SiteTable(s.name, np.array([index[c] for c, _ in s.targets], dtype=np.int64),
                                  np.array([col(f) for _, f in s.targets], dtype=np.int64),
                                  col(s.bioavailability), col(s.lag))
    is_mass = np.array([c.kind == "mass" for c in model.compartments] + [True])

    def arr(x):
        return np.array(x, dtype=np.int64)

    return CompiledModel(model, state_names, columns, n_params, tuple(expressions), vol_col,
                         arr(lt), arr(ls), arr(ld), arr(lc), arr(ms), arr(md), arr(mv), arr(mk), arr(mf),
                         is_mass, sites)
