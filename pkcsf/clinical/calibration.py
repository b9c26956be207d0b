"""Documented, repeatable calibration of the CNS/CSF model values that the literature does not give.

Each calibration names its free parameters (with the parameter file they live in and bounds), its data
(rows of ``parameters/validation/observations.csv`` with ``role = calibration``), and its objective: the
sum of squared log fold errors, ``sum(log(pred/obs)^2)``, minimised with ``scipy.optimize.least_squares`` in
log-parameter space. Running it writes ``parameters/calibration/<name>.toml`` (data, objective, fitted
values, fold error of each datum, cost) and writes the fitted values into the parameter files (with
``source = "calibrated"`` and ``calibration = "calibration/<name>.toml"``).

    python -m pkcsf.clinical.calibration csf_transport          # re-run one
    python -m pkcsf.clinical.calibration all                    # in dependency order
    python -m pkcsf.clinical.calibration csf_transport --check  # recompute the fit quality, write nothing

Order matters: ``csf_transport`` (human physiology mixing + methotrexate CSF and tissue transport) first, then
``mtx_rhesus_efflux`` (rhesus-scaled physiology), ``cytarabine_liposomal``, ``osimertinib_csf[_saturable]`` and
``trastuzumab_bcsfb``, which use the mixing values. A fitted value within 2% of a bound is reported as such in
the record (``at_bound``): a warning that the data push a parameter beyond its plausible range.
"""
from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pkcsf.clinical import cns
from pkcsf.core.paths import builtin_dir

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
    as_name: str = ""  # name in the model if different (CL_EFFLUX_CSF_RHESUS -> CL_EFFLUX_CSF)
    tie: tuple = ()    # other parameters of the same file set equal to this one (written there too)

    @property
    def label(self) -> str:
        """Key in the record: the parameter name, or name__drug when a calibration frees one name twice."""
        return self.name if not self.drugs else f"{self.name}__{self.drugs[0]}"


@dataclass(frozen=True)
class Calibration:
    name: str
    description: str
    free: tuple
    rows: tuple          # observation ids
    variant: str = "linear"


