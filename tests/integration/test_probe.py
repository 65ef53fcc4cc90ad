"""``roled status`` as a cheap probe: a thin client of the running roled, which reads supervisord
and judges with the programs' config; supervisor's loader and http.client stay unloaded."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Layout, Roled, clean_environ, program

Start = Callable[..., Roled]
HEAVY = ("supervisor.options", "xmlrpc.client", "http.client")
# What a probe told where roled runs never loads: the command line's and the model's machinery.
THIN = ("argparse", "dataclasses", "supervisor", "roled.model", "roled.settings")
# Runs the command line as `python -m roled` does, then names every module it loaded.
PROBE = """
import runpy, sys
sys.argv = ["roled", *sys.argv[1:]]
try:
    runpy.run_module("roled", run_name="__main__")
except SystemExit as exc:
    code = exc.code
print("MODULES", *sorted(sys.modules))
raise SystemExit(code)
"""


def sleeper(name: str) -> str:
    return f"[program:{name}]\ncommand={program('print_signals')}\nstartsecs=0\n"


def oneshot(name: str, code: int) -> str:
    """A program that exits with code at once, which its config calls expected."""
    return (
        f"[program:{name}]\ncommand={program('exit_with', str(code))}\nstartsecs=0\n"
        f"autorestart=false\nexitcodes={code}\n"
    )


def probe(*args: str, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run `roled ARGS` in a fresh interpreter; its result and the modules it loaded."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    lines = result.stdout.splitlines()
    modules = set(lines[-1].split()[1:]) if lines and lines[-1].startswith("MODULES") else set()
    return result, modules


@pytest.mark.parametrize("found_by", ["environment", "[roled] runtime_dir"])
def test_status_loads_no_config_loader_and_no_http_client(
    layout: Layout, short_tmp: Path, start_roled: Start, found_by: str
) -> None:
    """status answers 0 without supervisor.options, xmlrpc.client or http.client loaded."""
    runtime = short_tmp / "rt"
    layout.write_main(f"[supervisord]\n[roled]\nruntime_dir = {runtime}  ; for the probe\n")
    layout.role("web", sleeper("web") + oneshot("migrate", 3))
    roled = start_roled(layout, roles="web", runtime_dir=runtime)
    roled.wait_states({"web": "RUNNING", "migrate": "EXITED"})
    env = clean_environ()
    if found_by == "environment":
        env["ROLED_RUNTIME_DIR"] = str(runtime)
    result, modules = probe("-c", str(layout.main), "status", env=env)
    # exitcodes=3 is roled's to know: with supervisor's defaults exit 3 is a failure.
    assert result.returncode == 0, result.stdout + result.stderr
    assert "migrate  EXITED    exit status 3 (expected)" in result.stdout
    assert "roled" in modules
    assert sorted(set(HEAVY) & modules) == []
    if found_by == "environment":
        assert sorted(set(THIN) & modules) == []


def test_status_follows_a_reload(layout: Layout, start_roled: Start) -> None:
    """After SIGHUP adds an autostart=false program, status judges it by its new config."""
    layout.role("web", sleeper("web"))
    roled = start_roled(layout, roles="web")
    roled.wait_states({"web": "RUNNING"})
    layout.role("web", sleeper("web") + sleeper("manual") + "autostart=false\n")
    roled.send(signal.SIGHUP)
    roled.wait_states({"web": "RUNNING", "manual": "STOPPED"})
    env = clean_environ(ROLED_RUNTIME_DIR=str(roled.runtime_dir))
    result, _ = probe("status", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "manual  STOPPED   not started (autostart=false)" in result.stdout
