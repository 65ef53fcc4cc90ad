"""The command line: argv to a command; the only place errors become exit codes.

Every command's machinery is imported when that command runs: PID 1 keeps what it imports for
the container's life, and ``roled status`` runs every few seconds in every pod, so it loads only
argument parsing, settings, the runtime directory and the XML-RPC client.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from roled.errors import EXIT_UNREACHABLE, EXIT_USAGE, RoledError
from roled.locate import (
    NotRunning,
    default_search_paths,
    find_config,
    locate_runtime_dir,
    read_roled_section,
)
from roled.settings import SPEC_BY_NAME, Lookup, default_termination_log
from roled.signals import SignalQueue

# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

# The container's CMD as it mostly is: a run with no flag. It is not parsed at all, so argparse
# (and the locale tables gettext loads for its messages, 0.7 MiB in all) stays out of PID 1.
PLAIN_RUN: tuple[list[str], ...] = ([], ["run"])


def _runtime_dir(args: argparse.Namespace, environ: Mapping[str, str]) -> Path:
    from roled.arguments import flags  # noqa: PLC0415 (see PLAIN_RUN)

    return locate_runtime_dir(flags(args), environ, read_roled_section)


def _dispatch(args: argparse.Namespace, environ: dict[str, str]) -> int:
    # Imported here, not up front: see the module's docstring.
    if args.command == "status":
        from roled import status  # noqa: PLC0415

        return status.status(str(_runtime_dir(args, environ)), args.timeout, args.json, args.level)
    if args.command == "ctl":
        from roled import ctl  # noqa: PLC0415

        return ctl.ctl(_runtime_dir(args, environ), args.args)
    from roled import commands, plan  # noqa: PLC0415

    settings = plan.settings_from(args, environ)
    if args.command == "check":
        return commands.check(settings, environ, args.print)
    return commands.list_roles(settings, environ)


def _termination_log(given: Mapping[str, str | None], environ: Mapping[str, str]) -> Path | None:
    # From the flag or the environment only: the config that would say more may be the mistake.
    value = given.get("termination_log") or environ.get(SPEC_BY_NAME["termination_log"].env)
    return Path(value) if value else default_termination_log()


def _with_config(
    argv: list[str], given: Mapping[str, str | None], environ: Mapping[str, str]
) -> list[str]:
    """argv naming the main config that supervisord's search finds from here.

    The planner (and every reload) resolves argv again in another process, whose argv[0] is
    not roled's: the search is made once, here.
    """
    if given.get("config") or environ.get(SPEC_BY_NAME["config"].env):
        return argv
    found = find_config(default_search_paths(environ))
    return argv if found is None else ["--configuration", str(found), *argv]


def main(argv: Sequence[str] | None = None, signals: SignalQueue | None = None) -> int:
    """``roled``: signals holds what arrived since the entry point's first line (a run
    takes them over; any other command hands them back)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    environ = dict(os.environ)
    if signals is None:
        signals = SignalQueue()
        signals.install()
    running = False
    # Each setting's flag as given (None: not given).
    given: dict[str, str | None] = dict.fromkeys(SPEC_BY_NAME)
    try:
        if argv not in PLAIN_RUN:
            from roled.arguments import build_parser, flags  # noqa: PLC0415 (see PLAIN_RUN)

            args = build_parser().parse_args(argv)
            if args.command not in {None, "run"}:
                signals.hand_back()
                return _dispatch(args, environ)
            given = flags(args)
        running = True
        from roled import run  # noqa: PLC0415

        plan_timeout = Lookup(given, environ, {}).seconds("plan_timeout")
        try:
            return run.run(_with_config(argv, given, environ), environ, signals, plan_timeout)
        finally:
            signals.uninstall()
    except NotRunning as exc:
        print(f"roled: error: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except RoledError as exc:
        message = " ".join(str(exc).split())
        print(f"roled: error: {message}", file=sys.stderr)
        if running:
            from roled import report  # noqa: PLC0415

            # A container that never started says why where Kubernetes looks, too.
            report.write_termination_log(_termination_log(given, environ), f"roled: {message}\n")
        return EXIT_USAGE
