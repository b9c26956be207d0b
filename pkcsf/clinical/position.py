"""Body position after lumbar doses: the patient lying or upright, hour by hour.

Upright posture slows the upward spread of a lumbar dose: in rhesus monkeys placed upright right after a lumbar
injection of methotrexate the ventricular peak and AUC were 1/23 of those of monkeys kept prone for the first hour
(Blaney 1995). The CNS models carry it as two parameters (``parameters/physiology/adult.toml``): ``UPRIGHT`` (0
lying, the calibrated state; 1 upright) and ``F_MIX_UPRIGHT``, the factor on the spinal mixing (v2:
``Q_MIX_SPINAL``, ``Q_MIX_LUMBAR``; v3: the spinal dispersion ``D_SPINAL``) while upright, calibrated on Blaney's
two ratios (``parameters/calibration/posture_upright.toml``).

A :class:`Position` says when the patient is upright, in hours after **each lumbar dose**: ``"upright 0-24 h"``
(sat up at once, for a day), ``"upright 1-24 h"`` (lying for the first hour, then upright: Blaney's prone arm),
several windows separated by commas (``"upright 1-16 h, upright 24-40 h"``), a day's rhythm repeated every 24 h
until the next lumbar dose (``"upright 1-15 h daily"``: lying for the first hour, upright until 15 h, lying for the
night, and so each day), or ``"lying"`` (no window: the model as calibrated). Outside the windows the patient lies.
The windows of successive doses are merged. Doses by other
routes do not open windows (no data on posture after an intraventricular dose), but a window applies to every drug
in the CSF while it is open: in a scenario arm the lumbar doses of any of its drugs open the windows of all of them
(osimertinib by mouth with intrathecal pemetrexed).

The solve is split at the window edges and each piece is solved with its posture; amounts carry over unchanged
(:func:`pkcsf.clinical.events_segments.solve_segments`). Volumes do not depend on posture, so concentrations are
continuous.
"""
from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.analysis import exposure
from pkcsf.clinical.events_segments import chain_segments, solve_segments
from pkcsf.core.errors import DosingError, ParameterError
from pkcsf.engine.dosing import Dose, Regimen
from pkcsf.engine.expressions import Expression
from pkcsf.engine.results import SimulationResult
from pkcsf.engine.simulate import prepare
from pkcsf.solvers.exact_switch import solve_switched, switch_supported

__all__ = ["Position", "parse_position", "upright_intervals", "solve_position", "simulate_position", "compare_positions",
           "lumbar_dose_times", "spinal_sites"]

#: above this size (bytes, 1 GiB) of every state at every read point, a solve with a position saves only the requested
#: states at the read points (:func:`solve_position`)
_ALL_STATES_BYTES = 2 ** 30
#: solve a position in one compiled run that switches the rate matrix at the window edges (exact solver, bolus
#: doses); False: always one solve per window, chained (the reference the switched run is tested against)
SWITCH_IN_KERNEL = True

#: read-out groups of the spinal canal (and their ``_liposomal`` twins): a dose into them opens the posture windows
_SPINAL_GROUPS = ("lumbar", "spinal")

_WINDOW = re.compile(r"^upright\s+([0-9.eE+]+)\s*-\s*([0-9.eE+]+)\s*h?$")
_RULE = ("'lying', or one or more windows 'upright A-B h' (hours after each lumbar dose, 0 <= A < B), separated by "
         "commas, e.g. 'upright 1-24 h'; with 'daily' at the end the windows (B <= 24) repeat every 24 h until the "
         "next lumbar dose, e.g. 'upright 1-15 h daily'")
#: the period (h) of a daily position
_DAY = 24.0


