"""Issue 12: time-varying covariates in event tables (last observation carried forward, solved in segments).

References are independent of the segmented solver: the matrix exponential of the model's rate matrix
(scipy.linalg.expm, an infusion through the augmented matrix), chained by hand at the change time.
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.linalg import expm

import pkcsf as pk
from pkcsf.clinical import cns, events
from pkcsf.clinical.scenario_population import population_from_data
from pkcsf.core.errors import DosingError, ScenarioError
from pkcsf.core.units import concentration_factor
from pkcsf.engine.compile import compile_model

DRUG = "methotrexate"          # linear: the exact solver; WT acts on CL, V1, V2 (plasma PK)
COV = {"HT": 175.0, "AGE": 45.0, "SEX": 0.0, "SCR": 0.9}


def _table(rows, wt):
    """Rows (TIME, AMT, CMT, EVID, DUR) of subject 1 with WT per row."""
    df = pd.DataFrame(rows, columns=["TIME", "AMT", "CMT", "EVID", "DUR"])
    df.insert(0, "ID", 1)
    df["WT"] = wt
    for k, v in COV.items():
        df[k] = v
    return df


class _Reference:
    """The typical patient of one weight as a linear system dA/dt = M A + input (exact)."""

    def __init__(self, wt):
        self.setup = cns.setup(DRUG)
        self.cm = compile_model(self.setup.model)
        pop = population_from_data(self.setup, pd.DataFrame([{"WT": wt, **COV}]))
        p = pop.individual(self.setup.parameters, 1, variability=False)
        base = np.array([[float(p[n].iloc[0]) for n in self.cm.parameter_names]])
        self.P = self.cm.evaluate(base)
        self.M = self.cm.rate_matrix(self.P[0])
        self.plasma = self.cm.state_names.index("plasma")
        states, W = self.setup.group_weights(["plasma"])
        idx = [self.cm.state_names.index(s) for s in states]
        self.w = np.zeros(self.M.shape[0])
        self.w[idx] = W[:, 0]
        self.V = float(self.cm.volumes(self.P)[0, idx] @ W[:, 0])
        self.factor = concentration_factor("umol/L", self.setup.mw)

    def step(self, y, dt, rate=0.0):
        """Amounts after ``dt`` h from ``y`` with a zero-order input ``rate`` (mg/h) into plasma."""
        S = len(y)
        A = np.zeros((S + 1, S + 1))
        A[:S, :S] = self.M
        A[self.plasma, S] = rate
        return (expm(A * dt) @ np.append(y, 1.0))[:S]

    def conc(self, y):
        return float(self.w @ y) / self.V * self.factor


def test_constant_covariate_column_is_not_time_varying_and_unchanged():
    """(1) A covariate column that never changes (empty cells filled) gives today's path, bit for bit."""
    rows = [(0, 100, "iv", 1, None), (12, None, "plasma", 0, None), (36, None, "plasma", 0, None)]
    df = _table(rows, [70.0, None, 70.0])
    data = events.read_events(df)
    assert not data.time_varying and len(data.change_times) == 0
    full = pk.simulate(DRUG, df).observations()
    same = pk.simulate(DRUG, _table(rows, 70.0)).observations()
    np.testing.assert_array_equal(full["PRED"].to_numpy(), same["PRED"].to_numpy())


