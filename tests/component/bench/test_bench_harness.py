"""The benchmark harness itself works: its upstream, bare pass-through and load generator.

Each runs as its own process on 127.0.0.1, as the benchmarks run them. No timing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from modelplane.testing.processes import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def start(module: str, *args: str, health: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", module, "--port", str(port), *args],
        cwd=REPO_ROOT,  # `python -m bench.<name>` imports the repo's bench/ from here
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        if process.poll() is not None:
            raise RuntimeError(
                f"{module} exited: {process.stderr.read() if process.stderr else ''!r}"
            )
        try:
            if httpx.get(base_url + health, timeout=1).status_code == 200:
                return process, base_url
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{module} did not answer {health}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture
def upstream() -> Iterator[str]:
    process, url = start("bench.fast_upstream", "--stream-chunks", "3", health="/health")
    yield url
    stop(process)


@pytest.fixture
def passthrough(upstream: str) -> Iterator[str]:
    process, url = start("bench.passthrough", "--upstream", upstream, health="/healthz")
    yield url
    stop(process)


def chat(stream: bool) -> dict[str, object]:
    return {
        "model": "llama-3-8b",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
    }


def test_bare_passthrough_relays_a_plain_completion_from_the_upstream(passthrough: str) -> None:
    answer = httpx.post(passthrough + "/v1/chat/completions", json=chat(False), timeout=10)

    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "chat.completion"
    assert body["model"] == "llama-3-8b"
    assert body["choices"][0]["message"]["role"] == "assistant"


def test_bare_passthrough_relays_every_stream_event_and_the_done_marker(passthrough: str) -> None:
    with httpx.stream(
        "POST", passthrough + "/v1/chat/completions", json=chat(True), timeout=10
    ) as answer:
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in answer.iter_lines() if line.startswith("data: ")]

    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len(chunks) == 3 + 1  # the content chunks, then the one carrying finish_reason
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_bare_passthrough_answers_malformed_json_with_400(passthrough: str) -> None:
    answer = httpx.post(
        passthrough + "/v1/chat/completions",
        content=b"{not json",
        headers={"content-type": "application/json"},
        timeout=10,
    )

    assert answer.status_code == 400
    assert "error" in answer.json()


def run_loadgen(url: str, *args: str) -> dict[str, object]:
    completed = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", "--url", url, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_load_generator_counts_each_completed_request(passthrough: str, stream: bool) -> None:
    result = run_loadgen(
        passthrough + "/v1/chat/completions",
        "--concurrency",
        "4",
        "--requests",
        "40",
        "--duration",
        "30",
        *(["--stream"] if stream else []),
    )

    assert result["requests"] == 40
    assert result["errors"] == 0


def test_load_generator_counts_error_answers_as_errors_not_successes(upstream: str) -> None:
    result = run_loadgen(upstream + "/v1/no-such-path", "--concurrency", "2", "--requests", "10")

    assert result["requests"] == 0
    assert result["errors"] == 10
    assert "status 404" in str(result["first_error"])


def test_load_generator_open_mode_sends_the_scheduled_number_of_requests(upstream: str) -> None:
    result = run_loadgen(
        upstream + "/v1/chat/completions", "--mode", "open", "--rate", "200", "--duration", "0.5"
    )

    assert result["requests"] == 100
    assert result["errors"] == 0


def test_load_generator_open_mode_with_poisson_arrivals_sends_the_scheduled_number(
    upstream: str,
) -> None:
    result = run_loadgen(
        upstream + "/v1/chat/completions",
        *("--mode", "open", "--arrivals", "poisson", "--rate", "200", "--duration", "0.5"),
    )

    assert result["requests"] == 100
    assert result["errors"] == 0


def test_load_generator_open_mode_leaves_the_warm_up_out_of_the_measured_requests(
    upstream: str,
) -> None:
    result = run_loadgen(
        upstream + "/v1/chat/completions",
        *("--mode", "open", "--rate", "200", "--duration", "0.5", "--warmup", "0.25"),
    )

    assert result["requests"] == 100
    assert result["warmup_requests"] == 50
    assert result["errors"] == 0
