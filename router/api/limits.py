"""Limits that protect the router process itself, whoever the caller is.

Tenants' requests and tokens per minute are policy (`RouterState`); these bound what one
process takes on before it knows who is asking:

- `InFlightLimit`: at most `max_in_flight` API requests at once. The next one is answered
  `503 server_overloaded` with `Retry-After` at once, before its body is read or its key is
  hashed, so an overload sheds work instead of queueing it into timeouts and memory.
  Health, readiness and metrics are not counted and never refused: probes must see an
  overloaded router as alive.
- `header_bounded_protocol`: uvicorn's httptools protocol buffers a request's line and headers
  without limit (a 64 MB header is accepted) and waits for them forever (a client that opens
  connections and sends nothing, or a byte now and then, holds them all: "slowloris"); this one
  answers `431` and closes the connection once they exceed `max_header_bytes`, and `408` once
  they have taken `header_timeout_s` (counted from the connection's opening or the request's
  first byte; between requests uvicorn's keep-alive timeout applies).
"""

from __future__ import annotations

import asyncio
from itertools import chain

from modelplane.router.api.chat import error_body, send_error
from modelplane.router.errors import RouterError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_IN_FLIGHT = 1024
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT_S = 30.0
RETRY_AFTER_S = 1

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ServerOverloaded(
    RouterError, status=503, type="service_unavailable", code="server_overloaded"
):
    """The process already serves its maximum of requests in flight; retry shortly."""


class InFlightLimit:
    """ASGI wrapper admitting at most `max_in_flight` requests outside `UNLIMITED_PATHS`."""

    def __init__(self, app: ASGIApp, max_in_flight: int = DEFAULT_MAX_IN_FLIGHT) -> None:
        if max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self.app = app
        self.max_in_flight = max_in_flight
        self.in_flight = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in UNLIMITED_PATHS:
            await self.app(scope, receive, send)
            return
        if self.in_flight >= self.max_in_flight:
            await send_error(
                _with_retry_after(send),
                ServerOverloaded(
                    f"the router is serving its maximum of {self.max_in_flight} requests; "
                    f"retry in {RETRY_AFTER_S} s"
                ),
            )
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1


def _with_retry_after(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", ()), (b"retry-after", str(RETRY_AFTER_S).encode())]
            message = {**message, "headers": headers}
        await send(message)

    return sending


class HeadersTooLarge(
    RouterError, status=431, type="invalid_request_error", code="headers_too_large"
):
    """The request line and headers exceed the process's bound."""


class HeadersTooSlow(RouterError, status=408, type="invalid_request_error", code="request_timeout"):
    """The request line and headers did not arrive within the process's time bound."""


def _closing_response(status_line: bytes, error: RouterError) -> bytes:
    """A whole error response, written by the protocol itself: the app never sees the request."""
    body = error_body(error)
    return (
        b"HTTP/1.1 " + status_line + b"\r\n"
        b"content-type: application/json\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def header_bounded_protocol(
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, refusing requests whose line and headers exceed the bounds.

    Parsed headers are counted exactly, and refused before the app sees the request. While a
    request's headers are still incomplete, the bytes received are counted per network read,
    so no more than `max_header_bytes` plus one read are ever buffered for them.
    """
    if max_header_bytes < 1:
        raise ValueError("max_header_bytes must be at least 1")
    if header_timeout_s <= 0:
        raise ValueError("header_timeout_s must be positive")
    refusal = _closing_response(
        b"431 Request Header Fields Too Large",
        HeadersTooLarge(f"the request line and headers exceed {max_header_bytes} bytes"),
    )
    timeout = _closing_response(
        b"408 Request Timeout",
        HeadersTooSlow(f"the request line and headers took over {header_timeout_s:g} s"),
    )

    class HeaderBoundedHttpToolsProtocol(HttpToolsProtocol):
        _reading_headers = True
        _received_bytes = 0  # while the headers are incomplete
        _refused = False
        # One timer per connection, not one per request: it stays armed across requests and,
        # when it fires early (it was armed for an earlier request), re-arms for the deadline
        # of the request being read, so that a keep-alive connection costs no timer per request.
        _head_started = 0.0
        _head_timer: asyncio.TimerHandle | None = None

        def _refuse(self, response: bytes = refusal) -> None:
            self._refused, self._reading_headers = True, False
            self._stop_head_timer()
            self.transport.write(response)
            self.transport.close()

        def _start_head_timer(self) -> None:
            self._head_started = now = self.loop.time()
            if self._head_timer is None:
                self._head_timer = self.loop.call_at(now + header_timeout_s, self._head_timed_out)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_timed_out(self) -> None:
            self._head_timer = None
            if not self._reading_headers or self.transport.is_closing():
                return  # the next request's first byte arms it again
            deadline = self._head_started + header_timeout_s
            if self.loop.time() < deadline:
                self._head_timer = self.loop.call_at(deadline, self._head_timed_out)
            else:
                self._refuse(timeout)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._start_head_timer()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._reading_headers, self._refused = True, False
            self._received_bytes = 0
            self._start_head_timer()

        def on_headers_complete(self) -> None:
            self._reading_headers = False
            # Counted from what uvicorn kept of the line and headers (names lowercased, the same
            # length), rather than in a callback per header; ": " and CRLF are 4 bytes a header.
            headers = self.headers
            header_bytes = (
                len(self.url) + sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
            )
            if header_bytes > max_header_bytes:
                self._refuse()  # before uvicorn starts the app on this request
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._refused:
                super().on_message_complete()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            if not self._reading_headers or self.transport.is_closing():
                return
            self._received_bytes += len(data)
            if self._received_bytes > max_header_bytes:
                self._refuse()

    return HeaderBoundedHttpToolsProtocol


__all__ = [
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_IN_FLIGHT",
    "InFlightLimit",
    "ServerOverloaded",
    "header_bounded_protocol",
]
