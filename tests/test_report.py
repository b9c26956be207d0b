"""pkcsf.report.build_report: writes report + figures + tables, atomically."""
import re

import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from pkcsf import report as R  # noqa: E402
from pkcsf.core.errors import ScenarioError  # noqa: E402


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    base = tmp_path_factory.mktemp("rep")
    out = base / "report"
    mp = pytest.MonkeyPatch()
    mp.setattr(R.sections, "_DPI", 50)                 # same figures, fewer pixels: keeps the test quick
    try:
        path = R.build_report(out, subjects=3, seed=7, progress=False)
    finally:
        mp.undo()
    return base, out, path


def test_report_files(built):
    base, out, path = built
    assert path == out / "report.html" and path.is_file()
    pngs = sorted(p.name for p in out.glob("*.png"))
    csvs = sorted(p.name for p in out.glob("*.csv"))
    assert len(pngs) >= 14
    for name in ("methotrexate_single_dose_summary.csv", "pemetrexed_summary.csv", "cytarabine_summary.csv",
                 "osimertinib_summary.csv", "combination_summary.csv", "validation.csv", "assumptions.csv",
                 "references.csv", "settings.csv", "population_bands.csv"):
        assert name in csvs
    assert all((out / p).stat().st_size > 5_000 for p in pngs)            # real figures, not blank canvases
    # nothing left next to the output folder
    assert [p.name for p in base.iterdir()] == ["report"]


def test_report_html_is_self_contained(built):
    _, out, path = built
    text = path.read_text(encoding="utf-8")
    srcs = re.findall(r"<img src='([^']+)'", text)
    assert len(srcs) >= 14 and all((out / s).is_file() for s in srcs)
    assert not re.search(r"(src|href)=['\"]https?://", text)              # no external resources
    for must in ("Methotrexate 12 mg", "Pemetrexed", "liposomal", "Osimertinib 80 versus 160 mg",
                 "do not support a CSF/plasma ratio that rises with dose", "assumptions", "References", "Software and settings",
                 "fold error"):
        assert must.lower() in text.lower(), must


def test_report_tables_content(built):
    _, out, _ = built
    settings = pd.read_csv(out / "settings.csv")
    values = dict(zip(settings["setting"], settings["value"]))
    assert values["virtual patients per arm"] == "3" and values["random seed"] == "7"
    assert any("Rodas5P" in str(v) for v in values.values())             # the saturable variant's solver
    osi = pd.read_csv(out / "osimertinib_summary.csv")
    assert set(osi["variant"]) == {"linear", "saturable"} and set(osi["arm"]) == {"80 mg", "160 mg"}
    assert len(pd.read_csv(out / "assumptions.csv")) > 5
    val = pd.read_csv(out / "validation.csv")
    assert {"fold_error", "status"} <= set(val.columns)


def test_band_table_times_are_exact(built):
    """population_bands.csv: values at 4 significant digits, but times in full (100.25 h once read 100.2 and
    1315.5 h read 1316, the next output time): within one curve times rise and lie on the output grid."""
    _, out, _ = built
    b = pd.read_csv(out / "population_bands.csv")
    for _, t in b.groupby(["scenario", "arm", "drug", "group"])["time"]:
        t = t.to_numpy()
        assert (t[1:] >= t[:-1]).all()              # a time repeats only at a dose
        assert ((t * 4) % 1 == 0).all()             # the report's grids: 0.25, 0.5 and 1 h
    assert ((b["time"] > 100) & (b["time"] % 1 != 0)).any()


def test_route_comparison_interval_is_reported(built):
    """Issue 10: the lumbar/Ommaya ventricular AUC ratio of methotrexate 12 mg with a 90% interval that comes
    from the calibration (its covariance), in the report and its csv."""
    _, out, path = built
    t = pd.read_csv(out / "route_comparison_interval.csv")
    r = t.iloc[0]
    assert "lumbar / Ommaya" in r["quantity"]
    assert 0.0 < r["p5"] < r["typical"] <= r["p95"] < 1.0               # Ommaya gives the ventricles more
    assert "Table 2b" in path.read_text(encoding="utf-8")


def test_route_comparison_under_other_mechanisms_is_reported(built):
    """Structural uncertainty beside the parameter interval: Table 2c gives the shipped model's answer and those of
    the mechanisms fitted to the same data and not adopted (docs/model.md, 4 Dec 2026). The shipped row equals
    Table 2b's typical value."""
    _, out, path = built
    m = pd.read_csv(out / "route_comparison_mechanisms.csv")
    b = pd.read_csv(out / "route_comparison_interval.csv")
    assert list(m["calibration"]) == ["csf_transport", "csf_transport_tissue_free", "csf_transport_barrier_site"]
    assert m["auc_ratio_lumbar_over_ommaya"].iloc[0] == pytest.approx(b["typical"].iloc[0], rel=1e-9)
    assert ((m["auc_ratio_lumbar_over_ommaya"] > 0) & (m["auc_ratio_lumbar_over_ommaya"] < 1)).all()
    assert "Table 2c" in path.read_text(encoding="utf-8")


