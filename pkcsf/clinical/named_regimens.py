"""Named clinical regimens with their sources (:data:`NAMED_REGIMENS`, :data:`REGIMEN_SOURCES`)."""
from __future__ import annotations

from pkcsf.clinical.calendars import (
    H_DAY,
    _hours,
    daily,
    every,
    monthly,
    on_days,
    twice_weekly,
    weekly,
)
from pkcsf.core.errors import DosingError, check_choice, check_int
from pkcsf.engine.dosing import Regimen

__all__ = ["methotrexate_it", "cytarabine_it", "thiotepa_it", "liposomal_cytarabine", "depocyt_label", "pemetrexed_pan2019", "pemetrexed_d1d8", "osimertinib", "osimertinib_plus_it_pemetrexed", "NAMED_REGIMENS", "REGIMEN_SOURCES", "named_regimen"]

# --------------------------------------------------------------------------- named regimens

REGIMEN_SOURCES = {
    "methotrexate_it": "Liao et al. 2025 (review of intrathecal therapy for leptomeningeal metastases), citing "
                       "Beauchesne P. Intrathecal chemotherapy for treatment of leptomeningeal dissemination of "
                       "metastatic tumours. Lancet Oncol 2010;11(9):871-9: methotrexate 10-15 mg twice weekly x 4 "
                       "weeks (induction), weekly x 4 weeks (consolidation), then monthly (maintenance)",
    "cytarabine_it": "same schedule as methotrexate_it (Beauchesne, Lancet Oncol 2010;11:871); cytarabine 25-100 mg",
    "thiotepa_it": "same schedule as methotrexate_it (Beauchesne, Lancet Oncol 2010;11:871); thiotepa 10 mg",
    "liposomal_cytarabine": "DepoCyt(e) 50 mg intrathecally every 2 weeks (Glantz et al.; DepoCyt prescribing "
                            "information)",
    "depocyt_label": "label:DepoCyt (cytarabine liposome injection) US prescribing information, Dosage and "
                     "Administration: induction 50 mg every 14 days x 2 (weeks 1, 3); consolidation every 14 days "
                     "x 3 (weeks 5, 7, 9) plus one dose at week 13; maintenance every 28 days x 4 (weeks 17, 21, "
                     "25, 29)",
    "pemetrexed_pan2019": "Pan Z, et al. A pilot phase 1 study of intrathecal pemetrexed for refractory "
                          "leptomeningeal metastases from non-small-cell lung cancer. Front Oncol 2019;9:838. "
                          "doi:10.3389/fonc.2019.00838 (PMID 31544065): twice per week for 2 weeks (induction), "
                          "then once per week for 4 weeks (consolidation); MTD 10 mg",
    "pemetrexed_d1d8": "Li et al. 2023, Clin Lung Cancer: intrathecal pemetrexed via Ommaya reservoir on days 1 and "
                       "8 every 21 days (schedule as given in the project brief; dose not verified here)",
    "osimertinib": "label:TAGRISSO (osimertinib) 80 mg once daily; 160 mg once daily for leptomeningeal "
                   "metastases per Yang JCH et al., BLOOM study, J Clin Oncol 2020;38:538",
    "osimertinib_plus_it_pemetrexed": "Zhong et al., Front Oncol 2024;14:1377451: osimertinib 160 mg daily plus "
                                      "intrathecal pemetrexed 30 mg, 2-3 injections per course every 2-3 months "
                                      "(course structure here is a stated default, see the docstring)",
}


def _methotrexate_schedule(dose, route, maintenance_months, drug, bsa) -> Regimen:
    ind = twice_weekly(dose, route, 4, drug=drug, label="induction", bsa=bsa)
    con = weekly(dose, route, 4, drug=drug, label="consolidation", bsa=bsa)
    reg = ind.then(con)
    if maintenance_months:
        months = check_int("maintenance_months", maintenance_months, 1, DosingError, whole_floats=True)
        reg = reg.then(monthly(dose, route, months, drug=drug,
                               label="maintenance", bsa=bsa))
    return reg


