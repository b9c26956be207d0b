"""Regimen texts that used to give silently wrong doses (pkcsf.clinical.regimen_text; grammar in docs/regimens.md).

Each case was found by a review: a drug name written as a label, a dose carried over to another drug, a dotted
"q.12h" read as every 0.12 h, "from day 8:" read as a label, a bad ``age=`` argument raising a bare ValueError.
"""
from __future__ import annotations

import pytest

from pkcsf.clinical.regimens import RegimenTextError, parse_regimen
from pkcsf.core.errors import DosingError


def doses(reg):
    """(drug, site, amount, hour) of each single dose, in time order."""
    return [(d.drug, d.site, d.amount, d.time) for d in reg.expand()]


def by_drug(reg):
    """drug -> (sites, amounts, number of doses)."""
    out = {}
    for d in reg.expand():
        sites, amounts, n = out.get(d.drug, (set(), set(), 0))
        out[d.drug] = (sites | {d.site}, amounts | {d.amount}, n + 1)
    return out


# ----------------------------------------------------------------------------- a drug name as the label

def test_a_drug_name_before_the_colon_is_the_drug_not_a_label():
    # was: 30 mg of methotrexate (drug=...), the word "pemetrexed" kept only as the label
    reg = parse_regimen("pemetrexed: 30 mg IT weekly x 2", drug="methotrexate")
    assert doses(reg) == [("pemetrexed", "lumbar", 30.0, 0.0), ("pemetrexed", "lumbar", 30.0, 168.0)]
    assert {d.label for d in reg.expand()} == {"weekly"}
    assert reg == parse_regimen("pemetrexed 30 mg IT weekly x 2", drug="methotrexate")


def test_drug_labels_in_a_combination_give_each_item_its_drug():
    # was: every dose methotrexate, the 80 mg oral ones included
    reg = parse_regimen("Methotrexate: 12 mg IT weekly x 2 + Osimertinib: 80 mg oral daily x 14 days")
    assert by_drug(reg) == {"methotrexate": ({"lumbar"}, {12.0}, 2), "osimertinib": ({"oral"}, {80.0}, 14)}


@pytest.mark.parametrize("label, drug", [
    ("liposomal cytarabine", "cytarabine_liposomal"), ("Liposomal Cytarabine", "cytarabine_liposomal"),
    ("DepoCyt", "cytarabine_liposomal"), ("cytarabine_liposomal", "cytarabine_liposomal"), ("MTX", "methotrexate"),
    ("Ara-C", "cytarabine"), ("THIOTEPA", "thiotepa"),
])
def test_drug_labels_accept_the_aliases(label, drug):
    reg = parse_regimen(f"{label}: 50 mg lumbar once", drug="pemetrexed")
    assert doses(reg) == [(drug, "lumbar", 50.0, 0.0)]


def test_a_drug_label_is_exactly_the_name_written_in_the_phase():
    # the drug's usual route (osimertinib: oral) and the inheritance by the next phases work as for a written name
    assert parse_regimen("Osimertinib: 80 mg daily x 3 days") == parse_regimen("osimertinib 80 mg daily x 3 days")
    reg = parse_regimen("methotrexate: 12 mg IT weekly x 2, then monthly x 2")
    assert {(d.drug, d.site, d.amount) for d in reg.expand()} == {("methotrexate", "lumbar", 12.0)}
    # the same drug twice is no conflict; another drug is
    assert parse_regimen("MTX: methotrexate 12 mg IT once") == parse_regimen("methotrexate 12 mg IT once")
    with pytest.raises(RegimenTextError, match=r"second drug in one phase \(the label 'pemetrexed:' names pemetrexed\)"):
        parse_regimen("pemetrexed: methotrexate 12 mg IT once")
    with pytest.raises(RegimenTextError, match="second drug in one phase"):
        parse_regimen("pemetrexed: 12 mg methotrexate IT once")


