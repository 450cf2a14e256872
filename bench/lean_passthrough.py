"""Two lean Python pass-throughs on the router's own HTTP/1.1 client, to take latency apart.

- `--server raw`: asyncio protocols with httptools parsing on uvloop, no ASGI server: what the
  Python runtime itself costs per hop;
- `--server uvicorn`: the same client behind uvicorn (httptools, uvloop) and a minimal raw ASGI
  app: what the ASGI server adds on top.

Neither authenticates, routes nor accounts; each forwards `POST /v1/chat/completions` to one
upstream and answers with the whole upstream response (plain requests only; both answer any
other path with an empty JSON object, which serves as their health check).

Run: `python -m bench.lean_passthrough --server raw|uvicorn --port P --upstream http://127.0.0.1:U`.
"""

from __future__ import annotations

import argparse
import asyncio

import httptools
import uvicorn
import uvloop
from modelplane.router.adapters.http1 import Endpoint, Http1Client

from bench.passthrough import Receive, Scope, Send, read_body, respond

COMPLETIONS_PATH = b"/v1/chat/completions"


def upstream_endpoint(upstream_url: str) -> Endpoint:
    return Endpoint(
        upstream_url.rstrip("/") + COMPLETIONS_PATH.decode(),
        {"content-type": "application/json"},
        connect_timeout_s=5,
        read_timeout_s=60,
    )


def response_bytes(status: int, body: bytes) -> bytes:
    return b"HTTP/1.1 %d OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


class RawProxyConnection(asyncio.Protocol):
    """One client connection: parse requests with httptools, forward each, write the answer."""

    def __init__(self, client: Http1Client, endpoint: Endpoint) -> None:
        self.client = client
        self.endpoint = endpoint
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.url = b""
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            if self.transport is not None:
                self.transport.close()

    def on_message_begin(self) -> None:
        self.url, self.body = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        if self.url != COMPLETIONS_PATH:
            self.write(response_bytes(200, b"{}"))
            return
        asyncio.get_running_loop().create_task(self.forward(body))

    async def forward(self, body: bytes) -> None:
        answer = await self.client.post(self.endpoint, body)
        self.write(response_bytes(answer.status, answer.body))

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve_raw(port: int, upstream_url: str) -> None:
    client, endpoint = Http1Client(), upstream_endpoint(upstream_url)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: RawProxyConnection(client, endpoint), "127.0.0.1", port
    )
    await server.serve_forever()


class MinimalAsgiProxy:
    """The same forwarding as a raw ASGI application."""

    def __init__(self, upstream_url: str) -> None:
        self.client = Http1Client()
        self.endpoint = upstream_endpoint(upstream_url)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return  # no lifespan work (uvicorn is run with lifespan="off")
        body = await read_body(receive)
        if scope["path"].encode() != COMPLETIONS_PATH:
            await respond(send, 200, b"{}")
            return
        answer = await self.client.post(self.endpoint, body)
        await respond(send, answer.status, answer.body)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--server", choices=("raw", "uvicorn"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    if args.server == "raw":
        uvloop.run(serve_raw(args.port, args.upstream))
    else:
        uvicorn.run(
            MinimalAsgiProxy(args.upstream),
            host="127.0.0.1",
            port=args.port,
            loop="uvloop",
            http="httptools",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )


if __name__ == "__main__":
    main()
