"""Probes for health checks, run inside roled's loop: http GET and tcp connect over non-blocking
sockets, and exec commands in their own process group; each ends by its timeout at the latest.

No thread and no blocking call: the loop registers what ``Probes`` asks on its selector, hands
back readiness with ``handle``, exits of children with ``ended``, and the time with ``expire``.
"""

from __future__ import annotations

import _socket
import contextlib
import errno
import heapq
import os
import pwd
import re
import select
import selectors
import signal
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

from roled.checks import Check, Result, trim_output

# An http probe reads at most this much looking for the status line, whatever the server sends.
STATUS_LINE_LIMIT = 1024
# An exec probe keeps the last bytes of its output only: a probe that prints megabytes costs
# roled a read per chunk, never memory.
OUTPUT_LIMIT = 8192
_CHUNK = 65536
# Reads of what a command's pipe still holds once the command has ended (children it left may
# keep writing): enough for any pipe buffer, and never an endless loop.
_DRAIN_READS = 32
# Answers that come within this long of a batch's last start are read in one wake-up: probes
# that start together on the grid then wake the loop twice, not once an answer.
GATHER = 0.025
_STATUS = re.compile(rb"HTTP/\d(?:\.\d)? (\d{3})(?: ([^\r\n]*))?\r?\n")
# posix_spawn cannot change user or directory: this does it, then execs the command, as
# supervisord's child does (privileges dropped first, then chdir). -I -S keeps it quick.
_TRAMPOLINE = """\
import os, sys, warnings  # os.execvpe imports warnings: before the user may lose access to it
directory, uid, gid, groups, *argv = sys.argv[1:]
if uid:
    os.setgroups([int(g) for g in groups.split(",") if g])
    os.setgid(int(gid))
    os.setuid(int(uid))
if directory:
    os.chdir(directory)
os.execvpe(argv[0], argv, os.environ)
"""


@dataclass(frozen=True, slots=True)
class Context:
    """Where an exec check runs: the program's environment, ``directory`` and ``user``."""

    environment: Mapping[str, str]
    directory: str | None = None
    user: str | None = None


def _reason(code: int) -> str:
    text = os.strerror(code)
    return text[:1].lower() + text[1:]


class _Probe:
    """One probe in flight; ``result`` is set once it is over."""

    __slots__ = ("deadline", "result", "timeout")

    def __init__(self, deadline: float, timeout: float) -> None:
        self.deadline = deadline
        self.timeout = timeout
        self.result: Result | None = None

    def fileno(self) -> int:
        """The fd to wait on, or -1 (nothing to wait on: a deadline or an exit is)."""
        return -1

    def events(self) -> int:
        return selectors.EVENT_READ

    def on_readable(self) -> None:
        """Read what is there without blocking."""

    def on_writable(self) -> None:
        """Write what is pending without blocking."""

    def expire(self) -> None:
        self.stop()
        self.result = Result(False, f"timed out after {self.timeout:g}s{self.waiting()}")

    def waiting(self) -> str:
        return ""

    def stop(self) -> None:
        """Release what the probe holds; no result is wanted (or it is already known)."""


