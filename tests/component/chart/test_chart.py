"""charts/modelplane rendered by the real helm binary, checked against Kubernetes schemas."""

from __future__ import annotations

import filecmp
import json
import re
from collections.abc import Iterator
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from modelplane.operator.builders import build_children
from modelplane.operator.settings import OperatorSettings
from modelplane.router.adapters.telemetry import METRIC_NAMES

from modelplane.api import ModelDeployment
from modelplane.cli import build_parser
from modelplane.testing.operator import model_deployment

from .conftest import CHART, NAMESPACE, REPO_ROOT, Helm, HelmFailed, Manifest

OTLP_COLLECTOR_EGRESS = {
    "to": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}}
    ],
    "ports": [{"protocol": "TCP", "port": 4318}],
}

# Value sets the chart must render, lint and validate with. Each is a realistic installation.
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "external-redis-existing-secret": {
        "redis": {
            "enabled": False,
            "external": {
                "url": "rediss://redis.example.internal:6380/2",
                "existingSecret": "cache",
            },
        }
    },
    "external-redis-password": {
        "redis": {
            "enabled": False,
            "external": {"url": "redis://redis.shared.svc:6379/0", "password": "s3cret"},
        }
    },
    "no-redis": {"redis": {"enabled": False}, "router": {"watchNamespace": "team-a"}},
    "cluster-wide": {
        "operator": {
            "watchAllNamespaces": True,
            "settings": {
                "keda": {"enabled": True},
                "vllm_image": "registry.internal/vllm-openai:v0.12.0",
            },
        },
        "router": {"watchAllNamespaces": True},
        "networkPolicy": {"models": {"namespaces": ["team-a", "team-b"]}},
    },
    "network-policy-off": {"networkPolicy": {"enabled": False}},
    "network-policy-everything": {
        "networkPolicy": {
            "prometheus": {"enabled": True},
            "models": {"weightsDownload": {"enabled": True, "cidrs": ["10.20.0.0/16"]}},
            "router": {
                "ingressFrom": [{"podSelector": {"matchLabels": {"app": "frontend"}}}],
                "externalCIDRs": ["0.0.0.0/0"],
                "externalExceptCIDRs": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
                "extraEgress": [OTLP_COLLECTOR_EGRESS],
            },
            "kubeAPIServer": {"cidrs": ["10.96.0.1/32"], "ports": [443]},
        }
    },
    "monitoring": {
        "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
        "grafanaDashboard": {"enabled": True, "namespace": "monitoring"},
        "router": {
            "otlpEndpoint": "http://otel-collector.monitoring:4318",
            "traceSampleRatio": 0.25,
            "auditLog": False,
            "logLevel": "info",
            "redisFailure": {"limitsFailOpen": False, "budgetsFailOpen": True},
        },
        "operator": {"verbose": True, "resyncSeconds": 15},
    },
    "autoscaling-off": {
        "router": {
            "autoscaling": {"enabled": False},
            "replicaCount": 3,
            "pdb": {"minAvailable": 2},
            "service": {"type": "LoadBalancer"},
        },
        "redis": {"persistence": {"enabled": False}},
        "operator": {"livenessProbe": {"enabled": False}},
    },
    "pinned-digests-and-pull-secrets": {
        "image": {"digest": "sha256:" + "a" * 64},
        "imagePullSecrets": ["registry"],
        "fullnameOverride": "plane",
        "commonLabels": {"team": "ml-platform"},
    },
}

# The lowest Kubernetes the chart supports (Chart.yaml kubeVersion) and the newest schema available.
KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet"}
ROLE_KINDS = {"Role", "ClusterRole"}
MODELPLANE_RESOURCES = {"modeldeployments", "externalmodels", "routingpolicies"}

# The Prometheus Operator's CRD is not available offline; this holds the ServiceMonitor to the
# fields the chart uses, with their types.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name", "namespace"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "namespaceSelector": {
                    "type": "object",
                    "properties": {"matchNames": {"type": "array", "items": {"type": "string"}}},
                },
                "selector": {
                    "type": "object",
                    "properties": {
                        "matchLabels": {
                            "type": "object",
                            "additionalProperties": {"type": "string"},
                        }
                    },
                },
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                        },
                    },
                },
            },
        },
    },
}


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> dict[str, list[Manifest]]:
    return {name: helm.template(values) for name, values in VALUE_SETS.items()}


def _of_kind(manifests: list[Manifest], *kinds: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in kinds]


