"""inotify as the watcher's trigger, on real folders: a change wakes it, quiet costs no scan."""

from __future__ import annotations

from pathlib import Path

import pytest

from roled.inotify import Inotify, folders_of
from roled.watch import Watcher
from tests.atomic_writer import atomic_write


@pytest.fixture
def inotify() -> Inotify:
    opened = Inotify.open()
    if opened is None:
        pytest.skip("inotify is not available here")
    return opened


def test_an_edit_in_place_is_an_event(tmp_path: Path, inotify: Inotify) -> None:
    """Writing a watched file makes the descriptor readable; nothing else does."""
    watched = tmp_path / "app.conf"
    watched.write_text("a=1\n")
    inotify.watch([str(watched)])
    assert not inotify.drain()
    watched.write_text("a=2\n")
    assert inotify.drain()
    assert not inotify.drain()
    inotify.close()


def test_the_kubelets_data_swap_is_an_event(tmp_path: Path, inotify: Inotify) -> None:
    """A ConfigMap update (the ..data link renamed over) wakes the watcher of a key file."""
    volume = tmp_path / "volume"
    volume.mkdir()
    atomic_write(volume, {"app.env": b"A=1\n"})
    inotify.watch([str(volume / "app.env")])
    assert not inotify.drain()
    atomic_write(volume, {"app.env": b"A=2\n"})
    assert inotify.drain()
    inotify.close()


def test_folders_cover_links_globs_and_subfolders(tmp_path: Path) -> None:
    """A file's folder and its link target's, a glob's base, and a watched folder's tree."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "x.conf").write_text("")
    (tmp_path / "link.conf").symlink_to(tmp_path / "real" / "x.conf")
    (tmp_path / "tree" / "sub").mkdir(parents=True)
    (tmp_path / "globbed").mkdir()
    folders = folders_of(
        [str(tmp_path / "link.conf"), str(tmp_path / "tree"), str(tmp_path / "globbed" / "*.c")]
    )
    assert folders == {
        str(tmp_path),
        str(tmp_path / "real"),
        str(tmp_path / "tree"),
        str(tmp_path / "tree" / "sub"),
        str(tmp_path / "globbed"),
    }


def test_watcher_scans_seldom_when_idle_and_at_once_when_woken(tmp_path: Path) -> None:
    """With an idle interval the next scan is far off; a wake-up brings it to now, and the
    fast interval holds until the change has settled and been acted on."""
    watched = tmp_path / "app.conf"
    watched.write_text("1")
    watcher = Watcher({"app": [str(watched)]}, idle_interval=30.0)
    assert watcher.poll(100.0) == {}
    assert watcher.next_wakeup() == 130.0
    watched.write_text("22")
    watcher.wake(100.2)
    assert watcher.next_wakeup() == 100.2
    assert watcher.poll(100.2) == {}
    assert watcher.next_wakeup() == 101.2
    assert watcher.poll(101.2) == {"app": (str(watched),)}
    assert watcher.next_wakeup() == 131.2
