"""Sphinx configuration: the API reference rendered from the numpydoc docstrings, and the Markdown guides.

Build: ``python -m sphinx -b html -W --keep-going docs docs/_build/html`` (tests/test_docs_build.py does
this in CI). The per-layer API pages (``docs/api/*.rst``) are written at build time from the package tree,
so a new module appears without editing the docs.
"""
import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import pkcsf  # noqa: E402

project = "pkcsf"
author = "pkcsf contributors"
release = pkcsf.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = []

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
autodoc_default_options = {"members": True, "undoc-members": False, "ignore-module-all": True,
                           "show-inheritance": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
autosummary_generate = False
myst_heading_anchors = 3
# the guides link to source files and notebooks outside the docs tree, and docstrings name a few objects
# by short names; those references are not errors of the docs build
suppress_warnings = ["myst.xref_missing", "myst.header", "ref.python", "autodoc.import_object",
                     "ref.ref", "ref.doc", "ref.any", "ref.obj", "ref.func", "ref.class", "ref.meth",
                     "ref.mod", "ref.data", "ref.attr", "ref.exc"]
nitpicky = False

#: the layers, lowest first (as in tests/test_layers.py and the README's "Where things live")
LAYERS = [
    ("core", "Foundation: errors and validators, units, paths, compiled-kernel cache, progress bar"),
    ("solvers", "Solvers: the Numba kernels and their registry"),
    ("engine", "Engine: models as data, dosing, compile, simulate, results"),
    ("analysis", "Analysis: read-outs, NCA, the AUC-method vocabulary"),
    ("trials", "Trials: dose-escalation designs (3+3, BOIN, CRM) and virtual trials"),
    ("pd", "Pharmacodynamics"),
    ("plotting", "Plotting: figures that take results and return Axes"),
    ("clinical", "Clinical: drugs, routes, regimens, populations, scenarios, escalation, validation"),
    ("report", "Report: the HTML report"),
]


def _modules(layer: str) -> list[str]:
    pkg = importlib.import_module(f"pkcsf.{layer}")
    names = [pkg.__name__]
    for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        names.append(info.name)
    return names


def _write_api_pages() -> None:
    out = HERE / "api"
    out.mkdir(exist_ok=True)
    index = ["API reference", "=============", "",
             "The public names of :mod:`pkcsf` (``import pkcsf as pk``), then one page per layer, lowest first.",
             "", ".. toctree::", "   :maxdepth: 1", "", "   pkcsf"]
    for layer, title in LAYERS:
        if not (ROOT / "pkcsf" / layer).is_dir():
            continue
        index.append(f"   {layer}")
        lines = [title, "=" * len(title), ""]
        for mod in _modules(layer):
            lines += [mod, "-" * len(mod), "", f".. automodule:: {mod}", ""]
        _write(out / f"{layer}.rst", "\n".join(lines) + "\n")
    top = ["pkcsf (top level)", "=================", "",
           "The names of ``pkcsf.__all__``, each documented on its layer's page:", "",
           ".. autosummary::", ""]
    for n in pkcsf.__all__:
        obj = getattr(pkcsf, n)
        if callable(obj) and getattr(obj, "__module__", "").startswith("pkcsf."):
            top.append(f"   ~{obj.__module__}.{obj.__qualname__}")
    top += ["", ".. automodule:: pkcsf", "   :no-members:"]
    _write(out / "pkcsf.rst", "\n".join(top) + "\n")
    _write(out / "index.rst", "\n".join(index) + "\n")


def _write(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:     # unchanged pages keep their time stamp
        path.write_text(text)


_write_api_pages()
