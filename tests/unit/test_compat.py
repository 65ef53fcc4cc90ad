"""supervisord's command line and config search, compared with supervisor's own tables."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from supervisor.options import ServerOptions

from roled import compat, locate, policy
from roled.arguments import build_parser
from roled.model import Section
from roled.policy import Transition

# Options roled answers itself, with supervisord's meaning: the main config, help, version.
ROLED_OWN = frozenset({"-c", "--configuration", "-h", "--help", "-?", "-v", "--version"})


def supervisord_options() -> list[tuple[str, bool, str | None]]:
    """(form, takes a value, [supervisord] key) for every option of this supervisor."""
    options = ServerOptions()
    confnames = dict(options.names_list)
    takes = {f"-{short[0]}" for short in options.short_options if short.endswith(":")}
    takes |= {f"--{long[:-1]}" for long in options.long_options if long.endswith("=")}
    table = []
    for form, (name, _handler) in options.options_map.items():
        confname = confnames.get(name) if name else None
        key = confname.split(".", 1)[1] if confname else None
        table.append((form, form in takes, key))
    return table


TABLE = supervisord_options()


def test_the_table_covers_supervisords_help() -> None:
    """Every option of supervisord's --help is in supervisor's table, and so in the test."""
    forms = {form for form, _, _ in TABLE}
    assert {"-n", "--nodaemon", "-u", "--user", "-j", "--pidfile", "--minprocs", "-s"} <= forms
    assert forms - ROLED_OWN == {form for option in compat.OPTIONS for form in option.forms()}


@pytest.mark.parametrize(
    ("form", "takes", "key"), [row for row in TABLE if row[0] not in ROLED_OWN]
)
@pytest.mark.parametrize("prefix", [(), ("run",), ("check",)])
def test_every_supervisord_option_sets_its_key(
    form: str, takes: bool, key: str | None, prefix: tuple[str, ...]
) -> None:
    """Each option parses beside roled's flags and sets the [supervisord] key it stands for."""
    value = "V%1" if takes else None
    argv = [*prefix, "--roles", "web", form, *([value] if value else [])]
    args = build_parser().parse_args(argv)
    assert compat.overrides(args) == ((key, value or "true"),)
    assert args.roles == "web"


@pytest.mark.parametrize(
    "form",
    [row[0] for row in TABLE if row[1] and row[0].startswith("--") and row[0] not in ROLED_OWN],
)
def test_long_options_take_their_value_after_an_equals_sign(form: str) -> None:
    """``--user=root`` means ``--user root``, as getopt reads it."""
    args = build_parser().parse_args([f"{form}=x"])
    assert dict(compat.overrides(args)) == {form[2:]: "x"}


def test_the_issues_command_lines_parse() -> None:
    """The command lines real images use, exactly, with roled in place of supervisord."""
    parse = build_parser().parse_args
    assert compat.overrides(parse(["-n", "-c", "/etc/supervisor/supervisord.conf"])) == (
        ("nodaemon", "true"),
    )
    args = parse(["--logfile", "/dev/null", "--pidfile", "/dev/null", "--user", "root"])
    assert compat.overrides(args) == (
        ("user", "root"),
        ("logfile", "/dev/null"),
        ("pidfile", "/dev/null"),
    )
    assert compat.overrides(parse(["-nsu", "root", "-e", "debug"])) == (
        ("nodaemon", "true"),
        ("silent", "true"),
        ("user", "root"),
        ("loglevel", "debug"),
    )


@pytest.mark.parametrize("command", ["run", "check", "roles", "status", "ctl"])
def test_sub_commands_still_parse(command: str) -> None:
    """roled's own commands are not taken for supervisord options."""
    assert build_parser().parse_args([command]).command == command


def test_configuration_is_roleds_main_config() -> None:
    """``-c``/``--configuration`` name the main config, as for supervisord."""
    assert build_parser().parse_args(["--configuration=/x"]).config == "/x"
    assert build_parser().parse_args(["-n", "-c", "/y"]).config == "/y"


