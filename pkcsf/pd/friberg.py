"""Friberg (2002) semi-mechanistic myelosuppression model, solved in compiled code for a batch of subjects.

Structure (Friberg LE, Henningsson A, Maas H, Nguyen L, Karlsson MO. Model of
chemotherapy-induced myelosuppression with parameter consistency across drugs.
J Clin Oncol 2002;20:4713-21, doi:10.1200/JCO.2002.02.140)::

    dProl/dt   = ktr*Prol*(1 - Edrug)*(Circ0/Circ)^gamma - ktr*Prol
    dTransit1  = ktr*Prol - ktr*Transit1            (Transit2, Transit3 likewise)
    dCirc/dt   = ktr*Transit3 - ktr*Circ
    ktr = 4/MTT;  all five compartments start at Circ0 (steady state)
    Edrug = SLOPE*C                   (linear, "linear")
          = EMAX*C/(EC50 + C)         (Emax form, "emax")

``C`` is the subject's plasma concentration (mg/L), known only at the output
times of the pharmacokinetic simulation: **between two output times it is
interpolated linearly** (a zero-length interval, as the engine writes at a
dose time, is a jump). Each interval is integrated with classical 4th-order
Runge-Kutta on sub-steps no longer than ``max_step`` h and short enough that
``h * ktr * (1 + |Edrug|) <= 0.2`` (``h*lambda`` well inside RK4's stability
and accuracy region); the ANC nadir is tracked on every sub-step. A coarse PK
grid around a short infusion under-resolves the peak: give outputs at least
every 0.25 h around IV doses (the escalation does).

Read-outs: the ANC nadir within the window (default the whole grid), the time
of the nadir, and the CTCAE v5.0 grade of "neutrophil count decreased"
(:data:`CTCAE_NEUTROPHILS`: grade 2 < 1.5, grade 3 < 1.0, grade 4 < 0.5 x 1e9/L;
grade 1 needs the laboratory's lower limit of normal, ``lln``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numba import prange
from numpy.typing import ArrayLike

from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.jit import njit

__all__ = ["FribergParameters", "NeutropeniaResult", "neutropenia", "friberg_anc", "ctcae_grade",
           "CTCAE_NEUTROPHILS", "CTCAE_SOURCE"]

#: CTCAE v5.0 "Neutrophil count decreased" lower bounds of grades 2, 3, 4 (x 1e9/L).
CTCAE_NEUTROPHILS = {2: 1.5, 3: 1.0, 4: 0.5}
CTCAE_SOURCE = ("National Cancer Institute. Common Terminology Criteria for Adverse Events (CTCAE) v5.0, 2017, "
                "Investigations: Neutrophil count decreased (grade 1 <LLN-1500/mm3; 2 <1500-1000; 3 <1000-500; "
                "4 <500/mm3). https://ctep.cancer.gov/protocoldevelopment/electronic_applications/docs/"
                "CTCAE_v5_Quick_Reference_5x7.pdf")

_MODELS = ("linear", "emax")


@dataclass(frozen=True)
class FribergParameters:
    """Per-subject Friberg parameters (arrays of length 1 broadcast to every subject).

    Attributes
    ----------
    circ0 : ndarray, 1e9/L       baseline ANC
    mtt : ndarray, h             mean transit time (ktr = 4/MTT)
    gamma : ndarray              feedback exponent
    slope : ndarray, L/mg        linear drug effect (``model = "linear"``)
    emax, ec50 : ndarray (1, mg/L)   Emax form (``model = "emax"``)
    model : "linear" or "emax"
    cv : dict name -> CV of the log-normal between-subject variability used by :meth:`sample`
    label : str                  what these parameters describe (drug, covariates)
    """

    circ0: np.ndarray
    mtt: np.ndarray
    gamma: np.ndarray
    slope: np.ndarray = field(default_factory=lambda: np.zeros(1))
    emax: np.ndarray = field(default_factory=lambda: np.zeros(1))
    ec50: np.ndarray = field(default_factory=lambda: np.ones(1))
    model: str = "linear"
    cv: dict = field(default_factory=dict)
    label: str = ""

    def __post_init__(self):
        check_choice("model", self.model, _MODELS, ParameterError)
        for name in ("circ0", "mtt", "gamma", "slope", "emax", "ec50"):
            a = np.atleast_1d(np.asarray(getattr(self, name), dtype=float))
            if a.ndim != 1 or not np.all(np.isfinite(a)):
                raise ParameterError(name, getattr(self, name), "must be finite numbers (one per subject or one)")
            lo_ok = a > 0 if name in ("circ0", "mtt", "ec50") else a >= 0
            if not np.all(lo_ok):
                i = int(np.argmax(~lo_ok))
                raise ParameterError(f"{name}[{i}]", float(a[i]),
                                     "must be > 0" if name in ("circ0", "mtt", "ec50") else "must be >= 0")
            object.__setattr__(self, name, a)
        sizes = {a.size for a in (self.circ0, self.mtt, self.gamma, self.slope, self.emax, self.ec50)} - {1}
        if len(sizes) > 1:
            raise ParameterError("FribergParameters", sorted(sizes), "arrays must all have one size N (or size 1)")

    @property
    def size(self) -> int:
        """Number of subjects the arrays describe (1 for typical values)."""
        return max(a.size for a in (self.circ0, self.mtt, self.gamma, self.slope, self.emax, self.ec50))

    # ps is a PDParameterSet: not imported, as pkcsf.pd.parameters imports this module (no import cycle)
    @classmethod
    def from_parameter_set(cls, ps: Any, *, supplemented: bool | None = None, model: str | None = None,
                           **overrides: float) -> FribergParameters:
        """Typical values from a PD parameter set (``parameters/pd/<drug>.toml``).

        The file names ``CIRC0``, ``MTT``, ``GAMMA`` and either ``SLOPE`` or
        ``EMAX``/``EC50``; a file with a folic acid/B12 covariate names
        ``SLOPE_SUPPLEMENTED`` and ``SLOPE_UNSUPPLEMENTED``.

        Parameters
        ----------
        ps : PDParameterSet
            The parsed file (:func:`pkcsf.pd.parameters.load_pd_parameters`).
        supplemented : bool, optional
            Folic acid + vitamin B12 supplementation; required (True or False) when the file has that
            covariate, refused otherwise.
        model : str, optional
            ``"linear"`` or ``"emax"``; default ``"emax"`` when the file gives EMAX and no slope.
        **overrides
            Values replacing the file's by name, in the units of :class:`FribergParameters`
            (``circ0=4.0`` x 1e9/L, ``mtt`` h, ``gamma``, ``slope`` L/mg, ``emax``, ``ec50`` mg/L).

        Returns
        -------
        FribergParameters
            Typical (size-1) values, with the file's CVs in ``cv``.

        Raises
        ------
        ParameterError
            ``supplemented`` missing or not applicable, or an unknown override.
        """
        v = ps.values
        slope_key = "SLOPE"
        if "SLOPE_SUPPLEMENTED" in v:
            if supplemented is None:
                raise ParameterError("supplemented", None, f"{ps.name} has a vitamin-supplementation covariate: "
                                                           "give supplemented=True (folic acid + B12) or False")
            slope_key = "SLOPE_SUPPLEMENTED" if supplemented else "SLOPE_UNSUPPLEMENTED"
        elif supplemented is not None:
            raise ParameterError("supplemented", supplemented, f"{ps.name} has no supplementation covariate")
        if model is None:
            model = "emax" if ("EMAX" in v and slope_key not in v) else "linear"
        kw = dict(circ0=v["CIRC0"].value, mtt=v["MTT"].value, gamma=v["GAMMA"].value)
        if model == "linear":
            kw["slope"] = v[slope_key].value
        else:
            kw["emax"], kw["ec50"] = v["EMAX"].value, v["EC50"].value
        cv = {}
        for name, key in (("circ0", "CIRC0"), ("mtt", "MTT"), ("gamma", "GAMMA"), ("slope", "SLOPE"),
                          ("emax", "EMAX"), ("ec50", "EC50")):
            c = ps.cv(key) if key in ps.variability else 0.0
            if c:
                cv[name] = c
        for k, x in overrides.items():
            if k not in ("circ0", "mtt", "gamma", "slope", "emax", "ec50"):
                check_choice("override", k, ["circ0", "mtt", "gamma", "slope", "emax", "ec50"], ParameterError)
            kw[k] = x
        lab = ps.name + ("" if supplemented is None else (" (folic acid + B12)" if supplemented else
                                                        " (no vitamin supplementation)"))
        return cls(model=model, cv=cv, label=lab, **{k: np.atleast_1d(float(x)) for k, x in kw.items()})

    def sample(self, n: int, seed: int = 0, *, variability: bool = True) -> "FribergParameters":
        """Subjects drawn with log-normal between-subject variability ``cv`` around the (size-1) typical values.

        Subject ``i`` depends only on ``(seed, i)`` (one independent stream per parameter).

        Parameters
        ----------
        n : int
            Number of subjects, >= 1.
        seed : int
            Seed (default 0).
        variability : bool
            False gives ``n`` copies of the typical values.

        Returns
        -------
        FribergParameters
            Arrays of size ``n``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ParameterError("n", n, "must be a whole number >= 1")
        if self.size != 1:
            raise ParameterError("sample", self.size, "sample() draws subjects around typical (size-1) parameters")
        out = {}
        ss = np.random.SeedSequence([int(seed), 0x5EED])
        streams = ss.spawn(6)
        for (name, s) in zip(("circ0", "mtt", "gamma", "slope", "emax", "ec50"), streams):
            base = getattr(self, name)[0]
            cv = self.cv.get(name, 0.0) if variability else 0.0
            if cv > 0:
                sd = math.sqrt(math.log1p(cv * cv))
                z = np.random.default_rng(s).standard_normal(n)
                out[name] = base * np.exp(sd * z)
            else:
                out[name] = np.full(n, base)
        return FribergParameters(model=self.model, cv=dict(self.cv), label=self.label, **out)

    def take(self, n: int) -> dict:
        """The parameter arrays for ``n`` subjects (size-1 arrays broadcast).

        Parameters
        ----------
        n : int
            Number of subjects.

        Returns
        -------
        dict
            ``circ0``, ``mtt``, ``gamma``, ``slope``, ``emax``, ``ec50`` -> contiguous float arrays of length ``n``.
        """
        out = {}
        for name in ("circ0", "mtt", "gamma", "slope", "emax", "ec50"):
            a = getattr(self, name)
            if a.size == 1:
                a = np.full(n, a[0])
            elif a.size != n:
                raise ParameterError(name, f"{a.size} values", f"must have one value per subject ({n}) or one")
            out[name] = np.ascontiguousarray(a, dtype=float)
        return out


