"""The exit policy (pure): transitions and time in, verdicts and warnings out."""

from __future__ import annotations

import pytest

from roled.errors import RoledError
from roled.model import ProgramConfig
from roled.policy import (
    Budget,
    Notice,
    Policy,
    Rules,
    Transition,
    Verdict,
    check_main,
    healthy,
    parse_bool,
    parse_budget,
    parse_exit_on,
    parse_names,
)

ONESHOT = ProgramConfig(autorestart="false")
ALWAYS = ProgramConfig(autorestart="true")


def exited(program: str, *, expected: bool, status: int | None = None) -> Transition:
    return Transition(program, "RUNNING", "EXITED", expected, status)


def restart(program: str) -> Transition:
    return Transition(program, "EXITED", "STARTING")


def test_fatal_is_a_failure_by_default() -> None:
    """A FATAL program gives exit code 1 under every policy."""
    for exit_on in ("fatal", "unexpected", "any"):
        verdict = Policy(Rules(exit_on=exit_on)).judge(Transition("web", "BACKOFF", "FATAL"), 0)
        assert verdict == Verdict(1, "program 'web' is FATAL", ("web",))


def test_fatal_policy_ignores_exits() -> None:
    """Under 'fatal', an unexpected exit that supervisord restarts is not a failure."""
    policy = Policy(Rules())
    assert policy.judge(exited("web", expected=False, status=3), 0) is None
    assert policy.judge(Transition("web", "STARTING", "BACKOFF"), 0) is None


def test_unexpected_policy_fails_on_an_unexpected_exit_only() -> None:
    """Under 'unexpected', exit status 3 fails and an expected exit does not."""
    policy = Policy(Rules(exit_on="unexpected"))
    assert policy.judge(exited("ok", expected=True, status=0), 0) is None
    verdict = policy.judge(exited("web", expected=False, status=3), 0)
    assert verdict == Verdict(1, "program 'web' exited unexpectedly (exit status 3)", ("web",))


def test_unexpected_policy_counts_an_exit_while_starting() -> None:
    """Under 'unexpected', an exit within startsecs (BACKOFF) is a failure."""
    verdict = Policy(Rules(exit_on="unexpected")).judge(Transition("web", "STARTING", "BACKOFF"), 0)
    assert isinstance(verdict, Verdict)
    assert verdict.reason == "program 'web' exited while starting (BACKOFF)"


def test_unexpected_policy_judges_a_synced_exit_by_exitcodes() -> None:
    """An exit seen over XML-RPC (no 'expected' field) is judged against the program's exitcodes."""
    policy = Policy(Rules(exit_on="unexpected"), {"web": ProgramConfig(exitcodes=(0, 3))})
    assert policy.judge(Transition("web", "RUNNING", "EXITED", None, 3), 0) is None
    assert isinstance(policy.judge(Transition("web", "RUNNING", "EXITED", None, 4), 0), Verdict)


def test_any_policy_fails_on_an_expected_exit() -> None:
    """Under 'any', even an expected exit ends the container with 1."""
    verdict = Policy(Rules(exit_on="any")).judge(exited("job", expected=True, status=0), 0)
    assert isinstance(verdict, Verdict)
    assert verdict.code == 1
    assert "'job' exited (exit status 0)" in verdict.reason


def test_any_policy_ignores_a_stop_on_request() -> None:
    """A program stopped through supervisorctl is not a program dying."""
    policy = Policy(Rules(exit_on="any"))
    assert policy.judge(Transition("web", "STOPPING", "STOPPED"), 0) is None


@pytest.mark.parametrize("program", ["metrics", "side:side_00", "side:side_01"])
def test_noncritical_failure_is_a_notice(program: str) -> None:
    """A FATAL non-critical program is a warning, matched by name, glob or group."""
    policy = Policy(Rules(noncritical=("metr*", "side")))
    outcome = policy.judge(Transition(program, "BACKOFF", "FATAL"), 0)
    assert outcome == Notice(f"program {program!r} is FATAL", program)


def test_main_exit_code_is_the_container_exit_code() -> None:
    """The main program's exit status becomes roled's exit code."""
    verdict = Policy(Rules(main="app")).judge(exited("app", expected=False, status=7), 0)
    assert verdict == Verdict(7, "main program 'app' exited (exit status 7)", ("app",))


def test_main_clean_exit_is_exit_0() -> None:
    """The main program exiting 0 ends the container with 0 and no program at fault."""
    verdict = Policy(Rules(main="app")).judge(exited("app", expected=True, status=0), 0)
    assert verdict == Verdict(0, "main program 'app' exited (exit status 0)", ())


def test_main_exit_status_lost_to_a_restart_uses_its_only_exitcode() -> None:
    """An expected exit whose status supervisord already reset is the program's one exitcode."""
    policy = Policy(Rules(main="app"), {"app": ProgramConfig(exitcodes=(4,), autorestart="true")})
    verdict = policy.judge(exited("app", expected=True), 0)
    assert isinstance(verdict, Verdict)
    assert verdict.code == 4


