"""Pure manifest builders: one ModelDeployment and the operator settings in, child manifests out.

No Kubernetes client and no kopf here; everything returned is plain JSON-ready dicts. The one
entry point is `build_children(md, settings)`; `CHILD_KINDS` lists every kind it can return, so
reconcile can find and delete children that are no longer desired (all carry the label
`OWNER_LABEL: <ModelDeployment name>` and an owner reference to the ModelDeployment):

- apps/v1 Deployment             always (name: <md>)
- v1 Service                     always (name: <md>)
- v1 PersistentVolumeClaim       only with spec.cache (name: <md>-cache)
- v1 ConfigMap                   only with engine triton (name: <md>-model-repository)
- autoscaling/v2 HPA             only with spec.autoscaling and KEDA off (name: <md>)
- keda.sh/v1alpha1 ScaledObject  only with spec.autoscaling and KEDA on (name: <md>)
- policy/v1 PodDisruptionBudget  only when more than one replica can run (name: <md>)
"""

from __future__ import annotations

from modelplane.operator.builders.common import (
    OWNER_LABEL,
    Manifest,
    pod_selector,
    pod_selector_string,
    status_url,
)
from modelplane.operator.builders.workload import CHILD_KINDS, ChildKind, build_children

__all__ = [
    "CHILD_KINDS",
    "OWNER_LABEL",
    "ChildKind",
    "Manifest",
    "build_children",
    "pod_selector",
    "pod_selector_string",
    "status_url",
]
