"""`modelplane router serve --kubernetes` against the Kubernetes emulator: the router process
learns backends and tenants from the resources and follows their changes without a restart."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient
from modelplane.testing.router_process import RouterProcess, ThreadedUpstreams

NAMESPACE = "ml"
KEY = "cluster-tenant-key"


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=5.0) as running:
        yield running


def secret(name: str, key: str, value: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


def status(url: str, ready: bool) -> dict[str, Any]:
    return {
        "status": {
            "phase": "Ready" if ready else "Progressing",
            "url": url,
            "replicas": 1,
            "readyReplicas": 1 if ready else 0,
            "conditions": [{"type": "Ready", "status": str(ready), "reason": "Test"}],
        }
    }


def create_resources(kube: KubeHttpClient, llama_base: str, gpt_base: str) -> None:
    kube.create(secret("openai", "api-key", "sk-from-secret"), NAMESPACE)
    kube.create(secret("tenant", "key", KEY), NAMESPACE)
    kube.create(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ExternalModel",
            "metadata": {"name": "gpt-4o", "namespace": NAMESPACE},
            "spec": {
                "provider": "openai",
                "model": "gpt-4o",
                "apiBase": gpt_base,
                "apiKeySecretRef": {"name": "openai", "key": "api-key"},
                "contextWindow": 128000,
                "capabilities": ["chat", "tools", "json", "images"],
                "inputUSDPerMTok": 2.5,
                "outputUSDPerMTok": 10,
            },
        },
        NAMESPACE,
    )
    kube.create(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "RoutingPolicy",
            "metadata": {"name": "default", "namespace": NAMESPACE},
            "spec": {
                "tenants": [
                    {
                        "name": "team",
                        "apiKeySecretRef": {"name": "tenant", "key": "key"},
                        "defaultDataClass": "public",
                    }
                ]
            },
        },
        NAMESPACE,
    )
    kube.create(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "llama", "namespace": NAMESPACE},
            "spec": {
                "model": {
                    "uri": "hf://meta-llama/Meta-Llama-3-8B-Instruct",
                    "servedName": "llama-3-8b",
                    "contextWindow": 8192,
                    "capabilities": ["chat", "json"],
                },
                "engine": {"name": "vllm"},
                "resources": {"gpus": 1},
                "cost": {"gpuHourUSD": 1.0},
            },
        },
        NAMESPACE,
    )
    kube.patch(
        "ModelDeployment", NAMESPACE, "llama", status(llama_base, True), subresource="status"
    )


def served_by(router: RouterProcess, **options: Any) -> str:
    response = router.chat(KEY, **options)
    assert response.status_code == 200, response.text
    return response.headers["x-modelplane-backend"]


def test_router_follows_the_cluster_resources(
    cluster: EmulatedCluster,
    upstream_host: ThreadedUpstreams,
    start_router: Callable[..., RouterProcess],
    eventually: Callable[..., Any],
    tmp_path: Path,
) -> None:
    llama, gpt = upstream_host.start("llama-3-8b"), upstream_host.start("gpt-4o")
    kube = cluster.client()
    create_resources(kube, llama.base_url, gpt.base_url)
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    router = start_router(
        "--kubernetes", "--namespace", NAMESPACE, "--scrape-interval", "0.2",
        env={"KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip

    assert served_by(router) == "llama"
    assert gpt.received == []

    kube.patch(
        "ModelDeployment", NAMESPACE, "llama", status(llama.base_url, False), subresource="status"
    )
    eventually(lambda: served_by(router) == "gpt-4o", "traffic leaving the not-ready deployment")
    assert gpt.received[-1].headers.get("authorization") == "Bearer sk-from-secret"

    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(router.chat(KEY, data_class="confidential"))
    )
    waiting.start()
    kube.patch(
        "ModelDeployment", NAMESPACE, "llama", status(llama.base_url, True), subresource="status"
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
    cluster: EmulatedCluster,
    upstream_host: ThreadedUpstreams,
    start_router: Callable[..., RouterProcess],
    eventually: Callable[..., Any],
    tmp_path: Path,
) -> None:
    llama, gpt = upstream_host.start("llama-3-8b"), upstream_host.start("gpt-4o")
    kube = cluster.client()
    create_resources(kube, llama.base_url, gpt.base_url)
    # Priced so that gpt-4o is the cheapest choice while a tenant has budget left.
    kube.patch("ModelDeployment", NAMESPACE, "llama", {"spec": {"cost": {"gpuHourUSD": 1000}}})
    kube.create(secret("strict", "key", "strict-key"), NAMESPACE)
    kube.create(secret("lenient", "key", "lenient-key"), NAMESPACE)
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
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
    router = start_router(
        "--kubernetes", "--namespace", NAMESPACE, "--scrape-interval", "0",
        env={"KUBECONFIG": str(kubeconfig)},
    )  # fmt: skip

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
