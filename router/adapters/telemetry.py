"""Traces, metrics and the decision audit log of the router.

Traces: one SERVER span per chat completion (`chat <model>`) and one CLIENT child span per
upstream attempt, with the OpenTelemetry GenAI semantic-convention attributes
(`gen_ai.operation.name`, `gen_ai.system`, `gen_ai.request.model`, `gen_ai.response.model`,
`gen_ai.usage.input_tokens`, `gen_ai.usage.output_tokens`, `server.address`, `error.type`) and
the decision (`modelplane.backend`, `modelplane.data_class`, `modelplane.reasons`,
`modelplane.tenant`, `modelplane.pii`). Prompt and completion text are never recorded unless
`capture_content` is set (then the request's messages go on the request span as
`gen_ai.input.messages`).

Metrics (OTLP when an endpoint is configured, and Prometheus text at the router's `/metrics`):
`gen_ai.client.token.usage`, `gen_ai.server.request.duration`,
`gen_ai.server.time_to_first_token`, `modelplane.decision.duration`, `modelplane.cost`
(USD per tenant and backend), `modelplane.egress.blocked`, `modelplane.spillover`,
`modelplane.budget.remaining` (USD per tenant and period) and `modelplane.backend.cost_per_mtok`
(self-hosted at the measured throughput next to external list prices).

Audit log: one JSON line per routed request (time, tenant, data class, PII types, chosen backend,
reasons, the upstream host actually called, outcome); never prompt text.

The request path is the router's hot path, so it records into plain dictionaries only: metrics
are aggregated here (a dictionary lookup and a bucket increment per value) and turned into
OpenTelemetry `MetricsData` or Prometheus families only when collected; spans are assembled as
finished `ReadableSpan`s when the request ends and handed to the span processors (the batch
processor exports them from its own thread). Going through the SDK's instruments and live spans
instead cost more CPU than the rest of the router's request path together.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import datetime
import random
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlsplit

import orjson
from modelplane.router.catalog import Catalog
from modelplane.router.policy.types import Decision, Location
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricsData,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

INSTRUMENTATION_NAME = "modelplane.router"

# Reason codes of the policy engine this module reads (router/policy/engine.py).
_SPILL_REASONS = {"latency:over-target": "latency", "health:no-ready-replica": "no-ready-replica"}

# Buckets from the GenAI semantic conventions' advice for these histograms.
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
_DECISION_BUCKETS = (0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01)


class TelemetrySettings(BaseModel):
    """The router's telemetry (`telemetry:` in the configuration, or serve options)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_name: str = "modelplane-router"
    otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP base URL, e.g. http://otel-collector:4318"
    )
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    metric_export_interval_s: float = Field(default=15.0, gt=0)
    prometheus: bool = True
    capture_content: bool = False
    audit_log: str | None = Field(
        default=None, description="file to append decision audit lines to; '-' for stdout"
    )
    audit_flush_interval_s: float = Field(default=0.5, gt=0)


def _system(litellm_model: str) -> str:
    """The `gen_ai.system` value for a LiteLLM model string (`hosted_vllm/x` -> `vllm`)."""
    provider = litellm_model.split("/", 1)[0] if "/" in litellm_model else "openai"
    return {"hosted_vllm": "vllm", "azure": "az.ai.openai", "bedrock": "aws.bedrock"}.get(
        provider, provider
    )


def upstream_host(api_base: str | None) -> str:
    if not api_base:
        return "api.openai.com"
    return urlsplit(api_base).hostname or api_base


@dataclass(frozen=True, slots=True)
class BackendInfo:
    """What telemetry needs to know about a backend (from the catalog)."""

    name: str
    location: Location
    litellm_model: str
    upstream_model: str
    api_base: str | None
    # Derived once per catalog rather than on every request and attempt.
    system: str = field(init=False)  # gen_ai.system
    host: str = field(init=False)  # server.address

    def __post_init__(self) -> None:
        object.__setattr__(self, "system", _system(self.litellm_model))
        object.__setattr__(self, "host", upstream_host(self.api_base))


