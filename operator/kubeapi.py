"""The operator's Kubernetes API client: a few REST calls on aiohttp, in kopf's own event loop.

kopf authenticates (kubeconfig, in-cluster service account, or a test's login handler) and hands
the resulting `kopf.ConnectionInfo` to `KubeApi.use`, so the operator and kopf share one set of
credentials and re-login. Calls are plain JSON over one pooled session: cheaper than the
`kubernetes` client in a thread pool, which matters when a thousand resources reconcile at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import aiohttp
import orjson

if TYPE_CHECKING:
    import kopf

JsonDict = dict[str, Any]

FIELD_MANAGER = "modelplane-operator"


@dataclasses.dataclass(frozen=True)
class KindRef:
    """Where a kind lives in the API."""

    api_version: str
    plural: str
    namespaced: bool = True

    def path(
        self, namespace: str | None, name: str | None = None, subresource: str | None = None
    ) -> str:
        base = (
            f"/apis/{self.api_version}" if "/" in self.api_version else f"/api/{self.api_version}"
        )
        parts = [base]
        if self.namespaced and namespace:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        parts.extend(part for part in (name, subresource) if part)
        return "/".join(parts)


# The kinds the operator reads or writes, by kind name (their apiVersion is fixed per kind here).
KNOWN_KINDS: dict[str, KindRef] = {
    "Namespace": KindRef("v1", "namespaces", namespaced=False),
    "Secret": KindRef("v1", "secrets"),
    "ConfigMap": KindRef("v1", "configmaps"),
    "Service": KindRef("v1", "services"),
    "PersistentVolumeClaim": KindRef("v1", "persistentvolumeclaims"),
    "Event": KindRef("v1", "events"),
    "Deployment": KindRef("apps/v1", "deployments"),
    "HorizontalPodAutoscaler": KindRef("autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": KindRef("policy/v1", "poddisruptionbudgets"),
    "ScaledObject": KindRef("keda.sh/v1alpha1", "scaledobjects"),
    "CustomResourceDefinition": KindRef(
        "apiextensions.k8s.io/v1", "customresourcedefinitions", namespaced=False
    ),
    "ModelDeployment": KindRef("modelplane.dev/v1alpha1", "modeldeployments"),
    "ExternalModel": KindRef("modelplane.dev/v1alpha1", "externalmodels"),
    "RoutingPolicy": KindRef("modelplane.dev/v1alpha1", "routingpolicies"),
}


def kind_ref(manifest: Mapping[str, Any]) -> KindRef:
    """The API location of a manifest's kind; the manifest's own apiVersion wins."""
    known = KNOWN_KINDS.get(manifest["kind"])
    if known is None:
        raise KeyError(f"the operator does not know where kind {manifest['kind']} lives")
    return dataclasses.replace(known, api_version=manifest.get("apiVersion", known.api_version))


class KubeApiError(Exception):
    """A failed API call, with the HTTP status and the Status object's reason and message."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotConnectedError(RuntimeError):
    """An API call before kopf logged in."""


class KubeApi:
    """Async JSON calls against the API server kopf is logged in to."""

    def __init__(self, *, request_timeout: float = 30.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=request_timeout)
        self._server: str | None = None
        self._headers: dict[str, str] = {}
        self._ssl: ssl.SSLContext | bool = True
        self._session: aiohttp.ClientSession | None = None

    def use(self, info: kopf.ConnectionInfo) -> None:
        """Adopt kopf's credentials (at login and at every re-login)."""
        self._server = info.server.rstrip("/")
        self._headers = {"Accept": "application/json", **info.as_http_headers()}
        self._ssl = info.as_ssl_context() if self._server.startswith("https") else True
        self._drop_session()

    def _drop_session(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            asyncio.get_running_loop().create_task(session.close())

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._server is None:
            raise NotConnectedError("no Kubernetes credentials yet: kopf has not logged in")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                base_url=self._server,
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=64),
                json_serialize=lambda value: orjson.dumps(value).decode(),
            )
        return self._session

    async def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        params: Mapping[str, str] | None = None,
    ) -> JsonDict:
        session = self._get_session()
        data = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": content_type} if data is not None else None
        async with session.request(
            method, path, data=data, headers=headers, params=params
        ) as response:
            raw = await response.read()
            if response.status >= 400:
                try:
                    status = orjson.loads(raw)
                    reason, message = status.get("reason", ""), status.get("message", "")
                except (orjson.JSONDecodeError, AttributeError):
                    reason, message = response.reason or "", raw[:200].decode(errors="replace")
                raise KubeApiError(response.status, reason, message)
            result: JsonDict = orjson.loads(raw) if raw else {}
            return result

    async def get(self, ref: KindRef, namespace: str | None, name: str) -> JsonDict | None:
        """The object, or None if it does not exist."""
        try:
            return await self._call("GET", ref.path(namespace, name))
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(
        self, ref: KindRef, namespace: str | None, *, label_selector: str | None = None
    ) -> list[JsonDict] | None:
        """The objects matching a selector, or None if the cluster does not serve the kind."""
        params = {"labelSelector": label_selector} if label_selector else None
        try:
            result = await self._call("GET", ref.path(namespace), params=params)
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise
        items: list[JsonDict] = result.get("items", [])
        return items

    async def apply(self, manifest: JsonDict, *, field_manager: str = FIELD_MANAGER) -> JsonDict:
        """Server-side apply of a whole desired object, taking over any conflicting field."""
        ref = kind_ref(manifest)
        meta = manifest["metadata"]
        return await self._call(
            "PATCH",
            ref.path(meta.get("namespace"), meta["name"]),
            body=manifest,
            content_type="application/apply-patch+yaml",
            params={"fieldManager": field_manager, "force": "true"},
        )

    async def patch_status(
        self, ref: KindRef, namespace: str | None, name: str, status: JsonDict
    ) -> JsonDict | None:
        """Merge-patch the status subresource; None if the object is gone."""
        try:
            return await self._call(
                "PATCH",
                ref.path(namespace, name, "status"),
                body={"status": status},
                content_type="application/merge-patch+json",
            )
        except KubeApiError as error:
            if error.status == 404:
                return None
            raise

    async def delete(
        self, ref: KindRef, namespace: str | None, name: str, *, uid: str | None = None
    ) -> None:
        """Delete an object (only that incarnation of it when `uid` is given); gone is fine."""
        body = {"preconditions": {"uid": uid}, "propagationPolicy": "Background"} if uid else None
        try:
            await self._call("DELETE", ref.path(namespace, name), body=body)
        except KubeApiError as error:
            if error.status not in (404, 409):
                raise
