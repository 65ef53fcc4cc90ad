"""A small XML-RPC client for supervisord's unix socket: one kept-alive HTTP/1.1 connection.

roled runs as PID 1 for the container's whole life, so what it imports stays resident.
``xmlrpc.client`` brings ``http.client``, ``email`` and ``ssl`` (about 6 MiB); supervisord's
replies need only this: a POST, a Content-Length body, and a few XML-RPC value types.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Callable
from typing import Any
from xml.parsers import expat

_HEADER_LIMIT = 65536


class RpcError(Exception):
    """The call could not be completed: no connection, a timeout, or a malformed reply."""


class Fault(Exception):
    """supervisord answered with an XML-RPC fault."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


def escape(text: str) -> str:
    """XML character data (xml.sax.saxutils would import urllib and http.client)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def encode_call(method: str, params: tuple[object, ...]) -> bytes:
    parts = [f"<?xml version='1.0'?><methodCall><methodName>{escape(method)}</methodName><params>"]
    for param in params:
        parts.append(f"<param><value>{_encode_value(param)}</value></param>")
    parts.append("</params></methodCall>")
    return "".join(parts).encode()


def _encode_value(value: object) -> str:
    if isinstance(value, bool):
        return f"<boolean>{int(value)}</boolean>"
    if isinstance(value, int):
        return f"<int>{value}</int>"
    if isinstance(value, str):
        return f"<string>{escape(value)}</string>"
    if isinstance(value, list):
        items = "".join(f"<value>{_encode_value(item)}</value>" for item in value)
        return f"<array><data>{items}</data></array>"
    if isinstance(value, dict):
        members = "".join(
            f"<member><name>{escape(str(key))}</name><value>{_encode_value(item)}</value></member>"
            for key, item in value.items()
        )
        return f"<struct>{members}</struct>"
    raise TypeError(f"cannot send {type(value).__name__} over XML-RPC")


class _Decoder:
    """Builds Python values from a methodResponse with expat, one element at a time."""

    def __init__(self) -> None:
        self.stack: list[Any] = []
        self.marks: list[int] = []
        self.text: list[str] = []
        self.typed = False
        self.fault = False
        self.result: Any = None

    def start(self, tag: str, _attrs: dict[str, str]) -> None:
        if tag in ("array", "struct"):
            self.marks.append(len(self.stack))
        elif tag == "value":
            self.typed = False
        elif tag == "fault":
            self.fault = True
        self.text = []

    def data(self, text: str) -> None:
        self.text.append(text)

    def end(self, tag: str) -> None:
        text = "".join(self.text)
        self.text = []
        converters: dict[str, Callable[[str], Any]] = {
            "string": str,
            "int": int,
            "i4": int,
            "i8": int,
            "boolean": lambda raw: raw.strip() == "1",
            "double": float,
            "name": str,
        }
        if tag in converters:
            self.stack.append(converters[tag](text))
            self.typed = tag != "name"
        elif tag == "value" and not self.typed:
            # A value without a type element is a string.
            self.stack.append(text)
            self.typed = True
        elif tag == "value":
            self.typed = True
        elif tag in ("array", "struct"):
            start = self.marks.pop()
            items = self.stack[start:]
            del self.stack[start:]
            if tag == "struct":
                self.stack.append(dict(zip(items[0::2], items[1::2], strict=True)))
            else:
                self.stack.append(items)
            self.typed = True


def decode_response(body: bytes) -> Any:
    """The single value of a methodResponse, or the Fault it carries."""
    decoder = _Decoder()
    parser = expat.ParserCreate()
    parser.StartElementHandler = decoder.start
    parser.EndElementHandler = decoder.end
    parser.CharacterDataHandler = decoder.data
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise RpcError(f"malformed XML-RPC reply: {exc}") from exc
    if len(decoder.stack) != 1:
        raise RpcError("malformed XML-RPC reply: expected one value")
    value = decoder.stack[0]
    if decoder.fault:
        raise Fault(int(value.get("faultCode", 0)), str(value.get("faultString", "")))
    return value


class Connection:
    """One unix-socket connection to supervisord, reopened after any failure."""

    def __init__(
        self, path: str, username: str | None, password: str | None, timeout: float
    ) -> None:
        self.path = path
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._auth = b""
        if username is not None and password is not None:
            token = base64.b64encode(f"{username}:{password}".encode()).decode()
            self._auth = f"Authorization: Basic {token}\r\n".encode()

    def call(self, method: str, *params: object) -> Any:
        """Call method; a connection problem closes the socket and raises RpcError."""
        body = encode_call(method, params)
        try:
            reply = self._exchange(body)
        except OSError as exc:
            self.close()
            raise RpcError(f"{type(exc).__name__}: {exc}") from exc
        except RpcError:
            self.close()
            raise
        return decode_response(reply)

    def _exchange(self, body: bytes) -> bytes:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(self.path)
            except OSError:
                sock.close()
                raise
            self._sock, self._buffer = sock, b""
        head = (
            b"POST /RPC2 HTTP/1.1\r\nHost: localhost\r\nContent-Type: text/xml\r\n"
            + self._auth
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
        )
        self._sock.sendall(head + body)
        status, headers = self._read_head()
        length = headers.get("content-length")
        if length is None:
            raise RpcError("reply without Content-Length")
        reply = self._read_exactly(int(length))
        if headers.get("connection", "").lower() == "close":
            self.close()
        if status != 200:
            raise RpcError(f"HTTP status {status}")
        return reply

    def _read_head(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self._buffer:
            if len(self._buffer) > _HEADER_LIMIT:
                raise RpcError("reply header too long")
            self._receive()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        try:
            status = int(status_line.split()[1])
        except (IndexError, ValueError) as exc:
            raise RpcError(f"bad status line {status_line!r}") from exc
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    def _read_exactly(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._receive()
        data, self._buffer = self._buffer[:count], self._buffer[count:]
        return data

    def _receive(self) -> None:
        assert self._sock is not None
        chunk = self._sock.recv(65536)
        if not chunk:
            raise RpcError("connection closed by supervisord")
        self._buffer += chunk

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        self._buffer = b""
