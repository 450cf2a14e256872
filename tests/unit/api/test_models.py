"""The models parse what the CRDs accept and refuse, with a reason, what the CRDs refuse."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from modelplane.api import (
    ExternalModel,
    InvalidSpecError,
    ModelDeployment,
    RoutingPolicy,
)
from modelplane.api.schema import validation_errors

PARSERS = {
    "ModelDeployment": ModelDeployment.from_body,
    "ExternalModel": ExternalModel.from_body,
    "RoutingPolicy": RoutingPolicy.from_body,
}


def model_deployment(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": {"uri": "hf://meta-llama/Meta-Llama-3-8B-Instruct", "contextWindow": 8192},
        "engine": {"name": "vllm"},
    }
    base.update(spec)
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "llama", "namespace": "ml", "uid": "0000-1111"},
        "spec": base,
    }


def external_model(**spec: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "provider": "openai",
        "model": "gpt-4o",
        "apiKeySecretRef": {"name": "openai", "key": "api-key"},
    }
    base.update(spec)
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ExternalModel",
        "metadata": {"name": "gpt-4o", "namespace": "ml"},
        "spec": base,
    }


def routing_policy(*tenants: dict[str, Any], **spec: Any) -> dict[str, Any]:
    key = {"name": "keys", "key": "k"}
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "default", "namespace": "ml"},
        "spec": {
            "tenants": [{"apiKeySecretRef": key, **tenant} for tenant in tenants]
            or [{"name": "a", "apiKeySecretRef": key}],
            **spec,
        },
    }


# (resource, what the model's error says, what the CRD's CEL rule or schema says)
REFUSED = {
    "tensor parallel size differs from gpus": (
        model_deployment(resources={"gpus": 4, "parallelism": {"tensor": 2}}),
        "parallelism.tensor (2) must equal gpus (4)",
        "parallelism.tensor must equal gpus when gpus > 0",
    ),
    "minReplicas above maxReplicas": (
        model_deployment(autoscaling={"minReplicas": 5, "maxReplicas": 2}),
        "minReplicas (5) must not exceed maxReplicas (2)",
        "minReplicas must not exceed maxReplicas",
    ),
    "default minReplicas above maxReplicas 0": (
        model_deployment(autoscaling={"maxReplicas": 0}),
        "greater than or equal to 1",
        "maxReplicas: 0 is less than the minimum of 1",
    ),
    "unknown uri scheme": (
        model_deployment(model={"uri": "https://example.com/llama", "contextWindow": 8192}),
        "the URI scheme must be one of hf://, s3://, gs://, pvc://",
        "the uri scheme must be one of hf, s3, gs, pvc",
    ),
    "unknown adapter uri scheme": (
        model_deployment(
            model={
                "uri": "hf://a/b",
                "contextWindow": 8192,
                "adapters": [{"name": "x", "uri": "ftp://host/x"}],
            }
        ),
        "the URI scheme must be one of",
        "the uri scheme must be one of hf, s3, gs, pvc",
    ),
    "duplicate adapter names": (
        model_deployment(
            model={
                "uri": "hf://a/b",
                "contextWindow": 8192,
                "adapters": [{"name": "x", "uri": "hf://a/x"}, {"name": "x", "uri": "hf://a/y"}],
            }
        ),
        "adapter names must be unique",
        "adapter names must be unique",
    ),
    "triton served name with a slash": (
        model_deployment(
            engine={"name": "triton"},
            model={"uri": "hf://a/b", "contextWindow": 8192, "servedName": "meta/llama"},
        ),
        "must not contain '/'",
        "must not contain '/'",
    ),
    "name that cannot name a service": (
        {**model_deployment(), "metadata": {"name": "9-llama", "namespace": "ml"}},
        "DNS-1035 label",
        "DNS-1035 label",
    ),
    "env value and valueFrom together": (
        model_deployment(
            engine={
                "name": "vllm",
                "env": [{"name": "A", "value": "1", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}],
            }
        ),
        "set value or valueFrom, not both",
        "set value or valueFrom, not both",
    ),
    "env valueFrom with two sources": (
        model_deployment(
            engine={
                "name": "vllm",
                "env": [
                    {
                        "name": "A",
                        "valueFrom": {
                            "fieldRef": {"fieldPath": "x"},
                            "secretKeyRef": {"name": "s", "key": "k"},
                        },
                    }
                ],
            }
        ),
        "valueFrom needs exactly one of",
        "valueFrom needs exactly one of",
    ),
    "envFrom with neither source": (
        model_deployment(engine={"name": "vllm", "envFrom": [{"prefix": "X_"}]}),
        "envFrom needs exactly one of",
        "envFrom needs exactly one of",
    ),
    "one price without the other": (
        external_model(inputUSDPerMTok=2.5),
        "set both inputUSDPerMTok and outputUSDPerMTok, or neither",
        "set both inputUSDPerMTok and outputUSDPerMTok, or neither",
    ),
    "duplicate tenant names": (
        routing_policy({"name": "a"}, {"name": "a"}),
        "tenant names must be unique",
        "tenant names must be unique",
    ),
    "daily budget above monthly": (
        routing_policy({"name": "a", "dailyBudgetUSD": 100, "monthlyBudgetUSD": 10}),
        "dailyBudgetUSD (100.0) must not exceed monthlyBudgetUSD (10.0)",
        "dailyBudgetUSD must not exceed monthlyBudgetUSD",
    ),
    "unknown pii type": (
        routing_policy(privacy={"piiTypes": ["email", "shoe_size"]}),
        "privacy.piiTypes.1",
        "'shoe_size' is not one of",
    ),
    "unknown cost preference": (
        routing_policy(cost={"preference": "fastest"}),
        "spec.cost.preference",
        "'fastest' is not one of",
    ),
}


@pytest.mark.parametrize(("resource", "model_says", "crd_says"), REFUSED.values(), ids=REFUSED)
def test_invalid_spec_is_refused_with_a_reason_by_model_and_crd(
    crds: dict[str, Any],
    cel_failures: Any,
    resource: dict[str, Any],
    model_says: str,
    crd_says: str,
) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        PARSERS[resource["kind"]](resource)
    assert raised.value.reason == "InvalidSpec"
    assert model_says in raised.value.message
    crd_errors = validation_errors(resource, crds[resource["kind"]])
    assert any(crd_says in error for error in crd_errors + cel_failures(resource))


ACCEPTED = {
    "no gpus and no parallelism": model_deployment(resources={"gpus": 0}),
    "tensor parallel over four gpus": model_deployment(
        resources={"gpus": 4, "parallelism": {"tensor": 4}}
    ),
    "scale to zero": model_deployment(autoscaling={"minReplicas": 0, "maxReplicas": 3}),
    "every source scheme": model_deployment(
        model={
            "uri": "s3://bucket/llama",
            "contextWindow": 8192,
            "adapters": [
                {"name": "a", "uri": "gs://bucket/a"},
                {"name": "b", "uri": "pvc://loras/b"},
                {"name": "c", "uri": "hf://org/c"},
            ],
        }
    ),
    "quantities as numbers": model_deployment(
        resources={"gpus": 1, "cpu": 4, "memory": "32Gi"}, cache={"size": "100Gi"}
    ),
    "both prices": external_model(inputUSDPerMTok=2.5, outputUSDPerMTok=10),
    "budgets in order": routing_policy(
        {"name": "a", "dailyBudgetUSD": 10, "monthlyBudgetUSD": 100}
    ),
}


@pytest.mark.parametrize("resource", ACCEPTED.values(), ids=ACCEPTED)
def test_valid_spec_is_accepted_by_model_and_crd(
    crds: dict[str, Any], cel_failures: Any, resource: dict[str, Any]
) -> None:
    PARSERS[resource["kind"]](resource)
    assert validation_errors(resource, crds[resource["kind"]]) == []
    assert cel_failures(resource) == []


def test_example_resource_written_back_fits_the_crd_and_parses_to_the_same(
    crds: dict[str, Any], cel_failures: Any, example_resource: dict[str, Any]
) -> None:
    parsed = PARSERS[example_resource["kind"]](example_resource)
    written = parsed.to_wire()
    assert validation_errors(written, crds[example_resource["kind"]]) == []
    assert cel_failures(written) == []
    assert PARSERS[example_resource["kind"]](written) == parsed


def test_model_deployment_defaults_match_a_minimal_resource() -> None:
    md = ModelDeployment.from_body(model_deployment())
    assert md.served_name == "llama"
    assert md.spec.model.capabilities == ["chat"]
    assert md.spec.resources.gpus == 1
    assert md.spec.resources.tensor_parallel_size == 1
    assert md.spec.replicas == 1
    assert md.spec.autoscaling is None
    assert md.spec.cache is None


def test_tensor_parallel_size_defaults_to_the_gpu_count() -> None:
    md = ModelDeployment.from_body(model_deployment(resources={"gpus": 8}))
    assert md.spec.resources.tensor_parallel_size == 8


def test_quantities_written_as_numbers_become_strings() -> None:
    md = ModelDeployment.from_body(model_deployment(resources={"cpu": 8, "memory": 1.5}))
    assert md.spec.resources.cpu == "8"
    assert md.spec.resources.memory == "1.5"


def test_from_body_accepts_a_read_only_mapping_and_ignores_server_fields() -> None:
    from types import MappingProxyType

    body = copy.deepcopy(model_deployment())
    body["metadata"].update(
        {"resourceVersion": "7", "generation": 3, "managedFields": [{"manager": "kubectl"}]}
    )
    body["status"] = {"phase": "Ready", "readyReplicas": 1, "kopf": {"progress": {}}}
    md = ModelDeployment.from_body(MappingProxyType(body))
    assert md.metadata.generation == 3
    assert md.status is not None
    assert md.status.phase == "Ready"


def test_invalid_spec_message_names_every_problem_and_no_secret_value() -> None:
    resource = model_deployment(
        resources={"gpus": 2, "parallelism": {"tensor": 1}},
        engine={"name": "vllm", "env": [{"name": "TOKEN", "value": "s3cr3t", "bogus": 1}]},
    )
    with pytest.raises(InvalidSpecError) as raised:
        ModelDeployment.from_body(resource)
    message = raised.value.message
    assert "spec.resources" in message
    assert "spec.engine.env.0.bogus" in message
    assert "s3cr3t" not in message


def test_models_are_immutable() -> None:
    md = ModelDeployment.from_body(model_deployment())
    with pytest.raises(ValueError, match="frozen"):
        md.spec.replicas = 3  # type: ignore[misc]
