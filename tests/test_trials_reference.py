"""Trial designs against the reference R packages (issue 13): published outputs where found, else the rule's definition.

Fixtures (never invented; each states where it was printed):

* ``BOIN::get.oc(target = 0.25, p.true = c(0.1, 0.5), ncohort = 10, cohortsize = 3, n.earlystop = 9,
  startdose = 1, titration = FALSE, cutoff.eli = 0.95, extrasafe = TRUE, offset = 0.1, boundMTD = FALSE,
  ntrial = 10000, seed = 6)``, printed in the vignette "Compare_to_original_BOIN" of the R package bfboin
  (github.com/yuxuanchn/bfboin, inst/doc/Compare_to_original_BOIN.html; BOIN 2.7.x):
  selpercent 77.75 / 18.42, npatients 10.7160 / 7.7784, ntox 1.0536 / 3.8988, totaln 18.4944, percentstop 3.83.
  Compared within Monte-Carlo error (both simulations carry one: the package's 10,000 trials and ours).
* The CRM safety stop (``escalation::stop_when_too_toxic(dose = 1, tox_threshold = 0.35, confidence = 0.8)`` on
  ``get_dfcrm(skeleton = c(0.05, 0.1, 0.25, 0.4, 0.6), target = 0.25)``): the package's own test
  (tests/testthat/test_stop_when_too_toxic.R) states that outcomes '2NTN 1TT' do not fire the rule and that one
  more toxicity ('2NTN 1TTT') "should tip the scale". No printed ``dfcrm::crmsim`` operating characteristics were
  found, so the CRM rule is otherwise tested on its definition.
"""
import numpy as np
import pytest
from scipy import stats

from pkcsf.trials import BOIN, CRM, simulate_trials
from pkcsf.trials.common import TrialError

# --------------------------------------------------------------------------- BOIN get.oc, extrasafe
GET_OC = {"selpercent": (77.75, 18.42), "npatients": (10.7160, 7.7784), "ntox": (1.0536, 3.8988),
          "totaln": 18.4944, "percentstop": 3.83, "ntrial": 10000}


def _z(ours, ours_se, ref, ref_se):
    return abs(ours - ref) / np.hypot(ours_se, ref_se)


def test_boin_get_oc_extrasafe_fixture():
    des = BOIN(target=0.25, max_n=30, cohort_size=3, n_earlystop=9, extrasafe=True, offset=0.1)
    res = simulate_trials(des, [1, 2], [0.1, 0.5], n_trials=20000, seed=1)
    N = GET_OC["ntrial"]
    for k in range(2):
        p = GET_OC["selpercent"][k] / 100
        assert _z(res.p_select[k], res.p_select_se[k], p, np.sqrt(p * (1 - p) / N)) < 4
        # package SEs of the means are not printed: ours (per trial SD / sqrt(N)) rescaled to its 10,000 trials
        sd_n = res.n_treated[:, k].std(ddof=1)
        assert _z(res.mean_n[k], res.mean_n_se[k], GET_OC["npatients"][k], sd_n / np.sqrt(N)) < 4
        sd_y = res.n_dlt[:, k].std(ddof=1)
        assert _z(res.mean_dlt[k], sd_y / np.sqrt(res.n_trials), GET_OC["ntox"][k], sd_y / np.sqrt(N)) < 4
    q = GET_OC["percentstop"] / 100
    assert _z(res.p_none, res.p_none_se, q, np.sqrt(q * (1 - q) / N)) < 4
    sd_t = res.n_treated.sum(axis=1).std(ddof=1)
    assert _z(res.mean_trial_size, res.mean_trial_size_se, GET_OC["totaln"], sd_t / np.sqrt(N)) < 4
    # the fixture discriminates: without extrasafe the trial almost never stops (0.3 % here vs 3.8 %)
    plain = simulate_trials(BOIN(target=0.25, max_n=30, n_earlystop=9), [1, 2], [0.1, 0.5], n_trials=20000, seed=1)
    assert plain.p_none < 0.01 and _z(plain.p_none, plain.p_none_se, q, np.sqrt(q * (1 - q) / N)) > 10


def test_boin_extrasafe_stop_boundary_is_its_definition():
    # get.boundary(extrasafe=TRUE)$stop_boundary: smallest y with P(p > target | y, n) > cutoff.eli - offset
    des = BOIN(target=0.3, max_n=30, extrasafe=True, offset=0.05)
    st = des._stop_table()
    for n in range(3, 31):
        post = stats.beta.sf(0.3, np.arange(n + 1) + 1, n - np.arange(n + 1) + 1)
        assert st[n] == int(np.argmax(post > 0.90))
    assert np.all(st[:3] == 31)
    # stricter than elimination, never laxer
    assert np.all(st[3:] <= des._tables()[2][3:])
    # all doses too toxic: the stop comes earlier and more often than with elimination alone
    tox = [0.5, 0.6, 0.7]
    a = simulate_trials(BOIN(target=0.3, max_n=30), [1, 2, 3], tox, n_trials=4000, seed=3)
    b = simulate_trials(des, [1, 2, 3], tox, n_trials=4000, seed=3)
    assert b.p_none > a.p_none and b.mean_trial_size < a.mean_trial_size


