"""The parts of a model server pod that do not depend on the engine.

Where weights come from (`hf://` is fetched by the engine itself into the cache, `s3://` and
`gs://` by an init container, `pvc://` is mounted read-only), the cache volume, placement on GPU
nodes, and the security context.

Both engines run as a non-root uid with no capabilities: the vLLM and Triton images run as any
uid once HOME, HF_HOME and the vLLM cache point at writable volumes, USER and LOGNAME name a
user the images' /etc/passwd does not have (torch asks for it on import), and fsGroup makes
the cache claim writable. The cost: an image that installs packages or writes under /root at
start-up fails, and the root filesystem stays writable because torch and Triton write JIT
kernels and compile caches in places not all redirectable to a volume.
"""

from __future__ import annotations

import hashlib
from typing import Any

from modelplane.operator.builders.common import cache_claim_name
from modelplane.operator.settings import OperatorSettings

from modelplane.api.model_deployment import ModelDeployment, uri_scheme

CACHE_DIR = "/cache"
HF_HOME = f"{CACHE_DIR}/huggingface"
DOWNLOAD_DIR = f"{CACHE_DIR}/downloads"
CLAIMS_DIR = "/mnt/claims"
TMP_DIR = "/tmp"  # an emptyDir volume of the pod's own

CACHE_VOLUME = "cache"
TMP_VOLUME = "tmp"
SHM_VOLUME = "dshm"

_RCLONE_BACKENDS = {"s3": "s3", "gs": "gcs"}


def local_path(uri: str) -> str:
    """Where the engine finds the weights a URI names, inside the pod.

    `hf://org/name` stays a Hugging Face repository id (the engine downloads it into HF_HOME on
    the cache volume); downloaded and mounted sources become local directories.
    """
    scheme, rest = uri_scheme(uri), uri.split("://", 1)[1]
    if scheme == "hf":
        return rest
    if scheme == "pvc":
        claim, _, path = rest.partition("/")
        return f"{CLAIMS_DIR}/{claim}/{path}".rstrip("/")
    # Keyed by the URI so a changed URI never mixes old and new files in one folder.
    digest = hashlib.sha256(uri.encode()).hexdigest()[:16]
    return f"{DOWNLOAD_DIR}/{digest}"


def _sources(md: ModelDeployment) -> list[tuple[str, str]]:
    """(container-name suffix, uri) for the base model and every adapter, in a stable order."""
    model = md.spec.model
    return [("model", model.uri)] + [
        (f"adapter-{index}", adapter.uri) for index, adapter in enumerate(model.adapters)
    ]


def _claims(md: ModelDeployment) -> list[str]:
    claims = {
        uri.split("://", 1)[1].partition("/")[0]
        for _, uri in _sources(md)
        if uri_scheme(uri) == "pvc"
    }
    return sorted(claims)


