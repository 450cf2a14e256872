"""Router configuration files for tests: a self-hosted Llama 3 8B and GPT-4o on loopback upstreams.

Each test says only what it needs beyond the two backends' identity (prices, capabilities,
timeouts, tenants, policy); `router_config_text` writes the YAML file the router loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml


def in_cluster_llama(api_base: str, *, name: str = "llama-3-8b", **settings: Any) -> dict[str, Any]:
    """The self-hosted backend: Llama 3 8B served by vLLM inside the cluster."""
    return {
        "name": name,
        "model": "hosted_vllm/llama-3-8b",
        "api_base": api_base,
        "location": "in-cluster",
        "context_window": 8192,
        **settings,
    }


def external_gpt4o(api_base: str | None, **settings: Any) -> dict[str, Any]:
    """The external backend: GPT-4o at `api_base` (OpenAI's own endpoint when None)."""
    backend: dict[str, Any] = {"name": "gpt-4o", "model": "openai/gpt-4o"}
    if api_base is not None:
        backend["api_base"] = api_base
    return {**backend, "location": "external", "context_window": 128000, **settings}


def router_config_text(
    backends: Sequence[Mapping[str, Any]],
    tenants: Sequence[Mapping[str, Any]],
    **sections: Any,
) -> str:
    """The YAML configuration file with these backends and tenants, and any other sections."""
    document = {"backends": list(backends), "tenants": list(tenants), **sections}
    return yaml.safe_dump(document, sort_keys=False)
