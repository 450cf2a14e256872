"""Memory soak: the router's resident memory after 1k, 10k and 100k requests, plain and streamed.

A fresh `modelplane router serve` per mode (the pass-through configuration of
`bench.router_overhead`) in front of the fast upstream; the load generator sends requests in
batches up to each checkpoint and the router's VmRSS is read from /proc after each. A leak shows
as growth between the last two checkpoints (10k -> 100k: target <= 5%). `--quick` uses 500, 1k
and 10k requests (the same tenfold step at the end).

Run: `python -m bench.memory_soak [--quick]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.harness import RESULTS_DIR, figures_line, run_loadgen, start_fast_upstream
from bench.router_overhead import MODELPLANE_KEY, modelplane_server

FULL_CHECKPOINTS = (1_000, 10_000, 100_000)
QUICK_CHECKPOINTS = (500, 1_000, 10_000)
MODES = ("plain", "stream")


def label(count: int) -> str:
    return f"{count // 1000}k" if count % 1000 == 0 else str(count)


def soak(
    upstream_url: str, mode: str, checkpoints: tuple[int, ...], concurrency: int
) -> dict[str, float]:
    router = modelplane_server(f"modelplane-soak-{mode}", upstream_url, None)
    router.start(ready_timeout_s=180)
    rss: dict[str, float] = {"startup": router.rss_kb() / 1024}
    errors = 0
    sent = 0
    began = time.perf_counter()
    try:
        for checkpoint in checkpoints:
            summary = run_loadgen(
                f"http://127.0.0.1:{router.port}/v1/chat/completions",
                stream=mode == "stream",
                api_key=MODELPLANE_KEY,
                concurrency=concurrency,
                duration_s=3600,
                requests=checkpoint - sent,
            )
            errors += int(summary["errors"])
            sent = checkpoint
            time.sleep(0.5)  # let in-flight cleanup (connection close, task teardown) settle
            rss[label(checkpoint)] = router.rss_kb() / 1024
            print(
                f"[{mode}] {checkpoint:>7} requests: RSS {rss[label(checkpoint)]:.1f} MB "
                f"({summary['achieved_rps']:.0f} req/s)",
                file=sys.stderr,
                flush=True,
            )
        rss["peak"] = router.peak_rss_kb() / 1024
    finally:
        router.stop()
    rss["errors"] = errors
    rss["seconds"] = time.perf_counter() - began
    return rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="500/1k/10k instead of 1k/10k/100k")
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    checkpoints = QUICK_CHECKPOINTS if args.quick else FULL_CHECKPOINTS
    upstream = start_fast_upstream().start()
    results: dict[str, dict[str, float]] = {}
    try:
        for mode in MODES:
            results[mode] = soak(
                f"http://127.0.0.1:{upstream.port}", mode, checkpoints, args.concurrency
            )
    finally:
        upstream.stop()

    first_step, last = label(checkpoints[-2]), label(checkpoints[-1])
    figures: dict[str, object] = {}
    print(
        f"{'mode':<8}{'startup':>9}"
        + "".join(f"{label(c):>9}" for c in checkpoints)
        + f"{'growth':>9}"
    )
    growths: list[float] = []
    for mode, rss in results.items():
        growth = 100 * (rss[last] - rss[first_step]) / rss[first_step]
        growths.append(growth)
        print(
            f"{mode:<8}{rss['startup']:>9.1f}"
            + "".join(f"{rss[label(c)]:>9.1f}" for c in checkpoints)
            + f"{growth:>8.1f}%"
        )
        for checkpoint in checkpoints:
            figures[f"rss_mb_{mode}_{label(checkpoint)}"] = rss[label(checkpoint)]
        figures[f"growth_pct_{mode}_{first_step}_to_{last}"] = growth
        figures[f"errors_{mode}"] = int(rss["errors"])
    worst = max(growths)
    print(
        f"RSS growth {first_step} -> {last} requests: worst {worst:.1f}% (target <= 5%: "
        f"{'met' if worst <= 5 else 'NOT met'})"
    )
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "memory_soak.json").write_text(json.dumps(results, indent=2))
    print(figures_line(figures))


if __name__ == "__main__":
    main()
