"""``pkcsf report``: the report of the built-in scenarios."""
from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pkcsf.cli._util import _F, PROG, _bars, _desc, _nonneg_int, _positive_int, _say, _Staging
from pkcsf.core.errors import PkcsfError, ScenarioError

if TYPE_CHECKING:
    import argparse


def _cmd_report(args) -> int:
    try:
        from pkcsf.report import build_report
    except ImportError as e:
        print(f"{PROG}: error: the report builder (pkcsf.report) is not available in this installation: {e}",
              file=sys.stderr)
        return 1
    import inspect

    kwargs = {"progress": _bars(args), "fmt": args.format}
    if args.subjects is not None:
        kwargs["subjects"] = args.subjects
    if args.seed is not None:
        kwargs["seed"] = args.seed
    params = inspect.signature(build_report).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        kwargs = {k: v for k, v in kwargs.items() if k in params}
    t0 = time.perf_counter()
    with _Staging(args.out) as stage:
        try:
            made = build_report(stage.tmp, **kwargs)
        except PkcsfError as e:
            opt = {"fmt": "--format", "subjects": "--subjects", "seed": "--seed"}.get(e.field)
            if opt is None:
                raise
            raise ScenarioError(opt, e.value, e.allowed, e.fix) from None
        rel = None
        if made is not None:
            try:
                rel = Path(made).resolve().relative_to(stage.tmp.resolve())
            except ValueError:
                rel = None
        target = stage.commit()
    where = target / rel if rel is not None else target
    _say(args, f"report written to {where} ({time.perf_counter() - t0:.1f} s)")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add the sub-command(s) of this module to the ``pkcsf`` parser.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command registry of the ``pkcsf`` parser (``parser.add_subparsers()``).
    common : argparse.ArgumentParser
        The parent parser with the options every command shares (``--quiet``, ``--no-progress``...).
    """
    p = sub.add_parser(
        "report", parents=[common], formatter_class=_F, help="build the report of the built-in scenarios",
        description=_desc("Run the built-in scenarios (methotrexate lumbar vs Ommaya, pemetrexed dose levels, "
                    "liposomal vs free cytarabine, osimertinib 80 vs 160 mg, osimertinib + IT pemetrexed, "
                    "validation, escalation) and write a report a clinician can read: report.html, PNG figures "
                    "and CSV tables."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf report                              # writes report/report.html
              pkcsf report --out /tmp/lm-report --subjects 2000 --seed 7
              pkcsf report --quiet"""))
    p.add_argument("--out", default="report", metavar="DIR", help="output folder (default: report/)")
    p.add_argument("--subjects", type=_positive_int, metavar="N",
                   help="virtual subjects per arm (default: the report's own)")
    p.add_argument("--seed", type=_nonneg_int, metavar="S", help="random seed (default: the report's own)")
    p.add_argument("--format", default="html", metavar="FMT", help="report format: html (default) or md")
    p.set_defaults(func=_cmd_report)
