"""The command line's grammar: every command's flags, from the settings table, and nothing else.

Pure and light, so that the planner process and a probe can parse arguments without loading
what a run or a check needs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from roled import compat
from roled.errors import EXIT_USAGE, RoledError
from roled.locate import DEFAULT_LEVEL, DEFAULT_PROBE_TIMEOUT, LEVELS
from roled.settings import SPECS, parse_seconds

# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


def _columns() -> int:
    """The width shutil.get_terminal_size gives: $COLUMNS, else stdout's terminal, else 80."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        stdout = sys.__stdout__
        try:
            columns = os.get_terminal_size(stdout.fileno()).columns if stdout else 0
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.HelpFormatter):
    # argparse's own formatter imports shutil (and with it bz2 and lzma) for the terminal's
    # width each time a parser is built, so PID 1 would carry them for its whole run.
    def __init__(
        self,
        prog: str,
        indent_increment: int = 2,
        max_help_position: int = 24,
        width: int | None = None,
    ) -> None:
        width = _columns() - 2 if width is None else width
        super().__init__(prog, indent_increment, max_help_position, width)


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

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


class _Version(argparse.Action):
    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        print(compat.version_text())
        parser.exit(0)


def _add_supervisord_options(parser: argparse.ArgumentParser, *, top: bool) -> None:
    """supervisord's options on one of roled's parsers; ``top`` adds ``-v`` and ``-?`` too."""
    if top:
        parser.add_argument(
            "-v",
            "--version",
            action=_Version,
            nargs=0,
            help="print roled's and supervisor's versions",
        )
        parser.add_argument("-?", action="help", help=argparse.SUPPRESS)
    for option in compat.OPTIONS:
        # SUPPRESS keeps a sub-command's parser from overwriting a value given before it.
        if option.takes_value:
            parser.add_argument(
                *option.forms(), dest=option.dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS
            )
        else:
            parser.add_argument(
                *option.forms(),
                dest=option.dest,
                action="store_const",
                const="true",
                default=argparse.SUPPRESS,
                help=argparse.SUPPRESS,
            )


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
    _add_supervisord_options(parser, top=True)
    commands_ = parser.add_subparsers(dest="command", parser_class=_Parser)
    run = commands_.add_parser("run", help="run supervisord for ROLES (the default)")
    _add_settings(run)
    _add_supervisord_options(run, top=False)
    check = commands_.add_parser("check", help="validate the config a run would use; start nothing")
    _add_settings(check)
    _add_supervisord_options(check, top=False)
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