def _named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    matches = [m for m in manifests if m["kind"] == kind and m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def _pod_specs(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for manifest in manifests:
        label = f"{manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] in POD_TEMPLATE_KINDS:
            yield label, manifest["spec"]["template"]["spec"]
        elif manifest["kind"] == "Pod":
            yield label, manifest["spec"]


def _rules(manifests: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for role in _of_kind(manifests, *ROLE_KINDS):
        for rule in role["rules"]:
            yield f"{role['kind']}/{role['metadata']['name']}", rule


# --- rendering and validation -------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_chart_passes_helm_lint_strict(helm: Helm, value_set: str) -> None:
    output = helm.lint(VALUE_SETS[value_set])
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize("kubernetes_version", KUBERNETES_VERSIONS)
def test_every_rendered_manifest_validates_strictly_against_kubernetes(
    rendered: dict[str, list[Manifest]], kubernetes_version: str
) -> None:
    # Most manifests are the same in every value set; each distinct one is validated once.
    distinct: dict[str, tuple[str, Manifest]] = {}
    for value_set, manifests in rendered.items():
        assert manifests, value_set
        for manifest in manifests:
            distinct.setdefault(json.dumps(manifest, sort_keys=True), (value_set, manifest))
    for value_set, manifest in distinct.values():
        where = f"{value_set}: {manifest['kind']}/{manifest['metadata']['name']}"
        if manifest["kind"] == "ServiceMonitor":
            jsonschema.validate(manifest, SERVICE_MONITOR_SCHEMA)
            continue
        try:
            # strict: unknown fields are errors too; an unknown kind raises as well.
            kubernetes_validate.validate(manifest, kubernetes_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{where}: {error}")


def test_default_installation_has_operator_router_and_redis(
    rendered: dict[str, list[Manifest]],
) -> None:
    kinds = {(m["kind"], m["metadata"]["name"]) for m in rendered["defaults"]}
    expected = {
        ("Deployment", "mp-modelplane-operator"),
        ("ServiceAccount", "mp-modelplane-operator"),
        ("Deployment", "mp-modelplane-router"),
        ("Service", "mp-modelplane-router"),
        ("HorizontalPodAutoscaler", "mp-modelplane-router"),
        ("PodDisruptionBudget", "mp-modelplane-router"),
        ("ServiceAccount", "mp-modelplane-router"),
        ("Role", "mp-modelplane-router"),
        ("StatefulSet", "mp-modelplane-redis"),
        ("Service", "mp-modelplane-redis"),
        ("Secret", "mp-modelplane-redis"),
        ("Pod", "mp-modelplane-router-test-readyz"),
    }
    assert expected <= kinds
    statefulset = _named(rendered["defaults"], "StatefulSet", "mp-modelplane-redis")
    assert statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"] == {
        "requests": {"storage": "1Gi"}
    }


# --- values schema --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"router": {"port": "8080"}}, "/router/port"),
        ({"router": {"replicaCount": 1.5}}, "/router/replicaCount"),
        ({"redis": {"enabled": "yes"}}, "/redis/enabled"),
        ({"operator": {"extraArgs": "--verbose"}}, "/operator/extraArgs"),
        ({"networkPolicy": {"kubeAPIServer": {"cidrs": ["kubernetes.default"]}}}, "cidrs"),
        ({"router": {"service": {"type": "Ingress"}}}, "/router/service/type"),
        ({"serviceMonitor": {"interval": 30}}, "/serviceMonitor/interval"),
        ({"redis": {"external": {"url": "redis://user:pw@host:6379/0"}}}, "/redis/external/url"),
        ({"routers": {"replicaCount": 2}}, "routers"),
        ({"router": {"autoscaling": {"enabeld": True}}}, "enabeld"),
    ],
)
def test_values_schema_rejects_wrong_types_and_unknown_keys(
    helm: Helm, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(HelmFailed, match="schema") as failure:
        helm.template(values)
    assert complaint in str(failure.value)


def test_bundled_and_external_redis_together_are_refused(helm: Helm) -> None:
    with pytest.raises(HelmFailed, match="exclusive"):
        helm.template({"redis": {"external": {"url": "redis://elsewhere:6379/0"}}})


def test_every_value_in_values_yaml_is_documented_by_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "- ")) or ":" not in stripped:
            continue
        previous = lines[index - 1].strip() if index else ""
        indent = len(line) - len(line.lstrip())
        parent_is_free_form = _inside_documented_block(lines, index, indent)
        if not previous.startswith("#") and not parent_is_free_form:
            undocumented.append(f"{index + 1}: {stripped}")
    assert undocumented == []


def _inside_documented_block(lines: list[str], index: int, indent: int) -> bool:
    """Keys inside a value whose own comment covers it (resources, securityContext, selectors)."""
    for previous in reversed(lines[:index]):
        if not previous.strip():
            continue
        previous_indent = len(previous) - len(previous.lstrip())
        if previous_indent < indent:
            return previous.rstrip().endswith(":") and _is_leaf_block(previous)
    return False


