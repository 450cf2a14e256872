"""The demo's report: where the traffic went and why, what it cost, and whether anything leaked.

`build_report` is pure: it takes what the client observed (one `Outcome` per request) and what
the external provider received, and computes every figure. Rendering (terminal tables, the PNG
chart, the HTML page) only formats a `DemoReport`.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from modelplane.demo.pricing import ModelPrice
from modelplane.demo.workload import REFERENCE_PATTERN, Kind, WorkloadItem

REJECTED = "(not served)"


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request as the client saw it."""

    reference: str
    kind: Kind
    sensitive: bool
    status: int  # HTTP status; 0 when no response arrived at all
    backend: str | None  # x-modelplane-backend
    decision: str  # x-modelplane-decision, or the error code of a refused request
    data_class: str | None  # x-modelplane-data-class: the class the router applied
    latency_s: float
    ttft_s: float | None  # streamed requests only
    input_tokens: int
    output_tokens: int
    error: str | None = None
    answer: str = ""
    why: str = ""  # the one-line reason the report groups by (see `why_routed`)

    @property
    def served(self) -> bool:
        return 200 <= self.status < 300 and self.backend is not None


@dataclass(frozen=True, slots=True)
class BackendInfo:
    name: str
    label: str  # as shown to people, e.g. "gpt-4o (SIMULATED)"
    external: bool
    price: ModelPrice | None  # None: no per-token price (self-hosted)


@dataclass(frozen=True, slots=True)
class BackendSummary:
    backend: str
    label: str
    external: bool
    requests: int
    reasons: tuple[tuple[str, int], ...]  # `Outcome.why` with counts, most common first
    input_tokens: int
    output_tokens: int
    cost_usd: float
    p50_latency_s: float | None
    p95_latency_s: float | None
    p50_ttft_s: float | None


@dataclass(frozen=True, slots=True)
class Violation:
    reference: str
    kind: Kind
    evidence: str  # what in the received request gave it away


@dataclass(frozen=True, slots=True)
class DemoReport:
    total_requests: int
    backends: tuple[BackendSummary, ...]
    by_kind: tuple[tuple[Kind, tuple[tuple[str, int], ...]], ...]
    cost_usd: float
    all_gpt4o_cost_usd: float
    violations: tuple[Violation, ...]
    router_reported_violations: int  # sensitive requests whose response header names an external
    external_requests_received: int | None  # None: no receiving-end log (real API)
    external_label: str
    notes: tuple[str, ...] = field(default=())

    @property
    def saving_fraction(self) -> float:
        if self.all_gpt4o_cost_usd <= 0:
            return 0.0
        return 1 - self.cost_usd / self.all_gpt4o_cost_usd


