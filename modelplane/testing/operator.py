"""Run the real modelplane operator in-process for tests and benchmarks, and sample resources.

`running_operator(url)` starts the operator under `kopf.testing.KopfRunner` (its own thread and
event loop) logged in to the API server at `url` (an `EmulatedCluster`), or, with `url=None`, to
the cluster of the current kubeconfig.
"""

from __future__ import annotations

import contextlib
import copy
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from modelplane.operator.reconcile import ReconcileOptions
from modelplane.operator.settings import OperatorSettings

JsonDict = dict[str, Any]


@contextlib.contextmanager
def running_operator(
    url: str | None,
    *,
    namespaces: tuple[str, ...] = (),
    settings: OperatorSettings | None = None,
    options: ReconcileOptions | None = None,
    verbose: bool = False,
) -> Iterator[Any]:
    """The operator running until the block exits; yields the `KopfRunner` (see `.output`)."""
    import kopf
    from kopf.testing import KopfRunner

    from modelplane.operator.handlers import build_registry

    connection = (lambda: kopf.ConnectionInfo(server=url)) if url is not None else None
    registry, _ = build_registry(settings, options, connection=connection)
    kopf_settings = kopf.OperatorSettings()
    kopf_settings.queueing.exit_timeout = 1.0  # stop promptly when the block exits
    scope = [arg for namespace in namespaces for arg in ("--namespace", namespace)]
    args = ["run", "--standalone", *(scope or ["--all-namespaces"])]
    if verbose:
        args.append("--verbose")
    # kopf's CLI takes over the root logger (level, a handler on its captured stderr); give it
    # back afterwards so the rest of a test session logs as before.
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_state = (asyncio_logger.propagate, list(asyncio_logger.handlers))
    try:
        with KopfRunner(args, registry=registry, settings=kopf_settings, timeout=30) as runner:
            yield runner
    finally:
        root.setLevel(level)
        root.handlers[:] = handlers
        asyncio_logger.propagate, asyncio_logger.handlers[:] = asyncio_state


def model_deployment(
    name: str, namespace: str, spec_overrides: Mapping[str, Any] | None = None
) -> JsonDict:
    """A small valid vLLM ModelDeployment (no GPU), with `spec_overrides` merged into its spec."""
    spec: JsonDict = {
        "model": {
            "uri": "hf://meta-llama/Llama-3.2-1B-Instruct",
            "contextWindow": 8192,
            "capabilities": ["chat"],
        },
        "engine": {"name": "vllm"},
        "resources": {"gpus": 1},
        "replicas": 1,
        "cost": {"gpuHourUSD": 0.8},
    }
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": _merged(spec, spec_overrides or {}),
    }


def model_deployment_status(url: str, ready: bool) -> JsonDict:
    """A status patch as the operator writes it: one replica, ready or still starting."""
    return {
        "status": {
            "phase": "Ready" if ready else "Progressing",
            "url": url,
            "replicas": 1,
            "readyReplicas": 1 if ready else 0,
            "conditions": [
                {"type": "Ready", "status": "True" if ready else "False", "reason": "Test"}
            ],
        }
    }


def external_model(
    name: str,
    namespace: str,
    secret: str,
    key: str,
    spec_overrides: Mapping[str, Any] | None = None,
) -> JsonDict:
    """GPT-4o with its key in `secret`/`key`, with `spec_overrides` merged into its spec."""
    spec: JsonDict = {
        "provider": "openai",
        "model": "gpt-4o",
        "apiKeySecretRef": {"name": secret, "key": key},
        "contextWindow": 128000,
        "capabilities": ["chat", "tools"],
    }
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "ExternalModel",
        "metadata": {"name": name, "namespace": namespace},
        "spec": _merged(spec, spec_overrides or {}),
    }


def routing_policy(
    name: str,
    namespace: str,
    tenants: list[JsonDict],
    spec_overrides: Mapping[str, Any] | None = None,
) -> JsonDict:
    """These tenants and the cheapest-first cost policy, with `spec_overrides` merged in."""
    spec: JsonDict = {"tenants": tenants, "cost": {"preference": "cheapest"}}
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": _merged(spec, spec_overrides or {}),
    }


def secret(name: str, namespace: str, values: Mapping[str, str]) -> JsonDict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "stringData": dict(values),
    }


def condition(obj: Mapping[str, Any] | None, type_: str) -> Mapping[str, Any]:
    """A status condition of an object (empty when absent)."""
    for entry in ((obj or {}).get("status") or {}).get("conditions") or []:
        if entry.get("type") == type_:
            found: Mapping[str, Any] = entry
            return found
    return {}


def _merged(base: JsonDict, overrides: Mapping[str, Any]) -> JsonDict:
    result = copy.deepcopy(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result
