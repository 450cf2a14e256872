"""What the router measures per backend from real replies: decode rate and time to first byte."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from modelplane.router.adapters.redis_state import (
    BackendStatistics,
    RedisState,
    RedisStateSettings,
)

from modelplane.testing.router_config import in_cluster_llama, router_config_text
from modelplane.testing.router_process import RouterProcess, ThreadedUpstreams
from modelplane.testing.upstream import DEFAULT_REPLY
from modelplane.testing.valkey import ValkeyProcess

KEY = "team-key"
TOKEN_DELAY_S = 0.02
WORDS = len(DEFAULT_REPLY.split())


async def llama_statistics(valkey: ValkeyProcess) -> BackendStatistics:
    state = RedisState(RedisStateSettings(url=valkey.url))
    try:
        for _ in range(100):
            statistics = (await state.backend_statistics()).get("llama")
            if statistics is not None and statistics.tokens_per_second is not None:
                return statistics
            await asyncio.sleep(0.05)
    finally:
        await state.aclose()
    raise AssertionError("the router never stored the expected statistics for llama")


@pytest.fixture
def router(
    valkey: ValkeyProcess,
    upstream_host: ThreadedUpstreams,
    start_router: Callable[..., RouterProcess],
) -> RouterProcess:
    llama = upstream_host.start("llama-3-8b")
    llama.behaviour.token_delay_s = TOKEN_DELAY_S
    config = router_config_text(
        backends=[in_cluster_llama(llama.base_url, name="llama")],
        tenants=[{"name": "team", "api_keys": [KEY]}],
    )
    return start_router("--scrape-interval", "0", "--redis-url", valkey.url, config=config)


async def test_non_streamed_reply_measures_decode_rate_over_the_whole_request(
    router: RouterProcess, valkey: ValkeyProcess
) -> None:
    response = router.chat(KEY)
    assert response.status_code == 200, response.text

    statistics = await llama_statistics(valkey)

    # The upstream spends TOKEN_DELAY_S per word, so no honest measure can exceed this rate.
    assert statistics.tokens_per_second is not None
    assert 0 < statistics.tokens_per_second <= WORDS / (WORDS * TOKEN_DELAY_S)
    # What a non-streaming client waits for its first byte: the whole answer.
    assert statistics.ttft_ms is not None
    assert statistics.ttft_ms >= WORDS * TOKEN_DELAY_S * 1000


async def test_streamed_reply_records_time_to_first_token_before_the_answer_ends(
    router: RouterProcess, valkey: ValkeyProcess
) -> None:
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "Hi."}]}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.stream(
        "POST", f"{router.url}/v1/chat/completions", json=body, headers=headers, timeout=30
    ) as response:
        assert response.status_code == 200
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "data: [DONE]"

    statistics = await llama_statistics(valkey)

    assert statistics.ttft_ms is not None
    assert statistics.ttft_ms < WORDS * TOKEN_DELAY_S * 1000
