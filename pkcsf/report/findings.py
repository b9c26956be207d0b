"""Numbers as text: value formatting, the compact read-out tables and the sentences under "What the numbers say"."""
from __future__ import annotations

import numpy as np
import pandas as pd


# --------------------------------------------------------------- formatting
def _f(v) -> str:
    """3 significant digits, plain decimals for the usual range."""
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:.0f}"
    if a >= 1e-3:
        s = f"{v:.3g}"
        return s if "e" not in s else f"{v:.4f}"
    return f"{v:.2e}"


def _range(med, lo, hi) -> str:
    """'median (5th–95th)'; the median alone when the patients do not differ at 3 significant digits."""
    if not np.isfinite(med):
        return "–"
    if abs(hi - lo) <= 1e-9 * max(1.0, abs(med)) or _f(lo) == _f(hi) == _f(med):
        return _f(med)
    return f"{_f(med)} ({_f(lo)}–{_f(hi)})"


def _time_above_text(v, window: float, unit: str) -> str:
    """Time above a threshold as 'median (5th–95th)'. When every patient stays above to the end of the
    simulated window the number is (nearly) the window's length, not a result: 'whole window (≥ 120 h)', or
    'to the end of the window (≥ 119 of 120 h)' when the first minutes (transit from the injection site)
    are below. Values within 1 % of the window's end are written '≥ x'.
    """
    v = np.asarray(v, dtype=float)
    v = v[np.isfinite(v)]
    if not v.size:
        return "–"
    exact, near = window * (1 - 1e-6), window * 0.99
    if window > 0 and np.all(v >= exact):
        return f"whole window (≥ {_f(window)} {unit})"
    if window > 0 and np.all(v >= near):
        return f"to the end of the window (≥ {np.floor(v.min() * 10) / 10:.1f} of {_f(window)} {unit})"
    med, lo, hi = np.median(v), np.percentile(v, 5), np.percentile(v, 95)
    if window > 0 and hi >= near:            # some patients above to the end of the window: a lower bound
        g = lambda x: f"≥ {_f(x)}" if x >= near else _f(x)  # noqa: E731
        return f"{g(med)} ({g(lo)}–{g(hi)})"
    return _range(med, lo, hi)


def _compact(res, groups, thresholds=(), *, drug=None, extra=(), time_unit="h", tmax=True, cmax=True) -> pd.DataFrame:
    """One row per arm and group: median (5th–95th percentile) of the key read-outs, as text.

    ``tmax=False`` for multiple doses (the time of the highest peak says little); ``cmax=False`` when
    ``extra`` gives the last-interval Cmax instead.
    """
    from pkcsf.plotting import group_label, pretty_unit

    m = res.metrics()
    if drug is not None:
        m = m[m["drug"] == drug]
    unit = pretty_unit(res.unit)
    cols = ([("cmax", f"Cmax ({unit})", 1.0)] if cmax else []) + ([("tmax", "Tmax (h)", 1.0)] if tmax else []) \
        + [("auc", f"AUC ({unit}·h)", 1.0)]
    cols += [c for c in extra if c[0] in m.columns]
    for t in thresholds:
        c = f"time_above[{t}]"
        if c in m.columns:
            cols.append((c, f"time above {_thr_label(res, t, drug)} ({time_unit})", 24.0 if time_unit == "d" else 1.0))
    rows = []
    for (arm, d, g), sub in m.groupby(["arm", "drug", "group"], sort=False):
        if g not in groups:
            continue
        row = {"arm": arm, "drug": d, "compartment": group_label(g)}
        t = res[arm].times
        for c, label, scale in cols:
            v = sub[c].to_numpy(dtype=float) / scale
            if c.startswith("time_above["):
                row[label] = _time_above_text(v, float(t[-1] - t[0]) / scale, time_unit)
            else:
                row[label] = _range(np.median(v), np.percentile(v, 5), np.percentile(v, 95))
        rows.append(row)
    df = pd.DataFrame(rows).drop(columns="drug")
    order = {g: i for i, g in enumerate(groups)}
    key = {group_label(g): i for g, i in order.items()}
    df["_o"] = df["compartment"].map(key)
    arms = list(dict.fromkeys(df["arm"]))
    df["_a"] = df["arm"].map({a: i for i, a in enumerate(arms)})
    return df.sort_values(["_a", "_o"]).drop(columns=["_o", "_a"]).reset_index(drop=True)


