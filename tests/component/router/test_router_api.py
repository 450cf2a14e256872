"""The router process end to end, called with the official `openai` SDK and raw HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest

from modelplane.testing.router_process import RouterProcess

from .conftest import API_KEY, EXTERNAL_KEY, LIMITED_KEY, SMALL_TPM, SMALL_TPM_KEY, Upstreams

HELLO = [{"role": "user", "content": "Say hello."}]
ROUTING_HEADERS = ("x-modelplane-backend", "x-modelplane-data-class", "x-modelplane-decision")


@pytest.fixture
def client(router: RouterProcess, upstreams: Upstreams) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=router.base_url, api_key=API_KEY, max_retries=0, timeout=10
    ) as sdk_client:
        yield sdk_client


def test_plain_completion_goes_to_the_cheapest_backend_with_routing_headers(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="auto", messages=HELLO)
    completion = raw.parse()
    assert completion.choices[0].message.content == upstreams.llama.behaviour.reply_text
    assert raw.headers["x-modelplane-backend"] == "llama-3-8b"
    assert raw.headers["x-modelplane-data-class"] == "internal"
    assert "privacy:ok" in raw.headers["x-modelplane-decision"]
    (received,) = upstreams.llama.received
    assert received.body["model"] == "llama-3-8b"
    assert received.body["messages"] == HELLO
    assert upstreams.gpt.received == []


def test_streamed_completion_arrives_in_chunks_without_the_usage_chunk_nobody_asked_for(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    with client.chat.completions.with_streaming_response.create(
        model="auto", messages=HELLO, stream=True
    ) as response:
        assert response.headers["x-modelplane-backend"] == "llama-3-8b"
        chunks = list(response.parse())
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert text == upstreams.llama.behaviour.reply_text
    assert all(chunk.choices for chunk in chunks)  # the router's usage request stays hidden
    (received,) = upstreams.llama.received
    assert received.body["stream_options"] == {"include_usage": True}


def test_streamed_completion_reports_usage_when_the_client_asks(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    stream = client.chat.completions.create(
        model="auto", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0


def test_tools_go_to_a_backend_that_supports_them(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=HELLO,
        tools=tools,  # type: ignore[arg-type]
    )
    completion = raw.parse()
    assert raw.headers["x-modelplane-backend"] == "gpt-4o"
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert upstreams.gpt.received[0].body["tools"] == tools
    assert upstreams.llama.received == []


def test_image_parts_go_to_a_backend_that_sees_images(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    content = [
        {"type": "text", "text": "What is in this picture?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    messages = [{"role": "user", "content": content}]
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=messages,  # type: ignore[arg-type]
    )
    assert raw.headers["x-modelplane-backend"] == "gpt-4o"
    assert upstreams.gpt.received[0].body["messages"] == messages


def test_json_mode_is_served_by_a_backend_with_json_support(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="auto", messages=HELLO, response_format={"type": "json_object"}
    )
    assert raw.headers["x-modelplane-backend"] == "llama-3-8b"
    content = raw.parse().choices[0].message.content
    assert content is not None
    assert json.loads(content) == {"answer": upstreams.llama.behaviour.reply_text}


def test_pinned_model_is_sent_to_that_backend_with_its_own_key(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    assert raw.headers["x-modelplane-backend"] == "gpt-4o"
    (received,) = upstreams.gpt.received
    assert received.body["model"] == "gpt-4o"
    assert received.headers["authorization"] == f"Bearer {EXTERNAL_KEY}"
    assert API_KEY not in json.dumps(received.headers)


def test_personal_data_keeps_an_auto_request_in_the_cluster(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    messages = [{"role": "user", "content": "Write to jane.doe@example.com about the invoice."}]
    raw = client.chat.completions.with_raw_response.create(
        model="auto",
        messages=messages,  # type: ignore[arg-type]
    )
    assert raw.headers["x-modelplane-backend"] == "llama-3-8b"
    assert raw.headers["x-modelplane-data-class"] == "confidential"
    assert upstreams.gpt.received == []


def test_pinning_an_external_model_with_confidential_data_is_403_and_sends_nothing(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    with pytest.raises(openai.PermissionDeniedError) as raised:
        client.chat.completions.create(
            model="gpt-4o",
            messages=HELLO,
            extra_headers={"x-modelplane-data-class": "confidential"},
        )
    assert raised.value.code == "policy_violation"
    assert upstreams.gpt.received == []
    assert upstreams.llama.received == []


def test_confidential_request_no_in_cluster_backend_can_serve_is_503(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    content = [
        {"type": "text", "text": "Describe this scan."},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    with pytest.raises(openai.InternalServerError) as raised:
        client.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
            extra_headers={"x-modelplane-data-class": "confidential"},
        )
    assert raised.value.status_code == 503
    assert raised.value.code == "no_eligible_backend"
    assert raised.value.response.headers["retry-after"] == "1"
    assert upstreams.gpt.received == []


def test_unknown_and_missing_keys_are_401(router: RouterProcess, upstreams: Upstreams) -> None:
    with (
        openai.OpenAI(base_url=router.base_url, api_key="wrong", max_retries=0) as stranger,
        pytest.raises(openai.AuthenticationError),
    ):
        stranger.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
    response = httpx.post(f"{router.base_url}/chat/completions", json={"messages": HELLO})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "authentication_error"
    assert upstreams.llama.received == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{this is not json", "not valid JSON"),
        (b'{"model": "auto"}', "messages"),
        (b'{"model": "auto", "messages": "hello"}', "messages"),
        (
            b'{"model": "auto", "messages": [{"role": "user", "content": "x"}], "stream": 1}',
            "stream",
        ),
    ],
)
def test_malformed_bodies_are_400_in_openai_format(
    router: RouterProcess, upstreams: Upstreams, content: bytes, message: str
) -> None:
    response = httpx.post(
        f"{router.base_url}/chat/completions",
        content=content,
        headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"
    assert upstreams.llama.received == []


def test_unknown_model_is_404(client: openai.OpenAI, upstreams: Upstreams) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="gpt-5", messages=HELLO)  # type: ignore[arg-type]


def test_rate_limit_answers_429_past_the_tenants_requests_per_minute(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    with openai.OpenAI(base_url=router.base_url, api_key=LIMITED_KEY, max_retries=0) as limited:
        for _ in range(2):
            limited.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
        with pytest.raises(openai.RateLimitError) as raised:
            limited.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
    assert len(upstreams.llama.received) == 2
    # The window is a wall-clock minute: what is left of it, so clients wait no longer.
    assert 1 <= int(raised.value.response.headers["retry-after"]) <= 60


def test_a_request_larger_than_the_tenants_tokens_per_minute_is_429_without_retry_after(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    response = httpx.post(
        f"{router.base_url}/chat/completions",
        json={"model": "auto", "messages": HELLO, "max_tokens": SMALL_TPM * 2},
        headers={"Authorization": f"Bearer {SMALL_TPM_KEY}"},
    )
    assert response.status_code == 429
    assert "retry-after" not in response.headers  # no wait will admit it
    error = response.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert f"{SMALL_TPM} tokens per minute" in error["message"]
    assert "max_tokens" in error["message"]
    assert upstreams.llama.received == []


def test_upstream_client_errors_are_passed_back_without_trying_another_backend(
    client: openai.OpenAI, upstreams: Upstreams
) -> None:
    upstreams.llama.faults.status = 400
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="auto", messages=HELLO)  # type: ignore[arg-type]
    assert len(upstreams.llama.received) == 1
    assert upstreams.gpt.received == []


def test_models_lists_auto_and_every_backend(client: openai.OpenAI) -> None:
    assert [model.id for model in client.models.list()] == ["auto", "llama-3-8b", "gpt-4o"]


def test_one_model_is_retrieved_by_id_and_an_unknown_one_is_404(client: openai.OpenAI) -> None:
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-5")
    assert missing.value.code == "model_not_found"


def test_health_endpoints_answer_without_a_key(router: RouterProcess) -> None:
    assert httpx.get(f"{router.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{router.url}/readyz").status_code == 200


def test_explain_shows_the_decision_and_calls_nothing_upstream(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    body = {
        "model": "auto",
        "messages": [{"role": "user", "content": "My card is 4111 1111 1111 1111."}],
    }
    response = httpx.post(
        f"{router.base_url}/route/explain",
        json=body,
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert response.status_code == 200
    explained = response.json()
    assert explained["backend"] == "llama-3-8b"
    assert explained["data_class"] == "confidential"
    assert explained["pii"] == ["payment_card"]
    by_backend = {candidate["backend"]: candidate for candidate in explained["candidates"]}
    assert by_backend["llama-3-8b"]["eligible"] is True
    assert by_backend["gpt-4o"]["eligible"] is False
    assert any("privacy" in reason for reason in by_backend["gpt-4o"]["reasons"])
    assert explained["estimate"]["input_tokens"] > 0
    assert explained["estimate"]["cost_usd"] >= 0
    assert upstreams.llama.received == []
    assert upstreams.gpt.received == []


def test_a_client_leaving_mid_stream_stops_the_upstream_generation(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    # 200 tokens at 0.1 s each: the generation would still run long after the deadline below.
    upstreams.llama.behaviour.reply_text = " ".join(["token"] * 200)
    upstreams.llama.behaviour.token_delay_s = 0.1
    with router.stream_chat(API_KEY) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ")
        assert upstreams.llama.in_flight == 1
    deadline = time.monotonic() + 5
    while upstreams.llama.in_flight and time.monotonic() < deadline:
        time.sleep(0.02)
    assert upstreams.llama.in_flight == 0
