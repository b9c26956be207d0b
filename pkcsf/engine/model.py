"""Compartmental models as data.

A :class:`Model` declares compartments (each with a volume parameter, or
none for an amount-only depot), transfers between them and named dosing
sites. It holds no numbers of its own (those come from ``parameters/`` or
from the user) and no solver code: :func:`pkcsf.engine.compile.compile_model` turns
it into the tables the compiled kernels read.

Transfer types (rates in mg/h; C = amount / volume of the source):

================= ============================ =====================================
type              rate                          coefficient
================= ============================ =====================================
flow              Q * C_from  (one way)         Q, clearance or bulk flow (L/h)
exchange          Q * (C_a - C_b)               Q, exchange clearance (L/h)
first_order       k * A_from                    k, rate constant (1/h)
release           k * A_from                    k, release rate of a depot (1/h)
michaelis_menten  Vmax * fu*C / (Km + fu*C)     Vmax (mg/h), Km (mg/L), fu optional
accumulate        d(to)/dt = C_from             (AUC state; takes nothing from source)
================= ============================ =====================================

A transfer without ``to`` eliminates: the engine keeps the eliminated amount
in an extra state named ``eliminated`` so that mass balance can be checked.

Models are written in TOML (see ``models/*.toml``) or built in Python.
"""
from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from pkcsf.core.errors import ModelError, check_choice, check_keys
from pkcsf.engine.components import (
    COMPARTMENT_KINDS,
    ELIMINATED,
    TRANSFER_TYPES,
    Compartment,
    Parameter,
    Site,
    Transfer,
    accumulate,
    elimination,
    exchange,
    first_order,
    flow,
    michaelis_menten,
    release,
)
from pkcsf.engine.expressions import Expression

__all__ = [
    "Parameter", "Compartment", "Transfer", "Site", "Model",
    "flow", "exchange", "first_order", "release", "michaelis_menten", "accumulate", "elimination",
    "load_model", "available_models",
]

# re-exported (defined in pkcsf.engine.components)
_COMPONENTS = (COMPARTMENT_KINDS, ELIMINATED, TRANSFER_TYPES)



