"""Program output through roled for real: every line once, whole, on its stream, in each format."""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shlex
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from roled.supervisor import Unavailable
from tests.conftest import Layout, Roled, program, wait_until
from tests.portable import PortablePython
from tests.programs.chatter import line

Start = Callable[..., Roled]
NAMES = ("alpha", "bravo", "charlie", "delta")
OWN = {"roled", "supervisord", "roled_events"}
MIB = 1 << 20


def once(name: str, command: str, extra: str = "") -> str:
    return (
        f"[program:{name}]\ncommand={command}\nstartsecs=0\nautorestart=false\n"
        f"exitcodes=0\n{extra}\n"
    )


def parse(text: str, log_format: str) -> list[tuple[str, str]]:
    """(program, line) of every line roled wrote, in order."""
    parsed = []
    for raw in text.split("\n")[:-1]:
        if log_format == "json":
            record = json.loads(raw)
            parsed.append((record["program"], record["line"]))
        else:
            label, _, rest = raw.partition(" | ")
            parsed.append((label.rstrip(), rest))
    return parsed


def by_program(lines: list[tuple[str, str]]) -> dict[str, list[str]]:
    result: dict[str, list[str]] = {}
    for label, text in lines:
        result.setdefault(label, []).append(text)
    return result


def digest(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]


@pytest.mark.parametrize("log_format", ["prefix", "json"])
def test_every_line_arrives_once_whole_on_its_stream(
    layout: Layout, start_roled: Start, log_format: str
) -> None:
    """100,000 lines from each of 4 programs on both streams arrive once, whole, in order."""
    count = 100_000
    layout.role("chat", "".join(once(name, program("chatter", name, str(count))) for name in NAMES))
    roled = start_roled(layout, "--log-format", log_format, roles="chat")
    roled.wait_states(dict.fromkeys(NAMES, "EXITED"), timeout=240)
    roled.send(signal.SIGTERM)
    assert roled.wait(60) == 0
    for stream, text in (("stdout", roled.stdout), ("stderr", roled.stderr)):
        received = by_program(parse(text, log_format))
        assert set(received) - OWN == set(NAMES), f"unexpected programs on {stream}"
        for name in NAMES:
            expected = [line(name, stream, number) for number in range(count)]
            got = received[name]
            assert (len(got), digest(got)) == (len(expected), digest(expected)), (name, stream)
            assert got == expected


def test_long_line_and_unterminated_last_line_arrive_whole(
    layout: Layout, start_roled: Start
) -> None:
    """A 1 MiB line stays one line, and a last line without newline is passed on at exit."""
    command = program("emit", f"stdout:big:{MIB}", "stdout:b'the end without newline'")
    layout.role("web", once("web", command) + once("idle", program("print_signals")))
    roled = start_roled(layout, "--log-format", "prefix", roles="web")
    # roled is still running: the line came when the program ended, not when roled did.
    wait_until(lambda: "the end without newline\n" in roled.stdout, what="the unterminated line")
    lines = parse(roled.stdout, "prefix")
    assert lines.count(("web", "A" * MIB)) == 1
    assert ("web", "the end without newline") in lines
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0


def test_json_lines_parse_whatever_the_program_wrote(layout: Layout, start_roled: Start) -> None:
    """Quotes, backslashes, control bytes, UTF-8 and invalid UTF-8 all give one valid object."""
    newline = b"\n"
    written = [
        b'say "hi" \\ back\\slash\ttab\rcr',
        b"bell \x07 and nul \x00",
        "héllo ✓".encode(),
        b"broken \xff\xfe utf-8",
        b"",
        b'{"already": "json"}',
    ]
    items = [f"stdout:{text + newline!r}" for text in written] + ["stderr:b'to stderr\\n'"]
    layout.role("web", once("web", program("emit", *items)))
    roled = start_roled(layout, "--log-format", "json", roles="web")
    wait_until(lambda: "to stderr" in roled.stderr, what="the program's stderr line")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    records = [json.loads(raw) for raw in roled.stdout.splitlines()]
    assert [record["line"] for record in records] == [
        text.decode("utf-8", "replace") for text in written
    ]
    assert {(r["program"], r["stream"]) for r in records} == {("web", "stdout")}
    assert all(set(record) == {"time", "program", "stream", "line"} for record in records)
    errors = [json.loads(raw) for raw in roled.stderr.splitlines()]
    assert {"program": "web", "stream": "stderr", "line": "to stderr"}.items() <= next(
        record for record in errors if record["program"] == "web"
    ).items()
    assert {record["program"] for record in errors} == {"web", "supervisord", "roled"}
    assert errors[-1]["line"] == "INFO exiting with code 0: stopped on request (SIGTERM)"


