"""RedisState against a real Valkey server: limits, budgets, shared health, and outages."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import pytest
from modelplane.router.adapters.redis_state import (
    RedisState,
    RedisStateSettings,
    StateUnavailableError,
)
from modelplane.router.state import Admission, AttemptObservation, Spend, TenantLimits

from modelplane.testing.valkey import ValkeyProcess

NOW = 1_795_000_000.0  # 2026-11-18, mid-minute


class FakeClock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


StateFactory = Callable[..., RedisState]


@pytest.fixture
async def make_state(valkey: ValkeyProcess) -> AsyncIterator[StateFactory]:
    created: list[RedisState] = []

    def make(clock: FakeClock | None = None, **overrides: object) -> RedisState:
        settings = RedisStateSettings(url=valkey.url, probe_interval_s=0.05, **overrides)  # type: ignore[arg-type]
        state = RedisState(settings, clock=clock or FakeClock())
        created.append(state)
        return state

    yield make
    for state in created:
        await state.aclose()


async def wait_until_available(state: RedisState) -> None:
    for _ in range(200):
        if state.available:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the Redis circuit never closed again")


async def test_rpm_limit_holds_across_two_replicas(make_state: StateFactory) -> None:
    first, second = make_state(), make_state()
    limits = TenantLimits(requests_per_minute=5)

    outcomes = await asyncio.gather(
        *(
            state.admit("acme", limits, 10)
            for state in itertools.islice(itertools.cycle([first, second]), 12)
        )
    )

    assert outcomes.count(Admission.ADMITTED) == 5
    assert outcomes.count(Admission.RPM_EXCEEDED) == 7


async def test_tpm_limit_counts_only_admitted_requests(make_state: StateFactory) -> None:
    state = make_state()
    limits = TenantLimits(tokens_per_minute=100)

    assert await state.admit("acme", limits, 60) is Admission.ADMITTED
    assert await state.admit("acme", limits, 60) is Admission.TPM_EXCEEDED
    assert await state.admit("acme", limits, 40) is Admission.ADMITTED
    assert await state.admit("acme", limits, 1) is Admission.TPM_EXCEEDED


async def test_limit_window_resets_on_the_next_minute(make_state: StateFactory) -> None:
    clock = FakeClock()
    state = make_state(clock)
    limits = TenantLimits(requests_per_minute=1)
    assert await state.admit("acme", limits, 0) is Admission.ADMITTED
    assert await state.admit("acme", limits, 0) is Admission.RPM_EXCEEDED

    clock.now += 60

    assert await state.admit("acme", limits, 0) is Admission.ADMITTED


async def test_spend_is_shared_and_bucketed_by_day_and_month(make_state: StateFactory) -> None:
    clock = FakeClock()
    first, second = make_state(clock), make_state(clock)
    await first.record_usage("acme", "gpt-4o", 100, 50, 0.25)
    await second.record_usage("acme", "gpt-4o", 100, 50, 0.5)
    await second.flush()

    assert await first.spend("acme") == Spend(day_usd=0.75, month_usd=0.75)
    assert await second.spend("other") == Spend()

    clock.now += 86_400  # next day, same month
    assert await first.spend("acme") == Spend(day_usd=0.0, month_usd=0.75)


async def test_budget_exceeded_after_spend_from_another_replica(make_state: StateFactory) -> None:
    first, second = make_state(), make_state()
    limits = TenantLimits(daily_budget_usd=1.0)
    await first.record_usage("acme", "gpt-4o", 1000, 1000, 1.2)
    await first.flush()

    assert (await second.spend("acme")).exceeds(limits)


async def test_new_replica_sees_measured_latency_and_cooldown(make_state: StateFactory) -> None:
    measuring = make_state(cooldown_failures=2, cooldown_s=30.0)
    await measuring.observe(
        AttemptObservation(
            backend="llama", ok=True, ttft_ms=120.0, output_tokens=100, duration_s=1.12
        )
    )
    await measuring.observe(AttemptObservation(backend="flaky", ok=False))
    await measuring.observe(AttemptObservation(backend="flaky", ok=False))
    await measuring.flush()

    fresh = make_state()
    health = await fresh.backend_health()
    statistics = await fresh.backend_statistics()

    assert health["llama"].predicted_ttft_ms == pytest.approx(120.0)
    assert not health["llama"].in_cooldown
    assert health["flaky"].in_cooldown
    assert statistics["llama"].tokens_per_second == pytest.approx(100.0)
    assert statistics["flaky"].error_rate == pytest.approx(1.0)


async def test_cooldown_applies_at_once_on_the_observing_replica(make_state: StateFactory) -> None:
    state = make_state(cooldown_failures=1)
    await state.backend_health()  # cached, empty

    await state.observe(AttemptObservation(backend="flaky", ok=False))

    assert (await state.backend_health())["flaky"].in_cooldown


async def test_an_asked_wait_cools_a_backend_down_for_every_replica(
    make_state: StateFactory,
) -> None:
    clock = FakeClock()
    observing = make_state(clock, cooldown_failures=3, cooldown_s=30.0)
    await observing.observe(AttemptObservation(backend="gpt-4o", ok=False, retry_after_s=5.0))
    other = make_state(clock)

    health = (await other.backend_health())["gpt-4o"]
    assert health.in_cooldown  # one failure, not three
    assert health.cooldown_until == pytest.approx(clock.now + 5.0)  # what clients are told
    clock.now += 6
    assert not (await make_state(clock).backend_health())["gpt-4o"].in_cooldown


async def test_cooldown_ends_after_its_duration(make_state: StateFactory) -> None:
    clock = FakeClock()
    state = make_state(clock, cooldown_failures=1, cooldown_s=10.0)
    await state.observe(AttemptObservation(backend="flaky", ok=False))
    clock.now += 11

    assert not (await state.backend_health())["flaky"].in_cooldown


async def test_outage_keeps_limits_open_and_budgets_closed_by_default(
    make_state: StateFactory, valkey: ValkeyProcess
) -> None:
    state = make_state()
    valkey.stop()

    assert await state.admit("acme", TenantLimits(requests_per_minute=1), 0) is Admission.ADMITTED
    assert not state.available
    with pytest.raises(StateUnavailableError, match="budget"):
        await state.spend("acme")


async def test_outage_settings_can_close_limits_and_open_budgets(
    make_state: StateFactory, valkey: ValkeyProcess
) -> None:
    state = make_state(limits_fail_open=False, budgets_fail_open=True)
    await state.record_usage("acme", "gpt-4o", 10, 10, 0.5)
    assert await state.spend("acme") == Spend(day_usd=0.5, month_usd=0.5)
    valkey.stop()

    with pytest.raises(StateUnavailableError, match="rate limits"):
        await state.admit("acme", TenantLimits(requests_per_minute=10), 0)
    await state.record_usage("acme", "gpt-4o", 10, 10, 0.25)
    assert await state.spend("acme") == Spend(day_usd=0.75, month_usd=0.75)


async def test_spend_recorded_during_outage_reaches_redis_when_it_returns(
    make_state: StateFactory, valkey: ValkeyProcess
) -> None:
    state, other = make_state(), make_state()
    await state.record_usage("acme", "gpt-4o", 10, 10, 0.5)
    await state.flush()
    valkey.stop()
    await state.record_usage("acme", "gpt-4o", 10, 10, 0.25)
    await state.flush()  # fails: opens the circuit, the spend stays in memory
    assert not state.available
    await state.record_usage("acme", "gpt-4o", 10, 10, 0.25)  # circuit open: no Redis call

    valkey.start()  # an empty server: what was written before the outage is gone
    await wait_until_available(state)

    assert await other.spend("acme") == Spend(day_usd=0.5, month_usd=0.5)


async def test_concurrent_flushes_write_pending_spend_once(
    make_state: StateFactory, valkey: ValkeyProcess
) -> None:
    state, other = make_state(), make_state()
    await state.record_usage("acme", "gpt-4o", 10, 10, 0.5)

    # The batch writer, an explicit flush and the recovery after an outage can overlap.
    await asyncio.gather(state.flush(), state.flush(), state.flush())

    assert await other.spend("acme") == Spend(day_usd=0.5, month_usd=0.5)
    assert await state.spend("acme") == Spend(day_usd=0.5, month_usd=0.5)


async def test_failures_during_outage_still_cool_a_backend_down_locally(
    make_state: StateFactory, valkey: ValkeyProcess
) -> None:
    state = make_state(cooldown_failures=2)
    valkey.stop()
    for _ in range(2):
        await state.observe(AttemptObservation(backend="flaky", ok=False))

    assert (await state.backend_health())["flaky"].in_cooldown


async def test_requests_keep_flowing_through_an_outage_and_state_returns(
    make_state: StateFactory, valkey: ValkeyProcess
) -> None:
    state = make_state()
    limits = TenantLimits(requests_per_minute=1000)
    outcomes: list[Admission] = []
    for round_number in range(30):
        if round_number == 10:
            valkey.stop()
        if round_number == 20:
            valkey.start()
            await wait_until_available(state)
        outcomes.extend(await asyncio.gather(*(state.admit("acme", limits, 1) for _ in range(5))))

    assert outcomes == [Admission.ADMITTED] * 150
    other = make_state(limits_fail_open=False)
    # The restarted server counted only the last ten rounds.
    assert await other.admit("acme", TenantLimits(requests_per_minute=51), 0) is Admission.ADMITTED
    assert (
        await other.admit("acme", TenantLimits(requests_per_minute=51), 0) is Admission.RPM_EXCEEDED
    )


async def test_health_view_is_the_same_object_until_it_changes(make_state: StateFactory) -> None:
    state = make_state(cooldown_failures=1)
    first = await state.backend_health()

    assert await state.backend_health() is first

    await state.observe(AttemptObservation(backend="flaky", ok=False))
    changed = await state.backend_health()

    assert changed is not first
    assert changed["flaky"].in_cooldown


async def test_successful_observations_and_spend_are_written_in_batches(
    make_state: StateFactory,
) -> None:
    writer, reader = make_state(write_interval_s=0.05), make_state()
    for _ in range(5):
        await writer.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=100.0))
        await writer.record_usage("acme", "llama", 10, 10, 0.1)

    assert await writer.spend("acme") == Spend(
        day_usd=pytest.approx(0.5), month_usd=pytest.approx(0.5)
    )
    for _ in range(100):
        if (await reader.spend("acme")).day_usd > 0:
            break
        await asyncio.sleep(0.02)
    assert await reader.spend("acme") == Spend(
        day_usd=pytest.approx(0.5), month_usd=pytest.approx(0.5)
    )
    assert (await make_state().backend_health())["llama"].predicted_ttft_ms == pytest.approx(100.0)
