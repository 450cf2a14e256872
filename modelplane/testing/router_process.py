"""`modelplane router serve` as a child process, and loopback upstreams on a thread of their own.

Used by component tests that run several routers against one Redis or one Kubernetes emulator,
where the upstreams must outlive a test's event loop and restart on the same port.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from modelplane.testing.processes import free_port, stop_process
from modelplane.testing.upstream import LoopbackUpstream

T = TypeVar("T")


class ThreadedUpstreams:
    """Loopback upstreams served from an event loop in a thread of their own."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._upstreams: list[LoopbackUpstream] = []

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self, model: str, port: int = 0) -> LoopbackUpstream:
        upstream = LoopbackUpstream(model=model, port=port)
        self.run(upstream.start())
        self._upstreams.append(upstream)
        return upstream

    def stop(self, upstream: LoopbackUpstream) -> None:
        self.run(upstream.stop())

    def close(self) -> None:
        for upstream in self._upstreams:
            self.run(upstream.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


class RouterStartError(RuntimeError):
    pass


@dataclass
class RouterProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, as an SDK's `base_url`."""
        return f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def chat(
        self,
        key: str,
        *,
        data_class: str | None = None,
        model: str = "auto",
        content: str = "Say hello.",
        timeout: float = 30.0,
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"}
        if data_class is not None:
            headers["x-modelplane-data-class"] = data_class
        return httpx.post(
            f"{self.url}/v1/chat/completions",
            json=_chat_body(model, content),
            headers=headers,
            timeout=timeout,
        )

    def stream_chat(
        self, key: str, *, content: str = "Say hello.", timeout: float = 10.0
    ) -> AbstractContextManager[httpx.Response]:
        """A streamed chat completion for `model: auto`: `with router.stream_chat(key) as r:`."""
        return httpx.stream(
            "POST",
            f"{self.url}/v1/chat/completions",
            json={**_chat_body("auto", content), "stream": True},
            headers={"Authorization": f"Bearer {key}"},
            timeout=timeout,
        )

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=10).text

    def stop(self) -> None:
        stop_process(self.process, timeout_s=10)


def _chat_body(model: str, content: str) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}]}


def start_router_process(
    options: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    startup_timeout_s: float = 60.0,
) -> RouterProcess:
    """Start `modelplane router serve <options>` on a free port and wait until /readyz is 200."""
    port = free_port()
    command = [sys.executable, "-m", "modelplane", "router", "serve"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "info", *options]
    # Only what the caller passes: an inherited MODELPLANE_REDIS_URL would change the router.
    environ = {k: v for k, v in os.environ.items() if k != "MODELPLANE_REDIS_URL"}
    environ.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})})
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environ)
    router = RouterProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    deadline = time.monotonic() + startup_timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RouterStartError(f"the router exited with {process.returncode}:\n{router.log()}")
        try:
            if httpx.get(f"{router.url}/readyz", timeout=1).status_code == 200:
                return router
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    router.stop()
    raise RouterStartError(f"the router was not ready in {startup_timeout_s} s:\n{router.log()}")
