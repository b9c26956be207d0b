"""Chemical arachnoiditis after intrathecal liposomal cytarabine: published incidences as a read-out.

What is sourced (``parameters/pd/arachnoiditis_liposomal_cytarabine.toml``): the DepoCyt label's
early dose-finding study, chemical arachnoiditis in **100 % of cycles without** and **33 % of cycles
with** dexamethasone prophylaxis; grade 3-4 drug-related arachnoiditis on **6 % of cycles** with
dexamethasone (Jaeckle 2002); per patient over the whole course 42 % any grade and 19 % severe or
life-threatening (label Table 2, 257 patients).

What is not: any dependence on the dose or on the free cytarabine exposure in CSF. So this is an
incidence model, honestly: each cycle (one 50-mg injection) of each patient is an independent
Bernoulli event with the published per-cycle probability for his prophylaxis. The per-cycle
independence is itself an assumption; with it, four cycles with dexamethasone give
1 - 0.67^4 = 80 % of patients with at least one episode, above the label's 42 % per patient (whose
cycles per patient are not published): use ``per="patient"`` for the whole-course figure.

    >>> import numpy as np
    >>> from pkcsf.pd.arachnoiditis import arachnoiditis
    >>> out = arachnoiditis(np.full((1000, 4), 50.0), dexamethasone=True, seed=3)   # 1000 patients x 4 cycles
    >>> round(out.per_unit_fraction(), 2), round(out.fraction(), 2)                  # per cycle, per patient
    (0.33, 0.81)
"""
from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.pd.incidence import IncidenceEvents, bernoulli_events, load_incidence

__all__ = ["arachnoiditis", "ENDPOINTS", "LABEL_DOSE_MG"]

#: The dose (mg per injection) the incidences were observed with (DepoCyt 50 mg).
LABEL_DOSE_MG = 50.0
#: endpoint name -> (endpoint text in the file, per)
ENDPOINTS = {
    "any": ("chemical arachnoiditis, any grade", "cycle"),
    "grade3plus": ("chemical arachnoiditis, grade 3-4", "cycle"),
    "neurotoxicity3plus": ("neurotoxicity, grade >= 3", "cycle"),
    "any_patient": ("chemical arachnoiditis, any grade", "patient"),
    "severe_patient": ("chemical arachnoiditis, severe or life-threatening", "patient"),
}


def _doses(doses) -> np.ndarray:
    d = np.asarray(doses, dtype=float)
    if d.ndim == 1 and np.issubdtype(np.asarray(doses).dtype, np.integer):     # counts of 50-mg cycles
        if np.any(d < 0):
            raise ParameterError("doses", d[d < 0][:3].tolist(), "cycle counts must be >= 0")
        c = int(d.max()) if d.size else 0
        return np.where(np.arange(c)[None, :] < d[:, None], LABEL_DOSE_MG, 0.0)
    if d.ndim != 2:
        raise ParameterError("doses", f"shape {d.shape}",
                             "(subjects, cycles) amounts in mg (0 = no injection), or (subjects,) whole cycle counts")
    if not np.all(np.isfinite(d)) or np.any(d < 0):
        raise ParameterError("doses", "non-finite or negative", "amounts must be finite and >= 0 mg")
    off = (d > 0) & ~np.isclose(d, LABEL_DOSE_MG)
    if np.any(off):
        raise ParameterError("doses", sorted(set(d[off].tolist()))[:5],
                             f"the sourced incidences are for {LABEL_DOSE_MG:g} mg injections; no dose- or "
                             "exposure-response for arachnoiditis is sourced, so other doses are refused",
                             "give 50 mg cycles, or use pkcsf.pd.incidence.bernoulli_events with your own sourced "
                             "probability")
    return d


def arachnoiditis(doses: ArrayLike, dexamethasone: bool | ArrayLike = True, *, endpoint: str = "any", seed: int = 0,
                  proportion: float | None = None) -> IncidenceEvents:
    """Arachnoiditis events of each patient (rows) in each cycle (columns), from the published incidences.

    Parameters
    ----------
    doses : array_like
        (subjects, cycles) amounts in mg, 0 for a cycle not given, every given dose 50 mg; or (subjects,)
        integer numbers of 50-mg cycles.
    dexamethasone : bool or array_like of bool
        Prophylaxis (4 mg BID days 1-5 of each cycle in the sources): scalar, per subject (N,) or per cycle (N, C).
    endpoint : str, optional
        ``"any"`` (per cycle, default), ``"grade3plus"`` (per cycle; sourced with dexamethasone only),
        ``"neurotoxicity3plus"`` (grade >= 3 neurotoxicity per cycle, with dexamethasone), ``"any_patient"``,
        ``"severe_patient"`` (over the whole course, with dexamethasone: one Bernoulli per patient with >= 1
        cycle).
    seed : int, optional
        Seed; subject ``i`` depends only on ``(seed, i)`` and the number of cycles.
    proportion : float, optional
        Override the sourced probability (e.g. a draw from ``Incidence.draw_proportions`` for parameter
        uncertainty in a virtual trial).

    Returns
    -------
    IncidenceEvents
        ``events`` (N, C) (C = 1 for the per-patient endpoints), ``any``, ``count``, ``first``, ``frame()``.
    """
    check_choice("endpoint", endpoint, ENDPOINTS, ParameterError)
    d = _doses(doses)
    exposed = d > 0
    n, c = exposed.shape
    dex = np.asarray(dexamethasone)
    if dex.dtype != bool:
        raise ParameterError("dexamethasone", dexamethasone, "True/False, per subject (N,) or per cycle (N, C)")
    if dex.ndim == 1:
        if dex.size != n:
            raise ParameterError("dexamethasone", f"{dex.size} values", f"one per subject ({n})")
        dex = dex[:, None]
    try:
        dex = np.broadcast_to(dex, exposed.shape)
    except ValueError:
        raise ParameterError("dexamethasone", f"shape {dex.shape}", f"scalar, (N,) or (N, C) = {exposed.shape}") from None
    text, per = ENDPOINTS[endpoint]
    inc = load_incidence("arachnoiditis_liposomal_cytarabine")
    probs = {}
    for flag in (True, False):
        if not np.any(dex[exposed] == flag) and exposed.any():
            continue
        if proportion is not None:
            probs[flag] = float(proportion)
            continue
        try:
            probs[flag] = inc.find(endpoint=text, per=per, dexamethasone=flag, population="adults").proportion
        except ParameterError:
            if np.any(dex[exposed] == flag):
                raise ParameterError("endpoint", f"{endpoint} with dexamethasone={flag}",
                                     "no sourced incidence for this combination (see "
                                     "parameters/pd/arachnoiditis_liposomal_cytarabine.toml)") from None
    p = np.where(dex, probs.get(True, 0.0), probs.get(False, 0.0))
    label = f"{text} per {per} (liposomal cytarabine 50 mg; sourced incidence, not exposure-driven)"
    if per == "cycle":
        return bernoulli_events(p, exposed, seed=seed, label=label)
    # per patient over the course: one draw per patient with at least one cycle, at his first cycle's prophylaxis
    given = exposed.any(axis=1)
    if c == 0:
        return bernoulli_events(np.zeros((n, 1)), given[:, None], seed=seed, label=label)
    first = np.argmax(exposed, axis=1)
    if np.any(~dex[np.arange(n), first][given]):
        raise ParameterError("dexamethasone", False, f"{endpoint} is sourced with dexamethasone only")
    return bernoulli_events(p[np.arange(n), first][:, None], given[:, None], seed=seed, label=label)
