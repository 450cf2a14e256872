"""Figures for docs/reliability.md's security section, measured against a real router process.

    .venv/bin/python tools/security_figures.py [--max-header-bytes BYTES]

Starts `modelplane router serve` (one in-cluster backend on a loopback upstream, no telemetry)
and prints: the router's CPU time per served request and per request with a wrong key; how soon
a wrong key is refused when the request declares an 8 MB body and sends 1 KB; and the router's
peak RSS while 8 connections each send a 32 MB header. `--max-header-bytes 1000000000` shows
what uvicorn's parser does without the bound.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from modelplane.testing.router_config import in_cluster_llama, router_config_text
from modelplane.testing.router_process import RouterProcess, ThreadedUpstreams, start_router_process

KEY = "figures-key"
REQUESTS = 1000
FLOOD_CONNECTIONS = 8
FLOOD_HEADER_BYTES = 32 * 1024 * 1024


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
    return 0.0


def port_of(router: RouterProcess) -> int:
    return int(router.url.rsplit(":", 1)[1])


def cost_per_request(router: RouterProcess) -> None:
    pid = router.process.pid
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi"}]}
    with httpx.Client(base_url=router.url, timeout=30) as client:
        for _ in range(50):  # warm up
            client.post(
                "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {KEY}"}
            )
        for label, key in (("served", KEY), ("wrong key", "not-a-key")):
            started, latencies, status = cpu_seconds(pid), [], 0
            for _ in range(REQUESTS):
                sent = time.perf_counter()
                response = client.post(
                    "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
                )
                latencies.append((time.perf_counter() - sent) * 1000)
                status = response.status_code
            cpu_ms = 1000 * (cpu_seconds(pid) - started) / REQUESTS
            print(
                f"{label} ({status}): router CPU {cpu_ms:.2f} ms per request, "
                f"p50 {statistics.median(latencies):.2f} ms over {REQUESTS} requests"
            )


def wrong_key_with_a_large_body(router: RouterProcess) -> None:
    latencies, status = [], b""
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: router\r\n"
        b"authorization: Bearer not-a-key\r\ncontent-length: 8388608\r\n\r\n"
    )
    for _ in range(50):
        with socket.create_connection(("127.0.0.1", port_of(router)), timeout=10) as connection:
            sent = time.perf_counter()
            connection.sendall(head + b"{" * 1024)
            status = connection.recv(100).split(b"\r\n")[0]
            latencies.append((time.perf_counter() - sent) * 1000)
    print(
        f"wrong key, 8 MB body declared, 1 KB sent: {status.decode()} after "
        f"p50 {statistics.median(latencies):.2f} ms"
    )


def header_flood(router: RouterProcess, max_header_bytes: int) -> None:
    pid, answers = router.process.pid, []

    def flood() -> None:
        with socket.create_connection(("127.0.0.1", port_of(router)), timeout=30) as connection:
            with contextlib.suppress(OSError):
                connection.sendall(
                    b"GET /v1/models HTTP/1.1\r\nhost: router\r\nx-padding: "
                    + b"a" * FLOOD_HEADER_BYTES
                )
            try:
                answers.append(connection.recv(100).split(b"\r\n")[0].decode())
            except OSError as error:
                answers.append(type(error).__name__)

    before = peak = rss_mb(pid)
    threads = [threading.Thread(target=flood) for _ in range(FLOOD_CONNECTIONS)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        peak = max(peak, rss_mb(pid))
        time.sleep(0.01)
    print(
        f"--max-header-bytes {max_header_bytes}: {FLOOD_CONNECTIONS} connections each sending a "
        f"{FLOOD_HEADER_BYTES >> 20} MB header got {sorted(set(answers))}; router RSS "
        f"{before:.0f} MB before, {peak:.0f} MB at peak"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-header-bytes", type=int, default=64 * 1024)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    upstreams = ThreadedUpstreams()
    try:
        llama = upstreams.start("llama-3-8b")
        with tempfile.TemporaryDirectory() as directory:
            config = Path(directory) / "router.yaml"
            config.write_text(
                router_config_text(
                    backends=[in_cluster_llama(llama.base_url)],
                    tenants=[{"name": "team", "api_keys": [KEY]}],
                )
            )
            router = start_router_process(
                [
                    "--config", str(config), "--no-telemetry",
                    "--max-header-bytes", str(args.max_header_bytes),
                ],
                Path(directory) / "router.log",
            )  # fmt: skip
            try:
                cost_per_request(router)
                wrong_key_with_a_large_body(router)
                header_flood(router, args.max_header_bytes)
            finally:
                router.stop()
    finally:
        upstreams.close()


if __name__ == "__main__":
    main()
