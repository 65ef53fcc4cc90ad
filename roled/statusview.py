"""What ``roled status`` shows: each program's state, and whether a probe may call it fine.

roled computes it in its own loop when a probe asks (``roled.requests``), from a fresh read
of supervisord, the programs' config and the scheduled programs' runs. Pure but for the type
of its input, supervisor.ProcessInfo.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, replace

from roled import levels
from roled.errors import EXIT_OK
from roled.model import ProcessState, ProgramConfig
from roled.policy import describe_exit, healthy
from roled.secrets import Secrets
from roled.supervisor import ProcessInfo


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
    # What a process held back by its dependencies waits for (``gate.Waiting``), else None.
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


def answer(
    infos: Iterable[ProcessInfo],
    configs: Mapping[str, ProgramConfig],
    schedules: Mapping[str, Mapping[str, object]],
    secrets: Secrets,
    *,
    published: levels.Published,
    waiting: Mapping[str, str],
    level: str,
    pid: int,
    as_json: bool,
) -> tuple[int, str]:
    """The probe's exit code at ``level`` and what it prints: a table, or JSON for machines."""
    statuses = _masked(with_waiting(assess(infos, configs, schedules), waiting), secrets)
    views = views_of(statuses, configs, published)
    verdict = levels.answer(
        level, views, published.rules, published.failure, reached=published.ready_once
    )
    code = verdict.code
    if as_json:
        document = {
            "ok": code == EXIT_OK,
            "code": code,
            "level": level,
            "reasons": [secrets.mask(reason) for reason in verdict.reasons],
            "pid": pid,
            "programs": [
                {**_document(status), **levels.program_fields(view)}
                for status, view in zip(statuses, views, strict=True)
            ],
        }
        return code, json.dumps(document, indent=2) + "\n"
    width = max((len(status.name) for status in statuses), default=0)
    lines = [
        f"{entry.name:<{width}}  {_state(entry):<8}  {entry.detail}".rstrip() for entry in statuses
    ]
    lines += [f"not {level}: {secrets.mask(reason)}" for reason in verdict.reasons]
    return code, "".join(f"{line}\n" for line in lines)


def views_of(
    statuses: Iterable[ProgramStatus],
    configs: Mapping[str, ProgramConfig],
    published: levels.Published,
) -> list[levels.ProgramView]:
    """Each process as the levels judge it: its state, the policy's view and its checks."""
    rules = published.rules
    return [
        levels.ProgramView(
            name=entry.name,
            state=entry.state.value,
            config=configs.get(entry.name, ProgramConfig()),
            exitstatus=entry.exitstatus,
            critical=not rules.is_noncritical(entry.name),
            main=rules.is_main(entry.name),
            ready_check=published.ready.get(entry.name),
            scheduled=entry.schedule is not None,
            checks=published.checks.get(entry.name, ()),
            waiting=entry.waiting,
        )
        for entry in statuses
    ]


def with_waiting(statuses: list[ProgramStatus], waiting: Mapping[str, str]) -> list[ProgramStatus]:
    """Statuses with each held-back process shown WAITING and not fine: it is not started,
    so no level (startup, ready) may count it as up."""
    return [
        replace(entry, ok=False, waiting=waiting[entry.name], detail=waiting[entry.name])
        if entry.name in waiting and entry.state == ProcessState.STOPPED
        else entry
        for entry in statuses
    ]


def _state(status: ProgramStatus) -> str:
    return "WAITING" if status.waiting is not None else status.state


def _masked(statuses: list[ProgramStatus], secrets: Secrets) -> list[ProgramStatus]:
    """Statuses with the values roled masks (env files, *_FILE files) masked in their text."""
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
