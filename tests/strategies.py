"""Hypothesis strategies for the engine's property tests.

* :func:`models`: random compartment models built with :class:`pkcsf.Model`
  (1 to 5 compartments, some amount-only, flows, exchanges, first-order
  transfers, eliminations, optionally an AUC accumulator and saturable
  Michaelis–Menten transfers), each coefficient its own parameter;
* :func:`parameters`: values for a model's parameters (one subject or a
  population DataFrame), in ranges that make the systems stiff at times;
* :func:`regimens`: boluses and infusions (by rate or by duration) into the
  model's compartments, optionally repeated with II/ADDL;
* :func:`output_times`: sorted output grids that also hit dose times;
* :func:`failed_subjects`: which subjects a fault-injection hook makes fail, and with what status.

:func:`administered` gives the mass a regimen has delivered by each time,
the right-hand side of the mass balance.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from hypothesis import strategies as st

import pkcsf as pk

__all__ = ["ModelCase", "models", "parameters", "populations", "regimens", "output_times", "administered",
           "scale_doses", "failed_subjects"]


@dataclass(frozen=True)
class ModelCase:
    """A random model and what the strategies need to know about it."""

    model: pk.Model
    volumes: tuple          # parameter names of volumes
    coefficients: tuple     # parameter names of linear transfer coefficients
    vmax: tuple             # Michaelis–Menten Vmax parameters
    km: tuple               # Michaelis–Menten Km parameters
    dosable: tuple          # compartments a dose may go into

    @property
    def nonlinear(self) -> bool:
        return bool(self.vmax)


@st.composite
def models(draw, *, nonlinear: bool = False, accumulator=None, max_compartments: int = 5) -> ModelCase:
    """A random linear (or, with ``nonlinear=True``, Michaelis–Menten) compartment model."""
    n = draw(st.integers(1, max_compartments))
    has_volume = [True] + [draw(st.booleans()) or draw(st.booleans()) for _ in range(n - 1)]   # ~75 % have one
    names = [f"c{i}" for i in range(n)]
    comps = [pk.Compartment(names[i], f"V{i}" if has_volume[i] else None) for i in range(n)]
    volumes = [f"V{i}" for i in range(n) if has_volume[i]]
    transfers, coefs = [], []

    def coef():
        name = f"K{len(coefs)}"
        coefs.append(name)
        return name

    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            kind = draw(st.sampled_from(["none", "none", "flow", "exchange", "first_order"]))
            if kind == "flow" and has_volume[i]:
                transfers.append(pk.flow(names[i], names[j], coef()))
            elif kind == "exchange" and has_volume[i] and has_volume[j] and i < j:
                transfers.append(pk.exchange(names[i], names[j], coef()))
            elif kind == "first_order":
                transfers.append(pk.first_order(names[i], names[j], coef()))
        out = draw(st.sampled_from(["none", "elimination", "first_order"]))
        if out == "elimination" and has_volume[i]:
            transfers.append(pk.elimination(names[i], coef()))
        elif out == "first_order":
            transfers.append(pk.first_order(names[i], None, coef()))
    vmax, km = [], []
    if nonlinear:
        with_volume = [i for i in range(n) if has_volume[i]]
        for m in range(draw(st.integers(1, 2))):
            i = draw(st.sampled_from(with_volume))
            j = draw(st.sampled_from([None] + [k for k in range(n) if k != i]))
            vmax.append(f"VMAX{m}")
            km.append(f"KM{m}")
            transfers.append(pk.michaelis_menten(names[i], None if j is None else names[j], f"VMAX{m}", f"KM{m}"))
    if accumulator is None:
        accumulator = draw(st.booleans())
    if accumulator:
        comps.append(pk.Compartment("auc", kind="accumulator"))
        transfers.append(pk.accumulate(names[0], "auc"))
    model = pk.Model("random", compartments=comps, transfers=transfers,
                     parameters=volumes + coefs + vmax + km)
    return ModelCase(model, tuple(volumes), tuple(coefs), tuple(vmax), tuple(km), tuple(names))


def _values(draw, case: ModelCase) -> dict:
    v = {}
    for name in case.volumes:
        v[name] = draw(st.floats(0.05, 50.0))
    for name in case.coefficients:
        v[name] = draw(st.one_of(st.just(0.0), st.floats(0.001, 20.0)))
    for name in case.vmax:
        v[name] = draw(st.floats(0.01, 20.0))
    for name in case.km:
        v[name] = draw(st.floats(0.01, 10.0))
    return v


@st.composite
def parameters(draw, case: ModelCase) -> dict:
    """One subject's parameters: ``{name: value}``."""
    return _values(draw, case)