@pytest.mark.parametrize("solver, rtol", [("auto", 1e-10), ("rodas5p", 1e-7)])
def test_subject_without_change_equals_its_unsegmented_run(solver, rtol):
    """(1) Patient 2's covariates do not change, patient 1's do: patient 2 is solved in segments too (the
    change time is global) and equals his own unsegmented run, PRED and whole-window Cmax/AUC (exact
    solver: to round-off; adaptive: to solver tolerance)."""
    rows = [(0, 100, "iv", 1, 2.0), (6, None, "plasma", 0, None), (24, None, "plasma", 0, None),
            (30, None, "lumbar", 0, None), (60, None, "plasma", 0, None)]
    a = _table(rows, [70, 70, 90, 90, 90])
    b = _table(rows, 60.0)
    b["ID"] = 2
    both = pk.simulate(DRUG, pd.concat([a, b], ignore_index=True), solver=solver, days=3)
    alone = pk.simulate(DRUG, b, solver=solver, days=3)
    o2 = both.observations()
    o2 = o2[o2["ID"] == 2]
    np.testing.assert_allclose(o2["PRED"], alone.observations()["PRED"], rtol=rtol, atol=0)
    m2 = both.metrics()
    m2 = m2[m2["id"] == 2].reset_index(drop=True)
    m1 = alone.metrics().reset_index(drop=True)
    for col in ("cmax", "auc"):
        np.testing.assert_allclose(m2[col], m1[col], rtol=rtol, atol=0)
    # the AUC over the whole window is continuous through the hand-off: patient 1's plasma AUC is that of
    # the exact reference profile on the same grid
    assert np.isfinite(both.metrics()["auc"]).all()


def test_weight_change_at_24_h_equals_the_matrix_exponential():
    """(2) 100 mg IV bolus at 0; WT 70 kg until 24 h, 90 kg from 24 h (an EVID 2 row). PRED at 12, 23.5,
    24 (new weight), 36, 48 h equals two matrix-exponential segments chained at 24 h."""
    rows = [(0, 100, "iv", 1, None), (12, None, "plasma", 0, None), (23.5, None, "plasma", 0, None),
            (24, None, "plasma", 2, None), (24, None, "plasma", 0, None), (36, None, "plasma", 0, None),
            (48, None, "plasma", 0, None)]
    df = _table(rows, [70, 70, 70, 90, 90, 90, 90])
    data = events.read_events(df)
    assert data.time_varying and list(data.change_times) == [24.0]
    pred = pk.simulate(DRUG, df, days=3).observations()["PRED"].to_numpy()
    r70, r90 = _Reference(70.0), _Reference(90.0)
    assert r90.V > 1.2 * r70.V                      # the weight does act on the plasma volume
    y0 = np.zeros(r70.M.shape[0])
    y0[r70.plasma] = 100.0
    y24 = r70.step(y0, 24.0)
    ref = [r70.conc(r70.step(y0, 12.0)), r70.conc(r70.step(y0, 23.5)), r90.conc(y24),
           r90.conc(r90.step(y24, 12.0)), r90.conc(r90.step(y24, 24.0))]
    err = np.max(np.abs(pred / np.array(ref) - 1))
    assert err < 1e-9, err
    # without the change the 36-h value would differ by far more than that
    assert abs(r70.conc(r70.step(y0, 36.0)) / ref[3] - 1) > 0.05


def test_infusion_crossing_the_change_is_split():
    """(3) 1000 mg IV over 24 h; WT 70 kg until 12 h, 90 kg from 12 h: the infusion is cut in two pieces of
    500 mg (amount proportional to time), PRED equals the augmented matrix exponential chained at 12 h."""
    rows = [(0, 1000, "iv", 1, 24.0), (6, None, "plasma", 0, None), (12, None, "plasma", 0, None),
            (18, None, "plasma", 0, None), (24, None, "plasma", 0, None), (36, None, "plasma", 0, None)]
    df = _table(rows, [70, 70, 90, 90, 90, 90])
    pred = pk.simulate(DRUG, df, days=2).observations()["PRED"].to_numpy()
    r70, r90 = _Reference(70.0), _Reference(90.0)
    y = np.zeros(r70.M.shape[0])
    y12 = r70.step(y, 12.0, rate=1000 / 24)
    y24 = r90.step(y12, 12.0, rate=1000 / 24)
    ref = [r70.conc(r70.step(y, 6.0, rate=1000 / 24)), r90.conc(y12), r90.conc(r90.step(y12, 6.0, rate=1000 / 24)),
           r90.conc(y24), r90.conc(r90.step(y24, 12.0))]
    err = np.max(np.abs(pred / np.array(ref) - 1))
    assert err < 1e-9, err
    # the pieces: 500 mg each
    from pkcsf.clinical.events_segments import Delivery, split_deliveries

    pieces = split_deliveries([Delivery(0.0, "plasma", 1000.0, 24.0)], np.array([0.0, 12.0]))
    assert [(d.amount, d.time, d.duration) for seg in pieces for d in seg] == [(500.0, 0.0, 12.0), (500.0, 0.0, 12.0)]


