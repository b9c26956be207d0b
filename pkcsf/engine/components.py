"""The parts a model is declared with: :class:`Parameter`, :class:`Compartment`, :class:`Transfer`,
:class:`Site`, and the transfer builders (:func:`flow`, :func:`exchange`, :func:`first_order`,
:func:`release`, :func:`michaelis_menten`, :func:`accumulate`, :func:`elimination`).

Rate laws: see :mod:`pkcsf.engine.model`. Everything here is re-exported by :mod:`pkcsf.engine.model`.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Parameter", "Compartment", "Transfer", "Site",
    "flow", "exchange", "first_order", "release", "michaelis_menten", "accumulate", "elimination",
    "TRANSFER_TYPES", "COMPARTMENT_KINDS", "ELIMINATED",
]

TRANSFER_TYPES = ("flow", "exchange", "first_order", "release", "michaelis_menten", "accumulate")
COMPARTMENT_KINDS = ("mass", "accumulator")
ELIMINATED = "eliminated"


@dataclass(frozen=True)
class Parameter:
    """A model parameter: name, unit and meaning (its value lives elsewhere).

    Parameters
    ----------
    name : str
        Parameter name (domain form, e.g. ``CL``, ``V_CSF``).
    unit : str, optional
        Unit of its value (``"L/h"``).
    description : str, optional
        Meaning.
    default : float, optional
        Value used when none is given (rare; values belong in ``parameters/``).

    Examples
    --------
    >>> Parameter("CL", "L/h", "clearance").unit
    'L/h'
    """

    name: str
    unit: str = ""
    description: str = ""
    default: float | None = None


@dataclass(frozen=True)
class Compartment:
    """A well-mixed space.

    ``volume`` is a parameter name, an expression or a number in L; ``None``
    makes an amount-only state (a gut depot, an injection depot) whose output
    is an amount in mg. ``kind='accumulator'`` marks a bookkeeping state (an
    AUC) that is not drug mass.

    Parameters
    ----------
    name : str
        Compartment name.
    volume : str, float or None, optional
        Volume (L): a parameter name, an expression or a number; None for an amount-only state.
    description : str, optional
        Free text.
    kind : {"mass", "accumulator"}, optional
        ``"accumulator"`` for a bookkeeping state (see :func:`accumulate`).
    group : str, optional
        Output group this compartment belongs to.

    Examples
    --------
    >>> Compartment("plasma", "V_C").volume
    'V_C'
    """

    name: str
    volume: str | float | None = None
    description: str = ""
    kind: str = "mass"
    group: str = ""


@dataclass(frozen=True)
class Transfer:
    """A transfer between compartments (or out of the model when ``target`` is None).

    Build it with :func:`flow`, :func:`exchange`, :func:`first_order`, :func:`release`,
    :func:`michaelis_menten`, :func:`accumulate` or :func:`elimination`; the rate laws are in the
    table of the module docstring.

    Attributes
    ----------
    type : str
        One of ``TRANSFER_TYPES``.
    source, target : str
        Compartment names (``target`` None: elimination).
    coefficient : str or float
        Parameter name, expression or number (Q, CL or k).
    vmax, km, fu : str or float
        Michaelis-Menten terms (``fu`` optional).
    description : str
        Free text.

    Examples
    --------
    >>> t = michaelis_menten("csf", "blood", vmax="VMAX", km="KM")
    >>> t.type, t.source, t.target, t.vmax
    ('michaelis_menten', 'csf', 'blood', 'VMAX')
    """

    type: str
    source: str
    target: str | None = None
    coefficient: str | float | None = None
    vmax: str | float | None = None
    km: str | float | None = None
    fu: str | float | None = None
    description: str = ""


@dataclass(frozen=True)
class Site:
    """A named dosing site: where a dose goes, with bioavailability and lag.

    ``targets`` maps compartment names to the fraction of the dose each gets
    (expressions allowed, e.g. ``{"lumbar_sas": "1 - F_LEAK", "epidural": "F_LEAK"}``).

    Parameters
    ----------
    name : str
        Site name (``"lumbar"``, ``"oral"``).
    targets : tuple of (str, str or float)
        Compartment and fraction of the dose it receives.
    bioavailability : str or float, optional
        Fraction absorbed (expression allowed).
    lag : str or float, optional
        Lag time (h).
    description : str, optional
        Free text.

    Examples
    --------
    >>> Site("iv", (("plasma", 1.0),)).name
    'iv'
    """

    name: str
    targets: tuple[tuple[str, str | float], ...]
    bioavailability: str | float | None = None
    lag: str | float | None = None
    description: str = ""


def flow(source: str, target: str | None, Q: str | float, description: str = "") -> Transfer:
    """One-way clearance or bulk flow: rate = Q * C_source (to ``None`` eliminates).

    Parameters
    ----------
    source, target : str
        Compartment names (``target`` None eliminates).
    Q : str or float
        Clearance or flow (L/h): a parameter name, an expression or a number.
    description : str, optional
        Free text.

    Returns
    -------
    Transfer
        The transfer.

    Examples
    --------
    >>> flow("lv", "tfv", "Q_CSF").type
    'flow'
    """
    return Transfer("flow", source, target, coefficient=Q, description=description)


def elimination(source: str, CL: str | float, description: str = "") -> Transfer:
    """Elimination by clearance from ``source``: rate = CL * C_source.

    Parameters
    ----------
    source : str
        Compartment name.
    CL : str or float
        Clearance (L/h): a parameter name, an expression or a number.
    description : str, optional
        Free text.

    Returns
    -------
    Transfer
        A ``flow`` transfer with no target.

    Examples
    --------
    >>> elimination("plasma", "CL").target is None
    True
    """
    return Transfer("flow", source, None, coefficient=CL, description=description)


def exchange(a: str, b: str, Q: str | float, description: str = "") -> Transfer:
    """Bidirectional exchange: rate a->b = Q * (C_a - C_b).

    Parameters
    ----------
    a, b : str
        Compartment names.
    Q : str or float
        Exchange clearance (L/h): a parameter name, an expression or a number.
    description : str, optional
        Free text.

    Returns
    -------
    Transfer
        The transfer.

    Examples
    --------
    >>> exchange("plasma", "brain_ecf", "PS_BBB").type
    'exchange'
    """
    return Transfer("exchange", a, b, coefficient=Q, description=description)


def first_order(source: str, target: str | None, k: str | float, description: str = "") -> Transfer:
    """First-order transfer of amount: rate = k * A_source.

    Parameters
    ----------
    source, target : str
        Compartment names (``target`` None eliminates).
    k : str or float
        Rate constant (1/h): a parameter name, an expression or a number.
    description : str, optional
        Free text.

    Returns
    -------
    Transfer
        The transfer.

    Examples
    --------
    >>> first_order("gut", "plasma", "KA").type
    'first_order'
    """
    return Transfer("first_order", source, target, coefficient=k, description=description)


def release(source: str, target: str, k: str | float, description: str = "") -> Transfer:
    """First-order release from a depot species (e.g. liposomes) into free drug.

    Parameters
    ----------
    source, target : str
        Depot and free-drug compartment names.
    k : str or float
        Release rate constant (1/h).
    description : str, optional
        Free text.

    Returns
    -------
    Transfer
        The transfer.

    Examples
    --------
    >>> release("lipo_csf", "csf", "K_REL").type
    'release'
    """
    return Transfer("release", source, target, coefficient=k, description=description)


def michaelis_menten(source: str, target: str | None, vmax: str | float, km: str | float,
                     fu: str | float | None = None, description: str = "") -> Transfer:
    """Saturable transfer: rate = Vmax * fu*C / (Km + fu*C), C the source concentration.

    Parameters
    ----------
    source, target : str
        Compartment names (``target`` None eliminates).
    vmax : str or float
        Maximal rate (mg/h).
    km : str or float
        Concentration at half the maximal rate (mg/L).
    fu : str or float, optional
        Unbound fraction applied to C (default 1).
    description : str, optional
        Free text.

    Returns
    -------
    Transfer
        The transfer.

    Examples
    --------
    >>> michaelis_menten("csf", "plasma", "VMAX", "KM").type
    'michaelis_menten'
    """
    return Transfer("michaelis_menten", source, target, vmax=vmax, km=km, fu=fu, description=description)


def accumulate(source: str, target: str, description: str = "") -> Transfer:
    """An accumulator: d(target)/dt = C_source, so ``target`` holds the AUC of ``source`` (mg*h/L).

    Nothing is taken from the source; mark the target compartment ``kind="accumulator"``.

    Parameters
    ----------
    source, target : str
        Compartment names.
    description : str, optional
        Free text.

    Returns
    -------
    Transfer
        The transfer.

    Examples
    --------
    >>> accumulate("plasma", "auc_plasma").type
    'accumulate'
    """
    return Transfer("accumulate", source, target, description=description)
