"""The Triton model server: generated model repository, OpenAI frontend, ports and probes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from modelplane.operator.builders import build_children, status_url
from modelplane.operator.settings import OperatorSettings

from modelplane.api import ModelDeployment

MakeMd = Callable[..., ModelDeployment]


def only(children: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matches = [child for child in children if child["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, got {len(matches)}"
    return matches[0]


def triton(make_md: MakeMd, **spec: Any) -> ModelDeployment:
    engine = {"name": "triton", **spec.pop("engine", {})}
    return make_md(engine=engine, **spec)


def test_triton_runs_the_pinned_vllm_backend_image_through_its_openai_frontend(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    deployment = only(build_children(triton(make_md), settings), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "nvcr.io/nvidia/tritonserver:26.07-vllm-python-py3"
    assert container["command"] == ["python3"]
    assert container["args"] == [
        "/opt/tritonserver/python/openai/openai_frontend/main.py",
        "--model-repository",
        "/models",
        "--tokenizer",
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "--openai-port",
        "9000",
        "--enable-kserve-frontends",
        "--kserve-http-port",
        "8000",
        "--kserve-grpc-port",
        "8001",
    ]
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == {
        "openai": 9000,
        "http": 8000,
        "grpc": 8001,
    }


def test_triton_probes_use_the_kserve_health_endpoints(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    deployment = only(build_children(triton(make_md), settings), "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"] == {"path": "/v2/health/ready", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/v2/health/live", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60


def test_model_repository_holds_a_vllm_backend_config_and_engine_arguments(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = triton(
        make_md,
        model={"servedName": "llama-3-8b"},
        resources={"gpus": 2, "parallelism": {"tensor": 2}},
    )
    config_map = only(build_children(md, settings), "ConfigMap")
    assert config_map["metadata"]["name"] == "llama-model-repository"
    data = config_map["data"]
    assert set(data) == {"config.pbtxt", "model.json"}
    assert 'backend: "vllm"' in data["config.pbtxt"]
    assert "kind: KIND_MODEL" in data["config.pbtxt"]
    assert json.loads(data["model.json"]) == {
        "model": "meta-llama/Meta-Llama-3-8B-Instruct",
        "tensor_parallel_size": 2,
        "max_model_len": 8192,
        "gpu_memory_utilization": 0.9,
        "disable_log_stats": False,
    }


def test_triton_reports_vllms_queue_gauges_on_its_metrics(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    config = only(build_children(triton(make_md), settings), "ConfigMap")["data"]["config.pbtxt"]
    compact = " ".join(config.split())
    assert 'parameters: { key: "REPORT_CUSTOM_METRICS" value: { string_value: "true" } }' in compact


def test_model_repository_is_mounted_in_triton_layout_under_the_served_name(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = triton(make_md, model={"servedName": "llama-3-8b"})
    pod = only(build_children(md, settings), "Deployment")["spec"]["template"]["spec"]
    [volume] = [v for v in pod["volumes"] if v["name"] == "model-repository"]
    assert volume["configMap"] == {
        "name": "llama-model-repository",
        "items": [
            {"key": "config.pbtxt", "path": "llama-3-8b/config.pbtxt"},
            {"key": "model.json", "path": "llama-3-8b/1/model.json"},
        ],
    }
    # File by file, never the volume's root: a ConfigMap volume holds hidden `..data` folders
    # there, which Triton would poll as models (it skips only `.` and `..`).
    mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "model-repository"]
    assert mounts == [
        {
            "name": "model-repository",
            "mountPath": "/models/llama-3-8b/config.pbtxt",
            "subPath": "llama-3-8b/config.pbtxt",
            "readOnly": True,
        },
        {
            "name": "model-repository",
            "mountPath": "/models/llama-3-8b/1/model.json",
            "subPath": "llama-3-8b/1/model.json",
            "readOnly": True,
        },
    ]


def test_adapters_become_multi_lora_json_and_a_lora_separator(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = triton(make_md, model={"adapters": [{"name": "sql", "uri": "pvc://adapters/sql"}]})
    children = build_children(md, settings)
    data = only(children, "ConfigMap")["data"]
    assert json.loads(data["multi_lora.json"]) == {"sql": "/mnt/claims/adapters/sql"}
    engine_args = json.loads(data["model.json"])
    assert engine_args["enable_lora"] is True
    assert engine_args["max_loras"] == 1
    container = only(children, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][-2:] == ["--lora-separator", "_lora_"]


def test_a_changed_model_repository_rolls_the_pods(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    def checksum(md: ModelDeployment) -> str:
        deployment = only(build_children(md, settings), "Deployment")
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        value: str = annotations["modelplane.dev/model-repository-sha256"]
        return value

    short = checksum(triton(make_md, model={"contextWindow": 8192}))
    assert short == checksum(triton(make_md, model={"contextWindow": 8192}))
    assert short != checksum(triton(make_md, model={"contextWindow": 16384}))


def test_triton_always_gets_shared_memory_for_its_python_backend(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    pod = only(build_children(triton(make_md), settings), "Deployment")["spec"]["template"]["spec"]
    assert {"name": "dshm", "emptyDir": {"medium": "Memory"}} in pod["volumes"]


def test_service_port_8000_reaches_the_openai_frontend_so_the_url_matches_vllm(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = triton(make_md)
    service = only(build_children(md, settings), "Service")
    ports = {port["name"]: (port["port"], port["targetPort"]) for port in service["spec"]["ports"]}
    assert ports == {
        "http": (8000, 9000),
        "kserve-http": (8080, 8000),
        "kserve-grpc": (8001, 8001),
        "metrics": (8002, 9000),
    }
    assert status_url(md) == "http://llama.ml.svc.cluster.local:8000/v1"


def test_triton_s3_model_is_downloaded_and_read_from_the_cache(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = triton(make_md, model={"uri": "s3://models/llama"})
    children = build_children(md, settings)
    pod = only(children, "Deployment")["spec"]["template"]["spec"]
    [download] = pod["initContainers"]
    model_path = json.loads(only(children, "ConfigMap")["data"]["model.json"])["model"]
    assert download["args"][-1] == model_path
    args = pod["containers"][0]["args"]
    assert args[args.index("--tokenizer") + 1] == model_path
