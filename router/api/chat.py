"""`POST /v1/chat/completions` as a raw ASGI endpoint.

This is the router's hot path, so it skips the framework: no middleware stack, no request
object, no dependency injection, no response classes; headers are read from the scope and bytes
written to `send`. Everything else (`/v1/models`, `/v1/route/explain`, health) is an ordinary
FastAPI route.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
from modelplane.router.adapters.upstream import CompletedReply, StreamBroken
from modelplane.router.errors import RouterError
from modelplane.router.service import (
    RoutedRequest,
    RouterService,
    ServedReply,
    parse_chat_request,
    parse_data_class,
)
from starlette.types import Message, Receive, Scope, Send

log = logging.getLogger(__name__)

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
# A 12 MB image fits base64-encoded; every request in flight may hold this much twice (the
# bytes and their parsed JSON), so the default stays well below what one pod's memory allows.
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024

_JSON = (b"content-type", b"application/json")
_EVENT_STREAM = (b"content-type", b"text/event-stream")
_NO_CACHE = (b"cache-control", b"no-cache")
_CLOSE = (b"connection", b"close")
_NO_RETRY = (b"x-should-retry", b"false")
# Adapters end `events()` after this event (see `StreamingReply`).
_LAST_EVENT = b"data: [DONE]\n\n"


class PayloadTooLarge(RouterError):
    status = 413
    type = "invalid_request_error"
    code = "payload_too_large"


def error_body(error: RouterError) -> bytes:
    # `param` (the offending request field) is always present in OpenAI's errors, if null.
    return orjson.dumps(
        {"error": {"message": error.message, "type": error.type, "param": None, "code": error.code}}
    )


async def send_error(send: Send, error: RouterError) -> None:
    body = error_body(error)
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if isinstance(error, PayloadTooLarge):
        headers.append(_CLOSE)  # the rest of the body goes unread: stop the client sending it
    if (retry_after := error.retry_after_header) is not None:
        headers.append((b"retry-after", retry_after))
    elif error.retrying_cannot_help:
        headers.append(_NO_RETRY)
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def routing_headers(routed: RoutedRequest, served: ServedReply) -> list[tuple[bytes, bytes]]:
    decision = routed.decision_header
    if served.failed_before:
        decision = ",".join(
            filter(None, (decision, "fallback_after=" + "+".join(served.failed_before)))
        )
    headers = [
        (b"x-modelplane-backend", served.backend.name.encode()),
        (b"x-modelplane-data-class", routed.decision.data_class.value.encode()),
        (b"x-modelplane-decision", decision.encode("ascii", "replace")),
    ]
    if routed.trace is not None:
        # The request's trace id: the key to its audit line and spans (OpenAI's SDKs keep it as
        # the response's `_request_id`).
        headers.append((b"x-request-id", b"%032x" % routed.trace.trace_id))
    return headers


def content_length(value: bytes | str | None) -> int | None:
    """A Content-Length header's value, or None when there is none (chunked) or it is no number."""
    return int(value) if value is not None and value.isdigit() else None


async def read_body(receive: Receive, limit: int, declared: int | None = None) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes.

    A declared length over the limit is refused before any of the body is read; a chunked body
    is counted as it arrives, so no more than `limit` bytes and one chunk are ever held.
    """
    if declared is not None and declared > limit:
        raise PayloadTooLarge(f"the request body ({declared} bytes) exceeds {limit} bytes")
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body exceeds {limit} bytes")
        parts.append(chunk)
        if not message.get("more_body", False):
            return parts[0] if len(parts) == 1 else b"".join(parts)


class ChatCompletionsEndpoint:
    """ASGI endpoint for POST /v1/chat/completions."""

    def __init__(
        self, service: RouterService, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    ) -> None:
        self.service = service
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        service = self.service
        authorization: str | None = None
        declared: str | None = None
        length: int | None = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"x-modelplane-data-class":
                # Every copy counts (the most restrictive wins), not just the last one.
                text = value.decode("latin-1")
                declared = text if declared is None else f"{declared},{text}"
            elif name == b"content-length":
                length = content_length(value)
        telemetry = service.telemetry
        trace = None
        try:
            # Before the body: a request with a wrong key costs one hash, whatever it sends.
            tenant, catalog = service.authenticate(authorization)
            request = parse_chat_request(await read_body(receive, self.max_body_bytes, length))
            if telemetry is not None:
                trace = telemetry.start_request(
                    tenant.name, request.model, request.stream, request.body
                )
            routed = await service.decide(
                tenant, catalog, request, parse_data_class(declared), trace=trace
            )
            await service.admit(routed)
            served = await service.send(routed)
        except RouterError as error:
            if trace is not None:
                trace.fail(error.code, error.status, error.message)
            await send_error(send, error)
            return
        except Exception:
            # A bug, not bad input; still answer in the format clients parse, rather than with
            # the server's bare text 500.
            log.exception("chat completion failed before its answer started")
            if trace is not None:
                trace.fail("internal_error", 500, "internal error")
            await send_error(send, RouterError("internal error; see the router's log"))
            return
        try:
            if isinstance(served.reply, CompletedReply):
                await self._send_completed(send, routed, served, served.reply)
            else:
                await self._send_stream(receive, send, routed, served)
        finally:
            await served.finish()

    async def _send_completed(
        self, send: Send, routed: RoutedRequest, served: ServedReply, reply: CompletedReply
    ) -> None:
        headers = routing_headers(routed, served)
        headers.append(_JSON)
        headers.append((b"content-length", str(len(reply.body)).encode()))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        await send({"type": "http.response.body", "body": reply.body})

    async def _send_stream(
        self, receive: Receive, send: Send, routed: RoutedRequest, served: ServedReply
    ) -> None:
        reply = served.reply
        assert not isinstance(reply, CompletedReply)
        headers = routing_headers(routed, served)
        headers.append(_EVENT_STREAM)
        headers.append(_NO_CACHE)
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # uvicorn drops writes to a closed connection silently; watching `receive` is how we
        # learn the client left, so the upstream generation can be stopped instead of finished.
        # The watcher (a task) is started once there is something to wait for: a stream whose
        # first read already holds its end, as a short or fast answer's does, needs none.
        disconnected: asyncio.Future[None] | None = None
        try:
            async for events in reply.events():
                await send({"type": "http.response.body", "body": events, "more_body": True})
                if disconnected is None:
                    if not events.endswith(_LAST_EVENT):
                        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
                elif disconnected.done():
                    await served.finish(stream_broken=False)
                    return
        except StreamBroken as error:
            log.warning(
                "stream from %s broke after its first event: %s", served.backend.name, error
            )
            await send(
                {
                    "type": "http.response.body",
                    "body": _stream_error_events(served.backend.name, str(error)),
                    "more_body": True,
                }
            )
            await served.finish(stream_broken=True)
        finally:
            if disconnected is not None:
                disconnected.cancel()
        await send({"type": "http.response.body", "body": b""})


async def _wait_for_disconnect(receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return


def _stream_error_events(backend: str, detail: str) -> bytes:
    error = {
        "error": {
            "message": f"the upstream {backend} failed mid-stream: {detail}",
            "type": "upstream_error",
            "code": "stream_interrupted",
        }
    }
    return b"data: " + orjson.dumps(error) + b"\n\ndata: [DONE]\n\n"


__all__ = [
    "CHAT_COMPLETIONS_PATH",
    "DEFAULT_MAX_BODY_BYTES",
    "ChatCompletionsEndpoint",
    "PayloadTooLarge",
    "content_length",
    "error_body",
    "read_body",
    "send_error",
]
