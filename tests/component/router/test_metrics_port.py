"""`serve --metrics-port`: /metrics on a port of its own, gone from the API's port."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from modelplane.router.api.chat import CHAT_COMPLETIONS_PATH

from modelplane.testing.processes import free_port
from modelplane.testing.router_process import RouterProcess, start_router_process

from .conftest import API_KEY, EXTERNAL_KEY, Upstreams, router_config


@pytest.fixture(scope="module")
def metrics_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def split_router(
    module_upstreams: Upstreams, tmp_path_factory: pytest.TempPathFactory, metrics_port: int
) -> Iterator[RouterProcess]:
    directory = tmp_path_factory.mktemp("metrics-port")
    config = directory / "router.yaml"
    config.write_text(router_config(module_upstreams.llama.base_url, module_upstreams.gpt.base_url))
    router = start_router_process(
        ["--config", str(config), "--metrics-port", str(metrics_port)],
        directory / "router.log",
        env={"TEST_ROUTER_KEY": API_KEY, "TEST_EXTERNAL_KEY": EXTERNAL_KEY},
    )
    yield router
    router.stop()


def test_metrics_are_served_on_their_own_port_and_not_on_the_api_port(
    split_router: RouterProcess, upstreams: Upstreams, metrics_port: int
) -> None:
    answer = httpx.post(
        f"{split_router.url}{CHAT_COMPLETIONS_PATH}",
        json={"model": "auto", "messages": [{"role": "user", "content": "Say hello."}]},
        headers={"Authorization": f"Bearer {API_KEY}"},
    )
    assert answer.status_code == 200

    on_api_port = httpx.get(f"{split_router.url}/metrics")
    assert on_api_port.status_code == 404
    assert on_api_port.json()["error"]["code"] == "not_found"

    scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "gen_ai_client_token_usage" in scraped.text
    assert "modelplane_cost" in scraped.text


def test_the_api_port_still_answers_probes_and_documents_no_metrics_route(
    split_router: RouterProcess,
) -> None:
    assert httpx.get(f"{split_router.url}/healthz").status_code == 200
    assert httpx.get(f"{split_router.url}/readyz").status_code == 200
    document = httpx.get(
        f"{split_router.url}/openapi.json", headers={"Authorization": f"Bearer {API_KEY}"}
    ).json()
    assert "/metrics" not in document["paths"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--metrics-port", "{port}"], "must differ from --port"),
        (["--metrics-port", "9100", "--no-telemetry"], "no metrics to serve"),
        (["--metrics-port", "70000"], "port from 1 to 65535"),
    ],
)
def test_metrics_port_options_that_cannot_work_are_refused_at_start(
    tmp_path: Path, upstreams: Upstreams, options: list[str], message: str
) -> None:
    config = tmp_path / "router.yaml"
    config.write_text(router_config(upstreams.llama.base_url, upstreams.gpt.base_url))
    port = free_port()
    command = [sys.executable, "-m", "modelplane", "router", "serve", "--config", str(config)]
    command += ["--port", str(port), *(option.format(port=port) for option in options)]
    finished = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TEST_ROUTER_KEY": API_KEY, "TEST_EXTERNAL_KEY": EXTERNAL_KEY},
        check=False,
    )
    assert finished.returncode == 2
    assert message in finished.stderr
