"""The solver files after the split of kernels.py (issue 8): every file with compiled code keys the
Numba cache, the kernels' names stay importable, and the exact solver's path for models above 8 states
(passive states out of the matrix exponential, solvers.exact.solve_exact_split) equals a dense
scipy.linalg.expm propagation."""
from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest
import scipy.linalg

import pkcsf as pk
import pkcsf.core.jit as jit
from pkcsf.engine.simulate import prepare
from pkcsf.solvers import kernels
from pkcsf.solvers.exact_expm import expm_passive_z

SOLVER_FILES = ["common.py", "adaptive.py", "exact.py", "rodas.py", "radau.py", "explicit.py", "linalg.py", "kernels.py"]


@pytest.mark.parametrize("name", SOLVER_FILES)
def test_every_solver_file_keys_the_cache(tmp_path, monkeypatch, name):
    dst = tmp_path / "pkcsf"
    shutil.copytree(jit._PKG, dst, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(jit, "_PKG", dst)
    before = jit.source_key()
    p = dst / "solvers" / name
    p.write_text(p.read_text() + "\n# an edit\n")
    assert jit.source_key() != before


def test_kernels_keeps_its_names():
    for n in ("rhs", "jacobian", "build_matrix", "solve_batch", "solve_subject", "solve_exact", "solve_rodas",
              "solve_radau", "METHOD_EXACT", "METHOD_RODAS", "METHOD_RADAU", "BATCH", "METHOD_NAMES", "_restart",
              "_emit", "_hermite5", "_events", "_setup", "_finish", "_adaptive_workspace", "EV_BOLUS", "ST_SUCCESS"):
        assert hasattr(kernels, n), n


def _chain_model(n):
    comps = "\n".join(f'[[compartments]]\nname = "c{i}"\nvolume = "V{i}"' for i in range(n))
    pars = "\n".join(f'K{i} = {{ unit = "1/h", description = "k" }}\nV{i} = {{ unit = "L", description = "v" }}'
                     for i in range(n))
    tr = "\n".join(f'[[transfers]]\ntype = "first_order"\nfrom = "c{i}"\nto = "c{i + 1}"\nk = "K{i}"'
                   for i in range(n - 1))
    tr += f'\n[[transfers]]\ntype = "first_order"\nfrom = "c{n - 1}"\nto = "c0"\nk = "K{n - 1}"'
    tr += '\n[[transfers]]\ntype = "first_order"\nfrom = "c2"\nk = "K0"'
    acc = '\n[[compartments]]\nname = "auc1"\nkind = "accumulator"\n[[compartments]]\nname = "auc4"\nkind = "accumulator"'
    tr += '\n[[transfers]]\ntype = "accumulate"\nfrom = "c1"\nto = "auc1"\n[[transfers]]\ntype = "accumulate"\nfrom = "c4"\nto = "auc4"'
    return (f'[model]\nname = "chain{n}"\ndescription = "test chain"\n[parameters]\n{pars}\n{comps}{acc}\n{tr}\n'
            f'[[sites]]\nname = "in"\ntargets = {{ c0 = 1 }}\n')


# 22 compartments (+ 2 accumulators): the exponential's products compiled for 24 padded active states (issue 11,
# fourth round); 11, 27, 35: the copy for any size
@pytest.mark.parametrize("n", [11, 22, 27, 35])
def test_exact_solver_above_8_states_equals_dense_expm(tmp_path, n):
    path = tmp_path / f"chain{n}.toml"
    path.write_text(_chain_model(n))
    model = pk.load_model(path)
    rng = np.random.default_rng(3)
    sub = pd.DataFrame({"ID": [1, 2]} | {f"K{i}": rng.uniform(0.05, 40.0, 2) for i in range(n)}
                       | {f"V{i}": rng.uniform(0.1, 20.0, 2) for i in range(n)})
    times = np.sort(np.concatenate([np.arange(0.0, 60.0, 1.0), [24.0], [7.3]]))     # a pre-dose duplicate
    reg = pk.Dose(5.0, "in").repeat(every=24, n=3)
    prob = prepare(model, reg, sub, times=times, solver="exact")
    out, st, counters = prob.solve()
    assert (st == 0).all()
    cm = prob.compiled
    for i in range(2):
        A = cm.rate_matrix(prob.P[i])
        y = np.zeros(A.shape[0])
        ref = np.empty((len(times), A.shape[0]))
        t = 0.0
        doses = [0.0, 24.0, 48.0]
        for k, tk in enumerate(times):
            y = scipy.linalg.expm(A * (tk - t)) @ y
            t = tk
            if tk in doses and not (k + 1 < len(times) and times[k + 1] == tk):   # a time listed twice: dose after the first
                y[0] += 5.0
            ref[k] = y
        assert A.shape[0] > 8 and counters[i, 4] >= 1
        np.testing.assert_allclose(out[i], ref[:, prob.save], rtol=0, atol=1e-12 * np.abs(ref).max())


def test_expm_passive_equals_scipy():
    """The exact solver's exponential of a rate matrix with passive states (exact_expm.expm_passive_z, the stepping
    layout) against scipy, and its scaled-step result X0 = exp(A dt / 2^s)."""
    rng = np.random.default_rng(7)
    n, na = 13, 10
    A = np.zeros((n, n))
    A[:, :na] = rng.uniform(0, 5, (n, na))
    for j in range(na):
        A[j, j] = -A[:na, j].sum() - rng.uniform(0, 3)
    A[na:, :na] *= 40.0                           # accumulator rows with large 1/V entries
    NA8 = 8 * -(-na // 8)
    NZ = NA8 + 8 * -(-(n - na) // 8)
    rows = np.r_[np.arange(na), NA8 + np.arange(n - na)]      # where state i sits in the stepping layout
    for dt in (0.01, 1.0, 7.5):
        Wz = np.zeros((9, NZ, NA8))
        X0 = np.empty((n, na))
        s = expm_passive_z(np.ascontiguousarray(A[:, :na] * dt), na, Wz, np.empty((na, na)),
                           np.empty(na, dtype=np.int64), X0, np.empty((8, na, na)))
        E = scipy.linalg.expm(A * dt)
        np.testing.assert_allclose(Wz[8][rows, :na], E[:, :na], rtol=1e-12, atol=1e-13 * np.abs(E).max())
        np.testing.assert_allclose(X0, scipy.linalg.expm(A * dt / 2 ** s)[:, :na], rtol=1e-12,
                                   atol=1e-13 * np.abs(E).max())
