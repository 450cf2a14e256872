"""Two router processes share one Redis: limits and budgets hold across them, and an outage of
Redis under load keeps traffic flowing (limits open, budgets closed) until it comes back."""

from __future__ import annotations

import datetime
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.router_process import RouterProcess, ThreadedUpstreams
from modelplane.testing.valkey import ValkeyProcess

TEAM, LIMITED, BUDGETED = "team-key", "limited-key", "budgeted-key"
REQUEST_COST_USD = (2 + 5) * 1000 / 1_000_000  # "Say hello." in, 5 words out, $1000/Mtok


def config(llama_base: str, gpt_base: str) -> str:
    return router_config_text(
        backends=[
            in_cluster_llama(llama_base),
            external_gpt4o(
                gpt_base, api_key="sk-test", input_usd_per_mtok=1000, output_usd_per_mtok=1000
            ),
        ],
        tenants=[
            {"name": "team", "api_keys": [TEAM]},
            {"name": "limited", "api_keys": [LIMITED], "requests_per_minute": 6},
            {
                "name": "budgeted",
                "api_keys": [BUDGETED],
                "default_data_class": "public",
                "allowed_backends": ["gpt-4o"],
                "daily_budget_usd": REQUEST_COST_USD * 2.5,
            },
        ],
    )


@pytest.fixture
def routers(
    valkey: ValkeyProcess,
    upstream_host: ThreadedUpstreams,
    start_router: Callable[..., RouterProcess],
) -> tuple[RouterProcess, RouterProcess]:
    llama, gpt = upstream_host.start("llama-3-8b"), upstream_host.start("gpt-4o")
    text = config(llama.base_url, gpt.base_url)
    options = ("--scrape-interval", "0")
    return (
        start_router(*options, config=text, env={"MODELPLANE_REDIS_URL": valkey.url}),
        start_router(*options, "--redis-url", valkey.url, config=text),
    )


def away_from_a_minute_boundary() -> None:
    """Per-minute windows are aligned to the minute; keep one test inside one window."""
    second = datetime.datetime.now(datetime.UTC).second
    if second >= 55:
        time.sleep(61 - second)


def test_rpm_limit_holds_across_two_routers(routers: tuple[RouterProcess, RouterProcess]) -> None:
    away_from_a_minute_boundary()

    statuses = [
        router.chat(LIMITED).status_code
        for router in itertools.islice(itertools.cycle(routers), 12)
    ]

    assert statuses.count(200) == 6
    assert statuses.count(429) == 6


def test_budget_spent_on_one_router_stops_the_tenant_on_the_other(
    routers: tuple[RouterProcess, RouterProcess], eventually: Callable[..., Any]
) -> None:
    first, second = routers
    served = [first.chat(BUDGETED).status_code for _ in range(3)]
    assert served == [200, 200, 200]

    rejected = eventually(
        lambda: (answer := second.chat(BUDGETED)).status_code == 429 and answer,
        "the second router rejecting the tenant",
    )

    assert rejected.json()["error"]["code"] == "budget_exceeded"
    assert first.chat(BUDGETED).status_code == 429


def test_redis_outage_under_load_keeps_serving_and_state_returns(
    routers: tuple[RouterProcess, RouterProcess],
    valkey: ValkeyProcess,
    eventually: Callable[..., Any],
) -> None:
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        for router in itertools.islice(itertools.cycle(routers), 2000):
            if stop.is_set():
                return
            statuses.append(router.chat(TEAM, timeout=10).status_code)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        eventually(lambda: len(statuses) >= 10, "load before the outage")
        valkey.stop()
        during = len(statuses)
        for router in routers:
            assert router.chat(LIMITED).status_code == 200  # limits fail open
            answer = router.chat(BUDGETED)
            assert answer.status_code == 503  # budgets fail closed
            assert answer.json()["error"]["code"] == "state_unavailable"
        eventually(lambda: len(statuses) >= during + 20, "load during the outage")

        valkey.start()
        for router in routers:
            eventually(
                lambda router=router: router.chat(BUDGETED).status_code == 200,
                "budgets checked again after Redis returned",
            )
        after = len(statuses)
        eventually(lambda: len(statuses) >= after + 10, "load after the outage")
    finally:
        stop.set()
        worker.join(timeout=30)

    assert set(statuses) == {200}


def test_limits_can_fail_closed(
    valkey: ValkeyProcess,
    upstream_host: ThreadedUpstreams,
    start_router: Callable[..., RouterProcess],
) -> None:
    llama, gpt = upstream_host.start("llama-3-8b"), upstream_host.start("gpt-4o")
    router = start_router(
        "--redis-url", valkey.url, "--limits-fail-closed", "--budgets-fail-open",
        config=config(llama.base_url, gpt.base_url),
    )  # fmt: skip
    valkey.stop()

    limited = router.chat(LIMITED)

    assert limited.status_code == 503
    assert limited.json()["error"]["code"] == "state_unavailable"
    assert router.chat(BUDGETED).status_code == 200
    assert router.chat(TEAM).status_code == 200
