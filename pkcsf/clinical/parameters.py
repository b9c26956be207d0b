"""Parameter sets with provenance (``parameters/*.toml``).

A :class:`ParameterSet` is a named collection of :class:`Value` objects, each
with value (in base units), the unit it was written in, its source and where
in the source. Loading fails on a value without a source (see
``parameters/README.md`` for the format).
"""
from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from pkcsf.core.errors import ParameterError, PkcsfError, check_choice, check_keys
from pkcsf.core.provenance import SPECIAL_SOURCES, USER, Value, is_citation
from pkcsf.core.units import _NUMBER_UNIT, BASE, UNITS, parse_quantity, to_base

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Value", "ParameterSet", "load_parameter_set", "available_parameter_sets", "unsourced_entries", "TODO"]

#: the placeholder source of a drug template (``pkcsf new-drug``); refused when a file is read
TODO = "TODO"
@dataclass(frozen=True)
class ParameterSet:
    """A parameter file read: values with units and sources, thresholds, variability, covariates, options.

    Build with :func:`load_parameter_set` (files in ``parameters/``, format in ``parameters/README.md``).

    Parameters
    ----------
    name, kind : str
        Set name and kind (``"drug"``, ``"physiology"``, ``"population"``, ...).
    description : str, optional
        Free text.
    values, thresholds, variability : dict of str to Value, optional
        Each entry with value (base units), unit, source, where and note.
    references : dict, optional
        Citation key -> reference.
    options : dict, optional
        Non-numeric settings of the file (routes, forms, tables).
    path : str, optional
        The file read.
    covariates : dict, optional
        Covariate effects (:class:`~pkcsf.clinical.covariates.CovariateEffect`).

    Examples
    --------
    >>> ps = load_parameter_set("methotrexate", "drugs")
    >>> ps["MW"] > 0
    True
    """

    name: str
    kind: str
    description: str = ""
    values: dict = field(default_factory=dict)
    thresholds: dict = field(default_factory=dict)
    variability: dict = field(default_factory=dict)
    references: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    path: str = ""
    covariates: dict = field(default_factory=dict)

    def __repr__(self) -> str:
        return (f"ParameterSet({self.name!r}, kind={self.kind!r}, {len(self.values)} values, "
                f"{len(self.thresholds)} thresholds, {len(self.references)} references)")

    def __getitem__(self, name: str) -> float:
        if name not in self.values:
            check_choice(f"{self.name} parameter", name, sorted(self.values), ParameterError)
        return self.values[name].value

    def get(self, name: str, default: float | None = None) -> float | None:
        """The value of ``name`` in base units, or ``default`` when the set has none.

        Parameters
        ----------
        name : str
            Value name, e.g. ``"CL"``.
        default : float, optional
            Returned when the set has no such value.

        Returns
        -------
        float or None
            In pkcsf's base unit of the value's kind (L/h, L, 1/h, mg/L ...).
        """
        return self.values[name].value if name in self.values else default

    def as_dict(self) -> dict[str, float]:
        """Every value in base units, by name.

        Returns
        -------
        dict of str to float
        """
        return {k: v.value for k, v in self.values.items()}

    def assumptions(self) -> list[Value]:
        """The values whose source is ``assumption`` (each with its reasoning in ``note``).

        Returns
        -------
        list of Value
        """
        return [v for v in list(self.values.values()) + list(self.thresholds.values()) if v.is_assumption]

    def with_values(self, **changes: float | str | Value) -> ParameterSet:
        """A copy with some values changed: ``ps.with_values(CL="0.20 L/d", V1="3.1 L")``.

        Changed values get ``source = "user"`` and are listed by :meth:`assumptions` (a run never hides that
        a number did not come from a source).

        Parameters
        ----------
        **changes
            Value name -> a quantity with any unit of the parameter's kind (``"0.20 L/d"``, ``"0.35 mL/min"``),
            a number in pkcsf's base unit of that kind (L/h, L, 1/h, mg/L ...), or a :class:`Value`.

        Returns
        -------
        ParameterSet

        Raises
        ------
        ParameterError
            An unknown name, a unit of the wrong kind (a volume for a clearance) or text that is not a
            quantity; the message names the value and the allowed units.
        """
        vals = dict(self.values)
        for k, v in changes.items():
            if isinstance(v, Value):
                vals[k] = v
                continue
            if k not in vals:
                check_choice(f"{self.name} parameter", k, sorted(vals), ParameterError)
            vals[k] = self._user_value(vals[k], v)
        return replace(self, values=vals)

    def _user_value(self, old: Value, v) -> Value:
        field = f"{self.name}.{old.name}"
        kind = UNITS[old.unit][0] if old.unit in UNITS else None
        if isinstance(v, bool) or not isinstance(v, (numbers.Real, str)):
            raise ParameterError(field, v, f"must be a number in base units or a quantity such as "
                                 f"'{_example_value(kind)}'")
        if isinstance(v, numbers.Real):
            if not math.isfinite(float(v)):
                raise ParameterError(field, v, "must be a finite number")
            unit = BASE.get(kind, "") if kind else old.unit
            return replace(old, value=float(v), given=float(v), unit=unit, source=USER, where="",
                           note="set by the user", range=None, calibration="", citation="", alternatives=())
        m = _NUMBER_UNIT.match(v)
        if not m:
            raise ParameterError(field, v, f"must be a number and a unit, e.g. '{_example_value(kind)}'")
        given, unit = float(m.group(1)), (m.group(2) or BASE.get(kind, old.unit))
        if unit not in UNITS:
            allowed = [u for u, (kk, _, _) in UNITS.items() if kk == kind] if kind else sorted(UNITS)
            raise ParameterError(f"{field}.unit", v, "unknown unit; allowed units: " + ", ".join(allowed))
        new_kind = UNITS[unit][0]
        if kind is not None and new_kind != kind:
            allowed = [u for u, (kk, _, _) in UNITS.items() if kk == kind]
            raise ParameterError(field, v, f"a {kind} is needed here, not a {new_kind}; allowed units: "
                                 + ", ".join(allowed))
        try:
            base = parse_quantity(v, new_kind, field=field, mw=self.get("MW"))
        except PkcsfError as exc:                   # e.g. a molar unit without MW: same field, same rule
            raise ParameterError(field, v, exc.allowed, exc.fix) from None
        return replace(old, value=base, given=given, unit=unit, source=USER, where="", note="set by the user",
                       range=None, calibration="", citation="", alternatives=())

    def cite(self) -> list[str]:
        """Full references of every source used by this set.

        Covers values, thresholds, variability and covariate effects; for a
        value whose source is ``derived``/``assumption``/``calibrated``, the
        reference keys named in its ``where`` or ``note`` are cited too (the
        papers it was derived from).

        Returns
        -------
        list of str
        """
        entries = list(self.values.values()) + list(self.thresholds.values()) + list(self.variability.values())
        keys = {v.source for v in entries} | {e.source for e in self.covariates.values()}
        words = set()
        for v in entries:
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", f"{v.where} {v.note}"))
        for e in self.covariates.values():
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", e.note))
        keys |= words & set(self.references)
        out = []
        for k in sorted(keys):
            if k in self.references:
                out.append(f"[{k}] {self.references[k]}")
            elif k not in SPECIAL_SOURCES and k != "user":
                out.append(k)
        return out

    def table(self) -> pd.DataFrame:
        """Every value and threshold as a table.

        Returns
        -------
        pandas.DataFrame
            One row per value and threshold: set, kind (``value`` or ``threshold``), name, value (as given),
            unit, base_value, source, where, note, citation.
        """
        import pandas as pd

        rows = []
        for section, entries in (("value", self.values), ("threshold", self.thresholds)):
            for v in entries.values():
                rows.append({"set": self.name, "kind": section, "name": v.name, "value": v.given, "unit": v.unit,
                             "base_value": v.value, "source": v.source, "where": v.where, "note": v.note,
                             "citation": v.citation})
        return pd.DataFrame(rows)


