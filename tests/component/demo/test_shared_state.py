"""The spend the demo reads from Redis includes the router's last reply, not just earlier ones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from modelplane.demo.pricing import litellm_price
from modelplane.demo.runner import (
    DEMO_API_KEY,
    DEMO_TENANT,
    EXTERNAL_BACKEND,
    child_env,
    router_config,
    router_process,
    shared_state_after_router_exit,
)
from modelplane.testing.processes import free_port
from modelplane.testing.router_process import ThreadedUpstreams
from modelplane.testing.valkey import ValkeyProcess

START_TIMEOUT_S = 60.0
# Enough tokens that the one reply's GPT-4o cost shows in the report's four decimals.
PROMPT_WORDS = 2_000


@pytest.fixture
def upstreams() -> Iterator[ThreadedUpstreams]:
    host = ThreadedUpstreams()
    yield host
    host.close()


def test_spend_read_after_the_router_exits_includes_the_reply_just_delivered(
    tmp_path: Path, upstreams: ThreadedUpstreams
) -> None:
    local = upstreams.start("smollm2")
    external = upstreams.start("gpt-4o")
    config_path = tmp_path / "router.yaml"
    config = router_config(local.base_url, external.base_url, real_openai=False)
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    with ValkeyProcess() as valkey:
        router = router_process(config_path, port, valkey.url, tmp_path / "logs", child_env())
        with router:
            router.wait_until_http_ok(f"http://127.0.0.1:{port}/healthz", START_TIMEOUT_S)
            response = httpx.post(
                f"http://127.0.0.1:{port}/v1/chat/completions",
                headers={"Authorization": f"Bearer {DEMO_API_KEY}"},
                json={
                    "model": EXTERNAL_BACKEND,
                    "messages": [{"role": "user", "content": "word " * PROMPT_WORDS}],
                },
                timeout=30,
            )
            response.raise_for_status()
            # Read at once, as the demo does after its last answer arrives.
            lines = shared_state_after_router_exit(router, valkey.url)

    usage = response.json()["usage"]
    cost = litellm_price("gpt-4o").cost_usd(usage["prompt_tokens"], usage["completion_tokens"])
    assert cost >= 0.001
    assert lines[0] == (
        f"router-recorded spend in Redis for tenant {DEMO_TENANT!r} today: ${cost:.4f}"
    )