def methotrexate_it(dose: float | str = "12 mg", route: str = "lumbar", *, maintenance_months: int = 6,
                    bsa: float | str | None = None) -> Regimen:
    """Intrathecal methotrexate 10-15 mg: induction, consolidation, maintenance.

    * induction: twice weekly (Mon/Thu) x 4 weeks: days 1, 4, 8, 11, 15, 18, 22, 25;
    * consolidation: weekly x 4 weeks: days 29, 36, 43, 50;
    * maintenance: monthly (every 28 days) x ``maintenance_months`` from day 57
      (clinically "until progression": give the number of months to simulate;
      0 omits it).

    Source: Liao et al. 2025 review, citing Beauchesne P, Lancet Oncol
    2010;11(9):871-9. Doses are labelled induction/consolidation/maintenance
    and carry ``drug="methotrexate"``.

    Parameters
    ----------
    dose : float or str, optional
        Amount of each injection (default 12 mg).
    route : str, optional
        Intrathecal route (default lumbar).
    maintenance_months : int, optional
        Monthly maintenance doses (0: none).
    bsa : float or str, optional
        Body-surface area for mg/m2 doses.

    Returns
    -------
    Regimen
        Induction, consolidation and maintenance phases.

    Examples
    --------
    >>> len(methotrexate_it(maintenance_months=0))
    12
    """
    return _methotrexate_schedule(dose, route, maintenance_months, "methotrexate", bsa)


def cytarabine_it(dose: float | str = "50 mg", route: str = "lumbar", *, maintenance_months: int = 6,
                  bsa: float | str | None = None) -> Regimen:
    """Intrathecal (free) cytarabine 25-100 mg on the methotrexate schedule (see :func:`methotrexate_it`).

    Source of the schedule: Beauchesne, Lancet Oncol 2010;11:871 (as for methotrexate). The default
    50 mg is a mid-range choice within 25-100 mg. ``drug="cytarabine"``.

    Parameters
    ----------
    dose : float or str, optional
        Amount of each injection (default 50 mg).
    route : str, optional
        Intrathecal route (default lumbar).
    maintenance_months : int, optional
        Monthly maintenance doses (0: none).
    bsa : float or str, optional
        Body-surface area for mg/m2 doses.

    Returns
    -------
    Regimen
        Induction, consolidation and maintenance phases.

    Examples
    --------
    >>> len(cytarabine_it(maintenance_months=0))
    12
    """
    return _methotrexate_schedule(dose, route, maintenance_months, "cytarabine", bsa)


def thiotepa_it(dose: float | str = "10 mg", route: str = "lumbar", *, maintenance_months: int = 6,
                bsa: float | str | None = None) -> Regimen:
    """Intrathecal thiotepa 10 mg on the methotrexate schedule (see :func:`methotrexate_it`).

    Source of the schedule: Beauchesne, Lancet Oncol 2010;11:871. ``drug="thiotepa"``.

    Parameters
    ----------
    dose : float or str, optional
        Amount of each injection (default 10 mg).
    route : str, optional
        Intrathecal route (default lumbar).
    maintenance_months : int, optional
        Monthly maintenance doses (0: none).
    bsa : float or str, optional
        Body-surface area for mg/m2 doses.

    Returns
    -------
    Regimen
        Induction, consolidation and maintenance phases.

    Examples
    --------
    >>> len(thiotepa_it(maintenance_months=0))
    12
    """
    return _methotrexate_schedule(dose, route, maintenance_months, "thiotepa", bsa)


def liposomal_cytarabine(n: int = 6, route: str = "lumbar", *, dose: float | str = "50 mg") -> Regimen:
    """Liposomal cytarabine (DepoCyt) 50 mg every 2 weeks, ``n`` doses (default 6 = 12 weeks).

    Source: DepoCyt prescribing information and its trials (every 14 days). The
    full label schedule with maintenance is :func:`depocyt_label`.
    ``drug="cytarabine_liposomal"`` (the liposome is handled by the drug, not the route).

    Parameters
    ----------
    n : int, optional
        Number of doses.
    route : str, optional
        Intrathecal route.
    dose : float or str, optional
        Amount of each dose.

    Returns
    -------
    Regimen
        The doses, ``drug="cytarabine_liposomal"``.

    Examples
    --------
    >>> len(liposomal_cytarabine(4))
    4
    """
    return every(dose, route, "14 d", n, drug="cytarabine_liposomal", label="every 2 weeks")