_MLMIN = 0.06  # mL/min -> L/h
_MLH = 1e-3    # mL/h -> L/h
CALIBRATIONS = {
    "csf_transport": Calibration(
        "csf_transport",
        "Pulsatile mixing clearances of the human CSF model (physiology) and methotrexate CSF and tissue transport "
        "(passive blood-CSF permeability at the choroid plexus, BBB exchange of the CSF-facing tissue), fitted jointly to human methotrexate CSF data (Shapiro 1975 Ommaya and IV, Bleyer & Dedrick 1977 "
        "lumbar half-lives), the cytarabine initial and terminal ventricular CSF half-lives after an "
        "intraventricular dose (Zimm 1984; no active efflux, so they inform ventricular washout, mixing, bulk flow "
        "and tissue exchange) and the ventricular CSF peak and "
        "half-life of cytarabine after high-dose IV infusion (Lopez 1985), which fix cytarabine's passive "
        "blood-CSF permeability. Tissue diffusion and distribution space are fixed at "
        "Blasberg 1975's values; PS_BBB is bounded above by Blasberg's capillary exchange half-time > 2 h. Human "
        "active CSF efflux of methotrexate is fixed at 0 (a free fit drove it to 2e-5 mL/min; Bleyer & Dedrick: bulk "
        "flow predominates), leaving 7 parameters for 9 data. "
        "Non-human-primate data are not used here (see mtx_rhesus_efflux).",
        (Free("Q_MIX_VENT", "physiology/adult", "mL/h", _MLH, 0.1, 1000.0),
         Free("Q_MIX_CRAN", "physiology/adult", "mL/h", _MLH, 0.1, 1000.0),
         Free("Q_MIX_SPINAL", "physiology/adult", "mL/h", _MLH, 0.1, 1000.0),
         Free("Q_MIX_LUMBAR", "physiology/adult", "mL/h", _MLH, 0.1, 1000.0),
         Free("PS_BCSFB", "drugs/methotrexate", "mL/min", _MLMIN, 1e-4, 0.5, ("methotrexate",), ("drugs/pemetrexed",)),
         Free("PS_BBB", "drugs/methotrexate", "mL/min", _MLMIN, 1e-3, 1.9, ("methotrexate",), ("drugs/pemetrexed",)),
         Free("PS_BCSFB", "drugs/cytarabine", "mL/min", _MLMIN, 1e-3, 5.0, ("cytarabine",),
              ("drugs/cytarabine_liposomal",))),
        ("mtx_shapiro_lumbar_peak", "mtx_shapiro_lumbar_tmax", "mtx_shapiro_iv_vent",
         "mtx_bleyer_lumbar_t12_fast", "mtx_bleyer_lumbar_t12_slow", "arac_zimm_t12_initial", "arac_zimm_t12_terminal",
         "arac_lopez_csf_plasma_peak", "arac_lopez_csf_t12", "lipo_chamberlain1995_auc_ratio")),
    "mtx_rhesus_efflux": Calibration(
        "mtx_rhesus_efflux",
        "Active (probenecid-sensitive) methotrexate CSF efflux in rhesus monkeys, fitted to the lumbar/ventricular "
        "Css ratio during intraventricular infusion (Balis 2000) with the rhesus-scaled physiology and the human "
        "calibration of csf_transport. The other non-human-primate rows validate it.",
        (Free("CL_EFFLUX_CSF_RHESUS", "drugs/methotrexate", "mL/min", _MLMIN, 1e-5, 2.0, ("methotrexate",),
              ("drugs/pemetrexed",), as_name="CL_EFFLUX_CSF"),),
        ("mtx_balis_css_lumbar",)),
    "cytarabine_liposomal": Calibration(
        "cytarabine_liposomal",
        "DepoFoam cytarabine: first-order release rate of free cytarabine from the particles and the fraction free "
        "at injection (unencapsulated + burst), fitted to the free-cytarabine lumbar peak of 30-50 ug/mL within "
        "1 h after 50 mg (DepoCyt label) and to all five published adult terminal half-lives of free cytarabine "
        "(US label 5.9-82.4 h, Swiss label 100-263 h, Chamberlain 1993 ventricular 140 h, Chamberlain 1995 lumbar "
        "277 h and ventricular 130 h), which disagree: a single first-order release gives their geometric "
        "compromise. Particles are not absorbed with CSF (LIPO_SIEVE fixed, see the drug file).",
        (Free("K_REL", "drugs/cytarabine_liposomal", "1/h", 1.0, 1e-4, 1.0),
         Free("F_FREE_INIT", "drugs/cytarabine_liposomal", "1", 1.0, 1e-4, 0.1)),
        ("lipo_label_free_peak", "lipo_label_t12_us", "lipo_swiss_t12", "lipo_chamberlain1993_t12_terminal",
         "lipo_chamberlain1995_t12_lumbar", "lipo_chamberlain1995_t12_vent")),
    "osimertinib_csf": Calibration(
        "osimertinib_csf",
        "Linear variant: active BBB efflux clearance (sets Kp,uu of the CSF-facing tissue, which sets the CSF level "
        "of this permeable drug) fitted to the CSF/plasma ratios at 80 and 160 mg (flag U, Liao 2025 citing Chen "
        "2023). Run once per variant; see osimertinib_csf_saturable.",
        (Free("CL_EFFLUX_BBB", "drugs/osimertinib", "mL/min", _MLMIN, 1e-2, 1e5),),
        ("osi_csf_ratio_80", "osi_csf_ratio_160")),
    "osimertinib_csf_saturable": Calibration(
        "osimertinib_csf_saturable",
        "Saturable variant: Vmax and Km of a Michaelis-Menten BBB efflux (with passive PS_BBB) fitted to the same two "
        "ratios (exact fit: two data, two parameters).",
        (Free("VMAX_EFFLUX_BBB", "drugs/osimertinib", "mg/h", 1.0, 1e-6, 10.0),
         Free("KM_EFFLUX", "drugs/osimertinib", "mg/L", 1.0, 1e-5, 1.0)),
        ("osi_csf_ratio_80", "osi_csf_ratio_160"), variant="saturable"),
    "trastuzumab_bcsfb": Calibration(
        "trastuzumab_bcsfb",
        "Passive blood-CSF and blood-brain transfer of trastuzumab (one value for both barriers) fitted to the "
        "serum/CSF ratio 420:1 with an intact barrier (Stemmler 2007).",
        (Free("PS_BCSFB", "drugs/trastuzumab", "mL/min", _MLMIN, 1e-6, 0.1, tie=("PS_BBB",)),),
        ("tra_stemmler_iv_ratio",)),
}
ORDER = ["csf_transport", "mtx_rhesus_efflux", "cytarabine_liposomal", "osimertinib_csf", "osimertinib_csf_saturable",
         "trastuzumab_bcsfb"]


def _rows(cal: Calibration):
    from pkcsf.clinical.validation import load_observations

    obs = load_observations()
    sel = obs[obs["id"].isin(cal.rows)]
    missing = set(cal.rows) - set(sel["id"])
    if missing:
        raise KeyError(f"calibration {cal.name}: observations not found: {sorted(missing)}")
    return sel


