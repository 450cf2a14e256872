"""CPU time of the router's own request path, without uvicorn, the upstream client or the network.

The router is built as `modelplane router serve` builds it (`build_runtime`, `create_app`, the
in-flight limit in front; `bench.router_overhead`'s configuration: two backends, one tenant, PII
detection on), but its upstream adapter answers from memory, and ASGI messages are handed to it
directly. What is timed is what modelplane adds on top of any Python pass-through: the key check,
parsing and checking the body, features and the PII scan, the policy decision, admission, the
call into the adapter, the answer's headers, accounting and telemetry. Every answer is checked
(status 200, and the body or the stream's last event) so an error path is never what is timed.

For each of plain and streamed, with telemetry on (the default) and off: µs of CPU per request,
best and median of the rounds (`time.process_time`, one process, no other threads at work).

Run: `python -m bench.app_path [--quick]`.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import AsyncIterator, MutableMapping
from typing import Any

import orjson
import uvloop
from modelplane.router.adapters.runtime import ServeOptions, build_runtime
from modelplane.router.adapters.telemetry import TelemetrySettings
from modelplane.router.adapters.upstream import CompletedReply, StreamingReply, Usage
from modelplane.router.api.app import create_app
from modelplane.router.api.limits import InFlightLimit
from modelplane.router.catalog import Upstream
from modelplane.router.config import AdapterKind, RouterConfig

from bench.fast_upstream import completion_body, stream_body
from bench.harness import figures_line
from bench.loadgen import PROMPT
from bench.router_overhead import MODELPLANE_KEY, modelplane_config

USAGE = Usage(input_tokens=12, output_tokens=7)


def sse_events(model: str) -> bytes:
    """The fast upstream's stream without its chunked framing: the events the adapter yields."""
    framed = stream_body(model, chunks=8)
    events: list[bytes] = []
    while framed:
        size_line, _, rest = framed.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            break
        events.append(rest[:size])
        framed = rest[size + 2 :]
    return b"".join(events)


class MemoryStream:
    """A stream whose events are all in its first read, as a fast upstream's are."""

    ttft_ms = 0.1

    def __init__(self, events: bytes) -> None:
        self._events = events
        self._usage: Usage | None = None

    async def events(self) -> AsyncIterator[bytes]:
        yield self._events
        self._usage = USAGE

    @property
    def usage(self) -> Usage | None:
        return self._usage

    @property
    def chunks_relayed(self) -> int:
        return self._events.count(b"data: {")

    async def aclose(self) -> None:
        return None


class MemoryAdapter:
    """Answers at once from canned bytes; serialises the body as the HTTP adapter must."""

    def __init__(self) -> None:
        self._completion = completion_body("bench")
        self._events = sse_events("bench")

    async def complete(self, upstream: Upstream, body: dict[str, Any]) -> CompletedReply:
        orjson.dumps(body)
        return CompletedReply(status=200, body=self._completion, usage=USAGE, ttft_ms=0.1)

    async def stream(
        self, upstream: Upstream, body: dict[str, Any], client_wants_usage: bool
    ) -> StreamingReply | CompletedReply:
        orjson.dumps(body)
        return MemoryStream(self._events)

    async def aclose(self) -> None:
        return None


Message = dict[str, Any]


async def measure(stream: bool, telemetry: bool, requests: int, rounds: int) -> list[float]:
    config = RouterConfig.model_validate(modelplane_config("http://127.0.0.1:9", None))
    options = ServeOptions(
        telemetry=TelemetrySettings() if telemetry else None, scrape_interval_s=0.0
    )
    runtime = build_runtime(options, config)
    adapter = MemoryAdapter()
    app = create_app(
        runtime.catalog_source,
        runtime.state,
        telemetry=runtime.telemetry,
        catalog_changes=runtime.catalog_changes,
        adapters={AdapterKind.OPENAI: adapter, AdapterKind.LITELLM: adapter},
    )
    entry = InFlightLimit(app)
    body = orjson.dumps(
        {
            "model": "auto",
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": 32,
            "stream": stream,
        }
    )
    headers = [
        (b"host", b"127.0.0.1"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer " + MODELPLANE_KEY.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    request: Message = {"type": "http.request", "body": body, "more_body": False}
    answers: list[Message] = []

    async def receive() -> Message:
        return request

    async def send(message: MutableMapping[str, Any]) -> None:
        answers.append(dict(message))

    def scope() -> dict[str, Any]:
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": "/v1/chat/completions",
            "raw_path": b"/v1/chat/completions",
            "root_path": "",
            "query_string": b"",
            "headers": headers,
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 50000),
            "state": {},
        }

    async def serve(count: int) -> None:
        for _ in range(count):
            answers.clear()
            await entry(scope(), receive, send)
            check(answers, stream)

    async with app.router.lifespan_context(app):
        await serve(max(200, requests // 5))  # warm-up
        per_request_us = []
        for _ in range(rounds):
            gc.collect()
            began = time.process_time()
            await serve(requests)
            per_request_us.append(1e6 * (time.process_time() - began) / requests)
    return per_request_us


def check(answers: list[Message], stream: bool) -> None:
    start, last = answers[0], answers[-1]
    if start.get("status") != 200:
        raise RuntimeError(f"the router answered {start.get('status')}: {answers[1:]}")
    bodies = b"".join(message.get("body", b"") for message in answers[1:])
    expected = b"data: [DONE]\n\n" if stream else b'"choices"'
    if expected not in bodies or last.get("more_body", False):
        raise RuntimeError(f"incomplete answer: {bodies[-200:]!r}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer requests (make bench)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    requests, rounds = (2000, 5) if args.quick else (10000, 7)
    figures: dict[str, object] = {}
    print(f"{'mode':8} {'telemetry':10} {'best us/req':>12} {'median us/req':>14}")
    for stream in (False, True):
        for telemetry in (True, False):
            rounds_us = uvloop.run(measure(stream, telemetry, requests, rounds))
            mode = "stream" if stream else "plain"
            label = "on" if telemetry else "off"
            best, median = min(rounds_us), statistics.median(rounds_us)
            print(f"{mode:8} {label:10} {best:12.1f} {median:14.1f}")
            suffix = "" if telemetry else "_no_telemetry"
            figures[f"app_us_per_req_{mode}{suffix}"] = round(best, 1)
            figures[f"app_us_per_req_median_{mode}{suffix}"] = round(median, 1)
    print(figures_line(figures))


if __name__ == "__main__":
    main()