class AuditLog:
    """JSON lines, buffered in memory and written by a background thread every interval."""

    def __init__(self, sink: IO[bytes], flush_interval_s: float = 0.5) -> None:
        self._sink = sink
        self._buffer: list[bytes] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._interval = flush_interval_s
        self._thread = threading.Thread(target=self._run, name="modelplane-audit", daemon=True)
        self._thread.start()

    @classmethod
    def open(cls, target: str, flush_interval_s: float = 0.5) -> AuditLog:
        sink: IO[bytes] = sys.stdout.buffer if target == "-" else open(target, "ab")  # noqa: SIM115
        return cls(sink, flush_interval_s)

    def write(self, record: Mapping[str, Any]) -> None:
        line = orjson.dumps(record) + b"\n"
        with self._lock:
            self._buffer.append(line)

    def flush(self) -> None:
        with self._lock:
            lines, self._buffer = self._buffer, []
        if lines:
            self._sink.write(b"".join(lines))
            self._sink.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.flush()
        if self._sink is not sys.stdout.buffer:
            self._sink.close()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with contextlib.suppress(OSError):
                self.flush()


@dataclass(frozen=True, slots=True, eq=False)
class _Definition:
    """One metric: its OpenTelemetry name and unit, and its Prometheus name and labels."""

    name: str
    unit: str
    description: str
    labels: tuple[str, ...]
    prometheus: str
    buckets: tuple[float, ...] = ()  # histograms only


