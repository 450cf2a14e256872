"""The TTFT prediction and self-hosted cost model (router/policy/latency.py)."""

from __future__ import annotations

import pytest
from modelplane.router.policy.latency import (
    EngineLoad,
    EngineSample,
    LatencyModel,
    capacity_throughput,
    engine_load,
    predict_ttft_ms,
    self_hosted_usd_per_mtok,
)


def test_rates_come_from_counter_increase_over_elapsed_time() -> None:
    before = EngineSample(
        at=10.0, waiting=0, running=2, requests_completed_total=100, generated_tokens_total=5000
    )
    after = EngineSample(
        at=12.0, waiting=3, running=4, requests_completed_total=110, generated_tokens_total=6000
    )

    load = engine_load(before, after)

    assert load == EngineLoad(
        waiting=3, running=4, completions_per_s=5.0, generated_tokens_per_s=500.0
    )


def test_counter_reset_after_engine_restart_gives_no_rate() -> None:
    before = EngineSample(at=10.0, waiting=0, running=0, requests_completed_total=100)
    after = EngineSample(at=11.0, waiting=0, running=0, requests_completed_total=3)

    assert engine_load(before, after).completions_per_s is None


def test_empty_queue_predicts_the_measured_ttft() -> None:
    load = EngineLoad(waiting=0, running=3, completions_per_s=2.0)

    assert predict_ttft_ms(load, measured_ttft_ms=180.0) == 180.0


def test_queue_adds_the_time_to_drain_it_at_the_completion_rate() -> None:
    load = EngineLoad(waiting=10, running=8, completions_per_s=4.0)

    assert predict_ttft_ms(load, measured_ttft_ms=200.0) == pytest.approx(200.0 + 2500.0)


def test_without_completion_rate_the_default_request_time_sets_the_drain_rate() -> None:
    model = LatencyModel(default_ttft_ms=100.0, default_request_s=2.0)
    load = EngineLoad(waiting=4, running=2)

    assert predict_ttft_ms(load, None, model) == pytest.approx(100.0 + 4 / (2 / 2.0) * 1000)


def test_full_kv_cache_waits_for_one_request_even_without_queue() -> None:
    load = EngineLoad(waiting=0, running=4, kv_cache_usage=0.99, completions_per_s=2.0)

    assert predict_ttft_ms(load, measured_ttft_ms=100.0) == pytest.approx(600.0)


def test_prediction_rises_with_queue_depth() -> None:
    predictions = [
        predict_ttft_ms(EngineLoad(waiting=w, running=4, completions_per_s=1.0), 150.0)
        for w in (0, 1, 5, 50)
    ]

    assert predictions == sorted(predictions)
    assert len(set(predictions)) == 4


def test_nothing_known_predicts_nothing() -> None:
    assert predict_ttft_ms(None, None) is None


def busy(tokens_per_s: float, waiting: float = 0.0, kv: float | None = None) -> EngineLoad:
    return EngineLoad(
        waiting=waiting, running=1.0, kv_cache_usage=kv, generated_tokens_per_s=tokens_per_s
    )


def test_idle_intervals_leave_the_capacity_estimate_unchanged() -> None:
    assert capacity_throughput(400.0, busy(0.0)) == 400.0
    assert capacity_throughput(None, busy(0.0, waiting=3)) is None


def test_saturated_intervals_measure_capacity_up_or_down() -> None:
    assert capacity_throughput(None, busy(300.0, waiting=2)) == 300.0
    assert capacity_throughput(400.0, busy(200.0, waiting=2), smoothing=0.5) == 300.0
    assert capacity_throughput(400.0, busy(500.0, kv=0.99), smoothing=0.5) == 450.0


def test_light_load_never_makes_an_engine_look_slower_or_dearer() -> None:
    # One short answer in a 2 s scrape interval: ~4 tokens/s of demand, not of capacity.
    assert capacity_throughput(2500.0, busy(4.0)) == 2500.0
    assert capacity_throughput(None, busy(4.0)) is None  # the configured speed still applies
    # It did at least what it did: an unsaturated interval can still raise the estimate.
    assert capacity_throughput(2500.0, busy(3000.0)) == 3000.0


def test_self_hosted_cost_per_million_tokens_from_gpu_hour_price() -> None:
    # $3.60/h at 1000 tokens/s: 3.6M tokens per hour -> $1 per million tokens.
    assert self_hosted_usd_per_mtok(3.6, 1000.0) == pytest.approx(1.0)
    assert self_hosted_usd_per_mtok(3.6, 0.0) is None
