"""One TOML reader for every file pkcsf reads (models, parameter sets, scenarios, records).

* Python 3.10 has no ``tomllib``: the ``tomli`` package (same API) is used there.
* A UTF-8 byte-order mark (Windows editors) is accepted.
* Files beyond :data:`MAX_BYTES`, text that is not UTF-8, and nesting deeper than Python can parse
  (``a = [[[[...]]]]`` 20,000 deep) give one :class:`~pkcsf.core.errors.PkcsfError`, not a
  RecursionError or MemoryError.
* Parsed documents are cached by their text (issue 11: the report's 38 ``cns.setup`` calls parsed
  the same parameter files ~1,000 times, 2.9 s). The key is the text itself, not the path and time
  stamp, so an edited file (even within the file system's time-stamp resolution) is parsed again;
  every caller gets its own copy, so no caller can change what another reads.
"""
from __future__ import annotations

import datetime as _dt
import threading
from collections import OrderedDict
from pathlib import Path

try:  # Python >= 3.11
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

from pkcsf.core.errors import PkcsfError

__all__ = ["tomllib", "TOMLDecodeError", "loads", "read", "MAX_BYTES", "clear_cache"]

TOMLDecodeError = tomllib.TOMLDecodeError
MAX_BYTES = 32 * 1024 * 1024          # the largest pkcsf file in the repository is < 1 MB
_BOM = "\ufeff"

#: parsed documents by text (least recently used first); texts above _CACHE_MAX_CHARS are not kept
_CACHE: OrderedDict[str, dict] = OrderedDict()
_CACHE_ENTRIES = 256                  # the repository has ~150 TOML files
_CACHE_MAX_CHARS = 1024 * 1024
_LOCK = threading.Lock()
#: TOML values that are immutable (shared between copies); tables and arrays are copied
_ATOMS = (str, int, float, bool, _dt.datetime, _dt.date, _dt.time)


def _copy(obj):
    """A copy of a parsed document: new dicts and lists, the immutable values shared (5-10x faster than
    ``copy.deepcopy``).
    """
    if isinstance(obj, dict):
        return {k: (v if isinstance(v, _ATOMS) else _copy(v)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [v if isinstance(v, _ATOMS) else _copy(v) for v in obj]
    return obj


def clear_cache() -> None:
    """Forget every parsed document (they are otherwise kept for the life of the process, keyed by text)."""
    with _LOCK:
        _CACHE.clear()


def _parse(text: str) -> dict:
    if len(text) > _CACHE_MAX_CHARS:
        return tomllib.loads(text)
    with _LOCK:
        hit = _CACHE.get(text)
        if hit is not None:
            _CACHE.move_to_end(text)
    if hit is None:
        hit = tomllib.loads(text)         # raises for invalid text: nothing is cached then
        with _LOCK:
            _CACHE[text] = hit
            if len(_CACHE) > _CACHE_ENTRIES:
                _CACHE.popitem(last=False)
    return _copy(hit)


def loads(text: str, *, error: type[PkcsfError] = PkcsfError, what: str = "TOML text") -> dict:
    """Parse TOML text; any failure raises ``error(what, ...)`` in one line.

    Parameters
    ----------
    text : str
        The TOML document.
    error : type of PkcsfError, optional
        The error class raised.
    what : str, optional
        What the text is, named in errors.

    Returns
    -------
    dict
        The parsed document.

    Examples
    --------
    >>> loads("a = 1")
    {'a': 1}
    """
    if text.startswith(_BOM):
        text = text[1:]
    if len(text) > MAX_BYTES:
        raise error(what, f"{len(text)} characters", f"is larger than pkcsf reads ({MAX_BYTES // 2**20} MiB)")
    try:
        return _parse(text)
    except TOMLDecodeError as exc:
        raise error(what, str(exc), "is not valid TOML") from None
    except RecursionError:
        raise error(what, "nested arrays or tables", "are nested too deeply to read (keep nesting shallow)") from None
    except MemoryError:
        raise error(what, "the file", "is too large to read into memory") from None


def read(path: str | Path, error: type[PkcsfError] = PkcsfError, what: str = "file") -> dict:
    """Read a TOML file (see :func:`loads`); a missing or unreadable file raises ``error``.

    Parameters
    ----------
    path : str or Path
        The file.
    error : type of PkcsfError, optional
        The error class raised.
    what : str, optional
        What the file is, named in errors.

    Returns
    -------
    dict
        The parsed document.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise error(f"{what} {path.name}", f"{size} bytes",
                        f"is larger than pkcsf reads ({MAX_BYTES // 2**20} MiB)")
        raw = path.read_bytes()
    except FileNotFoundError:
        raise error(what, str(path), "the file does not exist") from None
    except IsADirectoryError:
        raise error(what, str(path), "is a folder, not a file") from None
    except OSError as exc:
        raise error(what, str(path), f"cannot be read: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{what} {path.name}", f"byte {exc.start}", "is not UTF-8 text (save the file as UTF-8)") from None
    return loads(text, error=error, what=f"{what} {path.name}")
