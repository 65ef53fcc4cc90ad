"""The file watcher: debounce as an exact table, and real files changed the ways Kubernetes and
editors change them (the test drives poll() with explicit times)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roled.watch import MAX_DEPTH, Debounce, Watcher
from tests.atomic_writer import atomic_write

# (time, paths a scan saw change) -> what due() says right after
DEBOUNCE_TABLE = [
    (0.0, {"a"}, False),  # first change seen
    (0.3, set(), False),  # still within settle of the last change
    (0.5, set(), True),  # still for 0.5 s: act
]
BURST_TABLE = [
    (0.0, {"a"}, False),
    (0.4, {"a"}, False),
    (0.8, {"b"}, False),
    (1.2, {"a"}, False),
    (1.6, {"a"}, False),
    (2.0, {"a"}, True),  # still changing, but 2 s after the first: act anyway
]


@pytest.mark.parametrize("table", [DEBOUNCE_TABLE, BURST_TABLE])
def test_debounce_table(table: list[tuple[float, set[str], bool]]) -> None:
    """A burst is one action: once still for 0.5 s, at most 2 s after the first change."""
    debounce = Debounce(settle=0.5, max_delay=2.0)
    for now, paths, due in table:
        if paths:
            debounce.seen(now, paths)
        assert debounce.due(now) is due, now
    assert debounce.take() == tuple(sorted(set().union(*(p for _, p, _ in table))))
    assert not debounce.due(10.0)


def watcher(sets: dict[str, list[str]]) -> Watcher:
    return Watcher(sets, interval=1.0, settle=0.5, max_delay=2.0)


def run(w: Watcher, start: float, end: float, step: float = 0.5) -> list[tuple[float, dict]]:
    """Poll at each step; the actions returned, with their time."""
    actions = []
    now = start
    while now <= end + 1e-9:
        found = w.poll(now)
        if found:
            actions.append((now, found))
        now += step
    return actions


def test_first_poll_is_the_baseline_and_scans_follow_the_interval(tmp_path: Path) -> None:
    """Nothing is reported at the baseline; between scans poll() does nothing."""
    conf = tmp_path / "app.conf"
    conf.write_text("a")
    w = watcher({"web": [str(conf)]})
    assert w.next_wakeup() is None
    assert w.poll(0.0) == {}
    assert w.next_wakeup() == 1.0
    conf.write_text("b")
    assert w.poll(0.5) == {}  # not due: no scan
    assert w.poll(1.0) == {}  # change seen, not yet still
    assert w.poll(2.0) == {"web": (str(conf),)}
    assert w.poll(3.0) == {}


def test_same_content_is_no_change(tmp_path: Path) -> None:
    """touch, or rewriting the same bytes, changes the stat signature but not the content."""
    conf = tmp_path / "app.conf"
    conf.write_text("same")
    w = watcher({"web": [str(conf)]})
    w.poll(0.0)
    conf.write_text("same")
    os.utime(conf, (1, 1))
    assert run(w, 1.0, 5.0) == []


def test_write_in_place_with_same_size_and_time_is_seen(tmp_path: Path) -> None:
    """Content is what counts: same size and mtime, different bytes, is a change."""
    conf = tmp_path / "app.conf"
    conf.write_text("aaaa")
    w = watcher({"web": [str(conf)]})
    w.poll(0.0)
    stamp = conf.stat().st_mtime_ns
    conf.write_text("bbbb")
    os.utime(conf, ns=(stamp, stamp))
    assert run(w, 1.0, 3.0) == [(2.0, {"web": (str(conf),)})]


def test_replace_by_rename_is_seen(tmp_path: Path) -> None:
    """An editor or a deploy tool writes a new file and renames it over the old one."""
    conf = tmp_path / "app.conf"
    conf.write_text("v1")
    w = watcher({"web": [str(conf)]})
    w.poll(0.0)
    fresh = tmp_path / ".app.conf.tmp"
    fresh.write_text("v2")
    fresh.rename(conf)
    assert run(w, 1.0, 3.0) == [(2.0, {"web": (str(conf),)})]


def test_kubelet_data_swap_is_one_change_of_the_changed_file_only(tmp_path: Path) -> None:
    """A real ..data swap: the changed key's file is reported once, an unchanged one is not."""
    volume = tmp_path / "config"
    volume.mkdir()
    atomic_write(volume, {"app.conf": b"v1", "other.conf": b"same"})
    app, other = str(volume / "app.conf"), str(volume / "other.conf")
    w = watcher({"web": [app], "worker": [other], "folder": [str(volume)]})
    w.poll(0.0)
    atomic_write(volume, {"app.conf": b"v2", "other.conf": b"same"})
    internals = sorted(n for n in os.listdir(volume) if n.startswith(".."))
    assert len(internals) == 2
    assert internals[0].startswith("..2")
    assert internals[1] == "..data"
    assert run(w, 1.0, 6.0) == [(2.0, {"web": (app,), "folder": (app,)})]


