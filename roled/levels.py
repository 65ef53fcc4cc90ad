"""The three questions an orchestrator asks, ``startup``, ``ready`` and ``alive``, answered from
the programs' states, their ready checks and the exit policy.

Pure: it is given a snapshot (what roled knows of each process) and judges it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from roled.checks import CheckView, trim_output
from roled.errors import EXIT_FAILED, EXIT_OK
from roled.model import ProcessState, ProgramConfig
from roled.policy import Rules, describe_exit, healthy


@dataclass(frozen=True, slots=True)
class ProgramView:
    """One process as roled sees it: supervisord's state, the policy's view and its checks.

    ``ready_check`` is None without a ready check, else whether it passes now; ``scheduled``
    marks a program roled starts on a schedule (idle between runs is fine).
    """

    name: str
    state: str
    config: ProgramConfig = field(default_factory=ProgramConfig)
    exitstatus: int | None = None
    critical: bool = True
    main: bool = False
    ready_check: bool | None = None
    scheduled: bool = False
    checks: tuple[CheckView, ...] = ()
    # What a process held back by its dependencies waits for (shown WAITING), else None.
    waiting: str | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A level's exit code for ``roled status``, and why it is not 0."""

    code: int
    reasons: tuple[str, ...] = ()


def not_ready(view: ProgramView) -> str | None:
    """Why the process is not ready, or None when it is (whether critical or not)."""
    if view.waiting is not None:
        return f"{view.name!r} is WAITING: it {view.waiting}"
    state = view.state
    if view.scheduled:
        return f"{view.name!r} is FATAL" if state == "FATAL" else None
    if state == "RUNNING":
        if view.ready_check is False:
            kinds = [check for check in view.checks if check.level == "ready"]
            what = f" ({kinds[0].kind} {kinds[0].target})" if kinds and kinds[0].target else ""
            return f"{view.name!r} is RUNNING, its ready check{what} has not passed"
        return None
    if healthy(
        ProcessState.parse(state), -1 if view.exitstatus is None else view.exitstatus, view.config
    ):
        return None
    if state == "EXITED":
        status = describe_exit(view.exitstatus)
        return f"{view.name!r} is EXITED ({status})" if status else f"{view.name!r} is EXITED"
    return f"{view.name!r} is {state}"


def condemned(view: ProgramView, rules: Rules) -> str | None:
    """Why this process makes roled end the container with a failure, seen from its state alone.

    A crash loop over ROLED_MAX_RESTARTS and an alive check's ``exit`` leave no trace in the
    state: roled passes those as ``failure``.
    """
    state = view.state
    if view.main and state in {"BACKOFF", "FATAL", "EXITED"}:
        if state == "EXITED" and view.exitstatus == 0:
            return None
        return f"main program {view.name!r} ended ({state})"
    if not view.critical:
        return None
    if state == "FATAL":
        return f"program {view.name!r} is FATAL"
    if view.scheduled or rules.exit_on == "fatal":
        return None
    if state == "BACKOFF":
        return f"program {view.name!r} exited while starting (BACKOFF)"
    if state != "EXITED":
        return None
    expected = view.exitstatus is None or view.config.expects(view.exitstatus)
    if not expected:
        return f"program {view.name!r} exited unexpectedly ({describe_exit(view.exitstatus)})"
    if rules.exit_on == "any":
        return f"program {view.name!r} exited and ROLED_EXIT_ON is 'any'"
    return None


def alive(views: Iterable[ProgramView], rules: Rules, failure: str | None = None) -> Answer:
    """0 unless roled is going to end the container with a failure for what it sees."""
    reasons = [failure] if failure else []
    reasons += [why for view in views if (why := condemned(view, rules)) is not None]
    return Answer(EXIT_FAILED if reasons else EXIT_OK, tuple(reasons))


def ready(views: Sequence[ProgramView], rules: Rules, failure: str | None = None) -> Answer:
    """0 when alive and every critical process is ready (running with its ready check passing,
    finished well, or not meant to run)."""
    living = alive(views, rules, failure)
    reasons = list(living.reasons)
    reasons += [
        why for view in views if view.critical and (why := not_ready(view)) and why not in reasons
    ]
    return Answer(EXIT_FAILED if reasons else EXIT_OK, tuple(reasons))


def is_ready(view: ProgramView, rules: Rules) -> bool:
    """Whether this process lets ``ready`` answer 0: ``ready`` asked of one process at a time,
    so that a caller can stop at the first that is not."""
    return condemned(view, rules) is None and (not view.critical or not_ready(view) is None)


def startup(
    views: Sequence[ProgramView], rules: Rules, failure: str | None = None, *, reached: bool
) -> Answer:
    """0 once ready has been reached since start (``reached``): start-up is over for good."""
    return Answer(EXIT_OK) if reached else ready(views, rules, failure)


def answer(
    level: str,
    views: Sequence[ProgramView],
    rules: Rules,
    failure: str | None = None,
    *,
    reached: bool = False,
) -> Answer:
    """The answer at one of ``roled.locate.LEVELS``."""
    if level == "alive":
        return alive(views, rules, failure)
    if level == "startup":
        return startup(views, rules, failure, reached=reached)
    return ready(views, rules, failure)


def check_fields(view: CheckView) -> dict[str, object]:
    """One check as ``roled status --json`` shows it."""
    return {
        "level": view.level,
        "kind": view.kind,
        "target": view.target,
        "state": str(view.state),
        "consecutive_failures": view.failures,
        "last_result": view.last_result,
        "last_output": trim_output(view.last_output),
    }


def program_fields(view: ProgramView) -> dict[str, object]:
    """What ``--json`` adds to a program: whether it is ready, and each of its checks."""
    return {
        "ready": not_ready(view) is None,
        "critical": view.critical,
        "checks": [check_fields(check) for check in view.checks],
    }


# -- what roled publishes for ``roled status`` ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Published:
    """What only roled knows and ``roled status`` needs: the exit policy, whether ready was
    reached once, why roled is about to exit with a failure, and each process's checks
    (``ready``: its ready check passes now; absent without one)."""

    rules: Rules = field(default_factory=Rules)
    ready_once: bool = False
    failure: str | None = None
    ready: Mapping[str, bool] = field(default_factory=dict)
    checks: Mapping[str, tuple[CheckView, ...]] = field(default_factory=dict)