def test_hand_off_round_off_clipped_real_negative_refused():
    """A negative hand-off amount within CLIP_RELATIVE x the subject's amount scale is round-off (set to 0);
    beyond it is a real negative: SolverError naming the subject, compartment, time and value."""
    from pkcsf.clinical.events_segments import CLIP_RELATIVE, clip_hand_off
    from pkcsf.core.errors import SolverError

    y = np.array([[5.0, -0.5 * CLIP_RELATIVE * 100.0, 1.0]])
    out = clip_hand_off(y, np.array([100.0]), 24.0, ["plasma", "lv", "cm"], ["pt-1"])
    assert out.tolist() == [[5.0, 0.0, 1.0]] and y[0, 1] < 0          # a copy; only the round-off is zeroed
    y[0, 1] = -3e-4
    with pytest.raises(SolverError, match=r"subject .pt-1.: amount in lv at 24 h.*got -0\.0003; must be >= 0 mg"):
        clip_hand_off(y, np.array([100.0]), 24.0, ["plasma", "lv", "cm"], ["pt-1"])


def test_steady_state_with_time_varying_covariates_refused():
    """(4) An SS dose of a subject whose covariates change: refused, naming the row, the value and why."""
    df = _table([(0, 100, "iv", 1, None), (24, None, "plasma", 0, None)], [70, 90])
    df["SS"] = [1, None]
    df["II"] = [24, None]
    with pytest.raises(DosingError, match=r"row 0\.SS.*steady-state dose cannot be combined with time-varying"):
        events.read_events(df)


def test_pred_before_and_after_the_change_and_troughs():
    """(5) Observation rows around a change at 24 h that is also a dose time: the trough row (before the
    dose row) reads the amounts before the dose with the NEW weight (the value holds from its time), the
    row after the dose the amounts after it; the wide frame shows each row's weight."""
    rows = [(0, 100, "iv", 1, None), (23.9, None, "plasma", 0, None), (24, None, "plasma", 0, None),
            (24, 100, "iv", 1, None), (24, None, "plasma", 0, None), (30, None, "plasma", 0, None)]
    df = _table(rows, [70, 70, 90, 90, 90, 90])
    res = pk.simulate(DRUG, df, days=2)
    pred = res.observations()["PRED"].to_numpy()
    r70, r90 = _Reference(70.0), _Reference(90.0)
    y0 = np.zeros(r70.M.shape[0])
    y0[r70.plasma] = 100.0
    y24 = r70.step(y0, 24.0)
    y24d = y24.copy()
    y24d[r90.plasma] += 100.0
    ref = [r70.conc(r70.step(y0, 23.9)), r90.conc(y24), r90.conc(y24d), r90.conc(r90.step(y24d, 6.0))]
    np.testing.assert_allclose(pred, ref, rtol=1e-9)
    wide = res.nonmem()
    assert wide["WT"].tolist() == [70, 70, 90, 90, 90, 90]
    # the profile lists 24 h twice: the left limit (old weight) and the right limit (new weight, after the dose)
    arm = res[DRUG]
    i = np.flatnonzero(arm.times == 24.0)
    assert len(i) == 2
    prof = arm.profiles[DRUG][0, :, arm.groups[DRUG].index("plasma")]
    np.testing.assert_allclose(prof[i], [r70.conc(y24), r90.conc(y24d)], rtol=1e-9)