@dataclass(frozen=True)
class Position:
    """When the patient is upright, in hours after each lumbar dose (lying otherwise).

    Parameters
    ----------
    upright : tuple of (float, float)
        Windows ``(start, end)`` in hours after each lumbar dose, ``0 <= start < end``.
    daily : bool, optional
        The windows (``end <= 24``) repeat every 24 h until the next lumbar dose.

    Examples
    --------
    >>> parse_position("upright 1-24 h")
    Position('upright 1-24 h')
    >>> parse_position("lying").upright
    ()
    >>> parse_position("upright 1-15 h daily").daily
    True
    """

    upright: tuple = ()
    daily: bool = False

    def __post_init__(self):
        for w in self.upright:
            a, b = (float(x) for x in w)
            if not (np.isfinite(a) and np.isfinite(b) and 0 <= a < b):
                raise ParameterError("position", f"upright {a:g}-{b:g} h", _RULE)
            if self.daily and b > _DAY:
                raise ParameterError("position", f"upright {a:g}-{b:g} h daily", _RULE,
                                     "a daily window lies within the day after the dose: B <= 24")

    @property
    def text(self) -> str:
        """The position as text (``"lying"``, ``"upright A-B h, ..."``, with ``" daily"`` for a daily rhythm)."""
        text = ", ".join(f"upright {a:g}-{b:g} h" for a, b in self.upright) or "lying"
        return text + (" daily" if self.daily and self.upright else "")

    def __repr__(self) -> str:
        return f"Position({self.text!r})"

    def __str__(self) -> str:
        return self.text


def parse_position(value: str | Position | None) -> Position:
    """A :class:`Position` from its text (or one as it is; None is lying).

    Parameters
    ----------
    value : str, Position or None
        ``"lying"``, ``"upright A-B h"`` or several such windows separated by commas, optionally followed by
        ``"daily"`` (the windows repeat every 24 h until the next lumbar dose).

    Returns
    -------
    Position

    Raises
    ------
    ParameterError
        Text of another form, or a window with ``A >= B`` or a negative hour.
    """
    if value is None:
        return Position()
    if isinstance(value, Position):
        return value
    text = str(value).strip().lower()
    if text in ("", "lying", "supine", "prone", "recumbent"):
        return Position()
    daily = bool(re.search(r"\s(daily|each day|every day)$", text))
    if daily:
        text = re.sub(r"\s(daily|each day|every day)$", "", text).strip()
    windows = []
    for part in re.split(r"[,;]", text):
        m = _WINDOW.match(part.strip())
        if not m:
            raise ParameterError("position", value, _RULE)
        try:
            windows.append((float(m.group(1)), float(m.group(2))))
        except ValueError:
            raise ParameterError("position", value, _RULE) from None
    return Position(tuple(windows), daily)


def spinal_sites(model: Any) -> tuple[str, ...]:
    """The dosing sites of a model that put drug into the spinal canal (compartments of the ``lumbar`` and
    ``spinal`` read-out groups or their liposomal twins): the lumbar puncture of free drug and of liposomes, and
    v3's ``lumbar_high``; their doses open the posture windows.

    Parameters
    ----------
    model : Model
        A CNS model.

    Returns
    -------
    tuple of str
    """
    group = {c.name: (c.group or "").removesuffix("_liposomal") for c in model.compartments}
    return tuple(s.name for s in model.sites if any(group.get(t) in _SPINAL_GROUPS for t, _ in s.targets))


def _lumbar_times(regimen: Regimen | Dose, sites: tuple = ("lumbar",)) -> list[float]:
    doses = regimen.expand() if isinstance(regimen, (Regimen, Dose)) else []
    return sorted({float(d.time) for d in doses if d.site in sites})


def lumbar_dose_times(regimens: Iterable, sites: tuple = ("lumbar",)) -> list[float]:
    """The times (h) of every lumbar dose of several regimens (a combination arm's drugs), sorted, once each.

    Parameters
    ----------
    regimens : iterable of Regimen or Dose
        The doses.
    sites : tuple of str, optional
        What a lumbar dose's site is called: the route (default), or a model's :func:`spinal_sites`.

    Returns
    -------
    list of float
    """
    return sorted({t for r in regimens for t in _lumbar_times(r, sites)})


def upright_intervals(position: Position | str, regimen: Regimen | Dose, t_end: float,
                      sites: tuple = ("lumbar",)) -> list[tuple[float, float]]:
    """The times (h) at which the patient is upright: the position's windows after each lumbar dose, merged.

    Parameters
    ----------
    position : Position or str
        The position.
    regimen : Regimen or Dose
        The doses (their times at the lumbar sites open the windows).
    t_end : float
        Last time of interest (h); intervals are cut there.
    sites : tuple of str, optional
        The dosing sites that open windows (default the lumbar route; a model's: :func:`spinal_sites`).

    Returns
    -------
    list of (float, float)
        Disjoint intervals ``[start, end)``, increasing.
    """
    return _windows(parse_position(position), _lumbar_times(regimen, sites), t_end)


