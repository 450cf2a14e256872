"""Check a custom resource against its CRD's openAPIV3Schema, the way the API server would.

kubernetes-validate knows only built-in kinds; this covers ours (examples, chart templates, CLI
input). It checks the structural schema (types, required fields, enums, patterns, bounds); the
CEL rules are not evaluated here.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml


def load_crds(directory: Path) -> dict[str, dict[str, Any]]:
    """The CustomResourceDefinitions in a folder of YAML files, by kind."""
    crds: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document and document.get("kind") == "CustomResourceDefinition":
                crds[document["spec"]["names"]["kind"]] = document
    return crds


def version_schema(crd: Mapping[str, Any], version: str) -> dict[str, Any]:
    """The openAPIV3Schema of one served version of a CRD."""
    for entry in crd["spec"]["versions"]:
        if entry["name"] == version:
            schema: dict[str, Any] = entry["schema"]["openAPIV3Schema"]
            return schema
    raise KeyError(f"{crd['metadata']['name']} has no version {version}")


def _as_json_schema(schema: Any) -> Any:
    # OpenAPI's `nullable: true` is JSON Schema's extra "null" type; the rest (x-kubernetes-*
    # extensions, int64 formats) JSON Schema validators ignore.
    if isinstance(schema, list):
        return [_as_json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: _as_json_schema(value) for key, value in schema.items()}
    if converted.pop("nullable", False) and "type" in converted:
        converted["type"] = [converted["type"], "null"]
    return converted


def validation_errors(resource: Mapping[str, Any], crd: Mapping[str, Any]) -> list[str]:
    """Every way the resource breaks the CRD's schema, as `path: message` lines; empty if valid."""
    api_version = str(resource.get("apiVersion", ""))
    group, _, version = api_version.partition("/")
    if group != crd["spec"]["group"] or resource.get("kind") != crd["spec"]["names"]["kind"]:
        return [f"apiVersion/kind {api_version}/{resource.get('kind')} is not this CRD's"]
    schema = _as_json_schema(version_schema(crd, version))
    validator = jsonschema.Draft7Validator(schema)
    return sorted(
        f"{'.'.join(str(part) for part in error.absolute_path) or '<root>'}: {error.message}"
        for error in validator.iter_errors(dict(resource))
    )
