"""Documented, repeatable calibration of the CNS/CSF model values that the literature does not give.

Each calibration names its free parameters (with the parameter file they live in and bounds), its data
(rows of ``parameters/validation/observations.csv`` with ``role = calibration``), and its objective: the
sum of squared log fold errors, ``sum(log(pred/obs)^2)``, minimised with ``scipy.optimize.least_squares`` in
log-parameter space. Running it writes ``parameters/calibration/<name>.toml`` (data, objective, fitted
values, fold error of each datum, cost) and writes the fitted values into the parameter files (with
``source = "calibrated"`` and ``calibration = "calibration/<name>.toml"``).

    python -m pkcsf.calibration csf_transport          # re-run one
    python -m pkcsf.calibration all                    # in dependency order
    python -m pkcsf.calibration csf_transport --check  # recompute the fit quality, write nothing

Order matters: ``csf_transport`` (physiology mixing + methotrexate CSF transport) first, then
``cytarabine_liposomal`` and ``osimertinib_csf``, which use the mixing values.
"""
from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import cns
from .paths import builtin_dir

__all__ = ["CALIBRATIONS", "calibrate", "evaluate", "main"]


@dataclass(frozen=True)
class Free:
    name: str          # model parameter
    file: str          # parameters/<file>.toml that holds it
    unit: str          # unit written in the file
    factor: float      # file unit -> base unit (L/h, mg, mg/L, 1/h)
    lo: float          # bounds, file unit
    hi: float
    drugs: tuple = ()  # rows of these drugs get it ( () = all rows, a physiology value)
    also: tuple = ()   # other files that copy the value (documented analogues)
    as_name: str = ""  # name in the model if different (PS_BCSFB_SAT -> PS_BCSFB)


@dataclass(frozen=True)
class Calibration:
    name: str
    description: str
    free: tuple
    rows: tuple          # observation ids
    variant: str = "linear"


_MLMIN = 0.06  # mL/min -> L/h
CALIBRATIONS = {
    "csf_transport": Calibration(
        "csf_transport",
        "Pulsatile mixing clearances of the CSF model (physiology) and methotrexate CSF transport (passive "
        "blood-CSF permeability, active efflux, CSF-brain ECF exchange), fitted jointly to methotrexate CSF data "
        "(Shapiro 1975, Bleyer & Dedrick 1977, Balis 2000) and the cytarabine terminal CSF half-life (Zimm 1984; "
        "cytarabine has no active efflux, so it informs mixing/bulk flow alone).",
        (Free("Q_MIX_VENT", "physiology/adult", "mL/h", 1e-3, 0.1, 500.0),
         Free("Q_MIX_CRAN", "physiology/adult", "mL/h", 1e-3, 0.1, 500.0),
         Free("Q_MIX_SPINAL", "physiology/adult", "mL/h", 1e-3, 0.1, 500.0),
         Free("CL_EFFLUX_CSF", "drugs/methotrexate", "mL/min", _MLMIN, 1e-3, 2.0, ("methotrexate",), ("drugs/pemetrexed",)),
         Free("PS_CSF_ECF", "drugs/methotrexate", "mL/min", _MLMIN, 1e-3, 5.0, ("methotrexate",),
              ("drugs/pemetrexed", "drugs/cytarabine", "drugs/cytarabine_liposomal")),
         Free("PS_BCSFB", "drugs/methotrexate", "mL/min", _MLMIN, 1e-4, 0.5, ("methotrexate",), ("drugs/pemetrexed",))),
        ("mtx_shapiro_lumbar_peak", "mtx_shapiro_lumbar_tmax", "mtx_shapiro_iv_vent", "mtx_bleyer_lumbar_t12_fast",
         "mtx_bleyer_lumbar_t12_slow", "mtx_balis_css_lumbar", "arac_zimm_t12_terminal")),
    "cytarabine_liposomal": Calibration(
        "cytarabine_liposomal",
        "Release rate of free cytarabine from DepoFoam particles and the share of CSF outflow that carries "
        "particles, fitted to the free-cytarabine lumbar peak after 50 mg (DepoCyt label) and the terminal "
        "ventricular half-life after IVT dosing (Chamberlain 1993).",
        (Free("K_REL", "drugs/cytarabine_liposomal", "1/h", 1.0, 1e-4, 1.0),
         Free("LIPO_SIEVE", "drugs/cytarabine_liposomal", "1", 1.0, 1e-4, 1.0)),
        ("lipo_label_free_peak", "lipo_chamberlain1993_t12_terminal")),
    "osimertinib_csf": Calibration(
        "osimertinib_csf",
        "Linear variant: passive blood-CSF permeability (as PS x FU) fitted to the CSF/plasma ratios at 80 and "
        "160 mg (flag U, Liao 2025 citing Chen 2023). Run once per variant; see osimertinib_csf_saturable.",
        (Free("PS_BCSFB", "drugs/osimertinib", "mL/min", _MLMIN, 1e-4, 50.0),),
        ("osi_csf_ratio_80", "osi_csf_ratio_160")),
    "osimertinib_csf_saturable": Calibration(
        "osimertinib_csf_saturable",
        "Saturable variant: passive blood-CSF permeability and Vmax of a Michaelis-Menten CSF efflux fitted to "
        "the same two ratios; Km fixed (two data cannot identify three parameters; see the drug file).",
        (Free("PS_BCSFB_SAT", "drugs/osimertinib", "mL/min", _MLMIN, 1e-4, 50.0, as_name="PS_BCSFB"),
         Free("VMAX_EFFLUX_CSF", "drugs/osimertinib", "mg/h", 1.0, 1e-7, 1.0)),
        ("osi_csf_ratio_80", "osi_csf_ratio_160"), variant="saturable"),
}
ORDER = ["csf_transport", "cytarabine_liposomal", "osimertinib_csf", "osimertinib_csf_saturable"]


