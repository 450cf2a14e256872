"""The ceiling for any Python router here: a bare pass-through with no auth, policy or telemetry.

Raw ASGI on uvicorn (uvloop event loop, httptools parser), one pooled aiohttp client session and
orjson to read the one field it needs (`stream`). It forwards `POST /v1/chat/completions` to a
single upstream and relays the answer, streamed chunk by chunk when the request asked for a stream.

Run: `python -m bench.passthrough --port P --upstream http://127.0.0.1:U`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import aiohttp
import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

JSON_HEADERS = [(b"content-type", b"application/json")]
STREAM_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]


async def read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def respond(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": JSON_HEADERS})
    await send({"type": "http.response.body", "body": body})


class PassThrough:
    """An ASGI application forwarding chat completions to one upstream base URL."""

    def __init__(self, upstream_base_url: str) -> None:
        self.completions_url = upstream_base_url.rstrip("/") + "/v1/chat/completions"
        self.session: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] == "POST" and scope["path"] == "/v1/chat/completions":
            await self.forward(receive, send)
        elif scope["path"] == "/healthz":
            await respond(send, 200, b'{"status":"ok"}')
        else:
            await respond(send, 404, b'{"error":{"message":"not found","type":"not_found"}}')

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.session = aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=None),
                    timeout=aiohttp.ClientTimeout(total=60),
                )
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def forward(self, receive: Receive, send: Send) -> None:
        assert self.session is not None, "the lifespan startup creates the session"
        body = await read_body(receive)
        try:
            request = orjson.loads(body)
        except orjson.JSONDecodeError:
            await respond(send, 400, b'{"error":{"message":"malformed JSON","type":"bad_request"}}')
            return
        stream = isinstance(request, dict) and bool(request.get("stream"))
        async with self.session.post(
            self.completions_url, data=body, headers={"content-type": "application/json"}
        ) as upstream:
            if not stream or upstream.status != 200:
                await respond(send, upstream.status, await upstream.read())
                return
            await send({"type": "http.response.start", "status": 200, "headers": STREAM_HEADERS})
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="base URL, e.g. http://127.0.0.1:9000")
    args = parser.parse_args()
    uvicorn.run(
        PassThrough(args.upstream),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
