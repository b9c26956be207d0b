"""Alternative tested on 4 Dec 2026 and not adopted: two-phase (biexponential) release of cytarabine from DepoFoam.

Hypothesis: the published free-cytarabine half-lives after liposomal cytarabine disagree (US label 5.9-82.4 h,
Peyrl 2009/2014 in children 31-59 h, against the Swiss label 100-263 h and the DTC-101 series 130-277 h) because
release is biphasic (Chamberlain 1993: free ara-C initial 7.2 h, terminal 140 h; Kim 1993, rhesus: encapsulated
drug initial 14.6 h, terminal 156 h) and the studies fitted their half-lives over different windows.

The model is linear, so a particle population whose share ``fs`` releases with rate k2 and the rest with k1 is
exactly the weighted sum of two runs of the shipped model (K_REL = k1 and K_REL = k2, the same F_FREE_INIT).
This script scores every liposomal row of observations.csv and the held-out file over a grid of the two release
half-lives and the share, and prints the rows within 2-fold.
Run: ``python docs/alternatives/liposomal_two_phase_release.py`` (about 10 s).
"""
from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd

from pkcsf.clinical import validation as v


class TwoPhase:
    """A set-up whose particles release in two phases: ``(1 - fs)`` with k1 and ``fs`` with k2 (superposition)."""

    def __init__(self, st, k1: float, k2: float, fs: float) -> None:
        self._a = st.with_parameters(K_REL=k1)
        self._b = st.with_parameters(K_REL=k2)
        self._fs = fs

    def __getattr__(self, name):
        return getattr(self._a, name)

    def simulate(self, regimen, times, **kwargs):
        """Both runs, mixed: ``(1 - fs)`` of the particles release with k1 and ``fs`` with k2."""
        ra = self._a.simulate(regimen, times=times, **kwargs)
        rb = self._b.simulate(regimen, times=times, **kwargs)
        ra.amounts[...] = (1 - self._fs) * ra.amounts + self._fs * rb.amounts
        return ra


def score(rows: pd.DataFrame, t1: float | None, t2: float, fs: float) -> pd.Series:
    """Fold error of each row; ``t1=None`` is the shipped one-phase model."""
    out = {}
    for _, r in rows.iterrows():
        st = v._setup(r["drug"], "linear", False, v.physiology_for(r), v.age_for(r), None, v._pathology_name(r))
        if t1 is not None:
            st = TwoPhase(st, math.log(2) / t1, math.log(2) / t2, fs)
        out[r["id"]] = v.predict(r, st) / r["observed"]
    return pd.Series(out)


def main() -> None:
    """Score the shipped model and the grid; print the best five grid points."""
    obs = pd.concat([v.load_observations(), v.load_observations("observations_v3_candidates")], ignore_index=True)
    rows = obs[(obs["drug"] == "cytarabine_liposomal") & (obs["bound"] == "")]
    val = rows["role"].to_numpy() == "validation"
    shipped = score(rows, None, 0, 0)
    within = lambda fe: int(((fe >= 0.5) & (fe <= 2.0)).to_numpy()[val].sum())
    print(f"{int(val.sum())} liposomal validation rows (no bounds); shipped one-phase release (t1/2 60 h): "
          f"{within(shipped)} within 2-fold")
    best = []
    for t1, t2, fs in itertools.product([8, 15, 25, 40], [120, 160, 250], [0.1, 0.25, 0.4, 0.6]):
        fe = score(rows, t1, t2, fs)
        best.append((within(fe), t1, t2, fs, fe))
    best.sort(key=lambda b: -b[0])
    for n, t1, t2, fs, fe in best[:5]:
        peyrl = fe[[i for i in fe.index if i.startswith("lipo_peyrl14")]]
        dtc = fe[[i for i in fe.index if "chamberlain" in i and "t12" in i]]
        print(f"  t1/2 {t1:>3} h and {t2:>3} h, slow share {fs:.2f}: {n} within 2-fold; Peyrl 2014 fold "
              f"{peyrl.min():.2f}-{peyrl.max():.2f}; DTC-101 half-lives {dtc.min():.2f}-{dtc.max():.2f}")


if __name__ == "__main__":
    np.seterr(divide="ignore")
    main()