def _predict_all(cal: Calibration, values_file_unit: np.ndarray, rows):
    from pkcsf.clinical.validation import age_for, physiology_for, predict

    out = []
    for _, r in rows.iterrows():
        st = cns.setup(r["drug"], physiology=physiology_for(r), variant=cal.variant,
                       metabolite=r["site"] == "plasma_az5104", age=age_for(r))
        ch = {}
        for f, v in zip(cal.free, values_file_unit):
            if not f.drugs or r["drug"] in f.drugs:
                ch[f.as_name or f.name] = v * f.factor
                for t in f.tie:
                    ch[t] = v * f.factor
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
    names = [_key(cal, f) for f in cal.free]
    at_bound = [_key(cal, f) for f, x, a, b in zip(cal.free, fit.x, lo, hi) if x - a < 0.02 or b - x < 0.02]
    n, p = len(obs), len(cal.free)
    se = {}
    if n > p:
        # approximate standard errors of log(parameter) from the Jacobian (Gauss-Newton), residual variance
        # estimated from the fit; inf when the data do not inform the parameter
        jtj = fit.jac.T @ fit.jac
        s2 = float(np.sum(fit.fun ** 2)) / (n - p)
        cov = np.linalg.pinv(jtj) * s2
        se = {k: float(np.sqrt(max(cov[i, i], 0.0))) for i, k in enumerate(names)}
        for i, k in enumerate(names):
            if jtj[i, i] < 1e-10:
                se[k] = float("inf")
    result = {"name": name, "description": cal.description, "values": dict(zip(names, values)),
              "units": {_key(cal, f): f.unit for f in cal.free}, **ev, "nfev": int(fit.nfev), "success": bool(fit.success),
              "n_data": n, "n_free": p, "at_bound": at_bound, "se_log": se}
    if write:
        _write_record(cal, result)
        for f, v in zip(cal.free, values):
            for file in (f.file,) + f.also:
                _write_value(file, f.name, float(v), name, analogue=file != f.file, origin=f.file)
            for t in f.tie:
                _write_value(f.file, t, float(v), name)
        from pkcsf.clinical import validation
        validation._setup.cache_clear()
    return result


def _key(cal: Calibration, f: Free) -> str:
    dup = sum(g.name == f.name for g in cal.free) > 1
    return f.label if dup else f.name


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


def _toml_str(text) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _write_record(cal: Calibration, res: dict):
    lines = [f'# Written by `python -m pkcsf.clinical.calibration {cal.name}`; do not edit by hand.',
             "[calibration]", f'name = "{cal.name}"', f'description = """{cal.description}"""',
             'objective = "sum over data of log(predicted/observed)^2; scipy.optimize.least_squares in log-parameter space"',
             'data = "parameters/validation/observations.csv (rows listed below)"',
             f'variant = "{cal.variant}"', f"cost = {res['cost']:.6g}", f"nfev = {res['nfev']}",
             f"success = {str(res['success']).lower()}", f"n_data = {res['n_data']}", f"n_free = {res['n_free']}",
             f'at_bound = [{", ".join(chr(34) + a + chr(34) for a in res["at_bound"])}]',
             '# at_bound: fitted within 2% (in log) of a bound -- a warning that the data push the parameter to its limit',
             f'poorly_determined = [{", ".join(chr(34) + k + chr(34) for k, v in res["se_log"].items() if not v < 1.0)}]',
             '# poorly_determined: approximate SE of log(value) > 1 (a factor e either way) -- the data hardly inform it',
             ""]
    for f in cal.free:
        k = _key(cal, f)
        v = res["values"][k]
        lines += [f"[fitted.{k}]", f'parameter = "{f.name}"', f"value = {_fmt(v)}", f'unit = "{f.unit}"',
                  'source = "calibrated"',
                  f'file = "parameters/{f.file}.toml"',
                  f"bounds = [{f.lo:g}, {f.hi:g}]",
                  ("se_log = " + (f"{res['se_log'][k]:.3g}" if k in res["se_log"] and np.isfinite(res["se_log"][k])
                                  else ('"inf (not informed)"' if k in res["se_log"] else '"n/a (no more data than parameters)"'))),
                  f'applies_to = "{", ".join(f.drugs) if f.drugs else "all drugs (physiology)"}"',
                  f'copied_to = [{", ".join(chr(34) + a + chr(34) for a in f.also)}]',
                  f'tie = [{", ".join(chr(34) + a + chr(34) for a in f.tie)}]', ""]
    src = _rows(cal).set_index("id")["source"]
    for i, o, p, fe in zip(res["ids"], res["observed"], res["predicted"], res["fold_error"]):
        lines += ["[[data]]", f'id = "{i}"', f"source = {_toml_str(src[i])}", f"observed = {o:.6g}",
                  f"predicted = {p:.6g}", f"fold_error = {fe:.4f}", ""]
    out = builtin_dir("parameters") / "calibration" / f"{cal.name}.toml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="python -m pkcsf.clinical.calibration", description=__doc__.splitlines()[0])
    ap.add_argument("name", choices=list(CALIBRATIONS) + ["all"])
    ap.add_argument("--check", action="store_true", help="report the fit quality of the current values; write nothing")
    a = ap.parse_args(argv)
    names = ORDER if a.name == "all" else [a.name]
    for n in names:
        res = evaluate(n) if a.check else calibrate(n)
        poor = [k for k, v in res.get("se_log", {}).items() if not v < 1.0]
        print(f"== {n}: cost {res['cost']:.4g}" + (f"   AT BOUND: {res['at_bound']}" if res.get("at_bound") else "")
              + (f"   POORLY DETERMINED: {poor}" if poor else ""))
        if "values" in res:
            for k, v in res["values"].items():
                print(f"   {k} = {_fmt(v)} {res['units'][k]}")
        for i, fe in zip(res["ids"], res["fold_error"]):
            print(f"   {i:40s} fold error {fe:.3f}")


if __name__ == "__main__":
    main()
