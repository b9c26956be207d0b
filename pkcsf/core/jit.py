"""Where Numba keeps pkcsf's compiled kernels, and a cache that cannot go stale.

Numba's own on-disk cache is keyed on the file that defines a function (its path, size and time
stamp). A kernel that calls functions defined in other files (the solvers call the linear algebra in
``solvers/linalg.py``) would keep a stale compiled version after an edit of those other files. So pkcsf
keys one cache folder on the source of every module that defines compiled code (and on the Numba,
NumPy and Python versions): any edit, anywhere in compiled code, selects a fresh folder.

Where the folder lives, first that works:

1. ``PKCSF_CACHE_DIR`` (environment), if set;
2. the user's cache folder (``$XDG_CACHE_HOME`` or ``~/.cache``) ``/pkcsf/numba``;
3. the system's temporary folder (``pkcsf-numba-<user>``), for a read-only install without a
   writable home;
4. no disk cache at all (every process compiles once), with a one-line notice.

Importing this module configures Numba (``numba.config.CACHE_DIR``); it must be imported before any
``@njit(cache=True)`` function of pkcsf is defined (``pkcsf.solvers`` and ``pkcsf.analysis`` do).
"""
from __future__ import annotations

import hashlib
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numba
import numpy as np

__all__ = ["CACHE_DIR", "CACHE_ENABLED", "source_key", "cache_dir", "is_cached", "compile_notice"]

_PKG = Path(__file__).resolve().parent.parent


def source_key() -> str:
    """A short hash of every pkcsf module that defines compiled code, and of the toolchain versions.

    Returns
    -------
    str
        The key; any edit of a file with compiled code, or another Numba/NumPy/Python version, changes it.
    """
    h = hashlib.sha256()
    for p in sorted(_PKG.rglob("*.py")):
        text = p.read_bytes()
        if b"njit" in text or p.name == "jit.py":
            h.update(str(p.relative_to(_PKG)).encode())
            h.update(text)
    h.update(f"{numba.__version__}|{np.__version__}|{sys.version_info[:2]}".encode())
    return h.hexdigest()[:16]


def _writable(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
        return True
    except OSError:
        return False


def cache_dir() -> Path | None:
    """The cache folder for this source (created), or None when no folder is writable.

    Returns
    -------
    Path or None
        The folder (keyed by :func:`source_key`), or None.
    """
    key = source_key()
    candidates = []
    if os.environ.get("PKCSF_CACHE_DIR"):
        candidates.append(Path(os.environ["PKCSF_CACHE_DIR"]).expanduser())
    xdg = os.environ.get("XDG_CACHE_HOME")
    try:
        home_cache = Path(xdg) if xdg else Path.home() / ".cache"
        candidates.append(home_cache / "pkcsf" / "numba")
    except (RuntimeError, KeyError):      # no home directory
        pass
    user = os.environ.get("USER") or str(os.getuid() if hasattr(os, "getuid") else "user")
    candidates.append(Path(tempfile.gettempdir()) / f"pkcsf-numba-{user}")
    for base in candidates:
        if _writable(base / key):
            return base / key
    return None


CACHE_DIR = cache_dir()
CACHE_ENABLED = CACHE_DIR is not None
if CACHE_ENABLED:
    numba.config.CACHE_DIR = str(CACHE_DIR)
else:  # pragma: no cover - needs a machine without any writable folder
    print("pkcsf: no writable folder for compiled kernels; compiling in memory for this process only "
          "(set PKCSF_CACHE_DIR to a writable folder to keep them)", file=sys.stderr)


def njit(*args: object, **kwargs: object) -> Callable:
    """``numba.njit`` with pkcsf's cache policy (``cache=True`` only when a cache folder exists).

    Parameters
    ----------
    *args, **kwargs
        As for ``numba.njit`` (the function to compile, signatures, ``parallel``, ``fastmath``...);
        ``cache`` is turned off when there is no writable cache folder.

    Returns
    -------
    callable
        The dispatcher (or, without a function, the decorator), as ``numba.njit`` returns.
    """
    kwargs["cache"] = bool(kwargs.get("cache", True)) and CACHE_ENABLED
    return numba.njit(*args, **kwargs)


def is_cached(dispatcher: Callable) -> bool:
    """True when ``dispatcher`` (an ``njit`` function) is compiled in this process or has machine code
    in the cache folder (an index file named after it), so that calling it will not compile.

    Parameters
    ----------
    dispatcher : numba.core.registry.CPUDispatcher
        A function made with :func:`njit`.

    Returns
    -------
    bool
        Whether a call will run without compiling.
    """
    if dispatcher.signatures:
        return True
    if not CACHE_ENABLED:
        return False
    f = dispatcher.py_func
    stem = Path(f.__code__.co_filename).stem
    return any(CACHE_DIR.rglob(f"{stem}.{f.__qualname__}-*.nbi"))


_NOTICED: set = set()


def compile_notice(dispatcher: Callable, what: str, seconds: float) -> None:
    """One line on stderr before the first, slow compilation of ``dispatcher`` on this machine
    (``pkcsf warmup`` compiles everything up front).

    Parameters
    ----------
    dispatcher : numba.core.registry.CPUDispatcher
        The function about to be called.
    what : str
        What is compiled (``"the exact solver"``).
    seconds : float
        The typical compile time announced.
    """
    if dispatcher in _NOTICED or is_cached(dispatcher):
        return
    _NOTICED.add(dispatcher)
    where = "for this machine" if CACHE_ENABLED else "for this process (no cache folder)"
    print(f"pkcsf: compiling {what} once {where} (about {seconds:.0f} s)...", file=sys.stderr, flush=True)
