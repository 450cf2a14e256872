"""Bad input against the real router process: each gets a clear 4xx in OpenAI's error format,
nothing reaches an upstream that should not, and memory stays bounded.

The router runs with `--max-body-bytes 1048576` so oversized bodies are cheap to send; oversized
ones are written on a raw socket, to see what the router answers before the body is complete.
"""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.router_process import (
    RouterProcess,
    ThreadedUpstreams,
    start_router_process,
)
from modelplane.testing.upstream import LoopbackUpstream

KEY = "bad-input-key"
LIMIT = 1024 * 1024
HELLO = [{"role": "user", "content": "Say hello."}]
CHUNK = 64 * 1024


class Upstreams:
    def __init__(self, host: ThreadedUpstreams) -> None:
        self.llama = host.start("llama-3-8b")
        self.gpt = host.start("gpt-4o")
        self.elsewhere = host.start("elsewhere")  # in no catalog: must never be called

    def all(self) -> tuple[LoopbackUpstream, ...]:
        return (self.llama, self.gpt, self.elsewhere)

    def received(self) -> int:
        return sum(len(upstream.received) for upstream in self.all())

    def reset(self) -> None:
        for upstream in self.all():
            upstream.reset()


@pytest.fixture(scope="module")
def module_upstreams() -> Iterator[Upstreams]:
    host = ThreadedUpstreams()
    try:
        yield Upstreams(host)
    finally:
        host.close()


@pytest.fixture
def upstreams(module_upstreams: Upstreams) -> Iterator[Upstreams]:
    module_upstreams.reset()
    yield module_upstreams
    module_upstreams.reset()


@pytest.fixture(scope="module")
def router(
    module_upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RouterProcess]:
    directory = tmp_path_factory.mktemp("bad-input")
    config = directory / "router.yaml"
    config.write_text(
        router_config_text(
            backends=[
                in_cluster_llama(module_upstreams.llama.base_url, capabilities=["chat", "json"]),
                external_gpt4o(
                    module_upstreams.gpt.base_url,
                    api_key="sk-test",
                    capabilities=["chat", "tools", "json", "images"],
                ),
            ],
            tenants=[{"name": "team", "api_keys": [KEY], "default_data_class": "internal"}],
            policy={"pii_detection": True},
        )
    )
    router = start_router_process(
        ["--config", str(config), "--max-body-bytes", str(LIMIT)], directory / "router.log"
    )
    try:
        yield router
    finally:
        router.stop()


def post(
    router: RouterProcess, body: bytes, path: str = "/v1/chat/completions", **headers: str
) -> httpx.Response:
    return httpx.post(
        router.url + path,
        content=body,
        headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json", **headers},
        timeout=30,
    )


def chat(**fields: Any) -> bytes:
    # json, not orjson: it writes integers beyond 64 bits, which clients may send.
    return json.dumps({"model": "auto", "messages": HELLO, **fields}).encode()


def assert_refused(response: httpx.Response, status: int, code: str, says: str = "") -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["type"], str)
    assert says in error["message"]


# --- Oversized bodies, on a raw socket -------------------------------------------------------


def request_head(router: RouterProcess, path: str, framing: str) -> bytes:
    host = router.url.removeprefix("http://")
    return (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {KEY}\r\n"
        f"Content-Type: application/json\r\n{framing}\r\n"
    ).encode()


def connect(router: RouterProcess) -> socket.socket:
    host, port = router.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def read_answer(connection: socket.socket) -> bytes:
    """Everything the router sends until it closes the connection (bounded by the timeout)."""
    data = b""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            chunk = connection.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        data += chunk
    return data


def answered(connection: socket.socket) -> bool:
    return bool(select.select([connection], [], [], 0)[0])


def send_declared_oversize(router: RouterProcess, path: str = "/v1/chat/completions") -> bytes:
    """Announce 100 MiB, send none of it, and return the router's answer."""
    with connect(router) as connection:
        connection.sendall(request_head(router, path, f"Content-Length: {100 * LIMIT}\r\n"))
        return read_answer(connection)


def send_chunked_oversize(router: RouterProcess, at_most: int) -> tuple[bytes, int]:
    """Stream chunks until the router answers or closes, or `at_most` bytes are sent; return
    the answer and the bytes sent."""
    sent = 0
    with connect(router) as connection:
        connection.sendall(
            request_head(router, "/v1/chat/completions", "Transfer-Encoding: chunked\r\n")
        )
        chunk = f"{CHUNK:x}\r\n".encode() + b"[" * CHUNK + b"\r\n"
        try:
            while sent < at_most and not answered(connection):
                connection.sendall(chunk)
                sent += CHUNK
        except (BrokenPipeError, ConnectionResetError):
            pass  # closed after answering: the answer is still in the receive buffer
        return read_answer(connection), sent


