"""Operator scale: time until 100 and 1,000 ModelDeployments are all reconciled, and its memory.

Processes: the Kubernetes emulator (`python -m modelplane.testing.kube`, the same one the
component tests use) on the helper core, and the real operator (`modelplane operator run`, kopf)
on the server core, talking HTTP through a kubeconfig like in a cluster. The benchmark creates
N ModelDeployments (vLLM, 1 GPU, a weight cache and autoscaling, so each has five children:
Deployment, Service, PersistentVolumeClaim, HorizontalPodAutoscaler, PodDisruptionBudget) and
polls until every one has all the children the pure builders say it should have and
`status.observedGeneration` equal to its `metadata.generation`. The clock starts before the first
create. The operator's peak RSS (VmHWM) and CPU time come from its /proc entries.

Not measured: a real API server's latency and its watch fan-out; the emulator answers from memory
in one Python process, so at 1,000 objects it may itself be a bottleneck (its CPU time is shown).

Run: `python -m bench.operator_scale [--quick] [--sizes 100,1000]` (quick: 100 only).
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.harness import (
    HELPER_CORE,
    RESULTS_DIR,
    SERVER_CORE,
    ServerProcess,
    bench_env,
    figures_line,
    python_module,
)
from bench.hotspots import load as load_profile
from bench.hotspots import render as render_profile
from modelplane.testing.processes import free_port

NAMESPACE = "bench"
GROUP_PATH = f"/apis/modelplane.dev/v1alpha1/namespaces/{NAMESPACE}/modeldeployments"
CHILD_PATHS = {
    "Deployment": f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments",
    "Service": f"/api/v1/namespaces/{NAMESPACE}/services",
    "PersistentVolumeClaim": f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims",
    "ConfigMap": f"/api/v1/namespaces/{NAMESPACE}/configmaps",
    "HorizontalPodAutoscaler": (
        f"/apis/autoscaling/v2/namespaces/{NAMESPACE}/horizontalpodautoscalers"
    ),
    "PodDisruptionBudget": f"/apis/policy/v1/namespaces/{NAMESPACE}/poddisruptionbudgets",
    "ScaledObject": f"/apis/keda.sh/v1alpha1/namespaces/{NAMESPACE}/scaledobjects",
}


def model_deployment(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {
                "uri": "hf://meta-llama/Meta-Llama-3-8B-Instruct",
                "servedName": name,
                "contextWindow": 8192,
                "capabilities": ["chat", "json"],
            },
            "engine": {"name": "vllm"},
            "resources": {"gpus": 1, "cpu": "4", "memory": "32Gi"},
            "autoscaling": {"minReplicas": 1, "maxReplicas": 4, "targetQueueDepth": 8},
            "cache": {"size": "40Gi"},
            "cost": {"gpuHourUSD": 0.8},
        },
    }


def expected_children(body: dict[str, Any]) -> set[tuple[str, str]]:
    """(kind, name) of every child the operator's own pure builders produce for this resource."""
    from modelplane.operator.builders import build_children
    from modelplane.operator.settings import OperatorSettings

    from modelplane.api.model_deployment import ModelDeployment

    # Children carry owner references, so the builders need the uid the API server would assign.
    stored = {**body, "metadata": {**body["metadata"], "uid": "bench-uid", "generation": 1}}
    manifests = build_children(ModelDeployment.model_validate(stored), OperatorSettings())
    return {(manifest["kind"], manifest["metadata"]["name"]) for manifest in manifests}


@dataclass
class Progress:
    reconciled: int
    with_children: int
    current_status: int


