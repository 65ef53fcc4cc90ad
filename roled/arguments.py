"""The command line's grammar: every command's flags, from the settings table, and nothing else.

Pure and light, so that the planner process and a probe can parse arguments without loading
what a run or a check needs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from roled import compat
from roled.errors import EXIT_USAGE, RoledError
from roled.locate import DEFAULT_LEVEL, DEFAULT_PROBE_TIMEOUT, LEVELS
from roled.settings import SPECS, parse_seconds


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other user mistake.
        self.exit(EXIT_USAGE, f"roled: error: {message} (see roled --help)\n")


def _add_settings(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    for spec in SPECS:
        if names is not None and spec.name not in names:
            continue
        flags = ["-c", spec.flag] if spec.name == "config" else [spec.flag]
        help_text = f"{spec.help} [{spec.env}]"
        # SUPPRESS keeps a sub-command's parser from overwriting a value given before it.
        if spec.switch:
            parser.add_argument(
                *flags,
                dest=spec.name,
                default=argparse.SUPPRESS,
                nargs="?",
                const="true",
                help=help_text,
            )
        else:
            parser.add_argument(*flags, dest=spec.name, default=argparse.SUPPRESS, help=help_text)


def _probe_timeout(value: str) -> float:
    try:
        seconds = parse_seconds(value, "--timeout")
    except RoledError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"--timeout: expected seconds > 0, got {value!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="roled",
        description="Run the supervisord programs of the selected roles as PID 1.",
    )
    _add_settings(parser)
    compat.add_options(parser, top=True)
    commands_ = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = commands_.add_parser("run", help="run supervisord for ROLES (the default)")
    _add_settings(run)
    compat.add_options(run, top=False)
    check = commands_.add_parser("check", help="validate the config a run would use; start nothing")
    _add_settings(check)
    compat.add_options(check, top=False)
    check.add_argument("--print", action="store_true", help="print the assembled config")
    _add_settings(commands_.add_parser("roles", help="list every role; mark the selected ones"))
    probe = commands_.add_parser(
        "status", help="probe: 0 when every program is fine, 1 when not, 3 when unreachable"
    )
    _add_settings(probe, ("config", "runtime_dir"))
    probe.add_argument(
        "--timeout",
        type=_probe_timeout,
        default=DEFAULT_PROBE_TIMEOUT,
        help=f"seconds to wait for an answer (default {DEFAULT_PROBE_TIMEOUT:g})",
    )
    probe.add_argument(
        "--level",
        choices=LEVELS,
        default=DEFAULT_LEVEL,
        help="startup: ready was reached once; ready: every critical program is ready; alive: "
        f"roled is not about to exit with a failure (default {DEFAULT_LEVEL})",
    )
    probe.add_argument("--json", action="store_true", help="print JSON for machines")
    control = commands_.add_parser("ctl", help="run supervisorctl against the running instance")
    _add_settings(control, ("config", "runtime_dir"))
    control.add_argument("args", nargs=argparse.REMAINDER, help="supervisorctl command")
    return parser


def flags(args: argparse.Namespace) -> dict[str, str | None]:
    """Each setting's flag value as given, None where the flag was not."""
    return {spec.name: getattr(args, spec.name, None) for spec in SPECS}