def depocyt_label(route: str = "lumbar", *, dose: float | str = "50 mg") -> Regimen:
    """The DepoCyt label schedule for lymphomatous meningitis (10 doses over 29 weeks).

    * induction: 50 mg every 14 days x 2 (weeks 1 and 3: days 1, 15);
    * consolidation: every 14 days x 3 (weeks 5, 7, 9: days 29, 43, 57) plus one
      dose at week 13 (day 85); the phase runs to week 17;
    * maintenance: every 28 days x 4 (weeks 17, 21, 25, 29: days 113, 141, 169, 197);
      ends at day 225 (week 33).

    "Week w" is its first day, day 7(w - 1) + 1. Source: DepoCyt (cytarabine
    liposome injection) US prescribing information, Dosage and Administration.

    Parameters
    ----------
    route : str, optional
        Intrathecal route.
    dose : float or str, optional
        Amount of each dose.

    Returns
    -------
    Regimen
        Induction, consolidation and maintenance.

    Examples
    --------
    >>> len(depocyt_label())
    10
    """
    drug = "cytarabine_liposomal"
    ind = every(dose, route, "14 d", 2, drug=drug, label="induction")
    con = on_days(dose, route, [1, 15, 29, 57], "12 weeks", 1, drug=drug, label="consolidation")
    mnt = every(dose, route, "28 d", 4, drug=drug, label="maintenance")
    return ind.then(con).then(mnt)


def pemetrexed_pan2019(dose: float | str = "10 mg", route: str = "lumbar", *,
                       bsa: float | str | None = None) -> Regimen:
    """Intrathecal pemetrexed: twice weekly x 2 weeks, then weekly x 4 weeks.

    Source: Pan Z et al., Front Oncol 2019;9:838 (phase 1; doses escalated from
    10 mg, MTD 10 mg, hence the default; later studies used up to 50 mg).
    Induction on days 1, 4, 8, 11 (Mon/Thu); consolidation on days 15, 22, 29, 36.

    Parameters
    ----------
    dose : float or str, optional
        Amount of each injection.
    route : str, optional
        Intrathecal route.
    bsa : float or str, optional
        Body-surface area for mg/m2 doses.

    Returns
    -------
    Regimen
        Induction and consolidation.

    Examples
    --------
    >>> len(pemetrexed_pan2019())
    8
    """
    drug = "pemetrexed"
    return twice_weekly(dose, route, 2, drug=drug, label="induction", bsa=bsa).then(
        weekly(dose, route, 4, drug=drug, label="consolidation", bsa=bsa))


def pemetrexed_d1d8(dose: float | str = "30 mg", route: str = "ommaya", *, cycles: int = 4,
                    bsa: float | str | None = None) -> Regimen:
    """Intrathecal pemetrexed by Ommaya reservoir on days 1 and 8 of 21-day cycles.

    Source: Li et al. 2023, Clin Lung Cancer (schedule). The default 30 mg is
    an assumption inside the 10-50 mg range used for intrathecal pemetrexed.

    Parameters
    ----------
    dose : float or str, optional
        Amount of each injection.
    route : str, optional
        Route (default ommaya).
    cycles : int, optional
        Number of 21-day cycles.
    bsa : float or str, optional
        Body-surface area for mg/m2 doses.

    Returns
    -------
    Regimen
        The cycles.

    Examples
    --------
    >>> len(pemetrexed_d1d8(cycles=2))
    4
    """
    return on_days(dose, route, [1, 8], "21 d", cycles, drug="pemetrexed", bsa=bsa)


