"""Settings: every one a flag, an environment variable and a ``[roled]`` key, defaults in one place.

The flag wins over the environment, which wins over the main config's ``[roled]`` section.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from roled.errors import RoledError
from roled.locate import default_runtime_dir, find_main_config
from roled.logformat import FORMATS
from roled.model import Layout
from roled.policy import Rules, parse_bool, parse_budget, parse_exit_on, parse_names
from roled.tails import TAIL_BUFFER

# Kubernetes reads a container's termination message from this file (terminationMessagePath).
TERMINATION_LOG = Path("/dev/termination-log")


@dataclass(frozen=True, slots=True)
class Spec:
    """One setting: its flag, environment variable, ``[roled]`` key, default and help."""

    name: str
    flag: str
    env: str
    default: str | None
    help: str
    # A switch: the flag alone means "true" (the variable and [roled] key still take a value).
    switch: bool = False

    @property
    def key(self) -> str:
        return "default_roles" if self.name == "roles" else self.name


SPECS = (
    Spec("config", "--configuration", "ROLED_CONFIG", None, "main supervisord config"),
    Spec("roles", "--roles", "ROLES", None, "roles to run, comma or space separated; * for all"),
    Spec("roles_dir", "--roles-dir", "ROLED_ROLES_DIR", None, "roles folder (default: roles/)"),
    Spec("common", "--common", "ROLED_COMMON", None, "defaults file (default: common.conf)"),
    Spec("runtime_dir", "--runtime-dir", "ROLED_RUNTIME_DIR", None, "private runtime directory"),
    Spec("shutdown_timeout", "--shutdown-timeout", "ROLED_SHUTDOWN_TIMEOUT", "30", "seconds"),
    Spec("kill_grace", "--kill-grace", "ROLED_KILL_GRACE", "3", "seconds for leftovers"),
    Spec("hang_timeout", "--hang-timeout", "ROLED_HANG_TIMEOUT", "10", "seconds without answer"),
    Spec(
        "plan_timeout", "--plan-timeout", "ROLED_PLAN_TIMEOUT", "60", "seconds to read the config"
    ),
    Spec("log_format", "--log-format", "ROLED_LOG_FORMAT", "plain", "plain, prefix or json"),
    Spec("exit_on", "--exit-on", "ROLED_EXIT_ON", "fatal", "fatal, unexpected or any"),
    Spec("noncritical", "--noncritical", "ROLED_NONCRITICAL", None, "programs whose failure is ok"),
    Spec("main", "--main", "ROLED_MAIN", None, "program whose exit ends the container"),
    Spec("max_restarts", "--max-restarts", "ROLED_MAX_RESTARTS", None, "crash-loop budget N/SECS"),
    Spec(
        "exit_when_done",
        "--exit-when-done",
        "ROLED_EXIT_WHEN_DONE",
        "false",
        "exit 0 once every program is done",
        switch=True,
    ),
    Spec("termination_log", "--termination-log", "ROLED_TERMINATION_LOG", None, "failure report"),
    Spec(
        "tail_buffer",
        "--tail-buffer",
        "ROLED_TAIL_BUFFER",
        str(TAIL_BUFFER),
        "bytes of output kept per program stream for roled ctl tail (0: none)",
    ),
)
SPEC_BY_NAME = {spec.name: spec for spec in SPECS}
# Keys a [roled] section may hold: every setting but the config path itself.
ROLED_KEYS = frozenset(spec.key for spec in SPECS if spec.name != "config")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a run needs to know, resolved from flags, environment and ``[roled]``."""

    layout: Layout
    roles: tuple[str, ...] | None
    runtime_dir: Path
    shutdown_timeout: float
    kill_grace: float
    hang_timeout: float
    plan_timeout: float
    log_format: str
    rules: Rules
    termination_log: Path | None
    # [supervisord] keys set by supervisord's own options on roled's command line.
    supervisord: tuple[tuple[str, str], ...] = ()
    # False: shutdown_timeout is the default, which a config's own stopwaitsecs may lengthen.
    shutdown_timeout_given: bool = False
    # Bytes of each carried stream kept for ``roled ctl tail`` (0: none).
    tail_buffer: int = TAIL_BUFFER


