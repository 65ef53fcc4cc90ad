"""The check forms and keys, and the check state machine, driven with an injected clock."""

from __future__ import annotations

import re

import pytest

from roled.checks import (
    IN_COMMON,
    PARSERS,
    CancelProbe,
    Check,
    CheckView,
    Fail,
    Health,
    Log,
    ProgramChecks,
    ReadyChanged,
    Restart,
    Result,
    RunProbe,
    State,
    Timing,
    notify_environment,
    parse_alive,
    parse_ready,
    program_checks,
    trim_output,
)
from roled.errors import RoledError

ORIGIN = "roles/web.conf: [program:web]"


def parse(key: str, value: str) -> object:
    return PARSERS[key](value, f"{ORIGIN} {key}")


def error(key: str, value: str) -> str:
    with pytest.raises(RoledError) as caught:
        parse(key, value)
    return str(caught.value)


# -- forms ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "http://127.0.0.1:8000/healthz",
            Check("http", "http://127.0.0.1:8000/healthz", "127.0.0.1", 8000, "/healthz"),
        ),
        ("http://127.0.0.1:8000", Check("http", "http://127.0.0.1:8000", "127.0.0.1", 8000, "/")),
        ("http://10.0.0.1/x?a=1", Check("http", "http://10.0.0.1/x?a=1", "10.0.0.1", 80, "/x?a=1")),
        ("HTTP://localhost:81/", Check("http", "HTTP://localhost:81/", "127.0.0.1", 81, "/")),
        ("http://[::1]:8000/", Check("http", "http://[::1]:8000/", "::1", 8000, "/")),
        ("  tcp://127.0.0.1:5432 ", Check("tcp", "tcp://127.0.0.1:5432", "127.0.0.1", 5432)),
        ("tcp://[::1]:1", Check("tcp", "tcp://[::1]:1", "::1", 1)),
        ("exec:pg_isready -q", Check("exec", "exec:pg_isready -q", argv=("pg_isready", "-q"))),
        ("exec:sh -c 'exit 3'", Check("exec", "exec:sh -c 'exit 3'", argv=("sh", "-c", "exit 3"))),
        ("notify", Check("notify", "notify")),
    ],
)
def test_check_forms(value: str, expected: Check) -> None:
    """Each form parses to what a probe needs; the text is kept as written."""
    assert parse_ready(value, ORIGIN) == expected
    assert parse_alive(value, ORIGIN) == expected


def test_log_form_is_ready_only() -> None:
    """log:REGEX compiles as a ready check and is refused as an alive check."""
    check = parse_ready("log:Listening on .*:80", ORIGIN)
    assert check == Check("log", "log:Listening on .*:80", pattern=re.compile("Listening on .*:80"))
    assert check.target == "Listening on .*:80"
    assert error("roled_alive", "log:ready") == (
        f"{ORIGIN} roled_alive: a log: check can only say a program is ready, not that it "
        "lives; use it as roled_ready"
    )