def assert_healthy(roled: Roled) -> None:
    output = roled.stdout + roled.stderr
    for noise in ("CRIT", "Traceback", "UserWarning"):
        assert noise not in output, output


@pytest.mark.parametrize("log_format", ["plain", "prefix", "json"])
def test_healthy_run_as_root_is_quiet(layout: Layout, start_roled: Start, log_format: str) -> None:
    """A healthy run as root prints no CRIT, Traceback or UserWarning line in any format."""
    layout.role("web", once("web", program("print_signals")))
    roled = start_roled(layout, "--log-format", log_format, roles="web")
    roled.wait_states({"web": "RUNNING"})
    wait_until(lambda: "ready" in roled.stdout, what="the program's ready line")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert_healthy(roled)


NOBODY = 65534
AS_NOBODY = ("setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups")


def test_healthy_run_as_unprivileged_user_is_quiet(
    start_roled: Start, short_tmp: Path, portable_python: PortablePython
) -> None:
    """The same run under an unprivileged uid, with a runtime dir it owns, is just as quiet."""
    short_tmp.chmod(0o755)
    layout = Layout(short_tmp / "etc")
    layout.role("web", once("web", portable_python.program("print_signals")))
    for path in [layout.root, *layout.root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    home = short_tmp / "home"
    home.mkdir(mode=0o700)
    os.chown(home, NOBODY, NOBODY)
    roled = start_roled(
        layout,
        roles="web",
        runtime_dir=home / "rt",
        wrapper=AS_NOBODY,
        python=portable_python.python,
        env=portable_python.env,
    )
    roled.wait_states({"web": "RUNNING"})
    wait_until(lambda: "ready" in roled.stdout, what="the program's ready line")
    assert roled.supervisord().uids().real == NOBODY
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert_healthy(roled)


def test_program_log_file_of_its_own_is_kept(
    layout: Layout, start_roled: Start, tmp_path: Path
) -> None:
    """A program whose config names a log file writes there, not to roled's stdout."""
    own = tmp_path / "web.log"
    extra = f"stdout_logfile={own}\nstdout_logfile_maxbytes=0\n"
    layout.role("web", once("web", program("print_signals"), extra))
    layout.role("other", once("other", program("emit", "stdout:b'other line\\n'", "--stay")))
    roled = start_roled(layout, roles="web,other")
    wait_until(lambda: own.exists() and "ready" in own.read_text(), what="ready in web.log")
    wait_until(lambda: "other line" in roled.stdout, what="the other program's line")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert "ready" not in roled.stdout


def answers(roled: Roled) -> bool:
    try:
        roled.client(timeout=3).processes()
    except Unavailable:
        return False
    return True


def test_stop_with_stdout_not_read_is_not_a_hang_and_exits_0(
    layout: Layout, start_roled: Start
) -> None:
    """With stdout not read, output is held back (not a hang), and SIGTERM still exits 0."""
    layout.role("flood", once("flood", program("chatter", "flood", "100000000", "--stdout-only")))
    roled = start_roled(
        layout, "--hang-timeout", "0.5", "--log-format", "prefix", roles="flood", stdout_pipe=True
    )
    wait_until(lambda: "holding program output back" in roled.stderr, what="the holding notice")
    # supervisord soon blocks on the full FIFO, and calls time out (3s each, much longer than
    # the hang timeout): roled must not take that silence for a hang.
    wait_until(lambda: not answers(roled), what="supervisord to block writing output")
    assert not answers(roled)
    assert roled.popen.poll() is None
    assert "stopped answering" not in roled.stderr
    roled.send(signal.SIGTERM)
    assert roled.wait(30) == 0
    assert "dropped" in roled.stderr
    assert parse(roled.last_line() + "\n", "prefix") == [
        ("roled", "INFO exiting with code 0: stopped on request (SIGTERM)")
    ]


# -- many programs: descriptors past 1,023 --------------------------------------------------


def numbered_shell(name: str, count: int) -> str:
    """A cheap program: COUNT numbered lines from a shell, then a sleep that prints nothing."""
    script = f'i=0; while [ $i -lt {count} ]; do echo "{name} $i"; i=$((i+1)); done; exec sleep 1d'
    return shlex.join(["/bin/sh", "-c", script])


def test_1000_programs_deliver_every_line_once(layout: Layout, start_roled: Start) -> None:
    """With 1,000 programs (FIFO descriptors far past 1,023, roled started with a soft limit of
    1,024) every line of every program reaches stdout exactly once."""
    count, lines = 1000, 20
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert hard >= 8 * count, f"the hard limit of open files ({hard}) is too low for this test"
    names = [f"p{index:04d}" for index in range(count)]
    layout.role(
        "many",
        "".join(
            f"[program:{name}]\ncommand={numbered_shell(name, lines)}\nstartsecs=0\n"
            "redirect_stderr=true\n"
            for name in names
        ),
    )
    # supervisord answers nothing while it spawns them all: busy, not hung.
    roled = start_roled(
        layout,
        roles="many",
        wrapper=("prlimit", f"--nofile={min(soft, 1024)}:{hard}", "--"),
    )
    expected = sorted(f"{name} {number}" for name in names for number in range(lines))
    wait_until(
        lambda: roled.popen.poll() is not None or roled.stdout.count("\n") >= len(expected),
        timeout=120,
        what=f"{len(expected)} lines on stdout",
    )
    assert roled.popen.poll() is None, roled.stderr[-3000:]
    roled.send(signal.SIGTERM)
    assert roled.wait(120) == 0
    assert sorted(roled.stdout.splitlines()) == expected


# -- exit with a slow reader -----------------------------------------------------------------


class SlowReader:
    """Reads a pipe a little at a time, as a log collector that cannot keep up."""

    def __init__(self, fd: int, size: int = 4096, pause: float = 0.005) -> None:
        self.fd, self.size, self.pause = fd, size, pause
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while data := os.read(self.fd, self.size):
            self.chunks.append(data)
            time.sleep(self.pause)

    def text(self, timeout: float = 60.0) -> str:
        """Everything read, once the write end is closed."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the pipe was not closed"
        return b"".join(self.chunks).decode()


def dropped_lines(stderr: str) -> int:
    found = re.findall(r"dropped (\d+) line\(s\)", stderr)
    return int(found[-1]) if found else 0


def test_exit_with_a_slow_reader_cuts_no_line_and_counts_every_dropped_one(
    layout: Layout, start_roled: Start, tmp_path: Path
) -> None:
    """With stdout read slowly, a stop writes whole lines only, and the lines reported dropped
    plus the lines received are exactly the lines the program wrote."""
    count_file = tmp_path / "count"
    layout.role("chat", once("chat", program("counted", str(count_file))))
    roled = start_roled(layout, roles="chat", stdout_pipe=True)
    assert roled.popen.stdout is not None
    reader = SlowReader(roled.popen.stdout.fileno())
    wait_until(lambda: "holding program output back" in roled.stderr, what="the holding notice")
    roled.send(signal.SIGTERM)
    assert roled.wait(60) == 0
    received = reader.text().split("\n")
    assert received.pop() == "", "the last line written was cut"
    produced = int(count_file.read_text())
    assert all(re.fullmatch(r"counted \d{9} x{60}", text) for text in received)
    numbers = [int(text.split()[1]) for text in received]
    assert len(set(numbers)) == len(numbers)
    assert max(numbers) < produced
    assert dropped_lines(roled.stderr) > 0
    assert (dropped_lines(roled.stderr), len(received)) == (produced - len(received), len(received))


def test_stdout_to_a_regular_file_is_never_reported_unread(
    layout: Layout, start_roled: Start
) -> None:
    """A file never stalls a write: lines waiting for one (a 6 MiB line) are not output held
    back, and roled does not say that stdout is not being read."""
    size = 6 * MIB
    layout.role("web", once("web", program("emit", f"stdout:big:{size}", "stdout:b'done\\n'")))
    roled = start_roled(layout, roles="web")
    wait_until(lambda: roled.stdout.endswith("done\n"), what="the program's last line")
    roled.send(signal.SIGTERM)
    assert roled.wait() == 0
    assert roled.stdout == "A" * size + "\ndone\n"
    assert "not being read" not in roled.stderr


def test_too_few_descriptors_for_the_fifos_is_one_line_and_exit_2(
    layout: Layout, start_roled: Start
) -> None:
    """A hard limit of open files too low for every FIFO: exit 2, one line naming a FIFO, no
    traceback, no supervisord started, no runtime directory left."""
    layout.role("many", "".join(once(f"p{index:02d}", "/bin/sleep 1d") for index in range(60)))
    roled = start_roled(layout, roles="many", wrapper=("prlimit", "--nofile=64:64", "--"))
    assert roled.wait() == 2
    assert re.fullmatch(
        r"roled: error: \S+/logs/p\d\d\.\d\.std(out|err): cannot open FIFO: Too many open files\n",
        roled.stderr,
    )
    assert not roled.runtime_dir.exists()
