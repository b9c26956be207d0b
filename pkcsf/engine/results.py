"""Simulation results: arrays, tidy frames and per-subject status."""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from pkcsf.core.errors import SolverError, Status, check_choice
from pkcsf.core.units import concentration_factor

__all__ = ["SimulationResult"]


class SimulationResult:
    """The outcome of :func:`pkcsf.engine.simulate`.

    Built by the engine, not by users.

    Parameters
    ----------
    problem : pkcsf.engine.simulate.Problem
        The prepared problem (:func:`pkcsf.prepare`): model, times, saved states, parameters.
    amounts : ndarray, shape (N, T, S)
        Amounts (mg) of the saved states at each output time.
    status : ndarray of int, shape (N,)
        :class:`~pkcsf.core.errors.Status` code per subject.
    counters : ndarray of int, shape (N, 5)
        Per subject: steps, rejected steps, right-hand side evaluations, LU factorisations, matrix
        exponentials.
    elapsed : float
        Wall time of the solve, s.

    Attributes
    ----------
    times : ndarray, shape (T,)
        Output times, h.
    amounts : ndarray, shape (N, T, S)
        Amounts (mg) of the saved states (``names``) at each output time;
        right-continuous at dose times.
    names : list of str
        Saved states (compartments, then ``eliminated`` unless excluded).
    units : list of str
        Unit of each column of :meth:`concentrations`: ``mg/L`` for
        compartments with a volume, ``mg`` for amount-only states,
        ``mg*h/L`` for accumulators.
    status : ndarray of int, shape (N,)
        :class:`~pkcsf.core.errors.Status` code per subject (0 = solved).
    ids : ndarray, shape (N,)
        Subject identifiers (the ``ID`` column of the parameters, or 0..N-1).
    solver : str
        The method used (``"exact"``, ``"lsoda"``, ...).
    rtol, atol : float
        The tolerances used.
    stats : dict
        Work counters summed over subjects (steps, rejected steps, right-hand
        side evaluations, LU factorisations, matrix exponentials) and the
        wall time of the solve.

    Examples
    --------
    >>> import pkcsf as pk
    >>> m = pk.load_model("reference_p1")
    >>> res = pk.simulate(m, pk.Dose(10, "icv"), {k: 1.0 for k in m.parameter_names}, times=[0, 1, 2])
    >>> res
    SimulationResult(model='reference_p1', subjects=1, times=3, states=7, solver='exact', failed=0)
    >>> res.concentration("csf_ventricular").shape
    (1, 3)
    >>> list(res.to_frame().columns)
    ['id', 'time', 'compartment', 'value', 'unit']
    """

    # problem is a Problem; naming the class here would import pkcsf.engine.simulate, which imports this module
    def __init__(self, problem: Any, amounts: np.ndarray, status: np.ndarray, counters: np.ndarray,
                 elapsed: float) -> None:
        self.problem = problem
        self.times = problem.times
        self.amounts = amounts
        self.status = status
        self.ids = problem.ids
        cm = problem.compiled
        self.model = cm.model
        self.names = problem.saved_names
        self.solver = problem.method
        self.rtol = problem.rtol
        self.atol = problem.atol
        kinds = {c.name: c for c in cm.model.compartments}
        has_vol = cm.vol_col[problem.save] >= 0
        self._has_volume = has_vol
        self.units = []
        for name, hv in zip(self.names, has_vol):
            if name in kinds and kinds[name].kind == "accumulator":
                self.units.append("mg*h/L")
            else:
                self.units.append("mg/L" if hv else "mg")
        self.volumes = cm.volumes(problem.P)[:, problem.save]
        self.per_subject_counters = counters
        tot = counters.sum(axis=0)
        self.stats = {"steps": int(tot[0]), "rejected": int(tot[1]), "nfev": int(tot[2]), "nlu": int(tot[3]),
                      "nexpm": int(tot[4]), "seconds": float(elapsed)}

    # ------------------------------------------------------------- shapes
    @property
    def n_subjects(self) -> int:
        """Number of subjects."""
        return self.amounts.shape[0]

    def __len__(self) -> int:
        return self.n_subjects

    def __repr__(self) -> str:
        failed = int((self.status != 0).sum())
        return (f"SimulationResult(model={self.model.name!r}, subjects={self.n_subjects}, times={len(self.times)}, "
                f"states={len(self.names)}, solver={self.solver!r}, failed={failed})")

    @property
    def ok(self) -> np.ndarray:
        """Boolean mask of subjects solved successfully."""
        return self.status == Status.SUCCESS

    def failures(self) -> pd.DataFrame:
        """One row per failed subject.

        Returns
        -------
        pandas.DataFrame
            Columns ``id``, ``status`` (the :class:`~pkcsf.core.errors.Status` name) and ``message``;
            empty when every subject was solved.
        """
        bad = np.flatnonzero(self.status != 0)
        return pd.DataFrame({"id": self.ids[bad], "status": [Status(int(s)).name for s in self.status[bad]],
                             "message": [Status(int(s)).message for s in self.status[bad]]})

    def _report_failures(self):
        bad = self.status != 0
        if not bad.any():
            return
        if self.n_subjects == 1:
            st = Status(int(self.status[0]))
            raise SolverError("simulation", st.name, st.message)
        codes, counts = np.unique(self.status[bad], return_counts=True)
        detail = "; ".join(f"{c} x {Status(int(k)).name}" for k, c in zip(codes, counts))
        warnings.warn(f"{int(bad.sum())} of {self.n_subjects} subjects failed ({detail}); their outputs are NaN "
                      "from the failure on. See result.failures().", RuntimeWarning, stacklevel=3)

    # ---------------------------------------------------------- accessors
    def index(self, name: str) -> int:
        """Index of state ``name`` in the saved states; an unknown name raises listing them.

        Parameters
        ----------
        name : str
            State name.

        Returns
        -------
        int
            The index.
        """
        return self.names.index(check_choice("compartment", name, self.names, SolverError))

    def concentrations(self) -> np.ndarray:
        """Concentrations (mg/L) for states with a volume; amounts for the others.

        Returns
        -------
        ndarray, shape (N, T, S)
            mg/L, or mg for the states without a volume (see :attr:`units`).
        """
        return self.amounts / self.volumes[:, None, :]

    def concentration(self, name: str, unit: str = "mg/L", mw: float | None = None) -> np.ndarray:
        """Concentration-time array of one compartment, shape (N, T).

        Parameters
        ----------
        name : str
            Compartment name.
        unit : str, optional
            Concentration unit (default mg/L).
        mw : float, optional
            Molecular weight (g/mol), for molar units.

        Returns
        -------
        ndarray, shape (N, T)
            Concentrations.
        """
        j = self.index(name)
        if not self._has_volume[j]:
            raise SolverError("compartment", name, "has no volume, so it has an amount (mg), not a concentration; "
                              f"use amount({name!r})")
        return self.amounts[:, :, j] / self.volumes[:, None, j] * concentration_factor(unit, mw)

    def amount(self, name: str) -> np.ndarray:
        """Amount-time array (mg) of one state.

        Parameters
        ----------
        name : str
            State name.

        Returns
        -------
        ndarray, shape (N, T)
            Amounts (mg).
        """
        return self.amounts[:, :, self.index(name)]

    def total_mass(self) -> np.ndarray:
        """Drug mass in all compartments plus eliminated: the dose given so far.

        Returns
        -------
        ndarray, shape (N, T)
            mg.

        Raises
        ------
        SolverError
            When some states were not saved (``outputs`` was given).
        """
        cm = self.problem.compiled
        if len(self.names) != cm.n_states:
            raise SolverError("total_mass", self.names, "needs every state saved (outputs=None)")
        return self.amounts[:, :, cm.is_mass].sum(axis=2)

    def to_frame(self, kind: str = "concentration", *, unit: str | None = None, mw: float | None = None,
                 compartments: list[str] | None = None) -> pd.DataFrame:
        """Tidy table with columns ``id, time, compartment, value, unit``.

        ``kind='concentration'`` gives mg/L (or ``unit``, e.g. ``"umol/L"``
        with ``mw``) for compartments with a volume and mg for the others;
        ``kind='amount'`` gives mg for every state.

        Parameters
        ----------
        kind : {"concentration", "amount"}, optional
            What to tabulate.
        unit : str, optional
            Concentration unit.
        mw : float, optional
            Molecular weight (g/mol), for molar units.
        compartments : list of str, optional
            Only these states.

        Returns
        -------
        DataFrame
            Tidy rows.
        """
        check_choice("kind", kind, ["concentration", "amount"], SolverError)
        names = self.names if compartments is None else [self.names[self.index(c)] for c in compartments]
        idx = [self.names.index(n) for n in names]
        N, T = self.n_subjects, len(self.times)
        values = self.amounts[:, :, idx]
        units = []
        if kind == "concentration":
            values = values / self.volumes[:, None, idx]
            for k, j in enumerate(idx):
                u = self.units[j]
                if u == "mg/L" and unit is not None:
                    values[:, :, k] *= concentration_factor(unit, mw)
                    u = unit
                units.append(u)
        else:
            units = ["mg"] * len(idx)
        C = len(idx)
        return pd.DataFrame({
            "id": np.repeat(self.ids, T * C),
            "time": np.tile(np.repeat(self.times, C), N),
            "compartment": pd.Categorical(np.tile(np.asarray(names, dtype=object), N * T), categories=names),
            "value": values.reshape(-1),
            "unit": pd.Categorical(np.tile(np.asarray(units, dtype=object), N * T)),
        })
