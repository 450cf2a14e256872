"""A router `Telemetry` whose spans, metrics and audit lines a test reads back from memory."""

from __future__ import annotations

import io
from typing import Any

import orjson
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from modelplane.router.adapters.telemetry import AuditLog, Telemetry, TelemetrySettings


class KeptOpen(io.BytesIO):
    """An audit sink that stays readable after the audit log closes it on shutdown."""

    def close(self) -> None:
        pass


class CapturedTelemetry:
    """`telemetry` records spans into `spans` and audit lines into `audit`; call `shutdown()`."""

    def __init__(self, settings: TelemetrySettings | None = None) -> None:
        self.spans = InMemorySpanExporter()
        self.audit = KeptOpen()
        self.telemetry = Telemetry(
            settings or TelemetrySettings(),
            span_processors=[SimpleSpanProcessor(self.spans)],
            audit_log=AuditLog(self.audit, flush_interval_s=60),
        )

    def metric_points(self, name: str) -> list[Any]:
        """Every data point recorded so far for the metric `name`."""
        data = self.telemetry.metrics_data()
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def audit_lines(self) -> list[dict[str, Any]]:
        """The audit log's lines so far, parsed."""
        assert self.telemetry.audit_log is not None
        self.telemetry.audit_log.flush()
        return [orjson.loads(line) for line in self.audit.getvalue().splitlines()]

    def shutdown(self) -> None:
        self.telemetry.shutdown()
