"""Read-outs of simulated profiles: metrics (Cmax, AUC, time above threshold), compiled whole-window read-outs, NCA.

Imports only :mod:`pkcsf.core` (and NumPy/pandas); works on arrays and frames from any engine run.
"""
