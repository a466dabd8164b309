"""``python -m wirecache`` runs the command line."""

from wirecache.cli import main

raise SystemExit(main())
