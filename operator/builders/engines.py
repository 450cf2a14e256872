"""The engine-specific half of a model server pod: vLLM's or Triton's container.

Both engines serve the OpenAI API and Prometheus metrics behind Service port 8000 (`/v1`,
`/metrics`), with vLLM's queue gauges (`vllm:num_requests_waiting`, ...), so the router and the
autoscalers treat them alike. vLLM listens on 8000 itself. Triton runs its OpenAI-compatible
frontend (`openai_frontend/main.py`, which embeds the server in-process) on 9000 with the KServe
HTTP/gRPC endpoints on container ports 8000/8001; the Service maps 8000 to the frontend, 8080 and
8001 to KServe, and 8002 to the frontend's `/metrics`, since the in-process server opens no
metrics port of its own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from modelplane.operator.builders.common import SERVICE_PORT, model_repository_name, object_meta
from modelplane.operator.builders.pod import (
    HF_HOME,
    TMP_DIR,
    container_resources,
    container_security_context,
    engine_env,
    env_from,
    local_path,
    volume_mounts,
)
from modelplane.operator.settings import OperatorSettings

from modelplane.api.model_deployment import ModelDeployment

MODEL_REPOSITORY_DIR = "/models"
TRITON_OPENAI_PORT = 9000
TRITON_HTTP_PORT = 8000
TRITON_GRPC_PORT = 8001
TRITON_METRICS_PORT = 8002
TRITON_FRONTEND = "/opt/tritonserver/python/openai/openai_frontend/main.py"
# Adapters are addressed as `<servedName>_lora_<adapter>` through Triton's OpenAI frontend.
TRITON_LORA_SEPARATOR = "_lora_"
PROBE_PERIOD_SECONDS = 10


@dataclass(frozen=True)
class EngineWorkload:
    """What an engine adds to the pod and to the children."""

    container: dict[str, Any]
    shared_memory: bool
    volumes: list[dict[str, Any]] = field(default_factory=list)
    children: list[dict[str, Any]] = field(default_factory=list)
    pod_annotations: dict[str, str] = field(default_factory=dict)
    # (name, Service port, container port) of every port the Service exposes.
    service_ports: list[tuple[str, int, int]] = field(default_factory=list)


def _probes(
    startup_path: str, ready_path: str, live_path: str, port: str, settings: OperatorSettings
) -> dict[str, Any]:
    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {
            "httpGet": {"path": path, "port": port},
            "periodSeconds": period,
            "timeoutSeconds": 5,
            "failureThreshold": failures,
        }

    # The startup probe covers download and load; liveness only starts once it has passed.
    startup_failures = -(-settings.startup_budget_seconds // PROBE_PERIOD_SECONDS)
    return {
        "startupProbe": probe(startup_path, PROBE_PERIOD_SECONDS, startup_failures),
        "readinessProbe": probe(ready_path, PROBE_PERIOD_SECONDS, 3),
        "livenessProbe": probe(live_path, 15, 4),
    }


# The pod's uid has no /etc/passwd entry in the engine images, and torch resolves its compile
# cache's path with getpass.getuser() on import: without USER it raises KeyError('getpwuid():
# uid not found') and vLLM exits before parsing an argument (vllm-project/vllm#44548).
# getpass reads LOGNAME and USER before it asks /etc/passwd.
ENGINE_USER = "modelplane"


def _common_env() -> list[dict[str, Any]]:
    return [
        {"name": "HF_HOME", "value": HF_HOME},
        {"name": "HOME", "value": TMP_DIR},
        {"name": "USER", "value": ENGINE_USER},
        {"name": "LOGNAME", "value": ENGINE_USER},
    ]


def vllm_workload(md: ModelDeployment, settings: OperatorSettings) -> EngineWorkload:
    spec = md.spec
    tensor = spec.resources.tensor_parallel_size
    # Tensor-parallel workers exchange activations through shared memory.
    shared_memory = tensor > 1
    args = [
        "--model",
        local_path(spec.model.uri),
        "--served-model-name",
        md.served_name,
        "--tensor-parallel-size",
        str(tensor),
        "--max-model-len",
        str(spec.model.context_window),
        "--port",
        str(SERVICE_PORT),
    ]
    if spec.model.adapters:
        args += ["--enable-lora", "--max-loras", str(len(spec.model.adapters)), "--lora-modules"]
        args += [f"{adapter.name}={local_path(adapter.uri)}" for adapter in spec.model.adapters]
    args += spec.engine.args
    container: dict[str, Any] = {
        "name": "vllm",
        "image": spec.engine.image or settings.vllm_image,
        # The module entrypoint rather than the image's: identical across vLLM releases.
        "command": ["python3", "-m", "vllm.entrypoints.openai.api_server"],
        "args": args,
        "ports": [{"name": "http", "containerPort": SERVICE_PORT, "protocol": "TCP"}],
        "env": engine_env(
            md, [*_common_env(), {"name": "VLLM_CACHE_ROOT", "value": "/cache/vllm"}]
        ),
        "resources": container_resources(md, settings),
        "volumeMounts": volume_mounts(md, shared_memory),
        "securityContext": container_security_context(),
        **_probes("/health", "/health", "/health", "http", settings),
    }
    if spec.engine.env_from:
        container["envFrom"] = env_from(md)
    return EngineWorkload(
        container=container,
        shared_memory=shared_memory,
        pod_annotations={
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(SERVICE_PORT),
            "prometheus.io/path": "/metrics",
        },
        service_ports=[("http", SERVICE_PORT, SERVICE_PORT)],
    )


def triton_model_repository(md: ModelDeployment) -> dict[str, str]:
    """The files of Triton's model repository for the vLLM backend, by file name."""
    spec = md.spec
    engine_args: dict[str, Any] = {
        "model": local_path(spec.model.uri),
        "tensor_parallel_size": spec.resources.tensor_parallel_size,
        "max_model_len": spec.model.context_window,
        "gpu_memory_utilization": 0.9,
        # Triton only reports vLLM's metrics while vLLM collects them.
        "disable_log_stats": False,
    }
    files = {
        "config.pbtxt": (
            'backend: "vllm"\n'
            "\n"
            "# vLLM batches on its own and spans every GPU of the pod: one model instance.\n"
            "instance_group [\n"
            "  {\n"
            "    count: 1\n"
            "    kind: KIND_MODEL\n"
            "  }\n"
            "]\n"
            "\n"
            "# Publish vLLM's queue and cache gauges on Triton's metrics, for the router and the\n"
            "# autoscaler.\n"
            "parameters: {\n"
            '  key: "REPORT_CUSTOM_METRICS"\n'
            "  value: {\n"
            '    string_value: "true"\n'
            "  }\n"
            "}\n"
        ),
    }
    if spec.model.adapters:
        engine_args["enable_lora"] = True
        engine_args["max_loras"] = len(spec.model.adapters)
        adapters = {adapter.name: local_path(adapter.uri) for adapter in spec.model.adapters}
        files["multi_lora.json"] = json.dumps(adapters, indent=2, sort_keys=True) + "\n"
    files["model.json"] = json.dumps(engine_args, indent=2, sort_keys=True) + "\n"
    return files


