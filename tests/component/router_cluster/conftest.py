"""Fixtures for the router-in-the-cluster component tests: a real Valkey server per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from modelplane.testing.valkey import ValkeyProcess


@pytest.fixture(scope="module")
def valkey_server() -> Iterator[ValkeyProcess]:
    with ValkeyProcess() as server:
        yield server


@pytest.fixture
def valkey(valkey_server: ValkeyProcess) -> Iterator[ValkeyProcess]:
    """The module's server, running and empty at the start of each test."""
    import redis

    valkey_server.start()
    client = redis.Redis.from_url(valkey_server.url)
    client.flushall()
    client.close()
    yield valkey_server
    valkey_server.start()
