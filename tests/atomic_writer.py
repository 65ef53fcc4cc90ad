"""The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go), step by step, for watch tests.

Visible names are symlinks ``name -> ..data/name``; ``..data`` links to a timestamped folder; an
update writes a new timestamped folder, points a new ``..data_tmp`` link at it, renames that link
over ``..data`` (the atomic step) and removes the old folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

DATA = "..data"
DATA_TMP = "..data_tmp"


def atomic_write(target: Path, payload: dict[str, bytes]) -> None:
    """Project ``payload`` (relative name -> content) into ``target`` as the kubelet does."""
    data = target / DATA
    old = os.readlink(data) if data.is_symlink() else ""
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    new.chmod(0o755)
    for name, content in payload.items():
        path = new / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(0o644)
    for name in payload:
        top = name.split("/", 1)[0]
        if not (target / top).is_symlink():
            (target / top).symlink_to(f"{DATA}/{top}")
    (target / DATA_TMP).symlink_to(new.name)
    os.rename(target / DATA_TMP, data)
    visible = {name.split("/", 1)[0] for name in payload}
    for entry in target.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible:
            entry.unlink()
    if old:
        shutil.rmtree(target / old)
