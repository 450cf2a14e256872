"""`modelplane router serve --kubernetes` against the Kubernetes emulator: the router process
learns backends and tenants from the resources and follows their changes without a restart."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient
from modelplane.testing.operator import model_deployment_status, routing_policy, secret
from modelplane.testing.router_process import RouterProcess, ThreadedUpstreams
from modelplane.testing.upstream import LoopbackUpstream

from .conftest import gpt4o_model, llama_deployment

NAMESPACE = "ml"
KEY = "cluster-tenant-key"


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=5.0) as running:
        yield running


def create_resources(kube: KubeHttpClient, llama_base: str, gpt_base: str) -> None:
    kube.create(secret("openai", NAMESPACE, {"api-key": "sk-from-secret"}), NAMESPACE)
    kube.create(secret("tenant", NAMESPACE, {"key": KEY}), NAMESPACE)
    kube.create(gpt4o_model(NAMESPACE, gpt_base), NAMESPACE)
    tenant = {
        "name": "team",
        "apiKeySecretRef": {"name": "tenant", "key": "key"},
        "defaultDataClass": "public",
    }
    kube.create(routing_policy("default", NAMESPACE, [tenant]), NAMESPACE)
    kube.create(llama_deployment(NAMESPACE, gpu_hour_usd=1.0), NAMESPACE)
    kube.patch(
        "ModelDeployment",
        NAMESPACE,
        "llama",
        model_deployment_status(llama_base, True),
        subresource="status",
    )


ClusterUpstreams = tuple[KubeHttpClient, LoopbackUpstream, LoopbackUpstream]


@pytest.fixture
def in_cluster(cluster: EmulatedCluster, upstream_host: ThreadedUpstreams) -> ClusterUpstreams:
    """The llama and gpt-4o upstreams, and the resources in NAMESPACE that point at them."""
    llama, gpt = upstream_host.start("llama-3-8b"), upstream_host.start("gpt-4o")
    kube = cluster.client()
    create_resources(kube, llama.base_url, gpt.base_url)
    return kube, llama, gpt


@pytest.fixture
def start_cluster_router(
    cluster: EmulatedCluster, start_router: Callable[..., RouterProcess], tmp_path: Path
) -> Callable[[str], RouterProcess]:
    """`start_cluster_router(scrape_interval)`: a router that follows NAMESPACE's resources."""
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)

    def start(scrape_interval: str) -> RouterProcess:
        return start_router(
            "--kubernetes", "--namespace", NAMESPACE, "--scrape-interval", scrape_interval,
            env={"KUBECONFIG": str(kubeconfig)},
        )  # fmt: skip

    return start


def served_by(router: RouterProcess, **options: Any) -> str:
    response = router.chat(KEY, **options)
    assert response.status_code == 200, response.text
    return response.headers["x-modelplane-backend"]


def test_router_follows_the_cluster_resources(
    in_cluster: ClusterUpstreams,
    start_cluster_router: Callable[[str], RouterProcess],
    eventually: Callable[..., Any],
) -> None:
    kube, llama, gpt = in_cluster
    router = start_cluster_router("0.2")

    assert served_by(router) == "llama"
    assert gpt.received == []

    kube.patch(
        "ModelDeployment",
        NAMESPACE,
        "llama",
        model_deployment_status(llama.base_url, False),
        subresource="status",
    )
    eventually(lambda: served_by(router) == "gpt-4o", "traffic leaving the not-ready deployment")
    assert gpt.received[-1].headers.get("authorization") == "Bearer sk-from-secret"

    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(router.chat(KEY, data_class="confidential"))
    )
    waiting.start()
    kube.patch(
        "ModelDeployment",
        NAMESPACE,
        "llama",
        model_deployment_status(llama.base_url, True),
        subresource="status",
    )
    waiting.join(timeout=60)
    (answer,) = answers
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-modelplane-backend"] == "llama"

    kube.delete("ExternalModel", NAMESPACE, "gpt-4o")

    def models() -> set[str]:
        listing = httpx.get(
            f"{router.url}/v1/models", headers={"Authorization": f"Bearer {KEY}"}, timeout=10
        ).json()
        return {entry["id"] for entry in listing["data"]}

    eventually(lambda: "gpt-4o" not in models(), "gpt-4o leaving the catalog")
    assert models() == {"auto", "llama"}


def test_cluster_tenant_over_budget_is_rejected_or_kept_in_cluster_as_its_policy_says(
    in_cluster: ClusterUpstreams,
    start_cluster_router: Callable[[str], RouterProcess],
    eventually: Callable[..., Any],
) -> None:
    kube = in_cluster[0]
    # Priced so that gpt-4o is the cheapest choice while a tenant has budget left.
    kube.patch("ModelDeployment", NAMESPACE, "llama", {"spec": {"cost": {"gpuHourUSD": 1000}}})
    kube.create(secret("strict", NAMESPACE, {"key": "strict-key"}), NAMESPACE)
    kube.create(secret("lenient", NAMESPACE, {"key": "lenient-key"}), NAMESPACE)
    one_request_usd = 0.00001  # less than one gpt-4o answer costs
    tenants = [
        {
            "name": name,
            "apiKeySecretRef": {"name": name, "key": "key"},
            "defaultDataClass": "public",
            "dailyBudgetUSD": one_request_usd,
            **extra,
        }
        for name, extra in (("strict", {}), ("lenient", {"overBudget": "in-cluster-only"}))
    ]
    kube.patch("RoutingPolicy", NAMESPACE, "default", {"spec": {"tenants": tenants}})
    router = start_cluster_router("0")

    def backend(answer: httpx.Response) -> str | None:
        return answer.headers.get("x-modelplane-backend")

    for key in ("strict-key", "lenient-key"):
        first = router.chat(key)
        assert first.status_code == 200, first.text
        assert backend(first) == "gpt-4o"

    rejected = eventually(
        lambda: (answer := router.chat("strict-key")).status_code == 429 and answer,
        "the strict tenant rejected once over budget",
    )
    assert rejected.json()["error"]["code"] == "budget_exceeded"
    kept = eventually(
        lambda: backend(answer := router.chat("lenient-key")) == "llama" and answer,
        "the lenient tenant moved to the in-cluster backend once over budget",
    )
    assert kept.status_code == 200, kept.text
    assert router.chat("lenient-key").headers["x-modelplane-backend"] == "llama"
