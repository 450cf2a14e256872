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

The request path only records into in-memory SDK structures and appends audit lines to a
buffer; exporting (batch span processor, periodic metric reader) and writing the audit file
happen off the request path.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

import orjson
from modelplane.router.catalog import Catalog
from modelplane.router.policy.types import Decision, Location
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry, generate_latest
from pydantic import BaseModel, ConfigDict, Field

INSTRUMENTATION_NAME = "modelplane.router"

# Reason codes of the policy engine this module reads (router/policy/engine.py).
_PRIVACY_BLOCKS = ("privacy:external-blocked", "privacy:tenant-in-cluster-only")
_SPILL_REASONS = {"latency:over-target": "latency", "health:no-ready-replica": "no-ready-replica"}

# Buckets from the GenAI semantic conventions' advice for these histograms.
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
_DURATION_BUCKETS = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
)  # fmt: skip
# Requested models are client-chosen strings: bound how many attribute sets are cached.
_MAX_ATTRIBUTE_SETS = 1024
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


class Telemetry:
    """Creates per-request traces and owns the meters, exporters and the audit log."""

    def __init__(
        self,
        settings: TelemetrySettings | None = None,
        *,
        span_processors: Sequence[SpanProcessor] = (),
        metric_readers: Sequence[MetricReader] = (),
        audit_log: AuditLog | None = None,
    ) -> None:
        self.settings = settings = settings or TelemetrySettings()
        resource = Resource.create({"service.name": settings.service_name})
        self._tracer_provider = TracerProvider(
            resource=resource,
            sampler=_sampler(settings.trace_sample_ratio),
        )
        for processor in span_processors:
            self._tracer_provider.add_span_processor(processor)
        readers = list(metric_readers)
        if settings.otlp_endpoint:
            span_exporter, metric_exporter = _otlp_exporters(settings.otlp_endpoint)
            self._tracer_provider.add_span_processor(BatchSpanProcessor(span_exporter))
            readers.append(
                PeriodicExportingMetricReader(
                    metric_exporter,
                    export_interval_millis=settings.metric_export_interval_s * 1000,
                )
            )
        self.prometheus_registry: CollectorRegistry | None = None
        if settings.prometheus:
            from opentelemetry.exporter.prometheus import PrometheusMetricReader

            self.prometheus_registry = CollectorRegistry(auto_describe=True)
            readers.append(
                PrometheusMetricReader(disable_target_info=True, registry=self.prometheus_registry)
            )
        self._meter_provider = MeterProvider(resource=resource, metric_readers=readers)
        self.tracer = self._tracer_provider.get_tracer(INSTRUMENTATION_NAME)
        meter = self._meter_provider.get_meter(INSTRUMENTATION_NAME)
        self._token_usage = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens used per request, by type (input/output)",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._request_duration = meter.create_histogram(
            "gen_ai.server.request.duration",
            unit="s",
            description="Time from request received to response completed",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS,
        )
        self._time_to_first_token = meter.create_histogram(
            "gen_ai.server.time_to_first_token",
            unit="s",
            description="Time until the upstream's first response byte or event",
            explicit_bucket_boundaries_advisory=_TTFT_BUCKETS,
        )
        self._decision_duration = meter.create_histogram(
            "modelplane.decision.duration",
            unit="s",
            description="Time the routing decision took (policy, PII scan, shared state)",
            explicit_bucket_boundaries_advisory=_DECISION_BUCKETS,
        )
        self._cost = meter.create_counter(
            "modelplane.cost", unit="USD", description="Estimated cost by tenant and backend"
        )
        self._egress_blocked = meter.create_counter(
            "modelplane.egress.blocked",
            unit="{request}",
            description="Requests that privacy kept away from external backends",
        )
        self._spillover = meter.create_counter(
            "modelplane.spillover",
            unit="{request}",
            description="Requests sent outside: in-cluster backends too slow or scaled to zero",
        )
        self._budget_sources: list[Callable[[], Iterable[tuple[str, str, float]]]] = []
        self._price_sources: list[Callable[[], Iterable[tuple[str, str, str, float]]]] = []
        meter.create_observable_gauge(
            "modelplane.budget.remaining",
            callbacks=[self._observe_budgets],
            unit="USD",
            description="Budget left per tenant and period (day, month)",
        )
        meter.create_observable_gauge(
            "modelplane.backend.cost_per_mtok",
            callbacks=[self._observe_prices],
            unit="USD",
            description="Price per million tokens: measured for self-hosted, list for external",
        )
        self._backend_infos: tuple[Catalog, Mapping[str, BackendInfo]] | None = None
        self._attribute_sets: dict[
            tuple[str, str, str], tuple[dict[str, str], dict[str, str], dict[str, str]]
        ] = {}
        self.audit_log = audit_log
        if audit_log is None and settings.audit_log:
            self.audit_log = AuditLog.open(settings.audit_log, settings.audit_flush_interval_s)

    # --- sources read when metrics are collected -------------------------------------------

    def add_budget_source(self, source: Callable[[], Iterable[tuple[str, str, float]]]) -> None:
        """`source()` yields (tenant, period, remaining USD) when metrics are collected."""
        self._budget_sources.append(source)

    def add_price_source(self, source: Callable[[], Iterable[tuple[str, str, str, float]]]) -> None:
        """`source()` yields (backend, location, basis, USD per Mtok); basis: measured or list."""
        self._price_sources.append(source)

    def _observe_budgets(self, _: CallbackOptions) -> Iterable[Observation]:
        for source in self._budget_sources:
            for tenant, period, remaining in source():
                yield Observation(remaining, {"modelplane.tenant": tenant, "period": period})

    def _observe_prices(self, _: CallbackOptions) -> Iterable[Observation]:
        for source in self._price_sources:
            for backend, location, basis, usd in source():
                yield Observation(
                    usd,
                    {
                        "modelplane.backend": backend,
                        "modelplane.location": location,
                        "modelplane.price_basis": basis,
                    },
                )

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
        attributes: dict[str, Any] = {
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
        span = self.tracer.start_span(
            f"chat {requested_model}", kind=SpanKind.SERVER, attributes=attributes
        )
        return RequestTrace(self, span, tenant, requested_model)

    def _metric_attributes(
        self, system: str, requested_model: str, backend: str
    ) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
        """The attribute sets of a finished request's metrics, built once per combination."""
        key = (system, requested_model, backend)
        cached = self._attribute_sets.get(key)
        if cached is None:
            common = {
                "gen_ai.operation.name": "chat",
                "gen_ai.system": system,
                "gen_ai.request.model": requested_model,
                "modelplane.backend": backend,
            }
            cached = (
                common,
                {**common, "gen_ai.token.type": "input"},
                {**common, "gen_ai.token.type": "output"},
            )
            if len(self._attribute_sets) < _MAX_ATTRIBUTE_SETS:
                self._attribute_sets[key] = cached
        return cached

    def export_prometheus(self) -> bytes:
        """The Prometheus text exposition of every metric (for the router's `/metrics`)."""
        if self.prometheus_registry is None:
            return b""
        return generate_latest(self.prometheus_registry)

    def shutdown(self) -> None:
        self._tracer_provider.shutdown()
        self._meter_provider.shutdown()
        if self.audit_log is not None:
            self.audit_log.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.shutdown)