# Values whose content is a Kubernetes object or a map: one comment documents the whole block.
_FREE_FORM_BLOCKS = re.compile(
    r"^\s*(resources|requests|limits|podSecurityContext|containerSecurityContext|capabilities|"
    r"seccompProfile|namespaceSelector|podSelector|labels):$"
)


def _is_leaf_block(line: str) -> bool:
    return bool(_FREE_FORM_BLOCKS.match(line))


# --- RBAC -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_no_role_grants_a_wildcard(rendered: dict[str, list[Manifest]], value_set: str) -> None:
    rules = list(_rules(rendered[value_set]))
    assert rules
    for role, rule in rules:
        for field in ("verbs", "resources", "apiGroups", "resourceNames", "nonResourceURLs"):
            assert not any("*" in entry for entry in rule.get(field, [])), (role, rule)


def test_router_only_reads_modelplane_kinds_and_secrets(
    rendered: dict[str, list[Manifest]],
) -> None:
    for value_set in ("defaults", "cluster-wide"):
        router_rules = [
            rule for role, rule in _rules(rendered[value_set]) if role.endswith("modelplane-router")
        ]
        granted = {
            (group, resource)
            for rule in router_rules
            for group in rule["apiGroups"]
            for resource in rule["resources"]
        }
        assert granted == {("modelplane.dev", r) for r in MODELPLANE_RESOURCES} | {("", "secrets")}
        for rule in router_rules:
            assert set(rule["verbs"]) == {"get", "list", "watch"}


def test_router_rbac_is_a_role_in_its_namespace_and_cluster_wide_by_value(
    rendered: dict[str, list[Manifest]],
) -> None:
    for value_set, namespace in (("defaults", NAMESPACE), ("no-redis", "team-a")):
        manifests = rendered[value_set]
        role = _named(manifests, "Role", "mp-modelplane-router")
        assert role["metadata"]["namespace"] == namespace
        binding = _named(manifests, "RoleBinding", "mp-modelplane-router")
        assert binding["metadata"]["namespace"] == namespace
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": "mp-modelplane-router", "namespace": NAMESPACE}
        ]
        router_args = _container(manifests, "Deployment", "mp-modelplane-router")["args"]
        assert f"--namespace={namespace}" in router_args
        assert "--all-namespaces" not in router_args
        cluster_roles = [m["metadata"]["name"] for m in _of_kind(manifests, "ClusterRole")]
        assert not [name for name in cluster_roles if "router" in name]

    cluster = rendered["cluster-wide"]
    _named(cluster, "ClusterRole", "mp-modelplane-router")
    binding = _named(cluster, "ClusterRoleBinding", "mp-modelplane-router")
    assert binding["subjects"][0]["namespace"] == NAMESPACE
    assert not [m for m in _of_kind(cluster, "Role") if "router" in m["metadata"]["name"]]
    cluster_args = _container(cluster, "Deployment", "mp-modelplane-router")["args"]
    assert "--all-namespaces" in cluster_args
    assert not [arg for arg in cluster_args if arg.startswith("--namespace")]


def test_router_flags_follow_the_values(rendered: dict[str, list[Manifest]]) -> None:
    default = _container(rendered["defaults"], "Deployment", "mp-modelplane-router")["args"]
    assert "--audit-log=-" in default
    assert "--log-level=warning" in default
    assert not [arg for arg in default if arg.startswith("--otlp-endpoint")]
    assert "--limits-fail-closed" not in default
    assert "--budgets-fail-open" not in default

    tuned = _container(rendered["monitoring"], "Deployment", "mp-modelplane-router")["args"]
    assert "--otlp-endpoint=http://otel-collector.monitoring:4318" in tuned
    assert "--trace-sample-ratio=0.25" in tuned
    assert "--audit-log=-" not in tuned
    assert "--limits-fail-closed" in tuned
    assert "--budgets-fail-open" in tuned
    operator = _container(rendered["monitoring"], "Deployment", "mp-modelplane-operator")["args"]
    assert "--verbose" in operator
    assert "--resync-seconds=15" in operator