_OPERATION = ("gen_ai.operation.name", "gen_ai.system", "gen_ai.request.model")
TOKEN_USAGE = _Definition(
    "gen_ai.client.token.usage",
    "{token}",
    "Tokens used per request, by type (input/output)",
    (*_OPERATION, "modelplane.backend", "gen_ai.token.type"),
    "gen_ai_client_token_usage",
    tuple(map(float, _TOKEN_BUCKETS)),
)
REQUEST_DURATION = _Definition(
    "gen_ai.server.request.duration",
    "s",
    "Time from request received to response completed",
    (*_OPERATION, "modelplane.backend", "error.type"),
    "gen_ai_server_request_duration_seconds",
    _DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN = _Definition(
    "gen_ai.server.time_to_first_token",
    "s",
    "Time until the upstream's first response byte or event",
    (*_OPERATION, "modelplane.backend"),
    "gen_ai_server_time_to_first_token_seconds",
    _TTFT_BUCKETS,
)
DECISION_DURATION = _Definition(
    "modelplane.decision.duration",
    "s",
    "Time the routing decision took (policy, PII scan, shared state)",
    (),
    "modelplane_decision_duration_seconds",
    _DECISION_BUCKETS,
)
COST = _Definition(
    "modelplane.cost",
    "USD",
    "Estimated cost by tenant and backend",
    ("modelplane.tenant", "modelplane.backend"),
    "modelplane_cost_USD",
)
EGRESS_BLOCKED = _Definition(
    "modelplane.egress.blocked",
    "{request}",
    "Requests that privacy kept away from external backends",
    ("modelplane.tenant", "modelplane.data_class"),
    "modelplane_egress_blocked",
)
SPILLOVER = _Definition(
    "modelplane.spillover",
    "{request}",
    "Requests sent outside: in-cluster backends too slow or scaled to zero",
    ("modelplane.backend", "modelplane.spill_reason"),
    "modelplane_spillover",
)
BUDGET_REMAINING = _Definition(
    "modelplane.budget.remaining",
    "USD",
    "Budget left per tenant and period (day, month)",
    ("modelplane.tenant", "period"),
    "modelplane_budget_remaining_USD",
)
BACKEND_PRICE = _Definition(
    "modelplane.backend.cost_per_mtok",
    "USD",
    "Price per million tokens: measured for self-hosted, list for external",
    ("modelplane.backend", "modelplane.location", "modelplane.price_basis"),
    "modelplane_backend_cost_per_mtok_USD",
)
_HISTOGRAMS = (TOKEN_USAGE, REQUEST_DURATION, TIME_TO_FIRST_TOKEN, DECISION_DURATION)
_COUNTERS = (COST, EGRESS_BLOCKED, SPILLOVER)
# Every metric's OpenTelemetry name (dashboards and alerts are checked against these).
METRIC_NAMES = tuple(d.name for d in (*_HISTOGRAMS, *_COUNTERS, BUDGET_REMAINING, BACKEND_PRICE))

# Label values are partly client-chosen (the requested model): bound the series per metric.
_MAX_SERIES = 2000

Labels = tuple[str, ...]


class _HistogramCell:
    __slots__ = ("count", "counts", "maximum", "minimum", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)
        self.total = 0.0
        self.count = 0
        self.minimum = float("inf")
        self.maximum = float("-inf")


class _MetricStore:
    """Cumulative aggregates, written by the request path and read when metrics are collected.

    Writes happen on the event loop's thread only; readers copy each table first (one C-level
    dict copy under the GIL), so no lock is taken per request.
    """

    def __init__(self) -> None:
        self.start_ns = time.time_ns()
        self.histograms: dict[_Definition, dict[Labels, _HistogramCell]] = {
            definition: {} for definition in _HISTOGRAMS
        }
        self.counters: dict[_Definition, dict[Labels, float]] = {
            definition: {} for definition in _COUNTERS
        }

    def observe(self, definition: _Definition, labels: Labels, value: float) -> None:
        cells = self.histograms[definition]
        cell = cells.get(labels)
        if cell is None:
            if len(cells) >= _MAX_SERIES:
                labels = ("_other",) * len(definition.labels)
            cell = cells.get(labels) or cells.setdefault(
                labels, _HistogramCell(len(definition.buckets))
            )
        cell.counts[bisect.bisect_left(definition.buckets, value)] += 1
        cell.total += value
        cell.count += 1
        if value < cell.minimum:
            cell.minimum = value
        if value > cell.maximum:
            cell.maximum = value

    def add(self, definition: _Definition, labels: Labels, value: float) -> None:
        values = self.counters[definition]
        if labels not in values and len(values) >= _MAX_SERIES:
            labels = ("_other",) * len(definition.labels)
        values[labels] = values.get(labels, 0.0) + value


def _attributes(definition: _Definition, labels: Labels) -> dict[str, str]:
    # Empty values (no error, no backend) are left out, as an instrument call would have.
    return {key: value for key, value in zip(definition.labels, labels, strict=True) if value}


def _prometheus_label(key: str) -> str:
    return key.replace(".", "_")


class _PrometheusCollector(Collector):
    def __init__(self, telemetry: Telemetry) -> None:
        self._telemetry = telemetry

    def collect(self) -> Iterable[Any]:
        telemetry = self._telemetry
        store = telemetry._store
        for definition in _HISTOGRAMS:
            family = HistogramMetricFamily(
                definition.prometheus,
                definition.description,
                labels=[_prometheus_label(key) for key in definition.labels],
            )
            for labels, cell in dict(store.histograms[definition]).items():
                cumulative, buckets = 0, []
                for bound, count in zip(
                    (*map(str, definition.buckets), "+Inf"), cell.counts, strict=True
                ):
                    cumulative += count
                    buckets.append((bound, float(cumulative)))
                family.add_metric(list(labels), buckets, cell.total)
            yield family
        for definition in _COUNTERS:
            counter = CounterMetricFamily(
                definition.prometheus,
                definition.description,
                labels=[_prometheus_label(key) for key in definition.labels],
            )
            for labels, value in dict(store.counters[definition]).items():
                counter.add_metric(list(labels), value)
            yield counter
        for definition, rows in telemetry._gauge_rows():
            gauge = GaugeMetricFamily(
                definition.prometheus,
                definition.description,
                labels=[_prometheus_label(key) for key in definition.labels],
            )
            for labels, value in rows:
                gauge.add_metric(list(labels), value)
            yield gauge


class Telemetry:
    """Per-request traces and the metric aggregates, exporters and audit log behind them."""

    def __init__(
        self,
        settings: TelemetrySettings | None = None,
        *,
        span_processors: Sequence[SpanProcessor] = (),
        metric_exporters: Sequence[MetricExporter] = (),
        audit_log: AuditLog | None = None,
    ) -> None:
        self.settings = settings = settings or TelemetrySettings()
        self.resource = Resource.create({"service.name": settings.service_name})
        self.scope = InstrumentationScope(INSTRUMENTATION_NAME)
        self._span_processors = list(span_processors)
        self._metric_exporters = list(metric_exporters)
        if settings.otlp_endpoint:
            span_exporter, metric_exporter = _otlp_exporters(settings.otlp_endpoint)
            self._span_processors.append(BatchSpanProcessor(span_exporter))
            self._metric_exporters.append(metric_exporter)
        # Sampled when the trace id's low 64 bits fall under this bound (as TraceIdRatioBased).
        self._sample_bound = round(settings.trace_sample_ratio * (1 << 64))
        self._tracing = bool(self._span_processors) and settings.trace_sample_ratio > 0
        self._store = _MetricStore()
        self.prometheus_registry: CollectorRegistry | None = None
        if settings.prometheus:
            self.prometheus_registry = CollectorRegistry(auto_describe=False)
            self.prometheus_registry.register(_PrometheusCollector(self))
        self._budget_sources: list[Callable[[], Iterable[tuple[str, str, float]]]] = []
        self._price_sources: list[Callable[[], Iterable[tuple[str, str, str, float]]]] = []
        self._backend_infos: tuple[Catalog, Mapping[str, BackendInfo]] | None = None
        self.audit_log = audit_log
        if audit_log is None and settings.audit_log:
            self.audit_log = AuditLog.open(settings.audit_log, settings.audit_flush_interval_s)
        self._stop_export = threading.Event()
        self._exporter_thread: threading.Thread | None = None
        if self._metric_exporters:
            self._exporter_thread = threading.Thread(
                target=self._export_periodically, name="modelplane-metrics", daemon=True
            )
            self._exporter_thread.start()

    # --- sources read when metrics are collected -------------------------------------------

    def add_budget_source(self, source: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        """`source()` yields (tenant, period, remaining USD) when metrics are collected."""
        self._budget_sources.append(source)

    def add_price_source(self, source: Callable[[], Iterable[tuple[str, str, str, float]]]) -> None:
        """`source()` yields (backend, location, basis, USD per Mtok); basis: gpu-hour or list."""
        self._price_sources.append(source)

    def _gauge_rows(self) -> list[tuple[_Definition, list[tuple[Labels, float]]]]:
        budgets: list[tuple[Labels, float]] = [
            ((tenant, period), remaining)
            for source in self._budget_sources
            for tenant, period, remaining in source()
        ]
        prices: list[tuple[Labels, float]] = [
            ((backend, location, basis), usd)
            for source in self._price_sources
            for backend, location, basis, usd in source()
        ]
        return [(BUDGET_REMAINING, budgets), (BACKEND_PRICE, prices)]

    # --- collection ------------------------------------------------------------------------

    def metrics_data(self) -> MetricsData:
        """Every metric as OpenTelemetry data (cumulative), as a metric exporter receives it."""
        store = self._store
        now = time.time_ns()
        start = store.start_ns
        metrics: list[Metric] = []
        for definition in _HISTOGRAMS:
            points = [
                HistogramDataPoint(
                    attributes=_attributes(definition, labels),
                    start_time_unix_nano=start,
                    time_unix_nano=now,
                    count=cell.count,
                    sum=cell.total,
                    bucket_counts=list(cell.counts),
                    explicit_bounds=list(definition.buckets),
                    min=cell.minimum,
                    max=cell.maximum,
                )
                for labels, cell in dict(store.histograms[definition]).items()
            ]
            if points:
                data = Histogram(points, AggregationTemporality.CUMULATIVE)
                metrics.append(_metric(definition, data))
        for definition in _COUNTERS:
            sums = [
                NumberDataPoint(_attributes(definition, labels), start, now, value)
                for labels, value in dict(store.counters[definition]).items()
            ]
            if sums:
                counter = Sum(sums, AggregationTemporality.CUMULATIVE, is_monotonic=True)
                metrics.append(_metric(definition, counter))
        for definition, rows in self._gauge_rows():
            gauges = [
                NumberDataPoint(_attributes(definition, labels), start, now, value)
                for labels, value in rows
            ]
            if gauges:
                metrics.append(_metric(definition, Gauge(gauges)))
        scope_metrics = [ScopeMetrics(self.scope, metrics, "")]
        return MetricsData([ResourceMetrics(self.resource, scope_metrics, "")])

    def export_prometheus(self) -> bytes:
        """The Prometheus text exposition of every metric (for the router's `/metrics`)."""
        if self.prometheus_registry is None:
            return b""
        return generate_latest(self.prometheus_registry)

    def _export_periodically(self) -> None:
        while not self._stop_export.wait(self.settings.metric_export_interval_s):
            self._export_metrics()

    def _export_metrics(self) -> None:
        data = self.metrics_data()
        for exporter in self._metric_exporters:
            with contextlib.suppress(Exception):  # an unreachable collector must not stop us
                exporter.export(data)

    # --- the request path ------------------------------------------------------------------

    def backends_of(self, catalog: Catalog) -> Mapping[str, BackendInfo]:
        """What `RequestTrace.decided` needs about the catalog's backends (cached per catalog)."""
        cached = self._backend_infos
        if cached is not None and cached[0] is catalog:
            return cached[1]
        infos = {
            name: BackendInfo(
                name=name,
                location=backend.snapshot.location,
                litellm_model=backend.upstream.litellm_model,
                upstream_model=backend.upstream.upstream_model,
                api_base=backend.upstream.api_base,
            )
            for name, backend in catalog.backends.items()
        }
        self._backend_infos = (catalog, infos)
        return infos

    def start_request(
        self, tenant: str, requested_model: str, stream: bool, body: Mapping[str, Any] | None = None
    ) -> RequestTrace:
        trace_id = random.getrandbits(128)
        sampled = self._tracing and (trace_id & 0xFFFFFFFFFFFFFFFF) < self._sample_bound
        attributes: dict[str, Any] = {}
        if sampled:
            attributes = {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": requested_model,
                "modelplane.tenant": tenant,
                "modelplane.stream": stream,
            }
            if body is not None:
                max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
                if isinstance(max_tokens, int):
                    attributes["gen_ai.request.max_tokens"] = max_tokens
                temperature = body.get("temperature")
                if isinstance(temperature, int | float):
                    attributes["gen_ai.request.temperature"] = float(temperature)
                if self.settings.capture_content and "messages" in body:
                    attributes["gen_ai.input.messages"] = orjson.dumps(body["messages"]).decode()
        return RequestTrace(self, tenant, requested_model, trace_id, sampled, attributes)

    def _emit(self, spans: Sequence[ReadableSpan]) -> None:
        for span in spans:
            for processor in self._span_processors:
                processor.on_end(span)

    def _span(
        self,
        name: str,
        trace_id: int,
        span_id: int,
        parent_span_id: int | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        start_ns: int,
        end_ns: int,
        status: Status,
    ) -> ReadableSpan:
        flags = TraceFlags(TraceFlags.SAMPLED)
        parent = (
            None
            if parent_span_id is None
            else SpanContext(trace_id, parent_span_id, is_remote=False, trace_flags=flags)
        )
        return ReadableSpan(
            name=name,
            context=SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags),
            parent=parent,
            resource=self.resource,
            attributes=attributes,
            kind=kind,
            status=status,
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=self.scope,
        )

    def shutdown(self) -> None:
        self._stop_export.set()
        if self._exporter_thread is not None:
            self._exporter_thread.join(timeout=5)
            self._export_metrics()
        for exporter in self._metric_exporters:
            with contextlib.suppress(Exception):
                exporter.shutdown()
        for processor in self._span_processors:
            processor.shutdown()
        if self.audit_log is not None:
            self.audit_log.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.shutdown)


