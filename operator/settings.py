"""Operator-wide settings: what the cluster offers and which engine builds to run.

Per-model choices live in the ModelDeployment; these are the cluster facts a platform team sets
once (image pins, GPU node labels, whether KEDA is installed), read from a YAML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

# Pinned so a rollout never changes an engine underneath a running model; bump deliberately.
VLLM_IMAGE = "vllm/vllm-openai:v0.12.0"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:26.07-vllm-python-py3"
DOWNLOADER_IMAGE = "rclone/rclone:1.75.1"


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class HpaSettings(Settings):
    """The autoscaling/v2 HPA path, which needs a custom-metrics adapter.

    The HPA reads a per-pod metric through the custom metrics API, so a metrics adapter (e.g.
    prometheus-adapter) must publish the engines' queue gauge `vllm:num_requests_waiting` (both
    engines report it) under this name; the custom metrics API cannot carry a ':' in a name.
    """

    queue_metric: str = "vllm_num_requests_waiting"
    # Kubernetes accepts minReplicas 0 only with the (alpha) HPAScaleToZero feature gate; without
    # it a ModelDeployment asking for minReplicas 0 gets an HPA with minReplicas 1.
    scale_to_zero: bool = False


class KedaSettings(Settings):
    """The KEDA path: a ScaledObject with a Prometheus trigger, which can scale to zero."""

    enabled: bool = False
    prometheus_url: str = "http://prometheus-operated.monitoring.svc:9090"
    queue_metric: str = "vllm:num_requests_waiting"
    # string.Template placeholders: $metric, $namespace, $name (the ModelDeployment). The default
    # matches the `namespace` and `pod` labels Prometheus' Kubernetes discovery attaches.
    query: str = 'sum(${metric}{namespace="${namespace}",pod=~"${name}-[a-z0-9]+-[a-z0-9]+"})'
    polling_interval_seconds: int = Field(default=15, ge=1)


class OperatorSettings(Settings):
    """Everything the manifest builders need besides the ModelDeployment itself."""

    vllm_image: str = VLLM_IMAGE
    triton_image: str = TRITON_IMAGE
    downloader_image: str = DOWNLOADER_IMAGE
    cluster_domain: str = "cluster.local"
    gpu_resource_name: str = "nvidia.com/gpu"
    # The node label NVIDIA GPU feature discovery sets to the GPU's product name.
    gpu_product_label: str = "nvidia.com/gpu.product"
    # gpuType alias -> node selector. A gpuType not listed here is used verbatim as the value of
    # `gpu_product_label`, so `gpuType: NVIDIA-H100-80GB-HBM3` works without configuration.
    gpu_types: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {
            "a10g": {"nvidia.com/gpu.product": "NVIDIA-A10G"},
            "l4": {"nvidia.com/gpu.product": "NVIDIA-L4"},
            "l40s": {"nvidia.com/gpu.product": "NVIDIA-L40S"},
            "a100-40gb": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB"},
            "a100-80gb": {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
            "h100-80gb": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"},
        }
    )
    # How long a pod may take from start to a healthy /health: a 70B download plus load needs
    # tens of minutes, so less than 30 minutes is refused.
    startup_budget_seconds: int = Field(default=2400, ge=1800)
    # ReadWriteOnce works on every storage class; the operator then keeps all pods of a model on
    # one node (pod affinity), since the claim attaches to one node at a time. ReadWriteMany
    # (where the storage class offers it) lets replicas spread over nodes. ReadWriteOncePod
    # allows one pod: one replica, rolled out by stopping it before its successor starts.
    cache_access_mode: Literal["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"] = (
        "ReadWriteOnce"
    )
    # The uid/gid the engines run as; both official images run as any non-root uid.
    run_as_user: int = Field(default=1000, ge=1)
    # A memory-backed /dev/shm counts against the pod's memory limit; None leaves it unbounded.
    shm_size_limit: str | None = None
    hpa: HpaSettings = Field(default_factory=HpaSettings)
    keda: KedaSettings = Field(default_factory=KedaSettings)


def load_settings(path: Path | None) -> OperatorSettings:
    """Settings from a YAML file, or the defaults when no file is given."""
    if path is None:
        return OperatorSettings()
    data = yaml.safe_load(path.read_text()) or {}
    return OperatorSettings.model_validate(data)
