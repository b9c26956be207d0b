"""The physical domain of every value a drug file may give, and the check that a drug file keeps to it
(:func:`check_drug_values`): run when a drug file is read (:func:`pkcsf.clinical.parameters.read_parameter_file`)
and when a drug is built or changed (:mod:`pkcsf.clinical.drugs`). Apart from both, so that neither imports the other.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pkcsf.clinical.routes import ROUTES, normalize_route
from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.provenance import USER
from pkcsf.core.units import BASE, UNITS, _units_of

__all__ = ["check_drug_values", "check_parameter_domain"]

#: what every drug file must give (the CNS/CSF model needs them for every drug): name -> meaning
_REQUIRED = {"MW": "molecular weight, g/mol", "FU": "fraction unbound in plasma", "CL": "systemic clearance",
             "V1": "central volume", "V2": "peripheral volume", "Q": "intercompartmental clearance",
             "PS_BCSFB": "blood-CSF permeability clearance", "CL_EFFLUX_CSF": "CSF efflux clearance (0 if none)",
             "PS_BBB": "blood-brain permeability clearance", "D_TISSUE": "diffusion coefficient in CNS tissue",
             "KP_TISSUE": "tissue distribution space"}
#: further values a form or a route needs (the model has no meaningful default for them)
_REQUIRED_FOR = {"liposomal": ("form = \"liposomal\"", ("K_REL", "LIPO_SIEVE", "F_FREE_INIT")),
                 "oral": ("the oral route", ("KA", "F_ORAL"))}
_FORMS = ("free", "antibody", "liposomal")

# the physical domain of each drug value: lower bound, lower bound excluded, upper bound, upper bound excluded
_POSITIVE = (0.0, True, math.inf, True)
_NONNEGATIVE = (0.0, False, math.inf, True)
_FRACTION = (0.0, False, 1.0, False)
#: name -> (kind of unit, domain, meaning); a value named <NAME>_V3, <NAME>_SAT or <NAME>_<SPECIES> replaces <NAME>
#: for the v3 model, the saturable variant or a species (pkcsf.clinical.cns.setup) and has <NAME>'s domain
_DOMAINS: dict[str, tuple[str, tuple, str]] = {
    "MW": ("molar_mass", _POSITIVE, "molecular weight"),
    "MW_AZ5104": ("molar_mass", _POSITIVE, "molecular weight of the metabolite"),
    "FU": ("dimensionless", (0.0, True, 1.0, False), "fraction unbound in plasma"),
    "F_ORAL": ("dimensionless", _FRACTION, "oral bioavailability (a fraction)"),
    "F_FREE_INIT": ("dimensionless", _FRACTION, "unencapsulated fraction of the injected product"),
    "LIPO_SIEVE": ("dimensionless", _FRACTION, "share of the CSF absorption flow that carries particles"),
    "LIPO_MOBILITY": ("dimensionless", _FRACTION, "factor on the particles' bulk flow and mixing"),
    "FMET_AZ5104": ("dimensionless", (0.0, False, 1.0, True),
                    "fraction of parent clearance forming the metabolite (1 would leave no parent clearance)"),
    "CL": ("flow", _POSITIVE, "systemic clearance"),
    "CL_AZ5104": ("flow", _POSITIVE, "metabolite clearance"),
    "Q": ("flow", _NONNEGATIVE, "intercompartmental clearance"),
    "Q3": ("flow", _NONNEGATIVE, "intercompartmental clearance to the deep compartment"),
    "PS_BCSFB": ("flow", _NONNEGATIVE, "blood-CSF permeability clearance"),
    "PS_BBB": ("flow", _NONNEGATIVE, "blood-brain permeability clearance"),
    "CL_EFFLUX_CSF": ("flow", _NONNEGATIVE, "CSF-to-blood efflux clearance"),
    "CL_EFFLUX_BBB": ("flow", _NONNEGATIVE, "brain-to-blood efflux clearance"),
    "V1": ("volume", _POSITIVE, "central volume"),
    "V2": ("volume", _POSITIVE, "peripheral volume"),
    "V3": ("volume", _POSITIVE, "deep peripheral volume"),
    "V_AZ5104": ("volume", _POSITIVE, "metabolite volume"),
    "KA": ("rate_constant", _POSITIVE, "oral absorption rate"),
    "K_REL": ("rate_constant", _POSITIVE, "release rate from the particles"),
    "KEL_CSF": ("rate_constant", _NONNEGATIVE, "first-order loss in CSF"),
    "K_BIND": ("rate_constant", _NONNEGATIVE, "uptake rate into the CSF-side binding site"),
    "K_UNBIND": ("rate_constant", _NONNEGATIVE, "release rate from the CSF-side binding site"),
    "VMAX_EFFLUX_CSF": ("rate", _NONNEGATIVE, "maximal CSF-to-blood efflux rate"),
    "VMAX_EFFLUX_BBB": ("rate", _NONNEGATIVE, "maximal brain-to-blood efflux rate"),
    "KM_EFFLUX": ("concentration", _POSITIVE, "concentration at half-maximal efflux"),
    "D_TISSUE": ("dimensionless", _POSITIVE, "diffusion coefficient in CNS tissue (1e-6 cm2/s)"),
    "KP_TISSUE": ("dimensionless", _POSITIVE, "tissue distribution space relative to CSF"),
}


def _domain_of(name: str) -> tuple[str, tuple[str, tuple, str]] | None:
    """(base name, rule) of a drug value: its own, or that of the value it replaces (``PS_BCSFB_V3``,
    ``CL_EFFLUX_BBB_SAT``, ``V1_RHESUS``, ``CL_EFFLUX_CSF_RHESUS_V3``); None for a value without a known domain.
    """
    if name in _DOMAINS:
        return name, _DOMAINS[name]
    parts = name.split("_")
    for n in range(len(parts) - 1, 0, -1):
        base = "_".join(parts[:n])
        if base in _DOMAINS and all(p == "V3" or p.isalpha() for p in parts[n:]):
            return base, _DOMAINS[base]
    return None


def _rule_text(name: str, dom: tuple) -> str:
    lo, lo_open, hi, hi_open = dom
    if math.isinf(hi):
        return f"{name} {'>' if lo_open else '>='} {lo:g}"
    return f"{lo:g} {'<' if lo_open else '<='} {name} {'<' if hi_open else '<='} {hi:g}"


def _inside(x: float, dom: tuple) -> bool:
    lo, lo_open, hi, hi_open = dom
    return math.isfinite(x) and (x > lo if lo_open else x >= lo) and (x < hi if hi_open else x <= hi)


def _units_of_kind(kind: str) -> str:
    return ", ".join(u for u in _units_of(kind) if u)


def check_drug_values(ps: Any) -> None:
    """Refuse a drug file whose values leave their physical domain, before anything runs.

    Checked: the values every drug needs (:data:`_REQUIRED`; ``K_REL``, ``LIPO_SIEVE``, ``F_FREE_INIT`` for the
    liposomal form, ``KA``, ``F_ORAL`` for the oral route), ``options.form``, each known value's kind of unit
    and range (MW > 0, 0 < FU <= 1, fractions between 0 and 1, volumes > 0, clearances, permeabilities and rates
    >= 0 and finite; a value named ``<NAME>_V3``, ``<NAME>_SAT`` or ``<NAME>_<SPECIES>`` as ``<NAME>``),
    thresholds (concentrations > 0) and variability (CV >= 0).

    Parameters
    ----------
    ps : ParameterSet
        A drug file read (:func:`pkcsf.clinical.parameters.load_parameter_set`), possibly changed with
        ``with_values``.

    Raises
    ------
    ParameterError
        Naming the file, the value, the value given and the allowed range or units.

    Examples
    --------
    >>> from pkcsf.clinical.parameters import load_parameter_set
    >>> check_drug_values(load_parameter_set("methotrexate", "drugs"))
    """
    file = Path(ps.path).name if ps.path else ps.name

    def where(section: str, v: Any) -> str:
        return f"{ps.name}.{v.name}" if v.source == USER else f"{file}: {section}.{v.name}"

    opt = ps.options
    form = opt.get("form", "free")
    check_choice(f"{file}: options.form", form, _FORMS, ParameterError)
    need = dict(_REQUIRED)
    routes = opt.get("routes", ROUTES)
    if isinstance(routes, str) or not isinstance(routes, (list, tuple)):
        raise ParameterError(f"{file}: options.routes", routes, "a list of routes, e.g. [\"lumbar\", \"iv\"]; "
                             "allowed routes: " + ", ".join(ROUTES))
    routes = [normalize_route(r, f"{file}: options.routes") for r in routes]
    for key, (why, names) in _REQUIRED_FOR.items():
        if key == form or key in routes:
            need.update({n: f"needed for {why}" for n in names})
    missing = [k for k in need if k not in ps.values]
    if missing:
        oral = " (or leave oral out of options.routes)" if {"KA", "F_ORAL"} & set(missing) else ""
        raise ParameterError(f"{file}: values", ", ".join(missing) + " missing",
                             "required and missing: " + "; ".join(f"{k} ({need[k]})" for k in missing)
                             + "; every drug file gives " + ", ".join(_REQUIRED),
                             f"add [values.{missing[0]}] with value, unit and source{oral}; see docs/own_drug.md")
    for section, entries in (("values", ps.values), ("thresholds", ps.thresholds),
                             ("variability", ps.variability)):
        for v in entries.values():
            if section == "values":
                found = _domain_of(v.name)
                if found is None:
                    continue
                base, (kind, dom, meaning) = found
                if base != v.name:
                    meaning += f" (the value {v.name} replaces {base} for a model variant or species)"
            elif section == "thresholds":
                kind, dom, meaning = "concentration", _POSITIVE, "a threshold concentration"
            else:
                kind, dom, meaning = "dimensionless", _NONNEGATIVE, "a coefficient of variation (a fraction)"
            unit_kind = UNITS[v.unit][0] if v.unit in UNITS else None
            if unit_kind != kind:
                raise ParameterError(f"{where(section, v)}.unit", v.unit, f"{meaning} needs a {kind.replace('_', ' ')} "
                                     f"unit, not a {str(unit_kind).replace('_', ' ')}; allowed units: {_units_of_kind(kind)}")
            if not _inside(v.value, dom):
                given = v.given if v.unit in ("1", "") else f"{v.given:g} {v.unit}"
                base_unit = BASE.get(kind, v.unit)
                converted = "" if v.unit in ("1", "", base_unit) or UNITS[v.unit][2] else \
                    f" ({given} = {v.value:g}{'' if base_unit == '1' else ' ' + base_unit})"
                raise ParameterError(where(section, v), given, f"{meaning}{converted}; allowed: "
                                     f"{_rule_text(v.name, dom)}")


def check_parameter_domain(name: str, value: float, given: object, kind: str | None, drug_value: bool) -> None:
    """A changed model parameter (:meth:`pkcsf.clinical.cns.Setup.with_parameters`) stays in its physical domain: a
    drug value's own range (0 < FU <= 1, fractions in [0, 1], ...); else volumes > 0, flows and rates >= 0; always
    finite.

    Parameters
    ----------
    name : str
        The model parameter.
    value : float
        Its new value (base units).
    given : object
        The value as the user gave it (named in the error).
    kind : str or None
        Its kind of unit (``"volume"``, ``"flow"``, ...).
    drug_value : bool
        Whether the drug file holds it (then the drug value's own domain applies).

    Raises
    ------
    ParameterError
        A value outside the domain.
    """
    found = _domain_of(name) if drug_value else None     # a physiology name like Q_CSF is not the drug's Q
    if found is not None:
        dom = found[1][1]
        if not _inside(value, dom):
            raise ParameterError(f"parameter {name}", given, f"{found[1][2]}; allowed: {_rule_text(name, dom)}")
        return
    if not math.isfinite(value):
        raise ParameterError(f"parameter {name}", given, "must be finite")
    if kind == "volume" and value <= 0:
        raise ParameterError(f"parameter {name}", given, "a volume must be > 0")
    if kind in ("flow", "rate", "rate_constant") and value < 0:
        raise ParameterError(f"parameter {name}", given, "a flow or rate must be >= 0")
