"""The one user-facing error type (a one-line message naming the file, role or program) and
roled's exit codes."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SUPERVISORD = 3
EXIT_KILLED = 4
# roled itself failed (a bug): it stopped everything it started before exiting.
EXIT_INTERNAL = 5
# roled status: supervisord (or roled) could not be reached.
EXIT_UNREACHABLE = 3


class RoledError(Exception):
    """A user mistake (configuration, usage, environment): reported in one line, exit code 2."""
