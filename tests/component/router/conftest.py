"""The real router process (`modelplane router serve`) in front of loopback upstreams.

The upstreams run on an event loop in a background thread so that they outlive each test's own
loop and can be shared by a module; tests drive them (faults, received requests) from the test
thread, which is safe for these plain attribute writes and list reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.router_process import (
    RouterProcess,
    ThreadedUpstreams,
    start_router_process,
)
from modelplane.testing.upstream import LoopbackUpstream

API_KEY = "test-key"
LIMITED_KEY = "limited-key"
SMALL_TPM_KEY = "small-tpm-key"
SMALL_TPM = 500
FRUGAL_KEY = "frugal-key"
EXTERNAL_KEY = "sk-external-test"


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
    adapter = {"adapter": gpt_adapter} if gpt_adapter else {}
    return router_config_text(
        backends=[
            in_cluster_llama(
                llama_base,
                capabilities=["chat", "json"],
                gpu_hour_usd=1.2,
                tokens_per_second=2500,
                timeout_s=llama_timeout_s,
            ),
            external_gpt4o(
                gpt_base,
                api_key="${TEST_EXTERNAL_KEY}",
                capabilities=["chat", "tools", "json", "images"],
                timeout_s=5,
                **adapter,
            ),
        ],
        tenants=[
            {
                "name": "team",
                "api_keys": ["${TEST_ROUTER_KEY}"],
                "default_data_class": "internal",
            },
            {"name": "limited", "api_keys": [LIMITED_KEY], "requests_per_minute": 2},
            {"name": "small", "api_keys": [SMALL_TPM_KEY], "tokens_per_minute": SMALL_TPM},
            # Any spend at all uses this budget up.
            {"name": "frugal", "api_keys": [FRUGAL_KEY], "daily_budget_usd": 1e-9},
        ],
        policy={"pii_detection": True},
        cooldown={"failures": cooldown_failures},
    )


def start_router(config_text: str, directory: Path) -> Iterator[RouterProcess]:
    """Run `modelplane router serve` on a free port until the generator is closed."""
    config_path = directory / "router.yaml"
    config_path.write_text(config_text)
    router = start_router_process(
        ["--config", str(config_path)],
        directory / "router.log",
        env={"TEST_ROUTER_KEY": API_KEY, "TEST_EXTERNAL_KEY": EXTERNAL_KEY},
    )
    try:
        yield router
    finally:
        router.stop()


@pytest.fixture(scope="module")
def upstream_host() -> Iterator[ThreadedUpstreams]:
    host = ThreadedUpstreams()
    yield host
    host.close()


@pytest.fixture(scope="module")
def module_upstreams(upstream_host: ThreadedUpstreams) -> Upstreams:
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
