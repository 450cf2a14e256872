"""The router's HTTP/1.1 client against loopback servers on 127.0.0.1.

`LoopbackUpstream` plays a real OpenAI-compatible upstream; `RawServer` writes exact bytes, so
that chunked and close-delimited bodies, early closes, slow or stalled servers, `Connection:
close`, informational responses, malformed heads and huge bodies can be produced on purpose.
"""

from __future__ import annotations

import asyncio
import re
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
import pytest
import trustme
from modelplane.router.adapters.http1 import (
    Endpoint,
    Http1Client,
    HttpClientError,
    StreamingResponse,
)

from modelplane.testing.upstream import LoopbackUpstream

pytestmark = pytest.mark.timeout(30)

CHAT = orjson.dumps({"model": "llama-3-8b", "messages": [{"role": "user", "content": "hi"}]})
STREAM_CHAT = orjson.dumps(
    {
        "model": "llama-3-8b",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
)

# A handler answers request number `index` (counted over the server's life) on `writer`;
# it returns whether the connection should go on serving requests.
Handler = Callable[[int, asyncio.StreamWriter], Awaitable[bool]]


class RawServer:
    """Reads each request on a connection and lets a handler write whatever bytes it likes."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.closed_connections = 0
        self.requests: list[bytes] = []
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat/completions"

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                    match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
                    body = await reader.readexactly(int(match.group(1)) if match else 0)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                index = len(self.requests)
                self.requests.append(head + body)
                if not await self.handler(index, writer):
                    return
        finally:
            self.closed_connections += 1
            self._writers.discard(writer)
            writer.close()


def answer(body: bytes, *extra_headers: bytes) -> bytes:
    head = [
        b"HTTP/1.1 200 OK",
        b"content-type: application/json",
        b"content-length: %d" % len(body),
    ]
    return b"\r\n".join([*head, *extra_headers]) + b"\r\n\r\n" + body


def chunked(*chunks: bytes) -> bytes:
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    return head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


async def answer_ok(index: int, writer: asyncio.StreamWriter) -> bool:
    writer.write(answer(b'{"n": %d}' % index))
    return True


def endpoint(url: str, *, timeout_s: float | None = 5.0, **headers: str) -> Endpoint:
    return Endpoint(
        url,
        {"Content-Type": "application/json", **headers},
        connect_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
    )


async def eventually(condition: Callable[[], bool], *, seconds: float = 3.0) -> bool:
    for _ in range(int(seconds / 0.01)):
        if condition():
            return True
        await asyncio.sleep(0.01)
    return condition()


@pytest.fixture
async def client() -> AsyncIterator[Http1Client]:
    http = Http1Client()
    yield http
    await http.aclose()


@pytest.fixture
async def upstream() -> AsyncIterator[LoopbackUpstream]:
    async with LoopbackUpstream() as server:
        yield server


async def read_all(response: StreamingResponse) -> bytes:
    parts = []
    for _ in range(10_000):
        chunk = await response.read_chunk()
        if not chunk:
            return b"".join(parts)
        parts.append(chunk)
    raise AssertionError("the stream did not end")


# --- requests and answers ---------------------------------------------------------------------


async def test_post_reads_a_completion_and_sends_the_endpoint_headers(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    target = endpoint(f"{upstream.base_url}/chat/completions", Authorization="Bearer sk-1")

    response = await client.post(target, CHAT)

    assert response.status == 200
    assert orjson.loads(response.body)["choices"][0]["message"]["content"]
    assert (b"content-type", b"application/json") in response.headers
    received = upstream.received[0]
    assert received.body["messages"] == [{"role": "user", "content": "hi"}]
    assert received.headers["authorization"] == "Bearer sk-1"
    assert received.headers["content-type"] == "application/json"
    assert received.headers["host"] == f"127.0.0.1:{upstream.port}"
    assert received.headers["accept-encoding"] == "identity"


async def test_an_error_status_is_an_answer_not_a_failure(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    upstream.faults.status = 503

    response = await client.post(endpoint(f"{upstream.base_url}/chat/completions"), CHAT)

    assert response.status == 503
    assert orjson.loads(response.body)["error"]["message"] == "injected fault"


async def test_sequential_requests_share_one_keep_alive_connection(client: Http1Client) -> None:
    async with RawServer(answer_ok) as server:
        bodies = [(await client.post(endpoint(server.url), CHAT)).body for _ in range(5)]

    assert bodies == [b'{"n": %d}' % n for n in range(5)]
    assert server.connections == 1


async def test_concurrent_requests_open_one_connection_each_then_reuse_them(
    client: Http1Client,
) -> None:
    async def slow_ok(index: int, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        writer.write(answer(b"{}"))
        return True

    async with RawServer(slow_ok) as server:
        target = endpoint(server.url)
        await asyncio.gather(*(client.post(target, CHAT) for _ in range(4)))
        assert client.idle_connections == 4
        await asyncio.gather(*(client.post(target, CHAT) for _ in range(4)))

    assert server.connections == 4


async def test_a_chunked_response_is_read_whole(client: Http1Client) -> None:
    async def chunked_ok(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(chunked(b'{"a"', b": 1", b"}"))
        return True

    async with RawServer(chunked_ok) as server:
        response = await client.post(endpoint(server.url), CHAT)
        again = await client.post(endpoint(server.url), CHAT)

    assert response.body == again.body == b'{"a": 1}'
    assert server.connections == 1


async def test_a_body_without_length_ends_when_the_server_closes(client: Http1Client) -> None:
    async def close_delimited(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"whole":')
        await writer.drain()
        writer.write(b" true}")
        return False

    async with RawServer(close_delimited) as server:
        response = await client.post(endpoint(server.url), CHAT)

        assert response.body == b'{"whole": true}'
        assert client.idle_connections == 0


async def test_connection_close_is_honoured_and_the_next_request_reconnects(
    client: Http1Client,
) -> None:
    async def answer_and_close(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"{}", b"connection: close"))
        return False

    async with RawServer(answer_and_close) as server:
        for _ in range(3):
            assert (await client.post(endpoint(server.url), CHAT)).status == 200
            assert client.idle_connections == 0

    assert server.connections == 3


async def test_an_informational_response_is_skipped(client: Http1Client) -> None:
    async def continue_then_ok(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        writer.write(answer(b'{"final": true}'))
        return True

    async with RawServer(continue_then_ok) as server:
        response = await client.post(endpoint(server.url), CHAT)

    assert response.status == 200
    assert response.body == b'{"final": true}'


async def test_a_huge_body_is_read_whole(client: Http1Client) -> None:
    huge = b"x" * (8 * 1024 * 1024)

    async def send_huge(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(huge))
        return True

    async with RawServer(send_huge) as server:
        response = await client.post(endpoint(server.url), CHAT)

    assert response.body == huge


async def test_a_body_over_the_limit_is_refused() -> None:
    client = Http1Client(max_body_bytes=1000)

    async def send_big(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"x" * 5000))
        return True

    async with RawServer(send_big) as server:
        with pytest.raises(HttpClientError, match="larger than"):
            await client.post(endpoint(server.url), CHAT)
    await client.aclose()


async def test_a_large_request_body_is_sent_whole(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    content = "y" * (4 * 1024 * 1024)
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": content}]})

    response = await client.post(endpoint(f"{upstream.base_url}/chat/completions"), body)

    assert response.status == 200
    assert upstream.received[0].body["messages"][0]["content"] == content


# --- streams ----------------------------------------------------------------------------------


async def test_a_stream_is_read_to_its_end_and_its_connection_pooled(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    target = endpoint(f"{upstream.base_url}/chat/completions")

    response = await client.post_streaming(target, STREAM_CHAT)
    body = await read_all(response)
    await response.aclose()

    assert response.status == 200
    assert (b"content-type", b"text/event-stream") in response.headers
    assert body.endswith(b"data: [DONE]\n\n")
    assert b'"usage"' in body
    assert client.idle_connections == 1


async def test_a_stream_error_status_is_read_like_a_whole_body(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    upstream.faults.status = 429

    response = await client.post_streaming(
        endpoint(f"{upstream.base_url}/chat/completions"), STREAM_CHAT
    )
    body = await response.read()
    await response.aclose()

    assert response.status == 429
    assert orjson.loads(body)["error"]["message"] == "injected fault"
    assert client.idle_connections == 1


async def test_a_stream_cut_mid_body_raises_after_the_events_already_received(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    upstream.faults.fail_stream_after_events = 2
    response = await client.post_streaming(
        endpoint(f"{upstream.base_url}/chat/completions"), STREAM_CHAT
    )

    received: list[bytes] = []

    async def read_into_received() -> None:
        for _ in range(100):
            received.append(await response.read_chunk())

    with pytest.raises(HttpClientError, match="middle of the response body"):
        await read_into_received()
    await response.aclose()

    assert b"".join(received).count(b"data: ") == 2
    assert client.idle_connections == 0


async def test_a_stream_closed_before_its_end_closes_the_connection(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    upstream.behaviour.token_delay_s = 0.05
    response = await client.post_streaming(
        endpoint(f"{upstream.base_url}/chat/completions"), STREAM_CHAT
    )
    assert await response.read_chunk()

    await response.aclose()

    assert client.idle_connections == 0
    assert await eventually(lambda: upstream.in_flight == 0)


async def test_a_drained_stream_keeps_its_connection_for_the_next_request(
    client: Http1Client,
) -> None:
    done = b"data: [DONE]\n\n"

    async def done_then_late_terminator(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(chunked(b"data: {}\n\n", done)[: -len(b"0\r\n\r\n")])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"0\r\n\r\n")
        return True

    async with RawServer(done_then_late_terminator) as server:
        target = endpoint(server.url)
        response = await client.post_streaming(target, STREAM_CHAT)
        received = b""
        for _ in range(100):
            received += await response.read_chunk()
            if received.endswith(done):
                break
        await response.aclose(drain=True)

        assert await eventually(lambda: client.idle_connections == 1)
        again = await client.post_streaming(target, STREAM_CHAT)
        await read_all(again)
        await again.aclose()

    assert server.connections == 1


async def test_a_lagging_stream_consumer_pauses_reading_from_the_socket() -> None:
    client = Http1Client(stream_buffer_bytes=64 * 1024)
    total = 32 * 1024 * 1024
    drained = asyncio.Event()

    async def flood(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % total)
        writer.write(b"z" * total)
        await writer.drain()
        drained.set()
        return True

    async with RawServer(flood) as server:
        response = await client.post_streaming(endpoint(server.url), CHAT)
        await asyncio.sleep(0.3)  # a consumer busy elsewhere

        assert response.buffered_bytes <= 64 * 1024 + 512 * 1024
        assert not drained.is_set()

        body = await read_all(response)
        await response.aclose()
        assert await eventually(drained.is_set)

    assert len(body) == total
    await client.aclose()


# --- failures ---------------------------------------------------------------------------------


async def test_a_refused_connection_is_an_error(client: Http1Client) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    with pytest.raises(HttpClientError, match="cannot connect"):
        await client.post(endpoint(f"http://127.0.0.1:{port}/v1/chat/completions"), CHAT)


async def test_a_connection_dropped_without_an_answer_is_an_error_and_not_retried(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    upstream.faults.drop_connection = True

    with pytest.raises(HttpClientError, match="closed before a response"):
        await client.post(endpoint(f"{upstream.base_url}/chat/completions"), CHAT)

    assert len(upstream.received) == 1


async def test_a_stale_keep_alive_connection_is_retried_once_on_a_new_one(
    client: Http1Client,
) -> None:
    async def first_ok_then_close_unanswered(index: int, writer: asyncio.StreamWriter) -> bool:
        if index == 0:
            writer.write(answer(b"{}"))
            return True
        if index == 1:
            return False  # as if it had closed the idle connection just before
        writer.write(answer(b'{"retried": true}'))
        return True

    async with RawServer(first_ok_then_close_unanswered) as server:
        await client.post(endpoint(server.url), CHAT)
        response = await client.post(endpoint(server.url), CHAT)

    assert response.body == b'{"retried": true}'
    assert server.connections == 2
    assert len(server.requests) == 3


async def test_a_stale_connection_is_retried_only_once(
    client: Http1Client, upstream: LoopbackUpstream
) -> None:
    target = endpoint(f"{upstream.base_url}/chat/completions")
    await client.post(target, CHAT)
    upstream.faults.drop_connection = True

    with pytest.raises(HttpClientError, match="closed before a response"):
        await client.post(target, CHAT)

    assert len(upstream.received) == 3  # the first request, then the stale one and its retry


@pytest.mark.parametrize("failure", ["cut mid-body", "stall"])
async def test_a_reused_connection_that_fails_after_sending_or_by_timeout_is_not_retried(
    client: Http1Client, failure: str
) -> None:
    async def first_ok_then_fail(index: int, writer: asyncio.StreamWriter) -> bool:
        if index == 0:
            writer.write(answer(b"{}"))
            return True
        if failure == "stall":
            await asyncio.sleep(5)
        writer.write(answer(b"x" * 100)[:-60])
        return False

    async with RawServer(first_ok_then_fail) as server:
        target = endpoint(server.url, timeout_s=0.2)
        await client.post(target, CHAT)
        with pytest.raises(HttpClientError):
            await client.post(target, CHAT)

    assert len(server.requests) == 2


async def test_a_stream_on_a_stale_connection_is_retried_too(client: Http1Client) -> None:
    async def first_ok_then_close_unanswered(index: int, writer: asyncio.StreamWriter) -> bool:
        if index == 1:
            return False
        writer.write(chunked(b"data: [DONE]\n\n"))
        return True

    async with RawServer(first_ok_then_close_unanswered) as server:
        for _ in range(2):
            response = await client.post_streaming(endpoint(server.url), STREAM_CHAT)
            assert await read_all(response) == b"data: [DONE]\n\n"
            await response.aclose()

    assert server.connections == 2


async def test_a_body_cut_short_is_an_error_and_not_retried(client: Http1Client) -> None:
    async def half_body(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"x" * 100)[:-60])
        return False

    async with RawServer(half_body) as server:
        with pytest.raises(HttpClientError, match="middle of the response body"):
            await client.post(endpoint(server.url), CHAT)

    assert len(server.requests) == 1


async def test_a_malformed_response_is_an_error(client: Http1Client) -> None:
    async def garbage(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"this is not HTTP\r\n\r\n")
        return True

    async with RawServer(garbage) as server:
        with pytest.raises(HttpClientError, match="malformed response"):
            await client.post(endpoint(server.url), CHAT)

    assert client.idle_connections == 0


async def test_a_server_that_stops_sending_times_out(client: Http1Client) -> None:
    async def stall(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\n12345")
        await asyncio.sleep(5)
        return False

    async with RawServer(stall) as server:
        with pytest.raises(HttpClientError, match="timed out"):
            await client.post(endpoint(server.url, timeout_s=0.2), CHAT)


async def test_a_stream_that_stops_sending_times_out(client: Http1Client) -> None:
    async def stall(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(chunked(b"data: {}\n\n")[: -len(b"0\r\n\r\n")])
        await asyncio.sleep(5)
        return False

    async with RawServer(stall) as server:
        response = await client.post_streaming(endpoint(server.url, timeout_s=0.2), STREAM_CHAT)
        assert await response.read_chunk() == b"data: {}\n\n"
        with pytest.raises(HttpClientError, match="timed out"):
            await response.read_chunk()
        await response.aclose()


async def test_the_read_timeout_is_between_bytes_not_for_the_whole_response(
    client: Http1Client,
) -> None:
    body = b"0123456789"

    async def trickle(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(body))
        for byte in body:
            await asyncio.sleep(0.05)
            writer.write(bytes([byte]))
            await writer.drain()
        return True

    async with RawServer(trickle) as server:
        # the whole answer takes ~0.5 s, four times the read timeout
        response = await client.post(endpoint(server.url, timeout_s=0.15), CHAT)

    assert response.body == body


async def test_a_tls_handshake_that_never_completes_times_out_as_a_connect(
    client: Http1Client,
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(HttpClientError, match="timed out"):
            await client.post(endpoint(f"https://127.0.0.1:{port}/v1", timeout_s=0.2), CHAT)
    finally:
        server.close()


async def test_cancelling_a_request_closes_its_connection(client: Http1Client) -> None:
    async def slow_then_ok(index: int, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.3 if index == 0 else 0)
        writer.write(answer(b"{}"))
        return True

    async with RawServer(slow_then_ok) as server:
        request = asyncio.ensure_future(client.post(endpoint(server.url), CHAT))
        await asyncio.sleep(0.05)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request

        assert client.idle_connections == 0
        assert (await client.post(endpoint(server.url), CHAT)).status == 200

    assert server.connections == 2


# --- the pool ---------------------------------------------------------------------------------


async def test_an_idle_connection_the_server_closes_leaves_the_pool(client: Http1Client) -> None:
    async def answer_then_close_soon(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"{}"))
        await asyncio.sleep(0.05)
        return False

    async with RawServer(answer_then_close_soon) as server:
        await client.post(endpoint(server.url), CHAT)
        assert client.idle_connections == 1

        assert await eventually(lambda: client.idle_connections == 0)


async def test_idle_connections_expire() -> None:
    client = Http1Client(idle_timeout_s=0.1)
    async with RawServer(answer_ok) as server:
        await client.post(endpoint(server.url), CHAT)
        assert client.idle_connections == 1

        assert await eventually(lambda: server.closed_connections == 1)
        assert client.idle_connections == 0
    await client.aclose()


async def test_bytes_arriving_on_an_idle_connection_drop_it(client: Http1Client) -> None:
    async def answer_then_junk(index: int, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"{}"))
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\n\r\n")
        return True

    async with RawServer(answer_then_junk) as server:
        await client.post(endpoint(server.url), CHAT)

        assert await eventually(lambda: client.idle_connections == 0)
        assert await eventually(lambda: server.closed_connections == 1)


async def test_aclose_closes_idle_connections(client: Http1Client) -> None:
    async with RawServer(answer_ok) as server:
        await client.post(endpoint(server.url), CHAT)

        await client.aclose()

        assert client.idle_connections == 0
        assert await eventually(lambda: server.closed_connections == 1)


# --- TLS --------------------------------------------------------------------------------------


async def test_https_verifies_the_server_certificate_and_host_name() -> None:
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1").configure_cert(server_context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    client, untrusting = Http1Client(ssl_context=trusting), Http1Client()
    server = await asyncio.start_server(_serve_tls, "127.0.0.1", 0, ssl=server_context)
    url = f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1/chat/completions"
    try:
        first = await client.post(endpoint(url), CHAT)
        second = await client.post(endpoint(url), CHAT)
        with pytest.raises(HttpClientError, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusting.post(endpoint(url), CHAT)
    finally:
        await client.aclose()
        await untrusting.aclose()
        server.close()

    assert first.body == b'{"tls": 1}'
    assert second.body == b'{"tls": 2}'  # the same connection: its second request


async def _serve_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    count = 0
    try:
        for _ in range(100):
            head = await reader.readuntil(b"\r\n\r\n")
            match = re.search(rb"content-length: *(\d+)", head, re.IGNORECASE)
            await reader.readexactly(int(match.group(1)) if match else 0)
            count += 1
            writer.write(answer(b'{"tls": %d}' % count))
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


# --- endpoints --------------------------------------------------------------------------------


def test_an_endpoint_writes_the_request_head_once() -> None:
    target = Endpoint(
        "https://api.example.com/v1/chat/completions?x=1",
        {"Authorization": "Bearer k"},
        connect_timeout_s=1,
        read_timeout_s=1,
    )

    assert target.request(b"{}") == (
        b"POST /v1/chat/completions?x=1 HTTP/1.1\r\nHost: api.example.com\r\n"
        b"Authorization: Bearer k\r\nAccept-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}"
    )
    assert (target.origin.scheme, target.origin.port) == ("https", 443)


@pytest.mark.parametrize(
    ("url", "headers"),
    [
        ("ftp://example.com/v1", {}),
        ("/v1/chat/completions", {}),
        ("http://example.com/a b", {}),
        ("http://example.com/v1", {"Authorization": "Bearer k\r\nX-Injected: 1"}),
        ("http://example.com/v1", {"Bad Name": "v"}),
        ("http://example.com/v1", {"Content-Length": "5"}),
    ],
)
def test_an_endpoint_refuses_what_would_break_the_request(
    url: str, headers: dict[str, str]
) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        Endpoint(url, headers, connect_timeout_s=1, read_timeout_s=1)
