"""A catalogue of invalid modelplane resources and what becomes of each.

Every `InvalidResource` is one way to get a ModelDeployment, ExternalModel or RoutingPolicy
wrong, with the outcome expected for it:

- `rejected`: the API server refuses it (the CRD's structural schema or a CEL rule, evaluated by
  `modelplane.testing.crd_admission`); `rejection` is a phrase of the refusal. Should such an
  object reach the operator anyway (stored before a CRD upgrade tightened the schema, or on a
  server that does not run CEL), the operator reports Ready=False with reason InvalidSpec.
- admitted: the schema legitimately accepts it, and the operator reports the problem as a
  condition (`condition_type`, `reason`, a phrase of its message).

`observe_operator(cases)` creates them all on the Kubernetes emulator (which does not validate,
so the rejected ones bypass admission) under the real operator, then a valid ModelDeployment,
and reads back what the operator reported. `python -m modelplane.testing.invalid_resources`
prints the resulting table in Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from modelplane.api.schema import load_crds
from modelplane.operator.reconcile import ReconcileOptions
from modelplane.testing.crd_admission import admission_errors
from modelplane.testing.kube import EmulatedCluster, KubeHttpClient, wait_for
from modelplane.testing.operator import (
    condition,
    external_model,
    model_deployment,
    routing_policy,
    running_operator,
    secret,
)

JsonDict = dict[str, Any]
CRD_DIR = Path(__file__).resolve().parents[2] / "crds"

# The Secrets the cases refer to: `openai` and `tenants` hold what is asked of them,
# `openai-org-only` lacks the API key's key.
API_KEY_SECRET = "openai"
KEYLESS_SECRET = "openai-org-only"
TENANT_SECRET = "tenants"
VALID_MODEL_DEPLOYMENT = "valid-after-all"


def supporting_secrets(namespace: str) -> list[JsonDict]:
    """The Secrets the cases expect to exist in `namespace` (values are test placeholders)."""
    return [
        secret(API_KEY_SECRET, namespace, {"api-key": "sk-invalid-resources-test"}),
        secret(KEYLESS_SECRET, namespace, {"organization": "acme"}),
        secret(TENANT_SECRET, namespace, {"team": "tenant-invalid-resources-test"}),
    ]


@dataclasses.dataclass(frozen=True)
class InvalidResource:
    """One invalid resource, how it is invalid, and what should become of it."""

    name: str
    kind: str
    invalid: str
    build: Callable[[str], JsonDict]
    rejection: str | None = None  # a phrase of the API server's refusal; None: it is admitted
    reason: str = "InvalidSpec"
    message: str = ""  # a phrase of the condition's message
    condition_type: str = "Ready"

    @property
    def rejected(self) -> bool:
        return self.rejection is not None

    def body(self, namespace: str) -> JsonDict:
        return self.build(namespace)


def _md(name: str, spec: Mapping[str, Any]) -> Callable[[str], JsonDict]:
    return lambda namespace: model_deployment(name, namespace, spec)


def _md_without(name: str, *path: str) -> Callable[[str], JsonDict]:
    def build(namespace: str) -> JsonDict:
        body = model_deployment(name, namespace)
        node = body["spec"]
        for part in path[:-1]:
            node = node[part]
        del node[path[-1]]
        return body

    return build


def _em(
    name: str, spec: Mapping[str, Any], secret_name: str = API_KEY_SECRET
) -> Callable[[str], JsonDict]:
    return lambda namespace: external_model(name, namespace, secret_name, "api-key", spec)


def _em_without(name: str, field: str) -> Callable[[str], JsonDict]:
    def build(namespace: str) -> JsonDict:
        body = external_model(name, namespace, API_KEY_SECRET, "api-key")
        del body["spec"][field]
        return body

    return build


def _tenant(**fields: Any) -> JsonDict:
    return {"name": "team", "apiKeySecretRef": {"name": TENANT_SECRET, "key": "team"}, **fields}


def _rp(
    name: str, tenants: list[JsonDict], spec: Mapping[str, Any] | None = None
) -> Callable[[str], JsonDict]:
    return lambda namespace: routing_policy(name, namespace, tenants, spec)


CASES: tuple[InvalidResource, ...] = (
    # ModelDeployment, refused by the API server
    InvalidResource(
        "md-wrong-type",
        "ModelDeployment",
        "wrong type: `model.contextWindow: long`",
        _md("md-wrong-type", {"model": {"contextWindow": "long"}}),
        rejection="'long' is not of type 'integer'",
        message="spec.model.contextWindow: Input should be a valid integer",
    ),
    InvalidResource(
        "md-boolean-gpus",
        "ModelDeployment",
        "wrong type: `resources.gpus: true`",
        _md("md-boolean-gpus", {"resources": {"gpus": True}}),
        rejection="True is not of type 'integer'",
        message="spec.resources.gpus: Input should be a valid integer",
    ),
    InvalidResource(
        "md-negative-gpus",
        "ModelDeployment",
        "negative GPUs: `resources.gpus: -1`",
        _md("md-negative-gpus", {"resources": {"gpus": -1}}),
        rejection="-1 is less than the minimum of 0",
        message="spec.resources.gpus: Input should be greater than or equal to 0",
    ),
    InvalidResource(
        "md-too-many-gpus",
        "ModelDeployment",
        "out of range: `resources.gpus: 65` (at most 64)",
        _md("md-too-many-gpus", {"resources": {"gpus": 65}}),
        rejection="65 is greater than the maximum of 64",
        message="spec.resources.gpus: Input should be less than or equal to 64",
    ),
    InvalidResource(
        "md-min-above-max",
        "ModelDeployment",
        "conflicting autoscaling: `minReplicas: 5`, `maxReplicas: 2`",
        _md("md-min-above-max", {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}),
        rejection="minReplicas must not exceed maxReplicas",
        message="minReplicas (5) must not exceed maxReplicas (2)",
    ),
    InvalidResource(
        "md-zero-queue-target",
        "ModelDeployment",
        "out of range: `autoscaling.targetQueueDepth: 0`",
        _md("md-zero-queue-target", {"autoscaling": {"maxReplicas": 3, "targetQueueDepth": 0}}),
        rejection="0 is less than the minimum of 1",
        message="spec.autoscaling.targetQueueDepth: Input should be greater than or equal to 1",
    ),
    InvalidResource(
        "md-unknown-engine",
        "ModelDeployment",
        "unknown engine: `engine.name: tgi`",
        _md("md-unknown-engine", {"engine": {"name": "tgi"}}),
        rejection="'tgi' is not one of ['vllm', 'triton']",
        message="spec.engine.name: Input should be 'vllm' or 'triton'",
    ),
    InvalidResource(
        "md-http-uri",
        "ModelDeployment",
        "bad model URI scheme: `http://models.example.com/llama`",
        _md("md-http-uri", {"model": {"uri": "http://models.example.com/llama"}}),
        rejection="'http://models.example.com/llama' does not match",
        message="the URI scheme must be one of hf://, s3://, gs://, pvc://",
    ),
    InvalidResource(
        "md-tensor-not-gpus",
        "ModelDeployment",
        "tensor-parallel size != GPUs: `gpus: 2`, `parallelism.tensor: 4`",
        _md("md-tensor-not-gpus", {"resources": {"gpus": 2, "parallelism": {"tensor": 4}}}),
        rejection="parallelism.tensor must equal gpus when gpus > 0",
        message="parallelism.tensor (4) must equal gpus (2)",
    ),
    InvalidResource(
        "md-no-context-window",
        "ModelDeployment",
        "missing required field: `model.contextWindow`",
        _md_without("md-no-context-window", "model", "contextWindow"),
        rejection="'contextWindow' is a required property",
        message="spec.model.contextWindow: Field required",
    ),
    InvalidResource(
        "md-no-engine",
        "ModelDeployment",
        "missing required field: `engine`",
        _md_without("md-no-engine", "engine"),
        rejection="'engine' is a required property",
        message="spec.engine: Field required",
    ),
    InvalidResource(
        "md-unknown-field",
        "ModelDeployment",
        "unknown field: `spec.gpuCount`",
        _md("md-unknown-field", {"gpuCount": 2}),
        rejection="spec.gpuCount: unknown field",
        message="spec.gpuCount: Extra inputs are not permitted",
    ),
    InvalidResource(
        "md-bad-memory",
        "ModelDeployment",
        "bad quantity: `resources.memory: 16GB`",
        _md("md-bad-memory", {"resources": {"memory": "16GB"}}),
        rejection="'16GB' does not match",
        message="spec.resources.memory: must be a non-negative Kubernetes quantity",
    ),
    InvalidResource(
        "md-negative-cache",
        "ModelDeployment",
        "bad quantity: `cache.size: -100Gi`",
        _md("md-negative-cache", {"cache": {"size": "-100Gi"}}),
        rejection="'-100Gi' does not match",
        message="spec.cache.size: must be a non-negative Kubernetes quantity",
    ),
    InvalidResource(
        "md-negative-price",
        "ModelDeployment",
        "negative price: `cost.gpuHourUSD: -0.5`",
        _md("md-negative-price", {"cost": {"gpuHourUSD": -0.5}}),
        rejection="-0.5 is less than the minimum of 0",
        message="spec.cost.gpuHourUSD: Input should be greater than or equal to 0",
    ),
    InvalidResource(
        "8b-llama",
        "ModelDeployment",
        "invalid name: `8b-llama` (its Service needs a DNS-1035 label)",
        _md("8b-llama", {}),
        rejection="metadata.name must be a DNS-1035 label",
        message="metadata.name must be a DNS-1035 label",
    ),
    InvalidResource(
        "md-env-value-and-secret",
        "ModelDeployment",
        "conflicting settings: an engine.env entry with both value and valueFrom",
        _md(
            "md-env-value-and-secret",
            {
                "engine": {
                    "env": [
                        {
                            "name": "HF_TOKEN",
                            "value": "hf_plain",
                            "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}},
                        }
                    ]
                }
            },
        ),
        rejection="set value or valueFrom, not both",
        message="set value or valueFrom, not both",
    ),
    InvalidResource(
        "md-triton-slash-name",
        "ModelDeployment",
        "engine rule: Triton with `servedName: meta/llama`",
        _md(
            "md-triton-slash-name",
            {"engine": {"name": "triton"}, "model": {"servedName": "meta/llama"}},
        ),
        rejection="with engine triton, model.servedName must not contain '/'",
        message="with engine triton, model.servedName must not contain '/'",
    ),
    # ModelDeployment, admitted; the operator reports what is missing
    InvalidResource(
        "md-missing-token-secret",
        "ModelDeployment",
        "missing Secret: `engine.envFrom` names Secret hf-token, which does not exist",
        _md(
            "md-missing-token-secret",
            {"engine": {"envFrom": [{"secretRef": {"name": "hf-token"}}]}},
        ),
        reason="SecretNotFound",
        message="Secret hf-token (holding the variables of engine.envFrom) does not exist",
        condition_type="Degraded",
    ),
    InvalidResource(
        "md-missing-storage-key",
        "ModelDeployment",
        "missing Secret key: `AWS_SECRET_ACCESS_KEY` from a key the Secret lacks",
        _md(
            "md-missing-storage-key",
            {
                "model": {"uri": "s3://weights/llama-3-8b"},
                "engine": {
                    "env": [
                        {
                            "name": "AWS_SECRET_ACCESS_KEY",
                            "valueFrom": {
                                "secretKeyRef": {"name": KEYLESS_SECRET, "key": "secret-key"}
                            },
                        }
                    ]
                },
            },
        ),
        reason="KeyNotFound",
        message=f"Secret {KEYLESS_SECRET} has no key secret-key",
        condition_type="Degraded",
    ),
    # ExternalModel, refused by the API server
    InvalidResource(
        "em-no-key-ref",
        "ExternalModel",
        "missing required field: `apiKeySecretRef`",
        _em_without("em-no-key-ref", "apiKeySecretRef"),
        rejection="'apiKeySecretRef' is a required property",
        message="spec.apiKeySecretRef: Field required",
    ),
    InvalidResource(
        "em-ftp-api-base",
        "ExternalModel",
        "bad api_base URL: `ftp://models.example.com/v1`",
        _em("em-ftp-api-base", {"apiBase": "ftp://models.example.com/v1"}),
        rejection="'ftp://models.example.com/v1' does not match",
        message="spec.apiBase: must be an http:// or https:// URL with a host",
    ),
    InvalidResource(
        "em-hostless-api-base",
        "ExternalModel",
        "bad api_base URL: `https:///v1` (no host)",
        _em("em-hostless-api-base", {"apiBase": "https:///v1"}),
        rejection="'https:///v1' does not match",
        message="spec.apiBase: must be an http:// or https:// URL with a host",
    ),
    InvalidResource(
        "em-negative-price",
        "ExternalModel",
        "negative price: `inputUSDPerMTok: -2.5`",
        _em("em-negative-price", {"inputUSDPerMTok": -2.5, "outputUSDPerMTok": 10}),
        rejection="-2.5 is less than the minimum of 0",
        message="spec.inputUSDPerMTok: Input should be greater than or equal to 0",
    ),
    InvalidResource(
        "em-half-priced",
        "ExternalModel",
        "half a price: `inputUSDPerMTok` without `outputUSDPerMTok`",
        _em("em-half-priced", {"inputUSDPerMTok": 2.5}),
        rejection="set both inputUSDPerMTok and outputUSDPerMTok, or neither",
        message="set both inputUSDPerMTok and outputUSDPerMTok, or neither",
    ),
    InvalidResource(
        "em-video-capability",
        "ExternalModel",
        "unknown capability: `video`",
        _em("em-video-capability", {"capabilities": ["chat", "video"]}),
        rejection="'video' is not one of ['chat', 'tools', 'json', 'images']",
        message="spec.capabilities.1: Input should be 'chat', 'tools', 'json' or 'images'",
    ),
    InvalidResource(
        "em-zero-context",
        "ExternalModel",
        "out of range: `contextWindow: 0`",
        _em("em-zero-context", {"contextWindow": 0}),
        rejection="0 is less than the minimum of 1",
        message="spec.contextWindow: Input should be greater than or equal to 1",
    ),
    # ExternalModel, admitted; the operator reports it
    InvalidResource(
        "em-unknown-provider",
        "ExternalModel",
        "unknown provider: `openia`",
        _em("em-unknown-provider", {"provider": "openia"}),
        message="unknown provider 'openia': LiteLLM has no such provider",
    ),
    InvalidResource(
        "em-bad-port",
        "ExternalModel",
        "bad api_base URL: port 99999",
        _em("em-bad-port", {"apiBase": "https://llm.example.com:99999/v1"}),
        message="apiBase 'https://llm.example.com:99999/v1' has an invalid port",
    ),
    InvalidResource(
        "em-missing-secret",
        "ExternalModel",
        "missing Secret: the API key's Secret `absent` does not exist",
        _em("em-missing-secret", {}, secret_name="absent"),
        reason="SecretNotFound",
        message="Secret absent (holding the API key) does not exist",
    ),
    InvalidResource(
        "em-missing-key",
        "ExternalModel",
        "missing Secret key: the Secret has no `api-key`",
        _em("em-missing-key", {}, secret_name=KEYLESS_SECRET),
        reason="KeyNotFound",
        message=f"Secret {KEYLESS_SECRET} has no key api-key",
    ),
    # RoutingPolicy, refused by the API server
    InvalidResource(
        "rp-no-tenants",
        "RoutingPolicy",
        "policy rule: no tenants (`tenants: []`)",
        _rp("rp-no-tenants", []),
        rejection="[] should be non-empty",
        message="spec.tenants: List should have at least 1 item",
    ),
    InvalidResource(
        "rp-daily-above-monthly",
        "RoutingPolicy",
        "policy rule: `dailyBudgetUSD: 50` above `monthlyBudgetUSD: 20`",
        _rp("rp-daily-above-monthly", [_tenant(dailyBudgetUSD=50, monthlyBudgetUSD=20)]),
        rejection="dailyBudgetUSD must not exceed monthlyBudgetUSD",
        message="dailyBudgetUSD (50.0) must not exceed monthlyBudgetUSD (20.0)",
    ),
    InvalidResource(
        "rp-duplicate-tenant",
        "RoutingPolicy",
        "policy rule: two tenants named `team`",
        _rp("rp-duplicate-tenant", [_tenant(), _tenant(rpm=10)]),
        rejection="tenant names must be unique",
        message="tenant names must be unique",
    ),
    InvalidResource(
        "rp-negative-budget",
        "RoutingPolicy",
        "negative budget: `dailyBudgetUSD: -1`",
        _rp("rp-negative-budget", [_tenant(dailyBudgetUSD=-1)]),
        rejection="-1 is less than the minimum of 0",
        message="spec.tenants.0.dailyBudgetUSD: Input should be greater than or equal to 0",
    ),
    InvalidResource(
        "rp-zero-rpm",
        "RoutingPolicy",
        "out of range: `rpm: 0`",
        _rp("rp-zero-rpm", [_tenant(rpm=0)]),
        rejection="0 is less than the minimum of 1",
        message="spec.tenants.0.rpm: Input should be greater than or equal to 1",
    ),
    InvalidResource(
        "rp-unknown-data-class",
        "RoutingPolicy",
        "policy rule: `defaultDataClass: secret`",
        _rp("rp-unknown-data-class", [_tenant(defaultDataClass="secret")]),
        rejection="'secret' is not one of ['public', 'internal', 'confidential']",
        message="Input should be 'public', 'internal' or 'confidential'",
    ),
    InvalidResource(
        "rp-unknown-pii-type",
        "RoutingPolicy",
        "policy rule: `privacy.piiTypes: [passport]`",
        _rp("rp-unknown-pii-type", [_tenant()], {"privacy": {"piiTypes": ["passport"]}}),
        rejection="'passport' is not one of",
        message="spec.privacy.piiTypes.0: Input should be",
    ),
    InvalidResource(
        "rp-unknown-preference",
        "RoutingPolicy",
        "policy rule: `cost.preference: fastest`",
        _rp("rp-unknown-preference", [_tenant()], {"cost": {"preference": "fastest"}}),
        rejection="'fastest' is not one of ['cheapest', 'balanced']",
        message="spec.cost.preference: Input should be 'cheapest' or 'balanced'",
    ),
    InvalidResource(
        "rp-bad-tenant-name",
        "RoutingPolicy",
        "invalid name: tenant `Team A`",
        _rp("rp-bad-tenant-name", [_tenant(name="Team A")]),
        rejection="'Team A' does not match",
        message="spec.tenants.0.name: must be a DNS label",
    ),
    # RoutingPolicy, admitted; the operator reports it
    InvalidResource(
        "rp-missing-tenant-secret",
        "RoutingPolicy",
        "missing Secret: tenant key Secret `absent` does not exist",
        _rp(
            "rp-missing-tenant-secret",
            [{"name": "team", "apiKeySecretRef": {"name": "absent", "key": "team"}}],
        ),
        reason="SecretNotFound",
        message="Secret absent (holding the tenant team's API key) does not exist",
    ),
)


@dataclasses.dataclass(frozen=True)
class OperatorReport:
    """What the operator reported on every case, and whether it kept working afterwards."""

    conditions: Mapping[str, Mapping[str, Any]]  # case name -> its reported condition
    valid_model_reconciled: bool
    operator_output: str


def admission(case: InvalidResource, crds: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The API server's refusals of the case's resource (empty: it is stored)."""
    return admission_errors(case.body("default"), crds[case.kind])


