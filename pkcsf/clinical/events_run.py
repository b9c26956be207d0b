"""Simulating the patients of an event table: :class:`DatasetRun` (PRED, IPRED, profiles, VPC replicates).

Split out of :mod:`pkcsf.clinical.events` (which reads the tables and re-exports this class). With covariates
that change within a subject, every solve runs in segments (:mod:`pkcsf.clinical.events_segments`).
"""
from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pkcsf.analysis.readouts import whole_window
from pkcsf.clinical.cns import group_concentrations
from pkcsf.clinical.events_segments import solve_segments
from pkcsf.clinical.population import Population
from pkcsf.core.errors import ScenarioError, Status
from pkcsf.engine.simulate import prepare

if TYPE_CHECKING:
    from pkcsf.clinical.cns import Setup

__all__ = ["DatasetRun"]


class DatasetRun:
    """Simulate the subjects of an :class:`EventData` for one drug set-up: PRED (typical parameters with
    each subject's covariates), IPRED, profiles on a grid and simulated replicates for a VPC.

    With time-varying covariates (``data.time_varying``) every solve runs in segments between the change
    times (:func:`pkcsf.clinical.events_segments.solve_segments`): ``starts`` holds the segment starts,
    the grid lists each change time twice (left limit with the old covariates, right limit with the new,
    after any dose at that time), and an observation read before a dose at a change time gets an extra
    point after the grid (new covariates, amounts before the dose).

    Parameters
    ----------
    data : EventData
        The table's doses, covariates and observations.
    setup : Setup
        From :func:`pkcsf.clinical.cns.setup`.
    population : Population
        Random effects and covariate effects; its data are ``data.covariates``.
    unit : str
        Concentration unit of DV, PRED and IPRED.
    groups : list of str
        Compartment groups of the profiles (plasma first).
    times : ndarray
        Profile grid (h); observation and dose times are added.
    solver : str, optional
        Engine solver name.
    max_steps : int, optional
        Adaptive-solver step budget (per segment with time-varying covariates).
    thresholds : list of tuple, optional
        ``(label, value in mg/L)`` for the time-above read-outs of :meth:`metrics`.
    """

    # EventData (pkcsf.clinical.events) is not imported: events imports this module (no cycle)
    def __init__(self, data: EventData, setup: Setup, population: Population, unit: str,  # noqa: F821
                 groups: list[str], times: np.ndarray, *, solver: str = "auto", max_steps: int | None = None,
                 thresholds: list | tuple = ()):
        self.data, self.setup, self.population = data, setup, population
        self.unit, self.groups = unit, list(groups)
        self.regimens = data.regimens_for(setup)
        self.solver, self.max_steps = solver, max_steps
        self.thresholds = list(thresholds)
        obs = data.observations
        self.obs_readout = [data.readout_of(setup, c, f"{data.row_label(r)}.CMT")
                            for c, r in zip(obs["CMT"], obs["ROW"])]
        readouts = list(self.groups) + [r for r in dict.fromkeys(self.obs_readout) if r not in self.groups]
        self.readouts = readouts
        self.states, self.W = setup.group_weights(readouts)
        # per read-out (groups first): a metabolite group in a mass unit is its own mass (Setup.group_factors)
        self.factor = setup.group_factors(readouts, unit)
        # dose times per subject (each listed twice on the grid: before / after)
        self.dose_times = {i: np.array(sorted({d.time for d in reg.expand()})) for i, reg in self.regimens.items()}
        all_doses = np.concatenate([v for v in self.dose_times.values()] + [np.zeros(0)])
        base = np.asarray(times, dtype=float)
        t_obs = obs["TIME"].to_numpy(dtype=float)
        dose_t = np.unique(all_doses)
        end = max(base[-1], t_obs.max() if len(t_obs) else 0.0)
        #: segment start times (h) when covariates change within a subject, else None
        self.starts = None
        self._virtual: dict = {}
        if data.time_varying:
            self._segment_grid(base, t_obs, dose_t, end)
        else:
            grid = np.union1d(np.setdiff1d(np.union1d(base, t_obs), dose_t), np.zeros(0))
            self.times = np.sort(np.concatenate([grid, dose_t, dose_t]), kind="stable")
            self.times = self.times[self.times <= end]
        # which grid index each observation reads: before a dose at the same time if its row comes first
        dose_rows = data.doses
        idx = []
        for sid, t, row in zip(obs["ID"], t_obs, obs["ROW"]):
            lo = int(np.searchsorted(self.times, t, side="left"))
            hi = int(np.searchsorted(self.times, t, side="right")) - 1
            first_dose_row = dose_rows.loc[(dose_rows["ID"] == sid)
                                           & (pd.to_numeric(dose_rows["TIME"]) == t), "ROW"]
            if len(first_dose_row):      # a dose row at this time: the table's order decides
                before = row < first_dose_row.min()
            else:                        # a dose implied by II/ADDL: the observation comes first (a trough)
                before = bool(np.any(self.dose_times[sid] == t))
            if before and float(t) in self._virtual:   # before a dose at a covariate change: new covariates
                idx.append(self._virtual[float(t)])
            else:
                idx.append(lo if before else hi)
        self.obs_index = np.array(idx, dtype=int)
        self.obs_subject = np.array([data.ids.index(i) for i in obs["ID"]], dtype=int)
        self.obs_col = np.array([readouts.index(r) for r in self.obs_readout], dtype=int)
        self._pred = None
        self._ipred = None

    def _segment_grid(self, base, t_obs, dose_t, end) -> None:
        """The grid of a table whose covariates change: each change time is listed twice, the left limit
        (end of the old segment, old covariates) then the right limit (new covariates, after any dose at
        that time); other dose times twice (before / after the doses). Observations read before a dose at
        a change time get an extra point after the grid (new covariates, before the dose).
        """
        chg = self.data.change_times
        chg = chg[chg <= end]
        self.starts = np.concatenate([[0.0], chg])
        plain = np.setdiff1d(np.union1d(base, t_obs), np.union1d(dose_t, chg))
        entries = [(t, 2) for t in plain]
        entries += [e for t in np.setdiff1d(dose_t, chg) for e in ((t, 1), (t, 2))]
        entries += [e for t in chg for e in ((t, 0), (t, 2))]
        entries = sorted(e for e in entries if e[0] <= end)
        self.times = np.array([e[0] for e in entries], dtype=float)
        kinds = np.array([e[1] for e in entries], dtype=int)
        virtual = np.intersect1d(dose_t, chg)
        self._virtual = {float(t): len(self.times) + j for j, t in enumerate(virtual)}
        t_all = np.concatenate([self.times, virtual])
        seg = np.searchsorted(self.starts, t_all, side="right") - 1
        seg[:len(kinds)] -= (kinds == 0)            # a left limit reads the end of the previous segment
        self._seg = seg.astype(np.int64)
        self._tloc = t_all - self.starts[self._seg]
        self._order = np.concatenate([np.ones(len(self.times), int), np.zeros(len(virtual), int)])

    # -------------------------------------------------------------- solving
    def params(self, *, variability: bool, seed: int = 0) -> pd.DataFrame:
        """Each patient's parameters: typical values with his covariates (with ``variability``: random effects).

        With time-varying covariates these are the parameters of the first segment (covariates at time 0);
        :meth:`segment_params` gives every segment's.

        Parameters
        ----------
        variability : bool
            Apply the population's random effects.
        seed : int, optional
            Random seed of the random effects.

        Returns
        -------
        DataFrame
            ``ID``, covariates and one column per model parameter (base units), one row per patient.
        """
        n = self.data.n
        p = self.population.individual(self.setup.parameters, n, seed=seed, variability=variability)
        return p

    def segment_params(self, *, variability: bool, seed: int = 0) -> list[pd.DataFrame]:
        """Each patient's parameters in every covariate segment (one table per segment start in ``starts``).

        The random effects of a patient are the same in every segment (the same seed and subject index);
        only the covariates, hence the covariate effects, change.

        Parameters
        ----------
        variability : bool
            Apply the population's random effects.
        seed : int, optional
            Random seed of the random effects.

        Returns
        -------
        list of DataFrame
            One :meth:`params`-like table per segment (a single table when no covariate changes).
        """
        if self.starts is None:
            return [self.params(variability=variability, seed=seed)]
        if self.population.data is None:
            raise ScenarioError("population", self.population, "time-varying covariates need a population whose "
                                "data are the table's covariates")
        out = []
        for a in self.starts:
            pop = copy.copy(self.population)
            pop.data = self.data.covariates_at(a).reset_index(drop=True)
            out.append(pop.individual(self.setup.parameters, self.data.n, seed=seed, variability=variability))
        return out

    def solve(self, params: pd.DataFrame | list[pd.DataFrame], regimens: dict | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
        """Readout concentrations (n, T, R) in ``unit`` and solver status (NaN for failed subjects).

        Parameters
        ----------
        params : DataFrame or list of DataFrame
            One row per subject (an ``ID`` column naming its regimen); with time-varying covariates a list
            with one table per segment (:meth:`segment_params`).
        regimens : dict, optional
            ``{ID: Regimen}`` (default: the table's).

        Returns
        -------
        tuple
            ``(conc, status)``: concentrations (n, T', R) with T' >= ``len(times)`` (the points after the
            grid are observation-only values, see :meth:`_segment_grid`), and :class:`Status` codes.
        """
        regimens = self.regimens if regimens is None else regimens
        model_params = set(self.setup.model.parameter_names)
        budget = {} if self.max_steps is None else {"max_steps": self.max_steps}
        if self.starts is not None:
            if isinstance(params, pd.DataFrame):
                raise ScenarioError("params", "one table", "the covariates of this table change with time: give "
                                    f"one parameter table per covariate segment ({len(self.starts)}; see "
                                    "DatasetRun.segment_params)")
            return self._solve_segments(params, regimens, model_params)
        if isinstance(params, list):
            params, = params
        cols = [c for c in params.columns if c in model_params or c == "ID"]
        prob = prepare(self.setup.model, regimens, params[cols],
                       times=self.times, outputs=self.states, solver=self.solver, **budget)
        out, status, _ = prob.solve()
        conc = group_concentrations(prob, out, self.W, self.factor)
        conc[status != 0] = np.nan
        return conc, status

    def _solve_segments(self, seg_params, regimens, model_params):
        if len(seg_params) != len(self.starts):
            raise ScenarioError("params", f"{len(seg_params)} tables", f"one per covariate segment "
                                f"({len(self.starts)})")
        cols = [c for c in seg_params[0].columns if c in model_params]
        regs = [regimens[i] for i in seg_params[0]["ID"]]
        amounts, status, probs = solve_segments(self.setup.model, regs, [p[cols] for p in seg_params],
                                                self.starts, self._seg, self._tloc, order=self._order,
                                                solver=self.solver, max_steps=self.max_steps,
                                                ids=list(seg_params[0]["ID"]))
        names = probs[0].compiled.state_names
        sidx = [names.index(s) for s in self.states]
        n, M = amounts.shape[:2]
        conc = np.full((n, M, self.W.shape[1]), np.nan)
        for k, prob in enumerate(probs):
            pts = self._seg == k
            V = prob.compiled.volumes(prob.P)[:, sidx]
            conc[:, pts] = (amounts[:, pts][:, :, sidx] @ self.W) * (self.factor / (V @ self.W)[:, None, :])
        conc[status != 0] = np.nan
        return conc, status

    @property
    def pred(self) -> tuple[np.ndarray, np.ndarray]:
        """(conc (n, T, R), status) of the typical subject with each patient's covariates."""
        if self._pred is None:
            self._pred = self.solve(self.segment_params(variability=False))
        return self._pred

    @property
    def ipred(self) -> tuple[np.ndarray, np.ndarray]:
        """(conc, status) with the table's individual parameters where given, else PRED."""
        if self._ipred is None:
            given = self.data.parameters
            if given.empty:
                self._ipred = self.pred
            else:
                ps = self.segment_params(variability=False)
                for p in ps:
                    for c in given.columns:
                        if c != "ID":
                            p[c] = given[c].to_numpy(dtype=float)
                self._ipred = self.solve(ps)
        return self._ipred

    def at_observations(self, conc: np.ndarray) -> np.ndarray:
        """The values of ``conc`` (n, T, R) at the observation rows.

        Parameters
        ----------
        conc : ndarray, shape (n, T', R)
            From :meth:`solve`.

        Returns
        -------
        ndarray, shape (n_observations,)
        """
        return conc[self.obs_subject, self.obs_index, self.obs_col]

    def observations(self) -> pd.DataFrame:
        """Tidy frame: ``ID, TIME, group, DV, PRED, IPRED, unit`` (one row per observation row).

        Returns
        -------
        DataFrame
            One row per observation row of the table, with the carried columns.
        """
        obs = self.data.observations
        out = pd.DataFrame({"ID": obs["ID"].to_numpy(), "TIME": obs["TIME"].to_numpy(),
                            "group": self.obs_readout, "DV": obs["DV"].to_numpy(dtype=float),
                            "PRED": self.at_observations(self.pred[0]),
                            "IPRED": self.at_observations(self.ipred[0]), "unit": self.unit})
        for c in self.data.carried:
            out[c] = obs[c].to_numpy()
        return out

    def simulate_observations(self, replicates: int = 200, seed: int = 0) -> pd.DataFrame:
        """The data set's design simulated ``replicates`` times with random effects (a visual predictive
        check): ``REP, ID, TIME, group, SIM`` in ``unit`` (failed subjects are dropped).

        Parameters
        ----------
        replicates : int, optional
            Number of simulated copies of the design.
        seed : int, optional
            Replicate ``r`` uses the random effects of seed ``seed + r``.

        Returns
        -------
        DataFrame
            ``REP, ID, TIME, group, SIM`` (one row per replicate and observation row).
        """
        if isinstance(replicates, bool) or not isinstance(replicates, (int, np.integer)) or replicates < 1:
            raise ScenarioError("replicates", replicates, "must be a whole number >= 1")
        parts = []
        obs = self.data.observations
        n = self.data.n
        block = max(1, 2000 // max(n, 1))          # replicates solved together (one engine call)
        for r0 in range(0, int(replicates), block):
            reps = range(r0, min(int(replicates), r0 + block))
            ps, regs = [], {}
            for r in reps:      # replicate r: seed + r; subjects relabelled (r, k) so their doses stay theirs
                segs = self.segment_params(variability=True, seed=int(seed) + r)
                for p in segs:
                    p["ID"] = [f"{r}|{k}" for k in range(n)]
                ps.append(segs)
                regs.update({f"{r}|{k}": self.regimens[i] for k, i in enumerate(self.data.ids)})
            stacked = [pd.concat([segs[k] for segs in ps], ignore_index=True) for k in range(len(ps[0]))]
            conc, status = self.solve(stacked, regs)
            for j, r in enumerate(reps):
                sim = conc[j * n + self.obs_subject, self.obs_index, self.obs_col]
                parts.append(pd.DataFrame({"REP": r, "ID": obs["ID"].to_numpy(), "TIME": obs["TIME"].to_numpy(),
                                           "group": self.obs_readout, "SIM": sim}))
        out = pd.concat(parts, ignore_index=True)
        return out[np.isfinite(out["SIM"])].reset_index(drop=True)

    # -------------------------------------------------------------- scenario pieces
    def group_profiles(self, conc: np.ndarray) -> np.ndarray:
        """The compartment-group part (n, T, G) of ``conc`` on ``times``.

        Parameters
        ----------
        conc : ndarray, shape (n, T', R)
            From :meth:`solve`.

        Returns
        -------
        ndarray, shape (n, T, G)
        """
        return conc[:, :len(self.times), :len(self.groups)]

    def _last_interval(self, prof: np.ndarray) -> dict:
        """Each patient's ``cmax_last`` and ``auc_last`` (from his last dose in the window to its end, on the grid)
        and ``trough_last`` (the level just before that dose; 0 with a single dose), as a simulated arm's.
        """
        n, T, G = prof.shape
        t = self.times
        cmax, auc, trough = (np.full((n, G), np.nan) for _ in range(3))
        for i, sid in enumerate(self.data.ids):
            doses = self.dose_times[sid]
            doses = doses[doses < t[-1]]
            if not len(doses):
                continue
            first = int(np.searchsorted(t, doses[-1], side="left"))     # the value before the dose (a jump pair)
            after = int(np.searchsorted(t, doses[-1], side="right")) - 1
            seg = prof[i, after:, :]
            cmax[i] = seg.max(axis=0)
            auc[i] = np.trapezoid(seg, t[after:], axis=0) if len(seg) > 1 else 0.0
            trough[i] = prof[i, first, :] if len(doses) > 1 else 0.0
        return {"cmax_last": cmax.ravel(), "auc_last": auc.ravel(), "trough_last": trough.ravel()}

    def metrics(self, arm_name: str, drug: str) -> pd.DataFrame:
        """Per-subject read-outs of the PRED profiles over the whole window.

        Cmax, Tmax, AUC (linear-up/log-down on the grid, which holds every dose, observation and covariate
        change time; a change time is a jump pair, so the AUC is continuous through it), cmax_last, auc_last and
        trough_last (each patient's last dose in the window), ratio_auc_plasma, time_above / longest_above per
        threshold.

        Parameters
        ----------
        arm_name : str
            The arm's name (a column of the result).
        drug : str
            The drug's name.

        Returns
        -------
        DataFrame
            One row per subject and group; failed subjects have NaN values and their status.
        """
        conc, status = self.pred
        prof = np.ascontiguousarray(self.group_profiles(conc))
        n, T, G = prof.shape
        thr = np.array([v for _, v in self.thresholds])[None, :] * self.setup.threshold_factors(
            self.groups, self.unit, [label for label, _ in self.thresholds])
        r = whole_window(self.times, np.nan_to_num(prof), thr)
        out = {"arm": arm_name, "id": np.repeat(np.array(self.data.ids, dtype=object), G), "drug": drug,
               "group": np.tile(self.groups, n), "unit": self.unit, "cmax": r["cmax"].ravel(),
               "tmax": r["tmax"].ravel(), "auc": r["auc"].ravel()}
        out.update(self._last_interval(np.nan_to_num(prof)))
        pl = r["auc"][:, self.groups.index("plasma")]
        with np.errstate(divide="ignore", invalid="ignore"):
            out["ratio_auc_plasma"] = (r["auc"] / pl[:, None]).ravel()
        for k, (label, _) in enumerate(self.thresholds):
            out[f"time_above[{label}]"] = r["time_above"][:, :, k].ravel()
            out[f"longest_above[{label}]"] = r["longest_above"][:, :, k].ravel()
        df = pd.DataFrame(out)
        failed = np.repeat(status != 0, G)
        if failed.any():
            value_cols = [c for c in df.columns if c not in ("arm", "id", "drug", "group", "unit")]
            df.loc[failed, value_cols] = np.nan
        df["auc_unit"] = f"{self.unit}*h"
        df["status"] = np.repeat([Status(int(x)).name for x in status], G)
        return df
