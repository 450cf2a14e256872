"""The real operator (kopf) against the Kubernetes emulator, both in this process.

One emulator and one operator serve every test of a module; each test works in a namespace of
its own. Tests that stop, restart or inspect the output of an operator start their own.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

import pytest
from modelplane.operator.reconcile import ReconcileOptions

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient, wait_for
from modelplane.testing.operator import model_deployment, running_operator

# A short resync so the timer-driven paths (a Secret created later) show within a test.
FAST = ReconcileOptions(resync_seconds=1.0, retry_delay_seconds=0.5)

_namespaces = itertools.count()


def observed_status(kube: KubeHttpClient, namespace: str, name: str) -> dict[str, Any]:
    """The ModelDeployment's status as the operator last wrote it (empty before the first)."""
    status: dict[str, Any] = (kube.get("ModelDeployment", namespace, name) or {}).get("status", {})
    return status


def status_in_phase(kube: KubeHttpClient, namespace: str, name: str, phase: str) -> dict[str, Any]:
    """Wait until the ModelDeployment's status reaches `phase`; return that status."""

    def reached() -> dict[str, Any] | None:
        status = observed_status(kube, namespace, name)
        return status if status.get("phase") == phase else None

    return wait_for(reached, what=f"phase {phase}")


def create_and_wait_for_children(kube: KubeHttpClient, namespace: str, name: str) -> None:
    """Create a sample ModelDeployment and wait until the operator built it and reported on it."""
    kube.create(model_deployment(name, namespace))
    wait_for(lambda: kube.get("Deployment", namespace, name), what="the Deployment")
    wait_for(
        lambda: observed_status(kube, namespace, name).get("observedGeneration") == 1,
        what="status for generation 1",
    )


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmulatedCluster]:
    with EmulatedCluster(bookmark_interval=5.0) as running:
        yield running


@pytest.fixture(scope="module")
def fast_options() -> ReconcileOptions:
    return FAST


@pytest.fixture(scope="module")
def operator(cluster: EmulatedCluster) -> Iterator[Any]:
    with running_operator(cluster.url, options=FAST) as runner:
        yield runner


@pytest.fixture
def kube(cluster: EmulatedCluster) -> KubeHttpClient:
    return cluster.client()


@pytest.fixture
def namespace(request: pytest.FixtureRequest) -> str:
    """A fresh namespace name per test (the emulator creates it on the first write)."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    return f"{stem}-{next(_namespaces)}"