def test_same_time_conflict_and_parameters_refused():
    df = _table([(0, 100, "iv", 1, None), (24, None, "plasma", 0, None), (24, None, "plasma", 0, None)],
                [70, 80, 90])
    with pytest.raises(DosingError, match=r"WT \(ID 1\) at TIME 24.*same value"):
        events.read_events(df)
    df = _table([(0, 100, "iv", 1, None), (24, None, "plasma", 0, None)], [70, 90])
    df["CL"] = [7.0, 8.0]
    with pytest.raises(DosingError, match="individual parameter column must be constant"):
        events.read_events(df, parameters=["CL"])


def test_value_before_the_first_row_and_empty_cells():
    """The first value holds from time 0 (before the first row); an empty cell carries the previous one."""
    df = _table([(5, 100, "iv", 1, None), (10, None, "plasma", 0, None), (30, None, "plasma", 0, None),
                 (50, None, "plasma", 0, None)], [80, None, 95, None])
    data = events.read_events(df)
    tl = data.timeline
    assert tl["TIME"].tolist() == [0.0, 30.0] and tl["WT"].tolist() == [80.0, 95.0]
    assert data.covariates_at(0.0)["WT"].item() == 80.0 and data.covariates_at(49.0)["WT"].item() == 95.0


def test_forecast_with_a_covariate_timeline_equals_the_reference():
    """The forecast's individual model with a weight timeline predicts the chained matrix exponential
    (eta 0: the typical patient), and a constant timeline is the constant-covariate forecast."""
    from pkcsf.clinical.forecast import _Individual

    setup = cns.setup(DRUG)
    timeline = [{"time": 0, "WT": 70, **COV}, {"time": "1 d", "WT": 90}]
    m = _Individual(setup, pk.Regimen([pk.Dose(100.0, "iv", 0.0)]), timeline, "umol/L", [12.0, 24.0, 36.0])
    assert list(m.starts) == [0.0, 24.0]
    c = m.predict(np.zeros((1, len(m.random_effects))))[0, :, m.groups.index("plasma")]
    r70, r90 = _Reference(70.0), _Reference(90.0)
    y0 = np.zeros(r70.M.shape[0])
    y0[r70.plasma] = 100.0
    y24 = r70.step(y0, 24.0)
    np.testing.assert_allclose(c, [r70.conc(r70.step(y0, 12.0)), r90.conc(y24), r90.conc(r90.step(y24, 12.0))],
                               rtol=1e-9)
    const = _Individual(setup, pk.Regimen([pk.Dose(100.0, "iv", 0.0)]), [{"time": 0, "WT": 70, **COV}],
                        "umol/L", [12.0, 24.0, 36.0])
    assert len(const.starts) == 1


def test_map_ipred_with_time_varying_covariates():
    """MAP IPRED for a patient whose weight changes: the fit uses his timeline, and IPRED at the DV rows
    moves from PRED towards DV (the DV were made 1.6 x PRED)."""
    from pkcsf.clinical.individual import map_ipred

    rows = [(0, 100, "iv", 1, None), (12, None, "plasma", 0, None), (24, None, "plasma", 0, None),
            (24, 100, "iv", 1, None), (36, None, "plasma", 0, None)]
    df = _table(rows, [70, 70, 90, 90, 90])
    pred = pk.simulate(DRUG, df, days=2).observations()["PRED"].to_numpy()
    df["DV"] = [None, 1.6 * pred[0], 1.6 * pred[1], None, 1.6 * pred[2]]
    res = pk.simulate(DRUG, df, days=2)
    out = map_ipred(res, samples=100)
    assert (out["IPRED_from"] == "MAP").all()
    ratio = out["IPRED"].to_numpy() / out["PRED"].to_numpy()
    assert np.all(ratio > 1.15), ratio


def test_vpc_with_time_varying_covariates():
    df = _table([(0, 100, "iv", 1, None), (12, None, "plasma", 0, None), (36, None, "plasma", 0, None)],
                [70, 70, 90])
    sims = pk.simulate(DRUG, df, days=2)[DRUG].simulate_observations(20, seed=3)
    assert len(sims) == 40 and (sims["SIM"] > 0).all() and sims["SIM"].nunique() > 20


