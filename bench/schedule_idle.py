"""What scheduled programs cost roled while nothing is due: idle CPU with N sleepers alone
against the same N sleepers plus J scheduled programs, alternately, by the idle benchmark's
method (roled's own user + system CPU over an idle window after start-up).

    python -m bench.schedule_idle [--sleepers 50] [--jobs 100] [--pairs 5] [--idle 60]

Prints one line per trial and a summary: the median of each side in ms CPU per 60 s, the
median paired difference, their ratio, and roled's thread count on each side.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time

from bench.contenders import Roled, find_roled
from bench.layout import Program, sleepers_in_roles
from bench.procs import wait_until
from bench.trials import TrialError, running, stop, usage, wait_all_running

# Never due within a trial: the window measures the waiting, not a run.
SCHEDULE = "@every 8000h"
SETTLE = 5.0


def jobs(count: int) -> list[Program]:
    return [
        Program(f"job{i:03d}", {"command": "/bin/true", "roled_schedule": SCHEDULE})
        for i in range(count)
    ]


def trial(roled: Roled, sleepers: int, count: int, idle: float) -> tuple[float, int]:
    """roled's own CPU (ms per 60 s) over ``idle`` seconds, and its thread count."""
    roles = sleepers_in_roles(sleepers)
    if count:
        roles["jobs"] = jobs(count)
    with running(roled, roles) as (launched, layout):
        # Jobs stay STOPPED until due: wait for the sleepers only.
        awake = dataclasses.replace(
            layout, programs=tuple(p.name for r, ps in roles.items() if r != "jobs" for p in ps)
        )
        wait_all_running(launched, awake, timeout=30 + (sleepers + count) * 0.2)
        # roled reads supervisord's whole table after the programs start; with jobs, its
        # scheduler starts then and publishes jobs.json. The window opens after both sides
        # have settled alike, so it measures waiting, not start-up.
        if count and not wait_until((layout.runtime_dir / "jobs.json").exists, 30):
            raise TrialError("roled did not publish jobs.json")
        time.sleep(SETTLE)
        own = roled.own(launched)
        if own is None:
            raise TrialError("roled's process not found")
        threads = own.num_threads()
        cpu = usage(own, idle, [])[0].cpu
        stop(launched)
    return cpu * 1000 * 60 / idle, threads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schedule_idle")
    parser.add_argument("--sleepers", type=int, default=50)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--pairs", type=int, default=5)
    parser.add_argument("--idle", type=float, default=60.0)
    parser.add_argument("--roled-cmd", default=None)
    args = parser.parse_args(argv)
    roled = find_roled(args.roled_cmd)
    if roled is None:
        print("roled not found: install it or pass --roled-cmd", file=sys.stderr)
        return 2
    without: list[float] = []
    with_jobs: list[float] = []
    threads: dict[str, set[int]] = {"without": set(), "with": set()}
    for pair in range(args.pairs):
        plain, plain_threads = trial(roled, args.sleepers, 0, args.idle)
        scheduled, count = trial(roled, args.sleepers, args.jobs, args.idle)
        without.append(plain)
        with_jobs.append(scheduled)
        threads["without"].add(plain_threads)
        threads["with"].add(count)
        print(f"pair {pair + 1}: {plain:.1f} ms without, {scheduled:.1f} ms with {args.jobs} jobs")
    differences = [b - a for a, b in zip(without, with_jobs, strict=True)]
    base, loaded = statistics.median(without), statistics.median(with_jobs)
    ratio = loaded / base if base else float("nan")
    print(
        f"roled idle CPU, {args.sleepers} sleepers, {args.idle:g} s windows, {args.pairs} pairs "
        f"(ms CPU per 60 s, median): without jobs {base:.1f}, with {args.jobs} jobs "
        f"{loaded:.1f}; paired difference {statistics.median(differences):+.1f} "
        f"(min {min(differences):+.1f}, max {max(differences):+.1f}); ratio {ratio:.2f}; "
        f"roled threads without/with jobs: {sorted(threads['without'])}/{sorted(threads['with'])}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
