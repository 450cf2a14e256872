"""The CRD files: valid, structural, documented CRDs, and the examples fit them."""

from __future__ import annotations

from typing import Any

import celpy
import kubernetes_validate
import pytest
from kubernetes_validate.utils import all_versions
from packaging.version import Version

from modelplane.api.schema import validation_errors, version_schema

# Every Kubernetes minor from 1.30 on that kubernetes-validate ships schemas for.
KUBERNETES_VERSIONS = sorted(
    {v.rsplit(".", 1)[0] for v in all_versions() if Version(v) >= Version("1.30")}, key=Version
)
KINDS = {
    "ModelDeployment": "modeldeployments",
    "ExternalModel": "externalmodels",
    "RoutingPolicy": "routingpolicies",
}


def _schema_nodes(schema: dict[str, Any], path: str) -> list[tuple[str, dict[str, Any]]]:
    nodes = [(path, schema)]
    for name, child in schema.get("properties", {}).items():
        nodes += _schema_nodes(child, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        nodes += _schema_nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        nodes += _schema_nodes(schema["additionalProperties"], f"{path}{{}}")
    return nodes


def _all_nodes(crds: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        node
        for kind, crd in crds.items()
        for node in _schema_nodes(version_schema(crd, "v1alpha1"), kind)
    ]


def test_there_is_one_crd_file_per_kind_in_group_modelplane_dev(crds: dict[str, Any]) -> None:
    assert set(crds) == set(KINDS)
    for kind, plural in KINDS.items():
        crd = crds[kind]
        assert crd["metadata"]["name"] == f"{plural}.modelplane.dev"
        assert crd["spec"]["group"] == "modelplane.dev"
        assert crd["spec"]["scope"] == "Namespaced"
        assert [v["name"] for v in crd["spec"]["versions"]] == ["v1alpha1"]


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_crd_is_a_valid_apiextensions_v1_object(
    crds: dict[str, Any], kind: str, version: str
) -> None:
    kubernetes_validate.validate(crds[kind], version, strict=True)


def test_strict_validation_rejects_an_unknown_crd_field(crds: dict[str, Any]) -> None:
    broken = {**crds["ModelDeployment"], "spec": {**crds["ModelDeployment"]["spec"], "colour": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, "1.30", strict=True)


def test_every_schema_node_has_a_type(crds: dict[str, Any]) -> None:
    untyped = [
        path
        for path, node in _all_nodes(crds)
        if "type" not in node and not node.get("x-kubernetes-int-or-string")
    ]
    assert untyped == []


def test_every_schema_node_has_a_description(crds: dict[str, Any]) -> None:
    undocumented = [
        path for path, node in _all_nodes(crds) if not str(node.get("description", "")).strip()
    ]
    assert undocumented == []


def test_every_object_node_is_structural(crds: dict[str, Any]) -> None:
    # Structural: an object lists its properties or its value schema (not both), except
    # metadata at the root, which the API server defines.
    loose = [
        path
        for path, node in _all_nodes(crds)
        if node.get("type") == "object"
        and not path.endswith(".metadata")
        and ("properties" in node) == ("additionalProperties" in node)
    ]
    assert loose == []


def test_every_kind_has_the_status_subresource(crds: dict[str, Any]) -> None:
    for crd in crds.values():
        assert crd["spec"]["versions"][0]["subresources"]["status"] == {}


def test_model_deployment_scales_through_spec_and_status_replicas(crds: dict[str, Any]) -> None:
    version = crds["ModelDeployment"]["spec"]["versions"][0]
    scale = version["subresources"]["scale"]
    assert scale == {
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    }
    properties = version["schema"]["openAPIV3Schema"]["properties"]
    assert properties["spec"]["properties"]["replicas"]["type"] == "integer"
    assert properties["status"]["properties"]["replicas"]["type"] == "integer"
    assert properties["status"]["properties"]["selector"]["type"] == "string"


def test_model_deployment_prints_engine_model_ready_phase_url_and_age(
    crds: dict[str, Any],
) -> None:
    columns = crds["ModelDeployment"]["spec"]["versions"][0]["additionalPrinterColumns"]
    assert [c["name"] for c in columns] == ["Engine", "Model", "Ready", "Phase", "URL", "Age"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_printer_columns_point_at_schema_fields(crds: dict[str, Any], kind: str) -> None:
    version = crds[kind]["spec"]["versions"][0]
    root = version["schema"]["openAPIV3Schema"]
    for column in version["additionalPrinterColumns"]:
        path = column["jsonPath"].split("[")[0].strip(".").split(".")
        if path == ["metadata", "creationTimestamp"]:
            continue
        node = root
        for part in path:
            node = node["properties"][part]
        assert column["description"]


def test_example_resource_fits_its_crd_schema(
    crds: dict[str, Any], example_resource: dict[str, Any]
) -> None:
    assert validation_errors(example_resource, crds[example_resource["kind"]]) == []


def test_example_resource_passes_the_crd_cel_rules(
    cel_failures: Any, example_resource: dict[str, Any]
) -> None:
    assert cel_failures(example_resource) == []


def test_builtin_example_objects_validate_strictly(example_builtin_object: dict[str, Any]) -> None:
    kubernetes_validate.validate(example_builtin_object, "1.30", strict=True)


def test_examples_cover_the_documented_scenarios(examples: list[dict[str, Any]]) -> None:
    deployments = [doc["spec"] for doc in examples if doc["kind"] == "ModelDeployment"]
    assert any(
        d["engine"]["name"] == "vllm"
        and d["resources"]["gpus"] == 1
        and "Llama-3-8B-Instruct" in d["model"]["uri"]
        for d in deployments
    )
    assert any(d["resources"].get("parallelism", {}).get("tensor", 1) > 1 for d in deployments)
    assert any(d["engine"]["name"] == "triton" for d in deployments)
    external = [doc for doc in examples if doc["kind"] == "ExternalModel"]
    assert [e["spec"]["model"] for e in external] == ["gpt-4o"]
    secrets = {doc["metadata"]["name"] for doc in examples if doc["kind"] == "Secret"}
    assert external[0]["spec"]["apiKeySecretRef"]["name"] in secrets
    assert [doc["kind"] for doc in examples].count("RoutingPolicy") == 1


def test_validation_errors_reports_a_wrong_type_and_a_missing_field(crds: dict[str, Any]) -> None:
    resource = {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "m"},
        "spec": {"model": {"uri": "hf://a/b", "contextWindow": "long"}},
    }
    errors = validation_errors(resource, crds["ModelDeployment"])
    assert any(e.startswith("spec.model.contextWindow:") for e in errors)
    assert any("'engine' is a required property" in e for e in errors)


def test_every_cel_rule_compiles_and_has_a_message(crds: dict[str, Any]) -> None:
    environment = celpy.Environment()
    for path, node in _all_nodes(crds):
        for rule in node.get("x-kubernetes-validations", []):
            environment.compile(rule["rule"])
            assert rule["message"], path
