"""Invalid custom resources: the API server refuses each, or modelplane's own parsing reports it.

The catalogue is `modelplane.testing.invalid_resources.CASES`. Admission is evaluated as the API
server does it (strict field validation, the structural schema with jsonschema, defaults, then
the CEL rules with cel-python). Every refused resource must also be refused by `from_body`, which
the operator and the router parse with: an object stored before a CRD upgrade, or on a server
without CEL, gets an InvalidSpec condition and is skipped, never half-used.
"""

from __future__ import annotations

import base64
from collections import Counter
from typing import Any

import pytest
from modelplane.router.adapters.kube_catalog import ClusterResources, catalog_from_resources

from modelplane.api import ExternalModel, InvalidSpecError, ModelDeployment, RoutingPolicy
from modelplane.api.base import CustomResource
from modelplane.api.providers import LITELLM_PROVIDERS
from modelplane.api.schema import load_crds
from modelplane.testing.crd_admission import admission_errors, unknown_fields
from modelplane.testing.invalid_resources import (
    API_KEY_SECRET,
    CASES,
    CRD_DIR,
    TENANT_SECRET,
    InvalidResource,
    admission,
    supporting_secrets,
)
from modelplane.testing.operator import external_model, model_deployment, routing_policy

PARSERS: dict[str, type[CustomResource]] = {
    "ModelDeployment": ModelDeployment,
    "ExternalModel": ExternalModel,
    "RoutingPolicy": RoutingPolicy,
}
REJECTED = [case for case in CASES if case.rejected]
ADMITTED = [case for case in CASES if not case.rejected]
PARSE_FAILURES = [case for case in CASES if case.reason == "InvalidSpec"]


@pytest.fixture(scope="module")
def crds() -> dict[str, dict[str, Any]]:
    return load_crds(CRD_DIR)


def _ids(cases: list[InvalidResource]) -> list[str]:
    return [case.name for case in cases]


def test_the_catalogue_has_at_least_20_invalid_resources_of_every_kind() -> None:
    kinds = Counter(case.kind for case in CASES)
    assert len(CASES) >= 20
    assert set(kinds) == set(PARSERS)
    assert min(kinds.values()) >= 5
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", REJECTED, ids=_ids(REJECTED))
def test_the_api_server_refuses_it_with_a_clear_message(
    crds: dict[str, Any], case: InvalidResource
) -> None:
    refusals = admission(case, crds)
    assert any(str(case.rejection) in refusal for refusal in refusals), refusals


@pytest.mark.parametrize("case", ADMITTED, ids=_ids(ADMITTED))
def test_the_api_server_admits_it_so_the_operator_must_report_it(
    crds: dict[str, Any], case: InvalidResource
) -> None:
    assert admission(case, crds) == []


@pytest.mark.parametrize("case", PARSE_FAILURES, ids=_ids(PARSE_FAILURES))
def test_parsing_it_as_the_operator_and_router_do_fails_with_a_reason(
    case: InvalidResource,
) -> None:
    with pytest.raises(InvalidSpecError) as raised:
        PARSERS[case.kind].from_body(case.body("ns"))
    assert raised.value.reason == "InvalidSpec"
    assert case.message in raised.value.message
    assert "pattern '" not in raised.value.message, "a bare regex is not a reason a person can use"


def test_every_rejected_resource_is_also_unusable_to_the_operator() -> None:
    assert all(case.reason == "InvalidSpec" for case in REJECTED)


def test_the_valid_counterparts_pass_admission_and_parse(crds: dict[str, Any]) -> None:
    # The cases are small edits of these: if these failed, the cases would prove nothing.
    valid = [
        model_deployment("llama", "ns", {"autoscaling": {"maxReplicas": 3}, "cache": {"size": 40}}),
        external_model("gpt-4o", "ns", API_KEY_SECRET, "api-key", {"apiBase": "https://x.io/v1"}),
        routing_policy("default", "ns", [{"name": "team", "apiKeySecretRef": _tenant_key()}]),
    ]
    for body in valid:
        assert admission_errors(body, crds[body["kind"]]) == []
        PARSERS[body["kind"]].from_body(body)


def test_unknown_fields_are_found_at_any_depth_but_not_in_metadata(
    crds: dict[str, Any],
) -> None:
    body = model_deployment("llama", "ns", {"engine": {"colour": "red"}})
    body["metadata"]["labels"] = {"team": "ml"}
    schema = crds["ModelDeployment"]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]

    assert unknown_fields(body, schema) == ["spec.engine.colour"]


def test_every_provider_modelplane_accepts_is_one_litellm_knows() -> None:
    import litellm

    known = {str(getattr(provider, "value", provider)) for provider in litellm.provider_list}
    assert LITELLM_PROVIDERS.issubset(known), sorted(LITELLM_PROVIDERS - known)
    assert {"openai", "azure", "anthropic", "gemini", "hosted_vllm"} <= LITELLM_PROVIDERS


def _tenant_key() -> dict[str, str]:
    return {"name": TENANT_SECRET, "key": "valid"}


def _secrets(namespace: str) -> dict[str, dict[str, Any]]:
    secrets = {f"{namespace}/{s['metadata']['name']}": s for s in supporting_secrets(namespace)}
    tenants = secrets[f"{namespace}/{TENANT_SECRET}"]
    encoded = base64.b64encode(b"valid-tenant-key").decode()
    secrets[f"{namespace}/{TENANT_SECRET}"] = {**tenants, "data": {"valid": encoded}}
    return secrets


def test_the_router_skips_each_invalid_external_model_and_policy_and_keeps_the_valid_ones() -> None:
    namespace = "ns"
    cases = [case for case in CASES if case.kind in ("ExternalModel", "RoutingPolicy")]
    valid_model = external_model("gpt-4o", namespace, API_KEY_SECRET, "api-key")
    # Named to sort after some invalid policies: its settings must still be the ones used.
    valid_policy = routing_policy(
        "rp-kept",
        namespace,
        [{"name": "valid-team", "apiKeySecretRef": _tenant_key()}],
        {"latency": {"targetTTFTMs": 750}},
    )
    by_kind: dict[str, dict[str, Any]] = {"ExternalModel": {}, "RoutingPolicy": {}}
    for body in [valid_model, valid_policy, *(case.body(namespace) for case in cases)]:
        by_kind[body["kind"]][f"{namespace}/{body['metadata']['name']}"] = body

    built = catalog_from_resources(
        ClusterResources(
            external_models=by_kind["ExternalModel"],
            routing_policies=by_kind["RoutingPolicy"],
            secrets=_secrets(namespace),
        )
    )

    assert set(built.catalog.backends) == {"gpt-4o"}
    assert [tenant.name for tenant in built.catalog.tenants_by_key_hash.values()] == ["valid-team"]
    assert built.catalog.settings.latency_target_ms == 750
    for case in cases:
        reported = [
            p for p in built.problems if p.startswith(f"{case.kind} {namespace}/{case.name}")
        ]
        assert reported, f"{case.name} was skipped without a reason"
        if case.reason == "InvalidSpec":
            assert case.message in reported[0]