def test_route_comparison_in_patients_with_leptomeningeal_metastases(built):
    """Table 2d: lumbar vs Ommaya in the named population (pathologies.toml [options.patients]); a spinal block or
    a wholly missed puncture leaves the ventricles untreated after a lumbar dose, never after an Ommaya dose."""
    from pkcsf.clinical.scenario import run
    from pkcsf.report.scenarios import _scenarios
    from pkcsf.report.sections import lm_population_table

    _, out, path = built
    assert "Table 2d" in path.read_text(encoding="utf-8")
    shipped = pd.read_csv(out / "methotrexate_lm_population.csv")           # 3 patients: some subgroups empty
    assert set(shipped["route"]) == {"lumbar", "Ommaya"} and "ventricles never above (share)" in shipped.columns
    t = lm_population_table(run(_scenarios(300, 7)["mtx_lm"], progress=False))
    row = {(r["route"], r["patients"]): r for _, r in t.iterrows()}
    for k in (("lumbar", "spinal block"), ("lumbar", "lumbar puncture wholly missed")):
        assert row[k]["ventricles never above (share)"] == 1.0
        assert row[k]["ventricular AUC (median)"] < 0.01 * row[("lumbar", "none of these")]["ventricular AUC (median)"]
    assert ("Ommaya", "lumbar puncture wholly missed") not in row       # a missed puncture acts on lumbar doses only
    assert (t[t["route"] == "Ommaya"]["ventricles never above (share)"] == 0.0).all()
    assert 0.2 < row[("lumbar", "spinal block")]["share of patients"] < 0.5


def test_pemetrexed_and_osimertinib_intervals_are_reported(built):
    """Issue 10, item 5: the pemetrexed route comparison and osimertinib CSF/plasma at 80 vs 160 mg, each with a
    90% interval from a calibration's covariance."""
    _, out, path = built
    pem = pd.read_csv(out / "pemetrexed_route_interval.csv")
    assert "lumbar / Ommaya" in pem["quantity"][0] and 0.0 < pem["p5"][0] < pem["typical"][0] < pem["p95"][0] < 1.0
    osi = pd.read_csv(out / "osimertinib_ratio_interval.csv")
    assert list(osi["quantity"].str.contains("80 mg|160 mg")) == [True, True, True]
    assert 0.001 < osi["p5"][0] < osi["typical"][0] < osi["p95"][0] < 0.1
    assert osi["p5"][2] == pytest.approx(1.0) and osi["p95"][2] == pytest.approx(1.0)   # linear: no dose effect
    text = path.read_text(encoding="utf-8")
    assert "Table 3b" in text and "Table 5b" in text


def test_rebuild_keeps_other_files(built, tmp_path):
    # an existing folder: same-named files replaced, other files kept (markdown format here, stubbed figures)
    # a folder pkcsf wrote (.pkcsf-output.json): replaced whole; files the user added are kept
    from pkcsf.core.output import Output

    out = tmp_path / "rep"
    with Output(out) as st:
        st.path("report.md").write_text("old")
        st.path("fig99_old.png").write_bytes(b"old figure")
        st.commit()
    (out / "notes.txt").write_text("mine")

    def figures(R_, val, folder, doc, tick):
        doc.h(2, "stub", "stub")
        doc.p("a **bold** paragraph")
        doc.table(pd.DataFrame({"a": [1.0], "b": ["x|y"]}), "a table")
        tick()

    mp = pytest.MonkeyPatch()
    mp.setattr(R.build, "_figures", figures)
    try:
        path = R.build_report(out, subjects=2, progress=False, fmt="md")
    finally:
        mp.undo()
    assert path == out / "report.md"
    text = path.read_text()
    assert "## stub" in text and "| a | b |" in text and "x\\|y" in text
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "fig99_old.png").exists(), "no file of the previous report is mixed in"
    assert [p.name for p in tmp_path.iterdir()] == ["rep"]


@pytest.mark.parametrize("exists", [False, True])
def test_failure_leaves_nothing_half_written(tmp_path, exists):
    from pkcsf.core.output import MANIFEST, Output

    out = tmp_path / "rep"
    if exists:
        with Output(out) as st:
            st.path("report.html").write_text("previous report")
            st.commit()

    def failing(R_, val, folder, doc, tick):
        (folder / "fig01_partial.png").write_bytes(b"half a figure")
        raise RuntimeError("simulated failure while drawing")

    mp = pytest.MonkeyPatch()
    mp.setattr(R.build, "_figures", failing)
    try:
        with pytest.raises(RuntimeError, match="simulated failure"):
            R.build_report(out, subjects=2, progress=False)
    finally:
        mp.undo()
    if exists:
        assert sorted(p.name for p in out.iterdir()) == sorted([MANIFEST, "report.html"])
        assert (out / "report.html").read_text() == "previous report"
    else:
        assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == (["rep"] if exists else [])   # no temporary folder left


