"""Runtime-directory and socket security: nothing planted is used, nothing private leaks, no port.

The link, foreign-uid and open-mode refusals are in test_bad_input.py; these extend them.
"""

from __future__ import annotations

import json
import socket
import stat
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from roled.assemble import Control
from roled.supervisor import Client, Unavailable
from tests.conftest import Layout, Roled, listening, program, wait_until
from tests.integration.test_bad_input import run_roled

Start = Callable[..., Roled]


def sleeper(name: str) -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n"


class PlantedServer:
    """A live unix server someone planted at a path; counts every connection it receives."""

    def __init__(self, path: Path) -> None:
        self.connections = 0
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def planted(short_tmp: Path) -> Iterator[Callable[[Path], PlantedServer]]:
    servers: list[PlantedServer] = []

    def plant(path: Path) -> PlantedServer:
        servers.append(PlantedServer(path))
        return servers[-1]

    yield plant
    for server in servers:
        server.close()


def test_planted_socket_is_never_connected_to(
    layout: Layout, start_roled: Start, short_tmp: Path, planted: Callable[[Path], PlantedServer]
) -> None:
    """A live server planted at <runtime>/supervisor.sock in a 0700 dir never gets a connection."""
    layout.role("web", sleeper("web"))
    runtime = short_tmp / "planted"
    runtime.mkdir(mode=0o700)
    server = planted(runtime / "supervisor.sock")
    roled = start_roled(layout, roles="web", runtime_dir=runtime)
    roled.wait_states({"web": "RUNNING"})
    roled.send(15)
    assert roled.wait() == 0
    assert server.connections == 0


def test_planted_socket_would_be_used_by_a_naive_client(
    short_tmp: Path, planted: Callable[[Path], PlantedServer]
) -> None:
    """Negative control: a client that trusts the path connects to the planted server."""
    path = short_tmp / "supervisor.sock"
    server = planted(path)
    client = Client(Control(path, "roled", "secret"), timeout=2)
    with pytest.raises(Unavailable):
        client.state()
    client.close()
    wait_until(lambda: server.connections == 1, what="the planted server to be reached")


def test_planted_links_in_the_runtime_dir_are_not_followed(
    layout: Layout, start_roled: Start, short_tmp: Path
) -> None:
    """Links planted in a reused runtime dir under roled's file names never redirect a write."""
    layout.role("web", sleeper("web"))
    runtime = short_tmp / "reused"
    runtime.mkdir(mode=0o700)
    victim_dir = short_tmp / "victim"
    victim_dir.mkdir()
    victim = victim_dir / "file"
    victim.write_text("untouched")
    names = ["supervisord.conf", "instance.json", "events", "supervisord.pid", "supervisor.sock"]
    for name in names:
        (runtime / name).symlink_to(victim)
    (runtime / "logs").symlink_to(victim_dir)
    roled = start_roled(layout, roles="web", runtime_dir=runtime)
    roled.wait_states({"web": "RUNNING"})
    assert not any((runtime / name).is_symlink() for name in [*names, "logs"])
    roled.send(15)
    assert roled.wait() == 0
    assert victim.read_text() == "untouched"
    assert sorted(path.name for path in victim_dir.iterdir()) == ["file"]


def test_planted_lock_link_is_refused(layout: Layout, short_tmp: Path) -> None:
    """A link planted as the lock file is not followed: exit 2, its target untouched."""
    layout.role("web", sleeper("web"))
    runtime = short_tmp / "reused"
    runtime.mkdir(mode=0o700)
    victim = short_tmp / "victim"
    (runtime / "lock").symlink_to(victim)
    result = run_roled(layout, runtime, ROLES="web")
    assert result.returncode == 2
    assert "cannot create lock file" in result.stderr
    assert not victim.exists()


def test_runtime_dir_that_is_a_file_is_refused(layout: Layout, short_tmp: Path) -> None:
    """A plain file where the runtime directory goes is refused and left as it was."""
    layout.role("web", sleeper("web"))
    runtime = short_tmp / "rt"
    runtime.write_text("mine")
    result = run_roled(layout, runtime, ROLES="web")
    assert result.returncode == 2
    assert "not a real directory" in result.stderr
    assert runtime.read_text() == "mine"


@pytest.mark.parametrize("mode", [0o710, 0o701, 0o770, 0o1777])
def test_runtime_dir_open_to_group_or_others_is_refused(
    layout: Layout, short_tmp: Path, mode: int
) -> None:
    """Any group or other bit, even execute only, makes the runtime dir unusable."""
    layout.role("web", sleeper("web"))
    runtime = short_tmp / "rt"
    runtime.mkdir()
    runtime.chmod(mode)
    result = run_roled(layout, runtime, ROLES="web")
    assert result.returncode == 2
    assert f"has mode {mode & 0o7777:04o}, expected 0700" in result.stderr


def _instance(roled: Roled) -> dict[str, str]:
    return dict(json.loads((roled.runtime_dir / "instance.json").read_text()))


def test_control_socket_is_private_with_fresh_secret_credentials(
    layout: Layout, start_roled: Start
) -> None:
    """Socket 0700 in a 0700 dir, credentials new on each start, never printed or stored plain."""
    layout.role("web", sleeper("web"))
    passwords = []
    for _ in range(2):
        roled = start_roled(layout, roles="web")
        roled.wait_states({"web": "RUNNING"})
        instance = _instance(roled)
        sock = Path(instance["socket"])
        assert sock.parent == roled.runtime_dir
        assert stat.S_ISSOCK(sock.lstat().st_mode)
        assert stat.S_IMODE(sock.lstat().st_mode) == 0o700
        assert stat.S_IMODE(roled.runtime_dir.lstat().st_mode) == 0o700
        assert stat.S_IMODE((roled.runtime_dir / "instance.json").lstat().st_mode) == 0o600
        password = instance["password"]
        assert len(password) >= 32
        assert password not in (roled.runtime_dir / "supervisord.conf").read_text()
        # Without the credentials supervisord refuses the call.
        anonymous = Client(Control(sock, None, None), timeout=5)
        with pytest.raises(Unavailable, match="401"):
            anonymous.state()
        wrong = Client(Control(sock, "roled", password[::-1]), timeout=5)
        with pytest.raises(Unavailable, match="401"):
            wrong.state()
        roled.send(15)
        assert roled.wait() == 0
        assert password not in roled.stdout + roled.stderr
        passwords.append(password)
    assert passwords[0] != passwords[1]


def test_no_port_is_opened_unless_the_config_asks(layout: Layout, start_roled: Start) -> None:
    """No process of roled's tree listens on TCP or UDP with a config that asks for none."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    assert listening(roled.tree()) == []
    roled.send(15)
    assert roled.wait() == 0


def test_inet_http_server_of_the_users_config_does_listen(
    layout: Layout, start_roled: Start
) -> None:
    """Negative control: a user's [inet_http_server] on loopback listens, and the check sees it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    layout.write_main(
        f"[supervisord]\n[inet_http_server]\nport=127.0.0.1:{port}\nusername=u\npassword=p\n"
    )
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    found = listening(roled.tree())
    assert [address.port for _, address in found] == [port]  # type: ignore[attr-defined]
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
    roled.send(15)
    assert roled.wait() == 0
