"""Process plumbing shared by the benchmarks: start servers pinned to cores, read /proc, run load.

Core layout on this 2-core machine (when `taskset` exists): the server under test runs alone on
core 0; the upstream and the load generator share core 1. Both of those are raw-protocol programs
costing a few microseconds per request, so the server under test is what saturates, and its CPU
time per request is read from its own /proc entries, not inferred from the machine's load.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelplane.testing.processes import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"
SERVER_CORE = "0"
HELPER_CORE = "1"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def pinned(command: Sequence[str], cores: str | None) -> list[str]:
    """Prefix `taskset -c` when pinning is possible here; pinning is an aid, not a requirement.

    `BENCH_NO_PIN=1` turns it off (on a machine other work shares, pinning can hurt more).
    """
    if cores is None or os.environ.get("BENCH_NO_PIN") == "1":
        return list(command)
    if shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return list(command)
    return ["taskset", "-c", cores, *command]


def bench_env(**extra: str) -> dict[str, str]:
    """The environment every benchmark child gets: LiteLLM kept offline.

    Children run `python -m bench.<name>` from the repo root, which makes `bench` importable.
    PYTHONPATH must not name the repo root: its `operator/` folder would shadow the stdlib module
    during interpreter start-up (`-m` adds the working directory only after start-up).
    """
    env = dict(os.environ)
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def children_of(pid: int) -> list[int]:
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name may contain spaces or parentheses: fields start after the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found


def process_tree(pid: int) -> list[int]:
    tree = [pid]
    for child in children_of(pid):
        tree.extend(process_tree(child))
    return tree


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (all its threads), including reaped children."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command name, state is fields[0]: utime, stime, cutime, cstime are [11:15].
    return sum(int(value) for value in fields[11:15]) / CLOCK_TICKS


def status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


@dataclass
class ServerProcess:
    """A benchmark server in its own session, so stopping it stops everything it started."""

    name: str
    command: list[str]
    port: int
    cores: str | None = SERVER_CORE
    env: dict[str, str] = field(default_factory=bench_env)
    cwd: Path = REPO_ROOT
    health_path: str = "/healthz"
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = None

    def start(self, ready_timeout_s: float = 60.0) -> ServerProcess:
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = RESULTS_DIR / f"{self.name}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            pinned(self.command, self.cores),
            cwd=self.cwd,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.wait_ready(ready_timeout_s)
        return self

    def wait_ready(self, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        url = f"http://127.0.0.1:{self.port}{self.health_path}"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status < 500:
                        return
            except urllib.error.HTTPError as error:
                if error.code < 500:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready on {url} after {timeout_s} s: {self.tail()}")

    def tail(self, lines: int = 20) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def tree(self) -> list[int]:
        """The server's processes; `taskset` execs the command, so the pid is the server's."""
        return process_tree(self.pid)

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.tree())

    def rss_kb(self) -> int:
        return sum(status_kb(pid, "VmRSS") for pid in self.tree())

    def peak_rss_kb(self) -> int:
        return sum(status_kb(pid, "VmHWM") for pid in self.tree())

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@contextlib.contextmanager
def running(server: ServerProcess, ready_timeout_s: float = 60.0) -> Iterator[ServerProcess]:
    try:
        yield server.start(ready_timeout_s)
    finally:
        server.stop()


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def start_fast_upstream(stream_chunks: int = 8) -> ServerProcess:
    port = free_port()
    return ServerProcess(
        name="fast-upstream",
        command=python_module(
            "bench.fast_upstream", "--port", str(port), "--stream-chunks", str(stream_chunks)
        ),
        port=port,
        cores=HELPER_CORE,
        health_path="/health",
    )


def run_loadgen(
    url: str,
    *,
    stream: bool,
    model: str = "auto",
    api_key: str = "bench-key",
    pattern: str = "closed",
    concurrency: int = 32,
    duration_s: float = 5.0,
    requests: int = 0,
    rate: float = 0.0,
    warmup_s: float = 0.0,
) -> dict[str, float]:
    """Run the load generator in its own process on the helper core and return its summary."""
    command = python_module(
        "bench.loadgen",
        "--url",
        url,
        "--model",
        model,
        "--api-key",
        api_key,
        "--mode",
        pattern,
        "--concurrency",
        str(concurrency),
        "--duration",
        str(duration_s),
        "--requests",
        str(requests),
        "--rate",
        str(rate),
        "--warmup",
        str(warmup_s),
        *(["--stream"] if stream else []),
    )
    completed = subprocess.run(
        pinned(command, HELPER_CORE),
        cwd=REPO_ROOT,
        env=bench_env(),
        capture_output=True,
        text=True,
        timeout=(warmup_s + duration_s) * 4 + 120,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"load generator failed: {completed.stderr[-2000:]}")
    summary: dict[str, float] = json.loads(completed.stdout.strip().splitlines()[-1])
    return summary


def figures_line(figures: dict[str, object]) -> str:
    """The last line every benchmark prints: space-separated name=value pairs."""
    return " ".join(f"{name}={format_value(value)}" for name, value in figures.items())


def format_value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)
