"""The report's fast CSV writer (pkcsf.report.build.write_csv) writes what pandas' to_csv writes, byte for byte."""
import numpy as np
import pandas as pd

from pkcsf.report.build import write_csv


def test_same_bytes_as_pandas(tmp_path):
    rng = np.random.default_rng(3)
    n = 500
    x = rng.lognormal(0.0, 4.0, n) * rng.choice([1.0, -1.0], n)
    x[::37] = np.nan
    x[5], x[6], x[7], x[8] = np.inf, -np.inf, -0.0, 0.0
    df = pd.DataFrame({
        "scenario": pd.array(rng.choice(["a", "b, with comma", 'say "x"', "line\nbreak", ""], n), dtype="string"),
        "time": np.round(rng.uniform(0, 2000, n) * 4) / 4,
        "p5": x,
        "count": np.arange(n),
        "flag": rng.random(n) > 0.5,
        "group": pd.Categorical(rng.choice(["plasma", "lumbar"], n)),
        "unit": pd.array(["umol/L"] * (n - 3) + [None] * 3, dtype="string"),
        "obj": np.array([None, "x", 1.5] * (n // 3) + ["y"] * (n - 3 * (n // 3)), dtype=object),
    })
    for fmt in ("%.4g", "%.12g"):
        df.to_csv(tmp_path / "pandas.csv", index=False, float_format=fmt)
        write_csv(df, tmp_path / "fast.csv", float_format=fmt)
        assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()