def _thr_label(res, name, drug=None):
    from pkcsf.clinical import cns
    from pkcsf.core.units import concentration_factor
    from pkcsf.plotting import _threshold_name, pretty_unit

    d = drug or next(iter(next(iter(res.arms.values())).profiles))
    dd = cns.drug(d)
    if name in dd.thresholds:
        v = dd.thresholds[name] * concentration_factor(res.unit, dd.mw)
        return f"{_threshold_name(name)} {_f(v)} {pretty_unit(res.unit)}"
    return str(name)


def _values(res, arm, group, col, drug=None) -> np.ndarray:
    m = res[arm].metrics
    sel = (m["group"] == group) & ((m["drug"] == drug) if drug else True)
    return m.loc[sel, col].to_numpy(dtype=float)


def _med(res, arm, group, col, drug=None) -> float:
    v = _values(res, arm, group, col, drug)
    return float(np.median(v)) if v.size else float("nan")


def _q(res, arm, group, col, unit="", scale=1.0, drug=None) -> str:
    """'median (5th–95th percentile) unit' of a read-out over the virtual patients."""
    v = _values(res, arm, group, col, drug) / scale
    if not v.size:
        return "–"
    return _range(np.median(v), np.percentile(v, 5), np.percentile(v, 95)) + (f" {unit}" if unit else "")


def _window(res, arm) -> float:
    t = res[arm].times
    return float(t[-1] - t[0])


def _ta(res, arm, group, col, unit="h", scale=1.0) -> str:
    """Time above, with its interval, or 'whole window (≥ … )' (see :func:`_time_above_text`)."""
    text = _time_above_text(_values(res, arm, group, col) / scale, _window(res, arm) / scale, unit)
    return text if text.startswith(("whole", "to the end")) else f"{text} {unit}"


def _mtx_findings(mtx) -> list[str]:
    c = "time_above[cytotoxic]"
    vl, vo = _med(mtx, "lumbar", "ventricular", "cmax"), _med(mtx, "Ommaya", "ventricular", "cmax")
    tl, to = _med(mtx, "lumbar", "ventricular", c), _med(mtx, "Ommaya", "ventricular", c)
    al, ao = _med(mtx, "lumbar", "ventricular", "auc"), _med(mtx, "Ommaya", "ventricular", "auc")
    out = [f"After a lumbar injection the ventricular peak is {_q(mtx, 'lumbar', 'ventricular', 'cmax', 'µmol/L')} "
           f"(median, 5th–95th percentile), {100 * vl / vo:.1f}% of the median peak after an Ommaya injection "
           f"({_q(mtx, 'Ommaya', 'ventricular', 'cmax', 'µmol/L')}), reached at "
           f"{_q(mtx, 'lumbar', 'ventricular', 'tmax', 'h')}; the median ventricular AUC is {_f(al / ao * 100)}% of "
           "the Ommaya AUC.",
           f"Time above 1 µmol/L in the ventricles: {_ta(mtx, 'lumbar', 'ventricular', c)} after lumbar, "
           f"{_ta(mtx, 'Ommaya', 'ventricular', c)} after Ommaya; in the lumbar sac: {_ta(mtx, 'lumbar', 'lumbar', c)} "
           f"and {_ta(mtx, 'Ommaya', 'lumbar', c)}."]
    if tl > to:
        out.append("**Read with caution:** in this model the ventricles stay above 1 µmol/L *longer* after a lumbar "
                   f"than after an Ommaya injection, although the peak is {vo / vl:.0f} times lower. The lumbar sac acts as a "
                   "slowly emptying depot that keeps feeding the ventricles by mixing, while an Ommaya dose is "
                   "washed out of the ventricles by the bulk flow and the ventricular mixing (Q_MIX_VENT, "
                   "calibrated). No validation observation covers the duration of "
                   "ventricular exposure after a lumbar dose (only its peak, Blaney 2001 '< 10%'); clinical series "
                   "describe ventricular levels after lumbar injection as low and inconsistent, so this duration "
                   "should not be used to argue for the lumbar route.")
    return out


