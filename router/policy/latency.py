"""Live latency and cost of self-hosted backends, from engine metrics and measured rates (pure).

The metrics scraper reads each in-cluster engine's Prometheus counters and gauges into
`EngineSample`s; this module turns two consecutive samples into rates (`EngineLoad`) and predicts
the time to first token a new request would see:

    predicted TTFT = measured TTFT + requests waiting / completion rate

The measured TTFT (moving average of recent requests, shared across replicas) covers prefill and
network; the queue term is how long the requests already waiting need to drain at the rate the
engine is finishing requests. While no completion rate is measured (idle or just started) the
drain rate is assumed to be `running / default_request_s`. A full KV cache means even a request
that finds no queue waits for one running request to finish, so one drain interval is added.

Cost: a self-hosted backend costs `gpuHourUSD` per hour whatever it serves, so its price per
million tokens is `gpuHourUSD / tokens per second * 1e6 / 3600` at the throughput it can
deliver: measured while requests queue for it (`capacity_throughput`), the configured (or
assumed) `tokens_per_second` until then.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineSample:
    """One scrape of an engine's `/metrics`. Counters are cumulative; None when not exported."""

    at: float  # monotonic seconds
    waiting: float
    running: float
    kv_cache_usage: float | None = None  # 0..1
    requests_completed_total: float | None = None
    generated_tokens_total: float | None = None


@dataclass(frozen=True, slots=True)
class EngineLoad:
    """An engine's load now and its rates since the previous sample (None: not measurable)."""

    waiting: float
    running: float
    kv_cache_usage: float | None = None
    completions_per_s: float | None = None
    generated_tokens_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class LatencyModel:
    """Assumptions used until measurements exist."""

    default_ttft_ms: float = 250.0
    default_request_s: float = 2.0
    kv_cache_full: float = 0.98


def _rate(previous: float | None, current: float | None, elapsed_s: float) -> float | None:
    if previous is None or current is None or elapsed_s <= 0 or current < previous:
        return None  # not exported, or the counter reset (engine restarted)
    return (current - previous) / elapsed_s


def engine_load(previous: EngineSample | None, current: EngineSample) -> EngineLoad:
    """The load in `current`, with counter rates over the interval since `previous`."""
    completions = tokens = None
    if previous is not None:
        elapsed = current.at - previous.at
        completions = _rate(
            previous.requests_completed_total, current.requests_completed_total, elapsed
        )
        tokens = _rate(previous.generated_tokens_total, current.generated_tokens_total, elapsed)
    return EngineLoad(
        waiting=max(0.0, current.waiting),
        running=max(0.0, current.running),
        kv_cache_usage=current.kv_cache_usage,
        completions_per_s=completions,
        generated_tokens_per_s=tokens,
    )


def predict_ttft_ms(
    load: EngineLoad | None, measured_ttft_ms: float | None, model: LatencyModel = LatencyModel()
) -> float | None:
    """Predicted time to first token for a request sent now; None when nothing is known."""
    if load is None:
        return measured_ttft_ms
    base_ms = measured_ttft_ms if measured_ttft_ms is not None else model.default_ttft_ms
    # Zero completions in the last interval means unmeasured, not a stalled engine.
    drain_per_s = load.completions_per_s or max(load.running, 1.0) / model.default_request_s
    queued = load.waiting
    if (
        queued == 0
        and load.kv_cache_usage is not None
        and load.kv_cache_usage >= model.kv_cache_full
    ):
        queued = 1.0
    return base_ms + queued / drain_per_s * 1000.0


def is_saturated(load: EngineLoad, model: LatencyModel = LatencyModel()) -> bool:
    """Whether requests were queuing for the engine (or its KV cache was full) at the sample:
    then the tokens it generated measure what it can do, not what it was asked for."""
    return load.waiting > 0 or (
        load.kv_cache_usage is not None and load.kv_cache_usage >= model.kv_cache_full
    )


def capacity_throughput(
    previous: float | None, load: EngineLoad, smoothing: float = 0.3
) -> float | None:
    """Moving estimate of the tokens per second an engine can deliver, to price its GPU time.

    Tokens per second over an interval measure demand unless the engine was saturated: an engine
    that served one short answer in a 2 s interval generated ~4 tokens/s, not its capacity, and
    pricing its GPU-hour at that made a lightly used model look hundreds of times dearer than a
    hosted one. So only a saturated interval may lower the estimate (or start it); any other can
    only raise it, since the engine did at least that much. Idle intervals say nothing.
    """
    sample = load.generated_tokens_per_s
    if not sample or sample <= 0:
        return previous
    if is_saturated(load):
        return sample if previous is None else previous + smoothing * (sample - previous)
    return None if previous is None else max(previous, sample)


def self_hosted_usd_per_mtok(gpu_hour_usd: float, tokens_per_second: float) -> float | None:
    """USD per million tokens of a GPU billed by the hour at a measured throughput."""
    if tokens_per_second <= 0:
        return None
    return gpu_hour_usd / tokens_per_second * 1_000_000 / 3600.0


__all__ = [
    "EngineLoad",
    "EngineSample",
    "LatencyModel",
    "capacity_throughput",
    "engine_load",
    "is_saturated",
    "predict_ttft_ms",
    "self_hosted_usd_per_mtok",
]
