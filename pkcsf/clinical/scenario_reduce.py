"""One drug of one scenario arm: its model with AUC accumulators, its doses on model sites, and the
reduction of a chunk of subjects to read-outs (per-subject metrics, targets, band profiles).

Internal to :mod:`pkcsf.clinical.scenario` (``_DrugRun`` and ``_chunk`` are pickled to executors).
"""
from __future__ import annotations

import functools
import math
from dataclasses import replace

import numpy as np
import pandas as pd

from pkcsf.analysis.readouts import min_interval_run, solve_and_read_out, whole_window
from pkcsf.clinical import cns
from pkcsf.clinical.population import Population
from pkcsf.clinical.position import lumbar_dose_times, parse_position, solve_position, spinal_sites
from pkcsf.clinical.prevalence import apply_prevalence, prevalence_effects
from pkcsf.clinical.scenario_spec import Scenario, Target
from pkcsf.core.errors import ScenarioError, Status, check_choice
from pkcsf.core.units import parse_quantity
from pkcsf.engine.dosing import Regimen
from pkcsf.engine.model import Compartment, accumulate
from pkcsf.engine.simulate import prepare


def _sites(regimen: Regimen, setup: cns.Setup, where: str) -> Regimen:
    """Doses on routes -> doses on model sites (:meth:`~pkcsf.clinical.cns.Setup.dose_at_drug_site`: a route the
    drug is not given by, a name that is no route, site or compartment, and a dose of another drug are errors).
    """
    fields = (f"{where}: drug", f"{where}: route")
    return Regimen([replace(setup.dose_at_drug_site(d, fields=fields, error=ScenarioError, strict=True), drug=None)
                    for d in regimen.doses])


def arm_lumbar_times(arm_name: str, regs: dict, setups: dict) -> list[float]:
    """The times (h) of an arm's lumbar doses, of any of its drugs, found on each model's spinal sites
    (:func:`pkcsf.clinical.position.spinal_sites`, so a route, a liposomal or a v3 lumbar site all count): they open
    the windows of the arm's position, since posture changes the CSF mixing of every drug in it.

    Parameters
    ----------
    arm_name : str
        Named in errors.
    regs : dict
        Drug -> its regimen in the arm (doses on routes or on model sites).
    setups : dict
        Drug -> its set-up.

    Returns
    -------
    list of float
        Sorted, once each.
    """
    return sorted({t for drug, reg in regs.items()
                   for t in lumbar_dose_times([_sites(reg, setups[drug], f"arm {arm_name!r} ({drug})")],
                                              spinal_sites(setups[drug].model))})


def _thresholds_for(scn: Scenario, setup: cns.Setup) -> list[tuple[str, float]]:
    """(label, mg/L) pairs."""
    spec = scn.thresholds
    if isinstance(spec, dict):
        spec = spec.get(setup.drug.name, [])
    if spec is None:
        return list(setup.thresholds.items())
    if isinstance(spec, (str, int, float)):
        spec = [spec]
    return [(str(s), _positive(parse_quantity(s, "concentration", mw=setup.mw, field="thresholds",
                                              default_unit="mg/L"), "thresholds", s)) for s in spec]


def _positive(value: float, field: str, given: object, *, zero: bool = False) -> float:
    """``value`` if it is finite and > 0 (>= 0 with ``zero``), else a ScenarioError naming ``field`` and ``given``."""
    if not (math.isfinite(value) and (value >= 0.0 if zero else value > 0.0)):
        raise ScenarioError(field, given, "must be a finite number " + (">= 0" if zero else "> 0")
                            + " (with its unit)")
    return value


