"""Posterior draws of a calibration, computed once by a documented step and stored with the parameters (issue 10).

A calibration record (``parameters/calibration/<name>.toml``) gives the fitted values and the Gauss-Newton
covariance of their logarithms. Where the data hardly determine a value (CSF mixing clearances: standard errors of
log up to 25) that linearisation is meaningless, and a posterior must be sampled: every sample is a simulation of all
the calibration's data (~0.3 s for ``csf_transport``), so thousands of them take minutes. This module samples the
posterior once and stores the draws beside the record, ``parameters/calibration/<name>_posterior.csv``; the report,
:func:`pkcsf.clinical.uncertainty.route_comparison_interval` and populations (``Arm(uncertainty={"calibration":
name, "method": "posterior"})``) then read them instantly::

    python -m pkcsf.clinical.posterior csf_transport          # ~1-1.5 h on 2 cores (3,000 steps); writes the CSV

**The posterior** is the calibration's own objective as a likelihood, exp(-sum(log(pred/obs)^2) / (2 s^2)) with s^2
= cost / (n_data - n_free) of the fit, and a flat prior in log-parameters within the fit's bounds (the same as
:func:`pkcsf.clinical.uncertainty.calibration_draws`).

**Sampling** is Markov chain Monte Carlo with emcee's ensemble sampler (Foreman-Mackey, Hogg, Lang & Goodman, PASP
2013;125:306-312, doi 10.1086/670067). Its default affine-invariant stretch move (Goodman & Weare, Commun Appl Math
Comput Sci 2010;5:65-80, doi 10.2140/camcos.2010.5.65) is unaffected by linear correlations between parameters,
which the mixing clearances have (the record's correlations reach -0.7), but it explores the long curved ridges of
``csf_transport``'s posterior slowly (autocorrelation 98-141 steps in a 3,000-step chain); emcee's
differential-evolution moves (``moves="de"``, the default since 4 Dec 2026) reach 36-53 steps on the same chain
length (effective sample size 599 against 227). The walkers start in a small ball around the fitted
values; the first third of the chain is discarded as burn-in; the effective sample size is the number of kept
samples over the largest integrated autocorrelation time of any parameter (emcee's estimator), and is stored with
the draws: it says how many independent draws they are worth. emcee is an optional dependency (extra
``calibrate``; the test extra has it): reading stored draws needs nothing beyond pkcsf.

**Stale draws are refused**: the CSV's header holds the record's fitted values and cost; when the record is
refitted and they no longer match, :func:`stored_draws` raises and names the command to run again.
"""
from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from pkcsf.clinical.calibration import CALIBRATIONS, _predictor, _rows
from pkcsf.core.errors import ParameterError, check_choice
from pkcsf.core.paths import builtin_dir
from pkcsf.core.tomlio import tomllib

__all__ = ["sample_posterior", "write_posterior", "stored_draws", "posterior_path"]

#: walkers of the ensemble sampler (>= 2x the number of fitted values) and the share of the chain kept after burn-in
_WALKERS = 16
_KEEP = 2.0 / 3.0


def _record(name: str) -> dict:
    check_choice("calibration", name, sorted(CALIBRATIONS), ParameterError)
    path = builtin_dir("parameters") / "calibration" / f"{name}.toml"
    with open(path, "rb") as fh:
        rec = tomllib.load(fh)
    if "covariance" not in rec:
        raise ParameterError("calibration", name, f"its record {path.name} has no [covariance] (fewer data than "
                             "parameters, or written by an older version): re-run python -m pkcsf.clinical.calibration "
                             f"{name}")
    return rec


