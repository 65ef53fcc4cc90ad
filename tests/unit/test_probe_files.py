"""What the probe reads without supervisor's loader: ``[roled]`` of the main config, and the
programs' config a running roled published."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from roled.assemble import read_main
from roled.errors import RoledError
from roled.model import ProgramConfig
from roled.runtime import PROGRAMS, RuntimeDir, read_programs
from roled.settings import read_roled_section

MAINS = [
    "[supervisord]\n",
    "[supervisord]\n[roled]\nruntime_dir = /run/roled\n",
    "[supervisord]\n[roled]\nruntime_dir = /run/roled ; comment\nlog_format=json # too\n",
    "[roled]\nRUNTIME_DIR=%(here)s/rt\n  continued\n[supervisord]\nlogfile=x\n",
    "[roled]\nruntime_dir=%(here)s/%(ENV_X)s\n[supervisord]\n[include]\nfiles=nothing/*.conf\n",
]


@pytest.mark.parametrize("text", MAINS)
def test_roled_section_reads_as_the_planner_does(tmp_path: Path, text: str) -> None:
    """The probe's reader gives exactly the [roled] keys and values the planner's does."""
    main = tmp_path / "supervisord.conf"
    main.write_text(text)
    assert read_roled_section(main) == read_main(main, {}).roled


@pytest.mark.parametrize("text", ["[roled]\na=1\na=2\n", "key=value\n", "[roled\n"])
def test_a_broken_main_config_is_a_roled_error(tmp_path: Path, text: str) -> None:
    """A config the probe cannot read is a RoledError (the probe then uses the default)."""
    main = tmp_path / "supervisord.conf"
    main.write_text(text)
    with pytest.raises(RoledError, match=r"supervisord\.conf"):
        read_roled_section(main)


def test_published_programs_read_back(tmp_path: Path) -> None:
    """publish_programs, then read_programs, gives the same configs; a second replaces them."""
    directory = RuntimeDir(tmp_path / "rt")
    directory.acquire()
    first = {"web": ProgramConfig(), "grp:job": ProgramConfig(False, "false", (0, 3))}
    directory.publish_programs(first)
    assert read_programs(directory.path) == first
    directory.publish_programs({"web": ProgramConfig(autostart=False)})
    assert read_programs(directory.path) == {"web": ProgramConfig(autostart=False)}
    assert sorted(os.listdir(directory.path)) == ["lock", PROGRAMS]
    directory.remove()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"web": {"autostart": "yes", "autorestart": "true", "exitcodes": [0]}}',
        '{"web": {"autostart": true, "autorestart": "true", "exitcodes": ["0"]}}',
        '{"web": {"autostart": true}}',
        '{"web": 1}',
    ],
)
def test_unreadable_programs_mean_defaults(tmp_path: Path, text: str) -> None:
    """A missing or malformed programs.json gives no entries: supervisor's defaults apply."""
    (tmp_path / PROGRAMS).write_text(text)
    assert read_programs(tmp_path) == {}
    assert read_programs(tmp_path / "absent") == {}
