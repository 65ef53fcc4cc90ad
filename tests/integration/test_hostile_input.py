"""Hostile input through the real command: a clean run of what supervisor reads, or one line.

Every rejected case must also start no supervisord (a sitecustomize spy records every start) and
leave no runtime directory. Cases already in test_bad_input.py are not repeated here.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Layout, Roled, clean_environ, spy_environ, wait_until
from tests.unit.test_properties import supervisor_programs

Start = Callable[..., Roled]
GOOD = "[program:a]\ncommand=/bin/sleep 100\nstartsecs=0\n"
# A case returns the environment to run with; ROLES is among it.
Make = Callable[[Layout], dict[str, str]]


def run_spied(
    layout: Layout, runtime: Path, spy: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    environ = clean_environ(ROLED_RUNTIME_DIR=str(runtime), **spy_environ(spy), **env)
    return subprocess.run(
        [sys.executable, "-m", "roled", "-c", str(layout.main)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


def assert_rejected(result: subprocess.CompletedProcess[str], runtime: Path, spy: Path) -> str:
    """Exit 2, one 'roled: error:' line, nothing on stdout, no supervisord, no runtime dir."""
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("roled: error: ")
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not spy.exists(), "a supervisord was started"
    assert not runtime.exists()
    return lines[0]


def _role(text: str, name: str = "web") -> Make:
    def make(layout: Layout) -> dict[str, str]:
        layout.role(name, text)
        return {"ROLES": name}

    return make


def _roles(roles: str) -> Make:
    def make(layout: Layout) -> dict[str, str]:
        layout.role("web", GOOD)
        return {"ROLES": roles}

    return make


def _bytes(data: bytes) -> Make:
    def make(layout: Layout) -> dict[str, str]:
        layout.role("web", "").write_bytes(data)
        return {"ROLES": "web"}

    return make


def _common(text: str) -> Make:
    def make(layout: Layout) -> dict[str, str]:
        layout.common(text)
        layout.role("web", GOOD)
        return {"ROLES": "web"}

    return make


def _setting(name: str, value: str) -> Make:
    def make(layout: Layout) -> dict[str, str]:
        layout.role("web", GOOD)
        return {"ROLES": "web", name: value}

    return make


def _duplicate_in_folder(layout: Layout) -> dict[str, str]:
    layout.role("worker", GOOD, file="one.conf")
    layout.role("worker", GOOD, file="two.conf")
    return {"ROLES": "worker"}


def _role_file_is_a_directory(layout: Layout) -> dict[str, str]:
    (layout.roles / "web.conf").mkdir(parents=True)
    return {"ROLES": "web"}


def _role_file_dangling_inside(layout: Layout) -> dict[str, str]:
    layout.roles.mkdir(parents=True)
    (layout.roles / "web.conf").symlink_to(layout.roles / "missing.txt")
    return {"ROLES": "web"}


def _role_file_dangling_outside(layout: Layout) -> dict[str, str]:
    layout.roles.mkdir(parents=True)
    (layout.roles / "web.conf").symlink_to("/nonexistent/roled-test.conf")
    return {"ROLES": "web"}


def _role_folder_linking_outside(layout: Layout) -> dict[str, str]:
    outside = layout.root.parent / "outside"
    outside.mkdir()
    (outside / "celery.conf").write_text(GOOD)
    layout.roles.mkdir(parents=True)
    (layout.roles / "worker").symlink_to(outside)
    return {"ROLES": "worker"}


def _common_is_a_directory(layout: Layout) -> dict[str, str]:
    layout.common_path.mkdir()
    layout.role("web", GOOD)
    return {"ROLES": "web"}


def _common_dangling(layout: Layout) -> dict[str, str]:
    layout.common_path.symlink_to(layout.root / "nowhere.conf")
    layout.role("web", GOOD)
    return {"ROLES": "web"}


def _main_is_a_directory(layout: Layout) -> dict[str, str]:
    layout.main.unlink()
    layout.main.mkdir()
    return {"ROLES": "web"}


REJECTED: dict[str, tuple[Make, str]] = {
    # supervisor would start and run nothing; roled and `roled status` would call it healthy.
    "empty role file": (_role("", "empty"), "nothing to run"),
    # Role names.
    "role name empty among commas": (_roles(" , ,"), "ROLES is not set"),
    "role name ..": (_roles(".."), "invalid role name '..'"),
    "role name absolute": (_roles("/etc/passwd"), "invalid role name '/etc/passwd'"),
    "role name star and a typo": (_roles("*,wbe"), "unknown role 'wbe' (known roles: web)"),
    "role name unicode": (_roles("wéb"), "invalid role name 'wéb'"),
    "role name 10,000 characters": (_roles("w" * 10_000), "is too long (10000 characters)"),
    "role name with ;": (_roles("web;id"), "invalid role name 'web;id'"),
    "role name with $()": (_roles("$(id)"), "invalid role name '$(id)'"),
    "role name with a glob": (_roles("w?b"), "invalid role name 'w?b'"),
    "role name with a backquote": (_roles("`id`"), "invalid role name '`id`'"),
    # Role files.
    "role file without a header": (
        _role("command=/bin/true\n"),
        "line 1: a [section] header must come first",
    ),
    "role file not UTF-8": (_bytes(b"[program:a]\ncommand=/bin/caf\xe9\n"), "is not UTF-8"),
    "role file with [supervisord]": (_role("[supervisord]\n"), "[supervisord] is not allowed"),
    "role file with [inet_http_server]": (
        _role("[inet_http_server]\nport=127.0.0.1:9001\n"),
        "[inet_http_server] is not allowed",
    ),
    "duplicate key": (_role(GOOD + "command=/bin/true\n"), "key 'command' is set twice"),
    "duplicate program in one file": (_role(GOOD + GOOD), "section [program:a] appears twice"),
    "duplicate program across files of a role": (
        _duplicate_in_folder,
        "section [program:a] is defined in both",
    ),
    "program without command": (_role("[program:a]\nstartsecs=0\n"), "[program:a]"),
    "stray %": (_role("[program:a]\ncommand=/bin/echo 100%\n"), "[program:a]"),
    "role file is a directory": (_role_file_is_a_directory, "Is a directory"),
    "role file dangling inside": (_role_file_dangling_inside, "No such file"),
    "role file dangling outside": (_role_file_dangling_outside, "resolves outside"),
    "role folder linking outside": (_role_folder_linking_outside, "resolves outside"),
    # common.conf.
    "common unknown key": (_common("startsec=1\n"), "unknown program setting 'startsec'"),
    "common bad value": (_common("autorestart=maybe\n"), "common.conf"),
    "common two sections": (
        _common("[program:*]\nstartsecs=1\n[program:x]\ncommand=/bin/true\n"),
        "common.conf holds bare key=value lines",
    ),
    "common is a directory": (_common_is_a_directory, "common.conf"),
    "common dangling link": (_common_dangling, "common.conf"),
    "main config is a directory": (_main_is_a_directory, "main config not found"),
    # Settings from the environment.
    "timeout not a number": (_setting("ROLED_SHUTDOWN_TIMEOUT", "soon"), "got 'soon'"),
    "timeout nan": (_setting("ROLED_SHUTDOWN_TIMEOUT", "nan"), "ROLED_SHUTDOWN_TIMEOUT"),
    "timeout infinite": (_setting("ROLED_HANG_TIMEOUT", "1e999"), "ROLED_HANG_TIMEOUT"),
    "grace negative": (_setting("ROLED_KILL_GRACE", "-0.5"), "ROLED_KILL_GRACE"),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_hostile_input_is_rejected_in_one_line(layout: Layout, short_tmp: Path, case: str) -> None:
    """Exit 2, one line naming the culprit, no traceback, no supervisord, no runtime dir."""
    make, expected = REJECTED[case]
    env = make(layout)
    spy, runtime = short_tmp / "spy", short_tmp / "rt"
    line = assert_rejected(run_spied(layout, runtime, spy, env), runtime, spy)
    assert expected in line


def test_spy_sees_a_supervisord_that_was_started(layout: Layout, short_tmp: Path) -> None:
    """Negative control: the spy does record supervisord when a valid config runs."""
    layout.role("web", "[program:a]\ncommand=/nonexistent/binary\n")
    spy = short_tmp / "spy"
    result = run_spied(layout, short_tmp / "rt", spy, {"ROLES": "web"})
    assert result.returncode == 1, result.stderr
    assert spy.read_text().split(), "the spy recorded no supervisord"


def _five_mib(layout: Layout) -> dict[str, str]:
    padding = "; padding to make a large file\n" * (5 * 1024 * 1024 // 31 + 1)
    layout.role("web", padding + GOOD + padding)
    return {"ROLES": "web"}


def _roles_folder_link(layout: Layout) -> dict[str, str]:
    # Kubernetes ConfigMap mounts are links: the folder itself may point anywhere.
    real = layout.root.parent / "configmap"
    real.mkdir()
    (real / "web.conf").write_text(GOOD)
    layout.roles.symlink_to(real)
    return {"ROLES": "web"}


ACCEPTED: dict[str, tuple[Make, set[str]]] = {
    "trailing commas and spaces": (_roles(" web , ,web,  "), {"a"}),
    "star mixed with a name": (_roles("web,*"), {"a"}),
    "missing final newline": (_role("[program:a]\ncommand=/bin/sleep 100\nstartsecs=0"), {"a"}),
    "; and # inside values": (
        _role("[program:a]\ncommand=/bin/sh -c 'sleep 100;:'#x ; comment\nstartsecs=0\n"),
        {"a"},
    ),
    "5 MiB role file": (_five_mib, {"a"}),
    "roles folder is a link outside": (_roles_folder_link, {"a"}),
    "empty timeout counts as unset": (_setting("ROLED_SHUTDOWN_TIMEOUT", ""), {"a"}),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_odd_but_valid_input_runs_what_supervisor_reads(
    layout: Layout, start_roled: Start, case: str
) -> None:
    """roled runs exactly the programs supervisor's own loader reads from the same files."""
    make, expected = ACCEPTED[case]
    env = make(layout)
    roles = env.pop("ROLES")
    roled = start_roled(layout, roles=roles, env=env)
    seen = supervisor_programs(layout, roles)
    assert set(seen) == expected
    roled.wait_states(dict.fromkeys(expected, "RUNNING"))
    for name in expected:
        assert roled.client().process(name).description.startswith("pid ")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