def _log_space(rec: dict) -> tuple[list, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A record's fitted values as the samplers see them: names, covariance of the logs, log values, log bounds."""
    names = list(rec["covariance"]["cov_names"])
    cov = np.asarray(rec["covariance"]["cov_log"], dtype=float)
    mu = np.log([rec["fitted"][k]["value"] for k in names])
    lo = np.log([rec["fitted"][k]["bounds"][0] for k in names])
    hi = np.log([rec["fitted"][k]["bounds"][1] for k in names])
    return names, cov, mu, lo, hi


def _log_likelihood(calibration: str, rec: dict, names: list) -> tuple[Callable, float]:
    """The calibration objective as a log-likelihood of log-values (in ``names`` order): -sum(log(pred/obs)^2) /
    (2 s^2), s^2 = cost / (n_data - n_free) of the fit; -inf when a prediction is not finite. Returns it and s^2.
    """
    cal = CALIBRATIONS[calibration]
    rows = _rows(cal)
    obs = rows["observed"].to_numpy(dtype=float)
    meta = rec["calibration"]
    s2 = float(meta["cost"]) / max(int(meta["n_data"]) - int(meta["n_free"]), 1)
    order = [f.label if sum(g.name == f.name for g in cal.free) > 1 else f.name for f in cal.free]
    idx = [names.index(k) for k in order]

    predict_all = _predictor(cal, rows)          # set-ups and file values read once for the whole run

    def loglik(x: np.ndarray) -> float:
        r = np.log(predict_all(np.exp(x[idx])) / obs)
        return -0.5 * float(np.sum(r ** 2)) / s2 if np.all(np.isfinite(r)) else -np.inf

    return loglik, s2


def posterior_path(calibration: str) -> Path:
    """Where the stored posterior draws of a calibration live (whether or not the file exists).

    Parameters
    ----------
    calibration : str
        Calibration name.

    Returns
    -------
    Path
        ``parameters/calibration/<calibration>_posterior.csv``.
    """
    return builtin_dir("parameters") / "calibration" / f"{calibration}_posterior.csv"


def sample_posterior(calibration: str, *, steps: int = 300, walkers: int = _WALKERS, seed: int = 1,
                     moves: str = "de", progress: bool = True, _target: Callable | None = None) -> dict:
    """MCMC sample of a calibration's posterior (see the module docstring).

    Parameters
    ----------
    calibration : str
        A calibration with a ``[covariance]`` in its record.
    steps, walkers : int
        Steps of the ensemble and its number of walkers: ``steps * walkers`` simulations of the calibration data.
    seed : int
        Random seed (same seed, same chain).
    moves : {"stretch", "de"}
        The ensemble's proposal: differential-evolution moves (``DEMove`` 80%, ``DESnookerMove`` 20%, emcee's
        suggestion for posteriors with ridges or several modes; the default), or emcee's affine-invariant stretch
        move.
    progress : bool
        Print one line per 10 steps on stderr.

    Returns
    -------
    dict
        ``names`` (fitted values, the record's order), ``x`` (log values of the kept samples, shape (M, p), walker
        by walker interleaved in step order), ``ess``, ``tau`` (integrated autocorrelation time per parameter, in
        steps), ``acceptance``, ``steps``, ``walkers``, ``moves``, ``seconds``, ``s2``.
    """
    try:
        import emcee
    except ImportError:  # pragma: no cover - the test extra has it
        raise ParameterError("posterior sampling", calibration, "needs the emcee package: pip install 'pkcsf[calibrate]' "
                             "(reading the stored draws does not)") from None
    check_choice("moves", moves, ["stretch", "de"], ParameterError)
    rec = _record(calibration)
    names, cov, mu, lo, hi = _log_space(rec)
    loglik, s2 = _log_likelihood(calibration, rec, names)
    p = len(names)
    if int(walkers) < 2 * p:
        raise ParameterError("walkers", walkers, f"must be at least twice the number of fitted values ({2 * p})")
    t0 = time.time()

    def log_prob(x: np.ndarray) -> float:
        if np.any(x < lo) or np.any(x > hi):
            return -np.inf                  # flat prior in log-parameters within the fit's bounds
        return float(_target(x)) if _target is not None else loglik(x)   # tests: a known density

    rng = np.random.default_rng(seed)
    # start: a small ball around the fit (a tenth of the linearised SD, capped at 0.2 in log), inside the bounds
    sd = np.minimum(0.1 * np.sqrt(np.clip(np.diag(cov), 1e-8, None)), 0.2)
    x0 = np.clip(mu + rng.standard_normal((int(walkers), p)) * sd, lo + 1e-9, hi - 1e-9)
    proposal = None if moves == "stretch" else [(emcee.moves.DEMove(), 0.8), (emcee.moves.DESnookerMove(), 0.2)]
    sampler = emcee.EnsembleSampler(int(walkers), p, log_prob, moves=proposal)
    sampler.random_state = np.random.RandomState(seed).get_state()
    state = x0
    every = 10
    for k in range(0, int(steps), every):
        state = sampler.run_mcmc(state, min(every, int(steps) - k), progress=False)
        if progress:
            print(f"posterior {calibration}: {k + every} of {steps} steps x {walkers} walkers "
                  f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    burn = int(round(int(steps) * (1.0 - _KEEP)))
    chain = sampler.get_chain(discard=burn)                  # (kept steps, walkers, p)
    tau = emcee.autocorr.integrated_time(chain, quiet=True)   # steps
    kept = chain.shape[0] * chain.shape[1]
    return {"names": names, "x": chain.reshape(-1, p), "ess": float(kept / max(float(np.max(tau)), 1.0)),
            "tau": [float(t) for t in tau], "acceptance": float(np.mean(sampler.acceptance_fraction)),
            "steps": int(steps), "walkers": int(walkers), "moves": moves, "burn_in": burn,
            "seconds": time.time() - t0, "s2": s2}


def _header(calibration: str) -> dict:
    rec = _record(calibration)
    return {"calibration": calibration, "cost": float(rec["calibration"]["cost"]),
            "fitted": {k: float(f["value"]) for k, f in rec["fitted"].items()}}


def _source(calibration: str) -> str:
    """The draws' source: calibrated, with where their data and those data's sources are."""
    return (f"calibrated: MCMC sample of the posterior of parameters/calibration/{calibration}.toml, whose [[data]] "
            "rows give each datum's source (DOI/PMID) and the observation files it comes from")


def write_posterior(calibration: str, n: int = 1000, *, steps: int = 300, walkers: int = _WALKERS, seed: int = 1,
                    moves: str = "de", path: str | Path | None = None, progress: bool = True,
                    _target: Callable | None = None) -> Path:
    """Sample the posterior (:func:`sample_posterior`) and store ``n`` of the kept samples as CSV.

    The kept samples are thinned evenly to ``n`` (all of them when there are fewer) and shuffled, so the first
    draws of the file already spread over the chain. The file's comment lines (``#``) record the calibration's
    fitted values and cost (checked when read), the method, chain length, seed, effective sample size and run
    time; the table has one column per fitted value (file units, as the record) and one row per draw. The file is
    written to a temporary name and renamed, so an interrupted run leaves nothing half-written.

    Parameters
    ----------
    calibration : str
        Calibration name.
    n : int
        Draws to store.
    steps, walkers, seed : int
        Passed to :func:`sample_posterior`.
    moves : {"stretch", "de"}
        Passed to :func:`sample_posterior`.
    path : str or Path, optional
        Where to write (default :func:`posterior_path`).
    progress : bool
        Print the chain's progress on stderr.

    Returns
    -------
    Path
        The file written.
    """
    s = sample_posterior(calibration, steps=steps, walkers=walkers, seed=seed, moves=moves, progress=progress,
                         _target=_target)
    X = s["x"]
    take = np.unique(np.linspace(0, len(X) - 1, min(int(n), len(X))).round().astype(int))
    X = X[take][np.random.default_rng(seed + 1).permutation(len(take))]
    draws = pd.DataFrame(np.exp(X), columns=s["names"])
    head = _header(calibration)
    how = ("affine-invariant stretch move" if s["moves"] == "stretch" else
           "differential-evolution moves (DEMove 0.8, DESnookerMove 0.2)")
    head.update({"source": _source(calibration),
                 "method": f"MCMC, emcee ensemble sampler with the {how}, flat prior in log within the bounds",
                 "steps": s["steps"], "walkers": s["walkers"], "moves": s["moves"], "burn_in_steps": s["burn_in"],
                 "seed": int(seed),
                 "ess": round(s["ess"], 1), "tau_steps": [round(t, 1) for t in s["tau"]],
                 "acceptance": round(s["acceptance"], 3), "n_draws": int(len(draws)),
                 "likelihood_s2": s["s2"], "seconds": round(s["seconds"], 1),
                 "chain_over_tau": round(float((s["steps"] - s["burn_in"]) / max(s["tau"])), 1),
                 "command": f"python -m pkcsf.clinical.posterior {calibration} --n {int(n)} --steps {s['steps']} "
                            f"--walkers {s['walkers']} --seed {int(seed)} --moves {s['moves']}",
                 "written": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    path = Path(path) if path is not None else posterior_path(calibration)
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write("# Posterior draws of a calibration; written by `python -m pkcsf.clinical.posterior`, do not edit.\n")
        fh.write("# " + json.dumps(head) + "\n")
        draws.to_csv(fh, index=False, float_format="%.6g")
    tmp.replace(path)
    return path


def stored_draws(calibration: str) -> pd.DataFrame | None:
    """The stored posterior draws of a calibration, or None when it has none.

    Parameters
    ----------
    calibration : str
        Calibration name.

    Returns
    -------
    DataFrame or None
        One column per fitted value, one row per draw; ``.attrs`` holds the header (``ess``, ``steps``, ...).

    Raises
    ------
    ParameterError
        The draws belong to other fitted values than the record's (the calibration was run again since).
    """
    path = posterior_path(calibration)
    if not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        fh.readline()
        head = json.loads(fh.readline()[1:])
        draws = pd.read_csv(fh)
    now = _header(calibration)
    same = (set(now["fitted"]) == set(head["fitted"])
            and all(math.isclose(now["fitted"][k], head["fitted"][k], rel_tol=1e-9) for k in now["fitted"])
            and math.isclose(now["cost"], head["cost"], rel_tol=1e-9))
    if not same:
        raise ParameterError("calibration", calibration,
                             f"has stored posterior draws ({path.name}) from an earlier fit; run `python -m "
                             f"pkcsf.clinical.posterior {calibration}` again")
    draws.attrs.update(head)
    return draws


def main(argv: list | None = None) -> int:
    """``python -m pkcsf.clinical.posterior NAME [--n N] [--steps S] [--walkers W] [--seed K]``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: the command line).

    Returns
    -------
    int
        Exit status.
    """
    import argparse

    ap = argparse.ArgumentParser(prog="python -m pkcsf.clinical.posterior",
                                 description="Sample a calibration's posterior and store the draws beside its record.")
    ap.add_argument("calibration")
    ap.add_argument("--n", type=int, default=1000, help="draws to store (default 1000)")
    ap.add_argument("--steps", type=int, default=3000,
                    help="steps of the ensemble (default 3000, the shipped csf_transport chain: ~1-1.5 h on 2 cores)")
    ap.add_argument("--walkers", type=int, default=_WALKERS, help=f"walkers (default {_WALKERS})")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--moves", choices=["stretch", "de"], default="de",
                    help="proposal of the ensemble: emcee's stretch move or differential-evolution moves")
    a = ap.parse_args(argv)
    path = write_posterior(a.calibration, a.n, steps=a.steps, walkers=a.walkers, seed=a.seed, moves=a.moves)
    d = stored_draws(a.calibration)
    print(f"{path}: {len(d)} draws, effective sample size {d.attrs['ess']}, acceptance {d.attrs['acceptance']}, "
          f"{d.attrs['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