def test_a_declared_oversized_body_is_refused_before_any_of_it_is_sent(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    answer = send_declared_oversize(router)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in head.lower()
    assert orjson.loads(body)["error"]["code"] == "payload_too_large"
    assert upstreams.received() == 0


def test_a_declared_oversized_body_to_explain_is_refused_too(router: RouterProcess) -> None:
    answer = send_declared_oversize(router, "/v1/route/explain")
    assert answer.startswith(b"HTTP/1.1 413 ")


def test_a_chunked_oversized_body_is_refused_once_it_passes_the_limit(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    # 64x the limit is far more than the kernel's socket buffers hold, so all of it can only be
    # sent to a router that keeps reading; one that stops and closes makes sending fail first.
    answer, sent = send_chunked_oversize(router, at_most=64 * LIMIT)
    print(f"413 after {sent / LIMIT:.1f}x the limit was sent (kernel buffers included)")
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"payload_too_large" in answer
    assert sent < 64 * LIMIT
    assert upstreams.received() == 0


def test_a_body_just_under_the_limit_is_served(router: RouterProcess, upstreams: Upstreams) -> None:
    padding = "x" * (LIMIT - 200)
    response = post(router, chat(user=padding))
    assert response.status_code == 200
    assert len(upstreams.llama.received) == 1


# --- Malformed JSON ---------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return (
        b'{"messages":[{"role":"user","content":"hi"}],"extra":'
        + b"[" * depth
        + b"]" * depth
        + b"}"
    )


def test_json_nested_100k_levels_deep_is_a_400(router: RouterProcess, upstreams: Upstreams) -> None:
    assert_refused(post(router, nested(100_000)), 400, "invalid_request", "depth limit")
    assert upstreams.received() == 0


def test_json_nested_deeper_than_the_router_can_forward_is_a_400_not_a_500(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    # orjson reads up to 1,024 levels but writes only 254: this used to crash the forward.
    assert_refused(post(router, nested(300)), 400, "invalid_request", "cannot be forwarded")
    assert upstreams.received() == 0


@pytest.mark.parametrize(
    "raw",
    [
        b'{"messages":[{"role":"user","content":"caf\xe9"}]}',  # Latin-1, not UTF-8
        b'{"messages":[{"role":"user","content":"\xed\xa0\x80"}]}',  # an encoded surrogate
        b'{"messages":[{"role":"user","content":"\\ud800"}]}',  # a lone escaped surrogate
        b'\xff\xfe{"messages":[]}',
    ],
    ids=["latin-1", "encoded-surrogate", "escaped-surrogate", "utf-16-bom"],
)
def test_invalid_utf8_is_a_400(router: RouterProcess, upstreams: Upstreams, raw: bytes) -> None:
    assert_refused(post(router, raw), 400, "invalid_request", "not valid JSON")
    assert upstreams.received() == 0


# --- max_tokens -------------------------------------------------------------------------------


def test_max_tokens_beyond_every_context_window_is_a_400_context_length_exceeded(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    response = post(router, chat(max_tokens=1_000_000_000))
    assert_refused(response, 400, "context_length_exceeded", "(128000)")
    assert upstreams.received() == 0


def test_a_confidential_request_too_long_for_the_cluster_is_a_400_and_never_leaves(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    response = post(router, chat(max_tokens=10_000), **{"x-modelplane-data-class": "confidential"})
    assert_refused(response, 400, "context_length_exceeded", "(8192)")
    assert upstreams.received() == 0


@pytest.mark.parametrize("value", [2**31, 10**30, -1, 1.5, "100", True])
def test_max_tokens_that_is_no_machine_integer_is_a_400(
    router: RouterProcess, upstreams: Upstreams, value: object
) -> None:
    assert_refused(post(router, chat(max_tokens=value)), 400, "invalid_request", "max_tokens")
    assert upstreams.received() == 0


# --- Unknown fields ---------------------------------------------------------------------------


def test_unknown_fields_are_passed_through_and_never_change_where_the_request_goes(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    elsewhere = upstreams.elsewhere.base_url
    redirects = {
        "api_base": elsewhere,
        "base_url": elsewhere,
        "custom_llm_provider": "openai",
        "extra_headers": {"Authorization": "Bearer stolen"},
        "vendor_setting": {"beam_width": 4},
    }
    plain = post(router, chat())
    redirected = post(router, chat(**redirects))
    assert plain.status_code == redirected.status_code == 200
    assert plain.headers["x-modelplane-backend"] == redirected.headers["x-modelplane-backend"]
    assert upstreams.elsewhere.received == []
    first, second = upstreams.llama.received
    assert second.body["vendor_setting"] == {"beam_width": 4}  # OpenAI-compatible pass-through
    assert second.headers.get("authorization") == first.headers.get("authorization")


# --- Malformed image parts and tools ----------------------------------------------------------


def with_parts(*parts: Any) -> bytes:
    return orjson.dumps({"model": "auto", "messages": [{"role": "user", "content": list(parts)}]})


def image(url: Any, **fields: Any) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url, **fields}}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (with_parts(image("data:image/png;base64,***")), "no valid base64"),
        (with_parts(image("data:image/png;base64,")), "no valid base64"),
        (with_parts(image("data:image/png,iVBORw0KGgo=")), "data URL like"),
        (with_parts(image("data:text/html;base64,PGgxPg==")), "data URL like"),
        (with_parts(image("data:image/png;base64,iVBORw0KGgo=\u00e9")), "no valid base64"),
        (with_parts(image("file:///etc/passwd")), "http(s) URL or a base64 data URL"),
        (with_parts(image("ftp://example.com/cat.png")), "http(s) URL or a base64 data URL"),
        (with_parts(image(42)), "string 'url'"),
        (with_parts(image("https://example.com/cat.png", detail="ultra")), "detail"),
        (with_parts({"type": "image_url", "image_url": "https://example.com/cat.png"}), "object"),
        (with_parts({"type": "image_url"}), "object"),
        (with_parts({"type": "text"}), "text must be a string"),
        (with_parts({"text": "no type"}), "string 'type'"),
        (with_parts("just a string"), "string 'type'"),
        (with_parts(None), "string 'type'"),
    ],
)
def test_malformed_image_and_content_parts_are_a_400(
    router: RouterProcess, upstreams: Upstreams, body: bytes, says: str
) -> None:
    assert_refused(post(router, body), 400, "invalid_request", says)
    assert upstreams.received() == 0


def test_a_well_formed_image_goes_to_the_backend_that_takes_images(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    response = post(
        router,
        with_parts({"type": "text", "text": "what?"}, image("data:image/png;base64,iVBORw0KGgo=")),
    )
    assert response.status_code == 200
    assert response.headers["x-modelplane-backend"] == "gpt-4o"


FUNCTION = {"type": "function", "function": {"name": "get_weather"}}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"tools": "get_weather"}, "'tools' must be an array"),
        ({"tools": [1]}, "tools[0]"),
        ({"tools": [{"type": "function"}]}, "tools[0].function must be an object"),
        ({"tools": [{"type": "retrieval"}]}, "'function' or 'custom'"),
        ({"tools": [{"type": ["function"]}]}, "'function' or 'custom'"),
        ({"tools": [{"type": "function", "function": {"name": ""}}]}, "name"),
        ({"tools": [{"type": "function", "function": {"name": 7}}]}, "name"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": []}}]},
            "parameters",
        ),
        (
            {
                "tools": [
                    FUNCTION,
                    {"type": "function", "function": {"name": "f", "description": 1}},
                ]
            },
            "tools[1]",
        ),
        ({"tools": [FUNCTION], "tool_choice": "always"}, "tool_choice"),
        ({"tools": [FUNCTION], "tool_choice": {"function": {"name": "f"}}}, "tool_choice"),
        ({"response_format": {"type": "json_schema"}}, "json_schema"),
        ({"response_format": {"schema": {}}}, "response_format.type"),
    ],
)
def test_malformed_tools_and_response_formats_are_a_400(
    router: RouterProcess, upstreams: Upstreams, fields: dict[str, Any], says: str
) -> None:
    assert_refused(post(router, chat(**fields)), 400, "invalid_request", says)
    assert upstreams.received() == 0


# --- Memory -----------------------------------------------------------------------------------


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def send_bad_requests(router: RouterProcess, rounds: int) -> None:
    nested_body = nested(100_000)
    for _ in range(rounds):
        assert send_declared_oversize(router).startswith(b"HTTP/1.1 413 ")
        assert send_chunked_oversize(router, at_most=2 * LIMIT)[0].startswith(b"HTTP/1.1 413 ")
        assert post(router, nested_body).status_code == 400


def test_memory_stays_bounded_under_oversized_and_deeply_nested_requests(
    router: RouterProcess, upstreams: Upstreams
) -> None:
    send_bad_requests(router, 20)  # warm-up: allocator arenas, connection buffers
    before = rss_bytes(router.process.pid)
    send_bad_requests(router, 100)  # 200 oversized and 100 nested requests, ~130 MB sent
    after = rss_bytes(router.process.pid)
    mib = 2**20
    print(f"router RSS {before / mib:.1f} MiB before, {after / mib:.1f} MiB after 300 requests")
    assert after - before < 32 * 2**20
    assert upstreams.received() == 0
