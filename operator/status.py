"""Status of the modelplane resources, computed from what the cluster really shows.

Pure functions: the reconciler reads the child Deployment (or the referenced Secret) and hands it
here; nothing in this module talks to the API. Conditions follow metav1.Condition: a condition's
`lastTransitionTime` moves only when its `status` flips, so `kubectl wait` and alerting see real
transitions and not every reconcile.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any, Literal

JsonDict = dict[str, Any]
ConditionStatus = Literal["True", "False", "Unknown"]

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"

# Condition reasons (CamelCase, stable: tools and the router match on them).
INVALID_SPEC = "InvalidSpec"
SCALED_TO_ZERO = "ScaledToZero"
REPLICAS_READY = "ReplicasReady"
NO_REPLICA_READY = "NoReplicaReady"
REPLICAS_UNAVAILABLE = "ReplicasUnavailable"
ROLLING_OUT = "RollingOut"
WAITING_FOR_READY = "WaitingForReadyReplicas"
ROLLOUT_COMPLETE = "RolloutComplete"
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
DEPLOYMENT_MISSING = "DeploymentMissing"
CHILD_REJECTED = "ChildRejected"
SECRET_NOT_FOUND = "SecretNotFound"
KEY_NOT_FOUND = "KeyNotFound"
SECRET_RESOLVED = "SecretResolved"
POLICY_VALID = "PolicyValid"


def now_rfc3339() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    previous: Sequence[Mapping[str, Any]],
    type_: str,
    status: bool | ConditionStatus,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: str,
) -> JsonDict:
    """A condition whose lastTransitionTime is kept from `previous` unless its status flipped."""
    value: ConditionStatus = ("True" if status else "False") if isinstance(status, bool) else status
    transition = now
    for old in previous:
        if (
            old.get("type") == type_
            and old.get("status") == value
            and old.get("lastTransitionTime")
        ):
            transition = old["lastTransitionTime"]
    result: JsonDict = {
        "type": type_,
        "status": value,
        "reason": reason,
        "message": message,
        "lastTransitionTime": transition,
    }
    if generation is not None:
        result["observedGeneration"] = generation
    return result


def _conditions(body_status: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list((body_status or {}).get("conditions") or [])


def invalid_spec_status(
    previous: Mapping[str, Any] | None, generation: int | None, message: str, *, now: str
) -> JsonDict:
    """Status of a ModelDeployment the operator cannot act on; its children are left untouched."""
    old = _conditions(previous)
    return {
        "observedGeneration": generation,
        "phase": "Failed",
        "conditions": [
            condition(old, READY, False, INVALID_SPEC, message, generation=generation, now=now),
            condition(
                old,
                PROGRESSING,
                False,
                INVALID_SPEC,
                "Nothing is rolled out until the spec is fixed.",
                generation=generation,
                now=now,
            ),
            condition(
                old,
                DEGRADED,
                False,
                INVALID_SPEC,
                "The spec is invalid; see the Ready condition.",
                generation=generation,
                now=now,
            ),
        ],
    }


def _deployment_condition(deployment: Mapping[str, Any], type_: str) -> Mapping[str, Any]:
    for entry in deployment.get("status", {}).get("conditions") or []:
        if entry.get("type") == type_:
            result: Mapping[str, Any] = entry
            return result
    return {}


def model_deployment_status(
    previous: Mapping[str, Any] | None,
    generation: int | None,
    deployment: Mapping[str, Any] | None,
    *,
    url: str,
    selector: str,
    now: str,
) -> JsonDict:
    """Status of a valid ModelDeployment from its Deployment's real state.

    Ready means at least one replica serves (the router may send traffic); the phase says more:
    Pending (scaled to zero or no Deployment yet), Progressing (rolling out or replicas still
    starting), Ready (every desired replica ready), Degraded (fewer ready replicas than desired
    after the model had been up, or the rollout exceeded its progress deadline).
    """
    old = _conditions(previous)
    previous_phase = (previous or {}).get("phase")
    base: JsonDict = {"observedGeneration": generation, "url": url, "selector": selector}

    def conditions(
        ready: tuple[bool, str, str],
        progressing: tuple[bool, str, str],
        degraded: tuple[bool, str, str],
    ) -> list[JsonDict]:
        return [
            condition(old, type_, *values, generation=generation, now=now)
            for type_, values in ((READY, ready), (PROGRESSING, progressing), (DEGRADED, degraded))
        ]

    if deployment is None:
        waiting = "The model's Deployment does not exist yet."
        return {
            **base,
            "phase": "Pending",
            "replicas": 0,
            "readyReplicas": 0,
            "conditions": conditions(
                (False, DEPLOYMENT_MISSING, waiting),
                (True, DEPLOYMENT_MISSING, waiting),
                (False, DEPLOYMENT_MISSING, waiting),
            ),
        }

    spec_replicas = deployment.get("spec", {}).get("replicas")
    desired = 1 if spec_replicas is None else int(spec_replicas)
    observed = deployment.get("status", {})
    ready = int(observed.get("readyReplicas") or 0)
    updated = int(observed.get("updatedReplicas") or 0)
    current = int(observed.get("replicas") or 0)
    deployment_generation = deployment.get("metadata", {}).get("generation", 0)
    rolled_out = (
        int(observed.get("observedGeneration") or 0) >= deployment_generation
        and updated >= desired
        and current <= desired
    )
    deadline_exceeded = (
        _deployment_condition(deployment, "Progressing").get("reason") == "ProgressDeadlineExceeded"
    )
    counts = f"{ready}/{desired} replicas ready"
    serving = (True, REPLICAS_READY, counts) if ready > 0 else (False, NO_REPLICA_READY, counts)
    fields = {**base, "replicas": current, "readyReplicas": ready}

    if desired == 0:
        idle = "Scaled to zero replicas; the model serves again when scaled up."
        return {
            **fields,
            "phase": "Pending",
            "conditions": conditions(
                (False, SCALED_TO_ZERO, idle),
                (False, SCALED_TO_ZERO, idle),
                (False, SCALED_TO_ZERO, idle),
            ),
        }
    if deadline_exceeded:
        message = _deployment_condition(deployment, "Progressing").get("message") or counts
        return {
            **fields,
            "phase": "Degraded",
            "conditions": conditions(
                serving,
                (False, PROGRESS_DEADLINE_EXCEEDED, message),
                (True, PROGRESS_DEADLINE_EXCEEDED, message),
            ),
        }
    if rolled_out and ready >= desired:
        return {
            **fields,
            "phase": "Ready",
            "conditions": conditions(
                serving,
                (False, ROLLOUT_COMPLETE, f"Rolled out; {counts}."),
                (False, REPLICAS_READY, counts),
            ),
        }
    if rolled_out and previous_phase in ("Ready", "Degraded"):
        return {
            **fields,
            "phase": "Degraded",
            "conditions": conditions(
                serving,
                (False, ROLLOUT_COMPLETE, f"Rolled out; {counts}."),
                (True, REPLICAS_UNAVAILABLE, counts),
            ),
        }
    if rolled_out:
        progress = (True, WAITING_FOR_READY, f"Waiting for replicas to become ready: {counts}.")
    else:
        progress = (True, ROLLING_OUT, f"Rolling out: {updated}/{desired} replicas updated.")
    return {
        **fields,
        "phase": "Progressing",
        "conditions": conditions(serving, progress, (False, progress[1], counts)),
    }


def degraded_status(
    previous: Mapping[str, Any] | None,
    status: JsonDict,
    generation: int | None,
    reason: str,
    message: str,
    *,
    now: str,
) -> JsonDict:
    """`status` with a problem the rollout cannot get past by itself reported: Degraded.

    E.g. the API refused some children (ChildRejected), or a Secret the pods need is missing
    (SecretNotFound, KeyNotFound). Ready and Progressing keep what the Deployment shows.
    """
    degraded = condition(
        _conditions(previous),
        DEGRADED,
        True,
        reason,
        message,
        generation=generation,
        now=now,
    )
    conditions = [degraded if c["type"] == DEGRADED else c for c in status["conditions"]]
    return {**status, "phase": "Degraded", "conditions": conditions}


def readiness_status(
    previous: Mapping[str, Any] | None,
    generation: int | None,
    ready: bool,
    reason: str,
    message: str,
    *,
    now: str,
) -> JsonDict:
    """Status of a resource with a single Ready condition (ExternalModel, RoutingPolicy)."""
    return {
        "observedGeneration": generation,
        "conditions": [
            condition(
                _conditions(previous), READY, ready, reason, message, generation=generation, now=now
            )
        ],
    }


def status_differs(current: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
    """Whether writing `desired` (a merge patch of status) would change anything."""
    current = current or {}
    return any(current.get(key) != value for key, value in desired.items())
