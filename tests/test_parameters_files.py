"""Every parameter file loads (every value sourced), calibrations exist, observations are well formed."""
from pathlib import Path

import pandas as pd
import pytest

from pkcsf.clinical import cns
from pkcsf.clinical.parameters import load_parameter_set
from pkcsf.core.paths import builtin_dir
from pkcsf.core.tomlio import tomllib

PARAM = builtin_dir("parameters")
FILES = sorted((PARAM / "physiology").glob("*.toml")) + sorted((PARAM / "drugs").glob("*.toml"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_file_loads_with_sources(path):
    ps = load_parameter_set(path)
    assert ps.values
    for v in list(ps.values.values()) + list(ps.thresholds.values()):
        assert v.source
        if v.source == "assumption":
            assert v.note.strip(), f"{path.name}:{v.name} assumption without reasoning"
        if v.source == "calibrated":
            rec = PARAM / v.calibration
            assert rec.exists(), f"{path.name}:{v.name} points at missing {rec}"
            data = tomllib.loads(rec.read_text())
            assert _fitted_entry(data, v.name, path) is not None, (path.name, v.name)


def _fitted_entry(record: dict, name: str, path: Path):
    """The record's entry for parameter ``name`` of file ``path`` (keys are the name, or name__drug when a
    calibration frees the same name in two files)."""
    rel = f"parameters/{path.parent.name}/{path.name}"
    for key, entry in record["fitted"].items():
        if entry.get("parameter", key) == name and entry["file"] == rel:
            return entry
        if name in entry.get("tie", []) and entry["file"] == rel:
            return entry
    return None


def test_calibrated_values_match_records():
    """The value in each parameter file equals the fitted value of its calibration record."""
    for path in FILES:
        raw = tomllib.loads(path.read_text())
        for k, spec in raw.get("values", {}).items():
            if spec.get("source") == "calibrated":
                rec = tomllib.loads((PARAM / spec["calibration"]).read_text())
                fitted = _fitted_entry(rec, k, path)["value"]
                assert spec["value"] == pytest.approx(fitted, rel=1e-3), (path.name, k)


def test_copied_values_match_their_origin():
    """Values a calibration copies into analogue files (copied_to) equal the fitted value."""
    for rec_path in sorted((PARAM / "calibration").glob("*.toml")):
        rec = tomllib.loads(rec_path.read_text())
        for entry in rec["fitted"].values():
            for other in entry.get("copied_to", []):
                raw = tomllib.loads((PARAM / (other + ".toml")).read_text())
                assert raw["values"][entry["parameter"]]["value"] == pytest.approx(entry["value"], rel=1e-3), \
                    (rec_path.name, other, entry["parameter"])


def test_drugs_have_mw_and_thresholds_in_mg_per_L():
    for name in cns.available_drugs():
        d = cns.drug(name)
        assert d.mw > 0
        assert d.thresholds, name
        assert all(v > 0 for v in d.thresholds.values())
    mtx = cns.drug("methotrexate")
    assert mtx.thresholds["cytotoxic"] == pytest.approx(454.44e-3, rel=1e-3)   # 1 umol/L in mg/L


def test_observations_table():
    df = pd.read_csv(PARAM / "validation" / "observations.csv", dtype=str, keep_default_na=False)
    need = ["id", "drug", "form", "route", "dose_mg", "dose_note", "site", "quantity", "time_h", "observed", "unit",
            "species", "population", "source", "where", "note"]
    assert set(need) <= set(df.columns)
    assert df["id"].is_unique
    assert (df["source"].str.len() > 0).all()
    drugs = set(cns.available_drugs())
    assert set(df["drug"]) <= drugs
    # the observations the brief names
    for must in ["mtx_shapiro_vent_conc", "mtx_shapiro_lumbar_peak", "mtx_bleyer_lumbar_t12_fast", "mtx_bleyer_lumbar_t12_slow",
                 "mtx_bleyer_plasma_peak", "mtx_balis_auc_ratio", "mtx_balis_css_lumbar", "arac_zimm_t12_initial",
                 "arac_zimm_t12_terminal", "arac_zimm_csf_clearance", "lipo_glantz_time_above", "lipo_label_free_peak",
                 "osi_brown_css_max", "osi_brown_css_min", "osi_csf_ratio_80", "osi_csf_ratio_160"]:
        assert must in set(df["id"]), must


def test_every_drug_value_lies_in_its_physical_domain():
    """The loader's domain check (MW > 0, 0 < FU <= 1, volumes > 0, clearances >= 0, ...) passes every built-in
    drug, and covers every value the built-in files give except the few without a physical rule."""
    from pkcsf.clinical.drugs import _domain_of, check_drug_values

    unchecked = set()
    for path in sorted((PARAM / "drugs").glob("*.toml")):
        ps = load_parameter_set(path)
        check_drug_values(ps)
        unchecked |= {k for k in ps.values if _domain_of(k) is None}
    assert unchecked == set(), unchecked


def test_domain_of_variant_and_species_values():
    from pkcsf.clinical.drugs import _domain_of

    assert _domain_of("PS_BCSFB_V3")[0] == "PS_BCSFB"
    assert _domain_of("CL_EFFLUX_CSF_RHESUS_V3")[0] == "CL_EFFLUX_CSF"
    assert _domain_of("CL_EFFLUX_BBB_SAT")[0] == "CL_EFFLUX_BBB"
    assert _domain_of("V1_RHESUS")[0] == "V1"
    assert _domain_of("CL_AZ5104")[0] == "CL_AZ5104"
    assert _domain_of("MY_OWN_VALUE") is None


def test_unsourced_entries_count_nan_but_not_inf():
    """nan is the template's placeholder (a value still to fill in); inf is a value, refused as not finite."""
    from pkcsf.clinical.parameters import unsourced_entries

    data = {"values": {"CL": {"value": float("inf"), "unit": "L/h", "source": "assumption", "note": "x"},
                       "V1": {"value": float("nan"), "unit": "L", "source": "assumption", "note": "x"}}}
    assert unsourced_entries(data) == ["values.V1"]


def test_an_infinite_value_in_any_parameter_file_is_refused(tmp_path):
    from pkcsf.core.errors import ParameterError

    f = tmp_path / "p.toml"
    f.write_text('[meta]\nname = "p"\nkind = "physiology"\n[values.Q_CSF]\nvalue = inf\nunit = "L/h"\n'
                 'source = "assumption"\nnote = "test"\n')
    with pytest.raises(ParameterError, match=r"p\.toml: values\.Q_CSF\.value: got inf; must be a finite number"):
        load_parameter_set(f)
