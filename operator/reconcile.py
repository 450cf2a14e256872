"""Level-based reconciliation of the modelplane kinds.

Every pass applies the whole desired state, never "create if absent": each child manifest goes
out by server-side apply with one fixed field manager and `force`, so a hand-edited field is
taken back and a deleted child is recreated by the same call that rolls out a spec change.
Children of kinds no longer desired are deleted (pruned). Status comes from the child
Deployment as the API server returns it, written to the status subresource only when it changed.

What starts a pass is the kopf wiring's business (handlers.py): create, update, resume, a timer,
and events of the children themselves. Passes for one resource never overlap, and a burst of
child events collapses into one pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelplane.operator import status as status_rules
from modelplane.operator.builders import (
    CHILD_KINDS,
    OWNER_LABEL,
    ChildKind,
    build_children,
    pod_selector_string,
    status_url,
)
from modelplane.operator.kubeapi import (
    FIELD_MANAGER,
    KNOWN_KINDS,
    JsonDict,
    KubeApi,
    KubeApiError,
    kind_ref,
)
from modelplane.operator.settings import OperatorSettings
from pydantic import BaseModel, ConfigDict, Field

from modelplane.api import ExternalModel, InvalidSpecError, ModelDeployment, RoutingPolicy
from modelplane.api.base import plain_data

log = logging.getLogger("modelplane.operator")

# Kept when no longer desired: deleting the claim would throw away downloaded weights. It goes
# with the ModelDeployment (owner reference).
NEVER_PRUNED = frozenset({"PersistentVolumeClaim"})

_ResourceKey = tuple[str, str, str]  # (kind, namespace, name)

# Statuses by which the API server refuses a child for good (see Reconciler._apply).
_REFUSALS = frozenset({400, 403, 422})

# Told about every Ready transition: (resource body, event type, reason, message).
TransitionNotifier = Callable[[Mapping[str, Any], str, str, str], None]


class ReconcileOptions(BaseModel):
    """How the operator runs (the manifests' content is `OperatorSettings`')."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    resync_seconds: float = Field(
        default=45.0,
        gt=0,
        le=60,
        description="Every resource is reconciled at least this often, repairing any drift.",
    )
    retry_delay_seconds: float = Field(
        default=5.0, gt=0, description="Back-off after a failed API call."
    )
    request_timeout_seconds: float = Field(default=30.0, gt=0)
    field_manager: str = FIELD_MANAGER
    post_log_events: bool = Field(
        default=False,
        description="Also post kopf's per-object log records (INFO and up) as Kubernetes events;"
        " Ready transitions are posted as events either way.",
    )
    max_workers: int = Field(default=20, ge=1, description="Threads for kopf's sync handlers.")
    max_concurrent_passes: int = Field(
        default=32,
        ge=1,
        description="ModelDeployment passes in flight at once: bounds memory and API load when"
        " many resources change together (e.g. at start-up).",
    )


