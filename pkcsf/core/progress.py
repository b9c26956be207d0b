"""The one progress bar of pkcsf: a ``tqdm`` bar on standard error, or nothing.

Every long loop (chunks of subjects, scenario arms, dose levels of an escalation, report steps) asks
:func:`progress_bar` for its bar, so the rule for when a bar shows is written once: ``progress=True``
shows it, ``False`` hides it, ``None`` leaves it to the caller's ``default`` (typically: large runs on a
terminal). ``tqdm`` is imported only when a bar is shown.
"""
from __future__ import annotations

import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["progress_bar"]


def progress_bar(progress: bool | None, *, total: int, desc: str, unit: str, default: bool = False,
                 leave: bool = True) -> tqdm | None:
    """A ``tqdm`` bar over ``total`` steps, or ``None`` when no bar is to be shown.

    Parameters
    ----------
    progress : bool or None
        ``True`` shows the bar, ``False`` hides it, ``None`` uses ``default``.
    total : int
        Number of steps (the caller calls ``bar.update(1)`` after each).
    desc : str
        Label before the bar (``"simulating"``).
    unit : str
        Name of one step (``"chunk"``, ``"dose"``).
    default : bool, optional
        Whether to show the bar when ``progress`` is None (default False).
    leave : bool, optional
        Keep the finished bar on screen (default True).

    Returns
    -------
    tqdm.tqdm or None
        The bar (close it when done), or None.

    Examples
    --------
    >>> bar = progress_bar(False, total=3, desc="simulating", unit="chunk")
    >>> bar is None
    True
    """
    if not (default if progress is None else progress):
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit=unit, leave=leave, file=sys.stderr)
