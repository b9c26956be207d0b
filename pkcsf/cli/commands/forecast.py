"""``pkcsf forecast``: a patient's measured concentrations -> his own profile, with an interval (TDM for the CSF)."""
from __future__ import annotations

import argparse
import sys
import textwrap

from pkcsf.cli._util import _F, _desc, _positive_int, _save_figure, _say, _Staging


def _cmd_forecast(args) -> int:
    import warnings as _warnings

    from pkcsf.clinical.forecast import UnreliableForecastWarning, answer_questions, forecast, load_forecast_file

    kwargs, questions = load_forecast_file(args.file)
    if args.samples is not None:
        kwargs["samples"] = args.samples
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always", UnreliableForecastWarning)
        res = forecast(**kwargs)
    for w in caught:            # the forecast's own problems are in res.problems, printed below
        if not issubclass(w.category, UnreliableForecastWarning):
            _warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    lines = answer_questions(res, questions)
    warnings: list[str] = list(res.problems)
    stage = _Staging(args.out) if args.out is not None else None
    try:
        if stage is not None:
            res.observations.to_csv(stage.path("observations.csv"), index=False)
            res.profile.to_csv(stage.path("profile.csv"), index=False)
            import pandas as pd

            pd.DataFrame({"parameter": res.parameters.index, "typical": res.typical[res.parameters.index].values,
                          "individual": res.parameters.values}).to_csv(stage.path("parameters.csv"), index=False)
            _save_figure(stage, "forecast", res.plot, warnings, folder="")
            (stage.path("answers.txt")).write_text("\n".join(lines + [f"warning: {w}" for w in res.problems]) + "\n")
            target = stage.commit()
    except BaseException:
        if stage is not None:
            stage.discard()
        raise
    o = res.observations
    _say(args, f"{res.drug}: {len(o)} observations; unit {res.unit}; OFV {res.ofv:.2f}; "
               f"posterior draws ESS {res.ess:.0f} of {res.proposals}"
               + ("" if res.interval_reliable else f" (below the {res.ess_needed:.0f} needed: intervals not reported)")
               + ("" if res.reliable else "; NOT RELIABLE, see the warnings"),
         f"{'time (h)':>9} {'group':<12} {'DV':>9} {'PRED':>9} {'IPRED':>9}",
         *[f"{r.time:>9.1f} {r.group:<12} {r.DV:>9.3g} {r.PRED:>9.3g} {r.IPRED:>9.3g}" for r in o.itertuples()],
         *lines)
    for w in warnings:
        print(f"pkcsf: warning: {w}", file=sys.stderr)
    if stage is not None:
        _say(args, f"wrote observations.csv, profile.csv, parameters.csv, forecast.png and answers.txt to {target}")
    return 0


def _samples(text: str) -> int:
    """``--samples``: a whole number of posterior draws in [100, 100000] (the forecast's own bounds)."""
    v = _positive_int(text)
    if not 100 <= v <= 100_000:
        raise argparse.ArgumentTypeError(f"must be 100 to 100000 posterior draws, got {v}")
    return v


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``pkcsf forecast`` to the parser.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command registry of the ``pkcsf`` parser (``parser.add_subparsers()``).
    common : argparse.ArgumentParser
        The parent parser with the options every command shares (``--quiet``, ``--no-progress``...).
    """
    p = sub.add_parser(
        "forecast", parents=[common], formatter_class=_F,
        help="individual forecast from measured concentrations (Bayesian, MAP)",
        description=_desc("Individualise the model for one patient: from the doses received and one or more measured "
                          "concentrations (CSF at a named site, or plasma), the maximum a posteriori parameters, the "
                          "patient's predicted profile with an interval, and answers to the questions of the file "
                          "(when does the concentration fall below a level; which next dose keeps it above a level "
                          "for a duration). File format: docs/forecast.md."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf forecast scenarios/forecasts/methotrexate_ommaya.toml
              pkcsf forecast patient.toml --out results/patient-01"""))
    p.add_argument("file", metavar="FORECAST.toml", help="forecast file (drug, regimen, observations, patient)")
    p.add_argument("--samples", type=_samples, metavar="N", help="posterior draws, 100 to 100000 (default 1000)")
    p.add_argument("--out", metavar="DIR",
                   help="write observations.csv, profile.csv, parameters.csv, forecast.png and answers.txt")
    p.set_defaults(func=_cmd_forecast)
