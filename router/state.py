"""State the router replicas share: per-tenant limits and spend, per-backend health.

`RouterState` is the contract. `InProcessState` keeps everything in this process (one replica,
local use, tests); a Redis implementation makes the same numbers hold across replicas. The router
only ever talks to the Protocol, so either can be injected into the app factory.

Privacy never depends on this state: it only feeds limits, budgets, cooldowns and latency
estimates. Every method is async because a shared implementation does network IO; the in-process
one never suspends, so awaiting it costs about a microsecond on the hot path.

Time: implementations take a `clock` returning UNIX seconds (injectable for tests). Per-minute
limits use fixed windows aligned to the minute; spend is bucketed by UTC calendar day and month.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Protocol

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class TenantLimits:
    """A tenant's rate limits and budgets; None means unlimited."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    daily_budget_usd: float | None = None
    monthly_budget_usd: float | None = None

    @property
    def has_rate_limits(self) -> bool:
        return self.requests_per_minute is not None or self.tokens_per_minute is not None

    @property
    def has_budget(self) -> bool:
        return self.daily_budget_usd is not None or self.monthly_budget_usd is not None


# Rate limits count in fixed windows of a wall-clock minute, the same for every replica.
RATE_WINDOW_S = 60


class Admission(StrEnum):
    """Outcome of a per-minute limit check."""

    ADMITTED = "admitted"
    RPM_EXCEEDED = "rpm_exceeded"
    TPM_EXCEEDED = "tpm_exceeded"


@dataclass(frozen=True, slots=True)
class Spend:
    """A tenant's spend in USD for the current UTC day and month."""

    day_usd: float = 0.0
    month_usd: float = 0.0

    def exceeds(self, limits: TenantLimits) -> bool:
        day_over = limits.daily_budget_usd is not None and self.day_usd >= limits.daily_budget_usd
        month_over = (
            limits.monthly_budget_usd is not None and self.month_usd >= limits.monthly_budget_usd
        )
        return day_over or month_over


@dataclass(frozen=True, slots=True)
class BackendHealth:
    """What the shared state says about one backend; fills `BackendSnapshot` fields of that name."""

    in_cooldown: bool = False
    predicted_ttft_ms: float | None = None
    cooldown_until: float = 0.0  # when the cooldown ends (the state's wall clock); 0 when none


@dataclass(frozen=True, slots=True)
class AttemptObservation:
    """The outcome of one upstream attempt.

    `ok` is False for connect errors, timeouts, 5xx and 429; such failures count toward cooldown.
    `ttft_ms` is the time until the first response byte: the first SSE event of a streamed reply,
    the whole answer of a non-streamed one (`streamed=False`), whose first byte only comes once
    generation is over, so its decode rate is taken over the whole `duration_s`.
    """

    backend: str
    ok: bool
    ttft_ms: float | None = None
    output_tokens: int = 0
    duration_s: float = 0.0
    streamed: bool = True
    # A failure whose backend asked for a wait (Retry-After): cooled down that long at once.
    retry_after_s: float | None = None


class StateUnavailableError(Exception):
    """The shared state cannot be reached and its settings say to fail closed for this check.

    Raised by `admit` (rate limits) and `spend` (budgets) of shared implementations; the router
    answers 503 instead of guessing. Never raised for anything privacy depends on.
    """


class RouterState(Protocol):
    """The state shared across router replicas."""

    async def admit(self, tenant: str, limits: TenantLimits, estimated_tokens: int) -> Admission:
        """Count one request and `estimated_tokens` against the tenant's per-minute windows.

        Nothing is counted when the answer is not ADMITTED. Must be atomic across replicas.
        """
        ...

    async def record_usage(
        self, tenant: str, backend: str, input_tokens: int, output_tokens: int, cost_usd: float
    ) -> None:
        """Add a finished request's cost to the tenant's spend (day and month)."""
        ...

    async def spend(self, tenant: str) -> Spend:
        """The tenant's spend so far in the current UTC day and month."""
        ...

    async def observe(self, observation: AttemptObservation) -> None:
        """Feed one upstream attempt into the backend's latency, error and cooldown statistics."""
        ...

    async def backend_health(self) -> Mapping[str, BackendHealth]:
        """Health of every backend observed so far; a missing backend is healthy, unmeasured."""
        ...

    async def aclose(self) -> None:
        """Release connections; the state is not used afterwards."""
        ...


@dataclass(frozen=True, slots=True)
class CooldownPolicy:
    """When a backend is put aside: `failures` consecutive failed attempts -> `seconds` off."""

    failures: int = 3
    seconds: float = 30.0


@dataclass(slots=True)
class _BackendStats:
    consecutive_failures: int = 0
    cooldown_until: float = 0.0
    ttft_ewma_ms: float | None = None


@dataclass(slots=True)
class _TenantWindow:
    minute: int = -1
    requests: int = 0
    tokens: int = 0


@dataclass(slots=True)
class _TenantSpend:
    day: str = ""
    month: str = ""
    day_usd: float = 0.0
    month_usd: float = 0.0


