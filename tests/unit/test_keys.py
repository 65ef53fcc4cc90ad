"""roled's own ``roled_*`` keys: strictly parsed, kept from supervisord, carried to each process."""

from __future__ import annotations

from io import StringIO

import pytest
from supervisor.options import ServerOptions

from roled import keys
from roled.errors import RoledError
from roled.keys import Key, Whole
from roled.plan import masked_text
from tests.conftest import Layout
from tests.unit.test_assemble import assemble_layout, error_of


def parse_count(value: str, origin: str) -> int:
    """A test key's parser: a whole number >= 0."""
    if not value.strip().isdigit():
        raise RoledError(f"{origin}: expected a whole number >= 0, got {value!r}")
    return int(value)


NOTE = Key("roled_test_note", lambda value, origin: value.strip())
COUNT = Key("roled_test_count", parse_count, in_common=False)


@pytest.fixture(autouse=True)
def test_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two keys no feature owns, so the framework is tested on its own."""
    monkeypatch.setattr(keys, "KEYS", (NOTE, COUNT))


# The parser alone.


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, {}),
        ({"command": "/bin/true", "autostart": "false"}, {}),
        ({"roled_test_note": " hello "}, {"roled_test_note": "hello"}),
        (
            {"command": "x", "roled_test_count": "3", "roled_test_note": "n"},
            {"roled_test_count": 3, "roled_test_note": "n"},
        ),
    ],
)
def test_parse_keys_reads_only_roled_keys(options: dict[str, str], expected: object) -> None:
    """Only ``roled_*`` keys are parsed, each by its own parser."""
    assert keys.parse_keys(options, "f.conf: [program:a]") == expected


@pytest.mark.parametrize(
    ("options", "common", "message"),
    [
        (
            {"roled_test_cuont": "1"},
            False,
            "f.conf: [program:a] roled_test_cuont: unknown roled key "
            "(did you mean 'roled_test_count'?)",
        ),
        (
            {"roled_zzz": "1"},
            False,
            "f.conf: [program:a] roled_zzz: unknown roled key "
            "(known: roled_test_count, roled_test_note)",
        ),
        (
            {"roled_test_count": "many"},
            False,
            "f.conf: [program:a] roled_test_count: expected a whole number >= 0, got 'many'",
        ),
        (
            {"roled_test_count": "1"},
            True,
            "f.conf: [program:a] roled_test_count: may not stand in common.conf, only in a program",
        ),
    ],
)
def test_parse_keys_errors(options: dict[str, str], common: bool, message: str) -> None:
    """A typo, a bad value or a key out of place is one line naming file, section and key."""
    with pytest.raises(RoledError) as info:
        keys.parse_keys(options, "f.conf: [program:a]", common=common)
    assert str(info.value) == message


def test_an_unknown_key_when_none_are_known(monkeypatch: pytest.MonkeyPatch) -> None:
    """With an empty table every ``roled_*`` key is refused, and the message says so."""
    monkeypatch.setattr(keys, "KEYS", ())
    with pytest.raises(RoledError) as info:
        keys.parse_keys({"roled_ready": "notify"}, "f.conf: [program:a]")
    assert (
        str(info.value)
        == "f.conf: [program:a] roled_ready: unknown roled key (this roled knows none)"
    )


# Through the assembly.


def test_typo_in_a_role_file_names_file_section_and_key(layout: Layout) -> None:
    """A misspelt key is an error, never silently ignored."""
    path = layout.role("web", "[program:web]\ncommand=/bin/sleep 1\nroled_typo=1\n")
    assert error_of(layout, "web").startswith(
        f"{path}: [program:web] roled_typo: unknown roled key"
    )


def test_typo_in_an_included_file_is_named(layout: Layout) -> None:
    """Included files of the main config are validated the same way."""
    layout.write_main("[supervisord]\n[include]\nfiles=conf.d/*.conf\n")
    (layout.root / "conf.d").mkdir()
    path = layout.root / "conf.d" / "a.conf"
    path.write_text("[fcgi-program:a]\ncommand=/bin/true\nsocket=unix:///tmp/x.sock\nroled_x=1\n")
    assert error_of(layout).startswith(f"{path}: [fcgi-program:a] roled_x: unknown roled key")


def test_keys_are_removed_from_what_supervisord_reads(layout: Layout) -> None:
    """supervisord's config holds no ``roled_*`` key; its loader never sees one."""
    layout.role("web", "[program:web]\ncommand=/bin/sleep 1\nroled_test_count=2\n")
    assembly = assemble_layout(layout, "web")
    assert "roled_test" not in assembly.text
    section = next(s for s in assembly.sections if s.name == "program:web")
    assert "roled_test_count" not in section.options
    assert assembly.warnings == ()
    (layout.root / "rt" / "logs").mkdir(parents=True)
    ServerOptions().read_config(StringIO(assembly.text))


