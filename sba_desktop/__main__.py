from sba_desktop.app import main

raise SystemExit(main())
