"""The scenarios the report simulates, in report order."""
from __future__ import annotations

from pkcsf.clinical import regimens as rg
from pkcsf.clinical.scenario import Arm, Scenario
from pkcsf.report.antibody import TRASTUZUMAB_ARMS

#: the simulated scenarios, in report order (name -> one-line description)
REPORT_SCENARIOS = {
    "mtx_single": "methotrexate 12 mg, one injection, lumbar vs Ommaya (4 days)",
    "mtx_induction": "methotrexate 12 mg twice weekly x 4 weeks, lumbar vs Ommaya",
    "mtx_lm": "methotrexate 12 mg, one injection, lumbar vs Ommaya, patients with leptomeningeal metastases "
              "(barrier state, flow blocks and missed punctures as published; 4 days)",
    "pemetrexed": "pemetrexed 10 / 30 / 50 mg, one injection, lumbar vs Ommaya (5 days)",
    "cytarabine": "cytarabine 50 mg twice weekly (free) vs liposomal cytarabine 50 mg once, lumbar (14 days)",
    "osimertinib_linear": "osimertinib 80 vs 160 mg daily for 4 weeks, linear CSF transport",
    "osimertinib_saturable": "osimertinib 80 vs 160 mg daily for 4 weeks, saturable CSF efflux",
    "combination": "osimertinib 160 mg daily + intrathecal pemetrexed 30 mg days 1, 8, 15 (8 weeks)",
    "trastuzumab": "trastuzumab 150 mg intrathecal weekly (lumbar, Ommaya) vs 6 mg/kg IV every 3 weeks, "
                   "leptomeningeal barrier state (8 weeks)",
}



#: the named patient population of the report's leptomeningeal-metastases scenario (pathologies.toml)
LM = "leptomeningeal_metastases"


# ------------------------------------------------------------------ scenarios
def _scenarios(subjects: int, seed: int) -> dict[str, Scenario]:
    common = dict(subjects=subjects, seed=seed, band_subjects=min(subjects, 2000))
    pem_arms = tuple(Arm(f"{d} mg {'Ommaya' if r == 'ommaya' else r}", f"{d} mg {r} once", drug="pemetrexed")
                     for d in (10, 30, 50) for r in ("lumbar", "ommaya"))
    osi = {"80 mg": rg.osimertinib("80 mg", 28), "160 mg": rg.osimertinib("160 mg", 28)}
    return {
        "mtx_single": Scenario((Arm("lumbar", "12 mg lumbar once", drug="methotrexate"),
                                Arm("Ommaya", "12 mg ommaya once", drug="methotrexate")), days=4, **common,
                               name="mtx_single"),
        "mtx_lm": Scenario(tuple(Arm(name, f"12 mg {route} once", drug="methotrexate", patients=LM)
                                 for name, route in (("lumbar", "lumbar"), ("Ommaya", "ommaya"))), days=4,
                           **common, name="mtx_lm"),
        "mtx_induction": Scenario((Arm("lumbar", "12 mg lumbar twice weekly x 4 weeks", drug="methotrexate"),
                                   Arm("Ommaya", "12 mg ommaya twice weekly x 4 weeks", drug="methotrexate")),
                                  days=28, **common, name="mtx_induction"),
        "pemetrexed": Scenario(pem_arms, days=5, **common, name="pemetrexed"),
        "cytarabine": Scenario((Arm("free 50 mg twice weekly", "50 mg lumbar twice weekly x 2 weeks",
                                    drug="cytarabine"),
                                Arm("liposomal 50 mg once", "50 mg lumbar once", drug="cytarabine_liposomal")),
                               days=14, **common, name="cytarabine"),
        "osimertinib_linear": Scenario(tuple(Arm(k, v, drug="osimertinib") for k, v in osi.items()), days=28,
                                       unit="nmol/L", **common, name="osimertinib_linear"),
        "osimertinib_saturable": Scenario(tuple(Arm(k, v, drug="osimertinib", variant="saturable")
                                                for k, v in osi.items()), days=28, unit="nmol/L", **common,
                                          name="osimertinib_saturable"),
        "combination": Scenario((Arm("osimertinib 160 mg + IT pemetrexed 30 mg",
                                     rg.osimertinib_plus_it_pemetrexed(courses=1)),), days=56, dt=0.5, **common,
                                name="combination"),
        "trastuzumab": Scenario(tuple(Arm(k, v, drug="trastuzumab", pathologies={"leptomeningeal_disease": True})
                                      for k, v in TRASTUZUMAB_ARMS.items()), days=56, dt=0.5, unit="mg/L", **common,
                                name="trastuzumab"),
    }
