"""ExternalModel and RoutingPolicy status: validity and the Secrets they reference."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

from modelplane.operator.reconcile import ReconcileOptions

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient, wait_for
from modelplane.testing.operator import (
    condition,
    external_model,
    routing_policy,
    running_operator,
    secret,
)


def _ready_reason(kube: KubeHttpClient, kind: str, namespace: str, name: str) -> str | None:
    ready = condition(kube.get(kind, namespace, name), "Ready")
    return f"{ready['status']}:{ready['reason']}" if ready else None


def test_external_model_readiness_follows_its_secret_and_never_reveals_the_key(
    cluster: EmulatedCluster, kube: KubeHttpClient, namespace: str
) -> None:
    api_key = f"sk-test-{uuid.uuid4().hex}"
    # Debug logging, and every per-object log record also posted as an event: the widest net.
    chatty = ReconcileOptions(resync_seconds=1.0, retry_delay_seconds=0.5, post_log_events=True)
    with running_operator(
        cluster.url, namespaces=(namespace,), options=chatty, verbose=True
    ) as runner:
        kube.create(external_model("gpt-4o", namespace, secret="openai", key="api-key"))
        wait_for(
            lambda: (
                _ready_reason(kube, "ExternalModel", namespace, "gpt-4o") == "False:SecretNotFound"
            ),
            what="Ready=False SecretNotFound",
        )

        kube.create(secret("openai", namespace, {"organization": "acme"}))
        wait_for(
            lambda: (
                _ready_reason(kube, "ExternalModel", namespace, "gpt-4o") == "False:KeyNotFound"
            ),
            what="Ready=False KeyNotFound",
        )

        kube.patch("Secret", namespace, "openai", {"stringData": {"api-key": api_key}})
        wait_for(
            lambda: (
                _ready_reason(kube, "ExternalModel", namespace, "gpt-4o") == "True:SecretResolved"
            ),
            what="Ready=True once the key exists",
        )
        model = kube.get("ExternalModel", namespace, "gpt-4o")
        events = kube.list("Event", namespace)

    encoded = base64.b64encode(api_key.encode()).decode()
    exposed = {
        "status": json.dumps(model),
        "events": json.dumps(events),
        "operator output": runner.output,
    }
    assert events, "the operator posted no events, so the events check would prove nothing"
    for where, text in exposed.items():
        assert api_key not in text, f"the API key leaked into the {where}"
        assert encoded not in text, f"the base64 API key leaked into the {where}"


def test_invalid_external_model_gets_a_reason(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    model = external_model("half-priced", namespace, secret="openai", key="api-key")
    model["spec"]["inputUSDPerMTok"] = 2.5  # without outputUSDPerMTok

    kube.create(model)

    wait_for(
        lambda: (
            _ready_reason(kube, "ExternalModel", namespace, "half-priced") == "False:InvalidSpec"
        ),
        what="Ready=False InvalidSpec",
    )
    message = condition(kube.get("ExternalModel", namespace, "half-priced"), "Ready")["message"]
    assert "outputUSDPerMTok" in message


def _tenant(name: str, secret_name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "apiKeySecretRef": {"name": secret_name, "key": name}, **extra}


def test_routing_policy_is_ready_when_valid_and_its_tenant_keys_exist(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    kube.create(secret("tenant-keys", namespace, {"analytics": "k1"}))
    kube.create(
        routing_policy(
            "default",
            namespace,
            [_tenant("analytics", "tenant-keys"), _tenant("hr", "tenant-keys")],
        )
    )
    wait_for(
        lambda: _ready_reason(kube, "RoutingPolicy", namespace, "default") == "False:KeyNotFound",
        what="Ready=False KeyNotFound for the hr tenant",
    )
    assert "hr" in condition(kube.get("RoutingPolicy", namespace, "default"), "Ready")["message"]

    kube.patch("Secret", namespace, "tenant-keys", {"stringData": {"hr": "k2"}})

    wait_for(
        lambda: _ready_reason(kube, "RoutingPolicy", namespace, "default") == "True:PolicyValid",
        what="Ready=True PolicyValid",
    )


def test_routing_policy_with_contradicting_budgets_is_invalid(
    operator: Any, kube: KubeHttpClient, namespace: str
) -> None:
    tenant = _tenant("analytics", "tenant-keys", dailyBudgetUSD=100, monthlyBudgetUSD=10)
    kube.create(routing_policy("default", namespace, [tenant]))

    wait_for(
        lambda: _ready_reason(kube, "RoutingPolicy", namespace, "default") == "False:InvalidSpec",
        what="Ready=False InvalidSpec",
    )
    message = condition(kube.get("RoutingPolicy", namespace, "default"), "Ready")["message"]
    assert "dailyBudgetUSD" in message
