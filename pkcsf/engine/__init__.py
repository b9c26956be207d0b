"""The engine: models as data, expressions, compilation to kernel tables, dosing events, simulate, results.

The engine knows compartments, parameters and events, never drugs, routes or patients: it imports only
:mod:`pkcsf.core` and :mod:`pkcsf.solvers` (checked by ``tests/test_layers.py``).
"""