def test_router_process_limits_follow_the_values(
    rendered: dict[str, list[Manifest]], helm: Helm
) -> None:
    def limits_of(manifests: list[Manifest]) -> list[str]:
        args = _container(manifests, "Deployment", "mp-modelplane-router")["args"]
        names = ("--max-in-flight", "--max-body-bytes", "--max-header-bytes", "--header-timeout")
        return [arg for arg in args if arg.startswith((*names, "--body-timeout"))]

    assert limits_of(rendered["defaults"]) == [
        "--max-in-flight=1024",
        "--max-body-bytes=16777216",
        "--max-header-bytes=65536",
        "--header-timeout=30",
        "--body-timeout=60",
    ]
    tuned = helm.template({"router": {"limits": {"bodyTimeoutSeconds": 5, "maxInFlight": 64}}})
    assert "--body-timeout=5" in limits_of(tuned)
    assert "--max-in-flight=64" in limits_of(tuned)
    with pytest.raises(HelmFailed, match="bodyTimeoutSeconds"):
        helm.template({"router": {"limits": {"bodyTimeoutSeconds": 0}}})


def test_operator_can_manage_exactly_the_children_it_builds(
    rendered: dict[str, list[Manifest]],
) -> None:
    def granted(manifests: list[Manifest]) -> dict[tuple[str, str], set[str]]:
        result: dict[tuple[str, str], set[str]] = {}
        for role, rule in _rules(manifests):
            if "operator" not in role:
                continue
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    result.setdefault((group, resource), set()).update(rule["verbs"])
        return result

    default = granted(rendered["defaults"])
    manage = {"get", "list", "watch", "create", "patch", "delete"}
    for child in [
        ("apps", "deployments"),
        ("", "services"),
        ("", "configmaps"),
        ("autoscaling", "horizontalpodautoscalers"),
        ("policy", "poddisruptionbudgets"),
    ]:
        assert default[child] == manage, child
    # The weights cache is never pruned, so no claim (Redis's included) may be deleted.
    assert default[("", "persistentvolumeclaims")] == manage - {"delete"}
    for kind in MODELPLANE_RESOURCES:
        assert default[("modelplane.dev", kind)] == {"get", "list", "watch", "patch"}
        assert default[("modelplane.dev", f"{kind}/status")] == {"get", "patch"}
    # blockOwnerDeletion on the children, where owner-reference permissions are enforced.
    assert default[("modelplane.dev", "modeldeployments/finalizers")] == {"update"}
    assert default[("", "secrets")] == {"get"}
    assert default[("", "events")] == {"create"}
    assert default[("apiextensions.k8s.io", "customresourcedefinitions")] == {
        "get",
        "list",
        "watch",
    }
    assert ("keda.sh", "scaledobjects") not in default
    assert ("", "namespaces") not in default

    cluster = granted(rendered["cluster-wide"])
    assert cluster[("keda.sh", "scaledobjects")] == manage
    assert cluster[("", "namespaces")] == {"get", "list", "watch"}
    operator = _container(rendered["cluster-wide"], "Deployment", "mp-modelplane-operator")
    assert "--all-namespaces" in operator["args"]
    assert "--settings=/etc/modelplane/operator-settings.yaml" in operator["args"]
    settings = _named(rendered["cluster-wide"], "ConfigMap", "mp-modelplane-operator")
    assert yaml.safe_load(settings["data"]["operator-settings.yaml"])["keda"] == {"enabled": True}
    default_operator = _container(rendered["defaults"], "Deployment", "mp-modelplane-operator")
    assert not [arg for arg in default_operator["args"] if arg.startswith("--settings")]


# --- CRDs -----------------------------------------------------------------------------------------


def test_chart_crds_are_identical_to_the_top_level_crds() -> None:
    source = sorted(p.name for p in (REPO_ROOT / "crds").glob("*.yaml"))
    copies = sorted(p.name for p in (CHART / "crds").glob("*.yaml"))
    assert source, "crds/ holds no CRDs"
    assert copies == source, "run tools/sync-chart-crds.sh (make chart-crds)"
    _, mismatch, errors = filecmp.cmpfiles(
        REPO_ROOT / "crds", CHART / "crds", source, shallow=False
    )
    assert mismatch == [], "run tools/sync-chart-crds.sh (make chart-crds)"
    assert errors == []


def test_chart_installs_the_three_modelplane_crds(rendered: dict[str, list[Manifest]]) -> None:
    crds = _of_kind(rendered["defaults"], "CustomResourceDefinition")
    assert {crd["metadata"]["name"] for crd in crds} == {
        f"{kind}.modelplane.dev" for kind in MODELPLANE_RESOURCES
    }


# --- pods -----------------------------------------------------------------------------------------


