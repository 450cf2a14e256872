"""A Kubernetes API server emulator, realistic where an operator or a watcher depends on it.

`KubeEmulator` subclasses kmock's `KubernetesEmulator` (kmock serves HTTP, API discovery and the
request log; user-defined kmock reactions still apply to non-object URLs) and replaces its
object store, which keeps objects verbatim, with one that follows the apiserver's rules:

- metadata: uid, creationTimestamp, namespace from the URL, a cluster-wide resourceVersion that
  changes on every write (and only on a real change: a no-op write is not a write), generation
  bumped only when something outside metadata and status changes;
- the status subresource: writes to the object ignore `status`, writes to `/status` touch only
  `status` and never bump generation; the scale subresource for kinds that declare one;
- create (201, 409 AlreadyExists), get/list/watch (404 NotFound), PUT with optimistic
  concurrency (409 Conflict on a stale resourceVersion), merge, strategic-merge (treated as a
  merge), JSON patch (422 on a failed `test` op) and server-side apply
  (`application/apply-patch+yaml`, `fieldManager` required; the fields a manager applied
  earlier and omits now are removed unless another manager still applies them (shared
  ownership, as when a field is handed over); ownership conflicts are not modelled, so `force`
  is moot);
- list with label/field selectors, `limit` and `continue`; watch from a resourceVersion
  (replaying retained events, 410 Gone when too old), without one (synthetic ADDED events),
  with `sendInitialEvents`, periodic BOOKMARKs and `timeoutSeconds`; a watch with a label
  selector sees ADDED/DELETED when an object starts/stops matching;
- deletion with finalizers (deletionTimestamp first, removal when the last finalizer goes);
- namespaces: created on the first write into them, listed at `GET /api/v1/namespaces`,
  deleting one deletes its objects; a Secret's `stringData` is stored as base64 `data`;
- kinds: the built-in ones the operator touches, every CRD in `crds/` (and any CRD created
  through the API), KEDA's ScaledObject only when asked (`extra_kinds=(KEDA_SCALED_OBJECT,)`),
  with KEDA's admission webhook (a ScaledObject is refused, 403, for a workload an HPA that is
  not its own already scales);
  discovery is good enough for kopf and for `kubectl` (`apply --server-side --validate=false`,
  `get`, `scale`, `delete`; no OpenAPI document, no server-side table printing).

One controller is emulated because an operator cannot be tested without it: the garbage
collector. Deleting an owner deletes the dependents whose ownerReferences all point at deleted
objects (unless `propagationPolicy=Orphan`), and an object written with owners that are all gone
(a controller acting on a stale view) is deleted right after the write; both synchronously, where
the real one works in the background. The Deployment controller is not emulated: tests set a
Deployment's status with `set_deployment_status`. Not emulated either: CRD schema validation and
defaulting, admission (but KEDA's webhook, above), RBAC, authentication (any credentials are
accepted), field ownership conflicts, strategic-merge list keys, managedFields.
`inject_failures` makes chosen object requests fail, for resilience tests. Object requests
bypass kmock's request log unless `record_requests=True`.

`EmulatedCluster` runs the emulator on 127.0.0.1 in a thread of its own (so a blocking test, a
`kopf.testing.KopfRunner` or a benchmark can share the process), and offers a synchronous client
(`KubeHttpClient`, the same one the e2e tests use against a real cluster) and test helpers.
`python -m modelplane.testing.kube --kubeconfig PATH` serves it as a process of its own.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import builtins
import collections
import contextlib
import copy
import dataclasses
import datetime
import math
import re
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiohttp.test_utils
import aiohttp.web
import attrs
import httpx
import jsonpatch
import kmock
import orjson
import yaml

from modelplane.operator.kubeapi import KNOWN_KINDS
from modelplane.testing.processes import ServerContext

JsonDict = dict[str, Any]
_T = TypeVar("_T")

REPO_CRD_DIR = Path(__file__).resolve().parents[2] / "crds"

_STATUS_REASONS = {
    400: "BadRequest",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
}


class ApiError(Exception):
    """An API failure rendered as a Kubernetes `Status` object."""

    def __init__(self, code: int, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _STATUS_REASONS.get(code, "InternalError")

    def as_status(self) -> JsonDict:
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


@dataclasses.dataclass(frozen=True)
class KindInfo:
    """What the emulator knows about one resource kind (one served group/version/plural)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: frozenset[str] = frozenset()
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    # JSON paths (dotted) of the scale subresource, when declared.
    spec_replicas_path: str = "spec.replicas"
    status_replicas_path: str = "status.replicas"
    label_selector_path: str = ""  # a CRD's scale selector (a string); else spec.selector

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources


_STATUS = frozenset({"status"})

BUILTIN_KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        "",
        "v1",
        "namespaces",
        "Namespace",
        namespaced=False,
        subresources=_STATUS,
        short_names=("ns",),
    ),
    KindInfo("", "v1", "secrets", "Secret"),
    KindInfo("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    KindInfo("", "v1", "services", "Service", subresources=_STATUS, short_names=("svc",)),
    KindInfo("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", subresources=_STATUS),
    KindInfo("", "v1", "pods", "Pod", subresources=_STATUS, short_names=("po",)),
    KindInfo("", "v1", "events", "Event"),
    KindInfo("", "v1", "serviceaccounts", "ServiceAccount"),
    KindInfo("events.k8s.io", "v1", "events", "Event"),
    KindInfo(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        subresources=_STATUS | {"scale"},
        short_names=("deploy",),
    ),
    KindInfo(
        "autoscaling",
        "v2",
        "horizontalpodautoscalers",
        "HorizontalPodAutoscaler",
        subresources=_STATUS,
    ),
    KindInfo("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", subresources=_STATUS),
    KindInfo("coordination.k8s.io", "v1", "leases", "Lease"),
    KindInfo(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        subresources=_STATUS,
    ),
)

