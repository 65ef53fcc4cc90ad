"""Talking to supervisord: how to start it, its XML-RPC API with timeouts, roled's event FIFO."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from supervisor.states import getProcessStateDescription

from roled.model import LISTENER, Control
from roled.rpc import Connection, Fault, RpcError

# supervisor.xmlrpc.Faults.SHUTDOWN_STATE; importing that module costs PID 1 megabytes.
SHUTDOWN_STATE = 6


def supervisord_argv(config: Path) -> list[str]:
    """supervisord in the foreground, with the same interpreter as roled, stopped by the kernel
    if roled dies (``roled.spawned``)."""
    return [sys.executable, "-m", "roled.spawned", str(os.getpid()), "-n", "-c", str(config)]


class Unavailable(Exception):
    """supervisord did not answer: not up yet, shutting down, gone, or hung."""


@dataclass(frozen=True, slots=True)
class ProcessInfo:
    """One process as supervisord reports it."""

    group: str
    name: str
    state: int
    pid: int
    exitstatus: int
    spawnerr: str
    description: str
    start: int
    now: int
    stdout_logfile: str = ""
    stderr_logfile: str = ""

    @property
    def namespec(self) -> str:
        return namespec(self.group, self.name)

    @property
    def statename(self) -> str:
        return str(getProcessStateDescription(self.state))

    @classmethod
    def from_rpc(cls, info: dict[str, Any]) -> ProcessInfo:
        return cls(
            group=str(info["group"]),
            name=str(info["name"]),
            state=int(info["state"]),
            pid=int(info["pid"]),
            exitstatus=int(info["exitstatus"]),
            spawnerr=str(info.get("spawnerr", "")),
            description=str(info.get("description", "")),
            start=int(info.get("start", 0)),
            now=int(info.get("now", 0)),
            stdout_logfile=str(info.get("stdout_logfile", "")),
            stderr_logfile=str(info.get("stderr_logfile", "")),
        )


def namespec(group: str, name: str) -> str:
    """supervisor's short name: ``web`` for a one-process program, ``group:name`` otherwise."""
    return name if group == name else f"{group}:{name}"


class Client:
    """supervisord's XML-RPC API over its unix socket, every call bounded by a timeout.

    A supervisord that is down, hung or shutting down raises Unavailable; any other fault
    it answers with is raised as ``roled.rpc.Fault``.
    """

    def __init__(self, control: Control, timeout: float) -> None:
        self._connection = Connection(
            str(control.socket), control.username, control.password, timeout
        )

    def _call(self, method: str, *args: object) -> Any:
        try:
            return self._connection.call(method, *args)
        except Fault as fault:
            if fault.code == SHUTDOWN_STATE:
                raise Unavailable("supervisord is shutting down") from fault
            raise
        except RpcError as exc:
            raise Unavailable(str(exc)) from exc

    def state(self) -> str:
        return str(self._call("supervisor.getState")["statename"])

    def processes(self) -> list[ProcessInfo]:
        """Every user process; roled's own listener is not one of them."""
        infos = cast(list[dict[str, Any]], self._call("supervisor.getAllProcessInfo"))
        return [ProcessInfo.from_rpc(info) for info in infos if info["group"] != LISTENER]

    def process(self, name: str) -> ProcessInfo:
        return ProcessInfo.from_rpc(self._call("supervisor.getProcessInfo", name))

    def stop_processes(self, namespecs: list[str]) -> dict[str, str]:
        """Send each process its stop signal in one request and return at once (supervisord
        escalates to SIGKILL itself); the faults, by process. One request per process took
        seconds with hundreds of them, each waiting its turn in supervisord's loop."""
        calls = [
            {"methodName": "supervisor.stopProcess", "params": [namespec, False]}
            for namespec in namespecs
        ]
        results = self._call("system.multicall", calls)
        return {
            namespec: str(result.get("faultString", ""))
            for namespec, result in zip(namespecs, results, strict=True)
            if isinstance(result, dict) and "faultCode" in result
        }

    def stop_group(self, group: str) -> None:
        self._call("supervisor.stopProcessGroup", group, False)

    def shutdown(self) -> None:
        self._call("supervisor.shutdown")

    def reload_config(self) -> tuple[list[str], list[str], list[str]]:
        """supervisord re-reads its config file: the groups added, changed and removed."""
        ((added, changed, removed),) = self._call("supervisor.reloadConfig")
        return list(added), list(changed), list(removed)

    def add_group(self, group: str) -> None:
        self._call("supervisor.addProcessGroup", group)

    def remove_group(self, group: str) -> None:
        self._call("supervisor.removeProcessGroup", group)

    def tail_stderr(self, name: str, length: int) -> str:
        text, _offset, _overflow = self._call("supervisor.tailProcessStderrLog", name, 0, length)
        return str(text)

    def tail_stdout(self, name: str, length: int) -> str:
        text, _offset, _overflow = self._call("supervisor.tailProcessStdoutLog", name, 0, length)
        return str(text)

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True, slots=True)
class Event:
    """One event as roled's listener forwards it: a name and supervisor's key:value payload."""

    name: str
    fields: dict[str, str]

    @classmethod
    def parse(cls, line: str) -> Event:
        name, _, payload = line.partition(" ")
        fields = dict(token.split(":", 1) for token in payload.split() if ":" in token)
        return cls(name, fields)


class EventChannel:
    """The read side of the FIFO that roled's listener writes one line per event into."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        # Holding a write end keeps the FIFO from reporting end-of-file whenever the listener
        # restarts, which would otherwise make select() spin.
        self._keepalive = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._partial = b""

    @property
    def fileno(self) -> int:
        return self._fd

    def read(self) -> list[Event]:
        chunks = [self._partial]
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        *lines, self._partial = b"".join(chunks).split(b"\n")
        return [Event.parse(line.decode("utf-8", "replace")) for line in lines if line]

    def close(self) -> None:
        os.close(self._fd)
        os.close(self._keepalive)
