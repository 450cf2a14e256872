"""HAProxy as a plain HTTP pass-through: what one proxy hop costs on this machine, in C.

Neither a router nor a Python program: it forwards every request to the benchmark upstream with
pooled keep-alive connections (`http-reuse always`), one thread, no logging. It is measured like
the other systems so the latency any proxy hop adds here (the scheduler waking a process on the
other core, loopback TCP both ways) is a figure of the same run, apart from what modelplane adds
on top of it. `busy=True` turns on HAProxy's `busy-polling`, which keeps its core from sleeping
between events (HAProxy documents it for virtual machines, where waking a halted vCPU is slow).

HAProxy comes from Debian's packages (`apt-get install haproxy`); without it these systems are
skipped.
"""

from __future__ import annotations

import shutil

from bench.harness import RESULTS_DIR, ServerProcess


def available() -> bool:
    return shutil.which("haproxy") is not None


def config(port: int, upstream_url: str, busy: bool) -> str:
    upstream = upstream_url.removeprefix("http://").rstrip("/")
    return "\n".join(
        [
            "global",
            "    nbthread 1",
            "    maxconn 4096",
            *(["    busy-polling"] if busy else []),
            "defaults",
            "    mode http",
            "    timeout connect 5s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    option http-keep-alive",
            "frontend benchmark",
            f"    bind 127.0.0.1:{port}",
            "    default_backend upstream",
            "backend upstream",
            "    http-reuse always",
            f"    server upstream {upstream}",
            "",
        ]
    )


def server(name: str, port: int, upstream_url: str, busy: bool) -> ServerProcess:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    config_path = RESULTS_DIR / f"{name}.cfg"
    config_path.write_text(config(port, upstream_url, busy))
    executable = shutil.which("haproxy")
    if executable is None:
        raise RuntimeError("haproxy is not installed (Debian: apt-get install haproxy)")
    # -db: stay in the foreground, so stopping the ServerProcess stops HAProxy.
    return ServerProcess(name=name, command=[executable, "-db", "-f", str(config_path)], port=port)
