"""``pkcsf escalate`` refusals name the option the user typed (issue 9), and the API names its keyword.

Every refusal is one line ``pkcsf: error: OPTION: got VALUE; RULE`` with exit code 2: a huge ``--subjects``
is refused as ``--subjects`` (not the ``band_subjects`` of the scenario underneath), a huge ``--trials`` as
``--trials`` (not the trial runner's ``n_trials``), a bad schedule as ``--schedule`` (not "regimen text").
To extend: add a row to ``CASES`` (arguments after the drug, the option expected, the value expected).
"""
from __future__ import annotations

import re

import pytest

from pkcsf.cli import main
from pkcsf.core.errors import PkcsfError

FAST = ["--schedule", "once", "--subjects", "4", "--trials", "20", "--quiet"]
INTERNAL = ("band_subjects", "n_trials", "regimen text", "BOIN.", "CRM.", "LogisticExposureToxicity", "p_dlt")


def cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def refusal(capsys, argv) -> str:
    code, out, err = cli(capsys, "escalate", "pemetrexed", *argv)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2, (code, out, err)
    assert len(lines) == 1 and lines[0].startswith("pkcsf: error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture
def eight_gib(monkeypatch):
    """The same available memory on every machine (the size refusals depend on it)."""
    import pkcsf.clinical.resources as RS
    import pkcsf.trials.runner as TR

    monkeypatch.setattr(RS, "available_memory", lambda: 8 * 2**30)
    monkeypatch.setattr(TR, "available_memory", lambda: 8 * 2**30)


# (arguments after the drug, option named, value shown)
CASES = [
    # every pool patient's profile is kept for his own neutropenia: 20 million do not fit in 8 GiB
    (["--doses", "10,20", "--schedule", "once", "--subjects", "20000000", "--trials", "20", "--dlt", "neutropenia"],
     "--subjects", "20000000"),
    (["--doses", "10,20", "--schedule", "once", "--subjects", "3", "--trials", "1000000000000"], "--trials",
     "1000000000000"),
    (["--doses", "10,20", "--schedule", "every blah"], "--schedule", "every blah"),
    (["--doses", "20,10", *FAST], "--doses", "10"),
    (["--doses", "10,20", "--exposure", "plasma:foo", *FAST], "--exposure", "foo"),
    (["--doses", "10,20", "--exposure", "cortex:auc", *FAST], "--exposure", "cortex"),
    (["--doses", "10,20", "--efficacy", "plasma:bogus >= 1 umol/L", *FAST], "--efficacy", "bogus"),
    (["--doses", "10,20", "--iiv", "CL=9", *FAST], "--iiv", "9"),
    (["--doses", "10,20", "--iiv", "XYZ=0.3", *FAST], "--iiv", "XYZ"),
    (["--doses", "10,20", "--unit", "mg/dl", *FAST], "--unit", "mg/dl"),
    (["--doses", "10,20", "--days", "5000", *FAST], "--days", "5000"),
    (["--doses", "10,20", "--design", "foo", *FAST], "--design", "foo"),
    (["--doses", "10,20", "--design", "3+3", "--target-dlt", "0.25", *FAST], "--target-dlt", "0.25"),
    (["--doses", "10,20", "--design", "crm", "--max-n", "100000", *FAST], "--max-n", "100000"),
    (["--doses", "10,20", "--e50", "5", "--mtd-dose", "10", *FAST], "--e50", "5"),
    (["--doses", "10,20", "--dlt", "neutropenia", "--mtd-dose", "10", *FAST], "--mtd-dose", "given"),
    (["--doses", "10,20", "--dlt", "link", "--mtd-dose", "0", *FAST], "--mtd-dose", "0"),
    (["--doses", "10,20", "--route", "nasal", *FAST], "--route", "nasal"),
    (["--doses", "10,20", "--variant", "foo", *FAST], "--variant", "foo"),
]


@pytest.mark.parametrize("argv, option, value", CASES, ids=[c[1] + " " + c[2][:12] for c in CASES])
def test_refusal_names_the_option_typed(capsys, eight_gib, argv, option, value):
    line = refusal(capsys, argv)
    field = re.match(r"pkcsf: error: (.*?): got ", line)
    assert field, line
    assert field.group(1).startswith(option), line
    assert value in line, line
    for word in INTERNAL:
        assert word not in line, line


def test_unknown_drug_names_the_argument(capsys):
    code, out, err = cli(capsys, "escalate", "aspirinx", "--doses", "10", *FAST)
    assert code == 2 and err.strip().startswith("pkcsf: error: DRUG: got 'aspirinx'"), err


# ------------------------------------------------------------------ the API names its keywords
def test_api_names_its_keywords(eight_gib):
    from pkcsf.clinical.escalation import simulate_escalation

    kw = dict(schedule="once", trials=20, progress=False)
    with pytest.raises(PkcsfError) as e:
        simulate_escalation("pemetrexed", [10, 20], subjects=20_000_000, dlt="neutropenia", **kw)
    assert e.value.field == "subjects" and e.value.value == 20_000_000, str(e.value)
    assert "band_subjects" not in str(e.value)
    with pytest.raises(PkcsfError) as e:
        simulate_escalation("pemetrexed", [10, 20], subjects=3, schedule="once", trials=10**12, progress=False)
    assert e.value.field == "trials" and "n_trials" not in str(e.value), str(e.value)
    with pytest.raises(PkcsfError) as e:
        simulate_escalation("pemetrexed", [10, 20], subjects=3, schedule="every blah", trials=20, progress=False)
    assert e.value.field == "schedule" and "every blah" in str(e.value), str(e.value)


# ------------------------------------------------------------------ pkcsf run names the file's key or the option
RUN = """\
name = "t"
[population]
subjects = 20000000
[readouts]
band_subjects = 20000000
groups = ["plasma"]
[[arms]]
name = "a"
drug = "methotrexate"
regimen = "12 mg lumbar once"
"""


@pytest.mark.parametrize("text, extra, named", [
    (RUN, [], "readouts.band_subjects"),
    (RUN.replace("band_subjects = 20000000\n", ""), [], "population.subjects"),
    (RUN.replace("band_subjects = 20000000\n", ""), ["--subjects", "100000000"], "--subjects"),
])
def test_run_refusal_names_the_file_key_or_the_option(capsys, tmp_path, eight_gib, text, extra, named):
    p = tmp_path / "s.toml"
    p.write_text(text.replace("20000000", "100000000") if named == "population.subjects" else text)
    code, out, err = cli(capsys, "run", p, "--out", tmp_path / "o", "--quiet", *extra)
    assert code == 2 and err.strip().startswith(f"pkcsf: error: {named}: got "), err
    assert len(err.strip().splitlines()) == 1 and not (tmp_path / "o").exists()



def test_boin_target_above_what_the_design_allows_is_one_line(capsys):
    """A BOIN target DLT rate >= 1/1.4 makes the default p_tox reach 1 (was a 'math domain error' traceback)."""
    from pkcsf.trials.boin import boin_boundaries
    from pkcsf.trials.common import TrialError

    with pytest.raises(TrialError, match="0.714"):
        boin_boundaries(0.9)
    line = refusal(capsys, ["--doses", "5,10", "--design", "boin", "--target-dlt", "0.9", *FAST])
    assert "--target-dlt" in line and "0.9" in line


def test_huge_exposure_link_pool_is_refused_before_running(capsys, eight_gib):
    """20 million pool subjects with the exposure-link DLT passed the memory check (read-out rows only) and were
    killed for memory: the sampled parameter table now counts too."""
    line = refusal(capsys, ["--doses", "10,20", "--schedule", "once", "--subjects", "20000000", "--trials", "20",
                            "--dlt", "link"])
    assert "--subjects" in line and "20000000" in line


class _Simulated(Exception):
    """Raised by the stand-in for the exposure-pool simulation."""


@pytest.fixture
def no_pools(monkeypatch):
    """Any exposure-pool simulation raises ``_Simulated``: a refusal seen instead came before it."""
    import pkcsf.clinical.scenario as SC

    def run(*args, **kwargs):
        raise _Simulated("an exposure pool was simulated")

    monkeypatch.setattr(SC, "run", run)


def test_huge_trials_is_refused_before_any_pool_is_simulated(capsys, eight_gib, no_pools):
    """``--trials HUGE`` was refused by the trial runner, after minutes of exposure pools (issue 9)."""
    from pkcsf.clinical.escalation import simulate_escalation

    kw = dict(subjects=3, schedule="once", progress=False)
    with pytest.raises(_Simulated):                # the stand-in is the one simulate_escalation calls
        simulate_escalation("pemetrexed", [10, 20], trials=20, **kw)
    for design in ("3+3", "boin12"):                # boin12 also keeps responder counts
        with pytest.raises(PkcsfError) as e:
            simulate_escalation("pemetrexed", [10, 20], trials=10**12, design=design, **kw)
        assert e.value.field == "trials" and e.value.value == 10**12, str(e.value)
        assert "memory" in str(e.value) and "n_trials" not in str(e.value)
    line = refusal(capsys, ["--doses", "10,20", "--schedule", "once", "--subjects", "3", "--trials", "1000000000000"])
    assert line.startswith("pkcsf: error: --trials: got 1000000000000") and "memory" in line, line
