"""The router's catalog from Kubernetes: ModelDeployment, ExternalModel, RoutingPolicy and Secrets.

`KubernetesCatalogWatcher` lists and then watches the four kinds in one namespace (or in all) and,
after every event, rebuilds the whole catalog and hands it to a callback (normally
`CatalogSource.replace`), so a change reaches the request path within one watch event and without
a restart. Backend names are the resources' names and must be unique across watched namespaces;
a Secret is only ever read from the namespace of the resource that references it.

Translation (`catalog_from_resources`, pure) turns the resources into the same `RouterConfig`
models the configuration file produces and calls `catalog_from_config`, so the file and the
cluster share one code path after loading:

- a ModelDeployment with a `status.url` becomes an in-cluster `hosted_vllm/<servedName>` backend;
  it is `ready` while it has a ready replica (`Ready` condition true or `readyReplicas` > 0), and
  otherwise stays in the catalog with `ready=False` so confidential requests can wait for it
  (scale from zero) while others spill. Its price starts at `cost.gpuHourUSD` over
  `ASSUMED_TOKENS_PER_SECOND`; the live overlay replaces that with the measured throughput.
- an ExternalModel becomes an external `<provider>/<model>` backend with the key from its Secret;
  without the Secret or key it is left out (nothing could call it).
- every RoutingPolicy contributes tenants (keys from their Secrets; a tenant whose key is missing
  is left out, `overBudget` says whether a spent budget rejects or keeps it in the cluster);
  privacy, latency and cost settings come from the first valid policy by name.

Resources that cannot be used are reported in `problems` and skipped; the rest still routes.
Secret values are never logged or reported.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import dataclasses
import json
import logging
import os
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
from modelplane.router.adapters.metrics_scraper import ScrapeTarget, metrics_url_for
from modelplane.router.catalog import Catalog, CatalogBackend, catalog_from_config
from modelplane.router.config import (
    BackendConfig,
    ConfigError,
    OverBudget,
    PolicyConfig,
    RouterConfig,
    TenantConfig,
)
from modelplane.router.policy.types import Capability, CostPreference, DataClass, Location, PiiType

from modelplane.api import (
    CustomResource,
    ExternalModel,
    InvalidSpecError,
    ModelDeployment,
    RoutingPolicy,
    SecretKeyRef,
)

logger = logging.getLogger(__name__)

# Throughput assumed for a self-hosted backend's price until the scraper has measured one.
ASSUMED_TOKENS_PER_SECOND = 1000.0

API_GROUP_PATH = "/apis/modelplane.dev/v1alpha1"
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True, slots=True)
class ClusterResources:
    """Raw resource bodies by `namespace/name` (or by name, within one namespace)."""

    model_deployments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    external_models: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    routing_policies: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    secrets: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterCatalog:
    """A catalog built from cluster resources, with what to scrape and what was skipped."""

    catalog: Catalog
    scrape_targets: tuple[ScrapeTarget, ...]
    problems: tuple[str, ...]


def secret_value(secret: Mapping[str, Any] | None, key: str) -> str | None:
    """A Secret's value for `key` (`data` is base64; `stringData` as written), or None."""
    if secret is None:
        return None
    string_data = secret.get("stringData") or {}
    if isinstance(string_data.get(key), str):
        return str(string_data[key])
    encoded = (secret.get("data") or {}).get(key)
    if not isinstance(encoded, str):
        return None
    try:
        return base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


_Resource = TypeVar("_Resource", bound=CustomResource)


def _is_ready(deployment: ModelDeployment) -> bool:
    status = deployment.status
    if status is None:
        return False
    for condition in status.conditions:
        if condition.type == "Ready":
            return condition.status == "True"
    return (status.ready_replicas or 0) > 0


