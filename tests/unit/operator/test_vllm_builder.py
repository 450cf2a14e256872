"""The vLLM model server: arguments, GPUs, placement, shared memory, probes, cache and downloads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from modelplane.operator.builders import build_children
from modelplane.operator.settings import OperatorSettings

from modelplane.api import ModelDeployment

MakeMd = Callable[..., ModelDeployment]


def only(children: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    matches = [child for child in children if child["kind"] == kind]
    assert len(matches) == 1, f"expected one {kind}, got {len(matches)}"
    return matches[0]


def pod_spec(children: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = only(children, "Deployment")["spec"]["template"]["spec"]
    return spec


def engine(children: list[dict[str, Any]]) -> dict[str, Any]:
    container: dict[str, Any] = pod_spec(children)["containers"][0]
    return container


def env(container: dict[str, Any]) -> dict[str, Any]:
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container["env"]}


def mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {mount["mountPath"]: mount for mount in container["volumeMounts"]}


def volumes(children: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {volume["name"]: volume for volume in pod_spec(children)["volumes"]}


def test_one_gpu_vllm_runs_the_pinned_image_with_exactly_the_expected_arguments(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    container = engine(build_children(make_md(), settings))
    assert container["image"] == "vllm/vllm-openai:v0.12.0"
    assert container["command"] == ["python3", "-m", "vllm.entrypoints.openai.api_server"]
    assert container["args"] == [
        "--model",
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "--served-model-name",
        "llama",
        "--tensor-parallel-size",
        "1",
        "--max-model-len",
        "8192",
        "--port",
        "8000",
    ]
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_served_name_image_and_extra_args_come_from_the_spec(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(
        model={"servedName": "llama-3-8b-instruct"},
        engine={"name": "vllm", "image": "registry.local/vllm:patched", "args": ["--seed", "7"]},
    )
    container = engine(build_children(md, settings))
    assert container["image"] == "registry.local/vllm:patched"
    args = container["args"]
    assert args[args.index("--served-model-name") + 1] == "llama-3-8b-instruct"
    assert args[-2:] == ["--seed", "7"]


def test_gpus_are_string_quantities_with_a_gpu_toleration(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(make_md(resources={"gpus": 1, "cpu": 4, "memory": "32Gi"}), settings)
    assert engine(children)["resources"] == {
        "requests": {"cpu": "4", "memory": "32Gi", "nvidia.com/gpu": "1"},
        "limits": {"memory": "32Gi", "nvidia.com/gpu": "1"},
    }
    assert pod_spec(children)["tolerations"] == [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]


def test_no_gpu_means_no_gpu_limit_and_no_gpu_toleration(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(make_md(resources={"gpus": 0, "cpu": 2}), settings)
    assert engine(children)["resources"] == {"requests": {"cpu": "2"}}
    assert "tolerations" not in pod_spec(children)


def test_tensor_parallel_uses_every_gpu_and_a_memory_backed_dev_shm(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(resources={"gpus": 4, "parallelism": {"tensor": 4}})
    children = build_children(md, settings)
    container = engine(children)
    args = container["args"]
    assert args[args.index("--tensor-parallel-size") + 1] == "4"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert mounts(container)["/dev/shm"]["name"] == "dshm"
    assert volumes(children)["dshm"]["emptyDir"] == {"medium": "Memory"}


def test_single_gpu_has_no_dev_shm_volume(make_md: MakeMd, settings: OperatorSettings) -> None:
    children = build_children(make_md(), settings)
    assert "/dev/shm" not in mounts(engine(children))
    assert "dshm" not in volumes(children)


def test_shared_memory_size_limit_comes_from_the_settings(make_md: MakeMd) -> None:
    md = make_md(resources={"gpus": 2, "parallelism": {"tensor": 2}})
    children = build_children(md, OperatorSettings(shm_size_limit="16Gi"))
    assert volumes(children)["dshm"]["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}


def test_gpu_type_alias_becomes_the_configured_node_selector(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(resources={"gpus": 1, "gpuType": "a100-80gb"}, nodeSelector={"pool": "gpu"})
    assert pod_spec(build_children(md, settings))["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB",
        "pool": "gpu",
    }


def test_unknown_gpu_type_is_matched_verbatim_on_the_product_label(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(resources={"gpus": 1, "gpuType": "NVIDIA-H200"})
    assert pod_spec(build_children(md, settings))["nodeSelector"] == {
        "nvidia.com/gpu.product": "NVIDIA-H200"
    }


def test_tolerations_and_priority_class_are_passed_through(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(
        tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"}
        ],
        priorityClassName="inference-high",
    )
    spec = pod_spec(build_children(md, settings))
    assert spec["tolerations"][1] == {
        "key": "dedicated",
        "operator": "Equal",
        "value": "ml",
        "effect": "NoSchedule",
    }
    assert spec["priorityClassName"] == "inference-high"


def test_startup_probe_allows_at_least_thirty_minutes_then_health_checks_take_over(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    container = engine(build_children(make_md(), settings))
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/health", "port": "http"}
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 30 * 60
    assert container["readinessProbe"]["httpGet"]["path"] == "/health"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"


def test_cache_claim_is_mounted_and_hf_home_points_into_it(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(
        make_md(cache={"size": "100Gi", "storageClassName": "fast"}), settings
    )
    claim = only(children, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == "llama-cache"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "100Gi"}},
        "storageClassName": "fast",
    }
    assert volumes(children)["cache"]["persistentVolumeClaim"] == {"claimName": "llama-cache"}
    container = engine(children)
    cache_mount = mounts(container)["/cache"]
    assert cache_mount["name"] == "cache"
    assert env(container)["HF_HOME"].startswith("/cache/")


def test_without_cache_weights_go_to_an_empty_dir_and_no_claim_is_made(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(make_md(), settings)
    assert [c for c in children if c["kind"] == "PersistentVolumeClaim"] == []
    assert volumes(children)["cache"] == {"name": "cache", "emptyDir": {}}
    assert env(engine(children))["HF_HOME"].startswith("/cache/")


def test_s3_model_is_downloaded_into_the_cache_before_vllm_starts(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(
        model={"uri": "s3://acme-models/llama-3-70b"},
        engine={"name": "vllm", "envFrom": [{"secretRef": {"name": "bucket-credentials"}}]},
        cache={"size": "200Gi"},
    )
    children = build_children(md, settings)
    [download] = pod_spec(children)["initContainers"]
    assert download["image"] == settings.downloader_image
    assert download["args"][:3] == ["copy", "--transfers=8", "--checkers=16"]
    assert download["args"][3] == ":s3,env_auth=true:acme-models/llama-3-70b"
    target = download["args"][4]
    assert target.startswith("/cache/")
    assert mounts(download)["/cache"]["name"] == "cache"
    assert download["envFrom"] == [{"secretRef": {"name": "bucket-credentials"}}]
    args = engine(children)["args"]
    assert args[args.index("--model") + 1] == target


def test_gs_model_is_downloaded_with_the_gcs_backend(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(make_md(model={"uri": "gs://bucket/llama"}), settings)
    [download] = pod_spec(children)["initContainers"]
    assert download["args"][3] == ":gcs,env_auth=true:bucket/llama"


def test_changing_the_uri_downloads_into_a_fresh_folder(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    first = pod_spec(build_children(make_md(model={"uri": "s3://b/v1"}), settings))
    second = pod_spec(build_children(make_md(model={"uri": "s3://b/v2"}), settings))
    assert first["initContainers"][0]["args"][4] != second["initContainers"][0]["args"][4]


def test_hf_model_needs_no_download_step(make_md: MakeMd, settings: OperatorSettings) -> None:
    assert "initContainers" not in pod_spec(build_children(make_md(), settings))


def test_pvc_model_mounts_the_claim_read_only_and_serves_from_it(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(make_md(model={"uri": "pvc://model-store/llama/8b"}), settings)
    [claim_volume] = [v for v in volumes(children).values() if v["name"].startswith("claim-")]
    assert claim_volume["persistentVolumeClaim"] == {"claimName": "model-store", "readOnly": True}
    container = engine(children)
    mount = mounts(container)["/mnt/claims/model-store"]
    assert mount == {
        "name": claim_volume["name"],
        "mountPath": mount["mountPath"],
        "readOnly": True,
    }
    args = container["args"]
    assert args[args.index("--model") + 1] == "/mnt/claims/model-store/llama/8b"


def test_adapters_enable_lora_with_one_module_per_adapter(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(
        model={
            "adapters": [
                {"name": "sql", "uri": "hf://acme/llama-3-sql-lora"},
                {"name": "legal", "uri": "s3://acme-adapters/legal"},
                {"name": "support", "uri": "pvc://adapters/support"},
            ]
        }
    )
    children = build_children(md, settings)
    args = engine(children)["args"]
    start = args.index("--enable-lora")
    # Every adapter may be in one batch, so no adapter waits for another to be swapped out.
    assert args[start + 1 : start + 4] == ["--max-loras", "3", "--lora-modules"]
    modules = dict(item.split("=", 1) for item in args[start + 4 : start + 7])
    assert modules["sql"] == "acme/llama-3-sql-lora"
    assert modules["support"] == "/mnt/claims/adapters/support"
    [download] = pod_spec(children)["initContainers"]
    assert download["name"] == "download-adapter-1"
    assert download["args"][3:] == [":s3,env_auth=true:acme-adapters/legal", modules["legal"]]


def test_without_adapters_lora_stays_off(make_md: MakeMd, settings: OperatorSettings) -> None:
    args = engine(build_children(make_md(), settings))["args"]
    assert "--enable-lora" not in args
    assert "--lora-modules" not in args


def test_env_from_passes_through_and_user_env_overrides_generated_env(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    md = make_md(
        engine={
            "name": "vllm",
            "envFrom": [{"secretRef": {"name": "hf-token"}}],
            "env": [
                {"name": "HF_HOME", "value": "/cache/elsewhere"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
            ],
        }
    )
    container = engine(build_children(md, settings))
    assert container["envFrom"] == [{"secretRef": {"name": "hf-token"}}]
    variables = env(container)
    assert variables["HF_HOME"] == "/cache/elsewhere"
    assert [item["name"] for item in container["env"]].count("HF_HOME") == 1
    assert variables["TOKEN"] == {"secretKeyRef": {"name": "s", "key": "k"}}


def test_pods_run_as_non_root_without_privileges_or_service_links(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    children = build_children(make_md(model={"uri": "s3://b/m"}), settings)
    spec = pod_spec(children)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 1000
    assert spec["securityContext"]["fsGroup"] == 1000
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["enableServiceLinks"] is False
    assert spec["automountServiceAccountToken"] is False
    for container in spec["containers"] + spec["initContainers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_service_exposes_the_openai_port_on_8000(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    service = only(build_children(make_md(), settings), "Service")
    assert service["metadata"]["name"] == "llama"
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 8000, "targetPort": 8000, "protocol": "TCP"}
    ]
    assert service["spec"]["selector"] == {
        "modelplane.dev/model-deployment": "llama",
        "app.kubernetes.io/component": "model-server",
    }


def test_deployment_runs_the_requested_replicas_and_never_drops_capacity_in_a_rollout(
    make_md: MakeMd, settings: OperatorSettings
) -> None:
    deployment = only(build_children(make_md(replicas=3), settings), "Deployment")
    assert deployment["spec"]["replicas"] == 3
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}
    assert deployment["spec"]["progressDeadlineSeconds"] > settings.startup_budget_seconds
    assert deployment["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == "8000"


@pytest.mark.parametrize("example", ["llama-3-8b-vllm.yaml", "llama-3-8b-triton.yaml"])
def test_engine_is_told_its_user_name_because_its_uid_has_no_passwd_entry(
    example_md: Callable[[str], ModelDeployment], settings: OperatorSettings, example: str
) -> None:
    children = build_children(example_md(example), settings)
    variables = env(engine(children))

    assert pod_spec(children)["securityContext"]["runAsUser"] != 0
    # torch calls getpass.getuser() on import; it reads LOGNAME, then USER, before /etc/passwd.
    assert variables["LOGNAME"]
    assert variables["USER"] == variables["LOGNAME"]