FORMS = "http://HOST:PORT/PATH, tcp://HOST:PORT, exec:COMMAND, log:REGEX or notify"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("roled_ready", "", f"expected {FORMS}, got ''"),
        ("roled_ready", "ftp://1.2.3.4:21", f"expected {FORMS}, got 'ftp://1.2.3.4:21'"),
        ("roled_ready", "127.0.0.1:80", f"expected {FORMS}, got '127.0.0.1:80'"),
        ("roled_ready", "http:/x", f"expected {FORMS}, got 'http:/x'"),
        ("roled_ready", "notify=1", f"expected {FORMS}, got 'notify=1'"),
        (
            "roled_ready",
            "https://127.0.0.1:443/",
            "https:// checks are not supported (TLS would weigh on PID 1); check the port with "
            "tcp://HOST:PORT, or use exec: with a client such as curl -fsk URL",
        ),
        ("roled_ready", "http://", "expected http://HOST:PORT, got 'http://'"),
        ("roled_ready", "http://a b:80/", "expected http://HOST:PORT, got 'http://a b:80/'"),
        (
            "roled_alive",
            "http://u:secret@127.0.0.1:80/",
            "a http:// check takes no user or password",
        ),
        (
            "roled_ready",
            "http://web:8000/",
            "HOST must be an IP address or localhost (roled does not resolve names in its "
            "loop), got 'web'",
        ),
        (
            "roled_ready",
            "http://[fe80::zz]:80/",
            "HOST must be an IP address or localhost "
            "(roled does not resolve names in its loop), got '[fe80::zz]'",
        ),
        ("roled_ready", "http://1.2.3.4:0/", "expected a port from 1 to 65535, got '0'"),
        ("roled_ready", "http://1.2.3.4:65536/", "expected a port from 1 to 65535, got '65536'"),
        ("roled_ready", "http://1.2.3.4:/", "expected a port from 1 to 65535, got ''"),
        ("roled_ready", "http://1.2.3.4:x/", "expected a port from 1 to 65535, got 'x'"),
        ("roled_alive", "tcp://1.2.3.4", "expected a port from 1 to 65535, got nothing"),
        (
            "roled_alive",
            "tcp://1.2.3.4:80/x",
            "a tcp:// check takes no path, got 'tcp://1.2.3.4:80/x'",
        ),
        (
            "roled_ready",
            "http://1.2.3.4:80/a\r\nX: y",
            "the path may hold visible ASCII characters only (percent-encode the rest), got "
            "'/a\\r\\nX: y'",
        ),
        (
            "roled_ready",
            "http://1.2.3.4:80/é",
            "the path may hold visible ASCII characters only (percent-encode the rest), got '/é'",
        ),
        ("roled_ready", "exec:", "exec: needs a command, as in exec:pg_isready -q"),
        ("roled_ready", "exec:   ", "exec: needs a command, as in exec:pg_isready -q"),
        (
            "roled_ready",
            "exec:echo 'open",
            'cannot split the command "echo \'open": No closing quotation',
        ),
        ("roled_ready", "log:", "log: needs a regular expression, as in log:Listening on"),
        (
            "roled_ready",
            "log:(a",
            "bad regular expression '(a': missing ), unterminated subpattern at position 0",
        ),
        ("roled_on_unhealthy", "reboot", "expected restart, exit, ignore, got 'reboot'"),
        ("roled_check_period", "0", "expected seconds, more than 0, got '0'"),
        ("roled_check_period", "-1", "expected seconds, more than 0, got '-1'"),
        ("roled_check_period", "nan", "expected seconds, more than 0, got 'nan'"),
        ("roled_check_timeout", "inf", "expected seconds, more than 0, got 'inf'"),
        ("roled_check_timeout", "3m", "expected seconds, more than 0, got '3m'"),
        ("roled_check_delay", "-0.5", "expected seconds, 0 or more, got '-0.5'"),
        ("roled_check_threshold", "0", "expected a whole number, 1 or more, got '0'"),
        ("roled_check_threshold", "2.5", "expected a whole number, 1 or more, got '2.5'"),
        ("roled_check_threshold", "", "expected a whole number, 1 or more, got ''"),
    ],
)
def test_bad_values_are_one_line_naming_key_and_value(key: str, value: str, message: str) -> None:
    """Every refusal is one line that starts with the file, section and key."""
    text = error(key, value)
    assert text == f"{ORIGIN} {key}: {message}"
    assert "\n" not in text


def test_no_secret_and_no_long_value_in_errors() -> None:
    """A password in a URL is never echoed; a long value is cut."""
    assert "secret" not in error("roled_ready", "http://u:secret@127.0.0.1:80/")
    assert len(error("roled_ready", "x" * 10_000)) < 400


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("roled_on_unhealthy", " Exit ", "exit"),
        ("roled_on_unhealthy", "restart", "restart"),
        ("roled_on_unhealthy", "ignore", "ignore"),
        ("roled_check_period", "10", 10.0),
        ("roled_check_period", "0.5s", 0.5),
        ("roled_check_timeout", "3", 3.0),
        ("roled_check_delay", "0", 0.0),
        ("roled_check_threshold", " 5 ", 5),
    ],
)
def test_good_values(key: str, value: str, expected: object) -> None:
    assert parse(key, value) == expected


