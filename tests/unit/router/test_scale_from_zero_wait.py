"""A request that only a not-yet-ready backend may serve waits for it, and sees it at once when
it became ready while the request was being read."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from modelplane.router.adapters.live import CatalogChanges
from modelplane.router.adapters.upstream import CompletedReply
from modelplane.router.catalog import Catalog, CatalogSource, Upstream, catalog_from_config
from modelplane.router.config import AdapterKind, parse_config
from modelplane.router.errors import NoEligibleBackend
from modelplane.router.policy.types import DataClass
from modelplane.router.service import RouterService, parse_chat_request
from modelplane.router.state import InProcessState

CONFIG = """
backends:
  - name: llama
    model: hosted_vllm/llama
    api_base: http://127.0.0.1:9/v1
    location: in-cluster
    input_usd_per_mtok: 0.1
    output_usd_per_mtok: 0.1
    context_window: 8192
    timeout_s: 0.3
tenants:
  - name: team
    api_keys: [sk-team]
"""
BODY = b'{"model": "auto", "messages": [{"role": "user", "content": "hi"}]}'


class AnsweringAdapter:
    async def complete(self, upstream: Upstream, body: dict[str, Any]) -> CompletedReply:
        return CompletedReply(status=200, body=b"{}", usage=None, ttft_ms=1.0)

    async def stream(
        self, upstream: Upstream, body: dict[str, Any], client_wants_usage: bool
    ) -> CompletedReply:
        return await self.complete(upstream, body)

    async def aclose(self) -> None:
        return None


def with_llama_ready(catalog: Catalog, ready: bool) -> Catalog:
    llama = catalog.backends["llama"]
    snapshot = dataclasses.replace(llama.snapshot, ready=ready)
    return dataclasses.replace(
        catalog, backends={"llama": dataclasses.replace(llama, snapshot=snapshot)}
    )


@pytest.fixture
def base() -> Catalog:
    return catalog_from_config(parse_config(CONFIG), price_map={})


def service_over(source: CatalogSource) -> RouterService:
    return RouterService(
        source,
        InProcessState(),
        {AdapterKind.OPENAI: AnsweringAdapter()},
        catalog_changes=CatalogChanges(source),
    )


async def test_a_backend_ready_since_the_request_began_serves_it_without_waiting_for_news(
    base: Catalog,
) -> None:
    scaled_to_zero = with_llama_ready(base, ready=False)
    source = CatalogSource(scaled_to_zero)
    service = service_over(source)
    tenant, catalog = service.authenticate("Bearer sk-team")
    source.replace(with_llama_ready(base, ready=True))  # while the body was being read

    routed = await service.decide(tenant, catalog, parse_chat_request(BODY), DataClass.CONFIDENTIAL)

    assert routed.decision.chosen is not None
    assert routed.decision.chosen.backend == "llama"


async def test_a_backend_that_stays_not_ready_gets_503_after_its_timeout(base: Catalog) -> None:
    service = service_over(CatalogSource(with_llama_ready(base, ready=False)))
    tenant, catalog = service.authenticate("Bearer sk-team")

    with pytest.raises(NoEligibleBackend):
        await service.decide(tenant, catalog, parse_chat_request(BODY), DataClass.CONFIDENTIAL)
