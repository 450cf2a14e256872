"""The demo report: per-backend figures, cost against all-GPT-4o, leaks found at the receiver."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelplane.demo.pricing import ModelPrice
from modelplane.demo.report import (
    CHEAPEST,
    CONFIDENTIAL_STAYS,
    NEEDS_IMAGES,
    PII_STAYS,
    REJECTED,
    SPILLOVER,
    TOO_LONG,
    BackendInfo,
    Outcome,
    build_report,
    find_violations,
    percentile,
    summary_lines,
    why_routed,
    write_chart,
    write_html,
)
from modelplane.demo.workload import Kind, build_workload

PRICE = ModelPrice(
    model="gpt-4o", input_usd_per_mtok=2.5, output_usd_per_mtok=10.0, context_window=128000
)
BACKENDS = {
    "local": BackendInfo("local", "local (self-hosted)", external=False, price=None),
    "gpt-4o": BackendInfo("gpt-4o", "gpt-4o (SIMULATED)", external=True, price=PRICE),
}


def outcome(reference: str, kind: Kind, backend: str | None, **overrides: object) -> Outcome:
    values: dict[str, object] = {
        "reference": reference,
        "kind": kind,
        "sensitive": kind in (Kind.CONFIDENTIAL, Kind.PII),
        "status": 200 if backend else 503,
        "backend": backend,
        "decision": "cheapest" if backend else "no_eligible_backend",
        "data_class": "public",
        "latency_s": 1.0,
        "ttft_s": None,
        "input_tokens": 1000 if backend else 0,
        "output_tokens": 100 if backend else 0,
    }
    values.update(overrides)
    return Outcome(**values)  # type: ignore[arg-type]


def test_percentile_interpolates_between_ranks() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0], 0.95) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 0.5) == pytest.approx(2.5)
    assert percentile([float(v) for v in range(1, 101)], 0.95) == pytest.approx(95.05)


def test_report_counts_per_backend_and_prices_only_the_external_one() -> None:
    outcomes = [
        outcome("D-001", Kind.PUBLIC, "local", latency_s=0.5, why=CHEAPEST),
        outcome("D-002", Kind.CONFIDENTIAL, "local", latency_s=1.5, why=CONFIDENTIAL_STAYS),
        outcome("D-003", Kind.IMAGE, "gpt-4o", why=NEEDS_IMAGES),
        outcome("D-004", Kind.BURST, None),
    ]
    report = build_report(outcomes, [], BACKENDS, PRICE, [], "SIMULATED GPT-4o")
    by_name = {summary.backend: summary for summary in report.backends}
    assert [summary.backend for summary in report.backends] == ["gpt-4o", "local", REJECTED]
    assert by_name["local"].requests == 2
    assert by_name["local"].cost_usd == 0
    assert by_name["local"].p50_latency_s == pytest.approx(1.0)
    assert dict(by_name["local"].reasons) == {CHEAPEST: 1, CONFIDENTIAL_STAYS: 1}
    assert by_name["gpt-4o"].cost_usd == pytest.approx((1000 * 2.5 + 100 * 10) / 1e6)
    assert report.cost_usd == pytest.approx(by_name["gpt-4o"].cost_usd)
    # the baseline prices every served request at GPT-4o; the refused one costs nothing anywhere
    assert report.all_gpt4o_cost_usd == pytest.approx(3 * (1000 * 2.5 + 100 * 10) / 1e6)
    assert report.saving_fraction == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("served_by", "external", "decision", "confidential", "local_ineligible", "expected"),
    [
        ("gpt-4o", True, "cost:rank-1,fallback_after=local", False, [], SPILLOVER),
        ("local", False, "data-class:raised-by-pii,pii:email,cost:rank-1", False, [], PII_STAYS),
        ("local", False, "data-class:confidential,cost:rank-1", True, [], CONFIDENTIAL_STAYS),
        ("local", False, "data-class:public,cost:rank-1", False, [], CHEAPEST),
        ("gpt-4o", True, "cost:rank-1", False, ["capability:no-images"], NEEDS_IMAGES),
        ("gpt-4o", True, "cost:rank-1", False, ["capability:context-too-small"], TOO_LONG),
        ("gpt-4o", True, "cost:rank-1", False, [], CHEAPEST),
        (None, False, "no_eligible_backend", True, [], "refused: no_eligible_backend"),
    ],
)
def test_why_routed_names_the_deciding_reason(
    served_by: str | None,
    external: bool,
    decision: str,
    confidential: bool,
    local_ineligible: list[str],
    expected: str,
) -> None:
    assert why_routed(served_by, external, decision, confidential, local_ineligible) == expected


def test_violation_is_found_by_reference_or_planted_value_not_by_router_headers() -> None:
    plan = build_workload(48)
    confidential = next(item for item in plan.items if item.kind is Kind.CONFIDENTIAL)
    pii = next(item for item in plan.items if item.kind is Kind.PII)
    public = next(item for item in plan.items if item.kind is Kind.PUBLIC)
    received = [
        f"system prompt for {public.reference}",
        f"rewritten without reference: {pii.secrets[0]}",
        f"... {confidential.reference} ...",
    ]
    violations = find_violations(plan.items, received)
    assert {violation.reference for violation in violations} == {
        confidential.reference,
        pii.reference,
    }
    # the router's headers said "local" for both: the receiving end is what counts
    outcomes = [outcome(item.reference, item.kind, "local") for item in (confidential, pii)]
    report = build_report(outcomes, plan.items, BACKENDS, PRICE, received, "SIMULATED GPT-4o")
    assert len(report.violations) == 2
    assert report.router_reported_violations == 0
    assert summary_lines(report)[-1] == "privacy violations: 2"


def test_nothing_sensitive_received_means_zero_violations() -> None:
    plan = build_workload(20)
    received = [f"question {item.reference}" for item in plan.items if not item.sensitive]
    report = build_report([], plan.items, BACKENDS, PRICE, received, "SIMULATED GPT-4o")
    assert report.violations == ()
    assert summary_lines(report)[-1] == "privacy violations: 0"


def test_chart_and_html_are_written(tmp_path: Path) -> None:
    outcomes = [
        outcome("D-001", Kind.PUBLIC, "local"),
        outcome("D-002", Kind.LONG_CONTEXT, "gpt-4o", decision="context_window"),
        outcome("D-003", Kind.BURST, None),
    ]
    report = build_report(outcomes, [], BACKENDS, PRICE, [], "SIMULATED GPT-4o")
    png, page = tmp_path / "demo-report.png", tmp_path / "demo-report.html"
    write_chart(report, png, "test chart")
    write_html(report, png, page, "test chart")
    assert png.read_bytes().startswith(b"\x89PNG")
    text = page.read_text()
    assert "SIMULATED GPT-4o" in text
    assert "privacy violations: 0" in text
    assert "data:image/png;base64," in text
