"""Drug-level API of the CNS/CSF model: what a user picks, in three calls.

::

    import pkcsf.clinical.cns as cns
    d = cns.drug("methotrexate")                       # MW, form, thresholds (mg/L), sources
    s = cns.setup(d, physiology="adult")               # model + typical parameters + route->site map
    s.sites["lumbar"]                                  # 'lumbar' ('lumbar_liposomal' for DepoCyt)
    res = s.simulate(pk.Dose("12 mg", s.sites["lumbar"]), times=np.linspace(0, 48, 97))

A :class:`Setup` holds a :class:`pkcsf.engine.model.Model` (``models/cns_csf*.toml``), one typical value for every
model parameter in base units (mg, h, L, L/h), the route-to-site map, molecular weight, thresholds (mg/L),
the sourced between-subject variability and the compartment groups to read out. Regimens, populations,
read-outs and the CLI build on it. Every number comes from ``parameters/`` with its source;
:meth:`Setup.assumptions` lists those that are assumptions and :meth:`Setup.cite` the references.

Model variants (chosen by the drug's form and ``variant``):

* ``cns_csf``: free drug, linear CSF transport;
* ``cns_csf_saturable``: adds Michaelis-Menten CSF efflux (osimertinib ``variant="saturable"``);
* ``cns_csf_binding``: adds a binding site in contact with the CSF (drugs whose file gives ``K_BIND`` > 0:
  methotrexate's slow CSF phase);
* ``cns_csf_liposomal``: adds encapsulated drug moving with CSF and releasing free drug (liposomal form);
* ``*_az5104``: adds osimertinib's metabolite AZ5104 in plasma (``metabolite=True``).
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

# the drug and physiology halves live in their own modules; their names stay reachable as cns.<name>
from pkcsf.clinical.drug_values import check_parameter_domain
from pkcsf.clinical.drugs import _DEFAULT_UNITS, _DRUG_DEFAULTS, Drug, _drug_from_set, available_drugs, drug
from pkcsf.clinical.parameters import Value, load_parameter_set
from pkcsf.clinical.physiology import (
    _CSF_VOLUMES,
    _FLOWS_BY_AGE,
    _SCALED_BY_AGE,
    _age_fraction,
    _lumbar_volume_for_age,
    _pathology_values,
    median_weight_for_age,
    pathologies,
    physiology,
)
from pkcsf.clinical.routes import ROUTE_ALIASES, ROUTES, normalize_route
from pkcsf.core.errors import DosingError, ParameterError, PkcsfError, check_choice
from pkcsf.core.units import UNITS, concentration_factor, parse_quantity
from pkcsf.engine.dosing import Dose, Regimen
from pkcsf.engine.model import Model, load_model

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    from pkcsf.engine.results import SimulationResult
    from pkcsf.engine.simulate import Problem

__all__ = ["group_concentrations", "Drug", "Setup", "drug", "physiology", "setup", "available_drugs", "OUTPUT_GROUPS", "ROUTES",
           "CNS_MODELS", "DEFAULT_CNS_MODEL", "EXTRA_GROUPS"]

#: CNS model versions: v2 = two-pool spinal canal (models/cns_csf*.toml); v3 = segmented spinal canal with
#: dispersion falling towards the lumbar end (models/cns_csf_v3*.toml, parameters/physiology/spinal_canal.toml)
CNS_MODELS = {"v2": "cns_csf", "v3": "cns_csf_v3"}
DEFAULT_CNS_MODEL = "v2"

#: compartment groups read out by default (free drug); "CSF" alone is ambiguous, so each space is named
OUTPUT_GROUPS = {
    "plasma": ["plasma"],
    "ventricular": ["lv", "tfv"],
    "cisternal": ["cm"],
    "cranial_sas": ["sas_cranial"],
    "spinal": ["spinal_ct"],
    "lumbar": ["spinal_lumbar"],
    "brain_ecf": ["brain_ecf"],
}
#: read-outs available on request (``groups=["brain"]``, validation sites) but not read out by default:
#: ``brain`` is whole-brain drug (deep brain ECF + periventricular and subpial tissue shells, total amount over
#: total volume), what tissue-homogenate studies measure (Yen 1978 primate whole-brain 3H-methotrexate); the
#: ``brain_ecf`` group alone is the deep ECF, which CSF drug reaches only through plasma
EXTRA_GROUPS = {
    "brain": ["brain_ecf", "tis_vent_1", "tis_vent_2", "tis_vent_3", "tis_pia_1", "tis_pia_2", "tis_pia_3"],
}
_CSF = ["lv", "tfv", "cm", "sas_cranial", "spinal_ct", "spinal_lumbar"]
# drug barrier clearances (L/h or mg/h, whole CNS) scaled with CNS size for a species built from the human set
_BARRIER_CLEARANCES = ["PS_BCSFB", "CL_EFFLUX_CSF", "PS_BBB", "CL_EFFLUX_BBB", "VMAX_EFFLUX_CSF", "VMAX_EFFLUX_BBB"]

# re-exported from pkcsf.clinical.drugs and pkcsf.clinical.physiology (cns.X keeps working for each)
_REEXPORTED = (Drug, drug, available_drugs, _drug_from_set, _DRUG_DEFAULTS, _DEFAULT_UNITS, physiology, pathologies,
               median_weight_for_age, _age_fraction, _lumbar_volume_for_age, _pathology_values, _CSF_VOLUMES,
               _SCALED_BY_AGE, _FLOWS_BY_AGE)

_physiology = physiology


@dataclass(frozen=True)
class Setup:
    """Everything needed to simulate one drug in one physiology.

    Attributes
    ----------
    drug : Drug
        The drug.
    model : Model
        The CNS model compiled for it.
    parameters : dict
        Typical value of every model parameter, base units (mg, h, L, L/h, 1/h, mg/L).
    sites : dict
        Route name -> model site name (e.g. ``"lumbar" -> "lumbar_liposomal"``).
    mw : float
        g/mol.
    thresholds : dict
        name -> mg/L.
    variability : dict
        parameter -> coefficient of variation (only where a source gives it).
    outputs : dict
        group -> compartment names (plasma, ventricular, cisternal, cranial_sas, spinal, lumbar, brain_ecf,
        and the ``*_liposomal`` / ``metabolite`` groups where present): read out by default.
    variant : str
        CSF efflux description (``"linear"`` or ``"saturable"``).
    cns_model : str
        CNS model version (:data:`CNS_MODELS`).
    sets : tuple of ParameterSet
        The parameter files behind the values (physiology, pathologies, drug).
    notes : tuple of str
        Substitutions made (e.g. ``<NAME>_V3`` values of the v3 model).
    extra_outputs : dict
        Further named read-outs available on request but not read out by default (:data:`EXTRA_GROUPS`:
        ``brain``, whole-brain drug).
    species : str
        Species of the physiology (``"human"``, ``"rhesus"``).
    """

    drug: Drug
    model: Model
    parameters: dict
    sites: dict
    mw: float
    thresholds: dict
    variability: dict
    outputs: dict
    variant: str = "linear"
    cns_model: str = "v2"
    sets: tuple = field(default=(), repr=False)
    notes: tuple = ()
    extra_outputs: dict = field(default_factory=dict)
    species: str = "human"

    def __repr__(self) -> str:
        return (f"Setup(drug={self.drug.name!r}, model={self.model.name!r}, variant={self.variant!r}, "
                f"routes={list(self.sites)}, {len(self.parameters)} parameters)")

    def with_parameters(self, **changes: float | str) -> Setup:
        """A copy with some model parameters changed.

        Parameters
        ----------
        **changes
            Model parameter -> a number in base units (L/h, L, 1/h ...) or a quantity with any unit of the
            parameter's kind (``CL="0.20 L/d"``, ``Q_CSF="0.35 mL/min"``).

        Returns
        -------
        Setup

        Raises
        ------
        ParameterError
            An unknown parameter, or a value that is neither a number nor a quantity of the right kind.
        """
        unknown = set(changes) - set(self.parameters)
        if unknown:
            check_choice("parameter", sorted(unknown)[0], sorted(self.parameters), ParameterError)
        units = {q.name: q.unit for q in self.model.parameters}
        p = dict(self.parameters)
        for k, v in changes.items():
            unit = units.get(k, "")
            kind = UNITS[unit][0] if unit in UNITS else None
            if isinstance(v, str) and kind is not None:
                try:
                    p[k] = parse_quantity(v, kind, field=f"parameter {k}", mw=self.mw, default_unit=unit)
                except PkcsfError as exc:
                    raise ParameterError(f"parameter {k}", v, exc.allowed, exc.fix) from None
            elif isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ParameterError(f"parameter {k}", v, f"must be a number in {unit or 'base units'} or a "
                                     "quantity with its unit")
            else:
                p[k] = float(v)
            check_parameter_domain(k, p[k], v, kind, k in self.drug.parameters.values)
        return replace(self, parameters=p)

    def assumptions(self) -> list[Value]:
        """Values of this setup that are assumptions (with their reasoning in ``note``).

        Returns
        -------
        list of Value
        """
        out = []
        for s in self.sets:
            out += s.assumptions()
        return out

    def cite(self) -> list[str]:
        """Every reference behind the set-up's values (drug, physiology, pathologies), without repeats.

        Returns
        -------
        list of str
        """
        refs = []
        for s in self.sets:
            for r in s.cite():
                if r not in refs:
                    refs.append(r)
        return refs

    def group_mw(self, readout: str) -> float:
        """Molar mass (g/mol) of what a read-out holds: the drug's, or its metabolite's (``MW_AZ5104``) for the
        ``metabolite`` group and its compartments, whose amounts are in parent-mass equivalents.

        Parameters
        ----------
        readout : str
            A compartment group or a compartment name.

        Returns
        -------
        float
            g/mol.
        """
        named = {**self.extra_outputs, **self.outputs}
        parts = named.get(readout, [readout])
        met = set(self.outputs.get("metabolite", ()))
        if parts and met and set(parts) <= met and "MW_AZ5104" in self.drug.parameters.values:
            return float(self.drug.parameters["MW_AZ5104"])
        return float(self.mw)

    def group_factors(self, readouts: Sequence[str], unit: str) -> np.ndarray:
        """Factor per read-out from its model concentration (mg/L of parent-mass equivalents) to ``unit``.

        A molar unit counts molecules (the parent's MW, the same for a metabolite in parent-mass equivalents); a
        mass unit gives each read-out's own mass (a metabolite's: x MW_metabolite / MW).

        Parameters
        ----------
        readouts : sequence of str
            Compartment groups or compartment names.
        unit : str
            Concentration unit.

        Returns
        -------
        ndarray, shape (len(readouts),)
        """
        out = []
        for r in readouts:
            m = self.group_mw(r)
            out.append(concentration_factor(unit, m) * m / float(self.mw))
        return np.array(out, dtype=float)

    def threshold_factors(self, readouts: Sequence[str], unit: str, labels: Sequence[str]) -> np.ndarray:
        """Factor (R, K) from each threshold's value in mg/L (parsed with the drug's MW) to each read-out's ``unit``.

        A threshold given in a molar unit is that many molecules in every read-out; one given in a mass unit is
        that mass of each read-out's own substance (a metabolite's own mass). Labels are the threshold texts
        (``"50 nmol/L"``) or the names of the drug file's thresholds.

        Parameters
        ----------
        readouts : sequence of str
            Compartment groups or compartment names.
        unit : str
            Concentration unit of the read-outs.
        labels : sequence of str
            The thresholds.

        Returns
        -------
        ndarray, shape (len(readouts), len(labels))
        """
        molar = self.group_factors(readouts, unit)
        mass = np.array([concentration_factor(unit, self.group_mw(r)) for r in readouts])
        cols = [molar if self._molar_threshold(lb) else mass for lb in labels]
        return np.stack(cols, axis=1) if cols else np.zeros((len(readouts), 0))

    def _molar_threshold(self, label: object) -> bool:
        """True when a threshold is given in a molar unit (a drug-file name: its unit; a text: its unit)."""
        t = self.drug.parameters.thresholds.get(str(label))
        if t is not None:
            return bool(UNITS.get(t.unit, ("", 0.0, False))[2])
        try:
            one, two = (parse_quantity(label, "concentration", mw=m, default_unit="mg/L") for m in (1.0, 2.0))
        except PkcsfError:
            return False
        return one != two

    def group_weights(self, readouts: Sequence[str]) -> tuple[list, np.ndarray]:
        """The states to save and the 0/1 matrix summing them into read-outs.

        Parameters
        ----------
        readouts : list of str
            Compartment groups (``ventricular``, ``lumbar``, ...) or single compartment names.

        Returns
        -------
        states : list of str
            The compartments to save, in model order.
        W : ndarray, shape (len(states), len(readouts))
            ``W[i, j] = 1`` when state i belongs to read-out j.
        """
        comps = list(self.model.compartment_names)
        named = {**self.extra_outputs, **self.outputs}
        parts = {r: (named[r] if r in named else [r]) for r in readouts}
        states = sorted({c for r in readouts for c in parts[r]}, key=comps.index)
        W = np.zeros((len(states), len(readouts)))
        for j, r in enumerate(readouts):
            for c in parts[r]:
                W[states.index(c), j] = 1.0
        return states, W

    def at_drug_sites(self, regimen: Dose | Regimen | list | dict | pd.DataFrame
                      ) -> Dose | Regimen | list | dict | pd.DataFrame:
        """The regimen with every dose at a route name given at the drug's own site for that route.

        For the liposomal product ``"lumbar"`` is the model site ``"lumbar_liposomal"`` (the particles and the
        free fraction; so is v3's ``"lumbar_high"``); given at the model's plain ``"lumbar"`` site the whole dose
        would be free drug. A route the drug is not given by (``"iv"`` for the liposomal product, ``"lumbar"``
        for osimertinib) and a dose for another drug are refused. Route names may be aliases in any case
        (``"IT"``, ``"icv"``); other model sites and compartments are kept.

        Parameters
        ----------
        regimen : Dose, Regimen, list, dict or DataFrame
            Doses at routes or model sites, in any form :func:`pkcsf.engine.simulate.simulate` takes (a list,
            a ``{subject: regimen}`` dict, a NONMEM table with a ``CMT`` column).

        Returns
        -------
        Dose, Regimen, list, dict or DataFrame
            The same doses, in the same form; those at a route given at the drug's site for it.

        Raises
        ------
        DosingError
            A route the drug is not given by, or a dose for another drug.
        """
        if isinstance(regimen, Dose):
            return self.dose_at_drug_site(regimen)
        if isinstance(regimen, Regimen):
            return regimen.with_sites({d.site: self.dose_at_drug_site(d).site for d in regimen.doses})
        if isinstance(regimen, (list, tuple)):
            return type(regimen)(self.at_drug_sites(r) for r in regimen)
        if isinstance(regimen, dict):
            return {k: self.at_drug_sites(r) for k, r in regimen.items()}
        if isinstance(regimen, pd.DataFrame):
            cmt = next((c for c in regimen.columns if str(c).upper() == "CMT"), None)
            evid = next((c for c in regimen.columns if str(c).upper() == "EVID"), None)
            if cmt is None:
                return regimen
            dosing = ~regimen[evid].isin([0, 2]) if evid is not None else np.ones(len(regimen), bool)
            out = regimen.copy()
            out[cmt] = [self.drug_site(c) if dose and isinstance(c, str) else c
                        for c, dose in zip(regimen[cmt], dosing)]
            return out
        return regimen

    def drug_site(self, site: str, *, field: str = "dose.site", error: type[PkcsfError] = DosingError,
                  strict: bool = False) -> str:
        """The model site a dose at ``site`` is given at: a route (an alias, any case) at the drug's own site for
        it (:attr:`sites`; a route the drug is not given by is refused); a model site with a liposomal twin
        (v3's ``"lumbar_high"``) at the twin for the liposomal product; any other name as it is (``strict``:
        only a model site or compartment, else refused listing the routes).

        Parameters
        ----------
        site : str
            A route, a model site or a compartment.
        field : str, optional
            Named in errors.
        error : type, optional
            The error raised (the caller's kind: DosingError, ScenarioError).
        strict : bool, optional
            Refuse a name that is neither a route nor a model site or compartment.

        Returns
        -------
        str
            The model site (or compartment).
        """
        key = site.strip().lower()
        if key in ROUTES or key in ROUTE_ALIASES:
            route = normalize_route(key, field=field)
            if route not in self.sites:
                raise error(field, site, f"{self.drug.name} can be given by: " + ", ".join(sorted(self.sites)))
            return self.sites[route]
        twin = f"{site}_liposomal"
        if self.drug.form == "liposomal" and twin in self.model.site_names:
            return twin
        if strict and site not in self.model.site_names and site not in self.model.compartment_names:
            normalize_route(site, field=field)          # raises listing the routes
        return site

    def dose_at_drug_site(self, dose: Dose, *, fields: tuple[str, str] = ("dose.drug", "dose.site"),
                          error: type[PkcsfError] = DosingError, strict: bool = False) -> Dose:
        """``dose`` at its model site (:meth:`drug_site`); a dose naming another drug is refused.

        Parameters
        ----------
        dose : Dose
            A dose at a route, a model site or a compartment.
        fields : tuple of str, optional
            Named in errors: the dose's drug, its site.
        error : type, optional
            The error raised.
        strict : bool, optional
            As for :meth:`drug_site`.

        Returns
        -------
        Dose
            The dose at its model site.
        """
        if dose.drug is not None and dose.drug != self.drug.name:
            raise error(fields[0], dose.drug, f"a dose of {self.drug.name}, the drug simulated here (simulate "
                        f"{dose.drug} with its own set-up, or several drugs with pkcsf.simulate / a Scenario)")
        return replace(dose, site=self.drug_site(dose.site, field=fields[1], error=error, strict=strict))

    def simulate(self, regimen: Dose | Regimen, times: ArrayLike, *, position: str | None = None,
                 **kwargs: object) -> SimulationResult:
        """Shortcut for :func:`pkcsf.engine.simulate` with this setup's model and typical parameters.

        Parameters
        ----------
        regimen : Dose or Regimen
            Doses at this setup's routes (``"lumbar"``, ``"ommaya"``...: given at the drug's own site for the route,
            :attr:`sites`, e.g. the liposomal product's ``"lumbar_liposomal"``) or at model sites.
        times : array_like
            Output times (h).
        position : str or Position, optional
            When the patient is upright after each lumbar dose (``"upright 1-24 h"``;
            :mod:`pkcsf.clinical.position`); default lying, the calibrated state.
        **kwargs
            Other options of :func:`pkcsf.engine.simulate.simulate` (with a position: ``solver``, ``max_steps``).

        Returns
        -------
        SimulationResult
            The result.
        """
        regimen = self.at_drug_sites(regimen)
        if position is not None:
            from pkcsf.clinical.position import parse_position, simulate_position

            if parse_position(position).upright:
                return simulate_position(self, regimen, times, position, **kwargs)
        from pkcsf.engine.simulate import simulate

        return simulate(self.model, regimen, self.parameters, times=times, **kwargs)


def setup(drug_or_name: str | Drug, physiology: str = "adult", variant: str = "linear", pathologies: dict | None = None, *,
          age: float | None = None, metabolite: bool = False, model: str | None = None) -> Setup:
    """Build the :class:`Setup` for a drug (name or :class:`Drug`).

    Parameters
    ----------
    drug_or_name : str or Drug
        A drug name (:func:`available_drugs`) or a :class:`Drug`, e.g. one changed with :meth:`Drug.with_values`.
    physiology : str
        Physiology set (``"adult"``).
    variant : {"linear", "saturable"}
        CSF efflux description; "saturable" only for drugs that declare it (osimertinib).
    pathologies : dict, optional
        Named scenarios (``{"vp_shunt": True}``) and/or values (``{"Q_SHUNT": "0.3 mL/min", "BLOCK_SPINAL": 0}``).
    age : float, optional
        Years; scales CSF volumes and flows (pediatric.toml).
    metabolite : bool
        Osimertinib only: add AZ5104 in plasma.
    model : {"v2", "v3"}, optional
        CNS model version (default :data:`DEFAULT_CNS_MODEL`). ``"v3"`` resolves the spinal canal into six
        segments (compartments ``spinal_c1c4`` ... ``spinal_lumbar``, each readable by name; group ``spinal`` is
        C1-L2, ``lumbar`` the L3-S2 sac) and uses the values of ``parameters/physiology/spinal_canal.toml``;
        a value named ``<NAME>_V3`` (in that file or the drug file) replaces ``<NAME>`` for v3 only.

    Returns
    -------
    Setup

    Raises
    ------
    ParameterError
        An unknown drug, physiology, variant or model version, or ``metabolite`` for a drug without one.

    Examples
    --------
    >>> st = setup("methotrexate")
    >>> st.mw, sorted(st.sites)
    (454.44, ['intracisternal', 'intraventricular', 'iv', 'lumbar', 'ommaya'])
    """
    d = drug(drug_or_name)
    phys = _physiology(physiology, age=age, pathologies=pathologies)
    check_choice("variant", variant, d.variants, ParameterError)
    if d.form == "liposomal":
        model_name = "cns_csf_liposomal"
    elif variant == "saturable":
        model_name = "cns_csf_saturable"
    else:
        model_name = "cns_csf"
    if metabolite:
        if "FMET_AZ5104" not in d.parameters.values:
            raise ParameterError("metabolite", True, f"{d.name} has no metabolite parameters")
        model_name += "_az5104"
    cns_model = DEFAULT_CNS_MODEL if model is None else model
    check_choice("model", cns_model, sorted(CNS_MODELS), ParameterError)
    model_name = model_name.replace("cns_csf", CNS_MODELS[cns_model], 1)
    dv = d.parameters.as_dict()
    notes = []
    if dv.get("K_BIND", 0.0) > 0:
        # a binding site in contact with the CSF (methotrexate's slow CSF phase; models/cns_csf_binding.toml):
        # free drug, linear variant, model v2 only (v3 was calibrated without it); elsewhere it is said, not dropped
        if model_name == "cns_csf":
            model_name = "cns_csf_binding"
        else:
            notes.append(f"K_BIND = {dv['K_BIND']:g} not used: the CSF-side binding site exists in cns_csf_binding "
                         f"only (CNS model v2, free drug, linear), not in {model_name}")
    model = load_model(model_name)
    vals = dict(phys["values"])
    v3_sets = ()
    if cns_model == "v3":
        # segmented spinal canal; its values, and <NAME>_V3 values (calibrated with the v3 model) of the
        # physiology/drug files, replace the v2 ones before species scaling
        spinal = load_parameter_set("spinal_canal", "physiology")
        v3_sets = (spinal,)
        sv = spinal.as_dict()
        for k, v in sv.items():
            vals.setdefault(k, v)
        for k in model.parameter_names:
            if k + "_V3" in dv:
                vals[k] = dv[k + "_V3"]
                notes.append(f"{k} = {d.name}.{k}_V3")
            elif k + "_V3" in sv:
                vals[k] = sv[k + "_V3"]
                notes.append(f"{k} = spinal_canal.{k}_V3")
    for k in model.parameter_names:
        if k in vals:
            continue
        if k in dv:
            vals[k] = dv[k]
        elif k in _DRUG_DEFAULTS:
            vals[k] = _DRUG_DEFAULTS[k][0]
            notes.append(f"{k} = {_DRUG_DEFAULTS[k][0]}: {_DRUG_DEFAULTS[k][1]}")
    # a species scaled from another set: drug barrier clearances (written for humans) scale with brain size
    # (capillary and choroid-plexus surface taken proportional to CNS volume) unless the drug file gives the
    # species' own value (<NAME>_<SPECIES>, applied below)
    if phys["drug_scale"] != 1.0:
        for k in _BARRIER_CLEARANCES:
            if k in vals and k not in phys["values"]:
                vals[k] *= phys["drug_scale"]
        notes.append(f"barrier clearances {', '.join(_BARRIER_CLEARANCES)} x {phys['drug_scale']:.4g} (CNS size of "
                     f"{phys['species']} vs human)")
    # variant- and species-specific drug values: <NAME>_SAT (saturable variant), <NAME>_<SPECIES> (non-human)
    suffixes = (["_SAT"] if variant == "saturable" else []) + \
        ([f"_{phys['species'].upper()}"] if phys["species"] != "human" else []) + \
        ([f"_{phys['species'].upper()}_V3"] if phys["species"] != "human" and cns_model == "v3" else [])
    for sfx in suffixes:
        for k in model.parameter_names:
            if k + sfx in dv:
                vals[k] = dv[k + sfx]
                notes.append(f"{k} = {d.name}.{k}{sfx}")
    if metabolite:
        # Brown 2017 CL is the total parent clearance; the model splits it (see models/cns_csf_az5104.toml)
        vals["CL"] = dv["CL"] * (1.0 - dv["FMET_AZ5104"])
    if vals.get("F_BCSFB", 1.0) != 1.0 and "PS_BCSFB" in vals:
        # blood-CSF barrier state (pathologies.toml F_BCSFB): a factor on the calibrated intact-barrier value
        vals["PS_BCSFB"] *= vals["F_BCSFB"]
        notes.append(f"PS_BCSFB x {vals['F_BCSFB']:g} (pathology F_BCSFB: blood-CSF barrier state)")
    missing = [k for k in model.parameter_names if k not in vals]
    if missing:
        raise ParameterError(f"{d.name} parameters", missing,
                             f"model {model_name} needs these; add them to parameters/drugs/{d.name}.toml")
    vals = {k: float(vals[k]) for k in model.parameter_names}
    sites = {}
    for r in d.routes:
        s = r + "_liposomal" if d.form == "liposomal" and r in ("lumbar", "ommaya", "intracisternal") else r
        sites[r] = s
        if r == "ommaya":
            sites["intraventricular"] = s
    names = set(model.compartment_names)
    groups = dict(OUTPUT_GROUPS)
    if cns_model == "v3":
        groups["spinal"] = [c.name for c in model.compartments if c.group == "spinal"]
    outputs = {g: [c for c in cs if c in names] for g, cs in groups.items()}
    if d.form == "liposomal":
        for g, cs in groups.items():
            lc = [("lipo_" + c) for c in cs if ("lipo_" + c) in names]
            if lc:
                outputs[g + "_liposomal"] = lc
    if metabolite:
        outputs["metabolite"] = ["plasma_az5104"]
    extra = {g: [c for c in cs if c in names] for g, cs in EXTRA_GROUPS.items()}
    var = {k: v.value for k, v in d.parameters.variability.items()}
    return Setup(d, model, vals, sites, d.mw, dict(d.thresholds), var, outputs, variant, cns_model,
                 tuple(phys["sets"]) + v3_sets + (d.parameters,), tuple(notes),
                 {g: cs for g, cs in extra.items() if cs}, phys["species"])


def group_concentrations(prob: Problem, out: np.ndarray, W: np.ndarray, factor: float | np.ndarray,
                         n_states: int | None = None) -> np.ndarray:
    """Volume-weighted read-out concentrations (n, T, R) from solved amounts: total amount over total volume.

    Parameters
    ----------
    prob : Problem
        The engine problem that produced ``out`` (for the subjects' compartment volumes).
    out : ndarray, shape (n, T, S)
        Saved amounts (mg); the first ``n_states`` columns are the states of ``W``.
    W : ndarray, shape (n_states, R)
        From :meth:`Setup.group_weights`.
    factor : float or ndarray, shape (R,)
        mg/L -> the result's unit (per read-out: :meth:`Setup.group_factors`).
    n_states : int, optional
        Saved states that are compartments (default: all columns of ``out``).

    Returns
    -------
    ndarray, shape (n, T, R)
    """
    S = out.shape[2] if n_states is None else n_states
    V = prob.compiled.volumes(prob.P)[:, prob.save[:S]]
    return (out[:, :, :S] @ W) * (factor / (V @ W)[:, None, :])

