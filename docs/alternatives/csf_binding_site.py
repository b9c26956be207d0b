"""Mechanism test of 4 Dec 2026 (night): a CSF-side binding site as the source of methotrexate's slow CSF phase.

Five human sources show a slow methotrexate CSF phase that the shipped model (one CSF phase, 3.6 h) lacks: Bleyer &
Dedrick 1977 (lumbar 14 h, a calibration row), Bleyer 1973 (0.17 umol/L 48 h after 12-15 mg/m2, then 12-18 h),
the Rinsho Ketsueki Ommaya patient (ventricular 10.5 h), Sandberg 2015's 24-h fourth-ventricle trough and the CPT
1983 24-h level (derived). Brain tissue within its published kinetics (half-time 0.5-5 h) cannot make it
(``csf_transport_tissue_bounded``); brain tissue holding methotrexate for ~50 h can, but moves the cisternal peak
out of the cisternography window (``csf_transport_tissue_free``). docs/model.md names the untested candidate: a
binding or sequestering site in contact with the CSF itself (leptomeningeal and arachnoid cells, choroid plexus,
nerve-root sleeves), not brain tissue.

The site (adopted the same night: ``models/cns_csf_binding.toml``, used for methotrexate since its file gives
K_BIND > 0): every CSF space X (lv, tfv, cm, sas_cranial, spinal_ct, spinal_lumbar) has a bound pool, filled at
``K_BIND * A_X`` and emptied back into X at ``K_UNBIND * B_X`` (first order; rate constants, so the site scales with
CSF volume across ages and species, and K_BIND / K_UNBIND is its capacity relative to the CSF volume).
Methotrexate only; cytarabine (Zimm 1984, no slow phase) and every other drug have none.

It fits ``csf_transport``'s data (the same objective, ``scipy.optimize.least_squares`` in log-parameters) in five
ways: ``binding only`` (K_BIND and K_UNBIND free, csf_transport's seven values as shipped) and ``all free`` (the
nine together), each without and with Bleyer 1973's two rows as data, and once with the CSF efflux and the
blood-CSF permeabilities free beside the site but the mixing as shipped (with Bleyer 1973); for each, the rhesus
CSF efflux is fitted again to Balis 2000's ratio as mtx_rhesus_efflux does. It then
scores every row of the observation files (linear variant; the liposomal, osimertinib and trastuzumab calibrations
unchanged) without the site (csf_transport as fitted) and with each fit; "binding only + Bleyer 1973" is what
calibration ``mtx_csf_binding`` ships.
Run: ``python docs/alternatives/csf_binding_site.py`` (about 6 min on two cores). Prints the fit, the rows that
change by more than 5% and the counts within 2-fold and 1.5-fold per file and role.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

from pkcsf.clinical import calibration as cal
from pkcsf.clinical import validation as v

BASE = cal.CALIBRATIONS["csf_transport"]
BINDING = (cal.Free("K_BIND", "drugs/methotrexate", "1/h", 1.0, 1e-4, 1.0, ("methotrexate",)),
           cal.Free("K_UNBIND", "drugs/methotrexate", "1/h", 1.0, 0.005, 2.0, ("methotrexate",)))
RHESUS = cal.CALIBRATIONS["mtx_rhesus_efflux"]
#: the rhesus CSF efflux and the drugs that share it (calibration._RHESUS_EFFLUX_COPIES)
RHESUS_FREE = cal.Free("CL_EFFLUX_CSF_RHESUS", "drugs/methotrexate", "mL/min", cal._MLMIN, 1e-5, 2.0,
                       ("methotrexate", "pemetrexed", "cytarabine", "cytarabine_liposomal"), as_name="CL_EFFLUX_CSF")
START = {"Q_MIX_SPINAL": 29.26, "Q_MIX_LUMBAR": 106.2, "CL_EFFLUX_CSF": 0.1783, "K_BIND": 0.08, "K_UNBIND": 0.04}


#: Bleyer 1973's 48-h lumbar level and later half-life: held-out rows, used as data by the fits marked "+ Bleyer 1973"
BLEYER73 = ("mtx_bleyer73_csf_48h", "mtx_bleyer73_csf_t12_late")


def fit(name: str, free: tuple, extra: tuple = ()) -> dict:
    """Fit csf_transport's data (and ``extra`` rows) on the test model with ``free`` (other values as in the files)."""
    cal.CALIBRATIONS[name] = cal.Calibration(
        name, "COMPARISON FIT (mechanism 'CSF-side binding site'): docs/alternatives/csf_binding_site.py", free,
        BASE.rows + extra, files=BASE.files, write_values=False,
        start=tuple((f.name, START[f.name]) for f in free if f.name in START))
    return cal.calibrate(name, write=False)


def fit_rhesus(base_values: list[float], binding: tuple[float, float], rows: pd.DataFrame) -> float:
    """The rhesus CSF efflux (mL/min) refitted to Balis 2000's ratio, as mtx_rhesus_efflux does."""
    from scipy.optimize import minimize_scalar

    balis = rows[rows["id"].isin(RHESUS.rows)]
    res = minimize_scalar(lambda u: float(np.sum(np.log(score(base_values, binding, float(np.exp(u)), balis)) ** 2)),
                          bounds=(np.log(1e-3), np.log(2.0)), method="bounded", options={"xatol": 1e-3})
    return float(np.exp(res.x))


