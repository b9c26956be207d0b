"""Exposure read-outs from simulated concentration-time arrays.

This module gathers the read-outs, each importable from here: the curve and its window kernels
(:mod:`pkcsf.analysis.curve`), the read-outs over a window or per dosing interval
(:mod:`pkcsf.analysis.exposure`), ratios and population summaries (:mod:`pkcsf.analysis.summaries`).

Every function takes the engine's output grid ``times`` (1-D, h, increasing; a time listed twice,
as the engine lists dose times, is read as a dose: the first value is the pre-dose value, the second
the post-dose value) and concentrations ``conc`` of shape ``(n_subjects, n_times)`` or
``(n_subjects, n_times, n_compartments)`` in mg/L, and returns one value per
subject, shape ``(n_subjects,)`` or ``(n_subjects, n_compartments)``
(per-interval functions insert an interval axis: ``(n_subjects, n_intervals)``
or ``(n_subjects, n_intervals, n_compartments)``). Everything is vectorised
over subjects and compartments; the only Python loops run over dosing
intervals or query times.

The curve between grid points
-----------------------------
Between two grid points the concentration is the interpolant chosen by
``method`` (one of :data:`METHODS`), and *every* read-out uses that same
interpolant: AUC is its exact integral, time above a threshold uses its exact
crossing points, a window edge that falls between grid points takes its value
there. So AUC is additive over adjacent windows and read-outs agree with each
other.

* ``"linear"``: straight line (linear trapezoid for AUC).
* ``"linear-up/log-down"``: straight line when rising or flat, exponential
  when falling between two positive values (the PKNCA / WinNonlin
  "lin up/log down" rule; exact for mono-exponential decay).
* ``"log"``: exponential between any two different positive values, straight
  line otherwise (a zero or negative end point).

Dose times, right continuity and troughs
----------------------------------------
The engine's outputs are right-continuous: the value stored at a bolus time is
the value just *after* the bolus. A read-out that must know the value just
*before* a dose (a trough, the last piece of AUC in a dosing interval, a
window that ends at a dose) is made dose-aware by passing ``dose_times``:

* every dose time that falls inside the grid must be one of the grid times
  (the engine puts dose times on its output grid); doses before the first or
  after the last output time are ignored;
* the pre-dose value (left limit) at a dose time is taken from
  ``conc_before`` when it is given, shape ``(n_subjects, n_doses)`` or
  ``(n_subjects, n_doses, n_compartments)``, aligned with ``dose_times``
  (the engine can report it); otherwise it is **the value at the last grid
  point strictly before the dose** (held constant up to the dose). That
  fallback is what a sampled pre-dose trough is; it slightly underestimates
  the last segment's AUC on a falling curve, by at most one grid step times
  the change over that step. Pass ``conc_before`` for exact results;
* on a window ``[start, end]`` the curve takes its right limit at ``start``
  and its left limit at ``end``; a dose strictly inside the window contributes
  both its pre-dose and its post-dose value.

Without ``dose_times`` the grid values are taken as samples of a continuous
curve. Per-interval functions (``*_per_interval``, :func:`trough`,
:func:`summarize` with doses) split the grid at the dose times into intervals
``[dose_k, dose_{k+1}]``, the last one ending at ``end`` (default: the last
output time), and are always dose-aware.

**Trough** of interval *k* is the left limit at its end: the pre-dose value at
the next dose, and for the last interval the value at ``end`` (C at the end of
the simulated interval, e.g. C(tau) when ``end`` is the last dose plus tau).
``cmin`` is different: the minimum of the curve over the window.

Window edges within 1e-9 x max|times| of an output time are taken to be that
output time (so ``end=0.1 * 3`` is the output time 0.3).

Units
-----
Times in h, concentrations in mg/L, AUC in mg*h/L. Thresholds and window
edges may also be given as text with a unit (``"1 umol/L"`` with ``mw=``,
``"2 d"``), parsed by :func:`pkcsf.core.units.parse_quantity`. :func:`summarize`
can report concentrations in another unit (``unit="umol/L", mw=454.44``).
"""
from __future__ import annotations

from pkcsf.analysis.curve import (  # noqa: F401
    METHODS,
    MetricsError,
    _check_method,
)
from pkcsf.analysis.exposure import (  # noqa: F401
    auc,
    auc_cumulative,
    auc_per_interval,
    cmax,
    cmin,
    interpolate,
    longest_time_above,
    longest_time_above_per_interval,
    per_interval,
    time_above,
    time_above_per_interval,
    tmax,
    trough,
)
from pkcsf.analysis.summaries import (  # noqa: F401
    auc_ratio,
    conc_ratio,
    fraction_reaching,
    percentiles,
    ratio,
    summarize,
)

__all__ = [
    "METHODS",
    "MetricsError",
    "interpolate",
    "cmax",
    "tmax",
    "cmin",
    "trough",
    "auc",
    "auc_cumulative",
    "auc_per_interval",
    "time_above",
    "time_above_per_interval",
    "longest_time_above",
    "longest_time_above_per_interval",
    "per_interval",
    "ratio",
    "auc_ratio",
    "conc_ratio",
    "percentiles",
    "fraction_reaching",
    "summarize",
]
