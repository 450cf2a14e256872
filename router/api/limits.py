"""Limits that protect the router process itself, whoever the caller is.

Tenants' requests and tokens per minute are policy (`RouterState`); these bound what one
process takes on before it knows who is asking:

- `InFlightLimit`: at most `max_in_flight` API requests at once. The next one is answered
  `503 server_overloaded` with `Retry-After` at once, before its body is read or its key is
  hashed, so an overload sheds work instead of queueing it into timeouts and memory.
  Health, readiness and metrics are not counted and never refused: probes must see an
  overloaded router as alive.
- `bounded_http_protocol`: uvicorn's httptools protocol buffers a request's line and headers
  without limit (a 64 MB header is accepted) and waits for them, and for a body, forever (a
  client that opens connections and sends nothing, or a byte now and then, holds them all, and
  each request whose body trickles holds one of the `max_in_flight` slots: "slowloris"); this
  one answers `431` and closes the connection once the headers exceed `max_header_bytes`, and
  `408` once they have taken `header_timeout_s` (counted from the connection's opening or the
  request's first byte; between requests uvicorn's keep-alive timeout applies) or the body is
  still incomplete `body_timeout_s` after them.
"""

from __future__ import annotations

import asyncio
import enum
from itertools import chain

from modelplane.router.api.chat import error_body, send_error
from modelplane.router.errors import RouterError
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_IN_FLIGHT = 1024
DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT_S = 30.0
DEFAULT_BODY_TIMEOUT_S = 60.0
RETRY_AFTER_S = 1

UNLIMITED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class ServerOverloaded(
    RouterError,
    status=503,
    type="service_unavailable",
    code="server_overloaded",
    retry_after_s=RETRY_AFTER_S,
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
                send,
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


class HeadersTooLarge(
    RouterError, status=431, type="invalid_request_error", code="headers_too_large"
):
    """The request line and headers exceed the process's bound."""


class HeadersTooSlow(RouterError, status=408, type="invalid_request_error", code="request_timeout"):
    """The request line and headers did not arrive within the process's time bound."""


class BodyTooSlow(HeadersTooSlow):
    """The request body did not arrive within the process's time bound after its headers."""


class _Phase(enum.Enum):
    HEAD = "head"  # reading a request line and headers (or waiting for a first request)
    BODY = "body"  # the headers are in, the body is not complete
    APP = "app"  # the app has the whole request; nothing is being read


def _closing_response(status_line: bytes, error: RouterError) -> bytes:
    """A whole error response, written by the protocol itself: the app never sees the request."""
    body = error_body(error)
    return (
        b"HTTP/1.1 " + status_line + b"\r\n"
        b"content-type: application/json\r\n"
        b"connection: close\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


def bounded_http_protocol(
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S,
    body_timeout_s: float = DEFAULT_BODY_TIMEOUT_S,
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, bounding what one request may take before the app has it.

    Parsed headers are counted exactly, and refused before the app sees the request. While a
    request's headers are still incomplete, the bytes received are counted per network read,
    so no more than `max_header_bytes` plus one read are ever buffered for them. A request whose
    body is still arriving `body_timeout_s` after its headers gets 408 and its connection
    closed; the app, waiting for the rest of the body, learns that the client is gone.
    """
    if max_header_bytes < 1:
        raise ValueError("max_header_bytes must be at least 1")
    if header_timeout_s <= 0:
        raise ValueError("header_timeout_s must be positive")
    if body_timeout_s <= 0:
        raise ValueError("body_timeout_s must be positive")
    refusal = _closing_response(
        b"431 Request Header Fields Too Large",
        HeadersTooLarge(f"the request line and headers exceed {max_header_bytes} bytes"),
    )
    head_timeout = _closing_response(
        b"408 Request Timeout",
        HeadersTooSlow(f"the request line and headers took over {header_timeout_s:g} s"),
    )
    body_timeout = _closing_response(
        b"408 Request Timeout",
        BodyTooSlow(f"the request body took over {body_timeout_s:g} s after its headers"),
    )

    class BoundedHttpToolsProtocol(HttpToolsProtocol):
        _phase = _Phase.HEAD
        _phase_started = 0.0
        _received_bytes = 0  # while the headers are incomplete
        _refused = False
        # One timer per connection, not one per request: it stays armed across requests and,
        # when it fires early (it was armed for an earlier request or phase), re-arms for the
        # deadline of the phase being read, so that a keep-alive connection whose requests
        # arrive whole costs no timer per request.
        _timer: asyncio.TimerHandle | None = None
        _timer_at = 0.0

        def _refuse(self, response: bytes | None = refusal) -> None:
            self._refused, self._phase = True, _Phase.APP
            self._stop_timer()
            if response is not None:
                self.transport.write(response)
            self.transport.close()

        def _enter(self, phase: _Phase) -> None:
            self._phase = phase
            self._phase_started = self.loop.time()

        def _arm(self, deadline: float) -> None:
            if self._timer is not None:
                if self._timer_at <= deadline:
                    return
                self._timer.cancel()
            self._timer_at = deadline
            self._timer = self.loop.call_at(deadline, self._timed_out)

        def _stop_timer(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _timed_out(self) -> None:
            self._timer = None
            phase = self._phase
            if phase is _Phase.APP or self.transport.is_closing():
                return  # the next request's first byte, or a body still due, arms it again
            limit = header_timeout_s if phase is _Phase.HEAD else body_timeout_s
            deadline = self._phase_started + limit
            if self.loop.time() < deadline:
                self._arm(deadline)
            elif phase is _Phase.HEAD:
                self._refuse(head_timeout)
            else:
                # The app has this request: an answer it already began cannot be replaced.
                answered = self.cycle is not None and self.cycle.response_started
                self._refuse(None if answered else body_timeout)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._enter(_Phase.HEAD)
            self._arm(self._phase_started + header_timeout_s)

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_timer()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._refused = False
            self._received_bytes = 0
            self._enter(_Phase.HEAD)
            if self._timer is None:
                self._arm(self._phase_started + header_timeout_s)

        def on_headers_complete(self) -> None:
            # Counted from what uvicorn kept of the line and headers (names lowercased, the same
            # length), rather than in a callback per header; ": " and CRLF are 4 bytes a header.
            headers = self.headers
            header_bytes = (
                len(self.url) + sum(map(len, chain.from_iterable(headers))) + 4 * len(headers)
            )
            if header_bytes > max_header_bytes:
                self._refuse()  # before uvicorn starts the app on this request
                return
            self._enter(_Phase.BODY)
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self._refused:
                self._phase = _Phase.APP
                super().on_message_complete()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            super().data_received(data)
            phase = self._phase
            if phase is _Phase.APP or self.transport.is_closing():
                return
            if phase is _Phase.BODY:
                # Only a body that did not arrive with its headers needs the timer sooner.
                self._arm(self._phase_started + body_timeout_s)
                return
            self._received_bytes += len(data)
            if self._received_bytes > max_header_bytes:
                self._refuse()

    return BoundedHttpToolsProtocol


__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_HEADER_TIMEOUT_S",
    "DEFAULT_MAX_HEADER_BYTES",
    "DEFAULT_MAX_IN_FLIGHT",
    "InFlightLimit",
    "ServerOverloaded",
    "bounded_http_protocol",
]