def all_rows() -> pd.DataFrame:
    """Every row of observations.csv, the held-out candidates and the cisternography file, with its file."""
    parts = []
    for f in ("observations", "observations_v3_candidates", "observations_cisternography"):
        o = v.load_observations(None if f == "observations" else f)
        parts.append(o.assign(file=f))
    return pd.concat(parts, ignore_index=True)


def score(base_values: list[float], binding: tuple[float, float], rhesus: float, rows: pd.DataFrame) -> np.ndarray:
    """Predicted/observed of each row: csf_transport's values, (K_BIND, K_UNBIND) and the rhesus CSF efflux."""
    out = np.empty(len(rows))
    nhp = (rows["species"] == "NHP").to_numpy()
    values = list(base_values) + list(binding)
    for mask, free, x in ((~nhp, BASE.free + BINDING, values),
                          (nhp, BASE.free + BINDING + (RHESUS_FREE,), values + [rhesus])):
        c = cal.Calibration("score", "", free, tuple(rows["id"][mask]))
        out[mask] = cal._predict_all(c, np.asarray(x, float), rows[mask])
    return out / rows["observed"].to_numpy()


def counts(rows: pd.DataFrame, fe: np.ndarray) -> pd.DataFrame:
    """Rows within 2-fold and 1.5-fold per file and role (rows with a bound in the source are left out)."""
    d = rows.assign(fe=fe)
    d = d[d["bound"].isna() | (d["bound"] == "")]
    g = d.groupby(["file", "role"])["fe"]
    return pd.DataFrame({"rows": g.size(), "within_2": g.apply(lambda x: int(np.sum(np.abs(np.log(x)) <= np.log(2)))),
                         "within_1.5": g.apply(lambda x: int(np.sum(np.abs(np.log(x)) <= np.log(1.5))))})


def report(label: str, res: dict) -> None:
    """Print one fit."""
    print(f"{label}: cost {res['cost']:.3f} (csf_transport without the site 5.879), at bound: {res['at_bound']}")
    for k, x in res["values"].items():
        print(f"  {k:28s} {x:.4g} {res['units'][k]}  (SE of log {res['se_log'].get(k, float('nan')):.2f})")
    for i, fe in zip(res["ids"], res["fold_error"]):
        print(f"  {i:38s} fold {fe:.3f}")


def main() -> None:
    """Fit, score and print."""
    pd.set_option("display.width", 200)
    shipped = [cal._read_value(f.file, f.name) for f in BASE.free]
    rhesus0 = cal._read_value(RHESUS.free[0].file, RHESUS.free[0].name)
    rows = all_rows()
    no_site = (0.0, cal._read_value("drugs/methotrexate", "K_UNBIND"))
    table = rows[["id", "file", "role", "observed"]].assign(**{"no site": score(shipped, no_site, rhesus0, rows)})
    fits = {}
    for label, extra in (("", ()), (" + Bleyer 1973", BLEYER73)):
        only = fit("binding_only", BINDING, extra)
        report(f"binding only{label} (csf_transport's values as shipped)", only)
        fits["binding only" + label] = (shipped, tuple(only["values"].values()))
        both = fit("binding_all_free", BASE.free + BINDING, extra)
        report(f"all free{label}", both)
        x = list(both["values"].values())
        fits["all free" + label] = (x[:len(BASE.free)], tuple(x[-2:]))
    # the CSF efflux and the blood-CSF permeabilities free with the site, the mixing as shipped (+ Bleyer 1973)
    free = tuple(f for f in BASE.free if f.name in ("PS_BCSFB", "CL_EFFLUX_CSF")) + BINDING
    res = fit("binding_efflux", free, BLEYER73)
    report("efflux, barrier and site free, mixing as shipped + Bleyer 1973", res)
    got = {k: res["values"][k] for k in res["values"]}
    calib = cal.CALIBRATIONS["binding_efflux"]
    fits["efflux + site + Bleyer 1973"] = ([got.get(cal._key(calib, f), x) for f, x in zip(BASE.free, shipped)],
                                          (got["K_BIND"], got["K_UNBIND"]))
    for label, (base_values, binding) in fits.items():
        kb, ku = binding
        print(f"{label}: capacity K_BIND/K_UNBIND {kb / ku:.3g} x the CSF volume, release half-life "
              f"{np.log(2) / ku:.1f} h")
        rh = fit_rhesus(base_values, binding, rows)
        print(f"{label}: rhesus CSF efflux refitted {rh:.4g} mL/min (files {rhesus0:.4g})")
        table[label] = score(base_values, binding, rh, rows)
    keep = np.any([np.abs(np.log(table[k] / table["no site"])) > np.log(1.05) for k in fits], axis=0)
    print(table[keep].to_string(index=False, float_format=lambda x: f"{x:.3g}"))
    for label in ("no site",) + tuple(fits):
        print(f"counts, {label}:")
        print(counts(rows, table[label].to_numpy()).to_string())


if __name__ == "__main__":
    sys.exit(main())
