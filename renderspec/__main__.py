"""Allows `python -m renderspec`."""

from renderspec.cli import main

raise SystemExit(main())
