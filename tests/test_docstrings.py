"""Docstring check in CI (issue 8): the public API is documented in the numpydoc format.

Every public function, class and method of the checked modules is validated with ``numpydoc.validate``
(the validator numpy, scipy and pandas run on their own API). A failure names the object and the rule:

- ``GL08`` no docstring; ``SS01`` no one-line summary; ``GL07`` sections out of order;
- ``PR01`` a parameter of the signature is not documented; ``PR02`` a documented parameter is not in
  the signature; ``PR03`` the documented order differs from the signature; ``PR07`` a parameter without a
  description;
- ``RT01`` a function that returns a value has no Returns section.

A class may document its constructor arguments (dataclass fields) under Parameters or Attributes;
parameters whose name starts with ``_`` are private and need no entry. The user-facing names of
``pkcsf.__all__`` and of the ``__all__`` of the USER_FACING modules also need an Examples section (``EX01``;
the examples run in tests/test_docstring_examples.py), and every public function complete type hints.
"""
from __future__ import annotations

import enum
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import pkcsf
from pkcsf.core.tomlio import tomllib

try:
    from numpydoc import validate as numpydoc_validate
except ImportError:                     # a check that silently skips is no check
    pytest.fail("numpydoc is not installed: pip install -e '.[test]'", pytrace=False)

CODES = {"GL07", "GL08", "SS01", "PR01", "PR02", "PR03", "PR07", "RT01"}

# Modules that other work brings up to this standard later; each prefix is skipped with its subtree.
NOT_YET = (
)


def _skipped(modname: str) -> bool:
    return any(modname == p or modname.startswith(p + ".") for p in NOT_YET)


def _modules() -> list:
    mods = [pkcsf]
    for info in pkgutil.walk_packages(pkcsf.__path__, "pkcsf."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]) or _skipped(info.name):
            continue
        mods.append(importlib.import_module(info.name))
    return mods


def _public_objects() -> list[tuple[str, object]]:
    """(qualified name, object) of every public function, class and method defined in a checked module."""
    out = []
    for mod in _modules():
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            if inspect.isfunction(obj):
                out.append((f"{mod.__name__}.{name}", obj))
            elif inspect.isclass(obj):
                out.append((f"{mod.__name__}.{name}", obj))
                if issubclass(obj, (enum.Enum, BaseException)):
                    continue                  # members and exception machinery, not an API of methods
                for mname, member in vars(obj).items():
                    func = member.__func__ if isinstance(member, (classmethod, staticmethod)) else member
                    if (not mname.startswith("_") and inspect.isfunction(func)
                            and func.__qualname__ == f"{obj.__qualname__}.{mname}"):
                        out.append((f"{mod.__name__}.{name}.{mname}", func))
    return out


def _public_properties() -> list[tuple[str, object]]:
    """(qualified name, getter) of every public property of the public classes of the checked modules."""
    return [(f"{q}.{pname}", prop.fget) for q, cls in _public_objects() if inspect.isclass(cls)
            for pname, prop in vars(cls).items() if isinstance(prop, property) and not pname.startswith("_")]


