"""Test keys: with ROLED_TEST_KEYS set, roled knows a ``roled_test_note`` key no feature owns.

Put on PYTHONPATH, it lets a test run the ``roled_*`` framework through the real command before
any feature has added a key of its own.
"""

from __future__ import annotations

import os

if os.environ.get("ROLED_TEST_KEYS"):
    from roled import keys

    keys.KEYS = (*keys.KEYS, keys.Key("roled_test_note", lambda value, origin: value.strip()))
