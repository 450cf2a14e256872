"""Resource bodies for tests against the Kubernetes emulator: the Llama ModelDeployment, GPT-4o
as an ExternalModel, a RoutingPolicy and the Secrets they reference."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from modelplane.api.base import GROUP_VERSION


def secret(name: str, key: str, value: str, namespace: str) -> dict[str, Any]:
    """A Secret holding one key."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "data": {key: base64.b64encode(value.encode()).decode()},
    }


def llama_model_deployment(name: str, namespace: str, *, gpu_hour_usd: float) -> dict[str, Any]:
    """Llama 3 8B Instruct on one GPU with vLLM, served as `llama-3-8b`."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "model": {
                "uri": "hf://meta-llama/Meta-Llama-3-8B-Instruct",
                "servedName": "llama-3-8b",
                "contextWindow": 8192,
                "capabilities": ["chat", "json"],
            },
            "engine": {"name": "vllm"},
            "resources": {"gpus": 1},
            "cost": {"gpuHourUSD": gpu_hour_usd},
        },
    }


def model_deployment_status(url: str, ready: bool) -> dict[str, Any]:
    """A status patch as the operator writes it: one replica, ready or still starting."""
    return {
        "status": {
            "phase": "Ready" if ready else "Progressing",
            "url": url,
            "replicas": 1,
            "readyReplicas": 1 if ready else 0,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "Test"}
            ],
        }
    }


def gpt4o_external_model(namespace: str, api_base: str) -> dict[str, Any]:
    """GPT-4o at `api_base`, at list price, its key in the Secret `openai` under `api-key`."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "ExternalModel",
        "metadata": {"name": "gpt-4o", "namespace": namespace},
        "spec": {
            "provider": "openai",
            "model": "gpt-4o",
            "apiBase": api_base,
            "apiKeySecretRef": {"name": "openai", "key": "api-key"},
            "contextWindow": 128000,
            "capabilities": ["chat", "tools", "json", "images"],
            "inputUSDPerMTok": 2.5,
            "outputUSDPerMTok": 10,
        },
    }


def routing_policy(
    namespace: str, tenants: Sequence[Mapping[str, Any]], **settings: Any
) -> dict[str, Any]:
    """The RoutingPolicy `default` with these tenants and any privacy, latency or cost settings."""
    return {
        "apiVersion": GROUP_VERSION,
        "kind": "RoutingPolicy",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"tenants": list(tenants), **settings},
    }
