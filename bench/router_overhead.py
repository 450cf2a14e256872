"""Router overhead: one fast upstream called directly and through four routers, side by side.

Systems (each a single process; the server under test alone on core 0, see `bench.harness`):
- `direct`: the load generator calls the upstream itself: the baseline latencies subtract from;
- `modelplane`: `modelplane router serve`, backends on OpenAI-compatible providers, so requests
  take its direct pass-through path;
- `modelplane-litellm`: the same router with both backends set to `adapter: litellm`, so each
  request goes through the LiteLLM SDK (the path for providers that need translation);
- `litellm-proxy`: LiteLLM's own proxy (`bench.litellm_proxy`), same two backends;
- `bare`: `bench.passthrough`, raw ASGI + aiohttp + orjson, no auth or policy: the ceiling
  any Python router can reach;
- `haproxy`: HAProxy forwarding every request (`bench.haproxy`): what one proxy hop written in C
  costs on this machine, the floor under any router's added latency (skipped without haproxy).

Per system, plain and streamed: the maximum throughput (closed loop, `--concurrency` clients),
latency sequentially (one client) and at half of modelplane's maximum (open loop, fixed rate),
both as added over `direct`; CPU time per request from the server's /proc entries during the
throughput phase; peak RSS (VmHWM). `--profile` also samples modelplane under load with py-spy.

Run: `python -m bench.router_overhead [--quick] [--profile] [--systems a,b,...]`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bench import haproxy, litellm_proxy
from bench.harness import (
    RESULTS_DIR,
    SERVER_CORE,
    ServerProcess,
    figures_line,
    python_module,
    run_loadgen,
    start_fast_upstream,
)
from bench.hotspots import load as load_profile
from bench.hotspots import render as render_profile
from modelplane.testing.processes import free_port

MODELPLANE_KEY = "bench-key"
MODES = ("plain", "stream")
SYSTEMS = ("modelplane", "direct", "bare", "haproxy", "modelplane-litellm", "litellm-proxy")


@dataclass(frozen=True)
class Durations:
    """Seconds per phase; the measured phases run `rounds` times each and keep the best round."""

    warmup_s: float
    sequential_s: float
    sequential_max_requests: int
    throughput_s: float
    half_load_s: float
    half_load_warmup_s: float  # at the same rate, unmeasured: the connections get opened
    profile_s: float
    rounds: int = 3

    @classmethod
    def for_run(cls, quick: bool) -> Durations:
        if quick:
            return cls(1.0, 0.6, 1000, 1.2, 0.8, 0.5, 4.0)
        return cls(3.0, 2.0, 5000, 4.0, 3.0, 1.0, 10.0)


@dataclass
class SystemResult:
    name: str
    startup_s: float = 0.0
    peak_rss_mb: float = 0.0
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)

    def figure(self, phase: str, key: str) -> float:
        value = self.phases.get(phase, {}).get(key)
        return float(value) if isinstance(value, int | float) else float("nan")


def modelplane_config(upstream_url: str, adapter: str | None) -> dict[str, Any]:
    """The benchmark's router configuration: examples/router.yaml's two backends, one tenant."""
    api_base = upstream_url.rstrip("/") + "/v1"
    extra = {"adapter": adapter} if adapter else {}
    return {
        "backends": [
            {
                "name": "llama-3-8b",
                "model": "hosted_vllm/llama-3-8b",
                "api_base": api_base,
                "location": "in-cluster",
                "context_window": 8192,
                "capabilities": ["chat", "json"],
                "gpu_hour_usd": 1.2,
                "tokens_per_second": 2500,
                "max_concurrency": 1024,
                **extra,
            },
            {
                "name": "gpt-4o",
                "model": "openai/gpt-4o",
                "api_base": api_base,
                "api_key": "sk-bench-upstream",
                "location": "external",
                "context_window": 128000,
                "capabilities": ["chat", "tools", "json", "images"],
                "max_concurrency": 1024,
                **extra,
            },
        ],
        "tenants": [{"name": "bench", "api_keys": [MODELPLANE_KEY]}],
        "policy": {"pii_detection": True, "cost_preference": "cheapest"},
    }


def modelplane_server(name: str, upstream_url: str, adapter: str | None) -> ServerProcess:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    config_path = RESULTS_DIR / f"{name}.yaml"
    config_path.write_text(
        yaml.safe_dump(modelplane_config(upstream_url, adapter), sort_keys=False)
    )
    port = free_port()
    command = python_module(
        "modelplane",
        "router",
        "serve",
        "--config",
        str(config_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    )
    return ServerProcess(name=name, command=command, port=port, health_path="/readyz")


def bare_server(upstream_url: str) -> ServerProcess:
    port = free_port()
    command = python_module("bench.passthrough", "--port", str(port), "--upstream", upstream_url)
    return ServerProcess(name="bare", command=command, port=port)


def server_for(system: str, upstream_url: str) -> ServerProcess | None:
    factories: dict[str, Callable[[], ServerProcess | None]] = {
        "direct": lambda: None,
        "modelplane": lambda: modelplane_server("modelplane", upstream_url, None),
        "modelplane-litellm": lambda: modelplane_server(
            "modelplane-litellm", upstream_url, "litellm"
        ),
        "litellm-proxy": lambda: litellm_proxy.server(free_port(), upstream_url, SERVER_CORE),
        "bare": lambda: bare_server(upstream_url),
        "haproxy": lambda: haproxy.server("haproxy", free_port(), upstream_url, busy=False),
    }
    return factories[system]()


def api_key_for(system: str) -> str:
    return litellm_proxy.MASTER_KEY if system == "litellm-proxy" else MODELPLANE_KEY


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.durations = Durations.for_run(args.quick)
        self.upstream = start_fast_upstream()
        self.upstream_url = ""
        self.half_load_rps: dict[str, float] = {}
        self.results: dict[str, SystemResult] = {}
        self.profiles: dict[str, str] = {}

    def log(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def run(self, systems: list[str]) -> dict[str, SystemResult]:
        self.upstream.start()
        self.upstream_url = f"http://127.0.0.1:{self.upstream.port}"
        try:
            for system in systems:
                self.results[system] = self.measure(system)
        finally:
            self.upstream.stop()
        return self.results

    def measure(self, system: str) -> SystemResult:
        result = SystemResult(system)
        server = server_for(system, self.upstream_url)
        started = time.perf_counter()
        if server is not None:
            self.log(f"[{system}] starting")
            server.start(ready_timeout_s=180)
        result.startup_s = time.perf_counter() - started
        measured = server if server is not None else self.upstream
        port = server.port if server is not None else self.upstream.port
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        try:
            for mode in MODES:
                self.measure_mode(system, mode, url, measured, result)
            if self.args.profile and system == "modelplane":
                for mode in MODES:
                    self.profile(system, mode, url, measured)
            result.peak_rss_mb = measured.peak_rss_kb() / 1024
        finally:
            if server is not None:
                server.stop()
        return result

    def load(self, system: str, url: str, mode: str, **options: Any) -> dict[str, Any]:
        summary: dict[str, Any] = run_loadgen(
            url, stream=mode == "stream", api_key=api_key_for(system), **options
        )
        if summary["errors"]:
            self.log(
                f"[{system}/{mode}] {summary['errors']} errors, first: {summary['first_error']}"
            )
        return summary

    def measure_mode(
        self, system: str, mode: str, url: str, server: ServerProcess, result: SystemResult
    ) -> None:
        durations = self.durations
        concurrency = self.args.concurrency
        self.load(system, url, mode, concurrency=8, duration_s=durations.warmup_s)
        sequential = best_latency(
            [
                self.load(
                    system,
                    url,
                    mode,
                    concurrency=1,
                    duration_s=durations.sequential_s,
                    requests=durations.sequential_max_requests,
                )
                for _ in range(durations.rounds)
            ]
        )
        throughput_rounds = []
        for _ in range(durations.rounds):
            cpu_before = server.cpu_seconds()
            measured = self.load(
                system, url, mode, concurrency=concurrency, duration_s=durations.throughput_s
            )
            cpu_used = server.cpu_seconds() - cpu_before
            measured["server_cpu_ms_per_request"] = 1000 * cpu_used / max(1, measured["requests"])
            measured["server_cpu_share"] = cpu_used / max(1e-9, measured["elapsed_s"])
            throughput_rounds.append(measured)
        throughput = max(throughput_rounds, key=lambda measured: float(measured["achieved_rps"]))
        throughput["rounds_rps"] = [measured["achieved_rps"] for measured in throughput_rounds]
        result.phases[f"{mode}/sequential"] = sequential
        result.phases[f"{mode}/throughput"] = throughput
        # The first system measured (modelplane, when included) sets the half-load rate.
        self.half_load_rps.setdefault(mode, throughput["achieved_rps"] / 2)
        rate = self.half_load_rps[mode]
        if throughput["achieved_rps"] < rate * 1.1:
            result.phases[f"{mode}/half_load"] = {"saturated": True, "rate": rate}
            self.log(f"[{system}/{mode}] max {throughput['achieved_rps']} < half-load {rate:.0f}")
        else:
            half = best_latency(
                [
                    self.load(
                        system,
                        url,
                        mode,
                        pattern="open",
                        rate=rate,
                        concurrency=256,
                        duration_s=durations.half_load_s,
                        warmup_s=durations.half_load_warmup_s,
                    )
                    for _ in range(durations.rounds)
                ]
            )
            half["rate"] = rate
            result.phases[f"{mode}/half_load"] = half
            p99s = " / ".join(f"{p99:.2f}" for p99 in half["rounds_p99_ms"])
            episodes = " / ".join(map(str, half["rounds_p99_episodes"]))
            shares = " / ".join(
                f"{share:.0%}" for share in half["rounds_p99_largest_episode_share"]
            )
            self.log(
                f"[{system}/{mode}] half load {rate:.0f}/s, per round: p99 {p99s} ms; "
                f"the slowest 1% in {episodes} episodes, the largest holding {shares}"
            )
        self.log(
            f"[{system}/{mode}] max {throughput['achieved_rps']:.0f} req/s, "
            f"cpu {throughput['server_cpu_ms_per_request']:.3f} ms/req, "
            f"seq p50 {sequential['p50_ms']:.3f} ms"
        )

    def profile(self, system: str, mode: str, url: str, server: ServerProcess) -> None:
        """Sample the server with py-spy under the throughput load (a separate, unmeasured run)."""
        raw_path = RESULTS_DIR / f"profile-{system}-{mode}.raw"
        py_spy = Path(sys.executable).parent / "py-spy"
        if not py_spy.exists():
            self.log("py-spy is not installed (make venv installs it): no profile")
            return
        seconds = self.durations.profile_s
        sampler = subprocess.Popen(
            [
                *(str(py_spy), "record", "-p", str(server.pid), "-d", str(int(seconds))),
                *(
                    "-r",
                    "250",
                    "-f",
                    "raw",
                    "-o",
                    str(raw_path),
                    "--nonblocking",
                    "--full-filenames",
                ),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.load(system, url, mode, concurrency=self.args.concurrency, duration_s=seconds + 1)
        sampler.wait(timeout=seconds + 30)
        if raw_path.exists():
            text = render_profile(load_profile(raw_path), top=25)
            self.profiles[f"{system}/{mode}"] = text
            (RESULTS_DIR / f"profile-{system}-{mode}.txt").write_text(text + "\n")


def best_latency(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """The lowest percentiles over rounds: interference from other work only ever adds latency,
    so the best round is the closest to what the server itself costs."""
    best = dict(min(rounds, key=lambda measured: float(measured["p50_ms"])))
    for key in ("p50_ms", "p90_ms", "p99_ms"):
        best[key] = min(float(measured[key]) for measured in rounds)
        best[f"rounds_{key}"] = [measured[key] for measured in rounds]
    best["errors"] = sum(int(measured["errors"]) for measured in rounds)
    # How the reported p99's round spread its slowest requests over time (see SlowEpisodes).
    lowest_p99 = min(rounds, key=lambda measured: float(measured["p99_ms"]))
    for key in ("p99_episodes", "p99_largest_episode_share", "p99_largest_episode_span_ms"):
        best[key] = lowest_p99[key]
        best[f"rounds_{key}"] = [measured[key] for measured in rounds]
    return best


def added(results: dict[str, SystemResult], system: str, phase: str, key: str) -> float:
    if system not in results or "direct" not in results:
        return float("nan")
    return results[system].figure(phase, key) - results["direct"].figure(phase, key)


def ratio(results: dict[str, SystemResult], numerator: str, denominator: str, mode: str) -> float:
    """Measured throughput of `numerator` over that of `denominator`."""
    if numerator not in results or denominator not in results:
        return float("nan")
    bottom = results[denominator].figure(f"{mode}/throughput", "achieved_rps")
    top = results[numerator].figure(f"{mode}/throughput", "achieved_rps")
    return top / bottom if bottom > 0 else float("nan")


def cpu_ratio(
    results: dict[str, SystemResult], numerator: str, denominator: str, mode: str
) -> float:
    """Throughput per CPU-second of `numerator` over that of `denominator`.

    CPU time per request comes from each server's own /proc entries, so unlike requests/s it
    holds when other work shares the machine: it is the ratio a quiet machine would show once
    each server saturates its core.
    """
    if numerator not in results or denominator not in results:
        return float("nan")
    key = "server_cpu_ms_per_request"
    top = results[numerator].figure(f"{mode}/throughput", key)
    bottom = results[denominator].figure(f"{mode}/throughput", key)
    return bottom / top if top > 0 else float("nan")


def table(results: dict[str, SystemResult]) -> str:
    header = (
        f"{'system':<20}{'mode':<8}{'max req/s':>10}{'core used':>10}{'cpu ms/req':>11}"
        f"{'seq p50 +ms':>12}{'seq p99 +ms':>12}{'half p50 +ms':>13}{'half p99 +ms':>13}"
        f"{'peak RSS MB':>12}"
    )
    # "core used": the server's CPU seconds per second at max throughput. Well below 100% means
    # it did not get its core to itself (or waited on something), so its req/s understates it.
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        for mode in MODES:
            half = result.phases.get(f"{mode}/half_load", {})
            saturated = bool(half.get("saturated"))

            def half_added(
                key: str, name: str = name, mode: str = mode, saturated: bool = saturated
            ) -> str:
                if saturated:
                    return "saturated"
                return f"{added(results, name, f'{mode}/half_load', key):.3f}"

            lines.append(
                f"{name:<20}{mode:<8}"
                f"{result.figure(f'{mode}/throughput', 'achieved_rps'):>10.0f}"
                f"{result.figure(f'{mode}/throughput', 'server_cpu_share'):>10.0%}"
                f"{result.figure(f'{mode}/throughput', 'server_cpu_ms_per_request'):>11.3f}"
                f"{added(results, name, f'{mode}/sequential', 'p50_ms'):>12.3f}"
                f"{added(results, name, f'{mode}/sequential', 'p99_ms'):>12.3f}"
                f"{half_added('p50_ms'):>13}{half_added('p99_ms'):>13}"
                f"{result.peak_rss_mb:>12.1f}"
            )
    return "\n".join(lines)


def figures(results: dict[str, SystemResult]) -> dict[str, object]:
    out: dict[str, object] = {}
    short = {
        "modelplane": "mp",
        "modelplane-litellm": "mp_litellm",
        "litellm-proxy": "litellm",
        "bare": "bare",
        "haproxy": "haproxy",
        "direct": "direct",
    }
    for mode in MODES:
        for system, prefix in short.items():
            if system in results:
                out[f"{prefix}_{mode}_rps"] = results[system].figure(
                    f"{mode}/throughput", "achieved_rps"
                )
    for mode in MODES:
        out[f"mp_vs_litellm_{mode}"] = ratio(results, "modelplane", "litellm-proxy", mode)
        out[f"mp_vs_bare_{mode}"] = ratio(results, "modelplane", "bare", mode)
        out[f"mp_litellm_vs_litellm_{mode}"] = ratio(
            results, "modelplane-litellm", "litellm-proxy", mode
        )
        out[f"mp_vs_litellm_per_cpu_{mode}"] = cpu_ratio(
            results, "modelplane", "litellm-proxy", mode
        )
        out[f"mp_vs_bare_per_cpu_{mode}"] = cpu_ratio(results, "modelplane", "bare", mode)
    # Latency added over direct by modelplane, and by the two pass-throughs that bound what any
    # proxy hop costs here (bare Python, HAProxy in C), at the same rates.
    for system in ("modelplane", "bare", "haproxy"):
        if system not in results:
            continue
        for mode in MODES:
            for phase, label in (("sequential", "seq"), ("half_load", "half")):
                for key in ("p50_ms", "p99_ms"):
                    percentile = key.removesuffix("_ms")
                    out[f"{short[system]}_added_{percentile}_ms_{label}_{mode}"] = added(
                        results, system, f"{mode}/{phase}", key
                    )
            out[f"{short[system]}_half_p99_episodes_{mode}"] = results[system].figure(
                f"{mode}/half_load", "p99_episodes"
            )
    for mode in MODES:
        for system, prefix in short.items():
            if system in results and system != "direct":
                out[f"{prefix}_cpu_ms_per_req_{mode}"] = results[system].figure(
                    f"{mode}/throughput", "server_cpu_ms_per_request"
                )
    if "modelplane" in results:
        out["mp_peak_rss_mb"] = results["modelplane"].peak_rss_mb
    return out


def targets(values: dict[str, object]) -> list[str]:
    def number(name: str) -> float:
        value = values.get(name)
        return float(value) if isinstance(value, int | float) else float("nan")

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    def missing(*names: str) -> bool:
        return any(number(name) != number(name) for name in names)  # NaN: not measured

    lines = []
    for mode in MODES:
        vs_litellm, vs_bare = number(f"mp_vs_litellm_{mode}"), number(f"mp_vs_bare_{mode}")
        if missing(f"mp_vs_litellm_{mode}", f"mp_vs_bare_{mode}", f"mp_added_p50_ms_seq_{mode}"):
            lines.append(f"targets {mode}: not all of modelplane, LiteLLM proxy, bare, direct ran")
            continue
        lines.append(
            f"throughput {mode}: {vs_litellm:.1f}x LiteLLM proxy (target >= 10x: "
            f"{verdict(vs_litellm >= 10)}), {vs_bare:.0%} of bare (target >= 25%: "
            f"{verdict(vs_bare >= 0.25)})"
        )
        per_cpu_litellm = number(f"mp_vs_litellm_per_cpu_{mode}")
        per_cpu_bare = number(f"mp_vs_bare_per_cpu_{mode}")
        lines.append(
            f"  per CPU-second (robust on a shared machine): {per_cpu_litellm:.1f}x LiteLLM "
            f"proxy ({verdict(per_cpu_litellm >= 10)}), {per_cpu_bare:.0%} of bare "
            f"({verdict(per_cpu_bare >= 0.25)})"
        )
        for label in ("seq", "half"):
            p50, p99 = (
                number(f"mp_added_p50_ms_{label}_{mode}"),
                number(f"mp_added_p99_ms_{label}_{mode}"),
            )
            lines.append(
                f"added latency {mode} {label}: p50 {p50:.3f} ms (target <= 0.5: "
                f"{verdict(p50 <= 0.5)}), p99 {p99:.3f} ms (target <= 1.5: {verdict(p99 <= 1.5)})"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="short phases (for make bench)")
    parser.add_argument("--profile", action="store_true", help="sample modelplane with py-spy")
    parser.add_argument("--concurrency", type=int, default=32, help="clients at max throughput")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help="comma-separated subset")
    args = parser.parse_args()
    systems = [name for name in args.systems.split(",") if name]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        parser.error(f"unknown system(s): {', '.join(unknown)}")
    if "haproxy" in systems and not haproxy.available():
        print("haproxy is not installed (apt-get install haproxy): skipped", file=sys.stderr)
        systems.remove("haproxy")
    # modelplane first: its maximum sets the half-load rate every system is measured at.
    systems.sort(key=lambda name: name != "modelplane")
    bench = Bench(args)
    results = bench.run(systems)
    values = figures(results)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "router_overhead.json").write_text(
        json.dumps(
            {
                "quick": args.quick,
                "half_load_rps": bench.half_load_rps,
                "systems": {name: vars(result) for name, result in results.items()},
                "figures": values,
            },
            indent=2,
            default=str,
        )
    )
    print(table(results))
    print()
    print(f"half load: {', '.join(f'{m} {r:.0f} req/s' for m, r in bench.half_load_rps.items())}")
    print("\n".join(targets(values)))
    for name, text in bench.profiles.items():
        print(f"\nprofile of {name} under load:\n{text}")
    print(figures_line(values))


if __name__ == "__main__":
    main()
