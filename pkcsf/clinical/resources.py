"""What a scenario run will cost, estimated before anything is simulated; refused in one line if it cannot fit.

A scenario file can ask for unbounded work (``subjects = 1000000000``, ``dt = "1e-9 h"``,
``band_subjects = 20000000``). :func:`check_run` estimates, per arm and drug, the output grid and the
memory the run keeps (per-subject read-outs, population bands, one chunk of concentration profiles)
and raises a :class:`~pkcsf.core.errors.ScenarioError` naming the field that drives the cost, the
estimate, what the machine has and what to change, instead of growing memory until the machine
swaps or numpy fails with a multi-TiB allocation traceback.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pkcsf.core.errors import ScenarioError
from pkcsf.core.memory import available_memory, format_bytes

if TYPE_CHECKING:
    from pkcsf.clinical.scenario_spec import Scenario

__all__ = ["MAX_GRID_POINTS", "available_memory", "check_grid", "check_run", "estimate_bytes"]

MAX_GRID_POINTS = 10_000_000     # output times per subject (10 years at a 30-s step); beyond, dt is a mistake
ROW_BYTES = 200                  # one per-subject read-out row (about 20 numbers + labels, in pandas)
COVARIATE_COLUMNS = 12           # covariate and eta columns sampled beside the parameters (WT, HT, AGE, SEX, ...)
USABLE = 0.8                     # of the memory available now





def check_grid(end_h: float, dt_h: float, given_dt: float | str | None = None, field: str = "dt") -> None:
    """Refuse an output grid of more than :data:`MAX_GRID_POINTS` times (before it is allocated).

    Parameters
    ----------
    end_h : float
        End of the simulated window (h).
    dt_h : float
        Output step (h).
    given_dt : float or str, optional
        The step as the user gave it (e.g. ``"1e-9 h"``), shown in the error; default ``dt_h``.
    field : str
        Field named in the error.

    Raises
    ------
    ScenarioError
        More than :data:`MAX_GRID_POINTS` output times; the message gives the smallest step that fits.
    """
    n = end_h / dt_h
    if not n <= MAX_GRID_POINTS:
        raise ScenarioError(field, given_dt if given_dt is not None else dt_h,
                            f"gives {n:.3g} output times over {end_h / 24:g} days; at most {MAX_GRID_POINTS:,} "
                            "fit in a run", f"use a dt of at least {end_h / MAX_GRID_POINTS:.3g} h, or fewer days")


def estimate_bytes(*, subjects: int, times: int, groups: int, states: int, band_subjects: int, chunk: int,
                   parameters: int = 0) -> dict:
    """Memory a run keeps, by part.

    Parameters
    ----------
    subjects : int
        Subjects of the run.
    times : int
        Output times per subject.
    groups : int
        Read-out groups.
    states : int
        Model states.
    band_subjects : int
        Subjects whose profiles are kept for the population bands.
    chunk : int
        Subjects simulated at once.
    parameters : int
        Model parameters per subject (the sampled population table and its array copy, kept for the
        whole run).

    Returns
    -------
    dict of str to float
        Bytes per part: per-subject read-outs, subject parameters, population bands, one chunk of profiles,
        output grid.
    """
    return {
        "per-subject read-outs": float(subjects) * groups * ROW_BYTES,
        "subject parameters": float(subjects) * (parameters + COVARIATE_COLUMNS) * 8 * 2,
        "population bands": float(min(subjects, band_subjects)) * times * groups * 8,
        "one chunk of profiles": float(min(subjects, chunk)) * times * (3 * groups + states) * 8,
        "output grid": float(times) * 8 * 4,
    }


_DRIVER = {"per-subject read-outs": "subjects", "subject parameters": "subjects", "population bands": "band_subjects",
           "one chunk of profiles": "dt", "output grid": "dt"}
_FIX = {"subjects": "fewer subjects (percentiles settle by a few thousand), or split the run by seed",
        "band_subjects": "fewer band_subjects (2000 gives smooth 5-95% bands)",
        "dt": "a larger dt or fewer days"}


def check_run(scn: Scenario, plan: Sequence[tuple], grid: Callable, chunk: int, *,
              memory: int | None = None) -> None:
    """Estimate each arm's cost before simulating; raise naming the field that makes it too large.

    The arms run one after the other, so the largest arm counts, plus the read-outs of all arms (kept
    until the end).

    Parameters
    ----------
    scn : Scenario
        The scenario.
    plan : sequence of tuple
        ``[(arm, {drug: regimen}, {drug: setup}), ...]``.
    grid : callable
        ``grid(scn, regs) -> (times, ...)``: the output grid (h) of an arm (``pkcsf.clinical.scenario``).
    chunk : int
        Subjects simulated at once.
    memory : int, optional
        Bytes available (default: what the machine has now).

    Raises
    ------
    ScenarioError
        The run needs more than 80 % of the memory; names ``subjects``, ``band_subjects`` or ``dt``, the
        estimate and what to change.
    """
    memory = available_memory() if memory is None else memory
    total_rows = 0.0
    worst = None
    for arm, regs, setups in plan:
        times, _ = grid(scn, regs)
        for drug, setup in setups.items():
            groups = len(scn.groups) if scn.groups else len([g for g, cs in setup.outputs.items() if cs])
            states = len(setup.model.compartments) + 1
            parts = estimate_bytes(subjects=scn.subjects, times=len(times), groups=max(groups, 1), states=states,
                                   band_subjects=scn.band_subjects, chunk=chunk, parameters=len(setup.parameters))
            total_rows += parts.pop("per-subject read-outs")
            if worst is None or sum(parts.values()) > sum(worst[1].values()):
                worst = (f"arm {arm.name!r} ({drug})", parts, len(times))
    if worst is None or memory is None:
        return
    parts = dict(worst[1], **{"per-subject read-outs": total_rows})
    need = sum(parts.values())
    if need <= USABLE * memory:
        return
    big = max(parts, key=parts.get)
    field = _DRIVER[big]
    value = {"subjects": scn.subjects, "band_subjects": scn.band_subjects, "dt": scn.dt}[field]
    detail = ", ".join(f"{k} {format_bytes(v)}" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]) if v >= 2**20)
    raise ScenarioError(field, value, f"the run would need about {format_bytes(need)} of memory ({detail}; "
                        f"{worst[2]:,} output times in {worst[0]}), more than the {format_bytes(memory)} available",
                        _FIX[field])
