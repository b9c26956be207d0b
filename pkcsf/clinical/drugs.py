"""Drugs and formulations: :class:`Drug` and :func:`drug` load ``parameters/drugs/<name>.toml`` (molecular
weight, form, routes, thresholds in mg/L, the parameter set with sources); :func:`available_drugs` lists them.

The drug half of :mod:`pkcsf.clinical.cns` (which re-exports these names): :func:`pkcsf.clinical.cns.setup`
combines a drug with a physiology (:mod:`pkcsf.clinical.physiology`) into a model set-up.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from pkcsf.clinical.drug_values import _domain_of, check_drug_values  # noqa: F401  (re-exported)
from pkcsf.clinical.parameters import ParameterSet, Value, available_parameter_sets, load_parameter_set
from pkcsf.clinical.routes import ROUTES, normalize_route
from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.units import UNITS, to_base

__all__ = ["Drug", "drug", "available_drugs", "check_drug_values"]
# parameters a drug file may omit (not used by its routes); value and reason
_DRUG_DEFAULTS = {"KA": (1.0, "no oral route: absorption rate unused"),
                  "F_ORAL": (1.0, "no oral route: bioavailability unused"),
                  "KEL_CSF": (0.0, "no CSF metabolism"),
                  "CL_EFFLUX_BBB": (0.0, "no active efflux at the blood-brain barrier"),
                  "K_BIND": (0.0, "no CSF-side binding site"),
                  "K_UNBIND": (1.0, "no CSF-side binding site (release rate unused)"),
                  "Q3": (0.0, "two-compartment systemic model: no deep compartment"),
                  "V3": (1.0, "two-compartment systemic model: deep volume unused"),
                  "LIPO_MOBILITY": (1.0, "liposomal particles move with the CSF like solute")}
_DEFAULT_UNITS = {"KA": "1/h", "F_ORAL": "1", "KEL_CSF": "1/h", "CL_EFFLUX_BBB": "L/h", "K_BIND": "1/h", "K_UNBIND": "1/h",
                  "Q3": "L/h", "V3": "L", "LIPO_MOBILITY": "1"}

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
