"""A loopback server that speaks the OpenAI/vLLM chat-completions API, for tests, demo, benchmarks.

It answers `POST */chat/completions` (JSON, or SSE with a usage chunk when `stream_options`
asks for it), `GET /v1/models`, `GET /health` and a vLLM-style Prometheus `GET /metrics` whose
gauges a test sets. Behaviour is controllable while it runs: time to first token, per-token
delay, and faults (an HTTP status with an optional Retry-After, a dropped connection, a request
that is never answered, a stream cut after N events). Every chat request it receives is recorded.

It is a raw asyncio protocol with httptools and orjson, so it costs far less per request than
anything placed in front of it.

In-process:  `async with LoopbackUpstream(model="llama-3-8b") as upstream: upstream.base_url`
Own process: `python -m modelplane.testing.upstream --port 8001 [--ttft-ms 20] [--fail-status 503]`
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import itertools
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, cast

import httptools
import orjson

DEFAULT_REPLY = "Hello from the loopback upstream."


@dataclass(slots=True)
class Faults:
    """Failures to inject into chat-completion requests (other endpoints keep working)."""

    status: int | None = None  # answer with this HTTP status and an OpenAI error body
    retry_after_s: float | None = None  # with `status`: a Retry-After header (e.g. for 429)
    error: dict[str, Any] | None = None  # with `status`: the error object (default: a server_error)
    drop_connection: bool = False  # close the connection without any answer
    hang: bool = False  # take the request and never answer, until the client gives up
    fail_stream_after_events: int | None = None  # streams: close the connection after N events


@dataclass(slots=True)
class VllmMetrics:
    """Gauges served at /metrics; `running=None` reports the requests actually in flight."""

    waiting: float = 0.0
    running: float | None = None
    kv_cache_usage: float = 0.0


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, or None


@dataclass(slots=True)
class Behaviour:
    reply_text: str = DEFAULT_REPLY
    ttft_s: float = 0.0
    token_delay_s: float = 0.0


@dataclass(slots=True)
class _Shared:
    model: str
    behaviour: Behaviour
    faults: Faults = field(default_factory=Faults)
    metrics: VllmMetrics = field(default_factory=VllmMetrics)
    received: list[ReceivedRequest] = field(default_factory=list)
    record: bool = True
    in_flight: int = 0
    # vLLM's counters, so a scraper can measure completion rate and throughput
    requests_completed: int = 0
    generated_tokens: int = 0
    ids: itertools.count[int] = field(default_factory=itertools.count)
    transports: set[asyncio.Transport] = field(default_factory=set)


class LoopbackUpstream:
    """An OpenAI-compatible upstream on 127.0.0.1 (port 0: an ephemeral one)."""

    def __init__(
        self,
        *,
        model: str = "llama-3-8b",
        host: str = "127.0.0.1",
        port: int = 0,
        reply_text: str = DEFAULT_REPLY,
        ttft_s: float = 0.0,
        token_delay_s: float = 0.0,
        record: bool = True,
    ) -> None:
        self.host = host
        self._requested_port = port
        self._shared = _Shared(
            model=model,
            behaviour=Behaviour(reply_text=reply_text, ttft_s=ttft_s, token_delay_s=token_delay_s),
            record=record,
        )
        self._initial_behaviour = dataclasses.replace(self._shared.behaviour)
        self._server: asyncio.Server | None = None

    # --- control ---------------------------------------------------------------------------

    @property
    def model(self) -> str:
        return self._shared.model

    @property
    def behaviour(self) -> Behaviour:
        return self._shared.behaviour

    @property
    def faults(self) -> Faults:
        return self._shared.faults

    @property
    def metrics(self) -> VllmMetrics:
        return self._shared.metrics

    @property
    def received(self) -> list[ReceivedRequest]:
        """Chat-completion requests received so far, oldest first."""
        return self._shared.received

    @property
    def in_flight(self) -> int:
        """Requests being answered right now (delayed or streaming ones)."""
        return self._shared.in_flight

    def reset(self) -> None:
        """Forget received requests, clear faults and restore the initial behaviour."""
        self._shared.received.clear()
        self._shared.faults = Faults()
        self._shared.behaviour = dataclasses.replace(self._initial_behaviour)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the upstream is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client or the router's `api_base` should point at."""
        return f"{self.url}/v1"

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        shared = self._shared
        self._server = await loop.create_server(
            lambda: _Connection(shared), self.host, self._requested_port, backlog=1024
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for transport in list(self._shared.transports):
            transport.abort()
        await self._server.wait_closed()
        self._server = None

    async def __aenter__(self) -> LoopbackUpstream:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()


# --- protocol ------------------------------------------------------------------------------


class _Connection(asyncio.Protocol):
    def __init__(self, shared: _Shared) -> None:
        self._shared = shared
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._tasks: set[asyncio.Task[None]] = set()

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)
        self._shared.transports.add(self._transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._transport is not None:
            self._shared.transports.discard(self._transport)
        for task in self._tasks:
            task.cancel()

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._write(400, b'{"error":{"message":"bad request"}}', keep_alive=False)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._url, self._headers, self._body = b"", [], []

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name.lower(), value))

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        method = self._parser.get_method()
        path = self._url.split(b"?", 1)[0]
        keep_alive = self._parser.should_keep_alive()
        if method == b"POST" and path.endswith(b"/chat/completions"):
            self._chat(path, b"".join(self._body), keep_alive)
        elif method == b"GET" and path in (b"/v1/models", b"/models"):
            body = orjson.dumps(
                {
                    "object": "list",
                    "data": [{"id": self._shared.model, "object": "model", "owned_by": "loopback"}],
                }
            )
            self._write(200, body, keep_alive)
        elif method == b"GET" and path == b"/health":
            self._write(200, b"", keep_alive)
        elif method == b"GET" and path == b"/metrics":
            self._write(200, self._metrics_text(), keep_alive, content_type=b"text/plain")
        else:
            self._write(404, b'{"error":{"message":"not found"}}', keep_alive)

    # handlers
    def _chat(self, path: bytes, raw: bytes, keep_alive: bool) -> None:
        shared = self._shared
        try:
            request = orjson.loads(raw)
        except orjson.JSONDecodeError:
            request = None
        if shared.record:
            shared.received.append(
                ReceivedRequest(
                    method="POST",
                    path=path.decode(),
                    headers={k.decode(): v.decode("latin-1") for k, v in self._headers},
                    body=request,
                )
            )
        faults = shared.faults
        if faults.drop_connection:
            if self._transport is not None:
                self._transport.abort()
            return
        if faults.hang:
            return  # the connection stays open and silent; closing it is the client's timeout
        if faults.status is not None:
            error = {
                "error": faults.error
                or {"message": "injected fault", "type": "server_error", "code": None}
            }
            extra = (
                [b"retry-after: %d" % max(0, round(faults.retry_after_s))]
                if faults.retry_after_s is not None
                else []
            )
            self._write(faults.status, orjson.dumps(error), keep_alive, extra_headers=extra)
            return
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            error = {"error": {"message": "'messages' is required", "type": "invalid_request"}}
            self._write(400, orjson.dumps(error), keep_alive)
            return
        behaviour = shared.behaviour
        streamed = request.get("stream") is True
        if not streamed and behaviour.ttft_s <= 0 and behaviour.token_delay_s <= 0:
            self._write(200, _completion(shared, request), keep_alive)
            return
        handler = (
            self._stream(request, keep_alive) if streamed else self._delayed(request, keep_alive)
        )
        task = asyncio.ensure_future(handler)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _delayed(self, request: dict[str, Any], keep_alive: bool) -> None:
        shared = self._shared
        shared.in_flight += 1
        try:
            words = len(shared.behaviour.reply_text.split())
            await asyncio.sleep(shared.behaviour.ttft_s + shared.behaviour.token_delay_s * words)
            self._write(200, _completion(shared, request), keep_alive)
        finally:
            shared.in_flight -= 1

    async def _stream(self, request: dict[str, Any], keep_alive: bool) -> None:
        shared = self._shared
        transport = self._transport
        if transport is None:
            return
        shared.in_flight += 1
        try:
            behaviour = shared.behaviour
            head = _head(200, b"text/event-stream", keep_alive, chunked=True)
            transport.write(head)
            if behaviour.ttft_s > 0:
                await asyncio.sleep(behaviour.ttft_s)
            cut_after = shared.faults.fail_stream_after_events
            for index, event in enumerate(_stream_events(shared, request)):
                if cut_after is not None and index >= cut_after:
                    # close, not abort: a reset could discard the events already sent, turning
                    # a mid-stream failure into one before the first byte
                    transport.close()
                    return
                if index > 0 and behaviour.token_delay_s > 0:
                    await asyncio.sleep(behaviour.token_delay_s)
                if transport.is_closing():
                    return
                transport.write(b"%x\r\n%s\r\n" % (len(event), event))
            transport.write(b"0\r\n\r\n")
            if not keep_alive:
                transport.close()
        finally:
            shared.in_flight -= 1

    def _metrics_text(self) -> bytes:
        shared = self._shared
        metrics = shared.metrics
        running = metrics.running if metrics.running is not None else float(shared.in_flight)
        label = f'{{model_name="{shared.model}"}}'
        lines = [
            "# HELP vllm:num_requests_waiting Number of requests waiting to be processed.",
            "# TYPE vllm:num_requests_waiting gauge",
            f"vllm:num_requests_waiting{label} {float(metrics.waiting)}",
            "# HELP vllm:num_requests_running Number of requests in model execution batches.",
            "# TYPE vllm:num_requests_running gauge",
            f"vllm:num_requests_running{label} {float(running)}",
            "# HELP vllm:kv_cache_usage_perc KV-cache usage. 1 means 100 percent usage.",
            "# TYPE vllm:kv_cache_usage_perc gauge",
            f"vllm:kv_cache_usage_perc{label} {float(metrics.kv_cache_usage)}",
            "# HELP vllm:request_success_total Count of successfully processed requests.",
            "# TYPE vllm:request_success_total counter",
            f"vllm:request_success_total{label} {float(shared.requests_completed)}",
            "# HELP vllm:generation_tokens_total Number of generation tokens processed.",
            "# TYPE vllm:generation_tokens_total counter",
            f"vllm:generation_tokens_total{label} {float(shared.generated_tokens)}",
        ]
        return ("\n".join(lines) + "\n").encode()

    def _write(
        self,
        status: int,
        body: bytes,
        keep_alive: bool,
        content_type: bytes = b"application/json",
        extra_headers: Sequence[bytes] = (),
    ) -> None:
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        head = _head(status, content_type, keep_alive, length=len(body), extra=extra_headers)
        transport.write(head + body)
        if not keep_alive:
            transport.close()


