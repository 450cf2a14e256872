"""A SIMULATED GPT-4o: a loopback OpenAI-compatible server, for running the demo with no API key.

It answers with canned text (every answer says it is simulated), charges GPT-4o's real list
price from LiteLLM's price map in its usage accounting, and waits like GPT-4o does: a
time-to-first-token drawn from a log-normal distribution and a steady output rate. It records
every request it receives, so the demo can check from the receiving end, independently of
what the router claims, that nothing confidential ever reached the external provider.

Run it as `python -m modelplane.demo.simulated_gpt4o --port P`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from modelplane.demo.pricing import ModelPrice, litellm_price

SIMULATED_LABEL = "SIMULATED GPT-4o"
SIMULATED_MODEL_ID = "gpt-4o-simulated"
RECEIVED_PATH = "/_simulator/received"
INFO_PATH = "/_simulator/info"
# OpenAI bills a detailed image tile set at roughly this many tokens for a small image.
IMAGE_PART_TOKENS = 765

ANSWER_TEXT = (
    "This answer comes from a simulated GPT-4o running on this machine for the modelplane demo; "
    "no real model produced it. A real GPT-4o would now explain the topic step by step, weigh "
    "the trade-offs, cite the relevant facts and close with a short recommendation. The "
    "simulation only reproduces GPT-4o's price and its typical latency so that the demo's cost "
    "and timing figures are realistic."
)


class LatencyProfile(BaseModel):
    """GPT-4o's typical timing as public API measurements report it (assumptions, not a SLA)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_median_ms: float = 450.0
    ttft_sigma: float = 0.3  # log-normal spread: p95 is about 1.6x the median
    output_tokens_per_s: float = 90.0
    input_tokens_per_s: float = 25_000.0  # prompt processing, felt only on long contexts

    def time_to_first_token_s(self, rng: random.Random, input_tokens: int) -> float:
        if self.ttft_median_ms <= 0:
            return 0.0
        base = rng.lognormvariate(math.log(self.ttft_median_ms / 1000), self.ttft_sigma)
        return base + input_tokens / self.input_tokens_per_s

    def seconds_per_token(self) -> float:
        return 0.0 if self.output_tokens_per_s <= 0 else 1 / self.output_tokens_per_s


INSTANT = LatencyProfile(ttft_median_ms=0, output_tokens_per_s=0)


class ReceivedRequest(BaseModel):
    """What the simulated provider saw of one request: everything that left the machine."""

    model_config = ConfigDict(extra="forbid")

    received_at: float
    model: str
    text: str  # every text part of every message, joined
    image_parts: int
    headers: dict[str, str]


def estimate_tokens(text: str) -> int:
    """About four characters per token, the usual rule of thumb for English and GPT tokenizers."""
    return max(1, math.ceil(len(text) / 4))


def message_text_and_images(messages: list[Any]) -> tuple[str, int]:
    texts: list[str] = []
    images = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "text":
                    texts.append(str(part.get("text", "")))
                elif part.get("type") == "image_url":
                    images += 1
    return "\n".join(texts), images


def answer_words(max_tokens: int, rng: random.Random) -> list[str]:
    """The canned answer, cut to a plausible length and to the caller's max_tokens."""
    words = ANSWER_TEXT.split()
    length = min(max_tokens, rng.randint(40, 120))
    prefix = [f"[{SIMULATED_LABEL}]"]
    repeated = (words * (length // len(words) + 1))[: max(0, length - 1)]
    return prefix + repeated


def openai_error(status: int, message: str, code: str) -> JSONResponse:
    body = {"error": {"message": message, "type": "invalid_request_error", "code": code}}
    return JSONResponse(body, status_code=status)


def build_app(
    price: ModelPrice,
    profile: LatencyProfile,
    seed: int = 0,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> FastAPI:
    app = FastAPI(title=f"{SIMULATED_LABEL} (modelplane demo)")
    received: list[ReceivedRequest] = []
    rng = random.Random(seed)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": price.model, "object": "model", "owned_by": "modelplane-demo"}],
        }

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "simulated": SIMULATED_LABEL}

    @app.get(INFO_PATH)
    async def info() -> dict[str, Any]:
        return {
            "label": SIMULATED_LABEL,
            "price": price.model_dump(),
            "latency": profile.model_dump(),
        }

    @app.get(RECEIVED_PATH)
    async def received_requests() -> list[dict[str, Any]]:
        return [item.model_dump() for item in received]

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(request: Request) -> JSONResponse | StreamingResponse:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return openai_error(400, "request body is not JSON", "invalid_json")
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list) or not messages:
            return openai_error(400, "'messages' must be a non-empty list", "invalid_messages")
        text, image_parts = message_text_and_images(messages)
        received.append(
            ReceivedRequest(
                received_at=time.time(),
                model=str(body.get("model", "")),
                text=text,
                image_parts=image_parts,
                headers={k: v for k, v in request.headers.items() if k != "authorization"},
            )
        )
        input_tokens = estimate_tokens(text) + image_parts * IMAGE_PART_TOKENS
        max_tokens = int(body.get("max_completion_tokens") or body.get("max_tokens") or 256)
        words = answer_words(max(1, max_tokens), rng)
        ttft = profile.time_to_first_token_s(rng, input_tokens)
        usage = {
            "prompt_tokens": input_tokens,
            "completion_tokens": len(words),
            "total_tokens": input_tokens + len(words),
        }
        completion_id = f"chatcmpl-sim-{uuid.uuid4().hex[:20]}"
        created = int(time.time())
        headers = {"x-simulated-provider": SIMULATED_LABEL}
        if body.get("stream"):
            options = body.get("stream_options") or {}
            include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
            chunks = stream_chunks(
                completion_id,
                created,
                words,
                ttft,
                profile,
                sleep,
                usage if include_usage else None,
            )
            return StreamingResponse(chunks, media_type="text/event-stream", headers=headers)
        await sleep(ttft + len(words) * profile.seconds_per_token())
        completion = {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": SIMULATED_MODEL_ID,
            "system_fingerprint": "modelplane-demo-simulation",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(words)},
                    "finish_reason": "stop",
                }
            ],
            "usage": usage,
        }
        return JSONResponse(completion, headers=headers)

    return app


async def stream_chunks(
    completion_id: str,
    created: int,
    words: list[str],
    ttft: float,
    profile: LatencyProfile,
    sleep: Callable[[float], Awaitable[None]],
    usage: dict[str, int] | None,
) -> AsyncIterator[bytes]:
    def event(delta: dict[str, Any], finish: str | None = None) -> bytes:
        chunk = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": SIMULATED_MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(chunk)}\n\n".encode()

    await sleep(ttft)
    yield event({"role": "assistant", "content": ""})
    words_per_chunk = 4
    for start in range(0, len(words), words_per_chunk):
        piece = words[start : start + words_per_chunk]
        prefix = "" if start == 0 else " "
        yield event({"content": prefix + " ".join(piece)})
        await sleep(len(piece) * profile.seconds_per_token())
    yield event({}, finish="stop")
    if usage is not None:
        final = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": SIMULATED_MODEL_ID,
            "choices": [],
            "usage": usage,
        }
        yield f"data: {json.dumps(final)}\n\n".encode()
    yield b"data: [DONE]\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=f"{SIMULATED_LABEL}: loopback OpenAI API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--instant", action="store_true", help="no simulated latency")
    args = parser.parse_args()

    import uvicorn

    profile = INSTANT if args.instant else LatencyProfile()
    app = build_app(litellm_price("gpt-4o"), profile, seed=args.seed)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
