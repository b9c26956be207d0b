"""Per-patient dose-limiting toxicity from the patient's own PK -> PD, for the PK-driven escalation.

With ``dlt="neutropenia"`` (:func:`pkcsf.clinical.escalation.simulate_escalation`), every virtual
patient of a dose pool is followed through his own simulated plasma concentration profile into the
Friberg myelosuppression model (:mod:`pkcsf.pd.friberg`, parameters ``parameters/pd/<drug>.toml``,
his own sampled PD parameters: the same patient has the same marrow sensitivity at every dose). His
DLT is **CTCAE grade >= 3 neutropenia (ANC nadir < 1.0 x 1e9/L) within the DLT window** (default:
the whole simulated course, i.e. cycle 1 of the escalation schedule): a 0/1 outcome, not a
probability. A trial patient drawn from the pool has a DLT exactly when that pool patient has one.

What this changes, and what it does not: trial patients are still drawn independently from the
pool, so a design's operating characteristics depend on the per-dose DLT fractions of the pool;
those fractions now come from PK and PD variability through a sourced model instead of an assumed
logistic link anchored on a literature MTD. They differ from any "typical patient" or "mean
exposure" shortcut wherever the dose-toxicity relation is steep relative to the between-patient
spread (see ``tests/test_escalation_pd.py``).

:func:`observed_checks` compares the predicted DLT fractions with the published phase 1
observations stored in the PD file (``[observations.*]``), with exact (Clopper-Pearson) 95 %
confidence intervals.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.core.errors import ScenarioError, check_choice
from pkcsf.pd import FribergParameters, PDParameterSet, available_pd, load_pd_parameters, neutropenia

__all__ = ["DLT_MODELS", "NeutropeniaDLT", "PerPatientDLT", "has_neutropenia_model", "clopper_pearson",
           "observed_checks"]

#: How a virtual patient's DLT is decided: ``link`` (exposure -> probability, the logistic shortcut) or
#: ``neutropenia`` (his own plasma profile -> Friberg model -> CTCAE grade).
DLT_MODELS = ("link", "neutropenia")


def has_neutropenia_model(drug: str) -> bool:
    """True when ``parameters/pd/<drug>.toml`` holds a Friberg neutropenia model.

    Parameters
    ----------
    drug : str
        Drug name.

    Returns
    -------
    bool
        Whether the PD file exists and has the model.
    """
    if drug not in available_pd():
        return False
    return "CIRC0" in load_pd_parameters(drug)


def clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval of ``k`` events in ``n``.

    Parameters
    ----------
    k, n : int
        Events and trials.
    level : float, optional
        Confidence level.

    Returns
    -------
    tuple of float
        Lower and upper bound.

    Examples
    --------
    >>> [round(x, 3) for x in clopper_pearson(0, 10)]
    [0.0, 0.308]
    """
    a = (1 - level) / 2
    from scipy import stats  # on first use: scipy.stats takes ~0.5 s to import (issue 11)

    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return lo, hi


@dataclass(frozen=True)
class NeutropeniaDLT:
    """DLT = CTCAE grade >= ``grade`` neutropenia within ``window_h`` (None: the whole simulated course).

    Parameters
    ----------
    drug : str
        Drug with a Friberg model in ``parameters/pd/``.
    supplemented : bool, optional
        Folic acid and B12 supplementation (pemetrexed).
    grade : int, optional
        Smallest CTCAE grade counted as a DLT.
    window_h : float, optional
        DLT window (h).
    """

    drug: str
    supplemented: bool = True
    grade: int = 3
    window_h: float | None = None

    def __post_init__(self):
        if not has_neutropenia_model(self.drug):
            have = [n for n in available_pd() if has_neutropenia_model(n)]
            raise ScenarioError("dlt", "neutropenia", f"no neutropenia (Friberg) model is stored for {self.drug} "
                                                      f"(parameters/pd/: {', '.join(have) or 'none'})",
                                "use dlt='link' (the logistic exposure-toxicity shortcut)")
        if isinstance(self.grade, bool) or self.grade not in (2, 3, 4):
            raise ScenarioError("dlt_grade", self.grade, "must be 2, 3 or 4 (CTCAE grade of neutropenia that is a DLT)")
        if not isinstance(self.supplemented, bool):
            raise ScenarioError("supplemented", self.supplemented, "must be True (folic acid + B12) or False")
        w = self.window_h
        if w is not None and not (isinstance(w, (int, float)) and math.isfinite(w) and w > 0):
            raise ScenarioError("dlt_window", w, "must be a positive number of days (or None: the whole course)")

    @property
    def parameters(self) -> PDParameterSet:
        """The drug's PD parameter set (Friberg myelosuppression)."""
        return load_pd_parameters(self.drug)

    def typical(self) -> FribergParameters:
        """Typical Friberg parameters (with or without folic acid/B12 supplementation where the set has both).

        Returns
        -------
        FribergParameters
            Size 1, with the file's CVs.
        """
        ps = self.parameters
        sup = self.supplemented if "SLOPE_SUPPLEMENTED" in ps else None
        return ps.friberg(supplemented=sup)

    def evaluate(self, times: ArrayLike, plasma_mg_per_L: ArrayLike, typical_mg_per_L: ArrayLike,
                 seed: int) -> dict:
        """Neutropenia and DLT of every pool patient, and of the typical patient.

        Parameters
        ----------
        times : array_like, shape (T,)
            Output times (h).
        plasma_mg_per_L : array_like, shape (N, T)
            Each pool patient's plasma concentration (mg/L), in subject order.
        typical_mg_per_L : array_like, shape (T,)
            The typical patient's plasma concentration (mg/L).
        seed : int
            Patient ``i`` gets PD parameters that depend only on ``(seed, i)`` (the same at every dose).

        Returns
        -------
        dict
            Per pool patient, shape (N,): ``nadir`` (1e9/L), ``time_to_nadir`` (h), ``grade`` (CTCAE), ``dlt``
            (bool: grade >= the DLT grade within the window), ``grade_course`` and ``nadir_course`` (over the
            whole simulated course); the typical patient's ``typical_nadir`` and ``typical_grade``.
        """
        C = np.asarray(plasma_mg_per_L, dtype=float)
        typ = self.typical()
        pop = typ.sample(C.shape[0], seed)
        r = neutropenia(times, C, pop, window=self.window_h)
        rt = neutropenia(times, np.asarray(typical_mg_per_L, dtype=float), typ, window=self.window_h)
        # the whole simulated course (every cycle, the PD state carried from one dose to the next): cumulative
        # toxicity beyond the DLT window, reported, not a DLT
        rc = r if self.window_h is None else neutropenia(times, C, pop)
        return {"nadir": r.nadir, "time_to_nadir": r.time_to_nadir, "grade": r.grade, "dlt": r.grade >= self.grade,
                "typical_nadir": float(rt.nadir[0]), "typical_grade": int(rt.grade[0]),
                "grade_course": rc.grade, "nadir_course": rc.nadir}

    def describe(self) -> str:
        """The link in one line (drug, DLT grade, supplementation).

        Returns
        -------
        str
        """
        ps = self.parameters
        sup = ""
        if "SLOPE_SUPPLEMENTED" in ps:
            sup = ", folic acid + B12: " + ("yes" if self.supplemented else "no")
        win = "the whole simulated course" if self.window_h is None else f"the first {self.window_h / 24:g} days"
        return (f"per-patient PD: DLT = CTCAE grade >= {self.grade} neutropenia over {win}, from each patient's "
                f"own plasma profile through the Friberg myelosuppression model (parameters/pd/{self.drug}.toml"
                f"{sup}; between-patient variability of PK and PD)")


