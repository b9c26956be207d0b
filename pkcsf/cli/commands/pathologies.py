"""``pkcsf pathologies``: what each pathology of the CSF model changes, its range and its source."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from pkcsf.cli._util import _F, _desc

if TYPE_CHECKING:
    import argparse


def _cmd_pathologies(args) -> int:
    from pkcsf.clinical.cns import pathologies
    from pkcsf.clinical.prevalence import patient_populations

    t = pathologies()
    pops = patient_populations()
    if args.name:
        from pkcsf.core.errors import ScenarioError, check_choice

        names = sorted(set(t["scenario"]) - {""}) + sorted(t["parameter"]) + sorted(pops)
        check_choice("pathology", args.name, names, ScenarioError)
        t = t[(t["scenario"] == args.name) | (t["parameter"] == args.name)]
        pops = {k: v for k, v in pops.items() if k == args.name}
    if args.quiet:
        return 0
    for r in t.itertuples():
        head = f"{r.scenario} (pathologies={{'{r.scenario}': True}})" if r.scenario else f"{r.parameter} (by value)"
        print(head)
        val = f"{r.scenario_value:g}" if r.scenario else "-"
        u = "" if r.unit == "1" else f" {r.unit}"
        print(f"  sets {r.parameter} = {val}{u} (healthy default {r.default:g}; allowed {r.range}{u}); "
              f"source: {r.source}")
        if not args.brief:
            print(textwrap.fill(r.meaning, width=100, initial_indent="  ", subsequent_indent="  "))
    for name, spec in pops.items():
        every = ", ".join(spec.get("pathologies", [])) or "none"
        some = ", ".join(f"{k} {p:.1%}" for k, p in spec.get("prevalence", {}).items()) or "none"
        print(f"{name} (patient population: patients={name!r}; [[arms]] patients = \"{name}\")")
        print(f"  every patient: {every}; some patients: {some}; sources: {', '.join(spec.get('sources', []))}")
        if not args.brief:
            print(textwrap.fill(" ".join(spec.get("description", "").split()), width=100, initial_indent="  ",
                                subsequent_indent="  "))
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``pkcsf pathologies`` to the parser.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command registry of the ``pkcsf`` parser (``parser.add_subparsers()``).
    common : argparse.ArgumentParser
        The parent parser with the options every command shares (``--quiet``, ``--no-progress``...).
    """
    p = sub.add_parser(
        "pathologies", parents=[common], formatter_class=_F,
        help="what each pathology changes (shunt, blocks, turnover, leak), with range and source",
        description=_desc("List the pathologies of the CSF model: the named scenarios (pathologies={'vp_shunt': "
                          "True} in Python, [pathologies] vp_shunt = true in a scenario file), the parameter each "
                          "sets and to what value, the healthy default, the allowed range and the source or "
                          "assumption behind it; then the named patient populations (Arm(patients=...), [[arms]] "
                          "patients = ...): the pathologies every patient has and the share with each of the others."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf pathologies
              pkcsf pathologies vp_shunt
              pkcsf pathologies leptomeningeal_metastases
              pkcsf pathologies --brief"""))
    p.add_argument("name", nargs="?", metavar="NAME", help="only this scenario or parameter")
    p.add_argument("--brief", action="store_true", help="without the explanations")
    p.set_defaults(func=_cmd_pathologies)
