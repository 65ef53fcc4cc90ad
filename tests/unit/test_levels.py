"""The startup, ready and alive answers as exact tables over program snapshots."""

from __future__ import annotations

import itertools

import pytest

from roled.checks import CheckView, State
from roled.levels import (
    Answer,
    ProgramView,
    answer,
    check_fields,
    condemned,
    is_ready,
    not_ready,
    program_fields,
)
from roled.policy import ProgramConfig, Rules, healthy

ONESHOT = ProgramConfig(autorestart="false")
MANUAL = ProgramConfig(autostart=False)
WAITING = CheckView("ready", "http", "http://127.0.0.1:8000/", State.WAITING, 2, "HTTP 503", "")


@pytest.mark.parametrize(
    ("view", "expected"),
    [
        (ProgramView("web", "RUNNING"), None),
        (ProgramView("web", "RUNNING", ready_check=True), None),
        (
            ProgramView("web", "RUNNING", ready_check=False, checks=(WAITING,)),
            "'web' is RUNNING, its ready check (http http://127.0.0.1:8000/) has not passed",
        ),
        (
            ProgramView("web", "RUNNING", ready_check=False),
            "'web' is RUNNING, its ready check has not passed",
        ),
        (ProgramView("web", "STARTING"), "'web' is STARTING"),
        (ProgramView("web", "BACKOFF"), "'web' is BACKOFF"),
        (ProgramView("web", "STOPPING"), "'web' is STOPPING"),
        (ProgramView("web", "FATAL"), "'web' is FATAL"),
        (ProgramView("web", "STOPPED"), "'web' is STOPPED"),
        (ProgramView("web", "UNKNOWN"), "'web' is UNKNOWN"),
        (ProgramView("tool", "STOPPED", MANUAL), None),
        (ProgramView("migrate", "EXITED", ONESHOT, exitstatus=0), None),
        (ProgramView("migrate", "EXITED", ONESHOT, exitstatus=2),
         "'migrate' is EXITED (exit status 2)"),
        (ProgramView("migrate", "EXITED", ONESHOT), "'migrate' is EXITED"),
        (ProgramView("web", "EXITED", exitstatus=1), "'web' is EXITED (exit status 1)"),
        (ProgramView("cron", "STOPPED", scheduled=True), None),
        (ProgramView("cron", "EXITED", scheduled=True, exitstatus=1), None),
        (ProgramView("cron", "RUNNING", scheduled=True), None),
        (ProgramView("cron", "FATAL", scheduled=True), "'cron' is FATAL"),
        # Held back by its dependencies: assembled with autostart=false, yet not ready.
        (ProgramView("web", "STOPPED", MANUAL, waiting="waits for migrate (succeeded)"),
         "'web' is WAITING: it waits for migrate (succeeded)"),
    ],
)  # fmt: skip
def test_not_ready(view: ProgramView, expected: str | None) -> None:
    assert not_ready(view) == expected


FATAL_ONLY, UNEXPECTED, ANY = Rules(), Rules(exit_on="unexpected"), Rules(exit_on="any")


@pytest.mark.parametrize(
    ("view", "rules", "expected"),
    [
        (ProgramView("web", "RUNNING"), ANY, None),
        (ProgramView("web", "STARTING"), ANY, None),
        (ProgramView("web", "STOPPED"), ANY, None),
        (ProgramView("web", "FATAL"), FATAL_ONLY, "program 'web' is FATAL"),
        (ProgramView("web", "FATAL", critical=False), ANY, None),
        (ProgramView("web", "BACKOFF"), FATAL_ONLY, None),
        (ProgramView("web", "BACKOFF"), UNEXPECTED,
         "program 'web' exited while starting (BACKOFF)"),
        (ProgramView("web", "EXITED", exitstatus=1), FATAL_ONLY, None),
        (ProgramView("web", "EXITED", exitstatus=1), UNEXPECTED,
         "program 'web' exited unexpectedly (exit status 1)"),
        (ProgramView("web", "EXITED", exitstatus=0), UNEXPECTED, None),
        (ProgramView("web", "EXITED", exitstatus=0), ANY,
         "program 'web' exited and ROLED_EXIT_ON is 'any'"),
        (ProgramView("web", "EXITED"), ANY, "program 'web' exited and ROLED_EXIT_ON is 'any'"),
        (ProgramView("cron", "EXITED", exitstatus=1, scheduled=True), ANY, None),
        (ProgramView("cron", "FATAL", scheduled=True), FATAL_ONLY, "program 'cron' is FATAL"),
        (ProgramView("app", "EXITED", exitstatus=0, main=True), FATAL_ONLY, None),
        (ProgramView("app", "EXITED", exitstatus=3, main=True), FATAL_ONLY,
         "main program 'app' ended (EXITED)"),
        (ProgramView("app", "BACKOFF", main=True, critical=False), FATAL_ONLY,
         "main program 'app' ended (BACKOFF)"),
        (ProgramView("app", "RUNNING", main=True), ANY, None),
    ],
)  # fmt: skip
def test_condemned(view: ProgramView, rules: Rules, expected: str | None) -> None:
    """What ends the container, as the exit policy has it, from a state alone."""
    assert condemned(view, rules) == expected


