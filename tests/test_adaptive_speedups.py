"""The cheaper Rodas5P step (issue 11): passive states out of the factorisation, the stage systems as
matrix-vector products with an explicit inverse of the active block, the step size kept across doses.

Accuracy against closed forms, the exact solver and the P2 reference is tested in test_solvers.py,
test_reference.py and test_properties.py; these tests check the pieces and the work counts.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.engine.simulate import prepare
from pkcsf.solvers import common, rodas

HOURS = np.arange(0, 673.0)
P2 = pd.read_csv(Path(__file__).parent / "data" / "subjects_P2.csv")
ONE = P2.iloc[:1].drop(columns="DOSE_AMT")


def _compartmental(rng, S, passive):
    """A random compartmental Jacobian (non-negative off-diagonal, column sums <= 0, so W = g I - J
    is a nonsingular M-matrix) whose ``passive`` columns are zero."""
    J = rng.uniform(0.0, 2.0, (S, S)) * (rng.uniform(size=(S, S)) < 0.6)
    np.fill_diagonal(J, 0.0)
    J[:, passive] = 0.0
    for j in range(S):
        J[j, j] = -J[:, j].sum() - rng.uniform(0.0, 1.0) * (j not in passive)
    J[:, passive] = 0.0
    return J


@pytest.mark.parametrize("passive", [[], [4, 5], [1], [0, 3], [0, 1, 2, 3, 4, 5]])
def test_passive_order_and_solve_equal_a_dense_solve(passive):
    rng = np.random.default_rng(len(passive) + 11)
    S = 6
    J = _compartmental(rng, S, passive)
    perm = np.empty(S, dtype=np.int64)
    na = rodas.passive_order(J, np.zeros(0, dtype=np.int64), perm)
    assert na == S - len(passive)
    assert sorted(perm[na:]) == sorted(passive) and sorted(perm) == list(range(S))
    for h in (1e-4, 0.3, 50.0):
        g = 1.0 / (h * rodas._RG)
        LUc, M, cw, piv = np.zeros((na, na)), np.zeros((S, na)), np.zeros((2, na)), np.zeros(na, dtype=np.int64)
        assert rodas._solve_matrix(J, perm, na, g, LUc, piv, M, cw[1]) == 0
        r = rng.standard_normal(S)
        want = np.linalg.solve(g * np.eye(S) - J, r)
        rodas._apply(M, perm, na, 1.0 / g, cw[0], r)
        assert np.allclose(r, want, rtol=1e-12, atol=1e-14 * np.abs(want).max()), (r, want)


def test_a_michaelis_menten_source_is_active_even_with_a_zero_column_in_A():
    A = np.zeros((3, 3))
    A[2, 0] = 1.0
    perm = np.empty(3, dtype=np.int64)
    na = rodas.passive_order(A, np.array([1]), perm)
    assert na == 2 and list(perm[:2]) == [0, 1] and perm[2] == 2


def test_a_singular_active_block_is_reported():
    J = np.array([[-1.0, 0.0], [1.0, 0.0]])            # g = 1: W = [[2, 0], [-1, 1]] is regular
    perm = np.array([0, 1])
    LUc, M, col, piv = np.zeros((1, 1)), np.zeros((2, 1)), np.zeros(1), np.zeros(1, dtype=np.int64)
    assert rodas._solve_matrix(J, perm, 1, 1.0, LUc, piv, M, col) == 0
    assert rodas._solve_matrix(J, perm, 1, -1.0, LUc, piv, M, col) != 0   # W_a = -1 + 1 = 0


def test_p2_has_two_passive_states():
    prob = prepare("reference_p2", pk.Dose(80.0, "oral"), ONE, times=HOURS, solver="rodas5p")
    cm = prob.compiled
    A, *_ = common._setup(prob.P[0], cm.vol_col, cm.lin_type, cm.lin_src, cm.lin_dst, cm.lin_col, prob.y0[0])
    perm = np.empty(A.shape[0], dtype=np.int64)
    na = rodas.passive_order(A, cm.mm_src, perm)
    assert A.shape[0] == 6 and na == 4
    assert sorted(cm.state_names[i] for i in perm[na:]) == ["auc_csf", "eliminated"], cm.state_names


def test_p2_doses_do_not_restart_the_step_size():
    """28 daily doses: the step size is kept across a dose (capped by 3x the starting-step estimate),
    so a dose costs no run of small growing steps. Bounds from the kernel before the change: 523
    steps and 0 rejections per subject at rtol 1e-6 (20 subjects); now ~509 and 0."""
    sub = P2.iloc[:20]
    res = pk.simulate("reference_p2", pk.Dose("DOSE_AMT", "oral").repeat(every=24, n=28), sub, times=HOURS,
                      solver="rodas5p", rtol=1e-6, atol=1e-9)
    steps = res.stats["steps"] / 20
    rejected = res.stats["rejected"] / 20
    assert steps < 515, steps
    assert rejected <= 28, rejected
    assert res.stats["nlu"] <= res.stats["steps"] + res.stats["rejected"]


def test_a_dose_after_a_tiny_interval_starts_from_the_estimate():
    """A second dose 1e-300 h after the first: the first interval has no accepted step, so the step
    size estimate of that interval (clipped to 1e-300 h) must not be carried to the next one."""
    m = "reference_p2"
    reg = pk.Dose(80.0, "oral", time=0.0) + pk.Dose(80.0, "oral", time=1e-300)
    res = pk.simulate(m, reg, ONE, times=np.array([0.0, 24.0]), solver="rodas5p")
    one = pk.simulate(m, pk.Dose(160.0, "oral"), ONE, times=np.array([0.0, 24.0]),
                      solver="rodas5p")
    assert np.allclose(res.amounts[:, 1:], one.amounts[:, 1:], rtol=1e-6, atol=1e-9)   # t = 0: one dose so far