def test_refuses_a_folder_pkcsf_did_not_write(tmp_path):
    out = tmp_path / "thesis"
    out.mkdir()
    (out / "chapter1.tex").write_text("mine")
    with pytest.raises(ScenarioError, match="out_dir.*did not write"):
        R.build_report(out, subjects=2, progress=False)
    assert [p.name for p in out.iterdir()] == ["chapter1.tex"]
    assert [p.name for p in tmp_path.iterdir()] == ["thesis"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ScenarioError, match="fmt"):
        R.build_report(tmp_path / "x", fmt="pdf", progress=False)
    with pytest.raises(ScenarioError, match="subjects"):
        R.build_report(tmp_path / "x", subjects=0, progress=False)
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ScenarioError, match="file"):
        R.build_report(f, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


# ------------------------------------------------ issue 14: what a clinician reads
def _body(path) -> str:
    """The report's visible text: no style sheet, no tags."""
    text = path.read_text(encoding="utf-8")
    text = re.sub(r"<style>.*?</style>", "", text, flags=re.S)
    return re.sub(r"<[^>]+>", " ", text)


def test_report_has_no_raw_escapes_or_internal_ids(built):
    _, out, path = built
    body = _body(path)
    assert "\\n" not in body and "\\u" not in body                     # multi-line notes, on one line
    val = pd.read_csv(out / "validation.csv")
    leaked = [i for i in val["id"] if re.search(rf"\b{re.escape(i)}\b", body)]
    assert not leaked, f"validation ids shown to the reader: {leaked[:5]}"


def test_each_hypothesis_written_once(built):
    _, out, path = built
    body = " ".join(_body(path).split())
    val = pd.read_csv(out / "validation.csv")
    for h in val["hypothesis"].dropna().unique():
        head = " ".join(h.split())[:80]
        assert body.count(head) <= 1, head


def test_time_above_the_whole_window_is_not_a_result(built):
    _, _, path = built
    body = _body(path)
    assert not re.search(r"(?<![\d.])(\d+(?:\.\d+)?) \(\1–\1\)", body), "a read-out printed as 'x (x–x)'"


def test_references_are_citations(built):
    _, out, path = built
    text = path.read_text(encoding="utf-8")
    refs = re.search(r"<ol class='refs'>(.*?)</ol>", text, flags=re.S).group(1)
    items = re.findall(r"<li>(.*?)</li>", refs, flags=re.S)
    assert len(items) > 10
    for it in items:
        assert not re.match(r"\s*(doi\s*)?10\.\d+/\S+\s*$", it), f"bare DOI: {it}"
        for remark in ("from memory", "dossier", "flagged", "believed", "nlmixr2lib"):
            assert remark not in it, it
    assert any("Joerger M" in it and "Br J Clin Pharmacol 2006" in it for it in items)   # resolved bare DOI
    table = pd.read_csv(out / "references.csv")
    assert {"key", "citation", "note"} <= set(table.columns)


def test_tables_and_figures_fit_the_page(built):
    _, out, path = built
    text = path.read_text(encoding="utf-8")
    assert "@media print" in text and "overflow-wrap:anywhere" in text and "width:100%" in text
    # figures: at most 11.5 inches wide, so that the page shows their 8.5-pt labels at >= 8 pt (figures 8,
    # 14 and 15 were 14.5-15 inches and unreadable)
    import matplotlib.image as mpimg

    for png in sorted(out.glob("fig*.png")):
        w_in = mpimg.imread(png).shape[1] / 50                         # the fixture draws at 50 dpi
        assert w_in <= R.sections.FIG_WIDTH + 0.3, (png.name, w_in)


def test_every_number_has_a_unit(built):
    # the read-out tables name their unit in every numeric column header
    _, _, path = built
    text = path.read_text(encoding="utf-8")
    for head in re.findall(r"<th>(.*?)</th>", text):
        if head.startswith(("Cmax", "AUC (", "trough", "time above", "Tmax")):
            assert re.search(r"\((µmol/L|nmol/L|mg/L|h|d|µmol/L·h|nmol/L·h|mg/L·h)\)$", head), head


def test_validation_counts_by_role(built):
    """The issue's target is on the never-fitted rows: the report states their count apart from the fitted ones."""
    from pkcsf.clinical.validation import counts

    _, out, path = built
    body = " ".join(_body(path).split())
    n, w2, w15 = counts(pd.read_csv(out / "validation.csv"))["validation"]
    assert f"Validation rows (never fitted): {n}, of which {w2} ({w2 / n:.0%}) within 2-fold" in body.replace("*", "")


def test_position_after_a_lumbar_puncture_is_reported(built):
    """Table 2e: the lumbar dose with the patient lying, lying 1 h then upright, and upright at once (issue 10,
    item 1): upright posture lowers the ventricular AUC against the Ommaya dose, lying is the shipped model."""
    _, out, path = built
    t = pd.read_csv(out / "methotrexate_position.csv")
    assert list(t["position"]) == ["-", "lying", "upright 1-24 h", "upright 0-24 h", "upright 1-15 h daily"]
    r = t["auc_vs_ommaya"].to_numpy()
    assert r[0] == 1.0 and 1.0 > r[1] > r[2] > r[3] > 0
    assert r[1] > r[4] > r[3]           # up by day, lying at night: between lying and upright at once
    assert "Table 2e" in path.read_text(encoding="utf-8")