def catalog_from_resources(
    resources: ClusterResources,
    price_map: Mapping[str, Mapping[str, Any]] | None = None,
    revision: str = "kubernetes",
) -> ClusterCatalog:
    """The catalog these resources describe (pure; see the module docstring)."""
    problems: list[str] = []
    backends: list[BackendConfig] = []
    not_ready: set[str] = set()
    targets: list[ScrapeTarget] = []

    def secret(namespace: str | None, reference: SecretKeyRef) -> str | None:
        """A Secret in the referencing object's namespace (keys are `namespace/name` or `name`)."""
        body = resources.secrets.get(f"{namespace}/{reference.name}") or resources.secrets.get(
            reference.name
        )
        return secret_value(body, reference.key)

    def parse(resource: type[_Resource], key: str, body: Mapping[str, Any]) -> _Resource | None:
        try:
            return resource.from_body(body)
        except InvalidSpecError as error:
            problems.append(f"{resource.resource_kind} {key}: {error.message}")
            return None

    names: set[str] = set()

    def unique(kind: str, key: str, name: str) -> bool:
        if name in names:
            problems.append(f"{kind} {key}: another backend is already named {name!r}; skipped")
            return False
        names.add(name)
        return True

    for key, body in sorted(resources.model_deployments.items()):
        deployment = parse(ModelDeployment, key, body)
        if deployment is None:
            continue
        name = deployment.name
        url = deployment.status.url if deployment.status else None
        if not url or not unique("ModelDeployment", key, name):
            continue  # without a URL, the operator has not given it a Service yet
        cost = deployment.spec.cost
        try:
            backends.append(
                BackendConfig(
                    name=name,
                    model=f"hosted_vllm/{deployment.served_name}",
                    api_base=url,
                    location=Location.IN_CLUSTER,
                    context_window=deployment.spec.model.context_window,
                    capabilities=frozenset(map(Capability, deployment.spec.model.capabilities)),
                    gpu_hour_usd=cost.gpu_hour_usd if cost else None,
                    tokens_per_second=ASSUMED_TOKENS_PER_SECOND if cost else None,
                )
            )
        except ValueError as error:
            problems.append(f"ModelDeployment {key}: {error}")
            continue
        if not _is_ready(deployment):
            not_ready.add(name)
        targets.append(
            ScrapeTarget(
                backend=name,
                metrics_url=metrics_url_for(url, deployment.spec.engine.name),
                gpu_hour_usd=cost.gpu_hour_usd if cost else None,
            )
        )

    for key, body in sorted(resources.external_models.items()):
        external = parse(ExternalModel, key, body)
        if external is None:
            continue
        spec = external.spec
        api_key = secret(external.metadata.namespace, spec.api_key_secret_ref)
        if not api_key:
            problems.append(
                f"ExternalModel {key}: Secret {spec.api_key_secret_ref.name!r} has no key "
                f"{spec.api_key_secret_ref.key!r}; not routing to it"
            )
            continue
        name = external.name
        if not unique("ExternalModel", key, name):
            continue
        try:
            backends.append(
                BackendConfig(
                    name=name,
                    model=f"{spec.provider}/{spec.model}",
                    api_base=spec.api_base,
                    api_key=api_key,
                    location=Location.EXTERNAL,
                    context_window=spec.context_window,
                    capabilities=frozenset(map(Capability, spec.capabilities)),
                    input_usd_per_mtok=spec.input_usd_per_mtok,
                    output_usd_per_mtok=spec.output_usd_per_mtok,
                )
            )
        except ValueError as error:
            problems.append(f"ExternalModel {key}: {error}")

    tenants: list[TenantConfig] = []
    tenant_names: set[str] = set()
    policy: PolicyConfig | None = None
    for key, body in sorted(resources.routing_policies.items()):
        routing = parse(RoutingPolicy, key, body)
        if routing is None:
            continue  # an invalid policy sorting first must not void the next one's settings
        policy_spec = routing.spec
        if policy is None:
            policy = PolicyConfig(
                confidential_pii_types=frozenset(map(PiiType, policy_spec.privacy.pii_types)),
                latency_target_ms=policy_spec.latency.target_ttft_ms,
                cost_preference=CostPreference(policy_spec.cost.preference),
            )
        elif {"privacy", "latency", "cost"} & policy_spec.model_fields_set:
            problems.append(
                f"RoutingPolicy {key}: only its tenants are used; privacy, latency and cost "
                "settings come from the first valid RoutingPolicy by name"
            )
        for tenant in policy_spec.tenants:
            if tenant.name in tenant_names:
                # Limits and spend are counted per tenant name: a second tenant of that name
                # would spend the first one's budget.
                problems.append(
                    f"RoutingPolicy {key}: another RoutingPolicy already defines tenant "
                    f"{tenant.name!r}; skipped"
                )
                continue
            tenant_key = secret(routing.metadata.namespace, tenant.api_key_secret_ref)
            if not tenant_key:
                problems.append(
                    f"RoutingPolicy {key}: tenant {tenant.name!r} has no API key in Secret "
                    f"{tenant.api_key_secret_ref.name!r}; it cannot authenticate"
                )
                continue
            tenant_names.add(tenant.name)
            tenants.append(
                TenantConfig(
                    name=tenant.name,
                    api_keys=[tenant_key],
                    default_data_class=DataClass(tenant.default_data_class),
                    allowed_backends=tenant.allowed_backends,
                    requests_per_minute=tenant.rpm,
                    tokens_per_minute=tenant.tpm,
                    daily_budget_usd=tenant.daily_budget_usd,
                    monthly_budget_usd=tenant.monthly_budget_usd,
                    over_budget=OverBudget(tenant.over_budget),
                )
            )

    # Built without RouterConfig's whole-file checks: a cluster may have no backend or tenant yet,
    # and a tenant may name a backend that does not exist yet.
    config = RouterConfig.model_construct(
        backends=backends, tenants=tenants, policy=policy or PolicyConfig()
    )
    catalog = catalog_from_config(config, price_map)
    catalog = Catalog(
        backends={
            name: backend if name not in not_ready else _not_ready(backend)
            for name, backend in catalog.backends.items()
        },
        tenants_by_key_hash=catalog.tenants_by_key_hash,
        settings=catalog.settings,
        revision=revision,
    )
    return ClusterCatalog(catalog=catalog, scrape_targets=tuple(targets), problems=tuple(problems))


