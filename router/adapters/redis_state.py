"""`RouterState` in Redis: limits, budgets, latency and cooldowns shared by every router replica.

Keys (all under `key_prefix`; a tenant's keys share the `{tenant}` hash tag so a Redis Cluster
keeps them on one slot):

- `<prefix>:{<tenant>}:rl:<minute>`: hash `r` (requests) / `t` (tokens) for one fixed window
  aligned to the UTC minute, like `InProcessState`. A fixed window is one key and one Lua call per
  request; the price is that a tenant can burst up to twice its limit across a minute boundary.
  The check and the increment run in one Lua script, so the limit holds across replicas.
- `<prefix>:{<tenant>}:spend:d:<YYYY-MM-DD>` and `...:spend:m:<YYYY-MM>`: INCRBYFLOAT counters in
  USD, expiring two days / 32 days after their last write.
- `<prefix>:backends`: one hash, a JSON document per backend with moving averages (EWMA) of time to
  first token, per-request decode rate, request duration and error rate, plus the consecutive
  failure count and the cooldown deadline. One Lua script updates a document atomically; one
  HGETALL reads every backend, so a new replica routes on what the others measured.

Failure semantics: privacy never reads this state. When Redis fails, a circuit opens: calls stop
touching Redis at once (no request pays a connect timeout while it is down) and a background probe
pings it every `probe_interval_s`. While open, rate limits admit (`limits_fail_open`, default) or
raise `StateUnavailableError`; budgets raise `StateUnavailableError` (default, `budgets_fail_open`
false) or use the last spend seen plus what this replica recorded since. Spend recorded while Redis
is down is kept in memory and added to Redis when it is back, so no cost is lost; latency and
cooldown observations go to a local `InProcessState` until then.

Writes are batched: spend and successful observations are buffered and written every
`write_interval_s` (one INCRBYFLOAT pair per tenant, one Lua call for all observations), a failed
attempt at once, so a request pays no Redis round trip beyond its own limit and budget checks.
A replica's own unwritten spend is added to what it reads, so its budget checks never lag itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis.asyncio as redis
from modelplane.router.state import (
    RATE_WINDOW_S,
    Admission,
    AttemptObservation,
    BackendHealth,
    Clock,
    CooldownPolicy,
    InProcessState,
    Spend,
    StateUnavailableError,
    TenantLimits,
)
from pydantic import BaseModel, ConfigDict, Field
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

logger = logging.getLogger(__name__)

T = TypeVar("T")

_DAY_KEY_TTL_S = 2 * 86_400
_MONTH_KEY_TTL_S = 32 * 86_400
_WINDOW_KEY_TTL_S = 120

# KEYS[1] window hash. ARGV: rpm ('' = none), tpm ('' = none), tokens, ttl.
# Returns 0 admitted, 1 rpm exceeded, 2 tpm exceeded; counts only what it admits.
_ADMIT_LUA = """
local counts = redis.call('HMGET', KEYS[1], 'r', 't')
local requests = tonumber(counts[1] or '0')
local tokens = tonumber(counts[2] or '0')
local asked = tonumber(ARGV[3])
if ARGV[1] ~= '' and requests + 1 > tonumber(ARGV[1]) then return 1 end
if ARGV[2] ~= '' and tokens + asked > tonumber(ARGV[2]) then return 2 end
redis.call('HINCRBY', KEYS[1], 'r', 1)
redis.call('HINCRBY', KEYS[1], 't', asked)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 0
"""

# KEYS[1] backends hash. ARGV[1]: JSON array of observations, oldest first, each
# [backend, ok (true/false), ttft_ms, tokens_per_s, duration_s (each null when unknown), now,
# retry_after_s (a failure's asked wait, or null: cools the backend down that long at once)];
# ARGV[2] smoothing, ARGV[3] failures before cooldown, ARGV[4] cooldown seconds.
# Returns a JSON object: backend -> cooldown deadline, for the backends observed.
_OBSERVE_LUA = """
local alpha = tonumber(ARGV[2])
local threshold = tonumber(ARGV[3])
local cooldown = tonumber(ARGV[4])
local function ewma(old, new)
  if old == nil then return new end
  return old + alpha * (new - old)
