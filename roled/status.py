"""``roled status``: a truthful probe for ``docker exec`` and Kubernetes exec probes, no port.

It finds the running roled through its runtime directory, asks supervisord over the private unix
socket, and never waits longer than its timeout, even for a supervisord that hangs.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from roled.model import Control, ProcessState, ProgramConfig
from roled.policy import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    describe_exit,
    healthy,
)
from roled.runtime import JOBS, WAITING, NotRunning, find_instance, read_programs, read_secrets
from roled.secrets import Secrets
from roled.supervisor import Client, ProcessInfo, Unavailable


@dataclass(frozen=True, slots=True)
class ProgramStatus:
    """One program as the probe sees it."""

    name: str
    state: ProcessState
    ok: bool
    pid: int | None
    uptime: int | None
    exitstatus: int | None
    detail: str
    # A scheduled program's next and last runs (``roled.jobs.status_document``), else None.
    schedule: Mapping[str, object] | None = None
    # What a process held back by its dependencies waits for (issue 14), else None.
    waiting: str | None = None


def assess(
    infos: Iterable[ProcessInfo],
    configs: Mapping[str, ProgramConfig],
    schedules: Mapping[str, Mapping[str, object]] | None = None,
) -> list[ProgramStatus]:
    """Each program's state, and whether a probe may call it fine: a scheduled program always
    is (between runs it is idle, and a failed run is roled's to judge, by its
    ``roled_on_failure``)."""
    statuses = []
    for info in sorted(infos, key=lambda info: info.namespec):
        config = configs.get(info.namespec, ProgramConfig())
        schedule = (schedules or {}).get(info.namespec)
        state = info.statename
        running = state == ProcessState.RUNNING
        exited = state == ProcessState.EXITED
        detail = _detail(info, config)
        statuses.append(
            ProgramStatus(
                name=info.namespec,
                state=state,
                ok=schedule is not None or healthy(state, info.exitstatus, config),
                pid=info.pid if running else None,
                uptime=max(0, info.now - info.start) if running else None,
                exitstatus=info.exitstatus if exited else None,
                detail=detail if schedule is None else _scheduled_detail(schedule, detail, running),
                schedule=schedule,
            )
        )
    return statuses


def _scheduled_detail(schedule: Mapping[str, object], detail: str, running: bool) -> str:
    parts = [detail] if running else []
    parts.append(f"next run {schedule.get('next_run') or 'none'}")
    last = schedule.get("last")
    if isinstance(last, dict):
        status = last.get("exitstatus")
        ended = describe_exit(status) if isinstance(status, int) else "stopped"
        failed = "" if last.get("ok") else ", failed"
        duration = last.get("duration")
        took = f"{duration:.1f}s" if isinstance(duration, int | float) else "?"
        parts.append(f"last run: {ended} after {took}{failed}")
    return "; ".join(parts)


def read_schedules(runtime_dir: Path) -> dict[str, Mapping[str, object]]:
    """The scheduled programs' runs a running roled published; none when unreadable."""
    try:
        document = json.loads((runtime_dir / JOBS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        # No scheduled program, or roled is starting or stopping.
        return {}
    if not isinstance(document, dict):
        return {}
    return {str(name): entry for name, entry in document.items() if isinstance(entry, dict)}


def read_waiting(runtime_dir: Path) -> dict[str, str]:
    """The processes a running roled holds back, each with what it waits for; none when
    unreadable (no dependencies, or roled is starting or stopping)."""
    try:
        document = json.loads((runtime_dir / WAITING).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {str(name): str(why) for name, why in document.items()}


def with_waiting(statuses: list[ProgramStatus], waiting: Mapping[str, str]) -> list[ProgramStatus]:
    """Statuses with each held-back process shown WAITING and not fine: it is not started,
    so no level (startup, ready) may count it as up."""
    return [
        replace(entry, ok=False, waiting=waiting[entry.name], detail=waiting[entry.name])
        if entry.name in waiting and entry.state == ProcessState.STOPPED
        else entry
        for entry in statuses
    ]


def _detail(info: ProcessInfo, config: ProgramConfig) -> str:
    state = info.statename
    if state == ProcessState.RUNNING:
        return f"pid {info.pid}, uptime {_duration(info.now - info.start)}"
    if state == ProcessState.EXITED:
        expected = "expected" if config.expects(info.exitstatus) else "not expected"
        return f"{describe_exit(info.exitstatus)} ({expected})"
    if state == ProcessState.STOPPED:
        return "not started (autostart=false)" if not config.autostart else "stopped"
    if state in {ProcessState.BACKOFF, ProcessState.FATAL}:
        return info.spawnerr or "exited too quickly"
    if state == ProcessState.STARTING:
        return f"starting for {_duration(info.now - info.start)}"
    return ""


def _duration(seconds: int) -> str:
    seconds = max(0, seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def status(runtime_dir: Path, timeout: float, as_json: bool) -> int:
    """Print every program's state; 0 when all are fine, 1 when not, 3 when nobody answers."""
    deadline = time.monotonic() + timeout
    try:
        instance = find_instance(runtime_dir)
        control = Control(Path(instance.socket), instance.username, instance.password)
        # One call, bounded by what is left of the timeout: a hung supervisord cannot hold it.
        client = Client(control, max(0.001, deadline - time.monotonic()))
        try:
            infos = client.processes()
        finally:
            client.close()
    except NotRunning as exc:
        return _unreachable(str(exc), as_json)
    except Unavailable as exc:
        return _unreachable(f"supervisord did not answer within {timeout:g}s ({exc})", as_json)
    statuses = _masked(
        with_waiting(
            assess(infos, read_programs(runtime_dir), read_schedules(runtime_dir)),
            read_waiting(runtime_dir),
        ),
        runtime_dir,
    )
    code = EXIT_OK if all(status.ok for status in statuses) else EXIT_FAILED
    if as_json:
        document = {
            "ok": code == EXIT_OK,
            "code": code,
            "pid": instance.pid,
            "programs": [_document(status) for status in statuses],
        }
        print(json.dumps(document, indent=2))
    else:
        width = max((len(status.name) for status in statuses), default=0)
        for entry in statuses:
            state = "WAITING" if entry.waiting is not None else entry.state
            print(f"{entry.name:<{width}}  {state:<8}  {entry.detail}".rstrip())
    return code


def _masked(statuses: list[ProgramStatus], runtime_dir: Path) -> list[ProgramStatus]:
    """Statuses with the values roled masks (env files, *_FILE files) masked in their text."""
    secrets = Secrets.of(read_secrets(runtime_dir))
    if not secrets:
        return statuses
    return [replace(entry, detail=secrets.mask(entry.detail)) for entry in statuses]


def _document(status: ProgramStatus) -> dict[str, object]:
    document = asdict(status)
    if status.schedule is None:
        # Only a scheduled program has a schedule to show.
        del document["schedule"]
    if status.waiting is None:
        del document["waiting"]
    else:
        document["state"] = "WAITING"
    return document


def _unreachable(why: str, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"ok": False, "code": EXIT_UNREACHABLE, "error": why}, indent=2))
    print(f"roled: error: cannot reach roled: {why}", file=sys.stderr)
    return EXIT_UNREACHABLE
