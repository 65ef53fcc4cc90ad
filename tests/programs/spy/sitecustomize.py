"""Test spy: with ROLED_TEST_SPY set, every start of supervisord appends its pid to that file.

Put on PYTHONPATH, it lets a test prove that a rejected config started no supervisord at all.
"""

from __future__ import annotations

import os
import sys

_MARKER = os.environ.get("ROLED_TEST_SPY")
# roled starts supervisord through its parent-death guard, roled.spawned.
_MODULES = {"supervisor.supervisord", "roled.spawned"}
if _MARKER and _MODULES & set(getattr(sys, "orig_argv", [])):
    with open(_MARKER, "a", encoding="utf-8") as _file:
        _file.write(f"{os.getpid()}\n")
