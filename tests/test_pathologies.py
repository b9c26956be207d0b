"""Pathologies: the table of what each changes (pk.cns.pathologies, `pkcsf pathologies`) and range checks."""
import pytest

import pkcsf as pk
from pkcsf.cli import main


def test_table_lists_every_named_scenario_with_its_parameter_and_source():
    t = pk.cns.pathologies()
    named = t[t["scenario"] != ""]
    assert {"vp_shunt", "aqueduct_block", "spinal_block", "convexity_block", "raised_outflow_resistance",
            "lumbar_leak"} <= set(named["scenario"])
    assert named.set_index("scenario").loc["vp_shunt", "parameter"] == "Q_SHUNT"
    assert t["source"].str.len().gt(0).all() and t["meaning"].str.len().gt(20).all()
    assert not t["meaning"].str.contains("\n").any()


@pytest.mark.parametrize("patho", [{"BLOCK_SPINAL": 3}, {"F_TURNOVER": -1}, {"F_TURNOVER": 0.0},
                                   {"Q_SHUNT": "5 mL/min"}, {"F_LEAK": 1.5}, {"BLOCK_SPINAL": True},
                                   {"BLOCK_SPINAL": "half"}, {"vp_shunt": "yes"}, {"nope": 1}])
def test_out_of_range_or_malformed_pathologies_are_refused(patho):
    with pytest.raises(pk.ParameterError) as e:
        pk.setup("methotrexate", pathologies=patho)
    assert next(iter(patho)) in str(e.value)


def test_valid_pathologies_are_accepted():
    s = pk.setup("methotrexate", pathologies={"vp_shunt": True, "BLOCK_SPINAL": 0.5, "F_LEAK": 0.2})
    assert s.parameters["BLOCK_SPINAL"] == 0.5 and s.parameters["Q_SHUNT"] > 0


def test_cli(capsys):
    assert main(["pathologies"]) == 0
    out = capsys.readouterr().out
    assert "vp_shunt" in out and "Q_SHUNT" in out and "source:" in out
    assert main(["pathologies", "spinal_block", "--brief"]) == 0
    assert "BLOCK_SPINAL" in capsys.readouterr().out
    assert main(["pathologies", "nope"]) == 2