class RequestTrace:
    """The telemetry of one request: call `decided`, then `attempt`s, then `finish` or `fail`."""

    __slots__ = (
        "_attempt_hosts",
        "_backends",
        "_decision",
        "_ended",
        "_requested_model",
        "_span",
        "_started",
        "_telemetry",
        "_tenant",
    )

    def __init__(self, telemetry: Telemetry, span: Span, tenant: str, requested_model: str) -> None:
        self._telemetry = telemetry
        self._span = span
        self._tenant = tenant
        self._requested_model = requested_model
        self._started = time.perf_counter()
        self._decision: Decision | None = None
        self._backends: Mapping[str, BackendInfo] = {}
        self._attempt_hosts: list[str] = []
        self._ended = False

    @property
    def span(self) -> Span:
        return self._span

    def decided(
        self, decision: Decision, backends: Mapping[str, BackendInfo], duration_s: float
    ) -> None:
        """Record the policy decision (called once, before any attempt)."""
        telemetry = self._telemetry
        self._decision = decision
        self._backends = backends
        telemetry._decision_duration.record(duration_s)
        chosen = decision.chosen
        span = self._span
        span.set_attribute("modelplane.data_class", decision.data_class.value)
        if decision.pii_found:
            span.set_attribute("modelplane.pii", sorted(pii.value for pii in decision.pii_found))
        codes = (*decision.reasons, *(chosen.reasons if chosen else ()))
        # One string, as in the x-modelplane-decision header: cheaper to record than an array.
        span.set_attribute("modelplane.reasons", ",".join(dict.fromkeys(codes)))
        blocked = any(
            reason in _PRIVACY_BLOCKS
            for candidate in decision.candidates
            for reason in candidate.reasons
        )
        if blocked:
            telemetry._egress_blocked.add(
                1,
                {
                    "modelplane.tenant": self._tenant,
                    "modelplane.data_class": decision.data_class.value,
                },
            )
            span.set_attribute("modelplane.egress_blocked", True)

    def attempt(self, backend: str) -> AttemptTrace:
        """A child span for one upstream attempt."""
        info = self._backends.get(backend)
        host = upstream_host(info.api_base) if info else ""
        self._attempt_hosts.append(host)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": info.upstream_model if info else backend,
            "gen_ai.system": _system(info.litellm_model) if info else "",
            "server.address": host,
            "modelplane.backend": backend,
        }
        context = trace.set_span_in_context(self._span)
        span = self._telemetry.tracer.start_span(
            f"chat {attributes['gen_ai.request.model']}",
            context=context,
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        return AttemptTrace(span)

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
        info = self._backends.get(backend)
        system = _system(info.litellm_model) if info else ""
        duration = time.perf_counter() - self._started
        metric_attributes, input_attributes, output_attributes = telemetry._metric_attributes(
            system, self._requested_model, backend
        )
        if input_tokens:
            telemetry._token_usage.record(input_tokens, input_attributes)
        if output_tokens:
            telemetry._token_usage.record(output_tokens, output_attributes)
        telemetry._request_duration.record(duration, metric_attributes)
        if ttft_s is not None:
            telemetry._time_to_first_token.record(ttft_s, metric_attributes)
        if cost_usd > 0:
            telemetry._cost.add(
                cost_usd, {"modelplane.tenant": self._tenant, "modelplane.backend": backend}
            )
        spill = self._spill_reason(backend)
        if spill is not None:
            telemetry._spillover.add(
                1, {"modelplane.backend": backend, "modelplane.spill_reason": spill}
            )
        span = self._span
        span.set_attribute("modelplane.backend", backend)
        span.set_attribute("gen_ai.system", system)
        if info is not None:
            span.set_attribute("gen_ai.response.model", info.upstream_model)
        span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        span.set_attribute("modelplane.cost_usd", cost_usd)
        if spill is not None:
            span.set_attribute("modelplane.spillover", spill)
        span.set_attribute("http.response.status_code", status)
        span.end()
        self._audit(backend, "ok", status)

    def fail(self, error_type: str, status: int, message: str = "") -> None:
        """The request was answered with an error (`error_type`: an OpenAI error code)."""
        if self._ended:
            return
        self._ended = True
        self._telemetry._request_duration.record(
            time.perf_counter() - self._started,
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": self._requested_model,
                "error.type": error_type,
            },
        )
        span = self._span
        span.set_attribute("error.type", error_type)
        span.set_attribute("http.response.status_code", status)
        span.set_status(Status(StatusCode.ERROR, message[:200]))
        span.end()
        self._audit(None, error_type, status)

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
        audit.write(
            {
                "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                "tenant": self._tenant,
                "data_class": decision.data_class.value,
                "pii": sorted(pii.value for pii in decision.pii_found),
                "backend": backend,
                "reasons": list(dict.fromkeys(codes)),
                "upstream_hosts": self._attempt_hosts,
                "upstream_host": self._attempt_hosts[-1]
                if backend and self._attempt_hosts
                else None,
                "outcome": outcome,
                "status": status,
                "trace_id": format(self._span.get_span_context().trace_id, "032x"),
            }
        )


class AttemptTrace:
    """One upstream attempt's span."""

    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def succeeded(self, ttft_s: float | None = None) -> None:
        if ttft_s is not None:
            self._span.set_attribute("modelplane.ttft_s", ttft_s)
        self._span.end()

    def failed(self, error_type: str, message: str = "") -> None:
        self._span.set_attribute("error.type", error_type)
        self._span.set_status(Status(StatusCode.ERROR, message[:200]))
        self._span.end()


def _sampler(ratio: float) -> Sampler:
    # Sampling everything needs no per-span decision work; the ratio sampler costs microseconds.
    return ALWAYS_ON if ratio >= 1.0 else ParentBased(TraceIdRatioBased(ratio))


def _otlp_exporters(endpoint: str) -> tuple[SpanExporter, Any]:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    base = endpoint.rstrip("/")
    return (
        OTLPSpanExporter(endpoint=f"{base}/v1/traces"),
        OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
    )


__all__ = [
    "AttemptTrace",
    "AuditLog",
    "BackendInfo",
    "RequestTrace",
    "Telemetry",
    "TelemetrySettings",
    "upstream_host",
]
