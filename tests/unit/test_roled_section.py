"""What the probe reads without supervisor's loader: ``[roled]`` of the main config."""

from __future__ import annotations

from pathlib import Path

import pytest

from roled import locate
from roled.assemble import read_main
from roled.errors import RoledError
from roled.locate import read_roled_section
from roled.settings import SPEC_BY_NAME

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


def test_the_probe_finds_roled_by_the_settings_tables_names() -> None:
    """roled.locate names two settings without loading their table: the same names."""
    assert SPEC_BY_NAME["config"].env == locate.CONFIG_ENV
    assert SPEC_BY_NAME["runtime_dir"].env == locate.RUNTIME_DIR_ENV
    assert SPEC_BY_NAME["runtime_dir"].key == "runtime_dir"
