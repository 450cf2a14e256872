"""The open-loop generator: its schedule (even or Poisson, an alarm that never fires early) and
how it tells a stall from requests slowed one by one.

asyncio's own timers fire up to half a millisecond early or late (uvloop rounds delays to whole
milliseconds), which turned a "fixed rate" into bursts; these pin down what replaced them.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time

import pytest

from bench.loadgen import PreciseAlarm, arrival_times, slow_episodes


def test_uniform_arrivals_are_evenly_spaced_at_the_rate() -> None:
    offsets = arrival_times(rate=2500.0, count=5, arrivals="uniform")

    assert offsets == pytest.approx([0.0, 0.0004, 0.0008, 0.0012, 0.0016])


def test_poisson_arrivals_keep_the_mean_rate_with_exponential_gaps() -> None:
    offsets = arrival_times(rate=1000.0, count=20_000, arrivals="poisson", seed=7)
    gaps = [later - earlier for earlier, later in itertools.pairwise(offsets)]

    assert offsets[0] == 0.0
    assert all(gap > 0 for gap in gaps)
    assert statistics.fmean(gaps) == pytest.approx(0.001, rel=0.03)
    # An exponential distribution's standard deviation equals its mean; even spacing has none.
    assert statistics.stdev(gaps) == pytest.approx(0.001, rel=0.05)


def test_poisson_arrivals_are_the_same_for_the_same_seed() -> None:
    assert arrival_times(500.0, 100, "poisson", seed=3) == arrival_times(500.0, 100, "poisson", 3)
    assert arrival_times(500.0, 100, "poisson", seed=3) != arrival_times(500.0, 100, "poisson", 4)


def test_precise_alarm_wakes_the_event_loop_never_before_its_time() -> None:
    async def fire_times() -> list[tuple[float, float]]:
        loop = asyncio.get_running_loop()
        alarm = PreciseAlarm()
        fired: asyncio.Queue[float] = asyncio.Queue()

        def on_alarm() -> None:
            alarm.acknowledge()
            fired.put_nowait(time.monotonic())

        loop.add_reader(alarm.fd, on_alarm)
        pairs = []
        try:
            for step in range(20):
                when = time.monotonic() + 0.0003 * (step % 4 + 1)
                alarm.set(when)
                pairs.append((when, await asyncio.wait_for(fired.get(), timeout=5)))
        finally:
            loop.remove_reader(alarm.fd)
            alarm.close()
        return pairs

    for scheduled, fired_at in asyncio.run(fire_times()):
        assert fired_at >= scheduled


def test_slow_requests_dispatched_together_form_one_episode() -> None:
    # 200 requests 1 ms apart; 4 consecutive ones (a stall) and 2 isolated ones are slow.
    started = [index * 0.001 for index in range(200)]
    latencies = [0.0003] * 200
    for index in (50, 51, 52, 53):
        latencies[index] = 0.005
    latencies[120] = latencies[180] = 0.004

    episodes = slow_episodes(started, latencies, fraction=0.03)

    assert episodes.count == 3
    assert episodes.largest_share == pytest.approx(4 / 6)
    assert episodes.largest_span_ms == pytest.approx(3.0)


def test_slow_requests_spread_over_the_run_are_separate_episodes() -> None:
    started = [index * 0.001 for index in range(1000)]
    latencies = [0.002 if index % 100 == 7 else 0.0003 for index in range(1000)]

    episodes = slow_episodes(started, latencies, fraction=0.01)

    assert episodes.count == 10
    assert episodes.largest_share == pytest.approx(0.1)
    assert episodes.largest_span_ms == 0.0


def test_no_requests_make_no_episodes() -> None:
    assert slow_episodes([], []).count == 0
