"""No module of the package grows past a size a reader can hold (issue 8): a file above LIMIT lines is split
along its seams, unless one algorithm needs the length; each such exception is named here with its reason."""
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "pkcsf"

LIMIT = 650

# path relative to pkcsf/ -> why it may be longer; remove an entry when its file is split
ALLOWED = {
    "solvers/exact.py": "one algorithm: the exact solver's compiled Numba kernels (matrix-exponential "
                        "propagation between events, Van Loan's block form for infusions, cached step lengths)",
}


def _lines(path: Path) -> int:
    return len(path.read_text().splitlines())


def test_no_module_above_the_limit():
    big = {str(p.relative_to(PKG)): _lines(p) for p in PKG.rglob("*.py") if _lines(p) > LIMIT}
    over = {k: n for k, n in big.items() if k not in ALLOWED}
    assert not over, (f"modules above {LIMIT} lines (split them along their seams, or name the one algorithm "
                      f"that needs the length in ALLOWED): " + ", ".join(f"{k} ({n})" for k, n in sorted(over.items())))


def test_the_allow_list_names_only_long_files():
    # an entry whose file was split or shrank is stale: the exception must go with it
    stale = [k for k in ALLOWED if not (PKG / k).exists() or _lines(PKG / k) <= LIMIT]
    assert not stale, f"ALLOWED names files that no longer need it: {stale}"
