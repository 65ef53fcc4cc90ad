"""Throughput of roled's log formats relative to a program writing straight to stdout.

    python bench/log_throughput.py [--lines 1000000] [--size 100] [--repeat 3] [FORMAT ...]

The producer is tests/programs/chatter.py with --print: one print() a line, as applications do.
"direct" reads its stdout pipe; each FORMAT runs it under roled (a real supervisord) and reads
roled's stdout pipe. A rate is lines over the time from the producer's start (its first line says
when, on the monotonic clock all processes share) to the last line read, so roled's and
supervisord's start-up is not counted but any buffering is; the best of --repeat runs is kept.
``measure()`` is the hook for other benchmarks.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCER = ROOT / "tests" / "programs" / "chatter.py"
READ = 1 << 20


def producer_argv(lines: int, size: int) -> list[str]:
    return [
        *(sys.executable, str(PRODUCER), "bench", str(lines)),
        *("--print", "--stamp", "--size", str(size)),
    ]


def _read_lines(stream: int, lines: int, timeout: float) -> float:
    """Seconds from the producer's start to the last of its ``lines`` lines (and the stamp)."""
    seen = 0
    head = b""
    deadline = time.monotonic() + timeout
    while seen < lines + 1:
        data = os.read(stream, READ)
        if not data:
            raise RuntimeError(f"end of output after {seen} of {lines} lines")
        if len(head) < 4096:
            head += data[:4096]
        seen += data.count(b"\n")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {seen} of {lines} lines")
    stamp = re.search(rb"start (\d+\.\d+)", head)
    if stamp is None:
        raise RuntimeError("the producer's start line was not found")
    return time.monotonic() - float(stamp.group(1))


def measure(log_format: str | None, lines: int = 1_000_000, size: int = 100) -> float:
    """Lines per second that reach the reader: straight from the producer (``None``), or
    through roled in ``log_format``."""
    if log_format is None:
        with subprocess.Popen(producer_argv(lines, size), stdout=subprocess.PIPE) as direct:
            assert direct.stdout is not None
            elapsed = _read_lines(direct.stdout.fileno(), lines, 600)
            direct.wait(60)
        return lines / elapsed
    folder = Path(tempfile.mkdtemp(prefix="bench-", dir="/tmp"))
    try:
        command = shlex.join(producer_argv(lines, size)).replace("%", "%%")
        main = folder / "supervisord.conf"
        main.write_text(
            f"[supervisord]\n[program:bench]\ncommand={command}\nstartsecs=0\nautorestart=false\n"
        )
        env = {**os.environ, "ROLED_RUNTIME_DIR": str(folder / "rt")}
        argv = [sys.executable, "-m", "roled", "-c", str(main), "--log-format", log_format]
        with subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        ) as roled:
            assert roled.stdout is not None
            try:
                elapsed = _read_lines(roled.stdout.fileno(), lines, 600)
            finally:
                roled.send_signal(signal.SIGTERM)
                roled.wait(60)
        return lines / elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("formats", nargs="*", default=["plain", "prefix", "json"])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    direct = max(measure(None, args.lines, args.size) for _ in range(args.repeat))
    print(f"direct   {direct:12,.0f} lines/s")
    for log_format in args.formats:
        rate = max(measure(log_format, args.lines, args.size) for _ in range(args.repeat))
        print(f"{log_format:8} {rate:12,.0f} lines/s  ratio {rate / direct:.2f}")


if __name__ == "__main__":
    main()
