"""Upstream failures: fallback inside the allowed set, 503 rather than leaving the cluster, and
streams that break after their first byte."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from modelplane.testing.processes import free_port
from modelplane.testing.router_process import RouterProcess

from .conftest import API_KEY, FRUGAL_KEY, Upstreams, router_config, start_router

HELLO = [{"role": "user", "content": "Say hello."}]


def sdk(router: RouterProcess) -> openai.OpenAI:
    return openai.OpenAI(base_url=router.base_url, api_key=API_KEY, max_retries=0, timeout=10)


def test_a_failing_upstream_falls_back_to_the_next_eligible_backend(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    upstreams.llama.faults.status = 503
    with sdk(router) as client:
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-modelplane-backend"] == "gpt-4o"
    assert "fallback_after=llama-3-8b" in raw.headers["x-modelplane-decision"]
    assert raw.parse().choices[0].message.content == upstreams.gpt.behaviour.reply_text
    assert len(upstreams.llama.received) == 1
    assert len(upstreams.gpt.received) == 1


@pytest.fixture
def fresh_router(upstreams: Upstreams, tmp_path: Path) -> Iterator[RouterProcess]:
    """A router of its own: what this test's requests teach it (cooldowns, measured speeds)
    must not steer the module router's next tests."""
    config = router_config(
        upstreams.llama.base_url, upstreams.gpt.base_url, cooldown_failures=10_000
    )
    yield from start_router(config, tmp_path)


def test_an_upstream_that_asks_for_a_wait_is_left_alone_that_long_then_used_again(
    fresh_router: RouterProcess, upstreams: Upstreams
) -> None:
    # This router cools a backend down only after 10,000 failures: what keeps requests off
    # llama here is its own Retry-After.
    upstreams.llama.faults.status = 429
    upstreams.llama.faults.retry_after_s = 1
    with sdk(fresh_router) as client:
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
            assert raw.headers["x-modelplane-backend"] == "gpt-4o"
        assert len(upstreams.llama.received) == 1
        upstreams.llama.faults.status = None
        time.sleep(1.2)
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-modelplane-backend"] == "llama-3-8b"
    assert len(upstreams.llama.received) == 2


def test_while_every_allowed_upstream_waits_as_asked_the_client_is_told_how_long(
    fresh_router: RouterProcess, upstreams: Upstreams
) -> None:
    # A confidential request may use llama only; llama is rate-limited for 7 s.
    upstreams.llama.faults.status = 429
    upstreams.llama.faults.retry_after_s = 7

    refused = fresh_router.chat(API_KEY, data_class="confidential")

    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "no_eligible_backend"
    assert refused.headers["retry-after"] == "7"  # not a retry in 1 s that is sure to fail
    # The next one is refused without an attempt (llama is cooling down): told what is left.
    again = fresh_router.chat(API_KEY, data_class="confidential")
    assert again.status_code == 503
    assert again.headers["retry-after"] in ("6", "7")
    assert len(upstreams.llama.received) == 1


def test_a_dropped_connection_falls_back_for_a_stream_too(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    upstreams.llama.faults.drop_connection = True
    with (
        sdk(router) as client,
        client.chat.completions.with_streaming_response.create(
            model="auto",
            messages=HELLO,  # type: ignore[arg-type]
            stream=True,
        ) as response,
    ):
        assert response.headers["x-modelplane-backend"] == "gpt-4o"
        text = "".join(chunk.choices[0].delta.content or "" for chunk in response.parse())
    assert text == upstreams.gpt.behaviour.reply_text


@pytest.fixture
def router_with_llama_down(upstreams: Upstreams, tmp_path: Path) -> Iterator[RouterProcess]:
    """A router whose in-cluster backend points at a port nothing listens on.

    A confidential request waits up to the backend's timeout for it to become ready before the
    503, so that timeout is short here.
    """
    nothing_listens = f"http://127.0.0.1:{free_port()}/v1"
    config = router_config(nothing_listens, upstreams.gpt.base_url, llama_timeout_s=0.5)
    yield from start_router(config, tmp_path)


def test_confidential_request_with_the_cluster_down_is_503_and_never_leaves(
    router_with_llama_down: RouterProcess, upstreams: Upstreams
) -> None:
    with sdk(router_with_llama_down) as client:
        for _ in range(4):  # past the cooldown threshold: the answer stays the same
            with pytest.raises(openai.InternalServerError) as raised:
                client.chat.completions.create(
                    model="auto",
                    messages=HELLO,  # type: ignore[arg-type]
                    extra_headers={"x-modelplane-data-class": "confidential"},
                )
            assert raised.value.status_code == 503
            assert raised.value.code == "no_eligible_backend"
        # The same router still serves requests that may leave the cluster.
        raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
    assert raw.headers["x-modelplane-backend"] == "gpt-4o"
    assert len(upstreams.gpt.received) == 1  # only the internal request


def test_a_stream_broken_after_its_first_event_ends_with_an_error_event(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    upstreams.llama.faults.fail_stream_after_events = 2
    with router.stream_chat(API_KEY) as response:
        assert response.status_code == 200
        assert response.headers["x-modelplane-backend"] == "llama-3-8b", (
            response.headers["x-modelplane-decision"],
            httpx.post(
                router.base_url + "/route/explain",
                json={"model": "auto", "messages": HELLO},
                headers={"Authorization": "Bearer " + API_KEY},
            ).text,
        )
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert len(events) == 4  # two content events, the error, [DONE]
    assert '"stream_interrupted"' in events[-2]
    assert events[-1] == "data: [DONE]"
    assert upstreams.gpt.received == []  # it never silently continues elsewhere


def test_the_openai_sdk_raises_on_a_stream_that_breaks(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    upstreams.llama.faults.fail_stream_after_events = 1
    with sdk(router) as client:
        stream = client.chat.completions.create(model="auto", messages=HELLO, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError, match="failed mid-stream"):
            list(stream)


def test_a_stream_that_ends_without_its_usage_is_still_charged(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    # The usage comes in a stream's last chunk; a tenant must not stream past its budget by
    # hanging up (or having the stream break) before it.
    upstreams.llama.faults.fail_stream_after_events = 2
    with router.stream_chat(FRUGAL_KEY) as response:
        assert response.headers["x-modelplane-backend"] == "llama-3-8b"
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert '"stream_interrupted"' in events[-2]
    upstreams.llama.faults.fail_stream_after_events = None

    refused = router.chat(FRUGAL_KEY)

    assert refused.status_code == 429
    assert refused.json()["error"]["code"] == "budget_exceeded"
    # No wait helps until the budget's period turns: the SDKs must not retry it.
    assert refused.headers["x-should-retry"] == "false"
    assert "retry-after" not in refused.headers