def test_scenario_file_and_cli_round_trip(tmp_path):
    """(6) A scenario file whose event table has a WT that changes at 24 h: the CLI writes observations
    with the same PRED as the API, and the wide table shows the time-varying weight."""
    rows = [(0, 100, "iv", 1, None), (12, None, "plasma", 0, None), (24, None, "plasma", 2, None),
            (36, None, "plasma", 0, None), (36, None, "lumbar", 0, None)]
    df = _table(rows, [70, 70, 90, 90, 90])
    df.to_csv(tmp_path / "tv.csv", index=False)
    (tmp_path / "s.toml").write_text('drug = "methotrexate"\ndays = 2\n[[arms]]\nname = "p"\nevents = "tv.csv"\n')
    r = subprocess.run([sys.executable, "-m", "pkcsf.cli", "run", "s.toml", "--out", "out", "--no-figures",
                        "--quiet"], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    obs = pd.read_csv(tmp_path / "out" / "observations.csv")
    api = pk.simulate(DRUG, df, days=2).observations()
    np.testing.assert_allclose(obs["PRED"], api["PRED"], rtol=1e-12)
    wide = pd.read_csv(tmp_path / "out" / "nonmem.csv")
    assert wide.loc[wide["EVID"] == 0, "WT"].tolist() == [70, 90, 90]


def test_forecast_file_patient_timeline(tmp_path):
    """A forecast file's [[patient]] rows are a covariate timeline (docs/forecast.md)."""
    from pkcsf.clinical.forecast import covariate_timeline, load_forecast_file

    (tmp_path / "f.toml").write_text('drug = "methotrexate"\nregimen = "12 mg ommaya once"\n'
                                     '[[observations]]\ntime = "6 h"\ngroup = "ventricular"\nvalue = "25 umol/L"\n'
                                     '[[patient]]\ntime = "0 h"\nWT = 70\nSCR = 0.9\n'
                                     '[[patient]]\ntime = "3 d"\nSCR = 1.8\n')
    kwargs, _ = load_forecast_file(tmp_path / "f.toml")
    assert covariate_timeline(kwargs["covariates"]) == [(0.0, {"WT": 70.0, "SCR": 0.9}),
                                                        (72.0, {"WT": 70.0, "SCR": 1.8})]
    with pytest.raises(ScenarioError, match="one row per time"):
        covariate_timeline([{"time": 0, "WT": 70}, {"time": "0 h", "WT": 80}])


def test_interval_metrics_split_at_doses_not_at_covariate_changes():
    """A covariate change repeats a grid time like a dose does, but starts no dosing interval: doses at 0 and
    48 h with WT changing at 24 h give two intervals per group (0-48, 48-72 h), not three."""
    rows = [(0, 100, "iv", 1, None), (24, None, "plasma", 2, None), (48, 100, "iv", 1, None),
            (60, None, "plasma", 0, None)]
    res = pk.simulate(DRUG, _table(rows, [70, 90, 90, 90]), days=3)
    im = next(iter(res.arms.values())).interval_metrics()
    starts = sorted(set(im["start"].round(9)))
    assert starts == [0.0, 48.0], starts


def test_fixed_scenario_age_checked_against_every_row():
    """A fixed scenario age that equals the first AGE but not a later one is refused (one meaning of age)."""
    from pkcsf.clinical.scenario import Arm, Scenario, run

    df = _table([(0, 12, "ommaya", 1, None), (24, None, "plasma", 2, None), (30, None, "plasma", 0, None)],
                [70, 70, 70])
    df["AGE"] = [5.0, 5.0, 6.0]
    with pytest.raises(ScenarioError, match="fixed age"):
        run(Scenario([Arm("p", df, drug=DRUG)], age=5, days=2), progress=False)
