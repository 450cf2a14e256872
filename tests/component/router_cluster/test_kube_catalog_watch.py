"""The router's catalog follows ModelDeployment, ExternalModel, RoutingPolicy and Secret changes
served by the Kubernetes emulator, one watch event at a time."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from modelplane.router.adapters.kube_catalog import (
    ClusterCatalog,
    KubeConnection,
    KubernetesCatalogWatcher,
)
from modelplane.router.catalog import Catalog

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient
from modelplane.testing.operator import model_deployment_status, routing_policy, secret

from .conftest import gpt4o_model, llama_deployment

NAMESPACE = "ml"


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=5.0) as running:
        yield running


@pytest.fixture
def kube(cluster: EmulatedCluster) -> Iterator[KubeHttpClient]:
    client = cluster.client()
    yield client
    for kind in ("ModelDeployment", "ExternalModel", "RoutingPolicy", "Secret"):
        for obj in client.list(kind, NAMESPACE):
            client.delete(kind, NAMESPACE, obj["metadata"]["name"])


class Published:
    def __init__(self) -> None:
        self.latest: ClusterCatalog | None = None
        self.count = 0

    def __call__(self, built: ClusterCatalog) -> None:
        self.latest, self.count = built, self.count + 1

    @property
    def catalog(self) -> Catalog:
        assert self.latest is not None
        return self.latest.catalog

    async def until(self, condition: Callable[[Catalog], bool], what: str) -> Catalog:
        for _ in range(200):
            if self.latest is not None and condition(self.latest.catalog):
                return self.latest.catalog
            await asyncio.sleep(0.025)
        raise AssertionError(f"the catalog never showed {what}")


@pytest.fixture
async def published(cluster: EmulatedCluster, kube: KubeHttpClient) -> AsyncIterator[Published]:
    sink = Published()
    watcher = KubernetesCatalogWatcher(
        KubeConnection(server=cluster.url, namespace=NAMESPACE), sink, retry_delay_s=0.1
    )
    await watcher.start()
    try:
        assert await watcher.wait_synced(10.0)
        yield sink
    finally:
        await watcher.aclose()


def model_deployment() -> dict[str, Any]:
    return llama_deployment(NAMESPACE, gpu_hour_usd=2.5)


def ready_status(ready: bool) -> dict[str, Any]:
    return model_deployment_status("http://llama.ml.svc.cluster.local:8000/v1", ready)


EXTERNAL = gpt4o_model(NAMESPACE, "http://127.0.0.1:9/v1")

POLICY = routing_policy(
    "default",
    NAMESPACE,
    [
        {
            "name": "team-a",
            "apiKeySecretRef": {"name": "team-a", "key": "key"},
            "defaultDataClass": "internal",
            "rpm": 100,
        }
    ],
    {"latency": {"targetTTFTMs": 500}},
)


def create_everything(kube: KubeHttpClient) -> None:
    kube.create(secret("openai", NAMESPACE, {"api-key": "sk-cluster"}), NAMESPACE)
    kube.create(secret("team-a", NAMESPACE, {"key": "team-a-key"}), NAMESPACE)
    kube.create(EXTERNAL, NAMESPACE)
    kube.create(POLICY, NAMESPACE)
    kube.create(model_deployment(), NAMESPACE)
    kube.patch("ModelDeployment", NAMESPACE, "llama", ready_status(True), subresource="status")


async def test_resources_become_backends_and_tenants(
    kube: KubeHttpClient, published: Published
) -> None:
    create_everything(kube)

    catalog = await published.until(
        lambda c: {"llama", "gpt-4o"} <= set(c.backends) and bool(c.tenants_by_key_hash),
        "both backends and the tenant",
    )

    assert catalog.backends["llama"].snapshot.ready
    assert (
        catalog.backends["llama"].upstream.api_base == "http://llama.ml.svc.cluster.local:8000/v1"
    )
    assert catalog.backends["gpt-4o"].upstream.api_key == "sk-cluster"
    assert catalog.authenticate("team-a-key") is not None
    assert catalog.settings.latency_target_ms == 500
    assert published.latest is not None
    assert published.latest.scrape_targets[0].backend == "llama"


async def test_deployment_turning_not_ready_stops_being_ready_in_the_catalog(
    kube: KubeHttpClient, published: Published
) -> None:
    create_everything(kube)
    await published.until(
        lambda c: "llama" in c.backends and c.backends["llama"].snapshot.ready, "llama ready"
    )

    kube.patch("ModelDeployment", NAMESPACE, "llama", ready_status(False), subresource="status")
    await published.until(lambda c: not c.backends["llama"].snapshot.ready, "llama not ready")

    kube.patch("ModelDeployment", NAMESPACE, "llama", ready_status(True), subresource="status")
    await published.until(lambda c: c.backends["llama"].snapshot.ready, "llama ready again")


async def test_deleted_external_model_disappears(
    kube: KubeHttpClient, published: Published
) -> None:
    create_everything(kube)
    await published.until(lambda c: "gpt-4o" in c.backends, "gpt-4o")

    kube.delete("ExternalModel", NAMESPACE, "gpt-4o")

    await published.until(lambda c: "gpt-4o" not in c.backends, "gpt-4o removed")


async def test_rotated_tenant_key_replaces_the_old_one(
    kube: KubeHttpClient, published: Published
) -> None:
    create_everything(kube)
    await published.until(lambda c: c.authenticate("team-a-key") is not None, "the first key")

    kube.patch(
        "Secret",
        NAMESPACE,
        "team-a",
        {"data": {"key": base64.b64encode(b"rotated-key").decode()}},
    )

    catalog = await published.until(
        lambda c: c.authenticate("rotated-key") is not None, "the new key"
    )
    assert catalog.authenticate("team-a-key") is None


async def test_secret_created_after_its_external_model_enables_it(
    kube: KubeHttpClient, published: Published
) -> None:
    kube.create(EXTERNAL, NAMESPACE)
    await asyncio.sleep(0.1)
    assert "gpt-4o" not in published.catalog.backends

    kube.create(secret("openai", NAMESPACE, {"api-key": "sk-late"}), NAMESPACE)

    catalog = await published.until(lambda c: "gpt-4o" in c.backends, "gpt-4o with its key")
    assert catalog.backends["gpt-4o"].upstream.api_key == "sk-late"


async def test_all_namespaces_watch_sees_every_namespace(
    cluster: EmulatedCluster, kube: KubeHttpClient
) -> None:
    create_everything(kube)
    other = {**EXTERNAL, "metadata": {"name": "gpt-4o-mini", "namespace": "team-b"}}
    kube.create(secret("openai", "team-b", {"api-key": "sk-team-b"}), "team-b")
    kube.create(other, "team-b")
    sink = Published()
    watcher = KubernetesCatalogWatcher(
        KubeConnection(server=cluster.url), sink, all_namespaces=True, retry_delay_s=0.1
    )
    await watcher.start()
    try:
        assert await watcher.wait_synced(10.0)
        catalog = await sink.until(
            lambda c: {"llama", "gpt-4o", "gpt-4o-mini"} <= set(c.backends), "both namespaces"
        )
    finally:
        await watcher.aclose()
        kube.delete("ExternalModel", "team-b", "gpt-4o-mini")
        kube.delete("Secret", "team-b", "openai")

    assert catalog.backends["gpt-4o-mini"].upstream.api_key == "sk-team-b"
    assert catalog.backends["gpt-4o"].upstream.api_key == "sk-cluster"
