"""roled's XML-RPC codec agrees with the standard library's on everything supervisord sends,
and anything else is the client's own error."""

from __future__ import annotations

import contextlib
import datetime
import socket
import threading
import xmlrpc.client
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roled.model import Control
from roled.rpc import Fault, RpcError, decode_response, encode_call
from roled.supervisor import Client, ProcessInfo, Unavailable

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")))
# What supervisord's replies are made of: strings, ints, booleans, lists and structs.
scalars = st.one_of(
    TEXT,
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.booleans(),
)
# Everything else xmlrpc.client's marshaller (supervisord's) can write.
every_scalar = st.one_of(
    scalars,
    st.none(),
    st.floats(allow_nan=False),
    st.binary(),
    st.datetimes(min_value=datetime.datetime(1000, 1, 1)).map(
        lambda moment: moment.replace(microsecond=0)
    ),
)


def nested(leaves: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Leaves, and arrays and structs of them, as deep as a reply may nest them."""
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(st.text(alphabet="abcdefghij_", min_size=1), children, max_size=4),
        ),
        max_leaves=20,
    )


values = nested(scalars)


@settings(max_examples=200, deadline=None)
@given(values)
def test_decodes_what_the_standard_library_encodes(value: object) -> None:
    """Any reply value round-trips through xmlrpc.client.dumps and roled's decoder."""
    body = xmlrpc.client.dumps((value,), methodresponse=True).encode()
    assert decode_response(body) == value


every_value = nested(every_scalar)


def standard(body: bytes) -> Any:
    """What the standard library reads from a reply (bytes and datetimes as built-in types)."""
    ((value,), _method) = xmlrpc.client.loads(body, use_builtin_types=True)
    return value


@settings(max_examples=300, deadline=None)
@given(every_value)
def test_decodes_every_type_as_the_standard_library(value: object) -> None:
    """nil, double, base64 and dateTime decode to what xmlrpc.client.loads returns."""
    body = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()
    assert decode_response(body) == standard(body)


@pytest.mark.parametrize(
    ("element", "expected"),
    [
        ("<nil/>", None),
        ("<i4>-7</i4>", -7),
        ("<i8>9007199254740993</i8>", 9007199254740993),
        ("<double>2.5</double>", 2.5),
        ("<base64>aGk=</base64>", b"hi"),
        (
            "<dateTime.iso8601>20240229T23:59:01</dateTime.iso8601>",
            datetime.datetime(2024, 2, 29, 23, 59, 1),
        ),
        ("<boolean>0</boolean>", False),
        ("<string></string>", ""),
        ("", ""),
    ],
)
def test_each_type_decodes_exactly(element: str, expected: object) -> None:
    """Each type element gives the standard library's value and type, not a string."""
    body = respond(element)
    decoded = decode_response(body)
    assert (decoded, type(decoded)) == (expected, type(expected))
    assert decoded == standard(body)


def respond(element: str) -> bytes:
    return (
        "<?xml version='1.0'?><methodResponse><params><param><value>"
        f"{element}</value></param></params></methodResponse>"
    ).encode()


@pytest.mark.parametrize(
    "element",
    [
        "<bogus>1</bogus>",
        "<int>twelve</int>",
        "<int></int>",
        "<boolean>yes</boolean>",
        "<double>fast</double>",
        "<base64>!!!</base64>",
        "<base64>caf\u00e9</base64>",
        "<dateTime.iso8601>yesterday</dateTime.iso8601>",
        "<nil>x</nil>",
        "<int>1</int><int>2</int>",
        "text<int>1</int>",
        "<struct><member><name>a</name></member></struct>",
        "<struct><member><value>1</value><name>a</name></member></struct>",
        "<struct><member><name>a</name><value>1</value><value>2</value></member></struct>",
        "<struct><value>1</value></struct>",
        "<array><value>1</value></array>",
        "<array></array>",
        "<array><data><int>1</int></data></array>",
        "<string><int>1</int></string>",
        "<int>" + "9" * 5000 + "</int>",
    ],
)
def test_malformed_value_is_an_rpc_error(element: str) -> None:
    """A value that is not XML-RPC raises the client's error, never ValueError or KeyError."""
    with pytest.raises(RpcError):
        decode_response(respond(element.replace("\\u00e9", "\u00e9")))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<methodResponse/>",
        b"<methodResponse><params></params></methodResponse>",
        b"<methodResponse><params><param></param></params></methodResponse>",
        b"<methodResponse><params><param><value>a</value></param><param><value>b</value>"
        b"</param></params></methodResponse>",
        b"<methodCall><params/></methodCall>",
        b"<methodResponse><fault><value><string>oops</string></value></fault></methodResponse>",
        b"<methodResponse><fault><value><struct><member><name>faultCode</name><value>"
        b"<string>6</string></value></member><member><name>faultString</name><value>x</value>"
        b"</member></struct></value></fault></methodResponse>",
        b"<methodResponse><fault><value><struct></struct></value></fault></methodResponse>",
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa">]><methodResponse><params><param>'
        b"<value>&a;</value></param></params></methodResponse>",
        b"<methodResponse><params><param><value>1</value></param></params></methodResponse>x",
    ],
)
def test_malformed_reply_is_an_rpc_error_too(body: bytes) -> None:
    """A reply of the wrong shape, or a fault without its two members, is an RpcError."""
    with pytest.raises(RpcError):
        decode_response(body)