def progress(client: httpx.Client, wanted: dict[str, set[tuple[str, str]]]) -> Progress:
    """Where reconciliation stands. Listing every child is costly for the emulator, which the
    operator is waiting on, so children are only listed once every status is current."""
    current: set[str] = set()
    for item in client.get(GROUP_PATH).json().get("items", []):
        observed = (item.get("status") or {}).get("observedGeneration")
        if observed is not None and observed == item["metadata"].get("generation"):
            current.add(item["metadata"]["name"])
    if len(current) < len(wanted):
        return Progress(0, 0, len(current))
    present: set[tuple[str, str]] = set()
    kinds = {kind for children in wanted.values() for kind, _ in children}
    for kind in kinds:
        listing = client.get(CHILD_PATHS[kind]).json()
        present.update((kind, item["metadata"]["name"]) for item in listing.get("items", []))
    with_children = {name for name, children in wanted.items() if children <= present}
    return Progress(len(with_children & current), len(with_children), len(current))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def start_profiler(pid: int, seconds: float, raw_path: Path) -> subprocess.Popen[bytes] | None:
    py_spy = Path(sys.executable).parent / "py-spy"
    if not py_spy.exists():
        log("py-spy is not installed (make venv installs it): no profile")
        return None
    return subprocess.Popen(
        [
            *(str(py_spy), "record", "-p", str(pid), "-d", str(int(seconds))),
            *("-r", "100", "-f", "raw", "-o", str(raw_path), "--nonblocking", "--full-filenames"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def measure(size: int, timeout_s: float, profile: bool) -> dict[str, float]:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    kubeconfig = RESULTS_DIR / f"operator-scale-{size}.kubeconfig"
    kubeconfig.unlink(missing_ok=True)
    emulator_port = free_port()
    emulator = ServerProcess(
        name=f"kube-emulator-{size}",
        command=python_module(
            "modelplane.testing.kube",
            "--port",
            str(emulator_port),
            "--kubeconfig",
            str(kubeconfig),
        ),
        port=emulator_port,
        cores=HELPER_CORE,
        health_path="/api/v1/namespaces",
    )
    liveness_port = free_port()
    operator = ServerProcess(
        name=f"operator-{size}",
        command=python_module(
            "modelplane",
            "operator",
            "run",
            "--namespace",
            NAMESPACE,
            "--liveness",
            f"http://127.0.0.1:{liveness_port}/healthz",
        ),
        port=liveness_port,
        cores=SERVER_CORE,
        env=bench_env(KUBECONFIG=str(kubeconfig)),
        health_path="/healthz",
    )
    bodies = {f"md-{index:04d}": model_deployment(f"md-{index:04d}") for index in range(size)}
    wanted = {name: expected_children(body) for name, body in bodies.items()}
    emulator.start(ready_timeout_s=60)
    try:
        operator.start(ready_timeout_s=120)
        with httpx.Client(base_url=f"http://127.0.0.1:{emulator_port}", timeout=60) as client:
            operator_cpu_before = operator.cpu_seconds()
            emulator_cpu_before = emulator.cpu_seconds()
            raw_path = RESULTS_DIR / f"profile-operator-{size}.raw"
            profiler = start_profiler(operator.pid, timeout_s, raw_path) if profile else None
            began = time.perf_counter()
            for body in bodies.values():
                client.post(GROUP_PATH, json=body).raise_for_status()
            created_s = time.perf_counter() - began
            log(f"[{size}] created in {created_s:.1f} s")
            poll_interval = 0.25 if size <= 100 else 1.0
            state = Progress(0, 0, 0)
            while time.perf_counter() - began < timeout_s:
                state = progress(client, wanted)
                if state.reconciled == size:
                    break
                time.sleep(poll_interval)
            elapsed = time.perf_counter() - began
            if profiler is not None:
                profiler.send_signal(signal.SIGINT)  # py-spy writes what it has on SIGINT
                profiler.wait(timeout=30)
                text = render_profile(load_profile(raw_path), top=25)
                (RESULTS_DIR / f"profile-operator-{size}.txt").write_text(text + "\n")
                log(f"[{size}] operator profile:\n{text}")
            log(
                f"[{size}] {state.reconciled}/{size} reconciled after {elapsed:.1f} s "
                f"({state.with_children} with children, {state.current_status} status current)"
            )
            return {
                "seconds": elapsed,
                "create_seconds": created_s,
                "reconciled": state.reconciled,
                "timed_out": float(state.reconciled < size),
                "operator_peak_rss_mb": operator.peak_rss_kb() / 1024,
                "operator_cpu_s": operator.cpu_seconds() - operator_cpu_before,
                "emulator_cpu_s": emulator.cpu_seconds() - emulator_cpu_before,
                "children": float(sum(len(children) for children in wanted.values())),
            }
    finally:
        operator.stop()
        emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 ModelDeployments only")
    parser.add_argument("--sizes", default="", help="comma-separated counts (default 100,1000)")
    parser.add_argument("--timeout", type=float, default=0, help="seconds per size")
    parser.add_argument("--profile", action="store_true", help="sample the operator with py-spy")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",") if size] or (
        [100] if args.quick else [100, 1000]
    )
    results: dict[int, dict[str, float]] = {}
    for size in sizes:
        results[size] = measure(size, args.timeout or max(120.0, size * 0.3), args.profile)
    print(
        f"{'ModelDeployments':>17}{'children':>10}{'create s':>10}{'all done s':>11}"
        f"{'operator CPU s':>15}{'emulator CPU s':>15}{'operator peak RSS MB':>21}"
    )
    figures: dict[str, object] = {}
    for size, result in results.items():
        done = f"{result['seconds']:.1f}" + (" (timeout)" if result["timed_out"] else "")
        print(
            f"{size:>17}{result['children']:>10.0f}{result['create_seconds']:>10.1f}{done:>11}"
            f"{result['operator_cpu_s']:>15.1f}{result['emulator_cpu_s']:>15.1f}"
            f"{result['operator_peak_rss_mb']:>21.1f}"
        )
        figures[f"md{size}_seconds"] = result["seconds"]
        figures[f"md{size}_reconciled"] = int(result["reconciled"])
        figures[f"md{size}_operator_peak_rss_mb"] = result["operator_peak_rss_mb"]
        figures[f"md{size}_operator_cpu_s"] = result["operator_cpu_s"]
    largest = max(results)
    worst_rss = max(result["operator_peak_rss_mb"] for result in results.values())
    if largest >= 1000:
        seconds = results[largest]["seconds"]
        print(
            f"{largest} ModelDeployments in {seconds:.1f} s (target <= 60 s for 1,000: "
            f"{'met' if seconds <= 60 and not results[largest]['timed_out'] else 'NOT met'})"
        )
    print(
        f"operator peak RSS {worst_rss:.1f} MB (target <= 200 MB: "
        f"{'met' if worst_rss <= 200 else 'NOT met'})"
    )
    (RESULTS_DIR / "operator_scale.json").write_text(json.dumps(results, indent=2))
    print(figures_line(figures))


if __name__ == "__main__":
    main()
