"""Real images' supervisord layouts and command lines, run with roled in place of supervisord."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import pytest

from tests.conftest import Layout, Roled, clean_environ, program, wait_until
from tests.integration.test_logs import NOBODY
from tests.portable import PortablePython

Start = Callable[..., Roled]


def stand_in(name: str) -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def image_layout(main: Path) -> Layout:
    """A Layout whose main config is the image's own file (nothing else of Layout is used)."""
    layout = Layout(main.parent / "unused")
    layout.main = main
    return layout


def debian(root: Path) -> Path:
    """The Debian package's supervisord.conf, and conf.d/supervisord.conf as images add it."""
    (root / "var/log/supervisor").mkdir(parents=True)
    (root / "var/run").mkdir(parents=True)
    main = write(
        root / "etc/supervisor/supervisord.conf",
        f"""\
        [unix_http_server]
        file={root}/var/run/supervisor.sock
        chmod=0700

        [supervisord]
        logfile={root}/var/log/supervisor/supervisord.log
        pidfile={root}/var/run/supervisord.pid
        childlogdir={root}/var/log/supervisor

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

        [supervisorctl]
        serverurl=unix://{root}/var/run/supervisor.sock

        [include]
        files = {root}/etc/supervisor/conf.d/*.conf
        """,
    )
    write(
        root / "etc/supervisor/conf.d/supervisord.conf",
        "[supervisord]\nnodaemon=true\nuser=root\n\n" + stand_in("nginx") + stand_in("php-fpm"),
    )
    return main


def alpine(root: Path) -> Path:
    """Alpine's /etc/supervisord.conf with programs in supervisor.d/*.ini."""
    main = write(
        root / "etc/supervisord.conf",
        f"""\
        [supervisord]
        nodaemon=false

        [unix_http_server]
        file={root}/run/supervisord.sock

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

        [supervisorctl]
        serverurl=unix://{root}/run/supervisord.sock

        [include]
        files = {root}/etc/supervisor.d/*.ini
        """,
    )
    (root / "run").mkdir()
    write(root / "etc/supervisor.d/app.ini", "[supervisord]\nnodaemon=true\n\n" + stand_in("app"))
    write(root / "etc/supervisor.d/cron.ini", stand_in("crond"))
    return main


def hashed(root: Path) -> Path:
    """A server password stored as a {SHA} hash; [supervisorctl] holds the plain one."""
    digest = hashlib.sha1(b"s3cret").hexdigest()
    return write(
        root / "etc/supervisord.conf",
        f"""\
        [supervisord]
        nodaemon=true

        [unix_http_server]
        file={root}/sv.sock
        username=admin
        password={{SHA}}{digest}

        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

        [supervisorctl]
        serverurl=unix://{root}/sv.sock
        username=admin
        password=s3cret

        {stand_in("mail")}
        """,
    )


def supervisorctl(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_environ(),
    )


def roled_command(roled: Roled, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roled", "-c", str(config), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=clean_environ(ROLED_RUNTIME_DIR=str(roled.runtime_dir)),
    )


def runs_like_supervisord(roled: Roled, config: Path, programs: set[str]) -> None:
    """Every program RUNNING, roled status 0, the image's supervisorctl answers, SIGTERM 0."""
    roled.wait_states(dict.fromkeys(programs, "RUNNING"))
    status = roled_command(roled, config, "status")
    assert status.returncode == 0, status.stdout + status.stderr
    answer = supervisorctl(config, "status")
    assert answer.returncode == 0, answer.stdout + answer.stderr
    # supervisorctl lists roled's own listener too: it is a real supervisord process.
    assert {line.split()[0] for line in answer.stdout.splitlines()} == {*programs, "roled_events"}
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert "Traceback" not in roled.stderr


DEBIAN_COMMAND_LINES = [
    ("-n", "-c", "{main}"),
    ("--nodaemon", "--configuration", "{main}"),
    ("--logfile", "/dev/null", "--pidfile", "/dev/null", "--user", "root", "-c", "{main}"),
    ("-u", "root", "-c", "{main}"),
    ("-s", "-c", "{main}"),
    ("-e", "debug", "-c", "{main}"),
]


@pytest.mark.parametrize("argv", DEBIAN_COMMAND_LINES, ids=" ".join)
def test_debian_image_runs_with_its_own_command_line(
    short_tmp: Path, start_roled: Start, argv: tuple[str, ...]
) -> None:
    """conf.d/supervisord.conf's [supervisord] merges into the packaged one, as supervisor does."""
    main = debian(short_tmp / "img")
    null = os.stat("/dev/null")
    roled = start_roled(image_layout(main), *(arg.format(main=main) for arg in argv))
    runs_like_supervisord(roled, main, {"nginx", "php-fpm"})
    # supervisord would have unlinked the device at exit; roled writes no pidfile there.
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert os.stat("/dev/null").st_ino == null.st_ino


