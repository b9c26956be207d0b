"""Time-varying covariates: solving subjects in segments between covariate change times.

The engine's parameters are constant within a subject. A subject whose covariates change (an event table
with a ``WT`` that changes from one row to the next) is solved in **segments**: between two consecutive
change times the parameters are those of that segment's covariates (the random effects stay the subject's
own), and the amounts at the end of one segment are the initial amounts of the next (amounts are continuous;
a concentration may jump where a volume changes). The rule that turns table rows into segments is in
:mod:`pkcsf.clinical.events` (last observation carried forward) and docs/event_tables.md.

Doses are lowered to the compartments they reach before the split, with the bioavailability, dose fractions
and lag time of the segment in which the dose **record** falls (as NONMEM evaluates ``F`` and ``ALAG`` at the
dose record). A bolus belongs to the segment holding its (lagged) time; a dose at a change time belongs to
the new segment. An infusion running across a change time is split into pieces, one per segment, each with
the amount delivered in that segment (rate x time: amounts proportional to time).

Hand-off tolerance: an adaptive solver can return amounts a little below zero near zero (round-off of the
order of its tolerances); the engine refuses negative initial amounts. A negative hand-off amount no larger
than :data:`CLIP_RELATIVE` times the subject's amount scale (its largest state amount at that time or its
largest dose, mg) is set to 0; a larger one is a real negative and raises :class:`SolverError` naming the
subject, the compartment, the time and the value (never clipped silently).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pkcsf.core.errors import DosingError, SolverError
from pkcsf.engine.compile import compile_model
from pkcsf.engine.dosing import Dose, Regimen
from pkcsf.engine.simulate import Problem, prepare

if TYPE_CHECKING:
    from pkcsf.engine.compile import CompiledModel
    from pkcsf.engine.model import Model

__all__ = ["CLIP_RELATIVE", "Delivery", "chain_segments", "clip_hand_off", "lower_doses", "split_deliveries",
           "solve_segments"]

#: a negative hand-off amount within this fraction of the subject's amount scale is solver round-off (set to
#: 0); 10 times the default relative tolerance of the adaptive solvers (1e-7)
CLIP_RELATIVE = 1e-6


@dataclass(frozen=True)
class Delivery:
    """Drug reaching one compartment: a bolus (``duration`` 0) or a zero-order input over ``duration``.

    Attributes
    ----------
    time : float
        Start (h, lag included).
    state : str
        Compartment name.
    amount : float
        Amount delivered (mg, bioavailability and dose fraction applied).
    duration : float
        Input duration (h); 0 for a bolus.
    """

    time: float
    state: str
    amount: float
    duration: float = 0.0


def _segment_of(starts: np.ndarray, t: float) -> int:
    """Index of the segment holding time ``t`` (a change time belongs to the new segment)."""
    return int(np.searchsorted(starts, t, side="right") - 1)


def lower_doses(cm: CompiledModel, regimen: Regimen, seg_P: list, row: int, starts: np.ndarray, where: str = "regimen"
                ) -> list[Delivery]:
    """One subject's doses as deliveries into compartments, with the segment parameters of each dose record.

    Parameters
    ----------
    cm : CompiledModel
        The compiled model.
    regimen : Regimen
        The subject's doses.
    seg_P : list of ndarray, each shape (n_subjects, n_columns)
        Evaluated parameter matrices of every segment.
    row : int
        The subject's row in the matrices.
    starts : ndarray, shape (K,)
        Segment start times (h); ``starts[0]`` is 0.
    where : str, optional
        Label for messages.

    Returns
    -------
    list of Delivery
        One per dose and target compartment.

    Raises
    ------
    DosingError
        A dose whose amount is an expression (event tables give amounts in mg), or into an accumulator.
    """
    names = cm.state_names[:-1]
    out = []
    for d in regimen.expand():
        if isinstance(d.amount, str):
            raise DosingError(f"{where}: dose at {d.time:g} h: amount", d.amount,
                              "with time-varying covariates a dose amount must be a number (mg)")
        P = seg_P[_segment_of(starts, d.time)][row]
        if d.site in cm.sites:
            st = cm.sites[d.site]
            targets, fracs, F, lag = st.states, st.fractions, st.bioavailability, st.lag
        elif d.site in names:
            if cm.model.compartment(d.site).kind == "accumulator":
                raise DosingError(f"{where}: dose at {d.time:g} h", d.site, "cannot dose into an accumulator "
                                  "compartment")
            targets, fracs, F, lag = [names.index(d.site)], [-1], -1, -1
        else:
            raise DosingError(f"{where}: dose at {d.time:g} h: site", d.site,
                              "a site or compartment of the model: " + ", ".join(list(cm.sites) + names))
        f = float(P[F]) if F >= 0 else 1.0
        t0 = d.time + (float(P[lag]) if lag >= 0 else 0.0)
        amt = float(d.amount)
        for st_i, fc in zip(targets, fracs):
            frac = float(P[fc]) if fc >= 0 else 1.0
            delivered = amt * f * frac
            if d.rate is None and d.duration is None:
                dur = 0.0
            elif d.rate is not None:            # rate kept, duration follows F (NONMEM), as the engine does
                dur = amt * f / d.rate
            else:
                dur = float(d.duration)
            if delivered > 0:
                out.append(Delivery(t0, names[int(st_i)], delivered, dur))
    return out


def split_deliveries(deliveries: list[Delivery], starts: np.ndarray) -> list[list[Dose]]:
    """Deliveries cut at the segment starts, as engine doses on each segment's own clock.

    Parameters
    ----------
    deliveries : list of Delivery
        One subject's deliveries (:func:`lower_doses`).
    starts : ndarray, shape (K,)
        Segment start times (h).

    Returns
    -------
    list of list of Dose
        ``K`` lists; times relative to the segment's start. An input crossing a start becomes one
        piece per segment it overlaps, each with amount x (overlap / duration).
    """
    K = len(starts)
    ends = np.append(starts[1:], np.inf)
    out: list[list[Dose]] = [[] for _ in range(K)]
    for dl in deliveries:
        if dl.duration <= 0:
            k = _segment_of(starts, dl.time)
            out[k].append(Dose(dl.amount, dl.state, dl.time - starts[k]))
            continue
        s, e = dl.time, dl.time + dl.duration
        for k in range(_segment_of(starts, s), K):
            a, b = max(s, starts[k]), min(e, ends[k])
            if b <= a:
                if starts[k] >= e:
                    break
                continue
            piece = dl.amount * (b - a) / dl.duration if (a, b) != (s, e) else dl.amount
            out[k].append(Dose(piece, dl.state, a - starts[k], duration=b - a))
    return out


def clip_hand_off(y: np.ndarray, scale: np.ndarray, time: float, names: list[str], ids: list | None = None
                  ) -> np.ndarray:
    """Hand-off amounts with solver round-off below zero set to 0; a real negative raises.

    Parameters
    ----------
    y : ndarray, shape (n, S)
        Amounts (mg) at the end of a segment.
    scale : ndarray, shape (n,)
        Each subject's amount scale (mg): its largest dose or state amount.
    time : float
        The change time (h), for the message.
    names : list of str
        State names, for the message.
    ids : list, optional
        Subject labels, for the message (default: row numbers).

    Returns
    -------
    ndarray, shape (n, S)
        ``y`` with every negative within ``CLIP_RELATIVE * scale`` set to 0.

    Raises
    ------
    SolverError
        An amount below ``-CLIP_RELATIVE * scale``: naming subject (row), compartment, time and value.
    """
    y = np.array(y, dtype=float)
    scale = np.asarray(scale, dtype=float)
    neg = y < 0
    real = neg & (y < -CLIP_RELATIVE * scale[:, None])
    if real.any():
        i, j = np.argwhere(real)[0]
        label = i if ids is None else ids[i]
        raise SolverError(f"subject {label!r}: amount in {names[j]} at {time:g} h (covariate change)", float(y[i, j]),
                          f"must be >= 0 mg; round-off up to {CLIP_RELATIVE:g} x the subject's amount scale "
                          f"({scale[i]:.3g} mg) is set to 0, this is beyond it (tighten rtol/atol, or report)")
    y[neg] = 0.0
    return y


def solve_segments(model: Model | str, regimens: list, seg_params: list, starts: np.ndarray, seg: np.ndarray,
                   tloc: np.ndarray, *, order: np.ndarray | None = None, solver: str = "auto",
                   max_steps: int | None = None, ids: list | None = None) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """Solve subjects whose parameters change at ``starts``, chaining the amounts from segment to segment.

    Parameters
    ----------
    model : Model
        The drug's model.
    regimens : list of Regimen
        One per subject, in the row order of the parameter tables.
    seg_params : list of DataFrame
        One parameter table per segment (one row per subject, same order; model parameters, base units).
    starts : ndarray, shape (K,)
        Segment start times (h), increasing, ``starts[0] == 0``.
    seg : ndarray of int, shape (M,)
        The segment of each read point.
    tloc : ndarray, shape (M,)
        The time of each read point on its segment's clock (h from the segment's start). Within a segment,
        points must be sorted, each time at most twice (before and after the doses at that time); a point
        at the segment's end reads the amounts just before the next segment.
    order : ndarray of int, shape (M,), optional
        Tie-break of points at the same local time (lower first: the value before the doses); default the
        points' order.
    solver, max_steps
        As for :func:`pkcsf.engine.simulate.prepare` (the step budget applies to each segment).
    ids : list, optional
        Subject labels for messages (default: row numbers).

    Returns
    -------
    tuple
        ``(amounts, status, problems)``: amounts (n, M, S) of every state (mg) at the read points (NaN for
        a subject from the segment where it failed), per-subject :class:`~pkcsf.core.errors.Status` codes
        (the first failure), and each segment's :class:`Problem` (its ``P`` gives that segment's volumes).

    Raises
    ------
    SolverError
        A hand-off amount negative beyond the round-off tolerance (see the module docstring).
    """
    cm = compile_model(model)
    clash = sorted(set(cm.sites) & set(cm.state_names))
    if clash:       # doses are lowered to compartments by name: a site of the same name would be read instead
        raise DosingError("model", clash[0], "time-varying covariates need site names distinct from "
                          "compartment names")
    starts = np.asarray(starts, dtype=float)
    K = len(starts)
    n = len(seg_params[0])
    probe = [prepare(model, Regimen([]), p, times=[0.0], solver=solver) for p in seg_params]
    seg_P = [p.P for p in probe]
    doses, scale = [], np.zeros(n)
    for i, reg in enumerate(regimens):
        dl = lower_doses(cm, reg, seg_P, i, starts, where=f"subject {i if ids is None else ids[i]!r}")
        doses.append(split_deliveries(dl, starts))
        scale[i] = max([d.amount for d in dl] + [0.0])
    seg_regimens = [{j: Regimen(doses[j][k]) for j in range(n)} for k in range(K)]
    seg_params = [p.assign(ID=np.arange(n)) for p in seg_params]
    return chain_segments(model, seg_regimens, seg_params, starts, seg, tloc, scale, order=order, solver=solver,
                          max_steps=max_steps, ids=ids)


def chain_segments(model: Model | str, seg_regimens: list, seg_params: list, starts: np.ndarray, seg: np.ndarray,
                   tloc: np.ndarray, scale: np.ndarray, *, order: np.ndarray | None = None, solver: str = "auto",
                   max_steps: int | None = None, ids: list | None = None, outputs: list | None = None
                   ) -> tuple[np.ndarray, np.ndarray, list[Problem]]:
    """Solve segment after segment, the amounts at a segment's end starting the next (the loop of
    :func:`solve_segments` and of a patient's position, :mod:`pkcsf.clinical.position`).

    Parameters
    ----------
    model : Model
        The model.
    seg_regimens : list
        Per segment, its doses on its own clock: one :class:`Regimen` for every subject, or ``{row: Regimen}``.
    seg_params : list of DataFrame
        Per segment, the parameter table (one row per subject, same order; columns as :func:`prepare` takes them).
    starts, seg, tloc
        As for :func:`solve_segments`.
    scale : ndarray, shape (n,)
        Each subject's amount scale for the hand-off round-off (mg; :func:`clip_hand_off`).
    order, solver, max_steps, ids
        As for :func:`solve_segments`.
    outputs : list of str, optional
        Save only these states at the read points; every state is then read once more at each segment's end (a
        one-point solve): bounded memory, more solver work. Default: every state.

    Returns
    -------
    tuple
        ``(amounts, status, problems)``: amounts (n, M, saved states) in mg at the read points (NaN for a subject
        from the segment where it failed), per-subject status codes (the first failure), and the problem that read
        each segment's points (None for a segment without read points when ``outputs`` is given).
    """
    cm = compile_model(model)
    seg = np.asarray(seg, dtype=np.int64)
    tloc = np.asarray(tloc, dtype=float)
    order = np.zeros(len(seg), dtype=np.int64) if order is None else np.asarray(order, dtype=np.int64)
    n, K = len(seg_params[0]), len(starts)
    amounts = None
    status = np.zeros(n, dtype=np.int64)
    problems = []
    y0 = np.zeros((n, cm.n_states))
    budget = {} if max_steps is None else {"max_steps": max_steps}

    def solve(k, at, saved):
        prob = prepare(model, seg_regimens[k], seg_params[k], times=at, solver=solver, y0=y0, **budget,
                       **({} if saved is None else {"outputs": saved}))
        out, st, _ = prob.solve()
        failed_now = (st != 0) & (status == 0)
        status[failed_now] = st[failed_now]
        return prob, out

    for k in range(K):
        idx = np.flatnonzero(seg == k)
        idx = idx[np.lexsort((order[idx], tloc[idx]))]          # by local time, then before / after
        t = tloc[idx]
        last = k == K - 1
        if last and not len(idx):
            break
        end = None if last else float(starts[k + 1] - starts[k])
        if outputs is None:
            prob, out = solve(k, t if (last or (len(t) and t[-1] == end)) else np.append(t, end), None)
            read, y_end = out[:, :len(idx), :], out[:, -1, :]
        else:
            prob, read = solve(k, t, outputs) if len(idx) else (None, None)
            y_end = None if last else solve(k, np.array([end]), None)[1][:, -1, :]
        problems.append(prob)
        if read is not None:
            if amounts is None:
                amounts = np.full((n, len(seg), read.shape[2]), np.nan)
            amounts[:, idx, :] = read
        if last:
            break
        y1 = y_end.copy()
        y1[status != 0] = 0.0                     # a failed subject stays failed; its amounts are NaN
        y0 = clip_hand_off(y1, np.maximum(scale, np.nanmax(np.abs(y1), axis=1)), float(starts[k + 1]),
                           cm.state_names, ids)
    if amounts is None:
        amounts = np.full((n, len(seg), cm.n_states if outputs is None else len(outputs)), np.nan)
    amounts[status != 0] = np.nan
    return amounts, status, problems