def _example_value(kind) -> str:
    return {"flow": "0.20 L/d", "volume": "3.1 L", "rate_constant": "0.3 1/day", "concentration": "1 umol/L",
            "molar_mass": "146000 g/mol", "amount": "12 mg", "time": "24 h", "rate": "2 mg/h"}.get(kind, "0.5")


def unsourced_entries(data: dict) -> list[str]:
    """``section.name`` of every entry of a parsed parameter file without a source yet: a missing or empty
    source, the template placeholder ``"TODO"``, or the template's ``nan`` value (an infinite value is refused
    later, by :func:`read_parameter_file`, as not finite).

    Parameters
    ----------
    data : dict
        A parsed parameter file.

    Returns
    -------
    list of str
        ``section.name`` of each unsourced entry.

    Examples
    --------
    >>> unsourced_entries({"values": {"CL": {"value": 1.0, "unit": "L/h", "source": "TODO"}}})
    ['values.CL']
    """
    out = []
    for section in ("values", "thresholds", "variability", "covariates"):
        for k, spec in (data.get(section) or {}).items():
            if not isinstance(spec, dict):
                continue
            src = spec.get("source")
            val = spec.get("value", spec.get("cv"))
            no_source = not isinstance(src, str) or not src.strip() or src.strip().upper() == TODO
            bad_value = isinstance(val, float) and math.isnan(val)
            if no_source or bad_value:
                out.append(f"{section}.{k}")
    return out


