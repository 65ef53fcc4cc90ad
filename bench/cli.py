"""`python -m bench`: run the selected metrics, print a markdown table, write results/ as JSON."""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import signal
import subprocess
import sys
from dataclasses import asdict, replace
from pathlib import Path

import supervisor.options

from bench.chart import draw_scaling
from bench.contenders import Roled, base_env, find_roled
from bench.metrics import METRICS, Setup, guarded
from bench.plan import PLANS
from bench.procs import become_subreaper, kill_all
from bench.report import to_markdown, write_json
from bench.results_model import MetricResult

RESULTS = Path(__file__).with_name("results")
ORDER = (
    "startup", "stop", "fatal", "detection", "idle", "assembly", "scaling", "logs", "probe",
    "watch",
)  # fmt: skip


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller run, under two minutes")
    size.add_argument("--tiny", action="store_true", help="a few programs, one pair (smoke test)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {','.join(ORDER)}")
    parser.add_argument("--pairs", type=int, help="A/B pairs per comparison (after warm-up)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write results")
    parser.add_argument(
        "--roled-cmd", help="roled's command line (default: roled beside python, else PATH);"
        " 'stand-in' runs bench/stand_in.py to exercise the harness"
    )  # fmt: skip
    parser.add_argument("--no-roled", action="store_true", help="measure the baselines only")
    return parser.parse_args(argv)


def selected(only: str) -> list[str]:
    """Metric keys to run, in report order; unknown keys are a usage error."""
    keys = [k for k in only.replace(" ", ",").split(",") if k] or list(ORDER)
    unknown = sorted(set(keys) - set(ORDER))
    if unknown:
        raise SystemExit(
            f"bench: unknown metric(s) {', '.join(unknown)}; known: {', '.join(ORDER)}"
        )
    return [k for k in ORDER if k in keys]


def roled_problem(roled: Roled) -> str:
    """Why roled cannot be benchmarked ('' when `roled --help` works)."""
    try:
        done = subprocess.run(
            [*roled.command, "--help"], env=base_env(), capture_output=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{' '.join(roled.command)}: {exc}"
    if done.returncode != 0:
        last = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()[-1:]
        return f"`{' '.join(roled.command)} --help` exited {done.returncode}: {' '.join(last)}"
    return ""


def make_setup(args: argparse.Namespace) -> Setup:
    plan = PLANS["quick" if args.quick else "tiny" if args.tiny else "full"]
    if args.pairs is not None:
        plan = replace(plan, pairs=args.pairs)
    log = lambda message: print(f"bench: {message}", file=sys.stderr, flush=True)  # noqa: E731
    if args.no_roled:
        return Setup(plan, None, "--no-roled was given", log)
    roled = find_roled(args.roled_cmd)
    if roled is None:
        return Setup(plan, None, "no roled command found", log)
    problem = roled_problem(roled)
    return Setup(plan, None if problem else roled, problem, log)


def run_metrics(setup: Setup, keys: list[str]) -> list[MetricResult]:
    """Run each selected metric once (start-up and stop share runs, as do fatal and detection)."""
    results: list[MetricResult] = []
    done: set[str] = set()
    for key in keys:
        if key in done:
            continue
        title, run = METRICS[key]
        produced = guarded(key, title, lambda run=run: run(setup))
        done.update(r.key for r in produced)
        results += [r for r in produced if r.key in keys]
    return results


def meta(setup: Setup, keys: list[str]) -> dict[str, object]:
    return {
        "when": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "plan": asdict(setup.plan),
        "metrics_run": keys,
        "roled": " ".join(setup.roled.command) if setup.roled else None,
        "roled_missing": setup.roled_missing,
        "python": platform.python_version(),
        "supervisor": supervisor.options.VERSION,
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    keys = selected(args.only)
    if not become_subreaper():
        print("bench: cannot become a subreaper; orphans may escape cleanup", file=sys.stderr)
    # SIGTERM must unwind through the cleanup below like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    setup = make_setup(args)
    if setup.roled is None:
        setup.log(f"baselines only: {setup.roled_missing}")
    try:
        results = run_metrics(setup, keys)
    finally:
        kill_all()
    info = meta(setup, keys)
    header = f"## roled benchmarks ({setup.plan.name} run, {info['when']})"
    markdown = to_markdown(results, header)
    print(markdown)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "latest.json", info, results)
    (args.out / "latest.md").write_text(markdown + "\n")
    for r in results:
        if r.key == "scaling":
            chart = draw_scaling(r, args.out / "scaling.png")
            setup.log(f"chart: {chart}" if chart else "chart skipped: matplotlib is not installed")
    return 0
