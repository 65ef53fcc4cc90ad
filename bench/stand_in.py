"""A stand-in with roled's command-line contract, built on the shell recipe, to test the harness.

It lets the roled code path of the benchmarks run (smoke test, ``--roled-cmd stand-in``) before
roled exists; its figures measure the recipe plus a Python wrapper, not roled.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

RECIPE = Path(__file__).with_name("recipe")
SUPERVISORD = [sys.executable, "-m", "supervisor.supervisord"]


def log(message: str) -> None:
    print(f"roled: {message}", file=sys.stderr, flush=True)


def recipe_env(out: Path) -> dict[str, str]:
    return {**os.environ, "RECIPE_OUT": str(out), "SUPERVISORD": shlex.join(SUPERVISORD)}


def check(main_conf: str) -> int:
    """Assemble into a throw-away file, as `roled check` would validate without starting."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "supervisord.conf"
        argv = ["sh", str(RECIPE / "assemble.sh"), main_conf]
        with out.open("w") as fh:
            return subprocess.run(argv, stdout=fh, env=recipe_env(out)).returncode


def relay(proc: subprocess.Popen[bytes], failed: list[str]) -> None:
    """Copy supervisord's output to stderr; a recipe FATAL line becomes roled's FATAL line."""
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.decode(errors="replace").rstrip("\n")
        if line.startswith("recipe: FATAL "):
            name = line.split()[2].rstrip(",")
            failed.append(name)
            log(f"ERROR program '{name}' entered FATAL; stopping")
        else:
            print(line, file=sys.stderr, flush=True)


def run(main_conf: str) -> int:
    """Run the recipe as a child; forward SIGTERM/SIGINT; exit 1 after a FATAL program."""
    runtime = Path(os.environ.get("ROLED_RUNTIME_DIR", f"/tmp/roled-stand-in-{os.getuid()}"))
    runtime.mkdir(mode=0o700)
    try:
        argv = ["sh", str(RECIPE / "start.sh"), main_conf]
        env = recipe_env(runtime / "supervisord.conf")
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        failed: list[str] = []
        reader = threading.Thread(target=relay, args=(proc, failed), daemon=True)
        reader.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda s, _f: proc.send_signal(s))
        status = proc.wait()
        reader.join(timeout=5)
        log(f"INFO supervisord exited with status {status}")
        return 1 if failed else (0 if status == 0 else 3)
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(prog="roled-stand-in")
    parser.add_argument("command", nargs="?", choices=["run", "check"], default="run")
    parser.add_argument("-c", "--configuration", default=os.environ.get("ROLED_CONFIG"))
    args = parser.parse_args()
    if not args.configuration:
        parser.error("-c or ROLED_CONFIG is required")
    return check(args.configuration) if args.command == "check" else run(args.configuration)


if __name__ == "__main__":
    sys.exit(main())
