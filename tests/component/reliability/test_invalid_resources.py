"""Invalid custom resources against the real operator and the real router, on the emulator.

The emulator does not validate CRD schemas, so every case of
`modelplane.testing.invalid_resources.CASES` is stored as written: the ones the API server
would refuse arrive as they would after a CRD upgrade tightened the schema. The operator must
report each with the expected condition, never crash, and still reconcile a valid
ModelDeployment created after all of them; the router must skip each invalid ExternalModel and
RoutingPolicy with a logged reason while the valid ones keep serving.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from modelplane.operator.reconcile import ReconcileOptions

from modelplane.testing.invalid_resources import (
    CASES,
    TENANT_SECRET,
    VALID_MODEL_DEPLOYMENT,
    observe_operator,
    supporting_secrets,
)
from modelplane.testing.kube import EmulatedCluster, wait_for
from modelplane.testing.operator import (
    condition,
    external_model,
    model_deployment,
    routing_policy,
    running_operator,
    secret,
)
from modelplane.testing.router_process import ThreadedUpstreams, start_router_process

NAMESPACE = "invalid-resources"


@pytest.fixture
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=5.0) as running:
        yield running


def test_operator_reports_every_invalid_resource_and_keeps_reconciling(
    cluster: EmulatedCluster,
) -> None:
    report = observe_operator(CASES, cluster.url, NAMESPACE)

    wrong = {
        case.name: dict(report.conditions.get(case.name, {}))
        for case in CASES
        if report.conditions.get(case.name, {}).get("reason") != case.reason
        or case.message not in report.conditions[case.name].get("message", "")
    }
    assert wrong == {}, "reported otherwise than expected"
    for case in CASES:
        reported = report.conditions[case.name]
        assert reported["status"] == ("True" if case.condition_type == "Degraded" else "False")
    assert report.valid_model_reconciled, "the operator stopped reconciling"
    # kopf keeps running when a handler raises, logging and retrying it: that is the crash to
    # look for, together with any traceback.
    assert "failed with an exception" not in report.operator_output
    assert "Traceback" not in report.operator_output

    kube = cluster.client()
    deployments = {d["metadata"]["name"] for d in kube.list("Deployment", NAMESPACE)}
    rejected_mds = {c.name for c in CASES if c.kind == "ModelDeployment" and c.rejected}
    assert VALID_MODEL_DEPLOYMENT in deployments
    assert deployments.isdisjoint(rejected_mds), "an invalid spec got a workload"
    invalid_spec_events = {
        event["involvedObject"]["name"]
        for event in kube.list("Event", NAMESPACE)
        if event.get("reason") == "InvalidSpec"
    }
    assert invalid_spec_events, "no Warning event told anyone"


def test_a_model_waiting_for_its_secret_recovers_once_the_secret_exists(
    cluster: EmulatedCluster,
) -> None:
    kube = cluster.client()
    options = ReconcileOptions(resync_seconds=1.0, retry_delay_seconds=0.5)
    spec = {"engine": {"envFrom": [{"secretRef": {"name": "hf-token"}}]}}
    with running_operator(cluster.url, namespaces=(NAMESPACE,), options=options):
        kube.create(model_deployment("llama", NAMESPACE, spec), NAMESPACE)

        def degraded() -> dict[str, Any]:
            return dict(condition(kube.get("ModelDeployment", NAMESPACE, "llama"), "Degraded"))

        wait_for(lambda: degraded().get("reason") == "SecretNotFound", what="SecretNotFound")
        deployment = kube.get("Deployment", NAMESPACE, "llama")
        assert deployment is not None, "the pods start once the Secret exists: apply them now"
        assert kube.get("ModelDeployment", NAMESPACE, "llama")["status"]["phase"] == "Degraded"

        kube.create(secret("hf-token", NAMESPACE, {"HF_TOKEN": "hf_test"}), NAMESPACE)

        wait_for(lambda: degraded().get("status") == "False", what="Degraded cleared by a resync")
        status = kube.get("ModelDeployment", NAMESPACE, "llama")["status"]
        assert status["phase"] == "Progressing"
        assert "hf_test" not in str(status)


def test_router_skips_invalid_external_models_and_policies_and_serves_the_valid_ones(
    cluster: EmulatedCluster, tmp_path: Path
) -> None:
    kube = cluster.client()
    for obj in supporting_secrets(NAMESPACE):
        kube.create(obj, NAMESPACE)
    kube.patch("Secret", NAMESPACE, TENANT_SECRET, {"stringData": {"valid": "valid-tenant-key"}})
    cases = [case for case in CASES if case.kind in ("ExternalModel", "RoutingPolicy")]
    for case in cases:
        kube.create(case.body(NAMESPACE), NAMESPACE)
    tenant = {
        "name": "valid-team",
        "apiKeySecretRef": {"name": TENANT_SECRET, "key": "valid"},
        "defaultDataClass": "public",
    }
    kube.create(routing_policy("rp-kept", NAMESPACE, [tenant]), NAMESPACE)
    upstreams = ThreadedUpstreams()
    router = None
    try:
        gpt = upstreams.start("gpt-4o")
        valid = external_model("gpt-4o", NAMESPACE, "openai", "api-key", {"apiBase": gpt.base_url})
        kube.create(valid, NAMESPACE)
        kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE)
        router = start_router_process(
            ["--kubernetes", "--namespace", NAMESPACE, "--scrape-interval", "0"],
            tmp_path / "router.log",
            {"KUBECONFIG": str(kubeconfig)},
        )

        answer = router.chat("valid-tenant-key")
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-modelplane-backend"] == "gpt-4o"
        listing = httpx.get(
            f"{router.url}/v1/models",
            headers={"Authorization": "Bearer valid-tenant-key"},
            timeout=10,
        ).json()
        assert {entry["id"] for entry in listing["data"]} == {"auto", "gpt-4o"}
        # The invalid policies' tenant ("team") holds this key: it must not get in.
        refused = router.chat("tenant-invalid-resources-test")
        assert refused.status_code == 401, refused.text
        log = router.log()
    finally:
        if router is not None:
            router.stop()
        upstreams.close()

    unexplained = [
        case.name
        for case in cases
        if not re.search(rf"{case.kind} {NAMESPACE}/{re.escape(case.name)}: \S", log)
    ]
    assert unexplained == [], "skipped without a logged reason"
    assert "sk-invalid-resources-test" not in log