def check_targets(targets: tuple, setup: cns.Setup) -> None:
    """Refuse, before anything is simulated, a target whose threshold is not a positive concentration or whose
    duration is not a time >= 0 (a threshold of -1 or NaN would be met by every subject or none).

    Parameters
    ----------
    targets : tuple of Target
        The scenario's targets.
    setup : Setup
        The drug's setup (molecular weight for umol/L).

    Raises
    ------
    ScenarioError
        Naming the target and the field.
    """
    for tg in targets:
        if tg.drug is not None and tg.drug != setup.drug.name:
            continue
        thr = parse_quantity(tg.threshold, "concentration", mw=setup.mw, field=f"target {tg.label!r}: threshold",
                             default_unit="mg/L")
        _positive(thr, f"target {tg.label!r}: threshold", tg.threshold)
        dur = parse_quantity(tg.duration, "time", field=f"target {tg.label!r}: duration")
        _positive(dur, f"target {tg.label!r}: duration", tg.duration, zero=True)


def _readout_groups(scn: Scenario, setup: cns.Setup, where: str) -> list[str]:
    """The compartment groups an arm reads out: the scenario's ``groups`` (checked against the setup's) or
    all of the setup's, with plasma always first when not asked for.
    """
    names = [g for g, cs in setup.outputs.items() if cs]
    gnames = list(scn.groups) if scn.groups else names
    for g in gnames:
        if g not in names:
            check_choice(f"{where}: group", g, names, ScenarioError)
    return gnames if "plasma" in gnames else ["plasma"] + gnames