# ------------------------------------------------------------------ compiled kernel
@njit(inline="always")
def _edrug(c, model, slope, emax, ec50):
    if c < 0.0:
        c = 0.0
    if model == 0:
        return slope * c
    return emax * c / (ec50 + c)


@njit(inline="always")
def _rhs(y, e, ktr, circ0, gamma, dy):
    circ = y[4]
    if circ < 1e-12:
        circ = 1e-12
    fb = (circ0 / circ) ** gamma
    dy[0] = ktr * y[0] * (1.0 - e) * fb - ktr * y[0]
    dy[1] = ktr * (y[0] - y[1])
    dy[2] = ktr * (y[1] - y[2])
    dy[3] = ktr * (y[2] - y[3])
    dy[4] = ktr * (y[3] - circ)


@njit
def _one_subject(t, c, circ0, mtt, gamma, slope, emax, ec50, model, t_end, max_step, anc_out, save):
    ktr = 4.0 / mtt
    y = np.full(5, circ0)
    k1 = np.empty(5); k2 = np.empty(5); k3 = np.empty(5); k4 = np.empty(5); yt = np.empty(5)
    nadir = circ0
    t_nadir = t[0]
    if save:
        anc_out[0] = circ0
    for i in range(t.size - 1):
        h_int = t[i + 1] - t[i]
        if h_int <= 0.0:
            if save:
                anc_out[i + 1] = y[4]
            continue
        if t[i] >= t_end:
            if save:
                anc_out[i + 1] = np.nan
            continue
        stop = min(t[i + 1], t_end)
        span = stop - t[i]
        c0 = c[i]
        dc = (c[i + 1] - c[i]) / h_int
        e_hi = max(abs(_edrug(c[i], model, slope, emax, ec50)), abs(_edrug(c[i + 1], model, slope, emax, ec50)))
        hmax = min(max_step, 0.2 / (ktr * (1.0 + e_hi)))
        n = int(math.ceil(span / hmax))
        if n < 1:
            n = 1
        h = span / n
        for j in range(n):
            s = j * h                      # time since t[i]
            ea = _edrug(c0 + dc * s, model, slope, emax, ec50)
            em = _edrug(c0 + dc * (s + 0.5 * h), model, slope, emax, ec50)
            eb = _edrug(c0 + dc * (s + h), model, slope, emax, ec50)
            _rhs(y, ea, ktr, circ0, gamma, k1)
            for q in range(5):
                yt[q] = y[q] + 0.5 * h * k1[q]
            _rhs(yt, em, ktr, circ0, gamma, k2)
            for q in range(5):
                yt[q] = y[q] + 0.5 * h * k2[q]
            _rhs(yt, em, ktr, circ0, gamma, k3)
            for q in range(5):
                yt[q] = y[q] + h * k3[q]
            _rhs(yt, eb, ktr, circ0, gamma, k4)
            for q in range(5):
                y[q] += h / 6.0 * (k1[q] + 2.0 * k2[q] + 2.0 * k3[q] + k4[q])
                if y[q] < 0.0:
                    y[q] = 0.0
            if y[4] < nadir:
                nadir = y[4]
                t_nadir = t[i] + s + h
        if save:
            anc_out[i + 1] = y[4] if stop >= t[i + 1] else np.nan
    return nadir, t_nadir


