"""ModelDeployment reconciliation by the real operator against the emulated API server."""

from __future__ import annotations

from typing import Any

import pytest

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient, wait_for
from modelplane.testing.operator import condition, model_deployment

from .conftest import create_and_wait_for_children, observed_status, status_in_phase

OWNER = "modelplane.dev/model-deployment"


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def test_create_builds_owned_children_and_reports_status(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    created = kube.create(model_deployment("llama", namespace))

    deployment = wait_for(lambda: kube.get("Deployment", namespace, "llama"), what="Deployment")
    service = wait_for(lambda: kube.get("Service", namespace, "llama"), what="Service")
    status = wait_for(
        lambda: (
            observed_status(kube, namespace, "llama").get("observedGeneration") == 1
            and observed_status(kube, namespace, "llama")
        ),
        what="status",
    )

    for child in (deployment, service):
        assert child["metadata"]["labels"][OWNER] == "llama"
        (owner,) = child["metadata"]["ownerReferences"]
        assert owner["uid"] == created["metadata"]["uid"]
        assert owner["controller"] is True
    assert "--served-model-name" in " ".join(_container(deployment)["args"])
    assert status["url"] == f"http://llama.{namespace}.svc.cluster.local:8000/v1"
    assert status["phase"] == "Progressing"
    assert status["readyReplicas"] == 0
    assert condition({"status": status}, "Ready")["status"] == "False"
    assert condition({"status": status}, "Progressing")["status"] == "True"
    assert condition({"status": status}, "Degraded")["status"] == "False"


def test_update_rolls_out_replicas_image_and_args_and_prunes_what_is_no_longer_needed(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    create_and_wait_for_children(kube, namespace, "llama")
    assert kube.get("PodDisruptionBudget", namespace, "llama") is None

    kube.patch(
        "ModelDeployment",
        namespace,
        "llama",
        {
            "spec": {
                "replicas": 2,
                "engine": {"image": "registry.example/vllm:custom", "args": ["--enforce-eager"]},
            }
        },
    )

    def rolled_out() -> dict[str, Any] | None:
        deployment = kube.get("Deployment", namespace, "llama") or {}
        container = _container(deployment) if deployment else {}
        if (
            deployment.get("spec", {}).get("replicas") == 2
            and container.get("image") == "registry.example/vllm:custom"
            and "--enforce-eager" in container.get("args", [])
        ):
            return deployment
        return None

    wait_for(rolled_out, what="the new replicas, image and args on the Deployment")
    wait_for(
        lambda: kube.get("PodDisruptionBudget", namespace, "llama"), what="a PDB at 2 replicas"
    )
    wait_for(
        lambda: observed_status(kube, namespace, "llama").get("observedGeneration") == 2,
        what="gen 2",
    )

    kube.patch("ModelDeployment", namespace, "llama", {"spec": {"replicas": 1}})
    wait_for(
        lambda: kube.get("PodDisruptionBudget", namespace, "llama") is None,
        what="the PDB pruned at 1 replica",
    )


def test_hand_edited_deployment_is_restored(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    create_and_wait_for_children(kube, namespace, "llama")
    original = kube.get("Deployment", namespace, "llama")
    assert original is not None
    tampered = _container(original) | {"image": "attacker/vllm:latest"}

    kube.patch(
        "Deployment",
        namespace,
        "llama",
        {"spec": {"replicas": 7, "template": {"spec": {"containers": [tampered]}}}},
    )

    def restored() -> bool:
        deployment = kube.get("Deployment", namespace, "llama") or {}
        return bool(
            deployment
            and deployment["spec"]["replicas"] == 1
            and _container(deployment)["image"] == _container(original)["image"]
            and deployment["metadata"]["resourceVersion"] != original["metadata"]["resourceVersion"]
        )

    wait_for(restored, what="the Deployment restored to the desired state")


def test_deleted_child_is_recreated(operator: Any, kube: KubeHttpClient, namespace: str) -> None:
    create_and_wait_for_children(kube, namespace, "llama")
    service = kube.get("Service", namespace, "llama")
    deployment = kube.get("Deployment", namespace, "llama")
    assert service is not None
    assert deployment is not None

    kube.delete("Service", namespace, "llama")
    kube.delete("Deployment", namespace, "llama")

    new_service = wait_for(
        lambda: (
            (kube.get("Service", namespace, "llama") or {}).get("metadata", {}).get("uid")
            not in (None, service["metadata"]["uid"])
        ),
        what="a new Service",
    )
    new_deployment = wait_for(
        lambda: (
            (kube.get("Deployment", namespace, "llama") or {}).get("metadata", {}).get("uid")
            not in (None, deployment["metadata"]["uid"])
        ),
        what="a new Deployment",
    )
    assert new_service
    assert new_deployment


def test_ready_replicas_make_the_model_ready_and_losing_them_degrades_it(
    operator: Any, cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    create_and_wait_for_children(kube, namespace, "llama")

    cluster.set_deployment_status(namespace, "llama", ready_replicas=1)

    status = status_in_phase(kube, namespace, "llama", "Ready")
    ready = condition({"status": status}, "Ready")
    assert ready["status"] == "True"
    assert ready["reason"] == "ReplicasReady"
    assert status["readyReplicas"] == 1
    assert condition({"status": status}, "Progressing")["reason"] == "RolloutComplete"

    cluster.set_deployment_status(namespace, "llama", ready_replicas=0)

    status = status_in_phase(kube, namespace, "llama", "Degraded")
    assert condition({"status": status}, "Ready")["status"] == "False"
    assert condition({"status": status}, "Degraded")["status"] == "True"


def test_a_condition_keeps_its_transition_time_while_its_status_holds(
    operator: Any, cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    create_and_wait_for_children(kube, namespace, "llama")
    cluster.set_deployment_status(namespace, "llama", ready_replicas=1)
    status = status_in_phase(kube, namespace, "llama", "Ready")
    became_ready = condition({"status": status}, "Ready")["lastTransitionTime"]

    kube.patch("ModelDeployment", namespace, "llama", {"spec": {"replicas": 2}})

    status = wait_for(
        lambda: (
            "1/2"
            in condition(kube.get("ModelDeployment", namespace, "llama"), "Ready").get(
                "message", ""
            )
            and observed_status(kube, namespace, "llama")
        ),
        what="the Ready message to count 2 desired replicas",
    )
    ready = condition({"status": status}, "Ready")
    assert ready["status"] == "True"
    assert ready["lastTransitionTime"] == became_ready


def test_deleting_the_model_deployment_removes_its_children(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    create_and_wait_for_children(kube, namespace, "llama")

    kube.delete("ModelDeployment", namespace, "llama")

    wait_for(
        lambda: kube.get("ModelDeployment", namespace, "llama") is None,
        what="the ModelDeployment gone (the operator releases its finalizer)",
    )
    for kind in ("Deployment", "Service"):
        wait_for(lambda kind=kind: kube.list(kind, namespace) == [], what=f"{kind}s collected")


def test_invalid_spec_gets_a_reason_and_leaves_children_untouched(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    broken = model_deployment(
        "broken", namespace, {"resources": {"gpus": 2, "parallelism": {"tensor": 4}}}
    )
    kube.create(broken)
    status = status_in_phase(kube, namespace, "broken", "Failed")
    ready = condition({"status": status}, "Ready")
    assert ready["status"] == "False"
    assert ready["reason"] == "InvalidSpec"
    assert "tensor" in ready["message"]
    assert kube.list("Deployment", namespace) == []
    event = wait_for(
        lambda: next(
            (e for e in kube.list("Event", namespace) if e.get("reason") == "InvalidSpec"), None
        ),
        what="a Warning event about the invalid spec",
    )
    assert event["type"] == "Warning"
    assert event["involvedObject"]["name"] == "broken"

    # A valid resource turned invalid keeps its running children as they are.
    create_and_wait_for_children(kube, namespace, "llama")
    before = kube.get("Deployment", namespace, "llama")
    assert before is not None
    kube.patch("ModelDeployment", namespace, "llama", {"spec": {"engine": {"name": "tgi"}}})
    status_in_phase(kube, namespace, "llama", "Failed")
    after = kube.get("Deployment", namespace, "llama")
    assert after is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]

    kube.patch("ModelDeployment", namespace, "llama", {"spec": {"engine": {"name": "vllm"}}})
    wait_for(
        lambda: observed_status(kube, namespace, "llama").get("phase") == "Progressing",
        what="recovery once the spec is fixed",
    )


def test_failing_api_calls_are_retried_until_the_children_exist(
    operator: Any, cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    cluster.call(
        cluster.emulator.inject_failures,
        "PATCH",
        f"/namespaces/{namespace}/deployments/",
        status=503,
        times=3,
    )

    kube.create(model_deployment("llama", namespace))

    wait_for(
        lambda: observed_status(kube, namespace, "llama").get("observedGeneration") == 1,
        what="status after the failures passed",
    )
    assert kube.get("Deployment", namespace, "llama") is not None


def test_switching_from_triton_to_vllm_prunes_the_model_repository(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    kube.create(model_deployment("llama", namespace, {"engine": {"name": "triton"}}))
    repository = wait_for(
        lambda: kube.get("ConfigMap", namespace, "llama-model-repository"),
        what="Triton's model repository ConfigMap",
    )
    assert repository["metadata"]["labels"][OWNER] == "llama"

    kube.patch("ModelDeployment", namespace, "llama", {"spec": {"engine": {"name": "vllm"}}})

    wait_for(
        lambda: kube.get("ConfigMap", namespace, "llama-model-repository") is None,
        what="the ConfigMap pruned",
    )
    deployment = kube.get("Deployment", namespace, "llama")
    assert deployment is not None
    assert "vllm" in _container(deployment)["image"]


@pytest.mark.parametrize(
    "refusal",
    [
        422,  # invalid: a real API server refuses a change to a claim's immutable storage class
        403,  # denied by an admission webhook (controller-runtime's answer) or by RBAC
        400,  # denied by an admission webhook that sets no status
    ],
)
def test_a_child_the_api_refuses_degrades_the_model_instead_of_failing_every_pass(
    operator: Any, cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str, refusal: int
) -> None:
    cluster.call(
        cluster.emulator.inject_failures,
        "PATCH",
        f"/namespaces/{namespace}/persistentvolumeclaims/",
        status=refusal,
        times=10_000,
    )
    kube.create(model_deployment("llama", namespace, {"cache": {"size": "40Gi"}}))

    status = status_in_phase(kube, namespace, "llama", "Degraded")
    degraded = condition({"status": status}, "Degraded")
    assert degraded["reason"] == "ChildRejected"
    assert "PersistentVolumeClaim llama-cache" in degraded["message"]
    assert kube.get("Deployment", namespace, "llama") is not None  # the rest was applied

    cluster.call(cluster.emulator.clear_failures)

    wait_for(
        lambda: (
            kube.get("PersistentVolumeClaim", namespace, "llama-cache")
            and observed_status(kube, namespace, "llama").get("phase") == "Progressing"
        ),
        what="recovery on the next pass",
    )
