"""Program output to the container's log: one FIFO per process and channel, read by roled, passed
on whole line by whole line to roled's stdout or stderr in the chosen format.

supervisord writes each program's output into the program's FIFO (its ``stdout_logfile``), so
nothing rotates a device and nothing goes through supervisord's event buffer, which drops events
when it is full. A reader thread waits on every FIFO at once (epoll: any number of descriptors)
and turns chunks into whole lines (``roled.lines``); one writer thread per output fd writes them.
When an output that can block (a pipe, a terminal) has too much waiting, the reader stops reading
the FIFOs that feed it: supervisord's write blocks, then the program's, so output is held back,
never lost. A regular file or /dev/null never stalls: its writer only paces the reader.

The main loop never waits for any of it: it asks ``holding_back`` (so a supervisord blocked on a
full FIFO is not taken for a hung one), calls ``drain`` when stopping (so a blocked supervisord
can finish the stop) and ``close`` at the end, which gives the output a deadline. A writer never
blocks in the middle of a line: it writes whole lines, only as much as a pipe has room for, and
once it is nearly full, at most ``PIPE_BUF`` bytes after poll() says there is room, which a pipe
takes at once. So at the deadline it stops between lines, and every line not written is counted
in the ``Dropped`` that ``close`` returns.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import resource
import select
import selectors
import signal
import stat
import struct
import termios
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from roled import log
from roled.errors import RoledError
from roled.lines import LineAssembler, Tail, at_line_start, piece_end, without_listener
from roled.logformat import SUPERVISORD, Formatter
from roled.model import LISTENER, Stream
from roled.tails import TAIL_BUFFER, Buffers

# One read; a FIFO is asked for this much room too (F_SETPIPE_SZ), so supervisord blocks less.
CHUNK = 1 << 20
# Above this many bytes waiting for an output fd, the FIFOs feeding it are not read (backpressure).
HIGH_WATER = 4 << 20
# While stopping, FIFOs are read whatever the output's state, so supervisord can finish the stop;
# past this many waiting bytes new lines are dropped (and counted) rather than held in memory.
DRAIN_LIMIT = 64 << 20
# How often at most roled says that it holds output back.
HOLD_NOTICE_INTERVAL = 60.0
# Process states that come after supervisord has read the last of a process's output.
ENDED_STATES = frozenset({"EXITED", "STOPPED", "BACKOFF", "FATAL", "UNKNOWN"})
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
F_GETPIPE_SZ = getattr(fcntl, "F_GETPIPE_SZ", 1032)
# A pipe holds its data in pages of this size (pipe(7): its capacity is a number of pages).
PAGE = resource.getpagesize()
# A write of at most this many bytes to a pipe is atomic, and after poll() reports room (a free
# page) it does not block: all of it is written, or none (pipe(7)).
PIPE_BUF = select.PIPE_BUF
# A line longer than PIPE_BUF is written in several pieces; one begun before the deadline gets
# this much longer to be finished, so that it is not cut.
LINE_GRACE = 1.0
# Character devices of this major number (/dev/null, /dev/zero, /dev/full) never block a write.
MEMORY_DEVICES = 1


@dataclass(frozen=True, slots=True)
class Dropped:
    """Output that could not be written: stdout or stderr was not read, or was gone."""

    lines: int = 0
    bytes: int = 0

    def __add__(self, other: Dropped) -> Dropped:
        return Dropped(self.lines + other.lines, self.bytes + other.bytes)

    def describe(self) -> str:
        return f"{self.lines} line(s), {self.bytes} byte(s)"


def lost(data: bytes) -> Dropped:
    """What is lost with data, whole lines: its newlines and its bytes."""
    return Dropped(data.count(b"\n"), len(data))


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


def raise_open_file_limit() -> None:
    """Raise the soft limit of open files to the hard one: roled holds two descriptors per FIFO,
    and supervisord (which inherits the limit) three per process."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        # An unlimited hard limit is refused above the kernel's nr_open: keep the soft one then.
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def never_blocks(fd: int) -> bool:
    """Whether a write to fd is taken at once, never held up by a reader: a regular file, a block
    device, /dev/null. A pipe, a socket or a terminal can stall."""
    try:
        status = os.fstat(fd)
    except OSError:
        return False
    if stat.S_ISREG(status.st_mode) or stat.S_ISBLK(status.st_mode):
        return True
    return stat.S_ISCHR(status.st_mode) and os.major(status.st_rdev) == MEMORY_DEVICES