def percentile(values: Sequence[float], fraction: float) -> float | None:
    """Linear interpolation between closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def reason_codes(decision: str) -> list[str]:
    return [code for code in re.split(r"[,;\s]+", decision) if code]


SPILLOVER = "spillover: self-hosted model busy"
CONFIDENTIAL_STAYS = "confidential: in-cluster only"
PII_STAYS = "PII found: in-cluster only"
NEEDS_IMAGES = "needs images: self-hosted model has none"
TOO_LONG = "too long for the self-hosted context"
CHEAPEST = "cheapest eligible backend"

# The policy engine's codes for why a backend could not take a request, in words.
INELIGIBLE_WORDS = {
    "capability:no-images": NEEDS_IMAGES,
    "capability:context-too-small": TOO_LONG,
    "capability:no-tools": "needs tools: self-hosted model has none",
    "capability:no-json": "needs JSON mode: self-hosted model has none",
    "health:cooldown": "self-hosted model in cooldown",
    "health:no-ready-replica": "self-hosted model not ready",
}


def why_routed(
    served_by: str | None,
    external: bool,
    decision: str,
    declared_confidential: bool,
    local_ineligible: Sequence[str],
) -> str:
    """One reason per request, from the response's decision header and the router's explanation.

    `local_ineligible` holds the codes /v1/route/explain gave the self-hosted backend when it was
    not eligible; the decision header only carries the chosen backend's codes.
    """
    codes = reason_codes(decision)
    if served_by is None:
        return f"refused: {decision or 'no response'}"
    if any(code.startswith("fallback_after=") for code in codes):
        return SPILLOVER
    if not external:
        if "data-class:raised-by-pii" in codes or any(c.startswith("pii:") for c in codes):
            return PII_STAYS
        if declared_confidential or "data-class:confidential" in codes:
            return CONFIDENTIAL_STAYS
        return CHEAPEST
    for code in local_ineligible:
        if code in INELIGIBLE_WORDS:
            return INELIGIBLE_WORDS[code]
    return CHEAPEST


def find_violations(
    items: Iterable[WorkloadItem], received_texts: Iterable[str]
) -> list[Violation]:
    """Sensitive requests that reached the external provider, judged from what it received.

    A received request gives a sensitive one away by its reference or by any of the literal
    secrets (PII values, code names) the workload planted in it, so a router that rewrote the
    system message would still be caught.
    """
    sensitive = {item.reference: item for item in items if item.sensitive}
    found: dict[str, Violation] = {}
    for text in received_texts:
        for reference in REFERENCE_PATTERN.findall(text):
            item = sensitive.get(reference)
            if item is not None and reference not in found:
                found[reference] = Violation(reference, item.kind, f"reference {reference}")
        for item in sensitive.values():
            if item.reference in found:
                continue
            leaked = next((secret for secret in item.secrets if secret in text), None)
            if leaked is not None:
                found[item.reference] = Violation(item.reference, item.kind, f"value {leaked!r}")
    return sorted(found.values(), key=lambda violation: violation.reference)


def outcome_cost(outcome: Outcome, backends: Mapping[str, BackendInfo]) -> float:
    info = backends.get(outcome.backend or "")
    if not outcome.served or info is None or info.price is None:
        return 0.0
    return info.price.cost_usd(outcome.input_tokens, outcome.output_tokens)


def build_report(
    outcomes: Sequence[Outcome],
    items: Sequence[WorkloadItem],
    backends: Mapping[str, BackendInfo],
    reference_price: ModelPrice,
    received_texts: Sequence[str] | None,
    external_label: str,
) -> DemoReport:
    """Every figure of the report. `received_texts` is None when there is no receiving-end log."""
    per_backend: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        key = outcome.backend if outcome.served and outcome.backend else REJECTED
        per_backend.setdefault(key, []).append(outcome)

    summaries = []
    for name in sorted(per_backend, key=lambda key: (key == REJECTED, key)):
        group = per_backend[name]
        info = backends.get(name)
        reasons: Counter[str] = Counter(outcome.why or outcome.decision for outcome in group)
        latencies = [outcome.latency_s for outcome in group if outcome.served]
        ttfts = [outcome.ttft_s for outcome in group if outcome.ttft_s is not None]
        summaries.append(
            BackendSummary(
                backend=name,
                label=info.label if info else name,
                external=info.external if info else False,
                requests=len(group),
                reasons=tuple(reasons.most_common()),
                input_tokens=sum(outcome.input_tokens for outcome in group),
                output_tokens=sum(outcome.output_tokens for outcome in group),
                cost_usd=sum(outcome_cost(outcome, backends) for outcome in group),
                p50_latency_s=percentile(latencies, 0.5),
                p95_latency_s=percentile(latencies, 0.95),
                p50_ttft_s=percentile(ttfts, 0.5),
            )
        )

    by_kind = []
    for kind in Kind:
        where: Counter[str] = Counter(
            (outcome.backend if outcome.served and outcome.backend else REJECTED)
            for outcome in outcomes
            if outcome.kind is kind
        )
        if where:
            by_kind.append((kind, tuple(sorted(where.items()))))

    served = [outcome for outcome in outcomes if outcome.served]
    external = {name for name, info in backends.items() if info.external}
    router_reported = sum(
        1 for outcome in outcomes if outcome.sensitive and outcome.backend in external
    )
    violations = find_violations(items, received_texts or ())
    notes = []
    if received_texts is None:
        notes.append(
            "no receiving-end log for the real API: privacy violations are counted from the "
            "router's response headers only"
        )
        violations = [
            Violation(outcome.reference, outcome.kind, f"x-modelplane-backend: {outcome.backend}")
            for outcome in outcomes
            if outcome.sensitive and outcome.backend in external
        ]
    return DemoReport(
        total_requests=len(outcomes),
        backends=tuple(summaries),
        by_kind=tuple(by_kind),
        cost_usd=sum(summary.cost_usd for summary in summaries),
        all_gpt4o_cost_usd=sum(
            reference_price.cost_usd(outcome.input_tokens, outcome.output_tokens)
            for outcome in served
        ),
        violations=tuple(violations),
        router_reported_violations=router_reported,
        external_requests_received=None if received_texts is None else len(received_texts),
        external_label=external_label,
        notes=tuple(notes),
    )


def format_seconds(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:,.0f} ms" if value < 1 else f"{value:.2f} s"


def format_usd(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:,.2f}"


def summary_lines(report: DemoReport) -> list[str]:
    """The plain-text summary; the last line is always `privacy violations: N`."""
    lines = [
        f"requests: {report.total_requests}",
        f"cost with modelplane: {format_usd(report.cost_usd)}",
        f"cost if everything went to GPT-4o: {format_usd(report.all_gpt4o_cost_usd)} "
        f"({report.saving_fraction:.0%} saved)",
    ]
    if report.external_requests_received is not None:
        lines.append(
            f"{report.external_label} received {report.external_requests_received} requests; "
            f"checked each for confidential references and planted PII"
        )
    lines.extend(report.notes)
    lines.append(f"privacy violations: {len(report.violations)}")
    return lines


# ----- rendering -----------------------------------------------------------------------------

SELF_HOSTED_COLOURS = ("#2e7d32", "#66bb6a", "#1b5e20")
EXTERNAL_COLOURS = ("#ef6c00", "#ffa726", "#bf360c")
REJECTED_COLOUR = "#9e9e9e"


def colour_map(report: DemoReport) -> dict[str, str]:
    """Self-hosted backends in greens, external ones in oranges, refused requests in grey."""
    colours: dict[str, str] = {}
    self_hosted = [s.backend for s in report.backends if s.backend != REJECTED and not s.external]
    external = [s.backend for s in report.backends if s.external]
    for index, name in enumerate(self_hosted):
        colours[name] = SELF_HOSTED_COLOURS[index % len(SELF_HOSTED_COLOURS)]
    for index, name in enumerate(external):
        colours[name] = EXTERNAL_COLOURS[index % len(EXTERNAL_COLOURS)]
    colours[REJECTED] = REJECTED_COLOUR
    return colours


def write_chart(report: DemoReport, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = colour_map(report)
    labels = {summary.backend: summary.label for summary in report.backends}
    present = [summary.backend for summary in report.backends]
    figure, (where_axes, why_axes, cost_axes) = plt.subplots(
        1, 3, figsize=(18, 6.6), gridspec_kw={"width_ratios": [1.1, 1.3, 0.7]}
    )
    figure.suptitle(title, fontsize=14, fontweight="bold")

    kinds = [kind for kind, _ in report.by_kind][::-1]
    counts = {kind: dict(where) for kind, where in report.by_kind}
    left = [0] * len(kinds)
    for backend in present:
        values = [counts[kind].get(backend, 0) for kind in kinds]
        bars = where_axes.barh(
            [kind.value for kind in kinds], values, left=left, color=colours[backend]
        )
        where_axes.bar_label(
            bars, labels=[str(v) if v else "" for v in values], label_type="center", color="white"
        )
        left = [a + b for a, b in zip(left, values, strict=True)]
    where_axes.set_title("Where each kind of request went")
    where_axes.set_xlabel("requests")

    reason_rows = [
        (summary.backend, reason, count)
        for summary in report.backends
        for reason, count in summary.reasons[:5]
    ][::-1]
    why_axes.barh(
        range(len(reason_rows)),
        [count for _, _, count in reason_rows],
        color=[colours[backend] for backend, _, _ in reason_rows],
    )
    why_axes.set_yticks(range(len(reason_rows)), [reason for _, reason, _ in reason_rows])
    for row, (_, _, count) in enumerate(reason_rows):
        why_axes.text(count, row, f" {count}", va="center", fontsize=9)
    why_axes.set_title("Why the router sent them there")
    why_axes.set_xlabel("requests")
    why_axes.margins(x=0.12)

    cost_values = [report.cost_usd, report.all_gpt4o_cost_usd]
    bars = cost_axes.bar(
        ["with modelplane", "all to GPT-4o"],
        cost_values,
        color=[SELF_HOSTED_COLOURS[0], EXTERNAL_COLOURS[0]],
    )
    cost_axes.bar_label(bars, labels=[format_usd(value) for value in cost_values])
    cost_axes.set_title(f"Cost at GPT-4o list price\n{report.saving_fraction:.0%} saved")
    cost_axes.set_ylabel("USD")
    cost_axes.margins(y=0.2)

    figure.legend(
        handles=[Patch(color=colours[name], label=labels[name]) for name in present],
        loc="lower left",
        ncol=len(present),
        frameon=False,
        bbox_to_anchor=(0.02, 0.0),
    )
    verdict_colour = SELF_HOSTED_COLOURS[0] if not report.violations else "#c62828"
    received = report.external_requests_received
    checked = "" if received is None else f" (checked at the receiving end: {received} requests)"
    figure.text(
        0.98,
        0.02,
        f"privacy violations: {len(report.violations)}{checked}",
        ha="right",
        fontsize=13,
        fontweight="bold",
        color=verdict_colour,
    )
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(path, dpi=110)
    plt.close(figure)


def backend_rows(report: DemoReport) -> list[list[str]]:
    rows = []
    for summary in report.backends:
        reasons = ", ".join(f"{reason} x{count}" for reason, count in summary.reasons)
        rows.append(
            [
                summary.label,
                str(summary.requests),
                reasons,
                f"{summary.input_tokens:,} / {summary.output_tokens:,}",
                format_usd(summary.cost_usd),
                format_seconds(summary.p50_latency_s),
                format_seconds(summary.p95_latency_s),
                format_seconds(summary.p50_ttft_s),
            ]
        )
    return rows


BACKEND_COLUMNS = (
    "backend",
    "requests",
    "why (from the router's decision)",
    "tokens in / out",
    "cost",
    "p50 latency",
    "p95 latency",
    "p50 TTFT (streams)",
)


def write_html(report: DemoReport, chart: Path, path: Path, title: str) -> None:
    image = base64.b64encode(chart.read_bytes()).decode()
    header = "".join(f"<th>{html.escape(column)}</th>" for column in BACKEND_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>"
        for row in backend_rows(report)
    )
    kinds = "".join(
        f"<tr><td>{html.escape(kind.value)}</td><td>"
        + html.escape(", ".join(f"{backend}: {count}" for backend, count in where))
        + "</td></tr>"
        for kind, where in report.by_kind
    )
    violations = "".join(
        f"<li>{html.escape(v.reference)} ({html.escape(v.kind.value)}): {html.escape(v.evidence)}"
        "</li>"
        for v in report.violations
    )
    summary = "".join(f"<li>{html.escape(line)}</li>" for line in summary_lines(report))
    # Only the simulated provider keeps a receiving-end log; the real API has none.
    simulated_note = (
        f'<p class="simulated">{html.escape(report.external_label)}: real GPT-4o list prices '
        "from LiteLLM's price map and a typical GPT-4o latency profile, but canned answers. The "
        "self-hosted model is real (SmolLM2-135M-Instruct on llama.cpp) and generates real text."
        "</p>"
        if report.external_requests_received is not None
        else ""
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 4px 10px; text-align: left; }}
th {{ background: #f3f3f3; }}
.simulated {{ background: #fff3cd; border: 1px solid #e0c060; padding: 0.6em 1em; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
{simulated_note}
<img src="data:image/png;base64,{image}" alt="where the traffic went and why">
<h2>Per backend</h2><table><tr>{header}</tr>{body}</table>
<h2>Per kind of request</h2><table><tr><th>kind</th><th>served by</th></tr>{kinds}</table>
<h2>Summary</h2><ul>{summary}</ul>
{"<h2>Violations</h2><ul>" + violations + "</ul>" if violations else ""}
</body></html>
"""
    path.write_text(page, encoding="utf-8")
