"""Send the workload through the router with the official `openai` SDK, as an application would."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx
import openai
from openai import AsyncOpenAI

from modelplane.demo.report import Outcome, why_routed
from modelplane.demo.simulated_gpt4o import estimate_tokens
from modelplane.demo.workload import MAX_TOKENS, WorkloadItem, WorkloadPlan

BACKEND_HEADER = "x-modelplane-backend"
DECISION_HEADER = "x-modelplane-decision"
DATA_CLASS_HEADER = "x-modelplane-data-class"
REQUEST_TIMEOUT_S = 180.0
ANSWER_PREVIEW_CHARS = 160


def outcome_from_headers(
    item: WorkloadItem,
    headers: Any,
    status: int,
    started: float,
    ttft: float | None,
    usage: Any,
    answer: str,
    error: str | None = None,
) -> Outcome:
    prompt_text = "".join(str(message.get("content", "")) for message in item.messages)
    input_tokens = getattr(usage, "prompt_tokens", None) or estimate_tokens(prompt_text)
    output_tokens = getattr(usage, "completion_tokens", None)
    if output_tokens is None:
        output_tokens = estimate_tokens(answer) if answer else 0
    return Outcome(
        reference=item.reference,
        kind=item.kind,
        sensitive=item.sensitive,
        status=status,
        backend=headers.get(BACKEND_HEADER),
        decision=headers.get(DECISION_HEADER) or "",
        data_class=headers.get(DATA_CLASS_HEADER),
        latency_s=time.monotonic() - started,
        ttft_s=ttft,
        input_tokens=int(input_tokens) if status < 300 else 0,
        output_tokens=int(output_tokens) if status < 300 else 0,
        error=error,
        answer=answer[:ANSWER_PREVIEW_CHARS],
    )


async def send(client: AsyncOpenAI, item: WorkloadItem) -> Outcome:
    started = time.monotonic()
    request: dict[str, Any] = {
        "model": "auto",
        "messages": item.messages,
        "max_tokens": MAX_TOKENS,
        "extra_headers": item.headers,
    }
    try:
        if not item.stream:
            raw = await client.chat.completions.with_raw_response.create(**request)
            completion = raw.parse()
            answer = (completion.choices[0].message.content or "") if completion.choices else ""
            return outcome_from_headers(
                item, raw.headers, raw.status_code, started, None, completion.usage, answer
            )
        raw_stream = await client.chat.completions.with_raw_response.create(
            **request, stream=True, stream_options={"include_usage": True}
        )
        pieces: list[str] = []
        ttft: float | None = None
        usage = None
        async for chunk in raw_stream.parse():
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    if ttft is None:
                        ttft = time.monotonic() - started
                    pieces.append(choice.delta.content)
        return outcome_from_headers(
            item, raw_stream.headers, raw_stream.status_code, started, ttft, usage, "".join(pieces)
        )
    except openai.APIStatusError as error:
        body = error.body if isinstance(error.body, dict) else {}
        inner = body.get("error", body) if isinstance(body, dict) else {}
        code = str(inner.get("code") or inner.get("type") or error.status_code)
        outcome = outcome_from_headers(
            item, error.response.headers, error.status_code, started, None, None, ""
        )
        message = str(inner.get("message") or error.message)
        return _with(outcome, decision=outcome.decision or code, error=message)
    except openai.APIError as error:  # connection failures, timeouts, broken streams
        outcome = outcome_from_headers(item, {}, 0, started, None, None, "")
        return _with(outcome, decision=type(error).__name__, error=str(error))


def _with(outcome: Outcome, decision: str, error: str) -> Outcome:
    return replace(outcome, decision=decision, error=error)


async def ineligible_reasons(
    explainer: httpx.AsyncClient, item: WorkloadItem, backend: str
) -> list[str]:
    """Why the router's policy would not give `item` to `backend` (empty when it would).

    /v1/route/explain runs the same decision without calling any upstream.
    """
    body = {"model": "auto", "messages": item.messages, "max_tokens": MAX_TOKENS}
    response = await explainer.post("/route/explain", json=body, headers=item.headers)
    if not response.is_success:
        return []
    for candidate in response.json().get("candidates", []):
        if candidate.get("backend") == backend and not candidate.get("eligible"):
            return [str(reason) for reason in candidate.get("reasons", [])]
    return []


async def run_workload(
    base_url: str,
    api_key: str,
    plan: WorkloadPlan,
    local_backend: str,
    external_backends: frozenset[str],
    on_done: Callable[[Outcome], None],
) -> list[Outcome]:
    """The mixed phase one request at a time, then the burst all at once."""
    outcomes: list[Outcome] = []
    async with (
        AsyncOpenAI(
            base_url=base_url, api_key=api_key, max_retries=0, timeout=REQUEST_TIMEOUT_S
        ) as client,
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=30
        ) as explainer,
    ):

        async def explained(item: WorkloadItem, outcome: Outcome, local: list[str]) -> Outcome:
            why = why_routed(
                outcome.backend if outcome.served else None,
                outcome.backend in external_backends,
                outcome.decision,
                item.data_class == "confidential",
                local,
            )
            return replace(outcome, why=why)

        for item in plan.phase:
            local = await ineligible_reasons(explainer, item, local_backend)
            outcome = await explained(item, await send(client, item), local)
            outcomes.append(outcome)
            on_done(outcome)

        explanations = [await ineligible_reasons(explainer, i, local_backend) for i in plan.burst]

        async def burst_one(item: WorkloadItem, local: list[str]) -> Outcome:
            outcome = await explained(item, await send(client, item), local)
            on_done(outcome)
            return outcome

        outcomes.extend(
            await asyncio.gather(
                *(burst_one(i, local) for i, local in zip(plan.burst, explanations, strict=True))
            )
        )
    return outcomes
