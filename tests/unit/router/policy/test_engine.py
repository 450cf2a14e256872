"""Every stage of `decide`, one behaviour per test."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from modelplane.router.policy.engine import decide
from modelplane.router.policy.types import (
    BackendSnapshot,
    Capability,
    CostPreference,
    DataClass,
    Decision,
    Location,
    PiiType,
    PolicySettings,
    RequestFeatures,
    TenantPolicy,
)

BackendFactory = Callable[..., BackendSnapshot]
TENANT = TenantPolicy(name="team-a")
SETTINGS = PolicySettings()
INTERNAL = RequestFeatures(data_class=DataClass.INTERNAL, input_tokens=100, max_output_tokens=100)


def verdict_reasons(decision: Decision, backend: str) -> tuple[str, ...]:
    return next(c.reasons for c in decision.candidates if c.backend == backend)


def eligible_names(decision: Decision) -> list[str]:
    return [c.backend for c in decision.eligible]


# --------------------------------------------------------------------------- privacy


def test_confidential_request_only_gets_in_cluster_backends(backend: BackendFactory) -> None:
    backends = [
        backend("gpt-4o", Location.EXTERNAL, input_usd_per_mtok=0.01),
        backend("llama", Location.IN_CLUSTER, input_usd_per_mtok=5.0),
    ]
    features = RequestFeatures(data_class=DataClass.CONFIDENTIAL)

    decision = decide(features, backends, TENANT, SETTINGS)

    assert eligible_names(decision) == ["llama"]
    assert "privacy:external-blocked" in verdict_reasons(decision, "gpt-4o")
    assert "privacy:ok" in verdict_reasons(decision, "llama")
    assert decision.data_class is DataClass.CONFIDENTIAL


def test_pii_raises_the_data_class_to_confidential(backend: BackendFactory) -> None:
    backends = [backend("gpt-4o", Location.EXTERNAL), backend("llama")]
    features = RequestFeatures(data_class=DataClass.PUBLIC, pii_found=frozenset({PiiType.EMAIL}))

    decision = decide(features, backends, TENANT, SETTINGS)

    assert decision.data_class is DataClass.CONFIDENTIAL
    assert eligible_names(decision) == ["llama"]
    assert "pii:email" in decision.reasons
    assert "data-class:raised-by-pii" in decision.reasons
    assert "data-class:confidential" in decision.reasons


def test_pii_of_a_type_not_configured_as_confidential_keeps_the_class(
    backend: BackendFactory,
) -> None:
    backends = [backend("gpt-4o", Location.EXTERNAL), backend("llama")]
    features = RequestFeatures(
        data_class=DataClass.INTERNAL, pii_found=frozenset({PiiType.IP_ADDRESS})
    )
    settings = PolicySettings(confidential_pii_types=frozenset({PiiType.PAYMENT_CARD}))

    decision = decide(features, backends, TENANT, settings)

    assert decision.data_class is DataClass.INTERNAL
    assert set(eligible_names(decision)) == {"gpt-4o", "llama"}
    assert "pii:ip_address" in decision.reasons
    assert "data-class:raised-by-pii" not in decision.reasons


def test_tenant_restricted_to_the_cluster_gets_no_external_backend(
    backend: BackendFactory,
) -> None:
    backends = [backend("gpt-4o", Location.EXTERNAL), backend("llama")]
    tenant = TenantPolicy(name="over-budget", in_cluster_only=True)

    decision = decide(INTERNAL, backends, tenant, SETTINGS)

    assert eligible_names(decision) == ["llama"]
    assert "privacy:tenant-in-cluster-only" in verdict_reasons(decision, "gpt-4o")
    assert "tenant:in-cluster-only" in decision.reasons


def test_confidential_request_with_every_in_cluster_backend_down_has_no_candidate(
    backend: BackendFactory,
) -> None:
    backends = [backend("gpt-4o", Location.EXTERNAL), backend("llama", in_cooldown=True)]
    features = RequestFeatures(data_class=DataClass.CONFIDENTIAL)

    decision = decide(features, backends, TENANT, SETTINGS)

    assert decision.chosen is None
    assert decision.policy_violation is None  # 503 no_eligible_backend, not 403
    assert "no-eligible-backend" in decision.reasons


# --------------------------------------------------------------------------- capability


def test_context_window_must_hold_input_and_output(backend: BackendFactory) -> None:
    backends = [backend("small", context_window=8192), backend("large", context_window=128_000)]
    features = RequestFeatures(
        data_class=DataClass.INTERNAL, input_tokens=8000, max_output_tokens=193
    )

    decision = decide(features, backends, TENANT, SETTINGS)

    assert eligible_names(decision) == ["large"]
    assert "capability:context-too-small" in verdict_reasons(decision, "small")


def test_context_window_exactly_full_is_enough(backend: BackendFactory) -> None:
    features = RequestFeatures(
        data_class=DataClass.INTERNAL, input_tokens=8000, max_output_tokens=192
    )
    decision = decide(features, [backend("small", context_window=8192)], TENANT, SETTINGS)
    assert eligible_names(decision) == ["small"]


@pytest.mark.parametrize(
    ("feature", "capability", "reason"),
    [
        ("has_images", Capability.IMAGES, "capability:no-images"),
        ("uses_tools", Capability.TOOLS, "capability:no-tools"),
        ("json_mode", Capability.JSON, "capability:no-json"),
    ],
)
def test_backend_without_a_needed_capability_is_ineligible(
    backend: BackendFactory, feature: str, capability: Capability, reason: str
) -> None:
    lacking = backend("lacking", capabilities=frozenset(Capability) - {capability})
    complete = backend("complete")
    features = RequestFeatures(data_class=DataClass.INTERNAL, **{feature: True})

    decision = decide(features, [lacking, complete], TENANT, SETTINGS)

    assert eligible_names(decision) == ["complete"]
    assert reason in verdict_reasons(decision, "lacking")
    assert "capability:ok" in verdict_reasons(decision, "complete")


def test_every_failed_check_is_reported(backend: BackendFactory) -> None:
    chat_only = backend(
        "chat-only",
        Location.EXTERNAL,
        capabilities=frozenset({Capability.CHAT}),
        context_window=10,
        in_cooldown=True,
    )
    features = RequestFeatures(
        data_class=DataClass.CONFIDENTIAL,
        input_tokens=100,
        has_images=True,
        uses_tools=True,
        json_mode=True,
    )

    decision = decide(features, [chat_only], TENANT, SETTINGS)

    assert verdict_reasons(decision, "chat-only") == (
        "privacy:external-blocked",
        "capability:context-too-small",
        "capability:no-images",
        "capability:no-tools",
        "capability:no-json",
        "health:cooldown",
    )


# --------------------------------------------------------------------------- health


def test_backend_in_cooldown_is_dropped(backend: BackendFactory) -> None:
    backends = [backend("flaky", in_cooldown=True, input_usd_per_mtok=0.0), backend("steady")]
    decision = decide(INTERNAL, backends, TENANT, SETTINGS)
    assert eligible_names(decision) == ["steady"]
    assert "health:cooldown" in verdict_reasons(decision, "flaky")


def test_backend_without_a_ready_replica_is_dropped(backend: BackendFactory) -> None:
    backends = [backend("scaled-to-zero", ready=False, input_usd_per_mtok=0.0), backend("up")]
    decision = decide(INTERNAL, backends, TENANT, SETTINGS)
    assert eligible_names(decision) == ["up"]
    assert "health:no-ready-replica" in verdict_reasons(decision, "scaled-to-zero")
    assert "health:ok" in verdict_reasons(decision, "up")


# --------------------------------------------------------------------------- latency


def test_backends_meeting_the_latency_target_come_first(backend: BackendFactory) -> None:
    backends = [
        backend("slow-cheap", predicted_ttft_ms=900.0, input_usd_per_mtok=0.1),
        backend("unmeasured", predicted_ttft_ms=None, input_usd_per_mtok=0.5),
        backend("fast-dear", predicted_ttft_ms=120.0, input_usd_per_mtok=10.0),
    ]
    settings = PolicySettings(latency_target_ms=500.0)

    decision = decide(INTERNAL, backends, TENANT, settings)

    assert eligible_names(decision) == ["fast-dear", "unmeasured", "slow-cheap"]
    assert "latency:meets-target" in verdict_reasons(decision, "fast-dear")
    assert "latency:unmeasured" in verdict_reasons(decision, "unmeasured")
    assert "latency:over-target" in verdict_reasons(decision, "slow-cheap")


def test_without_a_latency_target_latency_does_not_reorder(backend: BackendFactory) -> None:
    backends = [
        backend("fast-dear", predicted_ttft_ms=50.0, input_usd_per_mtok=10.0),
        backend("slow-cheap", predicted_ttft_ms=5000.0, input_usd_per_mtok=0.1),
    ]
    decision = decide(INTERNAL, backends, TENANT, SETTINGS)
    assert eligible_names(decision) == ["slow-cheap", "fast-dear"]
    assert not any(r.startswith("latency:") for r in verdict_reasons(decision, "fast-dear"))


# --------------------------------------------------------------------------- cost


def test_cheapest_estimated_cost_comes_first(backend: BackendFactory) -> None:
    backends = [
        backend("dear", input_usd_per_mtok=5.0, output_usd_per_mtok=15.0),
        backend("cheap", input_usd_per_mtok=0.1, output_usd_per_mtok=0.2),
        backend("middle", input_usd_per_mtok=1.0, output_usd_per_mtok=2.0),
    ]
    features = RequestFeatures(
        data_class=DataClass.INTERNAL, input_tokens=100_000, max_output_tokens=1_000
    )

    decision = decide(features, backends, TENANT, SETTINGS)

    assert eligible_names(decision) == ["cheap", "middle", "dear"]
    assert "cost:rank-1" in verdict_reasons(decision, "cheap")
    assert "cost:rank-3" in verdict_reasons(decision, "dear")
    cheapest = decision.candidates[0]
    assert cheapest.estimated_cost_usd == pytest.approx((100_000 * 0.1 + 1_000 * 0.2) / 1e6)


def test_output_price_counts_with_max_tokens(backend: BackendFactory) -> None:
    # Cheaper input but far dearer output: with a long answer the other backend wins.
    backends = [
        backend("cheap-input", input_usd_per_mtok=0.1, output_usd_per_mtok=100.0),
        backend("cheap-output", input_usd_per_mtok=1.0, output_usd_per_mtok=1.0),
    ]
    features = RequestFeatures(
        data_class=DataClass.INTERNAL, input_tokens=10, max_output_tokens=4000
    )
    decision = decide(features, backends, TENANT, SETTINGS)
    assert eligible_names(decision) == ["cheap-output", "cheap-input"]


def test_assumed_output_tokens_price_requests_without_max_tokens(backend: BackendFactory) -> None:
    features = RequestFeatures(data_class=DataClass.INTERNAL, input_tokens=0)
    settings = PolicySettings(assumed_output_tokens=1_000_000)
    decision = decide(features, [backend("only", output_usd_per_mtok=3.0)], TENANT, settings)
    assert decision.candidates[0].estimated_cost_usd == pytest.approx(3.0)


def test_equal_cost_keeps_the_configured_order(backend: BackendFactory) -> None:
    backends = [backend("first"), backend("second"), backend("third")]
    decision = decide(INTERNAL, backends, TENANT, SETTINGS)
    assert eligible_names(decision) == ["first", "second", "third"]


def test_balanced_preference_trades_cost_against_latency(backend: BackendFactory) -> None:
    # "cheap" costs 0.8 of "fast" but is 10x slower: cheapest picks it, balanced does not.
    backends = [
        backend("cheap", input_usd_per_mtok=0.8, output_usd_per_mtok=0.8, predicted_ttft_ms=2000),
        backend("fast", input_usd_per_mtok=1.0, output_usd_per_mtok=1.0, predicted_ttft_ms=200),
    ]
    cheapest = decide(INTERNAL, backends, TENANT, SETTINGS)
    balanced = decide(
        INTERNAL, backends, TENANT, PolicySettings(cost_preference=CostPreference.BALANCED)
    )
    assert eligible_names(cheapest) == ["cheap", "fast"]
    assert eligible_names(balanced) == ["fast", "cheap"]


def test_balanced_preference_still_picks_a_much_cheaper_backend(backend: BackendFactory) -> None:
    backends = [
        backend(
            "fast-dear", input_usd_per_mtok=10.0, output_usd_per_mtok=30.0, predicted_ttft_ms=300
        ),
        backend("cheap", input_usd_per_mtok=0.1, output_usd_per_mtok=0.2, predicted_ttft_ms=400),
    ]
    balanced = decide(
        INTERNAL, backends, TENANT, PolicySettings(cost_preference=CostPreference.BALANCED)
    )
    assert eligible_names(balanced) == ["cheap", "fast-dear"]


# --------------------------------------------------------------------------- tenant


def test_tenant_allow_list_excludes_other_backends(backend: BackendFactory) -> None:
    backends = [backend("llama"), backend("gpt-4o", Location.EXTERNAL, input_usd_per_mtok=0.0)]
    tenant = TenantPolicy(name="team-a", allowed_backends=frozenset({"llama"}))

    decision = decide(INTERNAL, backends, tenant, SETTINGS)

    assert eligible_names(decision) == ["llama"]
    assert "tenant:not-allowed" in verdict_reasons(decision, "gpt-4o")
    assert decision.policy_violation is None


# --------------------------------------------------------------------------- pinned


def test_pinned_request_only_considers_that_backend(backend: BackendFactory) -> None:
    backends = [backend("llama", input_usd_per_mtok=0.0), backend("gpt-4o", Location.EXTERNAL)]
    features = RequestFeatures(data_class=DataClass.INTERNAL, pinned_backend="gpt-4o")

    decision = decide(features, backends, TENANT, SETTINGS)

    assert eligible_names(decision) == ["gpt-4o"]
    assert verdict_reasons(decision, "llama") == ("pinned:other-backend",)


def test_pinning_an_external_backend_with_confidential_data_is_a_policy_violation(
    backend: BackendFactory,
) -> None:
    backends = [backend("llama"), backend("gpt-4o", Location.EXTERNAL)]
    features = RequestFeatures(
        data_class=DataClass.INTERNAL,
        pii_found=frozenset({PiiType.PAYMENT_CARD}),
        pinned_backend="gpt-4o",
    )

    decision = decide(features, backends, TENANT, SETTINGS)

    assert decision.chosen is None
    assert decision.policy_violation is not None
    assert "gpt-4o" in decision.policy_violation
    assert "payment_card" in decision.policy_violation


def test_pinning_a_backend_the_tenant_may_not_use_is_a_policy_violation(
    backend: BackendFactory,
) -> None:
    tenant = TenantPolicy(name="team-a", allowed_backends=frozenset({"llama"}))
    features = RequestFeatures(data_class=DataClass.PUBLIC, pinned_backend="gpt-4o")

    decision = decide(
        features, [backend("llama"), backend("gpt-4o", Location.EXTERNAL)], tenant, SETTINGS
    )

    assert decision.chosen is None
    assert decision.policy_violation is not None
    assert "team-a" in decision.policy_violation


def test_pinned_backend_that_is_merely_down_is_no_policy_violation(
    backend: BackendFactory,
) -> None:
    features = RequestFeatures(data_class=DataClass.CONFIDENTIAL, pinned_backend="llama")
    decision = decide(features, [backend("llama", in_cooldown=True)], TENANT, SETTINGS)
    assert decision.chosen is None
    assert decision.policy_violation is None


def test_pinning_an_unknown_backend_is_reported(backend: BackendFactory) -> None:
    features = RequestFeatures(data_class=DataClass.INTERNAL, pinned_backend="nope")
    decision = decide(features, [backend("llama")], TENANT, SETTINGS)
    assert decision.chosen is None
    assert "pinned:unknown-backend" in decision.reasons
    assert decision.policy_violation is None


# --------------------------------------------------------------------------- shape


def test_no_backends_gives_an_empty_decision() -> None:
    decision = decide(INTERNAL, [], TENANT, SETTINGS)
    assert decision.candidates == ()
    assert decision.chosen is None
    assert decision.reasons == ("data-class:internal", "no-eligible-backend")


def test_eligible_candidates_come_before_ineligible_ones(backend: BackendFactory) -> None:
    backends = [
        backend("down", in_cooldown=True),
        backend("up-dear", input_usd_per_mtok=9.0),
        backend("external", Location.EXTERNAL),
        backend("up-cheap", input_usd_per_mtok=0.1),
    ]
    features = RequestFeatures(data_class=DataClass.CONFIDENTIAL, input_tokens=10)

    decision = decide(features, backends, TENANT, SETTINGS)

    assert [(c.backend, c.eligible) for c in decision.candidates] == [
        ("up-cheap", True),
        ("up-dear", True),
        ("down", False),
        ("external", False),
    ]
