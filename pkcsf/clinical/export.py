"""Simulated profiles for the user's own tools: an ``xarray.Dataset`` view (optional ``xarray`` package).

:func:`arm_to_xarray` and :func:`scenario_to_xarray` take results (duck-typed: ``times``, ``profiles``,
``typical``, ``groups``, ``unit``, ``metrics``) so that this module does not import the scenario layer.
Parquet tables are written by ``pkcsf run --format parquet`` (pyarrow).
"""
from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from pkcsf.core.errors import OutputError

if TYPE_CHECKING:
    import xarray

# the arm and scenario results are typed Any: pkcsf.clinical.scenario_results imports this module (no cycle)

__all__ = ["arm_to_xarray", "scenario_to_xarray", "require_xarray"]


def require_xarray() -> ModuleType:
    """The xarray module, or an error saying how to install it.

    Returns
    -------
    module
        ``xarray``.

    Raises
    ------
    OutputError
        xarray is not installed (it is the optional extra ``pkcsf[xarray]``).
    """
    try:
        import xarray
    except ImportError:
        raise OutputError("to_xarray", "xarray is not installed",
                          "install the optional extra: pip install 'pkcsf[xarray]' (or pip install xarray)") from None
    return xarray


def _subject_ids(arm, drug, n):
    m = arm.metrics
    if m is not None and len(m) and "id" in m:
        ids = m.loc[m["drug"] == drug, "id"].drop_duplicates().tolist()[:n]
        if len(ids) == n:
            return ids
    return list(range(n))


def arm_to_xarray(arm: Any) -> xarray.Dataset:
    """One arm's band profiles as an xarray Dataset.

    Parameters
    ----------
    arm : ArmResult
        One arm of a scenario result.

    Returns
    -------
    xarray.Dataset
        Dims ``subject, time, group``; one data variable per drug (concentration in the result's unit) and
        ``<drug>_typical`` (dims ``time, group``). Attributes: ``unit``, ``time_unit`` (h), ``arm``. Subjects
        are the band subjects (the first ``band_subjects`` of the population, or the patients of an event
        table); groups differ per drug, so each drug has its own group dimension when the arm holds several
        drugs (``group_<drug>``).

    Raises
    ------
    OutputError
        xarray is not installed.
    """
    xr = require_xarray()
    drugs = list(arm.profiles)
    data_vars, coords = {}, {"time": ("time", np.asarray(arm.times, dtype=float), {"units": "h"})}
    same_groups = len({tuple(arm.groups[d]) for d in drugs}) == 1
    first = True
    for d in drugs:
        prof = np.asarray(arm.profiles[d])
        gdim = "group" if same_groups else f"group_{d}"
        if gdim not in coords:
            coords[gdim] = (gdim, list(arm.groups[d]))
        ids = _subject_ids(arm, d, prof.shape[0])
        if first:
            coords["subject"] = ("subject", np.asarray(ids, dtype=object if any(isinstance(i, str) for i in ids)
                                                       else None))
            first = False
        attrs = {"units": arm.unit, "long_name": f"{d} concentration", "drug": d}
        data_vars[d] = (("subject", "time", gdim), prof, attrs)
        data_vars[f"{d}_typical"] = (("time", gdim), np.asarray(arm.typical[d]),
                                     dict(attrs, long_name=f"{d} concentration, typical subject"))
    # a time listed twice (before/after a dose) is kept: the index is not unique, as in the result
    ds = xr.Dataset(data_vars, coords=coords, attrs={"unit": arm.unit, "time_unit": "h", "arm": arm.name})
    return ds


def scenario_to_xarray(res: Any) -> xarray.Dataset:
    """Every arm's profiles: :func:`arm_to_xarray` per arm, concatenated along a new ``arm`` dimension.

    Arms with different time grids, subjects or groups are aligned by an outer join (missing values NaN);
    subject *i* is the same virtual subject in every arm, and an event table's patients keep their IDs (labelled
    ``"patient <ID>"`` when the scenario also has virtual-subject arms, so that they are never aligned with them).

    Parameters
    ----------
    res : ScenarioResult
        A scenario result.

    Returns
    -------
    xarray.Dataset
        Dims ``arm, subject, time, group`` (see :func:`arm_to_xarray`). Units are the arms' own (``Arm(...,
        unit=...)``): a coordinate ``unit`` along ``arm``; the attribute ``unit`` of the dataset and ``units`` of
        each variable only when every arm (that has the drug) shares one.

    Raises
    ------
    OutputError
        xarray is not installed.
    """
    xr = require_xarray()
    parts = []
    kinds = {bool(getattr(a, "datasets", None)) for a in res.arms.values()}
    for name, arm in res.arms.items():
        ds = arm_to_xarray(arm)
        if len(kinds) > 1 and getattr(arm, "datasets", None):
            # event-table patients beside virtual subjects: patient 1 is not virtual subject 1
            ds = ds.assign_coords(subject=np.array([f"patient {i}" for i in ds["subject"].to_numpy()], dtype=object))
        # an outer join needs unique time labels: the value after a dose is kept (outputs are right-continuous)
        t = ds["time"].to_numpy()
        keep = np.append(t[1:] != t[:-1], True)
        parts.append(ds.isel(time=np.flatnonzero(keep)))
    out = xr.concat(parts, dim="arm", join="outer", combine_attrs="drop_conflicts")
    out = out.assign_coords(arm=list(res.arms))
    out.attrs.pop("arm", None)              # the arms are a dimension here
    # each arm's own unit (Arm(..., unit=...)), never the scenario's default: the data are in the arms' units
    units = {name: arm.unit for name, arm in res.arms.items()}
    out = out.assign_coords(unit=("arm", [units[a] for a in res.arms]))
    for var in out.data_vars:
        drug = out[var].attrs.get("drug", var)
        own = {u for name, u in units.items() if drug in res.arms[name].profiles}
        out[var].attrs.pop("units", None)
        if len(own) == 1:
            out[var].attrs["units"] = own.pop()
        else:
            out[var].attrs["units_note"] = "the arms' units differ: see the coordinate 'unit' (per arm)"
    out.attrs.pop("unit", None)
    if len(set(units.values())) == 1:
        out.attrs["unit"] = next(iter(units.values()))
    else:
        out.attrs["unit_note"] = "the arms' units differ: see the coordinate 'unit' (per arm)"
    out.attrs.update({"time_unit": "h", "scenario": res.scenario.name})
    return out
