"""The in-process router state: per-minute limits, spend buckets, cooldowns, latency estimate."""

from __future__ import annotations

from datetime import UTC, datetime

from modelplane.router.state import (
    Admission,
    AttemptObservation,
    BackendHealth,
    CooldownPolicy,
    InProcessState,
    TenantLimits,
)


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def clock_at(*args: int) -> FakeClock:
    return FakeClock(datetime(*args, tzinfo=UTC))  # type: ignore[misc]


async def test_requests_per_minute_admit_up_to_the_limit_then_reset_next_minute() -> None:
    clock = clock_at(2026, 1, 1, 12, 0, 0)
    state = InProcessState(clock=clock)
    limits = TenantLimits(requests_per_minute=2)
    outcomes = [await state.admit("team", limits, 10) for _ in range(3)]
    assert outcomes == [Admission.ADMITTED, Admission.ADMITTED, Admission.RPM_EXCEEDED]
    assert await state.admit("other-team", limits, 10) is Admission.ADMITTED
    clock.now += 60
    assert await state.admit("team", limits, 10) is Admission.ADMITTED


async def test_tokens_per_minute_reject_a_request_that_would_cross_the_limit() -> None:
    state = InProcessState(clock=clock_at(2026, 1, 1, 12, 0, 0))
    limits = TenantLimits(tokens_per_minute=1000)
    assert await state.admit("team", limits, 900) is Admission.ADMITTED
    assert await state.admit("team", limits, 200) is Admission.TPM_EXCEEDED
    assert await state.admit("team", limits, 100) is Admission.ADMITTED  # rejected one not counted


async def test_spend_accumulates_per_utc_day_and_month() -> None:
    clock = clock_at(2026, 1, 31, 23, 0, 0)
    state = InProcessState(clock=clock)
    await state.record_usage("team", "gpt-4o", 1000, 100, 0.5)
    await state.record_usage("team", "gpt-4o", 1000, 100, 0.25)
    spend = await state.spend("team")
    assert (spend.day_usd, spend.month_usd) == (0.75, 0.75)
    clock.now += 2 * 3600  # 1 February, 01:00
    await state.record_usage("team", "gpt-4o", 1000, 100, 0.1)
    spend = await state.spend("team")
    assert (spend.day_usd, spend.month_usd) == (0.1, 0.1)
    assert spend.exceeds(TenantLimits(daily_budget_usd=0.1))
    assert not spend.exceeds(TenantLimits(daily_budget_usd=0.2, monthly_budget_usd=1.0))
    assert (await state.spend("nobody")).day_usd == 0.0


async def test_repeated_failures_put_a_backend_in_cooldown_until_it_expires() -> None:
    clock = clock_at(2026, 1, 1, 12, 0, 0)
    state = InProcessState(clock=clock, cooldown=CooldownPolicy(failures=2, seconds=30))
    await state.observe(AttemptObservation(backend="llama", ok=False))
    assert not (await state.backend_health())["llama"].in_cooldown
    await state.observe(AttemptObservation(backend="llama", ok=False))
    assert (await state.backend_health())["llama"].in_cooldown
    clock.now += 31
    assert not (await state.backend_health())["llama"].in_cooldown


async def test_a_failure_that_asks_for_a_wait_cools_the_backend_down_that_long_at_once() -> None:
    clock = clock_at(2026, 1, 1, 12, 0, 0)
    state = InProcessState(clock=clock, cooldown=CooldownPolicy(failures=3, seconds=30))
    await state.observe(AttemptObservation(backend="gpt-4o", ok=False, retry_after_s=5.0))
    health = (await state.backend_health())["gpt-4o"]
    assert health.in_cooldown  # one failure, not three
    assert health.cooldown_until == clock.now + 5.0  # what clients are told to wait
    clock.now += 6
    assert (await state.backend_health())["gpt-4o"] == BackendHealth(in_cooldown=False)


async def test_a_shorter_asked_wait_never_shortens_a_cooldown_already_running() -> None:
    clock = clock_at(2026, 1, 1, 12, 0, 0)
    state = InProcessState(clock=clock, cooldown=CooldownPolicy(failures=1, seconds=30))
    await state.observe(AttemptObservation(backend="gpt-4o", ok=False))
    await state.observe(AttemptObservation(backend="gpt-4o", ok=False, retry_after_s=1.0))
    clock.now += 10
    assert (await state.backend_health())["gpt-4o"].in_cooldown


async def test_a_success_resets_the_failure_count() -> None:
    state = InProcessState(cooldown=CooldownPolicy(failures=2, seconds=30))
    await state.observe(AttemptObservation(backend="llama", ok=False))
    await state.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=10))
    await state.observe(AttemptObservation(backend="llama", ok=False))
    assert not (await state.backend_health())["llama"].in_cooldown


async def test_time_to_first_token_is_a_moving_average_of_successful_attempts() -> None:
    state = InProcessState()
    await state.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=100))
    assert (await state.backend_health())["llama"].predicted_ttft_ms == 100
    await state.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=200))
    predicted = (await state.backend_health())["llama"].predicted_ttft_ms
    assert predicted is not None
    assert 100 < predicted < 200


async def test_health_mapping_keeps_its_identity_while_nothing_changes() -> None:
    state = InProcessState()
    await state.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=5))
    first = await state.backend_health()
    assert await state.backend_health() is first


async def test_small_latency_drift_keeps_the_published_view_and_large_moves_replace_it() -> None:
    state = InProcessState()
    await state.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=100))
    first = await state.backend_health()
    await state.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=101))
    assert await state.backend_health() is first
    await state.observe(AttemptObservation(backend="llama", ok=True, ttft_ms=1000))
    moved = await state.backend_health()
    assert moved is not first
    predicted = moved["llama"].predicted_ttft_ms
    assert predicted is not None
    assert predicted > 150
