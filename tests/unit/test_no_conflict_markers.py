"""No file of the project keeps a merge's conflict markers (one did, in bench/README.md)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
FOLDERS = ("roled", "tests", "bench", "samples", ".ci")
MARKER = re.compile(rb"^(<{7}|>{7}) ", re.MULTILINE)


def project_files() -> list[Path]:
    found = [path for path in ROOT.iterdir() if path.is_file()]
    for folder in FOLDERS:
        found += [path for path in (ROOT / folder).rglob("*") if path.is_file()]
    return [path for path in found if "__pycache__" not in path.parts]


def test_no_file_keeps_conflict_markers() -> None:
    marked = [
        str(path.relative_to(ROOT)) for path in project_files() if MARKER.search(path.read_bytes())
    ]
    assert marked == []