def test_with_overrides_changes_only_the_supervisord_section() -> None:
    """Command-line keys are set literally (a % stays a %) in [supervisord] alone."""
    sections = (
        Section("supervisord", {"loglevel": "info", "user": "x"}, Path("a")),
        Section("program:a", {"command": "c"}, Path("a")),
    )
    changed = compat.with_overrides(sections, (("loglevel", "debug"), ("logfile", "/l%")))
    assert changed[0].options == {"loglevel": "debug", "user": "x", "logfile": "/l%%"}
    assert changed[1] == sections[1]


def test_search_paths_are_supervisords_in_its_order_then_roleds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without -c the search list is supervisord's own, for the same executable folder."""
    monkeypatch.setattr(sys, "argv", ["/usr/local/bin/supervisord"])
    expected = (*ServerOptions().searchpaths, "/etc/supervisor/supervisor.conf")
    assert locate.search_paths("/usr/local/bin/roled") == expected
    assert expected[4:6] == ("/etc/supervisord.conf", "/etc/supervisor/supervisord.conf")


def test_search_root_moves_only_absolute_paths() -> None:
    """A test root stands for /; the working-directory entries stay relative."""
    paths = locate.search_paths("/usr/bin/roled", "/tmp/img")
    assert paths == (
        "/tmp/img/usr/etc/supervisord.conf",
        "/tmp/img/usr/supervisord.conf",
        "supervisord.conf",
        "etc/supervisord.conf",
        "/tmp/img/etc/supervisord.conf",
        "/tmp/img/etc/supervisor/supervisord.conf",
        "/tmp/img/etc/supervisor/supervisor.conf",
    )


@pytest.mark.parametrize(
    ("configured", "given", "worst", "expected"),
    [
        (30.0, False, 55, 60.0),  # the default never cuts the config's own stop (+ slack)
        (30.0, False, 25, 30.0),
        (30.0, False, 26, 31.0),
        (30.0, False, 0, 30.0),
        (30.0, True, 55, 30.0),  # a given deadline is the operator's word
        (5.0, True, 10, 5.0),
    ],
)
def test_stop_deadline(configured: float, given: bool, worst: int, expected: float) -> None:
    """The shutdown deadline from the setting and the worst-case stop."""
    assert compat.stop_deadline(configured, given, worst) == expected


FAIL = policy.Failure("web", "went FATAL", 100.0)


@pytest.mark.parametrize(
    ("transition", "expected"),
    [
        (Transition("web", "RUNNING", "EXITED", False, 3), "exited unexpectedly with status 3"),
        (Transition("web", "RUNNING", "EXITED", False), "exited unexpectedly"),
        (Transition("web", "RUNNING", "EXITED", True, 0), None),
        (Transition("web", "STARTING", "BACKOFF"), "exited too quickly (BACKOFF)"),
        (Transition("web", "BACKOFF", "FATAL"), "went FATAL"),
        (Transition("web", "RUNNING", "STOPPING"), None),
        (Transition("web", "STOPPING", "STOPPED"), None),
    ],
)
def test_failure_of(transition: Transition, expected: str | None) -> None:
    """Which transitions count as the failure a listener ends supervisord for."""
    failure = policy.failure_of(transition, 100.0)
    assert (failure.what if failure else None) == expected


@pytest.mark.parametrize(
    ("failure", "ended_at", "expected"),
    [
        (None, 100.0, None),
        (FAIL, 100.5, "supervisord ended on its own right after program 'web' went FATAL"),
        (FAIL, 110.0, "supervisord ended on its own right after program 'web' went FATAL"),
        (FAIL, 110.1, None),
    ],
)
def test_blame_own_end(
    failure: policy.Failure | None, ended_at: float, expected: str | None
) -> None:
    """supervisord ending on its own is blamed on a failure at most BLAME_WINDOW before."""
    verdict = policy.blame_own_end(failure, ended_at)
    assert (verdict.reason if verdict else None) == expected
    if verdict is not None:
        assert (verdict.code, verdict.programs) == (1, ("web",))