@njit(parallel=True)
def _batch(t, C, circ0, mtt, gamma, slope, emax, ec50, model, t_end, max_step, save):
    N = C.shape[0]
    nadir = np.empty(N)
    t_nadir = np.empty(N)
    anc = np.empty((N if save else 1, t.size))
    for i in prange(N):
        row = anc[i] if save else anc[0]
        a, b = _one_subject(t, C[i], circ0[i], mtt[i], gamma[i], slope[i], emax[i], ec50[i], model, t_end,
                            max_step, row, save)
        nadir[i] = a
        t_nadir[i] = b
    return nadir, t_nadir, anc


# ------------------------------------------------------------------ API
def ctcae_grade(anc: ArrayLike, lln: float | None = None) -> np.ndarray:
    """CTCAE v5.0 grade of "neutrophil count decreased" for ANC values (1e9/L).

    Grades 2-4 use the fixed bounds of :data:`CTCAE_NEUTROPHILS`; grade 1
    (< LLN) needs the laboratory's lower limit of normal ``lln`` (1e9/L).
    Without ``lln``, grade 0 means "grade 0 or 1" (ANC >= 1.5).

    Parameters
    ----------
    anc : array_like
        Absolute neutrophil counts (1e9/L).
    lln : float, optional
        Lower limit of normal (1e9/L).

    Returns
    -------
    ndarray of int
        Grades 0-4.

    Examples
    --------
    >>> ctcae_grade([2.0, 1.2, 0.7, 0.3]).tolist()
    [0, 2, 3, 4]
    """
    a = np.asarray(anc, dtype=float)
    g = np.zeros(a.shape, dtype=np.int64)
    if lln is not None:
        lln = float(lln)
        if not (math.isfinite(lln) and lln > CTCAE_NEUTROPHILS[2]):
            raise ParameterError("lln", lln, f"must be a lower limit of normal above {CTCAE_NEUTROPHILS[2]} x 1e9/L")
        g[a < lln] = 1
    g[a < CTCAE_NEUTROPHILS[2]] = 2
    g[a < CTCAE_NEUTROPHILS[3]] = 3
    g[a < CTCAE_NEUTROPHILS[4]] = 4
    return g


