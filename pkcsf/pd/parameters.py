"""Pharmacodynamic parameter files: ``parameters/pd/*.toml``.

The format is that of ``parameters/README.md`` (``[meta]``, ``[references]``,
``[values.NAME]`` with ``value``, ``unit``, ``source``, ``where``, ``note``;
``[variability.NAME]`` with ``cv`` or ``omega2``), with the units a
pharmacodynamic model needs (cell counts, slopes per concentration). The same
provenance rules are enforced: every value has a source; ``source =
"assumption"`` needs its reasoning in ``note``; ``source = "calibrated"`` needs
``calibration`` naming the record (a path under ``parameters/``); a source is a
key of ``[references]``, a DOI, a PMID, a PMC id, a URL or ``label:...``.

Values are converted to the PD base units: time h, concentration mg/L, cell
counts 1e9/L, slopes L/mg, volumes L, flows L/h, rates 1/h, amounts mg.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.paths import builtin_dir, read_toml
from pkcsf.core.provenance import Value, is_citation

if TYPE_CHECKING:
    from pkcsf.pd.friberg import FribergParameters

__all__ = ["PDValue", "PDParameterSet", "load_pd_parameters", "available_pd", "PD_UNITS"]

#: unit -> (kind, factor to the base unit). Concentration units in molar form need the file's MW.
PD_UNITS = {
    "1": ("dimensionless", 1.0), "%": ("dimensionless", 0.01),
    "1e9/L": ("cell count", 1.0), "1e6/mL": ("cell count", 1.0), "10^9/L": ("cell count", 1.0),
    "h": ("time", 1.0), "min": ("time", 1 / 60), "d": ("time", 24.0), "day": ("time", 24.0),
    "week": ("time", 168.0),
    "mg/L": ("concentration", 1.0), "ug/mL": ("concentration", 1.0), "ng/mL": ("concentration", 1e-3),
    "umol/L": ("molar concentration", 1e-3), "nmol/L": ("molar concentration", 1e-6),
    "nM": ("molar concentration", 1e-6), "pmol/L": ("molar concentration", 1e-9),
    "L/mg": ("slope", 1.0), "L/umol": ("molar slope", 1e3),
    "L": ("volume", 1.0), "mL": ("volume", 1e-3),
    "L/h": ("flow", 1.0), "mL/h": ("flow", 1e-3), "mL/min": ("flow", 0.06), "L/d": ("flow", 1 / 24),
    "1/h": ("rate", 1.0), "1/d": ("rate", 1 / 24), "1/day": ("rate", 1 / 24), "1/week": ("rate", 1 / 168),
    "mg": ("amount", 1.0), "g/mol": ("molar mass", 1.0), "kg": ("mass", 1.0), "m2": ("area", 1.0),
    "nmol/mmol": ("marker ratio", 1.0),
    "nmol/L/h": ("molar concentration", 1e-6),          # a zero-order rate: stored as mg/L/h
}



#: A PD value is a sourced :class:`~pkcsf.core.provenance.Value` (the same type as the clinical files').
PDValue = Value


@dataclass
class PDParameterSet:
    """A parsed ``parameters/pd/<name>.toml``: sourced values, variabilities (CVs), references.

    Parameters
    ----------
    name : str
        Set name.
    path : Path
        The file read.
    meta, references : dict
        The file's tables.
    values, variability : dict of str to PDValue
        Sourced values and CVs.
    raw : dict, optional
        The parsed file.
    """

    name: str
    path: Path
    meta: dict
    references: dict
    values: dict
    variability: dict = field(default_factory=dict)     # name -> PDValue (value = CV, fraction)
    raw: dict = field(default_factory=dict)

    def __getitem__(self, key: str) -> float:
        if key not in self.values:
            check_choice(f"{self.name} parameter", key, sorted(self.values), ParameterError)
        return self.values[key].value

    def __contains__(self, key) -> bool:
        return key in self.values

    def cv(self, key: str) -> float:
        """Between-subject variability of a value.

        Parameters
        ----------
        key : str
            Name of the value, e.g. ``"MTT"``.

        Returns
        -------
        float
            CV as a fraction (log-normal); 0 when the file gives none.
        """
        v = self.variability.get(key)
        return 0.0 if v is None else v.value

    def assumptions(self) -> list[PDValue]:
        """The values and variabilities whose source is ``assumption``.

        Returns
        -------
        list of PDValue
        """
        return [v for v in list(self.values.values()) + list(self.variability.values()) if v.is_assumption]

    def cite(self) -> list[str]:
        """Every reference of the file (values, calibration data, observations) and direct DOI/PMID sources.

        Returns
        -------
        list of str
        """
        used = {v.source for v in list(self.values.values()) + list(self.variability.values())}
        obs = [o.get("source", "") for o in self.raw.get("observations", {}).values()]
        return list(self.references.values()) + \
            sorted(s for s in used if s not in self.references and s not in ("assumption", "calibrated", "derived")) + \
            [o for o in dict.fromkeys(obs) if o]

    def friberg(self, **kwargs: object) -> FribergParameters:
        """The typical Friberg myelosuppression parameters of this file.

        Parameters
        ----------
        **kwargs
            Passed to :meth:`FribergParameters.from_parameter_set <pkcsf.pd.friberg.FribergParameters.from_parameter_set>`
            (``supplemented``, ``model``, overrides such as ``circ0=4.0``).

        Returns
        -------
        FribergParameters
        """
        from pkcsf.pd.friberg import FribergParameters

        return FribergParameters.from_parameter_set(self, **kwargs)

    def __repr__(self) -> str:
        return f"PDParameterSet({self.name!r}, {len(self.values)} values, {len(self.variability)} variabilities)"


def available_pd() -> list[str]:
    """Names of the PD parameter files (``parameters/pd/*.toml``, calibration records excluded).

    Returns
    -------
    list of str
        Sorted names.

    Examples
    --------
    >>> "pemetrexed" in available_pd()
    True
    """
    d = builtin_dir("parameters") / "pd"
    return sorted(p.stem for p in d.glob("*.toml") if not p.stem.endswith("_calibration"))


def _check_source(where: str, spec: dict, refs: dict, path: Path) -> str:
    src = spec.get("source")
    if not isinstance(src, str) or not src.strip():
        raise ParameterError(f"{path.name}:{where}.source", src, "every value needs a source (a reference key, DOI, "
                                                                 "PMID, URL, 'assumption' or 'calibrated')")
    src = src.strip()
    if src == "assumption":
        if not str(spec.get("note", "")).strip():
            raise ParameterError(f"{path.name}:{where}.note", spec.get("note"), "an assumption needs its reasoning")
    elif src == "calibrated":
        cal = spec.get("calibration")
        if not cal or not (builtin_dir("parameters") / cal).exists():
            raise ParameterError(f"{path.name}:{where}.calibration", cal,
                                 "a calibrated value needs 'calibration' naming an existing record under parameters/")
    elif src == "derived":
        if not str(spec.get("note", "")).strip():
            raise ParameterError(f"{path.name}:{where}.note", spec.get("note"), "a derived value shows its arithmetic")
    elif src not in refs and not is_citation(src):
        raise ParameterError(f"{path.name}:{where}.source", src,
                             "must be a key of [references] (" + ", ".join(refs) + "), a DOI, PMID, PMC id, URL, "
                             "'assumption', 'calibrated' or 'derived'")
    return src


def load_pd_parameters(name_or_path: str | Path) -> PDParameterSet:
    """Read ``parameters/pd/<name>.toml`` (or a path), check every source, convert units.

    Parameters
    ----------
    name_or_path : str or Path
        A name (see :func:`available_pd`) or a ``.toml`` file.

    Returns
    -------
    PDParameterSet
        The sourced values.
    """
    p = Path(str(name_or_path))
    if p.suffix != ".toml":
        names = available_pd()
        if str(name_or_path) not in names:
            check_choice("pd parameter set", str(name_or_path), names, ParameterError)
        p = builtin_dir("parameters") / "pd" / f"{name_or_path}.toml"
    raw = read_toml(p, ParameterError, "PD parameter file")
    refs = dict(raw.get("references", {}))
    values, var = {}, {}
    mw = None
    if "MW" in raw.get("values", {}):
        mw = float(raw["values"]["MW"]["value"])
    for k, spec in raw.get("values", {}).items():
        src = _check_source(f"values.{k}", spec, refs, p)
        unit = str(spec.get("unit", "1"))
        if unit not in PD_UNITS:
            raise ParameterError(f"{p.name}:values.{k}.unit", unit, "allowed: " + ", ".join(PD_UNITS))
        kind, f = PD_UNITS[unit]
        x = spec.get("value")
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise ParameterError(f"{p.name}:values.{k}.value", x, "must be a finite number")
        if kind in ("molar concentration", "molar slope"):
            if mw is None:
                raise ParameterError(f"{p.name}:values.{k}.unit", unit, "a molar unit needs values.MW in the file")
            f = f * mw if kind == "molar concentration" else f / mw
        values[k] = PDValue(k, float(x) * f, unit, float(x), src, str(spec.get("where", "")),
                            str(spec.get("note", "")), calibration=str(spec.get("calibration", "")))
    for k, spec in raw.get("variability", {}).items():
        src = _check_source(f"variability.{k}", spec, refs, p)
        if "cv" in spec:
            cv = float(spec["cv"])
        elif "omega2" in spec:
            cv = math.sqrt(math.exp(float(spec["omega2"])) - 1.0)
        else:
            raise ParameterError(f"{p.name}:variability.{k}", spec, "needs 'cv' (fraction) or 'omega2' (log variance)")
        if not (math.isfinite(cv) and 0 <= cv <= 5):
            raise ParameterError(f"{p.name}:variability.{k}.cv", cv, "must be a CV between 0 and 5 (fraction)")
        var[k] = PDValue(k, cv, "1", cv, src, str(spec.get("where", "")), str(spec.get("note", "")))
    return PDParameterSet(str(raw.get("meta", {}).get("name", p.stem)), p, dict(raw.get("meta", {})), refs, values,
                          var, raw)