end
local function known(value)
  return value ~= nil and value ~= cjson.null
end
local batch = cjson.decode(ARGV[1])
local touched = {}
for _, item in ipairs(batch) do
  local backend = item[1]
  local stats = touched[backend]
  if stats == nil then
    local raw = redis.call('HGET', KEYS[1], backend)
    stats = {}
    if raw then stats = cjson.decode(raw) end
  end
  if item[2] then
    stats.err = ewma(stats.err, 0)
    stats.fails = 0
    if known(item[3]) then stats.ttft = ewma(stats.ttft, item[3]) end
    if known(item[4]) then stats.tps = ewma(stats.tps, item[4]) end
    if known(item[5]) then stats.dur = ewma(stats.dur, item[5]) end
  else
    stats.err = ewma(stats.err, 1)
    stats.fails = (stats.fails or 0) + 1
    if stats.fails >= threshold then
      stats.cool = item[6] + cooldown
      stats.fails = 0
    end
    if known(item[7]) and (stats.cool or 0) < item[6] + item[7] then
      stats.cool = item[6] + item[7]
    end
  end
  touched[backend] = stats
end
local deadlines = {}
for backend, stats in pairs(touched) do
  redis.call('HSET', KEYS[1], backend, cjson.encode(stats))
  deadlines[backend] = stats.cool or 0
end
return cjson.encode(deadlines)
"""


class RedisStateSettings(BaseModel):
    """How the router uses Redis (`--redis-url` / `MODELPLANE_REDIS_URL` set `url`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="redis://[user:password@]host:port/db")
    key_prefix: str = "modelplane"
    operation_timeout_s: float = Field(default=0.1, gt=0)
    connect_timeout_s: float = Field(default=0.25, gt=0)
    limits_fail_open: bool = True
    budgets_fail_open: bool = False
    probe_interval_s: float = Field(default=1.0, gt=0)
    health_refresh_s: float = Field(default=0.5, gt=0)
    cooldown_failures: int = Field(default=3, ge=1)
    cooldown_s: float = Field(default=30.0, gt=0)
    smoothing: float = Field(default=0.2, gt=0, le=1)
    # Successful observations and spend are written in batches this often (a failure at once),
    # so a request costs no Redis round trip beyond its limit and budget checks.
    write_interval_s: float = Field(default=0.05, gt=0)


@dataclass(frozen=True, slots=True)
class BackendStatistics:
    """Everything measured about one backend; `None` while not measured yet."""

    ttft_ms: float | None = None
    tokens_per_second: float | None = None  # decode rate of one request
    request_duration_s: float | None = None
    error_rate: float | None = None
    cooldown_until: float = 0.0


class _Unavailable(Exception):
    """Internal: the circuit is open or the call just failed."""


def _tokens_per_second(observation: AttemptObservation) -> float | None:
    if not observation.ok or observation.output_tokens <= 0 or observation.duration_s <= 0:
        return None
    ttft_s = (observation.ttft_ms or 0.0) / 1000.0 if observation.streamed else 0.0
    decode_s = observation.duration_s - ttft_s
    if decode_s <= 0:
        return None
    return observation.output_tokens / decode_s


