"""The resources the quickstart tells users to apply are valid for the CRDs, field for field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelplane.api.schema import load_crds, validation_errors, version_schema

REPO_ROOT = Path(__file__).resolve().parents[3]


def _quickstart_resources() -> list[dict[str, Any]]:
    text = (REPO_ROOT / "docs" / "quickstart.md").read_text()
    resources = []
    for block in re.findall(r"```yaml\n(.*?)```", text, re.S):
        resources += [doc for doc in yaml.safe_load_all(block) if doc]
    return resources


def _unknown_fields(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """Fields the API server would silently prune: a misspelt field never errors otherwise."""
    if isinstance(value, dict) and "properties" in schema:
        found = []
        for key, child in value.items():
            if key in schema["properties"]:
                found += _unknown_fields(child, schema["properties"][key], f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                found.append(f"{path}.{key}")
        return found
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [
            problem
            for index, item in enumerate(value)
            for problem in _unknown_fields(item, schema["items"], f"{path}[{index}]")
        ]
    return []


RESOURCES = _quickstart_resources()


def test_quickstart_applies_one_resource_of_each_kind() -> None:
    assert sorted(resource["kind"] for resource in RESOURCES) == [
        "ExternalModel",
        "ModelDeployment",
        "RoutingPolicy",
    ]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda resource: resource["kind"])
def test_quickstart_resource_is_valid_for_its_crd(resource: dict[str, Any]) -> None:
    crd = load_crds(REPO_ROOT / "crds")[resource["kind"]]
    assert validation_errors(resource, crd) == []
    schema = version_schema(crd, resource["apiVersion"].split("/")[1])
    assert _unknown_fields(resource["spec"], schema["properties"]["spec"], "spec") == []