@dataclass(frozen=True)
class Model:
    """A compartmental model definition (validated when built).

    Usually read from ``models/*.toml`` with :func:`load_model`; built in code from
    :class:`Compartment`, :class:`Transfer` (see :func:`flow` and siblings) and :class:`Site`.

    Parameters
    ----------
    name : str
        Model name.
    compartments : sequence of Compartment
        The well-mixed spaces.
    transfers : sequence of Transfer, optional
        Flows, exchanges, first-order and saturable transfers, accumulators.
    sites : sequence of Site, optional
        Named dosing sites.
    parameters : sequence of Parameter or str, optional
        Declared parameters (names with unit and meaning).
    derived : dict or sequence of (str, str), optional
        Derived parameters: name -> expression over parameters.
    description, source : str, optional
        Free text; the file it came from.
    references : tuple of str, optional
        Sources of the model structure.

    Examples
    --------
    >>> m = Model("one", [Compartment("plasma", "V")], [elimination("plasma", "CL")], [Site("iv", (("plasma", 1.0),))],
    ...           ["V", "CL"])
    >>> m.compartment_names
    ['plasma']
    """

    name: str
    compartments: tuple[Compartment, ...]
    transfers: tuple[Transfer, ...] = ()
    sites: tuple[Site, ...] = ()
    parameters: tuple[Parameter, ...] = ()
    derived: tuple[tuple[str, str], ...] = ()
    description: str = ""
    source: str = ""
    references: tuple[str, ...] = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "compartments", tuple(self.compartments))
        object.__setattr__(self, "transfers", tuple(self.transfers))
        object.__setattr__(self, "sites", tuple(self.sites))
        params = tuple(p if isinstance(p, Parameter) else Parameter(p) for p in self.parameters)
        object.__setattr__(self, "parameters", params)
        derived = self.derived.items() if isinstance(self.derived, dict) else self.derived
        object.__setattr__(self, "derived", tuple((str(k), v) for k, v in derived))
        self._validate()

    # ------------------------------------------------------------------ views
    @property
    def compartment_names(self) -> list[str]:
        """Compartment names in model order."""
        return [c.name for c in self.compartments]

    @property
    def parameter_names(self) -> list[str]:
        """Declared parameter names in model order."""
        return [p.name for p in self.parameters]

    @property
    def site_names(self) -> list[str]:
        """Dosing site names in model order."""
        return [s.name for s in self.sites]

    def compartment(self, name: str) -> Compartment:
        """The compartment called ``name``; an unknown name raises listing the valid ones.

        Parameters
        ----------
        name : str
            Compartment name.

        Returns
        -------
        Compartment
            The compartment.
        """
        for c in self.compartments:
            if c.name == name:
                return c
        check_choice("compartment", name, self.compartment_names, ModelError)
        raise AssertionError  # pragma: no cover

    def site(self, name: str) -> Site:
        """The dosing site called ``name``; an unknown name raises listing the valid ones.

        Parameters
        ----------
        name : str
            Site name.

        Returns
        -------
        Site
            The site.
        """
        for s in self.sites:
            if s.name == name:
                return s
        check_choice("site", name, self.site_names, ModelError)
        raise AssertionError  # pragma: no cover

    def with_parameters(self, extra: Iterable[str | Parameter]) -> Model:
        """A copy that also declares ``extra`` parameters (names or Parameter).

        Parameters
        ----------
        extra : iterable of str or Parameter
            Parameters to declare.

        Returns
        -------
        Model
            The extended model.
        """
        have = set(self.parameter_names)
        add = [p if isinstance(p, Parameter) else Parameter(p) for p in extra]
        return replace(self, parameters=self.parameters + tuple(p for p in add if p.name not in have))

    def extend(self, *, name: str | None = None, compartments: Iterable[Compartment] = (),
               transfers: Iterable[Transfer] = (), sites: Iterable[Site] = (),
               parameters: Iterable[str | Parameter] = (),
               derived: Iterable[tuple[str, str]] | dict[str, str] = (),
               description: str | None = None) -> Model:
        """A new model with more compartments, transfers, sites or parameters.

        Parameters
        ----------
        name : str, optional
            Name of the new model (default: this one's).
        compartments, transfers, sites, parameters : sequence, optional
            What to add.
        derived : sequence of (str, str), optional
            Derived parameters to add.
        description : str, optional
            Description of the new model.

        Returns
        -------
        Model
            The validated new model.
        """
        derived = tuple(derived.items()) if isinstance(derived, dict) else tuple(derived)
        return Model(name or self.name,
                     self.compartments + tuple(compartments),
                     self.transfers + tuple(transfers),
                     self.sites + tuple(sites),
                     self.parameters + tuple(p if isinstance(p, Parameter) else Parameter(p) for p in parameters),
                     self.derived + derived,
                     self.description if description is None else description,
                     self.source, self.references)

    def __repr__(self) -> str:
        return (f"Model({self.name!r}: {len(self.compartments)} compartments, {len(self.transfers)} transfers, "
                f"sites {self.site_names})")

    # ------------------------------------------------------------- validation
    def _validate(self):
        if not self.compartments:
            raise ModelError(f"model {self.name!r}.compartments", [], "a model needs at least one compartment")
        names: dict[str, str] = {}

        def claim(kind, nm, where):
            if not isinstance(nm, str) or not nm.isidentifier():
                raise ModelError(where, nm, "names must be identifiers (letters, digits, underscores)")
            if nm in names:
                raise ModelError(where, nm, f"the name is already used by a {names[nm]}")
            names[nm] = kind

        for i, c in enumerate(self.compartments):
            claim("compartment", c.name, f"compartments[{i}].name")
            check_choice(f"compartments[{i}].kind", c.kind, COMPARTMENT_KINDS, ModelError)
            if c.name == ELIMINATED:
                raise ModelError(f"compartments[{i}].name", c.name, "'eliminated' is reserved for the sink state")
        for i, p in enumerate(self.parameters):
            claim("parameter", p.name, f"parameters[{i}].name")
        for i, (nm, _) in enumerate(self.derived):
            claim("derived parameter", nm, f"derived[{i}].name")
        known = set(self.parameter_names) | {nm for nm, _ in self.derived}
        cnames = self.compartment_names

        def expr(value, where, *, allow_none=False):
            if value is None:
                if allow_none:
                    return None
                raise ModelError(where, None, "a parameter name, number or expression is required")
            e = Expression.parse(value, where)
            for n in e.names:
                if n not in known:
                    if not known:
                        raise ModelError(f"{where} (name {n!r})", n, "the model declares no parameters",
                                         f"declare it in a [parameters] table: {n} = {{ unit = \"...\" }}")
                    check_choice(f"{where} (name {n!r})", n, sorted(known), ModelError)
            return e

        # derived parameters may use each other, but not in a cycle
        deps = {nm: expr(v, f"derived.{nm}").names for nm, v in self.derived}
        _check_acyclic(deps)

        def comp(nm, where, *, allow_none=False):
            if nm is None and allow_none:
                return None
            if nm not in cnames:
                check_choice(where, nm, cnames, ModelError)
            return self.compartment(nm)

        for i, c in enumerate(self.compartments):
            if c.volume is not None:
                e = expr(c.volume, f"compartments[{i}].volume ({c.name})")
                if e.constant is not None and not e.constant > 0:
                    raise ModelError(f"compartments[{i}].volume ({c.name})", c.volume, "a volume must be > 0 L")
        for i, t in enumerate(self.transfers):
            where = f"transfers[{i}]"
            check_choice(f"{where}.type", t.type, TRANSFER_TYPES, ModelError)
            src = comp(t.source, f"{where}.from")
            dst = comp(t.target, f"{where}.to", allow_none=t.type in ("flow", "first_order", "release",
                                                                      "michaelis_menten"))
            if dst is not None and dst.name == src.name:
                raise ModelError(f"{where}.to", t.target, "must differ from 'from'")
            if t.type in ("flow", "exchange", "michaelis_menten", "accumulate") and src.volume is None:
                raise ModelError(f"{where}.from", t.source,
                                 f"a {t.type} transfer needs a concentration, so its source needs a volume")
            if t.type == "exchange" and dst.volume is None:
                raise ModelError(f"{where}.to", t.target, "an exchange needs volumes on both sides")
            if t.type == "accumulate":
                if dst.kind != "accumulator":
                    raise ModelError(f"{where}.to", t.target,
                                     "an accumulate transfer must point to a compartment of kind 'accumulator'")
            elif src.kind == "accumulator" or (dst is not None and dst.kind == "accumulator"):
                raise ModelError(where, t.type, "accumulator compartments only take 'accumulate' transfers")
            if t.type == "michaelis_menten":
                e = expr(t.vmax, f"{where}.vmax")
                k = expr(t.km, f"{where}.km")
                expr(t.fu, f"{where}.fu", allow_none=True)
                if k.constant is not None and not k.constant > 0:
                    raise ModelError(f"{where}.km", t.km, "Km must be > 0")
                del e
            elif t.type != "accumulate":
                expr(t.coefficient, f"{where}.coefficient")
        for i, s in enumerate(self.sites):
            claim("site", s.name, f"sites[{i}].name")
            if not s.targets:
                raise ModelError(f"sites[{i}].targets", s.targets, "a site needs at least one target compartment")
            for cname, frac in s.targets:
                c = comp(cname, f"sites[{i}] ({s.name}).targets")
                if c.kind == "accumulator":
                    raise ModelError(f"sites[{i}] ({s.name}).targets", cname, "cannot dose into an accumulator")
                expr(frac, f"sites[{i}] ({s.name}).targets.{cname}")
            expr(s.bioavailability, f"sites[{i}] ({s.name}).bioavailability", allow_none=True)
            expr(s.lag, f"sites[{i}] ({s.name}).lag", allow_none=True)

    # ------------------------------------------------------------------- I/O
    @classmethod
    def from_dict(cls, data: dict, *, source: str = "", _loading: tuple = ()) -> "Model":
        """Build a model from the mapping of a model file (format in the module docstring).

        Parameters
        ----------
        data : dict
            Tables ``model``, ``parameters``, ``derived``, ``compartments``, ``transfers``, ``sites``.
        source : str, optional
            Where the mapping came from (named in errors).

        Returns
        -------
        Model
            The validated model (``[model] extends`` is resolved).

        Raises
        ------
        ModelError
            For an unknown key, compartment, parameter or a cycle of ``extends``.
        """
        data = dict(data)
        head = data.pop("model", {})
        if not isinstance(head, dict):
            raise ModelError("model", head, "must be a table: [model] with name, description, extends, references")
        head = dict(head)
        _only(head, {"name", "description", "extends", "references"}, "model",
              "parameters go in their own [parameters] table: NAME = { unit = \"L/h\", description = \"...\" }")
        name = head.get("name") or Path(source).stem or "model"
        base = None
        if head.get("extends"):
            parent = head["extends"]
            if not isinstance(parent, str):
                raise ModelError("model.extends", parent, "must be the name of another model (text)")
            if parent == name or parent in _loading:
                raise ModelError("model.extends", parent,
                                 "a model may not extend itself, directly or through a cycle of extends",
                                 "name another model, or remove 'extends'")
            try:
                base = load_model(parent, _loading=_loading + (name,))
            except ModelError as e:
                if e.field == "model.extends":
                    raise
                raise ModelError("model.extends", parent, f"the model it extends cannot be loaded: {e}") from None
        check_keys("", data, ["model", "parameters", "derived", "compartments", "transfers", "sites"], ModelError,
                   hint=lambda key: f"a table of the model file {source or name}")
        for key, kind in (("parameters", dict), ("derived", dict), ("compartments", list), ("transfers", list),
                          ("sites", list)):
            if key in data and not isinstance(data[key], kind):
                shape = "a table [" + key + "]" if kind is dict else "an array of tables [[" + key + "]]"
                raise ModelError(key, data[key], f"must be {shape}")
        params = []
        for pname, spec in data.get("parameters", {}).items():
            spec = spec if isinstance(spec, dict) else {"description": str(spec)}
            _only(spec, {"unit", "description", "default"}, f"parameters.{pname}")
            default = spec.get("default")
            if default is not None:
                if isinstance(default, bool) or not isinstance(default, (int, float)) or not math.isfinite(default):
                    raise ModelError(f"parameters.{pname}.default", default,
                                     "must be a finite number in the parameter's unit (no text, no units)")
                default = float(default)
            params.append(Parameter(pname, spec.get("unit", ""), spec.get("description", ""), default))
        derived = []
        for dname, spec in data.get("derived", {}).items():
            if isinstance(spec, dict):
                _only(spec, {"expr", "unit", "description"}, f"derived.{dname}")
                if "expr" not in spec:
                    raise ModelError(f"derived.{dname}", spec, "a derived parameter needs its expression 'expr'",
                                     f'write {dname} = "CL / V" or {dname} = {{ expr = "CL / V", unit = "1/h" }}')
                spec = spec["expr"]
            if isinstance(spec, bool) or not isinstance(spec, (str, int, float)):
                raise ModelError(f"derived.{dname}", spec, "must be an expression (text) or a number")
            derived.append((dname, spec))
        comps = []
        for i, spec in enumerate(data.get("compartments", [])):
            _only(spec, {"name", "volume", "description", "kind", "group"}, f"compartments[{i}]")
            comps.append(Compartment(spec.get("name"), spec.get("volume"), spec.get("description", ""),
                                     spec.get("kind", "mass"), spec.get("group", "")))
        transfers = []
        for i, spec in enumerate(data.get("transfers", [])):
            transfers.append(_transfer_from_dict(spec, f"transfers[{i}]"))
        sites = []
        for i, spec in enumerate(data.get("sites", [])):
            _only(spec, {"name", "targets", "bioavailability", "lag", "description"}, f"sites[{i}]")
            targets = spec.get("targets", {})
            if isinstance(targets, str):
                targets = {targets: 1.0}
            sites.append(Site(spec.get("name"), tuple(targets.items()), spec.get("bioavailability"),
                              spec.get("lag"), spec.get("description", "")))
        refs = tuple(head.get("references", ()))
        if base is not None:
            return base.extend(name=name, compartments=comps, transfers=transfers, sites=sites,
                               parameters=params, derived=derived,
                               description=head.get("description", base.description))
        return cls(name, tuple(comps), tuple(transfers), tuple(sites), tuple(params), tuple(derived),
                   head.get("description", ""), source, refs)

    @classmethod
    def from_toml(cls, path: str | Path) -> Model:
        """Read a model file (TOML).

        Parameters
        ----------
        path : str or Path
            The file.

        Returns
        -------
        Model
            The validated model.
        """
        from pkcsf.core.paths import read_toml

        return cls.from_dict(read_toml(path, ModelError, "model file"), source=str(path))


