"""A small XML-RPC client for supervisord's unix socket: one kept-alive HTTP/1.1 connection.

roled runs as PID 1 for the container's whole life, so what it imports stays resident.
``xmlrpc.client`` brings ``http.client``, ``email`` and ``ssl`` (about 6 MiB); supervisord's
replies need only this: a POST, a Content-Length body, and a few XML-RPC value types.
"""

from __future__ import annotations

import binascii
import re
import socket
from collections.abc import Callable
from xml.parsers import expat

# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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


# The elements each element may contain; scalars contain text only. A response carries one
# param (supervisord never sends more) or one fault.
_CHILDREN: dict[str | None, frozenset[str]] = {
    None: frozenset({"methodResponse"}),
    "methodResponse": frozenset({"params", "fault"}),
    "params": frozenset({"param"}),
    "param": frozenset({"value"}),
    "fault": frozenset({"value"}),
    "value": frozenset(
        {
            "string",
            "int",
            "i1",
            "i2",
            "i4",
            "i8",
            "biginteger",
            "boolean",
            "double",
            "float",
            "nil",
            "base64",
            "dateTime.iso8601",
            "array",
            "struct",
        }
    ),
    "array": frozenset({"data"}),
    "data": frozenset({"value"}),
    "struct": frozenset({"member"}),
    "member": frozenset({"name", "value"}),
}


def _boolean(text: str) -> bool:
    if text not in ("0", "1"):
        raise ValueError(f"bad boolean {text!r}")
    return text == "1"


def _nil(text: str) -> None:
    if text.strip():
        raise ValueError("nil with content")


_BASE64 = re.compile("[A-Za-z0-9+/]*={0,2}")


def _base64(text: str) -> bytes:
    # Stricter than xmlrpc.client, which skips stray characters: only line breaks are allowed.
    # binascii, not base64: the module would weigh on PID 1 for two calls.
    data = "".join(text.split())
    if not _BASE64.fullmatch(data):
        raise ValueError("not base64")
    return binascii.a2b_base64(data)


def _datetime(text: str) -> object:
    # Imported when met: supervisord never sends one, and PID 1 keeps what it imports.
    import datetime  # noqa: PLC0415

    # What xmlrpc.client.loads(..., use_builtin_types=True) returns: a naive datetime.
    return datetime.datetime.strptime(text, "%Y%m%dT%H:%M:%S")


class _Name(str):
    """A member's name, told apart from a string value so that order can be checked."""

    __slots__ = ()


# Each scalar element read as xmlrpc.client reads it (int() and float() accept what it accepts).
_SCALARS: dict[str, Callable[[str], object]] = {
    "string": str,
    "name": _Name,
    "int": int,
    "i1": int,
    "i2": int,
    "i4": int,
    "i8": int,
    "biginteger": int,
    "boolean": _boolean,
    "double": float,
    "float": float,
    "nil": _nil,
    "base64": _base64,
    "dateTime.iso8601": _datetime,
}


def _no_text(text: str) -> None:
    if text.strip():
        raise ValueError("text beside elements")


def _only(children: list[Any]) -> Any:
    if len(children) != 1:
        raise ValueError(f"{len(children)} elements inside, expected 1")
    return children[0]


def _single(children: list[Any], text: str) -> Any:
    _no_text(text)
    return _only(children)


def _value(children: list[Any], text: str) -> Any:
    # A value without a type element is a string.
    return _single(children, text) if children else text


def _data(children: list[Any], text: str) -> list[Any]:
    _no_text(text)
    return children


def _struct(children: list[Any], text: str) -> dict[str, Any]:
    _no_text(text)
    return dict(children)


def _member(children: list[Any], text: str) -> tuple[str, Any]:
    _no_text(text)
    if len(children) != 2:
        raise ValueError(f"{len(children)} elements inside, expected 2")
    name, value = children
    if not isinstance(name, _Name):
        raise ValueError("a member's <name> comes first")
    return (str(name), value)


def _fault_element(children: list[Any], text: str) -> _Fault:
    return _Fault(_fault(_single(children, text)))


def _scalar(read: Callable[[str], object]) -> Callable[[list[Any], str], object]:
    # A scalar has no children: start() refuses any element inside one.
    return lambda _children, text: read(text)


