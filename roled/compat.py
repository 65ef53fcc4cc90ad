"""supervisord's own command line and config search, as roled accepts them in its place.

Every option of ``supervisord --help`` (supervisor 4.2 and 4.3) is a row here: most stand for a
``[supervisord]`` key and override it, as they do for supervisord; the rest roled decides.
"""

from __future__ import annotations

from dataclasses import dataclass

from roled.locate import escape
from roled.model import Section

# typing.TYPE_CHECKING without importing typing. argparse stays out of PID 1 too: a run with no
# flags (the container's CMD as it mostly is) parses nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse

# What orchestrators give a container to stop before SIGKILL by default: Kubernetes'
# terminationGracePeriodSeconds (docker stop gives 10).
ORCHESTRATOR_GRACE = 30.0
# supervisord notices a stopwaitsecs has passed on its once-a-second tick, then SIGKILLs and
# reaps: a deadline of exactly the worst case would race its own kill.
STOP_SLACK = 5.0


@dataclass(frozen=True, slots=True)
class Option:
    """One supervisord option: its forms, the ``[supervisord]`` key it overrides, if any."""

    short: str | None
    long: str
    key: str | None
    takes_value: bool

    @property
    def dest(self) -> str:
        return f"supervisord_{self.long}"

    def forms(self) -> list[str]:
        return [*([f"-{self.short}"] if self.short else []), f"--{self.long}"]


# ``-c/--configuration`` (roled's main config, the same meaning), ``-h/--help`` and
# ``-v/--version`` are roled's own flags; every other row overrides its [supervisord] key.
OPTIONS = (
    Option("n", "nodaemon", "nodaemon", False),
    Option("s", "silent", "silent", False),
    Option("u", "user", "user", True),
    Option("m", "umask", "umask", True),
    Option("d", "directory", "directory", True),
    Option("l", "logfile", "logfile", True),
    Option("y", "logfile_maxbytes", "logfile_maxbytes", True),
    Option("z", "logfile_backups", "logfile_backups", True),
    Option("e", "loglevel", "loglevel", True),
    Option("j", "pidfile", "pidfile", True),
    Option("i", "identifier", "identifier", True),
    Option("q", "childlogdir", "childlogdir", True),
    Option("k", "nocleanup", "nocleanup", False),
    Option("a", "minfds", "minfds", True),
    Option("t", "strip_ansi", "strip_ansi", False),
    Option(None, "minprocs", "minprocs", True),
    Option(None, "profile_options", "profile_options", True),
)


def version_text() -> str:
    """roled's version and the supervisor it runs, e.g. ``roled 0.1.0 (supervisor 4.3.0)``."""
    return f"roled {_version('roled')} (supervisor {_version('supervisor')})"


def _version(distribution: str) -> str:
    # Imported when asked: importlib.metadata brings email and zipfile, which every
    # `roled status` (the parser is built each time) would otherwise pay for.
    from importlib import metadata  # noqa: PLC0415

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def overrides(args: argparse.Namespace) -> tuple[tuple[str, str], ...]:
    """The ``[supervisord]`` keys the command line sets, in the table's order."""
    return tuple(
        (option.key, getattr(args, option.dest))
        for option in OPTIONS
        if option.key is not None and hasattr(args, option.dest)
    )


def with_overrides(
    sections: tuple[Section, ...], overrides: tuple[tuple[str, str], ...]
) -> tuple[Section, ...]:
    """The main config's sections with the command line's ``[supervisord]`` keys set."""
    if not overrides:
        return sections
    # A value on the command line is literal; in the config a % would start an expansion.
    keys = {key: escape(value) for key, value in overrides}
    return tuple(
        Section(section.name, {**section.options, **keys}, section.source)
        if section.name == "supervisord"
        else section
        for section in sections
    )


def stop_deadline(configured: float, given: bool, worst_stop: float) -> float:
    """The shutdown deadline: a given one as is; the default never cuts the config's own stop.

    supervisord lets each program use its whole ``stopwaitsecs``; a default deadline shorter
    than that would kill a program supervisord lets finish.
    """
    return configured if given else max(configured, worst_stop + STOP_SLACK if worst_stop else 0)
