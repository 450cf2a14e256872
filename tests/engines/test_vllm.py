"""vLLM's CPU build serves a tiny LLaMA with exactly the arguments the operator's builder writes."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from modelplane.operator.builders import build_children
from modelplane.operator.builders.pod import local_path
from modelplane.operator.settings import OperatorSettings
from openai import OpenAI

from modelplane.api.model_deployment import ModelDeployment
from modelplane.demo.processes import ManagedProcess
from modelplane.testing.processes import free_port

pytestmark = pytest.mark.engines

MODEL_URI = "pvc://models/tiny-llama"
SERVED_NAME = "tiny-llama"
START_TIMEOUT_S = 600.0


def model_deployment() -> ModelDeployment:
    return ModelDeployment.from_body(
        {
            "apiVersion": "modelplane.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": SERVED_NAME, "namespace": "default", "uid": "engine-test"},
            "spec": {
                "model": {"uri": MODEL_URI, "contextWindow": 2048},
                "engine": {"name": "vllm"},
                "resources": {"gpus": 1},
            },
        }
    )


def vllm_container() -> dict[str, object]:
    (deployment,) = [
        child
        for child in build_children(model_deployment(), OperatorSettings())
        if child["kind"] == "Deployment"
    ]
    container: dict[str, object] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def local_args(builder_args: list[str], model_dir: Path) -> tuple[list[str], int]:
    """The builder's args with the in-pod model path replaced by the local folder.

    The port stays the builder's (8000) unless something on this machine already holds it.
    """
    in_pod = local_path(MODEL_URI)
    args = [str(model_dir) if arg == in_pod else arg for arg in builder_args]
    port = int(args[args.index("--port") + 1])
    if not port_is_free(port):
        port = free_port()
        args[args.index("--port") + 1] = str(port)
    return args, port


@pytest.fixture(scope="module")
def vllm_server(
    tiny_llama: Path,
    vllm_python: Path,
    engines_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    container = vllm_container()
    builder_args = [str(arg) for arg in container["args"]]  # type: ignore[attr-defined]
    assert container["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    args, port = local_args(builder_args, tiny_llama)
    scratch = tmp_path_factory.mktemp("vllm-home")
    env = dict(os.environ)
    # The pod's env points at its cache volume; here the same variables point at a scratch dir.
    for variable in container["env"]:  # type: ignore[attr-defined]
        env[variable["name"]] = str(scratch / variable["value"].strip("/"))
    env.update(VLLM_TARGET_DEVICE="cpu", HF_HUB_OFFLINE="1", VLLM_CPU_KVCACHE_SPACE="1")
    command = [str(vllm_python), "-m", "vllm.entrypoints.openai.api_server", *args]
    log = engines_dir / "logs" / "vllm-server.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    print(f"\nvLLM command: {' '.join(command)}")
    server = ManagedProcess("vLLM (CPU)", command, log, env=env, cwd=scratch)
    with server:
        started = time.monotonic()
        server.wait_until_http_ok(f"http://127.0.0.1:{port}/health", START_TIMEOUT_S)
        print(f"vLLM ready after {time.monotonic() - started:.1f} s (log: {log})")
        yield f"http://127.0.0.1:{port}"


def test_health_answers(vllm_server: str) -> None:
    assert httpx.get(f"{vllm_server}/health", timeout=10).status_code == 200


def test_models_lists_the_served_model_name(vllm_server: str) -> None:
    models = httpx.get(f"{vllm_server}/v1/models", timeout=10).json()
    assert [model["id"] for model in models["data"]] == [SERVED_NAME]


def test_chat_completion_generates_tokens(vllm_server: str) -> None:
    client = OpenAI(base_url=f"{vllm_server}/v1", api_key="unused", max_retries=0, timeout=120)
    completion = client.chat.completions.create(
        model=SERVED_NAME,
        messages=[{"role": "user", "content": "hello world"}],
        max_tokens=8,
        temperature=0,
    )
    assert completion.choices[0].message.content is not None
    assert completion.usage is not None
    assert 1 <= completion.usage.completion_tokens <= 8
    assert completion.usage.prompt_tokens > 0


def test_chat_completion_streams_server_sent_events(vllm_server: str) -> None:
    body = {
        "model": SERVED_NAME,
        "messages": [{"role": "user", "content": "what is the capital of France"}],
        "max_tokens": 8,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    events: list[str] = []
    with httpx.stream(
        "POST", f"{vllm_server}/v1/chat/completions", json=body, timeout=120
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert any(chunk["choices"] and chunk["choices"][0]["delta"].get("content") for chunk in chunks)
    assert chunks[-1]["usage"]["completion_tokens"] >= 1
