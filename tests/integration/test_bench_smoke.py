"""Smoke test of the benchmark harness: each metric's entry point runs end to end on tiny N."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def run_bench(tmp_path: Path, *args: str) -> dict[str, object]:
    """Run `python -m bench --tiny` with ``args``; return the JSON it wrote."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "bench", "--tiny", "--out", str(tmp_path), *args]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "| contender |" in done.stdout or "not implemented" in done.stdout
    data: dict[str, object] = json.loads((tmp_path / "latest.json").read_text())
    return data


def metric(data: dict[str, object], key: str) -> dict[str, object]:
    metrics = data["metrics"]
    assert isinstance(metrics, list)
    found: dict[str, object] = next(m for m in metrics if m["key"] == key)
    return found


def test_baselines_measure_startup_and_stop(tmp_path: Path) -> None:
    """Bare supervisord's start-up and stop are measured with one sample each."""
    data = run_bench(tmp_path, "--only", "startup,stop", "--no-roled")
    for key in ("startup", "stop"):
        series = metric(data, key)["series"]
        assert isinstance(series, list)
        assert series[0]["summary"]["n"] == 1, metric(data, key)


@pytest.mark.parametrize("only", ["startup", "fatal,detection", "idle", "assembly", "scaling"])
def test_roled_code_path_runs_with_the_stand_in(tmp_path: Path, only: str) -> None:
    """Every metric completes with a roled-shaped contender and reports its targets."""
    data = run_bench(tmp_path, "--only", only, "--roled-cmd", "stand-in")
    for key in only.split(","):
        result = metric(data, key)
        assert not any(str(n).startswith("failed") for n in result["notes"]), result["notes"]
        assert result["targets"], result


def test_logs_metric_measures_each_format_against_direct(tmp_path: Path) -> None:
    """The log-throughput metric runs the real roled in prefix and json and checks both ratios."""
    data = run_bench(tmp_path, "--only", "logs")
    targets = metric(data, "logs")["targets"]
    assert isinstance(targets, list)
    assert [target["name"] for target in targets] == [
        "Logs: prefix >= 0.8 of direct",
        "Logs: json >= 0.8 of direct",
    ]
    assert all(target["measured"] is not None for target in targets)


def test_recipe_listener_runs_under_dash(tmp_path: Path) -> None:
    """The recipe's sh listener answers READY/RESULT under dash and signals its parent on FATAL."""
    dash = "/bin/dash"
    if not Path(dash).exists():
        pytest.skip("dash is not installed")
    listener = ROOT / "bench" / "recipe" / "fatal_listener.sh"
    payload = "processname:broken groupname:broken from_state:BACKOFF"
    header = "ver:3.0 server:supervisor serial:1 pool:x poolserial:1 eventname:PROCESS_STATE_FATAL"
    header += f" len:{len(payload)}\n"
    # A parent shell that traps TERM stands in for supervisord and reports it.
    script = (
        f'trap "echo parent-got-TERM >&2" TERM; printf %s "$1" | {dash} {listener} & wait; wait'
    )
    done = subprocess.run(
        [dash, "-c", script, "sh", header + payload], capture_output=True, text=True, timeout=30
    )
    assert done.stdout.startswith("READY\nRESULT 2\nOKREADY\n"), done.stdout
    assert "recipe: FATAL broken" in done.stderr
    assert "parent-got-TERM" in done.stderr


def test_probe_metric_measures_roled_status_against_supervisorctl(tmp_path: Path) -> None:
    """The probe metric runs both status commands on the same programs and checks both targets."""
    data = run_bench(tmp_path, "--only", "probe")
    result = metric(data, "probe")
    assert result["notes"][:2] == [
        "supervisorctl status exit statuses: 0 x2",
        "roled exit statuses: 0 x2",
    ]
    targets = result["targets"]
    assert isinstance(targets, list)
    assert [target["measured"] is not None for target in targets] == [True, True]