def _metric(definition: _Definition, data: Any) -> Metric:
    return Metric(definition.name, definition.description, definition.unit, data)


_OK = Status(StatusCode.UNSET)


class RequestTrace:
    """The telemetry of one request: call `decided`, then `attempt`s, then `finish` or `fail`."""

    __slots__ = (
        "_attempts",
        "_attributes",
        "_backends",
        "_decision",
        "_ended",
        "_requested_model",
        "_sampled",
        "_start_ns",
        "_started",
        "_telemetry",
        "_tenant",
        "trace_id",
    )

    def __init__(
        self,
        telemetry: Telemetry,
        tenant: str,
        requested_model: str,
        trace_id: int,
        sampled: bool,
        attributes: dict[str, Any],
    ) -> None:
        self._telemetry = telemetry
        self._tenant = tenant
        self._requested_model = requested_model
        self.trace_id = trace_id
        self._sampled = sampled
        self._attributes = attributes
        self._started = time.perf_counter()
        self._start_ns = time.time_ns()
        self._decision: Decision | None = None
        self._backends: Mapping[str, BackendInfo] = {}
        self._attempts: list[AttemptTrace] = []
        self._ended = False

    def decided(
        self, decision: Decision, backends: Mapping[str, BackendInfo], duration_s: float
    ) -> None:
        """Record the policy decision (called once, before any attempt)."""
        telemetry = self._telemetry
        self._decision = decision
        self._backends = backends
        telemetry._store.observe(DECISION_DURATION, (), duration_s)
        blocked = decision.egress_blocked
        if blocked:
            telemetry._store.add(EGRESS_BLOCKED, (self._tenant, decision.data_class.value), 1.0)
        if self._sampled:
            attributes = self._attributes
            attributes["modelplane.data_class"] = decision.data_class.value
            if decision.pii_found:
                attributes["modelplane.pii"] = tuple(
                    sorted(pii.value for pii in decision.pii_found)
                )
            chosen = decision.chosen
            codes = (*decision.reasons, *(chosen.reasons if chosen else ()))
            # One string, as in the x-modelplane-decision header.
            attributes["modelplane.reasons"] = ",".join(dict.fromkeys(codes))
            if blocked:
                attributes["modelplane.egress_blocked"] = True

    def attempt(self, backend: str) -> AttemptTrace:
        """A child span for one upstream attempt."""
        attempt = AttemptTrace(self, backend)
        self._attempts.append(attempt)
        return attempt

    def finish(
        self,
        backend: str,
        *,
        input_tokens: int,
        output_tokens: int,
        cost_usd: float,
        ttft_s: float | None,
        status: int = 200,
    ) -> None:
        """The request was answered by `backend` (after any failed attempts)."""
        if self._ended:
            return
        self._ended = True
        telemetry = self._telemetry
        store = telemetry._store
        info = self._backends.get(backend)
        system = info.system if info else ""
        operation = ("chat", system, self._requested_model, backend)
        if input_tokens:
            store.observe(TOKEN_USAGE, (*operation, "input"), input_tokens)
        if output_tokens:
            store.observe(TOKEN_USAGE, (*operation, "output"), output_tokens)
        store.observe(REQUEST_DURATION, (*operation, ""), time.perf_counter() - self._started)
        if ttft_s is not None:
            store.observe(TIME_TO_FIRST_TOKEN, operation, ttft_s)
        if cost_usd > 0:
            store.add(COST, (self._tenant, backend), cost_usd)
        spill = self._spill_reason(backend)
        if spill is not None:
            store.add(SPILLOVER, (backend, spill), 1.0)
        if self._sampled:
            attributes = self._attributes
            attributes["modelplane.backend"] = backend
            attributes["gen_ai.system"] = system
            if info is not None:
                attributes["gen_ai.response.model"] = info.upstream_model
            attributes["gen_ai.usage.input_tokens"] = input_tokens
            attributes["gen_ai.usage.output_tokens"] = output_tokens
            attributes["modelplane.cost_usd"] = cost_usd
            if spill is not None:
                attributes["modelplane.spillover"] = spill
            attributes["http.response.status_code"] = status
            self._end_spans(_OK)
        self._audit(backend, "ok", status)

    def fail(self, error_type: str, status: int, message: str = "") -> None:
        """The request was answered with an error (`error_type`: an OpenAI error code)."""
        if self._ended:
            return
        self._ended = True
        labels = ("chat", "", self._requested_model, "", error_type)
        self._telemetry._store.observe(
            REQUEST_DURATION, labels, time.perf_counter() - self._started
        )
        if self._sampled:
            self._attributes["error.type"] = error_type
            self._attributes["http.response.status_code"] = status
            self._end_spans(Status(StatusCode.ERROR, message[:200]))
        self._audit(None, error_type, status)

    def _end_spans(self, status: Status) -> None:
        telemetry = self._telemetry
        request_span_id = random.getrandbits(64)
        spans = [
            attempt._readable(telemetry, self.trace_id, request_span_id)
            for attempt in self._attempts
            if attempt.end_ns is not None
        ]
        spans.append(
            telemetry._span(
                f"chat {self._requested_model}",
                self.trace_id,
                request_span_id,
                None,
                SpanKind.SERVER,
                self._attributes,
                self._start_ns,
                time.time_ns(),
                status,
            )
        )
        telemetry._emit(spans)

    def _spill_reason(self, backend: str) -> str | None:
        info = self._backends.get(backend)
        if info is None or info.location is not Location.EXTERNAL or self._decision is None:
            return None
        for candidate in self._decision.candidates:
            candidate_info = self._backends.get(candidate.backend)
            if candidate_info is None or candidate_info.location is not Location.IN_CLUSTER:
                continue
            for reason in candidate.reasons:
                spill = _SPILL_REASONS.get(reason)
                if spill is not None:
                    return spill
        return None

    def _audit(self, backend: str | None, outcome: str, status: int) -> None:
        audit = self._telemetry.audit_log
        decision = self._decision
        if audit is None or decision is None:
            return
        chosen = decision.chosen
        codes = (*decision.reasons, *(chosen.reasons if chosen else ()))
        hosts = [attempt.host for attempt in self._attempts]
        audit.write(
            {
                "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                "tenant": self._tenant,
                "data_class": decision.data_class.value,
                "pii": sorted(pii.value for pii in decision.pii_found),
                "backend": backend,
                "reasons": list(dict.fromkeys(codes)),
                "upstream_hosts": hosts,
                "upstream_host": hosts[-1] if backend and hosts else None,
                "outcome": outcome,
                "status": status,
                "trace_id": format(self.trace_id, "032x"),
            }
        )