def _repository_paths(md: ModelDeployment, files: dict[str, str]) -> list[dict[str, str]]:
    # Triton's layout: <model>/config.pbtxt and <model>/<version>/model.json.
    model = md.served_name
    return [
        {"key": name, "path": f"{model}/{name}" if name == "config.pbtxt" else f"{model}/1/{name}"}
        for name in sorted(files)
    ]


def triton_workload(md: ModelDeployment, settings: OperatorSettings) -> EngineWorkload:
    spec = md.spec
    files = triton_model_repository(md)
    repository_paths = _repository_paths(md, files)
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": object_meta(md, model_repository_name(md), "model-repository"),
        "data": files,
    }
    args = [
        TRITON_FRONTEND,
        "--model-repository",
        MODEL_REPOSITORY_DIR,
        "--tokenizer",
        local_path(spec.model.uri),
        "--openai-port",
        str(TRITON_OPENAI_PORT),
        "--enable-kserve-frontends",
        "--kserve-http-port",
        str(TRITON_HTTP_PORT),
        "--kserve-grpc-port",
        str(TRITON_GRPC_PORT),
    ]
    if spec.model.adapters:
        args += ["--lora-separator", TRITON_LORA_SEPARATOR]
    args += spec.engine.args
    # The Python backend hands tensors to its stub process through /dev/shm, at any GPU count.
    shared_memory = True
    container: dict[str, Any] = {
        "name": "triton",
        "image": spec.engine.image or settings.triton_image,
        "command": ["python3"],
        "args": args,
        "ports": [
            {"name": "openai", "containerPort": TRITON_OPENAI_PORT, "protocol": "TCP"},
            {"name": "http", "containerPort": TRITON_HTTP_PORT, "protocol": "TCP"},
            {"name": "grpc", "containerPort": TRITON_GRPC_PORT, "protocol": "TCP"},
        ],
        "env": engine_env(md, _common_env()),
        "resources": container_resources(md, settings),
        "volumeMounts": [
            *volume_mounts(md, shared_memory),
            # File by file: a ConfigMap volume keeps hidden `..data` and `..<timestamp>` folders at
            # its root, and Triton takes every folder of the repository's root for a model.
            *(
                {
                    "name": "model-repository",
                    "mountPath": f"{MODEL_REPOSITORY_DIR}/{item['path']}",
                    "subPath": item["path"],
                    "readOnly": True,
                }
                for item in repository_paths
            ),
        ],
        "securityContext": container_security_context(),
        # The KServe endpoints come up only after the model has loaded, hence live for startup.
        **_probes("/v2/health/live", "/v2/health/ready", "/v2/health/live", "http", settings),
    }
    if spec.engine.env_from:
        container["envFrom"] = env_from(md)
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return EngineWorkload(
        container=container,
        shared_memory=shared_memory,
        volumes=[
            {
                "name": "model-repository",
                "configMap": {
                    "name": model_repository_name(md),
                    "items": repository_paths,
                },
            }
        ],
        children=[config_map],
        # A changed repository must restart the pods: Triton reads it once at start.
        pod_annotations={
            "modelplane.dev/model-repository-sha256": digest,
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(TRITON_OPENAI_PORT),
            "prometheus.io/path": "/metrics",
        },
        service_ports=[
            ("http", SERVICE_PORT, TRITON_OPENAI_PORT),
            ("kserve-http", 8080, TRITON_HTTP_PORT),
            ("kserve-grpc", TRITON_GRPC_PORT, TRITON_GRPC_PORT),
            ("metrics", TRITON_METRICS_PORT, TRITON_OPENAI_PORT),
        ],
    )