def engine_env(md: ModelDeployment, generated: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The generated variables, with any the user set under engine.env taking precedence."""
    user = [variable.to_wire() for variable in md.spec.engine.env]
    overridden = {variable["name"] for variable in user}
    return [variable for variable in generated if variable["name"] not in overridden] + user


def env_from(md: ModelDeployment) -> list[dict[str, Any]]:
    return [source.to_wire() for source in md.spec.engine.env_from]


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        # The engines write JIT and compile caches in places not all redirectable to volumes.
        "readOnlyRootFilesystem": False,
    }


def pod_security_context(settings: OperatorSettings) -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": settings.run_as_user,
        "runAsGroup": settings.run_as_user,
        # Makes the cache volume writable for the non-root engine.
        "fsGroup": settings.run_as_user,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def download_init_containers(
    md: ModelDeployment, settings: OperatorSettings
) -> list[dict[str, Any]]:
    """One rclone copy per `s3://` or `gs://` source into the cache, credentials from the env.

    rclone's `env_auth` reads the usual AWS variables or Google application credentials (or the
    node's workload identity), passed through from engine.env and engine.envFrom. A re-run after
    a restart copies only what changed.
    """
    containers = []
    for suffix, uri in _sources(md):
        scheme = uri_scheme(uri)
        if scheme not in _RCLONE_BACKENDS:
            continue
        remote = f":{_RCLONE_BACKENDS[scheme]},env_auth=true:{uri.split('://', 1)[1]}"
        container: dict[str, Any] = {
            "name": f"download-{suffix}",
            "image": settings.downloader_image,
            "args": ["copy", "--transfers=8", "--checkers=16", remote, local_path(uri)],
            "env": engine_env(md, [{"name": "HOME", "value": TMP_DIR}]),
            "volumeMounts": [
                {"name": CACHE_VOLUME, "mountPath": CACHE_DIR},
                {"name": TMP_VOLUME, "mountPath": TMP_DIR},
            ],
            "securityContext": container_security_context(),
        }
        if md.spec.engine.env_from:
            container["envFrom"] = env_from(md)
        containers.append(container)
    return containers


def volumes(md: ModelDeployment, settings: OperatorSettings, shared_memory: bool) -> list[Any]:
    cache: dict[str, Any]
    if md.spec.cache is not None:
        cache = {"name": CACHE_VOLUME, "persistentVolumeClaim": {"claimName": cache_claim_name(md)}}
    else:
        cache = {"name": CACHE_VOLUME, "emptyDir": {}}
    result: list[Any] = [cache, {"name": TMP_VOLUME, "emptyDir": {}}]
    if shared_memory:
        shm: dict[str, Any] = {"medium": "Memory"}
        if settings.shm_size_limit is not None:
            shm["sizeLimit"] = settings.shm_size_limit
        result.append({"name": SHM_VOLUME, "emptyDir": shm})
    for index, claim in enumerate(_claims(md)):
        result.append(
            {
                "name": f"claim-{index}",
                "persistentVolumeClaim": {"claimName": claim, "readOnly": True},
            }
        )
    return result


def volume_mounts(md: ModelDeployment, shared_memory: bool) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = [
        {"name": CACHE_VOLUME, "mountPath": CACHE_DIR},
        {"name": TMP_VOLUME, "mountPath": TMP_DIR},
    ]
    if shared_memory:
        result.append({"name": SHM_VOLUME, "mountPath": "/dev/shm"})
    for index, claim in enumerate(_claims(md)):
        result.append(
            {"name": f"claim-{index}", "mountPath": f"{CLAIMS_DIR}/{claim}", "readOnly": True}
        )
    return result


def container_resources(md: ModelDeployment, settings: OperatorSettings) -> dict[str, Any]:
    resources = md.spec.resources
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}
    if resources.cpu is not None:
        # No CPU limit: throttling the tokenizer and scheduler threads costs latency, not safety.
        requests["cpu"] = resources.cpu
    if resources.memory is not None:
        requests["memory"] = resources.memory
        limits["memory"] = resources.memory
    if resources.gpus > 0:
        # Extended resources need equal request and limit; the API wants quantities as strings.
        requests[settings.gpu_resource_name] = str(resources.gpus)
        limits[settings.gpu_resource_name] = str(resources.gpus)
    result: dict[str, Any] = {}
    if requests:
        result["requests"] = requests
    if limits:
        result["limits"] = limits
    return result


def node_selector(md: ModelDeployment, settings: OperatorSettings) -> dict[str, str]:
    selector: dict[str, str] = {}
    gpu_type = md.spec.resources.gpu_type
    if gpu_type is not None and md.spec.resources.gpus > 0:
        selector.update(settings.gpu_types.get(gpu_type, {settings.gpu_product_label: gpu_type}))
    selector.update(md.spec.node_selector)
    return selector


def tolerations(md: ModelDeployment, settings: OperatorSettings) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    if md.spec.resources.gpus > 0:
        result.append(
            {"key": settings.gpu_resource_name, "operator": "Exists", "effect": "NoSchedule"}
        )
    result += [toleration.to_wire() for toleration in md.spec.tolerations]
    return result
