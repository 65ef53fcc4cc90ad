"""Polling file watcher, driven by the main loop: ``poll(now)`` says which watch sets changed.

No thread and no clock of its own. A file counts as changed when its content changes: a cheap
stat signature first, a content hash only when the signature moved. Symlinks are followed, so
Kubernetes' atomic ``..data`` swap and a file replaced by rename are both seen.
"""

from __future__ import annotations

import binascii
import glob
import os
import stat
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from roled.filekeys import is_glob

INTERVAL = 1.0
# With inotify telling when to look, a full scan is only a safety net (a change inotify cannot
# see: a network file system, a folder created after the watch began).
IDLE_INTERVAL = 30.0
# Act once the content has been still for SETTLE seconds, and at most MAX_DELAY seconds after the
# first change was seen, so a burst of writes is one action and a steady writer still gets one.
SETTLE = 0.5
MAX_DELAY = 2.0
# Bounds of a folder walk, so a watched "/" cannot stall the loop.
MAX_DEPTH = 8
MAX_FILES = 10_000
# A file modified less than this long ago is hashed again on the next scan (see Seen.racy).
RACY_NS = 2_000_000_000
# Bigger files are compared by their stat signature alone.
MAX_HASHED = 16 * 1024 * 1024
# The kubelet's AtomicWriter reserves names starting with "..": its timestamped folders and the
# ..data link. The user-visible names reach the content through ..data, so walking them is enough.
RESERVED = ".."

# (device, inode, size, mtime ns, ctime ns, mode) of the file a path resolves to; None: absent.
Signature = tuple[int, int, int, int, int, int] | None


@dataclass(slots=True)
class Debounce:
    """One watch set's pending change: when it was first and last seen, and which paths."""

    settle: float = SETTLE
    max_delay: float = MAX_DELAY
    first: float | None = None
    last: float = 0.0
    paths: set[str] = field(default_factory=set)

    def seen(self, now: float, paths: Iterable[str]) -> None:
        """Changes found by a scan at ``now``."""
        if self.first is None:
            self.first = now
        self.last = now
        self.paths.update(paths)

    def due(self, now: float) -> bool:
        """Still for ``settle`` seconds, or ``max_delay`` seconds since the first change."""
        if self.first is None:
            return False
        return now - self.last >= self.settle or now - self.first >= self.max_delay

    def take(self) -> tuple[str, ...]:
        """The changed paths, sorted; the set is idle again."""
        paths = tuple(sorted(self.paths))
        self.first, self.paths = None, set()
        return paths


@dataclass(frozen=True, slots=True)
class Seen:
    """What a scan knew of one path: its signature and, for a regular file, its content checksum.

    ``racy``: modified so recently that a second write within the file system's timestamp
    granularity could leave the same signature (git's "racy clean" problem); hashed again.
    """

    signature: Signature
    digest: tuple[int, int] | None
    racy: bool = False