def _number_arg(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _parse_statistics(raw: str) -> BackendStatistics:
    document: dict[str, Any] = json.loads(raw)

    def number(key: str) -> float | None:
        value = document.get(key)
        return float(value) if isinstance(value, int | float) else None

    return BackendStatistics(
        ttft_ms=number("ttft"),
        tokens_per_second=number("tps"),
        request_duration_s=number("dur"),
        error_rate=number("err"),
        cooldown_until=number("cool") or 0.0,
    )


class RedisState:
    """`RouterState` shared across replicas through one Redis server."""

    def __init__(
        self,
        settings: RedisStateSettings,
        clock: Clock = time.time,
        client: redis.Redis | None = None,
    ) -> None:
        self._settings = settings
        self._clock = clock
        self._redis = client or redis.Redis.from_url(
            settings.url,
            decode_responses=True,
            socket_timeout=settings.operation_timeout_s,
            socket_connect_timeout=settings.connect_timeout_s,
            # The circuit below is the retry policy: a retrying client would make every request
            # wait through backoffs while Redis is down.
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._admit_script = self._redis.register_script(_ADMIT_LUA)
        self._observe_script = self._redis.register_script(_OBSERVE_LUA)
        self._backends_key = f"{settings.key_prefix}:backends"
        self._call_timeout_s = settings.operation_timeout_s + settings.connect_timeout_s
        self._local = InProcessState(
            clock=clock,
            cooldown=CooldownPolicy(
                failures=settings.cooldown_failures, seconds=settings.cooldown_s
            ),
        )
        self._circuit_open = False
        self._probe: asyncio.Task[None] | None = None
        self._statistics: dict[str, BackendStatistics] = {}
        self._statistics_fetched_at: float | None = None
        self._refresh: asyncio.Task[None] | None = None
        self._pending_spend: dict[tuple[str, str, str], float] = {}  # not yet in Redis
        self._spend_flush = asyncio.Lock()
        self._pending_observations: list[tuple[AttemptObservation, float]] = []
        self._writer: asyncio.Task[None] | None = None
        # What Redis last said per tenant, with the (day, month) it was for.
        self._last_spend: dict[str, tuple[str, str, Spend]] = {}
        self._health: Mapping[str, BackendHealth] = {}
        self._health_key: tuple[int, int] = (0, 0)
        self._health_valid_until = math.inf
        self._health_sources: tuple[object, object] = (None, None)
        self._closed = False

    @property
    def available(self) -> bool:
        """False while the circuit is open (Redis failed and has not answered a probe yet)."""
        return not self._circuit_open

    # --- limits -----------------------------------------------------------------------------

    async def admit(self, tenant: str, limits: TenantLimits, estimated_tokens: int) -> Admission:
        if not limits.has_rate_limits:
            return Admission.ADMITTED
        minute = int(self._clock() // RATE_WINDOW_S)
        key = f"{self._settings.key_prefix}:{{{tenant}}}:rl:{minute}"
        args = [
            _number_arg(limits.requests_per_minute),
            _number_arg(limits.tokens_per_minute),
            str(max(0, estimated_tokens)),
            str(_WINDOW_KEY_TTL_S),
        ]
        try:
            outcome = await self._call(lambda: self._admit_script(keys=[key], args=args))
        except _Unavailable as error:
            if self._settings.limits_fail_open:
                return Admission.ADMITTED
            raise StateUnavailableError(
                "rate limits cannot be checked: shared router state (Redis) is unavailable"
            ) from error
        return (Admission.ADMITTED, Admission.RPM_EXCEEDED, Admission.TPM_EXCEEDED)[int(outcome)]

    # --- spend ------------------------------------------------------------------------------

    async def record_usage(
        self, tenant: str, backend: str, input_tokens: int, output_tokens: int, cost_usd: float
    ) -> None:
        if cost_usd <= 0.0:
            return
        day, month = self._periods()
        bucket = (tenant, day, month)
        self._pending_spend[bucket] = self._pending_spend.get(bucket, 0.0) + cost_usd
        self._schedule_write()

    async def spend(self, tenant: str) -> Spend:
        day, month = self._periods()
        keys = [self._spend_key(tenant, "d", day), self._spend_key(tenant, "m", month)]
        try:
            values = await self._call(lambda: self._redis.mget(keys))
        except _Unavailable as error:
            if not self._settings.budgets_fail_open:
                raise StateUnavailableError(
                    "budget cannot be verified: shared router state (Redis) is unavailable"
                ) from error
            return self._spend_while_unavailable(tenant, day, month)
        stored = Spend(day_usd=float(values[0] or 0.0), month_usd=float(values[1] or 0.0))
        self._last_spend[tenant] = (day, month, stored)  # unwritten spend is added on top
        return Spend(
            day_usd=stored.day_usd + self._pending(tenant, day=day),
            month_usd=stored.month_usd + self._pending(tenant, month=month),
        )

    # --- backend statistics -----------------------------------------------------------------

    async def observe(self, observation: AttemptObservation) -> None:
        if self._circuit_open:
            await self._local.observe(observation)
            return
        self._pending_observations.append((observation, self._clock()))
        if observation.ok:
            self._schedule_write()
        else:
            await self._write_observations()  # failures count toward cooldown at once

    async def flush(self) -> None:
        """Write buffered observations and spend now (they are otherwise written in batches)."""
        await self._write_observations()
        await self._flush_pending_spend()

    async def backend_health(self) -> Mapping[str, BackendHealth]:
        """The shared health view; the same object is returned until something in it changes.

        Callers may cache what they derive from it by identity (the router's snapshot overlay
        does), so it is rebuilt only when statistics arrive, a cooldown ends or the circuit
        opens or closes.
        """
        statistics = await self.backend_statistics()
        now = self._clock()
        local = await self._local.backend_health() if self._circuit_open else None
        key = (id(statistics), id(local))
        if key != self._health_key or now >= self._health_valid_until:
            health: dict[str, BackendHealth] = {}
            valid_until = math.inf
            for name, stats in statistics.items():
                in_cooldown = stats.cooldown_until > now
                if in_cooldown:
                    valid_until = min(valid_until, stats.cooldown_until)
                health[name] = BackendHealth(
                    in_cooldown=in_cooldown,
                    predicted_ttft_ms=stats.ttft_ms,
                    cooldown_until=stats.cooldown_until if in_cooldown else 0.0,
                )
            if local is not None:
                health.update(local)
            # Keep the sources alive so their ids cannot be reused by other objects.
            self._health_sources = (statistics, local)
            self._health, self._health_key, self._health_valid_until = health, key, valid_until
        return self._health

    async def backend_statistics(self) -> Mapping[str, BackendStatistics]:
        """Every backend's shared statistics, refreshed at most every `health_refresh_s`.

        Only the first call waits for Redis; later ones return the cached view at once and
        refresh it in the background, so the request path never waits on a stale view.
        """
        if self._statistics_fetched_at is None:
            if not self._circuit_open:
                await self._start_refresh()
        elif (
            self._clock() - self._statistics_fetched_at >= self._settings.health_refresh_s
            and not self._circuit_open
            and (self._refresh is None or self._refresh.done())
        ):
            self._refresh = asyncio.create_task(self._refresh_statistics())
        return self._statistics

    async def aclose(self) -> None:
        self._closed = True
        for task in (self._probe, self._refresh, self._writer):
            if task is not None and not task.done():
                task.cancel()
        await self.flush()
        await self._redis.aclose()

    # --- internals --------------------------------------------------------------------------

    def _schedule_write(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_after_interval())

    async def _write_after_interval(self) -> None:
        await asyncio.sleep(self._settings.write_interval_s)
        await self.flush()

    async def _write_observations(self) -> None:
        if not self._pending_observations:
            return
        batch, self._pending_observations = self._pending_observations, []
        settings = self._settings
        document = json.dumps(
            [
                [
                    observation.backend,
                    observation.ok,
                    observation.ttft_ms,
                    _tokens_per_second(observation),
                    observation.duration_s if observation.ok else None,
                    at,
                    observation.retry_after_s,
                ]
                for observation, at in batch
            ]
        )
        args = [document, repr(settings.smoothing), str(settings.cooldown_failures)]
        args.append(repr(settings.cooldown_s))
        try:
            raw = await self._call(
                lambda: self._observe_script(keys=[self._backends_key], args=args)
            )
        except _Unavailable:
            for observation, _ in batch:  # Redis is down: cooldowns still apply locally
                await self._local.observe(observation)
            return
        deadlines: dict[str, float] = json.loads(raw) if raw else {}
        now = self._clock()
        cooling = {name: until for name, until in deadlines.items() if float(until) > now}
        if cooling:
            # This replica stops using the backend at once instead of at the next refresh.
            statistics = dict(self._statistics)
            for name, until in cooling.items():
                statistics[name] = dataclasses.replace(
                    statistics.get(name, BackendStatistics()), cooldown_until=float(until)
                )
            self._statistics = statistics

    async def _start_refresh(self) -> None:
        if self._refresh is None or self._refresh.done():
            self._refresh = asyncio.create_task(self._refresh_statistics())
        await asyncio.shield(self._refresh)

    async def _refresh_statistics(self) -> None:
        try:
            raw = await self._call(lambda: self._redis.hgetall(self._backends_key))
        except _Unavailable:
            return
        statistics: dict[str, BackendStatistics] = {}
        for name, document in raw.items():
            try:
                statistics[str(name)] = _parse_statistics(str(document))
            except (ValueError, TypeError):
                logger.warning("ignoring malformed statistics for backend %r in Redis", name)
        self._statistics = statistics
        self._statistics_fetched_at = self._clock()

    async def _add_spend(self, tenant: str, day: str, month: str, cost_usd: float) -> None:
        day_key = self._spend_key(tenant, "d", day)
        month_key = self._spend_key(tenant, "m", month)
        async with self._redis.pipeline(transaction=True) as pipeline:
            pipeline.incrbyfloat(day_key, cost_usd)
            pipeline.expire(day_key, _DAY_KEY_TTL_S)
            pipeline.incrbyfloat(month_key, cost_usd)
            pipeline.expire(month_key, _MONTH_KEY_TTL_S)
            await pipeline.execute()

    def _spend_key(self, tenant: str, period: str, value: str) -> str:
        return f"{self._settings.key_prefix}:{{{tenant}}}:spend:{period}:{value}"

    def _periods(self) -> tuple[str, str]:
        day = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%d")
        return day, day[:7]

    def _pending(self, tenant: str, day: str | None = None, month: str | None = None) -> float:
        return sum(
            usd
            for (pending_tenant, pending_day, pending_month), usd in self._pending_spend.items()
            if pending_tenant == tenant
            and (day is None or pending_day == day)
            and (month is None or pending_month == month)
        )

    def _spend_while_unavailable(self, tenant: str, day: str, month: str) -> Spend:
        last_day, last_month, last = self._last_spend.get(tenant, (day, month, Spend()))
        return Spend(
            day_usd=(last.day_usd if last_day == day else 0.0) + self._pending(tenant, day=day),
            month_usd=(last.month_usd if last_month == month else 0.0)
            + self._pending(tenant, month=month),
        )

    async def _call(self, operation: Callable[[], Awaitable[T]]) -> T:
        if self._circuit_open:
            raise _Unavailable
        try:
            async with asyncio.timeout(self._call_timeout_s):
                return await operation()
        except (RedisError, OSError, TimeoutError) as error:
            self._open_circuit(error)
            raise _Unavailable from error

    def _open_circuit(self, error: BaseException) -> None:
        if self._circuit_open or self._closed:
            return
        logger.warning(
            "shared router state (Redis) unavailable, continuing without it: %s", error or "timeout"
        )
        self._circuit_open = True
        self._probe = asyncio.create_task(self._probe_until_available())

    async def _probe_until_available(self) -> None:
        while self._circuit_open and not self._closed:
            await asyncio.sleep(self._settings.probe_interval_s)
            try:
                async with asyncio.timeout(self._call_timeout_s):
                    # Connections pooled before the failure may lead to a server that is gone
                    # (a restarted Redis): reused, each would fail one request and reopen the
                    # circuit. The probe and the calls after it connect afresh.
                    await self._redis.connection_pool.disconnect()
                    await self._redis.ping()
            except (RedisError, OSError, TimeoutError):
                continue
            self._circuit_open = False
            logger.warning("shared router state (Redis) is available again")
            await self._flush_pending_spend()
            await self._refresh_statistics()

    async def _flush_pending_spend(self) -> None:
        # One flush at a time: the batch writer, an explicit flush and the recovery after an
        # outage may all start one, and each would add the same pending amount to Redis. An
        # amount stays pending while it is written, so that `spend` keeps counting it.
        async with self._spend_flush:
            while self._pending_spend and not self._circuit_open:
                (tenant, day, month), usd = next(iter(self._pending_spend.items()))
                try:
                    await self._call(lambda: self._add_spend(tenant, day, month, usd))  # noqa: B023
                except _Unavailable:
                    return
                remaining = self._pending_spend.get((tenant, day, month), 0.0) - usd
                if remaining > 0:
                    self._pending_spend[(tenant, day, month)] = remaining
                else:
                    del self._pending_spend[(tenant, day, month)]


__all__ = [
    "BackendStatistics",
    "RedisState",
    "RedisStateSettings",
    "StateUnavailableError",
]
