"""deploy/k8s: each Kustomize overlay, rendered by `kubectl kustomize`, passes the Kubernetes
schema (kubernetes-validate, strict), and holds what a production deployment needs."""

from __future__ import annotations

from typing import Any

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
def resources(request: pytest.FixtureRequest) -> dict[str, dict[str, Any]]:
    documents = render(request.param)
    for document in documents:
        # Raises with the path of the offending field; strict: unknown fields are errors.
        kubernetes_validate.validate(document, kubernetes_validate.latest_version(), strict=True)
    return {document["kind"]: document for document in documents}


def test_every_resource_the_deployment_needs(resources: dict[str, dict[str, Any]]) -> None:
    assert set(resources) == {
        "ServiceAccount",
        "ConfigMap",
        "Deployment",
        "Service",
        "Ingress",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "NetworkPolicy",
        "Job",
    }
    # Secrets are referenced, never inlined.
    assert "Secret" not in resources


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
