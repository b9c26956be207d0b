"""Denosumab: quasi-steady-state TMDD population PK with the urinary NTX response (bone metastases).

Pharmacokinetics: open two-compartment model, first-order subcutaneous
absorption with bioavailability F, linear clearance and the quasi-steady-state
(QSS) approximation of target-mediated drug disposition (RANKL), as in the
denosumab population analyses (Gibiansky 2012, bone metastases; Sutjandra 2011;
Choi 2025). On amounts (nmol) and concentrations (nmol/L)::

    C_tot = A_c / V_c                   total (free + bound) drug in the central compartment
    C     = ((C_tot - R_tot - K_ss) + sqrt((C_tot - R_tot - K_ss)^2 + 4 K_ss C_tot)) / 2   free drug
    RC    = R_tot C / (K_ss + C)        drug-RANKL complex
    dA_d/dt   = -k_a A_d                (each dose adds F x dose to A_d)
    dA_c/dt   = k_a A_d - CL C - Q C + Q A_p/V_p - k_int RC V_c
    dA_p/dt   = Q C - Q A_p/V_p
    dR_tot/dt = k_syn - k_deg R_tot - (k_int - k_deg) RC,     k_deg = k_syn / R_0

Bone-turnover response (Doshi 2012): urinary N-telopeptide corrected for
creatinine falls with the free serum concentration through an inhibitory Imax
function, taken as direct (uNTx/Cr suppression is seen within a day of the
first dose, much faster than the weeks-long PK)::

    uNTx/Cr = BASE x (1 - IMAX C^h / (IC50^h + C^h))

Solved with classical RK4 on a fixed step (default 1 h; the fastest rate,
k_int + Q/V_c, is below 0.1 /h) for a batch of subjects in compiled code.
Parameters: ``parameters/pd/denosumab.toml`` (every value sourced, or an
assumption with its reasoning; which analysis each comes from is recorded there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from numba import prange
from numpy.typing import ArrayLike

from pkcsf.core.errors import ParameterError
from pkcsf.core.jit import njit

if TYPE_CHECKING:
    from pkcsf.pd.parameters import PDParameterSet

__all__ = ["DenosumabParameters", "DenosumabResult", "simulate_denosumab", "schedule_doses"]

_NAMES = ("F", "KA", "V1", "CL", "V2", "Q", "KSS", "KINT", "R0", "KSYN", "BASE", "IMAX", "IC50", "HILL")


@dataclass(frozen=True)
class DenosumabParameters:
    """Per-subject arrays (length 1 broadcasts), in h, L, L/h, 1/h, nmol/L (KSS, R0, IC50), nmol/L/h (KSYN),
    nmol/mmol (BASE). ``mw`` g/mol converts mg doses and nmol/L concentrations.

    Parameters
    ----------
    values : dict of str to ndarray
        Parameter arrays by name (length 1 or N).
    mw : float
        Molecular weight (g/mol).
    label : str, optional
        Name in tables.
    cv : dict, optional
        Coefficients of variation used to draw the subjects.
    """

    values: dict
    mw: float
    label: str = "denosumab"
    cv: dict | None = None        # name -> CV of log-normal between-subject variability (sample())

    @classmethod
    def from_parameter_set(cls, ps: PDParameterSet, **overrides: ArrayLike) -> DenosumabParameters:
        """Typical parameters from a PD parameter set (``parameters/pd/denosumab.toml``).

        Parameters
        ----------
        ps : PDParameterSet
            The parsed file; KSS, R0, IC50 (mg/L) and KSYN (mg/L/h) are converted to nmol/L with ``MW``.
        **overrides
            Values replacing the file's by name (one of ``F``, ``KA``, ``V1``, ``CL``, ``V2``, ``Q``, ``KSS``,
            ``KINT``, ``R0``, ``KSYN``, ``BASE``, ``IMAX``, ``IC50``, ``HILL``), in the units of this class
            (nmol/L for KSS, R0, IC50).

        Returns
        -------
        DenosumabParameters
            Typical (size-1) values, with the file's CVs.

        Raises
        ------
        ParameterError
            An unknown override, a value not finite or <= 0, or IMAX or F above 1.
        """
        mw = ps["MW"]
        vals = {}
        for k in _NAMES:
            x = ps.values[k].value
            if k in ("KSS", "R0", "IC50", "KSYN"):      # the loader stores mg/L (mg/L/h): the kernel works in nmol/L
                x = x * 1e6 / mw
            vals[k] = np.atleast_1d(float(x))
        for k, x in overrides.items():
            if k not in _NAMES:
                raise ParameterError("override", k, "allowed: " + ", ".join(_NAMES))
            vals[k] = np.atleast_1d(np.asarray(x, dtype=float))
        for k, a in vals.items():
            if not np.all(np.isfinite(a)) or np.any(a < 0) or (k not in ("IMAX",) and np.any(a == 0)):
                raise ParameterError(k, a.tolist(), "must be finite and > 0")
        if np.any(vals["IMAX"] > 1) or np.any(vals["F"] > 1):
            raise ParameterError("IMAX/F", (vals["IMAX"].tolist(), vals["F"].tolist()), "fractions must be <= 1")
        cv = {k: ps.cv(k) for k in ps.variability if k in _NAMES}
        return cls(vals, mw, ps.name, cv)

    def sample(self, n: int, seed: int = 0) -> "DenosumabParameters":
        """Subjects drawn with log-normal variability (``cv``) around the typical (size-1) values.

        Subject ``i`` depends only on ``(seed, i)``; parameters without a CV keep their typical value.

        Parameters
        ----------
        n : int
            Number of subjects, >= 1.
        seed : int
            Seed (default 0).

        Returns
        -------
        DenosumabParameters
            Arrays of size ``n``.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ParameterError("n", n, "must be a whole number >= 1")
        if self.size != 1:
            raise ParameterError("sample", self.size, "sample() draws subjects around typical (size-1) parameters")
        streams = np.random.SeedSequence([int(seed), 0xD3B0]).spawn(len(_NAMES))
        out = {}
        for k, st in zip(_NAMES, streams):
            base = self.values[k][0]
            c = (self.cv or {}).get(k, 0.0)
            if c > 0:
                z = np.random.default_rng(st).standard_normal(n)
                out[k] = base * np.exp(math.sqrt(math.log1p(c * c)) * z)
            else:
                out[k] = np.full(n, base)
        return DenosumabParameters(out, self.mw, self.label, dict(self.cv or {}))

    @property
    def size(self) -> int:
        """Number of subjects the arrays describe (1 for typical values)."""
        return max(a.size for a in self.values.values())

    def take(self, n: int) -> np.ndarray:
        """The parameters of ``n`` subjects as one array (size-1 values broadcast).

        Parameters
        ----------
        n : int
            Number of subjects.

        Returns
        -------
        ndarray, shape (n, 14)
            Columns in the order F, KA, V1, CL, V2, Q, KSS, KINT, R0, KSYN, BASE, IMAX, IC50, HILL.
        """
        out = np.empty((n, len(_NAMES)))
        for j, k in enumerate(_NAMES):
            a = self.values[k]
            if a.size not in (1, n):
                raise ParameterError(k, f"{a.size} values", f"must have one value per subject ({n}) or one")
            out[:, j] = a if a.size == n else a[0]
        return out


