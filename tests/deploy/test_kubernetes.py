"""deploy/k8s: each Kustomize overlay, rendered by `kubectl kustomize`, passes the Kubernetes
schema (kubernetes-validate, strict), and holds what a production deployment needs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml

from tests.deploy.tools import DEPLOY, run, tool

OVERLAYS = ("production", "staging")


def render(overlay: str) -> list[dict[str, Any]]:
    result = run(tool("kubectl"), "kustomize", str(DEPLOY / "k8s" / "overlays" / overlay))
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    """Every resource of the overlay by "Kind/name" (the ConfigMap's without its hash)."""
    documents = render(request.param)
    for document in documents:
        # Raises with the path of the offending field; strict: unknown fields are errors.
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    named = {}
    for document in documents:
        name = document["metadata"]["name"]
        if document["kind"] == "ConfigMap":
            name = name.rsplit("-", 1)[0]
        named[f"{document['kind']}/{name}"] = document
    assert len(named) == len(documents)
    return named


@pytest.fixture
def resources(rendered: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The API's resources by kind (the backup's and the Pushgateway's left out)."""
    return {
        key.split("/")[0]: document
        for key, document in rendered.items()
        if key.split("/")[1] in {"quantdesk", "quantdesk-settings", "quantdesk-migrate"}
    }


def test_every_resource_the_deployment_needs(rendered: dict[str, dict[str, Any]]) -> None:
    assert set(rendered) == {
        "ServiceAccount/quantdesk",
        "ConfigMap/quantdesk-settings",
        "Deployment/quantdesk",
        "Service/quantdesk",
        "Ingress/quantdesk",
        "HorizontalPodAutoscaler/quantdesk",
        "PodDisruptionBudget/quantdesk",
        "NetworkPolicy/quantdesk",
        "Job/quantdesk-migrate",
        "CronJob/quantdesk-backup",
        "PersistentVolumeClaim/quantdesk-backups",
        "NetworkPolicy/quantdesk-backup",
        "Deployment/quantdesk-pushgateway",
        "Service/quantdesk-pushgateway",
        "NetworkPolicy/quantdesk-pushgateway",
    }
    # Secrets are referenced, never inlined.
    assert not any(key.startswith("Secret/") for key in rendered)


def test_probes_resources_and_hardening(resources: dict[str, dict[str, Any]]) -> None:
    deployment = resources["Deployment"]
    pod = deployment["spec"]["template"]["spec"]
    (api,) = pod["containers"]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert api["startupProbe"]["httpGet"]["path"] == "/health/live"
    assert api["args"] == ["serve", "--no-migrate"]
    assert api["securityContext"]["readOnlyRootFilesystem"] is True
    assert api["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    secret_volumes = [v for v in pod["volumes"] if "secret" in v]
    assert [v["secret"]["secretName"] for v in secret_volumes] == ["quantdesk-secrets"]
    settings = resources["ConfigMap"]
    assert api["envFrom"] == [{"configMapRef": {"name": settings["metadata"]["name"]}}]
    # Every secret setting is a file path in the ConfigMap, none a value.
    for variable, value in settings["data"].items():
        if variable.endswith("_FILE"):
            assert value.startswith("/run/secrets/quantdesk/")
        assert not any(word in variable for word in ("PASSWORD", "TOKEN")) or variable.endswith(
            "_FILE"
        )
    assert "single-owner" in " ".join(deployment["metadata"]["annotations"])
    job = resources["Job"]["spec"]["template"]["spec"]["containers"][0]
    assert job["args"] == ["migrate", "upgrade", "head"]


def test_production_sizing_is_the_reviews(resources: dict[str, dict[str, Any]]) -> None:
    api = resources["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    if resources["Deployment"]["metadata"]["namespace"] == "quantdesk":
        assert api["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
        assert api["resources"]["limits"] == {"cpu": "2", "memory": "4Gi"}
    else:  # staging is smaller on purpose
        assert api["resources"]["limits"] == {"cpu": "1", "memory": "2Gi"}
    assert resources["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2
    assert resources["PodDisruptionBudget"]["spec"]["minAvailable"] == 1


def test_the_stream_websocket_goes_through_the_ingress(
    resources: dict[str, dict[str, Any]],
) -> None:
    ingress = resources["Ingress"]
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) >= 3600
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert "/api/v1/stream" in paths


def test_a_nightly_backup_whose_age_prometheus_sees(rendered: dict[str, dict[str, Any]]) -> None:
    """The CronJob runs `quantdesk backup --metrics-file`, as the API runs (settings, secrets,
    non-root, read-only), into a claimed volume, and PUTs that file to the Pushgateway, which
    the network policies let it reach: the feed of the QuantdeskBackupTooOld alert."""
    cron = rendered["CronJob/quantdesk-backup"]
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    (job,) = pod["containers"]
    api = rendered["Deployment/quantdesk"]["spec"]["template"]["spec"]
    assert job["image"] == api["containers"][0]["image"]
    assert job["envFrom"] == api["containers"][0]["envFrom"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert job["securityContext"]["readOnlyRootFilesystem"] is True
    assert job["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert set(job["resources"]) == {"requests", "limits"}
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert volumes["secrets"]["secret"]["secretName"] == "quantdesk-secrets"
    claim = volumes["backups"]["persistentVolumeClaim"]["claimName"]
    assert f"PersistentVolumeClaim/{claim}" in rendered
    mounts = {mount["name"]: mount["mountPath"] for mount in job["volumeMounts"]}
    assert mounts["secrets"] == "/run/secrets/quantdesk"
    # `quantdesk backup` writes to VAR_DIR/backups (the image's VAR_DIR: /var/lib/quantdesk).
    assert mounts["backups"] == "/var/lib/quantdesk/backups"
    assert job["command"] == ["/bin/sh", "-c"]
    script = job["args"][0]
    (metrics_file,) = re.findall(r"quantdesk backup --metrics-file (\S+)", script)
    assert metrics_file.startswith(mounts["tmp"] + "/")
    assert f"open('{metrics_file}', 'rb')" in script
    assert "method='PUT'" in script
    assert script.startswith("set -eu\n")  # a failed backup pushes nothing
    env = {item["name"]: item["value"] for item in job["env"]}
    push = urlsplit(env["QUANTDESK_BACKUP_PUSHGATEWAY"])
    assert push.path == "/metrics/job/quantdesk_backup"
    # The Service that name and port reach selects the Pushgateway's pods.
    service = rendered[f"Service/{push.hostname}"]
    assert [p["port"] for p in service["spec"]["ports"]] == [push.port]
    gateway = rendered["Deployment/quantdesk-pushgateway"]["spec"]["template"]
    assert service["spec"]["selector"].items() <= gateway["metadata"]["labels"].items()
    assert gateway["spec"]["securityContext"]["runAsNonRoot"] is True
    # Network: the backup pods may go out to the Pushgateway, which lets them (and
    # monitoring) in, and nothing else.
    backup_labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    out = rendered["NetworkPolicy/quantdesk-backup"]
    assert out["spec"]["podSelector"]["matchLabels"].items() <= backup_labels.items()
    (rule,) = out["spec"]["egress"]
    assert rule["to"][0]["podSelector"]["matchLabels"].items() <= (
        gateway["metadata"]["labels"].items()
    )
    assert [p["port"] for p in rule["ports"]] == [push.port]
    inbound = rendered["NetworkPolicy/quantdesk-pushgateway"]["spec"]
    assert inbound["policyTypes"] == ["Ingress", "Egress"]
    assert "egress" not in inbound
    (allowed,) = inbound["ingress"]
    selectors = [peer.get("podSelector", {}).get("matchLabels") for peer in allowed["from"]]
    assert backup_labels.items() >= selectors[0].items()
    # The API's own policy does not select the Pushgateway (which it would lock out).
    api_policy = rendered["NetworkPolicy/quantdesk"]["spec"]["podSelector"]["matchLabels"]
    assert not api_policy.items() <= gateway["metadata"]["labels"].items()