class Lookup:
    """Raw setting values, with where each came from, in order of precedence."""

    def __init__(
        self, flags: Mapping[str, str | None], environ: Mapping[str, str], roled: Mapping[str, str]
    ) -> None:
        unknown = sorted(set(roled) - ROLED_KEYS)
        if unknown:
            raise RoledError(f"[roled] section: unknown key {unknown[0]!r}")
        self._flags = flags
        self._environ = environ
        self._roled = roled

    def raw(self, name: str) -> tuple[str | None, str]:
        """The winning value and a label naming its origin, for error messages."""
        spec = SPEC_BY_NAME[name]
        flag = self._flags.get(name)
        if flag is not None:
            return flag, spec.flag
        # An empty variable counts as unset, as compose files and manifests often leave them.
        if self._environ.get(spec.env):
            return self._environ[spec.env], spec.env
        if spec.key in self._roled:
            return self._roled[spec.key], f"[roled] {spec.key}"
        return spec.default, spec.flag

    def given(self, name: str) -> bool:
        """Whether a flag, a variable or the [roled] section set it (not the default)."""
        spec = SPEC_BY_NAME[name]
        return (
            self._flags.get(name) is not None
            or bool(self._environ.get(spec.env))
            or spec.key in self._roled
        )

    def text(self, name: str) -> tuple[str, str]:
        """The winning value ("" when unset and without default) and its origin."""
        value, origin = self.raw(name)
        return value or "", origin

    def seconds(self, name: str) -> float:
        return parse_seconds(*self.text(name))

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        return parse_choice(*self.text(name), choices)


def parse_choice(value: str, origin: str, choices: tuple[str, ...]) -> str:
    """One of choices, in any case and with spaces around, as every enumerated setting is."""
    word = value.strip().lower()
    if word not in choices:
        raise RoledError(f"{origin}: expected one of {', '.join(choices)}, got {value!r}")
    return word


def default_termination_log() -> Path | None:
    """Kubernetes' termination log when the container has one we may write, else none."""
    if TERMINATION_LOG.exists() and os.access(TERMINATION_LOG, os.W_OK):
        return TERMINATION_LOG
    return None


def resolve_rules(lookup: Lookup) -> Rules:
    """The exit policy; a value that means nothing is an error naming where it came from."""
    # Defaults come from SPECS through the lookup, never from here.
    return Rules(
        exit_on=parse_exit_on(*lookup.text("exit_on")),
        noncritical=parse_names(lookup.text("noncritical")[0]),
        main=lookup.text("main")[0].strip() or None,
        max_restarts=parse_budget(*lookup.text("max_restarts")),
        exit_when_done=parse_bool(*lookup.text("exit_when_done")),
    )


def parse_bytes(value: str, origin: str) -> int:
    """A whole number of bytes >= 0, or an error naming where it came from."""
    text = value.strip()
    if not text.isdigit():
        raise RoledError(f"{origin}: expected a number of bytes >= 0, got {value!r}")
    return int(text)


def parse_seconds(value: str, origin: str) -> float:
    """A non-negative, finite number of seconds, or an error naming where it came from."""
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds < 0:
        raise RoledError(f"{origin}: expected a number of seconds >= 0, got {value!r}")
    return seconds


def _optional_path(lookup: Lookup, name: str, default: Path) -> tuple[Path, bool]:
    value, _ = lookup.raw(name)
    return (Path(value), True) if value else (default, False)


def resolve(
    flags: Mapping[str, str | None],
    environ: Mapping[str, str],
    read_roled: Callable[[Path], Mapping[str, str]],
    parse_roles: Callable[[str], list[str]],
) -> Settings:
    """Settings from flags, environment and the main config's ``[roled]`` section."""
    main = find_main_config(flags.get("config"), environ)
    lookup = Lookup(flags, environ, read_roled(main))
    roles_dir, roles_dir_set = _optional_path(lookup, "roles_dir", main.parent / "roles")
    common, common_set = _optional_path(lookup, "common", main.parent / "common.conf")
    if roles_dir_set and not roles_dir.is_dir():
        raise RoledError(f"{roles_dir}: roles folder not found")
    if common_set and not common.is_file():
        raise RoledError(f"{common}: common.conf not found")
    if os.path.lexists(common) and not common.is_file():
        # A directory or a dangling link where common.conf belongs (a ConfigMap mounted at the
        # wrong level) would otherwise silently drop every default.
        raise RoledError(f"{common}: common.conf is not a readable file")
    has_roles = roles_dir.is_dir()

    raw_roles, origin = lookup.raw("roles")
    roles = tuple(parse_roles(raw_roles or ""))
    if roles and not has_roles:
        raise RoledError(f"{origin} is set but there is no roles folder {roles_dir}")

    runtime_value, _ = lookup.raw("runtime_dir")
    termination_log, _ = lookup.raw("termination_log")
    return Settings(
        layout=Layout(
            main=main,
            common=common if has_roles and common.is_file() else None,
            roles_dir=roles_dir if has_roles else None,
        ),
        roles=roles if has_roles else None,
        runtime_dir=Path(runtime_value) if runtime_value else default_runtime_dir(environ),
        shutdown_timeout=lookup.seconds("shutdown_timeout"),
        shutdown_timeout_given=lookup.given("shutdown_timeout"),
        kill_grace=lookup.seconds("kill_grace"),
        hang_timeout=lookup.seconds("hang_timeout"),
        plan_timeout=lookup.seconds("plan_timeout"),
        log_format=lookup.choice("log_format", FORMATS),
        rules=resolve_rules(lookup),
        termination_log=Path(termination_log) if termination_log else default_termination_log(),
        tail_buffer=parse_bytes(*lookup.text("tail_buffer")),
    )