class InProcessState:
    """`RouterState` for one replica: plain dictionaries, never suspends."""

    # Weight of the newest observation in the time-to-first-token moving average.
    TTFT_SMOOTHING = 0.2
    # Relative change of the latency estimate that makes it worth publishing a new health view.
    TTFT_REPUBLISH_FRACTION = 0.05

    def __init__(self, clock: Clock = time.time, cooldown: CooldownPolicy | None = None) -> None:
        self._clock = clock
        self._cooldown = cooldown or CooldownPolicy()
        self._windows: dict[str, _TenantWindow] = {}
        self._spend: dict[str, _TenantSpend] = {}
        self._backends: dict[str, _BackendStats] = {}
        self._health: dict[str, BackendHealth] = {}
        self._health_valid_until = math.inf
        self._day_number = -1
        self._day_key = ""

    async def admit(self, tenant: str, limits: TenantLimits, estimated_tokens: int) -> Admission:
        if not limits.has_rate_limits:
            return Admission.ADMITTED
        minute = int(self._clock() // RATE_WINDOW_S)
        window = self._windows.get(tenant)
        if window is None:  # not setdefault: that builds an entry to throw away on every call
            window = self._windows[tenant] = _TenantWindow()
        if window.minute != minute:
            window.minute, window.requests, window.tokens = minute, 0, 0
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        if rpm is not None and window.requests + 1 > rpm:
            return Admission.RPM_EXCEEDED
        if tpm is not None and window.tokens + estimated_tokens > tpm:
            return Admission.TPM_EXCEEDED
        window.requests += 1
        window.tokens += estimated_tokens
        return Admission.ADMITTED

    async def record_usage(
        self, tenant: str, backend: str, input_tokens: int, output_tokens: int, cost_usd: float
    ) -> None:
        if cost_usd <= 0.0:
            return
        entry = self._current_spend(tenant)
        entry.day_usd += cost_usd
        entry.month_usd += cost_usd

    async def spend(self, tenant: str) -> Spend:
        if tenant not in self._spend:
            return Spend()
        entry = self._current_spend(tenant)
        return Spend(day_usd=entry.day_usd, month_usd=entry.month_usd)

    async def observe(self, observation: AttemptObservation) -> None:
        stats = self._backends.get(observation.backend)
        if stats is None:
            stats = self._backends[observation.backend] = _BackendStats()
        now = self._clock()
        if observation.ok:
            stats.consecutive_failures = 0
            if observation.ttft_ms is not None:
                previous = stats.ttft_ewma_ms
                stats.ttft_ewma_ms = (
                    observation.ttft_ms
                    if previous is None
                    else previous + self.TTFT_SMOOTHING * (observation.ttft_ms - previous)
                )
        else:
            stats.consecutive_failures += 1
            if stats.consecutive_failures >= self._cooldown.failures:
                stats.cooldown_until = now + self._cooldown.seconds
                stats.consecutive_failures = 0
            if observation.retry_after_s is not None:
                stats.cooldown_until = max(stats.cooldown_until, now + observation.retry_after_s)
        if self._health_changed(observation.backend, stats, now):
            self._refresh_health(now)

    def _health_changed(self, backend: str, stats: _BackendStats, now: float) -> bool:
        """Whether the published view is out of date enough to rebuild.

        The view keeps its identity while nothing material changed (the router caches its
        snapshot overlay by that identity), so a latency estimate is republished only when it
        moves by more than `TTFT_REPUBLISH_FRACTION`.
        """
        published = self._health.get(backend)
        if published is None or published.in_cooldown != (stats.cooldown_until > now):
            return True
        old, new = published.predicted_ttft_ms, stats.ttft_ewma_ms
        if old is None or new is None:
            return old is not new
        return abs(new - old) > self.TTFT_REPUBLISH_FRACTION * old

    async def backend_health(self) -> Mapping[str, BackendHealth]:
        if self._clock() >= self._health_valid_until:
            self._refresh_health(self._clock())
        return self._health

    async def aclose(self) -> None:
        return None

    def _refresh_health(self, now: float) -> None:
        """Rebuild the health view; it stays valid until the next observation or cooldown end."""
        health: dict[str, BackendHealth] = {}
        valid_until = math.inf
        for name, stats in self._backends.items():
            in_cooldown = stats.cooldown_until > now
            if in_cooldown:
                valid_until = min(valid_until, stats.cooldown_until)
            health[name] = BackendHealth(
                in_cooldown=in_cooldown,
                predicted_ttft_ms=stats.ttft_ewma_ms,
                cooldown_until=stats.cooldown_until if in_cooldown else 0.0,
            )
        self._health = health
        self._health_valid_until = valid_until

    def _utc_day(self) -> str:
        """Today's UTC date as YYYY-MM-DD, formatted once per day rather than per request."""
        day_number = int(self._clock() // 86400)
        if day_number != self._day_number:
            self._day_number = day_number
            self._day_key = datetime.fromtimestamp(day_number * 86400, UTC).strftime("%Y-%m-%d")
        return self._day_key

    def _current_spend(self, tenant: str) -> _TenantSpend:
        today = self._utc_day()
        entry = self._spend.get(tenant)
        if entry is None:
            entry = self._spend[tenant] = _TenantSpend()
        if entry.day != today:
            entry.day, entry.day_usd = today, 0.0
        if entry.month != today[:7]:
            entry.month, entry.month_usd = today[:7], 0.0
        return entry


__all__ = [
    "Admission",
    "AttemptObservation",
    "BackendHealth",
    "Clock",
    "CooldownPolicy",
    "InProcessState",
    "RouterState",
    "Spend",
    "StateUnavailableError",
    "TenantLimits",
]
