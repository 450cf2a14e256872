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

from modelplane.testing.kube import EmulatedCluster, KubeHttpClient
from modelplane.testing.operator import running_operator

# A short resync so the timer-driven paths (a Secret created later) show within a test.
FAST = ReconcileOptions(resync_seconds=1.0, retry_delay_seconds=0.5)

_namespaces = itertools.count()


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
