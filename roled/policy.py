"""What a program's transition means for the container: nothing, or a verdict with an exit code.

Pure: it sees states and transitions, never processes or signals.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SUPERVISORD = 3
EXIT_KILLED = 4


@dataclass(frozen=True, slots=True)
class Transition:
    """A program moved from one state to another (supervisor's state names)."""

    program: str
    from_state: str
    to_state: str
    expected: bool | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """Why roled stops the container, and the exit code it will report."""

    code: int
    reason: str
    programs: tuple[str, ...] = ()


def judge(transition: Transition) -> Verdict | None:
    """A FATAL program ends the container with exit code 1."""
    if transition.to_state == "FATAL":
        return Verdict(
            EXIT_FAILED, f"program {transition.program!r} is FATAL", (transition.program,)
        )
    return None
