"""A simple efficacy read-out for CSF tumour cells: log cell kill driven by time above a cytotoxic level.

    log10(N_end / N_0) = - KILL * T_above(C_site >= C_cyto)  +  T_window * log10(2) / T_double

``T_above`` is the time the concentration at a CSF site (e.g. the lumbar sac,
the ventricles) spends at or above the cytotoxic concentration ``C_cyto``,
with the site's concentration interpolated linearly between output times
(exact crossing times, like :mod:`pkcsf.analysis.metrics`); ``KILL`` is the
log10 kill per hour above; tumour cells regrow exponentially with doubling time
``T_double`` (no regrowth when it is not given). This is a deliberately simple,
fraction-kill model (Skipper's log-kill hypothesis: a given exposure kills a
constant fraction of cells); it ranks schedules by time above a level, it does
not predict response rates. Every value comes from ``parameters/pd/csf_tumour_kill.toml``
(sourced or labelled as an assumption).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from pkcsf.analysis import metrics
from pkcsf.core.errors import ParameterError

if TYPE_CHECKING:
    from pkcsf.pd.parameters import PDParameterSet

__all__ = ["CellKill", "log_cell_kill", "time_above"]


def time_above(times: ArrayLike, conc: ArrayLike, threshold: float) -> np.ndarray:
    """Time (h) each row of ``conc`` (N, T) spends >= ``threshold``, linear between outputs.

    Parameters
    ----------
    times : ndarray, shape (T,)
        Output times (h).
    conc : ndarray, shape (N, T)
        Concentrations.
    threshold : float
        In the unit of ``conc``.

    Returns
    -------
    ndarray, shape (N,)
        Hours.

    Examples
    --------
    >>> import numpy as np
    >>> time_above(np.array([0.0, 1.0, 2.0]), np.array([[0.0, 2.0, 0.0]]), 1.0).tolist()
    [1.0]
    """
    # the read-out of pkcsf.analysis.metrics, on the linear interpolant
    return metrics.time_above(np.asarray(times, dtype=float), np.atleast_2d(np.asarray(conc, dtype=float)),
                              float(threshold), method="linear")


@dataclass(frozen=True)
class CellKill:
    """Log-kill model: ``threshold`` (mg/L), ``kill`` (log10 per h above), ``doubling_time`` (h or None).

    Parameters
    ----------
    threshold : float
        Concentration (mg/L) above which cells are killed.
    kill : float
        Log10 kill per hour above the threshold.
    doubling_time : float, optional
        Regrowth doubling time (h); None: no regrowth.
    label : str, optional
        Name in tables.
    """

    threshold: float
    kill: float
    doubling_time: float | None = None
    label: str = ""

    def __post_init__(self):
        for name in ("threshold", "kill"):
            x = getattr(self, name)
            if not (isinstance(x, (int, float)) and math.isfinite(x) and x > 0):
                raise ParameterError(name, x, "must be a finite number > 0")
        d = self.doubling_time
        if d is not None and not (isinstance(d, (int, float)) and math.isfinite(d) and d > 0):
            raise ParameterError("doubling_time", d, "must be > 0 h or None (no regrowth)")

    @classmethod
    def from_parameter_set(cls, ps: PDParameterSet, threshold_mg_per_L: float) -> CellKill:
        """``KILL`` and ``T_DOUBLE`` from a PD file, with a given threshold.

        Parameters
        ----------
        ps : PDParameterSet
            The parsed file; ``T_DOUBLE = 0`` (or absent) means no regrowth.
        threshold_mg_per_L : float
            Cytotoxic concentration (mg/L), e.g. a drug's sourced threshold.

        Returns
        -------
        CellKill
        """
        td = ps.values.get("T_DOUBLE")
        td = None if td is None or td.value == 0 else td.value       # 0 in the file = no regrowth term
        return cls(float(threshold_mg_per_L), ps["KILL"], td, ps.name)


def log_cell_kill(times: ArrayLike, conc: ArrayLike, model: CellKill, *, window: float | None = None) -> np.ndarray:
    """Net log10 change of the tumour cell number per subject over ``[times[0], window]``; negative = kill.

    Parameters
    ----------
    times : ndarray, shape (T,)
        Output times (h).
    conc : ndarray, shape (N, T)
        Concentrations (mg/L).
    model : CellKill
        The log-kill model.
    window : float, optional
        End of the window (h); default: the last output time.

    Returns
    -------
    ndarray, shape (N,)
        Net log10 change.
    """
    t = np.asarray(times, dtype=float)
    C = np.atleast_2d(np.asarray(conc, dtype=float))
    if C.shape[1] != t.size:
        raise ParameterError("conc", f"shape {C.shape}", f"must have one column per output time ({t.size})")
    if window is not None:
        keep = t <= float(window)
        t, C = t[keep], C[:, keep]
    above = time_above(t, C, model.threshold)
    growth = 0.0 if model.doubling_time is None else (t[-1] - t[0]) * math.log10(2.0) / model.doubling_time
    return -model.kill * above + growth
