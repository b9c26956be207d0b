"""Problem construction for :func:`pkcsf.engine.simulate.simulate`: the per-subject parameter table (model
parameters, derived values, checks that name subject, parameter and value) and the doses lowered to per-subject
event arrays (bolus, infusion start/stop, steady-state) that the solvers consume.

Split out of ``simulate.py`` (issue 8); ``simulate.py`` keeps the entry points (:func:`simulate`,
:func:`prepare`, :class:`Problem`) and the solver options.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pkcsf.core.errors import DosingError, ParameterError, check_choice
from pkcsf.engine.compile import CompiledModel
from pkcsf.engine.dosing import Dose, Regimen
from pkcsf.engine.expressions import Expression
from pkcsf.solvers import kernels as K

_ID_COLUMNS = ("ID", "id")


# --------------------------------------------------------------- parameters
def _parameter_table(cm: CompiledModel, params, extra_needed: set) -> tuple[np.ndarray, dict, np.ndarray]:
    """Base parameter matrix (N, n_params), extra subject columns, ids."""
    names = cm.parameter_names
    defaults = {p.name: p.default for p in cm.model.parameters if p.default is not None}
    if params is None:
        params = {}
    ids = None
    if isinstance(params, pd.Series):
        params = params.to_dict()
    if isinstance(params, pd.DataFrame):
        df = params
        for c in _ID_COLUMNS:
            if c in df.columns:
                ids = df[c].to_numpy()
                df = df.drop(columns=[c])
        cols = {str(c): df[c].to_numpy() for c in df.columns}
        N = len(df)
    elif isinstance(params, np.ndarray) and params.ndim == 2:
        if params.shape[1] != len(names):
            raise ParameterError("params", f"array of shape {params.shape}",
                                 f"a 2-D array needs one column per model parameter ({len(names)}: {', '.join(names)})")
        cols = {n: params[:, j] for j, n in enumerate(names)}
        N = params.shape[0]
    elif isinstance(params, dict):
        cols = {}
        N = None
        for k, v in params.items():
            arr = np.atleast_1d(np.asarray(v, dtype=float)) if not isinstance(v, str) else v
            if isinstance(arr, str):
                raise ParameterError(f"params[{k!r}]", v, "must be a number or an array of numbers")
            if arr.ndim != 1:
                raise ParameterError(f"params[{k!r}]", f"array of shape {arr.shape}", "must be a scalar or a 1-D array (one value per subject)")
            if arr.size != 1:
                if N is not None and N != 1 and arr.size != N:
                    raise ParameterError(f"params[{k!r}]", f"{arr.size} values",
                                         f"every per-subject column must have the same length ({N})")
                N = arr.size if N in (None, 1) else N
            elif N is None:
                N = 1
            cols[str(k)] = arr
        N = N or 1
        cols = {k: (np.repeat(v, N) if v.size == 1 else v) for k, v in cols.items()}
        if "ID" in cols:
            ids = cols.pop("ID")
    else:
        raise ParameterError("params", type(params).__name__,
                             "must be a dict {name: value or array}, a pandas DataFrame (one row per subject) or a 2-D array")
    if N == 0:
        raise ParameterError("params", "0 subjects", "at least one subject is needed")
    known = set(names) | set(extra_needed)
    unknown = [c for c in cols if c not in known]
    if unknown:
        bad = unknown[0]
        raise ParameterError(f"params[{bad!r}]", bad,
                             "not a parameter of model " + repr(cm.model.name) + "; valid names: " + ", ".join(names),
                             _did_you_mean(bad, names))
    missing = [n for n in names if n not in cols and n not in defaults]
    if missing:
        raise ParameterError("params", f"missing {', '.join(missing)}",
                             f"model {cm.model.name!r} needs a value for every parameter: {', '.join(names)}")
    base = np.empty((N, len(names)))
    for j, n in enumerate(names):
        col = cols.get(n)
        if col is None:
            base[:, j] = defaults[n]
        else:
            try:
                base[:, j] = np.asarray(col, dtype=float)
            except (TypeError, ValueError):
                raise ParameterError(f"params[{n!r}]", col[:3] if hasattr(col, "__getitem__") else col,
                                     "must be numbers") from None
    extras = {}
    for n in extra_needed:
        if n in cols:
            try:
                extras[n] = np.asarray(cols[n], dtype=float)
            except (TypeError, ValueError):
                raise ParameterError(f"params[{n!r}]", cols[n][:3], "must be numbers") from None
    if ids is None:
        ids = np.arange(N)
    return base, extras, np.asarray(ids)


def _sid(x) -> str:
    """A subject id for messages (no numpy repr)."""
    return repr(x.item() if hasattr(x, "item") else x)


def _did_you_mean(name, choices):
    from pkcsf.core.errors import suggest

    g = suggest(name, choices)
    return f"did you mean {g!r}?" if g else None


def _check_values(cm: CompiledModel, P: np.ndarray, ids):
    """Every used column finite and in its allowed range, naming subject and parameter."""
    model = cm.model
    rules: list[tuple[int, str, str]] = []   # (column, rule, what)
    for s, c in enumerate(cm.vol_col[:-1]):
        if c >= 0:
            rules.append((int(c), "positive", f"volume of {model.compartments[s].name}"))
    for k in range(len(cm.lin_col)):
        if cm.lin_col[k] >= 0:
            rules.append((int(cm.lin_col[k]), "nonnegative",
                          f"coefficient of the transfer {cm.state_names[cm.lin_src[k]]} -> {cm.state_names[cm.lin_dst[k]]}"))
    for k in range(len(cm.mm_src)):
        rules.append((int(cm.mm_vmax[k]), "nonnegative", f"Vmax of {cm.state_names[cm.mm_src[k]]} -> {cm.state_names[cm.mm_dst[k]]}"))
        rules.append((int(cm.mm_km[k]), "positive", f"Km of {cm.state_names[cm.mm_src[k]]} -> {cm.state_names[cm.mm_dst[k]]}"))
        if cm.mm_fu[k] >= 0:
            rules.append((int(cm.mm_fu[k]), "nonnegative", "fraction unbound"))
    for site in cm.sites.values():
        for c in site.fractions:
            if c >= 0:
                rules.append((int(c), "nonnegative", f"dose fraction of site {site.name}"))
        if site.bioavailability >= 0:
            rules.append((site.bioavailability, "nonnegative", f"bioavailability of site {site.name}"))
        if site.lag >= 0:
            rules.append((site.lag, "nonnegative", f"lag time of site {site.name}"))
    # every base parameter must at least be finite
    for j in range(cm.n_params):
        rules.append((j, "finite", "parameter"))
    for col, rule, what in rules:
        v = P[:, col]
        bad = ~np.isfinite(v)
        allowed = "must be a finite number"
        if rule == "positive":
            bad |= ~(v > 0)
            allowed = "must be a finite number > 0"
        elif rule == "nonnegative":
            bad |= ~(v >= 0)
            allowed = "must be a finite number >= 0"
        if bad.any():
            i = int(np.argmax(bad))
            name = cm.columns[col]
            label = name if not name.startswith("<") else name[1:-1]
            raise ParameterError(f"subject {_sid(ids[i])}: {label}" + ("" if what == "parameter" else f" ({what})"),
                                 float(v[i]), allowed)


# ------------------------------------------------------------------ events
@dataclass
class _DoseSpec:
    """One single dose resolved against the model (vectorised over subjects later)."""

    time: float
    amount: object              # float or Expression
    targets: np.ndarray         # state indices
    fractions: np.ndarray       # column per target or -1
    F: int
    lag: int
    rate: float | None
    duration: float | None


def _resolve_doses(cm: CompiledModel, regimen, where="regimen") -> list[_DoseSpec]:
    if isinstance(regimen, Dose):
        regimen = Regimen([regimen])
    if isinstance(regimen, (list, tuple)) and all(isinstance(d, Dose) for d in regimen):
        regimen = Regimen(list(regimen))
    if not isinstance(regimen, Regimen):
        raise DosingError(where, type(regimen).__name__, "must be a Regimen, a Dose or a list of Doses")
    out = []
    names = cm.state_names[:-1]
    for d in regimen.expand():
        if d.site in cm.sites:
            st = cm.sites[d.site]
            targets, fracs, F, lag = st.states, st.fractions, st.bioavailability, st.lag
        elif d.site in names:
            if cm.model.compartment(d.site).kind == "accumulator":
                raise DosingError(f"{where}: dose at {d.time:g} h", d.site, "cannot dose into an accumulator compartment")
            targets = np.array([names.index(d.site)], dtype=np.int64)
            fracs = np.array([-1], dtype=np.int64)
            F, lag = -1, -1
        else:
            check_choice(f"{where}: dose at {d.time:g} h: site", d.site,
                         list(cm.sites) + names, DosingError)
        amount = d.amount if not isinstance(d.amount, str) else Expression.parse(d.amount, f"{where}: dose amount")
        out.append(_DoseSpec(d.time, amount, targets, fracs, F, lag, d.rate, d.duration))
    return out


def _subject_columns_needed(specs_list) -> set:
    need = set()
    for specs in specs_list:
        for s in specs:
            if isinstance(s.amount, Expression):
                need.update(s.amount.names)
    return need


def _build_events(cm: CompiledModel, groups, P: np.ndarray, extras: dict, base_cols: dict, ids,
                  where="regimen"):
    """Event arrays for the rows of P: (ev_t, ev_s, ev_a, ev_k) of shape (N, E), ev_n (N,).

    ``groups`` is a list of ``(spec, rows)``: a dose and the rows (subjects of
    this chunk) that receive it. A shared regimen is one group per dose with
    every row; per-subject regimens group identical doses across subjects, so
    both are computed vectorised per group. Events of a subject are sorted by
    time (stable: doses at the same time keep their order); rows with fewer
    events are padded with +inf times. When every row has the same events,
    one row is returned (the kernels broadcast it).
    """
    N = P.shape[0]
    ts, ss, aa, kk, rr = [], [], [], [], []
    cols = None
    for spec, rows in groups:
        n = len(rows)
        if isinstance(spec.amount, Expression):
            if cols is None:
                cols = dict(base_cols)
                cols.update(extras)
            missing = [m for m in spec.amount.names if m not in cols]
            if missing:
                raise DosingError(f"{where}: dose amount {spec.amount.text!r}", missing[0],
                                  "an amount expression must use subject columns given in params (e.g. a DOSE or BSA column)")
            amt = np.broadcast_to(np.asarray(spec.amount.evaluate({m: cols[m][rows] for m in spec.amount.names}),
                                             dtype=float), (n,))
            bad = ~np.isfinite(amt) | (amt < 0)
            if bad.any():
                i = int(rows[np.argmax(bad)])
                raise DosingError(f"{where}: subject {_sid(ids[i])}: dose amount {spec.amount.text!r}",
                                  float(amt[np.argmax(bad)]), "must evaluate to a finite amount >= 0 mg")
        else:
            amt = np.full(n, float(spec.amount))
        F = P[rows, spec.F] if spec.F >= 0 else np.ones(n)
        lag = P[rows, spec.lag] if spec.lag >= 0 else np.zeros(n)
        t0 = spec.time + lag
        for st, fc in zip(spec.targets, spec.fractions):
            frac = P[rows, fc] if fc >= 0 else np.ones(n)
            delivered = amt * F * frac
            if spec.rate is None and spec.duration is None:
                parts = [(t0, delivered, K.EV_BOLUS)]
            else:
                if spec.rate is not None:      # rate kept, duration follows F (NONMEM)
                    dur = amt * F / spec.rate
                    rate = spec.rate * frac
                else:
                    dur = np.full(n, spec.duration)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        rate = np.where(dur > 0, delivered / dur, 0.0)
                rate = np.broadcast_to(rate, (n,))
                parts = [(t0, rate, K.EV_RATE_ON), (t0 + dur, rate, K.EV_RATE_OFF)]
            for t, a, kind in parts:
                ts.append(t); aa.append(a); rr.append(rows)
                ss.append(np.full(n, st)); kk.append(np.full(n, kind))
    if not ts:
        z = np.zeros((1, 1))
        return z, np.zeros((1, 1), np.int64), z.copy(), np.zeros((1, 1), np.int64), np.zeros(1, np.int64)
    t, s, a, k, r = (np.concatenate(x) for x in (ts, ss, aa, kk, rr))
    order = np.lexsort((t, r))            # by row, then time; stable for equal times
    t, s, a, k, r = t[order], s[order].astype(np.int64), a[order].astype(float), k[order].astype(np.int64), r[order]
    ev_n = np.bincount(r, minlength=N).astype(np.int64)
    E = int(ev_n.max())
    pos = np.arange(len(t)) - (np.cumsum(ev_n) - ev_n)[r]
    ev_t = np.full((N, E), np.inf)
    ev_s = np.zeros((N, E), np.int64)
    ev_a = np.zeros((N, E))
    ev_k = np.zeros((N, E), np.int64)
    ev_t[r, pos], ev_s[r, pos], ev_a[r, pos], ev_k[r, pos] = t, s, a, k
    if N > 1 and (ev_n == E).all() and (ev_t == ev_t[0]).all() and (ev_a == ev_a[0]).all() \
            and (ev_s == ev_s[0]).all() and (ev_k == ev_k[0]).all():
        ev_t, ev_s, ev_a, ev_k, ev_n = ev_t[:1], ev_s[:1], ev_a[:1], ev_k[:1], ev_n[:1]
    return ev_t, ev_s, ev_a, ev_k, ev_n


def _group_doses(spec_lists) -> list:
    """``(spec, rows)`` groups: identical doses of different subjects share one group."""
    groups: dict = {}
    for row, specs in enumerate(spec_lists):
        for spec in specs:
            amount = spec.amount.text if isinstance(spec.amount, Expression) else spec.amount
            key = (spec.time, amount, tuple(spec.targets), tuple(spec.fractions), spec.F, spec.lag, spec.rate,
                   spec.duration)
            if key not in groups:
                groups[key] = (spec, [])
            groups[key][1].append(row)
    return [(spec, np.asarray(rows, dtype=np.int64)) for spec, rows in groups.values()]
