"""One definition for each concept (issue 8): the copies that remain are tied together here."""
import pytest

from pkcsf.analysis import metrics, nca
from pkcsf.analysis.methods import AUC_METHOD_DESCRIPTIONS, METHOD_ALIASES
from pkcsf.clinical import cns, regimens, routes
from pkcsf.core.errors import PkcsfError, Status, check_int, check_keys
from pkcsf.solvers import kernels

# the kernels return plain integers (Numba globals); each must be the value of its Status member
_KERNEL_CODES = {"ST_SUCCESS": Status.SUCCESS, "ST_MAX_STEPS": Status.MAX_STEPS,
                 "ST_STEP_TOO_SMALL": Status.STEP_TOO_SMALL, "ST_NONFINITE": Status.NONFINITE,
                 "ST_NEWTON": Status.NEWTON_FAILED}


def test_kernel_status_codes_are_the_status_enum():
    codes = {k: v for k, v in vars(kernels).items() if k.startswith("ST_")}
    assert set(codes) == set(_KERNEL_CODES), "a kernel status code without a Status member (or the reverse)"
    for name, member in _KERNEL_CODES.items():
        assert codes[name] == int(member), name
    assert sorted(codes.values()) == sorted(int(s) for s in Status)
    assert all(s.message for s in Status)


def test_one_route_list():
    assert cns.ROUTES is routes.ROUTES is regimens.ROUTES
    assert set(routes.ROUTE_ALIASES.values()) <= set(routes.ROUTES)
    assert set(routes.INTRATHECAL_ROUTES) <= set(routes.ROUTES)
    for d in cns.available_drugs():
        assert set(cns.drug(d).routes) <= set(routes.ROUTES), d


def test_one_auc_method_vocabulary():
    assert set(metrics.METHODS) <= set(AUC_METHOD_DESCRIPTIONS)
    assert set(nca.AUC_METHODS) <= set(AUC_METHOD_DESCRIPTIONS)
    assert set(METHOD_ALIASES.values()) == set(AUC_METHOD_DESCRIPTIONS)
    # the PKNCA spelling means the same method in both modules
    assert metrics._check_method("lin up/log down") == nca._check_auc_method("lin up/log down")


@pytest.mark.parametrize("value, ok", [(3, 3), (0, None), (2.0, None), (True, None), ("3", None)])
def test_check_int(value, ok):
    if ok is None:
        with pytest.raises(PkcsfError, match="whole number >= 1"):
            check_int("n", value)
    else:
        assert check_int("n", value) == ok
    assert check_int("n", 2.0, whole_floats=True) == 2
    with pytest.raises(PkcsfError):
        check_int("n", 2.5, whole_floats=True)


def test_check_keys_names_the_path_value_and_the_closest_key():
    check_keys("t", {"a": 1}, ["a", "b"])
    with pytest.raises(PkcsfError) as exc:
        check_keys("t", {"bb": 1}, ["a", "b"], hint=lambda k: "goes elsewhere")
    assert exc.value.field == "t.bb" and exc.value.value == 1 and "allowed keys: a, b" in str(exc.value)
    with pytest.raises(PkcsfError, match="goes elsewhere"):
        check_keys("", {"zzz": 1}, ["a", "b"], hint=lambda k: "goes elsewhere")


def test_reprs_are_one_short_line():
    import pkcsf as pk

    m = pk.load_model("reference_p1")
    prob = pk.prepare(m, pk.Dose(10, "icv"), {k: 1.0 for k in m.parameter_names}, times=[0, 1, 2])
    d = pk.drug("methotrexate")
    for obj in (prob, prob.compiled, m, d, d.parameters, pk.setup("methotrexate")):
        text = repr(obj)
        assert "\n" not in text and len(text) < 200, text
        assert text.startswith(type(obj).__name__ + "("), text
