"""Settings parse one way: enumerated values ignore case and spaces, defaults live in SPECS."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from roled.errors import RoledError
from roled.policy import Budget, Rules
from roled.roles import parse_roles
from roled.settings import SPECS, Settings, resolve


def settings(
    tmp_path: Path,
    environ: Mapping[str, str] = {},
    roled: Mapping[str, str] = {},
    flags: Mapping[str, str | None] = {},
) -> Settings:
    main = tmp_path / "supervisord.conf"
    main.write_text("[supervisord]\n")
    return resolve({"config": str(main), **flags}, environ, lambda _: roled, parse_roles)


def fields(resolved: Settings) -> dict[str, object]:
    return {
        "log_format": resolved.log_format,
        "exit_on": resolved.rules.exit_on,
        "exit_when_done": resolved.rules.exit_when_done,
        "max_restarts": resolved.rules.max_restarts,
    }


DEFAULTS = {
    "log_format": "plain",
    "exit_on": "fatal",
    "exit_when_done": False,
    "max_restarts": None,
}


@pytest.mark.parametrize(
    ("variable", "value", "changed"),
    [
        ("ROLED_LOG_FORMAT", "json", {"log_format": "json"}),
        ("ROLED_LOG_FORMAT", "JSON", {"log_format": "json"}),
        ("ROLED_LOG_FORMAT", " Prefix ", {"log_format": "prefix"}),
        ("ROLED_EXIT_ON", "Unexpected", {"exit_on": "unexpected"}),
        ("ROLED_EXIT_ON", "ANY", {"exit_on": "any"}),
        ("ROLED_EXIT_WHEN_DONE", "TRUE", {"exit_when_done": True}),
        ("ROLED_EXIT_WHEN_DONE", "Yes", {"exit_when_done": True}),
        ("ROLED_EXIT_WHEN_DONE", "On", {"exit_when_done": True}),
        ("ROLED_EXIT_WHEN_DONE", "1", {"exit_when_done": True}),
        ("ROLED_EXIT_WHEN_DONE", "False", {"exit_when_done": False}),
        ("ROLED_EXIT_WHEN_DONE", "OFF", {"exit_when_done": False}),
        ("ROLED_MAX_RESTARTS", "None", {"max_restarts": None}),
        ("ROLED_MAX_RESTARTS", "OFF", {"max_restarts": None}),
        ("ROLED_MAX_RESTARTS", "5/60", {"max_restarts": Budget(5, 60.0)}),
    ],
)
def test_enumerated_values_ignore_case(
    tmp_path: Path, variable: str, value: str, changed: dict[str, object]
) -> None:
    """Every enumerated value means the same in any case, from any source."""
    key = next(spec.key for spec in SPECS if spec.env == variable)
    assert fields(settings(tmp_path, environ={variable: value})) == {**DEFAULTS, **changed}
    assert fields(settings(tmp_path, roled={key: value})) == {**DEFAULTS, **changed}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "ROLED_LOG_FORMAT",
            "jsonl",
            "ROLED_LOG_FORMAT: expected one of plain, prefix, json, got 'jsonl'",
        ),
        (
            "ROLED_EXIT_ON",
            "crash",
            "ROLED_EXIT_ON: unknown exit policy 'crash' (choose fatal, unexpected, any)",
        ),
        (
            "ROLED_EXIT_WHEN_DONE",
            "maybe",
            "ROLED_EXIT_WHEN_DONE: expected true or false, got 'maybe'",
        ),
        (
            "ROLED_TAIL_BUFFER",
            "64k",
            "ROLED_TAIL_BUFFER: expected a number of bytes >= 0, got '64k'",
        ),
    ],
)
def test_unknown_values_name_their_origin(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    """A value that means nothing is one line naming where it came from."""
    with pytest.raises(RoledError) as info:
        settings(tmp_path, environ={variable: value})
    assert str(info.value) == message


def test_defaults_come_from_the_table(tmp_path: Path) -> None:
    """Nothing set: each value is its SPECS default, and the policy's own defaults agree."""
    resolved = settings(tmp_path)
    assert fields(resolved) == DEFAULTS
    assert resolved.rules == Rules()
    assert (resolved.shutdown_timeout, resolved.kill_grace, resolved.hang_timeout) == (
        30.0,
        3.0,
        10.0,
    )
    defaults = {spec.name: spec.default for spec in SPECS if spec.default is not None}
    assert defaults == {
        "shutdown_timeout": "30",
        "kill_grace": "3",
        "hang_timeout": "10",
        "plan_timeout": "60",
        "log_format": "plain",
        "exit_on": "fatal",
        "exit_when_done": "false",
        "tail_buffer": "65536",
    }


def test_the_flag_alone_is_true(tmp_path: Path) -> None:
    """``--exit-when-done`` with no value (the parser's ``const``) and with one of any case."""
    assert settings(tmp_path, flags={"exit_when_done": "true"}).rules.exit_when_done
    assert not settings(tmp_path, flags={"exit_when_done": "FALSE"}).rules.exit_when_done
