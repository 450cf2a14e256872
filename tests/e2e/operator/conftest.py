"""e2e: the real operator (in this process) against the cluster KUBECONFIG points at.

Skipped unless KUBECONFIG is set and its cluster answers. The CRDs from crds/ are applied
(server-side apply); each test works in a namespace of its own, deleted afterwards. Needs
cluster-admin-like rights: CRDs, namespaces, and the operator's own permissions.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from modelplane.operator.reconcile import ReconcileOptions

from modelplane.testing.kube import REPO_CRD_DIR, ApiError, KubeHttpClient, wait_for
from modelplane.testing.operator import running_operator

# Namespaces the shared operator serves (a kopf glob); other tests use other prefixes.
SHARED_PREFIX = "mp-e2e-op-"
OPTIONS = ReconcileOptions(resync_seconds=5.0, retry_delay_seconds=2.0)


def _connect() -> KubeHttpClient | None:
    if not os.environ.get("KUBECONFIG"):
        return None
    try:
        client = KubeHttpClient.from_kubeconfig()
        client.http.get("/version", timeout=5.0).raise_for_status()
    except (httpx.HTTPError, OSError, ValueError, TypeError, KeyError):
        return None
    except Exception as error:  # the kubernetes client's ConfigException and friends
        if type(error).__name__ == "ConfigException":
            return None
        raise
    return client


@pytest.fixture(scope="session")
def kube() -> Iterator[KubeHttpClient]:
    client = _connect()
    if client is None:
        pytest.skip("no reachable cluster: point KUBECONFIG at one to run the e2e tests")
    for path in sorted(REPO_CRD_DIR.glob("*.yaml")):
        client.apply_file(path)
    wait_for(
        lambda: client.http.get("/apis/modelplane.dev/v1alpha1").status_code == 200,
        timeout=60,
        what="the modelplane CRDs to be served",
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def options() -> ReconcileOptions:
    return OPTIONS


@pytest.fixture(scope="module")
def operator(kube: KubeHttpClient) -> Iterator[Any]:
    with running_operator(None, namespaces=(f"{SHARED_PREFIX}*",), options=OPTIONS) as runner:
        yield runner


@pytest.fixture
def new_namespace(kube: KubeHttpClient) -> Iterator[Callable[[str], str]]:
    """Creates namespaces with a prefix; deletes them after the test."""
    created: list[str] = []

    def create(prefix: str) -> str:
        name = f"{prefix}{uuid.uuid4().hex[:8]}"
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        created.append(name)
        return name

    yield create
    for name in created:
        with contextlib.suppress(ApiError):
            kube.delete("Namespace", None, name)


@pytest.fixture
def namespace(new_namespace: Callable[[str], str]) -> str:
    """A fresh namespace served by the shared operator."""
    return new_namespace(SHARED_PREFIX)