def test_other_labels_and_quoted_drug_names_stay_labels():
    reg = parse_regimen("induction: 12 mg IT weekly x 2, then maintenance: monthly x 1", drug="methotrexate")
    assert [d.label for d in reg.expand()] == ["induction", "induction", "maintenance"]
    assert {d.drug for d in reg.expand()} == {"methotrexate"}
    # a label that merely contains a drug name, or a quoted drug name, is a label
    reg = parse_regimen('methotrexate induction: 12 mg IT once + "pemetrexed": 10 mg IT once', drug="methotrexate")
    assert sorted((d.label, d.drug) for d in reg.expand()) == [("methotrexate induction", "methotrexate"),
                                                               ("pemetrexed", "methotrexate")]


# ----------------------------------------------------------------------------- dose and route carried over

@pytest.mark.parametrize("text, phase, drug, was", [
    ("osimertinib 80 mg daily x 7 days, then pemetrexed lumbar weekly x 2", "pemetrexed lumbar weekly x 2",
     "pemetrexed", "80 mg osimertinib"),
    ("methotrexate 12 mg IT weekly x 2, then cytarabine weekly x 2", "cytarabine weekly x 2", "cytarabine",
     "12 mg methotrexate"),
    ("methotrexate: 12 mg IT weekly x 2, then cytarabine: weekly x 2", "cytarabine: weekly x 2", "cytarabine",
     "12 mg methotrexate"),
    ("12 mg IT weekly x 2, then pemetrexed weekly x 2", "pemetrexed weekly x 2", "pemetrexed",
     "12 mg (drug not named)"),
])
def test_a_phase_of_another_drug_does_not_take_the_previous_dose(text, phase, drug, was):
    # was: 80 mg intrathecal pemetrexed, 12 mg cytarabine
    with pytest.raises(RegimenTextError, match=f"missing dose of {drug}") as exc:
        parse_regimen(text)
    msg = str(exc.value)
    assert repr(phase) in msg and f"({was}) only for the same drug" in msg, msg
    assert isinstance(exc.value, DosingError)


def test_a_phase_of_another_drug_does_not_take_the_previous_route():
    # was: pemetrexed 30 mg by mouth (osimertinib's route carried over)
    with pytest.raises(RegimenTextError, match=r"missing route.*previous phase \(oral\) is kept only for the same drug"):
        parse_regimen("osimertinib 80 mg daily x 7 days, then pemetrexed 30 mg weekly x 2")
    # was: osimertinib into the lumbar CSF; its usual route (oral) is how its route is found
    reg = parse_regimen("pemetrexed 30 mg lumbar weekly x 2, then osimertinib 80 mg daily x 3 days")
    assert by_drug(reg) == {"pemetrexed": ({"lumbar"}, {30.0}, 2), "osimertinib": ({"oral"}, {80.0}, 3)}


def test_the_same_drug_still_inherits_dose_route_and_infusion():
    reg = parse_regimen("methotrexate 12 mg IT twice weekly x 2 weeks, then methotrexate weekly x 2, then MTX monthly x 1")
    assert {(d.drug, d.site, d.amount) for d in reg.expand()} == {("methotrexate", "lumbar", 12.0)}
    assert len(reg.expand()) == 7
    reg = parse_regimen("100 mg iv over 1 h once daily x 2, then every 2 days x 2", drug="pemetrexed")
    assert {(d.drug, d.site, d.amount, d.duration) for d in reg.expand()} == {("pemetrexed", "iv", 100.0, 1.0)}
    # drug= names the doses that name none: a later phase naming that drug is the same drug
    reg = parse_regimen("12 mg IT weekly x 2, then methotrexate monthly x 1", drug="methotrexate")
    assert {(d.drug, d.amount) for d in reg.expand()} == {("methotrexate", 12.0)}


# ----------------------------------------------------------------------------- dotted q abbreviations

