"""pkcsf.plotting: every function returns Axes and draws a non-empty, labelled figure (Agg backend)."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import pkcsf as pk
from pkcsf import plotting as pp
from pkcsf.clinical import regimens as rg
from pkcsf.trials import designs as T

matplotlib = pytest.importorskip("matplotlib")
pp._plt()
from matplotlib.axes import Axes  # noqa: E402


@pytest.fixture(autouse=True)
def _close():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture(scope="module")
def mtx():
    return pk.simulate_drug("methotrexate", {"lumbar": "12 mg lumbar once", "Ommaya": "12 mg ommaya once"},
                            subjects=12, days=4, seed=1)


@pytest.fixture(scope="module")
def ara():
    return pk.run(pk.Scenario((pk.Arm("free", "50 mg lumbar twice weekly x 1 weeks", drug="cytarabine"),
                               pk.Arm("liposomal", "50 mg lumbar once", drug="cytarabine_liposomal")),
                              subjects=6, days=7, seed=1))


@pytest.fixture(scope="module")
def osi():
    return pk.simulate_drug("osimertinib", {"80 mg": rg.osimertinib("80 mg", 7), "160 mg": rg.osimertinib("160 mg", 7)},
                            subjects=12, days=7, seed=1, unit="nmol/L")


@pytest.fixture(scope="module")
def combo():
    reg = rg.osimertinib_plus_it_pemetrexed(courses=1, course_interval="3 weeks")
    return pk.run(pk.Scenario((pk.Arm("combo", reg),), subjects=4, days=21, seed=1))


@pytest.fixture(scope="module")
def trial_results():
    doses = [10, 20, 30, 40, 50]
    ex = np.exp(np.random.default_rng(0).normal(np.log(np.arange(1, 6))[:, None], 0.4, (5, 100)))
    link = T.LogisticExposureToxicity.from_mtd_exposure(2.0)
    res = {d: T.simulate_trials(d, doses, exposure=ex, link=link, n_trials=300, seed=1) for d in ("3+3", "boin")}
    return res, ex, link


def _drawn(ax) -> bool:
    """The panel shows data: lines with finite points, filled areas, bars or markers."""
    lines = [ln for ln in ax.get_lines() if np.isfinite(np.asarray(ln.get_ydata(), dtype=float)).any()]
    return bool(lines or ax.collections or ax.patches)


def _texts(ax):
    return [t.get_text() for t in ax.texts]


def _legend_texts(fig):
    out = []
    for leg in fig.legends + [a.get_legend() for a in fig.axes if a.get_legend()]:
        out += [t.get_text() for t in leg.get_texts()]
    return out


def test_import_pkcsf_does_not_import_matplotlib():
    code = "import sys, pkcsf, pkcsf.plotting; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_headless_backend_is_agg():
    code = ("import os; os.environ.pop('DISPLAY', None); os.environ.pop('MPLBACKEND', None); "
            "from pkcsf import plotting as pp; pp._plt(); import matplotlib; "
            "assert matplotlib.get_backend().lower() == 'agg', matplotlib.get_backend()")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_concentration_time_log(mtx):
    ax = pp.concentration_time(mtx, "lumbar")
    assert isinstance(ax, Axes) and _drawn(ax)
    assert ax.get_yscale() == "log"
    assert "µmol/L" in ax.get_ylabel() and "days" in ax.get_xlabel()       # 4 days > 3 days: time in days
    # floor: a sensible fraction of the peak, never the 1e-30 tail of a washed-out compartment
    peak = mtx["lumbar"].profiles["methotrexate"].max()
    lo, hi = ax.get_ylim()
    assert peak * 1e-6 <= lo < peak * 1e-2 and hi >= peak
    # threshold labelled with name, value and unit; dose marker in the legend
    assert any("cytotoxic" in t and "1 µmol/L" in t for t in _texts(ax))
    assert "lumbar dose" in _legend_texts(ax.figure)


def test_hours_for_short_spans_and_linear_axis():
    res = pk.simulate_drug("methotrexate", "12 mg lumbar once", subjects=1, days=2)
    ax = pp.concentration_time(res, groups=["lumbar", "ventricular"], log=False, stat="typical")
    assert "(h)" in ax.get_xlabel() and ax.get_yscale() == "linear" and ax.get_ylim()[0] == 0
    assert _drawn(ax)


def test_linear_and_log(mtx):
    axes = pp.linear_and_log(mtx, "Ommaya", groups=["ventricular", "lumbar", "plasma"])
    assert len(axes) == 2 and all(isinstance(a, Axes) and _drawn(a) for a in axes)
    assert axes[0].get_yscale() == "linear" and axes[1].get_yscale() == "log"


def test_compare_arms_shares_the_scale(mtx, ara):
    axes = pp.compare_arms(mtx, groups=["ventricular", "lumbar", "plasma"])
    assert len(axes) == 2 and all(_drawn(a) for a in axes)
    assert axes[0].get_ylim() == axes[1].get_ylim()
    # arms with different groups (free vs liposomal): each shows the groups it has
    axes = pp.compare_arms(ara, groups=["ventricular", "lumbar", "lumbar_liposomal"])
    labels = _legend_texts(axes[0].figure)
    assert "lumbar (encapsulated)" in labels and "ventricular CSF" in labels


def test_overlay_arms_route_colours(mtx):
    axes = pp.overlay_arms(mtx, ["ventricular", "lumbar"], band=True)
    assert len(axes) == 2 and all(_drawn(a) for a in axes)
    colours = {ln.get_label(): ln.get_color() for ln in axes[0].get_lines() if ln.get_label() in ("lumbar", "Ommaya")}
    assert colours == {"lumbar": pp.ROUTE_COLORS["lumbar"], "Ommaya": pp.ROUTE_COLORS["ommaya"]}
    assert axes[0].collections                                       # the 5-95 % bands


def test_population_band(osi, mtx):
    ax = pp.population_band(osi, "160 mg", group="lumbar", log=True)
    assert isinstance(ax, Axes) and _drawn(ax)
    labels = _legend_texts(ax.figure)
    assert {"median", "typical patient"} <= set(labels)
    assert "nmol/L" in ax.get_ylabel()
    axes = pp.population_bands(mtx, ["ventricular", "lumbar"])
    assert axes.shape == (2, 2) and all(_drawn(a) for a in axes.ravel())


def test_time_above(mtx, ara):
    ax = pp.time_above(mtx, "cytotoxic", groups=["ventricular", "lumbar"])
    assert isinstance(ax, Axes) and len(ax.patches) == 4
    assert "1 µmol/L" in ax.get_ylabel()
    # free and liposomal arms are different drugs: both arms have bars
    ax = pp.time_above(ara, "cytotoxic", groups=["ventricular", "lumbar"], unit="days")
    heights = [p.get_height() for p in ax.patches]
    assert len(heights) == 4 and all(np.isfinite(heights)) and "days" in ax.get_ylabel()
    assert "µg/mL" in ax.get_ylabel()                                  # the threshold in its source unit


def test_ic50_ratio(osi):
    ax = pp.ic50_ratio(osi)
    assert isinstance(ax, Axes) and _drawn(ax) and ax.get_yscale() == "log"
    assert "IC50" in ax.get_ylabel()
    assert any(np.allclose(ln.get_ydata(), 1.0) for ln in ax.get_lines() if len(ln.get_ydata()) == 2)
    # colour is the compartment, so two arms of one route (80 and 160 mg, both oral) differ by line style
    styles = {ln.get_label().split(",")[0]: ln.get_linestyle() for ln in ax.get_lines() if "," in ln.get_label()}
    assert styles["80 mg"] != styles["160 mg"]


def test_combination_drugs(combo):
    ax_o = pp.concentration_time(combo, drug="osimertinib", groups=["plasma", "lumbar"])
    ax_p = pp.concentration_time(combo, drug="pemetrexed", groups=["plasma", "lumbar"])
    assert _drawn(ax_o) and _drawn(ax_p)
    # each drug's panel marks that drug's doses, route-coloured (oral osimertinib, lumbar pemetrexed)
    legend_o, legend_p = _legend_texts(ax_o.figure), _legend_texts(ax_p.figure)
    assert "oral dose" in legend_o and "lumbar dose" not in legend_o
    assert "lumbar dose" in legend_p and "oral dose" not in legend_p


def test_escalation_panels(trial_results):
    res, ex, link = trial_results
    axes = pp.escalation(res, exposures=ex, exposure_label="plasma AUC", exposure_unit="umol/L*h", link=link)
    assert len(axes) == 4 and all(isinstance(a, Axes) and _drawn(a) for a in axes)
    assert "P(selected" in axes[0].get_ylabel() and "none" in [t.get_text() for t in axes[0].get_xticklabels()]
    assert "µmol/L·h" in axes[3].get_ylabel()
    # single panels and a result without exposures
    one = T.simulate_trials("3+3", [1, 2, 3], [0.1, 0.3, 0.5], n_trials=200, seed=2)
    for f in (pp.p_select, pp.patients_per_dose, pp.dlt_rate):
        assert _drawn(f(one))
    axes = pp.escalation(one)
    assert not axes[3].axison


def test_exposure_by_dose_inputs(trial_results):
    res, ex, _ = trial_results
    for data in (ex, list(ex), {10: ex[0], 20: ex[1]}, pd.DataFrame(ex.T, columns=[10, 20, 30, 40, 50]),
                 res["3+3"]):
        ax = pp.exposure_by_dose(data)
        assert isinstance(ax, Axes) and _drawn(ax)


def test_fold_errors():
    table = pd.DataFrame({
        "id": ["a", "b", "c", "d"], "drug": ["methotrexate", "methotrexate", "osimertinib", "osimertinib"],
        "variant": ["linear", "linear", "linear", "saturable"], "fold_error": [1.2, 3.0, 0.4, 1.0],
        "bound": ["", "", "upper", ""], "status": ["pass", "FAIL (flagged)", "pass", "not judged"],
    })
    ax = pp.fold_errors(table)
    assert isinstance(ax, Axes) and _drawn(ax) and ax.get_xscale() == "log"
    assert len(ax.get_yticklabels()) == 4


def test_user_axes_are_used(mtx):
    import matplotlib.pyplot as plt

    fig, axs = plt.subplots(1, 3)
    out = pp.concentration_time(mtx, ax=axs[0], legend=False)
    assert out is axs[0]
    pp.population_band(mtx, "lumbar", group="lumbar", ax=axs[1], legend=False)
    pp.time_above(mtx, ax=axs[2], legend=False)
    leg = pp.add_legend(fig)
    assert leg is not None and all(_drawn(a) for a in axs)


def test_bad_names_list_the_choices(mtx):
    with pytest.raises(pk.ScenarioError, match="ventricular"):
        pp.concentration_time(mtx, groups=["ventricle"])
    with pytest.raises(pk.ScenarioError, match="methotrexate"):
        pp.concentration_time(mtx, drug="mtx")


# ------------------------------------------------ issue 14: what a reader sees
def test_scenario_threshold_is_labelled_once():
    # a scenario's own threshold '1 umol/L' used to be written twice: '1 umol/L' over '1 µmol/L'
    res = pk.run(pk.Scenario((pk.Arm("lumbar", "12 mg lumbar once", drug="methotrexate"),), subjects=1, days=2,
                             thresholds={"methotrexate": ["1 umol/L", "1 mg/L"]}))
    for ax in (pp.concentration_time(res), pp.population_band(res, group="lumbar")):
        labels = [t.get_text() for t in ax.texts if t.get_gid() == "threshold-label"]
        assert labels, "no threshold label drawn"
        for lab in labels:
            assert "umol" not in lab, lab                  # written once, in the pretty unit
        assert "1 µmol/L" in labels                       # the value alone, once
        assert any(lab.startswith("1 mg/L") and "= " in lab for lab in labels)   # another unit: 'given = value'
    ax = pp.time_above(res, "1 umol/L")
    title = ax.get_title(loc="left")
    assert title.count("1 µmol/L") == 1 and "umol" not in title


def test_arm_colours_are_fixed_by_route_and_position(mtx):
    # three arms, two sharing a route: the lumbar arms keep the lumbar colour, the Ommaya arm the Ommaya colour,
    # whatever subset a figure shows (the old palette fallback gave the first lumbar arm Ommaya's blue)
    res = pk.simulate_drug("methotrexate", {"lumbar 6 mg": "6 mg lumbar once", "lumbar 12 mg": "12 mg lumbar once",
                                            "Ommaya 12 mg": "12 mg ommaya once"}, subjects=1, days=1)
    st = pp.arm_styles(res)
    assert st["lumbar 6 mg"]["color"] == st["lumbar 12 mg"]["color"] == pp.ROUTE_COLORS["lumbar"]
    assert st["Ommaya 12 mg"]["color"] == pp.ROUTE_COLORS["ommaya"]
    assert st["lumbar 6 mg"]["ls"] != st["lumbar 12 mg"]["ls"]
    assert pp.arm_styles(res, ["lumbar 12 mg", "Ommaya 12 mg"])["Ommaya 12 mg"] == st["Ommaya 12 mg"]
    axes = pp.overlay_arms(res, ["ventricular"])
    colours = {ln.get_label(): matplotlib.colors.to_hex(ln.get_color()) for ln in axes[0].get_lines()
               if not ln.get_label().startswith("_")}
    assert colours["lumbar 12 mg"] == pp.ROUTE_COLORS["lumbar"].lower()
    assert colours["Ommaya 12 mg"] == pp.ROUTE_COLORS["ommaya"].lower()
    # same routes in every arm: positions decide, and the two-arm figure of the same result agrees
    assert pp.arm_styles(mtx)["lumbar"]["color"] == pp.ROUTE_COLORS["lumbar"]


def test_bands_use_a_log_axis_when_they_span_decades(mtx, osi):
    assert pp.population_band(mtx, "lumbar", group="ventricular").get_yscale() == "log"     # one injection
    assert pp.population_band(osi, "160 mg", group="plasma").get_yscale() == "linear"       # near steady state
    axes = pp.population_bands(mtx, ["ventricular", "plasma"], rows="groups")
    assert axes.shape == (2, 2) and all(a.get_yscale() == "log" for a in axes[:, 0])     # [arm, group]
    assert axes[0, 0].get_subplotspec().colspan.start == 0 and axes[1, 0].get_subplotspec().colspan.start == 1


def test_combination_draws_every_drug(combo):
    axes = pp.compare_drugs(combo)
    assert axes.shape == (2, 1)
    ylabels = [a.get_ylabel() for a in axes[:, 0]]
    assert "osimertinib" in ylabels[0] and "pemetrexed" in ylabels[1]
    assert all(_drawn(a) for a in axes.ravel())
    assert pp.drugs_of(combo) == ["osimertinib", "pemetrexed"] or set(pp.drugs_of(combo)) == {"osimertinib",
                                                                                                "pemetrexed"}


def test_nothing_is_clipped(mtx, osi, combo):
    # every label lies inside the figure it belongs to (constrained layout makes room for threshold labels,
    # legends and titles), so even a plain savefig without bbox_inches="tight" clips nothing
    figs = [pp.overlay_arms(mtx, ["ventricular", "lumbar", "plasma"], band=True)[0].figure,
            pp.compare_arms(mtx)[0].figure,
            pp.population_bands(osi, ["plasma", "lumbar", "ventricular"], rows="groups")[0, 0].figure,
            pp.time_above(mtx, "cytotoxic").figure,
            pp.ic50_ratio(osi).figure,
            pp.compare_drugs(combo)[0, 0].figure]
    for fig in figs:
        fig.canvas.draw()
        bb = fig.get_tightbbox(fig.canvas.get_renderer())       # inches, every drawn artist (what "tight" saves)
        W, H = fig.get_size_inches()
        tol = 0.03
        assert bb.x0 >= -tol and bb.y0 >= -tol and bb.x1 <= W + tol and bb.y1 <= H + tol, \
            (fig.axes[0].get_title(loc="left"), bb, W, H)


def test_validation_rows_are_labelled_in_words():
    table = pd.DataFrame([
        dict(id="mtx_shapiro_vent_conc", drug="methotrexate", variant="linear", route="ommaya", dose_mg=10.8,
             site="lv", quantity="concentration", time_h="1", ref=None, bound=None, species="human",
             fold_error=1.2, status="pass", source="PMID 806016"),
        dict(id="osi_x", drug="osimertinib", variant="saturable", route="oral", dose_mg=80, site="spinal_lumbar",
             quantity="css_ratio", time_h="708", ref="plasma", bound=None, species="human", fold_error=3.0,
             status="FAIL (flagged)", source="label:Balis FM et al. Cancer Chemother Pharmacol 2000;45(3):259-64")])
    ax = pp.fold_errors(table)
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert not any("mtx_shapiro" in s or "osi_x" in s for s in labels)
    assert any(s.startswith("10.8 mg Ommaya: concentration, ventricular CSF, 1 h (PMID 806016)") for s in labels)
    assert {"methotrexate", "osimertinib"} <= {t.get_text() for t in ax.texts}       # drug named beside its rows
    assert any("lumbar CSF / plasma" in s and "Balis 2000" in s and "saturable" in s for s in labels)
    assert min(t.get_fontsize() for t in ax.get_yticklabels()) >= 7.5
