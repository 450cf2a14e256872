"""A router process stopped with SIGTERM while slow requests are in flight.

It must first report not ready (so Kubernetes takes it out of its Service) while it still accepts
connections for `--shutdown-delay`, then stop accepting, finish every request in flight (plain
and streamed) with its whole body, and exit with 0.
"""

from __future__ import annotations

import concurrent.futures
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelplane.testing.router_config import in_cluster_llama, router_config_text
from modelplane.testing.router_process import (
    RouterProcess,
    ThreadedUpstreams,
    start_router_process,
)
from modelplane.testing.upstream import DEFAULT_REPLY, LoopbackUpstream

KEY = "team-key"
SHUTDOWN_DELAY_S = 1.0
# Each upstream answer takes 3 s to its first token and 0.2 s per further word, so requests
# started before the signal, or during the delay, are still running when the router stops
# accepting, even on a busy machine.
UPSTREAM_TTFT_S, UPSTREAM_TOKEN_DELAY_S = 3.0, 0.2
PLAIN_REQUESTS, STREAMED_REQUESTS = 3, 3


@pytest.fixture
def slow_upstream() -> Iterator[LoopbackUpstream]:
    host = ThreadedUpstreams()
    try:
        upstream = host.start("llama-3-8b")
        upstream.behaviour.ttft_s = UPSTREAM_TTFT_S
        upstream.behaviour.token_delay_s = UPSTREAM_TOKEN_DELAY_S
        yield upstream
    finally:
        host.close()


@pytest.fixture
def router(slow_upstream: LoopbackUpstream, tmp_path: Path) -> Iterator[RouterProcess]:
    config = tmp_path / "router.yaml"
    config.write_text(
        router_config_text(
            backends=[in_cluster_llama(slow_upstream.base_url)],
            tenants=[{"name": "team", "api_keys": [KEY]}],
        )
    )
    options = ["--config", str(config), "--scrape-interval", "0"]
    options += ["--shutdown-delay", str(SHUTDOWN_DELAY_S), "--shutdown-timeout", "30"]
    process = start_router_process(options, tmp_path / "router.log")
    yield process
    process.stop()


def plain_reply(router: RouterProcess) -> tuple[int, str, float]:
    """Status, reply text and the time the whole answer had arrived."""
    answer = router.chat(KEY, timeout=30)
    text = answer.json()["choices"][0]["message"]["content"] if answer.status_code == 200 else ""
    return answer.status_code, text, time.monotonic()


def streamed_reply(router: RouterProcess) -> tuple[int, str, float]:
    """Status, the text of every delta joined (only if the stream ended with [DONE]), end time."""
    with router.stream_chat(KEY, timeout=30) as answer:
        deltas: list[str] = []
        done = False
        for line in answer.iter_lines():
            if not line.startswith("data: "):
                continue
            data = line.removeprefix("data: ")
            if data == "[DONE]":
                done = True
                continue
            for choice in json.loads(data).get("choices") or []:
                deltas.append((choice.get("delta") or {}).get("content") or "")
        return answer.status_code, "".join(deltas) if done else "", time.monotonic()


def poll(probe_url: str, until_refused: bool) -> tuple[int | None, float]:
    """GET `probe_url` every 20 ms until it answers 503 (or, `until_refused`, is refused)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            status = httpx.get(probe_url, timeout=5).status_code
        except httpx.ConnectError:
            return None, time.monotonic()
        except (httpx.ReadError, httpx.RemoteProtocolError):
            # Taken into the listen backlog just as the listener closed: also not accepted.
            if until_refused:
                return None, time.monotonic()
            raise
        if status == 503 and not until_refused:
            return status, time.monotonic()
        time.sleep(0.02)
    raise AssertionError(f"{probe_url} never {'refused' if until_refused else 'answered 503'}")


def test_sigterm_drops_readiness_first_then_drains_in_flight_requests_and_exits_0(
    router: RouterProcess, slow_upstream: LoopbackUpstream
) -> None:
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        before = [pool.submit(plain_reply, router) for _ in range(PLAIN_REQUESTS)]
        before += [pool.submit(streamed_reply, router) for _ in range(STREAMED_REQUESTS)]
        deadline = time.monotonic() + 15
        while slow_upstream.in_flight < len(before) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert slow_upstream.in_flight == len(before), "requests not in flight before SIGTERM"

        router.process.send_signal(signal.SIGTERM)
        readiness, not_ready_at = poll(f"{router.url}/readyz", until_refused=False)
        # Not ready, yet still accepting: a request routed here during the delay is served.
        during_delay = pool.submit(plain_reply, router)
        _, refused_at = poll(f"{router.url}/healthz", until_refused=True)
        in_flight_when_refused = slow_upstream.in_flight
        results = [future.result(timeout=40) for future in [*before, during_delay]]
        exit_code = router.process.wait(timeout=30)

    assert readiness == 503
    assert not_ready_at < refused_at
    assert [(status, text) for status, text, _ in results] == [(200, DEFAULT_REPLY)] * 7
    assert in_flight_when_refused > 0, "nothing was left to drain"
    assert min(finished for _, _, finished in results) > refused_at
    assert exit_code == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{router.url}/healthz", timeout=2)
    print(
        f"\nSIGTERM with {len(before)} requests in flight ({STREAMED_REQUESTS} streamed) and one "
        f"sent during the {SHUTDOWN_DELAY_S:.0f} s delay: /readyz 503 "
        f"{refused_at - not_ready_at:.2f} s before connections were refused, with "
        f"{in_flight_when_refused} requests in flight; "
        f"{sum(status == 200 for status, _, _ in results)}/{len(results)} completed with 200 "
        f"and their full body; exit code {exit_code}"
    )