def _container(manifests: list[Manifest], kind: str, name: str) -> dict[str, Any]:
    spec = _named(manifests, kind, name)["spec"]["template"]["spec"]
    containers: list[dict[str, Any]] = spec["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_pod_runs_with_secure_defaults(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    pods = list(_pod_specs(rendered[value_set]))
    assert len(pods) >= 3
    for label, pod in pods:
        pod_context = pod["securityContext"]
        assert pod_context["runAsNonRoot"] is True, label
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, label
        temp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in pod["containers"] + pod.get("initContainers", []):
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, label
            assert context["readOnlyRootFilesystem"] is True, label
            assert context["allowPrivilegeEscalation"] is False, label
            assert context["capabilities"] == {"drop": ["ALL"]}, label
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, label
            resources = container["resources"]
            assert set(resources["requests"]) >= {"cpu", "memory"}, label
            assert set(resources["limits"]) >= {"cpu", "memory"}, label
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert len(tmp) == 1, f"{label}: no /tmp mount"
            assert tmp[0]["name"] in temp_volumes, f"{label}: /tmp is not an emptyDir"


def test_router_probes_healthz_for_liveness_and_readyz_for_readiness(
    rendered: dict[str, list[Manifest]],
) -> None:
    router = _container(rendered["defaults"], "Deployment", "mp-modelplane-router")
    assert router["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert router["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert router["ports"] == [
        {"name": "http", "containerPort": 8080, "protocol": "TCP"},
        {"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
    ]
    assert router["args"][:3] == ["router", "serve", "--kubernetes"]
    redis = _container(rendered["defaults"], "StatefulSet", "mp-modelplane-redis")
    assert "livenessProbe" in redis
    assert "readinessProbe" in redis
    operator = _container(rendered["defaults"], "Deployment", "mp-modelplane-operator")
    assert operator["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_router_pods_get_time_for_the_readiness_delay_and_the_drain(
    rendered: dict[str, list[Manifest]], helm: Helm
) -> None:
    def shutdown_of(manifests: list[Manifest]) -> tuple[list[str], int]:
        deployment = _named(manifests, "Deployment", "mp-modelplane-router")
        args = _container(manifests, "Deployment", "mp-modelplane-router")["args"]
        flags = [arg for arg in args if arg.startswith("--shutdown-")]
        return flags, deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]

    assert shutdown_of(rendered["defaults"]) == (
        ["--shutdown-delay=5", "--shutdown-timeout=60"],
        70,
    )
    tuned = helm.template({"router": {"shutdown": {"delaySeconds": 2.5, "drainSeconds": 600}}})
    assert shutdown_of(tuned) == (["--shutdown-delay=2.5", "--shutdown-timeout=600"], 608)


def test_helm_test_pod_calls_the_router_readyz_through_its_service(
    rendered: dict[str, list[Manifest]],
) -> None:
    pod = _named(rendered["defaults"], "Pod", "mp-modelplane-router-test-readyz")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    assert pod["spec"]["containers"][0]["command"][-1] == (
        f"http://mp-modelplane-router.{NAMESPACE}.svc:80/readyz"
    )


def test_router_autoscales_by_default_and_keeps_fixed_replicas_otherwise(
    rendered: dict[str, list[Manifest]],
) -> None:
    default = rendered["defaults"]
    assert "replicas" not in _named(default, "Deployment", "mp-modelplane-router")["spec"]
    hpa = _named(default, "HorizontalPodAutoscaler", "mp-modelplane-router")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "mp-modelplane-router"
    assert (
        _named(default, "PodDisruptionBudget", "mp-modelplane-router")["spec"]["maxUnavailable"]
        == 1
    )

    fixed = rendered["autoscaling-off"]
    assert _named(fixed, "Deployment", "mp-modelplane-router")["spec"]["replicas"] == 3
    assert not _of_kind(fixed, "HorizontalPodAutoscaler")
    pdb = _named(fixed, "PodDisruptionBudget", "mp-modelplane-router")["spec"]
    assert pdb["minAvailable"] == 2
    assert "maxUnavailable" not in pdb


# --- Redis wiring ---------------------------------------------------------------------------------


def _router_env(manifests: list[Manifest]) -> dict[str, dict[str, Any]]:
    env = _container(manifests, "Deployment", "mp-modelplane-router")["env"]
    return {entry["name"]: entry for entry in env}


def test_router_reads_the_bundled_redis_password_from_its_secret(
    rendered: dict[str, list[Manifest]],
) -> None:
    env = _router_env(rendered["defaults"])
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "mp-modelplane-redis",
        "key": "redis-password",
    }
    assert env["MODELPLANE_REDIS_URL"]["value"] == (
        f"redis://:$(REDIS_PASSWORD)@mp-modelplane-redis.{NAMESPACE}.svc:6379/0"
    )
    secret = _named(rendered["defaults"], "Secret", "mp-modelplane-redis")
    assert len(secret["data"]["redis-password"]) > 0


def test_external_redis_takes_its_password_from_the_named_secret(
    rendered: dict[str, list[Manifest]],
) -> None:
    manifests = rendered["external-redis-existing-secret"]
    env = _router_env(manifests)
    assert env["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "cache",
        "key": "redis-password",
    }
    assert env["MODELPLANE_REDIS_URL"]["value"] == (
        "rediss://:$(REDIS_PASSWORD)@redis.example.internal:6380/2"
    )
    assert not _of_kind(manifests, "StatefulSet", "Secret")

    with_password = rendered["external-redis-password"]
    _named(with_password, "Secret", "mp-modelplane-redis-external")
    assert _router_env(with_password)["REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == (
        "mp-modelplane-redis-external"
    )


def test_without_any_redis_the_router_gets_no_redis_url(
    rendered: dict[str, list[Manifest]],
) -> None:
    env = _router_env(rendered["no-redis"])
    assert "MODELPLANE_REDIS_URL" not in env
    assert "REDIS_PASSWORD" not in env


# --- NetworkPolicies ------------------------------------------------------------------------------


def _policies(manifests: list[Manifest]) -> dict[str, Manifest]:
    return {
        f"{m['metadata']['namespace']}/{m['metadata']['name']}": m
        for m in _of_kind(manifests, "NetworkPolicy")
    }


def _egress_cidrs(policy: Manifest) -> set[str]:
    return {
        peer["ipBlock"]["cidr"]
        for rule in policy["spec"].get("egress", [])
        for peer in rule.get("to", [])
        if "ipBlock" in peer
    }


def _egress_ports(policy: Manifest) -> set[int]:
    return {
        port["port"]
        for rule in policy["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule.get("to", []))
        for port in rule.get("ports", [])
    }


def test_network_policies_are_absent_when_disabled(rendered: dict[str, list[Manifest]]) -> None:
    assert _policies(rendered["network-policy-off"]) == {}


def test_model_pods_accept_only_the_router_and_reach_only_dns_by_default(
    rendered: dict[str, list[Manifest]],
) -> None:
    models = _policies(rendered["defaults"])[f"{NAMESPACE}/mp-modelplane-models"]
    spec = models["spec"]
    assert spec["podSelector"] == {
        "matchExpressions": [{"key": "modelplane.dev/model-deployment", "operator": "Exists"}]
    }
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    (ingress,) = spec["ingress"]
    (peer,) = ingress["from"]
    assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "router"
    assert peer["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": NAMESPACE}
    (dns,) = spec["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert _egress_cidrs(models) == set()


def test_model_pods_may_download_weights_and_be_scraped_only_when_enabled(
    rendered: dict[str, list[Manifest]],
) -> None:
    models = _policies(rendered["network-policy-everything"])[f"{NAMESPACE}/mp-modelplane-models"]
    assert _egress_cidrs(models) == {"10.20.0.0/16"}
    assert _egress_ports(models) == {443}
    sources = models["spec"]["ingress"][0]["from"]
    assert {
        peer["podSelector"]["matchLabels"].get("app.kubernetes.io/component") for peer in sources
    } == {
        "router",
        None,
    }


def test_only_the_router_may_reach_external_apis(rendered: dict[str, list[Manifest]]) -> None:
    policies = _policies(rendered["network-policy-everything"])
    router = policies[f"{NAMESPACE}/mp-modelplane-router"]
    external = [
        rule
        for rule in router["spec"]["egress"]
        if any(peer.get("ipBlock", {}).get("cidr") == "0.0.0.0/0" for peer in rule.get("to", []))
    ]
    assert len(external) == 1
    assert external[0]["to"][0]["ipBlock"]["except"] == [
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
    ]
    assert {p["port"] for p in external[0]["ports"]} == {443}
    for name, policy in policies.items():
        if name.endswith(("-router", "-models")):
            continue
        # The operator reaches the API server only; Redis reaches nothing.
        assert _egress_cidrs(policy) <= {"10.96.0.1/32"}, name


def test_redis_accepts_only_the_router_and_has_no_egress(
    rendered: dict[str, list[Manifest]],
) -> None:
    redis = _policies(rendered["defaults"])[f"{NAMESPACE}/mp-modelplane-redis"]["spec"]
    assert "Egress" in redis["policyTypes"]
    assert "egress" not in redis
    (ingress,) = redis["ingress"]
    assert ingress["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == (
        "router"
    )


def test_model_policies_cover_every_listed_namespace(rendered: dict[str, list[Manifest]]) -> None:
    policies = _policies(rendered["cluster-wide"])
    assert {"team-a/mp-modelplane-models", "team-b/mp-modelplane-models"} <= set(policies)
    router_egress = policies[f"{NAMESPACE}/mp-modelplane-router"]["spec"]["egress"]
    model_namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for rule in router_egress
        for peer in rule.get("to", [])
        if "modelplane.dev/model-deployment" in json.dumps(peer)
    }
    assert model_namespaces == {"team-a", "team-b"}


def test_router_may_reach_an_external_redis_on_its_port(
    rendered: dict[str, list[Manifest]],
) -> None:
    router = _policies(rendered["external-redis-existing-secret"])[
        f"{NAMESPACE}/mp-modelplane-router"
    ]
    ports = [rule["ports"] for rule in router["spec"]["egress"] if "to" not in rule]
    assert ports == [[{"protocol": "TCP", "port": 6380}]]


# --- monitoring -----------------------------------------------------------------------------------


def test_service_monitor_scrapes_the_router_metrics_endpoint(
    rendered: dict[str, list[Manifest]],
) -> None:
    monitor = _named(rendered["monitoring"], "ServiceMonitor", "mp-modelplane-router")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert not _of_kind(rendered["defaults"], "ServiceMonitor")


def test_router_metrics_have_their_own_port_that_only_prometheus_may_reach(
    rendered: dict[str, list[Manifest]], helm: Helm
) -> None:
    args = _container(rendered["defaults"], "Deployment", "mp-modelplane-router")["args"]
    assert "--metrics-port=9090" in args
    service = _named(rendered["defaults"], "Service", "mp-modelplane-router")
    assert {"name": "metrics", "port": 9090, "targetPort": "metrics", "protocol": "TCP"} in (
        service["spec"]["ports"]
    )
    monitor = _named(rendered["monitoring"], "ServiceMonitor", "mp-modelplane-router")
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"

    def ingress_by_port(manifests: list[Manifest]) -> dict[int, list[Any]]:
        router = _policies(manifests)[f"{NAMESPACE}/mp-modelplane-router"]["spec"]
        return {
            port["port"]: rule.get("from", ["anyone"])
            for rule in router["ingress"]
            for port in rule["ports"]
        }

    # Without Prometheus allowed, no one may scrape; the API port stays as ingressFrom says.
    assert ingress_by_port(rendered["defaults"]) == {8080: ["anyone"]}
    everything = ingress_by_port(rendered["network-policy-everything"])
    (scraper,) = everything[9090]
    assert scraper["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "prometheus"}
    assert [peer["podSelector"]["matchLabels"] for peer in everything[8080]] == [
        {"app": "frontend"}
    ]

    shared = helm.template({"router": {"metricsPort": 0}, "serviceMonitor": {"enabled": True}})
    args = _container(shared, "Deployment", "mp-modelplane-router")["args"]
    assert not [arg for arg in args if arg.startswith("--metrics-port")]
    assert [
        p["name"] for p in _named(shared, "Service", "mp-modelplane-router")["spec"]["ports"]
    ] == ["http"]
    assert (
        _named(shared, "ServiceMonitor", "mp-modelplane-router")["spec"]["endpoints"][0]["port"]
        == "http"
    )


def test_grafana_dashboard_is_valid_json_with_the_promised_panels(
    rendered: dict[str, list[Manifest]],
) -> None:
    configmap = _named(rendered["monitoring"], "ConfigMap", "mp-modelplane-dashboard")
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(configmap["data"]["modelplane.json"])
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("requests", "tokens", "cost", "spillover", "blocked egress", "latency"):
        assert topic in titles, topic
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]


def test_notes_tell_the_user_how_to_reach_the_router(helm: Helm) -> None:
    output = helm.run(
        "install", "mp", str(CHART), "--namespace", NAMESPACE, "--dry-run=client",
        "--values", helm.values_file({}),
    )  # fmt: skip
    notes = output.split("NOTES:", 1)[1]
    assert f"kubectl port-forward svc/mp-modelplane-router -n {NAMESPACE}" in notes
    assert "helm test mp" in notes
    assert "kubectl apply --server-side -f crds/" in notes


# What the router's Prometheus names append to a metric's name: unit, then type suffixes.
_PROMETHEUS_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_seconds", "_USD")


def test_grafana_dashboard_queries_only_metrics_the_router_exports() -> None:
    exported = {name.replace(".", "_") for name in METRIC_NAMES}
    assert exported
    dashboard = json.loads((CHART / "files" / "grafana-dashboard.json").read_text())
    queried: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            without_labels = re.sub(r"by \([^)]*\)", "", target["expr"])
            queried.update(re.findall(r"\b(?:gen_ai|modelplane)_[A-Za-z_]+", without_labels))
    assert queried
    for name in queried:
        base = name
        for suffix in _PROMETHEUS_SUFFIXES:
            base = base.removesuffix(suffix)
        assert base in exported, name


# --- the chart against the real command line ------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_container_arguments_are_accepted_by_the_modelplane_command(
    rendered: dict[str, list[Manifest]], value_set: str
) -> None:
    parser = build_parser()
    for deployment in ("mp-modelplane-operator", "mp-modelplane-router"):
        name = (
            deployment
            if value_set != "pinned-digests-and-pull-secrets"
            else deployment.replace("mp-modelplane", "plane")
        )
        args = _container(rendered[value_set], "Deployment", name)["args"]
        try:
            parsed = parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"{value_set}: `modelplane {' '.join(args)}` is refused by the CLI")
        assert callable(parsed.run)