_NOTHING: frozenset[str] = frozenset()

# How each element's value is made from its children's values and its text. One function per
# tag, looked up once per element: a 200-process answer has over 100,000 elements.
_VALUES: dict[str, Callable[[list[Any], str], Any]] = {
    **{tag: _scalar(read) for tag, read in _SCALARS.items()},
    "value": _value,
    "member": _member,
    "struct": _struct,
    "data": _data,
    "array": _single,
    "param": _single,
    "params": _single,
    "methodResponse": _single,
    "fault": _fault_element,
}


class _Decoder:
    """Builds Python values from a methodResponse with expat, checking every element's place.

    Anything that is not XML-RPC as supervisord writes it raises RpcError: an unknown or
    misplaced element, text where elements belong, a scalar that does not parse, a member
    without a name or a value. Values are what ``xmlrpc.client.loads(body,
    use_builtin_types=True)`` returns for the same reply.
    """

    def __init__(self) -> None:
        # The open elements, innermost last: each its tag, its children's values, its text.
        # One small list per element: an object with attributes cost a third more.
        self.open: list[list[Any]] = [[None, [], ""]]

    def start(self, tag: str, _attrs: dict[str, str]) -> None:
        parent = self.open[-1][0]
        if tag not in _CHILDREN.get(parent, _NOTHING):
            where = f"in <{parent}>" if parent else "as the document"
            raise RpcError(f"malformed XML-RPC reply: unexpected <{tag}> {where}")
        self.open.append([tag, [], ""])

    def data(self, text: str) -> None:
        self.open[-1][2] += text

    def end(self, tag: str) -> None:
        _tag, children, text = self.open.pop()
        try:
            value = _VALUES[tag](children, text)
        except (ValueError, TypeError, UnicodeError, OverflowError) as exc:
            raise RpcError(f"malformed XML-RPC reply: bad <{tag}>: {exc}") from exc
        self.open[-1][1].append(value)

    def result(self) -> Any:
        """The document's single value (a _Fault for a fault)."""
        (_tag, children, _text) = self.open[0]
        if len(children) != 1:
            raise RpcError("malformed XML-RPC reply: no methodResponse")
        return children[0]


class _Fault(Exception):
    """The fault a reply carries, on its way out of the decoder."""

    def __init__(self, fault: Fault) -> None:
        super().__init__(str(fault))
        self.fault = fault


def _fault(value: object) -> Fault:
    # xmlrpc.client builds Fault(**struct): exactly these two members.
    if not isinstance(value, dict) or set(value) != {"faultCode", "faultString"}:
        raise ValueError("a fault is a struct of faultCode and faultString")
    code, text = value["faultCode"], value["faultString"]
    if type(code) is not int or not isinstance(text, str):
        raise ValueError("faultCode is an int and faultString a string")
    return Fault(code, text)


def decode_response(body: bytes) -> Any:
    """The single value of a methodResponse, or the Fault it carries; RpcError when malformed."""
    decoder = _Decoder()
    parser = expat.ParserCreate()
    # Text comes in one call per run instead of one per line or entity.
    parser.buffer_text = True
    parser.StartElementHandler = decoder.start
    parser.EndElementHandler = decoder.end
    parser.CharacterDataHandler = decoder.data
    parser.StartDoctypeDeclHandler = _refuse_doctype
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise RpcError(f"malformed XML-RPC reply: {exc}") from exc
    result = decoder.result()
    if isinstance(result, _Fault):
        raise result.fault
    return result


def _refuse_doctype(*_args: object) -> None:
    # supervisord never sends one; entity declarations are how XML bombs are built.
    raise RpcError("malformed XML-RPC reply: a document type declaration")


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
            token = binascii.b2a_base64(f"{username}:{password}".encode(), newline=False).decode()
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
        try:
            return decode_response(reply)
        except RpcError:
            # A peer that sends nonsense is not trusted with the next request either.
            self.close()
            raise

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
        length = headers.get("content-length", "")
        if not (length.isascii() and length.isdigit()):
            raise RpcError(f"reply without a valid Content-Length ({length!r})")
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