class _SocketProbe(_Probe):
    """tcp: a connection is accepted. http: a GET whose status line says 2xx or 3xx."""

    __slots__ = ("_check", "_pending", "_received", "_sock")

    def __init__(self, check: Check, deadline: float, timeout: float) -> None:
        super().__init__(deadline, timeout)
        self._check = check
        self._received = b""
        self._pending = _request(check.host, check.port, check.path)
        family = socket.AF_INET6 if ":" in check.host else socket.AF_INET
        # socket.socket's Python layer (its __init__, close and bookkeeping) adds nothing a
        # probe uses, at a hundred probes a second; the C socket is close-on-exec as well.
        self._sock: _socket.socket | None = _socket.socket(
            family, socket.SOCK_STREAM | socket.SOCK_NONBLOCK
        )
        code = self._sock.connect_ex((check.host, check.port))
        if code not in {0, errno.EINPROGRESS}:
            self._finish(False, _reason(code))
        else:
            # On loopback the handshake is over before connect() returns: the request goes at
            # once and the loop wakes up only for the answer, once a probe instead of thrice.
            self._proceed(connected=code == 0)

    def fileno(self) -> int:
        return -1 if self._sock is None else self._sock.fileno()

    def events(self) -> int:
        return selectors.EVENT_WRITE if self._pending else selectors.EVENT_READ

    def on_writable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._finish(False, _reason(code))
        else:
            self._proceed(connected=True)

    def _proceed(self, *, connected: bool) -> None:
        """Once connected (or maybe already): tcp passes, http sends what it can of its GET (a
        failed connection makes send say why)."""
        sock = self._sock
        if sock is None:
            return
        if self._check.kind == "tcp":
            if connected or _connected(sock):
                self._finish(True, "connected")
        else:
            try:
                self._pending = self._pending[sock.send(self._pending) :]
            except BlockingIOError:
                return
            except OSError as exc:
                self._finish(False, _reason(exc.errno or errno.EIO))

    def on_readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data = sock.recv(STATUS_LINE_LIMIT - len(self._received))
        except BlockingIOError:
            return
        except OSError as exc:
            self._finish(False, _reason(exc.errno or errno.EIO))
            return
        self._received += data
        match = _STATUS.match(self._received)
        if match is not None:
            code = int(match.group(1))
            reason = (match.group(2) or b"").decode("ascii", "replace").strip()
            self._finish(200 <= code < 400, f"HTTP {code} {reason}".rstrip())
        elif b"\n" in self._received or len(self._received) >= STATUS_LINE_LIMIT:
            self._finish(False, f"not an HTTP status line: {self._received[:60]!r}")
        elif not data:
            self._finish(False, "connection closed before a status line")

    def waiting(self) -> str:
        if self._check.kind == "tcp" or self._pending:
            return " (connecting)"
        return " (waiting for the status line)"

    def _finish(self, passed: bool, detail: str) -> None:
        self.stop()
        self.result = Result(passed, detail)

    def stop(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


class _ExecProbe(_Probe):
    """A command in its own process group: exit 0 passes; the group is killed at the timeout."""

    __slots__ = ("_fd", "_output", "_status", "pid")

    def __init__(self, pid: int, fd: int, deadline: float, timeout: float) -> None:
        super().__init__(deadline, timeout)
        self.pid = pid
        self._fd = fd
        self._output = bytearray()
        self._status: int | None = None

    def fileno(self) -> int:
        return self._fd

    def on_readable(self) -> None:
        if self._fd >= 0 and not self._read():
            self._close_output()
            self._conclude()

    def _read(self) -> bool:
        """Read a chunk and keep the end of it; False at the end of the output."""
        try:
            data = os.read(self._fd, _CHUNK)
        except BlockingIOError:
            return True
        self._output += data
        del self._output[:-OUTPUT_LIMIT]
        return bool(data)

    def exited(self, status: int) -> None:
        """The reaper took the command's status. What its pipe holds now is read; a pipe still
        open means the command left children behind, and its group is killed."""
        self._status = status
        for _ in range(_DRAIN_READS):
            if self._fd < 0 or not self._read():
                break
        if self._fd >= 0:
            _kill_group(self.pid)
            self._close_output()
        self._conclude()

    def _conclude(self) -> None:
        status = self._status
        if status is None or self._fd >= 0:
            return
        code = os.waitstatus_to_exitcode(status)
        detail = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        self.result = Result(code == 0, detail, self.output())

    def output(self) -> str:
        return trim_output(self._output.decode(errors="replace"))

    def expire(self) -> None:
        super().expire()
        self.result = Result(False, self.result.detail if self.result else "", self.output())

    def waiting(self) -> str:
        return "; its process group was killed"

    def stop(self) -> None:
        if self._status is None:
            # The leader is not reaped yet, so its pid still names this group and no other.
            _kill_group(self.pid)
        self._close_output()

    def _close_output(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@lru_cache(maxsize=256)
def _request(host: str, port: int, path: str) -> bytes:
    """The GET an http check sends, the same every period (cached by strings: hashing and
    comparing the Check dataclass is Python code)."""
    host = f"[{host}]" if ":" in host else host
    return (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "User-Agent: roled\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    ).encode()


def _connected(sock: _socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


class _Failed(_Probe):
    """A probe that could not even start: its result is known at once."""

    __slots__ = ()

    def __init__(self, detail: str) -> None:
        super().__init__(0.0, 0.0)
        self.result = Result(False, detail)


def _identity(user: str) -> tuple[int, int, str]:
    """uid, gid and supplementary groups (comma-separated) of a user name or number."""
    entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
    groups = os.getgrouplist(entry.pw_name, entry.pw_gid)
    return entry.pw_uid, entry.pw_gid, ",".join(map(str, groups))


def _other_user(user: str) -> bool:
    if user == str(os.geteuid()):
        return False
    try:
        return pwd.getpwuid(os.geteuid()).pw_name != user
    except KeyError:
        # An arbitrary uid without a passwd entry (OpenShift does that) is nobody's name.
        return True


_EPOLL = {
    selectors.EVENT_READ: select.EPOLLIN,
    selectors.EVENT_WRITE: select.EPOLLOUT,
}


def which(name: str, path: str) -> str | None:
    """What shutil.which finds on POSIX: a name with a slash as it is, else the first match in
    ``path``; an executable file, not a folder.

    shutil itself would bring bz2 and lzma into PID 1 for these few lines.
    """
    if os.path.dirname(name):
        candidates = [name]
    elif path:
        candidates = [os.path.join(folder, name) for folder in path.split(os.pathsep)]
    else:
        candidates = []
    for candidate in candidates:
        if os.access(candidate, os.F_OK | os.X_OK) and not os.path.isdir(candidate):
            return candidate
    return None


def spawn_exec(argv: tuple[str, ...], context: Context) -> tuple[int, int]:
    """Start a command with its output in a pipe: (pid, read end, non-blocking).

    stdin is /dev/null; the signal mask and dispositions are the defaults, as for supervisord
    itself; the command leads its own process group so its whole tree can be killed.
    """
    env = dict(context.environment)
    user = context.user if context.user and _other_user(context.user) else None
    if user or context.directory:
        uid, gid, groups = _identity(user) if user else ("", "", "")
        command = [sys.executable, "-I", "-S", "-c", _TRAMPOLINE, context.directory or ""]
        command += [str(uid), str(gid), groups, *argv]
    else:
        found = which(argv[0], env.get("PATH", os.defpath))
        if found is None:
            raise FileNotFoundError(errno.ENOENT, "command not found", argv[0])
        command = [found, *argv[1:]]
    read_end, write_end = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
    # The child's end blocks, as a command expects of its stdout.
    os.set_blocking(write_end, True)
    resettable = set(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}
    try:
        pid = os.posix_spawn(
            command[0],
            command,
            env,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_end, 1),
                (os.POSIX_SPAWN_DUP2, write_end, 2),
            ],
            setpgroup=0,
            setsigmask=(),
            setsigdef=resettable,
        )
    except BaseException:
        os.close(read_end)
        raise
    finally:
        os.close(write_end)
    return pid, read_end


class Probes:
    """Every probe in flight, on the loop's selector; finished results wait in ``take()``.

    The probes' fds wait in an epoll of their own: a probe then costs an epoll_ctl and no
    selector bookkeeping, and one wake-up hands over every probe that is ready. That epoll is
    looked at ``GATHER`` after the last probe of a batch started, and only then put on the
    loop's selector if some probe still waits.
    """

    __slots__ = (
        "_deadlines",
        "_done",
        "_epoll",
        "_fds",
        "_look_at",
        "_orphans",
        "_pids",
        "_probes",
        "_registered",
        "_selector",
        "_watched",
    )

    def __init__(self, selector: selectors.BaseSelector) -> None:
        self._selector = selector
        self._epoll = select.epoll()
        self._probes: dict[int, _Probe] = {}
        # probe -> (fd, events) registered in the epoll, and fd -> probe.
        self._registered: dict[int, tuple[int, int]] = {}
        self._fds: dict[int, int] = {}
        self._pids: dict[int, int] = {}
        # Commands killed or cancelled that the reaper has not reported yet.
        self._orphans: set[int] = set()
        self._done: list[tuple[int, Result]] = []
        # (deadline, probe), earliest first; a probe no longer in flight is skipped. Every
        # wake-up asks for the next deadline, with dozens of probes in flight.
        self._deadlines: list[tuple[float, int]] = []
        # When to look at the epoll without waiting on it, and whether the selector watches it.
        self._look_at: float | None = None
        self._watched = False

    def start(
        self, probe: int, check: Check, timeout: float, now: float, context: Context | None = None
    ) -> None:
        """Start a probe of an http, tcp or exec check (RunProbe); its result comes to take()."""
        deadline = now + timeout
        runner: _Probe
        if check.kind == "exec":
            try:
                pid, fd = spawn_exec(check.argv, context or Context(dict(os.environ)))
            except KeyError:
                runner = _Failed(f"unknown user {context.user if context else ''!r}")
            except OSError as exc:
                runner = _Failed(f"cannot run {check.argv[0]!r}: {_reason(exc.errno or 0)}")
            else:
                runner = _ExecProbe(pid, fd, deadline, timeout)
                self._pids[pid] = probe
        else:
            runner = _SocketProbe(check, deadline, timeout)
        self._probes[probe] = runner
        self._settle(probe, runner)
        if probe in self._probes:
            heapq.heappush(self._deadlines, (deadline, probe))
            if not self._watched:
                self._look_at = now + GATHER

    def owns(self, key: selectors.SelectorKey) -> bool:
        return key.data is self

    def handle(self, key: selectors.SelectorKey, mask: int) -> None:
        """Some probes' fds are ready (the key ``owns`` said is the probes')."""
        self._poll()

    def _poll(self) -> None:
        for fd, events in self._epoll.poll(0):
            probe = self._fds.get(fd)
            runner = self._probes.get(probe) if probe is not None else None
            if probe is None or runner is None:
                continue
            # As selectors reads them: an error or a hang-up is both readable and writable.
            if events & ~select.EPOLLIN:
                runner.on_writable()
            if events & ~select.EPOLLOUT and runner.result is None:
                runner.on_readable()
            self._settle(probe, runner)

    def ended(self, pid: int, status: int) -> bool:
        """The loop's reaper took this child's status; True when it was a probe's command."""
        if pid in self._orphans:
            self._orphans.discard(pid)
            return True
        probe = self._pids.pop(pid, None)
        if probe is None:
            return False
        runner = self._probes.get(probe)
        if isinstance(runner, _ExecProbe):
            self._unregister(probe, runner)
            runner.exited(status)
            self._settle(probe, runner)
        return True

    def reap(self) -> None:
        """Reap the probes' own commands (for a loop without a reaper of its own)."""
        for pid in [*self._pids, *self._orphans]:
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                self._orphans.discard(pid)
                continue
            if done:
                self.ended(pid, status)

    def expire(self, now: float) -> None:
        """Read the answers gathered, if it is time; then end every probe whose deadline has
        come, as a failure (an answer already there counts first)."""
        deadlines = self._deadlines
        look = self._look_at is not None and self._look_at <= now
        if self._fds and (look or (deadlines and deadlines[0][0] <= now)):
            self._poll()
        if look:
            self._look_at = None
            if self._fds and not self._watched:
                self._selector.register(self._epoll.fileno(), selectors.EVENT_READ, self)
                self._watched = True
        while deadlines and deadlines[0][0] <= now:
            deadline, probe = heapq.heappop(deadlines)
            if self._in_flight(deadline, probe):
                runner = self._probes[probe]
                self._unregister(probe, runner)
                runner.expire()
                self._settle(probe, runner)

    def cancel(self, probe: int) -> None:
        """Stop a probe whose result is no longer wanted (CancelProbe)."""
        runner = self._probes.pop(probe, None)
        if runner is not None:
            self._unregister(probe, runner)
            runner.stop()
            self._forget_pid(probe, runner)

    def take(self) -> list[tuple[int, Result]]:
        done, self._done = self._done, []
        return done

    def next_wakeup(self) -> float | None:
        deadlines = self._deadlines
        while deadlines and not self._in_flight(*deadlines[0]):
            heapq.heappop(deadlines)
        due = deadlines[0][0] if deadlines else None
        if self._look_at is not None and (due is None or self._look_at < due):
            return self._look_at
        return due

    def _in_flight(self, deadline: float, probe: int) -> bool:
        runner = self._probes.get(probe)
        return runner is not None and runner.deadline == deadline

    def close(self) -> None:
        for probe in list(self._probes):
            self.cancel(probe)
        self._epoll.close()

    def __len__(self) -> int:
        return len(self._probes)

    def _settle(self, probe: int, runner: _Probe) -> None:
        """Register what the probe waits on now, or hand its result over."""
        if runner.result is not None:
            self._unregister(probe, runner)
            del self._probes[probe]
            self._forget_pid(probe, runner)
            self._done.append((probe, runner.result))
            return
        fd, events = runner.fileno(), runner.events()
        registered = self._registered.get(probe)
        if registered == (fd, events):
            return
        if registered is not None and registered[0] == fd >= 0:
            self._epoll.modify(fd, _EPOLL[events])
            self._registered[probe] = (fd, events)
            return
        self._unregister(probe, runner)
        if fd >= 0:
            self._epoll.register(fd, _EPOLL[events])
            self._registered[probe] = (fd, events)
            self._fds[fd] = probe

    def _unregister(self, probe: int, runner: _Probe) -> None:
        registered = self._registered.pop(probe, None)
        if registered is None:
            return
        fd = registered[0]
        del self._fds[fd]
        if runner.fileno() == fd:
            self._epoll.unregister(fd)
        # else the probe closed it, and closing took it out of the epoll already.
        if not self._fds and self._watched:
            self._selector.unregister(self._epoll.fileno())
            self._watched = False

    def _forget_pid(self, probe: int, runner: _Probe) -> None:
        if isinstance(runner, _ExecProbe) and self._pids.pop(runner.pid, None) == probe:
            self._orphans.add(runner.pid)