@njit(inline="always")
def _free(ctot, rtot, kss):
    b = ctot - rtot - kss
    return 0.5 * (b + math.sqrt(b * b + 4.0 * kss * ctot))


@njit(inline="always")
def _rhs(y, p, dy):
    _F, KA, V1, CL, V2, Q, KSS, KINT, R0, KSYN = p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]
    kdeg = KSYN / R0
    ctot = y[1] / V1
    rtot = y[3]
    c = _free(ctot, rtot, KSS)
    rc = rtot * c / (KSS + c)
    dy[0] = -KA * y[0]
    dy[1] = KA * y[0] - CL * c - Q * c + Q * y[2] / V2 - KINT * rc * V1
    dy[2] = Q * c - Q * y[2] / V2
    dy[3] = KSYN - kdeg * rtot - (KINT - kdeg) * rc


@njit(parallel=True)
def _batch(P, dose_t, dose_nmol, t_out, h):
    N = P.shape[0]
    T = t_out.size
    free = np.empty((N, T))
    total = np.empty((N, T))
    rtot_out = np.empty((N, T))
    for i in prange(N):
        p = P[i]
        y = np.zeros(4)
        y[3] = p[8]
        k1 = np.empty(4); k2 = np.empty(4); k3 = np.empty(4); k4 = np.empty(4); yt = np.empty(4)
        t = 0.0
        di = 0
        for j in range(T):
            target = t_out[j]
            while True:
                # apply doses due at the current time
                while di < dose_t.size and dose_t[di] <= t + 1e-9:
                    y[0] += p[0] * dose_nmol[di]
                    di += 1
                stop = target
                if di < dose_t.size and dose_t[di] < stop:
                    stop = dose_t[di]
                span = stop - t
                if span > 0:
                    n = int(math.ceil(span / h))
                    hh = span / n
                    for _ in range(n):
                        _rhs(y, p, k1)
                        for q in range(4):
                            yt[q] = y[q] + 0.5 * hh * k1[q]
                        _rhs(yt, p, k2)
                        for q in range(4):
                            yt[q] = y[q] + 0.5 * hh * k2[q]
                        _rhs(yt, p, k3)
                        for q in range(4):
                            yt[q] = y[q] + hh * k3[q]
                        _rhs(yt, p, k4)
                        for q in range(4):
                            y[q] += hh / 6.0 * (k1[q] + 2.0 * k2[q] + 2.0 * k3[q] + k4[q])
                    t = stop
                if stop >= target:
                    break
            ctot = y[1] / p[2]
            total[i, j] = ctot
            free[i, j] = _free(ctot, y[3], p[6])
            rtot_out[i, j] = y[3]
    return free, total, rtot_out