# Served only when asked for (`KubeEmulator(extra_kinds=(KEDA_SCALED_OBJECT,))`): most clusters
# have no KEDA, and the operator must cope with that.
KEDA_SCALED_OBJECT = KindInfo(
    "keda.sh", "v1alpha1", "scaledobjects", "ScaledObject", subresources=frozenset({"status"})
)


def kinds_from_crd(crd: Mapping[str, Any]) -> list[KindInfo]:
    """The served versions of a CustomResourceDefinition, as emulator kinds."""
    spec = crd["spec"]
    names = spec["names"]
    kinds = []
    for version in spec.get("versions", []):
        if not version.get("served", True):
            continue
        declared = version.get("subresources") or {}
        scale = declared.get("scale") or {}
        kinds.append(
            KindInfo(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                subresources=frozenset(declared),
                singular=names.get("singular", ""),
                short_names=tuple(names.get("shortNames", ())),
                categories=tuple(names.get("categories", ())),
                spec_replicas_path=scale.get("specReplicasPath", ".spec.replicas").lstrip("."),
                status_replicas_path=scale.get("statusReplicasPath", ".status.replicas").lstrip(
                    "."
                ),
                label_selector_path=scale.get("labelSelectorPath", "").lstrip("."),
            )
        )
    return kinds


