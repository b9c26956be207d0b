"""``pkcsf new-drug``: write a commented drug-file template into your own folder (docs/own_drug.md)."""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from pkcsf.cli._util import _F, _desc

if TYPE_CHECKING:
    import argparse


def _cmd_new_drug(args) -> int:
    from pkcsf.clinical.drugfile import write_drug_template

    path = write_drug_template(args.name, like=args.like, out=args.out, overwrite=args.force)
    if not args.quiet:
        print(f"wrote {path}")
        print("next: fill in every value and its source (source = \"TODO\" is refused), then make the folder known:")
        print(f"  export PKCSF_PATH={args.out}      (or: pkcsf ... --path {args.out}; in Python: "
              f"pk.add_search_path({str(args.out)!r}))")
        print(f"  pkcsf drugs {args.name}            # checks every value and its source")
    return 0


def register(sub: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    """Add ``new-drug`` to the ``pkcsf`` parser.

    Parameters
    ----------
    sub : argparse._SubParsersAction
        The sub-command registry of the ``pkcsf`` parser (``parser.add_subparsers()``).
    common : argparse.ArgumentParser
        The parent parser with the options every command shares (``--quiet``, ``--no-progress``...).
    """
    p = sub.add_parser(
        "new-drug", parents=[common], formatter_class=_F, help="write a commented template for your own drug",
        description=_desc("Write <OUT>/parameters/drugs/<NAME>.toml: every value the CNS/CSF model needs, with its "
                          "unit, meaning and where to look for it, and source = \"TODO\" (refused until you give "
                          "a reference, a DOI/PMID/URL, or 'assumption' with the reasoning). With --like the "
                          "values, units, routes, thresholds, variability and covariate effects of an existing "
                          "drug are the starting point. Make OUT known with PKCSF_PATH, --path or "
                          "pk.add_search_path(); the format is in docs/own_drug.md."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf new-drug mydrug                                   # ./parameters/drugs/mydrug.toml, values nan
              pkcsf new-drug itab --like trastuzumab --out my_pkcsf   # start from trastuzumab's values
              PKCSF_PATH=my_pkcsf pkcsf drugs itab                    # check it"""))
    p.add_argument("name", metavar="NAME", help="the drug's name (letters, digits and _; the file name)")
    p.add_argument("--like", metavar="DRUG", help="start from this drug's values (see 'pkcsf drugs')")
    p.add_argument("--out", default=".", metavar="DIR",
                   help="folder to write parameters/drugs/NAME.toml in (default .)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=_cmd_new_drug)
