"""The one user-facing error type: a one-line message naming the file, role or program."""

from __future__ import annotations


class RoledError(Exception):
    """A user mistake (configuration, usage, environment): reported in one line, exit code 2."""
