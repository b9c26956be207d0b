"""Drugs and formulations: :class:`Drug` and :func:`drug` load ``parameters/drugs/<name>.toml`` (molecular
weight, form, routes, thresholds in mg/L, the parameter set with sources); :func:`available_drugs` lists them.

The drug half of :mod:`pkcsf.clinical.cns` (which re-exports these names): :func:`pkcsf.clinical.cns.setup`
combines a drug with a physiology (:mod:`pkcsf.clinical.physiology`) into a model set-up.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path

from pkcsf.clinical.parameters import ParameterSet, Value, available_parameter_sets, load_parameter_set
from pkcsf.clinical.routes import ROUTES, normalize_route
from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.provenance import USER
from pkcsf.core.units import BASE, UNITS, to_base

__all__ = ["Drug", "drug", "available_drugs", "check_drug_values"]
# parameters a drug file may omit (not used by its routes); value and reason
_DRUG_DEFAULTS = {"KA": (1.0, "no oral route: absorption rate unused"),
                  "F_ORAL": (1.0, "no oral route: bioavailability unused"),
                  "KEL_CSF": (0.0, "no CSF metabolism"),
                  "CL_EFFLUX_BBB": (0.0, "no active efflux at the blood-brain barrier"),
                  "K_BIND": (0.0, "no CSF-side binding site"),
                  "K_UNBIND": (1.0, "no CSF-side binding site (release rate unused)"),
                  "Q3": (0.0, "two-compartment systemic model: no deep compartment"),
                  "V3": (1.0, "two-compartment systemic model: deep volume unused")}
_DEFAULT_UNITS = {"KA": "1/h", "F_ORAL": "1", "KEL_CSF": "1/h", "CL_EFFLUX_BBB": "L/h", "K_BIND": "1/h", "K_UNBIND": "1/h",
                  "Q3": "L/h", "V3": "L"}

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
    return ", ".join(u for u, (k, _, _) in UNITS.items() if k == kind and u)


def check_drug_values(ps: ParameterSet) -> None:
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
    >>> check_drug_values(load_parameter_set("methotrexate", "drugs"))
    """
    file = Path(ps.path).name if ps.path else ps.name

    def where(section: str, v: Value) -> str:
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


def available_drugs() -> list[str]:
    """Names of the drug files on the search path.

    Returns
    -------
    list of str
        Sorted drug names.

    Examples
    --------
    >>> "methotrexate" in available_drugs()
    True
    """
    return sorted(available_parameter_sets("drugs"))


@dataclass(frozen=True)
class Drug:
    """A drug or formulation: name, MW (g/mol), form, thresholds (mg/L) and its parameter set.

    Build with :func:`drug`; ``repr`` is one line.

    Parameters
    ----------
    name : str
        Drug (or formulation) name.
    mw : float
        Molecular weight (g/mol).
    form : str
        ``"free"`` or ``"liposomal"``.
    routes, variants : tuple of str
        Routes it can be given by; CSF efflux variants offered.
    thresholds : dict
        Name -> mg/L.
    parameters : ParameterSet
        The drug file with sources.
    """

    name: str
    mw: float
    form: str
    routes: tuple[str, ...]
    variants: tuple[str, ...]
    thresholds: dict
    parameters: ParameterSet = field(repr=False)

    def __repr__(self) -> str:
        return (f"Drug({self.name!r}, mw={self.mw:g} g/mol, form={self.form!r}, routes={list(self.routes)}, "
                f"thresholds={list(self.thresholds)})")

    @property
    def sources(self) -> list[str]:
        """The references of the drug's values (for citation)."""
        return self.parameters.cite()

    def with_values(self, **changes: float | str) -> Drug:
        """A copy of this drug with some values changed, each a quantity with its unit or a base-unit number.

        Example::

            d = pk.drug("trastuzumab").with_values(CL="0.20 L/d", PS_BCSFB="0.001 mL/min")
            pk.simulate(d, {"lumbar": "150 mg lumbar weekly x 4"}, subjects=200, days=28)

        Values the model defaults when a file omits them (``KEL_CSF``, ``CL_EFFLUX_BBB``, ``KA``, ``F_ORAL``)
        may be set too. Changed values have ``source = "user"`` and are listed by ``res.assumptions()``.

        Parameters
        ----------
        **changes
            Value name -> a quantity with any unit of the value's kind (``"0.20 L/d"``, ``"0.0083 L/h"``,
            ``"0.14 mL/min"``) or a number in the base unit.

        Returns
        -------
        Drug

        Raises
        ------
        ParameterError
            A wrong kind of unit (``CL="3 L"``) or an unknown name, naming the value and the allowed units or
            names.
        """
        ps = self.parameters
        extra = {k: Value(k, _DRUG_DEFAULTS[k][0], _DEFAULT_UNITS[k], _DRUG_DEFAULTS[k][0], "assumption",
                          note=f"pkcsf default: {_DRUG_DEFAULTS[k][1]}")
                 for k in changes if k not in ps.values and k in _DRUG_DEFAULTS}
        if extra:
            ps = replace(ps, values={**ps.values, **extra})
        return _drug_from_set(ps.with_values(**changes))

    def threshold(self, name: str | None = None) -> float:
        """A threshold in mg/L (the first one when ``name`` is None).

        Parameters
        ----------
        name : str, optional
            Threshold name (see ``drug.thresholds``).

        Returns
        -------
        float
            mg/L.

        Examples
        --------
        >>> drug("methotrexate").threshold() > 0
        True
        """
        if not self.thresholds:
            raise ParameterError(f"{self.name}.thresholds", None, "this drug has no sourced threshold")
        if name is None:
            return next(iter(self.thresholds.values()))
        check_choice(f"{self.name} threshold", name, sorted(self.thresholds), ParameterError)
        return self.thresholds[name]


def drug(name: str | Drug) -> Drug:
    """Load ``parameters/drugs/<name>.toml`` as a :class:`Drug` (from any folder on the search path:
    :func:`pkcsf.add_search_path`, ``PKCSF_PATH``; see docs/own_drug.md).

    Parameters
    ----------
    name : str or Drug
        A drug name (see :func:`available_drugs`) or a :class:`Drug` (returned as is).

    Returns
    -------
    Drug
        Name, molecular weight, form, routes, thresholds and the parameter set with sources.

    Examples
    --------
    >>> drug("methotrexate").routes
    ('lumbar', 'ommaya', 'intracisternal', 'iv')
    """
    if isinstance(name, Drug):
        return name
    return _drug_from_set(load_parameter_set(str(name), "drugs"))


def _drug_from_set(ps: ParameterSet) -> Drug:
    check_drug_values(ps)
    mw = ps["MW"]
    # a value written in a molar unit (KM_EFFLUX in umol/L) is read as written; it becomes mg/L with MW here
    molar = {k: replace(v, value=to_base(v.given, v.unit, UNITS[v.unit][0], mw=mw))
             for k, v in ps.values.items() if v.unit in UNITS and UNITS[v.unit][2]}
    if molar:
        ps = replace(ps, values={**ps.values, **molar})
    thr = {}
    for k, v in ps.thresholds.items():
        thr[k] = to_base(v.given, v.unit, "concentration", mw=mw) if UNITS[v.unit][0] == "concentration" else v.value
    opt = ps.options
    return Drug(ps.name, mw, opt.get("form", "free"), tuple(dict.fromkeys(normalize_route(r, f"{ps.name}.routes") for r in opt.get("routes", ROUTES))),
                tuple(opt.get("variants", ("linear",))), thr, ps)
