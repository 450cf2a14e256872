"""Latency added over calling the upstream directly, by offered request rate, per kind of proxy.

`bench.router_overhead` measures added latency sequentially and at one rate (half of
modelplane's maximum). This takes that figure apart: the same open-loop load at several rates,
plain requests, through proxies that each add one layer:

- `haproxy`: HAProxy, a pass-through written in C (`bench.haproxy`; skipped without it);
- `lean-raw`: Python asyncio protocols + the router's HTTP client (`bench.lean_passthrough`);
- `lean-uvicorn`: the same client behind uvicorn and a minimal ASGI app;
- `bare`: the issue's bare pass-through, uvicorn + aiohttp (`bench.passthrough`);
- `modelplane`: the router, on its OpenAI-compatible pass-through.

For each: added p50/p99 (best of `--rounds` rounds, as in `bench.router_overhead`) and the
server's CPU time per request at that rate, from its /proc entries (for `direct`, the
upstream's own).

Run: `python -m bench.latency_by_rate [--quick] [--rates 1000,2500] [--systems a,b]`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from bench import haproxy
from bench.harness import (
    ServerProcess,
    figures_line,
    python_module,
    run_loadgen,
    start_fast_upstream,
)
from bench.router_overhead import MODELPLANE_KEY, bare_server, modelplane_server
from modelplane.testing.processes import free_port

# Unmeasured seconds at each rate first, so that the connections the load keeps are open.
WARMUP_S = 0.5
SYSTEMS = ("direct", "haproxy", "lean-raw", "lean-uvicorn", "bare", "modelplane")
SHORT = {
    "direct": "direct",
    "haproxy": "haproxy",
    "lean-raw": "raw",
    "lean-uvicorn": "uvicorn",
    "bare": "bare",
    "modelplane": "mp",
}


def lean_server(kind: str, upstream_url: str) -> ServerProcess:
    port = free_port()
    command = python_module(
        "bench.lean_passthrough", "--server", kind, "--port", str(port), "--upstream", upstream_url
    )
    return ServerProcess(name=f"lean-{kind}", command=command, port=port, health_path="/")


def server_for(system: str, upstream_url: str) -> ServerProcess | None:
    factories: dict[str, Callable[[], ServerProcess | None]] = {
        "direct": lambda: None,
        "haproxy": lambda: haproxy.server("haproxy-rate", free_port(), upstream_url, busy=False),
        "lean-raw": lambda: lean_server("raw", upstream_url),
        "lean-uvicorn": lambda: lean_server("uvicorn", upstream_url),
        "bare": lambda: bare_server(upstream_url),
        "modelplane": lambda: modelplane_server("modelplane-rate", upstream_url, None),
    }
    return factories[system]()


def measure(
    system: str, upstream: ServerProcess, rates: list[float], rounds: int, duration_s: float
) -> dict[float, dict[str, float]]:
    server = server_for(system, f"http://127.0.0.1:{upstream.port}")
    if server is not None:
        server.start(ready_timeout_s=120)
    measured = server if server is not None else upstream
    url = f"http://127.0.0.1:{measured.port}/v1/chat/completions"
    try:
        run_loadgen(url, stream=False, api_key=MODELPLANE_KEY, concurrency=8, duration_s=1.0)
        results: dict[float, dict[str, float]] = {}
        for rate in rates:
            best: dict[str, Any] | None = None
            for _ in range(rounds):
                cpu_before = measured.cpu_seconds()
                summary: dict[str, Any] = run_loadgen(
                    url,
                    stream=False,
                    api_key=MODELPLANE_KEY,
                    pattern="open",
                    rate=rate,
                    concurrency=256,
                    duration_s=duration_s,
                    warmup_s=WARMUP_S,
                )
                cpu = measured.cpu_seconds() - cpu_before
                answered = int(summary["requests"]) + int(summary["warmup_requests"])
                summary["cpu_us"] = 1e6 * cpu / max(1, answered)
                if summary["errors"]:
                    print(f"[{system} @ {rate:g}] {summary['errors']} errors", file=sys.stderr)
                if best is None or summary["p50_ms"] < best["p50_ms"]:
                    best = summary
            assert best is not None
            results[rate] = {
                "p50_ms": float(best["p50_ms"]),
                "p99_ms": float(best["p99_ms"]),
                "cpu_us": float(best["cpu_us"]),
            }
            print(f"[{system} @ {rate:g}/s] p50 {best['p50_ms']:.3f} ms", file=sys.stderr)
        return results
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two rates, short rounds")
    parser.add_argument("--rates", default="", help="comma-separated requests/s")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    rates = [float(rate) for rate in args.rates.split(",") if rate] or (
        [1000.0, 2500.0] if args.quick else [250.0, 1000.0, 2500.0, 3200.0]
    )
    systems = [name for name in args.systems.split(",") if name]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s): {', '.join(unknown)}")
    if "haproxy" in systems and not haproxy.available():
        print("haproxy is not installed (apt-get install haproxy): skipped", file=sys.stderr)
        systems.remove("haproxy")
    if "direct" not in systems:
        systems.insert(0, "direct")  # every figure is added over it
    duration_s = 1.0 if args.quick else 3.0
    upstream = start_fast_upstream()
    upstream.start()
    try:
        results = {
            system: measure(system, upstream, rates, args.rounds, duration_s) for system in systems
        }
    finally:
        upstream.stop()

    direct = results["direct"]
    header = f"{'system':<14}" + "".join(
        f"{f'{rate:g}/s p50 +ms':>16}{'p99 +ms':>9}{'cpu us':>8}" for rate in rates
    )
    print(header)
    print("-" * len(header))
    figures: dict[str, object] = {}
    for system, by_rate in results.items():
        cells = []
        for rate in rates:
            p50 = by_rate[rate]["p50_ms"] - direct[rate]["p50_ms"]
            p99 = by_rate[rate]["p99_ms"] - direct[rate]["p99_ms"]
            cpu = by_rate[rate]["cpu_us"]
            cells.append(f"{p50:>16.3f}{p99:>9.3f}{cpu:>8.0f}")
            if system != "direct":
                prefix = f"{SHORT[system]}_{rate:g}"
                figures[f"{prefix}_added_p50_ms"] = p50
                figures[f"{prefix}_added_p99_ms"] = p99
                figures[f"{prefix}_cpu_us_per_req"] = cpu
        print(f"{system:<14}" + "".join(cells))
    print(figures_line(figures))


if __name__ == "__main__":
    main()