class _DrugRun:
    """One drug of one arm: model, regimen on model sites, grouping, thresholds."""

    def __init__(self, scn, arm, drug, reg, setup, times, end, anchors):
        self.scn, self.setup, self.drug = scn, setup, drug
        # pathologies only some subjects have (Arm.prevalence): what each changes, drawn per subject
        self.prevalence = prevalence_effects(setup, arm.prevalence, physiology=scn.physiology,
                                             pathologies=scn.pathologies, age=scn.age,
                                             metabolite=arm.metabolite) if arm.prevalence else []
        # parameter uncertainty (Arm.uncertainty): a pool of calibration draws, one picked per subject
        self.uncertainty = None
        if arm.uncertainty:
            from pkcsf.clinical.uncertainty import uncertainty_effects

            self.uncertainty = uncertainty_effects(setup, arm.uncertainty, scn.seed)   # None: not this drug's
        where = f"arm {arm.name!r} ({drug})"
        # doses at or after the end act only after the window (scenario_run.warn_doses_after_end): not solved, so
        # that a bolus at the very end is not read as the window's last output
        self.reg = Regimen([d for d in _sites(reg, setup, where).expand() if d.time < end])
        # posture after lumbar doses (Arm.position): solved in pieces between the window edges, never fused
        self.position = parse_position(getattr(arm, "position", None))
        # the arm's lumbar doses, of any of its drugs (arm_lumbar_times), open the windows
        self.anchors = list(anchors)
        self.dose_times = np.array(sorted({d.time for d in self.reg.expand()}))
        self.groups = gnames = _readout_groups(scn, setup, where)
        comps = setup.model.compartment_names
        self.states, self.W = setup.group_weights(gnames)
        # exact AUCs: one accumulator state per read-out compartment (d AUC_i/dt = C_i), so that AUC
        # read-outs do not depend on the output step (a trapezoid on a 4-h grid was +7% for weekly
        # Ommaya pemetrexed, issue 9); a group's AUC is the volume-weighted mean of its compartments'
        taken = set(comps)
        self.auc_states = []
        for c in self.states:
            name = f"{c}__auc"
            while name in taken:
                name += "_"
            taken.add(name)
            self.auc_states.append(name)
        self.model = setup.model.extend(
            compartments=[Compartment(a, None, f"AUC of the concentration in {c} (mg*h/L)", kind="accumulator")
                          for c, a in zip(self.states, self.auc_states)],
            transfers=[accumulate(c, a) for c, a in zip(self.states, self.auc_states)])
        # per group (G,): a metabolite group in a mass unit is its own mass (Setup.group_factors)
        self.factor = setup.group_factors(gnames, scn.unit)
        self.thresholds = _thresholds_for(scn, setup)
        check_targets(tuple(scn.targets or ()), setup)
        # (G, K): each threshold in each group's unit (Setup.threshold_factors)
        self.thr_unit = np.array([v for _, v in self.thresholds])[None, :] * setup.threshold_factors(
            gnames, scn.unit, [label for label, _ in self.thresholds])
        self.times, self.end = times, end
        self.model_params = set(setup.model.parameter_names)
        # subject columns a dose amount refers to (e.g. "12 * BSA")
        from pkcsf.engine.expressions import Expression

        self.dose_columns = set()
        for d in self.reg.doses:
            if isinstance(d.amount, str):
                self.dose_columns.update(Expression.parse(d.amount).names)
        if self.position.upright:
            if not self.anchors:
                raise ScenarioError(f"arms[{arm.name!r}].position", self.position.text,
                                    "a lumbar dose in the arm (the upright windows are hours after each lumbar dose)",
                                    "leave the position out for other routes")
        # grid indices: the right-limit output of each dose, and the left limit of the next
        self.right = np.searchsorted(times, self.dose_times, side="right") - 1
        self.left = np.searchsorted(times, self.dose_times, side="left")
        last = self.right[-1] if len(self.right) else 0
        self.last_start = int(last)
        # times at which the band subjects' cumulative exact AUC is kept (interval read-outs)
        self.mark_times = np.unique(np.concatenate([[times[0]], self.dose_times, [times[-1]]]))
        self.mark_idx = np.searchsorted(times, self.mark_times, side="right") - 1


    def individual(self, pop: Population, n: int, *, seed: int, start: int, variability: bool) -> pd.DataFrame:
        """Subjects ``start .. start+n-1``: the population's parameters and, with a prevalence, each
        subject's own pathologies (:func:`pkcsf.clinical.prevalence.apply_prevalence`).
        """
        params = pop.individual(self.setup.parameters, n, seed=seed, start=start, variability=variability)
        if self.prevalence:
            params = apply_prevalence(params, self.prevalence, seed, start)
        if self.uncertainty is not None:
            from pkcsf.clinical.uncertainty import apply_uncertainty

            params = apply_uncertainty(params, self.uncertainty, seed, start)
        return params

    def _engine_params(self, params: pd.DataFrame) -> pd.DataFrame:
        """The columns of ``params`` the engine takes: model parameters, ID and the covariates dose amounts read
        (age-based doses filled in).
        """
        for c in self.dose_columns:
            if c.startswith("AGEDOSE_") and c not in params.columns and self.scn.age is not None:
                from pkcsf.clinical.regimens import (
                    age_based_dose,  # a fixed scenario age doses everyone at that age
                )

                params = params.assign(**{c: age_based_dose(c[len("AGEDOSE_"):].lower(),
                                                            np.full(len(params), float(self.scn.age)))})
            if c.startswith("AGEDOSE_") and c not in params.columns:
                if "AGE" not in params.columns:
                    raise ScenarioError("population", "no AGE column",
                                        f"an age-based dose of {self.drug} needs each subject's age: use demographics "
                                        "with AGE (e.g. 'pediatric'), an AGE data column, or a scenario age")
                from pkcsf.clinical.regimens import age_based_dose

                params = params.assign(**{c: age_based_dose(c[len("AGEDOSE_"):].lower(), params["AGE"].to_numpy())})
        missing = [c for c in self.dose_columns if c not in params.columns]
        if missing:
            raise ScenarioError("population", f"no {missing[0]} column",
                                f"a dose of {self.drug} is given per {missing[0]} (e.g. mg/m2); the population needs "
                                "that covariate (use demographics with height and weight, or a data column)")
        return params[[c for c in params.columns if c in self.model_params or c == "ID" or c in self.dose_columns]]

    def problem(self, params: pd.DataFrame, *, auc: bool = False):
        """The engine problem of these subjects (saved: the group states, with ``auc`` then their
        AUC accumulators).
        """
        return prepare(self.model, self.reg, self._engine_params(params), times=self.times,
                       outputs=self.states + (self.auc_states if auc else []),
                       solver=self.scn.solver, max_steps=self.scn.step_budget(float(self.times[-1])))

    def solve(self, params: pd.DataFrame, *, auc: bool = False):
        """Group concentrations (n, T, G) in the scenario's unit, and solver status; with ``auc``
        also the exact cumulative group AUCs (n, T, G) in unit*h from the accumulator states. An arm with a
        position is solved in pieces (:func:`pkcsf.clinical.position.solve_position`).
        """
        S = len(self.states)
        if self.position.upright:
            prob, out, status, _ = solve_position(self.model, self.reg, self._engine_params(params), self.times,
                                                  self.position, outputs=self.states + (self.auc_states if auc else []),
                                                  solver=self.scn.solver, anchors=self.anchors,
                                                  max_steps=self.scn.step_budget(float(self.times[-1])))
        else:
            prob = self.problem(params, auc=auc)
            out, status, _ = prob.solve()
        V = prob.compiled.volumes(prob.P)[:, prob.save[:S]]
        amounts = out[:, :, :S] @ self.W                          # (n, T, G)
        vol = V @ self.W                                          # (n, G)
        conc = amounts * (self.factor / vol[:, None, :])
        failed = status != 0
        conc[failed] = np.nan               # a failed subject's partial profile is never used
        if not auc:
            return conc, status
        # group AUC = sum_i V_i AUC_i / sum_i V_i (the group concentration is sum A_i / sum V_i)
        gauc = ((out[:, :, S:] * V[:, None, :]) @ self.W) * (self.factor / vol[:, None, :])
        gauc[failed] = np.nan
        return conc, status, gauc

    def fused_problem(self, params: pd.DataFrame):
        """The engine problem of these subjects for the read-outs inside the compiled solve
        (:meth:`read_out`), or None for a solver without them (radau).
        """
        if self.position.upright:           # solved in pieces (pkcsf.clinical.position): the two-step path
            return None
        prob = self.problem(params, auc=True)
        return prob if prob.method in ("exact", "rodas5p") else None

    def read_out(self, prob, keep: int, events: tuple | None = None):
        """Read-outs computed inside the compiled solve of ``prob`` (:meth:`fused_problem`;
        :func:`pkcsf.analysis.readouts.solve_and_read_out`, no (n, T, G) array): (read-outs dict, status,
        group concentrations of the first ``keep``). ``events``: ``prob.events(slice(None))``, if built already.
        """
        return solve_and_read_out(prob, self.W, self.factor, self.thr_unit, self.last_start,
                                  int(self.left[-1]) if len(self.left) else -1, keep, events)

    def reduce(self, params: pd.DataFrame, keep: int):
        """:meth:`read_out` of :meth:`fused_problem`, or None for a solver without fused read-outs (radau)."""
        prob = self.fused_problem(params)
        return None if prob is None else self.read_out(prob, keep)

    def readouts(self, conc, ids, arm_name, status=None, gauc=None, fused=None) -> pd.DataFrame:
        """The per-subject metrics table, from group concentrations ``conc`` (n, T, G) or from the
        read-outs ``fused`` of :meth:`reduce`.
        """
        if fused is not None:
            r = fused
            n, G = r["cmax"].shape
            tail = {"cmax": r["cmax_last"], "auc": r["auc_last"]}
        else:
            n, T, G = conc.shape
            r = whole_window(self.times, conc, self.thr_unit)
            tail = whole_window(self.times[self.last_start:], conc[:, self.last_start:])
        status = np.zeros(n, dtype=np.int64) if status is None else np.asarray(status)
        if gauc is not None:            # exact integrals from the accumulators, independent of the grid
            r["auc"] = gauc[:, -1, :] - gauc[:, 0, :]
            tail["auc"] = gauc[:, -1, :] - gauc[:, self.last_start, :]
        # text columns as categoricals (one byte a row instead of a Python string; the same categories
        # in every chunk, so that concatenated chunks stay categorical)
        def cat(codes, categories):
            return pd.Categorical.from_codes(codes, dtype=_categories(tuple(categories)))

        out = {"arm": cat(np.zeros(n * G, dtype=np.int8), [arm_name]), "id": np.repeat(ids, G),
               "drug": cat(np.zeros(n * G, dtype=np.int8), [self.drug]),
               "group": cat(np.tile(np.arange(G, dtype=np.int8), n), list(self.groups)),
               "unit": cat(np.zeros(n * G, dtype=np.int8), [self.scn.unit]), "cmax": r["cmax"].ravel(), "tmax": r["tmax"].ravel(), "auc": r["auc"].ravel(),
               "cmax_last": tail["cmax"].ravel(), "auc_last": tail["auc"].ravel()}
        if len(self.left):
            out["trough_last"] = (r["trough_last"] if fused is not None else conc[:, self.left[-1], :]).ravel()
        pl = r["auc"][:, self.groups.index("plasma")]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ratio_auc_plasma"] = (r["auc"] / pl[:, None]).ravel()
            if "ventricular" in self.groups:
                vent = r["auc"][:, self.groups.index("ventricular")]
                out["ratio_auc_ventricular"] = (r["auc"] / vent[:, None]).ravel()
        for k, (label, _) in enumerate(self.thresholds):
            out[f"time_above[{label}]"] = r["time_above"][:, :, k].ravel()
            out[f"longest_above[{label}]"] = r["longest_above"][:, :, k].ravel()
        df = pd.DataFrame(out)
        failed = np.repeat(status != 0, G)
        if failed.any():        # excluded from every statistic: NaN, whatever the kernels made of NaN input
            value_cols = [c for c in df.columns if c not in ("arm", "id", "drug", "group", "unit")]
            df.loc[failed, value_cols] = np.nan
        df["auc_unit"] = cat(np.zeros(n * G, dtype=np.int8), [f"{self.scn.unit}*h"])
        df["status"] = cat(np.repeat(np.asarray(status, dtype=np.int8), G), [st.name for st in Status])
        return df

    def target(self, tg: Target, conc, keep: np.ndarray | None = None) -> np.ndarray:
        """Boolean (n,): which subjects meet the target; ``keep`` (T,) bool: read on those output times only (the
        dose limits among them; :mod:`pkcsf.clinical.grid_error`).
        """
        if tg.group not in self.groups:
            check_choice(f"target group ({tg.label})", tg.group, self.groups, ScenarioError)
        c = conc[:, :, self.groups.index(tg.group)]
        thr = parse_quantity(tg.threshold, "concentration", mw=self.setup.mw, field="target.threshold",
                             default_unit="mg/L") * float(self.setup.threshold_factors([tg.group], self.scn.unit,
                                                                                       [tg.threshold])[0, 0])
        dur = parse_quantity(tg.duration, "time", field="target.duration")
        times, right, left = self.times, self.right, self.left
        if keep is not None:
            new = np.cumsum(keep) - 1           # index of each kept output on the kept grid
            times, c, right, left = times[keep], c[:, keep], new[right], new[left]
        if tg.per == "dose" and len(right):
            ends = np.append(left[1:], len(times) - 1)
            run = min_interval_run(times, c, thr, right, ends)
        else:
            run = whole_window(times, c[:, :, None], np.array([thr]))["time_above"][:, 0, 0]
        return run >= dur - 1e-9


