"""The dotenv parser (pure): exact tables of what a file sets and which line an error names."""

from __future__ import annotations

import pytest

from roled.dotenv import parse_dotenv
from roled.errors import RoledError

PARSED = [
    ("A=1", {"A": "1"}),
    ("export A=1", {"A": "1"}),
    ("export\tA=1", {"A": "1"}),
    ("export=1", {"export": "1"}),
    ("  A  =  spaced  ", {"A": "spaced"}),
    ("A=", {"A": ""}),
    ("A=two words", {"A": "two words"}),
    ("A=value # comment", {"A": "value"}),
    ("A=value\t# comment", {"A": "value"}),
    ("A=#not-a-comment", {"A": "#not-a-comment"}),
    ("A=a#b", {"A": "a#b"}),
    ("A= # only a comment", {"A": ""}),
    ("A=it's", {"A": "it's"}),
    ('A=say "hi"', {"A": 'say "hi"'}),
    ("A=back\\slash", {"A": "back\\slash"}),
    ("A=$HOME ${HOME} $(id) `id`", {"A": "$HOME ${HOME} $(id) `id`"}),
    ("A='literal \\n $HOME # not a comment'", {"A": "literal \\n $HOME # not a comment"}),
    ("A=''", {"A": ""}),
    ("A='x' # comment", {"A": "x"}),
    ('A="x" # comment', {"A": "x"}),
    ('A="tab\\tnew\\nline\\rcr"', {"A": "tab\tnew\nline\rcr"}),
    ('A="\\"q\\" \\\\ \\$HOME"', {"A": '"q" \\ $HOME'}),
    ('A="C:\\temp\\x"', {"A": "C:\temp\\x"}),
    ('A="$HOME # kept"', {"A": "$HOME # kept"}),
    ("A='one\ntwo'", {"A": "one\ntwo"}),
    ('A="one\ntwo"\nB=2', {"A": "one\ntwo", "B": "2"}),
    ("A=1\nA=2", {"A": "2"}),
    ("# comment\n\n   \n  # indented comment\nA=1", {"A": "1"}),
    ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
    ("\ufeffA=1", {"A": "1"}),
    ("_x9=ok", {"_x9": "ok"}),
    ("A=a=b=c", {"A": "a=b=c"}),
    ("", {}),
]


@pytest.mark.parametrize(("text", "expected"), PARSED)
def test_parses(text: str, expected: dict[str, str]) -> None:
    """Each line form sets exactly the documented value."""
    assert parse_dotenv(text, "app.env") == expected


def test_keeps_file_order() -> None:
    """Variables come out in the order the file sets them."""
    assert list(parse_dotenv("B=1\nA=2\nC=3", "app.env")) == ["B", "A", "C"]


ERRORS = [
    ("A=1\nnot an assignment", "app.env, line 2: expected NAME=value"),
    ("export A", "app.env, line 1: expected NAME=value"),
    ("1A=x", "app.env, line 1: invalid variable name"),
    ("A-B=x", "app.env, line 1: invalid variable name"),
    ("A.B=x", "app.env, line 1: invalid variable name"),
    ("=x", "app.env, line 1: invalid variable name"),
    ("A B=x", "app.env, line 1: invalid variable name"),
    ("X=1\nA='open\n\n", "app.env, line 2: unterminated single quote"),
    ('A="open\nstill', "app.env, line 1: unterminated double quote"),
    ("A='a'b", "app.env, line 1: unexpected text after the closing quote"),
    ('A="one\ntwo" three', "app.env, line 2: unexpected text after the closing quote"),
    ("A=nul\0byte", "app.env, line 1: the value holds a NUL byte"),
    ('A="one\ntwo"\nB=ok\nbad', "app.env, line 4: expected NAME=value"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_name_the_line(text: str, message: str) -> None:
    """A bad line is one error naming the file and its line number."""
    with pytest.raises(RoledError) as caught:
        parse_dotenv(text, "app.env")
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    "text", ["hunter2-secret", "PW='hunter2-secret' x", 'PW="hunter2-secret', "1PW=hunter2-secret"]
)
def test_errors_never_show_the_value(text: str) -> None:
    """An error shows neither the value nor the line: it may hold a secret."""
    with pytest.raises(RoledError) as caught:
        parse_dotenv(text, "app.env")
    assert "hunter2" not in str(caught.value)
    assert "\n" not in str(caught.value)