def _rows(cal: Calibration):
    from .validation import load_observations

    obs = load_observations()
    sel = obs[obs["id"].isin(cal.rows)]
    missing = set(cal.rows) - set(sel["id"])
    if missing:
        raise KeyError(f"calibration {cal.name}: observations not found: {sorted(missing)}")
    return sel


def _predict_all(cal: Calibration, values_file_unit: np.ndarray, rows):
    from .validation import predict

    out = []
    for _, r in rows.iterrows():
        st = cns.setup(r["drug"], variant=cal.variant, metabolite=r["site"] == "plasma_az5104")
        ch = {}
        for f, v in zip(cal.free, values_file_unit):
            if not f.drugs or r["drug"] in f.drugs:
                ch[f.as_name or f.name] = v * f.factor
        st = st.with_parameters(**{k: v for k, v in ch.items() if k in st.parameters})
        out.append(predict(r, st, variant=cal.variant))
    return np.array(out)


def evaluate(name: str, values=None) -> dict:
    """Fold errors of the calibration data at ``values`` (file units; default: the current files)."""
    cal = CALIBRATIONS[name]
    rows = _rows(cal)
    if values is None:
        values = [_read_value(f.file, f.name) for f in cal.free]
    pred = _predict_all(cal, np.asarray(values, float), rows)
    fe = pred / rows["observed"].to_numpy()
    return {"ids": list(rows["id"]), "observed": list(rows["observed"]), "predicted": list(pred),
            "fold_error": list(fe), "cost": float(np.sum(np.log(fe) ** 2))}


def calibrate(name: str, *, write: bool = True) -> dict:
    """Run one calibration; optionally write the record and the fitted values."""
    from scipy.optimize import least_squares

    cal = CALIBRATIONS[name]
    rows = _rows(cal)
    x0 = np.log([min(max(_read_value(f.file, f.name), f.lo * 1.01), f.hi / 1.01) for f in cal.free])
    lo = np.log([f.lo for f in cal.free])
    hi = np.log([f.hi for f in cal.free])
    obs = rows["observed"].to_numpy()

    def resid(x):
        return np.log(_predict_all(cal, np.exp(x), rows) / obs)

    fit = least_squares(resid, x0, bounds=(lo, hi), x_scale=1.0, diff_step=1e-3, max_nfev=400)
    values = np.exp(fit.x)
    ev = evaluate(name, values)
    result = {"name": name, "description": cal.description, "values": dict(zip([f.name for f in cal.free], values)),
              "units": {f.name: f.unit for f in cal.free}, **ev, "nfev": int(fit.nfev), "success": bool(fit.success)}
    if write:
        _write_record(cal, result)
        for f, v in zip(cal.free, values):
            for file in (f.file,) + f.also:
                _write_value(file, f.name, float(v), name, analogue=file != f.file, origin=f.file)
        from . import validation
        validation._setup.cache_clear()
    return result


