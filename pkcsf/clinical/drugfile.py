"""Your own drug: the drug-file format and the commented template behind ``pkcsf new-drug``.

A drug is one TOML file, ``parameters/drugs/<name>.toml``, in any folder on the search path
(:func:`pkcsf.add_search_path`, the ``PKCSF_PATH`` environment variable; see ``docs/own_drug.md``). The loader
applies the same rules to your file as to the built-in ones: every value needs a source (a reference key, a
DOI, a PMID, a URL, ``label:...``, or ``"assumption"`` with the reasoning in ``note``). The template this module
writes leaves every source as ``"TODO"``, so a file that has not been filled in is refused with one message
naming every value that still lacks its source.

::

    from pkcsf.clinical.drugfile import write_drug_template
    path = write_drug_template("mydrug", like="trastuzumab", out="my_pkcsf")   # my_pkcsf/parameters/drugs/mydrug.toml
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

from pkcsf.clinical import cns
from pkcsf.clinical.parameters import TODO, unsourced_entries
from pkcsf.core.errors import ParameterError

__all__ = ["DRUG_FIELDS", "OPTIONAL_FIELDS", "TODO", "drug_template", "write_drug_template", "unsourced_entries"]

#: the values the CNS/CSF model takes from a drug file: name -> (default unit, meaning, what to look for)
DRUG_FIELDS: dict[str, tuple[str, str, str]] = {
    "MW": ("g/mol", "molecular weight (converts molar units such as umol/L and nmol/L)",
           "label or PubChem; antibodies ~146-150 kDa"),
    "FU": ("1", "fraction unbound in plasma (only unbound drug crosses the barriers)",
           "label 'protein binding'; antibodies 1.0 (assumption)"),
    "CL": ("L/h", "systemic clearance", "population PK (typical value, with its reference covariates)"),
    "V1": ("L", "central volume", "population PK"),
    "V2": ("L", "peripheral volume", "population PK (a one-compartment drug: a small V2 and Q, stated as assumption)"),
    "Q": ("L/h", "intercompartmental clearance", "population PK"),
    "PS_BCSFB": ("mL/min", "passive blood-CSF permeability clearance of unbound drug, whole choroid plexus",
                 "rarely measured: calibrate to a CSF/plasma ratio after IV or oral dosing, or borrow from a drug "
                 "of similar size and lipophilicity (assumption)"),
    "CL_EFFLUX_CSF": ("mL/min", "active CSF-to-blood efflux clearance (0 if none)",
                      "CSF clearance after IT dosing minus bulk flow (about 0.35 mL/min)"),
    "PS_BBB": ("mL/min", "passive blood-brain barrier permeability clearance of unbound drug, whole brain",
               "brain/plasma ratios, Kp,uu; often set equal to PS_BCSFB (assumption)"),
    "D_TISSUE": ("1", "apparent diffusion coefficient in CNS tissue, in units of 1e-6 cm2/s",
                 "free diffusion coefficient divided by the tortuosity slowing (about 2.6 for small molecules)"),
    "KP_TISSUE": ("1", "tissue distribution space relative to CSF (mL per mL tissue)",
                  "0.2 (extracellular space) for drugs that stay outside cells"),
}
#: values the model defaults when a file omits them (pkcsf.clinical.cns._DRUG_DEFAULTS)
OPTIONAL_FIELDS: dict[str, tuple[str, str]] = {
    "KEL_CSF": ("1/h", "first-order loss (metabolism, target binding) in CSF; default 0"),
    "CL_EFFLUX_BBB": ("mL/min", "active brain-to-blood efflux at the BBB; default 0"),
    "KA": ("1/h", "oral absorption rate; needed for the oral route only"),
    "F_ORAL": ("1", "oral bioavailability; needed for the oral route only"),
    "K_BIND": ("1/h", "uptake into a binding site in contact with the CSF (a slow CSF phase, as methotrexate's); "
                      "default 0 (none); with K_BIND > 0 the model is cns_csf_binding"),
    "K_UNBIND": ("1/h", "release from that binding site; used with K_BIND > 0"),
    "Q3": ("L/h", "intercompartmental clearance to a second, deep peripheral compartment (a three-compartment "
                  "systemic model, as methotrexate's); default 0 (two compartments)"),
    "V3": ("L", "volume of that deep compartment; used with Q3 > 0"),
    "LIPO_MOBILITY": ("1", "liposomal form only: factor on the particles' CSF bulk flow and mixing; default 1 (they "
                           "move like solute), 0 = they settle where injected"),
}
_HEADER = """\
# pkcsf drug file: {name}
# ------------------------------------------------------------------------------------------------------------
# Format: parameters/README.md and docs/own_drug.md. Put this file in <folder>/parameters/drugs/{name}.toml and
# make <folder> known to pkcsf:  pk.add_search_path("<folder>")  or  export PKCSF_PATH=<folder>
# Then it runs by name:  pk.simulate("{name}", {{"lumbar": "40 mg lumbar every 3 weeks x 2"}})
#
# Every value needs a source. The template leaves source = "TODO", which pkcsf refuses (naming every such value).
# Replace each TODO by
#   * a key of [references] below (and give `where`: table, page or figure), or a DOI ("10.xxxx/..."),
#     "PMID 123", a PMC id, a URL or "label:...";
#   * "assumption", with the reasoning in `note` (pkcsf lists it in res.assumptions());
#   * "derived", with the arithmetic in `note`; or "calibrated", with `calibration = "<record>.toml"`.
# Units: any unit pkcsf reads for the quantity (L/h, mL/min, L/day; L, mL; 1/h, 1/day; g/mol ...). Values are
# converted to pkcsf's base units (mg, h, L, L/h) when the file is read.
# ------------------------------------------------------------------------------------------------------------
"""


def _s(text: str) -> str:
    """A TOML basic string (JSON escapes are valid TOML)."""
    return json.dumps(str(text), ensure_ascii=False)


def _num(x: float) -> str:
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    r = repr(float(x))
    return r


def drug_template(name: str, like: str | cns.Drug | None = None) -> str:
    """The commented template of a drug file for ``name``, as TOML text.

    Parameters
    ----------
    name : str
        The drug's name (file stem); letters, digits and ``_``.
    like : str or Drug, optional
        A drug whose values, units, routes and form start the template (each value still needs its own
        source: the template says where the number came from and leaves ``source = "TODO"``). Without
        ``like`` the values are ``nan`` and must all be filled in.

    Returns
    -------
    str
        The TOML text.

    Raises
    ------
    ParameterError
        A name that is not letters, digits and ``_`` starting with a letter.
    """
    if not isinstance(name, str) or not name.replace("_", "").isalnum() or not name[0].isalpha():
        raise ParameterError("new drug name", name, "letters, digits and '_', starting with a letter (it is the file name)")
    base = None
    if like is not None:
        base = cns.drug(like)
    lines = [_HEADER.format(name=name)]
    lines += ["[meta]", f"name = {_s(name)}", 'kind = "drug"',
              f"description = {_s('TODO: what the drug is, routes and doses studied, and what is not modelled')}", ""]
    form = base.form if base else "free"
    routes = list(base.routes) if base else ["lumbar", "ommaya", "intracisternal", "iv"]
    variants = list(base.variants) if base else ["linear"]
    usual = base.parameters.options.get("usual_route") if base else None
    lines += ["[options]",
              f"form = {_s(form)}   # free | antibody | liposomal (liposomal adds K_REL, LIPO_SIEVE, F_FREE_INIT)",
              f"routes = {json.dumps(routes)}   # of lumbar, ommaya, intracisternal, iv, oral (oral needs KA, F_ORAL)",
              f"{'' if usual else '# '}usual_route = {_s(usual or 'oral')}   # optional: the route a regimen text "
              'means when it names none (e.g. "80 mg daily x 28 days")',
              f"variants = {json.dumps(variants)}", ""]
    lines += [f"{'[references]':<24}# short keys used by `source` below",
              '# smith2020 = "Smith A, et al. Title. Journal 2020;1:1-10. doi 10.xxxx/xxxxx"', ""]
    if base is not None:
        lines.insert(len(lines) - 1, f"# the values below start from {base.name} (parameters/drugs/"
                                     f"{Path(base.parameters.path).name}); give each its own source, or keep "
                                     "the number as an assumption")
    entries = []
    if base is None:
        for k, (unit, meaning, hint) in DRUG_FIELDS.items():
            entries.append((k, float("nan"), unit, meaning, f"look in: {hint}", ""))
    else:
        for k, v in base.parameters.values.items():
            meaning = (DRUG_FIELDS[k][1] if k in DRUG_FIELDS else OPTIONAL_FIELDS[k][1] if k in OPTIONAL_FIELDS
                       else "drug value (see the model's parameters)")
            origin = f"{base.name}'s value; its source: {v.source}" + (f", {v.where}" if v.where else "")
            entries.append((k, v.given, v.unit, meaning, origin, v.note))
    for k, value, unit, meaning, origin, _ in entries:
        lines += [f"{'[values.' + k + ']':<24}# {meaning}",
                  f"value = {_num(value)}",
                  f"unit = {_s(unit)}",
                  f"source = {_s(TODO)}",
                  'where = ""',
                  f"note = {_s('template: ' + origin)}", ""]
    lines += ["# Optional values (pkcsf uses the default stated when they are absent):"]
    for k, (unit, meaning) in OPTIONAL_FIELDS.items():
        if base is not None and k in base.parameters.values:
            continue
        lines += [f"# [values.{k}]    # {meaning}", "# value = ...", f'# unit = "{unit}"', '# source = "..."', ""]
    ps = base.parameters if base is not None else None
    if ps is not None and ps.thresholds:
        lines += ["# Thresholds read out as time above (target CSF concentrations):"]
        for k, v in ps.thresholds.items():
            lines += [f"[thresholds.{k}]", f"value = {_num(v.given)}", f"unit = {_s(v.unit)}", f"source = {_s(TODO)}",
                      'where = ""', f"note = {_s(_origin(base, v))}", ""]
    else:
        lines += ["# Thresholds read out as time above (a target CSF concentration), optional:",
                  "# [thresholds.target]", "# value = 1.0", '# unit = "umol/L"', '# source = "..."', '# where = "..."', ""]
    if ps is not None and ps.variability:
        lines += ["# Between-subject variability (log-normal, CV as a fraction):"]
        for k, v in ps.variability.items():
            lines += [f"[variability.{k}]", f"cv = {_num(v.given)}", f"source = {_s(TODO)}", 'where = ""',
                      f"note = {_s(_origin(base, v))}", ""]
    else:
        lines += ["# Between-subject variability (log-normal, CV as a fraction), optional:",
                  "# [variability.CL]", "# cv = 0.30", '# source = "..."', ""]
    if ps is not None and ps.covariates:
        lines += ["# Covariate effects (power, linear, exponential, categorical, table):"]
        for k, e in ps.covariates.items():
            lines += [f"[covariates.{k}]", f"parameter = {_s(e.parameter)}", f"covariate = {_s(e.covariate)}",
                      f"model = {_s(e.model)}"]
            if e.model in ("power", "linear", "exponential"):
                lines += [f"reference = {_num(e.reference)}"]
            if e.model == "power":
                lines += [f"exponent = {_num(e.exponent)}"]
            if e.model in ("linear", "exponential"):
                lines += [f"slope = {_num(e.slope)}"]
            if e.model == "categorical":
                lines += ["factors = { " + ", ".join(f"{_s(str(lv))} = {_num(f)}" for lv, f in e.factors.items()) + " }"]
            if e.model == "table":
                lines += [f"x = {json.dumps([float(x) for x in e.x])}", f"y = {json.dumps([float(y) for y in e.y])}"]
            lines += [f"source = {_s(TODO)}", f"note = {_s(f'template: {base.name} effect; its source: {e.source}')}", ""]
    else:
        lines += ["# Covariate effects (power, linear, exponential, categorical, table), optional:",
                  "# [covariates.CL_WT]", '# parameter = "CL"', '# covariate = "WT"', '# model = "power"',
                  "# reference = 70.0", "# exponent = 0.75", '# source = "..."', ""]
    return "\n".join(lines)


def _origin(base, v) -> str:
    return f"template: {base.name}'s value; its source: {v.source}" + (f", {v.where}" if v.where else "")


def write_drug_template(name: str, like: str | cns.Drug | None = None, out: str | Path = ".", *, overwrite: bool = False) -> Path:
    """Write :func:`drug_template` to ``<out>/parameters/drugs/<name>.toml`` and return the path.

    Parameters
    ----------
    name : str
        New drug name.
    like : str, optional
        Existing drug whose values, units and routes start the template.
    out : str or Path, optional
        Folder under which ``parameters/drugs/`` is written.
    overwrite : bool, optional
        Replace an existing file.

    Returns
    -------
    Path
        The file written.

    Raises
    ------
    ParameterError
        A name that is not letters, digits and ``_``, or too long for a file name; an existing file (without
        ``overwrite``).
    OSError
        The folder or the file could not be written (permissions, disk full): nothing is left behind, neither
        the file nor a folder this call created.
    """
    text = drug_template(name, like)
    path = Path(out).expanduser() / "parameters" / "drugs" / f"{name}.toml"
    limit = _name_max(path.parent)
    if len(path.name.encode("utf-8")) > limit:
        raise ParameterError("new drug name", name, f"at most {limit - len('.toml')} characters, not {len(name)} "
                             f"(it is the file name <name>.toml; the file system allows {limit} bytes)")
    if path.exists() and not overwrite:
        raise ParameterError("new drug file", str(path), "exists already; choose another name or --out, or --force")
    created, d = [], path.parent
    while not d.exists() and d != d.parent:
        created.append(d)
        d = d.parent
    tmp = path.with_name(f".pkcsf-new-drug-{os.getpid()}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)                       # the file appears whole, or not at all
    except OSError:
        tmp.unlink(missing_ok=True)
        for d in created:                       # innermost first: only folders this call made, only if empty
            try:
                d.rmdir()
            except OSError:
                pass
        raise
    return path


def _name_max(folder: Path) -> int:
    """The longest file name (bytes) the file system of ``folder`` (or its nearest existing parent) allows."""
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return int(os.pathconf(probe, "PC_NAME_MAX"))
    except (AttributeError, OSError, ValueError):     # Windows, or a file system that does not say
        return 255

