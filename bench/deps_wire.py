"""Start in order, end to end (issue 14): a one-shot's exit to its dependent's spawn, and 200
programs in a 10-level graph reaching RUNNING against the same 200 with no dependencies
(``python -m bench.deps_wire [--trials N]``). Real roled and supervisord; times are read from
supervisord's own log lines, so the measuring does not disturb the run."""

from __future__ import annotations

import argparse
import datetime
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LEVELS = 10
WIDTH = 20
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO (.*)$")


def _when(text: str) -> float:
    return datetime.datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").timestamp()


def _run(config: str, until: re.Pattern[str], count: int, timeout: float = 60.0) -> list[str]:
    """Run roled on config until ``count`` lines match ``until``; supervisord's log lines."""
    with tempfile.TemporaryDirectory(prefix="bd-", dir="/tmp") as folder:
        main = Path(folder) / "supervisor.conf"
        main.write_text(config)
        err = Path(folder) / "err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ROLED_")}
        env["ROLED_RUNTIME_DIR"] = f"{folder}/rt"
        with err.open("wb") as sink:
            roled = subprocess.Popen(
                [sys.executable, "-m", "roled", "-c", str(main)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=sink,
            )
        deadline = time.monotonic() + timeout
        try:
            while len(until.findall(err.read_text())) < count:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"timed out: {err.read_text()[-2000:]}")
                time.sleep(0.05)
        finally:
            roled.send_signal(signal.SIGTERM)
            roled.wait(60)
        return err.read_text().splitlines()


def _times(lines: list[str], pattern: str) -> list[float]:
    found = []
    for line in lines:
        match = _STAMP.match(line)
        if match and re.search(pattern, match.group(2)):
            found.append(_when(match.group(1)))
    return found


def spawn_latency() -> float:
    """A one-shot's exit, as supervisord logs it, to its dependent's spawn, in seconds."""
    config = (
        "[supervisord]\n\n[program:migrate]\ncommand=/bin/sleep 0.3\nautorestart=false\n"
        "startsecs=0\n\n[program:web]\ncommand=/bin/sleep 100\nstartsecs=0\n"
        "roled_depends_on=migrate\n"
    )
    lines = _run(config, re.compile(r"spawned: 'web'"), 1)
    return _times(lines, r"spawned: 'web'")[0] - _times(lines, r"exited: migrate")[0]


def to_running(dependencies: bool) -> float:
    """From supervisord's start to the last of 200 programs RUNNING, in seconds."""
    sections = ["[supervisord]\n"]
    for level in range(LEVELS):
        for i in range(WIDTH):
            depends = f"roled_depends_on=p{level - 1}_{i}\n" if dependencies and level else ""
            sections.append(
                f"[program:p{level}_{i}]\ncommand=/bin/sleep 1000\nstartsecs=0\n{depends}"
            )
    lines = _run("\n".join(sections), re.compile(r"entered RUNNING state"), LEVELS * WIDTH)
    running = _times(lines, r"entered RUNNING state")
    return max(running) - _times(lines, r"supervisord started with pid")[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=9)
    args = parser.parse_args()
    latencies = [spawn_latency() for _ in range(args.trials)]
    print(
        f"exit to dependent's spawn: median {statistics.median(latencies) * 1000:.0f} ms "
        f"(min {min(latencies) * 1000:.0f}, max {max(latencies) * 1000:.0f}; target <= 20 ms)"
    )
    ratios = []
    for _ in range(max(3, args.trials // 3)):
        # Alternately, so a busy machine weighs on both alike.
        plain = to_running(dependencies=False)
        graph = to_running(dependencies=True)
        ratios.append(graph / plain)
        print(f"  200 programs to RUNNING: {plain:.2f} s plain, {graph:.2f} s in 10 levels")
    print(
        "10-level graph / no dependencies: median ratio "
        f"{statistics.median(ratios):.2f} (target <= 1.2)"
    )


if __name__ == "__main__":
    main()
