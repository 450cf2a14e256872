"""The metrics listener serves the exposition on its own port and nothing else, with bounds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from modelplane.router.adapters.metrics_listener import READ_TIMEOUT_S, MetricsListener

EXPOSITION = b"# TYPE modelplane_requests counter\nmodelplane_requests_total 3.0\n"


async def exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    return answer


@pytest.fixture
async def listener() -> AsyncIterator[MetricsListener]:
    listener = MetricsListener(lambda: EXPOSITION, "127.0.0.1", 0)
    await listener.start()
    yield listener
    await listener.aclose()


async def test_get_metrics_answers_the_exposition_and_closes(listener: MetricsListener) -> None:
    answer = await exchange(listener.port, b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert b"content-type: text/plain; version=0.0.4" in head
    assert b"connection: close" in head
    assert body == EXPOSITION


async def test_head_metrics_answers_without_a_body(listener: MetricsListener) -> None:
    answer = await exchange(listener.port, b"HEAD /metrics HTTP/1.1\r\n\r\n")

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert f"content-length: {len(EXPOSITION)}".encode() in head
    assert body == b""


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /v1/models HTTP/1.1\r\n\r\n", b"404"),
        (b"GET / HTTP/1.1\r\n\r\n", b"404"),
        (b"POST /metrics HTTP/1.1\r\ncontent-length: 0\r\n\r\n", b"405"),
    ],
)
async def test_anything_but_reading_metrics_is_refused(
    listener: MetricsListener, request_bytes: bytes, status: bytes
) -> None:
    answer = await exchange(listener.port, request_bytes)

    assert answer.startswith(b"HTTP/1.1 " + status)
    assert EXPOSITION not in answer


async def test_a_head_over_the_size_bound_is_dropped_unanswered(
    listener: MetricsListener,
) -> None:
    answer = await exchange(listener.port, b"GET /metrics HTTP/1.1\r\nx: " + b"a" * 20000)

    assert answer == b""


async def test_a_client_that_sends_nothing_is_disconnected_after_the_read_timeout(
    listener: MetricsListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("modelplane.router.adapters.metrics_listener.READ_TIMEOUT_S", 0.2)
    reader, writer = await asyncio.open_connection("127.0.0.1", listener.port)
    try:
        closed = await asyncio.wait_for(reader.read(), timeout=READ_TIMEOUT_S + 5)
    finally:
        writer.close()
    assert closed == b""


async def test_a_taken_port_fails_at_start() -> None:
    first = MetricsListener(lambda: EXPOSITION, "127.0.0.1", 0)
    await first.start()
    try:
        with pytest.raises(OSError, match="in use"):
            await MetricsListener(lambda: EXPOSITION, "127.0.0.1", first.port).start()
    finally:
        await first.aclose()
