"""The container fixtures' own pure parts: reading apt's sources for a Debian mirror."""

from __future__ import annotations

from pathlib import Path

import pytest

from .engine import DockerUnavailable, debian_mirror

DEB822 = """\
Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main

Types: deb
# a comment inside the stanza
URIs: http://mirror.invalid/debian http://second.invalid/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.invalid/debian-security
Suites: bookworm-security
Components: main
"""


def test_deb822_source_gives_first_uri_of_the_suite(tmp_path: Path) -> None:
    """A .sources file: the first URI of the first deb stanza listing the suite."""
    sources = tmp_path / "debian.sources"
    sources.write_text(DEB822)
    assert debian_mirror([sources]) == "http://mirror.invalid/debian"


def test_one_line_source_with_options(tmp_path: Path) -> None:
    """A .list line with [options] (spaces inside the brackets) and a security suite first."""
    sources = tmp_path / "sources.list"
    sources.write_text(
        "deb http://security.invalid/debian-security bookworm-security main\n"
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://mirror.invalid/debian bookworm main\n"
    )
    assert debian_mirror([sources]) == "http://mirror.invalid/debian"


def test_disabled_stanza_and_missing_suite(tmp_path: Path) -> None:
    """Enabled: no is skipped; no source for the suite is a reason, not a crash."""
    sources = tmp_path / "debian.sources"
    sources.write_text(
        "Types: deb\nURIs: http://off.invalid/debian\nSuites: bookworm\nEnabled: no\n"
    )
    with pytest.raises(DockerUnavailable, match="no apt source for Debian bookworm"):
        debian_mirror([sources, tmp_path / "missing.list"])