def osimertinib(dose: float | str = "80 mg", days: int = 28) -> Regimen:
    """Oral osimertinib once daily (80 mg standard; 160 mg for leptomeningeal disease, BLOOM).

    Source: TAGRISSO label (80 mg daily); Yang JCH et al., J Clin Oncol 2020;38:538 (160 mg in LM).

    Parameters
    ----------
    dose : float or str, optional
        Daily oral dose.
    days : int, optional
        Number of days.

    Returns
    -------
    Regimen
        Daily oral doses, ``drug="osimertinib"``.

    Examples
    --------
    >>> len(osimertinib(days=7))
    7
    """
    return daily(dose, "oral", days, drug="osimertinib", label="daily")


def osimertinib_plus_it_pemetrexed(osimertinib_dose: float | str = "160 mg", pemetrexed_dose: float | str = "30 mg",
                                   route: str = "lumbar", *, courses: int = 3, injections_per_course: int = 3,
                                   injection_interval: float | str = "1 week",
                                   course_interval: float | str = "8 weeks") -> Regimen:
    """Osimertinib 160 mg daily plus courses of intrathecal pemetrexed 30 mg.

    Zhong et al. (Front Oncol 2024;14:1377451) gave 2-3 intrathecal pemetrexed
    injections per course, a course every 2-3 months. **Defaults chosen here:**
    3 injections one week apart per course (days 1, 8, 15 of the course),
    a course every 8 weeks ("2 months" = 2 x 28 days), 3 courses; osimertinib
    daily from day 1 through the end of the last course interval
    (``courses`` x ``course_interval``). Pemetrexed doses are labelled
    "course k", osimertinib doses "daily".

    Parameters
    ----------
    osimertinib_dose, pemetrexed_dose : float or str, optional
        Daily oral dose and intrathecal dose.
    route : str, optional
        Intrathecal route.
    courses : int, optional
        Number of pemetrexed courses.
    injections_per_course : int, optional
        Injections per course.
    injection_interval, course_interval : str, optional
        Time between injections and between course starts.

    Returns
    -------
    Regimen
        Both drugs (each dose names its drug).
    """
    ci = _hours(course_interval, "course_interval")
    ii = _hours(injection_interval, "injection_interval")
    courses = check_int("courses", courses, 1, DosingError, whole_floats=True)
    n_inj = check_int("injections_per_course", injections_per_course, 1, DosingError, whole_floats=True)
    if (n_inj - 1) * ii >= ci:
        raise DosingError("injection_interval", injection_interval,
                          "the injections of a course must fit inside the course interval")
    total = courses * ci
    if total % H_DAY:
        raise DosingError("course_interval", course_interval, "must be a whole number of days")
    osi = daily(osimertinib_dose, "oral", int(total / H_DAY), drug="osimertinib", label="daily")
    it = Regimen()
    for k in range(courses):
        c = every(pemetrexed_dose, route, ii, n_inj, drug="pemetrexed", label=f"course {k + 1}")
        it = it + Regimen(c.doses, end=ci, origin=0.0).shift(k * ci)
    return osi + it


NAMED_REGIMENS = {
    "methotrexate_it": methotrexate_it,
    "cytarabine_it": cytarabine_it,
    "thiotepa_it": thiotepa_it,
    "liposomal_cytarabine": liposomal_cytarabine,
    "depocyt_label": depocyt_label,
    "pemetrexed_pan2019": pemetrexed_pan2019,
    "pemetrexed_d1d8": pemetrexed_d1d8,
    "osimertinib": osimertinib,
    "osimertinib_plus_it_pemetrexed": osimertinib_plus_it_pemetrexed,
}


def named_regimen(name: str, **kwargs: object) -> Regimen:
    """A named clinical regimen by name (see :data:`NAMED_REGIMENS`; sources in :data:`REGIMEN_SOURCES`).

    Parameters
    ----------
    name : str
        A key of :data:`NAMED_REGIMENS`.
    **kwargs
        Options of that regimen's builder.

    Returns
    -------
    Regimen
        The regimen.

    Examples
    --------
    >>> len(named_regimen("pemetrexed_pan2019", dose="10 mg"))
    8
    """
    check_choice("regimen name", name, sorted(NAMED_REGIMENS), DosingError)
    return NAMED_REGIMENS[name](**kwargs)
