"""``pkcsf escalate``: virtual dose-escalation trials driven by the PK."""
from __future__ import annotations

import json
import sys
import textwrap
from typing import TYPE_CHECKING

from pkcsf.cli._util import (
    _F,
    PROG,
    _bars,
    _check_format,
    _days,
    _desc,
    _json_default,
    _nonneg_int,
    _plotting,
    _positive_float,
    _positive_int,
    _probability,
    _save_figure,
    _Staging,
    _write_table,
)
from pkcsf.core.errors import PkcsfError, ScenarioError

if TYPE_CHECKING:
    import argparse


def _parse_iiv(text):
    if text is None:
        return None
    out = {}
    for part in [p for p in text.split(",") if p.strip()]:
        if "=" not in part:
            raise ScenarioError("--iiv", text, "must be PARAMETER=CV pairs separated by commas", "e.g. --iiv CL=0.3,V1=0.2")
        k, v = part.split("=", 1)
        try:
            out[k.strip()] = float(v)
        except ValueError:
            raise ScenarioError("--iiv", part, "the CV must be a number (a fraction: 0.3 = 30 %)") from None
    return out


def _dlt_model(args) -> tuple[str, str]:
    """The DLT model and why: ``auto`` takes the per-patient PD model when the drug has one and no link option
    (--mtd-dose, --e50, --p-at-mtd, --slope) was given.
    """
    from pkcsf.clinical import pd_toxicity as pdtox

    link_opts = [o for o, v in (("--mtd-dose", args.mtd_dose), ("--e50", args.e50), ("--p-at-mtd", args.p_at_mtd),
                                ("--slope", args.slope)) if v is not None]
    name = str(args.drug).strip().lower()
    if args.dlt == "auto":
        if pdtox.has_neutropenia_model(name) and not link_opts:
            return "neutropenia", (f"per-patient pharmacodynamics (default for {name}: a neutropenia model is stored in "
                                   f"parameters/pd/{name}.toml); --dlt link for the logistic exposure shortcut")
        why = (f"logistic exposure-toxicity link ({', '.join(link_opts)} given)" if link_opts else
               f"logistic exposure-toxicity link (no PD model is stored for {name})")
        return "link", why
    if args.dlt == "neutropenia" and link_opts:
        raise ScenarioError(link_opts[0], "given", "link options do not apply to --dlt neutropenia",
                            "drop them, or use --dlt link")
    return args.dlt, ("per-patient pharmacodynamics (--dlt neutropenia)" if args.dlt == "neutropenia"
                      else "logistic exposure-toxicity link (--dlt link)")


#: keyword of simulate_escalation (or field of a layer underneath) -> the option the user typed
_OPTIONS = {"drug": "DRUG", "doses": "--doses", "route": "--route", "schedule": "--schedule", "design": "--design",
            "target": "--target-dlt", "max_n": "--max-n", "trials": "--trials", "n_trials": "--trials",
            "subjects": "--subjects", "band_subjects": "--subjects", "exposure": "--exposure", "mtd_dose": "--mtd-dose",
            "p_at_mtd": "--p-at-mtd", "slope": "--slope", "e50": "--e50", "link": "--e50", "efficacy": "--efficacy",
            "iiv": "--iiv", "variant": "--variant", "unit": "--unit", "days": "--days", "seed": "--seed",
            "dlt": "--dlt", "supplemented": "--no-vitamins", "dlt_grade": "--dlt-grade", "dlt_window": "--dlt-window"}


def _as_option(e: PkcsfError) -> PkcsfError:
    """``e`` named by the command-line option the user typed (issue 9).

    ``subjects`` -> ``--subjects``; a design's ``BOIN.target`` -> ``--target-dlt``; a sub-field keeps its detail:
    ``iiv.CL`` -> ``--iiv (CL)``, ``exposure metric`` -> ``--exposure (metric)``, ``doses[1]`` -> ``--doses[1]``.
    Fields that already name an option (``--dlt``) are kept.
    """
    f = e.field
    if f.startswith("--") or f == "DRUG":
        return e
    head = f.split(".", 1)[1] if "." in f and f.split(".", 1)[0][:1].isupper() else f     # BOIN.target -> target
    for key in sorted(_OPTIONS, key=len, reverse=True):
        if head == key:
            return type(e)(_OPTIONS[key], e.value, e.allowed, e.fix)
        if head.startswith(key) and head[len(key)] in ". [":
            rest = head[len(key):]
            name = _OPTIONS[key] + rest if rest[0] == "[" else f"{_OPTIONS[key]} ({rest.lstrip('. ')})"
            return type(e)(name, e.value, e.allowed, e.fix)
    return e


