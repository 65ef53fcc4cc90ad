"""A copy of the test interpreter, roled's packages and tests/programs that any uid can run.

Tests that run roled as another uid use it, so they pass wherever the checkout and its virtual
environment live, even below a folder other users cannot enter (``/root``, ``mktemp -d``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import psutil
import supervisor

import roled
from tests.conftest import PROGRAMS, program

VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
# Parts of the standard library that roled, supervisord and the helper programs never import;
# leaving them out keeps the copy small (pyenv's test suite alone is over 100 MB).
UNUSED = ("test", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "config-*")
PROBE = "import sys, psutil, roled.cli, supervisor.supervisord; print(sys.prefix)"


@dataclass(frozen=True, slots=True)
class PortablePython:
    """An interpreter in a folder every uid can read, with roled and its dependencies."""

    root: Path
    python: str
    programs: Path
    env: dict[str, str]

    def program(self, name: str, *args: str) -> str:
        """A ``command=`` line running one of the helper programs copied with it."""
        return program(name, *args, python=self.python, programs=self.programs)


def _place(source: str, target: str) -> None:
    """Hard-link a file others may read (fast, takes no space); copy and open up any other."""
    mode = os.stat(source).st_mode
    if mode & stat.S_IROTH:
        # Another filesystem refuses the link: a copy does as well.
        with contextlib.suppress(OSError):
            os.link(source, target)
            return
    shutil.copy2(source, target)
    readable = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    os.chmod(target, stat.S_IMODE(mode) | readable | (0o111 if mode & stat.S_IXUSR else 0))


def _copy_tree(source: Path, target: Path, *unused: str) -> None:
    shutil.copytree(
        source,
        target,
        copy_function=_place,
        ignore=shutil.ignore_patterns(*unused),
        dirs_exist_ok=True,
    )


def build_portable_python(root: Path) -> PortablePython:
    """Copy this interpreter, its standard library, roled, supervisor, psutil and tests/programs.

    The executable sits in ``prefix/bin`` next to ``prefix/lib/pythonX.Y``, so Python finds
    its standard library there (the landmark search of getpath) and no variable points back.
    """
    prefix = root / "prefix"
    (prefix / "bin").mkdir(parents=True)
    executable = prefix / "bin" / VERSION
    _place(os.path.realpath(sys.executable), str(executable))
    lib = prefix / sys.platlibdir / VERSION
    _copy_tree(Path(sysconfig.get_path("stdlib")), lib, *UNUSED)
    dynload = Path(sysconfig.get_path("platstdlib")) / "lib-dynload"
    if dynload.is_dir() and not (lib / "lib-dynload").is_dir():
        _copy_tree(dynload, lib / "lib-dynload")
    env = {}
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        # The executable's run path names the original folder, which the uid may not enter.
        name = str(sysconfig.get_config_var("INSTSONAME"))
        libdir = str(sysconfig.get_config_var("LIBDIR"))
        (prefix / "lib").mkdir(exist_ok=True)
        _place(os.path.join(libdir, name), str(prefix / "lib" / name))
        env["LD_LIBRARY_PATH"] = str(prefix / "lib")
    for module in (roled, supervisor, psutil):
        package = Path(str(module.__file__)).resolve().parent
        _copy_tree(package, lib / "site-packages" / package.name)
    # supervisor 4.2.x imports pkg_resources, which needs setuptools' vendored packages.
    for name in ("pkg_resources", "setuptools"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin is not None:
            package = Path(spec.origin).resolve().parent
            _copy_tree(package, lib / "site-packages" / package.name)
    _copy_tree(PROGRAMS, root / "programs")
    # Folders take their source's mode, and a virtual environment's may be closed to others.
    for folder, _, _ in os.walk(root):
        os.chmod(folder, 0o755)
    return PortablePython(root, str(executable), root / "programs", env)


def run_failure(portable: PortablePython, uid: int) -> str | None:
    """Why uid cannot import roled with the copy (its last error line), or None when it can."""
    argv = [
        "setpriv",
        f"--reuid={uid}",
        f"--regid={uid}",
        "--clear-groups",
        "env",
        "-i",
        *(f"{key}={value}" for key, value in portable.env.items()),
        portable.python,
        "-c",
        PROBE,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, cwd=portable.root, timeout=60)
    prefix = str(Path(portable.python).parents[1])
    if result.returncode == 0:
        # Found its standard library elsewhere: the copy would not be what runs.
        found = result.stdout.strip()
        return None if found == prefix else f"its sys.prefix is {found}, not {prefix}"
    lines = (result.stderr or f"exit {result.returncode}").strip().splitlines()
    return lines[-1]
