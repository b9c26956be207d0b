"""What ``import pkcsf`` loads (issue 11: import <= 0.8 s): heavy modules only on first use."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_import_pkcsf_leaves_scipy_stats_and_matplotlib_for_later():
    code = ("import sys, pkcsf; heavy = [m for m in ('scipy.stats', 'matplotlib') if m in sys.modules]; "
            "print(','.join(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"imported by 'import pkcsf': {out.stdout.strip()}"
