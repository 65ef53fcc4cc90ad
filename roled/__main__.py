"""Allow ``python -m roled``."""

from __future__ import annotations

from roled.cli import main

raise SystemExit(main())