class PerPatientDLT:
    """The "link" of a pool whose exposures are already 0/1 DLT outcomes (identity, checked).

    Parameters
    ----------
    text : str
        How the outcomes were made (shown in tables).
    """

    def __init__(self, text: str):
        self.text = text
        self.__name__ = "per-patient PD DLT"

    def __call__(self, x):
        """1.0 where the patient's precomputed DLT indicator ``x`` is set (> 0.5), else 0.0."""
        a = np.asarray(x, dtype=float)
        return np.where(a > 0.5, 1.0, 0.0)

    def __repr__(self):
        return f"PerPatientDLT({self.text!r})"


def observed_checks(drug: str, route: str, doses: ArrayLike, dlt_fraction: ArrayLike, *, supplemented: bool, dlt_grade: int = 3,
                    n_pool: int | None = None) -> pd.DataFrame:
    """Published DLT observations for ``drug`` by ``route`` (``[observations.*]`` of its PD file) vs the
    predicted DLT fraction of the simulated dose level with the same dose.

    Columns: key, dose, supplemented, events, n, observed, ci_low, ci_high, predicted (NaN when the dose was not
    simulated or the supplementation differs), verdict ("within CI", "MISS: below CI", "MISS: above CI",
    "not simulated"), source, note.

    Parameters
    ----------
    drug, route : str
        Drug and route.
    doses, dlt_fraction : array_like
        Simulated dose levels and their predicted DLT fractions.
    supplemented : bool
        Supplementation of the simulation.
    dlt_grade : int, optional
        Grade counted as DLT.
    n_pool : int, optional
        Patients per simulated dose level.

    Returns
    -------
    DataFrame
        One row per published observation.
    """
    ps = load_pd_parameters(drug)
    rows = []
    doses = np.asarray(doses, dtype=float)
    frac = np.asarray(dlt_fraction, dtype=float)
    for key, ob in ps.raw.get("observations", {}).items():
        if ob.get("route") != route:
            continue
        k, n = int(ob["events"]), int(ob["n"])
        lo, hi = clopper_pearson(k, n)
        dose = float(ob["dose_mg"])
        sup = ob.get("supplemented")               # absent: not stated by the source, compared either way
        hit = np.flatnonzero(np.isclose(doses, dose))
        same = sup is None or bool(sup) == supplemented
        pred = float(frac[hit[0]]) if hit.size and same else float("nan")
        if math.isnan(pred):
            verdict = "not simulated" if not hit.size else "other supplementation"
        elif pred < lo:
            verdict = "MISS: below CI"
        elif pred > hi:
            verdict = "MISS: above CI"
        else:
            verdict = "within CI"
        rows.append({"key": key, "dose": dose, "supplemented": sup, "events": k, "n": n, "observed": k / n,
                     "ci_low": lo, "ci_high": hi, "predicted": pred, "verdict": verdict,
                     "source": ob.get("source", ""), "note": ob.get("note", "")})
    return pd.DataFrame(rows, columns=["key", "dose", "supplemented", "events", "n", "observed", "ci_low", "ci_high",
                                       "predicted", "verdict", "source", "note"])


def check_dlt_model(dlt: str) -> str:
    """The DLT model named by ``dlt``, checked.

    Parameters
    ----------
    dlt : str
        One of :data:`DLT_MODELS` (case and surrounding spaces ignored).

    Returns
    -------
    str
        ``"link"`` or ``"neutropenia"``.

    Raises
    ------
    ScenarioError
        Any other value.
    """
    if not isinstance(dlt, str):
        raise ScenarioError("dlt", dlt, "allowed: " + ", ".join(DLT_MODELS))
    key = dlt.strip().lower()
    check_choice("dlt", key, DLT_MODELS, ScenarioError)
    return key
