from energizer_hf.cli import main

raise SystemExit(main())
