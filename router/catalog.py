"""The runtime catalog: backends, tenants and policy settings as the request path reads them.

A `Catalog` is immutable. Whatever produces it (the configuration file here; a Kubernetes watcher
later) builds a complete new one and swaps it into the `CatalogSource`, so a request always sees
one consistent catalog from start to finish and never takes a lock.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modelplane.router.config import (
    DEFAULT_OPENAI_BASE,
    AdapterKind,
    BackendConfig,
    ConfigError,
    OverBudget,
    RouterConfig,
    TenantConfig,
)
from modelplane.router.policy.latency import self_hosted_usd_per_mtok
from modelplane.router.policy.types import (
    BackendSnapshot,
    DataClass,
    Location,
    PolicySettings,
    TenantPolicy,
)
from modelplane.router.state import TenantLimits


def hash_api_key(key: str) -> bytes:
    """The SHA-256 digest under which an API key is stored and looked up."""
    return hashlib.sha256(key.encode("utf-8")).digest()


@dataclass(frozen=True, slots=True)
class Upstream:
    """How to reach a backend."""

    adapter: AdapterKind
    litellm_model: str  # the configured LiteLLM model string
    upstream_model: str  # the name the upstream knows; written into the forwarded request
    api_base: str | None
    api_key: str | None = field(repr=False)
    max_concurrency: int
    timeout_s: float

    @property
    def chat_completions_url(self) -> str:
        base = (self.api_base or DEFAULT_OPENAI_BASE).rstrip("/")
        return f"{base}/chat/completions"


@dataclass(frozen=True, slots=True)
class CatalogBackend:
    """One backend: what the policy sees (`snapshot`) and how to call it (`upstream`).

    `snapshot` holds the static facts and `ready`; the router overlays live health from the
    shared state (`in_cooldown`, `predicted_ttft_ms`) at decision time.
    """

    snapshot: BackendSnapshot
    upstream: Upstream

    @property
    def name(self) -> str:
        return self.snapshot.name


@dataclass(frozen=True, slots=True)
class Tenant:
    policy: TenantPolicy
    default_data_class: DataClass
    limits: TenantLimits = field(default_factory=TenantLimits)
    over_budget: OverBudget = OverBudget.REJECT

    @property
    def name(self) -> str:
        return self.policy.name


@dataclass(frozen=True, slots=True)
class Catalog:
    """Everything the request path needs to know that changes only with configuration."""

    backends: Mapping[str, CatalogBackend]  # in configuration order
    tenants_by_key_hash: Mapping[bytes, Tenant]
    settings: PolicySettings
    revision: str = "file"  # identifies the source and version, for logs and /readyz
    _key_buckets: Mapping[bytes, tuple[tuple[bytes, Tenant], ...]] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "backends", MappingProxyType(dict(self.backends)))
        object.__setattr__(
            self, "tenants_by_key_hash", MappingProxyType(dict(self.tenants_by_key_hash))
        )
        buckets: dict[bytes, list[tuple[bytes, Tenant]]] = {}
        for digest, tenant in self.tenants_by_key_hash.items():
            buckets.setdefault(digest[:_BUCKET_BYTES], []).append((digest, tenant))
        object.__setattr__(
            self, "_key_buckets", {prefix: tuple(pairs) for prefix, pairs in buckets.items()}
        )

    @property
    def snapshots(self) -> tuple[BackendSnapshot, ...]:
        return tuple(backend.snapshot for backend in self.backends.values())

    def authenticate(self, api_key: str) -> Tenant | None:
        """The tenant owning `api_key`, or None.

        Stored digests are found by a short prefix of the presented key's digest (its timing
        can only reveal a few bytes of a SHA-256 digest, from which no key can be recovered) and
        then compared in full in constant time.
        """
        digest = hash_api_key(api_key)
        for stored, tenant in self._key_buckets.get(digest[:_BUCKET_BYTES], ()):
            if hmac.compare_digest(stored, digest):
                return tenant
        return None


_BUCKET_BYTES = 4


class CatalogSource:
    """Holds the current catalog; `replace` swaps in a new one atomically (one reference write)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._listeners: list[Callable[[Catalog], None]] = []

    @property
    def current(self) -> Catalog:
        return self._catalog

    def replace(self, catalog: Catalog) -> None:
        self._catalog = catalog
        for listener in self._listeners:
            listener(catalog)

    def subscribe(self, listener: Callable[[Catalog], None]) -> None:
        """Call `listener` with every new catalog (e.g. to resize per-backend resources)."""
        self._listeners.append(listener)


# --- building a catalog from the configuration file ---------------------------------------


