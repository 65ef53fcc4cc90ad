"""The dotenv format of ``roled_env_files``: a strict subset of what compose and python-dotenv read.

Pure: text in, variables out. An error names the file and the line, never the line's text: a
value may be a secret.
"""

from __future__ import annotations

import re

from roled.errors import RoledError

# POSIX portable names: what every shell and supervisord's environment= can pass on.
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# Inside double quotes; any other backslash stays as written, as it does in a POSIX shell.
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_BLANK = " \t"
# An inline comment after an unquoted value: '#' preceded by a space or a tab.
_INLINE_COMMENT = re.compile(r"[ \t]#")
# What may follow a closing quote on its line.
_AFTER_QUOTE = re.compile(r"[ \t]*(?:#.*)?\Z")


def parse_dotenv(text: str, source: str) -> dict[str, str]:
    """The variables a dotenv file sets, in file order; a name given twice keeps its last value.

    ``source`` names the file in errors: ``<source>, line <n>: <what is wrong>``.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    found: dict[str, str] = {}
    pos, line_no = 0, 1
    while pos < len(text):
        end = _line_end(text, pos)
        line = text[pos:end]
        body = line.lstrip(_BLANK)
        if not body or body.startswith("#"):
            pos, line_no = end + 1, line_no + 1
            continue
        name, value_at = _name(line, source, line_no)
        value, end = _value(text, pos + value_at, source, line_no)
        if "\0" in value:
            raise RoledError(f"{source}, line {line_no}: the value holds a NUL byte")
        found[name] = value
        line_no += text.count("\n", pos, end) + 1
        pos = end + 1
    return found


def _line_end(text: str, pos: int) -> int:
    end = text.find("\n", pos)
    return len(text) if end < 0 else end


def _name(line: str, source: str, line_no: int) -> tuple[str, int]:
    """The variable's name and where its value starts in the line."""
    body = line.lstrip(_BLANK)
    if body.startswith("export") and body[6:7] in (" ", "\t"):
        body = body[6:].lstrip(_BLANK)
    name, equals, _ = body.partition("=")
    if not equals:
        raise RoledError(f"{source}, line {line_no}: expected NAME=value")
    name = name.rstrip(_BLANK)
    if not NAME.match(name):
        raise RoledError(
            f"{source}, line {line_no}: invalid variable name "
            "(letters, digits and '_', not starting with a digit)"
        )
    value_at = line.index("=") + 1
    while value_at < len(line) and line[value_at] in _BLANK:
        value_at += 1
    return name, value_at


def _value(text: str, start: int, source: str, line_no: int) -> tuple[str, int]:
    """The value starting at ``start`` and the index of the newline (or end) that ends it."""
    quote = text[start : start + 1]
    if quote == "'":
        close = text.find("'", start + 1)
        if close < 0:
            raise RoledError(f"{source}, line {line_no}: unterminated single quote")
        return text[start + 1 : close], _rest_of_line(text, start, close + 1, source, line_no)
    if quote == '"':
        value, close = _double_quoted(text, start + 1, source, line_no)
        return value, _rest_of_line(text, start, close + 1, source, line_no)
    end = _line_end(text, start)
    if quote == "#" and text[start - 1] in _BLANK:
        return "", end
    raw = text[start:end]
    comment = _INLINE_COMMENT.search(raw)
    if comment:
        raw = raw[: comment.start()]
    return raw.rstrip(_BLANK), end


def _double_quoted(text: str, pos: int, source: str, line_no: int) -> tuple[str, int]:
    parts: list[str] = []
    while pos < len(text):
        char = text[pos]
        if char == '"':
            return "".join(parts), pos
        if char == "\\" and pos + 1 < len(text):
            escaped = text[pos + 1]
            parts.append(ESCAPES.get(escaped, char + escaped))
            pos += 2
            continue
        parts.append(char)
        pos += 1
    raise RoledError(f"{source}, line {line_no}: unterminated double quote")


def _rest_of_line(text: str, start: int, pos: int, source: str, line_no: int) -> int:
    """After a closing quote only blanks and a comment may follow; returns the line's end."""
    end = _line_end(text, pos)
    if not _AFTER_QUOTE.match(text, pos, end):
        # Name the line of the closing quote: a multi-line value starts lines earlier.
        closing = line_no + text.count("\n", start, pos)
        raise RoledError(f"{source}, line {closing}: unexpected text after the closing quote")
    return end