def _cmd_escalate(args) -> int:
    """Run ``pkcsf escalate``; every refusal names the option the user typed (see :func:`_as_option`)."""
    try:
        return _escalate(args)
    except PkcsfError as e:
        raise _as_option(e) from None


def _escalate(args) -> int:
    import numpy as np
    import pandas as pd

    from pkcsf.clinical.escalation import simulate_escalation
    from pkcsf.trials import designs as T

    design = args.design
    dkw = {}
    if args.target_dlt is not None:
        dkw["target"] = args.target_dlt
    if args.max_n is not None:
        dkw["max_n"] = args.max_n
    if dkw:
        key = design.strip().lower()
        if key == "3+3":
            given = [o for o, v in (("--target-dlt", args.target_dlt), ("--max-n", args.max_n)) if v is not None]
            raise ScenarioError(" and ".join(given), args.target_dlt if args.target_dlt is not None else args.max_n,
                                f"{'applies' if len(given) == 1 else 'apply'} to --design boin and crm only (and boin12) "
                                "(3+3 has fixed rules)")
        if key in T.DESIGNS:
            design = T.DESIGNS[key](**dkw)
    link = None
    if args.e50 is not None:
        if args.mtd_dose is not None:
            raise ScenarioError("--e50", args.e50, "give either --e50 (your own link) or --mtd-dose, not both")
        link = T.LogisticExposureToxicity(args.e50, args.slope if args.slope is not None else T.DEFAULT_SLOPE,
                                          source="user", note="given on the command line")
    dlt, dlt_why = _dlt_model(args)
    if args.out is not None:
        _check_format(args.format)
    stage = _Staging(args.out) if args.out is not None else None
    warnings: list[str] = []
    try:
        kw = dict(route=args.route, design=design, exposure=args.exposure, link=link, mtd_dose=args.mtd_dose,
                  efficacy=args.efficacy, subjects=args.subjects, trials=args.trials, seed=args.seed,
                  days=args.days, unit=args.unit, iiv=_parse_iiv(args.iiv), variant=args.variant,
                  progress=_bars(args))
        if args.schedule is not None:
            kw["schedule"] = args.schedule
        if args.p_at_mtd is not None:
            kw["p_at_mtd"] = args.p_at_mtd
        if args.slope is not None and link is None:
            kw["slope"] = args.slope
        kw["dlt"] = dlt
        if dlt == "neutropenia":
            kw.update(supplemented=not args.no_vitamins, dlt_grade=args.dlt_grade, dlt_window=args.dlt_window)
        elif args.no_vitamins or args.dlt_window is not None or args.dlt_grade != 3:
            raise ScenarioError("--no-vitamins/--dlt-grade/--dlt-window", "given",
                                "apply to the PD DLT model only (--dlt neutropenia)")
        res = simulate_escalation(args.drug, args.doses, **kw)
        summary = res.summary()
        if stage is not None:
            fmt = args.format
            files = [_write_table(summary, stage, "escalation_summary", fmt),
                     _write_table(res.exposure_frame(), stage, "exposures", fmt),
                     _write_table(res.trials.per_trial(), stage, "trials", fmt)]
            stage.path("references.txt").write_text("\n".join(res.cite()) + "\n", encoding="utf-8")
            files.append("references.txt")
            pp = _plotting()
            if pp is not None and hasattr(pp, "escalation"):
                lk = res.link if isinstance(res.link, T.LogisticExposureToxicity) else None
                f = _save_figure(stage, "escalation", lambda: pp.escalation(
                    {res.trials.design.split(" (")[0]: res}, exposures=res, exposure_label=res.exposure.label,
                    exposure_unit=res.exposure_unit, link=lk), warnings)
                if f:
                    files.append(f)
            prov = dict(res.provenance)
            prov.update(command="pkcsf " + " ".join(args.argv), notes=list(summary.attrs["notes"]),
                        p_none=res.trials.p_none, mean_trial_size=res.trials.mean_trial_size,
                        files=files + ["escalation.json"], warnings=warnings)
            stage.path("escalation.json").write_text(json.dumps(prov, indent=2, default=_json_default) + "\n",
                                                     encoding="utf-8")
            target = stage.commit()
    except BaseException as e:
        if stage is not None:
            stage.fail(e)         # staging removed; an OSError becomes one line naming the file
        raise
    for w in warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)
    if not args.quiet:
        a = summary.attrs
        print(f"{res.drug} by {res.route}, doses {', '.join(f'{d:g}' for d in res.doses)} mg")
        print(f"design: {a['design']}; {a['n_trials']} virtual trials; mean trial size {a['mean_trial_size']:.1f}; "
              f"P(no dose selected) {a['p_none']:.3f}")
        print(f"exposure: {a['exposure']} ({a['exposure_unit']}); pool of {args.subjects} virtual patients per dose")
        print(f"DLT model: {dlt_why}")
        print(f"link: {a['link']}")
        if a.get("efficacy"):
            print(f"efficacy target: {a['efficacy']}")
        show = summary.copy()
        show["dose"] = [f"{d:g} mg" if np.isfinite(d) else "none" for d in show["dose"]]
        show = show.drop(columns=["level", "p_select_se"])
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(show.to_string(index=False, float_format=lambda x: f"{x:.3g}", na_rep="-"))
        if res.pd is not None and len(res.pd["observed_checks"]):
            print("reality check (published haematological DLTs vs predicted fraction of the pool):")
            for r in res.pd["observed_checks"].itertuples():
                pred = "-" if np.isnan(r.predicted) else f"{r.predicted:.1%}"
                print(f"  {r.key}: {r.dose:g} mg, observed {r.events}/{r.n} (95% CI {r.ci_low:.0%}-{r.ci_high:.0%}), "
                      f"predicted {pred}: {r.verdict}")
        for n in a["notes"]:
            print(textwrap.fill("note: " + n, width=110, subsequent_indent="  "))
        p = res.provenance
        print(f"time: exposure pools {p['pk_seconds']:.2f} s, trials {p['trial_seconds']:.3f} s")
        if stage is not None:
            print(f"wrote {len(files) + 1} files to {target}")
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
        "escalate", parents=[common], formatter_class=_F, help="virtual dose-escalation trials driven by the PK",
        description=_desc("Simulate exposure pools (one Scenario per dose level, the same virtual patients at every dose), "
                    "decide each virtual patient's DLT and run virtual 3+3, BOIN or CRM trials. Prints the operating "
                    "characteristics per dose: P(selected), expected patients treated, expected DLTs, DLT rate, "
                    "exposure percentiles and efficacy attainment.\n\n"
                    "DLT model: for a drug with a stored pharmacodynamic model (pemetrexed), each patient's own plasma "
                    "profile drives the Friberg neutropenia model and grade >= 3 neutropenia is his DLT (--dlt "
                    "neutropenia, the default for such drugs; the run prints a reality check against published "
                    "phase 1 DLTs). Otherwise (--dlt link), a logistic link: "
                    "logistic in log exposure, P(DLT) = 0.30 at the median exposure of the dose the "
                    "literature calls the MTD (pemetrexed by lumbar puncture: 10 mg, Pan et al. 2019), slope 2 "
                    "(odds x4 per doubling of exposure). It is an assumption: give --mtd-dose, or --e50/--slope, "
                    "from your own data."),
        epilog=textwrap.dedent("""\
            examples:
              pkcsf escalate pemetrexed --doses 10,20,30,40,50
              pkcsf escalate pemetrexed --doses 10,20,30,40,50 --design boin --trials 5000 --out results/esc
              pkcsf escalate pemetrexed --doses 10,15,20,30 --exposure lumbar:cmax --dlt link --iiv CL=0.3
              pkcsf escalate methotrexate --doses 6,9,12,15 --route ommaya --mtd-dose 12 \\
                  --schedule "twice weekly x 4 weeks" --efficacy "ventricular:time_above[1 umol/L] >= 48 h"

            --exposure GROUP:METRIC; GROUP one of plasma, ventricular, cisternal, cranial_sas, spinal, lumbar,
            brain_ecf; METRIC one of cmax, auc, trough_end, time_above[THRESHOLD], longest_above[THRESHOLD]."""))
    p.add_argument("drug", metavar="DRUG", help="drug name (see 'pkcsf drugs')")
    p.add_argument("--doses", required=True, metavar="D1,D2,...", help="dose levels in mg, increasing (e.g. 10,20,30)")
    p.add_argument("--route", default="lumbar", help="lumbar (default), ommaya, intracisternal, iv or oral")
    p.add_argument("--schedule", metavar="TEXT",
                   help="schedule without dose and route (default: 'twice weekly x 2 weeks, then weekly x 4 weeks')")
    p.add_argument("--design", default="3+3",
                   help="3+3 (default), boin, crm (safety stop on: P(DLT at the lowest dose > target) > 0.9) or "
                        "boin12 (efficacy-toxicity: each patient's response is --efficacy, default for CSF routes "
                        ">= 1 log10 tumour-cell kill at the injection site); see docs/trials.md")
    p.add_argument("--target-dlt", type=_probability, metavar="P", help="target DLT rate of boin/crm (default 0.30)")
    p.add_argument("--max-n", type=_positive_int, metavar="N", help="maximum sample size of boin/crm (default 30)")
    p.add_argument("--trials", type=_positive_int, default=2000, metavar="N", help="virtual trials (default 2000)")
    p.add_argument("--subjects", type=_positive_int, default=500, metavar="N",
                   help="virtual patients per dose pool (default 500)")
    p.add_argument("--exposure", default="plasma:auc", metavar="GROUP:METRIC",
                   help="exposure driving toxicity (default plasma:auc)")
    p.add_argument("--mtd-dose", metavar="MG", help="dose (mg) the literature calls the MTD: anchors the default link")
    p.add_argument("--p-at-mtd", type=_probability, metavar="P", help="DLT probability at the MTD exposure (default 0.30)")
    p.add_argument("--slope", type=_positive_float, metavar="S", help="logistic slope per log unit of exposure (default 2)")
    p.add_argument("--e50", type=_positive_float, metavar="E", help="your own link: exposure with 50%% DLT probability")
    p.add_argument("--efficacy", metavar="TARGET", help="per-patient target, e.g. 'lumbar:time_above[0.1 umol/L] >= 48 h'")
    p.add_argument("--iiv", metavar="P=CV,...", help="extra between-subject variability, e.g. CL=0.3,V1=0.2")
    p.add_argument("--variant", default="linear", help="CSF efflux variant (osimertinib: linear or saturable)")
    p.add_argument("--unit", default="umol/L", help="concentration unit of the exposures (default umol/L)")
    p.add_argument("--days", type=_days, metavar="D",
                   help="simulated days, or a time such as '6 weeks' (default: 7 days after the last dose)")
    p.add_argument("--seed", type=_nonneg_int, default=0, metavar="S", help="random seed (default 0)")
    p.add_argument("--dlt", choices=["auto", "neutropenia", "link"], default="auto",
                   help="how a patient's DLT is decided: neutropenia = his own plasma profile through the Friberg "
                        "model (CTCAE grade >= 3); link = logistic in exposure; auto (default) = neutropenia when the "
                        "drug has a PD model (pemetrexed) and no link option is given")
    p.add_argument("--no-vitamins", action="store_true",
                   help="--dlt neutropenia: no folic acid + B12 supplementation (pemetrexed covariate)")
    p.add_argument("--dlt-grade", type=int, default=3, choices=[2, 3, 4],
                   help="--dlt neutropenia: CTCAE neutropenia grade that is a DLT (default 3)")
    p.add_argument("--dlt-window", type=_positive_float, metavar="DAYS",
                   help="--dlt neutropenia: DLT window in days (default: the whole simulated course)")
    p.add_argument("--out", metavar="DIR", help="write tables, figure and escalation.json to this folder")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv", help="table format (default csv)")
    p.set_defaults(func=_cmd_escalate)