def _not_ready(backend: CatalogBackend) -> CatalogBackend:
    return dataclasses.replace(backend, snapshot=dataclasses.replace(backend.snapshot, ready=False))


# --- talking to the API server ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KubeConnection:
    """Where the API server is and how to authenticate (in-cluster or from a kubeconfig)."""

    server: str
    token: str | None = field(default=None, repr=False)
    ssl_context: ssl.SSLContext | bool = True
    namespace: str = "default"

    @classmethod
    def from_environment(cls) -> KubeConnection:
        """The pod's service account when running in a cluster, else the current kubeconfig."""
        host, port = (
            os.environ.get("KUBERNETES_SERVICE_HOST"),
            os.environ.get("KUBERNETES_SERVICE_PORT"),
        )
        token_file = SERVICE_ACCOUNT_DIR / "token"
        if host and port and token_file.exists():
            context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT_DIR / "ca.crt"))
            return cls(
                server=f"https://{host}:{port}",
                token=token_file.read_text().strip(),
                ssl_context=context,
                namespace=(SERVICE_ACCOUNT_DIR / "namespace").read_text().strip(),
            )
        return cls._from_kubeconfig()

    @classmethod
    def _from_kubeconfig(cls) -> KubeConnection:
        from kubernetes import client, config

        configuration = client.Configuration()
        try:
            config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            _, active = config.list_kube_config_contexts()  # type: ignore[no-untyped-call]
        except config.ConfigException as error:
            raise ConfigError(
                "--kubernetes needs a cluster: run inside one (service account) or point "
                f"KUBECONFIG at a kubeconfig ({error})"
            ) from None
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        authorization = (configuration.api_key or {}).get("authorization")
        token = authorization.removeprefix("Bearer ").strip() if authorization else None
        context: ssl.SSLContext | bool = True
        if str(configuration.host).startswith("https"):
            if not configuration.verify_ssl:
                context = False
            else:
                context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
                if configuration.cert_file:
                    context.load_cert_chain(configuration.cert_file, configuration.key_file)
        return cls(
            server=str(configuration.host).rstrip("/"),
            token=token,
            ssl_context=context,
            namespace=namespace,
        )


class WatchExpiredError(Exception):
    """The watch's resourceVersion is too old (410 Gone): list again."""


_KINDS: tuple[tuple[str, str, str], ...] = (
    ("model_deployments", API_GROUP_PATH, "modeldeployments"),
    ("external_models", API_GROUP_PATH, "externalmodels"),
    ("routing_policies", API_GROUP_PATH, "routingpolicies"),
    ("secrets", "/api/v1", "secrets"),
)


def _collection_path(group_path: str, plural: str, namespace: str | None) -> str:
    if namespace is None:
        return f"{group_path}/{plural}"
    return f"{group_path}/namespaces/{namespace}/{plural}"


def _object_key(body: Mapping[str, Any]) -> str | None:
    metadata = body.get("metadata") or {}
    name = metadata.get("name")
    return f"{metadata.get('namespace')}/{name}" if name else None