@dataclass(eq=False)
class NeutropeniaResult:
    """ANC read-outs of a batch of subjects (:func:`neutropenia`).

    Attributes
    ----------
    times : ndarray, shape (T,)
        Output times (h).
    nadir, time_to_nadir, grade : ndarray, shape (N,)
        ANC nadir (1e9/L), its time (h) and CTCAE grade.
    anc : ndarray, shape (N, T), or None
        ANC time courses (1e9/L) when kept.
    params : FribergParameters
        The subjects' parameters.
    window : float
        End of the read-out window (h).
    """

    times: np.ndarray
    nadir: np.ndarray
    time_to_nadir: np.ndarray
    grade: np.ndarray
    anc: np.ndarray | None
    params: FribergParameters
    window: float

    def frame(self) -> pd.DataFrame:
        """The read-outs per subject.

        Returns
        -------
        pandas.DataFrame
            One row per subject: id, circ0 (1e9/L), nadir (1e9/L), time_to_nadir (h), grade, grade3plus.
        """
        p = self.params.take(self.nadir.size)
        return pd.DataFrame({"id": np.arange(self.nadir.size), "circ0": p["circ0"], "nadir": self.nadir,
                             "time_to_nadir": self.time_to_nadir, "grade": self.grade,
                             "grade3plus": self.grade >= 3})

    def fraction_grade(self, at_least: int = 3) -> float:
        """Fraction of subjects with a CTCAE neutropenia grade >= ``at_least``.

        Parameters
        ----------
        at_least : int
            CTCAE grade (default 3).

        Returns
        -------
        float
        """
        return float(np.mean(self.grade >= at_least))

    def anc_frame(self) -> pd.DataFrame:
        """Tidy ANC time courses.

        Returns
        -------
        pandas.DataFrame
            Columns id, time (h), anc (1e9/L).

        Raises
        ------
        ParameterError
            The time courses were not kept (call :func:`neutropenia` with ``keep_anc=True``).
        """
        if self.anc is None:
            raise ParameterError("keep_anc", False, "the ANC time courses were not kept", "call with keep_anc=True")
        N, T = self.anc.shape
        return pd.DataFrame({"id": np.repeat(np.arange(N), T), "time": np.tile(self.times, N),
                             "anc": self.anc.ravel()})