def _check_source(src, refs: dict, where: str):
    if not isinstance(src, str) or not src.strip():
        raise ParameterError(f"{where}.source", src,
                             "every value needs a source: a reference key, DOI, PMID, URL, label:..., or 'assumption' with a note")
    src = src.strip()
    if src in refs or src in SPECIAL_SOURCES:
        return src
    if is_citation(src):
        return src
    raise ParameterError(f"{where}.source", src,
                         "must be a key of [references] (" + ", ".join(sorted(refs)) +
                         "), a DOI (10.xxxx/...), 'PMID nnn', a PMC id, a URL, 'label:...', 'assumption' or 'calibrated'")


def _entry(name, spec, refs, where, *, kind_hint=None) -> Value:
    if not isinstance(spec, dict):
        raise ParameterError(where, spec, "each value must be a table with value, unit and source")
    allowed = ["value", "unit", "source", "where", "note", "range", "calibration", "alternatives", "cv",
               "correlation"]
    check_keys(where, spec, allowed, ParameterError)
    src = _check_source(spec.get("source"), refs, where)
    if src == "assumption" and not str(spec.get("note", "")).strip():
        raise ParameterError(f"{where}.note", spec.get("note", ""), "an assumption needs a note giving the reasoning")
    if src == "calibrated" and not spec.get("calibration"):
        raise ParameterError(f"{where}.calibration", None, "a calibrated value must name its calibration record")
    raw = spec.get("value", spec.get("cv"))
    key = "value" if "value" in spec or "cv" not in spec else "cv"
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ParameterError(f"{where}.{key}", raw, "must be a number")
    if not math.isfinite(raw):
        raise ParameterError(f"{where}.{key}", raw, "must be a finite number")
    unit = str(spec.get("unit", "1" if "cv" in spec else ""))
    if unit not in UNITS:
        raise ParameterError(f"{where}.unit", unit, "unknown unit; see parameters/README.md for the units pkcsf reads")
    if UNITS[unit][2]:   # molar: keep as written, converted later with MW
        base = float(raw)
    else:
        base = to_base(float(raw), unit, field=where)
    rng = spec.get("range")
    if rng is not None:
        if (not isinstance(rng, list) or len(rng) != 2
                or any(isinstance(r, bool) or not isinstance(r, (int, float)) or math.isnan(r) for r in rng)):
            raise ParameterError(f"{where}.range", rng, "must be two numbers [lo, hi]")
        if not rng[0] <= raw <= rng[1]:
            raise ParameterError(f"{where}.range", rng, f"the value {raw} must lie inside its stated range [lo, hi]")
        rng = (float(rng[0]), float(rng[1]))
    return Value(name, base, unit, float(raw), src, str(spec.get("where", "")), str(spec.get("note", "")), rng,
                 str(spec.get("calibration", "")), refs.get(src, ""), tuple(spec.get("alternatives", ())))