def schedule_doses(dose_mg: float, every_weeks: float, weeks: float) -> tuple[np.ndarray, np.ndarray]:
    """Dose times (h) and amounts (mg) of ``dose_mg`` SC every ``every_weeks`` weeks for ``weeks`` weeks.

    Parameters
    ----------
    dose_mg : float
        Amount of each dose (mg).
    every_weeks : float
        Dosing interval (weeks).
    weeks : float
        Length of the schedule (weeks); doses before its end.

    Returns
    -------
    tuple of ndarray
        Dose times (h) and amounts (mg).

    Examples
    --------
    >>> t, a = schedule_doses(120, 4, 12)
    >>> t.tolist()
    [0.0, 672.0, 1344.0]
    """
    for name, x in (("dose_mg", dose_mg), ("every_weeks", every_weeks), ("weeks", weeks)):
        if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
            raise ParameterError(name, x, "must be a number > 0")
    t = np.arange(0.0, weeks * 168.0 - 1e-9, every_weeks * 168.0)
    return t, np.full(t.size, float(dose_mg))


@dataclass(eq=False)
class DenosumabResult:
    """Serum denosumab (free and total, ug/mL), total RANKL (nmol/L) and uNTx/Cr (nmol/mmol) at ``times`` (h).

    Attributes
    ----------
    times : ndarray, shape (T,)
        Output times (h).
    free, total : ndarray, shape (N, T)
        Serum denosumab (ug/mL).
    rankl_total : ndarray, shape (N, T)
        Total RANKL (nmol/L).
    untx, base : ndarray
        uNTx/Cr (nmol/mmol) and its baseline.
    dose_times : ndarray
        Dose times (h).
    """

    times: np.ndarray
    free: np.ndarray          # (N, T) ug/mL
    total: np.ndarray         # (N, T) ug/mL
    rankl_total: np.ndarray   # (N, T) nmol/L
    untx: np.ndarray          # (N, T) nmol/mmol creatinine
    base: np.ndarray          # (N,)
    dose_times: np.ndarray

    @property
    def suppression(self) -> np.ndarray:
        """Fractional uNTx/Cr suppression from baseline, (N, T)."""
        return 1.0 - self.untx / self.base[:, None]

    def trough(self, interval_h: float | None = None) -> np.ndarray:
        """Free serum concentration just before the last dose.

        Parameters
        ----------
        interval_h : float, optional
            Not used: the trough is read at the last output time before the last dose when there are at least
            two doses, at the last output time otherwise.

        Returns
        -------
        ndarray, shape (N,)
            Free denosumab (ug/mL).
        """
        if self.dose_times.size >= 2:
            k = int(np.searchsorted(self.times, self.dose_times[-1], side="left")) - 1
            k = max(k, 0)
        else:
            k = -1
        return self.free[:, k]

    def frame(self) -> pd.DataFrame:
        """Tidy time courses.

        Returns
        -------
        pandas.DataFrame
            Columns id, time (h), free_ug_per_mL, total_ug_per_mL, rankl_total_nM (nmol/L), untx_cr
            (nmol/mmol creatinine), suppression (fraction of baseline uNTx/Cr).
        """
        N, T = self.free.shape
        return pd.DataFrame({"id": np.repeat(np.arange(N), T), "time": np.tile(self.times, N),
                             "free_ug_per_mL": self.free.ravel(), "total_ug_per_mL": self.total.ravel(),
                             "rankl_total_nM": self.rankl_total.ravel(), "untx_cr": self.untx.ravel(),
                             "suppression": self.suppression.ravel()})