def test_boin_select_mtd_extrasafe():
    des = BOIN(target=0.3, max_n=30, extrasafe=True, offset=0.05)
    # 5/12 at the lowest dose: P(p > 0.3 | 5/12) = 0.835 < 0.90 -> kept; 6/12: 0.938, above 0.90 but not 0.95
    assert stats.beta.sf(0.3, 6, 8) < 0.90 < stats.beta.sf(0.3, 7, 7) < 0.95
    assert des.select_mtd([12, 3, 0], [5, 2, 0]) == 0
    assert des.select_mtd([12, 3, 0], [6, 2, 0]) == -1
    assert BOIN(target=0.3, max_n=30).select_mtd([12, 3, 0], [6, 2, 0]) == 0   # elimination needs 0.95


def test_boin_offset_errors():
    with pytest.raises(TrialError, match="offset"):
        BOIN(extrasafe=True, offset=0.5)
    with pytest.raises(TrialError, match="extrasafe"):
        BOIN(extrasafe="yes")


# --------------------------------------------------------------------------- CRM safety stop
def test_crm_safety_rule_escalation_package_case():
    c = CRM(target=0.25, skeleton=(0.05, 0.1, 0.25, 0.4, 0.6), safety_threshold=0.35, safety_cutoff=0.8,
            safety_min_n=0)
    p1 = c.p_lowest_too_toxic([2, 3, 0, 0, 0], [2, 1, 0, 0, 0])      # '2NTN 1TT'
    p2 = c.p_lowest_too_toxic([3, 3, 0, 0, 0], [3, 1, 0, 0, 0])      # '2NTN 1TTT'
    assert p1 < 0.8 < p2


def test_crm_safety_rule_definitions():
    sk = (0.05, 0.1, 0.25, 0.4, 0.6)
    n, y = np.array([6, 3, 0, 0, 0]), np.array([3, 1, 0, 0, 0])
    # model rule: P(a < a*) under the posterior, p_1 = s_1^exp(a) > thr <=> a < log(log thr / log s_1)
    from scipy import integrate

    tried = n > 0

    def post(a):
        p = np.array(sk)[tried] ** np.exp(a)
        return np.exp(np.sum(y[tried] * np.log(p) + (n - y)[tried] * np.log1p(-p)) - a * a / (2 * 1.34))

    a_star = np.log(np.log(0.3) / np.log(0.05))
    ref = (integrate.quad(post, -12, a_star, epsabs=1e-13)[0]
           / integrate.quad(post, -12, 12, points=[a_star], epsabs=1e-13)[0])
    assert CRM(target=0.3, skeleton=sk).p_lowest_too_toxic(n, y) == pytest.approx(ref, abs=1e-6)
    # beta rule: crmPack StoppingLowestDoseHSRBeta, beta(1, 1) prior on the lowest dose alone
    cb = CRM(target=0.3, skeleton=sk, safety_rule="beta")
    assert cb.p_lowest_too_toxic(n, y) == pytest.approx(stats.beta.sf(0.3, 4, 4))


@pytest.mark.parametrize("rule", ["model", "beta"])
def test_crm_stops_when_lowest_dose_is_too_toxic(rule):
    tox = [0.6, 0.7, 0.8, 0.85, 0.9]
    res = simulate_trials(CRM(target=0.3, safety_rule=rule), [1, 2, 3, 4, 5], tox, n_trials=400, seed=5)
    assert res.p_none > 0.9 and res.mean_trial_size < 12
    off = simulate_trials(CRM(target=0.3, safety_cutoff=None), [1, 2, 3, 4, 5], tox, n_trials=400, seed=5)
    assert off.p_none == 0 and np.all(off.n_treated.sum(axis=1) == 30)
    # a safe lowest dose (5 %): the stop rarely fires (beta rule: 2/3 DLTs already give P(p1 > 0.3) = 0.92)
    safe = simulate_trials(CRM(target=0.3, safety_rule=rule), [1, 2, 3, 4, 5], [0.05, 0.1, 0.2, 0.3, 0.45],
                           n_trials=1000, seed=6)
    assert safe.p_none < 0.03


def test_crm_safety_options_errors():
    with pytest.raises(TrialError, match="safety_rule"):
        CRM(safety_rule="bayes")
    with pytest.raises(TrialError, match="safety_threshold"):
        CRM(safety_threshold=1.5)
    assert "no safety stop" in CRM(safety_cutoff=None).describe()