def test_keys_and_where_they_may_stand() -> None:
    """Timing keys and the outcome may be defaults in common.conf; the checks themselves not."""
    assert sorted(PARSERS) == [
        "roled_alive",
        "roled_check_delay",
        "roled_check_period",
        "roled_check_threshold",
        "roled_check_timeout",
        "roled_on_unhealthy",
        "roled_ready",
    ]
    assert sorted(PARSERS.keys() - IN_COMMON) == ["roled_alive", "roled_ready"]


def test_program_checks_from_parsed_keys() -> None:
    """Defaults are 10/3/3/0 and restart; no check at all is None (timing keys alone do nothing)."""
    ready = parse_ready("tcp://127.0.0.1:80", ORIGIN)
    assert program_checks({"roled_ready": ready}) == ProgramChecks(ready, None, "restart", Timing())
    assert Timing() == Timing(10.0, 3.0, 3, 0.0)
    values = {
        "roled_alive": ready,
        "roled_on_unhealthy": "exit",
        "roled_check_period": 2.0,
        "roled_check_timeout": 1.0,
        "roled_check_threshold": 1,
        "roled_check_delay": 5.0,
    }
    assert program_checks(values) == ProgramChecks(None, ready, "exit", Timing(2.0, 1.0, 1, 5.0))
    assert program_checks({"roled_check_period": 2.0}) is None


def test_notify_environment() -> None:
    """NOTIFY_SOCKET for notify as either check; WATCHDOG_USEC from the period for alive."""
    notify, tcp = Check("notify", "notify"), parse_ready("tcp://127.0.0.1:80", ORIGIN)
    path = "/run/roled/notify"
    assert notify_environment(ProgramChecks(ready=tcp, alive=tcp), path) == {}
    assert notify_environment(ProgramChecks(ready=notify), path) == {"NOTIFY_SOCKET": path}
    assert notify_environment(ProgramChecks(alive=notify, timing=Timing(period=2.5)), path) == {
        "NOTIFY_SOCKET": path,
        "WATCHDOG_USEC": "2500000",
    }


def test_trim_output_keeps_the_last_lines() -> None:
    text = "".join(f"line {n}\n" for n in range(100))
    assert trim_output(text) == "\n".join(f"line {n}" for n in range(90, 100))
    assert trim_output("x" * 5000 + "\nend", chars=10) == "xxxxxx\nend"


# -- the state machine ----------------------------------------------------------------------

HTTP = Check("http", "http://127.0.0.1:8000/", "127.0.0.1", 8000, "/")
TCP = Check("tcp", "tcp://127.0.0.1:8000", "127.0.0.1", 8000)
NOTIFY = Check("notify", "notify")
LOG = parse_ready("log:listening", ORIGIN)
PASS, FAIL = Result(True, "HTTP 200"), Result(False, "connection refused", "boom\n")
READY_NAME = "program 'web': ready check http://127.0.0.1:8000/"
ALIVE_NAME = "program 'web': alive check tcp://127.0.0.1:8000"


def health(checks: ProgramChecks, *, critical: bool = True) -> Health:
    machine = Health()
    machine.watch("web", checks, critical=critical)
    return machine


def probe(actions: list[object]) -> int:
    """The id of the one probe the actions start."""
    runs = [action for action in actions if isinstance(action, RunProbe)]
    assert len(runs) == 1, actions
    return runs[0].probe


