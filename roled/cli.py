"""The command line: flags and environment into Settings; the only place errors become exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

from roled import compat, report, run
from roled.errors import RoledError
from roled.policy import EXIT_UNREACHABLE, EXIT_USAGE
from roled.roles import parse_roles
from roled.runtime import NotRunning

# Only what a run needs is imported up front: PID 1 keeps what it imports for the container's
# life. check, roles, status and ctl (short-lived) import supervisor's machinery when asked.
from roled.settings import (
    SPEC_BY_NAME,
    SPECS,
    Settings,
    default_termination_log,
    locate_runtime_dir,
    parse_seconds,
    resolve,
)

DEFAULT_PROBE_TIMEOUT = 2.0


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
    run_ = commands_.add_parser("run", help="run supervisord for ROLES (the default)")
    _add_settings(run_)
    compat.add_options(run_, top=False)
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
    probe.add_argument("--json", action="store_true", help="print JSON for machines")
    control = commands_.add_parser("ctl", help="run supervisorctl against the running instance")
    _add_settings(control, ("config", "runtime_dir"))
    control.add_argument("args", nargs=argparse.REMAINDER, help="supervisorctl command")
    return parser


def _flags(args: argparse.Namespace) -> dict[str, str | None]:
    return {spec.name: getattr(args, spec.name, None) for spec in SPECS}


def _read_roled(environ: Mapping[str, str]) -> Callable[[Path], Mapping[str, str]]:
    from roled.assemble import read_main  # noqa: PLC0415 (heavy: see the note on imports)

    return lambda path: read_main(path, environ).roled


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    settings = resolve(_flags(args), environ, _read_roled(environ), parse_roles)
    return replace(settings, supervisord=compat.overrides(args))


def _runtime_dir(args: argparse.Namespace, environ: Mapping[str, str]) -> Path:
    return locate_runtime_dir(_flags(args), environ, _read_roled(environ))


def _dispatch(args: argparse.Namespace, environ: dict[str, str]) -> int:
    # Imported here, not up front: see the note on imports.
    from roled import commands, ctl, status  # noqa: PLC0415

    if args.command == "status":
        return status.status(_runtime_dir(args, environ), args.timeout, args.json)
    if args.command == "ctl":
        return ctl.ctl(_runtime_dir(args, environ), args.args)
    settings = settings_from(args, environ)
    if args.command == "check":
        return commands.check(settings, environ, args.print)
    return commands.list_roles(settings)


def _termination_log(args: argparse.Namespace, environ: Mapping[str, str]) -> Path | None:
    # From the flag or the environment only: the config that would say more may be the mistake.
    value = getattr(args, "termination_log", None) or environ.get(
        SPEC_BY_NAME["termination_log"].env
    )
    return Path(value) if value else default_termination_log()


def _with_config(
    argv: list[str], args: argparse.Namespace, environ: Mapping[str, str]
) -> list[str]:
    """argv naming the main config that supervisord's search finds from here.

    The planner (and every reload) resolves argv again in another process, whose argv[0] is
    not roled's: the search is made once, here.
    """
    if getattr(args, "config", None) or environ.get(SPEC_BY_NAME["config"].env):
        return argv
    found = compat.find_config(compat.default_search_paths(environ))
    return argv if found is None else ["--configuration", str(found), *argv]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    try:
        if args.command in {None, "run"}:
            return run.run(_with_config(argv, args, environ), environ)
        return _dispatch(args, environ)
    except NotRunning as exc:
        print(f"roled: error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RoledError as exc:
        message = " ".join(str(exc).split())
        print(f"roled: error: {message}", file=sys.stderr)
        if args.command in {None, "run"}:
            # A container that never started says why where Kubernetes looks, too.
            report.write_termination_log(_termination_log(args, environ), f"roled: {message}\n")
        return EXIT_USAGE
