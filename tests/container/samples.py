"""What the container tests and manifest checks know about the repository and its samples."""

from __future__ import annotations

import configparser
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BASIC = REPO / "samples" / "basic"
DOCKER = REPO / "samples" / "docker"
KUBERNETES = REPO / "samples" / "kubernetes"
DOCKERFILE = DOCKER / "Dockerfile"
COMPOSE = DOCKER / "compose.yaml"

# The environment roled reads, as its contract states it; the samples may set only these,
# plus what the sample programs themselves read (SAMPLE_VARIABLES).
ROLED_VARIABLES = frozenset(
    {
        "ROLES",
        "ROLED_CONFIG",
        "ROLED_RUNTIME_DIR",
        "ROLED_SHUTDOWN_TIMEOUT",
        "ROLED_TERMINATION_LOG",
    }
)
SAMPLE_VARIABLES = frozenset({"WEB_PORT"})
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
# samples/basic/roles/web.conf serves on 127.0.0.1:${WEB_PORT:-8080}.
WEB_PORT = 8080


def role_files(role: str, roles_dir: Path = BASIC / "roles") -> list[Path]:
    """A role is roles/<name>.conf or the *.conf files of roles/<name>/."""
    single = roles_dir / f"{role}.conf"
    return [single] if single.is_file() else sorted((roles_dir / role).glob("*.conf"))


def known_roles(roles_dir: Path = BASIC / "roles") -> set[str]:
    files = {path.stem for path in roles_dir.glob("*.conf")}
    if not roles_dir.is_dir():
        return files
    return files | {path.name for path in roles_dir.iterdir() if path.is_dir()}


def role_programs(role: str, roles_dir: Path = BASIC / "roles") -> list[str]:
    """The program names a role defines, read the way supervisor reads them (INI sections)."""
    names = []
    for path in role_files(role, roles_dir):
        parser = configparser.RawConfigParser(strict=False)
        parser.read(path)
        sections = parser.sections()
        names += [name.split(":", 1)[1] for name in sections if name.startswith("program:")]
    return names