@pytest.mark.parametrize(("status", "code"), [(-1, 1), (None, 1)])
def test_main_killed_or_unknown_is_exit_1(status: int | None, code: int) -> None:
    """A main program killed by a signal, or of unknown status, gives 1."""
    verdict = Policy(Rules(main="app")).judge(exited("app", expected=False, status=status), 0)
    assert isinstance(verdict, Verdict)
    assert verdict.code == code


def test_main_exit_while_starting_is_exit_1() -> None:
    """supervisord keeps no status for an exit within startsecs: the main program's end is 1."""
    verdict = Policy(Rules(main="app")).judge(Transition("app", "STARTING", "BACKOFF"), 0)
    assert isinstance(verdict, Verdict)
    assert verdict.code == 1
    assert "within startsecs" in verdict.reason


@pytest.mark.parametrize(
    ("setting", "process", "named"),
    [
        # A program, each process of its numprocs, a process alone.
        ("app", "app", True),
        ("app", "app:app_01", True),
        ("app_01", "app:app_01", True),
        ("app:app_01", "app:app_01", True),
        ("app_02", "app:app_01", False),
        # A program in a [group:grp]: by its name, group:name, or the group.
        ("app", "grp:app", True),
        ("grp:app", "grp:app", True),
        ("grp", "grp:app", True),
        ("grp:other", "grp:app", False),
        ("ap", "app", False),
    ],
)
def test_one_name_rule_for_main_and_noncritical(setting: str, process: str, named: bool) -> None:
    """ROLED_MAIN and ROLED_NONCRITICAL name a process by program, group:name, group or
    process name (issue 11, item 8)."""
    assert Rules(main=setting).is_main(process) is named
    assert Rules(noncritical=(setting,)).is_noncritical(process) is named


def test_noncritical_globs_follow_the_name_rule() -> None:
    """A glob matches any of a process's names."""
    assert Rules(noncritical=("worker_*",)).is_noncritical("worker:worker_03")
    assert Rules(noncritical=("g*",)).is_noncritical("grp:app")
    assert not Rules(noncritical=("x*",)).is_noncritical("grp:app")


def test_restart_budget_trips_on_the_restart_past_it() -> None:
    """With 3/60, the fourth restart within 60 s is a failure, not the third."""
    policy = Policy(Rules(max_restarts=Budget(3, 60)))
    outcomes = [policy.judge(restart("loop"), now) for now in (0, 1, 2, 3)]
    assert outcomes[:3] == [None, None, None]
    assert outcomes[3] == Verdict(
        1, "program 'loop' restarted 4 times within 60s (ROLED_MAX_RESTARTS is 3/60)", ("loop",)
    )


def test_restart_budget_forgets_old_restarts() -> None:
    """Restarts spread wider than the window never trip the budget."""
    policy = Policy(Rules(max_restarts=Budget(2, 10)))
    assert all(policy.judge(restart("slow"), now) is None for now in range(0, 100, 6))


def test_restart_budget_ignores_first_starts_and_operator_starts() -> None:
    """Only STARTING after EXITED or BACKOFF is a restart."""
    policy = Policy(Rules(max_restarts=Budget(0, 60)))
    assert policy.judge(Transition("web", "STOPPED", "STARTING"), 0) is None
    assert isinstance(policy.judge(Transition("web", "BACKOFF", "STARTING"), 1), Verdict)


def test_noncritical_crash_loop_warns_once_per_loop() -> None:
    """A non-critical crash loop warns when it trips, then needs a whole new loop to warn again."""
    policy = Policy(Rules(max_restarts=Budget(1, 60), noncritical=("loop",)))
    outcomes = [policy.judge(restart("loop"), now) for now in range(4)]
    assert [type(outcome).__name__ for outcome in outcomes] == [
        "NoneType",
        "Notice",
        "NoneType",
        "Notice",
    ]


def test_done_when_every_oneshot_exited_as_expected() -> None:
    """Two one-shots that exited 0 make the container done, with 0."""
    policy = Policy(Rules(exit_when_done=True), {"a": ONESHOT, "b": ONESHOT})
    for program in ("a", "b"):
        policy.judge(Transition(program, "STOPPED", "STARTING"), 0)
        policy.judge(exited(program, expected=True, status=0), 0)
    assert policy.done({"a": "EXITED", "b": "EXITED"}) == Verdict(0, "every program is done")


