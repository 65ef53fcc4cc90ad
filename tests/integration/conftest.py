"""Fixtures for the integration tests that run roled as another uid."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import skip_or_fail
from tests.portable import PortablePython, build_portable_python, run_failure

# Not a uid the tests use: the probe reads as "others" do, and leaves nothing they own behind.
PROBE_UID = 54321


@pytest.fixture(scope="session")
def portable_python() -> Iterator[PortablePython]:
    """This interpreter and roled copied where any uid can run them, once per session.

    Outside /tmp, which the sandbox of test_unprivileged replaces with a fresh one.
    """
    if os.getuid() != 0 or shutil.which("setpriv") is None:
        skip_or_fail("running roled as another uid needs root and setpriv (util-linux)")
    root = Path(tempfile.mkdtemp(prefix="roled-python-", dir="/var/tmp"))
    try:
        root.chmod(0o755)
        portable = build_portable_python(root)
        failure = run_failure(portable, PROBE_UID)
        if failure is not None:
            skip_or_fail(
                f"uid {PROBE_UID} cannot run a copy of this Python made in {root} ({failure});"
                " run the tests with a Python built in the usual layout (bin/, lib/pythonX.Y/)"
            )
        yield portable
    finally:
        shutil.rmtree(root, ignore_errors=True)