def listener_catches_sigterm(roled: Roled) -> bool:
    """Whether roled's event listener has installed its SIGTERM handler (it starts in Python)."""
    for child in roled.supervisord().children():
        if "roled.listener" in " ".join(child.cmdline()):
            status = Path(f"/proc/{child.pid}/status").read_text()
            caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
            return bool(int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)))
    return False


def test_debian_pidfile_holds_supervisords_pid(short_tmp: Path, start_roled: Start) -> None:
    """The configured pidfile is written, with the pid helper scripts must signal."""
    main = debian(short_tmp / "img")
    pidfile = short_tmp / "img/var/run/supervisord.pid"
    roled = start_roled(image_layout(main), "-n", "-c", str(main))
    roled.wait_states({"nginx": "RUNNING", "php-fpm": "RUNNING"})
    wait_until(pidfile.exists, what="the pidfile")
    wait_until(lambda: listener_catches_sigterm(roled), what="roled's listener to be up")
    assert int(pidfile.read_text()) == roled.supervisord().pid
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert not pidfile.exists()
    # A clean stop of roled's own listener is no warning in the image's log.
    log = (short_tmp / "img/var/log/supervisor/supervisord.log").read_text()
    assert "stopped: roled_events (exit status 0)" in log
    assert "WARN stopped: roled_events" not in log


@pytest.mark.parametrize(
    "argv", [("-c", "{main}"), ("--nodaemon", "--configuration", "{main}")], ids=" ".join
)
def test_alpine_image_runs_with_its_own_command_line(
    short_tmp: Path, start_roled: Start, argv: tuple[str, ...]
) -> None:
    """supervisor.d/*.ini may set [supervisord] keys and add programs."""
    main = alpine(short_tmp / "img")
    roled = start_roled(image_layout(main), *(arg.format(main=main) for arg in argv))
    runs_like_supervisord(roled, main, {"app", "crond"})


def test_hashed_server_password_uses_the_supervisorctl_one(
    short_tmp: Path, start_roled: Start
) -> None:
    """A {SHA} server password with the plain one in [supervisorctl] runs; both clients answer."""
    main = hashed(short_tmp / "img")
    roled = start_roled(image_layout(main), "-n", "-c", str(main))
    runs_like_supervisord(roled, main, {"mail"})


def test_included_program_overriding_another_is_a_warning(
    short_tmp: Path, start_roled: Start
) -> None:
    """The later file wins, as in supervisor, and roled names both files."""
    main = debian(short_tmp / "img")
    override = write(
        short_tmp / "img/etc/supervisor/conf.d/zz-local.conf",
        stand_in("nginx") + "environment=LOCAL=1\n",
    )
    roled = start_roled(image_layout(main), "-n", "-c", str(main))
    runs_like_supervisord(roled, main, {"nginx", "php-fpm"})
    warnings = [line for line in roled.stderr.splitlines() if "[program:nginx] changes" in line]
    assert len(warnings) == 1
    assert str(override) in warnings[0]
    assert str(short_tmp / "img/etc/supervisor/conf.d/supervisord.conf") in warnings[0]


def search(root: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "roled", "check"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=cwd,
        env=clean_environ(ROLED_TEST_SEARCH_ROOT=str(root)),
    )


def test_without_c_the_config_is_found_where_supervisord_finds_it(short_tmp: Path) -> None:
    """/etc/supervisord.conf comes before the Debian file; the working directory before both."""
    root = short_tmp / "img"
    write(root / "etc/supervisor/supervisord.conf", "[supervisord]\n" + stand_in("a"))
    write(root / "etc/supervisord.conf", "[supervisord]\n" + stand_in("a") + stand_in("b"))
    cwd = short_tmp / "work"
    cwd.mkdir()
    assert "valid: 2 program(s)" in search(root, cwd).stderr
    write(
        cwd / "supervisord.conf", "[supervisord]\n" + stand_in("a") + stand_in("b") + stand_in("c")
    )
    assert "valid: 3 program(s)" in search(root, cwd).stderr


