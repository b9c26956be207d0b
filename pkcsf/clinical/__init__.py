"""The clinical layer: drugs and the CNS/CSF model set-up, parameter files with sources, routes and regimens,
virtual populations, scenarios and scenario files, PK-driven escalation, calibration and validation.

Built on :mod:`pkcsf.engine`, :mod:`pkcsf.analysis`, :mod:`pkcsf.trials` and :mod:`pkcsf.plotting`.
"""
