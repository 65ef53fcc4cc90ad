"""Talking to supervisord: how to start it, its XML-RPC API with timeouts, roled's event FIFO."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from supervisor.states import getProcessStateDescription

from roled.model import LISTENER, Control, ProcessState, namespec
from roled.rpc import Connection, Fault, RpcError

# supervisor.xmlrpc.Faults.SHUTDOWN_STATE; importing that module costs PID 1 megabytes.
SHUTDOWN_STATE = 6


def supervisord_argv(config: Path, logs: Path) -> list[str]:
    """supervisord in the foreground, with the same interpreter as roled, stopped by the kernel
    if roled dies, and never waiting on roled's FIFOs in ``logs`` then (``roled.spawned``)."""
    pid = str(os.getpid())
    return [sys.executable, "-m", "roled.spawned", pid, str(logs), "-n", "-c", str(config)]


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
    def statename(self) -> ProcessState:
        return ProcessState.parse(str(getProcessStateDescription(self.state)))

    @classmethod
    def from_rpc(cls, info: object) -> ProcessInfo:
        """One entry of getProcessInfo's answer; a missing key or a wrong type is an RpcError."""
        if not isinstance(info, dict):
            raise RpcError(f"process info is {type(info).__name__}, not a struct")
        return cls(
            group=_field(info, "group", str),
            name=_field(info, "name", str),
            state=_field(info, "state", int),
            pid=_field(info, "pid", int),
            exitstatus=_field(info, "exitstatus", int),
            spawnerr=_field(info, "spawnerr", str, ""),
            description=_field(info, "description", str, ""),
            start=_field(info, "start", int, 0),
            now=_field(info, "now", int, 0),
            stdout_logfile=_field(info, "stdout_logfile", str, ""),
            stderr_logfile=_field(info, "stderr_logfile", str, ""),
        )


# typing.TYPE_CHECKING without importing typing, which PID 1 would carry for nothing.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TypeVar

    _T = TypeVar("_T", int, str)
    _R = TypeVar("_R")
_MISSING: Any = object()


def _field(info: dict[str, Any], key: str, kind: type[_T], default: _T = _MISSING) -> _T:
    """info[key], which must be of kind (a bool is not an int here); default when optional."""
    if key not in info:
        if default is _MISSING:
            raise RpcError(f"process info without {key!r}")
        return default
    value = info[key]
    if type(value) is not kind:
        raise RpcError(f"process info {key!r} is {type(value).__name__}, not {kind.__name__}")
    return value


def _statename(answer: object) -> str:
    if not isinstance(answer, dict) or not isinstance(answer.get("statename"), str):
        raise RpcError("getState without a statename")
    return str(answer["statename"])


def _process_infos(answer: object) -> list[ProcessInfo]:
    if not isinstance(answer, list):
        raise RpcError(f"getAllProcessInfo answered {type(answer).__name__}, not an array")
    return [ProcessInfo.from_rpc(info) for info in answer]


def _list_of(count: int) -> Callable[[object], list[Any]]:
    def read(answer: object) -> list[Any]:
        if not isinstance(answer, list) or len(answer) != count:
            raise RpcError(f"expected an array of {count} results")
        return answer

    return read


def _strings(value: object) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RpcError("expected an array of names")
    return list(value)


def _reload_result(answer: object) -> tuple[list[str], list[str], list[str]]:
    # [[added, changed, removed]]
    if not isinstance(answer, list) or len(answer) != 1:
        raise RpcError("reloadConfig answered no [[added, changed, removed]]")
    lists = answer[0]
    if not isinstance(lists, list) or len(lists) != 3:
        raise RpcError("reloadConfig answered no [added, changed, removed]")
    added, changed, removed = (_strings(item) for item in lists)
    return added, changed, removed


def _is_fault(result: object) -> bool:
    return isinstance(result, dict) and "faultCode" in result


def _faults(namespecs: list[str], results: list[Any]) -> dict[str, str]:
    """The faults among one multicall's results, by process."""
    return {
        namespec: str(result.get("faultString", ""))
        for namespec, result in zip(namespecs, results, strict=True)
        if _is_fault(result)
    }


