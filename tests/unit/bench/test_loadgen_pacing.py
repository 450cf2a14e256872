"""The open-loop generator's schedule: even or Poisson, and an alarm that never fires early.

asyncio's own timers fire up to half a millisecond early or late (uvloop rounds delays to whole
milliseconds), which turned a "fixed rate" into bursts; these pin down what replaced them.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import time

import pytest

from bench.loadgen import PreciseAlarm, arrival_times


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