def _windows(position: Position, anchors: list, t_end: float) -> list[tuple[float, float]]:
    anchors = sorted(anchors)
    raw = []
    for i, t in enumerate(anchors):
        if position.daily:      # the dose's day, repeated until the next lumbar dose (or the end)
            stop = min(anchors[i + 1], t_end) if i + 1 < len(anchors) else t_end
            starts = [t + k * _DAY for k in range(int(np.ceil((stop - t) / _DAY)) + 1)]
        else:                   # once after the dose; overlaps with the next dose's windows merge below
            stop, starts = t_end, [t]
        raw += [(s + a, min(s + b, stop)) for s in starts for a, b in position.upright if s + a < stop]
    raw.sort()
    merged: list[list[float]] = []
    for a, b in raw:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged if b > a]


def solve_position(model: Any, regimen: Regimen | Dose, params: pd.DataFrame, times: ArrayLike,
                   position: Position | str, *, outputs: list | None = None, solver: str = "auto",
                   max_steps: int | None = None, sites: tuple | None = None, anchors: list | None = None) -> tuple:
    """Solve subjects with the patient upright in the position's windows: the solve is split at the window edges.

    Parameters
    ----------
    model : Model
        A CNS model with the ``UPRIGHT`` parameter (it may be extended, e.g. with AUC accumulators).
    regimen : Regimen or Dose
        The doses of every subject (amounts in mg, or expressions over columns of ``params`` such as ``"12 * BSA"``).
    params : DataFrame
        One row of model parameters per subject (``ID`` optional); ``UPRIGHT`` is set in each piece of the solve.
    times : array_like
        Output times (h), increasing, from 0.
    position : Position or str
        When the patient is upright (:func:`parse_position`).
    outputs : list of str, optional
        States to save (default: as :func:`pkcsf.engine.simulate.prepare`).
    solver, max_steps
        As for :func:`pkcsf.engine.simulate.simulate`.
    sites : tuple of str, optional
        Dosing sites that open the windows (default: the model's :func:`spinal_sites`).
    anchors : list of float, optional
        The times (h) of the lumbar doses that open the windows, when they are not all in ``regimen`` (a
        combination arm: another drug's lumbar dose changes every drug's CSF mixing); default: ``regimen``'s.

    Returns
    -------
    tuple
        ``(problem, amounts, status, intervals)``: the engine problem of the lying subjects (times, saved states,
        volumes: posture changes no volume), amounts (n, T, saved states) in mg, per-subject status codes, and the
        upright intervals (h).

    Raises
    ------
    ParameterError
        A position of another form, or a model without the ``UPRIGHT`` parameter.
    DosingError
        Upright windows without a lumbar dose, or an amount expression where doses must be lowered subject by subject
        (a site with a lag time, an infusion across a window edge).
    """
    position = parse_position(position)
    if "UPRIGHT" not in model.parameter_names:
        raise ParameterError("position", position.text, f"a CNS model with the UPRIGHT parameter; {model.name} has none")
    regimen = regimen if isinstance(regimen, Regimen) else Regimen([regimen])
    times = np.asarray(times, dtype=float)
    if anchors is None:
        anchors = _lumbar_times(regimen, spinal_sites(model) if sites is None else sites)
    anchors = sorted(float(t) for t in anchors)
    if position.upright and not anchors:
        raise DosingError("position", position.text, "a regimen with a lumbar dose (the upright windows are hours "
                          "after each lumbar dose)", fix="use position 'lying' for other routes")
    t_end = float(times[-1]) if len(times) else 0.0
    intervals = _windows(position, anchors, t_end)
    starts = np.array(sorted({0.0} | {x for ab in intervals for x in ab if 0.0 < x < t_end}))
    upright = [1.0 if any(a <= s < b for a, b in intervals) else 0.0 for s in starts]
    seg = np.searchsorted(starts, times, side="right") - 1
    lying = params.reset_index(drop=True).copy()
    lying["UPRIGHT"] = 0.0
    kw = {} if outputs is None else {"outputs": outputs}
    base = prepare(model, regimen, lying, times=times, solver=solver, **kw)
    fast = _solve_switched(model, regimen, base, lying, upright, starts, times, solver, kw)
    if fast is not None:
        return base, fast[0], fast[1], intervals
    pieces = _split_by_time(regimen, starts, base.compiled)
    if pieces is not None:          # every subject the same doses: one shared regimen per piece
        # every state at every read point is the fastest hand-off; above _ALL_STATES_BYTES only the requested states
        # are saved there and every state is read once more at each piece's end (slower, bounded memory)
        small = outputs is None or len(lying) * len(times) * base.compiled.n_states * 8 <= _ALL_STATES_BYTES
        saved = None if small else [base.compiled.state_names[i] for i in base.save]
        amounts, status = _solve_pieces(model, pieces, lying, upright, starts, seg, times, solver, max_steps, saved)
        return base, (amounts[:, :, base.save] if small else amounts), status, intervals
    for d in regimen.doses:
        if isinstance(d.amount, str):
            raise DosingError("position", position.text, f"dose amounts in mg with this regimen and position (the "
                              f"dose at {d.time:g} h is {d.amount!r}; a dose with a lag time or an infusion across a "
                              "window edge is lowered subject by subject)", fix="give the dose in mg")
    cols = [c for c in params.columns if c in model.parameter_names]
    seg_params = [lying[cols].assign(UPRIGHT=u) for u in upright]
    amounts, status, _ = solve_segments(model, [regimen] * len(params), seg_params, starts, seg, times - starts[seg],
                                        solver=solver, max_steps=max_steps)
    return base, amounts[:, :, base.save], status, intervals


