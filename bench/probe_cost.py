"""The cost of one probe call: ``roled status`` against ``supervisorctl status`` on the same
running programs, each a fresh process whose CPU time and peak RSS the kernel reports."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass

from bench.layout import Layout
from bench.trials import TrialError

KIB = 1024


@dataclass(frozen=True)
class Call:
    """One probe call: CPU seconds (user + system), peak RSS in bytes, exit status."""

    cpu: float
    peak_rss: int
    status: int


# A fork of the harness would carry the harness's RSS as the child's peak (the kernel records
# the old memory's high-water mark at exec), so a bare interpreter forks each call instead and
# reports wait4's figures. Its own RSS (about 7 MiB) is a floor under every figure.
LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execvpe(sys.argv[1], sys.argv[1:], os.environ)
_, status, usage = os.wait4(pid, 0)
print(usage.ru_utime + usage.ru_stime, usage.ru_maxrss, os.waitstatus_to_exitcode(status))
"""


def measure(argv: list[str], env: dict[str, str], timeout: float = 30) -> Call:
    """Run argv to its end with stdout discarded; its own CPU time and peak RSS (wait4)."""
    launcher = [sys.executable, "-I", "-S", "-c", LAUNCHER, *argv]
    try:
        done = subprocess.run(
            launcher, env=env, cwd="/", capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise TrialError(f"{' '.join(argv)} did not answer within {timeout:g} s") from None
    try:
        cpu, rss, status = done.stdout.split()
    except ValueError:
        raise TrialError(f"{' '.join(argv)}: no measure ({done.stderr[-500:]})") from None
    return Call(float(cpu), int(rss) * KIB, int(status))


def supervisorctl_argv(layout: Layout) -> list[str]:
    """supervisorctl status against roled's supervisord, with the credentials roled published.

    Its own small config file holds them ([supervisorctl] is what supervisorctl reads), so
    neither command line shows the password.
    """
    instance = json.loads((layout.runtime_dir / "instance.json").read_text())
    config = layout.root / "supervisorctl.conf"
    config.write_text(
        "[supervisorctl]\n"
        f"serverurl = unix://{instance['socket']}\n"
        f"username = {instance['username']}\n"
        f"password = {instance['password']}\n"
    )
    config.chmod(0o600)
    return [sys.executable, "-m", "supervisor.supervisorctl", "-c", str(config), "status"]
