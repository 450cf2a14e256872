"""A minimal, fast OpenAI-compatible upstream for the overhead benchmarks.

It answers from canned bytes on a raw asyncio protocol (uvloop + httptools), so the upstream costs
a small fraction of what any router in front of it costs and the measured difference is the router.
Any `POST .../chat/completions` path is answered (OpenAI, vLLM, Azure-style deployment paths), so
LiteLLM providers that rewrite the path still reach it.

Run: `python -m bench.fast_upstream --port P [--stream-chunks N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import cast

import httptools
import orjson
import uvloop

COMPLETION_TEXT = "Hello from the benchmark upstream."


def completion_body(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": COMPLETION_TEXT},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }
    )


def stream_body(model: str, chunks: int) -> bytes:
    """The whole SSE stream, already framed with chunked transfer encoding, one frame per event."""
    created = int(time.time())
    words = COMPLETION_TEXT.split(" ")
    events: list[bytes] = []
    for index in range(chunks):
        delta: dict[str, str] = {"content": words[index % len(words)] + " "}
        if index == 0:
            delta["role"] = "assistant"
        events.append(
            orjson.dumps(
                {
                    "id": "chatcmpl-bench",
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
                }
            )
        )
    events.append(
        orjson.dumps(
            {
                "id": "chatcmpl-bench",
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": 12,
                    "completion_tokens": chunks,
                    "total_tokens": 12 + chunks,
                },
            }
        )
    )
    frames = [b"data: " + event + b"\n\n" for event in events] + [b"data: [DONE]\n\n"]
    return b"".join(b"%x\r\n%s\r\n" % (len(frame), frame) for frame in frames) + b"0\r\n\r\n"


def response(status: bytes, content_type: bytes, body: bytes) -> bytes:
    return (
        b"HTTP/1.1 "
        + status
        + b"\r\ncontent-type: "
        + content_type
        + b"\r\ncontent-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
NOT_FOUND = response(b"404 Not Found", b"application/json", b'{"error":{"message":"not found"}}')
HEALTH = response(b"200 OK", b"application/json", b'{"status":"ok"}')


class CannedResponses:
    """Responses per model name, built once: the hot path only looks them up."""

    def __init__(self, stream_chunks: int) -> None:
        self.stream_chunks = stream_chunks
        self._plain: dict[str, bytes] = {}
        self._stream: dict[str, bytes] = {}

    def plain(self, model: str) -> bytes:
        cached = self._plain.get(model)
        if cached is None:
            cached = response(b"200 OK", b"application/json", completion_body(model))
            self._plain[model] = cached
        return cached

    def stream(self, model: str) -> bytes:
        cached = self._stream.get(model)
        if cached is None:
            cached = STREAM_HEAD + stream_body(model, self.stream_chunks)
            self._stream[model] = cached
        return cached

    def models(self) -> bytes:
        body = orjson.dumps(
            {
                "object": "list",
                "data": [{"id": "bench-model", "object": "model", "owned_by": "bench"}],
            }
        )
        return response(b"200 OK", b"application/json", body)


class UpstreamProtocol(asyncio.Protocol):
    def __init__(self, canned: CannedResponses) -> None:
        self.canned = canned
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    # httptools callbacks
    def on_message_begin(self) -> None:
        self.url = b""
        self.body = []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        assert self.transport is not None
        self.transport.write(self.answer())

    def answer(self) -> bytes:
        path = self.url.split(b"?", 1)[0]
        method = self.parser.get_method()
        if method == b"POST" and path.endswith(b"/chat/completions"):
            try:
                request = orjson.loads(b"".join(self.body))
            except orjson.JSONDecodeError:
                return response(b"400 Bad Request", b"application/json", b'{"error":{}}')
            model = str(request.get("model", "bench-model"))
            return self.canned.stream(model) if request.get("stream") else self.canned.plain(model)
        if path.endswith(b"/models"):
            return self.canned.models()
        if path in (b"/health", b"/healthz", b"/v1/health"):
            return HEALTH
        return NOT_FOUND


async def serve(host: str, port: int, stream_chunks: int) -> None:
    loop = asyncio.get_running_loop()
    canned = CannedResponses(stream_chunks)
    server = await loop.create_server(lambda: UpstreamProtocol(canned), host, port, backlog=1024)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--stream-chunks", type=int, default=8)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.stream_chunks))


if __name__ == "__main__":
    main()
