"""roled's XML-RPC codec agrees with the standard library's on everything supervisord sends."""

from __future__ import annotations

import xmlrpc.client

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from roled.rpc import Fault, RpcError, decode_response, encode_call

# What supervisord's replies are made of: strings, ints, booleans, lists and structs.
scalars = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc"))),
    st.integers(min_value=-(2**31), max_value=2**31 - 1),
    st.booleans(),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(alphabet="abcdefghij_", min_size=1), children, max_size=4),
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(values)
def test_decodes_what_the_standard_library_encodes(value: object) -> None:
    """Any reply value round-trips through xmlrpc.client.dumps and roled's decoder."""
    body = xmlrpc.client.dumps((value,), methodresponse=True).encode()
    assert decode_response(body) == value


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