def simulate_denosumab(params: DenosumabParameters, dose_times_h: ArrayLike, doses_mg: ArrayLike,
                       times_h: ArrayLike, *, step_h: float = 1.0,
                       subjects: int | None = None) -> DenosumabResult:
    """Simulate SC denosumab for a batch of subjects (``params`` of size 1 or N).

    ``dose_times_h``, ``doses_mg``: the regimen (shared by all subjects; :func:`schedule_doses`);
    ``times_h``: increasing output times (h) starting at or after 0.

    Parameters
    ----------
    params : DenosumabParameters
        Subjects' parameters.
    dose_times_h, doses_mg : array_like
        The regimen: dose times (h, increasing, >= 0) and amounts (mg, > 0).
    times_h : array_like
        Output times (h).
    step_h : float, optional
        Integration step (h).
    subjects : int, optional
        Number of subjects (default: the size of ``params``).

    Returns
    -------
    DenosumabResult
        Drug, RANKL and uNTx/Cr time courses.

    Raises
    ------
    ParameterError
        Dose times and amounts of different shapes, not increasing or not positive; output times not strictly
        increasing from >= 0 h; ``step_h`` outside (0, 6] h.
    """
    dt = np.asarray(dose_times_h, dtype=float)
    dm = np.asarray(doses_mg, dtype=float)
    t = np.asarray(times_h, dtype=float)
    if dt.shape != dm.shape or dt.ndim != 1 or dt.size == 0:
        raise ParameterError("doses", (dt.shape, dm.shape), "dose times and amounts must be 1-D arrays of one size")
    if np.any(np.diff(dt) < 0) or np.any(dt < 0) or np.any(dm <= 0) or not np.all(np.isfinite(dm)):
        raise ParameterError("doses", dm.tolist()[:5], "dose times must be increasing and >= 0, amounts > 0 mg")
    if t.ndim != 1 or t.size == 0 or np.any(np.diff(t) <= 0) or t[0] < 0:
        raise ParameterError("times_h", t[:5].tolist(), "must be strictly increasing output times >= 0 h")
    if not (isinstance(step_h, (int, float)) and 0 < step_h <= 6):
        raise ParameterError("step_h", step_h, "must be in (0, 6] h")
    n = subjects or params.size
    P = params.take(n)
    nmol = dm * 1e6 / params.mw                   # mg -> nmol
    free, total, rtot = _batch(np.ascontiguousarray(P), dt, nmol, t, float(step_h))
    to_ug = params.mw / 1e6                        # nmol/L -> mg/L (= ug/mL)
    base, imax, ic50, hill = P[:, 10], P[:, 11], P[:, 12], P[:, 13]
    ch = np.power(free, hill[:, None])
    untx = base[:, None] * (1.0 - imax[:, None] * ch / (np.power(ic50, hill)[:, None] + ch))
    return DenosumabResult(t, free * to_ug, total * to_ug, rtot, untx, base, dt)