def _schema_paths(schema: dict[str, Any], definitions: dict[str, Any], prefix: str) -> set[str]:
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[1]]
    paths = set()
    for key, child in schema.get("properties", {}).items():
        paths.add(f"{prefix}{key}")
        if child.get("additionalProperties") is False or "$ref" in child:
            paths |= _schema_paths(child, definitions, f"{prefix}{key}.")
    return paths


def _value_paths(values: dict[str, Any], prefix: str) -> set[str]:
    paths = set()
    for key, value in values.items():
        paths.add(f"{prefix}{key}")
        if isinstance(value, dict):
            paths |= _value_paths(value, f"{prefix}{key}.")
    return paths


def test_every_schema_property_is_a_value_in_values_yaml() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    in_schema = _schema_paths(schema, schema["definitions"], "")
    in_values = _value_paths(values, "")
    # `global` is Helm's; `claims` an optional field of Kubernetes' ResourceRequirements.
    missing = {path for path in in_schema - in_values if path != "global"}
    assert {path for path in missing if not path.endswith(".claims")} == set()


def test_model_pods_are_reachable_on_every_port_the_operators_services_send_to(
    rendered: dict[str, list[Manifest]],
) -> None:
    # A NetworkPolicy matches the pod's port, not the Service's: Triton's Service sends its
    # ports 8000 and 8002 to the pod's 9000. Derived from the operator's own builders.
    target_ports: set[int] = set()
    for engine in ("vllm", "triton"):
        body = model_deployment("m", NAMESPACE, {"engine": {"name": engine}})
        body["metadata"].update(uid="u", generation=1)
        md = ModelDeployment.from_body(body)
        (service,) = [c for c in build_children(md, OperatorSettings()) if c["kind"] == "Service"]
        target_ports |= {
            port["targetPort"]
            for port in service["spec"]["ports"]
            if port["name"] in ("http", "metrics")
        }
    policies = _policies(rendered["defaults"])
    models = policies[f"{NAMESPACE}/mp-modelplane-models"]
    (ingress,) = models["spec"]["ingress"]
    assert target_ports <= {port["port"] for port in ingress["ports"]}
    router_egress = {
        port["port"]
        for rule in policies[f"{NAMESPACE}/mp-modelplane-router"]["spec"]["egress"]
        for port in rule.get("ports", [])
    }
    assert target_ports <= router_egress