def read_parameter_file(path: str | Path) -> ParameterSet:
    """Read and check a parameter file (a drug, physiology or pathology set).

    Parameters
    ----------
    path : str or Path
        The ``.toml`` file.

    Returns
    -------
    ParameterSet

    Raises
    ------
    ParameterError
        An unknown section, a value without a source (or still a ``TODO`` placeholder), a value that is not a
        finite number, a malformed entry, or (a drug file) a value outside its physical domain
        (:func:`pkcsf.clinical.drug_values.check_drug_values`).
    """
    from pkcsf.core.paths import read_toml

    path = Path(path)
    data = read_toml(path, ParameterError, "parameter file")
    allowed = ["meta", "references", "values", "thresholds", "variability", "covariates", "options"]
    check_keys(path.name, data, allowed, ParameterError)
    missing = unsourced_entries(data)
    if missing:
        raise ParameterError(path.name, f"{len(missing)} value(s) without a source",
                             "every value needs a source; still a 'TODO' placeholder, an empty source or a nan "
                             "value: " + ", ".join(missing),
                             "give each a key of [references], a DOI, 'PMID nnn', a URL, 'label:...', or "
                             "'assumption' with the reasoning in note; see docs/own_drug.md")
    meta = data.get("meta", {})
    refs = {str(k): str(v) for k, v in data.get("references", {}).items()}
    name = meta.get("name", path.stem)
    values = {k: _entry(k, v, refs, f"{path.name}: values.{k}") for k, v in data.get("values", {}).items()}
    thresholds = {k: _entry(k, v, refs, f"{path.name}: thresholds.{k}") for k, v in data.get("thresholds", {}).items()}
    variability = {k: _entry(k, v, refs, f"{path.name}: variability.{k}") for k, v in data.get("variability", {}).items()}
    covariates = {k: _covariate_entry(k, v, refs, f"{path.name}: covariates.{k}")
                  for k, v in data.get("covariates", {}).items()}
    ps = ParameterSet(name, meta.get("kind", ""), meta.get("description", ""), values, thresholds, variability,
                      refs, dict(data.get("options", {})), str(path), covariates)
    if ps.kind == "drug":        # every value in its physical domain (MW > 0, 0 < FU <= 1, ...)
        from pkcsf.clinical.drug_values import check_drug_values

        check_drug_values(ps)
    return ps


def _covariate_entry(name, spec, refs, where):
    """A covariate effect (see pkcsf.clinical.covariates.CovariateEffect), sourced."""
    from pkcsf.clinical.covariates import CovariateEffect

    if not isinstance(spec, dict):
        raise ParameterError(where, spec, "a covariate effect is a table with parameter, covariate, model and source")
    src = _check_source(spec.get("source"), refs, where)
    if src == "assumption" and not str(spec.get("note", "")).strip():
        raise ParameterError(f"{where}.note", "", "an assumption needs a note giving the reasoning")
    allowed = ["parameter", "covariate", "model", "reference", "exponent", "slope", "factors", "x", "y",
               "table_from", "upper", "source", "where", "note"]
    check_keys(where, spec, allowed, ParameterError)
    if "table_from" in spec:
        # the age table lives once, in a physiology set (options.ages and options.fraction_keys), the same one
        # that pkcsf.clinical.cns.setup(age=...) scales with
        if "x" in spec or "y" in spec:
            raise ParameterError(f"{where}.table_from", spec["table_from"], "give table_from or x/y, not both")
        ref = load_parameter_set(str(spec["table_from"]), "physiology")
        opts = ref.options
        if "ages" not in opts or "fraction_keys" not in opts:
            raise ParameterError(f"{where}.table_from", spec["table_from"],
                                 "the set needs [options] ages and fraction_keys (like physiology/pediatric.toml)")
        spec = dict(spec, x=list(opts["ages"]), y=[ref[k] for k in opts["fraction_keys"]])
    _check_effect_numbers(spec, where)
    try:
        return CovariateEffect(spec.get("parameter", name), spec.get("covariate"), spec.get("model"),
                               float(spec.get("reference", 1.0)), float(spec.get("exponent", 1.0)),
                               float(spec.get("slope", 0.0)), dict(spec.get("factors", {})),
                               tuple(spec.get("x", ())), tuple(spec.get("y", ())), src,
                               str(spec.get("note", "")), float(spec["upper"]) if "upper" in spec else None)
    except ParameterError as exc:
        raise ParameterError(f"{where}: {exc.field}", exc.value, exc.allowed) from None