def _only(spec: dict, allowed: set, where: str, fix: str | None = None):
    if not isinstance(spec, dict):
        raise ModelError(where, spec, "must be a table (key = value pairs)")
    check_keys(where, spec, sorted(allowed), ModelError, hint=None if fix is None else (lambda key: fix))


_TRANSFER_KEYS = {
    "flow": {"Q", "CL", "coefficient"}, "exchange": {"Q", "coefficient"},
    "first_order": {"k", "coefficient"}, "release": {"k", "coefficient"},
    "michaelis_menten": {"vmax", "km", "fu"}, "accumulate": set(),
}


def _transfer_from_dict(spec: dict, where: str) -> Transfer:
    ttype = check_choice(f"{where}.type", spec.get("type"), TRANSFER_TYPES, ModelError)
    _only(spec, {"type", "from", "to", "between", "description"} | _TRANSFER_KEYS[ttype], where)
    if ttype == "exchange":
        pair = spec.get("between") or [spec.get("from"), spec.get("to")]
        if len(pair) != 2:
            raise ModelError(f"{where}.between", pair, "an exchange needs exactly two compartments")
        src, dst = pair
    else:
        src, dst = spec.get("from"), spec.get("to")
        if dst in ("elimination", "eliminated", "sink"):
            dst = None
    coef = None
    for key in ("Q", "CL", "k", "coefficient"):
        if key in spec:
            coef = spec[key]
    return Transfer(ttype, src, dst, coef, spec.get("vmax"), spec.get("km"), spec.get("fu"),
                    spec.get("description", ""))


