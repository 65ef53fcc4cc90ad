"""Environment resolution, secrets masking and the issue-16 keys (pure, files read by a fake)."""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from supervisor.options import ServerOptions, UnhosedConfigParser

from roled.environ import (
    MAX_FILE_SIZE,
    Environment,
    read_file,
    resolve_environment,
    supervisor_environment,
    unpassable,
)
from roled.errors import RoledError
from roled.filekeys import (
    RESTART,
    OnChange,
    parse_env_files,
    parse_on_change,
    parse_watch,
)
from roled.secrets import MASK, Secrets

ORIGIN = "roles/web.conf: [program:web]"


def reader(files: dict[str, str]):  # type: ignore[no-untyped-def]
    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        return files[path]

    return read


FILES = {
    "/etc/app/a.env": "SHARED=from-a\nONLY_A=alpha-value\nDB_PASSWORD_FILE=/run/secrets/db\n",
    "/etc/app/b.env": "SHARED=from-b\nEXPLICIT=from-b\n",
    "/run/secrets/db": "s3cr3t-pw\n\n",
    "/run/secrets/api": "api-token-xyz",
}


def test_precedence_env_files_then_environment() -> None:
    """Later env files win, environment= wins over them, NAME_FILE fills NAME."""
    env = resolve_environment(
        ["/etc/app/a.env", "/etc/app/b.env"],
        {"EXPLICIT": "from-config"},
        {"PATH": "/bin", "API_KEY_FILE": "/run/secrets/api"},
        ORIGIN,
        reader(FILES),
    )
    assert dict(env.values) == {
        "SHARED": "from-b",
        "ONLY_A": "alpha-value",
        "DB_PASSWORD_FILE": "/run/secrets/db",
        "EXPLICIT": "from-config",
        "API_KEY": "api-token-xyz",
        "DB_PASSWORD": "s3cr3t-pw",
    }
    assert env.files == ("/etc/app/a.env", "/etc/app/b.env", "/run/secrets/api", "/run/secrets/db")
    assert env.secrets.values == frozenset(
        {"from-a", "alpha-value", "from-b", "s3cr3t-pw", "api-token-xyz"}
    )
    assert env.notes == ()


@pytest.mark.parametrize(
    ("content", "value"),
    [("pw\n", "pw"), ("pw\n\n\n", "pw"), ("pw", "pw"), ("  pw \n", "  pw ")],
)
def test_file_value_drops_every_trailing_newline(content: str, value: str) -> None:
    """Like the official images' $(< file): all trailing newlines go, nothing else."""
    env = resolve_environment([], {"X_FILE": "/s"}, {}, ORIGIN, reader({"/s": content}))
    assert env.values["X"] == value


def test_explicit_name_wins_over_its_file() -> None:
    """A non-empty NAME is kept; its NAME_FILE is not read (even if missing) and a note says so."""
    env = resolve_environment([], {"PW": "given", "PW_FILE": "/missing"}, {}, ORIGIN, reader({}))
    assert dict(env.values) == {"PW": "given", "PW_FILE": "/missing"}
    assert env.notes == (f"{ORIGIN}: PW is set, so PW_FILE is not read",)


def test_empty_name_is_filled_from_its_file() -> None:
    """An empty NAME counts as unset, as in the official images."""
    env = resolve_environment([], {"PW": ""}, {"PW_FILE": "/s"}, ORIGIN, reader({"/s": "pw-1"}))
    assert env.values["PW"] == "pw-1"


@pytest.mark.parametrize(
    "environ",
    [{"LOG_FILE": "app.log"}, {"_FILE": "/s"}, {"X_FILE": ""}, {"a-b_FILE": "/s"}, {"FILE": "/s"}],
)
def test_only_absolute_paths_in_valid_names_are_read(environ: dict[str, str]) -> None:
    """Relative paths, empty values and odd names are left alone."""
    env = resolve_environment([], {}, environ, ORIGIN, reader({}))
    assert dict(env.values) == {}
    assert env.files == ()


def test_file_path_values_are_not_secrets() -> None:
    """A NAME_FILE value from an env file is a path: not masked, so errors stay readable."""
    env = resolve_environment(["/etc/app/a.env"], {}, {}, ORIGIN, reader(FILES))
    assert "/run/secrets/db" not in env.secrets.values


ERRORS = [
    (["/etc/app/missing.env"], {}, f"{ORIGIN} roled_env_files: /etc/app/missing.env: cannot read"),
    ([], {"DB_PASSWORD_FILE": "/nope"}, f"{ORIGIN}: DB_PASSWORD_FILE=/nope: cannot read"),
    (["/bad.env"], {}, "/bad.env, line 2: expected NAME=value"),
    ([], {"K_FILE": "/nul"}, f"{ORIGIN}: K_FILE=/nul: the file holds a NUL byte"),
]


