"""The Prometheus exposition on a port of its own (`serve --metrics-port`).

On the API's port, `/metrics` needs no key (scrapers expect none) and shows tenant names and
remaining budgets to anyone who can call the API. On its own port, a NetworkPolicy can let only
Prometheus reach it while clients keep the API port. One request per connection, read with a
time and size bound, answered in the event loop: a scrape every few seconds is all it serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

log = logging.getLogger(__name__)

METRICS_PATH = b"/metrics"
# The Prometheus text exposition format, as `/metrics` answers it on either port.
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READ_TIMEOUT_S = 5.0
MAX_HEAD_BYTES = 8 * 1024


class MetricsListener:
    """Serves `GET /metrics` (and HEAD) on `host:port` with what `render` returns."""

    def __init__(self, render: Callable[[], bytes], host: str, port: int) -> None:
        self._render = render
        self.host = host
        self.port = port
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._serve, self.host, self.port, limit=MAX_HEAD_BYTES
        )
        if self.port == 0:  # an ephemeral port, for tests: report the one the kernel chose
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("metrics on http://%s:%d/metrics", self.host, self.port)

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
            writer.write(self._answer(head))
            await asyncio.wait_for(writer.drain(), READ_TIMEOUT_S)
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            ConnectionError,
        ):
            pass  # a scraper that is slow, gone or not speaking HTTP gets nothing more
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    def _answer(self, head: bytes) -> bytes:
        method, _, rest = head.partition(b" ")
        target = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if target != METRICS_PATH:
            return _response(b"404 Not Found", b"text/plain", b"only /metrics is served here\n")
        if method not in (b"GET", b"HEAD"):
            return _response(b"405 Method Not Allowed", b"text/plain", b"GET /metrics\n")
        body = self._render()
        content_type = PROMETHEUS_CONTENT_TYPE.encode()
        return _response(b"200 OK", content_type, body, send_body=method == b"GET")


def _response(status: bytes, content_type: bytes, body: bytes, *, send_body: bool = True) -> bytes:
    head = (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: " + content_type + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\nconnection: close\r\n\r\n"
    )
    return head + body if send_body else head


__all__ = ["PROMETHEUS_CONTENT_TYPE", "MetricsListener"]
