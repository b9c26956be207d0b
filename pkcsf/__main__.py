"""``python -m pkcsf``: the command line (same as the ``pkcsf`` console script)."""
from pkcsf.cli import main

raise SystemExit(main())