def test_ready_check_retried_every_second_until_it_first_passes_then_every_period() -> None:
    """Delay after RUNNING, 1 s retries, one log and readiness on the first pass, then period."""
    machine = health(ProgramChecks(ready=HTTP, timing=Timing(period=10, delay=2)))
    assert machine.observe("web", "STARTING", 0.0) == []
    assert machine.observe("web", "RUNNING", 1.0) == []
    assert machine.next_wakeup() == 3.0
    assert machine.poll(2.9) == []
    first = machine.poll(3.0)
    assert first == [RunProbe(1, "web", "ready", HTTP, 3.0)]
    assert machine.next_wakeup() is None  # nothing due while a probe is in flight
    assert machine.result(1, FAIL, 3.2) == []
    assert machine.next_wakeup() == 4.0
    assert machine.ready("web") is False
    assert machine.result(probe(machine.poll(4.0)), FAIL, 4.1) == []
    assert machine.result(probe(machine.poll(5.0)), PASS, 5.1) == [
        Log("INFO", "program 'web' is ready (HTTP 200)"),
        ReadyChanged("web", True),
    ]
    assert machine.ready("web") is True
    assert machine.next_wakeup() == 15.0
    assert machine.result(probe(machine.poll(15.0)), PASS, 15.1) == []
    assert machine.next_wakeup() == 25.0


def test_a_probe_slower_than_the_period_delays_the_next_one() -> None:
    """Checks never overlap: the next one starts when the slow one ends."""
    machine = health(ProgramChecks(ready=HTTP, timing=Timing(period=1, timeout=3)))
    machine.observe("web", "RUNNING", 0.0)
    machine.result(probe(machine.poll(0.0)), PASS, 2.5)
    assert machine.next_wakeup() == 2.5


def test_ready_check_that_never_passes_logs_once_at_the_threshold() -> None:
    machine = health(ProgramChecks(ready=HTTP, timing=Timing(threshold=2)))
    machine.observe("web", "RUNNING", 0.0)
    logs = []
    for second in range(6):
        logs += machine.result(probe(machine.poll(float(second))), FAIL, second + 0.1)
    assert logs == [
        Log(
            "INFO",
            f"{READY_NAME} has not passed yet (2 failures in a row; last: connection refused); "
            "still waiting",
        )
    ]
    assert machine.views("web") == (
        CheckView("ready", "http", HTTP.text, State.WAITING, 6, "connection refused", "boom"),
    )


def test_ready_check_failing_after_passing_and_back() -> None:
    """Each state change is logged once, not every period."""
    machine = health(ProgramChecks(ready=HTTP, timing=Timing(period=10, threshold=2)))
    machine.observe("web", "RUNNING", 0.0)
    machine.result(probe(machine.poll(0.0)), PASS, 0.0)
    got = [machine.result(probe(machine.poll(t)), result, t) for t, result in [
        (10.0, FAIL), (20.0, FAIL), (30.0, FAIL), (40.0, PASS), (50.0, PASS)
    ]]  # fmt: skip
    assert got == [
        [],
        [
            Log(
                "WARNING",
                f"{READY_NAME} failing (2 failures in a row; last: connection refused); not ready",
            ),
            ReadyChanged("web", False),
        ],
        [],
        [Log("INFO", f"{READY_NAME} passes again; ready"), ReadyChanged("web", True)],
        [],
    ]


@pytest.mark.parametrize(
    ("on_unhealthy", "critical", "outcome"),
    [
        (
            "restart",
            True,
            [
                Log("WARNING", f"{ALIVE_NAME} failing (3 failures in a row; last: "
                    "connection refused); restarting it"),
                Restart("web", f"{ALIVE_NAME} failed (3 failures in a row; last: connection "
                        "refused)"),
            ],
        ),
        (
            "restart",
            False,
            [
                Log("WARNING", f"{ALIVE_NAME} failing (3 failures in a row; last: "
                    "connection refused); restarting it"),
                Restart("web", f"{ALIVE_NAME} failed (3 failures in a row; last: connection "
                        "refused)"),
            ],
        ),
        (
            "exit",
            True,
            [
                Log("ERROR", f"{ALIVE_NAME} failing (3 failures in a row; last: "
                    "connection refused)"),
                Fail(
                    "web",
                    "program 'web' failed its alive check tcp://127.0.0.1:8000 (3 failures in "
                    "a row; last: connection refused)",
                    "boom",
                ),
            ],
        ),
        (
            "exit",
            False,
            [
                Log("WARNING", f"{ALIVE_NAME} failing (3 failures in a row; last: "
                    "connection refused); not exiting: the program is non-critical"),
            ],
        ),
        (
            "ignore",
            True,
            [
                Log("WARNING", f"{ALIVE_NAME} failing (3 failures in a row; last: "
                    "connection refused); ignored (roled_on_unhealthy=ignore)"),
            ],
        ),
    ],
)  # fmt: skip
def test_alive_threshold_outcomes(on_unhealthy: str, critical: bool, outcome: list[object]) -> None:
    """The third failure in a row is the outcome; the first two are silent."""
    checks = ProgramChecks(alive=TCP, on_unhealthy=on_unhealthy, timing=Timing(period=5))
    machine = health(checks, critical=critical)
    machine.observe("web", "RUNNING", 0.0)
    got = [machine.result(probe(machine.poll(t)), FAIL, t) for t in (0.0, 5.0, 10.0)]
    assert got == [[], [], outcome]
    held = on_unhealthy == "restart" or (on_unhealthy == "exit" and critical)
    assert machine.next_wakeup() == (None if held else 15.0)


