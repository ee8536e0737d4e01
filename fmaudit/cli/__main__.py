from fmaudit.cli import main

raise SystemExit(main())
