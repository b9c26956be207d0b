"""The pkcsf report: the regimens the leptomeningeal-metastasis field argues about, simulated and explained.

::

    from pkcsf.report import build_report
    path = build_report("report/")          # report/report.html + PNG figures + CSV tables, ~15-30 s

(or ``pkcsf report`` on the command line). What it simulates, for ``subjects`` virtual adults per arm
with the sourced default population (``pkcsf.clinical.scenario.default_population``):

1. methotrexate 12 mg by lumbar puncture versus Ommaya reservoir: one injection (ventricular, cisternal,
   lumbar CSF and plasma; time above 1 µmol/L) and the 4-week twice-weekly induction;
2. pemetrexed 10, 30 and 50 mg by both routes (one injection; time above the sourced IC50s);
3. free cytarabine 50 mg twice weekly versus liposomal cytarabine 50 mg once, over 14 days (free drug and
   encapsulated drug read out separately);
4. osimertinib 80 versus 160 mg daily for 4 weeks (plasma and CSF; CSF concentration relative to the
   label's IC50s), with the linear and the saturable CSF-efflux variants side by side;
5. osimertinib 160 mg daily plus intrathecal pemetrexed 30 mg (one course of Zhong 2024's schedule);
6. population bands (median, 5-95 %) for each; the assumed parameter values; the references; the
   validation summary (fold errors); the software and settings.

Everything is built in a staging folder next to ``out_dir`` and swapped into place by one rename only
when complete (:mod:`pkcsf.core.output`): a failure leaves ``out_dir`` as it was. An existing ``out_dir``
is replaced only if pkcsf wrote it (or it is empty); files a user added to it are kept.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pkcsf.core.errors import ScenarioError, check_choice
from pkcsf.core.output import Output
from pkcsf.report.build import _build
from pkcsf.report.scenarios import REPORT_SCENARIOS

__all__ = ["build_report", "REPORT_SCENARIOS"]


def build_report(out_dir: str | os.PathLike, *, subjects: int = 200, seed: int = 2024, progress: bool = True,
                 fmt: str = "html") -> Path:
    """Simulate the built-in scenarios and write a report a clinician can read.

    Parameters
    ----------
    out_dir : str or Path
        Folder to write (created if needed). Receives ``report.html`` (or ``report.md``), the figures
        (``fig*.png``) and the tables (``*.csv``). An existing folder must be empty or one pkcsf wrote
        (it carries ``.pkcsf-output.json``): its previous report is replaced whole, files a user added
        are kept.
    subjects : int
        Virtual patients per arm (default 200: population bands from 200 patients; about 15-30 s on two
        cores once the solvers are compiled, see ``benchmarks/bench_startup.py``).
    seed : int
        Random seed (patient *i* is the same in every arm).
    progress : bool
        Show a progress bar (stderr).
    fmt : {"html", "md"}
        Report format. Figures and tables are the same.

    Returns
    -------
    Path
        The report file (``out_dir/report.html`` or ``out_dir/report.md``).

    Notes
    -----
    Atomic: everything is built in a staging folder next to ``out_dir`` and swapped in by one rename
    when complete; on any error the staging folder is removed and ``out_dir`` is left as it was. A full
    disk or an I/O error raises :class:`~pkcsf.core.errors.OutputError` naming the file.

    Examples
    --------
    >>> path = build_report("report/", subjects=200)          # doctest: +SKIP
    >>> path.name                                              # doctest: +SKIP
    'report.html'
    """
    check_choice("fmt", fmt, ["html", "md"], ScenarioError)
    if isinstance(subjects, bool) or not isinstance(subjects, (int, np.integer)) or subjects < 1:
        raise ScenarioError("subjects", subjects, "must be a whole number >= 1")
    with Output(out_dir, field="out_dir") as stage:       # the same atomic output folder as the CLI
        path = _build(stage.tmp, subjects=int(subjects), seed=seed, progress=progress, fmt=fmt)
        out = stage.commit()
    return out / path.name