def _number(x) -> bool:
    return not isinstance(x, bool) and isinstance(x, (int, float)) and math.isfinite(x)


def _check_effect_numbers(spec: dict, where: str) -> None:
    """The numbers of a covariate effect: finite; a power model's reference > 0; factors and table values > 0
    (each multiplies a parameter); table points in increasing order.
    """
    for k in ("reference", "exponent", "slope", "upper"):
        if k in spec and not _number(spec[k]):
            raise ParameterError(f"{where}.{k}", spec[k], "must be a finite number")
    if spec.get("model") == "power" and _number(spec.get("reference", 1.0)) and spec.get("reference", 1.0) <= 0:
        raise ParameterError(f"{where}.reference", spec["reference"], "a power model's reference covariate value "
                             "must be > 0 (the factor is (covariate/reference)^exponent)")
    factors = spec.get("factors", {})
    if not isinstance(factors, dict):
        raise ParameterError(f"{where}.factors", factors, "a table {level = factor, ...}")
    for level, f in factors.items():
        if not _number(f) or f <= 0:
            raise ParameterError(f"{where}.factors.{level}", f, "a factor on the parameter: a finite number > 0")
    for k in ("x", "y"):
        pts = spec.get(k, [])
        if not isinstance(pts, (list, tuple)) or not all(_number(p) for p in pts):
            raise ParameterError(f"{where}.{k}", pts, "a list of finite numbers")
    x, y = list(spec.get("x", [])), list(spec.get("y", []))
    if len(x) != len(y):
        raise ParameterError(f"{where}.y", y, f"one factor for each of the {len(x)} points of x")
    if any(b <= a for a, b in zip(x, x[1:])):
        raise ParameterError(f"{where}.x", x, "covariate values in increasing order")
    if any(v <= 0 for v in y):
        raise ParameterError(f"{where}.y", y, "factors on the parameter: each > 0")


def available_parameter_sets(kind: str | None = None) -> dict[str, Path]:
    """``{name: path}`` for every parameter file on the search path (``kind``: subfolder).

    Parameters
    ----------
    kind : str, optional
        Sub-folder (``"drugs"``, ``"physiology"``, ...); all when None.

    Returns
    -------
    dict of str to Path
        Name -> file (user paths first).

    Examples
    --------
    >>> "methotrexate" in available_parameter_sets("drugs")
    True
    """
    from pkcsf.core.paths import search_dirs

    found: dict[str, Path] = {}
    for d in search_dirs("parameters"):
        sub = [d / kind] if kind else [d] + [p for p in sorted(d.iterdir()) if p.is_dir()]
        for s in sub:
            if s.is_dir():
                for f in sorted(s.glob("*.toml")):
                    found.setdefault(f.stem, f)
    return found


def load_parameter_set(name_or_path: str | Path, kind: str | None = None) -> ParameterSet:
    """Load a parameter set by name (from ``parameters/<kind>/`` or a folder on the search path) or from a file.

    Parameters
    ----------
    name_or_path : str or Path
        A set name (``"methotrexate"``) or a ``.toml`` file.
    kind : str, optional
        Sub-folder to search (``"drugs"``, ``"physiology"``, ``"populations"``, ...); all when None.

    Returns
    -------
    ParameterSet
        The values with their sources; a value without a source is refused.

    Raises
    ------
    ParameterError
        For an unknown name (listing the available ones) or an invalid file.

    Examples
    --------
    >>> load_parameter_set("methotrexate", "drugs").kind
    'drug'
    """
    p = Path(str(name_or_path))
    if p.suffix == ".toml":
        return read_parameter_file(p)
    sets = available_parameter_sets(kind)
    if str(name_or_path) not in sets:
        check_choice(kind or "parameter set", str(name_or_path), sorted(sets), ParameterError)
    return read_parameter_file(sets[str(name_or_path)])
