"""How much memory the machine has now, and sizes written for people (shared by every layer's work estimates)."""
from __future__ import annotations

import os

__all__ = ["available_memory", "format_bytes"]


def available_memory() -> int | None:
    """Bytes of memory available now (Linux: MemAvailable), else the physical memory, else None.

    Returns
    -------
    int or None
    """
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def format_bytes(b: float) -> str:
    """``1.5 GiB``, ``826 MiB``, ``12 KiB``.

    Parameters
    ----------
    b : float
        A size in bytes.

    Returns
    -------
    str
    """
    for unit, f in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if b >= f:
            return f"{b / f:.3g} {unit}"
    return f"{b / 1024:.3g} KiB"