@functools.lru_cache(maxsize=256)
def _categories(categories: tuple) -> pd.CategoricalDtype:
    """The categorical type of a metrics text column, built once (not re-inferred for every chunk)."""
    return pd.CategoricalDtype(list(categories))


def _with_pathologies(readouts: pd.DataFrame, params: pd.DataFrame, dr: "_DrugRun") -> pd.DataFrame:
    """Each subject's drawn pathologies (``pathology_<name>``) beside its read-outs, when the arm has a
    prevalence.
    """
    if not dr.prevalence and dr.uncertainty is None:
        return readouts
    flags = params.set_index("ID")
    cols = [f"pathology_{name}" for name, _p, _eff in dr.prevalence]
    cols += ["uncertainty_draw"] if dr.uncertainty is not None else []
    for col in cols:
        readouts[col] = flags[col].reindex(readouts["id"].to_numpy()).to_numpy()
    return readouts


def _chunk(dr: "_DrugRun", pop: Population, seed: int, variability: bool, start: int, n: int, nb: int,
           arm_name: str, targets: tuple) -> dict:
    """Simulate subjects ``start .. start+n-1`` and reduce them to read-outs (runs anywhere: a
    worker process or a cluster node gets the pickled arguments).

    The three stages of :func:`_chunk_sample`, :func:`_chunk_solve` and :func:`_chunk_table` one after
    the other; a local run overlaps them between chunks (``scenario_run._pipelined``), with the same results.
    """
    job = _chunk_sample(dr, pop, seed, variability, start, n, nb, targets)
    return _chunk_table(dr, _chunk_solve(dr, job), arm_name, targets)


