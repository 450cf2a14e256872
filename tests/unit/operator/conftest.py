"""Fixtures for the builder tests: ModelDeployments made from a small base or from examples/."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from modelplane.operator.settings import OperatorSettings

from modelplane.api import ModelDeployment

REPO = Path(__file__).resolve().parents[3]
NAMESPACE = "ml"
UID = "6f1c1b52-4c2e-4f38-9d7e-3f1f0b7a9c10"

BASE_SPEC: dict[str, Any] = {
    "model": {"uri": "hf://meta-llama/Meta-Llama-3-8B-Instruct", "contextWindow": 8192},
    "engine": {"name": "vllm"},
    "resources": {"gpus": 1},
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


MakeMd = Callable[..., ModelDeployment]


@pytest.fixture
def make_md() -> MakeMd:
    """make_md(name="llama", **spec overrides merged into a 1-GPU vLLM Llama 3 8B)."""

    def make(name: str = "llama", **spec: Any) -> ModelDeployment:
        return ModelDeployment.from_body(
            {
                "apiVersion": "modelplane.dev/v1alpha1",
                "kind": "ModelDeployment",
                "metadata": {"name": name, "namespace": NAMESPACE, "uid": UID, "generation": 1},
                "spec": _merge(BASE_SPEC, spec),
            }
        )

    return make


def load_example(file_name: str) -> ModelDeployment:
    """The ModelDeployment in examples/<file_name>, placed in a namespace with a uid."""
    for document in yaml.safe_load_all((REPO / "examples" / file_name).read_text()):
        if document and document.get("kind") == "ModelDeployment":
            document["metadata"].update({"namespace": NAMESPACE, "uid": UID})
            return ModelDeployment.from_body(document)
    raise LookupError(f"no ModelDeployment in {file_name}")


@pytest.fixture
def example_md() -> Callable[[str], ModelDeployment]:
    """example_md(file name): the ModelDeployment in that examples/ file."""
    return load_example


@pytest.fixture
def settings() -> OperatorSettings:
    return OperatorSettings()
