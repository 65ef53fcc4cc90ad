"""``roled status``'s own light reading of its command line: what it takes, and what it leaves
to the full parser (None), which then answers with its usual words."""

from __future__ import annotations

import pytest

from roled.status import _parse

DEFAULTS = {"level": "ready"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["status"], DEFAULTS),
        (["status", "--json"], {"json": "", **DEFAULTS}),
        (["-c", "/etc/s.conf", "status"], {"config": "/etc/s.conf", **DEFAULTS}),
        (["--configuration=/etc/s.conf", "status"], {"config": "/etc/s.conf", **DEFAULTS}),
        (["status", "--runtime-dir", "/run/r"], {"runtime_dir": "/run/r", **DEFAULTS}),
        (["status", "--timeout=0.5", "--level", "alive"], {"timeout": "0.5", "level": "alive"}),
        (["status", "--level=startup"], {"level": "startup"}),
        # Units, mistakes, help and other commands: the full parser's to answer.
        (["status", "--timeout", "2s"], None),
        (["status", "--timeout", "0"], None),
        (["status", "--timeout", "nan"], None),
        (["status", "--timeout"], None),
        (["status", "--level", "bogus"], None),
        (["status", "-h"], None),
        (["status", "--json", "extra"], None),
        (["status", "status"], None),
        (["--timeout", "1", "status"], None),
        (["--json", "status"], None),
        (["check"], None),
        (["-c", "status"], None),
        ([], None),
    ],
)
def test_fast_path_arguments(argv: list[str], expected: dict[str, str] | None) -> None:
    assert _parse(argv) == expected
