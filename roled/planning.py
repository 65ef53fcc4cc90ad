"""The planner as a child the main loop waits on: ``python -m roled.plan``, spoken to through
pipes that are never read or written in a way that blocks, so a hung config file cannot hang PID 1.

The exchange: roled writes the control password (and ``GO`` when the runtime directory already
exists); the planner answers ``RUNTIME <hex path>``; once roled has prepared that directory it
writes ``GO``; the planner answers ``OK <length>`` and the pickled (settings, assembly), or
``ERROR <one line>`` for a user mistake. Anything else, or nothing, is the planner's own failure.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

# CPython's C unpickler, which pickle.loads is: pickle.py itself, a pure-Python pickler PID 1
# never runs, would stay in its memory for the whole run.
from _pickle import loads as unpickle
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from roled import init
from roled.model import Assembly
from roled.settings import Settings

# What is kept of the planner's stderr for a report of its failure.
STDERR_LIMIT = 16 << 10


@dataclass(frozen=True, slots=True)
class RuntimeAnnounced:
    """The planner knows the runtime directory and waits for ``go()``."""

    path: Path


@dataclass(frozen=True, slots=True)
class PlanOk:
    settings: Settings
    assembly: Assembly


@dataclass(frozen=True, slots=True)
class PlanError:
    """``internal``: the planner failed (a bug, a crash), not the user's config."""

    message: str
    internal: bool


Outcome = RuntimeAnnounced | PlanOk | PlanError


class PlannerProcess:
    """One planner run; ``fds`` go into the loop's selector, ``on_readable`` reads them."""

    def __init__(self, argv: Sequence[str], password: str, *, go: bool) -> None:
        stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
        stdout_r, stdout_w = os.pipe2(os.O_CLOEXEC)
        stderr_r, stderr_w = os.pipe2(os.O_CLOEXEC)
        try:
            self.pid = init.spawn(
                [sys.executable, "-m", "roled.plan", *argv],
                dict(os.environ),
                {0: stdin_r, 1: stdout_w, 2: stderr_w},
            )
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
        self._stdin = stdin_w
        self._stdout = stdout_r
        self._stderr = stderr_r
        for fd in (stdout_r, stderr_r):
            os.set_blocking(fd, False)
        self._out = b""
        self._err = b""
        self._announced = False
        self._write(f"{password}\n" + ("GO\n" if go else ""))

    @property
    def fds(self) -> tuple[int, ...]:
        return tuple(fd for fd in (self._stdout, self._stderr) if fd >= 0)

    def _write(self, text: str) -> None:
        # A few bytes into an empty pipe never block; a planner already gone is told nothing.
        with contextlib.suppress(OSError):
            os.write(self._stdin, text.encode())

    def go(self) -> None:
        """The runtime directory is ready: validate against it."""
        self._write("GO\n")

    def on_readable(self, fd: int) -> Outcome | None:
        """Read what is there; an outcome once one is complete."""
        if fd == self._stderr:
            self._err = (self._err + self._drain(fd, "_stderr"))[-STDERR_LIMIT:]
            return None
        self._out += self._drain(fd, "_stdout")
        return self._parse()

    def _drain(self, fd: int, name: str) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                os.close(fd)
                setattr(self, name, -1)
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def _parse(self) -> Outcome | None:
        head, newline, rest = self._out.partition(b"\n")
        if newline and head.startswith(b"RUNTIME ") and not self._announced:
            self._announced = True
            self._out = rest
            path = os.fsdecode(bytes.fromhex(head.split()[1].decode()))
            return RuntimeAnnounced(Path(path))
        if newline and head.startswith(b"ERROR "):
            return PlanError(head[6:].decode(errors="replace"), internal=False)
        if newline and head.startswith(b"OK "):
            length = int(head.split()[1])
            if len(rest) >= length:
                settings, assembly = unpickle(rest[:length])
                return PlanOk(settings, assembly)
        if self._stdout < 0:
            return self._crashed()
        return None

    def _crashed(self) -> PlanError:
        err = self._err.decode(errors="replace").strip()
        return PlanError(f"the planner failed: {err or 'it ended without an answer'}", True)

    def kill(self) -> None:
        """End the planner now, reap it, and close the pipes; it has answered or must not.

        A SIGKILLed child ends at once, so the wait is short; the loop's reaper may have
        collected it already.
        """
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
        self.close()

    def close(self) -> None:
        for name in ("_stdin", "_stdout", "_stderr"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
