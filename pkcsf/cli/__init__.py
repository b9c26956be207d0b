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
* nothing is ever half-written: results go to a staging folder next to the
  output folder, which is swapped into place by one rename only when
  everything succeeded (:mod:`pkcsf.core.output`). An existing folder is
  replaced only if pkcsf wrote it (it carries ``.pkcsf-output.json``) or it
  is empty; files a user added to it are kept. A full disk or any I/O error
  prints one line naming the file and exits with 2;
* Ctrl-C (SIGINT) and SIGTERM remove the staging folder, print one line and
  exit with 130 and 143; staging folders of killed runs are removed by the
  next run;
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
import warnings

from pkcsf.cli._util import _F, PROG, _common, _desc, _one_line, _Parser, _UsageError, _version
from pkcsf.cli.commands import COMMANDS
from pkcsf.core.errors import PkcsfError

_PY_SHOWWARNING = warnings.showwarning

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The ``pkcsf`` argument parser with every sub-command (docs/cli.md, ``pkcsf --help``).

    Returns
    -------
    argparse.ArgumentParser
        The parser; ``parse_args`` gives the namespace :func:`main` dispatches on.
    """
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


def _add_paths(folders) -> None:
    """``--path DIR`` (repeatable): folders searched for parameters/ and models/ before the built-in ones."""
    from pathlib import Path

    from pkcsf.core.errors import ScenarioError
    from pkcsf.core.paths import add_search_path

    for f in reversed(folders or []):      # the first --path is searched first
        if not Path(f).expanduser().is_dir():
            raise ScenarioError("--path", f, "must be an existing folder (holding parameters/ and/or models/)")
        add_search_path(f)


class _Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, systemd, Slurm), handled like Ctrl-C: staging removed, one line, exit 143."""


def _on_sigterm(signum, frame):
    raise _Terminated()


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pkcsf`` console script.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit code (docs/cli.md): 0 success (also ``--help``, ``--version``); 1 unexpected failure
        (traceback shown); 2 bad input or usage (one line ``pkcsf: error: ...`` on stderr naming the
        field, the value and the rule; nothing written); 130 interrupted (Ctrl-C); 143 terminated.

    Examples
    --------
    >>> from pkcsf.cli import main
    >>> main(["drugs"])  # doctest: +SKIP
    0
    """
    import signal
    import threading

    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                    signal.SIGTERM: signal.signal(signal.SIGTERM, _on_sigterm)}
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    try:
        return _main(argv)
    except KeyboardInterrupt as e:   # also while building the parser or between the handlers below
        return _interrupted(e)
    finally:
        warnings.showwarning = shown
        for sig, h in handlers.items():
            signal.signal(sig, h if h is not None else signal.SIG_DFL)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Show the package's own warnings (a coarse grid, doses after the window, failed subjects...) as one line
    ``pkcsf: warning: ...`` on stderr, like its errors; any other warning as Python shows it.
    """
    if category.__module__.split(".")[0] == "pkcsf":
        print(f"{PROG}: warning: {message}", file=file if file is not None else sys.stderr)
    else:
        _PY_SHOWWARNING(message, category, filename, lineno, file, line)


def _interrupted(e) -> int:
    from pkcsf.core.output import commits

    what = "terminated" if isinstance(e, _Terminated) else "interrupted"
    done = "nothing was written" if commits() == 0 else "output folders are complete or unchanged"
    print(f"{PROG}: {what} ({done})", file=sys.stderr)
    return 143 if isinstance(e, _Terminated) else 130


def _main(argv) -> int:
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
        _add_paths(getattr(args, "path", None))
        return int(args.func(args) or 0)
    except PkcsfError as e:
        print(f"{PROG}: error: {_one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        return _interrupted(e)
    except BrokenPipeError:  # e.g. 'pkcsf drugs | head'
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except OSError as e:  # a file that cannot be read or written (disk full, I/O error): one line
        where = f"{e.filename}: " if e.filename is not None else ""
        print(f"{PROG}: error: {where}{_one_line(e.strerror or e)} [errno {e.errno}]", file=sys.stderr)
        return 2
    except Exception:  # unexpected: show where
        traceback.print_exc()
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
