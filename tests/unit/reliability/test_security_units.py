"""The pure parts of the router's security (issue 7): stored keys, what LiteLLM is handed, the
in-flight bound. The processes that use them are tested in tests/component/reliability."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import pickle
from collections.abc import Mapping
from typing import Any

import pytest
from modelplane.router.adapters.kube_catalog import ClusterResources, catalog_from_resources
from modelplane.router.adapters.litellm_adapter import FORWARDED_PARAMETERS, LiteLLMAdapter
from modelplane.router.api.limits import UNLIMITED_PATHS, InFlightLimit
from modelplane.router.catalog import Upstream, catalog_from_config, hash_api_key
from modelplane.router.config import AdapterKind, parse_config
from openai.types.chat.completion_create_params import CompletionCreateParamsBase
from starlette.types import Message, Receive, Scope, Send

TENANT_KEY = "tenant-key-0d3b8f6a41"
OTHER_KEY = "other-tenant-key-77a1c2"
UPSTREAM_KEY = "sk-upstream-5e2c91"

CONFIG = f"""
backends:
  - name: gpt-4o
    model: openai/gpt-4o
    api_key: {UPSTREAM_KEY}
    location: external
    context_window: 128000
    input_usd_per_mtok: 2.5
    output_usd_per_mtok: 10
tenants:
  - name: team
    api_keys: [{TENANT_KEY}]
  - name: other
    api_key_sha256: ["sha256:{hashlib.sha256(OTHER_KEY.encode()).hexdigest()}"]
"""


def _strings(value: Any, seen: set[int] | None = None) -> list[str]:
    """Every str and bytes reachable from `value` (dataclasses, mappings, sequences, slots)."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode("latin-1")]
    found: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += _strings(key, seen) + _strings(item, seen)
    elif isinstance(value, tuple | list | set | frozenset):
        for item in value:
            found += _strings(item, seen)
    elif dataclasses.is_dataclass(value):
        for slot in getattr(type(value), "__slots__", ()):
            found += _strings(getattr(value, slot, None), seen)
        for field in dataclasses.fields(value):
            found += _strings(getattr(value, field.name), seen)
    return found


def test_the_catalog_holds_tenant_keys_only_as_sha256_digests() -> None:
    config = parse_config(CONFIG, environ={})
    catalog = catalog_from_config(config)
    held = _strings(catalog)
    assert held, "the walk found nothing, so it would prove nothing"
    assert not any(TENANT_KEY in text or OTHER_KEY in text for text in held)
    assert set(catalog.tenants_by_key_hash) == {
        hashlib.sha256(TENANT_KEY.encode()).digest(),
        hashlib.sha256(OTHER_KEY.encode()).digest(),
    }
    # The upstream's key must be held to be sent, but never printed.
    assert UPSTREAM_KEY not in repr(catalog)
    for tenant in catalog.tenants_by_key_hash.values():
        assert TENANT_KEY not in repr(tenant)
        assert TENANT_KEY.encode() not in pickle.dumps(tenant)


def test_the_configuration_prints_and_dumps_no_key() -> None:
    config = parse_config(CONFIG, environ={})
    for text in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        for secret in (TENANT_KEY, UPSTREAM_KEY):
            assert secret not in text
    assert config.tenants[0].api_keys == [TENANT_KEY]  # still there for the catalog to hash


def test_keys_are_looked_up_by_digest_and_compared_in_constant_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    catalog = catalog_from_config(parse_config(CONFIG, environ={}))
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(stored: bytes, presented: bytes) -> bool:
        compared.append((stored, presented))
        return real_compare(stored, presented)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    team = catalog.authenticate(TENANT_KEY)
    assert team is not None
    assert team.name == "team"
    assert compared == [(hash_api_key(TENANT_KEY), hash_api_key(TENANT_KEY))]
    other = catalog.authenticate(OTHER_KEY)
    assert other is not None
    assert other.name == "other"
    compared.clear()
    assert catalog.authenticate(TENANT_KEY + "x") is None
    assert catalog.authenticate("") is None
    # A wrong key is compared with at most the digests sharing its 4-byte bucket: none here.
    assert all(len(stored) == len(presented) == 32 for stored, presented in compared)


