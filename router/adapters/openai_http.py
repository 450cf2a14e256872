"""Direct pass-through to upstreams that speak the OpenAI chat-completions API.

vLLM, Triton's OpenAI frontend and OpenAI itself take the client's request body as it is (with
`model` rewritten), so the router forwards bytes instead of paying LiteLLM's translation (3-4 ms
of CPU per call) on its hot path, over its own pooled HTTP/1.1 client (`http1`): aiohttp cost
about a third of the router's CPU per request here.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson
from modelplane.router.adapters.http1 import (
    Endpoint,
    Http1Client,
    HttpClientError,
    StreamingResponse,
)
from modelplane.router.adapters.upstream import (
    CompletedReply,
    StreamBroken,
    UpstreamUnavailable,
    Usage,
    is_backend_failure,
    retry_after_from,
    usage_from,
)
from modelplane.router.catalog import Upstream

_DONE = b"data: [DONE]"
_DONE_LINE = b"\n" + _DONE
_CHUNK_START = b"data: {"
_EVENT_END = b"\n\n"


class OpenAIHttpAdapter:
    """`UpstreamAdapter` over one pooled HTTP/1.1 client, created on first use.

    Connections are unbounded in number (backends bound their own load) and kept 30 s idle.
    """

    def __init__(self) -> None:
        self._client: Http1Client | None = None
        self._endpoints: dict[Upstream, Endpoint] = {}

    def _client_for_loop(self) -> Http1Client:
        if self._client is None:
            self._client = Http1Client(idle_timeout_s=30.0)
        return self._client

    def _endpoint(self, upstream: Upstream) -> Endpoint:
        endpoint = self._endpoints.get(upstream)
        if endpoint is None:
            headers = {"Content-Type": "application/json"}
            if upstream.api_key:
                headers["Authorization"] = f"Bearer {upstream.api_key}"
            try:
                endpoint = Endpoint(
                    upstream.chat_completions_url,
                    headers,
                    connect_timeout_s=upstream.timeout_s,
                    read_timeout_s=upstream.timeout_s,
                )
            except ValueError as error:  # a URL or API key that cannot make a request
                raise UpstreamUnavailable(f"misconfigured: {error}") from None
            self._endpoints[upstream] = endpoint
        return endpoint

    async def complete(self, upstream: Upstream, body: dict[str, Any]) -> CompletedReply:
        endpoint = self._endpoint(upstream)
        started = time.perf_counter()
        try:
            response = await self._client_for_loop().post(endpoint, orjson.dumps(body))
        except HttpClientError as error:
            raise UpstreamUnavailable(str(error)) from error
        ttft_ms = (time.perf_counter() - started) * 1000.0
        payload, status = response.body, response.status
        if is_backend_failure(status):
            raise UpstreamUnavailable(
                f"HTTP {status}", retry_after_s=retry_after_from(status, response.headers)
            )
        if status != 200:
            return CompletedReply(status=status, body=payload, usage=None, ttft_ms=ttft_ms)
        try:
            usage = usage_from(orjson.loads(payload))
        except orjson.JSONDecodeError as error:
            raise UpstreamUnavailable("answered 200 with a body that is not JSON") from error
        return CompletedReply(status=200, body=payload, usage=usage, ttft_ms=ttft_ms)

    async def stream(
        self, upstream: Upstream, body: dict[str, Any], client_wants_usage: bool
    ) -> _HttpStream | CompletedReply:
        endpoint = self._endpoint(upstream)
        started = time.perf_counter()
        try:
            response = await self._client_for_loop().post_streaming(endpoint, orjson.dumps(body))
        except HttpClientError as error:
            raise UpstreamUnavailable(str(error)) from error
        if response.status != 200:
            try:
                payload = await response.read()
            except HttpClientError as error:
                raise UpstreamUnavailable(str(error)) from error
            finally:
                await response.aclose()
            if is_backend_failure(response.status):
                raise UpstreamUnavailable(
                    f"HTTP {response.status}",
                    retry_after_s=retry_after_from(response.status, response.headers),
                )
            ttft_ms = (time.perf_counter() - started) * 1000.0
            return CompletedReply(status=response.status, body=payload, usage=None, ttft_ms=ttft_ms)
        stream = _HttpStream(response, client_wants_usage)
        try:
            await stream.read_first_events()
        except StreamBroken as error:
            await stream.aclose()
            raise UpstreamUnavailable(str(error)) from error
        stream.ttft_ms = (time.perf_counter() - started) * 1000.0
        return stream

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class _HttpStream:
    """An upstream SSE stream, cut at event boundaries so that no event is ever split."""

    def __init__(self, response: StreamingResponse, client_wants_usage: bool) -> None:
        self._response = response
        self._client_wants_usage = client_wants_usage
        self._pending = b""
        self._first: bytes = b""
        self._done = False
        self._usage: Usage | None = None
        self._chunks_relayed = 0
        self.ttft_ms = 0.0

    @property
    def usage(self) -> Usage | None:
        return self._usage

    @property
    def chunks_relayed(self) -> int:
        return self._chunks_relayed

    async def read_first_events(self) -> None:
        while not self._first:
            self._first = await self._next_events()
            if self._done and not self._first:
                break

    async def events(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
            self._first = b""
        while not self._done:
            events = await self._next_events()
            if events:
                yield events

    async def _next_events(self) -> bytes:
        """The complete events of the next network read, with the usage chunk taken out."""
        try:
            chunk = await self._response.read_chunk()
        except HttpClientError as error:
            raise StreamBroken(str(error)) from error
        if not chunk:
            raise StreamBroken("the upstream closed the stream before [DONE]")
        data = self._pending + chunk
        held = b""
        if b"\r" in data:
            # SSE lets a line end in CRLF (sse-starlette's default); JSON never holds a raw CR,
            # so every CR is framing. A CR that ends the read may be half of a CRLF: held back.
            if data.endswith(b"\r"):
                data, held = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n")
        cut = data.rfind(_EVENT_END)
        if cut < 0:
            self._pending = data + held
            return b""
        complete, self._pending = data[: cut + 2], data[cut + 2 :] + held
        # The end is an event of its own: `data: [DONE]` at the start of a line, never the same
        # text inside a chunk's JSON (which cannot hold a raw newline).
        if complete.startswith(_DONE) or _DONE_LINE in complete:
            self._done = True
        self._chunks_relayed += complete.count(_CHUNK_START)
        if b'"usage"' in complete:
            complete = self._take_usage(complete)
        return complete

    def _take_usage(self, complete: bytes) -> bytes:
        """Record the usage the events report, and leave out a usage-only event the client did
        not ask for."""
        if b"\n\n\n" in complete or complete.startswith(_EVENT_END):
            return self._take_usage_by_split(complete)  # empty events: dropped, as split reads
        return self._take_usage_at_marks(complete)

    def _take_usage_by_split(self, complete: bytes) -> bytes:
        kept: list[bytes] = []
        for event in complete.split(_EVENT_END):
            if not event:
                continue
            if b'"usage"' in event and self._read_usage(event):
                continue  # asked for by the router for spend, not by the client
            kept.append(event + _EVENT_END)
        return b"".join(kept)

    def _take_usage_at_marks(self, complete: bytes) -> bytes:
        """`_take_usage` for events that no blank line separates twice (the usual case): only
        the events that mention usage are read, the others are passed on as they are."""
        kept: list[bytes] = []
        passed_on = 0  # complete[passed_on:] is yet to be passed on
        mark = complete.find(b'"usage"')
        while mark >= 0:
            boundary = complete.rfind(_EVENT_END, 0, mark)
            start = 0 if boundary < 0 else boundary + 2
            end = complete.find(_EVENT_END, mark)  # `complete` ends with one
            if self._read_usage(complete[start:end]):
                kept.append(complete[passed_on:start])
                passed_on = end + 2
            mark = complete.find(b'"usage"', end + 2)
        if not kept:
            return complete
        kept.append(complete[passed_on:])
        return b"".join(kept)

    def _read_usage(self, event: bytes) -> bool:
        """Take the usage of an event that mentions it; whether to leave the event out."""
        if not event.startswith(b"data: "):
            return False
        try:
            payload = orjson.loads(event[6:])
        except orjson.JSONDecodeError:
            payload = None
        usage = usage_from(payload)
        if usage is None:
            return False
        self._usage = usage
        usage_only = isinstance(payload, dict) and not payload.get("choices")
        return usage_only and not self._client_wants_usage

    async def aclose(self) -> None:
        # after [DONE] only the chunked body's last frame can remain: read it in the background
        # so the connection goes back to the pool; otherwise the generation is abandoned
        await self._response.aclose(drain=self._done)