class AttemptTrace:
    """One upstream attempt; becomes a CLIENT child span when its request ends."""

    __slots__ = ("backend", "end_ns", "error", "host", "model", "start_ns", "system", "ttft_s")

    def __init__(self, request: RequestTrace, backend: str) -> None:
        info = request._backends.get(backend)
        self.backend = backend
        self.host = info.host if info else ""
        self.model = info.upstream_model if info else backend
        self.system = info.system if info else ""
        self.start_ns = time.time_ns()
        self.end_ns: int | None = None
        self.ttft_s: float | None = None
        self.error: tuple[str, str] | None = None

    def succeeded(self, ttft_s: float | None = None) -> None:
        self.ttft_s = ttft_s
        self.end_ns = time.time_ns()

    def failed(self, error_type: str, message: str = "") -> None:
        self.error = (error_type, message[:200])
        self.end_ns = time.time_ns()

    def _readable(self, telemetry: Telemetry, trace_id: int, parent_id: int) -> ReadableSpan:
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": self.model,
            "gen_ai.system": self.system,
            "server.address": self.host,
            "modelplane.backend": self.backend,
        }
        status = _OK
        if self.ttft_s is not None:
            attributes["modelplane.ttft_s"] = self.ttft_s
        if self.error is not None:
            attributes["error.type"] = self.error[0]
            status = Status(StatusCode.ERROR, self.error[1])
        return telemetry._span(
            f"chat {self.model}",
            trace_id,
            random.getrandbits(64),
            parent_id,
            SpanKind.CLIENT,
            attributes,
            self.start_ns,
            self.end_ns or time.time_ns(),
            status,
        )


def _otlp_exporters(endpoint: str) -> tuple[SpanExporter, MetricExporter]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = endpoint.rstrip("/")
    return (
        OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
    )


__all__ = [
    "METRIC_NAMES",
    "AttemptTrace",
    "AuditLog",
    "BackendInfo",
    "RequestTrace",
    "Telemetry",
    "TelemetrySettings",
    "upstream_host",
]