# ------------------------------------------------------------------ file I/O
def _param_file(file: str) -> Path:
    return builtin_dir("parameters") / (file + ".toml")


def _read_value(file: str, key: str) -> float:
    import tomllib

    with open(_param_file(file), "rb") as fh:
        return float(tomllib.load(fh)["values"][key]["value"])


def _fmt(v: float) -> str:
    return f"{v:.4g}" if abs(v) >= 1e-3 else f"{v:.4e}"


def _write_value(file: str, key: str, value: float, calname: str, *, analogue: bool = False, origin: str = ""):
    """Replace ``value = ...`` inside ``[values.KEY]`` of a parameter file (keeps every other line)."""
    p = _param_file(file)
    text = p.read_text()
    m = re.search(r"(?ms)^\[values\." + re.escape(key) + r"\]\n(.*?)(?=^\[|\Z)", text)
    if not m:
        raise KeyError(f"{p}: no [values.{key}]")
    block = m.group(1)
    new = re.sub(r"(?m)^value = .*$", f"value = {_fmt(value)}", block, count=1)
    if not analogue:
        new = re.sub(r'(?m)^calibration = .*$', f'calibration = "calibration/{calname}.toml"', new, count=1)
    text = text[:m.start(1)] + new + text[m.end(1):]
    p.write_text(text)


def _write_record(cal: Calibration, res: dict):
    lines = [f'# Written by `python -m pkcsf.calibration {cal.name}`; do not edit by hand.',
             "[calibration]", f'name = "{cal.name}"', f'description = """{cal.description}"""',
             'objective = "sum over data of log(predicted/observed)^2; scipy.optimize.least_squares in log-parameter space"',
             'data = "parameters/validation/observations.csv (rows listed below)"',
             f'variant = "{cal.variant}"', f"cost = {res['cost']:.6g}", f"nfev = {res['nfev']}",
             f"success = {str(res['success']).lower()}", ""]
    for f in cal.free:
        v = res["values"][f.name]
        lines += [f"[fitted.{f.name}]", f"value = {_fmt(v)}", f'unit = "{f.unit}"', f'file = "parameters/{f.file}.toml"',
                  f"bounds = [{f.lo:g}, {f.hi:g}]",
                  f'applies_to = "{", ".join(f.drugs) if f.drugs else "all drugs (physiology)"}"',
                  f'copied_to = [{", ".join(chr(34) + a + chr(34) for a in f.also)}]', ""]
    for i, o, p, fe in zip(res["ids"], res["observed"], res["predicted"], res["fold_error"]):
        lines += ["[[data]]", f'id = "{i}"', f"observed = {o:.6g}", f"predicted = {p:.6g}", f"fold_error = {fe:.4f}", ""]
    out = builtin_dir("parameters") / "calibration" / f"{cal.name}.toml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pkcsf.calibration", description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=list(CALIBRATIONS) + ["all"])
    ap.add_argument("--check", action="store_true", help="report the fit quality of the current values; write nothing")
    a = ap.parse_args(argv)
    names = ORDER if a.name == "all" else [a.name]
    for n in names:
        res = evaluate(n) if a.check else calibrate(n)
        print(f"== {n}: cost {res['cost']:.4g}")
        if "values" in res:
            for k, v in res["values"].items():
                print(f"   {k} = {_fmt(v)} {res['units'][k]}")
        for i, fe in zip(res["ids"], res["fold_error"]):
            print(f"   {i:40s} fold error {fe:.3f}")


if __name__ == "__main__":
    main()
