"""``python -m app`` is the ``vigil`` command."""

from app.cli import main

raise SystemExit(main())
