"""A loopback server that must never be called: it records every connection made to it.

Security tests point every client-controllable URL they can think of at it (a body's `api_base`,
an image URL, a forwarded Host header) and then assert that it received nothing. It answers any
request with a plausible chat completion, so a client that does reach it gets an answer instead
of hanging until its timeout, and the test fails on the record, not on a timeout.

`with SentinelServer() as sentinel: ... assert sentinel.connections == []`
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from types import TracebackType

_REPLY_BODY = (
    b'{"id":"sentinel","object":"chat.completion","created":0,"model":"sentinel",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"sentinel"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,'
    b'"total_tokens":2}}'
)
_REPLY = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_REPLY_BODY)).encode() + b"\r\n\r\n" + _REPLY_BODY
)


class _Handler(socketserver.BaseRequestHandler):
    server: _Server

    def handle(self) -> None:
        connection: socket.socket = self.request
        connection.settimeout(2.0)
        try:
            first = connection.recv(4096)
        except OSError:
            first = b""
        with self.server.lock:
            self.server.connections.append(first)
        with contextlib.suppress(OSError):
            connection.sendall(_REPLY)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.connections: list[bytes] = []


class SentinelServer:
    """Counts connections on 127.0.0.1; `connections` holds the first bytes each one sent."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._server.server_address[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def connections(self) -> list[bytes]:
        with self._server.lock:
            return list(self._server.connections)

    def start(self) -> SentinelServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> SentinelServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