# Pieces of XML-RPC, shuffled into bodies that are sometimes well-formed and mostly not.
PIECES = st.sampled_from(
    [
        "<methodResponse>", "</methodResponse>", "<params>", "</params>", "<param>",
        "</param>", "<value>", "</value>", "<array>", "</array>", "<data>", "</data>",
        "<struct>", "</struct>", "<member>", "</member>", "<name>", "</name>", "<int>",
        "</int>", "<string>", "</string>", "<boolean>", "</boolean>", "<nil/>", "<double>",
        "</double>", "<base64>", "</base64>", "<dateTime.iso8601>", "</dateTime.iso8601>",
        "<fault>", "</fault>", "faultCode", "faultString", "1", "0", "-", "x", "aGk=",
        "20240101T00:00:00", " ", "&amp;", "<i8>", "</i8>", "<ex:nil/>",
    ]
)  # fmt: skip


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(PIECES, max_size=40))
def test_any_body_decodes_as_the_standard_library_or_raises_rpc_error(pieces: list[str]) -> None:
    """On any body the decoder returns what xmlrpc.client reads, or raises RpcError only."""
    body = "".join(pieces).encode()
    try:
        ours = outcome(decode_response, body)
    except RpcError:
        return
    assert ours == outcome(standard, body)


def outcome(decode: Callable[[bytes], object], body: bytes) -> object:
    """A decoded value, or a fault as (code, text), whichever library raised it."""
    try:
        return decode(body)
    except (Fault, xmlrpc.client.Fault) as fault:
        if isinstance(fault, Fault):
            return (fault.code, fault.text)
        return (fault.faultCode, fault.faultString)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_rpc_error(body: bytes) -> None:
    """Bytes that are not even XML raise RpcError, whatever they hold."""
    with pytest.raises(RpcError):
        decode_response(b"<methodResponse><params><param><value>" + body)


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"))), st.lists(values))
def test_calls_decode_with_the_standard_library(method: str, params: list[object]) -> None:
    """A call roled encodes is the call the standard library reads back."""
    decoded, name = xmlrpc.client.loads(encode_call(method, tuple(params)))
    assert (name, list(decoded)) == (method, params)


def test_fault_is_raised_with_code_and_text() -> None:
    """A fault reply becomes a Fault carrying supervisor's code."""
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(6, "SHUTDOWN_STATE")).encode()
    with pytest.raises(Fault) as info:
        decode_response(body)
    assert (info.value.code, info.value.text) == (6, "SHUTDOWN_STATE")


def test_untyped_value_is_a_string() -> None:
    """XML-RPC's bare <value>text</value> means a string."""
    body = (
        b"<methodResponse><params><param><value>RUNNING</value></param></params></methodResponse>"
    )
    assert decode_response(body) == "RUNNING"


def test_malformed_reply_is_an_rpc_error() -> None:
    """A truncated reply is reported, not a crash."""
    with pytest.raises(RpcError):
        decode_response(b"<methodResponse><params>")


