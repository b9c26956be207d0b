"""Bad input gets one clear error, never a raw exception: bad model files, bad CLI input, bad API input,
and resource bombs (work or memory a file asks for that cannot fit).

Every case is a row of a parametrize list: add a row to extend the corpus. A case passes when the
error is a :class:`~pkcsf.PkcsfError` (CLI: exit 2 and one line ``pkcsf: error: ...``) whose message
contains every expected word (the field, the value, the rule).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf.cli import main
from pkcsf.core.errors import PkcsfError

BASE_MODEL = """\
[model]
name = "m"
[parameters]
CL = { unit = "L/h" }
V = { unit = "L" }
[[compartments]]
name = "central"
volume = "V"
[[transfers]]
type = "flow"
from = "central"
CL = "CL"
[[sites]]
name = "iv"
targets = "central"
"""
PARAMS = {"CL": 1.0, "V": 2.0}


def run_model(tmp_path, text, *, encoding="utf-8"):
    p = tmp_path / "m.toml"
    p.write_bytes(text.encode(encoding))
    m = pk.load_model(p)
    return pk.simulate(m, pk.Dose("1 mg", "iv"), PARAMS, times=np.array([0.0, 1.0]))


def expect_error(fn, *words):
    with pytest.raises(PkcsfError) as e:
        fn()
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    assert "np.float64" not in msg and "\n" not in msg, msg
    return msg


def cli_error(capsys, argv, *words):
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [ln for ln in err.strip().splitlines() if "once for this machine" not in ln]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("pkcsf: error: "), err
    assert "Traceback" not in err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


# ------------------------------------------------------------------ model files
MODEL_CASES = [
    # (id, how the base model is changed, words the error must contain)
    ("derived table without expr", BASE_MODEL + '[derived]\nA = { unit = "L" }\n', ["derived.A", "'expr'"]),
    ("text default", BASE_MODEL.replace('CL = { unit = "L/h" }', 'CL = { unit = "L/h", default = "ten" }'),
     ["parameters.CL.default", "'ten'", "number"]),
    ("nan default", BASE_MODEL.replace('CL = { unit = "L/h" }', 'CL = { unit = "L/h", default = nan }'),
     ["parameters.CL.default", "got nan", "finite"]),
    ("overflowing derived", BASE_MODEL + '[derived]\nA = "10**10**10"\n', ["derived.A", "10**10**10", "inf"]),
    ("overflowing volume", BASE_MODEL.replace('volume = "V"', 'volume = "10**10**10"'),
     ["compartments[0].volume", "inf"]),
    ("huge integer", BASE_MODEL.replace('volume = "V"', 'volume = "V * 10**400"'), ["volume", "inf"]),
    ("division by zero", BASE_MODEL + '[derived]\nA = "CL * (1/0)"\n', ["derived.A", "1 / 0"]),
    ("parameters inside [model]", BASE_MODEL.replace('[parameters]\nCL = { unit = "L/h" }\nV = { unit = "L" }\n',
                                                     'parameters = ["CL", "V"]\n'),
     ["model.parameters", "unknown key", "[parameters] table"]),
    ("parameters as an array", BASE_MODEL.replace('[model]\nname = "m"\n[parameters]\nCL = { unit = "L/h" }\n'
                                                  'V = { unit = "L" }\n', 'parameters = ["CL", "V"]\n[model]\nname = "m"\n'),
     ["parameters", "must be a table"]),
    ("self-extending model", '[model]\nname = "selfx"\nextends = "selfx"\n', ["model.extends", "'selfx'", "itself"]),
    ("extends an unknown model", '[model]\nname = "x"\nextends = "nosuchmodel"\n', ["model.extends", "nosuchmodel"]),
    ("expression nested 20,000 deep", BASE_MODEL + '[derived]\nA = "' + "-" * 5000 + 'CL"\n', ["derived.A", "nested"]),
    ("expression of 200,000 terms", BASE_MODEL + '[derived]\nA = "' + "+".join(["CL"] * 200_000) + '"\n',
     ["derived.A", "characters"]),
    ("expression of 3,000 terms", BASE_MODEL + '[derived]\nA = "' + "+".join(["CL"] * 3_000) + '"\n',
     ["derived.A"]),
    ("TOML nested 20,000 deep", BASE_MODEL + "deep = " + "[" * 20_000 + "]" * 20_000 + "\n",
     ["m.toml", "nested too deeply"]),
]


@pytest.mark.parametrize("text, words", [c[1:] for c in MODEL_CASES], ids=[c[0] for c in MODEL_CASES])
def test_bad_model_files(tmp_path, text, words):
    expect_error(lambda: run_model(tmp_path, text), *words)


def test_model_file_with_a_byte_order_mark_is_read(tmp_path):
    res = run_model(tmp_path, "\ufeff" + BASE_MODEL)
    assert res is not None


# ------------------------------------------------------------------ API input
API_CASES = [
    ("NONMEM AMT negative", lambda: pk.from_nonmem(pd.DataFrame(
        {"ID": [1], "TIME": [0.0], "AMT": [-5.0], "CMT": ["iv"], "EVID": [1]})), ["AMT", "-5.0"]),
    ("NONMEM AMT text", lambda: pk.from_nonmem(pd.DataFrame(
        {"ID": [1], "TIME": [0.0], "AMT": ["ten"], "CMT": ["iv"], "EVID": [1]})), ["AMT", "'ten'"]),
    ("NONMEM EVID NaN", lambda: pk.from_nonmem(pd.DataFrame(
        {"ID": [1], "TIME": [0.0], "AMT": [1.0], "CMT": ["iv"], "EVID": [math.nan]})), ["EVID", "nan"]),
    ("error shows NaN plainly", lambda: pk.Dose(np.float64("nan"), "iv"), ["got nan"]),
]


@pytest.mark.parametrize("fn, words", [c[1:] for c in API_CASES], ids=[c[0] for c in API_CASES])
def test_bad_api_input(fn, words):
    expect_error(fn, *words)


def test_empty_choice_list_says_so():
    from pkcsf.core.errors import check_choice

    msg = expect_error(lambda: check_choice("x", "a", []), "x", "'a'")
    assert "allowed: " not in msg


# ------------------------------------------------------------------ CLI input
ESC = ["escalate", "pemetrexed", "--doses", "10,20", "--schedule", "once", "--subjects", "3", "--trials", "5"]
CLI_CASES = [
    ("--e50 nan", ESC + ["--e50", "nan"], ["--e50", "finite"]),
    ("--e50 negative", ESC + ["--e50", "-1"], ["--e50", "> 0"]),
    ("--target-dlt 2 (boin)", ESC + ["--design", "boin", "--target-dlt", "2"], ["--target-dlt", "between 0 and 1"]),
    ("--target-dlt nan (crm)", ESC + ["--design", "crm", "--target-dlt", "nan"], ["--target-dlt"]),
    ("--target-dlt with 3+3", ESC + ["--target-dlt", "0.3"], ["--target-dlt", "boin and crm"]),
    ("--p-at-mtd 1.5", ESC + ["--p-at-mtd", "1.5"], ["--p-at-mtd"]),
    ("--slope inf", ESC + ["--slope", "inf"], ["--slope", "finite"]),
]


@pytest.mark.parametrize("argv, words", [c[1:] for c in CLI_CASES], ids=[c[0] for c in CLI_CASES])
def test_bad_cli_input(capsys, argv, words):
    line = cli_error(capsys, argv, *words)
    assert "LogisticExposureToxicity" not in line and "BOIN." not in line and "CRM." not in line


# ------------------------------------------------------------------ resource bombs
def _count_dose_copies(monkeypatch):
    """Total doses handed to Regimen() during a call: linear work keeps it proportional to the doses."""
    from pkcsf.engine.dosing import Regimen

    real, seen = Regimen.__init__, [0]

    def counting(self, doses=(), **kw):
        real(self, doses, **kw)
        seen[0] += len(self.doses)

    monkeypatch.setattr(Regimen, "__init__", counting)
    return seen


@pytest.mark.parametrize("joiner, item", [(" + ", "from day {i}, 12 mg lumbar once"),
                                          (", then ", "12 mg lumbar daily x 1")])
def test_a_10000_item_regimen_text_parses_in_linear_work(monkeypatch, joiner, item):
    from pkcsf.clinical.regimens import parse_regimen

    n = 10_000
    text = joiner.join(item.format(i=i + 1) for i in range(n))
    seen = _count_dose_copies(monkeypatch)
    reg = parse_regimen(text, "methotrexate")
    assert len(reg.doses) == n and reg.end == pytest.approx(24.0 * n - (24.0 if "once" in item else 0.0))
    assert seen[0] <= 10 * n, f"{seen[0]} doses copied for {n} doses: quadratic"


def test_linear_fold_equals_regimen_then_and_plus():
    # _Fold must give exactly what Regimen.then / + give, on random phases (rests, labels, II/ADDL, origins)
    from pkcsf.clinical.regimen_text import _Fold
    from pkcsf.engine.dosing import Dose, Regimen

    rng = np.random.default_rng(3)
    for _ in range(300):
        regs = []
        for _ in range(rng.integers(1, 6)):
            kind = rng.integers(0, 3)
            if kind == 0:
                regs.append(Regimen([], end=float(rng.integers(1, 50)), origin=0.0))
            else:
                doses = [Dose(1.0, "iv", float(rng.integers(0, 100)), ii=float(rng.integers(1, 10)) if kind == 2 else 0.0,
                              addl=int(rng.integers(1, 4)) if kind == 2 else 0) for _ in range(rng.integers(1, 4))]
                regs.append(Regimen(doses, end=None if rng.random() < 0.5 else float(rng.integers(100, 200)),
                                    origin=None if rng.random() < 0.5 else float(rng.integers(0, 5)),
                                    label=str(rng.integers(0, 3)) if rng.random() < 0.5 else ""))
        for op in ("then", "add"):
            ref, fold = None, _Fold()
            for r in regs:
                if op == "then":
                    ref = r if ref is None else ref.then(r)
                    fold.then(r)
                else:
                    ref = r if ref is None else ref + r
                    fold.add(r)
            got = fold.regimen()
            assert got.doses == ref.doses and got.end == ref.end and got.origin == ref.origin, op
            assert got.label == ref.label and got._end == ref._end and got._origin == ref._origin, op


SCENARIO = """\
drug = "methotrexate"
[population]
subjects = 3
[readouts]
groups = ["plasma", "lumbar"]
[[arms]]
name = "lumbar"
regimen = "12 mg lumbar once"
[outputs]
figures = false
"""
BOMBS = [
    # (id, (old, new) edit of SCENARIO, words; the run is refused before anything is simulated)
    ("a billion subjects", ("subjects = 3", "subjects = 1000000000"), ["subjects", "1000000000", "memory"]),
    ("dt of 1e-9 h", ('drug = "methotrexate"', 'drug = "methotrexate"\ndt = "1e-9 h"'), ["dt", "output times"]),
    ("dt of 1e-4 h over 10 years", ('drug = "methotrexate"', 'drug = "methotrexate"\ndt = "0.0001 h"\ndays = 3650'),
     ["dt", "output times", "3650 days"]),
    ("20 million band subjects", ("subjects = 3", "subjects = 20000000"), ["band_subjects", "memory"]),
]


@pytest.mark.parametrize("edit, words", [c[1:] for c in BOMBS], ids=[c[0] for c in BOMBS])
def test_resource_bombs_are_refused_before_running(tmp_path, monkeypatch, edit, words):
    from dataclasses import replace

    import pkcsf.clinical.resources as RS
    from pkcsf.clinical.scenario_file import load_scenario

    monkeypatch.setattr(RS, "available_memory", lambda: 8 * 2**30)       # the same answer on every machine
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO.replace(*edit))
    scn, _ = load_scenario(p)
    if "band" in " ".join(words) or scn.subjects == 20000000:
        scn = replace(scn, band_subjects=20000000)
    called = []
    monkeypatch.setattr("pkcsf.clinical.scenario._run_arm", lambda *a, **k: called.append(1))
    expect_error(lambda: pk.run(scn, progress=False), *words)
    assert not called, "refused before any arm ran"


def test_resource_estimate_names_band_subjects(monkeypatch):
    import pkcsf.clinical.resources as RS

    parts = RS.estimate_bytes(subjects=20_000_000, times=700, groups=2, states=20, band_subjects=20_000_000,
                              chunk=4096)
    assert max(parts, key=parts.get) == "population bands" and parts["population bands"] > 100 * 2**30


def test_scenario_file_with_a_byte_order_mark_is_read(tmp_path):
    from pkcsf.clinical.scenario_file import load_scenario

    p = tmp_path / "s.toml"
    p.write_bytes(("\ufeff" + SCENARIO).encode("utf-8"))
    scn, _ = load_scenario(p)
    assert scn.subjects == 3


@pytest.mark.parametrize("text, words", [
    ("deep = " + "[" * 20_000 + "]" * 20_000 + "\n" + SCENARIO, ["s.toml", "too deeply"]),
    ("x = " + "{ a = " * 5_000 + "1" + " }" * 5_000 + "\n" + SCENARIO, ["s.toml", "too deeply"]),
], ids=["arrays 20,000 deep", "inline tables 5,000 deep"])
def test_deeply_nested_scenario_files(tmp_path, text, words):
    from pkcsf.clinical.scenario_file import load_scenario

    p = tmp_path / "s.toml"
    p.write_text(text)
    expect_error(lambda: load_scenario(p), *words)


# ------------------------------------------------------------------ one time-unit table, engine grids, dt
@pytest.mark.parametrize("text, hours", [("1 month", 672.0), ("6 months", 6 * 672.0), ("2 weeks", 336.0),
                                         ("1 mo", 672.0), ("90 min", 1.5)])
def test_one_time_unit_table(text, hours):
    # a month is 4 weeks everywhere a duration is read: quantities, regimen text, calendars
    from pkcsf.clinical.calendars import _hours
    from pkcsf.core.units import TIME_UNITS, parse_quantity

    assert parse_quantity(text, "time") == pytest.approx(hours)
    assert _hours(text, "every") == pytest.approx(hours)
    assert TIME_UNITS["month"] == 672.0


def test_monthly_regimen_and_age_in_months():
    from pkcsf.clinical.regimens import parse_regimen
    from pkcsf.core.units import parse_quantity

    reg = parse_regimen("12 mg ommaya monthly x 6 months", "methotrexate")
    assert len(reg) == 6 and reg.end == 6 * 672.0
    assert parse_quantity("18 months", "age") == pytest.approx(1.5), "an age in months is 1/12 year (growth charts)"


def test_metrics_accept_the_engines_own_grid():
    # a time listed twice (the engine's pre/post-dose pair) is read as a dose with its pre-dose value
    from pkcsf.analysis import metrics as M

    t = np.array([0.0, 0.0, 1.0, 2.0, 2.0, 3.0])
    c = np.array([[0.0, 1.0, 0.7, 0.5, 1.5, 1.0]])
    ref = dict(dose_times=[0.0, 2.0], conc_before=[[0.0, 0.5]])
    tu, cu = np.array([0.0, 1.0, 2.0, 3.0]), np.array([[1.0, 0.7, 1.5, 1.0]])
    assert M.auc(t, c)[0] == pytest.approx(M.auc(tu, cu, **ref)[0]) == pytest.approx(2.7)
    assert M.cmin(t, c)[0] == pytest.approx(0.5) and M.cmax(t, c)[0] == pytest.approx(1.5)
    assert M.trough(t, c, [0.0, 2.0]).tolist() == [[0.5, 1.0]]
    expect_error(lambda: M.auc(np.array([0.0, 1.0, 1.0, 1.0, 2.0]), np.ones((1, 5))), "times[", "increasing")


def test_metrics_of_a_scenario_grid():
    res = pk.simulate_drug("methotrexate", {"a": "12 mg lumbar twice weekly x 2 weeks"}, subjects=1, days=14, dt=2)
    arm = res.arms["a"]
    from pkcsf.analysis import metrics as M

    assert (np.diff(arm.times) == 0).any(), "the scenario grid lists dose times twice"
    conc = arm.profiles["methotrexate"][:, :, 0]
    assert np.isfinite(M.auc(arm.times, conc)).all()


@pytest.mark.parametrize("dt, hours", [(0.5, 0.5), ("30 min", 0.5), ("1 h", 1.0), (np.float64(2.0), 2.0)])
def test_dt_as_number_or_text_in_the_api(dt, hours):
    scn = pk.Scenario(pk.Arm("a", "12 mg lumbar once", drug="methotrexate"), dt=dt, days="2 weeks")
    assert scn.dt == hours and scn.days == 14.0


@pytest.mark.parametrize("dt, hours", [("2", 2.0), ('"2"', 2.0), ('"30 min"', 0.5), ("0.5", 0.5)])
def test_dt_as_number_or_text_in_scenario_files(tmp_path, dt, hours):
    from pkcsf.clinical.scenario_file import load_scenario

    p = tmp_path / "s.toml"
    p.write_text(f"dt = {dt}\n" + SCENARIO)
    assert load_scenario(p)[0].dt == hours


def test_days_as_number_or_text_on_the_command_line():
    from pkcsf.cli._util import _days

    assert _days("14") == 14.0 and _days("2 weeks") == 14.0 and _days("36 h") == 1.5


def test_cli_run_refuses_a_billion_subjects_in_one_line(capsys, tmp_path, monkeypatch):
    import pkcsf.clinical.resources as RS

    monkeypatch.setattr(RS, "available_memory", lambda: 8 * 2**30)
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO)
    cli_error(capsys, ["run", p, "--subjects", "1000000000", "--out", tmp_path / "o"], "subjects", "memory")
    assert not (tmp_path / "o").exists() and not [q for q in tmp_path.iterdir() if ".pkcsf-tmp-" in q.name]


@pytest.mark.parametrize("dt, ok", [("0.5", True), ("30 min", True), ("1e-9 h", False), ("ten", False),
                                    ("200 h", False)])
def test_cli_run_dt_as_number_or_text(capsys, tmp_path, monkeypatch, dt, ok):
    import pkcsf.clinical.resources as RS

    monkeypatch.setattr(RS, "available_memory", lambda: 8 * 2**30)
    p = tmp_path / "s.toml"
    p.write_text(SCENARIO)
    argv = ["run", p, "--dt", dt, "--out", tmp_path / "o", "--quiet"]
    if ok:
        assert main([str(a) for a in argv]) == 0
        assert (tmp_path / "o" / "summary.csv").exists()
    else:
        cli_error(capsys, argv, "--dt")


@pytest.mark.parametrize("kw, field", [
    ({"thresholds": ["-1 mg/L"]}, "thresholds"), ({"thresholds": [float("nan")]}, "thresholds"),
    ({"thresholds": [float("inf")]}, "thresholds"),
    ({"targets": [pk.Target("ventricular", "-1 umol/L", "48 h")]}, "threshold"),
    ({"targets": [pk.Target("ventricular", "1 umol/L", "-48 h")]}, "duration"),
    ({"targets": [pk.Target("ventricular", float("nan"), "48 h")]}, "threshold"),
])
def test_api_thresholds_and_targets_are_checked_like_scenario_files(kw, field):
    """A threshold of -1 or NaN would be met by every subject or by none: refused before anything runs."""
    with pytest.raises(pk.ScenarioError, match=field):
        pk.simulate("methotrexate", {"a": "12 mg lumbar once"}, days=2, subjects=3, **kw)


@pytest.mark.parametrize("regimen, words", [
    ("from day 1e9, 12 mg lumbar once", "days"), ("1e400 mg lumbar once", "finite"),
    ("12 mg mg lumbar once", "second unit"),
])
def test_messages_point_at_what_the_user_wrote(regimen, words):
    with pytest.raises(PkcsfError, match=words):
        pk.simulate("methotrexate", {"a": regimen}, subjects=2)


def test_blank_arm_names_and_thresholds_for_an_absent_drug_are_refused():
    for name in ("", " ", 1):
        with pytest.raises(pk.ScenarioError, match="arm.name"):
            pk.Arm(name, "12 mg lumbar once", drug="methotrexate")
    with pytest.raises(pk.ScenarioError, match="thresholds"):
        pk.simulate("methotrexate", {"a": "12 mg lumbar once"}, subjects=2, days=1,
                    thresholds={"pemetrexed": ["1 umol/L"]})


def test_escalate_doses_split_at_every_comma_and_an_empty_out_is_named(tmp_path, capsys):
    assert main(["escalate", "pemetrexed", "--doses", "10,inf", "-q"]) == 2
    assert "--doses[1]: got 'inf'" in capsys.readouterr().err
    scn = tmp_path / "s.toml"
    scn.write_text('name = "t"\ndrug = "methotrexate"\ndays = 1\n[[arms]]\nname = "a"\nregimen = "12 mg lumbar once"\n')
    assert main(["run", str(scn), "--out", "", "-q"]) == 2
    assert "an empty path" in capsys.readouterr().err


@pytest.mark.parametrize("change, words", [({"FU": 2.0}, "0 < FU <= 1"), ({"V1": -1}, "V1 > 0"),
                                           ({"Q_CSF": float("inf")}, "finite"), ({"V_LV": 0}, "volume")])
def test_setup_with_parameters_keeps_values_in_their_domain(change, words):
    with pytest.raises(PkcsfError, match=words):
        pk.setup("methotrexate").with_parameters(**change)
