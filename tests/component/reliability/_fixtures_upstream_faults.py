"""Concurrent load against the real router process, and what each request saw.

Shared by the upstream-fault and in-cluster-outage tests. Every request carries a marker naming
its kind and number in its text, so a test can check what an upstream actually received. A
request's outcome keeps its status, serving backend, error code, how a stream ended and its wall
time, measured by a client whose own timeout lies far beyond any bound the tests assert.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import enum
import re
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpx
import orjson

from modelplane.testing.router_process import RouterProcess
from modelplane.testing.upstream import ReceivedRequest

KEY = "reliability-key"
LLAMA = "llama-3-8b"
GPT = "gpt-4o"
CLIENT_TIMEOUT_S = 60.0  # far above every asserted bound, so a hang shows up as a long wall time
PII_EMAIL = (
    "jane.doe@example.com"  # an email address: the PII scan raises the request to confidential
)


class Kind(enum.StrEnum):
    """What may serve a request: only PUBLIC may leave the cluster."""

    PUBLIC = "public"  # the tenant's default data class (internal): any backend
    CONFIDENTIAL = "confidential"  # declared confidential: in-cluster only
    PII = "pii"  # carries an email address: raised to confidential by the PII scan
    PINNED = "pinned"  # names the in-cluster backend: that backend only

    @property
    def may_fall_back(self) -> bool:
        return self is Kind.PUBLIC


@dataclasses.dataclass(frozen=True)
class Shot:
    index: int
    kind: Kind
    stream: bool

    @property
    def marker(self) -> str:
        return f"[{self.kind.value}-{self.index}]"

    def body(self) -> dict[str, Any]:
        text = f"{self.marker} Summarise the quarterly notes."
        if self.kind is Kind.PII:
            text += f" Send them to {PII_EMAIL}."
        return {
            "model": LLAMA if self.kind is Kind.PINNED else "auto",
            "messages": [{"role": "user", "content": text}],
            "stream": self.stream,
        }

    def headers(self) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {KEY}"}
        if self.kind is Kind.CONFIDENTIAL:
            headers["x-modelplane-data-class"] = "confidential"
        return headers


class StreamEnd(enum.StrEnum):
    NOT_A_STREAM = "not-a-stream"
    DONE = "done"  # content, then [DONE]
    INTERRUPTED = "interrupted"  # a stream_interrupted error event, then [DONE]
    TRUNCATED = "truncated"  # the connection ended without [DONE]


@dataclasses.dataclass(frozen=True)
class Outcome:
    shot: Shot
    started: float  # time.monotonic()
    wall_s: float
    status: int  # 0: the client gave up or the connection failed
    backend: str | None
    decision: str
    error_type: str | None
    error_code: str | None
    error_message: str
    content: str
    stream_end: StreamEnd

    @property
    def served(self) -> bool:
        """Answered 200 with the whole reply (a complete stream, for streams)."""
        return self.status == 200 and self.stream_end in (StreamEnd.NOT_A_STREAM, StreamEnd.DONE)

    @property
    def fell_back(self) -> bool:
        return "fallback_after=" in self.decision

    @property
    def kept_in_cluster_by_policy(self) -> bool:
        return not self.shot.kind.may_fall_back


def mixed_shots(
    count: int, kinds: Sequence[Kind], *, streams: str = "mixed", start: int = 0
) -> list[Shot]:
    """`count` shots cycling through `kinds`; `streams`: "mixed" (every other), "all", "none"."""
    shots = []
    for index in range(start, start + count):
        stream = {"mixed": index % 2 == 1, "all": True, "none": False}[streams]
        shots.append(Shot(index=index, kind=kinds[index % len(kinds)], stream=stream))
    return shots


async def fire(client: httpx.AsyncClient, router: RouterProcess, shot: Shot) -> Outcome:
    """Send one request and read the whole answer; never raises for what the router answered."""
    started = time.monotonic()
    url = f"{router.url}/v1/chat/completions"
    status, backend, decision = 0, None, ""
    error_type = error_code = None
    error_message = ""
    content, stream_end = "", StreamEnd.NOT_A_STREAM
    try:
        async with client.stream("POST", url, json=shot.body(), headers=shot.headers()) as reply:
            status = reply.status_code
            backend = reply.headers.get("x-modelplane-backend")
            decision = reply.headers.get("x-modelplane-decision", "")
            if shot.stream and status == 200:
                content, stream_end, error_type, error_code = await _read_stream(reply)
            else:
                payload = orjson.loads(await reply.aread())
                if status == 200:
                    content = payload["choices"][0]["message"]["content"] or ""
                else:
                    error_type = payload["error"]["type"]
                    error_code = payload["error"]["code"]
                    error_message = payload["error"]["message"]
    except httpx.HTTPError as error:
        status, error_code = 0, type(error).__name__
    return Outcome(
        shot=shot,
        started=started,
        wall_s=time.monotonic() - started,
        status=status,
        backend=backend,
        decision=decision,
        error_type=error_type,
        error_code=error_code,
        error_message=error_message,
        content=content,
        stream_end=stream_end,
    )


async def _read_stream(
    reply: httpx.Response,
) -> tuple[str, StreamEnd, str | None, str | None]:
    parts: list[str] = []
    error_type = error_code = None
    async for line in reply.aiter_lines():
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            end = StreamEnd.INTERRUPTED if error_code is not None else StreamEnd.DONE
            return "".join(parts), end, error_type, error_code
        event = orjson.loads(data)
        if "error" in event:
            error_type, error_code = event["error"]["type"], event["error"]["code"]
            continue
        for choice in event.get("choices", ()):
            parts.append(choice.get("delta", {}).get("content") or "")
    return "".join(parts), StreamEnd.TRUNCATED, error_type, error_code


def load_client(concurrency: int) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=CLIENT_TIMEOUT_S)


async def run_load(router: RouterProcess, shots: Iterable[Shot], concurrency: int) -> list[Outcome]:
    """Send every shot with at most `concurrency` in flight; outcomes in shot order."""
    gate = asyncio.Semaphore(concurrency)

    async def bounded(client: httpx.AsyncClient, shot: Shot) -> Outcome:
        async with gate:
            return await fire(client, router, shot)

    async with load_client(concurrency) as client:
        return list(await asyncio.gather(*(bounded(client, shot) for shot in shots)))


async def run_until_stopped(
    router: RouterProcess,
    kinds: Sequence[Kind],
    stop: asyncio.Event,
    *,
    workers: int,
    pause_s: float,
    max_requests: int,
) -> list[Outcome]:
    """Steady load: `workers` loops each sending a request, then pausing, until `stop` is set
    or `max_requests` have been sent; shots cycle through `kinds`, every other one a stream."""
    shots = iter(mixed_shots(max_requests, kinds))
    outcomes: list[Outcome] = []

    async def worker(client: httpx.AsyncClient) -> None:
        for shot in shots:  # the shared iterator hands each shot to one worker
            outcomes.append(await fire(client, router, shot))
            if stop.is_set():
                return
            await asyncio.sleep(pause_s)

    async with load_client(workers) as client:
        await asyncio.gather(*(worker(client) for _ in range(workers)))
    return sorted(outcomes, key=lambda outcome: outcome.shot.index)


async def first_served_by(
    router: RouterProcess,
    backend: str,
    kind: Kind,
    *,
    within_s: float,
    pause_s: float = 0.05,
) -> float | None:
    """Seconds until a `kind` request is served by `backend`, polling; None if not within_s."""
    started = time.monotonic()
    async with load_client(1) as client:
        for index in range(int(within_s / pause_s) + 1):
            outcome = await fire(
                client, router, Shot(index=1_000_000 + index, kind=kind, stream=False)
            )
            if outcome.served and outcome.backend == backend:
                return time.monotonic() - started
            if time.monotonic() - started > within_s:
                return None
            await asyncio.sleep(pause_s)
    return None


_MARKER = re.compile(r"\[(?:public|confidential|pii|pinned)-\d+\]")


def markers_in(received: Iterable[ReceivedRequest]) -> list[str]:
    """The request markers in the bodies an upstream received, in arrival order."""
    found = []
    for request in received:
        match = _MARKER.search(orjson.dumps(request.body).decode())
        found.append(match.group() if match else "<no marker>")
    return found


def error_codes(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """How many outcomes ended in each error, as "status code" (stream error events: "200 ...")."""
    counts: collections.Counter[str] = collections.Counter()
    for outcome in outcomes:
        if not outcome.served:
            counts[f"{outcome.status} {outcome.error_code}"] += 1
    return dict(sorted(counts.items()))


def summary(
    name: str,
    outcomes: Sequence[Outcome],
    timeout_s: float,
    received: dict[str, int],
    recovery_s: float | None,
) -> str:
    """One line of figures for docs/reliability.md.

    `fallback` counts requests GPT-4o served after a failed attempt on llama, `skipped` those it
    served without one (llama in cooldown), `refused_in_cooldown` the 503s answered without
    trying llama.
    """
    on_gpt = [o for o in outcomes if o.served and o.backend == GPT]
    return (
        f"{name}: sent={len(outcomes)} served={sum(o.served for o in outcomes)} "
        f"served_by_llama={sum(o.served and o.backend == LLAMA for o in outcomes)} "
        f"fallback={sum(o.fell_back for o in on_gpt)} "
        f"skipped={sum(not o.fell_back for o in on_gpt)} "
        f"errors={error_codes(outcomes)} "
        f"refused_in_cooldown={sum('health:cooldown' in o.error_message for o in outcomes)} "
        f"upstream_received={received} "
        f"max_wall_s={max(o.wall_s for o in outcomes):.2f} (llama timeout {timeout_s:g} s) "
        f"recovery_s={'-' if recovery_s is None else f'{recovery_s:.2f}'}"
    )
