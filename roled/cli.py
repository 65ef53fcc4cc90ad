"""The command line: flags and environment into Settings; the only place errors become exit 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from typing import NoReturn

from roled import plan, run
from roled.assemble import Runtime, read_main
from roled.errors import RoledError
from roled.policy import EXIT_USAGE
from roled.roles import parse_roles
from roled.settings import SPECS, Settings, resolve


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, like every other user mistake.
        self.exit(EXIT_USAGE, f"roled: error: {message} (see roled --help)\n")


def _add_settings(parser: argparse.ArgumentParser) -> None:
    for spec in SPECS:
        flags = ["-c", spec.flag] if spec.name == "config" else [spec.flag]
        # SUPPRESS keeps a sub-command's parser from overwriting a value given before it.
        parser.add_argument(
            *flags, dest=spec.name, default=argparse.SUPPRESS, help=f"{spec.help} [{spec.env}]"
        )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="roled",
        description="Run the supervisord programs of the selected roles as PID 1.",
    )
    _add_settings(parser)
    commands = parser.add_subparsers(dest="command", parser_class=_Parser)
    _add_settings(commands.add_parser("run", help="run supervisord for ROLES (the default)"))
    check = commands.add_parser("check", help="validate the config a run would use; start nothing")
    _add_settings(check)
    check.add_argument("--print", action="store_true", help="print the assembled config")
    return parser


def settings_from(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    flags = {spec.name: getattr(args, spec.name, None) for spec in SPECS}
    return resolve(flags, environ, lambda path: read_main(path, environ).roled, parse_roles)


def _check(settings: Settings, environ: Mapping[str, str], show: bool) -> int:
    assembly = plan.build(settings, Runtime(settings.runtime_dir, "********"), environ)
    if show:
        sys.stdout.write(assembly.text)
    else:
        count = len(assembly.programs)
        print(f"roled: config is valid: {count} program(s)", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    environ = dict(os.environ)
    try:
        settings = settings_from(args, environ)
        if args.command == "check":
            return _check(settings, environ, args.print)
        return run.run(settings, environ, lambda: settings_from(args, environ))
    except RoledError as exc:
        message = " ".join(str(exc).split())
        print(f"roled: error: {message}", file=sys.stderr)
        return EXIT_USAGE