def catalog_from_config(
    config: RouterConfig, price_map: Mapping[str, Mapping[str, Any]] | None = None
) -> Catalog:
    """Build the runtime catalog; `price_map` defaults to LiteLLM's bundled price map."""
    prices = price_map if price_map is not None else _LazyPriceMap()
    backends = {backend.name: _backend(backend, prices) for backend in config.backends}
    tenants: dict[bytes, Tenant] = {}
    for tenant_config in config.tenants:
        tenant = _tenant(tenant_config)
        for digest in _key_hashes(tenant_config):
            owner = tenants.get(digest)
            if owner is not None:
                raise ConfigError(
                    f"tenants {owner.name!r} and {tenant.name!r} share an API key; keys must be "
                    "unique so that a key identifies one tenant"
                )
            tenants[digest] = tenant
    policy = config.policy
    settings = PolicySettings(
        pii_detection=policy.pii_detection,
        confidential_pii_types=policy.confidential_pii_types,
        latency_target_ms=policy.latency_target_ms,
        cost_preference=policy.cost_preference,
    )
    return Catalog(backends=backends, tenants_by_key_hash=tenants, settings=settings)


def _backend(config: BackendConfig, prices: Mapping[str, Mapping[str, Any]]) -> CatalogBackend:
    known = _price_entry(config, prices)
    if config.input_usd_per_mtok is not None and config.output_usd_per_mtok is not None:
        input_price, output_price = config.input_usd_per_mtok, config.output_usd_per_mtok
    elif config.gpu_hour_usd is not None and config.tokens_per_second is not None:
        per_mtok = self_hosted_usd_per_mtok(config.gpu_hour_usd, config.tokens_per_second)
        input_price = output_price = per_mtok or 0.0
    elif known is not None:
        input_price = float(known.get("input_cost_per_token") or 0.0) * 1_000_000
        output_price = float(known.get("output_cost_per_token") or 0.0) * 1_000_000
    elif config.location is Location.IN_CLUSTER:
        input_price = output_price = 0.0  # self-hosted with no cost figures: treat as sunk
    else:
        raise ConfigError(
            f"backend {config.name!r}: LiteLLM's price map does not know {config.model!r}; "
            "set input_usd_per_mtok and output_usd_per_mtok"
        )
    context_window = config.context_window
    if context_window is None and known is not None:
        context_window = int(known.get("max_input_tokens") or known.get("max_tokens") or 0) or None
    if context_window is None:
        raise ConfigError(f"backend {config.name!r}: set context_window")
    snapshot = BackendSnapshot(
        name=config.name,
        location=config.location,
        capabilities=config.capabilities,
        context_window=context_window,
        input_usd_per_mtok=input_price,
        output_usd_per_mtok=output_price,
    )
    upstream = Upstream(
        adapter=config.resolved_adapter,
        litellm_model=config.model,
        upstream_model=config.upstream_model,
        api_base=config.api_base,
        api_key=config.api_key or None,
        max_concurrency=config.max_concurrency,
        timeout_s=config.timeout_s,
    )
    return CatalogBackend(snapshot=snapshot, upstream=upstream)


def _price_entry(
    config: BackendConfig, prices: Mapping[str, Mapping[str, Any]]
) -> Mapping[str, Any] | None:
    for key in (config.model, config.upstream_model):
        entry = prices.get(key)
        if entry is not None:
            return entry
    return None


def _tenant(config: TenantConfig) -> Tenant:
    allowed = frozenset(config.allowed_backends) if config.allowed_backends is not None else None
    return Tenant(
        policy=TenantPolicy(name=config.name, allowed_backends=allowed),
        default_data_class=config.default_data_class,
        limits=TenantLimits(
            requests_per_minute=config.requests_per_minute,
            tokens_per_minute=config.tokens_per_minute,
            daily_budget_usd=config.daily_budget_usd,
            monthly_budget_usd=config.monthly_budget_usd,
        ),
        over_budget=config.over_budget,
    )


def _key_hashes(config: TenantConfig) -> Iterable[bytes]:
    yield from (hash_api_key(key) for key in config.api_keys)
    yield from (bytes.fromhex(digest.removeprefix("sha256:")) for digest in config.api_key_sha256)


class _LazyPriceMap(Mapping[str, Mapping[str, Any]]):
    """LiteLLM's bundled price map, read only when a backend needs a default price."""

    def __getitem__(self, key: str) -> Mapping[str, Any]:
        return _litellm_price_map()[key]

    def __iter__(self) -> Any:
        return iter(_litellm_price_map())

    def __len__(self) -> int:
        return len(_litellm_price_map())


@cache
def _litellm_price_map() -> Mapping[str, Mapping[str, Any]]:
    """The price and context-window map LiteLLM ships in its wheel.

    It is the file LiteLLM itself loads with LITELLM_LOCAL_MODEL_COST_MAP=True; reading it
    directly keeps the 3 s `import litellm` off the start-up of routers that never call LiteLLM.
    """
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations)))
    try:
        data: dict[str, Mapping[str, Any]] = json.loads(
            (path / "model_prices_and_context_window_backup.json").read_text(encoding="utf-8")
        )
    except (OSError, ValueError):
        return {}
    return data