class KubernetesCatalogWatcher:
    """Keeps a catalog built from one namespace's resources current; see the module docstring."""

    def __init__(
        self,
        connection: KubeConnection,
        on_catalog: Callable[[ClusterCatalog], None],
        namespace: str | None = None,
        price_map: Mapping[str, Mapping[str, Any]] | None = None,
        all_namespaces: bool = False,
        watch_timeout_s: int = 300,
        retry_delay_s: float = 1.0,
    ) -> None:
        self._connection = connection
        # None: every namespace (Secrets are still only read from each object's own namespace).
        self._namespace = None if all_namespaces else namespace or connection.namespace
        self._on_catalog = on_catalog
        self._price_map = price_map
        self._watch_timeout_s = watch_timeout_s
        self._retry_delay_s = retry_delay_s
        self._objects: dict[str, dict[str, Mapping[str, Any]]] = {kind: {} for kind, _, _ in _KINDS}
        self._listed: set[str] = set()
        self._synced = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None
        self._revision = 0
        self._reported_problems: tuple[str, ...] = ()

    @property
    def namespace(self) -> str | None:
        return self._namespace

    async def start(self) -> None:
        headers = {"Accept": "application/json"}
        if self._connection.token:
            headers["Authorization"] = f"Bearer {self._connection.token}"
        self._session = aiohttp.ClientSession(
            headers=headers,
            connector=aiohttp.TCPConnector(ssl=self._connection.ssl_context),
            timeout=aiohttp.ClientTimeout(total=None, connect=10, sock_read=None),
        )
        self._tasks = [
            asyncio.create_task(
                self._follow(kind, _collection_path(group, plural, self._namespace))
            )
            for kind, group, plural in _KINDS
        ]

    async def wait_synced(self, timeout_s: float) -> bool:
        """True once every kind has been listed (and a first catalog published)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._synced.wait()
        return self._synced.is_set()

    async def aclose(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _follow(self, kind: str, path: str) -> None:
        """List, then watch from the list's version; on any failure or expiry, start over."""
        while True:
            try:
                version = await self._list(kind, path)
                async for event_type, body in self._watch(path, version):
                    self._apply(kind, event_type, body)
            except asyncio.CancelledError:
                raise
            except WatchExpiredError:
                continue
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
                logger.warning("watching %s in %s failed, retrying: %s", kind, path, error)
            await asyncio.sleep(self._retry_delay_s)

    async def _list(self, kind: str, path: str) -> str | None:
        assert self._session is not None
        async with self._session.get(self._connection.server + path) as response:
            if response.status == 404:
                items: list[Mapping[str, Any]] = []  # no object of this kind exists yet
                version = None
            else:
                response.raise_for_status()
                document = await response.json(content_type=None)
                items = document.get("items") or []
                version = (document.get("metadata") or {}).get("resourceVersion")
        self._objects[kind] = {
            key: item for item in items if (key := _object_key(item)) is not None
        }
        self._listed.add(kind)
        self._rebuild()
        return version

    async def _watch(
        self, path: str, version: str | None
    ) -> AsyncIterator[tuple[str, Mapping[str, Any]]]:
        assert self._session is not None
        params = {"watch": "true", "timeoutSeconds": str(self._watch_timeout_s)}
        if version and version.isdigit():
            params["resourceVersion"] = version
            params["allowWatchBookmarks"] = "true"
        async with self._session.get(self._connection.server + path, params=params) as response:
            response.raise_for_status()
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    event_type = event.get("type")
                    body = event.get("object") or {}
                    if event_type == "ERROR":
                        if body.get("code") == 410:
                            raise WatchExpiredError
                        raise ValueError(f"watch error: {body.get('message')}")
                    if event_type in ("ADDED", "MODIFIED", "DELETED"):
                        yield event_type, body

    def _apply(self, kind: str, event_type: str, body: Mapping[str, Any]) -> None:
        key = _object_key(body)
        if key is None:
            return
        objects = self._objects[kind]
        if event_type == "DELETED":
            if objects.pop(key, None) is None:
                return
        else:
            objects[key] = body
        self._rebuild()

    def _rebuild(self) -> None:
        if len(self._listed) < len(_KINDS):
            return  # publishing before every kind is known would drop tenants or backends
        self._revision += 1
        resources = ClusterResources(
            model_deployments=self._objects["model_deployments"],
            external_models=self._objects["external_models"],
            routing_policies=self._objects["routing_policies"],
            secrets=self._objects["secrets"],
        )
        try:
            built = catalog_from_resources(
                resources, self._price_map, revision=f"kubernetes/{self._revision}"
            )
        except ConfigError as error:
            logger.error(
                "cluster resources do not form a usable catalog, keeping the last: %s", error
            )
            return
        if built.problems != self._reported_problems:
            for problem in built.problems:
                logger.warning("%s", problem)
            self._reported_problems = built.problems
        self._on_catalog(built)
        self._synced.set()


__all__ = [
    "ASSUMED_TOKENS_PER_SECOND",
    "ClusterCatalog",
    "ClusterResources",
    "KubeConnection",
    "KubernetesCatalogWatcher",
    "catalog_from_resources",
    "secret_value",
]
