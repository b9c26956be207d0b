"""``pkcsf drugs``, ``pkcsf models``, ``pkcsf cite``: what is available and where it comes from."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from pkcsf.cli._util import _F, _desc, _scenario_refs, _setup_refs
from pkcsf.core.errors import ScenarioError

if TYPE_CHECKING:
    import argparse


def _cmd_drugs(args) -> int:
    from pkcsf.clinical import cns
    from pkcsf.core.units import concentration_factor

    names = cns.available_drugs()
    if args.name:
        from pkcsf.core.errors import check_choice

        check_choice("drug", args.name.lower(), names, ScenarioError)
        names = [args.name.lower()]
    for i, n in enumerate(names):
        d = cns.drug(n)
        print(f"{d.name}: {d.form} form, MW {d.mw:g} g/mol")
        print(f"  routes: {', '.join(d.routes)}; CSF efflux variants: {', '.join(d.variants)}")
        if d.thresholds:
            thr = "; ".join(f"{k} {v:.4g} mg/L = {v * concentration_factor('umol/L', d.mw):.4g} umol/L"
                            for k, v in d.thresholds.items())
            print(f"  thresholds: {thr}")
        else:
            print("  thresholds: none sourced")
        if d.parameters.description:
            print(textwrap.fill(d.parameters.description, width=110, initial_indent="  ", subsequent_indent="  "))
        if not args.brief:
            print("  sources:")
            for r in d.sources:
                print(textwrap.fill(r, width=110, initial_indent="    - ", subsequent_indent="      "))
        if i < len(names) - 1:
            print()
    return 0


def _cmd_models(args) -> int:
    from pkcsf.engine.model import available_models, load_model

    models = available_models()
    names = sorted(models)
    if args.name:
        from pkcsf.core.errors import check_choice

        check_choice("model", args.name, names, ScenarioError)
        names = [args.name]
    for i, n in enumerate(names):
        m = load_model(n)
        print(f"{m.name}: {len(m.compartments)} compartments, {len(m.transfers)} transfers, "
              f"{len(m.parameters)} parameters ({models[n]})")
        print(textwrap.fill("compartments: " + ", ".join(m.compartment_names), width=110, initial_indent="  ",
                            subsequent_indent="    "))
        print(textwrap.fill("dosing sites: " + "; ".join(f"{s.name} -> {_site_targets(s)}" for s in m.sites),
                            width=110, initial_indent="  ", subsequent_indent="    "))
        if m.description and not args.brief:
            print(textwrap.fill(" ".join(m.description.split()), width=110, initial_indent="  ",
                                subsequent_indent="  "))
        if i < len(names) - 1:
            print()
    return 0


def _site_targets(site) -> str:
    """'spinal_lumbar (1 - F_LEAK), epidural (F_LEAK)' or 'plasma'."""
    parts = []
    for comp, frac in site.targets:
        parts.append(comp if str(frac) in ("1", "1.0") else f"{comp} ({frac})")
    return ", ".join(parts)


def _cmd_cite(args) -> int:
    from pkcsf.clinical import cns

    if (args.scenario is None) == (args.drug is None):
        raise ScenarioError("cite", args.scenario or args.drug, "give a scenario file or --drug NAME (one of them)",
                            "e.g. pkcsf cite scenarios/pemetrexed_dose_levels.toml, or pkcsf cite --drug pemetrexed")
    refs = []
    if args.scenario is not None:
        from pkcsf.clinical.scenario_file import load_scenario

        scn, out = load_scenario(args.scenario)
        refs = _scenario_refs(scn, out)
        head = f"References behind {args.scenario} ({scn.name}):"
    else:
        from pkcsf.core.errors import check_choice

        name = check_choice("--drug", args.drug.lower(), cns.available_drugs(), ScenarioError)
        variant = args.variant
        s = cns.setup(name, variant=variant)
        from pkcsf.clinical.scenario import default_population

        refs = _setup_refs(s, default_population(s))
        head = f"References behind {name} ({variant} CSF efflux, adult physiology):"
    print(head)
    for r in refs:
        print(textwrap.fill(r, width=110, initial_indent="- ", subsequent_indent="  "))
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
        "drugs", parents=[common], formatter_class=_F, help="list the drugs with routes, MW, thresholds, sources",
        description=_desc("List every drug and formulation: form, molecular weight, routes, CSF efflux variants, "
                    "cytotoxic thresholds (mg/L and umol/L) and the sources of its parameters."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf drugs
              pkcsf drugs pemetrexed
              pkcsf drugs --brief"""))
    p.add_argument("name", nargs="?", metavar="DRUG", help="only this drug")
    p.add_argument("--brief", action="store_true", help="without the sources")
    p.set_defaults(func=_cmd_drugs)


    p = sub.add_parser(
        "models", parents=[common], formatter_class=_F, help="list the models with compartments and sites",
        description=_desc("List the compartmental models found in models/ (and user paths): compartments, dosing "
                    "sites and description."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf models
              pkcsf models cns_csf_liposomal"""))
    p.add_argument("name", nargs="?", metavar="MODEL", help="only this model")
    p.add_argument("--brief", action="store_true", help="without the descriptions")
    p.set_defaults(func=_cmd_models)


    p = sub.add_parser(
        "cite", parents=[common], formatter_class=_F, help="references behind a scenario or a drug",
        description=_desc("Print the references behind a run: the model, every parameter set used (drug, physiology, "
                    "pathologies) and the named regimens' sources."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf cite scenarios/osimertinib_80_vs_160.toml
              pkcsf cite --drug pemetrexed
              pkcsf cite --drug osimertinib --variant saturable"""))
    p.add_argument("scenario", nargs="?", metavar="SCENARIO.toml", help="a scenario file")
    p.add_argument("--drug", metavar="NAME", help="a drug instead of a scenario")
    p.add_argument("--variant", default="linear", help="CSF efflux variant with --drug (default linear)")
    p.set_defaults(func=_cmd_cite)
