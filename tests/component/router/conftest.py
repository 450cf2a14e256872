"""The real router process (`modelplane router serve`) in front of loopback upstreams.

The upstreams run on an event loop in a background thread so that they outlive each test's own
loop and can be shared by a module; tests drive them (faults, received requests) from the test
thread, which is safe for these plain attribute writes and list reads.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from modelplane.testing.upstream import LoopbackUpstream

T = TypeVar("T")

API_KEY = "test-key"
LIMITED_KEY = "limited-key"
EXTERNAL_KEY = "sk-external-test"
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class UpstreamHost:
    """An event loop in a thread, serving loopback upstreams."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._upstreams: list[LoopbackUpstream] = []

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)

    def start(self, model: str) -> LoopbackUpstream:
        upstream = LoopbackUpstream(model=model)
        self.run(upstream.start())
        self._upstreams.append(upstream)
        return upstream

    def close(self) -> None:
        for upstream in self._upstreams:
            self.run(upstream.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


@dataclass(frozen=True)
class Upstreams:
    llama: LoopbackUpstream
    gpt: LoopbackUpstream

    def reset(self) -> None:
        self.llama.reset()
        self.gpt.reset()


def router_config(
    llama_base: str,
    gpt_base: str,
    *,
    gpt_adapter: str | None = None,
    cooldown_failures: int = 3,
    llama_timeout_s: float = 5,
) -> str:
    adapter_line = f"\n            adapter: {gpt_adapter}" if gpt_adapter else ""
    return textwrap.dedent(
        f"""\
        backends:
          - name: llama-3-8b
            model: hosted_vllm/llama-3-8b
            api_base: {llama_base}
            location: in-cluster
            context_window: 8192
            capabilities: [chat, json]
            gpu_hour_usd: 1.2
            tokens_per_second: 2500
            timeout_s: {llama_timeout_s}
          - name: gpt-4o
            model: openai/gpt-4o
            api_base: {gpt_base}
            api_key: ${{TEST_EXTERNAL_KEY}}
            location: external
            context_window: 128000
            capabilities: [chat, tools, json, images]
            timeout_s: 5{adapter_line}
        tenants:
          - name: team
            api_keys: ["${{TEST_ROUTER_KEY}}"]
            default_data_class: internal
          - name: limited
            api_keys: [{LIMITED_KEY}]
            requests_per_minute: 2
        policy:
          pii_detection: true
        cooldown:
          failures: {cooldown_failures}
        """
    )


@dataclass
class RouterProcess:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_router(config_text: str, directory: Path) -> Iterator[RouterProcess]:
    """Run `modelplane router serve` on a free port until the generator is closed."""
    config_path = directory / "router.yaml"
    config_path.write_text(config_text)
    log_path = directory / "router.log"
    port = free_port()
    environ = {
        **os.environ,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "TEST_ROUTER_KEY": API_KEY,
        "TEST_EXTERNAL_KEY": EXTERNAL_KEY,
    }
    command = [sys.executable, "-m", "modelplane", "router", "serve", "--config", str(config_path)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environ)
    router = RouterProcess(url=f"http://127.0.0.1:{port}", process=process, log_path=log_path)
    try:
        _wait_until_ready(router)
        yield router
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _wait_until_ready(router: RouterProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if router.process.poll() is not None:
            pytest.fail(f"the router exited with {router.process.returncode}:\n{router.log()}")
        try:
            if httpx.get(f"{router.url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    pytest.fail(f"the router was not ready within {STARTUP_TIMEOUT_S} s:\n{router.log()}")


@pytest.fixture(scope="module")
def upstream_host() -> Iterator[UpstreamHost]:
    host = UpstreamHost()
    yield host
    host.close()


@pytest.fixture(scope="module")
def module_upstreams(upstream_host: UpstreamHost) -> Upstreams:
    return Upstreams(llama=upstream_host.start("llama-3-8b"), gpt=upstream_host.start("gpt-4o"))


@pytest.fixture
def upstreams(module_upstreams: Upstreams) -> Iterator[Upstreams]:
    """The module's upstreams, with no faults and no recorded requests at the start of a test."""
    module_upstreams.reset()
    yield module_upstreams
    module_upstreams.reset()


@pytest.fixture(scope="module")
def router(
    module_upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RouterProcess]:
    """One router for the module; its cooldown threshold is out of reach, so the failures one
    test injects do not change the routing of the next."""
    config = router_config(
        module_upstreams.llama.base_url, module_upstreams.gpt.base_url, cooldown_failures=10_000
    )
    yield from start_router(config, tmp_path_factory.mktemp("router"))