def load_crds(crd_dir: Path) -> list[JsonDict]:
    """Every CustomResourceDefinition in the YAML files of a folder (none if it is absent)."""
    crds: list[JsonDict] = []
    if not crd_dir.is_dir():
        return crds
    for path in sorted(crd_dir.glob("*.y*ml")):
        for document in yaml.safe_load_all(path.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds


# --- pure object semantics -------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: dicts merge, null deletes, everything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    merged: JsonDict = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


def _drop_omitted(live: Any, previous: Any, current: Any, others: list[Any]) -> Any:
    """Remove from `live` the dict keys a manager applied before (`previous`) and omits now,
    unless another manager still applies them (`others`, at the same depth): a shared field
    stays."""
    if not isinstance(live, dict) or not isinstance(previous, dict):
        return live
    current = current if isinstance(current, dict) else {}
    others = [other for other in others if isinstance(other, dict)]
    result = dict(live)
    for key, old_value in previous.items():
        if key not in current:
            if not any(key in other for other in others):
                result.pop(key, None)
        elif key in result:
            result[key] = _drop_omitted(
                result[key], old_value, current[key], [other.get(key) for other in others]
            )
    return result


def server_side_apply(
    live: JsonDict,
    applied: JsonDict,
    previous: JsonDict | None,
    others: Sequence[JsonDict] = (),
) -> JsonDict:
    """Apply a manager's whole intent: drop what it stopped applying and no other manager
    (`others`: what they last applied) applies, then merge what it applies."""
    pruned = live if previous is None else _drop_omitted(live, previous, applied, list(others))
    result: JsonDict = merge_patch(pruned, applied)
    return result


@dataclasses.dataclass(frozen=True)
class _Requirement:
    key: str
    operator: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case "=" | "in":
                return value is not None and value in self.values
            case "!=" | "notin":
                return value is None or value not in self.values
            case "exists":
                return value is not None
            case _:
                return value is None


_SET_REQUIREMENT = re.compile(r"^\s*([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def parse_label_selector(selector: str) -> list[_Requirement]:
    """Parse the label selector syntax of the API (equality- and set-based)."""
    requirements: list[_Requirement] = []
    # Commas separate requirements except inside the parentheses of a set.
    for part in re.split(r",(?![^(]*\))", selector):
        part = part.strip()
        if not part:
            continue
        if found := _SET_REQUIREMENT.match(part):
            values = frozenset(v.strip() for v in found.group(3).split(",") if v.strip())
            requirements.append(_Requirement(found.group(1), found.group(2), values))
        elif "!=" in part:
            key, value = part.split("!=", 1)
            requirements.append(_Requirement(key.strip(), "!=", frozenset({value.strip()})))
        elif "=" in part:
            key, value = part.replace("==", "=").split("=", 1)
            requirements.append(_Requirement(key.strip(), "=", frozenset({value.strip()})))
        elif part.startswith("!"):
            requirements.append(_Requirement(part[1:].strip(), "!exists"))
        else:
            requirements.append(_Requirement(part, "exists"))
    return requirements


def _field_value(obj: Mapping[str, Any], dotted: str) -> Any:
    value: Any = obj
    for step in dotted.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    return value


def _set_field(obj: JsonDict, dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    node = obj
    for step in parents:
        node = node.setdefault(step, {})
    node[last] = value


@dataclasses.dataclass(frozen=True)
class Selector:
    labels: tuple[_Requirement, ...] = ()
    fields: tuple[tuple[str, str, str], ...] = ()  # (path, operator, value)

    @classmethod
    def parse(cls, label_selector: str | None, field_selector: str | None) -> Selector:
        fields = []
        for part in (field_selector or "").split(","):
            if not part.strip():
                continue
            operator = "!=" if "!=" in part else "="
            path, value = part.replace("==", "=").split(operator, 1)
            fields.append((path.strip(), operator, value.strip()))
        return cls(tuple(parse_label_selector(label_selector or "")), tuple(fields))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        if not all(requirement.matches(labels) for requirement in self.labels):
            return False
        for path, operator, value in self.fields:
            actual = _field_value(obj, path)
            if (str(actual) == value) != (operator == "="):
                return False
        return True


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _generation_relevant(obj: Mapping[str, Any]) -> JsonDict:
    return {key: value for key, value in obj.items() if key not in ("metadata", "status")}


# --- the store -------------------------------------------------------------------------------

_StoreKey = tuple[str, str]  # (group, plural): one storage per resource, whatever the version
_ObjectKey = tuple[str, str]  # (namespace or "", name)


@dataclasses.dataclass
class _Watcher:
    group: str
    plural: str
    namespace: str | None
    selector: Selector
    api_version: str
    queue: asyncio.Queue[JsonDict]

    def sees(self, obj: Mapping[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self.selector.matches(obj)


@dataclasses.dataclass(frozen=True)
class _Change:
    revision: int
    store_key: _StoreKey
    type: str
    obj: JsonDict
    old: JsonDict | None


@dataclasses.dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesEmulator):
    """kmock's Kubernetes emulator made realistic; see the module docstring for the rules."""

    crd_dir: Path | None = REPO_CRD_DIR
    extra_kinds: tuple[KindInfo, ...] = ()
    bookmark_interval: float = 20.0
    retained_changes: int = 100_000
    record_requests: bool = False

    _kinds: dict[tuple[str, str, str], KindInfo] = attrs.field(factory=dict, init=False)
    _store: dict[_StoreKey, dict[_ObjectKey, JsonDict]] = attrs.field(
        factory=lambda: collections.defaultdict(dict), init=False
    )
    _uids: dict[str, tuple[_StoreKey, _ObjectKey]] = attrs.field(factory=dict, init=False)
    _applied: dict[tuple[_StoreKey, _ObjectKey, str, str], JsonDict] = attrs.field(
        factory=dict, init=False
    )
    _revision: int = attrs.field(default=1, init=False)
    _changes: collections.deque[_Change] = attrs.field(init=False)
    _watchers: list[_Watcher] = attrs.field(factory=list, init=False)
    _faults: list[_Fault] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._changes = collections.deque(maxlen=self.retained_changes)
        for info in (*BUILTIN_KINDS, *self.extra_kinds):
            self.add_kind(info)
        if self.crd_dir is not None:
            for crd in load_crds(self.crd_dir):
                self.create_object(
                    self._kinds["apiextensions.k8s.io", "v1", "customresourcedefinitions"],
                    None,
                    crd,
                )

    # fault injection

    def inject_failures(
        self, method: str, path_pattern: str, *, status: int = 500, times: int = 1
    ) -> None:
        """Answer the next `times` object requests of `method` on a matching path with `status`."""
        self._faults.append(_Fault(method.upper(), re.compile(path_pattern), status, times))

    def clear_failures(self) -> None:
        """Forget every injected failure not yet served."""
        self._faults.clear()

    def _raise_injected_fault(self, method: str, path: str) -> None:
        for fault in self._faults:
            if fault.remaining > 0 and fault.method == method and fault.path.search(path):
                fault.remaining -= 1
                raise ApiError(fault.status, "an injected failure", "InternalError")

    # kinds and discovery

    def add_kind(self, info: KindInfo) -> None:
        """Serve a kind: its objects' API and its entry in discovery."""
        self._kinds[info.group, info.version, info.plural] = info
        self.resources[kmock.resource(info.group, info.version, info.plural)] = kmock.ResourceInfo(
            kind=info.kind,
            singular=info.singular or info.kind.lower(),
            namespaced=info.namespaced,
            verbs={
                "create",
                "delete",
                "deletecollection",
                "get",
                "list",
                "patch",
                "update",
                "watch",
            },
            shortnames=set(info.short_names),
            categories=set(info.categories),
            subresources=set(info.subresources),
        )

    async def _serve_version(self, request: kmock.Request) -> kmock.Payload:
        # kmock names the core group version "/v1"; kubectl wants "v1".
        # And it repeats a kind's short names on its subresources, which confuses kubectl.
        payload = await super()._serve_version(request)
        if isinstance(payload, dict):
            if str(payload.get("groupVersion", "")).startswith("/"):
                payload["groupVersion"] = payload["groupVersion"][1:]
            for entry in payload.get("resources", []):
                if "/" in entry["name"]:
                    entry["shortNames"], entry["categories"] = [], []
        return payload

    def kind_named(self, kind: str) -> KindInfo:
        """A served kind by its name, at the version `KNOWN_KINDS` uses."""
        ref = KNOWN_KINDS[kind]
        return self.kind_for(ref.api_version, kind)

    def kind_for(self, api_version: str, kind: str) -> KindInfo:
        group, _, version = api_version.rpartition("/")
        for info in self._kinds.values():
            if info.group == group and info.version == version and info.kind == kind:
                return info
        raise ApiError(404, f"the server does not serve {kind} in {api_version}")

    # HTTP entry point

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        target = self._parse_object_path(raw_request.path)
        if target is None:
            # Discovery, /version and user-defined kmock reactions.
            return await super().__call__(raw_request)
        if self.record_requests:
            self._requests.append(await kmock.Request._parse(raw_request, id=len(self._requests)))
        try:
            self._raise_injected_fault(raw_request.method, raw_request.path)
            return await self._serve_object_request(raw_request, *target)
        except ApiError as error:
            return aiohttp.web.Response(
                body=orjson.dumps(error.as_status()),
                status=error.code,
                content_type="application/json",
            )

    def _parse_object_path(
        self, path: str
    ) -> tuple[KindInfo, str | None, str | None, str | None] | None:
        parts = [part for part in path.split("/") if part]
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            return None
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        info = self._kinds.get((group, version, rest[0]))
        if info is None:
            return None  # kmock answers 404 for unknown resources
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        return info, namespace, name, subresource

    async def _serve_object_request(
        self,
        request: aiohttp.web.BaseRequest,
        info: KindInfo,
        namespace: str | None,
        name: str | None,
        subresource: str | None,
    ) -> aiohttp.web.StreamResponse:
        query = request.query
        method = request.method
        if method == "GET" and query.get("watch") in ("true", "1"):
            return await self._stream_watch(request, info, namespace, name)
        if name is None:
            if method == "GET":
                return _json(self.list_objects(info, namespace, query))
            if method == "POST":
                body = _parse_body(await request.read(), request.content_type)
                return _json(self.create_object(info, namespace, body), status=201)
            if method == "DELETE":
                selector = Selector.parse(query.get("labelSelector"), query.get("fieldSelector"))
                for obj in self._matching(info, namespace, selector):
                    self.delete_object(info, namespace, obj["metadata"]["name"])
                return _json({"apiVersion": "v1", "kind": "Status", "status": "Success"})
            raise ApiError(405, f"{method} is not allowed on a collection")
        if subresource not in (None, "status", "scale") or (
            subresource is not None and subresource not in info.subresources
        ):
            raise ApiError(404, f"{info.plural} has no subresource {subresource}")
        if method == "GET":
            obj = self.get_object(info, namespace, name)
            return _json(self._scale_of(info, obj) if subresource == "scale" else obj)
        if method == "DELETE":
            raw = await request.read()
            options = orjson.loads(raw) if raw.strip() else {}
            policy = query.get("propagationPolicy") or options.get("propagationPolicy")
            expected_uid = (options.get("preconditions") or {}).get("uid")
            return _json(
                self.delete_object(info, namespace, name, propagation=policy, uid=expected_uid)
            )
        if method in ("PATCH", "PUT"):
            body = _parse_body(await request.read(), request.content_type)
            if method == "PUT":
                return _json(self.replace_object(info, namespace, name, body, subresource))
            return _json(
                self.patch_object(
                    info,
                    namespace,
                    name,
                    body,
                    content_type=request.content_type,
                    subresource=subresource,
                    field_manager=query.get("fieldManager"),
                )
            )
        raise ApiError(405, f"{method} is not allowed on an object")

    # object operations (synchronous: each is atomic on the event loop)

    def _admit(self, info: KindInfo, obj: JsonDict) -> None:
        """The validating webhooks of what the cluster runs: KEDA's, where KEDA is served."""
        if info == KEDA_SCALED_OBJECT:
            self._admit_scaled_object(obj)

    def _admit_scaled_object(self, obj: JsonDict) -> None:
        """KEDA refuses a ScaledObject for a workload an HPA of someone else's already scales."""
        meta = obj["metadata"]
        target = obj.get("spec", {}).get("scaleTargetRef", {})
        hpas = self._store["autoscaling", "horizontalpodautoscalers"]
        for (namespace, hpa_name), hpa in hpas.items():
            if namespace != meta.get("namespace"):
                continue
            hpa_target = hpa.get("spec", {}).get("scaleTargetRef", {})
            owners = {owner.get("uid") for owner in hpa["metadata"].get("ownerReferences") or []}
            if hpa_target.get("name") == target.get("name") and meta.get("uid") not in owners:
                raise ApiError(
                    403,
                    'admission webhook "vscaledobject.keda.sh" denied the request: the workload '
                    f"'{target.get('name')}' of type 'apps/v1.Deployment' is already managed by "
                    f"the hpa '{hpa_name}'",
                    "Forbidden",
                )

    def _bucket(self, info: KindInfo) -> dict[_ObjectKey, JsonDict]:
        return self._store[info.group, info.plural]

    def _key(self, info: KindInfo, namespace: str | None, name: str) -> _ObjectKey:
        if info.namespaced and not namespace:
            raise ApiError(404, f"{info.plural} are namespaced: the URL needs a namespace")
        return ((namespace or "") if info.namespaced else "", name)

    def _matching(
        self, info: KindInfo, namespace: str | None, selector: Selector
    ) -> list[JsonDict]:
        objects = self._bucket(info)
        return [
            obj
            for (obj_namespace, _), obj in sorted(objects.items())
            if (namespace is None or obj_namespace == namespace) and selector.matches(obj)
        ]

    def _versioned(self, info: KindInfo, obj: JsonDict) -> JsonDict:
        """A copy of the stored object as the requested version presents it."""
        result = copy.deepcopy(obj)
        result["apiVersion"] = info.api_version
        return result

    def get_object(self, info: KindInfo, namespace: str | None, name: str) -> JsonDict:
        obj = self._bucket(info).get(self._key(info, namespace, name))
        if obj is None:
            raise ApiError(404, f'{info.plural} "{name}" not found')
        return self._versioned(info, obj)

    def list_objects(
        self, info: KindInfo, namespace: str | None, query: Mapping[str, str] | None = None
    ) -> JsonDict:
        query = query or {}
        selector = Selector.parse(query.get("labelSelector"), query.get("fieldSelector"))
        items = self._matching(info, namespace, selector)
        offset = int(base64.b64decode(query["continue"]).decode()) if query.get("continue") else 0
        limit = int(query["limit"]) if query.get("limit") else len(items)
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        return {
            "apiVersion": info.api_version,
            "kind": f"{info.kind}List",
            "metadata": {
                "resourceVersion": str(self._revision),
                "continue": base64.b64encode(str(offset + limit).encode()).decode() if more else "",
            },
            "items": [self._versioned(info, obj) for obj in page],
        }

    def create_object(self, info: KindInfo, namespace: str | None, body: JsonDict) -> JsonDict:
        if not isinstance(body, dict):
            raise ApiError(400, "the body must be an object")
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        if info.namespaced:
            if namespace and meta.get("namespace") not in (None, namespace):
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request",
                )
            namespace = namespace or meta.get("namespace")
            if not namespace:
                raise ApiError(400, "a namespaced object needs a namespace")
            meta["namespace"] = namespace
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(422, "metadata.name or metadata.generateName is required")
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        key = self._key(info, namespace, meta["name"])
        if key in self._bucket(info):
            raise ApiError(409, f'{info.plural} "{meta["name"]}" already exists', "AlreadyExists")
        if info.namespaced:
            self._ensure_namespace(key[0])
        if info.has_status:
            obj.pop("status", None)
        for transient in ("resourceVersion", "deletionTimestamp", "managedFields"):
            meta.pop(transient, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta["generation"] = 1
        obj["apiVersion"], obj["kind"] = info.api_version, info.kind
        _normalize(info, obj)
        self._admit(info, obj)
        self._write(info, key, obj, None)
        self._collect_if_owners_gone(info, key)
        if info.plural == "customresourcedefinitions":
            for served in kinds_from_crd(obj):
                self.add_kind(served)
        return self._versioned(info, obj)

    def _ensure_namespace(self, namespace: str) -> None:
        namespaces = self._kinds["", "v1", "namespaces"]
        if ("", namespace) not in self._bucket(namespaces):
            self.create_object(namespaces, None, {"metadata": {"name": namespace}})

    def patch_object(
        self,
        info: KindInfo,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        content_type: str = "application/merge-patch+json",
        subresource: str | None = None,
        field_manager: str | None = None,
    ) -> JsonDict:
        key = self._key(info, namespace, name)
        live = self._bucket(info).get(key)
        if content_type == "application/apply-patch+yaml":
            if not field_manager:
                raise ApiError(400, "fieldManager is required for apply requests")
            if not isinstance(patch, dict):
                raise ApiError(400, "an apply body must be an object")
            applied_key = (
                (info.group, info.plural),
                key,
                field_manager,
                subresource or "",
            )
            if live is None:
                if subresource is not None:
                    raise ApiError(404, f'{info.plural} "{name}" not found')
                created = self.create_object(info, namespace, patch)
                self._applied[applied_key] = copy.deepcopy(patch)
                return created
            # What the object's other managers last applied: the fields they keep a share of.
            others = [
                config
                for (store, obj, manager, sub), config in self._applied.items()
                if (store, obj, sub) == (applied_key[0], key, subresource or "")
                and manager != field_manager
            ]
            updated = server_side_apply(live, patch, self._applied.get(applied_key), others)
            self._applied[applied_key] = copy.deepcopy(patch)
        else:
            if live is None:
                raise ApiError(404, f'{info.plural} "{name}" not found')
            if subresource == "scale":
                scaled = self._update(
                    info, key, live, self._scaled(info, live, patch, content_type), None
                )
                return self._scale_of(info, scaled)
            if content_type == "application/json-patch+json":
                try:
                    updated = jsonpatch.apply_patch(live, patch)
                except jsonpatch.JsonPatchTestFailed as error:
                    raise ApiError(422, f"the JSON patch test failed: {error}") from error
                except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as error:
                    raise ApiError(422, f"the JSON patch cannot be applied: {error}") from error
            elif content_type in (
                "application/merge-patch+json",
                "application/strategic-merge-patch+json",
            ):
                updated = merge_patch(live, patch)
            else:
                raise ApiError(415, f"unsupported patch type {content_type}")
        return self._update(info, key, live, updated, subresource)

    def replace_object(
        self,
        info: KindInfo,
        namespace: str | None,
        name: str,
        body: JsonDict,
        subresource: str | None = None,
    ) -> JsonDict:
        key = self._key(info, namespace, name)
        live = self._bucket(info).get(key)
        if live is None:
            raise ApiError(404, f'{info.plural} "{name}" not found')
        if subresource == "scale":
            scaled = self._update(info, key, live, self._scaled(info, live, body, "replace"), None)
            return self._scale_of(info, scaled)
        expected = body.get("metadata", {}).get("resourceVersion")
        if expected and expected != live["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {info.plural} "{name}": '
                "the object has been modified; "
                "please apply your changes to the latest version and try again",
            )
        return self._update(info, key, live, body, subresource)

    def _update(
        self,
        info: KindInfo,
        key: _ObjectKey,
        live: JsonDict,
        updated: JsonDict,
        subresource: str | None,
    ) -> JsonDict:
        new = copy.deepcopy(updated)
        old_meta = live["metadata"]
        if subresource == "status":
            # Only the status changes through the status subresource.
            new = {**copy.deepcopy(live), "status": new.get("status", {})}
            if "status" not in updated:
                new.pop("status")
        elif info.has_status:
            new.pop("status", None)
            if "status" in live:
                new["status"] = copy.deepcopy(live["status"])
        meta = new.setdefault("metadata", {})
        # Identity and server-owned fields are not the client's to change.
        for field in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ):
            if field in old_meta:
                meta[field] = old_meta[field]
            else:
                meta.pop(field, None)
        meta["resourceVersion"] = old_meta["resourceVersion"]
        new["apiVersion"], new["kind"] = live["apiVersion"], live["kind"]
        _normalize(info, new)
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
            if added:
                raise ApiError(
                    422, f"finalizers cannot be added to an object being deleted: {sorted(added)}"
                )
        if new == live:
            return self._versioned(info, live)  # a no-op write is no write: no new resourceVersion
        if subresource != "status":
            self._admit(info, new)
        if subresource != "status" and _generation_relevant(new) != _generation_relevant(live):
            meta["generation"] = old_meta.get("generation", 1) + 1
        self._write(info, key, new, live)
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._remove(info, key)
        else:
            self._collect_if_owners_gone(info, key)
        return self._versioned(info, new)

    def delete_object(
        self,
        info: KindInfo,
        namespace: str | None,
        name: str,
        *,
        propagation: str | None = None,
        uid: str | None = None,
    ) -> JsonDict:
        key = self._key(info, namespace, name)
        live = self._bucket(info).get(key)
        if live is None:
            raise ApiError(404, f'{info.plural} "{name}" not found')
        if uid is not None and live["metadata"]["uid"] != uid:
            raise ApiError(
                409,
                f"Precondition failed: UID in precondition: {uid}, "
                f"UID in object meta: {live['metadata']['uid']}",
            )
        if live["metadata"].get("finalizers"):
            if not live["metadata"].get("deletionTimestamp"):
                marked = copy.deepcopy(live)
                marked["metadata"]["deletionTimestamp"] = _now()
                marked["metadata"]["deletionGracePeriodSeconds"] = 0
                self._write(info, key, marked, live)
            return self.get_object(info, namespace, name)
        self._remove(info, key, orphan=propagation == "Orphan")
        return self._versioned(info, live)

    def _remove(self, info: KindInfo, key: _ObjectKey, *, orphan: bool = False) -> None:
        live = self._bucket(info).pop(key)
        self._uids.pop(live["metadata"]["uid"], None)
        for applied_key in [
            k for k in self._applied if k[0] == (info.group, info.plural) and k[1] == key
        ]:
            del self._applied[applied_key]
        self._revision += 1
        gone = copy.deepcopy(live)
        gone["metadata"]["resourceVersion"] = str(self._revision)
        self._publish(_Change(self._revision, (info.group, info.plural), "DELETED", gone, live))
        if info.plural == "namespaces":
            self._delete_namespace_contents(key[1])
        if not orphan:
            self._collect_garbage()

    def _delete_namespace_contents(self, namespace: str) -> None:
        for info in self._unique_kinds():
            if not info.namespaced:
                continue
            for obj_key in [k for k in self._bucket(info) if k[0] == namespace]:
                if obj_key in self._bucket(info):
                    self.delete_object(info, obj_key[0], obj_key[1])

    def _collect_garbage(self) -> None:
        """Stand in for the apiserver's garbage collector (background propagation)."""
        for info in self._unique_kinds():
            for obj_key, obj in list(self._bucket(info).items()):
                owners = obj["metadata"].get("ownerReferences") or []
                orphaned = owners and not any(owner.get("uid") in self._uids for owner in owners)
                being_deleted = obj["metadata"].get("deletionTimestamp")
                # An earlier deletion in this sweep may have taken the object already.
                if orphaned and not being_deleted and obj_key in self._bucket(info):
                    self.delete_object(info, obj_key[0] or None, obj_key[1])

    def _collect_if_owners_gone(self, info: KindInfo, key: _ObjectKey) -> None:
        obj = self._bucket(info)[key]
        owners = obj["metadata"].get("ownerReferences") or []
        if owners and not any(owner.get("uid") in self._uids for owner in owners):
            self.delete_object(info, key[0] or None, key[1])

    def _unique_kinds(self) -> Iterator[KindInfo]:
        seen: set[_StoreKey] = set()
        for info in list(self._kinds.values()):
            if (info.group, info.plural) not in seen:
                seen.add((info.group, info.plural))
                yield info

    def _write(self, info: KindInfo, key: _ObjectKey, obj: JsonDict, old: JsonDict | None) -> None:
        self._revision += 1
        obj["metadata"]["resourceVersion"] = str(self._revision)
        self._bucket(info)[key] = obj
        self._uids[obj["metadata"]["uid"]] = ((info.group, info.plural), key)
        kind = "ADDED" if old is None else "MODIFIED"
        self._publish(_Change(self._revision, (info.group, info.plural), kind, obj, old))

    # scale subresource

    def _scale_of(self, info: KindInfo, obj: JsonDict) -> JsonDict:
        if info.label_selector_path:
            selector_text = str(_field_value(obj, info.label_selector_path) or "")
        else:
            match_labels = _field_value(obj, "spec.selector.matchLabels") or {}
            selector_text = ",".join(f"{k}={v}" for k, v in sorted(match_labels.items()))
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                key: obj["metadata"][key]
                for key in ("name", "namespace", "uid", "resourceVersion")
                if key in obj["metadata"]
            },
            "spec": {"replicas": _field_value(obj, info.spec_replicas_path) or 0},
            "status": {
                "replicas": _field_value(obj, info.status_replicas_path) or 0,
                "selector": selector_text,
            },
        }  # fmt: skip

    def _scaled(self, info: KindInfo, live: JsonDict, body: Any, content_type: str) -> JsonDict:
        scale = self._scale_of(info, live)
        if content_type == "application/json-patch+json":
            scale = jsonpatch.apply_patch(scale, body)
        elif content_type == "replace":
            scale = body
        else:
            scale = merge_patch(scale, body)
        updated = copy.deepcopy(live)
        _set_field(updated, info.spec_replicas_path, int(scale["spec"]["replicas"]))
        return updated

    # watching

    def _publish(self, change: _Change) -> None:
        self._changes.append(change)
        for watcher in self._watchers:
            if (watcher.group, watcher.plural) == change.store_key:
                event = self._event_for(watcher, change)
                if event is not None:
                    watcher.queue.put_nowait(event)

    def _event_for(self, watcher: _Watcher, change: _Change) -> JsonDict | None:
        now_seen = watcher.sees(change.obj)
        was_seen = watcher.sees(change.old)
        if change.type == "DELETED":
            kind = "DELETED" if was_seen else None
        elif now_seen:
            kind = "MODIFIED" if was_seen else "ADDED"
        else:
            kind = "DELETED" if was_seen else None
        if kind is None:
            return None
        obj = copy.deepcopy(change.obj)
        obj["apiVersion"] = watcher.api_version
        return {"type": kind, "object": obj}

    async def _stream_watch(
        self,
        request: aiohttp.web.BaseRequest,
        info: KindInfo,
        namespace: str | None,
        name: str | None,
    ) -> aiohttp.web.StreamResponse:
        query = request.query
        field_selector = query.get("fieldSelector")
        if name is not None:
            field_selector = ",".join(filter(None, [field_selector, f"metadata.name={name}"]))
        watcher = _Watcher(
            info.group,
            info.plural,
            namespace,
            Selector.parse(query.get("labelSelector"), field_selector),
            info.api_version,
            asyncio.Queue(),
        )
        since = query.get("resourceVersion")
        initial: list[JsonDict]
        if since in (None, "", "0"):
            initial = [
                {"type": "ADDED", "object": self._versioned(info, obj)}
                for obj in self._matching(info, namespace, watcher.selector)
            ]
            if query.get("sendInitialEvents") == "true":
                initial.append(self._bookmark(info, initial_events_end=True))
        elif self._changes and int(since) < self._changes[0].revision - 1:
            initial = [
                {
                    "type": "ERROR",
                    "object": ApiError(410, f"too old resource version: {since}").as_status(),
                }
            ]
        else:
            initial = [
                event
                for change in self._changes
                if change.revision > int(since) and change.store_key == (info.group, info.plural)
                for event in [self._event_for(watcher, change)]
                if event is not None
            ]
        self._watchers.append(watcher)  # in the same step as the snapshot: no event falls between
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        try:
            await response.prepare(request)
            for event in initial:
                await response.write(orjson.dumps(event) + b"\n")
            if initial and initial[-1]["type"] == "ERROR":
                return response
            loop = asyncio.get_running_loop()
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
            deadline = loop.time() + timeout if timeout is not None else None
            while deadline is None or loop.time() < deadline:
                wait = self.bookmark_interval
                if deadline is not None:
                    wait = min(wait, deadline - loop.time())
                try:
                    event = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.0))
                except TimeoutError:
                    if query.get("allowWatchBookmarks") == "true":
                        await response.write(orjson.dumps(self._bookmark(info)) + b"\n")
                    continue
                await response.write(orjson.dumps(event) + b"\n")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._watchers.remove(watcher)
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    def _bookmark(self, info: KindInfo, *, initial_events_end: bool = False) -> JsonDict:
        meta: JsonDict = {"resourceVersion": str(self._revision)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return {
            "type": "BOOKMARK",
            "object": {"apiVersion": info.api_version, "kind": info.kind, "metadata": meta},
        }

    # test helpers (run them on the emulator's loop; EmulatedCluster does)

    def set_deployment_status(
        self, namespace: str, name: str, *, ready_replicas: int, replicas: int | None = None
    ) -> JsonDict:
        """Play the Deployment controller: report the rollout done with `ready_replicas` ready."""
        info = self._kinds["apps", "v1", "deployments"]
        live = self.get_object(info, namespace, name)
        desired = live.get("spec", {}).get("replicas", 1)
        current = desired if replicas is None else replicas
        status = {
            "observedGeneration": live["metadata"]["generation"],
            "replicas": current,
            "updatedReplicas": current,
            "readyReplicas": ready_replicas,
            "availableReplicas": ready_replicas,
            "unavailableReplicas": max(current - ready_replicas, 0),
        }
        return self.patch_object(info, namespace, name, {"status": status}, subresource="status")

    @property
    def revision(self) -> int:
        return self._revision

    def request_count(self) -> int:
        return len(self._requests)


def _normalize(info: KindInfo, obj: JsonDict) -> None:
    """What the apiserver does to every write of a kind: a Secret's stringData becomes data."""
    if info.kind == "Secret" and info.group == "" and "stringData" in obj:
        encoded = {
            key: base64.b64encode(str(value).encode()).decode()
            for key, value in (obj.pop("stringData") or {}).items()
        }
        obj["data"] = {**(obj.get("data") or {}), **encoded}


def _json(payload: Any, status: int = 200) -> aiohttp.web.Response:
    return aiohttp.web.Response(
        body=orjson.dumps(payload), status=status, content_type="application/json"
    )


def _parse_body(raw: bytes, content_type: str) -> Any:
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        if content_type == "application/apply-patch+yaml":
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as error:
                raise ApiError(400, f"the body is not valid YAML: {error}") from error
        raise ApiError(400, "the body is not valid JSON") from None


# --- a synchronous client, for the emulator and for a real cluster -------------------------


class KubeHttpClient:
    """A small synchronous Kubernetes REST client for tests, keyed by kind name.

    Works against `EmulatedCluster` (`cluster.client()`) and against a real cluster
    (`KubeHttpClient.from_kubeconfig()`), so one scenario runs on both.
    """

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    @classmethod
    def for_url(cls, url: str) -> KubeHttpClient:
        return cls(httpx.Client(base_url=url, timeout=10.0))

    @classmethod
    def from_kubeconfig(cls, context: str | None = None) -> KubeHttpClient:
        """Connect with the credentials the `kubernetes` client reads from KUBECONFIG."""
        from kubernetes import config as kube_config
        from kubernetes.client import Configuration

        configuration = Configuration()
        kube_config.load_kube_config(  # type: ignore[no-untyped-call]
            context=context, client_configuration=configuration
        )
        headers = {}
        token = configuration.api_key.get("authorization") or configuration.api_key.get(
            "BearerToken"
        )
        if token:
            prefix = configuration.api_key_prefix.get("authorization")
            headers["Authorization"] = f"{prefix} {token}" if prefix and " " not in token else token
        cert: tuple[str, str] | None = None
        if configuration.cert_file and configuration.key_file:
            cert = (configuration.cert_file, configuration.key_file)
        verify: Any = configuration.ssl_ca_cert or True
        if not configuration.verify_ssl:
            verify = False
        http = httpx.Client(
            base_url=configuration.host, headers=headers, cert=cert, verify=verify, timeout=30.0
        )
        return cls(http)

    def close(self) -> None:
        self.http.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> JsonDict | None:
        response = self.http.request(method, path, **kwargs)
        if response.status_code == 404 and method == "GET":
            return None
        if response.status_code >= 400:
            raise ApiError(response.status_code, response.text)
        result: JsonDict = response.json()
        return result

    def create(self, obj: JsonDict, namespace: str | None = None) -> JsonDict:
        ref = KNOWN_KINDS[obj["kind"]]
        namespace = namespace or obj.get("metadata", {}).get("namespace")
        result = self._send("POST", ref.path(namespace), json=obj)
        assert result is not None
        return result

    def get(self, kind: str, namespace: str | None, name: str) -> JsonDict | None:
        return self._send("GET", KNOWN_KINDS[kind].path(namespace, name))

    def list(
        self, kind: str, namespace: str | None, label_selector: str | None = None
    ) -> list[JsonDict]:
        params = {"labelSelector": label_selector} if label_selector else {}
        result = self._send("GET", KNOWN_KINDS[kind].path(namespace), params=params)
        return list((result or {}).get("items", []))

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        subresource: str | None = None,
        content_type: str = "application/merge-patch+json",
    ) -> JsonDict:
        result = self._send(
            "PATCH",
            KNOWN_KINDS[kind].path(namespace, name, subresource),
            content=orjson.dumps(patch),
            headers={"Content-Type": content_type},
        )
        assert result is not None
        return result

    def delete(self, kind: str, namespace: str | None, name: str) -> None:
        response = self.http.request("DELETE", KNOWN_KINDS[kind].path(namespace, name))
        if response.status_code not in (200, 202, 404):
            raise ApiError(response.status_code, response.text)

    def apply_file(self, path: Path, namespace: str | None = None) -> builtins.list[JsonDict]:
        """Create or update (server-side apply) every object of a YAML file."""
        applied = []
        for obj in yaml.safe_load_all(path.read_text()):
            if not obj:
                continue
            ref = KNOWN_KINDS[obj["kind"]]
            ns = namespace or obj.get("metadata", {}).get("namespace")
            result = self._send(
                "PATCH",
                ref.path(ns, obj["metadata"]["name"]),
                content=orjson.dumps(obj),
                params={"fieldManager": "modelplane-tests", "force": "true"},
                headers={"Content-Type": "application/apply-patch+yaml"},
            )
            assert result is not None
            applied.append(result)
        return applied


