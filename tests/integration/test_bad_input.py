"""Every user mistake: exit 2, one line on stderr naming the culprit, nothing started or left."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Layout, clean_environ

GOOD = "[program:a]\ncommand=/bin/sleep 100\n"


def run_roled(
    layout: Layout, runtime: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = clean_environ(ROLED_RUNTIME_DIR=str(runtime), **env)
    return subprocess.run(
        [sys.executable, "-m", "roled", "-c", str(layout.main), *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _unknown_role(layout: Layout) -> dict[str, str]:
    layout.role("web", GOOD)
    return {"ROLES": "wbe"}


def _bad_name(layout: Layout) -> dict[str, str]:
    layout.role("web", GOOD)
    return {"ROLES": "web,../etc"}


def _duplicate(layout: Layout) -> dict[str, str]:
    layout.role("web", GOOD)
    layout.role("worker", GOOD)
    return {"ROLES": "web,worker"}


def _undefined_env(layout: Layout) -> dict[str, str]:
    layout.role("web", "[program:a]\ncommand=/bin/sleep %(ENV_ROLED_TEST_UNSET)s\n")
    return {"ROLES": "web"}


def _bad_value(layout: Layout) -> dict[str, str]:
    layout.role("web", GOOD + "startsecs=soon\n")
    return {"ROLES": "web"}


def _unparseable(layout: Layout) -> dict[str, str]:
    layout.role("web", GOOD + "garbage line\n")
    return {"ROLES": "web"}


def _binary(layout: Layout) -> dict[str, str]:
    layout.role("web", "").write_bytes(b"\x00\xff\xfe\x00binary")
    return {"ROLES": "web"}


def _bad_timeout(layout: Layout) -> dict[str, str]:
    layout.role("web", GOOD)
    return {"ROLES": "web", "ROLED_SHUTDOWN_TIMEOUT": "-1"}


def _no_roles_folder(layout: Layout) -> dict[str, str]:
    return {"ROLES": "web"}


def _no_default_roles(layout: Layout) -> dict[str, str]:
    layout.role("web", GOOD)
    return {}


def _unknown_roled_key(layout: Layout) -> dict[str, str]:
    layout.write_main("[supervisord]\n[roled]\nshutdown_timout=5\n")
    layout.role("web", GOOD)
    return {"ROLES": "web"}


def _missing_main(layout: Layout) -> dict[str, str]:
    layout.main.unlink()
    return {"ROLES": "web"}


def _common_section(layout: Layout) -> dict[str, str]:
    layout.common("[program:x]\ncommand=/bin/true\n")
    layout.role("web", GOOD)
    return {"ROLES": "web"}


def _hashed_password(layout: Layout) -> dict[str, str]:
    layout.write_main(
        "[supervisord]\n[unix_http_server]\nfile=/tmp/roled-test-x.sock\n"
        "username=u\npassword={SHA}82ab876d1387bfafe46cc1c8a2ef074eae50cb1d\n"
    )
    layout.role("web", GOOD)
    return {"ROLES": "web"}


def _hashed_password_mismatch(layout: Layout) -> dict[str, str]:
    _hashed_password(layout)
    with layout.main.open("a") as main:
        main.write("[supervisorctl]\nusername=u\npassword=not-the-one\n")
    return {"ROLES": "web"}


def _empty_role(layout: Layout) -> dict[str, str]:
    layout.role("web", "; programs come later\n")
    return {"ROLES": "web"}


def _no_program(layout: Layout) -> dict[str, str]:
    layout.write_main("[supervisord]\nnodaemon=true\n")
    return {}


CASES: dict[str, tuple[Callable[[Layout], dict[str, str]], str]] = {
    "unknown role": (_unknown_role, "unknown role 'wbe' (known roles: web)"),
    "role name with ..": (_bad_name, "invalid role name '../etc'"),
    "duplicate program": (_duplicate, "section [program:a] is defined in both"),
    "undefined env": (_undefined_env, "environment variable 'ROLED_TEST_UNSET' is not set"),
    "bad value": (_bad_value, "[program:a]"),
    "unparseable line": (_unparseable, "line 3: cannot parse 'garbage line'"),
    "binary role file": (_binary, "is not UTF-8"),
    "negative timeout": (_bad_timeout, "ROLED_SHUTDOWN_TIMEOUT: expected a number of seconds"),
    "roles without folder": (_no_roles_folder, "ROLES is set but there is no roles folder"),
    "no roles chosen": (_no_default_roles, "ROLES is not set"),
    "unknown [roled] key": (_unknown_roled_key, "[roled] section: unknown key 'shutdown_timout'"),
    "missing main config": (_missing_main, "main config not found"),
    "common with a section": (_common_section, "common.conf holds bare key=value lines"),
    "hashed password": (_hashed_password, "password is a {SHA} hash"),
    "hashed password, other plain one": (
        _hashed_password_mismatch,
        "[supervisorctl] password does not match it: set [supervisorctl] password",
    ),
    "empty selection": (_empty_role, "nothing to run:"),
    "main config without programs": (_no_program, "nothing to run: no program in it"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_and_exit_2(layout: Layout, short_tmp: Path, case: str) -> None:
    """Exit 2, one 'roled: error:' line naming the culprit, no traceback, nothing left."""
    make, expected = CASES[case]
    env = make(layout)
    runtime = short_tmp / "rt"
    result = run_roled(layout, runtime, **env)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("roled: error: ")
    assert expected in lines[0]
    assert result.stdout == ""
    assert not runtime.exists()


def test_runtime_dir_that_is_a_symlink_is_refused(layout: Layout, short_tmp: Path) -> None:
    """A link planted where the runtime directory goes does not redirect roled."""
    layout.role("web", GOOD)
    target = short_tmp / "elsewhere"
    target.mkdir(mode=0o700)
    link = short_tmp / "rt"
    link.symlink_to(target)
    result = run_roled(layout, link, ROLES="web")
    assert result.returncode == 2
    assert "not a real directory" in result.stderr
    assert list(target.iterdir()) == []


def test_runtime_dir_with_open_mode_is_refused(layout: Layout, short_tmp: Path) -> None:
    """A runtime directory others can enter is refused, not used."""
    layout.role("web", GOOD)
    runtime = short_tmp / "rt"
    runtime.mkdir()
    runtime.chmod(0o755)
    result = run_roled(layout, runtime, ROLES="web")
    assert result.returncode == 2
    assert "has mode 0755, expected 0700" in result.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to make a directory owned by another uid")
def test_runtime_dir_owned_by_another_uid_is_refused(layout: Layout, short_tmp: Path) -> None:
    """A runtime directory that belongs to someone else is refused."""
    layout.role("web", GOOD)
    runtime = short_tmp / "rt"
    runtime.mkdir(mode=0o700)
    os.chown(runtime, 65534, 65534)
    result = run_roled(layout, runtime, ROLES="web")
    assert result.returncode == 2
    assert "belongs to uid 65534" in result.stderr
