"""A pooled keep-alive HTTP/1.1 client that POSTs a body and reads the whole answer or a stream.

The router's pass-through sends one JSON POST per request to a handful of upstreams. aiohttp did
that at about a third of the router's CPU (request building, auto headers, its stream writer and
connector); this client does only what that needs, on asyncio protocols with httptools parsing,
like the benchmark's load generator:

- an `Endpoint` is a URL and fixed headers turned into the bytes of a request head once, so a
  request is one concatenation and one `transport.write`;
- connections are pooled per origin (scheme, host, port), most recently used first; an idle one
  is dropped when the server closes it (`connection_lost`) or after `idle_timeout_s`;
- https uses the default SSL context (certificate and host name checked), or one given;
- responses are framed by Content-Length, chunked encoding, or the connection closing;
- a streamed body is buffered up to `stream_buffer_bytes`, then the socket stops being read until
  the consumer catches up; a whole body is refused past `max_body_bytes`;
- timeouts bound silence, not a whole exchange, since a long generation may stream for minutes:
  connecting (TLS handshake included) may take `connect_timeout_s`, and while a response is
  awaited no more than `read_timeout_s` may pass between two reads (time the consumer keeps
  reading paused does not count);
- a connection goes back to the pool only once its response was read to the end and the server
  allows keep-alive; otherwise it is closed, since unread bytes would corrupt the next exchange.

Every failure (refused, reset, timed out, closed before or in the middle of a response, a
malformed response, an oversized body) raises `HttpClientError`.

Stale keep-alive connections: a server may close an idle connection just as it is reused, before
the close has reached this side. The request then fails with the connection closed and not one
byte of a response received, and the server never saw it, or dropped it unread. Such a failure
on a *reused* connection is retried once on a new connection, as urllib3 and Go's transport
retry a request that a stale pooled connection failed. A request on a new connection, a timeout,
a malformed response, or any failure after a response byte arrived is never retried: those may
mean the upstream received and worked on the request. Chat completions have no side effect
beyond their cost, and the router already retries a failed attempt on its next candidate; the
retry here keeps an idle-timeout race from reaching the router as a backend failure.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar, cast
from urllib.parse import urlsplit

import httptools

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_UNSAFE_IN_HEAD = re.compile(r"[\x00-\x20\x7f]")  # path: no space or control character
_UNSAFE_IN_VALUE = re.compile(r"[\x00\r\n]")
# Framing and connection management are this client's, not the caller's.
_RESERVED_HEADERS = frozenset(
    {"host", "content-length", "transfer-encoding", "connection", "accept-encoding"}
)
_NO_BODY_STATUSES = frozenset({204, 304})
# After the caller read all it wanted of a stream (an SSE stream's `[DONE]`), what remains is the
# chunked encoding's last frame: wait for that much, that long, to keep the connection.
_DRAIN_LIMIT_BYTES = 64 * 1024
_DRAIN_TIMEOUT_S = 2.0


_Answer = TypeVar("_Answer", "Response", "StreamingResponse")


class HttpClientError(Exception):
    """The exchange failed: no connection, a reset or early close, a timeout, a bad response."""


@dataclass(frozen=True, slots=True)
class Origin:
    scheme: str  # "http" or "https"
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Endpoint:
    """A URL to POST to with fixed headers; the request head is built once, here.

    Raises ValueError for a URL that is not absolute http(s), or a header that would break the
    request's framing (CR, LF or NUL in a value, a name that is not a token, or a header this
    client manages itself).
    """

    __slots__ = ("_head", "connect_timeout_s", "origin", "read_timeout_s")

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str],
        *,
        connect_timeout_s: float | None,
        read_timeout_s: float | None,
    ) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _DEFAULT_PORTS or not parts.hostname:
            raise ValueError(f"not an absolute http(s) URL: {url!r}")
        port = parts.port or _DEFAULT_PORTS[scheme]
        self.origin = Origin(scheme, parts.hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        if _UNSAFE_IN_HEAD.search(target):
            raise ValueError(f"the URL's path has a space or control character: {url!r}")
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        if port != _DEFAULT_PORTS[scheme]:
            host = f"{host}:{port}"
        lines = [f"POST {target} HTTP/1.1", f"Host: {host}"]
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name) or name.lower() in _RESERVED_HEADERS:
                raise ValueError(f"header name not allowed: {name!r}")
            if _UNSAFE_IN_VALUE.search(value):
                raise ValueError(f"header {name!r} has a CR, LF or NUL in its value")
            lines.append(f"{name}: {value}")
        # Without it a server may compress; this client passes bodies on as they are.
        lines.append("Accept-Encoding: identity")
        lines.append("Content-Length: ")
        self._head = "\r\n".join(lines).encode("latin-1")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s

    def request(self, body: bytes) -> bytes:
        return b"%s%d\r\n\r\n%s" % (self._head, len(body), body)


@dataclass(frozen=True, slots=True)
class Response:
    """A response read to its end."""

    status: int
    headers: list[tuple[bytes, bytes]]  # as received, names in their original case
    body: bytes


class Http1Client:
    """Connection pools per origin, for the event loop the client is first used on.

    After `aclose()` it still answers, but pools nothing.
    """

    def __init__(
        self,
        *,
        idle_timeout_s: float = 30.0,
        max_idle_per_origin: int = 256,
        stream_buffer_bytes: int = 256 * 1024,
        max_body_bytes: int = 64 * 1024 * 1024,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.idle_timeout_s = idle_timeout_s
        self.max_idle_per_origin = max_idle_per_origin
        self.stream_buffer_bytes = stream_buffer_bytes
        self.max_body_bytes = max_body_bytes
        self._ssl_context = ssl_context
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._closed = False

    async def post(self, endpoint: Endpoint, body: bytes) -> Response:
        """POST `body` and read the whole response."""
        return await self._send(endpoint, body, _Connection.exchange)

    async def post_streaming(self, endpoint: Endpoint, body: bytes) -> StreamingResponse:
        """POST `body` and return once the response's status and headers have arrived.

        The caller must `aclose()` the response.
        """
        return await self._send(endpoint, body, _Connection.open_stream)

    async def _send(
        self,
        endpoint: Endpoint,
        body: bytes,
        start: Callable[[_Connection, bytes, float | None], Awaitable[_Answer]],
    ) -> _Answer:
        """`start` the exchange on a pooled connection, or a new one; a pooled connection that
        turns out stale is replaced once (see the module's docstring)."""
        payload = endpoint.request(body)
        connection = self._take_idle(endpoint.origin)
        if connection is not None:
            try:
                return await start(connection, payload, endpoint.read_timeout_s)
            except HttpClientError:
                if not connection.failed_stale:
                    raise
        connection = await self._connect(endpoint)
        return await start(connection, payload, endpoint.read_timeout_s)

    @property
    def idle_connections(self) -> int:
        return sum(len(idle) for idle in self._idle.values())

    async def aclose(self) -> None:
        """Close the idle connections; connections still in use close when their response ends."""
        self._closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    # --- pool ----------------------------------------------------------------------------------

    def _take_idle(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        if not idle:
            return None
        now = idle[-1].loop.time()
        while idle:
            connection = idle.pop()  # the most recently used: the least likely to be stale
            connection.pooled = False
            if now - connection.idle_since < self.idle_timeout_s and connection.usable:
                return connection
            connection.close()
        return None

    async def _connect(self, endpoint: Endpoint) -> _Connection:
        origin = endpoint.origin
        loop = asyncio.get_running_loop()
        context: ssl.SSLContext | None = None
        if origin.scheme == "https":
            if self._ssl_context is None:
                self._ssl_context = ssl.create_default_context()
            context = self._ssl_context
        try:
            async with asyncio.timeout(endpoint.connect_timeout_s):
                _, connection = await loop.create_connection(
                    lambda: _Connection(self, origin, loop),
                    origin.host,
                    origin.port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                )
        except TimeoutError:
            raise HttpClientError(
                f"connecting to {origin} timed out after {endpoint.connect_timeout_s} s"
            ) from None
        except OSError as error:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            raise HttpClientError(f"cannot connect to {origin}: {_describe(error)}") from error
        return connection

    def release(self, connection: _Connection) -> None:
        """Pool a connection whose response was read to its end, or close it."""
        if self._closed or not connection.usable:
            connection.close()
            return
        idle = self._idle.get(connection.origin)
        if idle is None:
            idle = self._idle[connection.origin] = deque()
        if len(idle) >= self.max_idle_per_origin:
            connection.close()
            return
        connection.idle_since = connection.loop.time()
        connection.pooled = True
        idle.append(connection)
        if self._sweep is None:
            self._sweep = connection.loop.call_later(
                self.idle_timeout_s, self._close_expired, connection.loop
            )

    def forget(self, connection: _Connection) -> None:
        """Take a connection the server closed while it was idle out of its pool."""
        idle = self._idle.get(connection.origin)
        if idle is not None and connection in idle:
            idle.remove(connection)
        connection.pooled = False

    def _close_expired(self, loop: asyncio.AbstractEventLoop) -> None:
        self._sweep = None
        now = loop.time()
        oldest_left: float | None = None
        for idle in self._idle.values():
            while idle and now - idle[0].idle_since >= self.idle_timeout_s:
                expired = idle.popleft()
                expired.pooled = False
                expired.close()
            if idle and (oldest_left is None or idle[0].idle_since < oldest_left):
                oldest_left = idle[0].idle_since
        if oldest_left is not None:
            self._sweep = loop.call_at(oldest_left + self.idle_timeout_s, self._close_expired, loop)


class StreamingResponse:
    """A response whose body is read as it arrives; `aclose()` it when done."""

    __slots__ = ("_connection", "headers", "status")

    def __init__(
        self, connection: _Connection, status: int, headers: list[tuple[bytes, bytes]]
    ) -> None:
        self._connection: _Connection | None = connection
        self.status = status
        self.headers = headers

    @property
    def buffered_bytes(self) -> int:
        """Body bytes received and not read yet (bounded by the client's `stream_buffer_bytes`
        plus one socket read)."""
        return self._connection.buffered_bytes if self._connection is not None else 0

    async def read_chunk(self) -> bytes:
        """The body bytes received since the last call (waiting for some); b"" at its end."""
        connection = self._connection
        if connection is None:
            return b""
        chunk = await connection.read_chunk()
        if not chunk:
            self._connection = None  # released to the pool, or closed
        return chunk

    async def read(self) -> bytes:
        """The rest of the body (an error body, say), up to the client's `max_body_bytes`."""
        if self._connection is None:
            return b""
        limit = self._connection.client.max_body_bytes
        parts: list[bytes] = []
        size = 0
        while chunk := await self.read_chunk():
            size += len(chunk)
            if size > limit:
                await self.aclose()
                raise HttpClientError("the response body is larger than the client accepts")
            parts.append(chunk)
        return b"".join(parts)

    async def aclose(self, *, drain: bool = False) -> None:
        """Give the connection back if the body was read to its end, else close it.

        `drain=True` says the caller has read everything it wanted and only the body's framing
        can remain (the last chunk of a chunked body): it is then read in the background, within
        a small limit of bytes and time, so that the connection can still be pooled.
        """
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.end_stream(drain)


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection, carrying one exchange at a time."""

    def __init__(
        self, client: Http1Client, origin: Origin, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.client = client
        self.origin = origin
        self.loop = loop
        self.pooled = False
        self.idle_since = 0.0
        self.failed_stale = False  # the last exchange failed as a stale keep-alive connection
        self._parser = httptools.HttpResponseParser(self)
        self._transport: asyncio.Transport | None = None
        self._closed = False
        # the current exchange
        self._active = False
        self._streaming = False
        self._draining = False
        self._waiter: asyncio.Future[Response | StreamingResponse] | None = None
        self._chunk_waiter: asyncio.Future[None] | None = None
        self._received_any = False
        self._informational = False
        self._status = 0
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: deque[bytes] = deque()
        self._body_size = 0
        self._complete = False
        self._keep_alive = False
        self._error: HttpClientError | None = None
        self._paused = False
        # read timeout: one timer per connection, re-armed from the time of the last read
        self._read_timeout_s: float | None = None
        self._last_read = 0.0
        self._timer: asyncio.TimerHandle | None = None

    @property
    def usable(self) -> bool:
        transport = self._transport
        return not self._closed and transport is not None and not transport.is_closing()

    @property
    def buffered_bytes(self) -> int:
        return self._body_size

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    def _abort(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.abort()

    # --- exchanges (called by the client) --------------------------------------------------------

    def _begin(self, payload: bytes, read_timeout_s: float | None, streaming: bool) -> None:
        self._active = True
        self._streaming = streaming
        self._draining = False
        self._received_any = False
        self._informational = False
        self._status = 0
        self._headers = []
        self._body.clear()
        self._body_size = 0
        self._complete = False
        self._error = None
        self.failed_stale = False
        self._waiter = self.loop.create_future()
        self._arm_read_timeout(read_timeout_s)
        assert self._transport is not None
        try:
            self._transport.write(payload)
        except RuntimeError:  # uvloop refuses to write to a transport that is already closed
            self._fail(
                HttpClientError("the connection closed before the request was sent"),
                peer_closed=True,
            )

    async def exchange(self, payload: bytes, read_timeout_s: float | None) -> Response:
        self._begin(payload, read_timeout_s, streaming=False)
        waiter = self._waiter
        assert waiter is not None
        try:
            return cast(Response, await waiter)
        except asyncio.CancelledError:
            if self._waiter is waiter and self._active:
                self._abort()  # the response is still coming: this connection cannot be reused
            raise

    async def open_stream(self, payload: bytes, read_timeout_s: float | None) -> StreamingResponse:
        self._begin(payload, read_timeout_s, streaming=True)
        waiter = self._waiter
        assert waiter is not None
        try:
            return cast(StreamingResponse, await waiter)
        except BaseException:
            if self._waiter is waiter and self._active:
                self._abort()
            raise

    async def read_chunk(self) -> bytes:
        while True:
            if self._body:
                body = self._body
                chunk = body.popleft() if len(body) == 1 else b"".join(body)
                body.clear()
                self._body_size = 0
                if self._paused:
                    self._paused = False
                    self._last_read = self.loop.time()  # the pause was ours, not the server's
                    if self._transport is not None:
                        self._transport.resume_reading()
                return chunk
            if self._complete:
                self._finish()
                return b""
            if self._error is not None:
                raise self._error
            waiter = self._chunk_waiter = self.loop.create_future()
            try:
                await waiter
            except asyncio.CancelledError:
                self._abort()
                raise
            finally:
                self._chunk_waiter = None

    def end_stream(self, drain: bool) -> None:
        if not self._active:
            return
        self._body.clear()  # what was read in already does not hold the connection back
        self._body_size = 0
        if self._complete:
            self._finish()
        elif drain and self._error is None and self.usable:
            self._draining = True
            if self._paused:
                self._paused = False
                assert self._transport is not None
                self._transport.resume_reading()
            self._arm_read_timeout(min(self._read_timeout_s or _DRAIN_TIMEOUT_S, _DRAIN_TIMEOUT_S))
        else:
            self._active = False
            self._abort()

    def _finish(self) -> None:
        """The response was read to its end: pool the connection or close it."""
        self._active = False
        if self._keep_alive:
            self.client.release(self)
        else:
            self.close()

    def _fail(self, error: HttpClientError, *, peer_closed: bool = False) -> None:
        """End the exchange with `error`; `peer_closed`: the server closed the connection."""
        if self._error is not None or not self._active:
            return
        self._error = error
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            # only pooled connections are retried: those have carried an exchange before
            self.failed_stale = peer_closed and not self._received_any
            waiter.set_exception(error)
            self._active = False
        elif self._draining:
            self._active = False
        else:
            self._wake_reader()
        self._abort()

    def _wake_reader(self) -> None:
        reader = self._chunk_waiter
        if reader is not None and not reader.done():
            reader.set_result(None)

    # --- read timeout ----------------------------------------------------------------------------

    def _arm_read_timeout(self, timeout_s: float | None) -> None:
        self._read_timeout_s = timeout_s
        if timeout_s is None:
            return
        self._last_read = now = self.loop.time()
        timer = self._timer
        if timer is not None:
            if timer.when() <= now + timeout_s:
                return  # it fires in time and re-arms itself from the last read
            timer.cancel()
        self._timer = self.loop.call_at(now + timeout_s, self._check_read_timeout)

    def _check_read_timeout(self) -> None:
        self._timer = None
        timeout_s = self._read_timeout_s
        if not self._active or timeout_s is None:
            return
        now = self.loop.time()
        if self._paused:
            self._timer = self.loop.call_at(now + timeout_s, self._check_read_timeout)
            return
        deadline = self._last_read + timeout_s
        if now < deadline:
            self._timer = self.loop.call_at(deadline, self._check_read_timeout)
            return
        self._fail(HttpClientError(f"timed out: nothing read from {self.origin} for {timeout_s} s"))

    # --- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.pooled:
            self.client.forget(self)
        if not self._active or self._error is not None:
            return
        if self._status and not self._complete and self._ends_at_close():
            self.on_message_complete()  # a body framed by the connection closing
            return
        if not self._received_any:
            reason = "the connection closed before a response"
        elif not self._status:
            reason = "the connection closed in the middle of the response head"
        else:
            reason = "the connection closed in the middle of the response body"
        if exc is not None:
            reason += f" ({_describe(exc)})"
        self._fail(HttpClientError(reason), peer_closed=True)

    def data_received(self, data: bytes) -> None:
        if not self._active:
            self._abort()  # bytes nobody asked for: the connection's state is unknown
            return
        self._received_any = True
        self._last_read = self.loop.time()
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade) as error:
            self._fail(HttpClientError(f"malformed response from {self.origin}: {error}"))

    # --- httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        if not self._active:
            self._abort()  # a second response to one request
            return
        status = self._parser.get_status_code()
        if status < 200:
            self._informational = True  # 100 Continue and the like: the answer is yet to come
            self._headers = []
            return
        self._status = status
        if self._streaming and not self._draining:
            waiter = self._waiter
            if waiter is not None and not waiter.done():
                waiter.set_result(StreamingResponse(self, status, self._headers))

    def on_body(self, body: bytes) -> None:
        if not self._active:
            return
        if self._draining:
            self._body_size += len(body)
            if self._body_size > _DRAIN_LIMIT_BYTES:
                self._active = False
                self._abort()
            return
        self._body.append(body)
        self._body_size += len(body)
        if self._streaming:
            if self._body_size >= self.client.stream_buffer_bytes and not self._paused:
                self._paused = True
                assert self._transport is not None
                self._transport.pause_reading()
            self._wake_reader()
        elif self._body_size > self.client.max_body_bytes:
            self._fail(HttpClientError("the response body is larger than the client accepts"))

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        if not self._active:
            return
        self._complete = True
        self._keep_alive = not self._closed and self._parser.should_keep_alive()
        if self._streaming:
            if self._draining:
                self._finish()
            else:
                self._wake_reader()
            return
        waiter = self._waiter
        body = self._body
        response = Response(
            self._status, self._headers, body.popleft() if len(body) == 1 else b"".join(body)
        )
        body.clear()
        self._finish()
        if waiter is not None and not waiter.done():
            waiter.set_result(response)

    def _ends_at_close(self) -> bool:
        """Whether the response has no length and no chunked encoding: its body ends at close."""
        if self._status in _NO_BODY_STATUSES:
            return False
        for name, value in self._headers:
            lowered = name.lower()
            if lowered == b"content-length":
                return False
            if lowered == b"transfer-encoding" and b"chunked" in value.lower():
                return False
        return True


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
