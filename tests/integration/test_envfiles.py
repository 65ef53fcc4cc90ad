"""Configuration the way Kubernetes delivers it (issue 16): env files, ``*_FILE`` secrets, masking
in every output, and watched files (a kubelet ``..data`` swap, a burst of writes, a reload)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.atomic_writer import atomic_write
from tests.conftest import Layout, Roled, clean_environ, program, wait_until

Start = Callable[..., Roled]
SECRET = "s3cret-Pa55word"
TOKEN = "tok-from-env-file-77"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def printer(name: str, variables: str, extra: str = "") -> str:
    return (
        f"[program:{name}]\ncommand={program('print_env', name, *variables.split())}\n"
        f"startsecs=0\nstopwaitsecs=2\n{extra}"
    )


def lines_of(roled: Roled, name: str) -> list[str]:
    """The program's own output lines, in order (print_env starts each with its label)."""
    return [
        line.removeprefix(f"{name}: ")
        for line in roled.stdout.splitlines()
        if line.startswith(f"{name}: ")
    ]


def test_env_files_environment_and_file_variables_in_the_documented_precedence(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """Two env files (later wins), environment= over both, DB_PASSWORD_FILE sets DB_PASSWORD."""
    (short_tmp / "a.env").write_text("A=from-a\nB=from-a\nC=from-a\n")
    (short_tmp / "b.env").write_text("export B=from-b\nC='from-b'\n")
    (short_tmp / "db").write_text("pw-100%\n")
    layout.role(
        "web",
        printer(
            "web",
            "A B C DB_PASSWORD DB_PASSWORD_FILE",
            f"roled_env_files={short_tmp}/a.env, {short_tmp}/b.env\n"
            f'environment=C="own",DB_PASSWORD_FILE="{short_tmp}/db"\n',
        ),
    )
    roled = start_roled(layout, roles="web")
    wait_until(lambda: "ready" in lines_of(roled, "web"), 15, "the program's ready line")
    assert lines_of(roled, "web")[:5] == [
        "A=from-a",
        "B=from-b",
        "C=own",
        "DB_PASSWORD=pw-100%",
        f"DB_PASSWORD_FILE={short_tmp}/db",
    ]


def test_secrets_are_masked_in_every_output(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """check --print, status --json, the failure report, the termination log and every line
    roled writes: zero hits for the secret values, while the program got them."""
    (short_tmp / "app.env").write_text(f"TOKEN={TOKEN}\n")
    (short_tmp / "db").write_text(SECRET + "\n")
    termination = short_tmp / "termination-log"
    web = printer(
        "web",
        "--hash TOKEN DB_PASSWORD",
        f'roled_env_files={short_tmp}/app.env\nenvironment=DB_PASSWORD_FILE="{short_tmp}/db"\n',
    )
    layout.role("web", web)
    layout.write_main("[supervisord]\nloglevel=debug\n")
    env = clean_environ(ROLES="web", ROLED_TERMINATION_LOG=str(termination))
    check = subprocess.run(
        [sys.executable, "-m", "roled", "-c", str(layout.main), "check", "--print"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stderr
    assert 'TOKEN="********"' in check.stdout
    roled = start_roled(layout, roles="web", env={"ROLED_TERMINATION_LOG": str(termination)})
    wait_until(lambda: "ready" in lines_of(roled, "web"), 15, "the program's ready line")
    assert lines_of(roled, "web")[:2] == [f"TOKEN={digest(TOKEN)}", f"DB_PASSWORD={digest(SECRET)}"]
    status = subprocess.run(
        [sys.executable, "-m", "roled", "status", "--json"],
        env={**env, "ROLED_RUNTIME_DIR": str(roled.runtime_dir)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    roled.send(signal.SIGTERM)
    assert roled.wait(30) == 0
    # A program that cannot start: supervisord's own lines and the failure report name its
    # command, which holds the secret.
    layout.role("web", web + f"[program:bad]\ncommand=/nonexistent/{SECRET}\nstartretries=0\n")
    failed = start_roled(layout, roles="web", env={"ROLED_TERMINATION_LOG": str(termination)})
    assert failed.wait(30) == 1
    outputs = {
        "check": check.stdout + check.stderr,
        "status": status.stdout + status.stderr,
        "roled": roled.stdout + roled.stderr,
        "failed roled": failed.stdout + failed.stderr,
        "termination log": termination.read_text() if termination.exists() else "",
    }
    assert "can't find command '/nonexistent/********'" in outputs["failed roled"]
    assert {where: text.count(SECRET) + text.count(TOKEN) for where, text in outputs.items()} == {
        "check": 0,
        "status": 0,
        "roled": 0,
        "failed roled": 0,
        "termination log": 0,
    }
    assert "********" in outputs["termination log"]
    assert json.loads(status.stdout)["ok"] is True


def test_a_missing_env_file_is_exit_2_at_start(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """One line naming the program and the file; nothing started."""
    layout.role("web", printer("web", "A", f"roled_env_files={short_tmp}/missing.env\n"))
    roled = start_roled(layout, roles="web")
    assert roled.wait(30) == 2
    role_file = layout.roles / "web.conf"
    assert roled.stderr.strip() == (
        f"roled: error: {role_file}: [program:web] roled_env_files: {short_tmp}/missing.env: "
        "cannot read: No such file or directory"
    )
    assert roled.stdout == ""


def test_a_kubelet_data_swap_sends_exactly_one_hup(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """A ConfigMap volume updated the kubelet's way: the program sees one SIGHUP, and the log
    names the file."""
    config = short_tmp / "config"
    config.mkdir()
    atomic_write(config, {"app.yaml": b"v: 1\n"})
    layout.role(
        "web",
        printer("web", "A", f"roled_watch={config}\nroled_on_change=HUP\n")
        + printer("other", "A", f"roled_watch={short_tmp}/elsewhere\nroled_on_change=USR1\n"),
    )
    roled = start_roled(layout, roles="web")
    wait_until(lambda: "ready" in lines_of(roled, "web"), 15, "the program's ready line")
    wait_until(lambda: "ready" in lines_of(roled, "other"), 15, "the other program")
    atomic_write(config, {"app.yaml": b"v: 2\n"})
    wait_until(lambda: "SIGHUP" in lines_of(roled, "web"), 10, "the program's SIGHUP")
    wait_until(lambda: "sending SIGHUP to 'web'" in roled.stderr, 5, "the log line")
    assert f"{config}/app.yaml changed: sending SIGHUP to 'web'" in roled.stderr
    # Another full scan and debounce period: still one.
    wait_until(lambda: roled.stderr.count("changed:") == 1 and _settled(roled), 10, "settling")
    assert lines_of(roled, "web").count("SIGHUP") == 1
    assert "SIGUSR1" not in lines_of(roled, "other")


def _settled(roled: Roled) -> bool:
    """True the second time it is asked after 3 s (a watcher interval plus its max delay)."""
    import time  # noqa: PLC0415

    first = getattr(roled, "_settle_from", None)
    if first is None:
        roled._settle_from = time.monotonic()  # type: ignore[attr-defined]
        return False
    return time.monotonic() - first >= 3


def test_a_burst_of_fifty_writes_is_one_restart(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """50 writes (some by rename) to a watched file: one restart of that program only."""
    watched = short_tmp / "watched.conf"
    watched.write_text("0\n")
    layout.role(
        "web",
        printer("web", "A", f"roled_watch={short_tmp}/*.conf\n") + printer("other", "A"),
    )
    roled = start_roled(layout, roles="web")
    wait_until(lambda: "ready" in lines_of(roled, "web"), 15, "the program's ready line")
    wait_until(lambda: "ready" in lines_of(roled, "other"), 15, "the other program")
    for count in range(1, 51):
        if count % 2:
            watched.write_text(f"{count}\n")
        else:
            (short_tmp / "new").write_text(f"{count}\n")
            os.replace(short_tmp / "new", watched)
    wait_until(lambda: lines_of(roled, "web").count("ready") == 2, 15, "the restart")
    wait_until(lambda: _settled(roled), 10, "settling")
    assert lines_of(roled, "web").count("ready") == 2
    assert lines_of(roled, "other").count("ready") == 1
    assert roled.stderr.count(f"{watched} changed: restarting 'web'") == 1


def test_an_env_file_change_reloads_and_an_invalid_one_is_refused(
    layout: Layout, short_tmp: Path, start_roled: Start
) -> None:
    """A changed env file restarts the program with the new value (others keep running); a
    change that breaks the file is refused in one line and the program keeps its old value."""
    env_file = short_tmp / "app.env"
    env_file.write_text("A=one\n")
    layout.role("web", printer("web", "A", f"roled_env_files={env_file}\n") + printer("other", "A"))
    roled = start_roled(layout, roles="web")
    wait_until(lambda: "ready" in lines_of(roled, "other"), 15, "the other program")
    wait_until(lambda: "A=one" in lines_of(roled, "web"), 15, "the first value")
    env_file.write_text("A=two\n")
    wait_until(lambda: "A=two" in lines_of(roled, "web"), 15, "the new value")
    assert lines_of(roled, "other").count("ready") == 1
    pid = roled.client().process("web").pid
    env_file.write_text("A=three\nnot a line\n")
    wait_until(lambda: "reload refused" in roled.stderr, 15, "the refusal")
    refusal = [line for line in roled.stderr.splitlines() if "reload refused" in line]
    assert refusal == [
        "roled: ERROR reload refused, still running the previous config: "
        f"{env_file}, line 2: expected NAME=value"
    ]
    assert roled.client().process("web").pid == pid
    assert lines_of(roled, "web")[-1] == "ready"
    assert "A=three" not in lines_of(roled, "web")
    roled.send(signal.SIGTERM)
    assert roled.wait(30) == 0