def test_extra_router_egress_reaches_the_policy(rendered: dict[str, list[Manifest]]) -> None:
    router = _policies(rendered["network-policy-everything"])[f"{NAMESPACE}/mp-modelplane-router"]

    assert OTLP_COLLECTOR_EGRESS in router["spec"]["egress"]


def test_router_pods_roll_when_the_redis_password_changes(helm: Helm) -> None:
    def annotation(password: str) -> str:
        manifests = helm.template({"redis": {"auth": {"password": password}}})
        pod = _named(manifests, "Deployment", "mp-modelplane-router")["spec"]["template"]
        value: str = pod["metadata"]["annotations"]["checksum/redis-secret"]
        return value

    assert annotation("firstPassword1") != annotation("secondPassword2")


def test_router_reads_the_namespace_the_operator_watches_unless_told_otherwise(
    helm: Helm,
) -> None:
    manifests = helm.template({"operator": {"watchNamespace": "models"}})

    router_args = _container(manifests, "Deployment", "mp-modelplane-router")["args"]
    assert "--namespace=models" in router_args


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"router": {"port": 9090, "metricsPort": 9090}}, "router.metricsPort must differ"),
        (
            {"router": {"autoscaling": {"enabled": True, "minReplicas": 5, "maxReplicas": 2}}},
            "minReplicas must not exceed",
        ),
        ({"operator": {"watchAllNamespaces": True}}, "networkPolicy.models.namespaces"),
    ],
)
def test_values_that_could_only_fail_in_the_cluster_are_refused_at_render_time(
    helm: Helm, values: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(HelmFailed, match=complaint):
        helm.template(values)