def _signature_params(obj) -> list[str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    if inspect.isclass(obj) and "__init__" not in vars(obj):
        return []
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return []
    names = []
    for p in sig.parameters.values():
        if p.name in ("self", "cls") or p.name.startswith("_"):
            continue
        names.append({p.VAR_POSITIONAL: "*", p.VAR_KEYWORD: "**"}.get(p.kind, "") + p.name)
    return names


def _documented(doc) -> list[str]:
    """Names documented under Parameters (and, for a class, Attributes); ``a, b : int`` gives both."""
    names = []
    for section in ("Parameters", "Other Parameters", "Attributes"):
        for param in doc[section]:
            names += [n.strip() for n in param.name.split(",") if n.strip()]
    return names


def _problems(qualname: str, obj) -> list[str]:
    res = numpydoc_validate.validate(qualname)
    errors = [(c, m) for c, m in res["errors"] if c in CODES and c not in ("PR01", "PR02", "PR03")]
    if res["docstring"]:
        from numpydoc.docscrape import ClassDoc, FunctionDoc

        doc = (ClassDoc(obj, config={"show_class_members": False}) if inspect.isclass(obj)
               else FunctionDoc(obj))
        documented = _documented(doc) if inspect.isclass(obj) else [
            n.strip() for p in doc["Parameters"] + doc["Other Parameters"] for n in p.name.split(",")]
        bare = [d.lstrip("*") for d in documented]
        wanted = _signature_params(obj)
        missing = [p for p in wanted if p.lstrip("*") not in bare]
        if missing:
            errors.append(("PR01", f"parameters not documented: {', '.join(missing)}"))
        if not inspect.isclass(obj):
            unknown = [d for d in bare if d not in [w.lstrip("*") for w in wanted]
                       and not d.startswith("_") and d not in ("self", "cls")]
            if unknown:
                errors.append(("PR02", f"documented but not in the signature: {', '.join(unknown)}"))
            order = [d for d in bare if d in [w.lstrip("*") for w in wanted]]
            if order != [w.lstrip("*") for w in wanted if w.lstrip("*") in order]:
                errors.append(("PR03", f"documented in the order {order}, the signature has {wanted}"))
    return [f"{qualname}: {code} {msg}" for code, msg in errors]


def test_public_api_docstrings_follow_numpydoc():
    problems = []
    for qualname, obj in _public_objects():
        problems += _problems(qualname, obj)
    assert not problems, f"{len(problems)} docstring problems:\n" + "\n".join(problems)


# Modules whose ``__all__`` is the user-facing API: each function and class there shows an example.
USER_FACING = ("pkcsf.facade", "pkcsf.engine.dosing", "pkcsf.engine.model", "pkcsf.engine.components",
               "pkcsf.engine.results", "pkcsf.analysis.exposure", "pkcsf.analysis.summaries", "pkcsf.analysis.nca",
               "pkcsf.trials", "pkcsf.plotting")


def _needs_example(obj) -> bool:
    return (inspect.isfunction(obj) or inspect.isclass(obj)) and not (
        inspect.isclass(obj) and issubclass(obj, (BaseException, enum.Enum)))


def _user_facing() -> list[tuple[str, object]]:
    """The names of ``pkcsf.__all__`` and of the ``__all__`` of the USER_FACING modules, in checked modules."""
    out = {}
    for name in pkcsf.__all__:
        obj = getattr(pkcsf, name)
        mod = getattr(obj, "__module__", "") or ""
        if _needs_example(obj) and mod.startswith("pkcsf.") and not _skipped(mod):
            out[f"{mod}.{obj.__qualname__}"] = obj
    for q, obj in _public_objects():
        mod = importlib.import_module(obj.__module__)
        if (obj.__module__.startswith(USER_FACING) and _needs_example(obj)
                and obj.__name__ in getattr(mod, "__all__", ())):
            out[q] = obj
    return sorted(out.items())


def test_user_facing_names_have_examples():
    names = _user_facing()
    assert len(names) > 50
    missing = [q for q, _ in names if "EX01" in {c for c, _m in numpydoc_validate.validate(q)["errors"]}]
    assert not missing, "user-facing names without an Examples section: " + ", ".join(missing)


def _unannotated(func) -> list[str]:
    sig = inspect.signature(func)
    miss = [p.name for p in sig.parameters.values()
            if p.name not in ("self", "cls") and p.annotation is inspect.Parameter.empty]
    if sig.return_annotation is inspect.Signature.empty and func.__name__ != "__init__":
        miss.append("return")
    return miss


def test_public_functions_have_type_hints():
    problems = []
    for qualname, obj in _public_objects():
        if inspect.isclass(obj):
            continue
        miss = _unannotated(obj)
        if miss:
            problems.append(f"{qualname}: no annotation for {', '.join(miss)}")
    for qualname, getter in _public_properties():
        if inspect.signature(getter).return_annotation is inspect.Signature.empty:
            problems.append(f"{qualname} (property): no return annotation")
    assert not problems, f"{len(problems)} public functions without full type hints:\n" + "\n".join(problems)


def test_the_package_is_marked_typed():
    # PEP 561: the marker is inside the package folder, which the wheel ships whole
    root = Path(pkcsf.__file__).parent
    assert (root / "py.typed").is_file()
    build = tomllib.loads((root.parent / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert "pkcsf" in build["targets"]["wheel"]["packages"]


def test_the_checked_api_is_not_empty():
    names = {q for q, _ in _public_objects()}
    assert {"pkcsf.facade.simulate", "pkcsf.engine.dosing.Dose", "pkcsf.engine.results.SimulationResult",
            "pkcsf.analysis.nca.nca"} <= names


def _documented_wrongly(dose: float, site: str, *, rate: float | None = None) -> float:
    """A function whose Parameters section does not match its signature (for the test below).

    Parameters
    ----------
    site : str
        Named in the wrong order.
    dose : float
        Amount, mg.
    duration : float
        Not a parameter.
    """
    return dose


def test_the_check_finds_a_mismatch():
    problems = " ".join(_problems(f"{__name__}._documented_wrongly", _documented_wrongly))
    assert "PR01" in problems and "rate" in problems          # rate undocumented
    assert "PR02" in problems and "duration" in problems      # duration is not a parameter
    assert "PR03" in problems                                 # site before dose
    assert "RT01" in problems                                 # returns a value, no Returns section
