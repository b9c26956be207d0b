"""Virtual dose-escalation trials driven by the CSF/plasma pharmacokinetics.

The link between :mod:`pkcsf.clinical.scenario` (what exposure a dose gives) and
:mod:`pkcsf.trials` (what a design does with DLTs)::

    import pkcsf.clinical.escalation as esc
    res = esc.simulate_escalation("pemetrexed", [10, 20, 30, 40, 50], route="lumbar", design="3+3",
                                  exposure="plasma:auc", trials=2000, seed=1)
    res.summary()      # per dose: P(select), E[n treated], E[DLT], DLT rate, exposure p5/p50/p95, ...

What happens
------------
1. **Exposure pools.** For each dose level one :class:`~pkcsf.clinical.scenario.Scenario`
   is run with the same ``subjects`` virtual patients (same ``seed``: patient
   *i* has the same parameters at every dose), and one exposure per patient is
   read out: ``exposure = "group:metric"`` with ``group`` a compartment group
   (``plasma``, ``ventricular``, ``cisternal``, ``cranial_sas``, ``spinal``,
   ``lumbar``, ``brain_ecf``) and ``metric`` one of ``cmax``, ``auc``,
   ``trough_end``, ``time_above[THRESHOLD]`` or ``longest_above[THRESHOLD]``
   (a threshold name of the drug such as ``ic50_bac`` or a quantity such as
   ``0.1 umol/L``). Concentrations are in ``unit`` (default µmol/L), AUC in
   ``unit`` x h over the whole simulated window, times in h.
2. **Exposure-toxicity link.** ``link`` maps an exposure to a patient's DLT
   probability. Default: :meth:`LogisticExposureToxicity.from_mtd_exposure
   <pkcsf.trials.LogisticExposureToxicity.from_mtd_exposure>` anchored at the
   **median exposure of the dose the literature calls the MTD** (``mtd_dose``),
   where the DLT probability is ``p_at_mtd`` (default 0.30), with slope 2 per
   log unit of exposure (odds x4 per doubling of exposure). See
   :data:`LITERATURE_MTD` for the stored MTDs (only intrathecal pemetrexed by
   lumbar puncture, 10 mg, Pan et al. 2019); for any other drug or route give
   ``mtd_dose`` or your own ``link``. **The default link is an assumption** for
   exploring designs, not a fitted exposure-toxicity model: override it
   whenever you have one.
3. **Trials.** :func:`pkcsf.trials.simulate_trials` runs ``trials`` virtual
   trials of ``design`` (``"3+3"``, ``"boin"``, ``"crm"`` or a design object);
   each trial patient is drawn from the pool of the dose given to them.
4. **Efficacy (optional).** ``efficacy`` is a per-patient exposure target
   (e.g. ``"lumbar:time_above[0.1 umol/L] >= 48 h"``); the fraction of each
   dose's pool meeting it is reported (it does not steer the designs).

Why plasma AUC by default: the dose-limiting toxicity usually reported for
intrathecal antifolates is myelosuppression, a systemic effect, so the
cumulative plasma exposure is the natural first choice. Local toxicity
(arachnoiditis, radiculopathy) would follow the CSF exposure near the
injection site: try ``exposure="lumbar:cmax"``.

Where the parts live: the inputs (dose levels, schedules, exposure and efficacy specifications, IIV, literature
MTDs) in :mod:`~pkcsf.clinical.escalation_spec`, the result tables in
:mod:`~pkcsf.clinical.escalation_results`; designs and links in :mod:`pkcsf.trials`, per-patient PD DLTs in
:mod:`~pkcsf.clinical.pd_toxicity`. Every public name is importable from here.
"""
from __future__ import annotations

import re
import sys
import time as _time
from collections.abc import Callable, Sequence

import numpy as np

from pkcsf.clinical import cns
from pkcsf.clinical import pd_toxicity as pdtox
from pkcsf.clinical.escalation_results import EscalationResult, ScheduleComparison
from pkcsf.clinical.escalation_spec import (  # noqa: F401
    _METRICS,
    _RESPONSE_SITE,
    _THRESHOLD_METRICS,
    DEFAULT_SCHEDULE,
    LITERATURE_MTD,
    EfficacyTarget,
    EscalationError,
    ExposureSpec,
    _default_response,
    _doses,
    _fmt_dose,
    _regimen_for,
    parse_exposure,
    population_with_iiv,
)
from pkcsf.core.errors import PkcsfError, check_choice
from pkcsf.core.progress import progress_bar
from pkcsf.core.units import concentration_factor, parse_quantity
from pkcsf.trials import designs as T