def _chunk_sample(dr: "_DrugRun", pop: Population, seed: int, variability: bool, start: int, n: int, nb: int,
                  targets: tuple) -> dict:
    """First stage of :func:`_chunk` (Python): the subjects' parameters and, for the read-outs inside the
    compiled solve (no targets; exact or rodas5p), their engine problem.
    """
    params = dr.individual(pop, n, seed=seed, start=start, variability=variability)
    keep = max(0, min(nb, start + n) - start)
    # None: the two-step path (radau, a position); with targets the profiles are solved too, for the targets only,
    # so that the read-outs (Cmax refined between outputs) are the same with and without targets
    prob = dr.fused_problem(params)
    # the kernels' event arrays too: built here, the compiled stage starts at once (its threads do not wait)
    return {"params": params, "keep": keep, "prob": prob, "targets": bool(targets),
            "events": None if prob is None else prob.events(slice(None))}


def _chunk_solve(dr: "_DrugRun", job: dict) -> dict:
    """Second stage of :func:`_chunk`: the compiled solve (it releases the GIL: another thread can run the
    Python stages of other chunks meanwhile).
    """
    prob, events = job.pop("prob"), job.pop("events")
    if prob is not None:                # read-outs inside the compiled solve: no (n, T, G) array
        job["fused"] = dr.read_out(prob, job["keep"], events)
    if prob is None or job.get("targets"):      # beside the fused read-outs the profiles serve the targets only
        job["solved"] = dr.solve(job["params"], auc=prob is None)
    return job


