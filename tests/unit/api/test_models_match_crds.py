"""The pydantic models and the CRD schemas agree on fields, requirements, defaults, values."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import pytest
from modelplane.router.config import OverBudget
from modelplane.router.policy import types as policy_types
from pydantic import BaseModel

from modelplane.api import ExternalModel, ModelDeployment, RoutingPolicy
from modelplane.api.routing_policy import ALL_PII_TYPES
from modelplane.api.schema import version_schema

RESOURCES: dict[str, type[BaseModel]] = {
    "ModelDeployment": ModelDeployment,
    "ExternalModel": ExternalModel,
    "RoutingPolicy": RoutingPolicy,
}


def _unwrap_optional(annotation: Any) -> Any:
    if get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return members[0]
    return annotation


def _strip_annotated(annotation: Any) -> Any:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _mismatches(model: type[BaseModel], schema: dict[str, Any], path: str) -> list[str]:
    problems: list[str] = []
    properties = schema.get("properties", {})
    fields = {(info.alias or name): info for name, info in model.model_fields.items()}
    if set(properties) != set(fields):
        only_crd = sorted(set(properties) - set(fields))
        only_model = sorted(set(fields) - set(properties))
        problems.append(f"{path}: only in the CRD {only_crd}, only in the model {only_model}")
    required = set(schema.get("required", []))
    for alias in sorted(set(properties) & set(fields)):
        info, child = fields[alias], properties[alias]
        where = f"{path}.{alias}"
        if "default" in child:
            default = info.get_default(call_default_factory=True)
            if default != child["default"]:
                problems.append(f"{where}: default {default!r} != CRD default {child['default']!r}")
        elif alias == "metadata":
            pass  # the API server always sets it; the CRD cannot require it
        elif info.is_required() != (alias in required):
            problems.append(f"{where}: required {info.is_required()} in the model only")
        problems += _compare_bounds(info.metadata, info.annotation, child, where)
        problems += _compare_value(info.annotation, child, where)
    return problems


def _model_bounds(metadata: list[Any], annotation: Any) -> dict[str, float]:
    """The pydantic constraints on a field, named as the CRD schema names them."""
    annotation = _strip_annotated(_unwrap_optional(_strip_annotated(annotation)))
    sized = "Items" if get_origin(annotation) in (list, dict) else "Length"
    bounds: dict[str, float] = {}
    for item in metadata:
        if isinstance(item, annotated_types.Ge):
            bounds["minimum"] = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Le):
            bounds["maximum"] = float(item.le)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.MinLen):
            bounds[f"min{sized}"] = item.min_length
        elif isinstance(item, annotated_types.MaxLen):
            bounds[f"max{sized}"] = item.max_length
    return bounds


def _compare_bounds(
    metadata: list[Any], annotation: Any, schema: dict[str, Any], path: str
) -> list[str]:
    names = ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems")
    problems = []
    model = _model_bounds(metadata, annotation)
    crd = {name: float(schema[name]) for name in names if name in schema}
    if schema.get("x-kubernetes-int-or-string"):
        # A quantity's minimum bounds its integer spelling; the model reads integers as strings,
        # which its pattern (no minus sign) bounds instead.
        crd.pop("minimum", None)
    if model != crd:
        problems.append(f"{path}: bounds {model} in the model, {crd} in the CRD")
    patterns = [getattr(item, "pattern", None) for item in metadata]
    model_pattern = next((pattern for pattern in patterns if pattern), None)
    if model_pattern is not None and model_pattern != schema.get("pattern"):
        problems.append(f"{path}: pattern {model_pattern!r} != CRD {schema.get('pattern')!r}")
    return problems


def _compare_value(annotation: Any, schema: dict[str, Any], path: str) -> list[str]:
    annotation = _strip_annotated(_unwrap_optional(_strip_annotated(annotation)))
    origin = get_origin(annotation)
    if origin is list:
        return _compare_value(get_args(annotation)[0], schema.get("items", {}), f"{path}[]")
    if origin is dict:
        return _compare_value(
            get_args(annotation)[1], schema.get("additionalProperties", {}), f"{path}{{}}"
        )
    if origin is Literal:
        if "enum" in schema and sorted(get_args(annotation)) != sorted(schema["enum"]):
            return [f"{path}: values {get_args(annotation)} != CRD enum {schema['enum']}"]
        return []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if "properties" not in schema:
            return []  # metadata: the API server's own schema
        return _mismatches(annotation, schema, path)
    if "enum" in schema:
        return [f"{path}: the CRD has an enum the model does not"]
    return []


@pytest.mark.parametrize("kind", sorted(RESOURCES))
def test_model_fields_match_the_crd_schema(crds: dict[str, Any], kind: str) -> None:
    schema = version_schema(crds[kind], "v1alpha1")
    assert _mismatches(RESOURCES[kind], schema, kind) == []


def test_the_comparison_notices_a_field_missing_from_the_model(crds: dict[str, Any]) -> None:
    schema = version_schema(crds["ExternalModel"], "v1alpha1")
    spec = schema["properties"]["spec"]
    extended = {**spec, "properties": {**spec["properties"], "organization": {"type": "string"}}}
    problems = _mismatches(ExternalModel, {**schema, "properties": {"spec": extended}}, "X")
    assert any("only in the CRD ['organization']" in problem for problem in problems)


def _enum(crds: dict[str, Any], kind: str, *path: str) -> list[str]:
    node = version_schema(crds[kind], "v1alpha1")
    for part in path:
        node = node["items"] if part == "[]" else node["properties"][part]
    values: list[str] = node["enum"]
    return values


def test_crd_value_sets_are_the_router_policy_vocabulary(crds: dict[str, Any]) -> None:
    pii = _enum(crds, "RoutingPolicy", "spec", "privacy", "piiTypes", "[]")
    assert sorted(pii) == sorted(member.value for member in policy_types.PiiType)
    assert sorted(ALL_PII_TYPES) == sorted(pii)
    data_classes = _enum(crds, "RoutingPolicy", "spec", "tenants", "[]", "defaultDataClass")
    assert sorted(data_classes) == sorted(member.value for member in policy_types.DataClass)
    preferences = _enum(crds, "RoutingPolicy", "spec", "cost", "preference")
    assert sorted(preferences) == sorted(member.value for member in policy_types.CostPreference)
    over_budget = _enum(crds, "RoutingPolicy", "spec", "tenants", "[]", "overBudget")
    assert sorted(over_budget) == sorted(member.value for member in OverBudget)
    for kind, model_path in (
        ("ModelDeployment", ("spec", "model", "capabilities", "[]")),
        ("ExternalModel", ("spec", "capabilities", "[]")),
    ):
        capabilities = _enum(crds, kind, *model_path)
        assert sorted(capabilities) == sorted(member.value for member in policy_types.Capability)
