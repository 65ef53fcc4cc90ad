"""A private Docker engine for the container tests, and a base image built without any registry.

Nothing here installs software: it finds dockerd and debootstrap (Debian's docker.io and
debootstrap packages), runs dockerd with every path under one short temp dir, and tells
the caller why Docker cannot run when it cannot.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
VARIANT = "minbase"
# python3-venv brings ensurepip's wheels: the sample Dockerfile installs roled into a venv.
PACKAGES = ("python3", "python3-venv", "python3-pip")
DEFAULT_CACHE = Path("/var/cache/roled-test")
# The directories trimmed from the rootfs before it is cached: package downloads and
# indexes, which the image never needs and which are a third of its size.
TRIMMED = ("var/cache/apt/archives", "var/lib/apt/lists")


class DockerUnavailable(Exception):
    """Docker cannot run on this machine at all (a reason to skip, outside CI)."""


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.2) -> bool:
    """Poll condition until it holds or timeout seconds pass; return whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def check_can_run_docker() -> None:
    """Raise DockerUnavailable naming what is missing: root, namespaces, dockerd, debootstrap."""
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd needs root (run the container tests as root)")
    probe = subprocess.run(
        ["unshare", "--mount", "--pid", "--net", "--fork", "true"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if probe.returncode != 0:
        reason = probe.stderr.strip() or f"exit {probe.returncode}"
        raise DockerUnavailable(f"creating namespaces is not permitted here: {reason}")
    missing = [tool for tool in ("dockerd", "debootstrap") if find_tool(tool) is None]
    if missing:
        raise DockerUnavailable(
            f"{' and '.join(missing)} not found: apt-get install -y docker.io debootstrap"
        )


def find_tool(name: str) -> str | None:
    """Find a program on PATH or in the sbin folders a non-login PATH may lack."""
    return shutil.which(name) or shutil.which(name, path="/usr/local/sbin:/usr/sbin:/sbin")


def find_docker_client(dockerd: str) -> str:
    """The docker CLI shipped with dockerd, so client and engine are one release."""
    here = Path(dockerd).resolve().parent
    for candidate in (here / "docker", here.parent / "bin" / "docker"):
        if os.access(candidate, os.X_OK):
            return str(candidate)
    client = shutil.which("docker")
    if client is None:
        raise DockerUnavailable("dockerd found but no docker client")
    return client


@dataclass
class Engine:
    """A running private dockerd and the environment its client needs."""

    base: Path
    process: subprocess.Popen[bytes]
    client: str
    env: dict[str, str]

    @property
    def log(self) -> Path:
        return self.base / "dockerd.log"

    def run(
        self,
        *args: str,
        timeout: float = 120,
        check: bool = True,
        stdin: bytes | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run one docker command against this engine; stdout and stderr are captured."""
        # Bytes in (a tar context may be piped in), text out.
        raw = subprocess.run(
            [self.client, *args], env=self.env, input=stdin, capture_output=True, timeout=timeout
        )
        result = subprocess.CompletedProcess(
            raw.args,
            raw.returncode,
            raw.stdout.decode(errors="replace"),
            raw.stderr.decode(errors="replace"),
        )
        if check and result.returncode != 0:
            message = (
                f"docker {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout[-4000:]}{result.stderr[-4000:]}"
            )
            raise AssertionError(message)
        return result

    def log_tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return "(no dockerd log)"


def start_engine(timeout: float = 60) -> Engine:
    """Start dockerd with its data root, exec root, pidfile and socket under a short temp dir."""
    dockerd = find_tool("dockerd")
    if dockerd is None:
        raise DockerUnavailable("dockerd not found: apt-get install -y docker.io")
    # /tmp, not TMPDIR or pytest's tmp_path: containerd's sockets live under the exec
    # root and a unix socket path must stay under 108 bytes.
    base = Path(tempfile.mkdtemp(prefix="rd-", dir="/tmp"))
    socket = base / "docker.sock"
    config = base / "daemon.json"
    # An empty daemon.json keeps a host /etc/docker/daemon.json out of the test.
    config.write_text("{}\n")
    (base / "cli").mkdir()
    argv = [
        dockerd,
        f"--config-file={config}",
        f"--data-root={base / 'data'}",
        f"--exec-root={base / 'exec'}",
        f"--pidfile={base / 'dockerd.pid'}",
        f"--host=unix://{socket}",
        "--iptables=false",
        "--ip-masq=false",
        "--bridge=none",
    ]
    log = (base / "dockerd.log").open("wb")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    env = dict(os.environ)
    env.update(
        DOCKER_HOST=f"unix://{socket}",
        # The user's ~/.docker (credentials, contexts, plugins) has no say in the test.
        DOCKER_CONFIG=str(base / "cli"),
        # The classic builder: no frontend image to pull, and --network host needs no
        # entitlement. The sample Dockerfile uses nothing BuildKit-only.
        DOCKER_BUILDKIT="0",
    )
    env.pop("DOCKER_CONTEXT", None)
    engine = Engine(base, process, find_docker_client(dockerd), env)

    def answers() -> bool:
        if process.poll() is not None:
            return True
        probe = engine.run("version", "--format", "{{.Server.Version}}", check=False, timeout=10)
        return probe.returncode == 0

    ready = wait_until(answers, timeout, interval=0.3)
    if process.poll() is not None or not ready:
        tail = engine.log_tail()
        stop_engine(engine)
        state = f"exited {process.returncode}" if process.poll() is not None else "did not answer"
        raise RuntimeError(f"dockerd {state} within {timeout:g}s; its log ends:\n{tail}")
    return engine


def stop_engine(engine: Engine, timeout: float = 30) -> None:
    """Stop dockerd by its PID (SIGKILL after timeout), unmount what it left, remove its dirs."""
    process = engine.process
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            # The whole session: dockerd's managed containerd and shims run in it too.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout)
    unmount_under(engine.base)
    shutil.rmtree(engine.base, ignore_errors=True)


def mounts_under(base: Path) -> list[str]:
    """Mount points at or below base, deepest first (the order to unmount them in)."""
    prefix = str(base.resolve())
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like octal-escaped.
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def unmount_under(base: Path) -> None:
    for point in mounts_under(base):
        if subprocess.run(["umount", point], capture_output=True).returncode != 0:
            # Busy (a process of a crashed run still holds it): detach it instead.
            subprocess.run(["umount", "--lazy", point], capture_output=True)


# --- the base image ---------------------------------------------------------


def debian_mirror(sources: Sequence[Path] | None = None, suite: str = SUITE) -> str:
    """The Debian mirror apt is configured with for suite, read from /etc/apt/sources.list*."""
    if sources is None:
        etc = Path("/etc/apt")
        sources = [etc / "sources.list", *sorted((etc / "sources.list.d").glob("*.list"))]
        sources += sorted((etc / "sources.list.d").glob("*.sources"))
    for path in sources:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        parse = _deb822_entries if path.suffix == ".sources" else _one_line_entries
        for uris, suites in parse(text):
            if suite in suites:
                return uris[0]
    names = ", ".join(str(path) for path in sources)
    raise DockerUnavailable(f"no apt source for Debian {suite} in {names}")


def _one_line_entries(text: str) -> Iterator[tuple[list[str], list[str]]]:
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            # Options such as [signed-by=...] may hold spaces until the closing bracket.
            while words and not words[0].endswith("]"):
                words.pop(0)
            words = words[1:]
        if len(words) >= 2:
            yield [words[0]], [words[1]]


def _deb822_entries(text: str) -> Iterator[tuple[list[str], list[str]]]:
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, value = line.split(":", 1)
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split():
            continue
        if fields.get("enabled", "yes").lower() == "no":
            continue
        uris = fields.get("uris", "").split()
        if uris:
            yield uris, fields.get("suites", "").split()


def rootfs_key() -> str:
    """What the cached rootfs depends on: suite, variant, packages and architecture."""
    arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    spec = f"{SUITE} {VARIANT} {arch} {','.join(PACKAGES)}"
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def cache_dir() -> Path | None:
    """ROLED_TEST_CACHE, else /var/cache/roled-test; None when it cannot be written."""
    path = Path(os.environ.get("ROLED_TEST_CACHE") or DEFAULT_CACHE)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return path if os.access(path, os.W_OK) else None


def rootfs_tarball(work: Path, timeout: float = 900) -> Path:
    """A tar of a debootstrapped Debian rootfs: from the cache, or made now (and cached)."""
    key = rootfs_key()
    cache = cache_dir()
    name = f"{SUITE}-{VARIANT}-{key}.tar"
    refresh = os.environ.get("ROLED_TEST_REFRESH") == "1"
    if cache is not None and (cache / name).is_file() and not refresh:
        return cache / name
    root = work / "rootfs"
    argv = [
        str(find_tool("debootstrap") or "debootstrap"),
        f"--variant={VARIANT}",
        f"--include={','.join(PACKAGES)}",
        SUITE,
        str(root),
        debian_mirror(),
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        log = root / "debootstrap" / "debootstrap.log"
        detail = log.read_text(errors="replace")[-3000:] if log.is_file() else result.stderr
        unmount_under(root)
        raise RuntimeError(f"debootstrap exited {result.returncode}:\n{detail}")
    # debootstrap may leave /proc or /sys mounted inside the rootfs when it is interrupted.
    unmount_under(root)
    for trimmed in TRIMMED:
        for entry in (root / trimmed).glob("*"):
            if entry.is_file():
                entry.unlink()
    target = (cache or work) / name
    partial = target.with_suffix(f".{os.getpid()}.partial")
    # GNU tar: several times faster than tarfile on a 250 MB tree, and the archive
    # keeps numeric owners, which is what docker import reads.
    subprocess.run(
        ["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."],
        check=True,
        timeout=timeout,
    )
    partial.rename(target)
    shutil.rmtree(root)
    return target


def trust_store() -> Path | None:
    """The CA bundle this machine's pip trusts, so pip inside a build trusts the same."""
    for candidate in (
        os.environ.get("PIP_CERT"),
        os.environ.get("SSL_CERT_FILE"),
        os.environ.get("REQUESTS_CA_BUNDLE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def build_base_image(engine: Engine, work: Path) -> str:
    """Import the rootfs as an image and add the host's trust store; return its tag."""
    tarball = rootfs_tarball(work)
    key = tarball.stem.rsplit("-", 1)[-1]
    rootfs_tag = f"roled-test-rootfs:{key}"
    engine.run("import", str(tarball), rootfs_tag, timeout=300)
    context = work / "base-context"
    context.mkdir()
    lines = [f"FROM {rootfs_tag}"]
    store = trust_store()
    if store is not None:
        # A machine whose HTTPS goes through an inspecting proxy trusts that proxy's CA;
        # minbase has no ca-certificates, and pip's own bundle would not know that CA.
        shutil.copyfile(store, context / "ca.crt")
        (context / "pip.conf").write_text("[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n")
        lines += [
            "COPY ca.crt /etc/ssl/certs/ca-certificates.crt",
            "COPY pip.conf /etc/pip.conf",
        ]
    (context / "Dockerfile").write_text("\n".join(lines) + "\n")
    tag = f"roled-test-base:{key}"
    engine.run("build", "--network", "none", "-t", tag, str(context), timeout=300)
    return tag


def repo_context(root: Path) -> bytes:
    """The repository root as a tar build context: tracked and new files, not ignored ones.

    Without a .dockerignore at the root, the plain folder would also send .git, .tox and
    venvs to the engine; git's own view of the tree is what a clean checkout builds from.
    """
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=False,
    )
    with tempfile.TemporaryFile() as buffer:
        # GNU format: dockerd 20.10's classic builder failed to find --file in Python's
        # default PAX archive ("failed to parse Dockerfile") and reads GNU tar's fine.
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
            if listing.returncode != 0:
                # Not a git checkout (an unpacked sdist, say): the folder, minus the
                # usual heavy droppings. Names carry no "./": the engine looks up
                # --file by its exact name in the archive.
                for child in sorted(root.iterdir()):
                    if child.name not in {".git", ".tox", ".venv", "build", "dist"}:
                        tar.add(child, arcname=child.name)
            else:
                for name in sorted(set(listing.stdout.decode().split("\0")) - {""}):
                    if (root / name).exists():
                        tar.add(root / name, arcname=name, recursive=False)
        buffer.seek(0)
        return buffer.read()


def build_arguments_from_environment() -> list[str]:
    """Docker's predefined proxy build arguments, passed on when this machine sets them."""
    names = ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")
    arguments = []
    for name in names:
        if os.environ.get(name):
            arguments += ["--build-arg", f"{name}={os.environ[name]}"]
    return arguments
