"""What the Kubernetes API server answers when a custom resource is created, without a server.

`admission_errors(resource, crd)` runs the checks a create goes through for a kind served from
a CRD, in the server's order:

1. the name: a DNS-1123 subdomain, as for every custom resource;
2. unknown fields: a field the structural schema does not declare is an error under strict field
   validation (`kubectl`'s default, `--validate=strict`); other clients get a warning and the
   field is dropped (pruned) before it is stored;
3. the structural schema (types, required fields, enums, patterns, bounds), with `jsonschema`;
4. the schema's defaults, then every `x-kubernetes-validations` CEL rule at the node it is
   declared on, with cel-python. CEL runs only on an object that passed the schema, as the
   server only compiles rules against well-typed data; one error per broken rule.

The empty list means the server stores the object.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

import celpy
from celpy import celtypes
from celpy.adapter import json_to_cel

from modelplane.api.schema import validation_errors, version_schema

# metadata.name of any custom resource (apimachinery's IsDNS1123Subdomain).
DNS_1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)


def admission_errors(resource: Mapping[str, Any], crd: Mapping[str, Any]) -> list[str]:
    """Every reason the API server refuses to create `resource`, as `path: message` lines."""
    name = str((resource.get("metadata") or {}).get("name", ""))
    if len(name) > 253 or not DNS_1123_SUBDOMAIN.match(name):
        return [f"metadata.name: Invalid value: {name!r}: a lowercase RFC 1123 subdomain"]
    schema = version_schema(crd, str(resource.get("apiVersion", "")).partition("/")[2])
    unknown = unknown_fields(resource, schema)
    if unknown:
        return [f"{path}: unknown field (strict field validation)" for path in unknown]
    errors = validation_errors(resource, crd)
    if errors:
        return errors
    return cel_rule_failures(apply_defaults(copy.deepcopy(dict(resource)), schema), schema)


def unknown_fields(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """The paths of fields the structural schema does not declare (what the server prunes)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    found: list[str] = []
    if isinstance(value, Mapping):
        properties = schema.get("properties")
        values_schema = schema.get("additionalProperties")
        for name, item in value.items():
            where = f"{path}.{name}".lstrip(".")
            if properties is not None and name in properties:
                found += unknown_fields(item, properties[name], where)
            elif isinstance(values_schema, Mapping):
                found += unknown_fields(item, values_schema, where)
            elif properties is not None:  # metadata declares none: the server's own schema
                found.append(where)
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            found += unknown_fields(item, schema["items"], f"{path}[{index}]")
    return found


def apply_defaults(value: Any, schema: Mapping[str, Any]) -> Any:
    """`value` with the schema's defaults filled in, as the server stores it (in place)."""
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name, child in properties.items():
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
        for name, item in value.items():
            if name in properties:
                apply_defaults(item, properties[name])
            elif isinstance(schema.get("additionalProperties"), dict):
                apply_defaults(item, schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        for item in value:
            apply_defaults(item, schema["items"])
    return value


def cel_rule_failures(value: Any, schema: Mapping[str, Any], path: str = "") -> list[str]:
    """The message of every CEL rule `value` breaks, each prefixed with the node's path."""
    environment = celpy.Environment()
    failures = []
    for rule in schema.get("x-kubernetes-validations", []):
        program = environment.program(environment.compile(rule["rule"]))
        outcome = program.evaluate({"self": json_to_cel(value)})
        if not (isinstance(outcome, celtypes.BoolType) and bool(outcome)):
            failures.append(f"{path or '<root>'}: {rule.get('message', rule['rule'])}")
    if isinstance(value, dict):
        for name, item in value.items():
            child = schema.get("properties", {}).get(name)
            if child is None and isinstance(schema.get("additionalProperties"), dict):
                child = schema["additionalProperties"]
            if child is not None:
                failures += cel_rule_failures(item, child, f"{path}.{name}".lstrip("."))
    elif isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            failures += cel_rule_failures(item, schema["items"], f"{path}[{index}]")
    return failures
