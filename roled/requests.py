"""roled's request channel for ``roled status`` and ``roled ctl tail``, ``clear`` and
``maintail``: a unix socket in the runtime directory (0600), served from the main loop's
selector; only a status request waits, for supervisord's answer, within its own timeout.

Every socket is non-blocking; the loop calls ``on_ready`` with what its selector saw. A follower
(``tail -f``) gets new lines as the log reader adds them (it wakes the loop through a pipe); a
client that does not read them fast enough is dropped, so memory per client stays bounded.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from roled import log
from roled.tails import Answer, BadRequest, Buffers, Request, answer, parse_request

# A request is one short line; more without a newline is not a request.
MAX_REQUEST = 4096
# Bytes waiting for one client past which it is dropped as too slow.
CLIENT_LIMIT = 1 << 20
# Clients served at once; more are turned away (the socket is root's alone, 0600).
MAX_CLIENTS = 32


@dataclass(slots=True)
class _Client:
    sock: socket.socket
    request: bytes = b""
    out: bytearray = field(default_factory=bytearray)
    follow: tuple[str, str] | None = None
    offset: int = 0
    done: bool = False


class RequestServer:
    """The socket, its clients, and the wake pipe the log reader writes to for followers."""

    def __init__(
        self,
        path: Path,
        buffers: Buffers,
        selector: selectors.BaseSelector,
        status: Callable[[Request], bytes],
    ) -> None:
        self.path = path
        self.buffers = buffers
        self.selector = selector
        # What ``roled status`` is answered: the runner's, which knows supervisord.
        self.status = status
        self.clients: dict[int, _Client] = {}
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.listener.bind(str(path))
            os.chmod(path, 0o600)
            self.listener.listen(8)
        except OSError:
            self.listener.close()
            raise
        self.listener.setblocking(False)
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        buffers.wake = self._wake
        selector.register(self.listener, selectors.EVENT_READ, self)
        selector.register(self._wake_r, selectors.EVENT_READ, self)

    def _wake(self) -> None:
        # Called by the log reader thread; a full pipe already means "wake up".
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"\0")

    def on_ready(self, fd: int, events: int) -> None:
        """Serve what the selector saw on one of this server's descriptors."""
        if fd == self.listener.fileno():
            self._accept()
        elif fd == self._wake_r:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 4096):
                    pass
            for client in list(self.clients.values()):
                self._feed(client)
        elif fd in self.clients:
            client = self.clients[fd]
            if events & selectors.EVENT_READ:
                self._receive(client)
            if fd in self.clients and events & selectors.EVENT_WRITE:
                self._send(client)

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning(f"ctl request channel: {exc.strerror}")
                return
            if len(self.clients) >= MAX_CLIENTS:
                sock.close()
                continue
            sock.setblocking(False)
            self.clients[sock.fileno()] = _Client(sock)
            self.selector.register(sock, selectors.EVENT_READ, self)

    def _receive(self, client: _Client) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            # The client went away (a follower's Ctrl-C).
            self._drop(client)
            return
        if client.done or client.follow is not None:
            return
        client.request += data
        line, newline, _ = client.request.partition(b"\n")
        if not newline:
            if len(client.request) > MAX_REQUEST:
                self._reply(client, Answer("error", "request too long"), b"")
            return
        try:
            request = parse_request(line)
        except BadRequest as exc:
            self._reply(client, Answer("error", str(exc)), b"")
            return
        if request.op == "status":
            self._reply(client, Answer("ok"), self.status(request))
            return
        if request.follow:
            # Before the answer is read: no line added meanwhile goes without a wake-up.
            self.buffers.following = True
        reply, data, follow = answer(self.buffers, request)
        if follow is not None:
            client.follow, client.offset = follow
        else:
            self.buffers.following = any(each.follow for each in self.clients.values())
        self._reply(client, reply, data)

    def _reply(self, client: _Client, reply: Answer, data: bytes) -> None:
        client.done = True
        client.out += reply.encode() + data
        self._send(client)

    def _feed(self, client: _Client) -> None:
        if client.follow is None:
            return
        data, client.offset = self.buffers.since(client.follow, client.offset)
        if not data:
            return
        client.out += data
        if len(client.out) > CLIENT_LIMIT:
            # Holding more would let one stalled terminal grow PID 1 without bound.
            self._drop(client)
            return
        self._send(client)

    def _send(self, client: _Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self._drop(client)
            return
        del client.out[:sent]
        if not client.out and client.follow is None:
            self._drop(client)
            return
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.out else 0)
        self.selector.modify(client.sock, wanted, self)

    def _drop(self, client: _Client) -> None:
        fd = client.sock.fileno()
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(client.sock)
        client.sock.close()
        self.clients.pop(fd, None)
        self.buffers.following = any(each.follow for each in self.clients.values())

    def close(self) -> None:
        """Drop every client and remove the socket."""
        for client in list(self.clients.values()):
            self._drop(client)
        for item in (self.listener, self._wake_r):
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(item)
        self.buffers.wake = None
        self.listener.close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
