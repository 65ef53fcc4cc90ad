"""The failure report: what failed and its last stderr lines, in 4 KiB, for people and Kubernetes.

Gathered from supervisord while it still answers, rendered by a pure function, and written to the
termination log (``/dev/termination-log``, which ``kubectl describe pod`` shows) on exit.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from roled import log
from roled.model import ProcessState
from roled.policy import describe_exit
from roled.rpc import Fault
from roled.supervisor import Client, ProcessInfo, Unavailable

# Kubernetes keeps at most 4096 bytes of a termination message; more would be cut anywhere.
LIMIT = 4096
# What is read of a log's end: enough for the last lines, and a bounded XML-RPC answer.
TAIL_BYTES = 2048
TAIL_LINES = 10
LINE_CHARS = 300


@dataclass(frozen=True, slots=True)
class ProgramReport:
    """One failed program: its state, how it ended, supervisord's error, its last stderr lines."""

    program: str
    state: ProcessState
    exit: str = ""
    error: str = ""
    stderr: tuple[str, ...] = ()
    note: str = ""

    @property
    def why(self) -> str:
        """The short explanation for a log line: supervisord's error, else how it ended."""
        return self.error or self.exit or self.state


def last_lines(text: str, count: int = TAIL_LINES) -> tuple[str, ...]:
    """The last count non-blank lines of a log's tail, each cut to a readable length."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    return tuple(_cut(line, LINE_CHARS) for line in lines[-count:])


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 3] + "..."


def render(code: int, reason: str, programs: Sequence[ProgramReport], limit: int = LIMIT) -> str:
    """The report's text; its first line is roled's last word, and it fits in limit bytes."""
    reports = list(programs)
    text = _render(code, reason, reports)
    # Drop the oldest stderr lines of the longest tail first: the last ones say the most.
    while len(text.encode()) > limit and any(report.stderr for report in reports):
        index = max(range(len(reports)), key=lambda i: len(reports[i].stderr))
        reports[index] = replace(reports[index], stderr=reports[index].stderr[1:])
        text = _render(code, reason, reports)
    return fit(text, limit)


def fit(text: str, limit: int = LIMIT) -> str:
    """text cut to at most limit bytes of UTF-8, never inside a character, marked with ``...``."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 4].decode(errors="ignore") + "...\n"


def _render(code: int, reason: str, programs: Sequence[ProgramReport]) -> str:
    lines = [f"exiting with code {code}: {reason}"]
    for report in programs:
        facts = ", ".join(fact for fact in (report.state, report.exit) if fact)
        error = f": {report.error}" if report.error else ""
        lines.append(f"program {report.program!r}: {facts}{error}")
        if report.stderr:
            lines.append(f"last lines of {report.program!r} stderr:")
            lines.extend(f"  {line}" for line in report.stderr)
        elif report.note:
            lines.append(f"stderr of {report.program!r}: {report.note}")
    return "\n".join(lines) + "\n"


def gather(
    client: Client,
    program: str,
    state: ProcessState,
    exitstatus: int | None,
    known: ProcessInfo | None,
    *,
    redirect_stderr: bool = False,
    carried: Callable[[str, str], bytes | None] | None = None,
) -> ProgramReport:
    """What supervisord can still tell about a failed program; what it cannot is said so.

    carried(program, channel) is the end of a channel roled passed on itself, or None: for
    output that goes through roled, supervisord keeps no log to ask.
    """
    try:
        info: ProcessInfo | None = client.process(program)
    except (Unavailable, Fault):
        # Fault: removed by a reload meanwhile; what the last sync saw still helps.
        info = known
    if info is None:
        return ProgramReport(program, state, describe_exit(exitstatus), note="supervisord is gone")
    if exitstatus is None and info.statename == ProcessState.EXITED:
        exitstatus = info.exitstatus
    channel = "stdout" if redirect_stderr else "stderr"
    data = carried(program, channel) if carried is not None else None
    if data is not None:
        stderr = last_lines(data.decode(errors="replace"))
        note = "" if stderr else "empty" + (" (redirected to stdout)" if redirect_stderr else "")
    else:
        stderr, note = _tail(client, info, redirect_stderr)
    return ProgramReport(program, state, describe_exit(exitstatus), info.spawnerr, stderr, note)


def _tail(client: Client, info: ProcessInfo, redirect_stderr: bool) -> tuple[tuple[str, ...], str]:
    if redirect_stderr:
        path, read, redirected = info.stdout_logfile, client.tail_stdout, " (redirected to stdout)"
    else:
        path, read, redirected = info.stderr_logfile, client.tail_stderr, ""
    if not path or path.upper() == "NONE":
        return (), "not kept (its log file is NONE)"
    if not _is_regular_file(path):
        where = f"goes to {path}{redirected}"
        return (), f"{where}, which supervisord does not keep: see the container log"
    try:
        text = read(info.namespec, TAIL_BYTES)
    except (Unavailable, Fault):
        # supervisord refuses calls while it shuts down; the file is still there to read.
        text = _read_end(path, TAIL_BYTES)
    lines = last_lines(text)
    return lines, "" if lines else f"empty{redirected}"


def _is_regular_file(path: str) -> bool:
    if path.startswith(("/dev/", "/proc/")):
        # A console path names whatever supervisord's stream is (a file, when a test or a shell
        # redirects it), never a log of this program.
        return False
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _read_end(path: str, length: int) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(max(0, os.fstat(file.fileno()).st_size - length))
            return file.read(length).decode(errors="replace")
    except OSError:
        return ""


def write_termination_log(path: Path | None, text: str) -> None:
    """Leave the report where the orchestrator looks, cut to its 4 KiB; failing to is a warning,
    not a crash."""
    if path is None:
        return
    try:
        path.write_text(fit(text), encoding="utf-8")
    except OSError as exc:
        log.warning(f"cannot write the failure report to {path}: {exc.strerror}")
