"""Test spy: with ROLED_TEST_SPY set, every start of supervisord appends its pid to that file.

Put on PYTHONPATH, it lets a test prove that a rejected config started no supervisord at all.
"""

from __future__ import annotations

import os
import sys

_MARKER = os.environ.get("ROLED_TEST_SPY")
if _MARKER and "supervisor.supervisord" in getattr(sys, "orig_argv", []):
    with open(_MARKER, "a", encoding="utf-8") as _file:
        _file.write(f"{os.getpid()}\n")