@pytest.mark.parametrize("freq, every_h", [
    ("q.12h", 12), ("q.4h", 4), ("q.8 h", 8), ("q. 6h", 6), ("q.12.h.", 12), ("q12h.", 12), ("q.24h", 24),
    ("q.2w", 336), ("q.2 weeks", 336), ("q.3d", 72), ("q.o.d.", 48), ("q.w.", 168), ("q.d.", 24), ("b.i.d.", 12),
    ("q12h", 12), ("q 12 h", 12), ("q12hrs", 12), ("q2wk", 336), ("q0.5h", 0.5), ("q1.5h", 1.5),
])
def test_dotted_q_intervals_mean_every_n(freq, every_h):
    # was: "q.12h" every 0.12 h (".12" read as the number), "q.2w" every 0.2 weeks
    reg = parse_regimen(f"12 mg iv {freq} x 3", drug="methotrexate")
    assert [d.time for d in reg.expand()] == pytest.approx([0.0, every_h, 2 * every_h])


def test_dotted_q_cycle_length():
    reg = parse_regimen("30 mg ommaya on days 1 and 8 q.21d x 2", drug="pemetrexed")
    assert [d.time / 24 + 1 for d in reg.expand()] == [1, 8, 22, 29]


@pytest.mark.parametrize("freq", ["q .5h", "q..5h", "q . .5h"])
def test_a_decimal_point_after_q_is_refused(freq):
    with pytest.raises(RegimenTextError, match="ambiguous interval.*'q5h' or 'every 0.5 h'"):
        parse_regimen(f"12 mg iv {freq} x 3", drug="methotrexate")


# ----------------------------------------------------------------------------- start day, messages

def test_from_day_with_a_colon_is_the_start_day_not_a_label():
    # was: "from day 8" taken as a label, the dose on day 1
    reg = parse_regimen("from day 8: 12 mg IT once", drug="methotrexate")
    assert [d.time for d in reg.expand()] == [168.0] and reg.expand()[0].label == "once"
    reg = parse_regimen("from day 8: induction: 12 mg IT once", drug="methotrexate")
    assert [(d.time, d.label) for d in reg.expand()] == [(168.0, "induction")]


def test_errors_show_a_bare_label_as_written():
    with pytest.raises(RegimenTextError) as exc:
        parse_regimen("12 mg IT weekly x 2, then three times daily: 1 mg iv x 2", drug="methotrexate")
    assert "'three times daily: 1 mg iv x 2' in" in str(exc.value) and "\x00" not in str(exc.value)


# ----------------------------------------------------------------------------- age=

@pytest.mark.parametrize("age, hint", [
    ("abc", "age=2"), ("age", "did you mean age='AGE'"), ([1, 2], "age=2"), (True, "age=2"), (object(), "age=2"),
])
def test_a_bad_age_is_a_regimen_text_error(age, hint):
    # was: a bare ValueError ("could not convert string to float: 'abc'")
    with pytest.raises(RegimenTextError) as exc:
        parse_regimen("age-based methotrexate IT once", age=age)
    msg = str(exc.value)
    assert f"age: got {age!r}" in msg and "age in years" in msg and "'AGE'" in msg and hint in msg, msg
    assert isinstance(exc.value, DosingError)


def test_good_ages_still_read():
    assert parse_regimen("age-based methotrexate IT once", age="3").expand()[0].amount == 12.0
    assert parse_regimen("age-based methotrexate IT once", age=1.5).expand()[0].amount == 8.0
    assert parse_regimen("age-based methotrexate IT once", age="AGE").expand()[0].amount == "AGEDOSE_METHOTREXATE"


def test_the_age_at_the_start_doses_the_whole_regimen():
    # documented (docs/regimens.md): a child of 2.9 years keeps the under-3 dose for a regimen of a year
    reg = parse_regimen("age-based methotrexate IT monthly x 13", age=2.9)
    assert reg.expand()[-1].time / (24 * 365.25) > 0.9
    assert {d.amount for d in reg.expand()} == {10.0}
