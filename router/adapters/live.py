"""Live measurements laid over the catalog and the shared state.

The engine metrics scraper feeds two things the policy reads:

- `LiveLatencyState` wraps any `RouterState` and replaces each scraped backend's
  `predicted_ttft_ms` with the queue-aware prediction (`policy/latency.py`) built on the shared
  measured TTFT, so spillover follows queue depth within one scrape interval.
- `LiveCatalog` publishes the base catalog (from the file or the cluster) into the
  `CatalogSource` with each self-hosted backend's price at its measured throughput and
  `ready=False` while no replica answers its metrics endpoint (scaled to zero), and republishes
  only when one of those changes.

`CatalogChanges` lets a request wait for the next catalog (a confidential request waiting for
an in-cluster backend to become ready instead of ever leaving the cluster).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Iterable, Mapping, Sequence

from modelplane.router.adapters.metrics_scraper import EngineMetricsScraper, ScrapeTarget
from modelplane.router.catalog import Catalog, CatalogBackend, CatalogSource
from modelplane.router.policy.latency import LatencyModel, predict_ttft_ms
from modelplane.router.policy.types import Location
from modelplane.router.state import (
    Admission,
    AttemptObservation,
    BackendHealth,
    RouterState,
    Spend,
    TenantLimits,
)


class LiveLatencyState:
    """A `RouterState` whose backend health carries queue-aware TTFT predictions."""

    def __init__(
        self,
        inner: RouterState,
        scraper: EngineMetricsScraper,
        model: LatencyModel | None = None,
    ) -> None:
        self.inner = inner
        self._scraper = scraper
        self._model = model or LatencyModel()
        self._key: tuple[int, int] = (-1, -1)
        self._inner_health: Mapping[str, BackendHealth] = {}
        self._health: Mapping[str, BackendHealth] = {}

    async def admit(self, tenant: str, limits: TenantLimits, estimated_tokens: int) -> Admission:
        return await self.inner.admit(tenant, limits, estimated_tokens)

    async def record_usage(
        self, tenant: str, backend: str, input_tokens: int, output_tokens: int, cost_usd: float
    ) -> None:
        await self.inner.record_usage(tenant, backend, input_tokens, output_tokens, cost_usd)

    async def spend(self, tenant: str) -> Spend:
        return await self.inner.spend(tenant)

    async def observe(self, observation: AttemptObservation) -> None:
        await self.inner.observe(observation)

    async def backend_health(self) -> Mapping[str, BackendHealth]:
        """Rebuilt only when the inner view or a scrape round changes (same object otherwise)."""
        inner = await self.inner.backend_health()
        key = (id(inner), self._scraper.rounds)
        if key == self._key and inner is self._inner_health:
            return self._health
        health = dict(inner)
        for name, engine in self._scraper.live().items():
            if engine.load is None:
                continue
            known = inner.get(name, BackendHealth())
            health[name] = dataclasses.replace(
                known,
                predicted_ttft_ms=predict_ttft_ms(
                    engine.load, known.predicted_ttft_ms, self._model
                ),
            )
        self._key, self._inner_health, self._health = key, inner, health
        return health

    async def aclose(self) -> None:
        await self.inner.aclose()


class LiveCatalog:
    """Publishes a base catalog with measured prices and readiness laid over it."""

    def __init__(
        self,
        source: CatalogSource,
        scraper: EngineMetricsScraper,
        readiness_from_scrape: bool = True,
    ) -> None:
        """`readiness_from_scrape`: an engine whose metrics do not answer is not ready. Off when
        readiness comes from elsewhere (a ModelDeployment's status in a cluster), so a blocked
        scrape cannot take a ready backend out of service."""
        self._source = source
        self._scraper = scraper
        self._readiness_from_scrape = readiness_from_scrape
        self._base = source.current
        self._targets: Mapping[str, ScrapeTarget] = {}
        self._published_overlay: dict[str, tuple[bool, float | None]] = {}

    def set_base(self, catalog: Catalog, targets: Iterable[ScrapeTarget]) -> None:
        """A new catalog from the file or the cluster, with the backends to scrape."""
        self._base = catalog
        self._targets = {target.backend: target for target in targets}
        self._scraper.set_targets(self._targets.values())
        self._publish(force=True)

    def scrape_round_completed(self) -> None:
        """Called by the scraper after every round: republish if readiness or a price moved."""
        self._publish(force=False)

    def _publish(self, force: bool) -> None:
        live = self._scraper.live()
        overlay: dict[str, tuple[bool, float | None]] = {}
        for name in self._targets:
            engine = live.get(name)
            if engine is None:
                continue
            reachable = engine.reachable or not self._readiness_from_scrape
            overlay[name] = (reachable, _rounded(engine.usd_per_mtok))
        if not force and overlay == self._published_overlay:
            return
        self._published_overlay = overlay
        backends: dict[str, CatalogBackend] = {}
        for name, backend in self._base.backends.items():
            entry = overlay.get(name)
            backends[name] = backend if entry is None else _with_live(backend, *entry)
        self._source.replace(
            Catalog(
                backends=backends,
                tenants_by_key_hash=self._base.tenants_by_key_hash,
                settings=self._base.settings,
                revision=self._base.revision,
            )
        )


def _rounded(usd_per_mtok: float | None) -> float | None:
    # Three significant digits: throughput jitter must not republish the catalog every scrape.
    return None if usd_per_mtok is None else float(f"{usd_per_mtok:.3g}")


def _with_live(
    backend: CatalogBackend, reachable: bool, usd_per_mtok: float | None
) -> CatalogBackend:
    snapshot = backend.snapshot
    changes: dict[str, object] = {}
    if not reachable and snapshot.ready:
        changes["ready"] = False
    if usd_per_mtok is not None and snapshot.location is Location.IN_CLUSTER:
        changes["input_usd_per_mtok"] = usd_per_mtok
        changes["output_usd_per_mtok"] = usd_per_mtok
    if not changes:
        return backend
    return dataclasses.replace(backend, snapshot=dataclasses.replace(snapshot, **changes))  # type: ignore[arg-type]


def self_hosted_prices(catalog: Catalog) -> Sequence[tuple[str, str, str, float]]:
    """(backend, location, basis, USD per Mtok output) rows for the price gauge."""
    return [
        (
            name,
            backend.snapshot.location.value,
            "gpu-hour" if backend.snapshot.location is Location.IN_CLUSTER else "list",
            backend.snapshot.output_usd_per_mtok,
        )
        for name, backend in catalog.backends.items()
    ]


class CatalogChanges:
    """Lets coroutines wait for the next catalog published into a `CatalogSource`."""

    def __init__(self, source: CatalogSource) -> None:
        self._changed = asyncio.Event()
        source.subscribe(self._on_catalog)

    def _on_catalog(self, _: Catalog) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def wait(self, timeout_s: float) -> bool:
        """True if a new catalog was published within `timeout_s`."""
        changed = self._changed
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await changed.wait()
        return changed.is_set()


__all__ = [
    "CatalogChanges",
    "LiveCatalog",
    "LiveLatencyState",
    "self_hosted_prices",
]
