"""Assembles what `modelplane router serve` runs beside the app, from its options.

- the catalog: from the configuration file, or from the cluster (`KubernetesCatalogWatcher`),
  in both cases published through `LiveCatalog` so measured prices and readiness apply;
- the shared state: `RedisState` with a Redis URL, else `InProcessState`; wrapped in
  `LiveLatencyState` while engine metrics are scraped;
- the engine metrics scraper (in-cluster backends' `/metrics`);
- telemetry, with gauges for budget remaining and price per million tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from modelplane.router.adapters.kube_catalog import (
    ClusterCatalog,
    KubeConnection,
    KubernetesCatalogWatcher,
)
from modelplane.router.adapters.live import (
    CatalogChanges,
    LiveCatalog,
    LiveLatencyState,
    self_hosted_prices,
)
from modelplane.router.adapters.metrics_listener import MetricsListener
from modelplane.router.adapters.metrics_scraper import (
    EngineMetricsScraper,
    ScrapeTarget,
    metrics_url_for,
)
from modelplane.router.adapters.redis_state import RedisState, RedisStateSettings
from modelplane.router.adapters.telemetry import Telemetry, TelemetrySettings
from modelplane.router.catalog import Catalog, CatalogSource, catalog_from_config
from modelplane.router.config import RouterConfig
from modelplane.router.policy.types import Location, PolicySettings
from modelplane.router.state import (
    CooldownPolicy,
    InProcessState,
    RouterState,
    StateUnavailableError,
)

logger = logging.getLogger(__name__)


class BackgroundComponent(Protocol):
    """Runs beside the app: started after it starts, closed before it stops."""

    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class ServeOptions:
    kubernetes: bool = False
    namespace: str | None = None
    all_namespaces: bool = False
    redis: RedisStateSettings | None = None
    telemetry: TelemetrySettings | None = None  # None: no telemetry
    scrape_interval_s: float = 2.0  # 0: do not scrape engine metrics
    budget_gauge_interval_s: float = 15.0
    # Where /metrics is served apart from the API; None: on the API's port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None


class BudgetGauge:
    """Reads every budgeted tenant's spend now and then for the `budget.remaining` gauge."""

    def __init__(self, source: CatalogSource, state: RouterState, interval_s: float) -> None:
        self._source = source
        self._state = state
        self._interval_s = interval_s
        self._rows: list[tuple[str, str, float]] = []
        self._task: asyncio.Task[None] | None = None

    def rows(self) -> Iterable[tuple[str, str, float]]:
        return self._rows

    async def refresh(self) -> None:
        rows: list[tuple[str, str, float]] = []
        seen: set[str] = set()
        for tenant in self._source.current.tenants_by_key_hash.values():
            limits = tenant.limits
            if tenant.name in seen or not limits.has_budget:
                continue
            seen.add(tenant.name)
            try:
                spend = await self._state.spend(tenant.name)
            except StateUnavailableError:
                continue
            if limits.daily_budget_usd is not None:
                rows.append((tenant.name, "day", limits.daily_budget_usd - spend.day_usd))
            if limits.monthly_budget_usd is not None:
                rows.append((tenant.name, "month", limits.monthly_budget_usd - spend.month_usd))
        self._rows = rows

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:  # a gauge must never take the router down
                logger.exception("refreshing the budget gauge failed")
            await asyncio.sleep(self._interval_s)


@dataclass(slots=True)
class RouterRuntime:
    """What `create_app` is given."""

    catalog_source: CatalogSource
    state: RouterState
    catalog_changes: CatalogChanges
    telemetry: Telemetry | None = None
    components: list[BackgroundComponent] = field(default_factory=list)
    metrics_listener: MetricsListener | None = None  # serves /metrics apart from the API


def file_scrape_targets(config: RouterConfig) -> list[ScrapeTarget]:
    """In-cluster backends of a configuration file, scraped next to their OpenAI base URL."""
    return [
        ScrapeTarget(
            backend=backend.name,
            metrics_url=metrics_url_for(backend.api_base),
            gpu_hour_usd=backend.gpu_hour_usd,
        )
        for backend in config.backends
        if backend.location is Location.IN_CLUSTER and backend.api_base
    ]


def empty_catalog(revision: str) -> Catalog:
    return Catalog(
        backends={}, tenants_by_key_hash={}, settings=PolicySettings(), revision=revision
    )


def build_runtime(
    options: ServeOptions,
    config: RouterConfig | None = None,
    connection: KubeConnection | None = None,
) -> RouterRuntime:
    """Everything `serve` needs; `config` is required unless `options.kubernetes` is set."""
    base = catalog_from_config(config) if config is not None else empty_catalog("kubernetes/0")
    source = CatalogSource(base)
    changes = CatalogChanges(source)
    components: list[BackgroundComponent] = []
    live: list[LiveCatalog] = []
    scraper = EngineMetricsScraper(
        interval_s=options.scrape_interval_s or 1.0,
        on_round=lambda: live[0].scrape_round_completed(),
    )
    # In a cluster, readiness is the ModelDeployment's status; from a file, whether metrics answer.
    live.append(LiveCatalog(source, scraper, readiness_from_scrape=not options.kubernetes))

    cooldown = (
        CooldownPolicy(failures=config.cooldown.failures, seconds=config.cooldown.seconds)
        if config is not None
        else CooldownPolicy()
    )
    state: RouterState
    if options.redis is not None:
        settings = options.redis.model_copy(
            update={"cooldown_failures": cooldown.failures, "cooldown_s": cooldown.seconds}
        )
        state = RedisState(settings)
    else:
        state = InProcessState(cooldown=cooldown)
    if options.scrape_interval_s > 0:
        state = LiveLatencyState(state, scraper)
        components.append(scraper)

    if options.kubernetes:
        watcher = KubernetesCatalogWatcher(
            connection or KubeConnection.from_environment(),
            lambda built: _publish_cluster_catalog(live[0], built),
            namespace=options.namespace,
            all_namespaces=options.all_namespaces,
        )
        components.append(watcher)
    elif config is not None:
        live[0].set_base(base, file_scrape_targets(config))
    else:
        raise ValueError("serve needs a configuration file or --kubernetes")

    telemetry: Telemetry | None = None
    if options.telemetry is not None:
        telemetry = Telemetry(options.telemetry)
        budgets = BudgetGauge(source, state, options.budget_gauge_interval_s)
        telemetry.add_budget_source(budgets.rows)
        telemetry.add_price_source(lambda: self_hosted_prices(source.current))
        components.append(budgets)
    metrics_listener = None
    if telemetry is not None and options.metrics_port is not None:
        metrics_listener = MetricsListener(
            telemetry.export_prometheus, options.metrics_host, options.metrics_port
        )
        components.append(metrics_listener)
    return RouterRuntime(
        catalog_source=source,
        state=state,
        catalog_changes=changes,
        telemetry=telemetry,
        components=components,
        metrics_listener=metrics_listener,
    )


def _publish_cluster_catalog(live: LiveCatalog, built: ClusterCatalog) -> None:
    live.set_base(built.catalog, built.scrape_targets)


__all__ = [
    "BackgroundComponent",
    "BudgetGauge",
    "RouterRuntime",
    "ServeOptions",
    "build_runtime",
    "empty_catalog",
    "file_scrape_targets",
]