__all__ = ["simulate_escalation", "compare_schedules", "ScheduleComparison", "EscalationResult", "EfficacyTarget", "ExposureSpec", "LITERATURE_MTD",
           "DEFAULT_SCHEDULE", "EscalationError", "parse_exposure", "population_with_iiv"]


#: fields named by the layers underneath (each dose level's Scenario and its resource check, the trial runner)
#: -> the keyword of :func:`simulate_escalation` that sets them, so that an error names what the user gave
_KEYWORD_OF = {"subjects": "subjects", "band_subjects": "subjects", "n_trials": "trials", "dt": "days",
               "days": "days"}
#: the hint of the layer underneath, where it names its own field
_KEYWORD_FIX = {"subjects": "fewer subjects per dose pool", "days": "fewer days"}


def _as_keyword(e: PkcsfError, given: dict) -> PkcsfError:
    """``e`` named by the keyword of :func:`simulate_escalation` that caused it, with the value given to it."""
    kw = _KEYWORD_OF.get(e.field)
    if kw is None or kw not in given:
        return e
    value = given[kw] if given[kw] is not None else "(default)"
    fix = e.fix if kw == e.field else _KEYWORD_FIX.get(kw, e.fix)
    return EscalationError(kw, value, e.allowed, fix)


def _progress(progress, levels: int, subjects: int):
    """A bar over the dose levels (default: on a terminal, for at least 5000 subject simulations)."""
    return progress_bar(progress, total=levels, desc="exposure pools", unit="dose",
                        default=levels * subjects >= 5000 and sys.stderr.isatty())


