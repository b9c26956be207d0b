"""Foundation shared by every layer: errors and validators, units, file search paths, version.

Nothing here imports another pkcsf sub-package.
"""
