"""Install the chart into a real cluster, give the router a backend and a tenant, run `helm test`.

Runs with `make test-e2e` when KUBECONFIG points at a cluster and MODELPLANE_IMAGE names a pushed
modelplane image (`registry/repository:tag`, built from the Dockerfile); skipped otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
CHART = REPO_ROOT / "charts" / "modelplane"
IMAGE = os.environ.get("MODELPLANE_IMAGE", "")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not os.environ.get("KUBECONFIG") or ":" not in IMAGE,
        reason="needs KUBECONFIG and MODELPLANE_IMAGE=registry/repository:tag",
    ),
]

RESOURCES = """
apiVersion: v1
kind: Secret
metadata: {name: provider-key}
stringData: {api-key: not-a-real-key}
---
apiVersion: v1
kind: Secret
metadata: {name: tenant-keys}
stringData: {e2e: TENANT_KEY}
---
apiVersion: modelplane.dev/v1alpha1
kind: ExternalModel
metadata: {name: gpt-4o}
spec:
  provider: openai
  model: gpt-4o
  apiKeySecretRef: {name: provider-key, key: api-key}
---
apiVersion: modelplane.dev/v1alpha1
kind: RoutingPolicy
metadata: {name: default}
spec:
  tenants:
    - name: e2e
      apiKeySecretRef: {name: tenant-keys, key: e2e}
"""


def _run(*args: str, stdin: str | None = None, timeout: float = 120) -> str:
    result = subprocess.run(
        args, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{' '.join(args)}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def tools() -> tuple[str, str]:
    folder = _run(str(REPO_ROOT / "tools" / "fetch-helm.sh"), timeout=300).strip().splitlines()[-1]
    return f"{folder}/helm", f"{folder}/kubectl"


@pytest.fixture(scope="module")
def release(tools: tuple[str, str]) -> Iterator[str]:
    helm, kubectl = tools
    namespace = f"modelplane-e2e-{secrets.token_hex(3)}"
    repository, tag = IMAGE.rsplit(":", 1)
    registry, _, repository = repository.partition("/")
    _run(kubectl, "create", "namespace", namespace)
    try:
        _run(
            # No --wait: the router is not ready until it knows a backend and a tenant.
            helm, "install", "e2e", str(CHART), "--namespace", namespace,
            "--set", f"image.registry={registry}",
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            timeout=360,
        )  # fmt: skip
        yield namespace
    finally:
        subprocess.run([helm, "uninstall", "e2e", "-n", namespace], check=False, timeout=120)
        subprocess.run([kubectl, "delete", "namespace", namespace, "--wait=false"], check=False)


def test_installed_router_becomes_ready_and_passes_helm_test(
    tools: tuple[str, str], release: str
) -> None:
    helm, kubectl = tools
    manifest = RESOURCES.replace("TENANT_KEY", secrets.token_hex(16))
    _run(kubectl, "apply", "-n", release, "-f", "-", stdin=manifest)

    deadline = time.monotonic() + 180
    status: dict[str, object] = {}
    while time.monotonic() < deadline:
        body = json.loads(
            _run(kubectl, "get", "externalmodel", "gpt-4o", "-n", release, "-o", "json")
        )
        status = body.get("status", {})
        conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
        if conditions.get("Ready") == "True":
            break
        time.sleep(3)
    else:
        pytest.fail(f"the operator never reported gpt-4o Ready: {status}")

    _run(kubectl, "rollout", "status", "deployment/e2e-modelplane-router", "-n", release,
         "--timeout=180s", timeout=200)  # fmt: skip
    output = _run(helm, "test", "e2e", "-n", release, "--timeout", "3m", timeout=200)
    assert "Succeeded" in output
