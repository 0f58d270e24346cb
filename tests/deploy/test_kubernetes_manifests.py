"""deploy/kubernetes: every manifest validates against the Kubernetes schema (strict: an unknown
or misspelt field fails), and every workload has what running it safely needs."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no py.typed
import pytest
import yaml
from kubernetes_validate.utils import ValidationError  # type: ignore[import-untyped]

from onbehalf.nats_setup import init_bus_secrets
from onbehalf.stack import DEFAULT_PORTS, PROJECT_ROOT, SERVICES, nats_server_binary

MANIFESTS = PROJECT_ROOT / "deploy" / "kubernetes"
# The oldest release we support and the newest the validator ships schemas for.
KUBERNETES_VERSIONS = ["1.30.0", "1.37.0"]
CONSOLE_PORT = 8000
SECRET_FILES = {
    "ONBEHALF_NATS_SEED_FILE": "nats.nk",
    "ONBEHALF_EVENT_SIGNING_KEY_FILE": "event.key",
}


def services() -> dict[str, int]:
    """The services to deploy: the five, and the console once it exists."""
    found = {name: DEFAULT_PORTS[name] for name in SERVICES}
    if (PROJECT_ROOT / "services" / "console" / "app.py").exists():
        found["console"] = CONSOLE_PORT
    return found


def manifest_files() -> list[Path]:
    return sorted(p for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in manifest_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                yield path, document


def resources(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in documents() if d["kind"] == kind}


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_manifest_validates_against_the_schema(version: str) -> None:
    checked, failures = 0, []
    for path, document in documents():
        try:
            kubernetes_validate.validate(document, version, strict=True)
        except ValidationError as exc:
            failures.append(f"{path.name} {document['kind']}/{document['metadata']['name']}: {exc}")
        checked += 1
    assert not failures, "\n".join(failures)
    assert checked >= 3 * len(services()) + 5


def test_the_validator_catches_a_typo() -> None:
    """The check above would catch a misspelt field: strict schemas refuse unknown ones."""
    deployment = dict(resources("Deployment")["orders"])
    deployment["spec"] = {**deployment["spec"], "replica": 2}
    with pytest.raises(ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]


@pytest.mark.parametrize("name", sorted(services()))
def test_every_service_has_probes_resources_a_pdb_and_a_service(name: str) -> None:
    deployments = resources("Deployment")
    assert name in deployments, f"no Deployment for {name}"
    deployment = deployments[name]
    labels = pod_labels(deployment)
    assert deployment["spec"]["replicas"] >= 2, "one replica cannot survive a node drain"
    port = services()[name]

    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert any(p["containerPort"] == port for p in container["ports"])
    probe_paths = {}
    for probe in ("readinessProbe", "livenessProbe"):
        assert probe in container, f"{name}: no {probe}"
        probe_paths[probe] = container[probe]["httpGet"]["path"]
    assert probe_paths["livenessProbe"] == "/healthz"
    assert probe_paths["readinessProbe"] == "/readyz"
    for amount in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][amount]), f"{name}: {amount}"
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"configMapRef": {"name": "onbehalf-settings"}} in container["envFrom"]

    pdbs = [p for p in resources("PodDisruptionBudget").values() if p["spec"]["selector"]]
    assert any(selects(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs), name
    assert any(
        selects(s["spec"]["selector"], labels)
        and any(p["port"] == port for p in s["spec"]["ports"])
        for s in resources("Service").values()
        if s["spec"].get("selector")
    ), f"{name}: no Service"


@pytest.mark.parametrize("name", SERVICES)
def test_secrets_are_mounted_read_only_as_compose_does(name: str) -> None:
    """The seed, the event-signing key and the public keys as read-only files named by the same
    settings as in docker-compose.yml; DATABASE_URL from the service's Secret."""
    pod = resources("Deployment")[name]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["name"] == f"onbehalf-{name}"
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    files = dict(SECRET_FILES)
    files["ONBEHALF_EVENT_PUBLIC_KEYS_FILE"] = "public.json"
    if name == "identity":
        files["ONBEHALF_SIGNING_KEK_FILE"] = "signing-kek"
        assert env["ONBEHALF_ADMIN_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"]
    for setting, filename in files.items():
        path = Path(env[setting]["value"])
        assert path.name == filename, setting
        mount = mounts[str(path.parent)]
        assert mount["readOnly"] is True, setting
        secret = volumes[mount["name"]]["secret"]
        expected = "onbehalf-event-public-keys" if filename == "public.json" else f"onbehalf-{name}"
        assert secret["secretName"] == expected, setting


def test_nats_is_a_three_node_jetstream_cluster() -> None:
    statefulset = resources("StatefulSet")["nats"]
    assert statefulset["spec"]["replicas"] == 3
    headless = resources("Service")[statefulset["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    config = resources("ConfigMap")["nats-cluster"]["data"]["cluster.conf"]
    routes = re.findall(r"nats-route://(nats-\d)\.nats-headless:6222", config)
    assert routes == ["nats-0", "nats-1", "nats-2"]
    assert "jetstream" in config and "include auth.conf" in config
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"].startswith("/healthz")
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    pdb = resources("PodDisruptionBudget")["nats"]
    assert pdb["spec"]["maxUnavailable"] == 1, "two of three must stay up for the quorum"
    # The users and permissions come from the Secret made of `onbehalf nats init`'s nats.conf.
    projected = statefulset["spec"]["template"]["spec"]["volumes"][0]["projected"]["sources"]
    assert {
        "secret": {
            "name": "onbehalf-nats-config",
            "items": [{"key": "nats.conf", "path": "auth.conf"}],
        }
    } in projected

    settings = resources("ConfigMap")["onbehalf-settings"]["data"]
    assert settings["NATS_URL"].split(",") == [
        f"nats://nats-{n}.nats-headless:4222" for n in range(3)
    ]
    assert settings["ONBEHALF_STREAM_REPLICAS"] == "3"


def test_the_streams_are_provisioned_with_three_replicas() -> None:
    job = resources("Job")["nats-provision"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    command = container["command"]
    assert command[:3] == ["onbehalf", "nats", "provision"], shlex.join(command)
    assert command[command.index("--replicas") + 1] == "3"
    assert command[command.index("--nats-creds") + 1].endswith("provisioner.nk")


def test_the_nats_configuration_is_one_nats_server_accepts(tmp_path: Path) -> None:
    """cluster.conf from the ConfigMap beside auth.conf as `onbehalf nats init` writes it (the
    projected volume), checked by the real nats-server (`-t`: parse, validate, exit)."""
    config = resources("ConfigMap")["nats-cluster"]["data"]["cluster.conf"]
    (tmp_path / "cluster.conf").write_text(config)
    bus = init_bus_secrets(tmp_path / "secrets")
    (tmp_path / "auth.conf").write_text(bus.server_config.read_text())
    done = subprocess.run(
        [nats_server_binary(), "-c", str(tmp_path / "cluster.conf"), "-t"],
        env={**os.environ, "POD_NAME": "nats-0"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "is valid" in done.stdout + done.stderr
