"""The Deployment, Service and cache claim, and the assembly of every child."""

from __future__ import annotations

from typing import Any, NamedTuple

from modelplane.operator.builders.common import (
    SERVER_COMPONENT,
    Manifest,
    cache_claim_name,
    labels,
    object_meta,
    pod_selector,
)
from modelplane.operator.builders.engines import EngineWorkload, triton_workload, vllm_workload
from modelplane.operator.builders.pod import (
    download_init_containers,
    node_selector,
    pod_security_context,
    tolerations,
    volumes,
)
from modelplane.operator.builders.scaling import (
    horizontal_pod_autoscaler,
    pod_disruption_budget,
    scaled_object,
)
from modelplane.operator.settings import OperatorSettings

from modelplane.api.model_deployment import ModelDeployment


class ChildKind(NamedTuple):
    api_version: str
    kind: str
    plural: str


CHILD_KINDS: tuple[ChildKind, ...] = (
    ChildKind("apps/v1", "Deployment", "deployments"),
    ChildKind("v1", "Service", "services"),
    ChildKind("v1", "PersistentVolumeClaim", "persistentvolumeclaims"),
    ChildKind("v1", "ConfigMap", "configmaps"),
    ChildKind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ChildKind("keda.sh/v1alpha1", "ScaledObject", "scaledobjects"),
    ChildKind("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
)


def _engine_workload(md: ModelDeployment, settings: OperatorSettings) -> EngineWorkload:
    if md.spec.engine.name == "triton":
        return triton_workload(md, settings)
    return vllm_workload(md, settings)


def deployment(
    md: ModelDeployment, settings: OperatorSettings, workload: EngineWorkload
) -> Manifest:
    pod_spec: dict[str, Any] = {
        "containers": [workload.container],
        "volumes": volumes(md, settings, workload.shared_memory) + workload.volumes,
        "securityContext": pod_security_context(settings),
        # Service links would inject e.g. VLLM_PORT for a Service named "vllm", which vLLM
        # reads as its own setting.
        "enableServiceLinks": False,
        "automountServiceAccountToken": False,
        # Time to finish in-flight generations after the endpoint is removed.
        "terminationGracePeriodSeconds": 60,
    }
    init_containers = download_init_containers(md, settings)
    if init_containers:
        pod_spec["initContainers"] = init_containers
    selector = node_selector(md, settings)
    if selector:
        pod_spec["nodeSelector"] = selector
    pod_tolerations = tolerations(md, settings)
    if pod_tolerations:
        pod_spec["tolerations"] = pod_tolerations
    if md.spec.priority_class_name is not None:
        pod_spec["priorityClassName"] = md.spec.priority_class_name
    cache_mode = settings.cache_access_mode if md.spec.cache is not None else None
    if cache_mode == "ReadWriteOnce":
        # The claim attaches to one node at a time: a replica or a rollout's new pod scheduled
        # elsewhere would wait forever on a Multi-Attach error. Every pod of the model goes
        # where the others are (the first one anywhere).
        pod_spec["affinity"] = {
            "podAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": pod_selector(md)},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        }

    if cache_mode == "ReadWriteOncePod":
        # One pod at a time may use the claim: a new pod can only start once the old one is gone.
        strategy: dict[str, Any] = {"type": "Recreate"}
    else:
        # Never below the serving capacity during a rollout: the new pod starts (on a spare GPU)
        # before an old one stops. Without a spare GPU the rollout waits rather than go dark.
        strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": pod_selector(md)},
        "strategy": strategy,
        "revisionHistoryLimit": 3,
        # A first start may download a 70B model; do not call that a stalled rollout.
        "progressDeadlineSeconds": settings.startup_budget_seconds + 600,
        "template": {
            "metadata": {
                "labels": labels(md, SERVER_COMPONENT),
                "annotations": workload.pod_annotations,
            },
            "spec": pod_spec,
        },
    }
    if md.spec.autoscaling is None:
        # With autoscaling the autoscaler owns the replica count; setting it here would fight it.
        spec["replicas"] = md.spec.replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": object_meta(md, md.name, SERVER_COMPONENT),
        "spec": spec,
    }


def service(md: ModelDeployment, workload: EngineWorkload) -> Manifest:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": object_meta(md, md.name, SERVER_COMPONENT),
        "spec": {
            "type": "ClusterIP",
            "selector": pod_selector(md),
            "ports": [
                {"name": name, "port": port, "targetPort": target, "protocol": "TCP"}
                for name, port, target in workload.service_ports
            ],
        },
    }


def cache_claim(md: ModelDeployment, settings: OperatorSettings) -> Manifest | None:
    cache = md.spec.cache
    if cache is None:
        return None
    spec: dict[str, Any] = {
        "accessModes": [settings.cache_access_mode],
        "resources": {"requests": {"storage": cache.size}},
    }
    if cache.storage_class_name is not None:
        spec["storageClassName"] = cache.storage_class_name
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": object_meta(md, cache_claim_name(md), "model-cache"),
        "spec": spec,
    }


def build_children(md: ModelDeployment, settings: OperatorSettings) -> list[Manifest]:
    """Every child manifest the ModelDeployment needs now, in apply order.

    Raises ValueError when the resource lacks metadata.namespace or metadata.uid (a body that did
    not come from the API server).
    """
    workload = _engine_workload(md, settings)
    children: list[Manifest] = []
    claim = cache_claim(md, settings)
    if claim is not None:
        children.append(claim)
    children += workload.children
    children.append(deployment(md, settings, workload))
    children.append(service(md, workload))
    autoscaling = md.spec.autoscaling
    if autoscaling is not None:
        if settings.keda.enabled:
            children.append(scaled_object(md, autoscaling, settings))
        else:
            children.append(horizontal_pod_autoscaler(md, autoscaling, settings))
    if md.spec.max_replicas > 1:
        children.append(pod_disruption_budget(md))
    return children
