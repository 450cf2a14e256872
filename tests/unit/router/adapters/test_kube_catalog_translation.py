"""Turning the modelplane resources and their Secrets into the router catalog."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from modelplane.router.adapters.kube_catalog import (
    ASSUMED_TOKENS_PER_SECOND,
    ClusterResources,
    catalog_from_resources,
    secret_value,
)
from modelplane.router.config import OverBudget
from modelplane.router.policy.types import Capability, DataClass, Location, PiiType

PRICES: dict[str, dict[str, Any]] = {
    "gpt-4o": {
        "input_cost_per_token": 2.5e-6,
        "output_cost_per_token": 1e-5,
        "max_input_tokens": 128000,
    }
}


def model_deployment(
    name: str = "llama",
    *,
    url: str | None = "http://llama.ml.svc.cluster.local:8000/v1",
    ready: bool = True,
    engine: str = "vllm",
    gpu_hour_usd: float | None = 2.0,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {
            "uri": "hf://meta-llama/Meta-Llama-3-8B-Instruct",
            "servedName": "llama-3-8b",
            "contextWindow": 8192,
            "capabilities": ["chat", "json"],
        },
        "engine": {"name": engine},
    }
    if gpu_hour_usd is not None:
        spec["cost"] = {"gpuHourUSD": gpu_hour_usd}
    status: dict[str, Any] = {
        "phase": "Ready" if ready else "Progressing",
        "readyReplicas": 1 if ready else 0,
        "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
    }
    if url is not None:
        status["url"] = url
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": spec,
        "status": status,
    }


def external_model(name: str = "gpt-4o", secret: str = "openai") -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ExternalModel",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "provider": "openai",
            "model": "gpt-4o",
            "apiKeySecretRef": {"name": secret, "key": "api-key"},
            "contextWindow": 128000,
            "capabilities": ["chat", "tools", "json", "images"],
        },
    }


def routing_policy(
    name: str = "default", tenants: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {
            "tenants": tenants
            or [
                {
                    "name": "team-a",
                    "apiKeySecretRef": {"name": "team-a", "key": "key"},
                    "defaultDataClass": "confidential",
                    "dailyBudgetUSD": 5,
                    "monthlyBudgetUSD": 100,
                    "rpm": 60,
                    "tpm": 10000,
                    "allowedBackends": ["llama", "gpt-4o"],
                }
            ],
            "privacy": {"piiTypes": ["email", "iban"]},
            "latency": {"targetTTFTMs": 800},
            "cost": {"preference": "balanced"},
        },
    }


def secret(name: str, **values: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def resources(**overrides: Any) -> ClusterResources:
    defaults: dict[str, Any] = {
        "model_deployments": {"llama": model_deployment()},
        "external_models": {"gpt-4o": external_model()},
        "routing_policies": {"default": routing_policy()},
        "secrets": {
            "openai": secret("openai", **{"api-key": "sk-test"}),
            "team-a": secret("team-a", key="team-a-key"),
        },
    }
    defaults.update(overrides)
    return ClusterResources(**defaults)


def test_ready_model_deployment_is_an_in_cluster_backend_at_its_status_url() -> None:
    built = catalog_from_resources(resources(), PRICES)

    llama = built.catalog.backends["llama"]
    assert llama.snapshot.location is Location.IN_CLUSTER
    assert llama.snapshot.ready
    assert llama.snapshot.context_window == 8192
    assert llama.snapshot.capabilities == {Capability.CHAT, Capability.JSON}
    assert llama.upstream.api_base == "http://llama.ml.svc.cluster.local:8000/v1"
    assert llama.upstream.upstream_model == "llama-3-8b"
    assert llama.snapshot.input_usd_per_mtok == pytest.approx(
        2.0 / ASSUMED_TOKENS_PER_SECOND / 3600 * 1e6
    )
    assert built.scrape_targets[0].metrics_url == "http://llama.ml.svc.cluster.local:8000/metrics"
    assert built.scrape_targets[0].gpu_hour_usd == 2.0


def test_not_ready_model_deployment_stays_listed_but_not_ready() -> None:
    built = catalog_from_resources(
        resources(model_deployments={"llama": model_deployment(ready=False)}), PRICES
    )

    assert not built.catalog.backends["llama"].snapshot.ready


def test_model_deployment_without_url_is_not_a_backend_yet() -> None:
    built = catalog_from_resources(
        resources(model_deployments={"llama": model_deployment(url=None)}), PRICES
    )

    assert "llama" not in built.catalog.backends


def test_triton_metrics_are_scraped_on_the_metrics_port() -> None:
    built = catalog_from_resources(
        resources(model_deployments={"llama": model_deployment(engine="triton")}), PRICES
    )

    assert built.scrape_targets[0].metrics_url == "http://llama.ml.svc.cluster.local:8002/metrics"


def test_external_model_takes_its_key_from_the_secret_and_list_price() -> None:
    built = catalog_from_resources(resources(), PRICES)

    gpt = built.catalog.backends["gpt-4o"]
    assert gpt.snapshot.location is Location.EXTERNAL
    assert gpt.upstream.api_key == "sk-test"
    assert gpt.snapshot.input_usd_per_mtok == pytest.approx(2.5)
    assert gpt.snapshot.output_usd_per_mtok == pytest.approx(10.0)


def test_external_model_without_its_secret_is_left_out_and_reported() -> None:
    built = catalog_from_resources(resources(secrets={"team-a": secret("team-a", key="k")}), PRICES)

    assert "gpt-4o" not in built.catalog.backends
    assert any("ExternalModel gpt-4o" in problem for problem in built.problems)
    assert all("sk-test" not in problem for problem in built.problems)


def test_routing_policy_supplies_tenants_limits_and_settings() -> None:
    built = catalog_from_resources(resources(), PRICES)

    tenant = built.catalog.authenticate("team-a-key")
    assert tenant is not None
    assert tenant.name == "team-a"
    assert tenant.default_data_class is DataClass.CONFIDENTIAL
    assert tenant.policy.allowed_backends == {"llama", "gpt-4o"}
    assert (tenant.limits.requests_per_minute, tenant.limits.tokens_per_minute) == (60, 10000)
    assert (tenant.limits.daily_budget_usd, tenant.limits.monthly_budget_usd) == (5, 100)
    settings = built.catalog.settings
    assert settings.confidential_pii_types == {PiiType.EMAIL, PiiType.IBAN}
    assert settings.latency_target_ms == 800


def test_tenant_over_budget_is_rejected_unless_its_policy_says_in_cluster_only() -> None:
    tenants = [
        {"name": "strict", "apiKeySecretRef": {"name": "team-a", "key": "strict"}},
        {
            "name": "lenient",
            "apiKeySecretRef": {"name": "team-a", "key": "lenient"},
            "overBudget": "in-cluster-only",
        },
    ]
    team_secret = secret("team-a", strict="strict-key", lenient="lenient-key")

    built = catalog_from_resources(
        resources(
            routing_policies={"default": routing_policy(tenants=tenants)},
            secrets={"openai": secret("openai", **{"api-key": "sk"}), "team-a": team_secret},
        ),
        PRICES,
    )

    over_budget = {
        key: tenant.over_budget if (tenant := built.catalog.authenticate(key)) else None
        for key in ("strict-key", "lenient-key")
    }
    assert over_budget == {
        "strict-key": OverBudget.REJECT,
        "lenient-key": OverBudget.IN_CLUSTER_ONLY,
    }
    assert built.problems == ()


def test_tenant_without_key_cannot_authenticate_and_is_reported() -> None:
    built = catalog_from_resources(
        resources(secrets={"openai": secret("openai", **{"api-key": "sk"})}), PRICES
    )

    assert built.catalog.tenants_by_key_hash == {}
    assert any("team-a" in problem for problem in built.problems)


def test_invalid_resource_is_skipped_and_the_rest_still_routes() -> None:
    broken = model_deployment("broken")
    broken["spec"]["model"]["contextWindow"] = 0

    built = catalog_from_resources(
        resources(model_deployments={"broken": broken, "llama": model_deployment()}), PRICES
    )

    assert set(built.catalog.backends) == {"llama", "gpt-4o"}
    assert any(problem.startswith("ModelDeployment broken") for problem in built.problems)


def test_empty_namespace_gives_an_empty_catalog() -> None:
    built = catalog_from_resources(ClusterResources(), PRICES)

    assert dict(built.catalog.backends) == {}
    assert built.problems == ()


def test_secret_value_reads_data_and_string_data() -> None:
    assert secret_value(secret("s", key="value"), "key") == "value"
    assert secret_value({"stringData": {"key": "plain"}}, "key") == "plain"
    assert secret_value({"data": {"key": "%%%"}}, "key") is None
    assert secret_value(None, "key") is None


def in_namespace(body: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {**body, "metadata": {**body["metadata"], "namespace": namespace}}


def test_secrets_are_read_only_from_the_referencing_namespace() -> None:
    built = catalog_from_resources(
        resources(
            external_models={"other/gpt-4o": in_namespace(external_model(), "other")},
            secrets={"ml/openai": secret("openai", **{"api-key": "sk-ml"})},
            routing_policies={},
        ),
        PRICES,
    )

    assert "gpt-4o" not in built.catalog.backends


def test_same_backend_name_in_two_namespaces_keeps_the_first_and_reports_the_second() -> None:
    built = catalog_from_resources(
        resources(
            model_deployments={
                "a/llama": in_namespace(model_deployment(), "a"),
                "b/llama": in_namespace(model_deployment(url="http://llama.b.svc:8000/v1"), "b"),
            },
            external_models={},
        ),
        PRICES,
    )

    assert built.catalog.backends["llama"].upstream.api_base == (
        "http://llama.ml.svc.cluster.local:8000/v1"
    )
    assert any(problem.startswith("ModelDeployment b/llama") for problem in built.problems)