class Reconciler:
    """Reconciles ModelDeployments, ExternalModels and RoutingPolicies through a `KubeApi`."""

    def __init__(
        self,
        api: KubeApi,
        settings: OperatorSettings,
        options: ReconcileOptions | None = None,
        *,
        notify: TransitionNotifier | None = None,
    ) -> None:
        self.api = api
        self.settings = settings
        self.options = options or ReconcileOptions()
        self._notify = notify
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._queued: set[tuple[str, str]] = set()
        self._own_writes: dict[_ResourceKey, str] = {}
        self._unserved_kinds: set[str] = set()
        self._replicas_handed_over: set[tuple[str, str]] = set()
        self._passes = asyncio.Semaphore(self.options.max_concurrent_passes)

    # ModelDeployment

    async def reconcile_model_deployment(
        self, body: Mapping[str, Any], *, prune: bool = True
    ) -> JsonDict | None:
        """One full pass for a ModelDeployment body; returns the status it now has."""
        meta = body.get("metadata", {})
        key = (meta.get("namespace", ""), meta.get("name", ""))
        async with self._lock(key), self._passes:
            return await self._reconcile_model_deployment(plain_data(body), prune=prune)

    async def refresh_model_deployment(self, namespace: str, name: str) -> None:
        """A pass on the current state of a ModelDeployment (e.g. after a child changed).

        If a pass for it is already waiting, this one is folded into it.
        """
        key = (namespace, name)
        if key in self._queued:
            return
        self._queued.add(key)
        try:
            async with self._lock(key), self._passes:
                self._queued.discard(key)
                body = await self.api.get(KNOWN_KINDS["ModelDeployment"], namespace, name)
                if body is not None:
                    await self._reconcile_model_deployment(body, prune=False)
        finally:
            self._queued.discard(key)

    def is_own_write(self, kind: str, namespace: str, name: str, resource_version: str) -> bool:
        """Whether a child's state is exactly what this operator last wrote (an echo, not drift)."""
        return self._own_writes.get((kind, namespace, name)) == resource_version

    def forget(self, namespace: str, name: str) -> None:
        """Drop the bookkeeping of a deleted ModelDeployment."""
        self._locks.pop((namespace, name), None)
        self._replicas_handed_over.discard((namespace, name))
        for key in [k for k in self._own_writes if k[1] == namespace and k[2].startswith(name)]:
            del self._own_writes[key]

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock

    async def _reconcile_model_deployment(self, body: JsonDict, *, prune: bool) -> JsonDict | None:
        meta = body.get("metadata", {})
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if meta.get("deletionTimestamp"):
            return None  # the garbage collector takes the children with it
        generation = meta.get("generation")
        previous = body.get("status") or {}
        now = status_rules.now_rfc3339()
        try:
            md = ModelDeployment.from_body(body)
            children = build_children(md, self.settings)
        except (InvalidSpecError, ValueError) as error:
            message = error.message if isinstance(error, InvalidSpecError) else str(error)
            log.warning("ModelDeployment %s/%s is invalid: %s", namespace, name, message)
            status = status_rules.invalid_spec_status(previous, generation, message, now=now)
            return await self._write_status(body, previous, status)

        await self._hand_over_replicas(namespace, name, children)
        if prune:
            # Before applying: what replaces a pruned child may be refused while it exists (KEDA's
            # admission webhook refuses a ScaledObject for a Deployment an HPA already scales).
            await self._prune(namespace, name, md.metadata.uid, children)
        # What the pods need (claim, model repository) first, then everything else together:
        # one round trip of latency per stage instead of one per child.
        supporting = [c for c in children if c["kind"] in ("PersistentVolumeClaim", "ConfigMap")]
        rest = [c for c in children if c not in supporting]
        applied: list[JsonDict] = []
        rejected: list[str] = []
        for stage in (supporting, rest):
            outcomes = await asyncio.gather(*(self._apply(child, namespace) for child in stage))
            for child, outcome in zip(stage, outcomes, strict=True):
                if isinstance(outcome, KubeApiError):
                    rejected.append(
                        f"{child['kind']} {child['metadata']['name']}: {outcome.message}"
                    )
                else:
                    applied.append(outcome)
        deployment = next((obj for obj in applied if obj.get("kind") == "Deployment"), None)

        status = status_rules.model_deployment_status(
            previous,
            generation,
            deployment,
            url=status_url(md, self.settings.cluster_domain),
            selector=pod_selector_string(md),
            now=now,
        )
        missing = await self._missing_secret(namespace, md)
        if missing is not None:
            reason, message = missing
            log.warning("ModelDeployment %s/%s: %s", namespace, name, message)
            status = status_rules.degraded_status(
                previous, status, generation, reason, message, now=now
            )
        if rejected:
            message = "; ".join(rejected)
            log.warning("ModelDeployment %s/%s: children rejected: %s", namespace, name, message)
            status = status_rules.degraded_status(
                previous, status, generation, status_rules.CHILD_REJECTED, message, now=now
            )
        return await self._write_status(body, previous, status)

    async def _missing_secret(self, namespace: str, md: ModelDeployment) -> tuple[str, str] | None:
        """(reason, message) for the first Secret or key the pods need that does not exist.

        The children are applied all the same: the pods start once it is created, and the
        resync timer clears the condition.
        """
        for secret_name, key, holds in md.spec.engine.required_secrets():
            found, reason, message = await self._check_secret(namespace, secret_name, key, holds)
            if not found:
                return reason, f"{message} The model's pods cannot start without it."
        return None

    async def _hand_over_replicas(
        self, namespace: str, name: str, children: list[JsonDict]
    ) -> None:
        """Keep the replica count when the autoscaler takes it over.

        Without autoscaling the operator applies `spec.replicas`; with it, it stops. A field its
        only manager stops applying is reset to its default, so turning autoscaling on would
        drop the Deployment to one replica (stopping GPU pods that take minutes to come back)
        until the autoscaler scales it up again. Kubernetes' hand-over: a second manager applies
        the live count first, so the field keeps an owner, and the autoscaler takes it from
        there. Done once per Deployment and operator process (and again after each time the
        operator set the count): a repeat is harmless, the second manager applying the live
        value again.
        """
        deployment = next(child for child in children if child["kind"] == "Deployment")
        key = (namespace, name)
        if "replicas" in deployment["spec"]:
            self._replicas_handed_over.discard(key)
            return
        if key in self._replicas_handed_over:
            return
        ref = kind_ref(deployment)
        live = await self.api.get(ref, namespace, deployment["metadata"]["name"])
        replicas = (live or {}).get("spec", {}).get("replicas")
        if isinstance(replicas, int):
            handover = {
                "apiVersion": deployment["apiVersion"],
                "kind": "Deployment",
                "metadata": {"name": deployment["metadata"]["name"], "namespace": namespace},
                "spec": {"replicas": replicas},
            }
            # A second field manager co-owns the count while the autoscaler takes it over.
            await self.api.apply(
                handover, field_manager=f"{self.options.field_manager}-replicas-handover"
            )
            log.info(
                "Deployment %s/%s: %d replicas handed over to the autoscaler",
                namespace,
                deployment["metadata"]["name"],
                replicas,
            )
        self._replicas_handed_over.add(key)

    async def _apply(self, child: JsonDict, namespace: str) -> JsonDict | KubeApiError:
        """Apply one child; the API's refusal of it is returned, not raised.

        A refusal is not transient: invalid (422, e.g. a PersistentVolumeClaim's storage class
        is immutable), denied by an admission webhook (400 or 403, e.g. KEDA's) or by RBAC
        (403). Retrying would loop until the spec or the cluster changes, so it becomes a status
        condition instead, and the resync timer tries again.
        """
        try:
            applied = await self.api.apply(child, field_manager=self.options.field_manager)
        except KubeApiError as error:
            if error.status not in _REFUSALS:
                raise
            return error
        meta = applied.get("metadata", {})
        self._own_writes[child["kind"], namespace, meta.get("name", "")] = meta.get(
            "resourceVersion", ""
        )
        return applied

    async def _prune(
        self, namespace: str, name: str, owner_uid: str | None, desired: list[JsonDict]
    ) -> None:
        wanted = {(child["kind"], child["metadata"]["name"]) for child in desired}
        kinds = [
            child_kind
            for child_kind in CHILD_KINDS
            if child_kind.kind not in NEVER_PRUNED
            and child_kind.kind not in self._unserved_kinds
            # Without KEDA the operator neither makes nor may touch ScaledObjects.
            and (child_kind.kind != "ScaledObject" or self.settings.keda.enabled)
        ]
        await asyncio.gather(
            *(self._prune_kind(namespace, name, owner_uid, kind, wanted) for kind in kinds)
        )

    async def _prune_kind(
        self,
        namespace: str,
        name: str,
        owner_uid: str | None,
        child_kind: ChildKind,
        wanted: set[tuple[str, str]],
    ) -> None:
        ref = kind_ref({"apiVersion": child_kind.api_version, "kind": child_kind.kind})
        try:
            existing = await self.api.list(ref, namespace, label_selector=f"{OWNER_LABEL}={name}")
        except KubeApiError as error:
            if error.status != 403:
                raise
            existing = None
        if existing is None:
            # Not served (e.g. no KEDA installed) or not permitted: nothing this operator made
            # can be there, so there is nothing to prune. Not asked again until a restart.
            if child_kind.kind not in self._unserved_kinds:
                log.warning("Not pruning %ss: not served here, or not permitted", child_kind.kind)
            self._unserved_kinds.add(child_kind.kind)
            return
        for obj in existing:
            obj_meta = obj.get("metadata", {})
            owned = any(
                owner.get("uid") == owner_uid and owner.get("controller")
                for owner in obj_meta.get("ownerReferences") or []
            )
            if owned and (child_kind.kind, obj_meta.get("name")) not in wanted:
                log.info(
                    "Pruning %s %s/%s: no longer desired",
                    child_kind.kind,
                    namespace,
                    obj_meta.get("name"),
                )
                await self.api.delete(ref, namespace, obj_meta["name"], uid=obj_meta.get("uid"))

    # ExternalModel and RoutingPolicy

    async def reconcile_external_model(self, body: Mapping[str, Any]) -> JsonDict | None:
        """Ready when the referenced Secret and key exist. The key's value is never read out."""
        plain = plain_data(body)
        meta = plain.get("metadata", {})
        namespace = meta.get("namespace", "")
        previous = plain.get("status") or {}
        try:
            model = ExternalModel.from_body(plain)
        except InvalidSpecError as error:
            verdict = (False, status_rules.INVALID_SPEC, error.message)
        else:
            ref = model.spec.api_key_secret_ref
            verdict = await self._check_secret(namespace, ref.name, ref.key, "API key")
        status = status_rules.readiness_status(
            previous, meta.get("generation"), *verdict, now=status_rules.now_rfc3339()
        )
        return await self._write_status(plain, previous, status)

    async def reconcile_routing_policy(self, body: Mapping[str, Any]) -> JsonDict | None:
        """Ready when the policy validates and every tenant's API key Secret and key exist."""
        plain = plain_data(body)
        meta = plain.get("metadata", {})
        namespace = meta.get("namespace", "")
        previous = plain.get("status") or {}
        try:
            policy = RoutingPolicy.from_body(plain)
        except InvalidSpecError as error:
            verdict = (False, status_rules.INVALID_SPEC, error.message)
        else:
            verdict = (
                True,
                status_rules.POLICY_VALID,
                f"The policy is valid and serves {len(policy.spec.tenants)} tenant(s).",
            )
            for tenant in policy.spec.tenants:
                ref = tenant.api_key_secret_ref
                found = await self._check_secret(
                    namespace, ref.name, ref.key, f"tenant {tenant.name}'s API key"
                )
                if not found[0]:
                    verdict = found
                    break
        status = status_rules.readiness_status(
            previous, meta.get("generation"), *verdict, now=status_rules.now_rfc3339()
        )
        return await self._write_status(plain, previous, status)

    async def _check_secret(
        self, namespace: str, name: str, key: str | None, purpose: str
    ) -> tuple[bool, str, str]:
        """Whether Secret `name` exists with `key` (any key when None), with a reason."""
        secret = await self.api.get(KNOWN_KINDS["Secret"], namespace, name)
        if secret is None:
            return (
                False,
                status_rules.SECRET_NOT_FOUND,
                f"Secret {name} (holding the {purpose}) does not exist in namespace {namespace}.",
            )
        # Only the key names are looked at; the values stay inside this dict and go nowhere.
        keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
        if key is not None and key not in keys:
            return (
                False,
                status_rules.KEY_NOT_FOUND,
                f"Secret {name} has no key {key} (expected to hold the {purpose}).",
            )
        return (True, status_rules.SECRET_RESOLVED, f"The {purpose} is in Secret {name}.")

    async def _write_status(
        self, body: Mapping[str, Any], previous: Mapping[str, Any], status: JsonDict
    ) -> JsonDict:
        kind = body.get("kind", "")
        meta = body.get("metadata", {})
        namespace, name = meta.get("namespace", ""), meta.get("name", "")
        if not status_rules.status_differs(previous, status):
            return status
        await self.api.patch_status(KNOWN_KINDS[kind], namespace, name, status)
        log.info(
            "%s %s/%s status: %s", kind, namespace, name, status.get("phase") or _ready(status)
        )
        was, now = _ready(previous), _ready(status)
        if self._notify is not None and now is not None and was != now:
            ready = next(c for c in status["conditions"] if c["type"] == status_rules.READY)
            # A model that is still starting is not a problem; a broken or degraded one is.
            if "phase" in status:
                trouble = status["phase"] in ("Failed", "Degraded")
            else:
                trouble = ready["status"] != "True"
            event_type = "Warning" if trouble else "Normal"
            self._notify(body, event_type, ready["reason"], ready["message"])
        return status


def _ready(status: Mapping[str, Any]) -> str | None:
    """The Ready condition as `status (reason)`, None if there is none."""
    for entry in status.get("conditions") or []:
        if entry.get("type") == status_rules.READY:
            return f"Ready={entry.get('status')} ({entry.get('reason')})"
    return None
