"""The contenders: bare supervisord, the shell-script recipe and roled, each a small class.

A contender turns a Layout into a started process tree; the harness measures all of them the
same way (probe events, exit times, psutil), so adding another is one class.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from bench.layout import Layout
from bench.procs import Launched, find_child, launch, run_timed

RECIPE_DIR = Path(__file__).with_name("recipe")
STAND_IN = Path(__file__).with_name("stand_in.py")
SUPERVISORD = [sys.executable, "-m", "supervisor.supervisord"]


def base_env() -> dict[str, str]:
    """The harness's environment without settings that would leak into a contender."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROLED_", "ROLES"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Contender(Protocol):
    """What the harness needs from one way of running supervisord."""

    name: str

    def launch(self, layout: Layout) -> Launched:
        """Start the contender on ``layout`` with every role of the layout selected."""
        ...

    def supervisord(self, launched: Launched) -> psutil.Process | None:
        """supervisord's process, once it exists."""
        ...

    def own(self, launched: Launched) -> psutil.Process | None:
        """The contender's own process beside supervisord (roled), or None."""
        ...

    def stop_line(self, line: str, program: str) -> bool:
        """Whether an output line is the contender's reaction to ``program`` going FATAL."""
        ...


@dataclass(frozen=True)
class BareSupervisord:
    """supervisord alone on the equivalent, already assembled config."""

    name: str = "supervisord"

    def launch(self, layout: Layout) -> Launched:
        argv = [*SUPERVISORD, "-n", "-c", str(layout.assembled_conf)]
        return launch(argv, base_env())

    def supervisord(self, launched: Launched) -> psutil.Process | None:
        return psutil.Process(launched.pid)

    def own(self, launched: Launched) -> psutil.Process | None:
        return None

    def stop_line(self, line: str, program: str) -> bool:
        return False


@dataclass(frozen=True)
class ShellRecipe:
    """The POSIX sh start script with its FATAL listener (bench/recipe/)."""

    name: str = "shell recipe"

    def env(self, layout: Layout) -> dict[str, str]:
        return {
            **base_env(),
            "ROLES": layout.roles_env,
            "RECIPE_OUT": str(layout.recipe_conf),
            "SUPERVISORD": shlex.join(SUPERVISORD),
        }

    def launch(self, layout: Layout) -> Launched:
        argv = ["sh", str(RECIPE_DIR / "start.sh"), str(layout.main_conf)]
        return launch(argv, self.env(layout))

    def assemble(self, layout: Layout, timeout: float) -> tuple[float, int, str]:
        """Time the recipe's assembly step alone (its answer to `roled check`)."""
        argv = ["sh", "-c", 'sh "$0" "$1" > "$2"', str(RECIPE_DIR / "assemble.sh")]
        argv += [str(layout.main_conf), str(layout.recipe_conf)]
        return run_timed(argv, self.env(layout), timeout)

    def supervisord(self, launched: Launched) -> psutil.Process | None:
        return psutil.Process(launched.pid)  # start.sh execs supervisord

    def own(self, launched: Launched) -> psutil.Process | None:
        return None

    def stop_line(self, line: str, program: str) -> bool:
        return line.startswith("recipe: FATAL") and program in line


@dataclass(frozen=True)
class Roled:
    """roled itself (or a stand-in with the same contract) as ``CMD run``, with
    ``ROLED_CONFIG=MAIN_CONF``."""

    command: tuple[str, ...]
    name: str = "roled"

    def env(self, layout: Layout) -> dict[str, str]:
        return {
            **base_env(),
            "ROLES": layout.roles_env,
            "ROLED_RUNTIME_DIR": str(layout.runtime_dir),
            "ROLED_CONFIG": str(layout.main_conf),
        }

    def launch(self, layout: Layout) -> Launched:
        # As samples/docker's image runs it (ENTRYPOINT roled, CMD run, the rest from the
        # environment), which parses no flag.
        return launch([*self.command, "run"], self.env(layout))

    def check(self, layout: Layout, timeout: float) -> tuple[float, int, str]:
        """Time `roled check` on the layout."""
        argv = [*self.command, "check", "-c", str(layout.main_conf)]
        return run_timed(argv, self.env(layout), timeout)

    def supervisord(self, launched: Launched) -> psutil.Process | None:
        return find_child(launched.pid, "supervisord", timeout=10)

    def own(self, launched: Launched) -> psutil.Process | None:
        return psutil.Process(launched.pid)

    def stop_line(self, line: str, program: str) -> bool:
        return line.startswith("roled:") and "FATAL" in line and program in line


def find_roled(spec: str | None) -> Roled | None:
    """The roled contender from ``--roled-cmd`` (``stand-in`` for the stand-in), else PATH."""
    if spec == "stand-in":
        return Roled(command=(sys.executable, str(STAND_IN)), name="roled (stand-in)")
    if spec:
        return Roled(command=tuple(shlex.split(spec)))
    local = Path(sys.executable).with_name("roled")
    found = str(local) if local.exists() else shutil.which("roled")
    return Roled(command=(found,)) if found else None