def simulate_escalation(drug: str | cns.Drug, doses: Sequence[float | str], *, route: str = "lumbar",
                        schedule: str | Callable = DEFAULT_SCHEDULE, design: str | object = "3+3",
                        exposure: str | ExposureSpec = "plasma:auc", link: Callable | None = None,
                        mtd_dose: float | str | None = None, p_at_mtd: float = T.DEFAULT_P_AT_MTD,
                        slope: float = T.DEFAULT_SLOPE, efficacy: str | dict | EfficacyTarget | None = None,
                        subjects: int = 500, trials: int = 2000, seed: int = 0, days: float | None = None,
                        unit: str = "umol/L", iiv: dict | None = None, physiology: str = "adult",
                        variant: str = "linear", progress: bool | None = None, dlt: str = "link",
                        supplemented: bool = True, dlt_grade: int = 3, dlt_window: float | str | None = None
                        ) -> EscalationResult:
    """Simulate virtual dose-escalation trials whose DLTs follow the simulated exposure.

    Parameters
    ----------
    drug : str
        A drug of :func:`pkcsf.clinical.cns.available_drugs`.
    doses : list of float or str, shape (K,)
        Dose levels in mg (``[10, 20, 30]``, ``["10 mg", "0.02 g"]`` or ``"10,20,30"``), increasing.
    route : str
        ``lumbar``, ``ommaya``, ``intracisternal``, ``iv`` or ``oral`` (aliases such as ``intraventricular`` allowed).
    schedule : str or callable
        Regimen text without dose and route (default :data:`DEFAULT_SCHEDULE`, Pan 2019), the name of a
        regimen of :data:`pkcsf.clinical.regimens.NAMED_REGIMENS` that takes ``dose`` (and ``route``), or a callable
        ``dose_mg -> Regimen`` (or regimen text).
    design : str or design object
        ``"3+3"``, ``"boin"``, ``"crm"``, ``"boin12"`` or :class:`~pkcsf.trials.ThreePlusThree`,
        :class:`~pkcsf.trials.BOIN`, :class:`~pkcsf.trials.CRM`, :class:`~pkcsf.trials.BOIN12` with settings.
        BOIN12 also uses each pool patient's response: he responds when he meets ``efficacy`` (default for CSF
        routes: >= 1 log10 tumour-cell kill at the injection site, see :mod:`pkcsf.pd.efficacy`).
    exposure : str
        ``"group:metric"`` (see the module docstring). Default ``"plasma:auc"``.
    link : callable, optional
        exposure array -> DLT probability array (e.g. :class:`~pkcsf.trials.LogisticExposureToxicity`),
        in the exposure's unit. Default: logistic, anchored at the median exposure of ``mtd_dose``.
    mtd_dose : float or str, optional
        Dose (mg) the literature calls the MTD, for the default link. Default from :data:`LITERATURE_MTD`
        (pemetrexed by lumbar puncture: 10 mg, Pan 2019); required for other drugs and routes. Need not be
        one of ``doses`` (it is then simulated too).
    p_at_mtd, slope : float
        DLT probability at the MTD exposure (default 0.30) and logistic slope per log unit (default 2).
    efficacy : str, dict or EfficacyTarget, optional
        Per-patient target, e.g. ``"lumbar:time_above[0.1 umol/L] >= 48 h"`` (see :class:`EfficacyTarget`).
    subjects : int
        Virtual patients per dose pool (default 500). Trial patients are drawn from it with replacement.
    trials : int
        Number of virtual trials (default 2000).
    seed : int
        Seeds both the virtual patients (same at every dose) and the trials.
    days : float, optional
        Simulated days (default: 7 days after the last dose).
    unit : str
        Concentration unit of the exposures (default ``"umol/L"``; AUC in ``unit`` x h).
    iiv : dict, optional
        Extra or overriding between-subject variability, ``{parameter: CV}`` (log-normal), e.g.
        ``{"CL": 0.3}``. Drugs without sourced variability give every patient the same exposure at a dose
        (the link's probability then carries all between-patient variation).
    physiology, variant : str
        Passed to :func:`pkcsf.clinical.cns.setup` (``variant="saturable"`` for osimertinib's saturable CSF efflux).
    progress : bool, optional
        A progress bar over dose levels (default: only for large pools on a terminal).
    dlt : str
        How a virtual patient's DLT is decided. ``"link"`` (default): ``link(exposure)`` is his DLT
        probability (the logistic shortcut above). ``"neutropenia"``: his own plasma concentration profile
        drives the Friberg myelosuppression model with his own PD parameters
        (:mod:`pkcsf.clinical.pd_toxicity`, ``parameters/pd/<drug>.toml``); DLT = CTCAE grade >=
        ``dlt_grade`` neutropenia over ``dlt_window``; ``link`` and ``mtd_dose`` are then not used.
    supplemented : bool
        ``dlt="neutropenia"``: folic acid + vitamin B12 supplementation (pemetrexed's covariate; default True).
    dlt_grade : int
        ``dlt="neutropenia"``: CTCAE grade of neutropenia that counts as a DLT (default 3: ANC < 1.0 x 1e9/L).
    dlt_window : float, optional
        ``dlt="neutropenia"``: DLT window in days from the first dose (default: the whole simulated course).
        Give the cycle length (e.g. 21 for "on days 1 and 8 every 21 days") for the usual cycle-1 DLT window;
        the summary's ``p_dlt_grade_course`` then gives the fraction of patients reaching the DLT grade at
        any time of the simulated course (cumulative toxicity over all cycles: the Friberg model runs through
        every dose, its marrow state carried over; no cumulative marrow damage beyond that).

    Returns
    -------
    EscalationResult

    Examples
    --------
    >>> res = simulate_escalation("pemetrexed", [5, 10, 20], schedule="once", subjects=20, trials=200, seed=1,
    ...                           progress=False)
    >>> res.summary()["dose"].tolist()          # the last row: no dose selected
    [5.0, 10.0, 20.0, nan]
    """
    from pkcsf.clinical.regimens import normalize_route
    from pkcsf.clinical.scenario import Arm, Scenario, concentration_factor_checked, run

    t_start = _time.perf_counter()
    if isinstance(drug, str):
        check_choice("drug", drug.strip().lower(), cns.available_drugs(), EscalationError)
        drug = drug.strip().lower()
    d = cns.drug(drug)
    route = normalize_route(route, field="route")
    if route not in d.routes and not (route == "ommaya" and "intraventricular" in d.routes):
        raise EscalationError("route", route, f"{d.name} can be given by: " + ", ".join(d.routes))
    dose_arr = _doses(doses)
    des = T._resolve_design(design)
    des._check_k(dose_arr.size)
    spec = parse_exposure(exposure)
    eff = None if efficacy is None else EfficacyTarget.parse(efficacy)
    uses_eff = getattr(des, "uses_efficacy", False)
    eff_default_note = None
    if uses_eff and eff is None:
        eff, eff_default_note = _default_response(d, route, des.name)
    for name, v in (("subjects", subjects), ("trials", trials)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise EscalationError(name, v, "must be a whole number >= 1")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise EscalationError("seed", seed, "must be a whole number >= 0")
    try:            # a trial count whose results cannot fit is refused before minutes of exposure pools
        T._check_trials_memory(int(trials), dose_arr.size, efficacy=uses_eff)
    except PkcsfError as e:
        raise _as_keyword(e, {"trials": trials}) from None
    concentration_factor_checked(unit)
    setup = cns.setup(d, physiology=physiology, variant=variant)
    groups = [g for g, cs in setup.outputs.items() if cs]
    for where, sp in (("exposure", spec),) + ((("efficacy", eff.exposure),) if eff else ()):
        if sp.group not in groups:
            check_choice(f"{where} group", sp.group, groups, EscalationError)
    dlt = pdtox.check_dlt_model(dlt)
    pd_dlt = None
    if dlt == "neutropenia":
        for name, v in (("link", link), ("mtd_dose", mtd_dose)):
            if v is not None:
                raise EscalationError(name, v, "is not used with dlt='neutropenia' (each patient's DLT comes from his "
                                               "own PK and PD)", "drop it, or use dlt='link'")
        win = None
        if dlt_window is not None:
            if isinstance(dlt_window, bool) or not isinstance(dlt_window, (int, float)) or not dlt_window > 0:
                raise EscalationError("dlt_window", dlt_window, "must be a positive number of days")
            win = float(dlt_window) * 24.0
        try:
            pd_dlt = pdtox.NeutropeniaDLT(d.name, supplemented=supplemented, grade=dlt_grade, window_h=win)
        except PkcsfError as e:
            raise EscalationError(e.field, e.value, e.allowed, e.fix) from None
        link = pdtox.PerPatientDLT(pd_dlt.describe())
    if link is not None and mtd_dose is not None:
        raise EscalationError("mtd_dose", mtd_dose, "give either link or mtd_dose, not both",
                              "mtd_dose only anchors the default link")
    if link is not None and not callable(link):
        raise EscalationError("link", link, "must be callable: exposure array -> DLT probability array",
                              "e.g. pkcsf.trials.LogisticExposureToxicity(e50=..., slope=2)")
    mtd_source = mtd_short = None
    if link is None:
        p_at_mtd = T._check_prob("p_at_mtd", p_at_mtd)
        if mtd_dose is None:
            if (d.name, route) not in LITERATURE_MTD:
                known = ", ".join(f"{k[0]} by {k[1]}: {v[0]:g} mg" for k, v in LITERATURE_MTD.items())
                raise EscalationError("mtd_dose", "(not given)", f"no literature MTD is stored for {d.name} by {route} "
                                                        f"(stored: {known})",
                                      "give mtd_dose (the dose you believe has a 30 % DLT rate) or your own link")
            mtd, mtd_short, mtd_source = LITERATURE_MTD[(d.name, route)]
        else:
            try:
                mtd = _doses([mtd_dose])[0]
            except EscalationError as e:
                raise EscalationError("mtd_dose", mtd_dose, e.allowed, e.fix) from None
            mtd_source = "user"
    # regimens first: a bad schedule fails before any simulation
    levels = list(dose_arr)
    if link is None and not np.any(np.isclose(dose_arr, mtd)):
        levels.append(mtd)
    regs = {}
    for x in levels:
        regs[x] = _regimen_for(d.name, route, schedule, float(x))

    # thresholds needed by time metrics: named thresholds of the drug, or quantities
    thr_labels = {}
    specs = [spec] + ([eff.exposure] if eff else [])
    for sp in specs:
        if sp.threshold is None:
            continue
        if sp.threshold in d.thresholds:
            q = f"{d.thresholds[sp.threshold]!r} mg/L"
        else:
            try:
                parse_quantity(sp.threshold, "concentration", mw=d.mw, field="threshold", default_unit=unit)
            except PkcsfError:
                raise EscalationError(f"{'exposure' if sp is spec else 'efficacy'} threshold", sp.threshold,
                                      "must be a concentration such as '0.1 umol/L' or a threshold of "
                                      f"{d.name}: " + (", ".join(d.thresholds) or "none")) from None
            q = sp.threshold if re.search(r"[A-Za-zµ]", sp.threshold) else f"{sp.threshold} {unit}"
        thr_labels[sp.threshold] = q
    thresholds = list(dict.fromkeys(thr_labels.values())) or []
    pop = population_with_iiv(setup, iiv)
    eff_thr = None if eff is None else eff.value(unit, d.mw)

    def column(sp: ExposureSpec) -> str:
        return f"{sp.metric}[{thr_labels[sp.threshold]}]" if sp.threshold else sp.metric

    read_groups = tuple(dict.fromkeys([sp.group for sp in specs] + (["plasma"] if pd_dlt is not None else [])))
    pd_out = {}
    pools, eff_pools, timings = {}, {}, {}
    bar = _progress(progress, len(levels), int(subjects))
    try:
        for x in levels:
            t0 = _time.perf_counter()
            reg, _ = regs[x]
            try:            # errors named by this function's keywords (subjects), not the scenario's fields
                scn = Scenario((Arm(_fmt_dose(x), reg, drug=d.name, variant=variant),), subjects=int(subjects),
                               days=days, seed=int(seed), physiology=physiology, population=pop,
                               thresholds=thresholds or [], unit=unit, groups=read_groups,
                               band_subjects=int(subjects) if pd_dlt is not None else min(int(subjects), 50),
                               dt=0.1 if (pd_dlt is not None and route == "iv") else None,
                               name=f"escalation {d.name} {_fmt_dose(x)}")
                res = run(scn, progress=False)
            except PkcsfError as e:
                raise _as_keyword(e, {"subjects": subjects, "days": days}) from None
            if pd_dlt is not None:
                # every pool patient's plasma profile (mg/L, subject order) -> his own neutropenia
                arm = res[_fmt_dose(x)]
                gi = arm.groups[d.name].index("plasma")
                to_mg = 1.0 / concentration_factor(unit, d.mw)
                pd_out[x] = pd_dlt.evaluate(arm.times, arm.profiles[d.name][:, :, gi] * to_mg,
                                            arm.typical[d.name][:, gi] * to_mg, int(seed))
            m = res.metrics()
            m = m[m["drug"] == d.name]
            for sp, store in ((spec, pools),) + (((eff.exposure, eff_pools),) if eff else ()):
                sub = m[m["group"] == sp.group].sort_values("id")
                store[x] = sub[column(sp)].to_numpy(dtype=float)
            timings[x] = _time.perf_counter() - t0
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
    pk_seconds = _time.perf_counter() - t_start
    E = np.vstack([pools[x] for x in dose_arr])
    if not np.all(np.isfinite(E)):
        bad = np.argwhere(~np.isfinite(E))[0]
        raise EscalationError(f"exposure[{bad[0]}, {bad[1]}]", float(E[tuple(bad)]),
                              "the simulated exposure is not finite (a failed solve)")
    # link
    link_text = None
    mtd_exposure = None
    if pd_dlt is not None:
        link_text = pd_dlt.describe()
    elif link is None:
        mtd_exposure = float(np.median(pools[mtd]))
        if not mtd_exposure > 0:
            raise EscalationError("exposure", spec.label,
                                  f"the median exposure at the MTD dose ({_fmt_dose(mtd)}) is {mtd_exposure:g}: "
                                  "the default logistic link needs a positive exposure to anchor on",
                                  "pick another exposure (e.g. plasma:auc or lumbar:cmax) or give your own link")
        note = (f"assumption: P(DLT) = {p_at_mtd:g} at the median {spec.label} of the "
                f"{'literature' if mtd_source != 'user' else 'user-given'} MTD dose {_fmt_dose(mtd)} "
                f"({mtd_exposure:.4g} {spec.unit(unit)}), logistic slope {slope:g} per log unit")
        link = T.LogisticExposureToxicity.from_mtd_exposure(mtd_exposure, p_at_mtd=p_at_mtd, slope=slope,
                                                            source="assumption", note=note)
        link_text = (f"logistic on log exposure, e50 = {link.e50:.4g} {spec.unit(unit)}, slope {link.slope:g}; "
                     + note)
    elif isinstance(link, T.LogisticExposureToxicity):
        link_text = (f"logistic on {'log ' if link.log_exposure else ''}exposure, e50 = {link.e50:.4g} "
                     f"{spec.unit(unit)}, slope {link.slope:g} (source: {link.source}{'; ' + link.note if link.note else ''})")
    else:
        link_text = f"user link {getattr(link, '__name__', type(link).__name__)}"
    t1 = _time.perf_counter()
    EV = None if eff is None else np.vstack([eff_pools[x] for x in dose_arr])
    # efficacy-toxicity designs: each pool patient responds when he meets the efficacy target (0/1, his own PK)
    eff_kw = {"p_eff": (EV >= eff_thr - 1e-12).astype(float)} if uses_eff else {}
    if pd_dlt is not None:     # the pool's outcomes are already decided: 1 = this patient has a DLT
        P = np.vstack([pd_out[x]["dlt"] for x in dose_arr]).astype(float)
    try:
        tr = T.simulate_trials(des, dose_arr, exposure=P if pd_dlt is not None else E, link=link, n_trials=int(trials),
                               seed=int(seed), **eff_kw)
    except PkcsfError as e:         # the runner's n_trials is this function's trials
        raise _as_keyword(e, {"trials": trials}) from None
    trial_seconds = _time.perf_counter() - t1
    if pd_dlt is None:
        P = np.asarray(link(E), dtype=float)

    notes = []
    if eff_default_note:
        notes.append(eff_default_note)
    if not pop.random_effects and pop.demographics is None and not pop.effects:
        notes.append(f"{d.name} has no sourced between-subject variability: every virtual patient has the same "
                     "exposure at a dose, so the link's probability carries all between-patient variation "
                     "(pass iiv={'CL': 0.3} to explore PK variability).")
    if mtd_source is not None and mtd_source != "user":
        notes.append(f"The default link is anchored at the literature MTD ({_fmt_dose(mtd)}, {mtd_short}) "
                     "and is an assumption: override mtd_dose or link with your own exposure-toxicity model.")
    pd_info = None
    if pd_dlt is not None:
        pd_info = {"model": pd_dlt.describe(), "supplemented": pd_dlt.supplemented, "dlt_grade": pd_dlt.grade,
                   "window_h": pd_dlt.window_h,
                   "nadir": np.vstack([pd_out[x]["nadir"] for x in dose_arr]),
                   "grade": np.vstack([pd_out[x]["grade"] for x in dose_arr]),
                   "time_to_nadir": np.vstack([pd_out[x]["time_to_nadir"] for x in dose_arr]),
                   "typical_nadir": np.array([pd_out[x]["typical_nadir"] for x in dose_arr]),
                   "typical_grade": np.array([pd_out[x]["typical_grade"] for x in dose_arr]),
                   "grade_course": np.vstack([pd_out[x]["grade_course"] for x in dose_arr]),
                   "nadir_course": np.vstack([pd_out[x]["nadir_course"] for x in dose_arr])}
        checks = pdtox.observed_checks(d.name, route, dose_arr, P.mean(axis=1), supplemented=pd_dlt.supplemented,
                                       dlt_grade=pd_dlt.grade)
        pd_info["observed_checks"] = checks
        for text in pd_dlt.parameters.raw.get("caveats", {}).values():
            notes.append("PD caveat: " + " ".join(str(text).split()))
        notes.append("DLTs come from each virtual patient's own PK and PD (Friberg neutropenia model, "
                     f"parameters/pd/{d.name}.toml), not from a mean probability; trial patients are drawn "
                     "independently from the pools, so the designs respond to the per-dose DLT fractions.")
        for _, c in checks.iterrows():
            if c["verdict"].startswith("MISS"):
                notes.append(f"REALITY CHECK MISS: {c['key']} ({c['dose']:g} mg): observed {c['events']}/{c['n']} "
                             f"haematological DLT (95% CI {c['ci_low']:.0%}-{c['ci_high']:.0%}) vs predicted "
                             f"{c['predicted']:.1%}. The plasma-driven neutropenia model (calibrated on IV doses) does "
                             "not explain the marrow toxicity of intrathecal dosing: treat these DLT rates as a lower "
                             "bound (hypotheses in docs/pd.md).")
    from pkcsf.core.version import __version__

    provenance = {
        "pkcsf_version": __version__, "drug": d.name, "route": route, "physiology": physiology, "variant": variant,
        "doses_mg": dose_arr.tolist(), "regimens": {_fmt_dose(x): regs[x][1] for x in levels},
        "design": tr.design, "exposure": spec.label, "exposure_unit": spec.unit(unit), "unit": unit,
        "link": link_text, "mtd_dose_mg": None if mtd_exposure is None else float(mtd),
        "mtd_source": mtd_source, "mtd_exposure": mtd_exposure, "p_at_mtd": None if mtd_exposure is None else p_at_mtd,
        "efficacy": None if eff is None else eff.label, "efficacy_threshold": eff_thr,
        "subjects_per_dose": int(subjects), "trials": int(trials), "seed": int(seed), "days": days,
        "population": repr(pop), "iiv": dict(iiv or {}),
        "pk_seconds": pk_seconds, "pk_seconds_per_dose": {_fmt_dose(x): t for x, t in timings.items()},
        "trial_seconds": trial_seconds, "dlt_model": dlt,
    }
    if pd_info is not None:
        provenance.update(pd_model=pd_info["model"], supplemented=pd_info["supplemented"],
                          dlt_grade=pd_info["dlt_grade"], dlt_window_h=pd_info["window_h"],
                          observed_checks=pd_info["observed_checks"].to_dict(orient="records"))
    refs = list(setup.cite())
    if mtd_source not in (None, "user"):
        refs.append(mtd_source)
    refs += [r for r in _DESIGN_REFS.get(type(des).__name__, ()) if r not in refs]
    if pd_dlt is not None:
        refs += [r for r in pd_dlt.parameters.cite() if r not in refs]
    return EscalationResult(d.name, route, dose_arr, spec, spec.unit(unit), E, P, link, tr, eff, EV, eff_thr,
                            provenance, refs, tuple(notes), pd_info)


def compare_schedules(drug: str | cns.Drug, doses: Sequence[float | str], schedules: dict,
                      **kwargs: object) -> ScheduleComparison:
    """Run :func:`simulate_escalation` once per schedule with the same doses, design, patients and seed.

    Parameters
    ----------
    drug, doses
        As for :func:`simulate_escalation`.
    schedules : dict
        Name -> schedule (regimen text without dose and route, a named regimen, or a callable), e.g.
        ``{"twice weekly": DEFAULT_SCHEDULE, "D1/D8 q21d": "on days 1 and 8 every 21 days x 2 cycles"}``.
    **kwargs
        Passed to :func:`simulate_escalation` (design, dlt, dlt_window, efficacy, subjects, trials, seed ...).

    Returns
    -------
    ScheduleComparison
        ``.table()`` per schedule and dose, ``.overall()`` per schedule, with Monte Carlo standard errors.

    Notes
    -----
    The same ``seed`` gives the same virtual patients and the same trial random numbers under every
    schedule (common random numbers), so differences between schedules are not blurred by sampling noise
    of the pools; the standard errors reported are those of each schedule's own simulation.
    """
    if not isinstance(schedules, dict) or not schedules:
        raise EscalationError("schedules", schedules, "must map names to schedules, e.g. "
                                                      f"{{'twice weekly': {DEFAULT_SCHEDULE!r}, "
                                                      "'D1/D8 q21d': 'on days 1 and 8 every 21 days x 2 cycles'}")
    if "schedule" in kwargs:
        raise EscalationError("schedule", kwargs["schedule"], "give the schedules in 'schedules', not 'schedule'")
    res = {}
    for name, sch in schedules.items():
        if not isinstance(name, str) or not name.strip():
            raise EscalationError("schedules", name, "each schedule needs a non-empty name")
        res[name] = simulate_escalation(drug, doses, schedule=sch, **kwargs)
    return ScheduleComparison(res)


_DESIGN_REFS = {
    "ThreePlusThree": ("Storer BE (1989). Design and analysis of phase I clinical trials. Biometrics 45:925-937.",),
    "BOIN": ("Liu S, Yuan Y (2015). Bayesian optimal interval designs for phase I clinical trials. J R Stat Soc C "
             "64:507-523. doi:10.1111/rssc.12089",),
    "CRM": ("O'Quigley J, Pepe M, Fisher L (1990). Continual reassessment method: a practical design for phase 1 "
            "clinical trials in cancer. Biometrics 46:33-48.",
            "Lee SM, Cheung YK (2009). Model calibration in the continual reassessment method. Clin Trials "
            "6:227-238. doi:10.1177/1740774509105076"),
    "BOIN12": ("Lin R, Zhou Y, Yan F, Li D, Yuan Y (2020). BOIN12: Bayesian optimal interval phase I/II trial design "
               "for utility-based dose finding in immunotherapy and targeted therapies. JCO Precis Oncol 4:1393-1402. "
               "doi:10.1200/PO.20.00257",),
}
