"""Shared test helpers."""
from __future__ import annotations

import numpy as np
import pytest

from pkcsf.engine import simulate as engine_simulate


def _inject(monkeypatch, fail: dict, *, fused: bool = True) -> None:
    """Subjects ``fail`` (id -> Status) come back failed with a partial profile (zeros from half-way on, as a
    solver that stopped would leave it) on the full-profile path (scenarios with targets) and, with ``fused``,
    on the fused read-out path (scenarios without targets)."""
    solve = engine_simulate.Problem.solve

    def faulty(self, rows=slice(None), **kw):
        out, status, counters = solve(self, rows, **kw)
        for j, sid in enumerate(np.asarray(self.ids)[rows].tolist()):
            if self.n_subjects > 1 and sid in fail:
                status[j] = int(fail[sid])
                out[j, out.shape[1] // 2:] = 0.0
        return out, status, counters

    monkeypatch.setattr(engine_simulate.Problem, "solve", faulty)
    if fused:
        from pkcsf.clinical import scenario_reduce

        fused_solve = scenario_reduce.solve_and_read_out

        def faulty_fused(prob, *args):
            r, status, band = fused_solve(prob, *args)
            status = np.array(status)
            for j, sid in enumerate(np.asarray(prob.ids).tolist()):
                if sid in fail:
                    status[j] = int(fail[sid])
            return r, status, band

        monkeypatch.setattr(scenario_reduce, "solve_and_read_out", faulty_fused)


@pytest.fixture
def inject_failures():
    """Fault injection: ``inject_failures(monkeypatch, {id: Status}, fused=True)`` (see :func:`_inject`)."""
    return _inject
