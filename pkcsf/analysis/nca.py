"""Non-compartmental analysis (NCA) of sampled concentration-time data.

Follows the conventions of the R package PKNCA (Denney W, Duvvuri S,
Buckeridge C. "Simple, Automatic Noncompartmental Analysis: The PKNCA R
Package." J Pharmacokinet Pharmacodyn 2015;42(1):11-107; source
github.com/humanpred/pknca, ``R/half.life.R``, ``R/auc.R``,
``R/auc_integrate.R``, ``R/cleaners.R``), so results can be checked against
it number for number (tests/test_nca.py reproduces PKNCA 0.12.1 on R's
``Theoph`` data set):

* **BLQ**: a concentration below ``lloq`` (and any concentration of exactly
  0, as in PKNCA) is below the limit of quantification. By region, relative
  to the first and last quantifiable concentration, PKNCA's default
  ``blq = {"first": "keep", "middle": "drop", "last": "keep"}``: kept as 0
  before the first quantifiable value, dropped between, kept as 0 after the
  last. Each region may also be ``"drop"``, ``"keep"`` or a number to put
  in its place. (Dropping or keeping the trailing zeros changes only
  ``aucall``.) Missing concentrations (NaN) are dropped.
* **Cmax, Tmax** (first occurrence), **Clast, Tlast** (last concentration > 0).
* **AUClast** from the first sample to Tlast by ``"linear-up/log-down"`` (PKNCA "lin up/log down")
  (default: linear trapezoid when rising or flat, log trapezoid when falling
  between two positive values), ``"linear"``, or ``"lin-log"`` (linear up to
  Tmax, log after it unless an end is 0). AUMC likewise. ``aucall`` adds
  the linear trapezoid from Tlast to the next (zero) sample.
* **lambda.z** by log-linear least squares on the last *n* points after Tmax
  (Tmax itself excluded unless ``allow_tmax_in_half_life``), with positive
  concentrations only, for every n from ``min_points`` (3) up; among fits with
  ``lambda.z > 0`` and adjusted r-squared greater than (best adjusted
  r-squared of all fits) - ``adj_r2_factor`` (1e-4), the one with the most
  points wins. Adjusted r-squared is ``1 - (1 - r2) (n - 1) / (n - 2)``.
* **AUCinf** (obs: AUClast + Clast/lambda.z; pred: with the Clast predicted
  by the fit), **% extrapolated** (``100 (1 - AUClast/AUCinf)``, flagged
  when above ``max_pext``, 20 %), **AUMCinf**, **MRT** (AUMCinf/AUCinf,
  obs), and with a dose **CL** (dose/AUCinf,obs; CL/F after an extravascular
  dose) and **Vz** (CL/lambda.z; Vz/F).

Parameter columns keep PKNCA's names (``auclast``, ``lambda.z``,
``adj.r.squared``, ``half.life`` ...) so they line up with PKNCA output;
bookkeeping columns use underscores (``auc_method``, ``lambda_z_rule``,
``aucpext_flag``, ``exclude``).

Times are taken as given (h): data are assumed to start at the dose (for a
single dose at 0, include the pre-dose sample at 0; PKNCA integrates from
the interval start in the same way). Amounts in mg, concentrations in mg/L
give AUC in mg*h/L, CL in L/h, Vz in L.

Everything is vectorised over subjects (padded 2-D arrays; the only Python
loop runs over the number of points in the lambda.z fit); 5,000 subjects
with 15 samples take well under a second.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pkcsf.analysis.methods import check_method
from pkcsf.core.errors import PkcsfError, check_finite, check_keys, suggest
from pkcsf.core.units import parse_quantity

__all__ = ["nca", "nca_arrays", "NCAError", "AUC_METHODS", "PARAMETERS", "DEFAULT_BLQ"]

#: AUC methods (names of :mod:`pkcsf.analysis.methods`); aliases such as "lin up/log down" are accepted.
AUC_METHODS = ("linear-up/log-down", "linear", "lin-log")

#: PKNCA's current default BLQ rule (PKNCA.options("conc.blq")).
DEFAULT_BLQ = {"first": "keep", "middle": "drop", "last": "keep"}

#: Output parameter columns, in order (PKNCA names).
PARAMETERS = (
    "cmax", "tmax", "tlast", "clast.obs", "auclast", "aucall", "aumclast",
    "lambda.z", "r.squared", "adj.r.squared", "lambda.z.time.first", "lambda.z.time.last",
    "lambda.z.n.points", "clast.pred", "half.life", "span.ratio",
    "aucinf.obs", "aucinf.pred", "aucpext.obs", "aucpext.pred", "aumcinf.obs", "aumcinf.pred",
    "mrt.obs", "cl.obs", "vz.obs",
)


class NCAError(PkcsfError):
    """Invalid NCA input (columns, duplicate times, options).

    Parameters
    ----------
    field, value, allowed, fix
        As for :class:`~pkcsf.core.errors.PkcsfError`: where the problem is, what was given, the rule, a hint.
    """


# ----------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------

def _check_auc_method(method) -> str:
    return check_method("auc_method", method, AUC_METHODS, NCAError)


def _check_blq(blq) -> dict:
    if blq is None:
        return dict(DEFAULT_BLQ)
    if isinstance(blq, (str, int, float)) and not isinstance(blq, bool):
        blq = {"first": blq, "middle": blq, "last": blq}
    if not isinstance(blq, Mapping):
        raise NCAError("blq", blq, "must be 'keep', 'drop', a number, or a dict with keys first, middle, last")
    check_keys("blq", blq, DEFAULT_BLQ, NCAError)
    out = dict(DEFAULT_BLQ)
    for k, v in blq.items():
        if isinstance(v, str):
            if v not in ("keep", "drop"):
                raise NCAError(f"blq[{k!r}]", v, "allowed: 'keep', 'drop' or a number (mg/L)")
        else:
            v = check_finite(f"blq[{k!r}]", v, NCAError)
            if v < 0:
                raise NCAError(f"blq[{k!r}]", v, "a replacement concentration must be >= 0")
        out[k] = v
    return out


# ----------------------------------------------------------------------------
# the vectorised core on padded arrays
# ----------------------------------------------------------------------------

def _first_true(mask):
    """Index of the first True per row, and whether any."""
    return mask.argmax(axis=1), mask.any(axis=1)


def _last_true(mask):
    m = mask.shape[1]
    return m - 1 - mask[:, ::-1].argmax(axis=1), mask.any(axis=1)


def _rows(x, idx):
    return np.take_along_axis(x, idx[:, None], axis=1)[:, 0]


def _compact(keep, *arrays):
    """Move the kept entries of each row to the left, in order."""
    order = np.argsort(~keep, axis=1, kind="stable")
    return [np.take_along_axis(a, order, axis=1) for a in arrays], keep.sum(axis=1)


def _core(t, c, lloq, *, auc_method, blq, min_points, adj_r2_factor, allow_tmax, dose):
    """NCA of G profiles padded to shape (G, M) with NaN. Returns dict of (G,) arrays."""
    G, M = c.shape
    col = np.arange(M)[None, :]
    valid = np.isfinite(c)
    with np.errstate(invalid="ignore"):
        is_blq = valid & ((c <= 0) | (c < lloq))
    quant = valid & ~is_blq
    fq, any_q = _first_true(quant)
    lq, _ = _last_true(quant)
    fq, lq = fq[:, None], lq[:, None]
    region = {
        "first": is_blq & ((col < fq) | ~any_q[:, None]),
        "middle": is_blq & any_q[:, None] & (col > fq) & (col < lq),
        "last": is_blq & any_q[:, None] & (col > lq),
    }
    c = np.where(is_blq, 0.0, c)
    keep = valid.copy()
    for name, mask in region.items():
        rule = blq[name]
        if rule == "drop":
            keep &= ~mask
        elif rule != "keep":
            c = np.where(mask, float(rule), c)
    (t, c), n = _compact(keep, t, c)
    inside = col < n[:, None]

    # Cmax, Tmax (first), Tlast, Clast
    cc = np.where(inside, c, -np.inf)
    imax = cc.argmax(axis=1)
    cmax = np.where(n > 0, _rows(cc, imax), np.nan)
    tmax = np.where(cmax > 0, _rows(t, imax), np.nan)
    pos = inside & (c > 0)
    ilast, any_pos = _last_true(pos)
    tlast = np.where(any_pos, _rows(t, ilast), np.nan)
    clast = np.where(any_pos, _rows(c, ilast), np.nan)

    # AUC, AUMC: segment j joins points j and j+1
    t1, t2, c1, c2 = t[:, :-1], t[:, 1:], c[:, :-1], c[:, 1:]
    seg = inside[:, 1:]
    dt = t2 - t1
    if auc_method == "linear":
        use_log = np.zeros_like(seg)
    elif auc_method == "linear-up/log-down":
        use_log = (c2 < c1) & (c2 > 0)
    else:   # lin-log: log after tmax unless an end is zero (flat: the log rule's limit, linear)
        use_log = (t2 > tmax[:, None]) & (c1 > 0) & (c2 > 0) & (c1 != c2)
    use_log &= seg
    with np.errstate(invalid="ignore", divide="ignore"):
        lr = np.where(use_log, np.log(np.where(use_log, c2 / c1, 1.0)), 1.0)
        area = np.where(use_log, dt * (c2 - c1) / lr, dt * (c1 + c2) / 2)
        moment = np.where(use_log, dt * (c2 * t2 - c1 * t1) / lr - dt ** 2 * (c2 - c1) / lr ** 2,
                          dt * (c2 * t2 + c1 * t1) / 2)
    upto_last = seg & (np.arange(M - 1)[None, :] < ilast[:, None]) & any_pos[:, None]
    auclast = np.where(upto_last, area, 0.0).sum(axis=1)
    aumclast = np.where(upto_last, moment, 0.0).sum(axis=1)
    nxt = np.minimum(ilast + 1, M - 1)
    has_next = any_pos & (ilast + 1 < n)
    tail = np.where(has_next, (_rows(t, nxt) - tlast) * (clast + _rows(c, nxt)) / 2, 0.0)
    aucall = auclast + tail
    no_data = n == 0
    auclast[no_data] = aumclast[no_data] = aucall[no_data] = np.nan

    # lambda.z: candidates are positive concentrations after tmax (or from tmax)
    with np.errstate(invalid="ignore"):
        after = (t >= tmax[:, None]) if allow_tmax else (t > tmax[:, None])
    cand = pos & after
    k = cand.sum(axis=1)
    # reversed time order, candidates first: column i holds the (i+1)-th last candidate
    (tr, cr), _ = _compact(cand[:, ::-1], t[:, ::-1], c[:, ::-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        yr = np.log(cr)
    nmax = int(k.max()) if G else 0
    shape = (G, max(nmax + 1, 1))
    fit = {name: np.full(shape, np.nan) for name in ("adj", "r2", "lam", "icpt")}
    for npts in range(max(min_points, 2), nmax + 1):
        rows = np.flatnonzero(k >= npts)
        x, y = tr[rows, :npts], yr[rows, :npts]
        dx = x - x.mean(axis=1, keepdims=True)
        my = y.mean(axis=1, keepdims=True)
        dy = y - my
        slope = (dx * dy).sum(axis=1) / (dx * dx).sum(axis=1)
        ssres = ((dy - slope[:, None] * dx) ** 2).sum(axis=1)
        sstot = (dy * dy).sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = 1.0 - ssres / sstot
            adj = 1.0 - (1.0 - r2) * (npts - 1) / (npts - 2) if npts > 2 else np.full(rows.size, np.nan)
        fit["r2"][rows, npts] = r2
        fit["adj"][rows, npts] = adj
        fit["lam"][rows, npts] = -slope
        fit["icpt"][rows, npts] = my[:, 0] - slope * x.mean(axis=1)
    with np.errstate(invalid="ignore"):
        allnan = np.isnan(fit["adj"]).all(axis=1)
        best = np.where(allnan, np.nan, np.nanmax(np.where(allnan[:, None], 0.0, fit["adj"]), axis=1))
        ok = (fit["lam"] > 0) & (fit["adj"] > best[:, None] - adj_r2_factor)
        if min_points == 2:   # PKNCA: with exactly 2 candidate points, the 2-point fit is taken
            two = k == 2
            ok[two, 2] = fit["lam"][two, 2] > 0
    has_fit = ok.any(axis=1)
    npick = np.where(has_fit, shape[1] - 1 - ok[:, ::-1].argmax(axis=1), 0)
    lam = np.where(has_fit, _rows(fit["lam"], npick), np.nan)
    r2 = np.where(has_fit, _rows(fit["r2"], npick), np.nan)
    adj = np.where(has_fit, _rows(fit["adj"], npick), np.nan)
    icpt = np.where(has_fit, _rows(fit["icpt"], npick), np.nan)
    tfirst = np.where(has_fit, _rows(tr, np.maximum(npick - 1, 0)), np.nan)
    tlast_fit = np.where(has_fit, tr[:, 0] if M else np.nan, np.nan)
    clast_pred = np.exp(icpt - lam * tlast)
    half_life = math.log(2) / lam
    span = (tlast_fit - tfirst) / half_life

    with np.errstate(divide="ignore", invalid="ignore"):
        aucinf_obs = auclast + clast / lam
        aucinf_pred = auclast + clast_pred / lam
        aucpext_obs = 100.0 * (1.0 - auclast / aucinf_obs)
        aucpext_pred = 100.0 * (1.0 - auclast / aucinf_pred)
        aumcinf_obs = aumclast + clast * tlast / lam + clast / lam ** 2
        aumcinf_pred = aumclast + clast_pred * tlast / lam + clast_pred / lam ** 2
        mrt = aumcinf_obs / aucinf_obs
        cl = dose / aucinf_obs
        vz = cl / lam

    exclude = np.full(G, None, dtype=object)
    exclude[~has_fit] = "no lambda.z: no fit with lambda.z > 0 within adj.r.squared factor of the best"
    few = k < max(min_points, 2)
    exclude[few] = [f"no lambda.z: too few points after tmax (min_points={min_points}, got {int(x)})"
                    for x in k[few]]
    exclude[any_q & ~any_pos] = "all concentrations are zero"
    exclude[~any_q & (n > 0)] = "all concentrations are below the LLOQ"
    exclude[no_data] = "no concentrations"
    return {
        "cmax": cmax, "tmax": tmax, "tlast": tlast, "clast.obs": clast,
        "auclast": auclast, "aucall": aucall, "aumclast": aumclast,
        "lambda.z": lam, "r.squared": r2, "adj.r.squared": adj,
        "lambda.z.time.first": tfirst, "lambda.z.time.last": tlast_fit,
        "lambda.z.n.points": np.where(has_fit, npick, np.nan),
        "clast.pred": clast_pred, "half.life": half_life, "span.ratio": span,
        "aucinf.obs": aucinf_obs, "aucinf.pred": aucinf_pred,
        "aucpext.obs": aucpext_obs, "aucpext.pred": aucpext_pred,
        "aumcinf.obs": aumcinf_obs, "aumcinf.pred": aumcinf_pred,
        "mrt.obs": mrt, "cl.obs": cl, "vz.obs": vz,
        "exclude": exclude,
    }


def _finish(keys: pd.DataFrame, res: dict, *, auc_method, min_points, adj_r2_factor, allow_tmax,
            max_pext) -> pd.DataFrame:
    out = keys.reset_index(drop=True).copy()
    for name in PARAMETERS:
        out[name] = res[name]
    out["lambda.z.n.points"] = out["lambda.z.n.points"].astype("Int64")
    out["aucpext_flag"] = np.asarray(res["aucpext.obs"] > max_pext)
    out["auc_method"] = auc_method
    out["lambda_z_rule"] = (f"adj.r.squared (factor={adj_r2_factor:g}, min.points={min_points}, "
                            f"tmax {'included' if allow_tmax else 'excluded'})")
    out["exclude"] = res["exclude"]
    return out


def _options(auc_method, blq, min_points, adj_r2_factor, allow_tmax_in_half_life, max_pext):
    method = _check_auc_method(auc_method)
    rules = _check_blq(blq)
    if isinstance(min_points, bool) or not isinstance(min_points, (int, np.integer)) or min_points < 2:
        raise NCAError("min_points", min_points, "must be an integer >= 2 (PKNCA default 3)")
    factor = check_finite("adj_r2_factor", adj_r2_factor, NCAError)
    if factor < 0:
        raise NCAError("adj_r2_factor", adj_r2_factor, "must be >= 0 (PKNCA default 1e-4)")
    pext = check_finite("max_pext", max_pext, NCAError)
    return method, rules, int(min_points), factor, bool(allow_tmax_in_half_life), pext


def _py(x):
    """A numpy scalar as its plain Python value (for readable messages)."""
    return x.item() if isinstance(x, np.generic) else x


def _as_amount(field, value) -> float:
    if isinstance(value, str):
        return parse_quantity(value, "amount", field=field)
    x = check_finite(field, value, NCAError)
    if x <= 0:
        raise NCAError(field, value, "a dose must be > 0 (mg)")
    return x


def _as_lloq(value) -> float:
    if isinstance(value, str):
        x = parse_quantity(value, "concentration", field="lloq")
    else:
        x = check_finite("lloq", value, NCAError)
    if x < 0:
        raise NCAError("lloq", value, "must be >= 0 (mg/L)")
    return x


# ----------------------------------------------------------------------------
# public entry points
# ----------------------------------------------------------------------------

def nca(data: pd.DataFrame, *, id_col: str = "id", time_col: str = "time", conc_col: str = "conc",
        by: Sequence[str] = (), dose: float | str | None = None, lloq: float | str | None = None,
        auc_method: str = "linear-up/log-down", blq: str | float | dict | None = None,
        min_points: int = 3, adj_r2_factor: float = 1e-4, allow_tmax_in_half_life: bool = False,
        max_pext: float = 20.0) -> pd.DataFrame:
    """NCA of a tidy concentration table, one result row per subject x group.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per sample: ``id_col``, ``time_col`` (h), ``conc_col`` (mg/L;
        NaN = missing, dropped) and any grouping columns in ``by`` (e.g.
        ``"compartment"``). Times must be unique within a subject x group.
    id_col, time_col, conc_col : str
        Column names.
    by : sequence of str
        Extra grouping columns.
    dose : float, str or mapping, optional
        Dose in mg: a number (or ``"320 mg"``) for every subject, the name of
        a column of ``data`` (constant within a subject x group), or a
        mapping from subject id to dose. Needed for ``cl.obs`` and ``vz.obs``.
    lloq : float, str, optional
        Lower limit of quantification, mg/L (a number, ``"0.05 ng/mL"``, or
        a column name for per-sample limits). Concentrations below it and
        zeros are BLQ.
    auc_method : str
        ``"linear-up/log-down"`` (default; alias ``"lin up/log down"``), ``"linear"`` or ``"lin-log"``.
    blq : str, float or dict, optional
        BLQ rule by region (module docstring); default PKNCA's
        ``{"first": "keep", "middle": "drop", "last": "keep"}``.
    min_points : int
        Minimum points in the lambda.z fit (PKNCA ``min.hl.points``, 3).
    adj_r2_factor : float
        PKNCA ``adj.r.squared.factor`` (1e-4).
    allow_tmax_in_half_life : bool
        Let the Tmax point enter the lambda.z fit (PKNCA default False).
    max_pext : float
        Percent extrapolated above which ``aucpext_flag`` is set (20).

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``id_col``, then :data:`PARAMETERS` (h, mg/L, mg*h/L,
        mg*h^2/L, 1/h, L/h, L, %), ``aucpext_flag``, ``auc_method``,
        ``lambda_z_rule`` and ``exclude`` (why a parameter is missing, else None).

    Examples
    --------
    An IV bolus of 10 mg with C(t) = 10 exp(-0.2 t) mg/L: AUCinf = 50 mg*h/L, CL = 0.2 L/h, Vz = 1 L.

    >>> import numpy as np, pandas as pd
    >>> t = np.array([0, 0.5, 1, 2, 4, 8, 12, 24.0])
    >>> res = nca(pd.DataFrame({"id": 1, "time": t, "conc": 10 * np.exp(-0.2 * t)}), dose=10.0)
    >>> res[["aucinf.obs", "cl.obs", "vz.obs"]].round(3).to_dict("records")
    [{'aucinf.obs': 50.0, 'cl.obs': 0.2, 'vz.obs': 1.0}]
    >>> round(float(res["half.life"].iloc[0]), 3)
    3.466
    """
    method, rules, min_points, factor, allow, pext = _options(auc_method, blq, min_points, adj_r2_factor,
                                                              allow_tmax_in_half_life, max_pext)
    if not isinstance(data, pd.DataFrame):
        raise NCAError("data", type(data).__name__, "must be a pandas DataFrame (use nca_arrays for arrays)")
    by = [by] if isinstance(by, str) else list(by)
    keys = by + [id_col]
    needed = keys + [time_col, conc_col]
    if isinstance(lloq, str) and lloq in data.columns:
        needed.append(lloq)
    if isinstance(dose, str) and dose in data.columns:
        needed.append(dose)
    for name in needed:
        if name not in data.columns:
            guess = suggest(name, data.columns)
            raise NCAError("data.columns", name, "is not a column; columns are: " + ", ".join(map(str, data.columns)),
                           f"did you mean {guess!r}?" if guess else None)
    if len(data) == 0:
        raise NCAError("data", "an empty table", "needs at least one sample")

    gid = data.groupby(keys, sort=True, dropna=False, observed=True).ngroup().to_numpy()
    t = pd.to_numeric(data[time_col], errors="coerce").to_numpy(dtype=float)
    c = pd.to_numeric(data[conc_col], errors="coerce").to_numpy(dtype=float)
    bad_t = ~np.isfinite(t)
    if bad_t.any():
        i = int(np.argmax(bad_t))
        raise NCAError(f"{time_col}[row {_py(data.index[i])!r}]", data[time_col].iloc[i], "must be a finite time (h)")
    neg = c < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise NCAError(f"{conc_col}[row {_py(data.index[i])!r}]", float(c[i]), "must be >= 0 (mg/L)",
                       "set values below the LLOQ to 0 or give lloq=")
    order = np.lexsort((t, gid))
    gid, t, c = gid[order], t[order], c[order]
    dup = (gid[1:] == gid[:-1]) & (t[1:] == t[:-1])
    if dup.any():
        i = int(order[int(np.argmax(dup)) + 1])
        who = ", ".join(f"{k}={_py(data[k].iloc[i])!r}" for k in keys)
        raise NCAError(f"{time_col} ({who})", float(data[time_col].iloc[i]),
                       "times must be unique within a subject (and group)")
    G = int(gid.max()) + 1
    counts = np.bincount(gid, minlength=G)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    pos = np.arange(gid.size) - starts[gid]
    M = int(counts.max())
    T2 = np.full((G, M), np.nan)
    C2 = np.full((G, M), np.nan)
    T2[gid, pos] = t
    C2[gid, pos] = c
    if lloq is None:
        L2 = np.zeros((G, M))
    elif isinstance(lloq, str) and lloq in data.columns:
        lv = pd.to_numeric(data[lloq], errors="coerce").to_numpy(dtype=float)[order]
        L2 = np.zeros((G, M))
        L2[gid, pos] = np.nan_to_num(lv, nan=0.0)
    else:
        L2 = np.full((G, M), _as_lloq(lloq))
    first_rows = order[starts]
    key_frame = data[keys].iloc[first_rows]

    if isinstance(dose, pd.Series):
        dose = dose.to_dict()
    if dose is None:
        dose_g = np.full(G, np.nan)
    elif isinstance(dose, str) and dose in data.columns:
        dv = pd.to_numeric(data[dose], errors="coerce").to_numpy(dtype=float)[order]
        dose_g = dv[starts]
        differs = ~np.isclose(dv, dose_g[gid], equal_nan=True)
        if differs.any():
            i = int(order[int(np.argmax(differs))])
            raise NCAError(f"{dose}[row {_py(data.index[i])!r}]", float(data[dose].iloc[i]),
                           "the dose must be the same on every row of a subject (and group)")
    elif isinstance(dose, Mapping):
        ids = key_frame[id_col].tolist()
        missing = [i for i in ids if i not in dose]
        if missing:
            raise NCAError("dose", missing[0], "this subject id has no entry in the dose mapping")
        dose_g = np.array([_as_amount(f"dose[{i!r}]", dose[i]) for i in ids])
    else:
        dose_g = np.full(G, _as_amount("dose", dose))

    res = _core(T2, C2, L2, auc_method=method, blq=rules, min_points=min_points, adj_r2_factor=factor,
                allow_tmax=allow, dose=dose_g)
    return _finish(key_frame, res, auc_method=method, min_points=min_points, adj_r2_factor=factor,
                   allow_tmax=allow, max_pext=pext)


def nca_arrays(times: ArrayLike, conc: ArrayLike, *, dose: float | ArrayLike | None = None,
               subjects: Sequence | None = None, compartments: Sequence[str] | None = None,
               lloq: float | None = None, auc_method: str = "linear-up/log-down",
               blq: str | float | dict | None = None, min_points: int = 3, adj_r2_factor: float = 1e-4,
               allow_tmax_in_half_life: bool = False, max_pext: float = 20.0) -> pd.DataFrame:
    """NCA of sampled (e.g. simulated) profiles given as arrays.

    Parameters
    ----------
    times : array_like, shape (n_times,) or (n_subjects, n_times)
        Sampling times, h, strictly increasing per subject.
    conc : array_like, shape (n_subjects, n_times) or (n_subjects, n_times, n_compartments)
        mg/L; NaN marks a missing sample. Negative values (solver round-off)
        are taken as 0.
    dose : float, str or array_like of shape (n_subjects,), optional
        mg.
    subjects : array_like, shape (n_subjects,), optional
        Subject ids (default 0..n_subjects-1).
    compartments : sequence of str, optional
        Names for the last axis of a 3-D ``conc`` (default "0", "1", ...).
    lloq, auc_method, blq, min_points, adj_r2_factor, allow_tmax_in_half_life, max_pext
        As in :func:`nca`.

    Returns
    -------
    pandas.DataFrame
        ``subject``, ``compartment`` (3-D input only), then as :func:`nca`.

    Examples
    --------
    >>> import numpy as np
    >>> t = np.array([0, 0.5, 1, 2, 4, 8, 12, 24.0])
    >>> res = nca_arrays(t, 10 * np.exp(-0.2 * t)[None, :], dose=10.0)
    >>> res[["subject", "auclast", "aucinf.obs"]].round(2).to_dict("records")
    [{'subject': 0, 'auclast': 49.59, 'aucinf.obs': 50.0}]
    """
    method, rules, min_points, factor, allow, pext = _options(auc_method, blq, min_points, adj_r2_factor,
                                                              allow_tmax_in_half_life, max_pext)
    c = np.asarray(conc, dtype=float)
    if c.ndim not in (2, 3):
        raise NCAError("conc", f"array of shape {c.shape}",
                       "must have shape (n_subjects, n_times) or (n_subjects, n_times, n_compartments)")
    n, T = c.shape[:2]
    t = np.asarray(times, dtype=float)
    if t.shape not in ((T,), (n, T)):
        raise NCAError("times", f"array of shape {t.shape}", f"must have shape ({T},) or ({n}, {T})")
    if not np.isfinite(t).all():
        raise NCAError("times", "an array with NaN or inf", "must be finite (h)")
    if T > 1 and (np.diff(t, axis=-1) <= 0).any():
        raise NCAError("times", "unsorted or repeated times", "must be strictly increasing")
    if np.isinf(c).any():
        raise NCAError("conc", "an array with inf", "must be finite or NaN (missing)")
    c = np.maximum(c, 0.0, where=~np.isnan(c), out=c.copy())
    is3d = c.ndim == 3
    n_cmt = c.shape[2] if is3d else 1
    if is3d:
        c = np.moveaxis(c, 2, 1).reshape(n * n_cmt, T)       # rows: subject-major, then compartment
    t2 = np.broadcast_to(t, (n, T))
    t2 = np.repeat(t2, n_cmt, axis=0) if n_cmt > 1 else np.array(t2)
    ids = np.arange(n) if subjects is None else np.asarray(subjects)
    if ids.shape != (n,):
        raise NCAError("subjects", f"array of shape {ids.shape}", f"must have shape ({n},)")
    if dose is None:
        dose_v = np.full(n, np.nan)
    elif np.ndim(dose) == 0:
        dose_v = np.full(n, _as_amount("dose", dose))
    else:
        dose_v = np.asarray(dose, dtype=float)
        if dose_v.shape != (n,):
            raise NCAError("dose", f"array of shape {dose_v.shape}", f"must be a number or have shape ({n},)")
        if not (np.isfinite(dose_v) & (dose_v > 0)).all():
            raise NCAError("dose", "an array with a value <= 0 or NaN", "doses must be > 0 (mg)")
    lloq_v = 0.0 if lloq is None else _as_lloq(lloq)
    keys = {"subject": np.repeat(ids, n_cmt)}
    if is3d:
        names = [str(i) for i in range(n_cmt)] if compartments is None else [str(x) for x in compartments]
        if len(names) != n_cmt:
            raise NCAError("compartments", compartments, f"must name {n_cmt} compartment(s)")
        keys["compartment"] = np.tile(np.array(names, dtype=object), n)
    res = _core(t2, c, np.full(c.shape, lloq_v), auc_method=method, blq=rules, min_points=min_points,
                adj_r2_factor=factor, allow_tmax=allow, dose=np.repeat(dose_v, n_cmt))
    return _finish(pd.DataFrame(keys), res, auc_method=method, min_points=min_points, adj_r2_factor=factor,
                   allow_tmax=allow, max_pext=pext)