@pytest.mark.parametrize(("env_files", "explicit", "message"), ERRORS)
def test_errors_name_program_and_path(
    env_files: list[str], explicit: dict[str, str], message: str
) -> None:
    """A missing or bad file is one line naming the program and the path, never a value."""
    files = {"/bad.env": "OK=1\nsecret-in-line\n", "/nul": "se\0cret"}
    with pytest.raises(RoledError) as caught:
        resolve_environment(env_files, explicit, {}, ORIGIN, reader(files))
    assert str(caught.value).startswith(message)
    assert "secret" not in str(caught.value)


def test_read_file_refuses_what_is_not_a_small_text_file(tmp_path: Path) -> None:
    """Directories, FIFOs (without blocking), big files and non-UTF-8 are errors."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    big = tmp_path / "big"
    big.write_bytes(b"x" * (MAX_FILE_SIZE + 1))
    latin = tmp_path / "latin"
    latin.write_bytes(b"caf\xe9")
    good = tmp_path / "good"
    good.write_text("ok\n")
    cases = {
        str(tmp_path): "cannot read",
        str(fifo): "not a regular file",
        str(big): "larger than 1024 KiB",
        str(latin): "not UTF-8 text (byte 3)",
        str(tmp_path / "absent"): "No such file or directory",
    }
    for path, message in cases.items():
        with pytest.raises(RoledError, match=re.escape(message)):
            resolve_environment([], {"X_FILE": path}, {}, ORIGIN)
    assert read_file(str(good)) == "ok\n"
    assert resolve_environment([], {"X_FILE": str(good)}, {}, ORIGIN).values["X"] == "ok"


# Secrets -----------------------------------------------------------------------------------


MASKED = [
    ("password is hunter22 ok", "password is ******** ok"),
    ("hunter22hunter22", "****************"),
    ("long-secret-value contains hunter22", "******** contains ********"),
    ("abc and 1 stay", "abc and 1 stay"),
    ('json: "line1\\nline2-multi"', 'json: "********"'),
    ("repr: 'qu\"ote'", "repr: '********'"),
    ("a log line: line2-multi", "a log line: ********"),
    ("unicode: d\\u00e9j\\u00e0-vu", "unicode: ********"),
    ("nothing here", "nothing here"),
]


@pytest.mark.parametrize(("text", "expected"), MASKED)
def test_mask(text: str, expected: str) -> None:
    """Longest first, also line by line and JSON/repr-escaped; values under 4 characters stay."""
    secrets = Secrets.of(
        ["hunter22", "long-secret-value", "abc", "1", "line1\nline2-multi", 'qu"ote', "déjà-vu"]
    )
    assert secrets.mask(text) == expected


def test_mask_value_and_environment() -> None:
    """Structured output masks an exact secret of any length, and secrets inside a value."""
    secrets = Secrets.of(["abc", "hunter22"])
    shown = secrets.mask_environment({"A": "abc", "B": "abcd", "C": "x hunter22", "D": "plain"})
    assert shown == {"A": MASK, "B": "abcd", "C": f"x {MASK}", "D": "plain"}


def test_secrets_combine() -> None:
    """Secrets of several programs join; empty ones are false and mask nothing."""
    assert not Secrets()
    assert Secrets().mask("hunter22") == "hunter22"
    both = Secrets.of(["hunter22"]) | Secrets.of(["other-secret", ""])
    assert both.values == frozenset({"hunter22", "other-secret"})
    assert both.mask("hunter22/other-secret") == f"{MASK}/{MASK}"


def test_environment_is_frozen_data() -> None:
    """Environment is plain frozen data."""
    env = Environment({}, Secrets(), ())
    with pytest.raises(AttributeError):
        env.files = ("x",)  # type: ignore[misc]


# Keys --------------------------------------------------------------------------------------


def test_parse_env_files() -> None:
    """Comma-separated absolute paths in order; empty clears the default."""
    assert parse_env_files(" /a.env, /b.env ,", "k") == ("/a.env", "/b.env")
    assert parse_env_files("", "k") == ()


def test_parse_watch() -> None:
    """Files, folders and globs; at least one."""
    assert parse_watch("/etc/app/config, /etc/nginx/conf.d/*.conf", "k") == (
        "/etc/app/config",
        "/etc/nginx/conf.d/*.conf",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("restart", RESTART),
        (" Restart ", RESTART),
        ("HUP", OnChange("HUP")),
        ("SIGHUP", OnChange("HUP")),
        ("sighup", OnChange("HUP")),
        ("usr1", OnChange("USR1")),
        ("TERM", OnChange("TERM")),
    ],
)
def test_parse_on_change(value: str, expected: OnChange) -> None:
    """restart, or a signal name with or without SIG, any case."""
    assert parse_on_change(value, "k") == expected


def test_on_change_reads_back() -> None:
    """str() gives what the log line says."""
    assert (str(RESTART), str(OnChange("HUP"))) == ("restart", "HUP")


KEY_ERRORS = [
    (parse_env_files, "a.env", "web.conf: [program:web] roled_env_files: 'a.env' is not an abs"),
    (parse_env_files, "/a, /a", "web.conf: [program:web] roled_env_files: '/a' is listed twice"),
    (parse_watch, " , ", "web.conf: [program:web] roled_env_files: expected one or more"),
    (parse_watch, "conf.d/*", "web.conf: [program:web] roled_env_files: 'conf.d/*' is not an"),
    (parse_on_change, "HUPP", "web.conf: [program:web] roled_env_files: expected restart or a"),
    (parse_on_change, "", "web.conf: [program:web] roled_env_files: expected restart or a"),
    (parse_on_change, "SIG", "web.conf: [program:web] roled_env_files: expected restart or a"),
    (parse_on_change, "9", "web.conf: [program:web] roled_env_files: expected restart or a"),
]


@pytest.mark.parametrize(("parse", "value", "message"), KEY_ERRORS)
def test_key_errors(parse, value: str, message: str) -> None:  # type: ignore[no-untyped-def]
    """A bad value is one line that starts with the key's origin."""
    with pytest.raises(RoledError) as caught:
        parse(value, "web.conf: [program:web] roled_env_files")
    assert str(caught.value).startswith(message)