def _solve_switched(model, regimen, base, lying, upright, starts, times, solver, kw) -> tuple | None:
    """(amounts, status) from one compiled run that switches between the lying and the upright rate matrix at the
    window edges (:func:`pkcsf.solvers.exact_switch.solve_switched`); None where it does not apply (another solver,
    an infusion, a model without passive states), and the windows are solved one by one instead.
    """
    if not SWITCH_IN_KERNEL or base.method != "exact":
        return None
    cm = base.compiled
    events = base.events(slice(None))
    if not switch_supported(cm.lin_src, cm.n_states, events[3], events[4]):
        return None
    up = prepare(model, regimen, lying.assign(UPRIGHT=1.0), times=times, solver=solver, **kw)
    if up.method != "exact":
        return None
    return solve_switched(base.P, up.P, cm, events, times, base.y0, base.save, starts,
                          np.asarray(upright, dtype=np.int64))


def _split_by_time(regimen: Regimen, starts: np.ndarray, cm: Any) -> list | None:
    """The regimen's doses by piece of the solve, each on its piece's clock; None when a dose cannot be split by its
    time alone (a site with a lag time, an infusion given by rate or running across a piece edge).
    """
    pieces: list[list] = [[] for _ in starts]
    ends = np.append(starts[1:], np.inf)
    for d in regimen.expand():
        site = cm.sites.get(d.site)
        if site is not None and site.lag >= 0:
            return None
        k = int(np.searchsorted(starts, d.time, side="right") - 1)
        if d.rate is not None or (d.duration is not None and d.time + float(d.duration) > ends[k] + 1e-9):
            return None
        pieces[k].append(replace(d, time=float(d.time - starts[k]), ii=0.0, addl=0))
    return [Regimen(p) for p in pieces]


def _solve_pieces(model, pieces, params, upright, starts, seg, times, solver, max_steps, outputs=None):
    """Solve piece by piece with one shared regimen each (:func:`~pkcsf.clinical.events_segments.chain_segments`)."""
    seg_params = []
    for k, reg in enumerate(pieces):      # a column an amount expression reads is given only where a dose reads it
        used = {n for d in reg.doses if isinstance(d.amount, str) for n in Expression.parse(d.amount).names}
        cols = [c for c in params.columns if c in model.parameter_names or c == "ID" or c in used]
        seg_params.append(params[cols].assign(UPRIGHT=upright[k]))
    dose_scale = max([float(d.amount) for p in pieces for d in p.doses if not isinstance(d.amount, str)] + [0.0])
    amounts, status, _ = chain_segments(model, pieces, seg_params, starts, seg, times - starts[seg],
                                        np.full(len(params), dose_scale), solver=solver, max_steps=max_steps,
                                        outputs=outputs)
    return amounts, status


