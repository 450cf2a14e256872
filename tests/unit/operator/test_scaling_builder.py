"""Autoscaling children (HPA or KEDA ScaledObject) and the PodDisruptionBudget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from modelplane.operator.builders import build_children
from modelplane.operator.settings import KedaSettings, OperatorSettings

from modelplane.api import ModelDeployment

MakeMd = Callable[..., ModelDeployment]
KEDA = OperatorSettings(keda=KedaSettings(enabled=True))


def kinds(children: list[dict[str, Any]]) -> list[str]:
    return [child["kind"] for child in children]


def only(children: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [match] = [child for child in children if child["kind"] == kind]
    return match


def test_without_autoscaling_there_is_no_autoscaler(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(make_md(), settings)
    assert "HorizontalPodAutoscaler" not in kinds(children)
    assert "ScaledObject" not in kinds(children)


def test_autoscaling_builds_an_hpa_on_queue_depth_per_pod(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(
        autoscaling={
            "minReplicas": 2,
            "maxReplicas": 6,
            "targetQueueDepth": 4,
            "scaleDownDelaySeconds": 600,
        }
    )
    hpa = only(build_children(md, settings), "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"] == {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "llama"},
        "minReplicas": 2,
        "maxReplicas": 6,
        "metrics": [
            {
                "type": "Pods",
                "pods": {
                    "metric": {"name": "vllm_num_requests_waiting"},
                    "target": {"type": "AverageValue", "averageValue": "4"},
                },
            }
        ],
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 600}},
    }


def test_triton_scales_on_the_same_vllm_queue_gauge(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(engine={"name": "triton"}, autoscaling={"maxReplicas": 3})
    hpa = only(build_children(md, settings), "HorizontalPodAutoscaler")
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == "vllm_num_requests_waiting"
    scaled = only(build_children(md, KEDA), "ScaledObject")
    assert "vllm:num_requests_waiting{" in scaled["spec"]["triggers"][0]["metadata"]["query"]


def test_hpa_keeps_one_replica_unless_the_cluster_allows_hpa_scale_to_zero(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(autoscaling={"minReplicas": 0, "maxReplicas": 3})
    assert only(build_children(md, settings), "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 1
    gated = OperatorSettings(hpa={"scale_to_zero": True})
    assert only(build_children(md, gated), "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 0


def test_with_autoscaling_the_deployment_leaves_replicas_to_the_autoscaler(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(replicas=5, autoscaling={"maxReplicas": 3})
    assert "replicas" not in only(build_children(md, settings), "Deployment")["spec"]


def test_keda_enabled_builds_a_scaled_object_instead_of_an_hpa(make_md: MakeMd) -> None:
    md = make_md(
        autoscaling={
            "minReplicas": 0,
            "maxReplicas": 4,
            "targetQueueDepth": 6,
            "scaleDownDelaySeconds": 120,
        }
    )
    children = build_children(md, KEDA)
    assert "HorizontalPodAutoscaler" not in kinds(children)
    scaled = only(children, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "llama",
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (0, 4)
    assert spec["cooldownPeriod"] == 120
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior == {"scaleDown": {"stabilizationWindowSeconds": 120}}
    [trigger] = spec["triggers"]
    assert trigger["type"] == "prometheus"
    assert trigger["metricType"] == "AverageValue"
    assert trigger["metadata"] == {
        "serverAddress": "http://prometheus-operated.monitoring.svc:9090",
        "query": 'sum(vllm:num_requests_waiting{namespace="ml",pod=~"llama-[a-z0-9]+-[a-z0-9]+"})',
        "threshold": "6",
        "activationThreshold": "0",
    }


def test_scaled_object_uses_only_fields_keda_defines(make_md: MakeMd) -> None:
    # kubernetes-validate has no schema for KEDA's CRD; these are the ScaledObject v1alpha1 fields.
    known_spec = {
        "scaleTargetRef",
        "pollingInterval",
        "cooldownPeriod",
        "initialCooldownPeriod",
        "idleReplicaCount",
        "minReplicaCount",
        "maxReplicaCount",
        "advanced",
        "triggers",
        "fallback",
    }
    known_trigger = {
        "type",
        "name",
        "metadata",
        "authenticationRef",
        "metricType",
        "useCachedMetrics",
    }
    scaled = only(build_children(make_md(autoscaling={"maxReplicas": 2}), KEDA), "ScaledObject")
    assert set(scaled["spec"]) <= known_spec
    assert set(scaled["spec"]["scaleTargetRef"]) <= {
        "apiVersion",
        "kind",
        "name",
        "envSourceContainerName",
    }
    for trigger in scaled["spec"]["triggers"]:
        assert set(trigger) <= known_trigger
        assert all(isinstance(value, str) for value in trigger["metadata"].values())


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"replicas": 1}, False),
        ({"replicas": 2}, True),
        ({"replicas": 0}, False),
        ({"replicas": 1, "autoscaling": {"minReplicas": 1, "maxReplicas": 1}}, False),
        ({"replicas": 1, "autoscaling": {"minReplicas": 0, "maxReplicas": 3}}, True),
    ],
    ids=[
        "one replica",
        "two replicas",
        "zero replicas",
        "autoscaling to one",
        "autoscaling to three",
    ],
)
def test_disruption_budget_exists_only_when_more_than_one_replica_can_run(
    make_md: MakeMd, settings: OperatorSettings, spec: dict[str, Any], expected: bool
) -> None:
    children = build_children(make_md(**spec), settings)
    assert ("PodDisruptionBudget" in kinds(children)) is expected


def test_disruption_budget_lets_one_model_server_go_at_a_time(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    pdb = only(build_children(make_md(replicas=3), settings), "PodDisruptionBudget")
    assert pdb["spec"] == {
        "maxUnavailable": 1,
        "selector": {
            "matchLabels": {
                "modelplane.dev/model-deployment": "llama",
                "app.kubernetes.io/component": "model-server",
            }
        },
    }
