"""First run: a notice before a kernel's first compilation, once; ``pkcsf warmup`` is a command."""
from __future__ import annotations

import numba

from pkcsf.cli import main
from pkcsf.core import jit


def test_compile_notice_once_and_only_when_not_compiled(capsys):
    @numba.njit
    def twice(x):
        return 2 * x

    assert not jit.is_cached(twice)
    jit.compile_notice(twice, "a test kernel", 3)
    jit.compile_notice(twice, "a test kernel", 3)
    err = capsys.readouterr().err
    assert err.count("pkcsf: compiling a test kernel once") == 1 and "(about 3 s)" in err
    twice(1.0)
    assert jit.is_cached(twice)          # compiled in this process: no notice for the next one


def test_warmup_is_a_command(capsys):
    try:
        code = main(["warmup", "--help"])
    except SystemExit as e:
        code = e.code
    assert code == 0
    assert "--only" in capsys.readouterr().out