def _check_acyclic(deps: dict[str, tuple[str, ...]]):
    state: dict[str, int] = {}

    def visit(n, path):
        if state.get(n) == 1:
            raise ModelError("derived", " -> ".join(path + [n]),
                             "derived parameters must not refer to themselves in a cycle")
        if state.get(n) == 2 or n not in deps:
            return
        state[n] = 1
        for m in deps[n]:
            visit(m, path + [n])
        state[n] = 2

    for n in deps:
        visit(n, [])


# ---------------------------------------------------------------- discovery
def available_models() -> dict[str, Path]:
    """Model names found on the search path (user paths first), with their files.

    Returns
    -------
    dict of str to Path
        Model name -> file.

    Examples
    --------
    >>> "cns_csf" in available_models()
    True
    """
    from pkcsf.core.paths import search_dirs

    found: dict[str, Path] = {}
    for d in search_dirs("models"):
        for f in sorted(d.glob("*.toml")):
            found.setdefault(f.stem, f)
    return found


def load_model(name_or_path: str | Path | Model, *, _loading: tuple = ()) -> Model:
    """Load a model by name (from ``models/`` or a folder on the search path) or from a file.

    Parameters
    ----------
    name_or_path : str, Path or Model
        A model name such as ``"cns_csf"`` (see :func:`available_models`), a ``.toml`` file, or a model
        (returned as is).

    Returns
    -------
    Model
        The validated model.

    Raises
    ------
    ModelError
        For an unknown name (listing the available ones) or an invalid file.

    Examples
    --------
    >>> load_model("reference_p1").site_names
    ['icv']
    """
    if isinstance(name_or_path, Model):
        return name_or_path
    p = Path(str(name_or_path))
    if p.suffix == ".toml" or p.exists():
        return Model.from_toml(p)
    models = available_models()
    if str(name_or_path) not in models:
        check_choice("model", str(name_or_path), sorted(models), ModelError)
    from pkcsf.core.paths import read_toml

    path = models[str(name_or_path)]
    return Model.from_dict(read_toml(path, ModelError, "model file"), source=str(path), _loading=_loading)