_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 429: b"Too Many Requests"}


def _head(
    status: int,
    content_type: bytes,
    keep_alive: bool,
    *,
    length: int | None = None,
    chunked: bool = False,
    extra: Sequence[bytes] = (),
) -> bytes:
    reason = _REASONS.get(status, b"Error" if status >= 400 else b"OK")
    lines = [b"HTTP/1.1 %d %s" % (status, reason), b"content-type: " + content_type, *extra]
    if chunked:
        lines.append(b"transfer-encoding: chunked")
    else:
        lines.append(b"content-length: %d" % (length or 0))
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _prompt_tokens(request: dict[str, Any]) -> int:
    """A rough count (words of text content), enough to make usage figures move with input."""
    count = 0
    for message in request.get("messages", []):
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            count += len(content.split())
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    count += len(part["text"].split())
    return max(count, 1)


def _reply_content(shared: _Shared, request: dict[str, Any]) -> str:
    response_format = request.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") in (
        "json_object",
        "json_schema",
    ):
        return orjson.dumps({"answer": shared.behaviour.reply_text}).decode()
    return shared.behaviour.reply_text


def _tool_to_call(request: dict[str, Any]) -> str | None:
    tools = request.get("tools")
    if not isinstance(tools, list) or not tools or request.get("tool_choice") == "none":
        return None
    function = tools[0].get("function") if isinstance(tools[0], dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else None


def _completion(shared: _Shared, request: dict[str, Any]) -> bytes:
    content = _reply_content(shared, request)
    prompt_tokens, completion_tokens = _prompt_tokens(request), len(content.split())
    shared.requests_completed += 1
    shared.generated_tokens += completion_tokens
    tool = _tool_to_call(request)
    message: dict[str, Any] = {"role": "assistant", "content": None if tool else content}
    if tool is not None:
        message["tool_calls"] = [
            {
                "id": f"call_{next(shared.ids)}",
                "type": "function",
                "function": {"name": tool, "arguments": "{}"},
            }
        ]
    return orjson.dumps(
        {
            "id": f"chatcmpl-loopback-{next(shared.ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or shared.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if tool else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def _stream_events(shared: _Shared, request: dict[str, Any]) -> list[bytes]:
    content = _reply_content(shared, request)
    words = content.split(" ")
    shared.requests_completed += 1
    shared.generated_tokens += len(words)
    identity = f"chatcmpl-loopback-{next(shared.ids)}"
    created = int(time.time())
    model = request.get("model") or shared.model

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {
            "id": identity,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "choices": choices,
            **extra,
        }
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    events = []
    for index, word in enumerate(words):
        delta: dict[str, str] = {"content": word if index == 0 else " " + word}
        if index == 0:
            delta["role"] = "assistant"
        events.append(chunk([{"index": 0, "delta": delta, "finish_reason": None}]))
    events.append(chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}]))
    options = request.get("stream_options")
    if isinstance(options, dict) and options.get("include_usage") is True:
        prompt_tokens = _prompt_tokens(request)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": len(words),
            "total_tokens": prompt_tokens + len(words),
        }
        events.append(chunk([], usage=usage))
    events.append(b"data: [DONE]\n\n")
    return events


# --- command line --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m modelplane.testing.upstream",
        description="Serve a loopback OpenAI/vLLM-compatible chat-completions API.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--model", default="llama-3-8b")
    parser.add_argument("--reply-text", default=DEFAULT_REPLY)
    parser.add_argument("--ttft-ms", type=float, default=0.0, help="time to first token")
    parser.add_argument("--token-delay-ms", type=float, default=0.0, help="delay per token")
    parser.add_argument("--fail-status", type=int, default=None, help="answer every chat with it")
    args = parser.parse_args(argv)

    async def serve() -> None:
        upstream = LoopbackUpstream(
            model=args.model,
            host=args.host,
            port=args.port,
            reply_text=args.reply_text,
            ttft_s=args.ttft_ms / 1000.0,
            token_delay_s=args.token_delay_ms / 1000.0,
            record=False,  # nobody can read them from outside, and the process must not grow
        )
        upstream.faults.status = args.fail_status
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        async with upstream:
            print(f"loopback upstream serving {upstream.base_url}", flush=True)
            await stop.wait()

    try:
        import uvloop

        uvloop.run(serve())
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
