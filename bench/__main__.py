"""Run every benchmark, each in its own process, and print one summary of their figures.

Each benchmark is `python -m bench.<name> [--quick]` and ends its output with a line of
`name=value` pairs; this runner collects those lines, so a benchmark that crashes, hangs or is
missing shows as such instead of hiding the others. Results go to `bench/results/`.

Run: `python -m bench [--quick] [--only a,b]` (`make bench` = `--quick`, `make bench-full`).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from bench.harness import REPO_ROOT, RESULTS_DIR, bench_env

# In running order; the quick budget (seconds) keeps `make bench` within 5 minutes.
BENCHMARKS: dict[str, tuple[float, float]] = {
    "policy_decision": (45, 600),
    "pii_scan": (45, 600),
    "app_path": (30, 300),
    "router_overhead": (200, 1800),
    "latency_by_rate": (150, 900),
    "memory_soak": (90, 1200),
    "operator_scale": (120, 900),
}
EXTRA_ARGS_FULL: dict[str, list[str]] = {
    "router_overhead": ["--profile"],
    "operator_scale": ["--profile"],
}


@dataclass
class Outcome:
    name: str
    status: str  # ok | failed | timeout | missing
    seconds: float = 0.0
    figures: dict[str, str] = field(default_factory=dict)
    detail: str = ""


def parse_figures(line: str) -> dict[str, str]:
    return dict(token.split("=", 1) for token in line.split() if "=" in token)


def run_benchmark(name: str, quick: bool) -> Outcome:
    if importlib.util.find_spec(f"bench.{name}") is None:
        return Outcome(name, "missing", detail=f"bench/{name}.py does not exist")
    quick_limit, full_limit = BENCHMARKS[name]
    command = [sys.executable, "-m", f"bench.{name}"]
    command += ["--quick"] if quick else EXTRA_ARGS_FULL.get(name, [])
    print(f"==> {' '.join(command[1:])}", flush=True)
    began = time.perf_counter()
    log_path = RESULTS_DIR / f"{name}.out"
    try:
        # stderr (progress) goes straight to the terminal; stdout is kept for the figures.
        completed = subprocess.run(
            command,
            cwd=REPO_ROOT,
            env=bench_env(),
            stdout=subprocess.PIPE,
            text=True,
            timeout=quick_limit * 2 if quick else full_limit,
            check=False,
        )
    except subprocess.TimeoutExpired as expired:
        output = expired.stdout if isinstance(expired.stdout, str) else ""
        log_path.write_text(output)
        return Outcome(name, "timeout", time.perf_counter() - began, detail=output[-500:])
    seconds = time.perf_counter() - began
    log_path.write_text(completed.stdout)
    sys.stdout.write(completed.stdout)
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    figures = parse_figures(lines[-1]) if lines else {}
    if completed.returncode != 0 or not figures:
        detail = f"exit code {completed.returncode}" + ("" if figures else ", no figures line")
        return Outcome(name, "failed", seconds, figures, detail)
    return Outcome(name, "ok", seconds, figures)


def summary(outcomes: list[Outcome], quick: bool, total_s: float) -> str:
    lines = [
        "",
        f"=== benchmark summary ({'quick' if quick else 'full'}, {total_s:.0f} s) ===",
    ]
    for outcome in outcomes:
        lines.append(
            f"{outcome.name:<17} {outcome.status:<8} {outcome.seconds:6.1f} s  {outcome.detail}"
        )
        lines += [f"    {name} = {value}" for name, value in outcome.figures.items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short version (make bench)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    args = parser.parse_args()
    names = [name for name in args.only.split(",") if name] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    outcomes = [run_benchmark(name, args.quick) for name in names]
    total = time.perf_counter() - began
    print(summary(outcomes, args.quick, total))
    (RESULTS_DIR / "summary.json").write_text(
        json.dumps(
            {"quick": args.quick, "seconds": total, "benchmarks": [asdict(o) for o in outcomes]},
            indent=2,
        )
    )
    return 0 if all(outcome.status == "ok" for outcome in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
