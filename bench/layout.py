"""Config layouts the benchmarks run: main config, common.conf and role files in a short temp dir.

Every contender gets the same layout; bare supervisord gets the equivalent assembled config.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

PROBE = Path(__file__).with_name("probe.py")

#: Defaults every program inherits (bare key=value lines, as roled and the recipe read them).
COMMON: dict[str, str] = {
    "startsecs": "0",
    "stdout_logfile": "NONE",
    "stderr_logfile": "NONE",
    "stopwaitsecs": "10",
}


#: Probe priorities. Late: started after the programs and stopped before them, so the probe
#: adds no step to supervisord's one-group-per-pass shutdown. Early: up before any program and
#: stopped last, so it sees a FATAL that happens in the first milliseconds.
LATE = 1000
EARLY = -100


@dataclass(frozen=True)
class Program:
    """One supervisord program: its name and its own keys (which win over common.conf)."""

    name: str
    options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layout:
    """Paths of one trial's files; ``root`` is short so the unix socket path stays < 108 bytes."""

    root: Path
    roles: tuple[str, ...]
    programs: tuple[str, ...]
    probe_priority: int = LATE

    @property
    def conf_dir(self) -> Path:
        return self.root / "c"

    @property
    def main_conf(self) -> Path:
        return self.conf_dir / "supervisord.conf"

    @property
    def assembled_conf(self) -> Path:
        return self.root / "assembled.conf"

    @property
    def recipe_conf(self) -> Path:
        return self.root / "recipe.conf"

    @property
    def events_file(self) -> Path:
        return self.root / "events"

    @property
    def socket(self) -> Path:
        return self.root / "s.sock"

    @property
    def runtime_dir(self) -> Path:
        return self.root / "rt"

    @property
    def roles_env(self) -> str:
        return ",".join(self.roles)


def sleeper(name: str) -> Program:
    """A healthy program that sleeps until stopped."""
    return Program(name, {"command": "/bin/sleep 100000"})


def failing(name: str) -> Program:
    """A program that fails at once and goes FATAL without a retry."""
    return Program(
        name,
        {"command": "/bin/false", "startsecs": "1", "startretries": "0", "autorestart": "false"},
    )


def main_conf_text(layout: Layout) -> str:
    """The main config: socket, RPC interface and the harness's own probe listener."""
    return f"""\
[supervisord]
nodaemon=true
logfile={layout.root}/supervisord.log
pidfile={layout.root}/supervisord.pid
childlogdir={layout.root}

[unix_http_server]
file={layout.socket}
chmod=0700

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{layout.socket}

[eventlistener:benchprobe]
command={sys.executable} -I -S {PROBE} {layout.events_file}
events=PROCESS_STATE
buffer_size=10000
startsecs=0
priority={layout.probe_priority}
stderr_logfile=NONE
"""


def program_text(program: Program, defaults: dict[str, str] | None = None) -> str:
    """One ``[program:x]`` section; ``defaults`` (common.conf) come first and are overridden."""
    options = {**(defaults or {}), **program.options}
    lines = [f"[program:{program.name}]", *(f"{k}={v}" for k, v in options.items())]
    return "\n".join(lines) + "\n"


def write_layout(roles: dict[str, list[Program]], probe_priority: int = LATE) -> Layout:
    """Write a fresh layout (one program per role file, roles as folders) under /tmp."""
    root = Path(tempfile.mkdtemp(prefix="rb", dir="/tmp"))
    names = tuple(p.name for programs in roles.values() for p in programs)
    layout = Layout(root, tuple(roles), names, probe_priority)
    for role, programs in roles.items():
        role_dir = layout.conf_dir / "roles" / role
        role_dir.mkdir(parents=True)
        for program in programs:
            (role_dir / f"{program.name}.conf").write_text(program_text(program))
    layout.main_conf.write_text(main_conf_text(layout))
    (layout.conf_dir / "common.conf").write_text("".join(f"{k}={v}\n" for k, v in COMMON.items()))
    sections = [program_text(p, COMMON) for programs in roles.values() for p in programs]
    layout.assembled_conf.write_text(main_conf_text(layout) + "\n" + "\n".join(sections))
    return layout


def remove_layout(layout: Layout) -> None:
    """Delete a trial's files."""
    shutil.rmtree(layout.root, ignore_errors=True)


def sleepers_in_roles(
    n: int, role_names: tuple[str, ...] = ("web", "worker")
) -> dict[str, list[Program]]:
    """N sleeping programs spread evenly over the given roles."""
    roles: dict[str, list[Program]] = {r: [] for r in role_names}
    for i in range(n):
        role = role_names[i % len(role_names)]
        roles[role].append(sleeper(f"{role}{i:03d}"))
    return roles