@pytest.mark.parametrize(
    ("states", "configs"),
    [
        ({"a": "EXITED", "b": "RUNNING"}, {"a": ONESHOT}),
        ({"a": "EXITED", "b": "STARTING"}, {"a": ONESHOT}),
        ({"a": "EXITED"}, {"a": ALWAYS}),
        ({"a": "EXITED", "b": "STOPPED"}, {"a": ONESHOT}),
    ],
    ids=["running", "starting", "will-restart", "not-yet-started"],
)
def test_not_done_while_anything_is_left(
    states: dict[str, str], configs: dict[str, ProgramConfig]
) -> None:
    """Anything running, starting, about to restart or not yet started keeps the container."""
    policy = Policy(Rules(exit_when_done=True), configs)
    policy.judge(Transition("a", "STOPPED", "STARTING"), 0)
    policy.judge(exited("a", expected=True, status=0), 0)
    assert policy.done(states) is None


def test_done_counts_programs_never_meant_to_start() -> None:
    """A STOPPED program with autostart=false does not keep the container."""
    configs = {"a": ONESHOT, "manual": ProgramConfig(autostart=False)}
    policy = Policy(Rules(exit_when_done=True), configs)
    policy.judge(Transition("a", "STOPPED", "STARTING"), 0)
    policy.judge(exited("a", expected=True, status=0), 0)
    assert policy.done({"a": "EXITED", "manual": "STOPPED"}) == Verdict(0, "every program is done")


def test_done_with_an_unexpected_exit_is_a_failure() -> None:
    """Done, but a one-shot that exited unexpectedly makes it exit 1, naming it."""
    policy = Policy(Rules(exit_when_done=True), {"a": ONESHOT, "b": ONESHOT})
    policy.judge(exited("a", expected=True, status=0), 0)
    policy.judge(exited("b", expected=False, status=3), 0)
    verdict = policy.done({"a": "EXITED", "b": "EXITED"})
    assert verdict == Verdict(1, "every program is done, but 'b' failed", ("b",))


def test_done_is_off_by_default() -> None:
    """Without exit_when_done, finished one-shots never end the container."""
    policy = Policy(Rules(), {"a": ONESHOT})
    policy.judge(exited("a", expected=True, status=0), 0)
    assert policy.done({"a": "EXITED"}) is None


@pytest.mark.parametrize(
    ("state", "status", "config", "ok"),
    [
        ("RUNNING", 0, ProgramConfig(), True),
        ("STARTING", 0, ProgramConfig(), False),
        ("BACKOFF", 0, ProgramConfig(), False),
        ("FATAL", 0, ProgramConfig(), False),
        ("STOPPED", 0, ProgramConfig(), False),
        ("STOPPED", 0, ProgramConfig(autostart=False), True),
        ("EXITED", 0, ONESHOT, True),
        ("EXITED", 3, ONESHOT, False),
        ("EXITED", 0, ALWAYS, False),
        ("EXITED", 0, ProgramConfig(autorestart="unexpected"), True),
    ],
)
def test_healthy(state: str, status: int, config: ProgramConfig, ok: bool) -> None:
    """The probe's rule: running, a one-shot done as expected, or never meant to start."""
    assert healthy(state, status, config) is ok


@pytest.mark.parametrize(
    ("value", "budget"),
    [("5/60", Budget(5, 60)), (" 0 / 1.5s ", Budget(0, 1.5)), ("none", None), ("", None)],
)
def test_parse_budget(value: str, budget: Budget | None) -> None:
    """RESTARTS/SECONDS, with an optional s; none or empty is no budget."""
    assert parse_budget(value, "ROLED_MAX_RESTARTS") == budget


@pytest.mark.parametrize("value", ["5", "5/0", "-1/60", "a/60", "5/60/1", "5/.", "5/1e400"])
def test_parse_budget_refuses_nonsense(value: str) -> None:
    """A malformed budget is a one-line error naming the setting."""
    with pytest.raises(RoledError, match=r"^ROLED_MAX_RESTARTS: expected RESTARTS/SECONDS"):
        parse_budget(value, "ROLED_MAX_RESTARTS")


def test_parse_exit_on() -> None:
    """The three policies are accepted in any case; anything else names the choices."""
    assert parse_exit_on(" Unexpected ", "x") == "unexpected"
    with pytest.raises(RoledError, match="choose fatal, unexpected, any"):
        parse_exit_on("always", "ROLED_EXIT_ON")


def test_parse_bool_and_names() -> None:
    """Switches take the usual words; names split on commas and spaces, duplicates dropped."""
    assert parse_bool("Yes", "x") is True
    assert parse_bool("0", "x") is False
    with pytest.raises(RoledError, match="expected true or false"):
        parse_bool("maybe", "ROLED_EXIT_WHEN_DONE")
    assert parse_names("a, b c,,a") == ("a", "b", "c")


def test_check_main_needs_a_selected_program() -> None:
    """A main program that does not run is an error listing the programs that do."""
    check_main(Rules(main="web"), ["web", "worker"])
    check_main(Rules(main="grp"), ["grp:app"])
    with pytest.raises(RoledError, match=r"'wbe' is not a program, .*\(processes: web, worker\)"):
        check_main(Rules(main="wbe"), ["worker", "web"])