# A few generated role files through the real command; the in-process properties in
# tests/unit/test_properties.py try many more against the assembly alone.
_TOKENS = st.sampled_from(
    [
        "[program:a]\n",
        "[program:b]\n",
        "[group:g]\n",
        "[unix_http_server]\n",
        "command=/bin/sleep 100\n",
        "command=%(ENV_ROLED_TEST_UNSET)s\n",
        "programs=a\n",
        "startsecs=0\n",
        "startsecs=x\n",
        "priority=5\n",
        "autostart=maybe\n",
        "=\n",
        "%\n",
        "; c\n",
        "é\n",
        "\x00\n",
        "[\n",
    ]
)


@settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=st.lists(_TOKENS, max_size=8).map("".join))
def test_generated_role_file_is_rejected_cleanly_or_runs(text: str) -> None:
    """A generated role file gives exit 2 in one line, or the run supervisor's loader predicts."""
    with tempfile.TemporaryDirectory(prefix="rh-", dir="/tmp") as folder:
        root = Path(folder)
        layout = Layout(root / "etc")
        # Every command fails to spawn, so a clean run ends on its own with 1 (FATAL).
        (layout.roles).mkdir(parents=True)
        (layout.roles / "web.conf").write_text(text.replace("/bin/sleep 100", "/nonexistent/x"))
        try:
            accepted: set[str] | None = set(supervisor_programs(layout, "web"))
        except Exception:
            accepted = None
        spy, runtime = root / "spy", root / "rt"
        environ = clean_environ(ROLED_RUNTIME_DIR=str(runtime), ROLES="web", **spy_environ(spy))
        popen = subprocess.Popen(
            [sys.executable, "-m", "roled", "-c", str(layout.main)],
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        try:
            if accepted == set():
                # Nothing would ever end this run: stop it once supervisord is up.
                wait_until(lambda: spy.exists() or popen.poll() is not None, 60, "a start")
                if popen.poll() is None:
                    popen.send_signal(signal.SIGTERM)
            stdout, stderr = popen.communicate(timeout=60)
        finally:
            if popen.poll() is None:
                popen.kill()
                popen.wait(10)
        result = subprocess.CompletedProcess(popen.args, popen.returncode, stdout, stderr)
        if result.returncode == 2:
            assert_rejected(result, runtime, spy)
            return
        assert accepted is not None, f"roled ran what supervisor refuses: {stderr}"
        assert result.returncode == (1 if accepted else 0), stderr
        assert "Traceback" not in stderr
        assert not runtime.exists()