def observe_operator(
    cases: Sequence[InvalidResource], url: str, namespace: str, timeout_s: float = 30.0
) -> OperatorReport:
    """Create every case at `url` (an emulator: admission is skipped) under the real operator.

    Waits, at most `timeout_s` in all, until each case has its expected condition type with an
    observedGeneration, then creates a valid ModelDeployment and waits for its Deployment and
    status: proof that the operator is still reconciling.
    """
    kube = KubeHttpClient.for_url(url)
    options = ReconcileOptions(resync_seconds=1.0, retry_delay_seconds=0.5)
    try:
        with running_operator(url, namespaces=(namespace,), options=options) as runner:
            for obj in supporting_secrets(namespace):
                kube.create(obj, namespace)
            for case in cases:
                kube.create(case.body(namespace), namespace)
            conditions = _wait_for_conditions(kube, cases, namespace, timeout_s)
            kube.create(model_deployment(VALID_MODEL_DEPLOYMENT, namespace), namespace)
            try:
                wait_for(
                    lambda: (
                        kube.get("Deployment", namespace, VALID_MODEL_DEPLOYMENT) is not None
                        and condition(
                            kube.get("ModelDeployment", namespace, VALID_MODEL_DEPLOYMENT), "Ready"
                        ).get("reason")
                        == "NoReplicaReady"
                    ),
                    timeout=timeout_s,
                    interval=0.1,
                    what="the valid ModelDeployment reconciled",
                )
                reconciled = True
            except TimeoutError:
                reconciled = False
    finally:
        kube.close()
    return OperatorReport(conditions, reconciled, runner.output)


