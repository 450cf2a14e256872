"""Autoscaling on queue depth (an HPA, or a KEDA ScaledObject) and the disruption budget."""

from __future__ import annotations

from string import Template
from typing import Any

from modelplane.operator.builders.common import namespace_of, object_meta, pod_selector
from modelplane.operator.settings import OperatorSettings

from modelplane.api.model_deployment import Autoscaling, ModelDeployment


def _target(md: ModelDeployment) -> dict[str, str]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": md.name}


def horizontal_pod_autoscaler(
    md: ModelDeployment, autoscaling: Autoscaling, settings: OperatorSettings
) -> dict[str, Any]:
    """An HPA holding the average waiting requests per pod at targetQueueDepth.

    Assumes a custom-metrics adapter publishes the engine's queue gauge per pod under the name
    in the operator settings (see HpaSettings).
    """
    hpa = settings.hpa
    min_replicas = (
        autoscaling.min_replicas if hpa.scale_to_zero else max(1, autoscaling.min_replicas)
    )
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": object_meta(md, md.name, "autoscaler"),
        "spec": {
            "scaleTargetRef": _target(md),
            "minReplicas": min_replicas,
            "maxReplicas": autoscaling.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": hpa.queue_metric},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(autoscaling.target_queue_depth),
                        },
                    },
                }
            ],
            "behavior": {
                "scaleDown": {"stabilizationWindowSeconds": autoscaling.scale_down_delay_seconds}
            },
        },
    }


def scaled_object(
    md: ModelDeployment, autoscaling: Autoscaling, settings: OperatorSettings
) -> dict[str, Any]:
    """A KEDA ScaledObject on the summed queue depth, threshold targetQueueDepth per replica.

    KEDA owns the HPA it creates from this, and can go to and from zero replicas.
    """
    keda = settings.keda
    query = Template(keda.query).substitute(
        metric=keda.queue_metric, namespace=namespace_of(md), name=md.name
    )
    delay = autoscaling.scale_down_delay_seconds
    return {
        "apiVersion": "keda.sh/v1alpha1",
        "kind": "ScaledObject",
        "metadata": object_meta(md, md.name, "autoscaler"),
        "spec": {
            "scaleTargetRef": _target(md),
            "minReplicaCount": autoscaling.min_replicas,
            "maxReplicaCount": autoscaling.max_replicas,
            "pollingInterval": keda.polling_interval_seconds,
            # Only for the step to zero; the HPA behavior below delays every other step down.
            "cooldownPeriod": delay,
            "advanced": {
                "horizontalPodAutoscalerConfig": {
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": delay}}
                }
            },
            "triggers": [
                {
                    "type": "prometheus",
                    "metricType": "AverageValue",
                    "metadata": {
                        "serverAddress": keda.prometheus_url,
                        "query": query,
                        "threshold": str(autoscaling.target_queue_depth),
                        "activationThreshold": "0",
                    },
                }
            ],
        },
    }


def pod_disruption_budget(md: ModelDeployment) -> dict[str, Any]:
    """Voluntary evictions (node drains) take one model server down at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": object_meta(md, md.name, "disruption-budget"),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": pod_selector(md)}},
    }