WEB = ProgramView("web", "RUNNING", ready_check=True)


@pytest.mark.parametrize(
    ("views", "failure", "alive", "ready"),
    [
        ([WEB], None, Answer(0), Answer(0)),
        ([], None, Answer(0), Answer(0)),
        (
            [ProgramView("web", "RUNNING", ready_check=False)],
            None,
            Answer(0),
            Answer(1, ("'web' is RUNNING, its ready check has not passed",)),
        ),
        (
            [WEB, ProgramView("worker", "FATAL")],
            None,
            Answer(1, ("program 'worker' is FATAL",)),
            Answer(1, ("program 'worker' is FATAL", "'worker' is FATAL")),
        ),
        (
            [WEB],
            "program 'web' restarted 6 times within 60s (ROLED_MAX_RESTARTS is 5/60)",
            Answer(1, ("program 'web' restarted 6 times within 60s (ROLED_MAX_RESTARTS is 5/60)",)),
            Answer(1, ("program 'web' restarted 6 times within 60s (ROLED_MAX_RESTARTS is 5/60)",)),
        ),
        ([WEB, ProgramView("web2", "BACKOFF")], None, Answer(0), Answer(1, ("'web2' is BACKOFF",))),
        ([WEB, ProgramView("extra", "BACKOFF", critical=False)], None, Answer(0), Answer(0)),
        ([WEB, ProgramView("job", "EXITED", ONESHOT, exitstatus=0)], None, Answer(0), Answer(0)),
        ([WEB, ProgramView("tool", "STOPPED", MANUAL)], None, Answer(0), Answer(0)),
        ([WEB, ProgramView("cron", "STOPPED", scheduled=True)], None, Answer(0), Answer(0)),
    ],
)  # fmt: skip
def test_alive_and_ready(
    views: list[ProgramView], failure: str | None, alive: Answer, ready: Answer
) -> None:
    assert answer("alive", views, Rules(), failure) == alive
    assert answer("ready", views, Rules(), failure) == ready


def test_startup_stays_passed_once_ready_was_reached() -> None:
    """Before ready was reached startup answers as ready does; afterwards always 0."""
    failing = [ProgramView("web", "RUNNING", ready_check=False)]
    assert answer("startup", failing, Rules()) == answer("ready", failing, Rules())
    assert answer("startup", failing, Rules()).code == 1
    assert answer("startup", failing, Rules(), reached=True) == Answer(0)
    assert answer("startup", [WEB], Rules()) == Answer(0)


def test_noncritical_flapping_program_keeps_alive_and_ready_at_zero() -> None:
    """The issue's example: ``flaky`` (non-critical) exits after 0.3 s, through supervisord's
    start retries to FATAL. Today's probe (every program healthy) answers 1 from the first
    restart on; alive and ready stay 0 throughout."""
    rules = Rules(noncritical=("flaky",))
    states = ["RUNNING", "STARTING", "BACKOFF", "STARTING", "BACKOFF", "FATAL"]
    snapshots = [
        [WEB, ProgramView("flaky", state, critical=not rules.is_noncritical("flaky"))]
        for state in states
    ]
    today = [
        0 if all(healthy(view.state, 0, ProgramConfig()) for view in views) else 1
        for views in snapshots
    ]
    assert today == [0, 1, 1, 1, 1, 1]
    assert [answer("alive", views, rules).code for views in snapshots] == [0] * 6
    assert [answer("ready", views, rules).code for views in snapshots] == [0] * 6


def test_json_fields() -> None:
    """--json: per program, ready and critical, and each check's kind, target, state, failures,
    last result and trimmed output."""
    output = "".join(f"line {n}\n" for n in range(50))
    check = CheckView("alive", "exec", "pg_isready", State.FAILING, 3, "exit status 2", output)
    view = ProgramView("db", "RUNNING", critical=False, checks=(check,))
    assert program_fields(view) == {
        "ready": True,
        "critical": False,
        "checks": [
            {
                "level": "alive",
                "kind": "exec",
                "target": "pg_isready",
                "state": "failing",
                "consecutive_failures": 3,
                "last_result": "exit status 2",
                "last_output": "\n".join(f"line {n}" for n in range(40, 50)),
            }
        ],
    }
    assert check_fields(WAITING)["state"] == "waiting"


@pytest.mark.parametrize("rules", [Rules(), Rules(exit_on="any"), Rules(main="web")])
def test_is_ready_is_ready_asked_of_one_process(rules: Rules) -> None:
    """is_ready agrees with ready asked of the process alone, for every kind of process."""
    views = [
        ProgramView("web", state, config, status, critical, ready_check=check, scheduled=timed)
        for state, config, status, critical, check, timed in itertools.product(
            ["RUNNING", "STARTING", "BACKOFF", "STOPPED", "EXITED", "FATAL"],
            [ProgramConfig(), ONESHOT, MANUAL],
            [None, 0, 3],
            [True, False],
            [None, True, False],
            [False, True],
        )
    ]
    agreed = [is_ready(view, rules) == (answer("ready", [view], rules).code == 0) for view in views]
    assert all(agreed)
    assert {is_ready(view, rules) for view in views} == {True, False}