class Watcher:
    """Watch sets by key (a program, or a program's env files): files, folders (recursively,
    bounded) and globs (expanded again on each scan, so a new match is a change).

    The first scan is the baseline; each later scan compares content. Call ``poll`` whenever the
    loop wakes (at the latest at ``next_wakeup()``); it scans only when a scan is due.
    """

    def __init__(
        self,
        sets: Mapping[str, Sequence[str]],
        *,
        interval: float = INTERVAL,
        settle: float = SETTLE,
        max_delay: float = MAX_DELAY,
        idle_interval: float | None = None,
    ) -> None:
        self.interval = interval
        # Between changes, scan this seldom (inotify wakes the watcher for a change); None:
        # always every interval.
        self.idle_interval = idle_interval
        self._sets = {key: tuple(paths) for key, paths in sets.items()}
        self._debounce = {key: Debounce(settle, max_delay) for key in self._sets}
        self._members: dict[str, frozenset[str]] = {}
        self._seen: dict[str, Seen] = {}
        self._next_scan: float | None = None
        # Patterns whose walk hit MAX_DEPTH or MAX_FILES: the loop may log them once.
        self.truncated: set[str] = set()

    def next_wakeup(self) -> float | None:
        """When ``poll`` next has work (a scan); None before the first poll."""
        return self._next_scan

    def poll(self, now: float) -> dict[str, tuple[str, ...]]:
        """The watch sets whose debounced change is due now, with the paths that changed."""
        if self._next_scan is not None and now < self._next_scan:
            return {}
        baseline = self._next_scan is None
        changed = self._scan()
        due: dict[str, tuple[str, ...]] = {}
        for key, debounce in self._debounce.items():
            paths = changed.get(key)
            if paths and not baseline:
                debounce.seen(now, paths)
            if debounce.due(now):
                due[key] = debounce.take()
        pending = any(debounce.first is not None for debounce in self._debounce.values())
        idle = self.idle_interval if self.idle_interval is not None and not pending else None
        self._next_scan = now + (idle if idle is not None else self.interval)
        return due

    def wake(self, now: float) -> None:
        """Something may have changed (inotify said so): scan at the next poll, and keep
        scanning every interval until the change has settled."""
        if self._next_scan is not None:
            self._next_scan = min(self._next_scan, now)

    def _scan(self) -> dict[str, frozenset[str]]:
        """Paths that changed since the previous scan, per watch set."""
        stats: dict[str, os.stat_result | None] = {}
        members = {key: self._expand(patterns, stats) for key, patterns in self._sets.items()}
        racy_after = time.time_ns() - RACY_NS
        content_changed = {path for path in stats if self._refresh(path, stats[path], racy_after)}
        for gone in set(self._seen) - set(stats):
            del self._seen[gone]
        changed: dict[str, frozenset[str]] = {}
        for key, now_members in members.items():
            before = self._members.get(key, now_members)
            found = (now_members ^ before) | (now_members & content_changed)
            if found:
                changed[key] = found
        self._members = members
        return changed

    def _expand(
        self, patterns: Sequence[str], stats: dict[str, os.stat_result | None]
    ) -> frozenset[str]:
        """The files a watch set names now; stats (shared by every set) fills as it goes."""
        files: set[str] = set()
        for pattern in patterns:
            matches = sorted(glob.glob(pattern)) if is_glob(pattern) else [pattern]
            for path in matches:
                info = _stat(path, stats)
                if info is not None and stat.S_ISDIR(info.st_mode):
                    self._walk(pattern, path, files, stats)
                else:
                    files.add(path)
        return frozenset(files)

    def _walk(
        self, pattern: str, root: str, files: set[str], stats: dict[str, os.stat_result | None]
    ) -> None:
        # Symlinked folders are followed (Kubernetes' nested keys are links into ..data); the
        # (device, inode) set stops a link loop.
        visited: set[tuple[int, int]] = set()
        todo = [(root, 0)]
        while todo:
            folder, depth = todo.pop()
            info = stats.get(folder) or _stat(folder, stats)
            if info is None or (info.st_dev, info.st_ino) in visited:
                continue
            visited.add((info.st_dev, info.st_ino))
            try:
                names = sorted(e.name for e in os.scandir(folder))
            except OSError:
                continue
            for name in names:
                if name.startswith(RESERVED):
                    continue
                path = os.path.join(folder, name)
                entry = _stat(path, stats)
                if entry is not None and stat.S_ISDIR(entry.st_mode):
                    if depth + 1 < MAX_DEPTH:
                        todo.append((path, depth + 1))
                    else:
                        self.truncated.add(pattern)
                elif len(files) < MAX_FILES:
                    files.add(path)
                else:
                    self.truncated.add(pattern)

    def _refresh(self, path: str, info: os.stat_result | None, racy_after: int) -> bool:
        """Record what ``path`` holds now; True when its content differs from the last scan."""
        signature = _signature(info)
        before = self._seen.get(path)
        if before is not None and before.signature == signature and not before.racy:
            return False
        digest = _digest(path, info)
        racy = info is not None and info.st_mtime_ns >= racy_after
        self._seen[path] = Seen(signature, digest, racy)
        if before is None:
            return False
        if signature is None or before.signature is None or digest is None:
            return True
        return digest != before.digest


def _stat(path: str, stats: dict[str, os.stat_result | None]) -> os.stat_result | None:
    if path not in stats:
        try:
            stats[path] = os.stat(path)
        except OSError:
            stats[path] = None
    return stats[path]


def _signature(info: os.stat_result | None) -> Signature:
    if info is None:
        return None
    return (
        info.st_dev,
        info.st_ino,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
        info.st_mode,
    )


def _digest(path: str, info: os.stat_result | None) -> tuple[int, int] | None:
    """A regular file's content checksum and length; None when there is no content to compare
    (absent, not a regular file, too big, unreadable): then any signature change counts.

    CRC-32, not a cryptographic hash: it tells an edit from a rewrite of the same bytes, with
    no adversary to collide it, and hashlib would load OpenSSL (3.5 MiB) into PID 1.
    """
    if info is None or not stat.S_ISREG(info.st_mode) or info.st_size > MAX_HASHED:
        return None
    checksum = length = 0
    try:
        # O_NONBLOCK: a FIFO swapped in under the same name must not block the loop.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        while chunk := os.read(fd, 1 << 16):
            checksum = binascii.crc32(chunk, checksum)
            length += len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return checksum, length
