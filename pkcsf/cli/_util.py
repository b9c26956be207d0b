"""Shared pieces of the command line: one-line errors, output staging, tables, figures, argument types,
references. Private to :mod:`pkcsf.cli`.
"""
from __future__ import annotations

import argparse
import os
import sys
import textwrap

from pkcsf.core.errors import PkcsfError, ScenarioError
from pkcsf.core.output import Output as _Staging  # the one atomic output folder (core/output.py)

PROG = "pkcsf"
_F = argparse.RawDescriptionHelpFormatter


class _UsageError(Exception):
    """An argparse error, reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage + error and exits; we want one line and exit 2
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _write_table(df, stage: _Staging, stem: str, fmt: str) -> str:
    name = f"{stem}.{fmt}"
    if fmt == "parquet":
        df.to_parquet(stage.path(name), index=False)
    else:
        df.to_csv(stage.path(name), index=False)
    return name


def _check_format(fmt: str, field="--format"):
    if fmt == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            try:
                import fastparquet  # noqa: F401
            except ImportError:
                raise ScenarioError(field, fmt, "parquet needs pyarrow, which is not installed",
                                    "pip install pyarrow, or use --format csv") from None


def _bars(args) -> bool:
    """Progress bars: on a terminal, unless --quiet."""
    return not getattr(args, "quiet", False) and sys.stderr.isatty()


def _say(args, *lines):
    if not getattr(args, "quiet", False):
        for ln in lines:
            print(ln)


def _save_figure(stage, name, make, warnings, folder: str = "figures"):
    """Draw with ``make()`` (returns Axes or an array of Axes) and save as ``folder/name.png`` (``folder=""``: at
    the top of the output); a plotting failure is a warning.
    """
    rel = f"{folder}/{name}.png" if folder else f"{name}.png"
    try:
        import numpy as np

        if _plotting() is None:
            raise ImportError("matplotlib is not available")
        axes = make()
        ax = np.asarray(axes, dtype=object).ravel()[0]
        fig = ax.figure
        fig.savefig(stage.path(rel), dpi=130, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)
        return rel
    except Exception as e:  # plotting is optional: the tables are the result
        warnings.append(f"figure {name} skipped: {type(e).__name__}: {_one_line(e)}")
        if rel in stage.files:
            stage.files.remove(rel)
        return None


def _plotting():
    try:
        import matplotlib

        if not os.environ.get("MPLBACKEND"):
            matplotlib.use("Agg")
        import pkcsf.plotting as plotting
    except ImportError:
        return None
    return plotting


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def _finite(text) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if v != v or v in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return v


def _positive_float(text) -> float:
    v = _finite(text)
    if v <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return v


def _days(text) -> float:
    """A number of days, or a time with its unit ("2 weeks", "36 h"): the package's one time-unit table."""
    try:
        return _positive_float(text)
    except argparse.ArgumentTypeError:
        pass
    from pkcsf.core.units import parse_quantity

    try:
        hours = parse_quantity(text, "time", field="days")
    except PkcsfError:
        raise argparse.ArgumentTypeError(
            f"must be a number of days or a time such as '2 weeks', got {text!r}") from None
    if not hours > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text!r}")
    return hours / 24.0


def _probability(text) -> float:
    v = _finite(text)
    if not 0 < v < 1:
        raise argparse.ArgumentTypeError(f"must be a probability strictly between 0 and 1, got {text!r}")
    return v


def _cli_error(e: PkcsfError, options: dict) -> PkcsfError:
    """The same error named by its command-line option (``BOIN.target`` -> ``--target-dlt``), if known."""
    for internal, opt in options.items():
        if e.field == internal or e.field.endswith("." + internal):
            return type(e)(opt, e.value, e.allowed, e.fix)
        if e.field.startswith(internal + "."):
            return type(e)(f"{opt} ({e.field[len(internal) + 1:]})", e.value, e.allowed, e.fix)
    return e


def _version() -> str:
    from pkcsf.core.version import __version__

    return __version__


def _model_refs(setup) -> list[str]:
    return [f"model {setup.model.name}: {r}" for r in getattr(setup.model, "references", ())]


def _setup_refs(setup, population=None) -> list[str]:
    """Model, parameter-set and population references of one setup.

    ``Setup.cite()`` lists the sources of values and thresholds; the sources of
    the between-subject variability, of the covariate effects and of the
    demographics are added here (they shape every population run too).
    """
    from pkcsf.clinical.parameters import SPECIAL_SOURCES

    refs = _model_refs(setup) + list(setup.cite())
    for ps in setup.sets:
        keys = [v.source for v in getattr(ps, "variability", {}).values()]
        keys += [getattr(e, "source", "") for e in getattr(ps, "covariates", {}).values()]
        for k in keys:
            if k in ps.references:
                refs.append(f"[{k}] {ps.references[k]}")
            elif k and k not in SPECIAL_SOURCES and k != "user":
                refs.append(k)
    demo = getattr(population, "demographics", None)
    for k, v in (getattr(demo, "sources", None) or {}).items():
        refs.append(f"[{k}] {v}")
    out = []
    for r in refs:
        if r not in out:
            out.append(r)
    return out


def _scenario_refs(scn, out=None) -> list[str]:
    """References behind a scenario: models, parameter sets, population and the named regimens used."""
    from pkcsf.clinical import cns
    from pkcsf.clinical.regimens import REGIMEN_SOURCES
    from pkcsf.clinical.scenario import population_for as _population_for

    refs = []
    for arm in scn.arms:
        for d in _arm_drugs(arm):
            s = cns.setup(d, physiology=scn.physiology, variant=arm.variant, pathologies=scn.pathologies,
                          age=scn.age, metabolite=arm.metabolite)
            try:
                pop = _population_for(scn, s)
            except PkcsfError:
                pop = None
            refs += [r for r in _setup_refs(s, pop) if r not in refs]
    if out is not None:
        for text in out.arm_regimens.values():
            name = text.split("(", 1)[0]
            r = f"regimen {name}: {REGIMEN_SOURCES[name]}" if name in REGIMEN_SOURCES else None
            if r and r not in refs:
                refs.append(r)
    return refs


def _arm_drugs(arm) -> list[str]:
    from pkcsf.clinical import cns
    from pkcsf.clinical.scenario import _as_regimen

    if arm.is_event_table:          # one drug per event table: the arm's
        return [cns.drug(arm.drug_object(arm.drug_name)).name]
    reg = _as_regimen(arm.regimen, arm.drug, "regimen")
    out = []
    for dz in reg.doses:
        d = cns.drug(dz.drug or arm.drug).name
        if d not in out:
            out.append(d)
    return out


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _desc(text: str) -> str:
    """Paragraphs filled to 90 columns (RawDescriptionHelpFormatter keeps the epilog's layout as written)."""
    return "\n\n".join(textwrap.fill(" ".join(par.split()), width=90) for par in text.split("\n\n"))


def _common():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars and no printed tables")
    p.add_argument("--path", action="append", metavar="DIR",
                   help="a folder with your own parameters/ (drugs) and models/, searched first (repeatable; "
                        "like PKCSF_PATH; docs/own_drug.md)")
    return p