def test_litellm_is_handed_only_openai_chat_parameters_and_the_catalogs_connection() -> None:
    openai_fields = set(CompletionCreateParamsBase.__annotations__)
    assert openai_fields >= FORWARDED_PARAMETERS
    upstream = Upstream(
        adapter=AdapterKind.LITELLM,
        litellm_model="anthropic/claude-3-5-sonnet-20240620",
        upstream_model="claude-3-5-sonnet-20240620",
        api_base=None,  # the provider's default: a body's api_base must not fill the gap
        api_key=None,
        max_concurrency=1,
        timeout_s=5,
    )
    body: dict[str, Any] = {
        "model": "auto",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.2,
        "max_tokens": 5,
        "tools": [],
        "user": "u1",
        "api_base": "http://attacker",
        "base_url": "http://attacker",
        "api_key": "sk-attacker",
        "custom_llm_provider": "openai",
        "extra_headers": {"x": "1"},
        "extra_body": {"api_base": "http://attacker"},
        "aws_bedrock_runtime_endpoint": "http://attacker",
        "vertex_project": "attacker",
        "metadata": {"a": 1},
        "mock_response": "owned",
        "num_retries": 100,
        "timeout": 10_000,
    }
    arguments = LiteLLMAdapter()._arguments(upstream, body)
    assert arguments == {
        "model": "anthropic/claude-3-5-sonnet-20240620",
        "messages": body["messages"],
        "temperature": 0.2,
        "max_tokens": 5,
        "tools": [],
        "user": "u1",
        "timeout": 5,
        "num_retries": 0,
    }


class _Blocking:
    """An app that holds each request until released."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.entered = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered += 1
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _call(app: InFlightLimit, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "path": path, "method": "GET", "headers": []}, receive, send)
    return sent


async def test_requests_over_the_in_flight_bound_are_refused_at_once_in_openai_format() -> None:
    inner = _Blocking()
    limited = InFlightLimit(inner, max_in_flight=2)
    held = [asyncio.ensure_future(_call(limited, "/v1/models")) for _ in range(2)]
    for _ in range(100):
        if inner.entered == 2:
            break
        await asyncio.sleep(0)
    assert inner.entered == 2
    refused = await _call(limited, "/v1/chat/completions")
    assert inner.entered == 2  # the refused request never reached the app
    start, body = refused
    assert start["status"] == 503
    assert (b"retry-after", b"1") in start["headers"]
    assert b'"code":"server_overloaded"' in body["body"]
    # Probes are neither counted nor refused.
    probes = [asyncio.ensure_future(_call(limited, path)) for path in sorted(UNLIMITED_PATHS)]
    for _ in range(100):
        if inner.entered == 2 + len(probes):
            break
        await asyncio.sleep(0)
    assert inner.entered == 2 + len(probes)
    inner.release.set()
    for answer in await asyncio.gather(*held, *probes):
        assert answer[0]["status"] == 200
    assert limited.in_flight == 0
    assert (await _call(limited, "/v1/models"))[0]["status"] == 200


def test_the_in_flight_bound_must_admit_something() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        InFlightLimit(_Blocking(), max_in_flight=0)


def _routing_policy(namespace: str, tenant: str, secret_name: str) -> dict[str, Any]:
    return {
        "apiVersion": "modelplane.dev/v1alpha1",
        "kind": "RoutingPolicy",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {
            "tenants": [{"name": tenant, "apiKeySecretRef": {"name": secret_name, "key": "k"}}]
        },
    }


def test_a_second_cluster_tenant_of_the_same_name_is_skipped_not_merged() -> None:
    """Limits and spend are counted per tenant name: two RoutingPolicies (here in two watched
    namespaces) defining `analytics` would otherwise spend one budget with two keys."""
    secrets = {
        f"{namespace}/keys": {"metadata": {"name": "keys"}, "stringData": {"k": key}}
        for namespace, key in (("team-x", TENANT_KEY), ("team-y", OTHER_KEY))
    }
    built = catalog_from_resources(
        ClusterResources(
            routing_policies={
                "team-x/default": _routing_policy("team-x", "analytics", "keys"),
                "team-y/default": _routing_policy("team-y", "analytics", "keys"),
            },
            secrets=secrets,
        ),
        price_map={},
    )
    assert built.catalog.authenticate(TENANT_KEY) is not None
    assert built.catalog.authenticate(OTHER_KEY) is None
    assert any("team-y/default" in problem and "analytics" in problem for problem in built.problems)
    assert not any(OTHER_KEY in problem or TENANT_KEY in problem for problem in built.problems)
