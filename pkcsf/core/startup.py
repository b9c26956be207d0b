"""Ctrl-C and SIGTERM while the ``pkcsf`` command is still starting (importing numpy, numba, pandas).

Imported first by ``pkcsf/__init__.py``. Only when this process is the command line (the ``pkcsf``
console script or ``python -m pkcsf.cli``), and only if the default handlers are in place, it makes
SIGINT and SIGTERM during start-up print one line and exit with 130 and 143 instead of a traceback
(nothing has been written yet). :func:`pkcsf.cli.main` installs its own handlers once it runs.
Importing pkcsf as a library changes nothing.
"""
from __future__ import annotations

import os
import signal
import sys
import threading


def _is_cli() -> bool:
    argv0 = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if argv0 in ("pkcsf", "pkcsf.exe", "pkcsf-script.py"):
        return True
    orig = list(getattr(sys, "orig_argv", []) or [])
    for i, a in enumerate(orig[:-1]):
        if a == "-m":
            return orig[i + 1] in ("pkcsf", "pkcsf.cli")
    return False


def _exit(signum, frame):
    # Exit at once: nothing has been written yet, and an exception raised here could surface inside a
    # C extension's import (numpy importing datetime) as a chained ImportError traceback.
    what, code = ("terminated", 143) if signum == signal.SIGTERM else ("interrupted", 130)
    try:
        sys.stderr.write(f"pkcsf: {what} while starting (nothing was written)\n")
        sys.stderr.flush()
    finally:
        os._exit(code)


def install() -> bool:
    """Install the start-up handlers if this process is the pkcsf command; return whether it did.

    Returns
    -------
    bool
        True when the handlers were installed.
    """
    if not _is_cli() or threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return False
    signal.signal(signal.SIGINT, _exit)
    signal.signal(signal.SIGTERM, _exit)
    return True


install()
