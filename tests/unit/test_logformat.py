"""The log formats on whole chunks of lines, checked against json.loads and plain splitting."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from roled.logformat import Formatter, json_lines, utc_stamp

LINES = st.lists(st.binary(max_size=40).map(lambda raw: raw.replace(b"\n", b"")), min_size=1)


def chunk(lines: list[bytes]) -> bytes:
    return b"".join(line + b"\n" for line in lines)


@given(LINES)
def test_json_chunk_gives_one_object_per_line(lines: list[bytes]) -> None:
    """Any bytes give one parseable object a line, carrying the line decoded as UTF-8."""
    out = json_lines("web", "stderr", chunk(lines), 0.0)
    records = [json.loads(raw) for raw in out.split(b"\n")[:-1]]
    assert [record["line"] for record in records] == [
        line.decode("utf-8", "replace") for line in lines
    ]
    assert all(
        (record["program"], record["stream"], record["time"])
        == ("web", "stderr", "1970-01-01T00:00:00.000Z")
        for record in records
    )


@given(LINES)
def test_prefix_puts_the_padded_name_before_every_line(lines: list[bytes]) -> None:
    """Every line starts with the name padded to the widest known name, then ' | '."""
    formatter = Formatter.for_labels("prefix", ["web", "a-long-worker-name"])
    out = formatter.lines("web", "stdout", chunk(lines))
    assert out.split(b"\n")[:-1] == [b"web".ljust(18) + b" | " + line for line in lines]


def test_plain_leaves_lines_alone() -> None:
    """plain passes the bytes on untouched."""
    assert Formatter("plain").lines("web", "stdout", b"a\n\xff\n") == b"a\n\xff\n"


def test_own_lines_keep_their_plain_form_and_lose_the_name_elsewhere() -> None:
    """roled's lines read as before in plain, and the program column says roled elsewhere."""
    text = "roled: INFO exiting with code 0: stopped"
    assert Formatter("plain").own_line(text) == (text + "\n").encode()
    prefixed = Formatter.for_labels("prefix", []).own_line(text)
    assert prefixed == b"roled       | INFO exiting with code 0: stopped\n"
    record = json.loads(Formatter("json").own_line(text))
    assert (record["program"], record["stream"], record["line"]) == (
        "roled",
        "stderr",
        "INFO exiting with code 0: stopped",
    )


def test_time_is_utc_with_milliseconds() -> None:
    """The time field is RFC 3339 in UTC."""
    assert utc_stamp(86400.25) == "1970-01-02T00:00:00.250Z"