def wait_for(
    probe: Callable[[], _T | None],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "the condition",
) -> _T:
    """Poll `probe` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: _T | None = None
    for _ in range(math.ceil(timeout / interval) + 1):
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last seen: {last!r})")


# --- running the emulator in a background thread ----------------------------------------------


class _QuietTestServer(aiohttp.test_utils.RawTestServer):
    """aiohttp's test server without an access log line per API call."""

    async def _make_runner(self, debug: bool = True, **kwargs: Any) -> aiohttp.web.ServerRunner:
        return await super()._make_runner(debug=debug, access_log=None, **kwargs)


class EmulatedCluster(ServerContext):
    """The emulator served on 127.0.0.1 from a thread of its own, with synchronous helpers.

    Use as a context manager: `with EmulatedCluster() as cluster: cluster.url ...`.
    """

    def __init__(
        self,
        crd_dir: Path | None = REPO_CRD_DIR,
        *,
        port: int | None = None,
        bookmark_interval: float = 20.0,
        extra_kinds: tuple[KindInfo, ...] = (),
        retained_changes: int = 100_000,
    ) -> None:
        self.emulator = KubeEmulator(
            crd_dir=crd_dir,
            bookmark_interval=bookmark_interval,
            extra_kinds=extra_kinds,
            retained_changes=retained_changes,
        )
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()
        self._stopping: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._url = ""
        self._clients: list[KubeHttpClient] = []

    @property
    def url(self) -> str:
        return self._url

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout=30):
            raise TimeoutError("the Kubernetes emulator did not start within 30 s")
        if self._failure is not None:
            raise RuntimeError("the Kubernetes emulator failed to start") from self._failure

    def close(self) -> None:
        for client in self._clients:
            client.close()
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as error:
            self._failure = error
            self._started.set()
        finally:
            loop.close()

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        server_factory = kmock.Server(self.emulator, port=self._port, server_cls=_QuietTestServer)
        async with self.emulator, server_factory as server:
            self._url = str(server.url).rstrip("/")
            self._started.set()
            await self._stopping.wait()

    def call(self, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """Run a function on the emulator's loop, where the (not thread-safe) store lives."""
        assert self._loop is not None, "the cluster is not running"

        async def invoke() -> _T:
            return function(*args, **kwargs)

        return asyncio.run_coroutine_threadsafe(invoke(), self._loop).result(timeout=30)

    def client(self) -> KubeHttpClient:
        """A synchronous REST client of this cluster (closed with the cluster)."""
        client = KubeHttpClient.for_url(self.url)
        self._clients.append(client)
        return client

    def set_deployment_status(
        self, namespace: str, name: str, *, ready_replicas: int, replicas: int | None = None
    ) -> JsonDict:
        """Play the Deployment controller; see `KubeEmulator.set_deployment_status`."""
        return self.call(
            self.emulator.set_deployment_status,
            namespace,
            name,
            ready_replicas=ready_replicas,
            replicas=replicas,
        )

    def objects(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[JsonDict]:
        """Every stored object of a kind (by kind name, as in `KNOWN_KINDS`), read in-process."""
        info = self.emulator.kind_named(kind)
        query = {"labelSelector": label_selector} if label_selector else {}
        listing = self.call(self.emulator.list_objects, info, namespace, query)
        return list(listing["items"])

    def kubeconfig(self, namespace: str = "default") -> JsonDict:
        """A kubeconfig that points `kubectl`, the `kubernetes` client or kopf at the emulator."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator"}}],
            "contexts": [
                {
                    "name": "emulator",
                    "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
                }
            ],
            "current-context": "emulator",
        }

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> Path:
        path.write_text(yaml.safe_dump(self.kubeconfig(namespace)))
        return path


def _main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Kubernetes emulator on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=None, help="default: a free port")
    parser.add_argument("--crds", type=Path, default=REPO_CRD_DIR, help="folder of CRD YAML files")
    parser.add_argument("--kubeconfig", type=Path, help="write a kubeconfig for the emulator here")
    args = parser.parse_args(list(argv) if argv is not None else None)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with EmulatedCluster(args.crds, port=args.port) as cluster:
        if args.kubeconfig:
            cluster.write_kubeconfig(args.kubeconfig)
        print(cluster.url, flush=True)
        stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
