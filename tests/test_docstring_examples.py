"""The Examples sections of the docstrings run and give what they show (numpydoc examples are doctests)."""
import doctest
import importlib
import pkgutil

import pytest

import pkcsf

MODULES = sorted(info.name for info in pkgutil.walk_packages(pkcsf.__path__, "pkcsf.")
                 if info.name.split(".")[1] != "cli" and not info.name.endswith("__main__"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(name)
    res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False,
                          report=True)
    assert res.failed == 0, f"{res.failed} docstring example(s) of {name} failed (output above)"
