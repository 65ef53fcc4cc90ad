"""Program output to the container's log: one FIFO per process and channel, read by roled, passed
on whole line by whole line to roled's stdout or stderr in the chosen format.

supervisord writes each program's output into the program's FIFO (its ``stdout_logfile``), so
nothing rotates a device and nothing goes through supervisord's event buffer, which drops events
when it is full. A reader thread turns chunks into whole lines (a partial line waits for the rest,
or for its process to end); one writer thread per output fd writes them with blocking writes. When
an output's buffer is full the reader stops reading the FIFOs that feed it: supervisord's write
blocks, then the program's, so output is held back, never lost. The main loop never waits for any
of it: it only asks ``holding_back`` (so a supervisord blocked on a full FIFO is not taken for a
hung one) and calls ``drain`` when stopping (so a blocked supervisord can finish the stop).
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import select
import signal
import stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from roled import log
from roled.errors import RoledError
from roled.logformat import SUPERVISORD, Formatter
from roled.model import Stream

# One read; a FIFO is asked for this much room too (F_SETPIPE_SZ), so supervisord blocks less.
CHUNK = 1 << 20
# Above this many bytes waiting for an output fd, the FIFOs feeding it are not read (backpressure).
HIGH_WATER = 4 << 20
# While stopping, FIFOs are read whatever the output's state, so supervisord can finish the stop;
# past this many waiting bytes new lines are dropped (and counted) rather than held in memory.
DRAIN_LIMIT = 64 << 20
# A line longer than this is passed on in pieces: memory per stream stays bounded.
MAX_LINE = 8 << 20
# How often at most roled says that it holds output back.
HOLD_NOTICE_INTERVAL = 60.0
# Process states that come after supervisord has read the last of a process's output.
ENDED_STATES = frozenset({"EXITED", "STOPPED", "BACKOFF", "FATAL", "UNKNOWN"})
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# The end of each program stream kept for the failure report.
TAIL_BYTES = 4096


@dataclass(frozen=True, slots=True)
class Dropped:
    """Output that could not be written: stdout or stderr was not read, or was gone."""

    lines: int = 0
    bytes: int = 0

    def __add__(self, other: Dropped) -> Dropped:
        return Dropped(self.lines + other.lines, self.bytes + other.bytes)

    def describe(self) -> str:
        return f"{self.lines} line(s), {self.bytes} byte(s)"


def make_fifos(streams: Iterable[Stream]) -> tuple[Stream, ...]:
    """Make every FIFO that is missing (live reload calls this before supervisord reads the new
    config; supervisord would otherwise create a plain file)."""
    streams = tuple(streams)
    for stream in streams:
        try:
            os.mkfifo(stream.path, 0o600)
        except FileExistsError:
            if not stat.S_ISFIFO(os.lstat(stream.path).st_mode):
                raise RoledError(f"{stream.path}: exists and is not a FIFO") from None
        except OSError as exc:
            raise RoledError(f"{stream.path}: cannot create FIFO: {exc.strerror}") from exc
    return streams


def _block_signals() -> None:
    # Signals belong to the main loop; a pump thread taking one would only delay it.
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


class Output:
    """One of roled's output fds, written by its own thread with blocking writes, so a reader
    that stalls (a full pipe) stalls nothing but this thread."""

    def __init__(self, fd: int, wake: Callable[[], None]) -> None:
        self.fd = fd
        self._wake = wake
        self._cond = threading.Condition()
        self._chunks: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._closed = False
        self.broken = False
        self.dropped = Dropped()
        self._thread = threading.Thread(target=self._run, name=f"roled-out{fd}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def full(self) -> bool:
        return self._size >= HIGH_WATER

    @property
    def size(self) -> int:
        return self._size

    def put(self, data: bytes) -> None:
        with self._cond:
            if self.broken or self._closed:
                self.dropped += Dropped(data.count(b"\n"), len(data))
                return
            self._chunks.append(data)
            self._size += len(data)
            self._cond.notify_all()

    def _take(self) -> bytes | None:
        with self._cond:
            while not self._chunks and not self._closed:
                self._cond.wait()
            if not self._chunks:
                return None
            batch = [self._chunks.popleft()]
            taken = len(batch[0])
            while self._chunks and taken < CHUNK:
                taken += len(self._chunks[0])
                batch.append(self._chunks.popleft())
            return b"".join(batch)

    def _run(self) -> None:
        _block_signals()
        while (data := self._take()) is not None:
            written = 0
            try:
                view = memoryview(data)
                while written < len(data):
                    written += os.write(self.fd, view[written:])
            except OSError:
                # EPIPE or a closed fd: nobody will read it again, so holding back would hang.
                with self._cond:
                    self.broken = True
                    lost = data[written:]
                    self.dropped += Dropped(lost.count(b"\n"), len(lost))
                    self._discard()
            with self._cond:
                was_full = self.full
                self._size -= len(data)
                self._cond.notify_all()
            if (was_full and not self.full) or self.broken:
                self._wake()

    def _discard(self) -> None:
        for chunk in self._chunks:
            self.dropped += Dropped(chunk.count(b"\n"), len(chunk))
            self._size -= len(chunk)
        self._chunks.clear()

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued is written, at most timeout seconds."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._size > 0 and not self.broken:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout: float) -> Dropped:
        """Flush with a bound; what is still queued then is dropped and counted."""
        self.flush(timeout)
        with self._cond:
            self._discard()
            self._closed = True
            self._cond.notify_all()
            return self.dropped


@dataclass(slots=True)
class _Source:
    """A read end and the start of a line that has not ended yet."""

    label: str
    namespec: str
    channel: str
    fd: int
    keepalive: int | None
    pending: list[bytes] = field(default_factory=list)
    pending_size: int = 0


class LogPump:
    """Reads every stream, writes whole lines to fd 1 and 2; see the module docstring."""

    def __init__(self, kind: str, stdout_fd: int = 1, stderr_fd: int = 2) -> None:
        self.kind = kind
        self.formatter = Formatter.for_labels(kind, [])
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        stderr = Output(stderr_fd, self._wake)
        stdout = stderr if _same_file(stdout_fd, stderr_fd) else Output(stdout_fd, self._wake)
        self._outputs = {"stdout": stdout, "stderr": stderr}
        self._lock = threading.Lock()
        self._sources: dict[int, _Source] = {}
        self._paths: set[Path] = set()
        self._ended: collections.deque[tuple[str, threading.Event | None]] = collections.deque()
        self._tails: dict[tuple[str, str], bytes] = {}
        self._draining = False
        self._stopping = False
        self._dropped = Dropped()
        self._holding = False
        self._noticed_at: float | None = None
        self._reader = threading.Thread(target=self._run, name="roled-logs", daemon=True)
        self._started = False
        self._closed = False

    # -- called from the main loop ------------------------------------------------------

    @property
    def holding_back(self) -> bool:
        """Whether roled leaves a FIFO unread because an output is full: supervisord may then
        be blocked writing, and not answer, through no fault of its own."""
        return self._holding

    def watch(self, streams: Iterable[Stream]) -> None:
        """Open the read end of every FIFO not watched yet (new programs after a reload too)."""
        added: list[_Source] = []
        for stream in streams:
            if stream.path in self._paths:
                continue
            fd = os.open(stream.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            # A write end of roled's own: the FIFO never reports end-of-file (select() would spin
            # between two processes), and supervisord's tail of a stopped program's log, which
            # opens the FIFO to read, does not block it forever waiting for a writer.
            keepalive = os.open(stream.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            with contextlib.suppress(OSError):
                fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)
            self._paths.add(stream.path)
            added.append(_Source(stream.label, stream.namespec, stream.channel, fd, keepalive))
        self._add(added)

    def capture(self, label: str = SUPERVISORD) -> int:
        """A pipe for a child's stdout and stderr, read as ``label`` on roled's stderr; the
        caller gives the returned write end to the child and closes it."""
        read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
        os.set_blocking(read_fd, False)
        self._add([_Source(label, "", "stderr", read_fd, None)])
        return write_fd

    def _add(self, sources: list[_Source]) -> None:
        with self._lock:
            for source in sources:
                self._sources[source.fd] = source
            labels = {source.label for source in self._sources.values()}
            self.formatter = Formatter.for_labels(self.kind, labels)
        log.configure(self.formatter)
        self._wake()

    def start(self) -> None:
        """Start the threads; roled's own lines go through the pump from now on."""
        for output in {id(out): out for out in self._outputs.values()}.values():
            output.start()
        self._reader.start()
        self._started = True
        log.attach(self._outputs["stderr"].put)

    def finished(self, namespec: str, done: threading.Event | None = None) -> None:
        """A process ended: supervisord has written its last output, so a line it left
        unterminated is complete. done is set once that output has been read."""
        self._ended.append((namespec, done))
        self._wake()

    def tail(self, namespec: str, channel: str, timeout: float) -> bytes | None:
        """The end of an ended process's channel once what supervisord wrote of it is read;
        None if that channel does not go through roled."""
        if not any(
            source.namespec == namespec and source.channel == channel
            for source in list(self._sources.values())
        ):
            return None
        done = threading.Event()
        self.finished(namespec, done)
        if self._started:
            done.wait(timeout)
        return self._tails.get((namespec, channel), b"")

    def drain(self) -> None:
        """Read whatever the outputs' state (stopping: supervisord must not stay blocked)."""
        self._draining = True
        self._wake()

    def close(self, timeout: float) -> Dropped:
        """After supervisord ended: read what is left, flush with a bound, say what was lost.

        roled's own lines still go out afterwards, until ``detach``.
        """
        if self._closed:
            return Dropped()
        self._closed = True
        self._draining = True
        self._stopping = True
        self._wake()
        if self._started:
            self._reader.join(timeout)
        deadline = time.monotonic() + timeout
        stdout = self._outputs["stdout"]
        stderr = self._outputs["stderr"]
        lost = self._dropped
        if stdout is not stderr:
            lost += stdout.close(max(0.0, deadline - time.monotonic()))
        stderr.flush(max(0.0, deadline - time.monotonic()))
        return lost

    def detach(self, timeout: float) -> None:
        """Write the last of roled's own lines (bounded) and send later ones straight to fd 2."""
        log.attach(None)
        self._outputs["stderr"].close(timeout)
        with self._lock:
            for source in self._sources.values():
                os.close(source.fd)
                if source.keepalive is not None:
                    os.close(source.keepalive)
            self._sources.clear()
        os.close(self._wake_r)
        os.close(self._wake_w)

    # -- the reader thread ----------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def _run(self) -> None:
        _block_signals()
        while True:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 4096):
                    pass
            with self._lock:
                sources = list(self._sources.values())
            while self._ended:
                ended, done = self._ended.popleft()
                for source in sources:
                    if source.namespec == ended:
                        self._read_all(source)
                        self._flush_partial(source)
                if done is not None:
                    done.set()
            if self._stopping:
                for source in sources:
                    self._read_all(source)
                    self._flush_partial(source)
                return
            readable = [source.fd for source in sources if self._may_read(source)]
            self._note_holding(len(readable) < len(sources))
            ready, _, _ = select.select([self._wake_r, *readable], [], [])
            for fd in ready:
                found = self._sources.get(fd)
                if found is not None:
                    self._read_once(found)

    def _may_read(self, source: _Source) -> bool:
        output = self._outputs[source.channel]
        return self._draining or output.broken or not output.full

    def _note_holding(self, holding: bool) -> None:
        self._holding = holding
        if not holding:
            return
        now = time.monotonic()
        if self._noticed_at is None or now - self._noticed_at >= HOLD_NOTICE_INTERVAL:
            self._noticed_at = now
            full = [name for name, output in self._outputs.items() if output.full]
            log.warning(
                f"{' and '.join(sorted(set(full)))} not being read: holding program output "
                "back (programs writing to it block until it is read)"
            )

    def _read_once(self, source: _Source) -> bool:
        """One read; False when the source has nothing more for now."""
        try:
            data = os.read(source.fd, CHUNK)
        except BlockingIOError:
            return False
        if not data:
            # End of file: only a captured pipe has no write end of roled's own.
            self._flush_partial(source)
            with self._lock:
                del self._sources[source.fd]
            os.close(source.fd)
            return False
        self._take(source, data)
        return True

    def _read_all(self, source: _Source) -> None:
        while source.fd in self._sources and self._read_once(source):
            pass

    def _take(self, source: _Source, data: bytes) -> None:
        end = data.rfind(b"\n")
        if end < 0:
            source.pending.append(data)
            source.pending_size += len(data)
            if source.pending_size >= MAX_LINE:
                self._flush_partial(source)
            return
        whole = data if end == len(data) - 1 else data[: end + 1]
        if source.pending:
            whole = b"".join([*source.pending, whole])
            source.pending.clear()
            source.pending_size = 0
        self._deliver(source, whole)
        if end < len(data) - 1:
            source.pending.append(data[end + 1 :])
            source.pending_size = len(data) - end - 1

    def _flush_partial(self, source: _Source) -> None:
        if source.pending:
            self._deliver(source, b"".join([*source.pending, b"\n"]))
            source.pending.clear()
            source.pending_size = 0

    def _deliver(self, source: _Source, whole: bytes) -> None:
        if source.namespec:
            key = (source.namespec, source.channel)
            self._tails[key] = (self._tails.get(key, b"") + whole[-TAIL_BYTES:])[-TAIL_BYTES:]
        output = self._outputs[source.channel]
        if self._draining and output.size >= DRAIN_LIMIT:
            self._dropped += Dropped(whole.count(b"\n"), len(whole))
            return
        output.put(self.formatter.lines(source.label, source.channel, whole))


def _same_file(first: int, second: int) -> bool:
    """Whether two fds write to the same file (``2>&1``, a terminal): then one thread writes
    both, or two writers could cut into each other's lines."""
    try:
        a, b = os.fstat(first), os.fstat(second)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
