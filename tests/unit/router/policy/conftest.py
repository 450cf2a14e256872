from __future__ import annotations

from collections.abc import Callable

import pytest
from modelplane.router.policy.types import BackendSnapshot, Capability, Location

BackendFactory = Callable[..., BackendSnapshot]

ALL_CAPABILITIES = frozenset(Capability)


def make_backend(
    name: str,
    location: Location = Location.IN_CLUSTER,
    *,
    capabilities: frozenset[Capability] = ALL_CAPABILITIES,
    context_window: int = 128_000,
    input_usd_per_mtok: float = 1.0,
    output_usd_per_mtok: float = 2.0,
    ready: bool = True,
    in_cooldown: bool = False,
    predicted_ttft_ms: float | None = None,
) -> BackendSnapshot:
    return BackendSnapshot(
        name=name,
        location=location,
        capabilities=capabilities,
        context_window=context_window,
        input_usd_per_mtok=input_usd_per_mtok,
        output_usd_per_mtok=output_usd_per_mtok,
        ready=ready,
        in_cooldown=in_cooldown,
        predicted_ttft_ms=predicted_ttft_ms,
    )


@pytest.fixture
def backend() -> BackendFactory:
    return make_backend
