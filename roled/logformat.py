"""How a line reaches the container's log: as is (``plain``), behind its program's name
(``prefix``), or as one JSON object (``json``). Pure: whole lines of bytes, a chunk at a time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass

FORMATS = ("plain", "prefix", "json")
ROLED = "roled"
SUPERVISORD = "supervisord"
# Bytes a JSON string may hold as they are: printable ASCII but '"' and '\', and every byte of
# (already validated) UTF-8. What is left after deleting them decides how a chunk is escaped.
_VERBATIM = bytes(b for b in range(0x20, 0x100) if b not in b'"\\')
# Escapes that bytes.replace() can apply to a whole chunk at C speed; '\' must go first.
_CHUNK_ESCAPES = ((b"\\", b"\\\\"), (b'"', b'\\"'), (b"\t", b"\\t"), (b"\r", b"\\r"))
_CHUNK_ESCAPABLE = frozenset(b'\n\\"\t\r')


def utc_stamp(now: float) -> str:
    """RFC 3339 in UTC with milliseconds, the form log collectors parse without configuration."""
    seconds = int(now)
    millis = int((now - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


@dataclass(frozen=True, slots=True)
class Formatter:
    """One log format; ``width`` aligns the ``prefix`` column over every known program name."""

    kind: str = "plain"
    width: int = 0

    @classmethod
    def for_labels(cls, kind: str, labels: Iterable[str]) -> Formatter:
        return cls(kind, max((len(label) for label in [ROLED, SUPERVISORD, *labels]), default=0))

    def lines(self, label: str, stream: str, data: bytes, now: float | None = None) -> bytes:
        """Whole lines (``data`` ends with a newline) in this format, still whole lines."""
        if self.kind == "prefix":
            prefix = self.prefix(label)
            return prefix + data[:-1].replace(b"\n", b"\n" + prefix) + b"\n"
        if self.kind == "json":
            return json_lines(label, stream, data, time.time() if now is None else now)
        return data

    def prefix(self, label: str) -> bytes:
        return f"{label.ljust(self.width)} | ".encode()

    def own_line(self, text: str, label: str = ROLED) -> bytes:
        """One of roled's own lines (``roled: LEVEL message``), in this format.

        In ``plain`` it stays as it always was; elsewhere the program column already says roled.
        """
        if self.kind != "plain":
            text = text.removeprefix(f"{label}: ")
        return self.lines(label, "stderr", text.encode("utf-8", "replace") + b"\n")


def json_lines(label: str, stream: str, data: bytes, now: float) -> bytes:
    """One JSON object per line; whole chunks are escaped with bytes.replace when they can be."""
    fields = (
        f'{{"time":"{utc_stamp(now)}","program":{json.dumps(label)},"stream":"{stream}",'
    ).encode()
    head = fields + b'"line":"'
    tail = b'"}\n'
    body = data[:-1]
    if _valid_utf8(body):
        rest = body.translate(None, _VERBATIM)
        # Usually only the newlines are left: no set() over thousands of them then.
        if rest.strip(b"\n") and not set(rest) <= _CHUNK_ESCAPABLE:
            return _json_each(fields, body)
        if rest.strip(b"\n"):
            for raw, escaped in _CHUNK_ESCAPES:
                body = body.replace(raw, escaped)
        return head + body.replace(b"\n", tail + head) + tail
    return _json_each(fields, body)


def _json_each(fields: bytes, body: bytes) -> bytes:
    # Other control bytes or invalid UTF-8 (replaced by U+FFFD): rare, so one line at a time.
    return b"".join(
        fields
        + b'"line":'
        + json.dumps(line.decode("utf-8", "replace"), ensure_ascii=False).encode()
        + b"}\n"
        for line in body.split(b"\n")
    )


def _valid_utf8(data: bytes) -> bool:
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
