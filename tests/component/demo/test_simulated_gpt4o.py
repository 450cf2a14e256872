"""The simulated GPT-4o: OpenAI-shaped answers, labelled as simulated, and a record of receipt."""

from __future__ import annotations

import json
import random

import httpx
import pytest

from modelplane.demo.pricing import litellm_price
from modelplane.demo.simulated_gpt4o import (
    INSTANT,
    RECEIVED_PATH,
    SIMULATED_LABEL,
    LatencyProfile,
    build_app,
)


@pytest.fixture
def client() -> httpx.AsyncClient:
    app = build_app(litellm_price("gpt-4o"), INSTANT, seed=1)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://simulated")


def chat(content: object, **extra: object) -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}


def test_price_is_litellms_gpt4o_list_price() -> None:
    import litellm

    price = litellm_price("gpt-4o")
    listed = litellm.model_cost["gpt-4o"]
    assert price.input_usd_per_mtok == pytest.approx(listed["input_cost_per_token"] * 1e6)
    assert price.output_usd_per_mtok == pytest.approx(listed["output_cost_per_token"] * 1e6)


async def test_answer_is_labelled_simulated_and_respects_max_tokens(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/v1/chat/completions", json=chat("Hello", max_tokens=12))
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["content"].startswith(f"[{SIMULATED_LABEL}]")
    assert body["usage"]["completion_tokens"] <= 12
    assert response.headers["x-simulated-provider"] == SIMULATED_LABEL


async def test_stream_ends_with_usage_and_done_when_asked(client: httpx.AsyncClient) -> None:
    request = chat("Hi", max_tokens=20, stream=True, stream_options={"include_usage": True})
    response = await client.post("/v1/chat/completions", json=request)
    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text.startswith(f"[{SIMULATED_LABEL}]")
    assert 0 < chunks[-1]["usage"]["completion_tokens"] <= 20


async def test_records_text_and_image_parts_of_what_it_received(
    client: httpx.AsyncClient,
) -> None:
    parts = [
        {"type": "text", "text": "look at D-042"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    await client.post("/v1/chat/completions", json=chat(parts))
    received = (await client.get(RECEIVED_PATH)).json()
    assert len(received) == 1
    assert received[0]["text"] == "look at D-042"
    assert received[0]["image_parts"] == 1


async def test_malformed_request_gets_an_openai_error(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/chat/completions", json={"model": "gpt-4o"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_messages"


def test_latency_profile_grows_with_prompt_length() -> None:
    profile = LatencyProfile(ttft_sigma=0.0)
    short = profile.time_to_first_token_s(random.Random(0), 100)
    long = profile.time_to_first_token_s(random.Random(0), 100_000)
    assert short == pytest.approx(0.45 + 100 / 25_000)
    assert long > short + 3