def test_restart_holds_checks_until_the_new_process_runs() -> None:
    machine = health(ProgramChecks(alive=TCP, timing=Timing(period=5, threshold=1, delay=1)))
    machine.observe("web", "RUNNING", 0.0)
    assert isinstance(machine.result(probe(machine.poll(1.0)), FAIL, 1.0)[-1], Restart)
    assert machine.poll(100.0) == []
    assert machine.observe("web", "STOPPING", 100.0) == []
    assert machine.observe("web", "STOPPED", 100.5) == []
    assert machine.observe("web", "STARTING", 101.0) == []
    assert machine.views("web")[0].failures == 0
    assert machine.observe("web", "RUNNING", 102.0) == []
    assert machine.next_wakeup() == 103.0
    assert machine.result(probe(machine.poll(103.0)), PASS, 103.0) == []


def test_alive_recovery_after_ignore_is_logged_once() -> None:
    checks = ProgramChecks(alive=TCP, on_unhealthy="ignore", timing=Timing(period=1, threshold=1))
    machine = health(checks)
    machine.observe("web", "RUNNING", 0.0)
    results = [FAIL, FAIL, PASS, PASS]
    got = [machine.result(probe(machine.poll(float(t))), r, t) for t, r in enumerate(results)]
    assert [len(actions) for actions in got] == [1, 0, 1, 0]
    assert got[2] == [Log("INFO", f"{ALIVE_NAME} passes again")]


def test_leaving_running_cancels_the_probe_and_readiness() -> None:
    """A result that comes after the cancel is ignored."""
    machine = health(ProgramChecks(ready=HTTP, alive=TCP))
    machine.observe("web", "RUNNING", 0.0)
    started = machine.poll(0.0)
    assert [action.probe for action in started if isinstance(action, RunProbe)] == [1, 2]
    machine.result(1, PASS, 0.1)
    assert machine.observe("web", "EXITED", 0.2) == [
        ReadyChanged("web", False),
        CancelProbe(2),
    ]
    assert machine.result(2, FAIL, 0.3) == []
    assert machine.result(99, FAIL, 0.3) == []
    assert machine.ready("web") is False
    assert machine.next_wakeup() is None
    assert machine.forget("web") == []
    assert machine.ready("web") is None


def test_forget_cancels_a_probe_in_flight() -> None:
    machine = health(ProgramChecks(alive=TCP))
    machine.observe("web", "RUNNING", 0.0)
    started = probe(machine.poll(0.0))
    assert machine.forget("web") == [CancelProbe(started)]
    assert machine.result(started, PASS, 1.0) == []