UNPASSABLE = [
    ("a\nb", "the value spans lines"),
    ('it\'s "x"', "the value holds both quote characters"),
    ("'quoted'", "the value starts or ends with a quote character"),
    ("pw ;x", "the value holds ';' or '#' after a blank"),
]


@pytest.mark.parametrize(("content", "why"), UNPASSABLE)
def test_a_value_supervisord_cannot_carry_is_an_error(content: str, why: str) -> None:
    """What environment= would mangle is refused by name, never passed on changed."""
    with pytest.raises(RoledError) as caught:
        resolve_environment([], {"X_FILE": "/s"}, {}, ORIGIN, reader({"/s": content}))
    assert str(caught.value) == (
        f"{ORIGIN}: X_FILE=/s: X: {why}, which supervisord's environment= cannot pass on"
    )


def test_an_inherited_file_variable_that_cannot_be_read_is_skipped() -> None:
    """SSL_CERT_FILE from the container's own environment, missing or multi-line: left alone."""
    files = {"/etc/ssl/cert.pem": "-----BEGIN-----\nabc\n-----END-----\n", "/tok": "tok-1\n"}
    inherited = {
        "SSL_CERT_FILE": "/etc/ssl/cert.pem",
        "TOKEN_FILE": "/missing",
        "API_FILE": "/tok",
    }
    env = resolve_environment([], {}, inherited, ORIGIN, reader(files))
    assert (dict(env.values), env.files, env.notes) == ({"API": "tok-1"}, ("/tok",), ())


def test_env_file_values_go_before_and_targets_after_the_programs_own() -> None:
    """The program's environment= overrides env files; a NAME_FILE fills only an unset NAME."""
    files = {"/a.env": "A=1\nB=from-file\n", "/pw": "secret-pw\n"}
    env = resolve_environment(["/a.env"], {"B": "own", "PW_FILE": "/pw"}, {}, ORIGIN, reader(files))
    assert dict(env.from_files) == {"A": "1"}
    assert dict(env.from_targets) == {"PW": "secret-pw"}


PASSABLE = st.text(st.sampled_from("ab %;#'\"=,\t\x1f\\$é"), max_size=12).filter(
    lambda value: unpassable(value) is None
)


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z_][A-Z0-9_]{0,8}", fullmatch=True), PASSABLE))
def test_supervisor_environment_round_trips_through_supervisors_loader(
    values: dict[str, str],
) -> None:
    """What supervisord's own loader reads back from the text is exactly the values."""
    text = "[program:x]\ncommand=/bin/true\nenvironment=" + supervisor_environment(values) + "\n"
    parser = UnhosedConfigParser()
    parser.read_string(text)
    groups = ServerOptions().process_groups_from_parser(parser)
    assert groups[0].process_configs[0].environment == values
