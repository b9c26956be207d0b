"""``pkcsf validate``: the model against published observations."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from pkcsf.cli._util import _F, _bars, _desc, _Staging

if TYPE_CHECKING:
    import argparse


def _cmd_validate(args) -> int:
    import numpy as np
    import pandas as pd

    from pkcsf.clinical.validation import (
        ObservationError,
        check_observations,
        counts,
        load_observations,
        run_validation,
        write_validation_report,
    )

    observations = None
    if args.observations:
        frames = [load_observations(f) for f in args.observations]      # each checked; errors name file and line
        observations = check_observations(pd.concat(frames, ignore_index=True), " + ".join(args.observations))
    stage = _Staging(args.out) if args.out is not None else None
    try:
        if args.calibration and args.uncertainty is None:
            from pkcsf.core.errors import ParameterError

            raise ParameterError("--calibration", " ".join(args.calibration),
                                 "goes with --uncertainty N (it names whose parameter uncertainty is drawn)")
        if args.uncertainty is not None:
            from pkcsf.clinical.predictive_check import validation_intervals


            table = validation_intervals(observations, model=args.model, n=args.uncertainty,
                                         calibration=args.calibration, progress=_bars(args))
        else:
            table = run_validation(observations, model=args.model)
        if table.empty or "status" not in table.columns:     # check_observations refuses a table without rows
            raise ObservationError("observations", " + ".join(args.observations or ["observations.csv"]),
                                   "at least one observation row")
        failed = table[table["status"].str.startswith("error")].drop_duplicates("id")
        if len(failed):                    # an incomplete validation is refused, not written
            first = failed.iloc[0]
            raise ObservationError(f"{len(failed)} of {table['id'].nunique()} observations could not be simulated; "
                                   "first", first["id"], first["status"][len("error: "):],
                                   "fix or remove the row; its drug, route, site and quantity must exist in the "
                                   "model (pkcsf drugs, pkcsf models)")
        if stage is not None:
            write_validation_report(stage.tmp, table)
            target = stage.commit()
    except BaseException as e:
        if stage is not None:
            stage.fail(e)         # staging removed; an OSError becomes one line naming the file
        raise
    if not args.quiet:
        cols = ["id", "drug", "variant", "quantity", "observed", "predicted", "unit", "fold_error", "status"]
        if "interval_lo" in table.columns:
            cols[7:7] = ["interval_fold_lo", "interval_fold_hi"]
        with pd.option_context("display.width", 200, "display.max_rows", 1000, "display.max_colwidth", 40):
            print(table[cols].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
        judged = table[~table["status"].str.startswith("not judged")]
        fe = judged["fold_error"].to_numpy(dtype=float)
        ok = np.isfinite(fe) & (fe > 0)
        gm = float(np.exp(np.mean(np.abs(np.log(fe[ok]))))) if ok.any() else float("nan")
        print(f"\n{len(judged)} judged points: {int(judged['within_2fold'].sum())} within 2-fold, "
              f"{int(judged['within_1_5fold'].sum())} within 1.5-fold; geometric mean fold error {gm:.2f}; "
              f"{int(judged['status'].str.startswith('FAIL').sum())} failures "
              f"({int((judged['status'] == 'FAIL (flagged)').sum())} flagged with a hypothesis)")
        for role, (n, w2, w15) in counts(table).items():
            print(f"  {role} rows: {n}, within 2-fold {w2} ({w2 / n:.0%}), within 1.5-fold {w15} ({w15 / n:.0%})")
        if "interval_lo" in table.columns:
            from pkcsf.clinical.validation import miss_reach

            a, m = table.attrs, miss_reach(table)
            print(f"parameter uncertainty ({a['level']:.0%} intervals, {a['n']} sets of {a['calibration']}): of the "
                  f"{m['misses']} validation points outside 2-fold, {m['reach']} have an interval reaching within "
                  f"2-fold, {m['outside']} do not, {m['unmoved']} are not moved by its values")
            if m["short"]:
                print(f"  {len(m['short'])} rows could not be simulated with every parameter set (interval over the "
                      f"rest, column interval_n): {', '.join(m['short'])}")
        if stage is not None:
            print(f"wrote validation.csv, validation.md and validation.png to {target}")
    return 0


def _parameter_sets(text: str) -> int:
    """``--uncertainty N``: a whole number of parameter sets from 2 (an interval needs two) to 10000."""
    import argparse

    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number of parameter sets, got {text!r}") from None
    if not 2 <= v <= 10_000:
        raise argparse.ArgumentTypeError(f"must be from 2 to 10000 parameter sets (200 is a good size), got {v}")
    return v


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
        "validate", parents=[common], formatter_class=_F, help="compare the model with published observations",
        description=_desc("Simulate every published observation of parameters/validation/observations.csv (or of "
                    "your own file, --observations) and print the fold error (predicted/observed) of each; with --out "
                    "also write validation.csv and the predicted-vs-observed plot validation.png and validation.md "
                    "(the table, and every miss with its hypothesis). A row the model cannot simulate (an unknown "
                    "site, say) stops the run with an error naming it; nothing is written."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf validate
              pkcsf validate --out validation/
              pkcsf validate --model v3
              pkcsf validate --uncertainty 200 --out validation/        # with 90% intervals from the posterior
              pkcsf validate --observations observations_v3_candidates     # the held-out rows
              pkcsf validate --observations my_patients.csv --out my_validation/"""))
    p.add_argument("--out", metavar="DIR", help="write validation.csv, validation.md and validation.png here")
    p.add_argument("--observations", metavar="FILE", action="append",
                   help="your own observations (CSV, the columns of parameters/validation/observations.csv; "
                        "docs/validation.md) or a built-in file by name, e.g. observations_v3_candidates "
                        "(the held-out rows); repeatable; default: the built-in observations.csv")
    p.add_argument("--uncertainty", metavar="N", type=_parameter_sets, default=None,
                   help="also simulate every observation with N parameter sets drawn from the CSF-transport "
                        "calibration's posterior and give each prediction its 90%% interval (columns interval_*, "
                        "within_interval, interval_reaches_2fold): which misses the calibration's uncertainty "
                        "reaches; each row's sets are solved together, 200 sets take about half a minute")
    p.add_argument("--calibration", metavar="NAME", action="append", default=None,
                   help="with --uncertainty: the calibration whose parameter sets are drawn (repeatable, drawn "
                        "independently; default: the CSF transport of the model, csf_transport for v2); e.g. "
                        "--calibration csf_transport --calibration cytarabine_liposomal adds the liposomal release")
    p.add_argument("--model", choices=["v2", "v3"], default=None,
                   help="CNS model version (default: pkcsf.clinical.cns.DEFAULT_CNS_MODEL); "
                        "v3 = segmented spinal canal")
    p.set_defaults(func=_cmd_validate)