def _pipe_size(fd: int) -> int:
    """The capacity of the pipe fd writes to, or 0 when it is not a pipe."""
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
        return int(fcntl.fcntl(fd, F_GETPIPE_SZ))
    except OSError:
        return 0


def _block_signals() -> None:
    # Signals belong to the main loop; a pump thread taking one would only delay it.
    signal.pthread_sigmask(signal.SIG_BLOCK, signal.valid_signals())


class Output:
    """One of roled's output fds, written by its own thread, so a reader that stalls (a full
    pipe) stalls nothing but this thread; see the module docstring for how it ends."""

    def __init__(self, fd: int, wake: Callable[[], None]) -> None:
        self.fd = fd
        # A file takes every write at once: no poll, and whole batches in one write.
        self.can_stall = not never_blocks(fd)
        self._pipe_size = _pipe_size(fd)
        self._wake = wake
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        # Bytes queued or in the writer's hands.
        self._size = 0
        self._deadline: float | None = None
        self._grace = LINE_GRACE
        self._closed = False
        self.broken = False
        self.dropped = Dropped()
        # What the writer has in hand and how much of it is written, for a writer stuck in a
        # write (a stopped terminal) that close gives up on.
        self._current = b""
        self._position = 0
        self._abandoned = False
        self._poke_r, self._poke_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._poll = select.poll()
        self._poll.register(fd, select.POLLOUT)
        self._poll.register(self._poke_r, select.POLLIN)
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
        """Queue whole lines; once the output is broken or closed they are counted as dropped."""
        with self._cond:
            if self.broken or self._closed:
                self.dropped += lost(data)
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
            self._current, self._position = b"".join(batch), 0
            return self._current

    def _run(self) -> None:
        _block_signals()
        while (data := self._take()) is not None:
            written = self._write(data)
            with self._cond:
                if self._abandoned:
                    return
                if written < len(data):
                    # The deadline passed (between two lines) or the fd failed: nothing queued
                    # now will be written either.
                    self.dropped += lost(data[written:])
                    self._discard()
                was_full = self.full
                self._size -= len(data)
                self._current = b""
                self._cond.notify_all()
            if (was_full and not self.full) or self.broken:
                self._wake()

    def _write(self, data: bytes) -> int:
        """Write data (whole lines); how much of it went out before the deadline or a failure."""
        view = memoryview(data)
        while self._position < len(data):
            timeout = self._time_left(data)
            if timeout is not None and timeout <= 0:
                break
            limit = len(data) if not self.can_stall else self._pipe_room()
            if limit < PIPE_BUF:
                if not self._writable(timeout):
                    continue
                limit = PIPE_BUF
            end = piece_end(data, self._position, limit)
            try:
                self._position += os.write(self.fd, view[self._position : end])
            except OSError:
                # EPIPE or a closed fd: nobody will read it again, so holding back would hang.
                self.broken = True
                break
        return self._position

    def _pipe_room(self) -> int:
        """Bytes the pipe takes now without blocking, at least (0 when not a pipe): writes fill
        its pages in turn (each merges into the last one), so all but the page being read and
        the one being filled are full. Saves a poll() and a write per PIPE_BUF when the reader
        keeps up."""
        if not self._pipe_size:
            return 0
        try:
            waiting = fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0")
        except OSError:
            return 0
        queued = int(struct.unpack("i", waiting)[0])
        return (self._pipe_size // PAGE - queued // PAGE - 2) * PAGE

    def _time_left(self, data: bytes) -> float | None:
        deadline = self._deadline
        if deadline is None:
            return None
        if not at_line_start(data, self._position):
            deadline += self._grace
        return deadline - time.monotonic()

    def _writable(self, timeout: float | None) -> bool:
        """Wait until the fd takes a piece (or fails, which the write then says), a deadline is
        set, or timeout seconds pass."""
        milliseconds = None if timeout is None else max(1, int(timeout * 1000))
        ready = self._poll.poll(milliseconds)
        if any(fd == self._poke_r for fd, _ in ready):
            with contextlib.suppress(BlockingIOError):
                os.read(self._poke_r, 4096)
        return any(fd == self.fd for fd, _ in ready)

    def _discard(self) -> None:
        for chunk in self._chunks:
            self.dropped += lost(chunk)
            self._size -= len(chunk)
        self._chunks.clear()

    def _poke(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._poke_w, b"\0")

    def finish_by(self, deadline: float, grace: float = LINE_GRACE) -> None:
        """Write what is queued until deadline (monotonic); whatever is not written by then is
        dropped and counted. A line longer than PIPE_BUF begun by then gets grace seconds more."""
        with self._cond:
            self._deadline = deadline
            self._grace = grace
        self._poke()

    def settle(self) -> Dropped:
        """Wait for ``finish_by``'s outcome; every line this output dropped so far. Lines queued
        later are written with no deadline again."""
        with self._cond:
            deadline = self._deadline if self._deadline is not None else time.monotonic()
            give_up = deadline + self._grace + LINE_GRACE
            while self._size > 0 and self._thread.is_alive():
                left = give_up - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            if self._size > 0:
                # No writer, or one stuck inside a write (a stopped terminal, not a pipe).
                if self._current:
                    self.dropped += lost(self._current[self._position :])
                    self._abandoned = True
                    self.broken = True
                self._discard()
                self._size = 0
            self._deadline = None
            return self.dropped

    def close(self, deadline: float, grace: float = LINE_GRACE) -> Dropped:
        """Finish by deadline, then take no more lines; every line this output dropped."""
        if self._closed:
            return self.dropped
        self.finish_by(deadline, grace)
        dropped = self.settle()
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread.ident is not None:
            self._thread.join(LINE_GRACE)
        if not self._thread.is_alive():
            # Only then: a writer still in poll() must not find its fds reused by another file.
            os.close(self._poke_r)
            os.close(self._poke_w)
        return dropped


@dataclass(slots=True)
class _Source:
    """A read end, the line it is in the middle of, and the end of what it carried."""

    label: str
    namespec: str
    channel: str
    fd: int
    keepalive: int | None
    lines: LineAssembler = field(default_factory=LineAssembler)
    tail: Tail = field(default_factory=Tail)


def _open_fifo(stream: Stream) -> _Source:
    fd = os.open(stream.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        # A write end of roled's own: the FIFO never reports end-of-file (a poll would spin
        # between two processes), and supervisord's tail of a stopped program's log, which opens
        # the FIFO to read, does not block it forever waiting for a writer.
        keepalive = os.open(stream.path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        os.close(fd)
        raise
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, F_SETPIPE_SZ, CHUNK)
    return _Source(stream.label, stream.namespec, stream.channel, fd, keepalive)


class LogPump:
    """Reads every stream, writes whole lines to fd 1 and 2; see the module docstring."""

    def __init__(
        self, kind: str, stdout_fd: int = 1, stderr_fd: int = 2, tail_buffer: int = TAIL_BUFFER
    ) -> None:
        raise_open_file_limit()
        self.kind = kind
        # What ``roled ctl tail`` and ``maintail`` show: the reader adds, the main loop reads.
        self.buffers = Buffers(tail_buffer)
        self.formatter = Formatter.for_labels(kind, [])
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        stderr = Output(stderr_fd, self._wake)
        stdout = stderr if _same_file(stdout_fd, stderr_fd) else Output(stdout_fd, self._wake)
        self._outputs = {"stdout": stdout, "stderr": stderr}
        self._lock = threading.Lock()
        self._sources: dict[int, _Source] = {}
        # Set when sources come or go, so the reader waits on the new set.
        self._changed = False
        self._paths: set[Path] = set()
        self._ended: deque[tuple[str, threading.Event | None]] = deque()
        # Lines of the processes a log: check waits on, handed to the main loop, which waits
        # on lines_fd. Only those processes pay for it: a set lookup per chunk for the others.
        self._line_programs: frozenset[str] = frozenset()
        self._lines: deque[tuple[str, bytes]] = deque()
        self.lines_fd, self._lines_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._draining = False
        self._stopping = False
        self._dropped = Dropped()
        self._holding = False
        self._noticed_at: float | None = None
        # The reader's own: what it waits on, and the view of the sources it waits on.
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._watched: dict[int, _Source] = {}
        self._by_namespec: dict[str, list[_Source]] = {}
        self._reading: dict[str, bool] = {}
        self._reader = threading.Thread(target=self._run, name="roled-logs", daemon=True)
        self._started = False
        self._closed = False

    # -- called from the main loop ------------------------------------------------------

    @property
    def holding_back(self) -> bool:
        """Whether roled leaves a FIFO unread because an output that can stall is full:
        supervisord may then be blocked writing, and not answer, through no fault of its own."""
        return self._holding

    def watch(self, streams: Iterable[Stream]) -> None:
        """Open the read end of every FIFO not watched yet (new programs after a reload too)."""
        added: list[_Source] = []
        try:
            for stream in streams:
                if stream.path in self._paths:
                    continue
                try:
                    added.append(_open_fifo(stream))
                except OSError as exc:
                    raise RoledError(f"{stream.path}: cannot open FIFO: {exc.strerror}") from exc
                self._paths.add(stream.path)
                self.buffers.keep(stream.namespec, stream.channel)
        finally:
            # Those opened are watched (and closed by detach) even when a later one failed.
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
            self._changed = True
            labels = {source.label for source in self._sources.values()}
            self.formatter = Formatter.for_labels(self.kind, labels)
        log.configure(self.formatter)
        self._wake()

    def start(self) -> None:
        """Start the threads; roled's own lines go through the pump from now on."""
        for output in self._distinct_outputs():
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
        with self._lock:
            found = [
                source
                for source in self._sources.values()
                if source.namespec == namespec and source.channel == channel
            ]
        if not found:
            return None
        done = threading.Event()
        self.finished(namespec, done)
        if self._started:
            done.wait(timeout)
        return found[0].tail.value

    def carry_lines(self, namespecs: Iterable[str]) -> None:
        """Hand these processes' lines to ``take_lines`` (a log: check reads them)."""
        self._line_programs = frozenset(namespecs)

    def take_lines(self) -> list[tuple[str, bytes]]:
        """The lines handed over since the last call, as (namespec, whole lines)."""
        with contextlib.suppress(BlockingIOError):
            while os.read(self.lines_fd, 4096):
                pass
        taken = []
        while self._lines:
            taken.append(self._lines.popleft())
        return taken

    def drain(self) -> None:
        """Read whatever the outputs' state (stopping: supervisord must not stay blocked)."""
        self._draining = True
        self._wake()

    def close(self, timeout: float) -> Dropped:
        """After supervisord ended: read what is left, write it within timeout seconds, and
        return exactly what was not written (lines not read in time, or past DRAIN_LIMIT, or
        not written by the deadline).

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
        stdout, stderr = self._outputs["stdout"], self._outputs["stderr"]
        for output in self._distinct_outputs():
            output.finish_by(deadline)
        dropped = self._dropped
        if stdout is not stderr:
            dropped += stdout.close(deadline)
        return dropped + stderr.settle()

    def detach(self, timeout: float) -> None:
        """Write the last of roled's own lines (bounded) and send later ones straight to fd 2."""
        log.attach(None)
        self._outputs["stderr"].close(time.monotonic() + timeout)
        with self._lock:
            for source in self._sources.values():
                os.close(source.fd)
                if source.keepalive is not None:
                    os.close(source.keepalive)
            self._sources.clear()
        self._selector.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        os.close(self.lines_fd)
        os.close(self._lines_w)

    def _distinct_outputs(self) -> list[Output]:
        return list({id(output): output for output in self._outputs.values()}.values())

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
            self._sync()
            while self._ended:
                ended, done = self._ended.popleft()
                for source in self._by_namespec.get(ended, ()):
                    self._read_all(source)
                    self._deliver(source, source.lines.end())
                if done is not None:
                    done.set()
            if self._stopping:
                for source in list(self._watched.values()):
                    self._read_all(source)
                    self._deliver(source, source.lines.end())
                return
            for key, _ in self._selector.select():
                if key.data is not None:
                    self._read_once(key.data)

    def _sync(self) -> None:
        """Wait on the sources whose output takes lines now, and no other."""
        reading = {name: self._may_read(output) for name, output in self._outputs.items()}
        with self._lock:
            changed, self._changed = self._changed, False
            if changed:
                self._watched = dict(self._sources)
        if changed:
            self._by_namespec = {}
            for source in self._watched.values():
                self._by_namespec.setdefault(source.namespec, []).append(source)
        if changed or reading != self._reading:
            self._reading = reading
            registered = self._selector.get_map()
            for fd in [fd for fd in registered if fd != self._wake_r and fd not in self._watched]:
                self._selector.unregister(fd)
            for fd, source in self._watched.items():
                if reading[source.channel] and fd not in registered:
                    self._selector.register(fd, selectors.EVENT_READ, source)
                elif not reading[source.channel] and fd in registered:
                    self._selector.unregister(fd)
        held = {source.channel for source in self._watched.values()} - {
            name for name, yes in reading.items() if yes or not self._outputs[name].can_stall
        }
        self._note_holding(held)

    def _may_read(self, output: Output) -> bool:
        return self._draining or output.broken or not output.full

    def _note_holding(self, held: set[str]) -> None:
        self._holding = bool(held)
        if not held:
            return
        now = time.monotonic()
        if self._noticed_at is None or now - self._noticed_at >= HOLD_NOTICE_INTERVAL:
            self._noticed_at = now
            log.warning(
                f"{' and '.join(sorted(held))} not being read: holding program output "
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
            self._deliver(source, source.lines.end())
            with self._lock:
                del self._sources[source.fd]
                self._changed = True
            with contextlib.suppress(KeyError):
                self._selector.unregister(source.fd)
            self._watched.pop(source.fd, None)
            os.close(source.fd)
            return False
        self._deliver(source, source.lines.feed(data))
        return True

    def _read_all(self, source: _Source) -> None:
        while source.fd in self._watched and self._read_once(source):
            pass

    def _deliver(self, source: _Source, whole: bytes) -> None:
        if not whole:
            return
        if source.namespec:
            source.tail.add(whole)
            if source.namespec in self._line_programs:
                self._lines.append((source.namespec, whole))
                with contextlib.suppress(BlockingIOError, OSError):
                    os.write(self._lines_w, b"\0")
        else:
            # supervisord's own lines (not a program's output) are roled's to mask.
            whole = log.mask_bytes(whole)
            if source.label == SUPERVISORD:
                whole = without_listener(whole, LISTENER)
                if not whole:
                    return
        if self.buffers.size:
            self.buffers.add((source.namespec, source.channel), whole)
        output = self._outputs[source.channel]
        formatted = self.formatter.lines(source.label, source.channel, whole)
        if self._draining and output.size >= DRAIN_LIMIT:
            self._dropped += lost(formatted)
            return
        output.put(formatted)


def _same_file(first: int, second: int) -> bool:
    """Whether two fds write to the same file (``2>&1``, a terminal): then one thread writes
    both, or two writers could cut into each other's lines."""
    try:
        a, b = os.fstat(first), os.fstat(second)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)
