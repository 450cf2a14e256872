"""The demo's workload: the mix it promises, and PII the router's own detectors recognise."""

from __future__ import annotations

import pytest
from modelplane.router.policy.pii import detect_pii

from modelplane.demo.workload import (
    DATA_CLASS_HEADER,
    REFERENCE_PATTERN,
    Kind,
    build_workload,
    plan_counts,
)


@pytest.mark.parametrize("total", [1, 2, 5, 6, 7, 8, 13, 48, 200])
def test_plan_counts_add_up_to_the_requested_total(total: int) -> None:
    assert sum(plan_counts(total).values()) == total


def test_a_full_workload_holds_every_kind_and_a_real_burst() -> None:
    counts = plan_counts(48)
    assert all(counts[kind] >= 1 for kind in Kind)
    assert counts[Kind.BURST] >= 2


def test_every_request_carries_a_unique_reference_in_its_messages() -> None:
    plan = build_workload(48)
    references = [item.reference for item in plan.items]
    assert len(set(references)) == len(references) == 48
    for item in plan.items:
        assert REFERENCE_PATTERN.findall(str(item.messages)) == [item.reference]


def test_confidential_requests_declare_the_class_and_carry_a_secret() -> None:
    confidential = [item for item in build_workload(48).items if item.kind is Kind.CONFIDENTIAL]
    assert confidential
    for item in confidential:
        assert item.headers == {DATA_CLASS_HEADER: "confidential"}
        assert item.sensitive
        assert item.secrets
        assert all(secret in item.messages[-1]["content"] for secret in item.secrets)


def test_pii_requests_are_declared_public_and_the_routers_detectors_find_their_pii() -> None:
    pii_items = [item for item in build_workload(48).items if item.kind is Kind.PII]
    assert len(pii_items) >= 4
    for item in pii_items:
        assert item.data_class == "public"  # only detection keeps these in-house
        assert detect_pii(item.messages[-1]["content"]), item.messages[-1]["content"]


def test_non_sensitive_prompts_hold_no_pii_that_would_skew_the_routing() -> None:
    for item in build_workload(48).items:
        content = item.messages[-1]["content"]
        if not item.sensitive and isinstance(content, str):
            assert not detect_pii(content), item.reference


def test_long_context_request_exceeds_smollm2_context_window() -> None:
    (item,) = [item for item in build_workload(48).items if item.kind is Kind.LONG_CONTEXT]
    assert len(item.messages[-1]["content"]) / 4 > 8192


def test_burst_mixes_in_confidential_requests_that_must_not_spill_over() -> None:
    burst = build_workload(48).burst
    confidential = [item for item in burst if item.data_class == "confidential"]
    assert confidential
    assert all(item.sensitive and item.secrets for item in confidential)
    assert len(confidential) < len(burst) - len(confidential)  # mostly public: spillover shows