def _tail_text(answer: object) -> str:
    # [text, offset, overflow]
    if not isinstance(answer, list) or len(answer) != 3 or not isinstance(answer[0], str):
        raise RpcError("tail answered no [text, offset, overflow]")
    return answer[0]


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

    def _ask(self, read: Callable[[Any], _R], method: str, *args: object) -> _R:
        """Call method and read its answer; an answer of the wrong shape means supervisord
        misbehaves, which roled treats like a supervisord that does not answer."""
        answer = self._call(method, *args)
        try:
            return read(answer)
        except RpcError as exc:
            raise Unavailable(f"{method}: malformed answer: {exc}") from exc

    def state(self) -> str:
        return self._ask(_statename, "supervisor.getState")

    def processes(self) -> list[ProcessInfo]:
        """Every user process; roled's own listener is not one of them."""
        infos = self._ask(_process_infos, "supervisor.getAllProcessInfo")
        return [info for info in infos if info.group != LISTENER]

    def some_processes(self, namespecs: list[str]) -> list[ProcessInfo]:
        """These processes only, in one request; a fault for any of them is an answer of the
        wrong shape (roled asks only for processes of the config supervisord runs)."""

        def read(answer: object) -> list[ProcessInfo]:
            results = _list_of(len(namespecs))(answer)
            faults = _faults(namespecs, results)
            if faults:
                raise RpcError(f"faults for {', '.join(sorted(faults))}")
            return [ProcessInfo.from_rpc(result) for result in results]

        method = "supervisor.getProcessInfo"
        calls = [{"methodName": method, "params": [name]} for name in namespecs]
        return self._ask(read, "system.multicall", calls)

    def process(self, name: str) -> ProcessInfo:
        return self._ask(ProcessInfo.from_rpc, "supervisor.getProcessInfo", name)

    def stop_processes(self, namespecs: list[str]) -> dict[str, str]:
        """Send each process its stop signal in one request and return at once (supervisord
        escalates to SIGKILL itself); the faults, by process. One request per process took
        seconds with hundreds of them, each waiting its turn in supervisord's loop."""
        return self._each("supervisor.stopProcess", namespecs)

    def start_processes(self, namespecs: list[str]) -> dict[str, str]:
        """Start each process in one request without waiting for it to run; the faults (a
        spawn error, already started), by process. Its events come one per turn of
        supervisord's loop, so a dependent need not wait for them: the caller knows the state
        a start leaves (``ProgramConfig.state_when_started``). Reading each state back in the
        same request made its answer 20 kB for 20 processes, which supervisord writes 4 kB
        per turn of its loop: 20 ms more for each level of the bench's graph."""
        return self._each("supervisor.startProcess", namespecs)

    def _each(self, method: str, namespecs: list[str]) -> dict[str, str]:
        """``method(namespec, False)`` for each process in one multicall; the faults."""
        calls = [{"methodName": method, "params": [namespec, False]} for namespec in namespecs]
        results = self._ask(_list_of(len(namespecs)), "system.multicall", calls)
        return _faults(namespecs, results)

    def signal_process(self, namespec: str, signal: str) -> None:
        self._call("supervisor.signalProcess", namespec, signal)

    def stop_group(self, group: str) -> None:
        self._call("supervisor.stopProcessGroup", group, False)

    def shutdown(self) -> None:
        self._call("supervisor.shutdown")

    def reload_config(self) -> tuple[list[str], list[str], list[str]]:
        """supervisord re-reads its config file: the groups added, changed and removed."""
        return self._ask(_reload_result, "supervisor.reloadConfig")

    def add_group(self, group: str) -> None:
        self._call("supervisor.addProcessGroup", group)

    def remove_group(self, group: str) -> None:
        self._call("supervisor.removeProcessGroup", group)

    def tail_stderr(self, name: str, length: int) -> str:
        return self._ask(_tail_text, "supervisor.tailProcessStderrLog", name, 0, length)

    def tail_stdout(self, name: str, length: int) -> str:
        return self._ask(_tail_text, "supervisor.tailProcessStdoutLog", name, 0, length)

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
