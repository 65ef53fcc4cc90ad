"""Polling cost of roled's file watcher: CPU per scan of N unchanged files, and % of a core."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from roled.watch import INTERVAL, Watcher


def cpu_per_scan(files: int, scans: int, layout: str = "folder") -> list[float]:
    """CPU seconds of each of ``scans`` scans of ``files`` unchanged files (after a baseline).

    layout ``folder``: one watched folder of N files; ``files``: N paths listed one by one.
    """
    root = Path(tempfile.mkdtemp(prefix="rw"))
    try:
        old = time.time() - 3600
        for i in range(files):
            path = root / f"f{i:05d}.conf"
            path.write_text(f"key{i}=value\n")
            # Settled files: a file written in the last seconds is hashed again on purpose.
            os.utime(path, (old, old))
        paths = [str(root)] if layout == "folder" else [str(p) for p in sorted(root.iterdir())]
        watcher = Watcher({"bench": paths}, interval=1.0)
        watcher.poll(0.0)
        samples = []
        for n in range(1, scans + 1):
            start = time.process_time()
            changed = watcher.poll(float(n))
            samples.append(time.process_time() - start)
            assert not changed, changed
        return samples
    finally:
        shutil.rmtree(root)


def percent_of_core(seconds_per_scan: float, interval: float = INTERVAL) -> float:
    return seconds_per_scan / interval * 100