def test_parsed_values_travel_with_every_process(layout: Layout) -> None:
    """Each process of the program (numprocs, groups) carries the parsed values."""
    layout.common("roled_test_note=from common\nstartsecs=0\n")
    layout.role(
        "web",
        "[program:web]\ncommand=/bin/sleep 1\nnumprocs=2\n"
        "process_name=%(program_name)s_%(process_num)d\n"
        "roled_test_count=2\n"
        "[program:api]\ncommand=/bin/sleep 1\nroled_test_note=own\n"
        "[program:plain]\ncommand=/bin/sleep 1\n"
        "[group:grp]\nprograms=api\n",
    )
    layout.write_main("[supervisord]\n[program:legacy]\ncommand=/bin/sleep 1\nroled_test_count=7\n")
    assembly = assemble_layout(layout, "web")
    found = {p.namespec: (p.program, dict(p.roled)) for p in assembly.processes}
    assert found == {
        "legacy": ("legacy", {"roled_test_count": 7}),
        "web:web_0": ("web", {"roled_test_note": "from common", "roled_test_count": 2}),
        "web:web_1": ("web", {"roled_test_note": "from common", "roled_test_count": 2}),
        "grp:api": ("api", {"roled_test_note": "own"}),
        "plain": ("plain", {"roled_test_note": "from common"}),
    }


def test_check_print_shows_the_keys_supervisord_does_not_get(layout: Layout) -> None:
    """``roled check --print`` shows roled's keys in their program's section."""
    layout.common("roled_test_note=default\n")
    layout.role("web", "[program:web]\ncommand=/bin/sleep 1\nroled_test_count=2\n")
    printed = masked_text(assemble_layout(layout, "web"))
    section = printed.split("[program:web]\n", 1)[1].split("\n\n", 1)[0]
    assert "roled_test_count = 2\n" in section + "\n"
    assert "roled_test_note = default\n" in section + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("roled_test_count=1\n", "may not stand in common.conf, only in a program"),
        ("roled_test_count=x\n", "may not stand in common.conf, only in a program"),
        ("roled_test_cuont=b\n", "unknown roled key (did you mean 'roled_test_count'?)"),
    ],
)
def test_common_keys_are_checked(layout: Layout, text: str, message: str) -> None:
    """common.conf's ``roled_*`` keys are checked as strictly, naming common.conf."""
    layout.common(text)
    layout.role("web", "[program:web]\ncommand=/bin/sleep 1\n")
    key = text.split("=", 1)[0]
    assert error_of(layout, "web") == f"{layout.common_path}: {key}: {message}"


def test_a_roled_key_outside_a_program_section_is_refused(layout: Layout) -> None:
    """An event listener or group is no program: a key there would do nothing."""
    path = layout.role(
        "web",
        "[eventlistener:ev]\ncommand=/bin/cat\nevents=TICK_5\nroled_test_note=x\n",
    )
    assert error_of(layout, "web") == (
        f"{path}: [eventlistener:ev] roled_test_note: roled's keys belong in [program:x] "
        "and [fcgi-program:x] sections"
    )


def test_whole_config_checks_see_every_process(
    layout: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A whole-config check runs after validation with every process and where it was written."""
    seen: list[Whole] = []

    def refuse(whole: Whole) -> None:
        seen.append(whole)
        raise RoledError(f"{whole.origins['web']} roled_test_count: refused by a whole check")

    monkeypatch.setattr(keys, "WHOLE_CHECKS", (refuse,))
    path = layout.role("web", "[program:web]\ncommand=/bin/sleep 1\nroled_test_count=1\n")
    assert error_of(layout, "web") == (
        f"{path}: [program:web] roled_test_count: refused by a whole check"
    )
    assert [p.namespec for p in seen[0].processes] == ["web"]


# roled's reserved name.


@pytest.mark.parametrize(
    "section",
    [
        "[program:roled_events]\ncommand=/bin/sleep 1\n",
        "[fcgi-program:roled_events]\ncommand=/bin/true\nsocket=unix:///tmp/roled-t.sock\n",
        "[eventlistener:roled_events]\ncommand=/bin/cat\nevents=TICK_5\n",
        "[program:a]\ncommand=/bin/sleep 1\n[group:roled_events]\nprograms=a\n",
    ],
    ids=["program", "fcgi-program", "eventlistener", "group"],
)
@pytest.mark.parametrize("where", ["role file", "main config"])
def test_roled_listener_name_is_reserved(layout: Layout, section: str, where: str) -> None:
    """A user's section named like roled's own listener would never run: refused in one line."""
    if where == "role file":
        path = layout.role("web", section)
    else:
        path = layout.write_main("[supervisord]\n" + section)
        layout.role("web", "[program:web]\ncommand=/bin/sleep 1\n")
    header = next(line for line in section.splitlines() if "roled_events" in line)
    assert error_of(layout, "web") == (
        f"{path}: {header} uses the name 'roled_events', reserved for roled's own event listener"
    )