PROCESS = {
    "group": "web",
    "name": "web",
    "state": 20,
    "pid": 42,
    "exitstatus": 0,
    "spawnerr": "",
    "description": "pid 42, uptime 0:00:01",
    "start": 1,
    "now": 2,
    "stdout_logfile": "",
    "stderr_logfile": "",
}
BROKEN_PROCESSES = [
    "not a struct",
    {key: value for key, value in PROCESS.items() if key != "state"},
    {**PROCESS, "state": "RUNNING"},
    {**PROCESS, "pid": True},
    {**PROCESS, "name": None},
    {**PROCESS, "group": ["web"]},
    {**PROCESS, "start": 1.5},
    {**PROCESS, "spawnerr": 0},
]


def test_process_info_reads_a_whole_answer() -> None:
    """A complete getProcessInfo struct becomes a ProcessInfo with every field."""
    info = ProcessInfo.from_rpc(PROCESS)
    assert (info.namespec, info.state, info.pid, info.statename) == ("web", 20, 42, "RUNNING")


@pytest.mark.parametrize("answer", BROKEN_PROCESSES)
def test_process_info_with_a_missing_key_or_wrong_type_is_an_rpc_error(answer: object) -> None:
    """A struct missing a key or holding a wrong type raises RpcError, not KeyError/ValueError."""
    with pytest.raises(RpcError):
        ProcessInfo.from_rpc(answer)


class FakeSupervisord:
    """A real HTTP server on a unix socket that answers every XML-RPC call with one body."""

    def __init__(self, path: Path, body: bytes) -> None:
        self.body = body
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                connection, _ = self.server.accept()
                with connection:
                    self._answer(connection)

    def _answer(self, connection: socket.socket) -> None:
        data = b""
        while b"\r\n\r\n" not in data:
            data += connection.recv(65536)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(body) < length:
            body += connection.recv(65536)
        reply = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(self.body) + self.body
        connection.sendall(reply)

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self.thread.join(timeout=5)


@contextlib.contextmanager
def client_answered_with(short_tmp: Path, value: object) -> Iterator[Client]:
    """A Client whose supervisord answers every call with value."""
    body = xmlrpc.client.dumps((value,), methodresponse=True, allow_none=True).encode()
    server = FakeSupervisord(short_tmp / "s.sock", body)
    client = Client(Control(short_tmp / "s.sock", None, None), timeout=5)
    try:
        yield client
    finally:
        client.close()
        server.close()


@pytest.mark.parametrize("answer", [*BROKEN_PROCESSES, None, "RUNNING", {"a": 1}])
def test_client_treats_a_malformed_process_list_as_supervisord_misbehaving(
    short_tmp: Path, answer: object
) -> None:
    """getAllProcessInfo answering nonsense is Unavailable: the loop's "supervisord misbehaves"."""
    with client_answered_with(short_tmp, [answer]) as client, pytest.raises(Unavailable):
        client.processes()


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (lambda client: client.state(), {"statecode": 1}),
        (lambda client: client.state(), [None]),
        (lambda client: client.process("web"), {"group": "web"}),
        (lambda client: client.reload_config(), [[["a"], ["b"]]]),
        (lambda client: client.reload_config(), [[["a"], ["b"], [3]]]),
        (lambda client: client.reload_config(), "no"),
        (lambda client: client.tail_stderr("web", 10), ["text", 0]),
        (lambda client: client.tail_stdout("web", 10), [None, 0, False]),
        (lambda client: client.stop_processes(["a", "b"]), [True]),
    ],
)
def test_every_client_call_turns_a_malformed_answer_into_unavailable(
    short_tmp: Path, call: Callable[[Client], object], answer: object
) -> None:
    """Each call checks its answer's shape; no KeyError or ValueError reaches the loop."""
    with client_answered_with(short_tmp, answer) as client, pytest.raises(Unavailable):
        call(client)


def test_client_reads_a_well_formed_process_list(short_tmp: Path) -> None:
    """The control case: the same server with a proper answer gives the processes."""
    with client_answered_with(short_tmp, [PROCESS]) as client:
        assert [info.namespec for info in client.processes()] == ["web"]
