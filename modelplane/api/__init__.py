"""The modelplane custom resources as typed models, shared by the operator and the router.

Each kind parses from a resource body with `Kind.from_body(body)`, which raises
`InvalidSpecError` (a reason and a message for a status condition) when the resource is unusable.
"""

from modelplane.api.base import (
    API_GROUP,
    API_VERSION,
    GROUP_VERSION,
    Condition,
    CustomResource,
    InvalidSpecError,
    ObjectMeta,
    SecretKeyRef,
)
from modelplane.api.external_model import ExternalModel, ExternalModelSpec, ExternalModelStatus
from modelplane.api.model_deployment import (
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
)
from modelplane.api.routing_policy import (
    RoutingPolicy,
    RoutingPolicySpec,
    RoutingPolicyStatus,
    Tenant,
)

__all__ = [
    "API_GROUP",
    "API_VERSION",
    "GROUP_VERSION",
    "Condition",
    "CustomResource",
    "ExternalModel",
    "ExternalModelSpec",
    "ExternalModelStatus",
    "InvalidSpecError",
    "ModelDeployment",
    "ModelDeploymentSpec",
    "ModelDeploymentStatus",
    "ObjectMeta",
    "RoutingPolicy",
    "RoutingPolicySpec",
    "RoutingPolicyStatus",
    "SecretKeyRef",
    "Tenant",
]
