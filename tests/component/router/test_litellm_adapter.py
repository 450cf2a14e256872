"""The LiteLLM adapter (used for providers that do not speak the OpenAI API), exercised against
the loopback upstream through LiteLLM's `openai/` provider, in this process."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson
import pytest
from modelplane.router.adapters.litellm_adapter import LiteLLMAdapter, _client_error_reply
from modelplane.router.adapters.upstream import CompletedReply, UpstreamUnavailable
from modelplane.router.catalog import Upstream
from modelplane.router.config import AdapterKind

from modelplane.testing.upstream import LoopbackUpstream

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}


@pytest.fixture
async def upstream() -> AsyncIterator[LoopbackUpstream]:
    async with LoopbackUpstream(model="gpt-4o") as server:
        yield server


def via_litellm(upstream: LoopbackUpstream) -> Upstream:
    return Upstream(
        adapter=AdapterKind.LITELLM,
        litellm_model="openai/gpt-4o",
        upstream_model="gpt-4o",
        api_base=upstream.base_url,
        api_key="sk-test",
        max_concurrency=4,
        timeout_s=10,
    )


async def test_completion_and_usage_come_back_in_openai_shape(upstream: LoopbackUpstream) -> None:
    adapter = LiteLLMAdapter()
    await adapter.warm_up(["openai/gpt-4o"])
    reply = await adapter.complete(via_litellm(upstream), dict(BODY))
    assert reply.status == 200
    assert b"Hello from the loopback upstream." in reply.body
    assert reply.usage is not None
    assert reply.usage.output_tokens == 5
    assert upstream.received[-1].headers["authorization"] == "Bearer sk-test"


async def test_stream_is_reframed_as_sse_ending_with_done(upstream: LoopbackUpstream) -> None:
    stream = await LiteLLMAdapter().stream(via_litellm(upstream), dict(BODY), False)
    assert not isinstance(stream, CompletedReply)
    events = [event async for event in stream.events()]
    await stream.aclose()
    assert all(event.startswith(b"data: ") and event.endswith(b"\n\n") for event in events)
    assert events[-1] == b"data: [DONE]\n\n"
    assert stream.usage is not None
    assert upstream.received[-1].body["stream"] is True


async def test_server_errors_are_retryable_and_client_errors_are_answers(
    upstream: LoopbackUpstream,
) -> None:
    adapter = LiteLLMAdapter()
    upstream.faults.status = 503
    with pytest.raises(UpstreamUnavailable):
        await adapter.complete(via_litellm(upstream), dict(BODY))
    upstream.faults.status = 400
    reply = await adapter.complete(via_litellm(upstream), dict(BODY))
    assert reply.status == 400


@pytest.mark.parametrize("streamed", [False, True], ids=["complete", "stream"])
async def test_a_providers_retry_after_comes_through_litellm(
    upstream: LoopbackUpstream, streamed: bool
) -> None:
    adapter = LiteLLMAdapter()
    upstream.faults.status = 429
    upstream.faults.retry_after_s = 7
    call = (
        adapter.stream(via_litellm(upstream), dict(BODY), False)
        if streamed
        else adapter.complete(via_litellm(upstream), dict(BODY))
    )
    with pytest.raises(UpstreamUnavailable) as raised:
        await call
    assert raised.value.retry_after_s == 7.0


async def test_a_providers_error_reaches_the_client_as_the_pass_through_would_relay_it(
    upstream: LoopbackUpstream,
) -> None:
    upstream.faults.status = 400
    upstream.faults.error = {
        "message": "This model's maximum context length is 8192 tokens.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }

    reply = await LiteLLMAdapter().complete(via_litellm(upstream), dict(BODY))

    assert reply.status == 400
    error = orjson.loads(reply.body)["error"]
    assert error["code"] == "context_length_exceeded"
    assert error["param"] == "messages"
    assert error["type"] == "invalid_request_error"
    assert error["message"] == "This model's maximum context length is 8192 tokens."


@pytest.mark.parametrize(
    "message",
    [
        "prompt is too long: 210000 tokens > 200000 maximum",
        # LiteLLM's own names for the error, nested, before the provider's text.
        "litellm.BadRequestError: ContextWindowExceededError: OpenAIException - "
        "prompt is too long: 210000 tokens > 200000 maximum",
    ],
)
def test_what_litellm_recognised_becomes_openais_error_when_the_provider_sent_no_body(
    message: str,
) -> None:
    import litellm

    error = litellm.ContextWindowExceededError(
        message=message, model="claude-sonnet", llm_provider="anthropic"
    )

    reply = _client_error_reply(error, 400)

    assert orjson.loads(reply.body)["error"] == {
        "message": "prompt is too long: 210000 tokens > 200000 maximum",
        "type": "invalid_request_error",
        "param": None,
        "code": "context_length_exceeded",
    }
