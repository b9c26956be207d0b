"""Plots of pkcsf results, for clinicians: thin functions that take results or frames and return Axes.

Every function takes a result (:class:`pkcsf.clinical.scenario.ScenarioResult`,
:class:`pkcsf.trials.TrialResults`, an escalation result with ``.trials``, or
the validation table of :func:`pkcsf.clinical.validation.run_validation`), draws on the
``ax``/``axes`` given (or on a new figure) and returns the Axes (or the array of
Axes) so that plots compose::

    import pkcsf as pk
    from pkcsf import plotting as pp
    res = pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once", "ommaya": "12 mg ommaya once"},
                           subjects=200, days=4)
    axes = pp.overlay_arms(res, ["ventricular", "lumbar"])     # one panel per compartment, one line per route
    ax = pp.population_band(res, "lumbar", group="ventricular")  # median, 5-95 % band, typical subject dashed
    axes[0].figure.savefig("mtx.png", dpi=150)

Conventions (the same in every plot):

* concentrations in the result's unit (µmol/L by default), written on every axis;
* time in hours up to 3 days, in days beyond, counted from the first dose;
* thresholds (the drug's sourced cytotoxic levels or IC50s, or the scenario's own) as grey lines
  labelled with name and value to the right of the panel (thresholds far off the scale are left out);
* dose times as small triangles on the time axis, coloured by route (lumbar vermilion, Ommaya blue,
  oral black ...);
* log axes are floored at ``floor`` x the highest plotted value (default 1e-4: four decades), or
  lower to show a threshold, never at the 1e-30 noise of a washed-out compartment;
* the Okabe-Ito colour-blind-safe palette; each compartment keeps its colour across figures;
* legends below the panels, outside the data.

matplotlib is imported lazily (importing :mod:`pkcsf` does not import it); without a display and
without an explicit ``MPLBACKEND`` the non-interactive Agg backend is used.
"""
from __future__ import annotations

from pkcsf.plotting.axes import (  # noqa: F401
    THRESHOLD_STYLE,
    _arm,
    _as_axes_list,
    _conc_axis,
    _days,
    _dose_markers,
    _drug,
    _drug_obj,
    _given,
    _groups,
    _log_ticks,
    _plain,
    _present,
    _profile,
    _round_down,
    _set_linear_limits,
    _set_log_limits,
    _strip_threshold_labels,
    _tail_min,
    _threshold_lines,
    _thresholds,
    _time_axis,
    _title,
    _unit,
    _x,
    add_legend,
    is_fig_target,
)
from pkcsf.plotting.bands import (  # noqa: F401
    population_band,
    population_bands,
    time_above,
)
from pkcsf.plotting.escalation import (  # noqa: F401
    _dose_labels,
    _grouped,
    _percent_formatter,
    _trial_dict,
    _true_mtd,
    dlt_rate,
    escalation,
    exposure_by_dose,
    exposure_toxicity,
    p_select,
    patients_per_dose,
)
from pkcsf.plotting.profiles import (  # noqa: F401
    _first_col,
    _last_col,
    _place_right_labels,
    _stat_text,
    compare_arms,
    compare_drugs,
    concentration_time,
    drugs_of,
    ic50_ratio,
    linear_and_log,
    overlay_arms,
)
from pkcsf.plotting.style import (  # noqa: F401
    _THRESHOLD_NAMES,
    ARM_DASHES,
    FONT,
    GROUP_COLORS,
    GROUP_LABELS,
    LABEL_FONT,
    PALETTE,
    ROUTE_COLORS,
    ROUTE_LABELS,
    SERIES,
    SMALL_FONT,
    TITLE_FONT,
    _arm_colors,
    _arm_route,
    _below_note,
    _fmt,
    _group_style,
    _is_quantity,
    _new_axes,
    _plt,
    _series_color,
    _threshold_name,
    arm_styles,
    drug_label,
    group_label,
    pretty_unit,
    threshold_text,
)
from pkcsf.plotting.validation import (  # noqa: F401
    fold_errors,
    observation_label,
    short_source,
)

__all__ = [
    "PALETTE", "GROUP_COLORS", "GROUP_LABELS", "ROUTE_COLORS",
    "concentration_time", "linear_and_log", "compare_arms", "overlay_arms",
    "population_band", "population_bands", "time_above", "ic50_ratio",
    "p_select", "patients_per_dose", "dlt_rate", "exposure_by_dose", "exposure_toxicity", "escalation",
    "fold_errors", "add_legend", "pretty_unit", "arm_styles", "threshold_text", "compare_drugs",
]
