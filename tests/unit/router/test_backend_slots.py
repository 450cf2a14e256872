"""A backend at max_concurrency is passed over for the next eligible one; the last is waited for."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from modelplane.router.adapters.upstream import CompletedReply
from modelplane.router.catalog import CatalogSource, Upstream, catalog_from_config
from modelplane.router.config import AdapterKind, parse_config
from modelplane.router.errors import NoEligibleBackend
from modelplane.router.service import RouterService, parse_chat_request
from modelplane.router.state import InProcessState

CONFIG = """
backends:
  - name: cheap
    model: hosted_vllm/cheap
    api_base: http://127.0.0.1:9/v1
    location: in-cluster
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.1
    context_window: 8192
    max_concurrency: 1
    timeout_s: 0.2
  - name: dear
    model: hosted_vllm/dear
    api_base: http://127.0.0.1:9/v1
    location: in-cluster
    input_usd_per_mtok: 5.0
    output_usd_per_mtok: 5.0
    context_window: 8192
    max_concurrency: 1
    timeout_s: 0.2
tenants:
  - name: team
    api_keys: [sk-team]
"""
BODY = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'


class HeldAdapter:
    """Answers each call once `release` is set, recording which upstream model it was sent to."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.called: list[str] = []

    async def complete(self, upstream: Upstream, body: dict[str, Any]) -> CompletedReply:
        self.called.append(body["model"])
        await self.release.wait()
        return CompletedReply(status=200, body=b"{}", usage=None, ttft_ms=1.0)

    async def stream(
        self, upstream: Upstream, body: dict[str, Any], client_wants_usage: bool
    ) -> CompletedReply:
        return await self.complete(upstream, body)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def adapter() -> HeldAdapter:
    return HeldAdapter()


@pytest.fixture
def service(adapter: HeldAdapter) -> RouterService:
    catalog = catalog_from_config(parse_config(CONFIG), price_map={})
    return RouterService(CatalogSource(catalog), InProcessState(), {AdapterKind.OPENAI: adapter})


async def _served_backend(service: RouterService) -> tuple[str, tuple[str, ...]]:
    tenant, catalog = service.authenticate("Bearer sk-team")
    routed = await service.decide(tenant, catalog, parse_chat_request(BODY), None)
    served = await service.send(routed)
    await served.finish()
    return served.backend.name, served.failed_before


async def test_a_request_finding_its_choice_at_max_concurrency_goes_to_the_next_backend(
    service: RouterService, adapter: HeldAdapter
) -> None:
    first = asyncio.create_task(_served_backend(service))
    await asyncio.sleep(0)
    second = asyncio.create_task(_served_backend(service))
    await asyncio.sleep(0.01)
    adapter.release.set()
    assert await asyncio.wait_for(first, 5) == ("cheap", ())
    assert await asyncio.wait_for(second, 5) == ("dear", ("cheap",))
    assert adapter.called == ["cheap", "dear"]


async def test_the_last_eligible_backend_at_max_concurrency_is_waited_for(
    service: RouterService, adapter: HeldAdapter
) -> None:
    held = [asyncio.create_task(_served_backend(service)) for _ in range(2)]
    await asyncio.sleep(0.01)
    waiting = asyncio.create_task(_served_backend(service))
    await asyncio.sleep(0.05)  # within the backends' 0.2 s timeout
    adapter.release.set()
    assert sorted(await asyncio.wait_for(asyncio.gather(*held), 5)) == [
        ("cheap", ()),
        ("dear", ("cheap",)),
    ]
    assert await asyncio.wait_for(waiting, 5) == ("dear", ("cheap",))


async def test_every_eligible_backend_busy_past_the_timeout_is_a_no_eligible_backend_error(
    service: RouterService, adapter: HeldAdapter
) -> None:
    held = [asyncio.create_task(_served_backend(service)) for _ in range(2)]
    await asyncio.sleep(0.01)
    with pytest.raises(NoEligibleBackend, match="cheap: at max_concurrency; dear: at max_conc"):
        await asyncio.wait_for(_served_backend(service), 5)
    adapter.release.set()
    await asyncio.wait_for(asyncio.gather(*held), 5)
