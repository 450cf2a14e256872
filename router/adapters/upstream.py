"""What the router needs from an upstream call, whatever the adapter behind it.

An adapter either answers (`CompletedReply`, `StreamingReply`) or raises `UpstreamUnavailable`
for a failure of the backend, worth retrying on the next candidate: a connect error, a timeout,
or a status that `is_backend_failure` names. Any other client error from the upstream (400, 413,
422, ...) is about the request itself: it is an answer, passed back unchanged.

A `StreamingReply` is returned only once its first event has arrived; after that point a failure
surfaces as `StreamBroken` from the iteration and the router ends the client's stream with an
error event instead of trying another backend.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import math
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from modelplane.router.catalog import Upstream


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


def usage_from(payload: Any) -> Usage | None:
    """The `usage` block of an OpenAI response or chunk, if it has one."""
    if not isinstance(payload, dict):
        return None
    usage = payload.get("usage")
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return Usage(
        input_tokens=prompt if isinstance(prompt, int) else 0,
        output_tokens=completion if isinstance(completion, int) else 0,
    )


# 4xx statuses an upstream answers for reasons of its own, whatever the request: the router's
# credentials for it refused (401, 403; an expired or rotated provider key), the model name the
# catalog gives it unknown there (404), its own timeout (408), its rate limit (429). Passing them
# on would tell a client that its own key or model is wrong, and keep it from a backend that works.
_BACKEND_CLIENT_ERRORS = frozenset({401, 403, 404, 408, 429})


def is_backend_failure(status: int) -> bool:
    """Whether an upstream's HTTP status means the backend failed, rather than the request."""
    return status >= 500 or status in _BACKEND_CLIENT_ERRORS


class UpstreamUnavailable(Exception):
    """The attempt failed before anything reached the client; another backend may be tried.

    `retry_after_s` is how long the backend asked not to be called again (its `Retry-After` on a
    429 or 503), so that every router replica leaves it alone for that long.
    """

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


# An upstream may ask for any wait; past this the router's own cooldown takes over, so one
# answer cannot take a backend out for hours.
MAX_RETRY_AFTER_S = 300.0
# RFC 9110 gives Retry-After a meaning on these; elsewhere it is ignored.
_RETRY_AFTER_STATUSES = frozenset({429, 503})


def retry_after_from(status: int, headers: Iterable[tuple[bytes, bytes]]) -> float | None:
    """The wait an upstream's 429 or 503 asks for: `retry-after-ms` (OpenAI's), `retry-after`
    as seconds or as an HTTP date; None when absent, unreadable or not in the future."""
    if status not in _RETRY_AFTER_STATUSES:
        return None
    seconds = None
    for raw_name, raw_value in headers:
        name = raw_name.lower()
        value = raw_value.decode("latin-1").strip()
        if name == b"retry-after-ms":
            with contextlib.suppress(ValueError):
                seconds = float(value) / 1000.0
                break
        elif name == b"retry-after" and seconds is None:
            seconds = _retry_after_value(value)
    if seconds is None or not math.isfinite(seconds) or seconds <= 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def _retry_after_value(value: str) -> float | None:
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # an HTTP date is always GMT
        when = when.replace(tzinfo=datetime.UTC)
    return when.timestamp() - time.time()


class StreamBroken(Exception):
    """The upstream stream failed after its first event."""


@dataclass(frozen=True, slots=True)
class CompletedReply:
    status: int
    body: bytes  # JSON
    usage: Usage | None
    ttft_ms: float


class StreamingReply(Protocol):
    ttft_ms: float

    def events(self) -> AsyncIterator[bytes]:
        """Complete SSE events (each ending in a blank line), the first one included.

        Ends after `data: [DONE]`; raises StreamBroken if the upstream fails first.
        """
        ...

    @property
    def usage(self) -> Usage | None:
        """Token usage reported by the upstream; known once `events` is exhausted."""
        ...

    @property
    def chunks_relayed(self) -> int:
        """Completion chunks passed on so far: what the output is charged by when the stream
        ends without its usage (the client left, or the upstream broke or ignored
        `include_usage`). Servers stream about one token per chunk."""
        ...

    async def aclose(self) -> None: ...


class UpstreamAdapter(Protocol):
    async def complete(self, upstream: Upstream, body: dict[str, Any]) -> CompletedReply:
        """Send a non-streamed chat completion; `body` already names the upstream's model."""
        ...

    async def stream(
        self, upstream: Upstream, body: dict[str, Any], client_wants_usage: bool
    ) -> StreamingReply | CompletedReply:
        """Open a streamed chat completion; a CompletedReply is an upstream client error."""
        ...

    async def aclose(self) -> None: ...