def _check_grid(times, conc):
    t = np.ascontiguousarray(np.asarray(times, dtype=float))
    if t.ndim != 1 or t.size < 2:
        raise ParameterError("times", times, "must be a 1-D array of at least 2 output times (h)")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) < 0):
        raise ParameterError("times", "not increasing", "output times must be finite and non-decreasing (h)")
    C = np.asarray(conc, dtype=float)
    if C.ndim == 1:
        C = C[None, :]
    if C.ndim != 2 or C.shape[1] != t.size:
        raise ParameterError("conc", f"shape {np.shape(conc)}", f"must be (N, {t.size}) or ({t.size},): one "
                                                                "concentration per subject and output time")
    bad = ~np.isfinite(C) | (C < 0)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ParameterError(f"conc[{i}, {j}]", float(C[i, j]), "concentrations must be finite and >= 0 (mg/L)")
    return t, np.ascontiguousarray(C)


def neutropenia(times: ArrayLike, conc: ArrayLike, params: FribergParameters, *, window: float | None = None, lln: float | None = None,
                keep_anc: bool = False, max_step: float = 1.0) -> NeutropeniaResult:
    """ANC nadir, time to nadir and CTCAE grade of each subject, driven by his plasma concentrations.

    Parameters
    ----------
    times : array (T,), h
        Output times of the PK simulation (non-decreasing; a repeated time is a jump).
    conc : array (N, T) or (T,), mg/L
        Plasma concentration of each subject (the drug the PD parameters were estimated on: total plasma).
    params : FribergParameters
        Size 1 (every subject the same) or size N (:meth:`FribergParameters.sample`).
    window : float, optional
        Read-outs over ``[times[0], window]`` h (e.g. the DLT window, cycle 1); default the whole grid.
    lln : float, optional
        Lower limit of normal (1e9/L) for CTCAE grade 1; without it grades 0 and 1 are reported as 0.
    keep_anc : bool
        Keep the ANC at every output time (``result.anc``, NaN after ``window``).
    max_step : float
        Longest integration sub-step (h).

    Returns
    -------
    NeutropeniaResult

    Raises
    ------
    ParameterError
        Times not increasing, concentrations of the wrong shape, negative or not finite, a window that ends
        before the first time, ``max_step`` outside (0, 24] h.
    """
    t, C = _check_grid(times, conc)
    N = C.shape[0]
    if C.shape[0] == 1 and params.size > 1:          # one profile for every subject
        C = np.ascontiguousarray(np.repeat(C, params.size, axis=0))
        N = params.size
    if params.size not in (1, N):
        raise ParameterError("params", f"{params.size} subjects", f"must describe 1 or {N} subjects")
    p = params.take(N)
    t_end = float(t[-1]) if window is None else float(window)
    if not (math.isfinite(t_end) and t_end > t[0]):
        raise ParameterError("window", window, f"must end after the first output time ({t[0]:g} h)")
    if not (isinstance(max_step, (int, float)) and 0 < max_step <= 24):
        raise ParameterError("max_step", max_step, "must be in (0, 24] h")
    model = 0 if params.model == "linear" else 1
    nadir, tn, anc = _batch(t, C, p["circ0"], p["mtt"], p["gamma"], p["slope"], p["emax"], p["ec50"], model,
                            t_end, float(max_step), bool(keep_anc))
    return NeutropeniaResult(t, nadir, tn, ctcae_grade(nadir, lln), anc if keep_anc else None, params, t_end)


def friberg_anc(times: ArrayLike, conc: ArrayLike, params: FribergParameters, **kwargs: object) -> np.ndarray:
    """ANC (1e9/L) at the output times, shape (N, T): :func:`neutropenia` with ``keep_anc=True``.

    Parameters
    ----------
    times : ndarray, shape (T,)
        Output times (h).
    conc : ndarray, shape (N, T)
        Plasma concentrations (mg/L).
    params : FribergParameters
        Subjects' parameters.
    **kwargs
        Other options of :func:`neutropenia`.

    Returns
    -------
    ndarray, shape (N, T)
        ANC (1e9/L).
    """
    return neutropenia(times, conc, params, keep_anc=True, **kwargs).anc
