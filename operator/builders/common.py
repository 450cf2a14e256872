"""Names, labels and ownership every child of a ModelDeployment carries."""

from __future__ import annotations

from typing import Any

from modelplane.api.base import GROUP_VERSION
from modelplane.api.model_deployment import KIND, ModelDeployment

Manifest = dict[str, Any]

OWNER_LABEL = "modelplane.dev/model-deployment"
MANAGED_BY = "modelplane-operator"
PART_OF = "modelplane"
SERVER_COMPONENT = "model-server"

# Every engine serves the OpenAI API (and its Prometheus metrics) on this Service port.
SERVICE_PORT = 8000


def cache_claim_name(md: ModelDeployment) -> str:
    return f"{md.name}-cache"


def model_repository_name(md: ModelDeployment) -> str:
    return f"{md.name}-model-repository"


def labels(md: ModelDeployment, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": md.spec.engine.name,
        "app.kubernetes.io/instance": md.name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "app.kubernetes.io/part-of": PART_OF,
        OWNER_LABEL: md.name,
    }


def pod_selector(md: ModelDeployment) -> dict[str, str]:
    """The model server pods' selector; immutable on a Deployment, so it names no engine."""
    return {OWNER_LABEL: md.name, "app.kubernetes.io/component": SERVER_COMPONENT}


def pod_selector_string(md: ModelDeployment) -> str:
    """The selector in label-query form, for `status.selector` (the scale subresource reads it)."""
    return ",".join(f"{key}={value}" for key, value in sorted(pod_selector(md).items()))


def owner_reference(md: ModelDeployment) -> dict[str, Any]:
    if not md.metadata.uid:
        raise ValueError(f"ModelDeployment {md.name} has no metadata.uid to own its children by")
    return {
        "apiVersion": GROUP_VERSION,
        "kind": KIND,
        "name": md.name,
        "uid": md.metadata.uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def namespace_of(md: ModelDeployment) -> str:
    if not md.metadata.namespace:
        raise ValueError(f"ModelDeployment {md.name} has no metadata.namespace")
    return md.metadata.namespace


def object_meta(md: ModelDeployment, name: str, component: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": namespace_of(md),
        "labels": labels(md, component),
        "ownerReferences": [owner_reference(md)],
    }


def status_url(md: ModelDeployment, cluster_domain: str = "cluster.local") -> str:
    """The in-cluster OpenAI base URL the router calls, whichever engine serves the model."""
    return f"http://{md.name}.{namespace_of(md)}.svc.{cluster_domain}:{SERVICE_PORT}/v1"