def test_notify_ready_before_and_after_running() -> None:
    """READY=1 sent while STARTING counts once the program is RUNNING; a new process resets it."""
    machine = health(ProgramChecks(ready=NOTIFY))
    machine.observe("web", "STARTING", 0.0)
    assert machine.notified("web", 0.5, ready=True) == []
    assert machine.ready("web") is False
    assert machine.observe("web", "RUNNING", 1.0) == [
        Log("INFO", "program 'web' is ready (READY=1 received)"),
        ReadyChanged("web", True),
    ]
    assert machine.notified("web", 2.0, ready=True) == []
    assert machine.observe("web", "BACKOFF", 3.0) == [ReadyChanged("web", False)]
    machine.observe("web", "STARTING", 4.0)
    assert machine.observe("web", "RUNNING", 5.0) == []
    assert machine.notified("web", 6.0, watchdog=True) == []
    assert machine.notified("web", 6.0, ready=True) == [
        Log("INFO", "program 'web' is ready (READY=1 received)"),
        ReadyChanged("web", True),
    ]
    assert machine.next_wakeup() is None


def test_notify_watchdog_missing_for_a_period_counts_one_failure() -> None:
    timing = Timing(period=2, threshold=2, delay=1)
    machine = health(ProgramChecks(alive=NOTIFY, on_unhealthy="exit", timing=timing))
    machine.observe("web", "RUNNING", 0.0)
    assert machine.next_wakeup() == 3.0
    assert machine.notified("web", 2.0, watchdog=True) == []
    assert machine.next_wakeup() == 4.0
    assert machine.poll(5.9) == []
    assert machine.views("web")[0].failures == 1
    assert machine.notified("web", 6.0, watchdog=True) == []
    assert machine.views("web")[0].failures == 0
    name = "program 'web': alive check notify"
    why = "2 failures in a row; last: no WATCHDOG=1 within 2s"
    assert machine.poll(12.0) == [
        Log("ERROR", f"{name} failing ({why})"),
        Fail("web", f"program 'web' failed its alive check notify ({why})", ""),
    ]
    assert machine.next_wakeup() is None


def test_notify_watchdog_recovers_under_ignore() -> None:
    timing = Timing(period=1, threshold=1)
    machine = health(ProgramChecks(alive=NOTIFY, on_unhealthy="ignore", timing=timing))
    machine.observe("web", "RUNNING", 0.0)
    assert len(machine.poll(1.0)) == 1
    assert machine.notified("web", 1.5, watchdog=True) == [
        Log("INFO", "program 'web': alive check notify passes again")
    ]
    assert machine.next_wakeup() == 2.5


def test_notify_watchdog_restart_holds() -> None:
    machine = health(ProgramChecks(alive=NOTIFY, timing=Timing(period=1, threshold=1)))
    machine.observe("web", "RUNNING", 0.0)
    assert isinstance(machine.poll(10.0)[-1], Restart)
    assert machine.next_wakeup() is None
    assert machine.notified("web", 10.5, watchdog=True) == []


def test_log_readiness_from_lines() -> None:
    """Lines are wanted only until one matches; a match before RUNNING counts at RUNNING."""
    machine = health(ProgramChecks(ready=LOG))
    machine.observe("web", "STARTING", 0.0)
    assert machine.wants_lines("web")
    assert machine.line("web", b"booting", 0.1) == []
    assert machine.line("web", b"now listening on :80\n", 0.2) == []
    assert not machine.wants_lines("web")
    assert machine.observe("web", "RUNNING", 1.0) == [
        Log("INFO", "program 'web' is ready (line matched: now listening on :80)"),
        ReadyChanged("web", True),
    ]
    machine.observe("web", "STARTING", 2.0)
    assert machine.wants_lines("web")
    machine.observe("web", "RUNNING", 3.0)
    assert machine.line("web", "listening", 3.5) == [
        Log("INFO", "program 'web' is ready (line matched: listening)"),
        ReadyChanged("web", True),
    ]
    assert machine.wants_lines("nobody") is False


def test_programs_are_independent() -> None:
    machine = Health()
    machine.watch("a", ProgramChecks(alive=TCP, timing=Timing(period=3)))
    machine.watch("b", ProgramChecks(alive=TCP, timing=Timing(period=5, delay=1)))
    machine.observe("a", "RUNNING", 0.0)
    machine.observe("b", "RUNNING", 0.0)
    assert [action.program for action in machine.poll(0.0) if isinstance(action, RunProbe)] == ["a"]
    assert machine.next_wakeup() == 1.0
    assert machine.ready("a") is None