@st.composite
def populations(draw, case: ModelCase, min_size: int = 2, max_size: int = 6) -> pd.DataFrame:
    """Several subjects' parameters, one row each."""
    n = draw(st.integers(min_size, max_size))
    return pd.DataFrame([_values(draw, case) for _ in range(n)])


@st.composite
def doses(draw, case: ModelCase, *, infusions: bool = True, repeats: bool = True, t_max: float = 48.0) -> pk.Dose:
    site = draw(st.sampled_from(case.dosable))
    amount = draw(st.floats(0.01, 100.0))
    # half-hour grid most of the time, so that doses often fall on output times
    time = draw(st.one_of(st.integers(0, int(2 * t_max)).map(lambda k: k / 2.0), st.floats(0.0, t_max)))
    kind = draw(st.sampled_from(["bolus", "bolus", "rate", "duration"] if infusions else ["bolus"]))
    kw = {}
    if kind == "rate":
        kw["rate"] = draw(st.floats(0.5, 100.0))
    elif kind == "duration":
        kw["duration"] = draw(st.floats(0.05, 12.0))
    if repeats and draw(st.booleans()):
        kw["addl"] = draw(st.integers(1, 3))
        kw["ii"] = draw(st.floats(1.0, 24.0))
    return pk.Dose(amount, site, time, **kw)


@st.composite
def regimens(draw, case: ModelCase, *, min_doses: int = 1, max_doses: int = 4, **kw) -> pk.Regimen:
    return pk.Regimen(draw(st.lists(doses(case, **kw), min_size=min_doses, max_size=max_doses)))


@st.composite
def output_times(draw, regimen: pk.Regimen | None = None, t_max: float = 96.0) -> np.ndarray:
    """Sorted output times in [0, t_max], including some of the regimen's dose times."""
    t = draw(st.lists(st.floats(0.0, t_max), min_size=1, max_size=12))
    if regimen is not None:
        dose_times = [d.time for d in regimen.expand() if d.time <= t_max]
        if dose_times:
            t += draw(st.lists(st.sampled_from(dose_times), max_size=3))
    t += [t_max]
    return np.unique(np.asarray(t, dtype=float))


def administered(regimen: pk.Regimen, times: np.ndarray) -> np.ndarray:
    """Mass (mg) delivered by each output time (right-continuous; infusions pro rata).

    For doses straight into compartments (no bioavailability or lag).
    """
    times = np.asarray(times, dtype=float)
    total = np.zeros_like(times)
    for d in regimen.expand():
        if d.rate is None and d.duration is None:
            total += np.where(times >= d.time, d.amount, 0.0)
        else:
            dur = d.duration if d.duration is not None else d.amount / d.rate
            total += d.amount * np.clip((times - d.time) / dur, 0.0, 1.0)
    return total


def scale_doses(regimen: pk.Regimen, factor: float) -> pk.Regimen:
    """Every dose's input function times ``factor``: amounts and infusion rates (durations kept).

    (``Regimen.scaled`` scales amounts only, so an infusion given by rate
    lasts longer instead of running faster, which is not a scaled input.)
    """
    out = []
    for d in regimen.doses:
        kw = {"amount": d.amount * factor}
        if d.rate is not None:
            if factor == 0:
                kw["rate"], kw["duration"] = None, d.amount / d.rate
            else:
                kw["rate"] = d.rate * factor
        out.append(replace(d, **kw))
    return pk.Regimen(out)


@st.composite
def failed_subjects(draw, n_subjects: int, *, max_failed: int | None = None):
    """``{subject index: Status}``: which subjects of a population a fault-injection hook makes fail,
    and how (at least one subject is left to solve)."""
    cap = n_subjects - 1 if max_failed is None else min(max_failed, n_subjects - 1)
    idx = draw(st.sets(st.integers(0, n_subjects - 1), max_size=cap))
    codes = [s for s in pk.Status if s != pk.Status.SUCCESS]
    return {i: draw(st.sampled_from(codes)) for i in sorted(idx)}