def simulate_position(setup: Any, regimen: Regimen | Dose, times: ArrayLike, position: Position | str,
                      params: pd.DataFrame | None = None, *, solver: str = "auto",
                      max_steps: int | None = None, outputs: list | None = None) -> SimulationResult:
    """Simulate a set-up's regimen with the patient upright in the position's windows (lying otherwise).

    Parameters
    ----------
    setup : Setup
        The drug's CNS set-up (:func:`pkcsf.clinical.cns.setup`; typed ``Any`` here because ``Setup.simulate``
        calls this function: the two modules would import each other).
    regimen : Regimen or Dose
        Doses at the set-up's sites.
    times : array_like
        Output times (h), increasing, from 0.
    position : Position or str
        When the patient is upright (:func:`parse_position`).
    params : DataFrame, optional
        One row of model parameters per subject (default: the set-up's typical values); ``UPRIGHT`` is set by the
        position in each piece of the solve.
    solver, max_steps, outputs
        As for :func:`pkcsf.engine.simulate.simulate`.

    Returns
    -------
    SimulationResult
        As :func:`pkcsf.engine.simulate.simulate` returns (its ``problem`` holds the lying parameters); the
        attribute ``position`` holds the position and ``upright`` the intervals it gave.

    Raises
    ------
    ParameterError, DosingError
        As :func:`solve_position`.
    """
    params = pd.DataFrame([setup.parameters]) if params is None else params
    t0 = time.perf_counter()
    base, amounts, status, intervals = solve_position(setup.model, regimen, params, times, position, solver=solver,
                                                      max_steps=max_steps, outputs=outputs)
    res = SimulationResult(base, amounts, status, np.zeros((len(params), 5), dtype=np.int64),
                           time.perf_counter() - t0)
    res.position = parse_position(position)
    res.upright = intervals
    res._report_failures()
    return res


def compare_positions(setup: Any, dose: float, positions: tuple = ("lying", "upright 1-24 h", "upright 0-24 h"), *,
                      days: float = 7.0, site: str = "lv", threshold: float | None = None,
                      dt: float = 0.02) -> pd.DataFrame:
    """One lumbar dose with the patient in each position, and the same dose by Ommaya, at one compartment.

    Parameters
    ----------
    setup : Setup
        The drug's CNS set-up (typical values).
    dose : float
        Dose (mg), by both routes.
    positions : tuple of str, optional
        Positions after the lumbar dose (:func:`parse_position`).
    days : float, optional
        Follow-up after the dose.
    site : str, optional
        Model compartment read (default the lateral ventricles).
    threshold : float, optional
        Concentration (mg/L) for the hours above it; none: that column is left out.
    dt : float, optional
        Output step (h) of the peak; the AUC and the hours above are read on the linear interpolant of the same
        grid (:mod:`pkcsf.analysis.exposure`).

    Returns
    -------
    DataFrame
        One row for the Ommaya dose (position ``-``) and one per position of the lumbar dose: ``route``,
        ``position``, ``cmax`` (mg/L), ``auc`` (mg·h/L), ``auc_vs_ommaya`` and, with a threshold, ``hours_above``.

    Raises
    ------
    ParameterError
        A malformed position.
    """
    times = np.round(np.arange(0.0, days * 24.0 + dt / 2, dt), 10)
    runs = [("ommaya", "-", setup.simulate(Dose(dose, setup.sites["ommaya"]), times))]
    runs += [("lumbar", parse_position(p).text,
              setup.simulate(Dose(dose, setup.sites["lumbar"]), times, position=p)) for p in positions]
    rows = []
    for route, pos, res in runs:
        c = res.concentration(site)                      # (1, T)
        row = {"route": route, "position": pos, "cmax": float(c.max()), "auc": float(exposure.auc(times, c)[0])}
        if threshold is not None:
            row["hours_above"] = float(exposure.time_above(times, c, threshold)[0])
        rows.append(row)
    out = pd.DataFrame(rows)
    out.insert(4, "auc_vs_ommaya", out["auc"] / out["auc"].iloc[0])
    return out
