"""A config error reaches the termination log as the failure report does: in at most 4 KiB."""

from __future__ import annotations

from pathlib import Path

from roled.report import LIMIT
from tests.conftest import Layout
from tests.integration.test_bad_input import GOOD, run_roled


def test_a_huge_config_error_is_capped_in_the_termination_log(
    layout: Layout, short_tmp: Path
) -> None:
    """A 110 KB error line is cut to 4 KiB in the termination log and said in full on stderr."""
    garbage = "r" * 110_000
    role = layout.role("web", GOOD + garbage + "\n")
    termination = short_tmp / "termination-log"
    result = run_roled(
        layout, short_tmp / "rt", ROLES="web", ROLED_TERMINATION_LOG=str(termination)
    )
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert garbage in result.stderr
    written = termination.read_bytes()
    assert len(written) <= LIMIT
    assert written.startswith(f"roled: {role}, line ".encode())
    assert written.endswith(b"...\n")
