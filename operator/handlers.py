"""The kopf wiring: which events start a reconcile pass. The passes themselves are reconcile.py's.

`build_registry` returns a fresh `kopf.OperatorRegistry` (no module-level registry), so the CLI,
the tests and the benchmarks each run an operator with their own options and login.

What triggers a pass:
- a modelplane resource is created, changed (spec, labels, annotations) or found at start-up
  (resume);
- a timer every `resync_seconds` (<= 60 s) per resource: drift anywhere is repaired by then,
  and a resource that references a Secret created later notices it;
- an event of a child (Deployment, Service, ConfigMap, PVC, HPA, PDB, ScaledObject carrying the
  `modelplane.dev/model-deployment` label), unless the event merely echoes the operator's own
  write: an edited or deleted child is restored at once, and a Deployment's readiness reaches the
  ModelDeployment's status at once.

Peering is off (`standalone`): run exactly one operator replica (a Deployment with strategy
Recreate). Two replicas would both reconcile; that is harmless (every pass is idempotent) but
wasteful, and standalone mode needs no KopfPeering resources or RBAC for them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from modelplane.operator.builders import CHILD_KINDS, OWNER_LABEL
from modelplane.operator.kubeapi import KubeApi, KubeApiError, NotConnectedError
from modelplane.operator.reconcile import ReconcileOptions, Reconciler
from modelplane.operator.settings import OperatorSettings

from modelplane.api import API_GROUP, API_VERSION

ConnectionFactory = Callable[[], kopf.ConnectionInfo]

_PLURAL_BY_KIND = {
    "ModelDeployment": "modeldeployments",
    "ExternalModel": "externalmodels",
    "RoutingPolicy": "routingpolicies",
}


def build_registry(
    settings: OperatorSettings | None = None,
    options: ReconcileOptions | None = None,
    *,
    connection: ConnectionFactory | None = None,
) -> tuple[kopf.OperatorRegistry, Reconciler]:
    """A registry with every modelplane handler, and the reconciler behind them.

    `connection` replaces kopf's login (kubeconfig or in-cluster service account), e.g. to point
    the operator at an emulator.
    """
    settings = settings or OperatorSettings()
    options = options or ReconcileOptions()
    registry = kopf.OperatorRegistry()
    built_at = datetime.now(UTC)
    api = KubeApi(request_timeout=options.request_timeout_seconds)
    reconciler = Reconciler(api, settings, options, notify=_post_event)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        configure_kopf(settings, options)

    @kopf.on.login(registry=registry)
    async def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # kubeconfig or the in-cluster service account (file reads, maybe an exec plugin).
        info: kopf.ConnectionInfo | None
        if connection is not None:
            info = connection()
        else:
            info = await asyncio.to_thread(_login_via_kubeconfig, kwargs)
        if info is not None:
            api.use(info)  # on kopf's loop: at every re-login too, the session is replaced there
        return info

    @kopf.on.cleanup(registry=registry)
    async def close(**_: Any) -> None:
        await api.close()

    def resource(kind: str) -> dict[str, Any]:
        return {"group": API_GROUP, "version": API_VERSION, "plural": _PLURAL_BY_KIND[kind]}

    async def guarded(call: Awaitable[object]) -> None:
        """Run a pass; an API failure is retried by kopf after a back-off."""
        try:
            await call
        except (KubeApiError, NotConnectedError, OSError) as error:
            raise kopf.TemporaryError(str(error), delay=options.retry_delay_seconds) from error

    # ModelDeployment: handlers return nothing, so kopf stores no results in the status.
    md = resource("ModelDeployment")

    @kopf.on.resume(**md, registry=registry, id="reconcile-ModelDeployment")
    @kopf.on.update(**md, registry=registry, id="reconcile-ModelDeployment")
    async def reconcile_model_deployment(body: kopf.Body, **_: Any) -> None:
        await guarded(reconciler.reconcile_model_deployment(body))

    @kopf.on.create(**md, registry=registry, id="reconcile-ModelDeployment")
    async def create_model_deployment(body: kopf.Body, **_: Any) -> None:
        # A resource created since this operator started, at its first generation, has no
        # children of another spec or of other operator settings to prune (a predecessor's,
        # being collected, are owned by another uid): skip the listing, which bulk creation
        # feels. Otherwise a creation pass was cut short (an operator killed before kopf
        # recorded the creation as handled, or a retry) and may have applied the children of
        # the spec, or of the settings, as they were then: this pass must remove them.
        metadata = body.get("metadata", {})
        fresh = metadata.get("generation") == 1 and _created_since(metadata, built_at)
        await guarded(reconciler.reconcile_model_deployment(body, prune=not fresh))

    @kopf.on.timer(
        **md,
        interval=options.resync_seconds,
        initial_delay=options.resync_seconds,
        registry=registry,
        id="resync-ModelDeployment",
    )
    async def resync_model_deployment(body: kopf.Body, **_: Any) -> None:
        # Only a spec change (or a restart with new settings) makes a child unwanted, and those
        # passes prune; the resync restores and refreshes without listing every child kind.
        await guarded(reconciler.reconcile_model_deployment(body, prune=False))

    @kopf.on.delete(**md, optional=True, registry=registry, id="forget-ModelDeployment")
    def forget_model_deployment(namespace: str | None, name: str, **_: Any) -> None:
        reconciler.forget(namespace or "", name)

    for child in CHILD_KINDS:
        if child.kind == "ScaledObject" and not settings.keda.enabled:
            continue  # do not watch a kind the cluster may not serve
        kopf.on.event(
            child.api_version,
            child.plural,
            labels={OWNER_LABEL: kopf.PRESENT},
            registry=registry,
            id=f"child-{child.plural}",
        )(_child_event_handler(reconciler, child.kind))

    # ExternalModel and RoutingPolicy: the same triggers, no children.
    for kind, run in (
        ("ExternalModel", reconciler.reconcile_external_model),
        ("RoutingPolicy", reconciler.reconcile_routing_policy),
    ):
        handler = _body_handler(run, guarded)
        target = resource(kind)
        for decorator in (kopf.on.resume, kopf.on.create, kopf.on.update):
            decorator(**target, registry=registry, id=f"reconcile-{kind}")(handler)
        kopf.on.timer(
            **target,
            interval=options.resync_seconds,
            initial_delay=options.resync_seconds,
            registry=registry,
            id=f"resync-{kind}",
        )(handler)

    return registry, reconciler


def _login_via_kubeconfig(kwargs: dict[str, Any]) -> kopf.ConnectionInfo | None:
    info: kopf.ConnectionInfo | None = kopf.login_via_client(**kwargs)
    return info


def _body_handler(
    run: Callable[[kopf.Body], Awaitable[object]],
    guarded: Callable[[Awaitable[object]], Awaitable[None]],
) -> Callable[..., Awaitable[None]]:
    async def handler(body: kopf.Body, **_: Any) -> None:
        await guarded(run(body))

    return handler


def _child_event_handler(reconciler: Reconciler, kind: str) -> Callable[..., Any]:
    async def on_child_event(
        type: str | None, body: kopf.Body, namespace: str, name: str, **_: Any
    ) -> None:
        if type is None:
            return  # the initial listing: the resume handlers cover every owner
        meta = body.get("metadata", {})
        if type != "DELETED" and reconciler.is_own_write(
            kind, namespace, name, meta.get("resourceVersion", "")
        ):
            return
        owner = _owner_name(body)
        if owner is None:
            return
        try:
            await reconciler.refresh_model_deployment(namespace, owner)
        except (KubeApiError, NotConnectedError, OSError) as error:
            # The timer repairs it within resync_seconds; an event handler is not retried.
            logging.getLogger("modelplane.operator").warning(
                "Could not reconcile %s/%s after its %s %s changed: %s",
                namespace,
                owner,
                kind,
                name,
                error,
            )

    return on_child_event


def _owner_name(body: kopf.Body) -> str | None:
    meta = body.get("metadata", {})
    for owner in meta.get("ownerReferences") or []:
        if owner.get("kind") == "ModelDeployment" and owner.get("controller"):
            name: str = owner["name"]
            return name
    label: str | None = (meta.get("labels") or {}).get(OWNER_LABEL)
    return label


def _post_event(body: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
    """A Kubernetes event on the resource (kopf posts it in the background)."""
    meta = body.get("metadata", {})
    reference: kopf.RawBody = {
        "apiVersion": str(body.get("apiVersion", "")),
        "kind": str(body.get("kind", "")),
        "metadata": {
            "name": str(meta.get("name", "")),
            "namespace": str(meta.get("namespace", "")),
            "uid": str(meta.get("uid", "")),
        },
    }
    kopf.event(kopf.Body(reference), type=event_type, reason=reason, message=message)


def configure_kopf(settings: kopf.OperatorSettings, options: ReconcileOptions) -> None:
    """kopf settings for this operator (also applied by the tests through the startup handler)."""
    settings.peering.standalone = True
    settings.posting.loggers = options.post_log_events
    settings.execution.max_workers = options.max_workers
    settings.persistence.finalizer = "modelplane.dev/operator"
    # Handler progress (retries) in annotations only: the CRDs' status schemas stay ours.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage()
    settings.networking.request_timeout = options.request_timeout_seconds


def _created_since(metadata: Mapping[str, Any], moment: datetime) -> bool:
    """Whether the API server stamped the object's creation at or after `moment` (False when the
    stamp is missing or unreadable: the caller then takes the careful path)."""
    stamp = metadata.get("creationTimestamp")
    if not isinstance(stamp, str):
        return False
    try:
        created = datetime.fromisoformat(stamp)
    except ValueError:
        return False
    if created.tzinfo is None:
        return False
    # Second resolution: an object created in this process's first second reads as older,
    # which only costs that object a listing.
    return created >= moment