def _reported(kube: KubeHttpClient, case: InvalidResource, namespace: str) -> Mapping[str, Any]:
    reported = condition(kube.get(case.kind, namespace, case.name), case.condition_type)
    return reported if reported.get("observedGeneration") is not None else {}


def _wait_for_conditions(
    kube: KubeHttpClient, cases: Sequence[InvalidResource], namespace: str, timeout_s: float
) -> dict[str, Mapping[str, Any]]:
    conditions: dict[str, Mapping[str, Any]] = {}
    deadline = time.monotonic() + timeout_s
    for _ in range(int(timeout_s / 0.1) + 1):
        for case in cases:
            reported = _reported(kube, case, namespace)
            if reported.get("reason") == case.reason:
                conditions[case.name] = reported
            elif reported:
                conditions.setdefault(case.name, reported)
        if all(conditions.get(c.name, {}).get("reason") == c.reason for c in cases):
            break
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    return conditions


def _cell(text: str, limit: int = 140) -> str:
    text = text.replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_table(
    cases: Sequence[InvalidResource],
    crds: Mapping[str, Mapping[str, Any]],
    report: OperatorReport,
) -> str:
    """One row per case: the resource, how it is invalid, the API server's and operator's answer."""
    rows = [
        "| # | Kind | Invalid how | API server (schema + CEL) | Operator (condition) |",
        "|---|------|-------------|---------------------------|----------------------|",
    ]
    for number, case in enumerate(cases, start=1):
        refused = admission(case, crds)
        server = f"rejected: `{_cell(refused[0], 110)}`" if refused else "accepted"
        reported = report.conditions.get(case.name, {})
        if reported:
            operator = (
                f"{case.condition_type}={reported.get('status')} **{reported.get('reason')}**: "
                f"{_cell(str(reported.get('message', '')))}"
            )
            if refused:
                operator = "if it bypasses the schema: " + operator
        else:
            operator = "no condition reported"
        rows.append(f"| {number} | {case.kind} | {case.invalid} | {server} | {operator} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args(argv)
    crds = load_crds(CRD_DIR)
    with EmulatedCluster() as cluster:
        report = observe_operator(CASES, cluster.url, "invalid-resources")
    print(markdown_table(CASES, crds, report))
    rejected = sum(1 for case in CASES if admission(case, crds))
    print(
        f"\n{len(CASES)} invalid resources: {rejected} rejected by the API server, "
        f"{len(CASES) - rejected} admitted and reported by the operator; the operator then "
        f"reconciled a valid ModelDeployment: {'yes' if report.valid_model_reconciled else 'NO'}."
    )
    return 0 if report.valid_model_reconciled else 1


if __name__ == "__main__":
    sys.exit(main())