def test_empty_role_among_others_is_a_warning(layout: Layout, start_roled: Start) -> None:
    """A role without programs beside one with programs: one warning, the rest runs."""
    layout.role("web", stand_in("web"))
    empty = layout.role("spare", "; nothing here yet\n")
    roled = start_roled(layout, roles="web,spare")
    roled.wait_states({"web": "RUNNING"})
    assert f"role 'spare' defines no program ({empty})" in roled.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_version_names_roled_and_supervisor() -> None:
    """``roled -v`` (supervisord's version flag) prints both versions and exits 0."""
    result = subprocess.run(
        [sys.executable, "-m", "roled", "-v"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert result.stdout == (
        f"roled {metadata.version('roled')} (supervisor {metadata.version('supervisor')})\n"
    )


@pytest.mark.parametrize("how", ["kill $PPID", "kill -QUIT $(cat pidfile)"])
def test_listener_ending_supervisord_after_a_crash_names_the_program(
    short_tmp: Path, start_roled: Start, how: str
) -> None:
    """An image's exit-on-failure listener ends supervisord: the reason names the crash."""
    root = short_tmp / "img"
    main = debian(root)
    pidfile = ["--pidfile", str(root / "var/run/supervisord.pid")] if "pidfile" in how else []
    write(
        root / "etc/supervisor/conf.d/exit.conf",
        f"""\
        [program:crasher]
        command={program("exit_with", "3", "1")}
        startsecs=0
        autorestart=false

        [eventlistener:exit_on_failure]
        command={program("exit_on_failure", *pidfile)}
        events=PROCESS_STATE_EXITED,PROCESS_STATE_FATAL
        """,
    )
    roled = start_roled(image_layout(main), "-n", "-c", str(main))
    assert roled.wait() == 1, roled.stderr
    # With its status when supervisord still answered the question.
    assert (
        "exiting with code 1: supervisord ended on its own right after program 'crasher' "
        "exited unexpectedly" in roled.reason_line()
    )


def test_a_clean_run_at_loglevel_error_is_quiet(short_tmp: Path, start_roled: Start) -> None:
    """``-e error``: no roled INFO line but its last word, no WARN about roled's listener."""
    main = debian(short_tmp / "img")
    roled = start_roled(image_layout(main), "-n", "-e", "error", "-c", str(main))
    runs_like_supervisord(roled, main, {"nginx", "php-fpm"})
    log = (short_tmp / "img/var/log/supervisor/supervisord.log").read_text()
    assert "WARN stopped: roled_events" not in log + roled.stderr
    own = [line for line in roled.stderr.splitlines() if line.startswith("roled: ")]
    assert own == ["roled: INFO exiting with code 0: stopped on request (SIGTERM)"]


def test_a_clean_run_shows_neither_roled_listener_nor_ignored_keys(
    layout: Layout, start_roled: Start
) -> None:
    """Keys supervisord ignores pass silently, and roled's listener never shows in the log."""
    layout.role("web", stand_in("web") + "stdout_logfile_typo=/dev/stdout\n")
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    wait_until(lambda: "ready" in roled.stdout, what="the program's ready line")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert "spawned: 'web'" in roled.stderr
    assert "roled_events" not in roled.stderr
    assert "stdout_logfile_typo" not in roled.stderr


def test_supervisord_user_nobody_runs_its_programs_as_nobody(
    short_tmp: Path, start_roled: Start, portable_python: PortablePython
) -> None:
    """``[supervisord] user=nobody`` with roled as root: supervisord and its programs run as
    nobody, roled still carries their output, status answers, SIGTERM exits 0."""
    python, env = portable_python.python, portable_python.env
    short_tmp.chmod(0o755)
    layout = Layout(short_tmp / "etc")
    layout.write_main("[supervisord]\nuser=nobody\n")

    def as_nobody(*names: str) -> str:
        command = portable_python.program("print_signals")
        return "".join(f"[program:{name}]\ncommand={command}\nstartsecs=0\n" for name in names)

    layout.role("web", as_nobody("web", "api"))
    for path in [layout.root, *layout.root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    # Its parents must let nobody through, as / and /tmp do; the fixture's own folder does not.
    runtime = short_tmp / "rt"
    roled = start_roled(layout, roles="web", python=python, env=env, runtime_dir=runtime)
    roled.wait_states({"web": "RUNNING", "api": "RUNNING"})
    wait_until(lambda: roled.stdout.count("ready") == 2, what="both programs' ready lines")
    assert roled.supervisord().uids().real == NOBODY
    assert {child.uids().real for child in roled.supervisord().children()} == {NOBODY}
    status = subprocess.run(
        [python, "-m", "roled", "status"],
        env=clean_environ(ROLED_RUNTIME_DIR=str(roled.runtime_dir), **env),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert status.returncode == 0, status.stdout + status.stderr
    # A reload: supervisord reads the new config and opens the new FIFO as nobody.
    layout.role("web", as_nobody("web", "api", "extra")).chmod(0o644)
    roled.send(signal.SIGHUP)
    roled.wait_states({"web": "RUNNING", "api": "RUNNING", "extra": "RUNNING"})
    wait_until(lambda: roled.stdout.count("ready") == 3, what="the new program's ready line")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert "Traceback" not in roled.stderr
    assert not roled.runtime_dir.exists()
