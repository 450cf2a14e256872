"""What every child shares: valid manifests, labels, ownership, and the kinds reconcile prunes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions
from modelplane.operator.builders import (
    CHILD_KINDS,
    OWNER_LABEL,
    build_children,
    pod_selector,
    pod_selector_string,
    status_url,
)
from modelplane.operator.settings import KedaSettings, OperatorSettings
from packaging.version import Version

from modelplane.api import ModelDeployment

MakeMd = Callable[..., ModelDeployment]
KEDA = OperatorSettings(keda=KedaSettings(enabled=True))
DEFAULT = OperatorSettings()
# Every Kubernetes minor from 1.30 on that kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = sorted(
    {v.rsplit(".", 1)[0] for v in all_versions() if Version(v) >= Version("1.30")}, key=Version
)

ADAPTERS = [
    {"name": "sql", "uri": "hf://acme/sql-lora"},
    {"name": "legal", "uri": "s3://acme-adapters/legal"},
    {"name": "support", "uri": "pvc://adapters/support"},
]
ENV = {
    "envFrom": [{"secretRef": {"name": "hf-token"}}, {"configMapRef": {"name": "tuning"}}],
    "env": [
        {"name": "VLLM_LOGGING_LEVEL", "value": "DEBUG"},
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
    ],
}

# name -> (spec overrides, settings)
SCENARIOS: dict[str, tuple[dict[str, Any], OperatorSettings]] = {
    "vllm 1 gpu": ({}, DEFAULT),
    "vllm 1 gpu with cache": ({"cache": {"size": "50Gi"}}, DEFAULT),
    "vllm tensor parallel from s3 with cache": (
        {
            "model": {"uri": "s3://acme/llama-70b"},
            "resources": {"gpus": 4, "gpuType": "a100-80gb", "parallelism": {"tensor": 4}},
            "cache": {"size": "200Gi", "storageClassName": "fast"},
            "replicas": 2,
        },
        DEFAULT,
    ),
    "vllm adapters and env": (
        {"model": {"adapters": ADAPTERS}, "engine": {"name": "vllm", **ENV}},
        DEFAULT,
    ),
    "vllm pvc model": ({"model": {"uri": "pvc://store/llama"}}, DEFAULT),
    "vllm hpa": ({"autoscaling": {"minReplicas": 1, "maxReplicas": 4}}, DEFAULT),
    "vllm keda": ({"autoscaling": {"minReplicas": 0, "maxReplicas": 4}}, KEDA),
    "vllm no gpu": ({"resources": {"gpus": 0, "cpu": 4, "memory": "16Gi"}}, DEFAULT),
    "vllm scheduling": (
        {
            "nodeSelector": {"pool": "gpu"},
            "tolerations": [{"key": "spot", "operator": "Exists", "effect": "NoExecute"}],
            "priorityClassName": "inference",
        },
        OperatorSettings(shm_size_limit="8Gi", cache_access_mode="ReadWriteMany"),
    ),
    "vllm cache for one pod": (
        {"cache": {"size": "50Gi"}},
        OperatorSettings(cache_access_mode="ReadWriteOncePod"),
    ),
    "triton 1 gpu": ({"engine": {"name": "triton"}}, DEFAULT),
    "triton tensor parallel with cache": (
        {
            "engine": {"name": "triton"},
            "resources": {"gpus": 2, "parallelism": {"tensor": 2}},
            "cache": {"size": "100Gi"},
        },
        DEFAULT,
    ),
    "triton adapters and hpa": (
        {
            "engine": {"name": "triton", **ENV},
            "model": {"adapters": ADAPTERS},
            "autoscaling": {"maxReplicas": 3},
        },
        DEFAULT,
    ),
    "triton gs model with keda": (
        {
            "engine": {"name": "triton"},
            "model": {"uri": "gs://b/m"},
            "autoscaling": {"maxReplicas": 2},
        },
        KEDA,
    ),
}


def scenario_children(make_md: MakeMd, scenario: str) -> list[dict[str, Any]]:
    spec, settings = SCENARIOS[scenario]
    return build_children(make_md(**spec), settings)


def deployment_of(children: list[dict[str, Any]]) -> dict[str, Any]:
    [deployment] = [child for child in children if child["kind"] == "Deployment"]
    return deployment


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_builtin_child_validates_strictly(
    make_md: MakeMd, scenario: str, version: str
) -> None:
    for child in scenario_children(make_md, scenario):
        if child["apiVersion"] == "keda.sh/v1alpha1":
            continue  # not a built-in kind: test_scaling_builder checks its fields
        kubernetes_validate.validate(child, version, strict=True)


def test_strict_validation_rejects_a_misspelt_field(make_md: MakeMd) -> None:
    deployment = deployment_of(scenario_children(make_md, "vllm 1 gpu"))
    deployment["spec"]["template"]["spec"]["containers"][0]["startupprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, "1.30", strict=True)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_child_is_labelled_and_owned_by_the_model_deployment(
    make_md: MakeMd, scenario: str
) -> None:
    for child in scenario_children(make_md, scenario):
        metadata = child["metadata"]
        assert metadata["namespace"] == "ml"
        labels = metadata["labels"]
        assert labels[OWNER_LABEL] == "llama"
        assert labels["app.kubernetes.io/instance"] == "llama"
        assert labels["app.kubernetes.io/name"] in ("vllm", "triton")
        assert labels["app.kubernetes.io/managed-by"] == "modelplane-operator"
        assert labels["app.kubernetes.io/part-of"] == "modelplane"
        assert labels["app.kubernetes.io/component"]
        assert metadata["ownerReferences"] == [
            {
                "apiVersion": "modelplane.dev/v1alpha1",
                "kind": "ModelDeployment",
                "name": "llama",
                "uid": "6f1c1b52-4c2e-4f38-9d7e-3f1f0b7a9c10",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_children_are_listed_kinds_with_unique_names_per_kind(
    make_md: MakeMd, scenario: str
) -> None:
    listed = {(kind.api_version, kind.kind) for kind in CHILD_KINDS}
    children = scenario_children(make_md, scenario)
    keys = [(c["apiVersion"], c["kind"], c["metadata"]["name"]) for c in children]
    assert {key[:2] for key in keys} <= listed
    assert len(set(keys)) == len(keys)


def test_all_listed_kinds_are_built_by_some_scenario(make_md: MakeMd) -> None:
    built = {
        (child["apiVersion"], child["kind"])
        for scenario in SCENARIOS
        for child in scenario_children(make_md, scenario)
    }
    assert built == {(kind.api_version, kind.kind) for kind in CHILD_KINDS}


def test_pods_carry_the_selector_labels_the_service_and_budget_use(make_md: MakeMd) -> None:
    md = make_md(replicas=2)
    children = build_children(md, DEFAULT)
    [deployment] = [c for c in children if c["kind"] == "Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"] == pod_selector(md)
    assert pod_selector(md).items() <= pod_labels.items()
    assert pod_selector_string(md) == (
        "app.kubernetes.io/component=model-server,modelplane.dev/model-deployment=llama"
    )


def test_pod_selector_does_not_change_with_the_engine(make_md: MakeMd) -> None:
    # A Deployment's selector is immutable: switching engines must roll, not fail.
    assert pod_selector(make_md()) == pod_selector(make_md(engine={"name": "triton"}))


def test_build_is_deterministic_and_json_serialisable(make_md: MakeMd) -> None:
    for scenario in SCENARIOS:
        first = json.dumps(scenario_children(make_md, scenario), sort_keys=True)
        assert first == json.dumps(scenario_children(make_md, scenario), sort_keys=True)


def test_built_manifests_share_no_mutable_state_with_the_inputs(make_md: MakeMd) -> None:
    md = make_md(engine={"name": "vllm", **ENV})
    first = build_children(md, DEFAULT)
    deployment_of(first)["spec"]["template"]["spec"]["containers"][0]["env"].clear()
    second = build_children(md, DEFAULT)
    assert deployment_of(second)["spec"]["template"]["spec"]["containers"][0]["env"]


def test_status_url_is_the_services_cluster_dns_name(make_md: MakeMd) -> None:
    md = make_md()
    assert status_url(md) == "http://llama.ml.svc.cluster.local:8000/v1"
    assert status_url(md, "corp.internal") == "http://llama.ml.svc.corp.internal:8000/v1"


def test_a_body_without_uid_or_namespace_cannot_be_built() -> None:
    base = {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "spec": {"model": {"uri": "hf://a/b", "contextWindow": 8}, "engine": {"name": "vllm"}},
    }
    without_uid = ModelDeployment.from_body({**base, "metadata": {"name": "m", "namespace": "n"}})
    with pytest.raises(ValueError, match=r"no metadata\.uid"):
        build_children(without_uid, DEFAULT)
    without_namespace = ModelDeployment.from_body({**base, "metadata": {"name": "m", "uid": "u"}})
    with pytest.raises(ValueError, match=r"no metadata\.namespace"):
        build_children(without_namespace, DEFAULT)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_every_resource_quantity_is_a_string(make_md: MakeMd, scenario: str) -> None:
    # The Kubernetes Python client refuses numbers where the API wants a quantity.
    pod = deployment_of(scenario_children(make_md, scenario))["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        for amounts in container.get("resources", {}).values():
            assert all(isinstance(amount, str) for amount in amounts.values())


@pytest.mark.parametrize(
    ("access_mode", "co_located", "strategy"),
    [
        ("ReadWriteOnce", True, "RollingUpdate"),
        ("ReadWriteMany", False, "RollingUpdate"),
        ("ReadWriteOncePod", False, "Recreate"),
    ],
)
def test_pods_sharing_a_cache_claim_can_all_mount_it(
    make_md: MakeMd, access_mode: str, co_located: bool, strategy: str
) -> None:
    md = make_md(cache={"size": "50Gi"}, replicas=2)
    settings = OperatorSettings(cache_access_mode=access_mode)  # type: ignore[arg-type]
    deployment = next(c for c in build_children(md, settings) if c["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]

    # A ReadWriteOnce claim attaches to one node: replicas and a rollout's new pod must go there.
    affinity = pod.get("affinity", {}).get("podAffinity", {})
    terms = affinity.get("requiredDuringSchedulingIgnoredDuringExecution", [])
    assert bool(terms) is co_located
    for term in terms:
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == pod_selector(md)
    # A ReadWriteOncePod claim admits one pod: the old one must stop before the new one starts.
    assert deployment["spec"]["strategy"]["type"] == strategy


def test_without_a_cache_claim_pods_are_placed_freely(make_md: MakeMd) -> None:
    deployment = next(c for c in build_children(make_md(), DEFAULT) if c["kind"] == "Deployment")

    assert "affinity" not in deployment["spec"]["template"]["spec"]
