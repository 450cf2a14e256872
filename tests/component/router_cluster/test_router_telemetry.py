"""The router app records spans, metrics and audit lines for real requests to loopback upstreams,
captured with the OpenTelemetry SDK's in-memory exporters."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from modelplane.router.api.app import create_app
from modelplane.router.catalog import CatalogSource, catalog_from_config
from modelplane.router.config import parse_config
from modelplane.router.state import InProcessState
from opentelemetry.trace import SpanKind

from modelplane.testing.router_config import external_gpt4o, in_cluster_llama, router_config_text
from modelplane.testing.telemetry import CapturedTelemetry
from modelplane.testing.upstream import LoopbackUpstream

KEY = "team-key"
SECRET_TEXT = "Refund IBAN DE89 3704 0044 0532 0130 00 please"


@dataclass
class Harness:
    client: httpx.AsyncClient
    captured: CapturedTelemetry
    llama: LoopbackUpstream
    gpt: LoopbackUpstream

    async def chat(self, content: str = "Say hello.", **headers: str) -> httpx.Response:
        return await self.client.post(
            "/v1/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": content}]},
            headers={"Authorization": f"Bearer {KEY}", **headers},
        )


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with (
        LoopbackUpstream(model="llama-3-8b") as llama,
        LoopbackUpstream(model="gpt-4o") as gpt,
    ):
        config = parse_config(
            router_config_text(
                backends=[
                    in_cluster_llama(
                        llama.base_url, input_usd_per_mtok=0.1, output_usd_per_mtok=0.1
                    ),
                    external_gpt4o(
                        gpt.base_url,
                        api_key="sk-test",
                        input_usd_per_mtok=2.5,
                        output_usd_per_mtok=10,
                    ),
                ],
                tenants=[{"name": "team", "api_keys": [KEY], "default_data_class": "public"}],
            )
        )
        captured = CapturedTelemetry()
        app = create_app(
            CatalogSource(catalog_from_config(config)),
            InProcessState(),
            telemetry=captured.telemetry,
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://router"
        ) as client:
            yield Harness(client, captured, llama, gpt)
        captured.shutdown()


async def test_request_and_attempt_spans_carry_genai_and_decision_attributes(
    harness: Harness,
) -> None:
    response = await harness.chat()
    assert response.status_code == 200

    spans = harness.captured.spans.get_finished_spans()
    (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
    (client,) = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert server.attributes is not None
    assert client.attributes is not None
    backend = response.headers["x-modelplane-backend"]
    assert server.attributes["modelplane.backend"] == backend
    assert server.attributes["gen_ai.request.model"] == "auto"
    assert server.attributes["gen_ai.usage.input_tokens"] == 2
    assert server.attributes["gen_ai.usage.output_tokens"] == 5
    assert server.attributes["modelplane.data_class"] == "public"
    assert "privacy:ok" in str(server.attributes["modelplane.reasons"]).split(",")
    assert client.attributes["server.address"] == "127.0.0.1"


async def test_pii_request_is_kept_in_cluster_and_its_text_recorded_nowhere(
    harness: Harness,
) -> None:
    response = await harness.chat(SECRET_TEXT)

    assert response.headers["x-modelplane-backend"] == "llama-3-8b"
    recorded = repr([dict(s.attributes or {}) for s in harness.captured.spans.get_finished_spans()])
    assert "DE89" not in recorded
    (line,) = harness.captured.audit_lines()
    assert response.headers["x-request-id"] == line["trace_id"]  # the client's key to the line
    assert line["data_class"] == "confidential"
    assert "iban" in line["pii"]
    assert line["backend"] == "llama-3-8b"
    assert line["upstream_host"] == "127.0.0.1"
    assert "DE89" not in orjson.dumps(line).decode()
    (blocked,) = harness.captured.metric_points("modelplane.egress.blocked")
    assert blocked.value == 1


async def test_usage_cost_and_duration_metrics_and_prometheus_endpoint(harness: Harness) -> None:
    await harness.chat(**{"x-modelplane-data-class": "public"})
    await harness.chat(SECRET_TEXT)

    points = harness.captured.metric_points
    tokens = points("gen_ai.client.token.usage")
    assert {p.attributes["gen_ai.token.type"] for p in tokens} == {"input", "output"}
    assert sum(p.count for p in points("gen_ai.server.request.duration")) == 2
    assert sum(p.count for p in points("gen_ai.server.time_to_first_token")) == 2
    assert sum(p.count for p in points("modelplane.decision.duration")) == 2
    assert sum(p.value for p in points("modelplane.cost")) > 0
    text = (await harness.client.get("/metrics")).text
    assert "gen_ai_client_token_usage" in text
    assert "modelplane_cost" in text


async def test_policy_violation_is_traced_as_an_error(harness: Harness) -> None:
    response = await harness.client.post(
        "/v1/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": SECRET_TEXT}]},
        headers={"Authorization": f"Bearer {KEY}"},
    )

    assert response.status_code == 403
    (span,) = harness.captured.spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "policy_violation"
    assert harness.gpt.received == []
    assert harness.captured.audit_lines()[0]["outcome"] == "policy_violation"
