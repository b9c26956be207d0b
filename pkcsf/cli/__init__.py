"""The ``pkcsf`` command line.

::

    pkcsf report                                   # built-in scenarios: figures + tables (report/)
    pkcsf run scenarios/methotrexate_lumbar_vs_ommaya.toml --subjects 2000 --out results/mtx
    pkcsf escalate pemetrexed --doses 10,20,30,40,50 --design 3+3 --trials 2000
    pkcsf validate --out validation/
    pkcsf drugs | pkcsf models | pkcsf cite --drug pemetrexed

Conventions (docs/cli.md):

* bad input (a malformed or misspelled scenario, an unknown drug or route, a
  dose with the wrong unit, an output folder that cannot be written ...)
  prints **one line** ``pkcsf: error: <what> (<fix>)`` on stderr and exits
  with code 2; an unexpected failure prints its traceback and exits with 1;
* nothing is ever half-written: results go to a temporary folder next to the
  output folder and are moved into place only when everything succeeded.
  Into an existing folder, files of the same name are replaced and other
  files are left alone;
* progress bars (tqdm, on stderr) for long runs; ``--quiet`` turns them and
  the printed tables off.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
import traceback

from pkcsf.cli._util import PROG, _F, _Parser, _UsageError, _common, _desc, _one_line, _version
from pkcsf.cli.commands import COMMANDS
from pkcsf.core.errors import PkcsfError

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = _Parser(
        prog=PROG, formatter_class=_F,
        description=_desc("Simulate how drugs reach and leave the cerebrospinal fluid (leptomeningeal metastases): "
                    "scenarios, reports, virtual dose-escalation trials, validation."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf report                                     # built-in scenarios -> report/
              pkcsf run scenarios/methotrexate_lumbar_vs_ommaya.toml --subjects 500 --out results/mtx
              pkcsf escalate pemetrexed --doses 10,20,30,40,50 --design 3+3 --trials 2000
              pkcsf validate --out validation/
              pkcsf drugs
              pkcsf cite --drug pemetrexed

            Run 'pkcsf COMMAND --help' for the options of a command; docs/cli.md has them all.
            Bad input prints one line 'pkcsf: error: ...' and exits with code 2."""))
    parser.add_argument("--version", action="version", version=f"pkcsf {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"pkcsf.cli.commands.{name}").register(sub, common)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``pkcsf`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help, --version
        return int(e.code or 0)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 2
    args.argv = argv
    try:
        return int(args.func(args) or 0)
    except PkcsfError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (nothing was written)", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. 'pkcsf drugs | head'
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except Exception:  # unexpected: show where
        traceback.print_exc()
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
