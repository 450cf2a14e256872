"""The operator's scenarios against a real cluster (see conftest.py for when they run).

Model pods never become ready here (no GPU and no real engine is assumed), so readiness is
covered through a Deployment scaled to zero: its status still comes from the real Deployment.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from modelplane.operator.reconcile import ReconcileOptions

from modelplane.testing.kube import ApiError, KubeHttpClient, wait_for
from modelplane.testing.operator import (
    condition,
    external_model,
    model_deployment,
    routing_policy,
    running_operator,
    secret,
)

pytestmark = pytest.mark.e2e

TIMEOUT = 90.0


def _status(kube: KubeHttpClient, namespace: str, name: str) -> dict[str, Any]:
    status: dict[str, Any] = (kube.get("ModelDeployment", namespace, name) or {}).get("status", {})
    return status


def _create(kube: KubeHttpClient, namespace: str, name: str) -> dict[str, Any]:
    created = kube.create(model_deployment(name, namespace))
    wait_for(lambda: kube.get("Deployment", namespace, name), timeout=TIMEOUT, what="Deployment")
    wait_for(
        lambda: _status(kube, namespace, name).get("observedGeneration") == 1,
        timeout=TIMEOUT,
        what="status of generation 1",
    )
    return created


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_create_update_and_status(operator: Any, kube: KubeHttpClient, namespace: str) -> None:
    created = _create(kube, namespace, "llama")
    service = kube.get("Service", namespace, "llama")
    assert service is not None
    assert service["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert _status(kube, namespace, "llama")["url"].startswith(f"http://llama.{namespace}.svc")

    kube.patch(
        "ModelDeployment",
        namespace,
        "llama",
        {"spec": {"replicas": 2, "engine": {"args": ["--enforce-eager"]}}},
    )

    wait_for(
        lambda: (
            (kube.get("Deployment", namespace, "llama") or {}).get("spec", {}).get("replicas") == 2
            and "--enforce-eager"
            in _container(kube.get("Deployment", namespace, "llama") or {})["args"]
        ),
        timeout=TIMEOUT,
        what="the update rolled out",
    )

    kube.patch("ModelDeployment", namespace, "llama", {"spec": {"replicas": 0}})
    wait_for(
        lambda: (
            condition(kube.get("ModelDeployment", namespace, "llama"), "Ready").get("reason")
            == "ScaledToZero"
        ),
        timeout=TIMEOUT,
        what="status from the Deployment scaled to zero",
    )


def test_drift_is_repaired(operator: Any, kube: KubeHttpClient, namespace: str) -> None:
    _create(kube, namespace, "llama")
    deployment = kube.get("Deployment", namespace, "llama")
    service = kube.get("Service", namespace, "llama")
    assert deployment is not None
    assert service is not None

    kube.patch("Deployment", namespace, "llama", {"spec": {"replicas": 5}})
    kube.delete("Service", namespace, "llama")

    wait_for(
        lambda: (
            (kube.get("Deployment", namespace, "llama") or {}).get("spec", {}).get("replicas") == 1
        ),
        timeout=TIMEOUT,
        what="the hand edit undone",
    )
    wait_for(
        lambda: (
            (kube.get("Service", namespace, "llama") or {}).get("metadata", {}).get("uid")
            not in (None, service["metadata"]["uid"])
        ),
        timeout=TIMEOUT,
        what="the Service recreated",
    )


def test_deleting_the_resource_deletes_its_children(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    _create(kube, namespace, "llama")

    kube.delete("ModelDeployment", namespace, "llama")

    wait_for(
        lambda: kube.list("Deployment", namespace) == [] and kube.list("Service", namespace) == [],
        timeout=TIMEOUT,
        what="the garbage collector to delete the children",
    )


def test_invalid_spec_is_refused_or_reported(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    broken = model_deployment(
        "broken", namespace, {"resources": {"gpus": 2, "parallelism": {"tensor": 4}}}
    )
    try:
        kube.create(broken)
    except ApiError as refused:
        refusal: int | None = refused.code
    else:
        refusal = None
    if refusal is not None:
        assert refusal == 422  # the CRD's CEL rule caught it at admission: just as good
        return
    wait_for(
        lambda: (
            condition(kube.get("ModelDeployment", namespace, "broken"), "Ready").get("reason")
            == "InvalidSpec"
        ),
        timeout=TIMEOUT,
        what="Ready=False InvalidSpec",
    )
    assert kube.list("Deployment", namespace) == []


def test_external_model_and_routing_policy_follow_their_secrets(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    api_key = f"sk-e2e-{uuid.uuid4().hex}"
    kube.create(external_model("gpt-4o", namespace, secret="openai", key="api-key"))
    kube.create(routing_policy("default", namespace, [_tenant("analytics")]))

    for kind, name in (("ExternalModel", "gpt-4o"), ("RoutingPolicy", "default")):
        wait_for(
            lambda kind=kind, name=name: (
                condition(kube.get(kind, namespace, name), "Ready").get("reason")
                == "SecretNotFound"
            ),
            timeout=TIMEOUT,
            what=f"{kind} Ready=False SecretNotFound",
        )

    kube.create(secret("openai", namespace, {"api-key": api_key}))
    kube.create(secret("tenant-keys", namespace, {"analytics": "k"}))

    for kind, name in (("ExternalModel", "gpt-4o"), ("RoutingPolicy", "default")):
        wait_for(
            lambda kind=kind, name=name: (
                condition(kube.get(kind, namespace, name), "Ready").get("status") == "True"
            ),
            timeout=TIMEOUT,
            what=f"{kind} Ready=True",
        )
    model = kube.get("ExternalModel", namespace, "gpt-4o")
    events = kube.list("Event", namespace)
    assert api_key not in str(model)
    assert api_key not in str(events)


def _tenant(name: str) -> dict[str, Any]:
    return {"name": name, "apiKeySecretRef": {"name": "tenant-keys", "key": name}}


def test_restarted_operator_converges_without_duplicates(
    kube: KubeHttpClient, options: ReconcileOptions, new_namespace: Callable[[str], str]
) -> None:
    namespace = new_namespace("mp-e2e-rs-")  # not served by the shared operator
    with running_operator(None, namespaces=(namespace,), options=options):
        _create(kube, namespace, "first")
    kube.patch("ModelDeployment", namespace, "first", {"spec": {"replicas": 2}})
    kube.delete("Service", namespace, "first")
    kube.create(model_deployment("second", namespace))

    with running_operator(None, namespaces=(namespace,), options=options):
        wait_for(
            lambda: (
                _status(kube, namespace, "first").get("observedGeneration") == 2
                and _status(kube, namespace, "second").get("observedGeneration") == 1
                and kube.get("Service", namespace, "first") is not None
            ),
            timeout=TIMEOUT,
            what="convergence after the restart",
        )

    names = sorted(d["metadata"]["name"] for d in kube.list("Deployment", namespace))
    assert names == ["first", "second"]
