"""Stored posterior draws of a calibration (pkcsf.clinical.posterior; issue 10, item 5)."""
import json

import numpy as np
import pytest

from pkcsf.clinical import posterior
from pkcsf.core.errors import ParameterError


def test_shipped_posterior_matches_its_calibration_record():
    """The default model's calibration ships its sampled posterior; the draws belong to the record's current fit
    (a refit without re-sampling fails here), lie within the fit's bounds, and say how many draws they are worth."""
    from pkcsf.clinical.uncertainty import _record

    d = posterior.stored_draws("csf_transport")
    assert d is not None and len(d) >= 200
    rec = _record("csf_transport")
    for k, f in rec["fitted"].items():
        lo, hi = f["bounds"]
        assert ((d[k] >= lo * (1 - 1e-5)) & (d[k] <= hi * (1 + 1e-5))).all(), k
    assert d.attrs["ess"] >= 50 and d.attrs["n_draws"] == len(d)
    assert d.attrs["source"].startswith("calibrated: ") and "csf_transport.toml" in d.attrs["source"]
    assert len(d.drop_duplicates()) >= 0.3 * len(d)          # a chain repeats a state when a move is refused


def test_stale_draws_are_refused(tmp_path, monkeypatch):
    """Draws written for other fitted values than the record's are refused, naming the command to run."""
    src = posterior.posterior_path("csf_transport")
    lines = src.read_text(encoding="utf-8").splitlines(keepends=True)
    head = json.loads(lines[1][1:])
    head["fitted"]["Q_MIX_VENT"] *= 1.5
    lines[1] = "# " + json.dumps(head) + "\n"
    fake = tmp_path / "csf_transport_posterior.csv"
    fake.write_text("".join(lines), encoding="utf-8")
    monkeypatch.setattr(posterior, "posterior_path", lambda name: fake)
    with pytest.raises(ParameterError, match="pkcsf.clinical.posterior csf_transport"):
        posterior.stored_draws("csf_transport")


def test_calibration_draws_use_the_stored_posterior():
    from pkcsf.clinical.uncertainty import _record, calibration_draws

    rec = _record("csf_transport")
    a = calibration_draws("csf_transport", n=20, seed=4, method="posterior")
    b = calibration_draws("csf_transport", n=20, seed=4, method="posterior")
    assert a.attrs["stored"] and a.equals(b) and len(a) == 21
    for k, f in rec["fitted"].items():
        assert a[k].iloc[0] == pytest.approx(f["value"], rel=1e-12)        # row 0: the fitted values
    assert not a.iloc[1:].equals(calibration_draws("csf_transport", n=20, seed=5, method="posterior").iloc[1:])


def test_sampler_recovers_a_known_density_and_writes_atomically(tmp_path):
    """On a known density (a normal in the log-parameters, inside the bounds) the sampler's kept samples have its
    mean and spread; the file is written whole (no temporary left) with its header."""
    from pkcsf.clinical.uncertainty import _record

    rec = _record("csf_transport")
    mu = np.log([f["value"] for f in rec["fitted"].values()])

    def target(x):
        return -0.5 * float(np.sum(((x - mu) / 0.5) ** 2))

    s = posterior.sample_posterior("csf_transport", steps=1500, seed=2, moves="stretch", progress=False,
                                   _target=target)
    assert np.allclose(s["x"].mean(axis=0), mu, atol=0.2) and np.allclose(s["x"].std(axis=0), 0.5, rtol=0.3)
    assert 20 < s["ess"] < len(s["x"]) and 0.2 < s["acceptance"] < 0.8
    out = posterior.write_posterior("csf_transport", 30, steps=30, seed=2, path=tmp_path / "p.csv", progress=False,
                                    _target=target)
    assert out.exists() and not list(tmp_path.glob("*.tmp"))
    body = out.read_text(encoding="utf-8").splitlines()
    head = json.loads(body[1][1:])
    assert body[0].startswith("#") and head["calibration"] == "csf_transport"
    assert len(body) == 2 + 1 + 30
    # the header names the exact command that wrote the file and how long the chain was in autocorrelation times
    assert head["command"].endswith("csf_transport --n 30 --steps 30 --walkers 16 --seed 2 --moves de")
    assert "differential-evolution" in head["method"]
    assert head["chain_over_tau"] > 0


def test_population_can_draw_from_the_stored_posterior():
    """A population arm may take the default calibration's uncertainty with method 'posterior' (the linearised
    draws stay refused: their standard errors are meaningless)."""
    from pkcsf.clinical import cns
    from pkcsf.clinical.uncertainty import check_uncertainty, uncertainty_effects

    with pytest.raises(ParameterError, match="hardly determine"):
        check_uncertainty("csf_transport", "arms['a'].uncertainty")
    spec = check_uncertainty({"calibration": "csf_transport", "method": "posterior", "pool": 50},
                             "arms['a'].uncertainty")
    keys, f = uncertainty_effects(cns.setup("methotrexate"), spec, seed=3)
    assert "Q_MIX_VENT" in keys and f.shape == (50, len(keys)) and np.all(f > 0)


def test_differential_evolution_moves_sample_a_known_density():
    """``moves="de"`` (emcee's DEMove + DESnookerMove) samples the same known density as the stretch move."""
    from pkcsf.clinical.uncertainty import _record

    mu = np.log([f["value"] for f in _record("csf_transport")["fitted"].values()])

    def target(x):
        return -0.5 * float(np.sum(((x - mu) / 0.5) ** 2))

    s = posterior.sample_posterior("csf_transport", steps=1500, seed=3, moves="de", progress=False, _target=target)
    assert s["moves"] == "de"
    assert np.allclose(s["x"].mean(axis=0), mu, atol=0.2) and np.allclose(s["x"].std(axis=0), 0.5, rtol=0.3)
    with pytest.raises(ParameterError, match="moves"):
        posterior.sample_posterior("csf_transport", steps=10, moves="gibbs", progress=False, _target=target)
