from pkcsf.cli import main

raise SystemExit(main())
