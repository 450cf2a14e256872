"""Security of the router and the operator, against real processes on 127.0.0.1 (issue 7).

- every route but health and metrics needs a key; a wrong key costs a hash, not a body read;
- tenants see and spend only their own: backends, explanations, Redis counters; no header
  makes one tenant's key act as another's;
- no API key, Secret value or prompt text in logs (debug level), the audit log, spans, metrics,
  Kubernetes events, CR status;
- the router calls only URLs of its catalog, whatever the body or headers say, through both
  adapters (a sentinel server on another port must receive nothing);
- the router protects itself: requests in flight and header bytes are bounded.

One router process (Valkey-backed, debug logging, audit log, small limits) serves the module;
tests that need the app in this process (route enumeration, in-memory spans) build it here.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from modelplane.operator.reconcile import ReconcileOptions
from modelplane.router.adapters.litellm_adapter import LiteLLMAdapter
from modelplane.router.api.app import create_app
from modelplane.router.api.chat import CHAT_COMPLETIONS_PATH
from modelplane.router.catalog import CatalogSource, Upstream, catalog_from_config
from modelplane.router.config import AdapterKind, parse_config
from modelplane.router.state import InProcessState
from starlette.routing import Route

from modelplane.testing.kube import EmulatedCluster, wait_for
from modelplane.testing.operator import (
    condition,
    external_model,
    routing_policy,
    running_operator,
    secret,
)
from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.router_process import (
    RouterProcess,
    ThreadedUpstreams,
    start_router_process,
)
from modelplane.testing.sentinel import SentinelServer
from modelplane.testing.telemetry import CapturedTelemetry
from modelplane.testing.upstream import LoopbackUpstream
from modelplane.testing.valkey import ValkeyProcess

KEY_A = "mp-team-a-key-5b1f0c2e9d"
KEY_B = "mp-team-b-key-a7e34410c8"
EXTERNAL_KEY = "sk-external-upstream-91c2f7"
LITELLM_KEY = "sk-litellm-upstream-3d8e0a"
PROMPT = "SENTINEL-PROMPT-4e9a1c the merger closes on Friday"
EMAIL = "jane.sentinel@example.com"
SECRETS = (KEY_A, KEY_B, EXTERNAL_KEY, LITELLM_KEY)
OPEN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
MAX_IN_FLIGHT = 3
MAX_HEADER_BYTES = 8192
HEADER_TIMEOUT_S = 1.0
BODY_TIMEOUT_S = 1.5

# Body fields LiteLLM's acompletion would take as connection settings, and headers a proxy or
# client might use to steer a request: none may change where the router connects or as whom.
STEERING_FIELDS = (
    "api_base",
    "base_url",
    "api_key",
    "custom_llm_provider",
    "extra_headers",
    "extra_body",
    "headers",
    "aws_region_name",
    "aws_bedrock_runtime_endpoint",
    "vertex_project",
    "vertex_location",
    "azure_ad_token",
    "api_version",
    "organization",
    "metadata",
)
STEERING_HEADERS = (
    "x-forwarded-host",
    "x-forwarded-for",
    "x-forwarded-proto",
    "forwarded",
    "x-modelplane-upstream",
    "x-original-url",
)


def sentinel_body(sentinel: str, model: str) -> dict[str, Any]:
    steering: dict[str, Any] = dict.fromkeys(STEERING_FIELDS, sentinel)
    steering.update(
        api_key="sk-attacker",
        custom_llm_provider="openai",
        extra_headers={"Authorization": "Bearer sk-attacker", "Host": "attacker"},
        extra_body={"api_base": sentinel},
        headers={"x-attacker": "1"},
        metadata={"api_base": sentinel},
    )
    return {"model": model, "messages": [{"role": "user", "content": "Say hello."}], **steering}


# --- the module's router ------------------------------------------------------------------


class Stack:
    def __init__(
        self,
        router: RouterProcess,
        llama: LoopbackUpstream,
        gpt: LoopbackUpstream,
        litellm: LoopbackUpstream,
        valkey: ValkeyProcess,
        audit_path: Path,
        sentinel: SentinelServer,
    ) -> None:
        self.router, self.llama, self.gpt, self.litellm = router, llama, gpt, litellm
        self.valkey, self.audit_path, self.sentinel = valkey, audit_path, sentinel

    def reset(self) -> None:
        for upstream in (self.llama, self.gpt, self.litellm):
            upstream.reset()

    def redis_keys(self) -> list[str]:
        client = redis.Redis.from_url(self.valkey.url)
        try:
            return sorted(key.decode() for key in client.keys("*"))
        finally:
            client.close()

    def counters(self, tenant: str) -> tuple[int, float]:
        """The tenant's requests counted by its rate-limit windows and its spend, in Redis."""
        client = redis.Redis.from_url(self.valkey.url)
        try:
            requests, spend = 0, 0.0
            for key in client.keys(f"*{{{tenant}}}*"):
                if b":rl:" in key:
                    requests += int(client.hget(key, "r") or 0)
                elif b":spend:d:" in key:
                    spend += float(client.get(key) or 0)
            return requests, spend
        finally:
            client.close()

    def post(
        self, path: str, key: str | None, body: dict[str, Any], **headers: str
    ) -> httpx.Response:
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return httpx.post(f"{self.router.url}{path}", json=body, headers=headers, timeout=30)

    def get(self, path: str, key: str | None, **headers: str) -> httpx.Response:
        if key is not None:
            headers["authorization"] = f"Bearer {key}"
        return httpx.get(f"{self.router.url}{path}", headers=headers, timeout=30)


