"""The failure report's text (pure): what it says, and that it always fits in 4 KiB."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from roled.report import LIMIT, ProgramReport, fit, last_lines, render


def test_report_names_program_state_error_and_stderr() -> None:
    """The first line is the reason; then the program, how it ended, and its last stderr lines."""
    text = render(
        1,
        "program 'web' is FATAL",
        [ProgramReport("web", "FATAL", "exit status 3", "Exited too quickly", ("boom",))],
    )
    assert text == (
        "exiting with code 1: program 'web' is FATAL\n"
        "program 'web': FATAL, exit status 3: Exited too quickly\n"
        "last lines of 'web' stderr:\n"
        "  boom\n"
    )


def test_report_says_why_there_is_no_stderr() -> None:
    """A program whose stderr is not kept gets a note instead of lines."""
    note = "goes to /dev/stderr, which supervisord does not keep: see the container log"
    text = render(1, "r", [ProgramReport("web", "EXITED", note=note)])
    assert f"stderr of 'web': {note}" in text


def test_huge_stderr_keeps_the_last_lines_within_the_limit() -> None:
    """Oldest stderr lines go first, so the last line always survives within 4 KiB."""
    lines = tuple(f"line {number} " + "x" * 250 for number in range(100))
    text = render(1, "r", [ProgramReport("web", "FATAL", stderr=lines)])
    assert len(text.encode()) <= LIMIT
    assert text.rstrip().endswith(lines[-1])
    assert lines[0] not in text


def test_last_lines_skip_blanks_and_cut_long_lines() -> None:
    """The tail's last lines, blank lines left out, each cut to a readable length."""
    tail = "partial line\n\nfirst\n" + "y" * 1000 + "\nlast\n\n"
    lines = last_lines(tail, 3)
    assert lines[0] == "first"
    assert lines[1].endswith("...")
    assert len(lines[1]) == 300
    assert lines[2] == "last"


@given(
    reason=st.text(max_size=5000),
    stderr=st.lists(st.text(max_size=400), max_size=40),
    error=st.text(max_size=3000),
)
def test_report_never_exceeds_the_limit(reason: str, stderr: list[str], error: str) -> None:
    """Whatever the reason, error and stderr, the report fits Kubernetes' 4096 bytes."""
    text = render(3, reason, [ProgramReport("p", "FATAL", "", error, tuple(stderr))])
    assert len(text.encode()) <= LIMIT
    assert text.startswith("exiting with code 3: ")


@given(st.text(max_size=6000))
def test_fit_cuts_any_text_to_the_limit_on_a_character_boundary(text: str) -> None:
    """fit() keeps short text as it is and cuts long text to LIMIT bytes of valid UTF-8."""
    fitted = fit(text)
    assert len(fitted.encode()) <= LIMIT
    if len(text.encode()) <= LIMIT:
        assert fitted == text
    else:
        assert text.startswith(fitted.removesuffix("...\n"))
