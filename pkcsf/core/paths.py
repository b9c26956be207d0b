"""Where pkcsf finds model and parameter files.

Search order for ``models/`` and ``parameters/``:

1. folders added with :func:`add_search_path` (most recent first);
2. folders in the ``PKCSF_PATH`` environment variable (``os.pathsep``-separated);
   each may hold ``models/`` and ``parameters/`` subfolders, or the files directly;
3. the repository's top-level ``models/`` and ``parameters/`` (a source checkout
   or an editable install);
4. the copies installed as package data (``pkcsf/_data/``) by a regular install.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pkcsf.core.errors import PkcsfError

__all__ = ["add_search_path", "search_dirs", "builtin_dir", "read_toml"]

_USER: list[Path] = []
_PKG = Path(__file__).resolve().parent.parent   # pkcsf/ (this file is pkcsf/core/paths.py)


def add_search_path(path: str | Path) -> None:
    """Add a folder holding your own ``models/`` and/or ``parameters/``.

    Folders added later are searched first; ``PKCSF_PATH`` (a path list) adds folders at start-up.

    Parameters
    ----------
    path : str or Path
        A folder with ``models/`` and/or ``parameters/<kind>/`` sub-folders.

    Examples
    --------
    >>> add_search_path("~/my_pkcsf")  # doctest: +SKIP
    """
    p = Path(path).expanduser().resolve()
    if p in _USER:
        _USER.remove(p)
    _USER.insert(0, p)


def builtin_dir(kind: str) -> Path:
    """The built-in ``models`` or ``parameters`` folder.

    Parameters
    ----------
    kind : {"models", "parameters"}
        Which folder.

    Returns
    -------
    Path
        The repository folder when run from a checkout, else the copy inside the installed package.
    """
    repo = _PKG.parent / kind
    if repo.is_dir():
        return repo
    return _PKG / "_data" / kind


def search_dirs(kind: str) -> list[Path]:
    """The folders searched for ``kind``, user paths (:func:`add_search_path`, ``PKCSF_PATH``) first.

    Parameters
    ----------
    kind : str
        ``"models"`` or a parameter kind (``"drugs"``, ``"physiology"``, ...).

    Returns
    -------
    list of Path
        Existing folders, in search order.
    """
    roots = list(_USER)
    roots += [Path(p).expanduser() for p in os.environ.get("PKCSF_PATH", "").split(os.pathsep) if p]
    out: list[Path] = []
    for r in roots:
        for cand in (r / kind, r):
            if cand.is_dir() and cand not in out:
                out.append(cand)
                break
    b = builtin_dir(kind)
    if b.is_dir():
        out.append(b)
    return out


def read_toml(path: str | Path, error: type[PkcsfError], what: str) -> dict:
    """Read a TOML file; a missing or malformed file raises ``error`` naming ``what`` and the file.

    Parameters
    ----------
    path : str or Path
        The file.
    error : type of PkcsfError
        The error class raised.
    what : str
        What the file is (``"model file"``), named in errors.

    Returns
    -------
    dict
        The parsed document.
    """
    from pkcsf.core.tomlio import read

    return read(path, error, what)
