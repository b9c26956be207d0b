"""``pkcsf warmup``: compile every kernel once, up front (for installs that want no wait later)."""
from __future__ import annotations

import textwrap
import time
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pkcsf.cli._util import _F, _desc

if TYPE_CHECKING:
    import argparse

# what each step exercises; a step compiles only what is not already in the cache folder
STEPS = ("exact", "rodas5p", "radau", "dopri5", "expint", "readouts", "position")


def warmup(steps: Sequence[str] = STEPS, say: Callable[[str], object] = print) -> dict[str, float]:
    """Compile (or load from the cache folder) the kernels of ``steps``.

    Parameters
    ----------
    steps : sequence of str
        Steps of :data:`STEPS` (default all): ``exact``, ``rodas5p``, ``radau``, ``dopri5``, ``expint`` (the solvers, on a
        tiny problem of the reference models), ``readouts`` (the compiled read-outs of the clinical
        scenarios, a two-subject scenario) and ``position`` (the exact solver that switches the rate matrix when a
        patient sits up after a lumbar dose).
    say : callable
        Receives one line of progress per step, and where the kernels are kept (default :func:`print`).

    Returns
    -------
    dict of str to float
        Seconds per step.
    """
    import numpy as np

    from pkcsf.clinical.scenario import Target, simulate_drug
    from pkcsf.core import jit
    from pkcsf.engine.dosing import Dose
    from pkcsf.engine.model import load_model
    from pkcsf.engine.simulate import simulate

    times = {}
    for step in steps:
        t0 = time.perf_counter()
        if step == "readouts":
            # a per-dose target too: its run-length kernel (readouts._min_interval_run) is compiled on first use
            with warnings.catch_warnings():         # a one-day grid: its Cmax warning is not the point here
                warnings.simplefilter("ignore")
                res = simulate_drug("methotrexate", "12 mg ommaya once", subjects=2, days=1, seed=0, progress=False,
                                    targets=[Target("ventricular", "1 umol/L", "6 h")])
                res.summary(), res.targets()
                # and the Rodas5P solver with its read-outs (a saturable model: osimertinib's BBB efflux)
                simulate_drug("osimertinib", "80 mg oral once", subjects=2, days=1, seed=0, progress=False,
                              variant="saturable").summary()
        elif step == "position":
            with warnings.catch_warnings():         # a one-day grid: its Cmax warning is not the point here
                warnings.simplefilter("ignore")
                simulate_drug("methotrexate", "12 mg lumbar once", subjects=2, days=1, seed=0, progress=False,
                              position="upright 1-24 h").summary()
        else:
            name = "reference_p1" if step == "exact" else "reference_p2"
            model = load_model(name)
            params = {p: 1.0 for p in model.parameter_names}
            dose = Dose(1.0, model.site_names[0]).repeat(every=2.0, n=2)
            simulate(model, dose, params, times=np.arange(0.0, 5.0), solver=step)
        times[step] = time.perf_counter() - t0
        say(f"{step}: ready ({times[step]:.1f} s)")
    say(f"compiled kernels are in {jit.CACHE_DIR}" if jit.CACHE_ENABLED
        else "no writable cache folder: kernels were compiled for this process only (set PKCSF_CACHE_DIR)")
    return times


def _cmd_warmup(args) -> int:
    steps = args.only or list(STEPS)
    warmup(steps, say=(lambda *a: None) if args.quiet else print)
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
        "warmup", parents=[common], formatter_class=_F, help="compile the solvers and read-outs once, now",
        description=_desc("Compile every compiled kernel (the exact, Rodas5P, Radau and explicit Dormand-Prince solvers, the read-outs and the "
                          "exact solver of a patient who sits up after a lumbar dose) "
                          "for this machine and keep them in the cache folder, so that no later run waits for a "
                          "first compilation (about a minute on two cores; a cached kernel loads in a fraction of "
                          "a second). The folder: PKCSF_CACHE_DIR, else ~/.cache/pkcsf/numba."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf warmup
              pkcsf warmup --only exact readouts"""))
    p.add_argument("--only", nargs="+", choices=STEPS, metavar="STEP",
                   help="only these: " + ", ".join(STEPS))
    p.set_defaults(func=_cmd_warmup)
