"""roled's own ``roled_*`` keys through the real command: strict, and never given to supervisord."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.conftest import PROGRAMS, Layout, Roled, program, roled_next_to

Start = Callable[..., Roled]
TEST_KEYS = {
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(PROGRAMS / "testkeys"), os.environ.get("PYTHONPATH")])
    ),
    "ROLED_TEST_KEYS": "1",
}


def roled_command(
    layout: Layout, runtime: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    return roled_next_to(runtime, "-c", str(layout.main), *args, **env)


def test_a_typo_is_exit_2_naming_file_section_and_key(layout: Layout, short_tmp: Path) -> None:
    """``roled_typo`` is refused in one line before anything starts, by run and by check."""
    path = layout.role("web", f"[program:web]\ncommand={program('print_signals')}\nroled_typo=1\n")
    runtime = short_tmp / "rt"
    for args in ((), ("check",)):
        result = roled_command(layout, runtime, *args, ROLES="web")
        assert result.returncode == 2, result.stderr
        # What follows (a suggestion, or the known keys) depends on the keys features add.
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(
            f"roled: error: {path}: [program:web] roled_typo: unknown roled key ("
        )
        assert not runtime.exists()


def test_a_known_key_runs_and_never_reaches_supervisord(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """The program runs; supervisord's config has no roled_ key; check --print shows it."""
    layout.common("roled_test_note=from common\n")
    layout.role(
        "web",
        f"[program:web]\ncommand={program('print_signals')}\nstartsecs=0\n"
        "[program:api]\n"
        f"command={program('print_signals')}\nstartsecs=0\nroled_test_note=own\n",
    )
    printed = roled_command(layout, short_tmp / "chk", "check", "--print", ROLES="web", **TEST_KEYS)
    assert printed.returncode == 0, printed.stderr
    sections = {chunk.split("]", 1)[0]: chunk for chunk in printed.stdout.split("\n[")}
    assert "roled_test_note = from common" in sections["program:web"]
    assert "roled_test_note = own" in sections["program:api"]
    assert "ignores unknown setting" not in printed.stderr

    roled = start_roled(layout, roles="web", env=TEST_KEYS)
    roled.wait_states({"web": "RUNNING", "api": "RUNNING"})
    assert "roled_test" not in (roled.runtime_dir / "supervisord.conf").read_text()
    assert "ignores unknown setting" not in roled.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_a_program_named_like_roled_listener_is_refused(layout: Layout, short_tmp: Path) -> None:
    """``[program:roled_events]`` used to pass check and then silently never run."""
    path = layout.role("web", f"[program:roled_events]\ncommand={program('print_signals')}\n")
    result = roled_command(layout, short_tmp / "rt", "check", ROLES="web")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"roled: error: {path}: [program:roled_events] uses the name 'roled_events', "
        "reserved for roled's own event listener"
    ]
