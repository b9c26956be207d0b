"""``pkcsf sensitivity``: which parameters drive a read-out of a scenario (tornado and Sobol indices)."""
from __future__ import annotations

import sys
import textwrap
from typing import TYPE_CHECKING

from pkcsf.cli._util import _F, _desc, _positive_int, _save_figure, _say, _Staging

if TYPE_CHECKING:
    import argparse


def _cmd_sensitivity(args) -> int:
    from pkcsf.clinical.scenario_file import load_scenario
    from pkcsf.clinical.sensitivity import sensitivity
    from pkcsf.core.errors import ScenarioError

    scn, _ = load_scenario(args.scenario)
    params = None
    if args.parameters:
        params = [p.strip() for p in args.parameters.split(",") if p.strip()]
        if not params:
            raise ScenarioError("--parameters", args.parameters, "comma-separated model parameter names")
    stage = _Staging(args.out) if args.out is not None else None
    warnings: list[str] = []
    try:
        res = sensitivity(scn, args.readout, parameters=params, method=args.method, factor=args.factor,
                          n=args.n, top=args.top, seed=args.seed, progress=False)
        if stage is not None:
            res.table.to_csv(stage.path(f"sensitivity_{res.method}.csv"), index=False)
            _save_figure(stage, f"sensitivity_{res.method}", lambda: res.plot(top=args.top), warnings, folder="")
            target = stage.commit()
    except BaseException:
        if stage is not None:
            stage.discard()
        raise
    t = res.table.head(args.top)
    if res.method == "local":
        lines = [f"{'parameter':<16} {'typical':>10} {'unit':<6} {'-':>8} {'+':>8} {'elasticity':>10}"]
        for r in t.itertuples():
            lines.append(f"{r.parameter:<16} {r.typical:>10.4g} {r.unit:<6} {100 * r.change_low:>+7.1f}% "
                         f"{100 * r.change_high:>+7.1f}% {r.elasticity:>10.3f}")
        head = (f"{res.readout}: typical {res.y_typical:.4g}; each parameter / and x {args.factor:g} "
                f"(change of the read-out; {res.n_evaluations} evaluations)")
    else:
        lines = [f"{'parameter':<16} {'S1':>7} {'+/-':>6} {'ST':>7} {'+/-':>6}"]
        for r in t.itertuples():
            lines.append(f"{r.parameter:<16} {r.S1:>7.3f} {r.S1_conf:>6.3f} {r.ST:>7.3f} {r.ST_conf:>6.3f}")
        head = (f"{res.readout}: Sobol indices, each parameter log-uniform over / and x {args.factor:g} "
                f"({res.n_evaluations} evaluations; +/- = 95% bootstrap interval half-width)")
    _say(args, head, *lines)
    for w in warnings:
        print(f"pkcsf: warning: {w}", file=sys.stderr)
    if stage is not None:
        _say(args, f"wrote sensitivity_{res.method}.csv and .png to {target}")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``pkcsf sensitivity`` to the parser.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command registry of the ``pkcsf`` parser (``parser.add_subparsers()``).
    common : argparse.ArgumentParser
        The parent parser with the options every command shares (``--quiet``, ``--no-progress``...).
    """
    p = sub.add_parser(
        "sensitivity", parents=[common], formatter_class=_F, help="which parameters drive a read-out (tornado, Sobol)",
        description=_desc("Local (one parameter at a time, tornado) or global (Sobol indices through SALib) "
                          "sensitivity of one read-out of a scenario file. Each evaluation is one virtual patient "
                          "with typical values except the parameters varied; every parameter ranges over "
                          "typical / FACTOR .. typical x FACTOR (fractions capped at 1). The read-out is "
                          "ARM:GROUP:METRIC (metrics: cmax, auc, tmax, cmax_last, auc_last, time_above[X], "
                          "longest_above[X]) or a ratio A / B of two."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf sensitivity scenarios/methotrexate_lumbar_vs_ommaya.toml \\
                  --readout "lumbar:ventricular:auc / ommaya:ventricular:auc"
              pkcsf sensitivity scenarios/methotrexate_lumbar_vs_ommaya.toml --method sobol --n 256 \\
                  --readout "lumbar:ventricular:auc / ommaya:ventricular:auc" --out results/sens"""))
    p.add_argument("scenario", metavar="SCENARIO.toml", help="scenario file (its arms, physiology, days, unit)")
    p.add_argument("--readout", required=True, metavar="ARM:GROUP:METRIC[ / ...]", help="the read-out to explain")
    p.add_argument("--method", choices=["local", "sobol"], default="local", help="local (default) or sobol")
    p.add_argument("--parameters", metavar="P1,P2,...",
                   help="parameters to vary (default: all positive ones; sobol: the top of a local screen)")
    p.add_argument("--factor", type=float, default=2.0, metavar="F", help="range typical/F .. typical*F (default 2)")
    p.add_argument("--n", type=_positive_int, default=256, metavar="N", help="Sobol base sample, a power of 2 (256)")
    p.add_argument("--top", type=_positive_int, default=10, metavar="K", help="parameters shown (default 10)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="Sobol scrambling seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="write sensitivity_<method>.csv and .png here")
    p.set_defaults(func=_cmd_sensitivity)
