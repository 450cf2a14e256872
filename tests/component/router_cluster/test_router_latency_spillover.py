"""The router process spills to GPT-4o while the self-hosted queue is long and comes back when
it drains; confidential traffic never leaves, also while the self-hosted model has no replica."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.router_process import RouterProcess, ThreadedUpstreams
from modelplane.testing.upstream import LoopbackUpstream

KEY = "team-key"
CONFIDENTIAL_TEXT = "Summarise the contract for jane.doe@example.com."


def config(llama_base: str, gpt_base: str) -> str:
    return router_config_text(
        backends=[
            in_cluster_llama(
                llama_base,
                capabilities=["chat", "json"],
                gpu_hour_usd=1.2,
                tokens_per_second=2500,
                timeout_s=4,
            ),
            external_gpt4o(
                gpt_base,
                api_key="sk-test",
                capabilities=["chat", "tools", "json", "images"],
                input_usd_per_mtok=2.5,
                output_usd_per_mtok=10,
            ),
        ],
        tenants=[{"name": "team", "api_keys": [KEY], "default_data_class": "public"}],
        policy={"latency_target_ms": 1000},
    )


Routed = tuple[LoopbackUpstream, LoopbackUpstream, RouterProcess]


@pytest.fixture
def routed(upstream_host: ThreadedUpstreams, start_router: Callable[..., RouterProcess]) -> Routed:
    """The llama and gpt-4o upstreams and a router scraping llama's queue every 0.1 s."""
    llama, gpt = upstream_host.start("llama-3-8b"), upstream_host.start("gpt-4o")
    router = start_router("--scrape-interval", "0.1", config=config(llama.base_url, gpt.base_url))
    return llama, gpt, router


def served_by(router: RouterProcess, **options: Any) -> str:
    response = router.chat(KEY, **options)
    assert response.status_code == 200, response.text
    return response.headers["x-modelplane-backend"]


def llama_reasons(router: RouterProcess) -> list[str]:
    explained = httpx.post(
        f"{router.url}/v1/route/explain",
        json={"model": "auto", "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=10,
    ).json()
    verdict = next(c for c in explained["candidates"] if c["backend"] == "llama-3-8b")
    return list(verdict["reasons"])


def confidential_bodies(received: list[Any]) -> list[Any]:
    return [r for r in received if CONFIDENTIAL_TEXT in str(r.body)]


def test_spills_on_queue_depth_and_returns_and_confidential_stays(
    routed: Routed, eventually: Callable[..., Any]
) -> None:
    llama, gpt, router = routed
    assert served_by(router) == "llama-3-8b"

    llama.metrics.waiting = 500  # far more than drains within the 1 s target
    eventually(lambda: served_by(router) == "gpt-4o", "public traffic spilling to gpt-4o")
    decision = router.chat(KEY).headers["x-modelplane-decision"]
    assert served_by(router, data_class="confidential") == "llama-3-8b"
    assert served_by(router, content=CONFIDENTIAL_TEXT) == "llama-3-8b"

    llama.metrics.waiting = 0
    eventually(lambda: served_by(router) == "llama-3-8b", "traffic back on llama")

    assert confidential_bodies(gpt.received) == []
    assert "latency:meets-target" in decision
    metrics = router.metrics()
    assert 'modelplane_spillover_total{modelplane_backend="gpt-4o"' in metrics
    assert 'modelplane_spill_reason="latency"' in metrics


def test_scaled_to_zero_spills_public_and_holds_confidential_until_ready(
    routed: Routed, upstream_host: ThreadedUpstreams, eventually: Callable[..., Any]
) -> None:
    llama, gpt, router = routed
    port = llama.port
    upstream_host.stop(llama)  # the deployment scales to zero: nothing answers

    eventually(lambda: served_by(router) == "gpt-4o", "public traffic spilling while at zero")
    eventually(lambda: "health:no-ready-replica" in llama_reasons(router), "llama not ready")

    answers: list[httpx.Response] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            router.chat(KEY, data_class="confidential", content=CONFIDENTIAL_TEXT)
        )
    )
    waiting.start()
    restarted = upstream_host.start("llama-3-8b", port=port)  # a replica becomes ready
    waiting.join(timeout=30)

    (answer,) = answers
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-modelplane-backend"] == "llama-3-8b"
    assert len(confidential_bodies(restarted.received)) == 1
    assert confidential_bodies(gpt.received) == []


def test_confidential_request_gets_503_when_no_replica_becomes_ready(
    routed: Routed, upstream_host: ThreadedUpstreams, eventually: Callable[..., Any]
) -> None:
    llama, gpt, router = routed
    upstream_host.stop(llama)
    eventually(lambda: "health:no-ready-replica" in llama_reasons(router), "llama not ready")

    answer = router.chat(KEY, data_class="confidential", content=CONFIDENTIAL_TEXT)

    assert answer.status_code == 503
    assert answer.json()["error"]["code"] == "no_eligible_backend"
    assert confidential_bodies(gpt.received) == []