def _pem_findings(pem) -> list[str]:
    c = "time_above[ic50_egfr_mutant]"
    parts = []
    t = pem["10 mg lumbar"].times
    window = float(t[-1] - t[0])

    def ta(arm):
        text = _time_above_text(_values(pem, arm, "ventricular", c), window, "h")
        return text if text.startswith(("whole", "to the end")) else text + " h"

    for d in (10, 30, 50):
        parts.append(f"{d} mg: {ta(f'{d} mg lumbar')} (lumbar) / {ta(f'{d} mg Ommaya')} (Ommaya)")
    pl = [_q(pem, f"{d} mg lumbar", "plasma", "cmax", "µmol/L") for d in (10, 30, 50)]
    longer = all(_med(pem, f"{d} mg lumbar", "ventricular", c) > _med(pem, f"{d} mg Ommaya", "ventricular", c)
                 for d in (10, 30, 50))
    return ["Hours with ventricular pemetrexed above the EGFR-mutant IC50 (0.05 µmol/L), median (5th–95th "
            f"percentile) over a {_f(window)}-h window: " + "; ".join(parts) + "."
            + (" As for methotrexate, the model gives the lumbar route the longer ventricular time above a low level "
               "(see the caution in section 1)." if longer else ""),
            f"Plasma peaks after a lumbar injection: {pl[0]}, {pl[1]} and {pl[2]} for 10, 30 and "
            "50 mg (the model is linear, so exposures scale with dose; only the time above a fixed level grows "
            "less than proportionally)."]


def _ara_findings(ara) -> list[str]:
    c = "time_above[cytotoxic]"
    f, l = "free 50 mg twice weekly", "liposomal 50 mg once"
    return [f"Time with free cytarabine above 0.1 µg/mL in the ventricles over 14 days: "
            f"{_ta(ara, f, 'ventricular', c, 'days', 24.0)} with 4 injections of free drug, "
            f"{_ta(ara, l, 'ventricular', c, 'days', 24.0)} with one liposomal injection; in the lumbar sac "
            f"{_ta(ara, f, 'lumbar', c, 'days', 24.0)} and {_ta(ara, l, 'lumbar', c, 'days', 24.0)}.",
            f"Free-drug peaks are far lower with the liposome (lumbar {_q(ara, l, 'lumbar', 'cmax', 'µmol/L')} versus "
            f"{_q(ara, f, 'lumbar', 'cmax', 'µmol/L')}): the depot trades peak for duration."]


def _osi_findings(lin, sat) -> list[str]:
    col = "trough_last" if "trough_last" in lin["80 mg"].metrics.columns else "trough_end"
    out = []
    for label, res in (("linear", lin), ("saturable", sat)):
        fr = []
        for arm in ("80 mg", "160 mg"):
            v = _values(res, arm, "lumbar", col)
            fr.append(f"{arm}: {100 * np.mean(v >= 6.0):.0f}% (trough {_q(res, arm, 'lumbar', col, 'nmol/L')})")
        out.append(f"{label.capitalize()} CSF transport: patients whose steady-state lumbar CSF trough reaches the "
                   f"lowest EGFR-mutant IC50 (6 nmol/L): " + "; ".join(fr) + ".")
    hi = {arm: 100 * np.mean(_values(lin, arm, "lumbar", col) >= 54.0) for arm in ("80 mg", "160 mg")}
    ratio = _med(lin, "160 mg", "ventricular", "auc") / _med(lin, "160 mg", "lumbar", "auc")
    out.append(f"Patients whose lumbar CSF trough reaches the highest mutant IC50 (54 nmol/L), linear transport: "
               f"{hi['80 mg']:.0f}% at 80 mg, {hi['160 mg']:.0f}% at 160 mg. Ventricular CSF is "
               f"{'lower' if ratio < 1 else 'higher'} than lumbar CSF in this model (median ventricular AUC "
               f"{100 * ratio:.0f}% of the lumbar AUC at 160 mg)"
               + (": drug enters the CSF across the barriers, and the ventricles are flushed by newly produced, "
                  "drug-free CSF." if ratio < 1 else "."))
    return out