def _chunk_table(dr: "_DrugRun", job: dict, arm_name: str, targets: tuple) -> dict:
    """Last stage of :func:`_chunk` (Python): the metrics table, failures, band profiles and targets."""
    params, keep = job["params"], job["keep"]
    ids = params["ID"].to_numpy()
    if "fused" in job:
        r, status, band = job["fused"]
        conc = None
        if targets:         # a subject whose profile (for the targets) failed is failed everywhere
            conc, st2 = job["solved"][0], np.asarray(job["solved"][1])
            status = np.where(np.asarray(status) != 0, status, st2)
        ok = status == 0
        if keep and band is not None and not ok[:keep].all():      # a failed band subject's profile is NaN
            band = np.array(band, dtype=float)
            band[~ok[:keep]] = np.nan
        return {"failed": int((~ok).sum()),
                "failures": [(i, int(st)) for i, st in zip(ids[~ok].tolist(), status[~ok].tolist())],
                "band": band if keep else None,
                "band_cmax": np.asarray(r["cmax"])[:keep] if keep else None,
                "readouts": _with_pathologies(dr.readouts(None, ids, arm_name, status, fused=r), params, dr),
                "targets": {tg.label: dr.target(tg, conc)[ok] for tg in targets},
                # every solved subject's Cmax refined between output times (exact solver, issue 9)
                "cmax_exact": bool(np.all(np.asarray(r["cmax_exact"])[ok])) if "cmax_exact" in r else False}
    conc, status, gauc = job["solved"]
    ok = status == 0
    return {"failed": int((~ok).sum()),
            "failures": [(i, int(st)) for i, st in zip(ids[~ok].tolist(), status[~ok].tolist())],
            "band": conc[:keep].copy() if keep else None,
            "readouts": _with_pathologies(dr.readouts(conc, ids, arm_name, status, gauc), params, dr),
            "targets": {tg.label: dr.target(tg, conc)[ok] for tg in targets},
            "cmax_exact": False}
