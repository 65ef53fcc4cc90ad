"""Live reload on SIGHUP: only what changed restarts; a broken edit changes nothing."""

from __future__ import annotations

import signal
from collections.abc import Callable

from tests.conftest import Layout, Roled, program, wait_until

Start = Callable[..., Roled]


def sleeper(name: str, extra: str = "") -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n{extra}"


def pids(roled: Roled) -> dict[str, int]:
    return {info.namespec: info.pid for info in roled.client().processes()}


def test_reload_applies_only_the_difference(layout: Layout, start_roled: Start) -> None:
    """Untouched keeps its PID, changed restarts, removed stops, added starts; roled keeps going."""
    layout.role("web", sleeper("untouched"), file="untouched.conf")
    layout.role("web", sleeper("changed"), file="changed.conf")
    removed = layout.role("web", sleeper("removed"), file="removed.conf")
    roled = start_roled(layout, roles="web")
    roled.wait_states({"untouched": "RUNNING", "changed": "RUNNING", "removed": "RUNNING"})
    before = pids(roled)

    layout.role("web", sleeper("changed", "environment=VERSION=2\n"), file="changed.conf")
    removed.unlink()
    layout.role("web", sleeper("added"), file="added.conf")
    roled.send(signal.SIGHUP)
    roled.wait_states({"untouched": "RUNNING", "changed": "RUNNING", "added": "RUNNING"})
    wait_until(lambda: "reloaded:" in roled.stderr, what="the reload to finish")

    after = pids(roled)
    assert after["untouched"] == before["untouched"]
    assert after["changed"] != before["changed"]
    assert "removed" not in after
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_common_change_restarts_every_program(layout: Layout, start_roled: Start) -> None:
    """A new default in common.conf changes every program's config, so each restarts."""
    layout.common("startretries = 3\n")
    layout.role("web", sleeper("a") + sleeper("b"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"a": "RUNNING", "b": "RUNNING"})
    before = pids(roled)
    layout.common("startretries = 5\n")
    roled.send(signal.SIGHUP)
    wait_until(lambda: "reloaded:" in roled.stderr, what="the reload to finish")
    roled.wait_states({"a": "RUNNING", "b": "RUNNING"})
    after = pids(roled)
    assert after["a"] != before["a"]
    assert after["b"] != before["b"]
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_invalid_edit_keeps_every_pid(layout: Layout, start_roled: Start) -> None:
    """A broken edit is logged in one line and nothing restarts."""
    layout.role("web", sleeper("a"))
    layout.role("worker", sleeper("b"))
    roled = start_roled(layout, roles="web,worker")
    roled.wait_states({"a": "RUNNING", "b": "RUNNING"})
    before = pids(roled)
    layout.role("web", sleeper("a", "autorestart=perhaps\n"))
    roled.send(signal.SIGHUP)
    wait_until(lambda: "reload refused" in roled.stderr, what="the refused reload")
    assert pids(roled) == before
    line = next(line for line in roled.stderr.splitlines() if "reload refused" in line)
    assert "web.conf" in line
    assert "perhaps" in line
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_unchanged_config_reload_is_a_no_op(layout: Layout, start_roled: Start) -> None:
    """SIGHUP with nothing edited restarts nothing."""
    layout.role("web", sleeper("a"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"a": "RUNNING"})
    before = pids(roled)
    roled.send(signal.SIGHUP)
    wait_until(lambda: "has not changed" in roled.stderr, what="the no-op reload")
    assert pids(roled) == before
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_reload_adding_a_fatal_program_ends_the_container(
    layout: Layout, start_roled: Start
) -> None:
    """A program added by a reload is watched like any other: FATAL still means exit 1."""
    layout.role("web", sleeper("a"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"a": "RUNNING"})
    layout.role(
        "web",
        sleeper("a") + f"[program:broken]\ncommand={program('exit_with', '2')}\nstartretries=0\n",
    )
    roled.send(signal.SIGHUP)
    assert roled.wait() == 1
    assert "'broken' is FATAL" in roled.reason_line()