def chat_body(model: str = "auto", content: str = "Say hello.", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def stack_config(llama: str, gpt: str, litellm: str) -> str:
    return router_config_text(
        backends=[
            in_cluster_llama(llama),
            external_gpt4o(gpt, api_key="${SECURITY_EXTERNAL_KEY}", timeout_s=5),
            external_gpt4o(
                litellm,
                name="gpt-4o-litellm",
                adapter="litellm",
                api_key="${SECURITY_LITELLM_KEY}",
                timeout_s=5,
            ),
        ],
        tenants=[
            {
                "name": "team-a",
                "api_keys": ["${SECURITY_KEY_A}"],
                "allowed_backends": ["llama-3-8b", "gpt-4o"],
                "default_data_class": "public",
                "requests_per_minute": 10_000,
            },
            {
                "name": "team-b",
                "api_keys": ["${SECURITY_KEY_B}"],
                "allowed_backends": ["gpt-4o-litellm"],
                "default_data_class": "public",
                "requests_per_minute": 10_000,
                "daily_budget_usd": 1000,
            },
        ],
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("security")
    host = ThreadedUpstreams()
    try:
        with ValkeyProcess() as valkey, SentinelServer() as sentinel:
            llama, gpt = host.start("llama-3-8b"), host.start("gpt-4o")
            litellm = host.start("gpt-4o")
            config = directory / "router.yaml"
            config.write_text(stack_config(llama.base_url, gpt.base_url, litellm.base_url))
            audit = directory / "audit.jsonl"
            router = start_router_process(
                [
                    "--config", str(config),
                    "--redis-url", valkey.url,
                    "--audit-log", str(audit),
                    "--log-level", "debug",
                    "--max-in-flight", str(MAX_IN_FLIGHT),
                    "--max-header-bytes", str(MAX_HEADER_BYTES),
                    "--header-timeout", str(HEADER_TIMEOUT_S),
                    "--body-timeout", str(BODY_TIMEOUT_S),
                ],
                directory / "router.log",
                env={
                    "SECURITY_KEY_A": KEY_A,
                    "SECURITY_KEY_B": KEY_B,
                    "SECURITY_EXTERNAL_KEY": EXTERNAL_KEY,
                    "SECURITY_LITELLM_KEY": LITELLM_KEY,
                },
            )  # fmt: skip
            try:
                yield Stack(router, llama, gpt, litellm, valkey, audit, sentinel)
            finally:
                router.stop()
    finally:
        host.close()


@pytest.fixture
def fresh(stack: Stack) -> Stack:
    stack.reset()
    return stack


# --- authentication -----------------------------------------------------------------------


def in_process_app(llama_base: str, telemetry: Any = None) -> Any:
    config = parse_config(stack_config(llama_base, llama_base, llama_base), environ=_ENV)
    return create_app(
        CatalogSource(catalog_from_config(config)), InProcessState(), telemetry=telemetry
    )


_ENV = {
    "SECURITY_KEY_A": KEY_A,
    "SECURITY_KEY_B": KEY_B,
    "SECURITY_EXTERNAL_KEY": EXTERNAL_KEY,
    "SECURITY_LITELLM_KEY": LITELLM_KEY,
}


# A value every tenant may ask for, for each path parameter a route has.
PATH_PARAMETERS = {"model": "auto"}


def served_routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) for every route the app serves, path parameters filled in."""
    routes = [("POST", CHAT_COMPLETIONS_PATH)]  # the raw ASGI endpoint, outside app.routes
    for route in app.routes:
        assert isinstance(route, Route), f"unexpected route type {route!r}"
        path = route.path_format.format(**PATH_PARAMETERS)
        routes += [(method, path) for method in sorted(route.methods or ())]
    return routes


async def test_every_route_but_health_and_metrics_requires_a_key() -> None:
    captured = CapturedTelemetry()  # with telemetry, the app also serves /metrics
    app = in_process_app("http://127.0.0.1:9", captured.telemetry)
    routes = served_routes(app)
    assert {path for _, path in routes} >= OPEN_PATHS | {"/v1/models", "/v1/route/explain"}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
        for method, path in routes:
            for headers in ({}, {"authorization": "Bearer not-a-key"}, {"authorization": KEY_A}):
                response = await client.request(method, path, headers=headers, content=b"{}")
                if path in OPEN_PATHS:
                    assert response.status_code != 401, (method, path)
                    continue
                assert response.status_code == 401, (method, path, headers, response.text)
                if method != "HEAD":
                    error = response.json()["error"]
                    assert error["type"] == "authentication_error", (method, path)
            # and the route works with the key, so the 401 was about the key
            if path not in OPEN_PATHS and method == "GET":
                ok = await client.get(path, headers={"authorization": f"Bearer {KEY_A}"})
                assert ok.status_code == 200, (path, ok.text)
    captured.shutdown()


def test_a_wrong_key_is_refused_before_the_body_is_read(fresh: Stack) -> None:
    """The request declares 8 MB and sends 1 KB: the 401 comes without waiting for the rest."""
    with socket.create_connection(("127.0.0.1", _port(fresh.router)), timeout=10) as connection:
        connection.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: router\r\n"
            b"authorization: Bearer not-a-key\r\ncontent-type: application/json\r\n"
            b"content-length: 8388608\r\n\r\n" + b"{" + b" " * 1023
        )
        status_line = connection.recv(4096).split(b"\r\n", 1)[0]
    assert status_line == b"HTTP/1.1 401 Unauthorized"


def _port(router: RouterProcess) -> int:
    return int(router.url.rsplit(":", 1)[1])


# --- tenant isolation ---------------------------------------------------------------------


def test_a_tenant_sees_only_its_own_backends(fresh: Stack) -> None:
    def model_ids(key: str) -> set[str]:
        response = fresh.get("/v1/models", key)
        assert response.status_code == 200, response.text
        return {model["id"] for model in response.json()["data"]}

    assert model_ids(KEY_A) == {"auto", "llama-3-8b", "gpt-4o"}
    assert model_ids(KEY_B) == {"auto", "gpt-4o-litellm"}
    assert fresh.get("/v1/models/gpt-4o-litellm", KEY_B).status_code == 200
    assert fresh.get("/v1/models/llama-3-8b", KEY_B).status_code == 404  # another tenant's

    explained = fresh.post("/v1/route/explain", KEY_B, chat_body())
    assert explained.status_code == 200, explained.text
    assert {c["backend"] for c in explained.json()["candidates"]} == {"gpt-4o-litellm"}

    # Another tenant's backend is as unknown as one that does not exist, and no error,
    # explanation or decision header names it.
    for key, foreign in ((KEY_B, "llama-3-8b"), (KEY_A, "gpt-4o-litellm")):
        for path in (CHAT_COMPLETIONS_PATH, "/v1/route/explain"):
            response = fresh.post(path, key, chat_body(model=foreign))
            assert response.status_code == 404, response.text
            assert response.json()["error"]["code"] == "model_not_found"
    confidential = fresh.post(CHAT_COMPLETIONS_PATH, KEY_B, chat_body(content=f"mail {EMAIL}"))
    assert confidential.status_code == 503, confidential.text  # team-b has no in-cluster backend
    for text in (confidential.text, json.dumps(dict(confidential.headers))):
        assert "llama" not in text
        assert 'gpt-4o"' not in text
    assert fresh.llama.received == []
    assert fresh.gpt.received == []
    assert fresh.litellm.received == []


SPOOFING_HEADERS = {
    "x-modelplane-tenant": "team-b",
    "x-tenant": "team-b",
    "x-forwarded-user": "team-b",
    "x-remote-user": "team-b",
    "openai-organization": "team-b",
    "openai-project": "team-b",
}


def test_no_header_makes_a_key_act_as_another_tenant(fresh: Stack) -> None:
    models = fresh.get("/v1/models", KEY_A, **SPOOFING_HEADERS)
    assert {m["id"] for m in models.json()["data"]} == {"auto", "llama-3-8b", "gpt-4o"}
    pinned = fresh.post(
        CHAT_COMPLETIONS_PATH, KEY_A, chat_body(model="gpt-4o-litellm"), **SPOOFING_HEADERS
    )
    assert pinned.status_code == 404, pinned.text
    served = fresh.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body(), **SPOOFING_HEADERS)
    assert served.status_code == 200, served.text
    assert served.headers["x-modelplane-backend"] in {"llama-3-8b", "gpt-4o"}
    # Nor does a key of one tenant under another scheme or with a second key appended.
    for authorization in (f"Basic {KEY_B}", f"Bearer {KEY_A} {KEY_B}", f"Bearer {KEY_A}x"):
        refused = httpx.get(
            f"{fresh.router.url}/v1/models", headers={"authorization": authorization}, timeout=10
        )
        assert refused.status_code == 401, authorization


def test_limits_and_spend_are_counted_per_tenant_in_redis(fresh: Stack) -> None:
    before = {tenant: fresh.counters(tenant) for tenant in ("team-a", "team-b")}
    for _ in range(4):
        response = fresh.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body(model="gpt-4o"))
        assert response.status_code == 200, response.text

    def team_a_spent() -> tuple[int, float] | None:
        requests, spend = fresh.counters("team-a")
        return (requests, spend) if spend > before["team-a"][1] else None

    requests_a, _ = wait_for(team_a_spent, what="team-a's spend in Redis", timeout=10)
    assert requests_a >= before["team-a"][0] + 4
    # (Not equal: a window key of team-b's from earlier tests may expire meanwhile.)
    requests_b, spend_b = fresh.counters("team-b")
    assert requests_b <= before["team-b"][0], "team-a's requests were counted as team-b's"
    assert spend_b == before["team-b"][1], "team-a's spend was counted as team-b's"
    assert all("{team-a}" in key or "{team-b}" in key for key in fresh.redis_keys() if "{" in key)

    response = fresh.post(CHAT_COMPLETIONS_PATH, KEY_B, chat_body())
    assert response.status_code == 200, response.text

    def team_b_spent() -> tuple[int, float] | None:
        counted = fresh.counters("team-b")
        return counted if counted[1] > before["team-b"][1] else None

    requests_b, _ = wait_for(team_b_spent, what="team-b's spend in Redis", timeout=10)
    assert requests_b >= 1


# --- only catalog URLs, only router-set headers -------------------------------------------


@pytest.mark.parametrize(
    ("key", "model", "upstream_name", "credential"),
    [
        (KEY_A, "llama-3-8b", "llama", None),
        (KEY_A, "gpt-4o", "gpt", EXTERNAL_KEY),
        (KEY_B, "gpt-4o-litellm", "litellm", LITELLM_KEY),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_no_request_field_or_header_redirects_or_reauthenticates_the_upstream_call(
    fresh: Stack, key: str, model: str, upstream_name: str, credential: str | None, stream: bool
) -> None:
    sentinel = fresh.sentinel.url
    body = sentinel_body(f"{sentinel}/v1", model)
    body["stream"] = stream
    headers = dict.fromkeys(STEERING_HEADERS, sentinel)
    response = httpx.post(
        f"{fresh.router.url}{CHAT_COMPLETIONS_PATH}",
        json=body,
        headers={**headers, "authorization": f"Bearer {key}", "x-attacker": "1"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert fresh.sentinel.connections == []
    upstream: LoopbackUpstream = getattr(fresh, upstream_name)
    [received] = upstream.received
    expected = f"Bearer {credential}" if credential else None
    assert received.headers.get("authorization") == expected
    assert received.headers.get("host") == f"127.0.0.1:{upstream.port}"
    leaked = {"x-attacker", "host-override", *STEERING_HEADERS} & set(received.headers)
    assert not leaked, f"client headers reached the upstream: {leaked}"
    assert key not in json.dumps(received.headers)
    if model == "gpt-4o-litellm":
        # LiteLLM takes connection settings as arguments: none of them may reach the call.
        assert set(STEERING_FIELDS).isdisjoint(received.body), received.body


async def test_litellm_refuses_to_download_a_client_image_url_from_a_private_address() -> None:
    """Providers that need images inline make LiteLLM fetch image URLs; its guard must stay on."""
    image = {"type": "image_url", "image_url": {"url": ""}}
    content = [{"type": "text", "text": "What is this?"}, image]
    with SentinelServer() as sentinel:
        image["image_url"] = {"url": f"{sentinel.url}/cat.png"}
        async with LoopbackUpstream(model="claude") as upstream:
            anthropic = Upstream(
                adapter=AdapterKind.LITELLM,
                litellm_model="anthropic/claude-3-5-sonnet-20240620",
                upstream_model="claude-3-5-sonnet-20240620",
                api_base=upstream.url,
                api_key="sk-test",
                max_concurrency=1,
                timeout_s=5,
            )
            body = {"model": "x", "messages": [{"role": "user", "content": content}]}
            adapter = LiteLLMAdapter()
            # Refused or failed: either way, what matters is what the sentinel received.
            with contextlib.suppress(Exception):
                await adapter.complete(anthropic, body)
        assert sentinel.connections == []


# --- no secret or prompt in what the router emits -----------------------------------------


def _forms(secret_text: str) -> list[str]:
    """The secret and the encodings in which it could hide in a log line."""
    return [secret_text, base64.b64encode(secret_text.encode()).decode(), json.dumps(secret_text)]


def assert_nothing_sensitive(where: str, text: str) -> None:
    assert text, f"the {where} is empty, so searching it would prove nothing"
    for sensitive in (*SECRETS, PROMPT, EMAIL, "sk-attacker"):
        for form in _forms(sensitive):
            assert form not in text, f"{sensitive!r} leaked into the {where}"
    assert PROMPT.split()[0] not in text, f"the prompt sentinel leaked into the {where}"


def sensitive_traffic(stack: Stack) -> None:
    """Requests that carry the prompt sentinel and PII, succeed, fail and stream."""
    for key, model in ((KEY_A, "gpt-4o"), (KEY_A, "llama-3-8b"), (KEY_B, "gpt-4o-litellm")):
        for stream in (False, True):
            response = stack.post(
                CHAT_COMPLETIONS_PATH, key, chat_body(model=model, content=PROMPT, stream=stream)
            )
            assert response.status_code == 200, response.text
    assert stack.post(
        CHAT_COMPLETIONS_PATH, KEY_A, chat_body(content=f"{PROMPT} {EMAIL}")
    ).is_success
    assert stack.post("/v1/route/explain", KEY_A, chat_body(content=PROMPT)).is_success
    assert (
        stack.post(CHAT_COMPLETIONS_PATH, "sk-attacker", chat_body(content=PROMPT)).status_code
        == 401
    )
    stack.gpt.faults.status = 500
    stack.litellm.faults.status = 500
    try:
        for key, model in ((KEY_A, "gpt-4o"), (KEY_B, "gpt-4o-litellm")):
            failed = stack.post(CHAT_COMPLETIONS_PATH, key, chat_body(model=model, content=PROMPT))
            assert failed.status_code == 503, failed.text
    finally:
        stack.reset()
    bad = stack.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body(content=PROMPT, max_tokens=-1))
    assert bad.status_code == 400


def test_no_key_or_prompt_in_the_router_logs_audit_log_or_metrics(fresh: Stack) -> None:
    sensitive_traffic(fresh)
    metrics = fresh.get("/metrics", None)
    assert metrics.status_code == 200

    def audit_lines() -> list[str]:
        text = fresh.audit_path.read_text() if fresh.audit_path.exists() else ""
        return [line for line in text.splitlines() if '"pii"' in line or "email" in line]

    wait_for(audit_lines, what="the audit log's lines", timeout=10)
    log = fresh.router.log()
    # LiteLLM's own lines are there: its debug lines held every prompt before the router kept
    # library loggers at info (see `router serve --log-level`).
    assert "LiteLLM" in log, "LiteLLM's output is not captured, so the check would prove less"
    assert_nothing_sensitive("router log (stdout and stderr, debug level)", log)
    assert_nothing_sensitive("audit log", fresh.audit_path.read_text())
    assert_nothing_sensitive("/metrics", metrics.text)


async def test_no_key_or_prompt_in_spans_audit_lines_metrics_or_logs_in_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level("DEBUG")
    captured = CapturedTelemetry()
    async with LoopbackUpstream(model="llama-3-8b") as upstream:
        app = in_process_app(upstream.base_url, captured.telemetry)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://router") as client:
            headers = {"authorization": f"Bearer {KEY_A}"}
            # PII makes a request confidential: only the in-cluster backend may take it.
            for model, content in (("gpt-4o", PROMPT), ("llama-3-8b", f"{PROMPT} {EMAIL}")):
                for stream in (False, True):
                    body = chat_body(model=model, content=content, stream=stream)
                    response = await client.post(CHAT_COMPLETIONS_PATH, json=body, headers=headers)
                    assert response.status_code == 200, response.text
            upstream.faults.status = 500
            failed = await client.post(
                CHAT_COMPLETIONS_PATH,
                json=chat_body(model="gpt-4o", content=PROMPT),
                headers=headers,
            )
            assert failed.status_code == 503
            # A stream that breaks after its first event is logged by the router.
            upstream.faults.status = None
            upstream.faults.fail_stream_after_events = 1
            broken = await client.post(
                CHAT_COMPLETIONS_PATH,
                json=chat_body(model="llama-3-8b", content=PROMPT, stream=True),
                headers=headers,
            )
            assert b"stream_interrupted" in broken.content
            refused = await client.post(
                CHAT_COMPLETIONS_PATH,
                json=chat_body(content=PROMPT),
                headers={"authorization": "Bearer sk-attacker"},
            )
            assert refused.status_code == 401
            metrics = (await client.get("/metrics")).text
    spans = captured.spans.get_finished_spans()
    assert len(spans) >= 5
    span_text = "\n".join(span.to_json() for span in spans)
    audit = "\n".join(json.dumps(line) for line in captured.audit_lines())
    points = captured.telemetry.metrics_data().to_json()
    captured.shutdown()
    assert_nothing_sensitive("spans", span_text)
    assert_nothing_sensitive("audit lines", audit)
    assert_nothing_sensitive("metric points", points)
    assert_nothing_sensitive("/metrics", metrics)
    assert_nothing_sensitive("log records", "\n".join(r.getMessage() for r in caplog.records))


def test_no_secret_or_prompt_in_operator_or_cluster_router_output(tmp_path: Path) -> None:
    """Extends the operator's ExternalModel check: tenant keys of RoutingPolicies, a key that is
    missing and then arrives, and the router following the cluster, all at debug level."""
    namespace = "security"
    tenant_key, upstream_key = "mp-cluster-tenant-0c4f1d", "sk-cluster-upstream-8b22e6"
    chatty = ReconcileOptions(resync_seconds=1.0, retry_delay_seconds=0.5, post_log_events=True)
    host = ThreadedUpstreams()
    try:
        gpt = host.start("gpt-4o")
        with (
            EmulatedCluster(bookmark_interval=5.0) as cluster,
            running_operator(
                cluster.url, namespaces=(namespace,), options=chatty, verbose=True
            ) as operator,
        ):
            kube = cluster.client()
            kube.create(secret("keys", namespace, {"analytics": tenant_key}))
            tenants = [
                {"name": name, "apiKeySecretRef": {"name": "keys", "key": name}}
                for name in ("analytics", "hr")
            ]
            kube.create(routing_policy("default", namespace, tenants))
            model = external_model("gpt-4o", namespace, "openai", "api-key", {
                "apiBase": gpt.base_url, "inputUSDPerMTok": 2.5, "outputUSDPerMTok": 10,
            })  # fmt: skip
            kube.create(model)

            def reason(kind: str, name: str) -> str | None:
                ready = condition(kube.get(kind, namespace, name), "Ready")
                return ready["reason"] if ready else None

            wait_for(lambda: reason("RoutingPolicy", "default") == "KeyNotFound", what="hr's key")
            kube.create(secret("openai", namespace, {"api-key": upstream_key}))
            kube.patch("Secret", namespace, "keys", {"stringData": {"hr": tenant_key + "-hr"}})
            wait_for(lambda: reason("RoutingPolicy", "default") == "PolicyValid", what="valid")
            wait_for(lambda: reason("ExternalModel", "gpt-4o") == "SecretResolved", what="key")

            kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig", namespace=namespace)
            router = start_router_process(
                ["--kubernetes", "--namespace", namespace, "--log-level", "debug"],
                tmp_path / "router.log",
                env={"KUBECONFIG": str(kubeconfig)},
            )
            try:
                for content in (PROMPT, f"{PROMPT} {EMAIL}"):
                    router.chat(tenant_key, model="gpt-4o", content=content)
                served = router.chat(tenant_key, model="gpt-4o", content=PROMPT)
                assert served.status_code == 200, served.text
                assert gpt.received[-1].headers["authorization"] == f"Bearer {upstream_key}"
            finally:
                router.stop()
            exposed = {
                "CR status": json.dumps(
                    [kube.list(kind, namespace) for kind in ("RoutingPolicy", "ExternalModel")]
                ),
                "events": json.dumps(kube.list("Event", namespace)),
                "cluster router log": router.log(),
            }
        exposed["operator output"] = operator.output  # complete once the operator stopped
    finally:
        host.close()
    assert json.loads(exposed["events"]), "no events, so the events check would prove nothing"
    for where, text in exposed.items():
        for sensitive in (tenant_key, upstream_key, PROMPT, EMAIL):
            for form in _forms(sensitive):
                assert form not in text, f"{sensitive!r} leaked into the {where}"


# --- self-protection ----------------------------------------------------------------------


def test_requests_beyond_max_in_flight_get_503_with_retry_after_and_probes_still_answer(
    fresh: Stack,
) -> None:
    fresh.llama.behaviour.ttft_s = 3.0
    results: list[int] = []

    def slow_request() -> None:
        response = fresh.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body(model="llama-3-8b"))
        results.append(response.status_code)

    threads = [threading.Thread(target=slow_request) for _ in range(MAX_IN_FLIGHT)]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: fresh.llama.in_flight == MAX_IN_FLIGHT, what="the slow requests")
        overloaded = fresh.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body())
        unauthenticated = fresh.get("/v1/models", None)
        health = [fresh.get(path, None).status_code for path in ("/healthz", "/readyz")]
        metrics = fresh.get("/metrics", None).status_code
    finally:
        for thread in threads:
            thread.join(timeout=15)
        fresh.llama.behaviour.ttft_s = 0.0
    assert overloaded.status_code == 503, overloaded.text
    assert overloaded.headers["retry-after"] == "1"
    assert overloaded.json()["error"]["code"] == "server_overloaded"
    assert unauthenticated.status_code == 503  # shed before the key is even looked at
    assert health == [200, 200]
    assert metrics == 200
    assert results == [200] * MAX_IN_FLIGHT
    assert len(fresh.llama.received) == MAX_IN_FLIGHT  # the refused request reached no upstream
    assert fresh.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body()).status_code == 200


def _raw_request(router: RouterProcess, header_bytes: int) -> bytes:
    """Send a request with one header of `header_bytes` bytes; return what the router answers."""
    with socket.create_connection(("127.0.0.1", _port(router)), timeout=10) as connection:
        head = (
            b"GET /v1/models HTTP/1.1\r\nhost: router\r\nauthorization: Bearer "
            + KEY_A.encode()
            + b"\r\nx-padding: "
        )
        # Refused mid-send: the answer is already waiting to be read.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            connection.sendall(head + b"a" * header_bytes + b"\r\n\r\n")
        answer = b""
        started = time.monotonic()
        while time.monotonic() - started < 10:
            chunk = connection.recv(65536)
            if not chunk:
                break
            answer += chunk
            if b"\r\n\r\n" in answer and answer.split(b"\r\n\r\n", 1)[1]:
                break
        return answer


def test_oversized_headers_get_431_and_a_closed_connection(fresh: Stack) -> None:
    small = _raw_request(fresh.router, 2048)
    assert small.startswith(b"HTTP/1.1 200"), small[:200]
    for size in (MAX_HEADER_BYTES * 2, 8 * 1024 * 1024):
        answer = _raw_request(fresh.router, size)
        status, _, rest = answer.partition(b"\r\n")
        assert status == b"HTTP/1.1 431 Request Header Fields Too Large", answer[:200]
        body = json.loads(rest.split(b"\r\n\r\n", 1)[1])
        assert body["error"]["code"] == "headers_too_large"
    assert fresh.get("/healthz", None).status_code == 200


def _answer_and_close(connection: socket.socket, within_s: float) -> tuple[bytes, bool]:
    """What the router writes on `connection` within `within_s`, and whether it closed it."""
    connection.settimeout(0.2)
    answer = b""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            chunk = connection.recv(65536)
        except TimeoutError:
            continue
        except ConnectionResetError:
            return answer, True
        if not chunk:
            return answer, True
        answer += chunk
    return answer, False


def test_a_connection_that_sends_nothing_gets_408_and_is_closed(fresh: Stack) -> None:
    with socket.create_connection(("127.0.0.1", _port(fresh.router)), timeout=10) as idle:
        answer, closed = _answer_and_close(idle, within_s=HEADER_TIMEOUT_S + 5)
    assert closed
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout", answer[:200]
    assert json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]["code"] == "request_timeout"


def test_headers_trickled_slower_than_the_timeout_get_408_and_a_closed_connection(
    fresh: Stack,
) -> None:
    head = f"GET /v1/models HTTP/1.1\r\nhost: router\r\nauthorization: Bearer {KEY_A}\r\n"
    with socket.create_connection(("127.0.0.1", _port(fresh.router)), timeout=10) as slow:
        started = time.monotonic()
        sent = 0
        # One byte every 0.1 s: the whole head would take seconds, each byte well within any
        # per-read timeout, which is how a slowloris client holds a connection.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in head.encode():
                if time.monotonic() - started > HEADER_TIMEOUT_S + 5:
                    break
                slow.send(bytes([byte]))
                sent += 1
                time.sleep(0.1)
        answer, closed = _answer_and_close(slow, within_s=5)
    assert sent < len(head), "the router let the whole head trickle in"
    assert closed
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer[:200]


def test_connections_within_the_header_timeout_are_served_and_kept_alive(fresh: Stack) -> None:
    request = (
        f"GET /v1/models HTTP/1.1\r\nhost: router\r\nauthorization: Bearer {KEY_A}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", _port(fresh.router)), timeout=10) as connection:
        time.sleep(HEADER_TIMEOUT_S / 2)  # opened, then quiet for a while: still in time
        for _ in range(2):
            connection.sendall(request)
            answer, closed = _answer_and_close(connection, within_s=1)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert not closed
            # Idle between requests for longer than the header timeout: the keep-alive
            # timeout (5 s), not the header timeout, applies there.
            time.sleep(HEADER_TIMEOUT_S * 1.5)


def _chat_head(body_bytes: int) -> bytes:
    return (
        f"POST {CHAT_COMPLETIONS_PATH} HTTP/1.1\r\nhost: router\r\n"
        f"authorization: Bearer {KEY_A}\r\ncontent-type: application/json\r\n"
        f"content-length: {body_bytes}\r\n\r\n"
    ).encode()


def test_a_body_trickled_slower_than_the_body_timeout_gets_408_and_a_closed_connection(
    fresh: Stack,
) -> None:
    body = json.dumps(chat_body()).encode()
    with socket.create_connection(("127.0.0.1", _port(fresh.router)), timeout=10) as slow:
        slow.sendall(_chat_head(len(body)))
        started = time.monotonic()
        sent = 0
        # Headers at once, then the body a byte every 0.1 s: each byte well within any per-read
        # timeout, the whole body far beyond the body timeout.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for byte in body:
                if time.monotonic() - started > BODY_TIMEOUT_S + 5:
                    break
                slow.send(bytes([byte]))
                sent += 1
                time.sleep(0.1)
        answer, closed = _answer_and_close(slow, within_s=5)
    assert sent < len(body), "the router let the whole body trickle in"
    assert closed
    status, _, rest = answer.partition(b"\r\n")
    assert status == b"HTTP/1.1 408 Request Timeout", answer[:200]
    error = json.loads(rest.split(b"\r\n\r\n", 1)[1])["error"]
    assert error["code"] == "request_timeout"
    assert "body" in error["message"]
    assert not fresh.llama.received
    assert not fresh.gpt.received


def test_requests_whose_bodies_trickle_lose_their_in_flight_slots_at_the_body_timeout(
    fresh: Stack,
) -> None:
    body = json.dumps(chat_body()).encode()
    port = _port(fresh.router)
    # Each holds one of the router's MAX_IN_FLIGHT slots from its headers on (the app starts
    # before the body): a client could keep them all, for everyone, as long as it trickles.
    stalled = [
        socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(MAX_IN_FLIGHT)
    ]
    try:
        for connection in stalled:
            connection.sendall(_chat_head(len(body)) + body[:10])
        wait_for(
            lambda: fresh.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body()).status_code == 503,
            what="the stalled requests to hold every slot",
        )
        answers = [_answer_and_close(c, within_s=BODY_TIMEOUT_S + 5) for c in stalled]
    finally:
        for connection in stalled:
            connection.close()
    assert all(closed for _, closed in answers)
    assert all(answer.startswith(b"HTTP/1.1 408") for answer, _ in answers), answers
    assert fresh.post(CHAT_COMPLETIONS_PATH, KEY_A, chat_body()).status_code == 200


def test_a_body_sent_in_pieces_within_the_body_timeout_is_served_on_a_kept_connection(
    fresh: Stack,
) -> None:
    body = json.dumps(chat_body()).encode()
    with socket.create_connection(("127.0.0.1", _port(fresh.router)), timeout=10) as connection:
        for _ in range(2):
            connection.sendall(_chat_head(len(body)) + body[:20])
            time.sleep(BODY_TIMEOUT_S / 3)
            connection.sendall(body[20:60])
            time.sleep(BODY_TIMEOUT_S / 3)
            connection.sendall(body[60:])
            answer, closed = _answer_and_close(connection, within_s=1)
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
            assert not closed


def test_many_idle_connections_are_all_closed(fresh: Stack) -> None:
    port = _port(fresh.router)
    idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(50)]
    try:
        closed = [
            _answer_and_close(connection, within_s=HEADER_TIMEOUT_S + 5)[1] for connection in idle
        ]
    finally:
        for connection in idle:
            connection.close()
    assert all(closed)
    assert fresh.get("/healthz", None).status_code == 200
