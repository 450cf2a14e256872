"""Spans, metrics and audit lines recorded for routed requests (SDK in-memory exporters)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from modelplane.router.adapters.telemetry import (
    BackendInfo,
    Telemetry,
    TelemetrySettings,
)
from modelplane.router.policy.types import (
    CandidateVerdict,
    DataClass,
    Decision,
    Location,
    PiiType,
)
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families

from modelplane.testing.telemetry import CapturedTelemetry

BACKENDS = {
    "llama": BackendInfo(
        "llama", Location.IN_CLUSTER, "hosted_vllm/llama-3-8b", "llama-3-8b", "http://llama:8000/v1"
    ),
    "gpt-4o": BackendInfo("gpt-4o", Location.EXTERNAL, "openai/gpt-4o", "gpt-4o", None),
}

CONFIDENTIAL = Decision(
    data_class=DataClass.CONFIDENTIAL,
    pii_found=frozenset({PiiType.EMAIL}),
    candidates=(
        CandidateVerdict("llama", True, ("privacy:ok", "cost:rank-1")),
        CandidateVerdict("gpt-4o", False, ("privacy:external-blocked",)),
    ),
    reasons=("data-class:confidential", "pii:email", "data-class:raised-by-pii"),
)

SPILLED = Decision(
    data_class=DataClass.PUBLIC,
    pii_found=frozenset(),
    candidates=(
        CandidateVerdict("gpt-4o", True, ("privacy:ok", "latency:meets-target", "cost:rank-1")),
        CandidateVerdict("llama", True, ("privacy:ok", "latency:over-target", "cost:rank-2")),
    ),
    reasons=("data-class:public",),
)


@pytest.fixture
def captured() -> Iterator[CapturedTelemetry]:
    recorder = CapturedTelemetry(TelemetrySettings(prometheus=True))
    yield recorder
    recorder.shutdown()


def test_request_span_with_attempt_children_and_genai_attributes(
    captured: CapturedTelemetry,
) -> None:
    request = captured.telemetry.start_request(
        "team-a", "auto", stream=False, body={"max_tokens": 64}
    )
    request.decided(CONFIDENTIAL, BACKENDS, 0.0002)
    request.attempt("llama").succeeded(ttft_s=0.05)
    request.finish("llama", input_tokens=12, output_tokens=30, cost_usd=0.0, ttft_s=0.05)

    spans = {span.kind: span for span in captured.spans.get_finished_spans()}
    server, client = spans[SpanKind.SERVER], spans[SpanKind.CLIENT]
    assert client.parent is not None
    assert client.parent.span_id == server.context.span_id
    assert server.attributes is not None
    assert client.attributes is not None
    assert server.attributes["gen_ai.request.model"] == "auto"
    assert server.attributes["gen_ai.request.max_tokens"] == 64
    assert server.attributes["gen_ai.usage.input_tokens"] == 12
    assert server.attributes["gen_ai.usage.output_tokens"] == 30
    assert server.attributes["gen_ai.system"] == "vllm"
    assert server.attributes["modelplane.backend"] == "llama"
    assert server.attributes["modelplane.data_class"] == "confidential"
    assert "privacy:ok" in str(server.attributes["modelplane.reasons"])
    assert client.attributes["server.address"] == "llama"
    assert client.attributes["gen_ai.request.model"] == "llama-3-8b"


def test_no_prompt_text_is_recorded_unless_enabled(captured: CapturedTelemetry) -> None:
    body = {"messages": [{"role": "user", "content": "secret plan alice@example.com"}]}
    request = captured.telemetry.start_request("team-a", "auto", stream=False, body=body)
    request.decided(CONFIDENTIAL, BACKENDS, 0.0001)
    request.finish("llama", input_tokens=1, output_tokens=1, cost_usd=0.0, ttft_s=None)

    recorded = repr([span.attributes for span in captured.spans.get_finished_spans()])
    assert "secret plan" not in recorded
    assert "secret plan" not in captured.audit.getvalue().decode() + repr(captured.audit_lines())


def test_prompt_is_recorded_when_capture_content_is_enabled() -> None:
    spans = InMemorySpanExporter()
    telemetry = Telemetry(
        TelemetrySettings(prometheus=False, capture_content=True),
        span_processors=[SimpleSpanProcessor(spans)],
    )
    body = {"messages": [{"role": "user", "content": "hello there"}]}
    telemetry.start_request("t", "auto", stream=False, body=body).fail("invalid_request", 400)
    telemetry.shutdown()

    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert "hello there" in str(span.attributes["gen_ai.input.messages"])


def test_metrics_for_tokens_cost_blocked_egress_and_spillover(captured: CapturedTelemetry) -> None:
    confidential = captured.telemetry.start_request("team-a", "auto", stream=False)
    confidential.decided(CONFIDENTIAL, BACKENDS, 0.0001)
    confidential.finish("llama", input_tokens=10, output_tokens=20, cost_usd=0.0, ttft_s=0.1)
    spilled = captured.telemetry.start_request("team-b", "auto", stream=True)
    spilled.decided(SPILLED, BACKENDS, 0.0001)
    spilled.finish("gpt-4o", input_tokens=100, output_tokens=50, cost_usd=0.00075, ttft_s=0.3)

    tokens = captured.metric_points("gen_ai.client.token.usage")
    assert sum(point.sum for point in tokens) == 180
    (blocked,) = captured.metric_points("modelplane.egress.blocked")
    assert blocked.value == 1
    assert blocked.attributes["modelplane.data_class"] == "confidential"
    (spill,) = captured.metric_points("modelplane.spillover")
    assert spill.attributes == {
        "modelplane.backend": "gpt-4o",
        "modelplane.spill_reason": "latency",
    }
    (cost,) = captured.metric_points("modelplane.cost")
    assert cost.value == pytest.approx(0.00075)
    assert cost.attributes == {"modelplane.tenant": "team-b", "modelplane.backend": "gpt-4o"}
    assert len(captured.metric_points("gen_ai.server.time_to_first_token")) == 2
    assert len(captured.metric_points("modelplane.decision.duration")) == 1


def test_failed_attempt_then_fallback_and_the_audit_line(captured: CapturedTelemetry) -> None:
    request = captured.telemetry.start_request("team-a", "auto", stream=False)
    request.decided(SPILLED, BACKENDS, 0.0001)
    request.attempt("gpt-4o").failed("upstream_unavailable", "connect refused")
    request.attempt("llama").succeeded()
    request.finish("llama", input_tokens=5, output_tokens=5, cost_usd=0.0, ttft_s=None)

    failed = [
        s for s in captured.spans.get_finished_spans() if s.status.status_code is StatusCode.ERROR
    ]
    assert len(failed) == 1
    (line,) = captured.audit_lines()
    assert line["tenant"] == "team-a"
    assert line["backend"] == "llama"
    assert line["upstream_hosts"] == ["api.openai.com", "llama"]
    assert line["upstream_host"] == "llama"
    assert line["data_class"] == "public"
    assert "latency:meets-target" in line["reasons"]


def test_error_answer_ends_the_span_with_its_error_type(captured: CapturedTelemetry) -> None:
    request = captured.telemetry.start_request("team-a", "gpt-4o", stream=False)
    request.decided(CONFIDENTIAL, BACKENDS, 0.0001)
    request.fail("policy_violation", 403, "confidential data may not go to gpt-4o")

    (span,) = captured.spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["error.type"] == "policy_violation"
    assert captured.audit_lines()[0]["outcome"] == "policy_violation"


def test_budget_and_price_gauges_and_prometheus_text(captured: CapturedTelemetry) -> None:
    captured.telemetry.add_budget_source(lambda: [("team-a", "day", 4.5)])
    captured.telemetry.add_price_source(
        lambda: [("llama", "in-cluster", "measured", 0.55), ("gpt-4o", "external", "list", 2.5)]
    )

    (budget,) = captured.metric_points("modelplane.budget.remaining")
    assert budget.value == 4.5
    prices = {
        p.attributes["modelplane.backend"]: p.value
        for p in captured.metric_points("modelplane.backend.cost_per_mtok")
    }
    assert prices == {"llama": 0.55, "gpt-4o": 2.5}
    text = captured.telemetry.export_prometheus().decode()
    assert "modelplane_budget_remaining" in text
    assert "modelplane_backend_cost_per_mtok" in text


class CapturingExporter(MetricExporter):
    """A metric exporter keeping what it is given (the OTLP exporter's place in production)."""

    def __init__(self) -> None:
        super().__init__()
        self.exported: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        self.exported.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        pass


def test_metric_exporters_receive_cumulative_otel_data() -> None:
    exporter = CapturingExporter()
    telemetry = Telemetry(
        TelemetrySettings(prometheus=False, metric_export_interval_s=60),
        metric_exporters=[exporter],
    )
    request = telemetry.start_request("team-a", "auto", stream=False)
    request.decided(SPILLED, BACKENDS, 0.0001)
    request.finish("gpt-4o", input_tokens=3, output_tokens=4, cost_usd=0.01, ttft_s=0.2)
    telemetry.shutdown()  # exports once more on the way out

    (data,) = exporter.exported
    (scope,) = data.resource_metrics[0].scope_metrics
    names = {metric.name for metric in scope.metrics}
    assert {"gen_ai.client.token.usage", "modelplane.cost", "modelplane.spillover"} <= names
    usage = next(m for m in scope.metrics if m.name == "gen_ai.client.token.usage")
    assert usage.unit == "{token}"
    assert sorted(point.sum for point in usage.data.data_points) == [3, 4]
    assert all(point.attributes["gen_ai.system"] == "openai" for point in usage.data.data_points)


def test_prometheus_names_and_labels() -> None:
    telemetry = Telemetry(TelemetrySettings())
    request = telemetry.start_request("team-a", "auto", stream=False)
    request.decided(SPILLED, BACKENDS, 0.0001)
    request.finish("gpt-4o", input_tokens=3, output_tokens=4, cost_usd=0.01, ttft_s=0.2)
    text = telemetry.export_prometheus().decode()
    telemetry.shutdown()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    operation = {
        "gen_ai_operation_name": "chat",
        "gen_ai_system": "openai",
        "gen_ai_request_model": "auto",
        "modelplane_backend": "gpt-4o",
    }

    def value(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    input_labels = {**operation, "gen_ai_token_type": "input"}
    assert value("gen_ai_client_token_usage_bucket", **input_labels, le="4.0") == 1
    assert value("gen_ai_client_token_usage_bucket", **input_labels, le="1.0") == 0
    assert value("gen_ai_server_request_duration_seconds_count", **operation, error_type="") == 1
    assert value("gen_ai_server_time_to_first_token_seconds_sum", **operation) == 0.2
    assert value("modelplane_decision_duration_seconds_count") == 1
    cost = {"modelplane_tenant": "team-a", "modelplane_backend": "gpt-4o"}
    assert value("modelplane_cost_USD_total", **cost) == 0.01
    spill = {"modelplane_backend": "gpt-4o", "modelplane_spill_reason": "latency"}
    assert value("modelplane_spillover_total", **spill) == 1


def test_unsampled_requests_make_no_spans_but_still_count() -> None:
    spans = InMemorySpanExporter()
    telemetry = Telemetry(
        TelemetrySettings(prometheus=False, trace_sample_ratio=0.0),
        span_processors=[SimpleSpanProcessor(spans)],
    )
    request = telemetry.start_request("team-a", "auto", stream=False)
    request.decided(CONFIDENTIAL, BACKENDS, 0.0001)
    request.attempt("llama").succeeded()
    request.finish("llama", input_tokens=1, output_tokens=1, cost_usd=0.0, ttft_s=None)
    data = telemetry.metrics_data()
    telemetry.shutdown()

    assert spans.get_finished_spans() == ()
    assert any(
        m.name == "modelplane.egress.blocked"
        for m in data.resource_metrics[0].scope_metrics[0].metrics
    )
