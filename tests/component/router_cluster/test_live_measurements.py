"""Scraping a loopback vLLM-style /metrics and laying the measurements over state and catalog."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from modelplane.router.adapters.live import CatalogChanges, LiveCatalog, LiveLatencyState
from modelplane.router.adapters.metrics_scraper import (
    EngineMetricsScraper,
    LiveEngine,
    ScrapeTarget,
    metrics_url_for,
)
from modelplane.router.catalog import CatalogSource, catalog_from_config
from modelplane.router.config import parse_config
from modelplane.router.state import AttemptObservation, InProcessState

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.upstream import LoopbackUpstream


@pytest.fixture
async def upstream() -> AsyncIterator[LoopbackUpstream]:
    async with LoopbackUpstream(model="llama-3-8b") as server:
        yield server


def config_text(llama_base: str) -> str:
    return router_config_text(
        backends=[
            in_cluster_llama(llama_base, name="llama", gpu_hour_usd=3.6, tokens_per_second=1000),
            external_gpt4o(None, api_key="sk-test", input_usd_per_mtok=2.5, output_usd_per_mtok=10),
        ],
        tenants=[{"name": "team-a", "api_keys": ["key-a"]}],
    )


async def test_predicted_ttft_follows_the_scraped_queue_depth(upstream: LoopbackUpstream) -> None:
    scraper = EngineMetricsScraper()
    scraper.set_targets([ScrapeTarget("llama", metrics_url_for(upstream.base_url))])
    inner = InProcessState()
    await inner.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=100.0))
    state = LiveLatencyState(inner, scraper)
    try:
        await scraper.scrape_once()
        idle = (await state.backend_health())["llama"].predicted_ttft_ms

        upstream.metrics.waiting = 40
        await scraper.scrape_once()
        queued = (await state.backend_health())["llama"].predicted_ttft_ms

        upstream.metrics.waiting = 0
        await scraper.scrape_once()
        drained = (await state.backend_health())["llama"].predicted_ttft_ms
    finally:
        await scraper.aclose()

    assert idle == pytest.approx(100.0)
    assert queued is not None
    assert queued > 10 * 100.0
    assert drained == pytest.approx(100.0)


async def test_unreachable_engine_is_published_not_ready_and_back(
    upstream: LoopbackUpstream,
) -> None:
    base = catalog_from_config(parse_config(config_text(upstream.base_url)))
    source = CatalogSource(base)
    live: list[LiveCatalog] = []
    scraper = EngineMetricsScraper(on_round=lambda: live[0].scrape_round_completed())
    live.append(LiveCatalog(source, scraper))
    port = upstream.port
    live[0].set_base(base, [ScrapeTarget("llama", metrics_url_for(upstream.base_url))])
    try:
        await scraper.scrape_once()
        assert source.current.backends["llama"].snapshot.ready

        await upstream.stop()
        await scraper.scrape_once()
        assert source.current.backends["llama"].snapshot.ready  # one miss is not enough
        await scraper.scrape_once()
        assert not source.current.backends["llama"].snapshot.ready
        assert source.current.backends["gpt-4o"].snapshot.ready

        restarted = LoopbackUpstream(model="llama-3-8b", port=port)
        await restarted.start()
        try:
            await scraper.scrape_once()
            assert source.current.backends["llama"].snapshot.ready
        finally:
            await restarted.stop()
    finally:
        await scraper.aclose()


async def test_catalog_changes_wakes_a_waiter() -> None:
    base = catalog_from_config(parse_config(config_text("http://127.0.0.1:9/v1")))
    source = CatalogSource(base)
    changes = CatalogChanges(source)

    assert await changes.wait(0.01) is False
    waiter = asyncio.create_task(changes.wait(5.0))
    await asyncio.sleep(0)
    source.replace(base)

    assert await waiter is True


async def measure_price(upstream: LoopbackUpstream) -> tuple[LiveEngine, float, float]:
    """Scrape, serve 20 requests, scrape again: the engine as measured, its price, and the
    price the configuration gives it."""
    base = catalog_from_config(parse_config(config_text(upstream.base_url)))
    source = CatalogSource(base)
    live: list[LiveCatalog] = []
    scraper = EngineMetricsScraper(on_round=lambda: live[0].scrape_round_completed())
    live.append(LiveCatalog(source, scraper))
    live[0].set_base(base, [ScrapeTarget("llama", metrics_url_for(upstream.base_url), 3.6)])
    body = {"model": "llama-3-8b", "messages": [{"role": "user", "content": "hi"}]}
    try:
        await scraper.scrape_once()
        async with httpx.AsyncClient() as client:
            for _ in range(20):
                await client.post(f"{upstream.base_url}/chat/completions", json=body)
        await scraper.scrape_once()
    finally:
        await scraper.aclose()
    configured = base.backends["llama"].snapshot.output_usd_per_mtok
    return (
        scraper.live()["llama"],
        source.current.backends["llama"].snapshot.output_usd_per_mtok,
        configured,
    )


async def test_self_hosted_price_follows_the_throughput_measured_while_requests_queue(
    upstream: LoopbackUpstream,
) -> None:
    upstream.metrics.waiting = 3  # requests queue: what it generates is its capacity

    engine, price, configured = await measure_price(upstream)

    assert engine.tokens_per_second is not None
    assert engine.tokens_per_second > 0
    assert price == pytest.approx(3.6 / engine.tokens_per_second * 1e6 / 3600, rel=0.01)
    assert price != configured


async def test_light_load_leaves_the_configured_price_of_a_self_hosted_backend(
    upstream: LoopbackUpstream,
) -> None:
    # Twenty requests one after another: tokens per second of demand, far below the engine's
    # speed; priced at it, the GPU-hour made the model look many times dearer than GPT-4o.
    engine, price, configured = await measure_price(upstream)

    assert engine.tokens_per_second is None
    assert price == configured


async def test_unanswered_scrape_leaves_readiness_alone_when_status_decides_it(
    upstream: LoopbackUpstream,
) -> None:
    base = catalog_from_config(parse_config(config_text(upstream.base_url)))
    source = CatalogSource(base)
    scraper = EngineMetricsScraper()
    live = LiveCatalog(source, scraper, readiness_from_scrape=False)
    live.set_base(base, [ScrapeTarget("llama", "http://127.0.0.1:9/metrics")])
    try:
        for _ in range(2):
            await scraper.scrape_once()
        live.scrape_round_completed()
    finally:
        await scraper.aclose()

    assert not scraper.live()["llama"].reachable
    assert source.current.backends["llama"].snapshot.ready
