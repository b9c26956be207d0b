"""One module per ``pkcsf`` sub-command (or family of sub-commands); each has ``register(sub, common)``.

A new command is a new module here, listed in :data:`COMMANDS` (the order of ``pkcsf --help``).
"""

COMMANDS = ["report", "run", "escalate", "validate", "catalog", "new_drug", "warmup", "sensitivity", "forecast",
            "pathologies"]