def test_kubelet_swap_adding_and_removing_keys_changes_the_folder(tmp_path: Path) -> None:
    """A key added or removed from a ConfigMap is a change of the watched folder."""
    volume = tmp_path / "config"
    volume.mkdir()
    atomic_write(volume, {"a.conf": b"1", "nested/b.conf": b"2"})
    w = watcher({"folder": [str(volume)]})
    w.poll(0.0)
    atomic_write(volume, {"nested/b.conf": b"3", "c.conf": b"4"})
    expected = tuple(str(volume / n) for n in ("a.conf", "c.conf", "nested/b.conf"))
    assert run(w, 1.0, 4.0) == [(2.0, {"folder": expected})]


def test_burst_of_50_writes_is_one_action(tmp_path: Path) -> None:
    """50 writes spread over the scans of 1.5 s give exactly one action."""
    conf = tmp_path / "app.conf"
    conf.write_text("0")
    w = watcher({"web": [str(conf)]})
    w.poll(0.0)
    actions = []
    for i in range(1, 51):
        conf.write_text(str(i))
        now = 1.0 + (i - 1) * 0.03
        if found := w.poll(now):
            actions.append((now, found))
    actions += run(w, 2.5, 8.0)
    # Scans at 1.0 and 2.02 see writes; the scan at 3.5 sees none: still, so act once.
    assert actions == [(3.5, {"web": (str(conf),)})]


def test_globs_are_expanded_on_each_scan(tmp_path: Path) -> None:
    """A new file matching the glob is a change; a removed one too; others are ignored."""
    (tmp_path / "a.conf").write_text("a")
    (tmp_path / "notes.txt").write_text("n")
    w = watcher({"nginx": [str(tmp_path / "*.conf")]})
    w.poll(0.0)
    (tmp_path / "b.conf").write_text("b")
    (tmp_path / "notes.txt").write_text("changed")
    assert run(w, 1.0, 2.0) == [(2.0, {"nginx": (str(tmp_path / "b.conf"),)})]
    (tmp_path / "a.conf").unlink()
    assert run(w, 3.0, 4.0) == [(4.0, {"nginx": (str(tmp_path / "a.conf"),)})]


def test_missing_file_appearing_and_vanishing(tmp_path: Path) -> None:
    """A watched file that does not exist yet is a change when it appears, and when it goes."""
    conf = tmp_path / "late.conf"
    w = watcher({"web": [str(conf)]})
    w.poll(0.0)
    conf.write_text("here")
    assert run(w, 1.0, 2.0) == [(2.0, {"web": (str(conf),)})]
    conf.unlink()
    assert run(w, 3.0, 4.0) == [(4.0, {"web": (str(conf),)})]


def test_folder_walk_follows_links_skips_loops_and_is_bounded(tmp_path: Path) -> None:
    """A symlinked folder is followed, a link loop is walked once, depth is bounded."""
    root = tmp_path / "root"
    deep = root.joinpath(*[f"d{i}" for i in range(MAX_DEPTH + 1)])
    deep.mkdir(parents=True)
    (deep / "too-deep.conf").write_text("x")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "linked.conf").write_text("1")
    (root / "link").symlink_to(elsewhere)
    (root / "loop").symlink_to(root)
    w = watcher({"tree": [str(root)]})
    w.poll(0.0)
    assert w.truncated == {str(root)}
    (elsewhere / "linked.conf").write_text("2")
    (deep / "too-deep.conf").write_text("y")
    assert run(w, 1.0, 2.0) == [(2.0, {"tree": (str(root / "link" / "linked.conf"),)})]


def test_unreadable_and_special_files_compare_by_signature(tmp_path: Path) -> None:
    """A FIFO is never opened for reading in a way that blocks; its signature still counts."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    w = watcher({"web": [str(fifo)]})
    w.poll(0.0)
    os.utime(fifo, (5, 5))
    assert run(w, 1.0, 2.0) == [(2.0, {"web": (str(fifo),)})]
