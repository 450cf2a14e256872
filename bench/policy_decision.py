"""Policy decision time: p50/p99 of one `decide()` call with 2, 10, 100 and 1,000 backends.

The backend fleets are generated deterministically and look like a real catalog: a third
external, the rest in-cluster; mixed capabilities and context windows; a few in cooldown or
scaled to zero; most with a live TTFT estimate. Requests rotate through realistic shapes (plain
chat, confidential with PII, images, tools + JSON mode, long context, a pinned backend) under a
latency target, alternating the cheapest and balanced cost preferences.

A call is what a request pays: `decide()` and reading the verdicts the router uses, the choice
and its fallbacks (`first_eligible(max_attempts)`); verdicts of the other backends are built only
when explained, so they are not timed.

Each call is timed on its own with two clocks: wall time (`perf_counter_ns`, what a request
waits) and this thread's CPU time (`thread_time_ns`, what the decision costs, immune to other
processes on a shared machine preempting this one).

    .venv/bin/python -m bench.policy_decision [--quick]
"""

from __future__ import annotations

import argparse
import gc
import random
import time

from modelplane.router.policy.engine import decide
from modelplane.router.policy.types import (
    BackendSnapshot,
    Capability,
    CostPreference,
    DataClass,
    Location,
    PiiType,
    PolicySettings,
    RequestFeatures,
    TenantPolicy,
)
from modelplane.router.service import DEFAULT_MAX_ATTEMPTS

FLEET_SIZES = (2, 10, 100, 1000)

_CAPABILITY_SETS = (
    frozenset({Capability.CHAT}),
    frozenset({Capability.CHAT, Capability.JSON}),
    frozenset({Capability.CHAT, Capability.JSON, Capability.TOOLS}),
    frozenset(Capability),
)


def fleet(size: int, rng: random.Random) -> list[BackendSnapshot]:
    backends = []
    for index in range(size):
        external = index % 3 == 2
        backends.append(
            BackendSnapshot(
                name=f"{'gpt' if external else 'llama'}-{index}",
                location=Location.EXTERNAL if external else Location.IN_CLUSTER,
                capabilities=frozenset(Capability) if external else rng.choice(_CAPABILITY_SETS),
                context_window=128_000 if external else rng.choice((8_192, 32_768, 131_072)),
                input_usd_per_mtok=rng.uniform(0.5, 5.0) if external else rng.uniform(0.02, 0.4),
                output_usd_per_mtok=rng.uniform(2, 15) if external else rng.uniform(0.05, 0.8),
                ready=rng.random() > 0.05,
                in_cooldown=rng.random() < 0.05,
                predicted_ttft_ms=None if rng.random() < 0.1 else rng.uniform(40, 1_500),
            )
        )
    return backends


def requests(backends: list[BackendSnapshot]) -> list[RequestFeatures]:
    return [
        RequestFeatures(data_class=DataClass.INTERNAL, input_tokens=850, max_output_tokens=512),
        RequestFeatures(
            data_class=DataClass.INTERNAL,
            pii_found=frozenset({PiiType.EMAIL, PiiType.PHONE}),
            input_tokens=2_300,
        ),
        RequestFeatures(data_class=DataClass.PUBLIC, input_tokens=1_200, has_images=True),
        RequestFeatures(
            data_class=DataClass.INTERNAL,
            input_tokens=4_000,
            max_output_tokens=1_024,
            uses_tools=True,
            json_mode=True,
        ),
        RequestFeatures(data_class=DataClass.CONFIDENTIAL, input_tokens=30_000),
        RequestFeatures(
            data_class=DataClass.INTERNAL,
            input_tokens=300,
            pinned_backend=backends[len(backends) // 2].name,
        ),
    ]


def _percentile(sorted_values: list[int], fraction: float) -> float:
    index = min(len(sorted_values) - 1, round(fraction * (len(sorted_values) - 1)))
    return sorted_values[index] / 1_000  # ns -> us


def measure(size: int, calls: int, rng: random.Random) -> dict[str, float]:
    backends = fleet(size, rng)
    shapes = requests(backends)
    tenant = TenantPolicy(name="team-a")
    policies = [
        PolicySettings(latency_target_ms=500.0, cost_preference=CostPreference.CHEAPEST),
        PolicySettings(latency_target_ms=500.0, cost_preference=CostPreference.BALANCED),
    ]
    for warmup in range(min(calls, 200)):
        decision = decide(shapes[warmup % len(shapes)], backends, tenant, policies[warmup % 2])
        decision.first_eligible(DEFAULT_MAX_ATTEMPTS)
    wall: list[int] = []
    cpu: list[int] = []
    wall_clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    for call in range(calls):
        features = shapes[call % len(shapes)]
        policy = policies[(call // len(shapes)) % 2]
        cpu_started = cpu_clock()
        wall_started = wall_clock()
        decide(features, backends, tenant, policy).first_eligible(DEFAULT_MAX_ATTEMPTS)
        wall_ended = wall_clock()
        cpu.append(cpu_clock() - cpu_started)
        wall.append(wall_ended - wall_started)
    wall.sort()
    cpu.sort()
    return {
        "p50": _percentile(wall, 0.50),
        "p99": _percentile(wall, 0.99),
        "cpu_p50": _percentile(cpu, 0.50),
        "cpu_p99": _percentile(cpu, 0.99),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per fleet size")
    args = parser.parse_args()
    rng = random.Random(20261123)
    # Backend evaluations per fleet size, and the calls per size allowed to spend them.
    budget, most_calls = (1_000_000, 20_000) if args.quick else (20_000_000, 50_000)
    gc.collect()

    figures: dict[str, float] = {}
    print(f"{'backends':>9} {'calls':>7} {'p50 us':>8} {'p99 us':>8} {'cpu p50':>8} {'cpu p99':>8}")
    for size in FLEET_SIZES:
        calls = max(200, min(most_calls, budget // size))
        result = measure(size, calls, rng)
        print(
            f"{size:>9} {calls:>7} {result['p50']:>8.1f} {result['p99']:>8.1f} "
            f"{result['cpu_p50']:>8.1f} {result['cpu_p99']:>8.1f}"
        )
        for key, value in result.items():
            figures[f"decision_{key}_us_{size}"] = value
    print(" ".join(f"{name}={value:.1f}" for name, value in figures.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
