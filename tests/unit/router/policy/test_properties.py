"""Properties of `decide` over generated requests, backends, tenants and settings."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from modelplane.router.policy.engine import decide
from modelplane.router.policy.features import extract_features
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

NAMES = [f"backend-{index}" for index in range(12)]

pii_sets = st.frozensets(st.sampled_from(PiiType))
capability_sets = st.frozensets(st.sampled_from(Capability))
latencies = st.none() | st.floats(min_value=0, max_value=10_000, allow_nan=False)
prices = st.floats(min_value=0, max_value=100, allow_nan=False)


@st.composite
def backend_lists(draw: st.DrawFn) -> list[BackendSnapshot]:
    names = draw(st.lists(st.sampled_from(NAMES), unique=True, max_size=len(NAMES)))
    return [
        BackendSnapshot(
            name=name,
            location=draw(st.sampled_from(Location)),
            capabilities=draw(capability_sets),
            context_window=draw(st.integers(min_value=0, max_value=200_000)),
            input_usd_per_mtok=draw(prices),
            output_usd_per_mtok=draw(prices),
            ready=draw(st.booleans()),
            in_cooldown=draw(st.booleans()),
            predicted_ttft_ms=draw(latencies),
        )
        for name in names
    ]


request_features = st.builds(
    RequestFeatures,
    data_class=st.sampled_from(DataClass),
    pii_found=pii_sets,
    input_tokens=st.integers(min_value=0, max_value=150_000),
    max_output_tokens=st.integers(min_value=0, max_value=50_000),
    has_images=st.booleans(),
    uses_tools=st.booleans(),
    json_mode=st.booleans(),
    pinned_backend=st.none() | st.sampled_from([*NAMES, "unknown"]),
)
tenants = st.builds(
    TenantPolicy,
    name=st.just("tenant"),
    allowed_backends=st.none() | st.frozensets(st.sampled_from(NAMES)),
    in_cluster_only=st.booleans(),
)
policy_settings = st.builds(
    PolicySettings,
    pii_detection=st.booleans(),
    confidential_pii_types=pii_sets,
    latency_target_ms=st.none() | st.floats(min_value=1, max_value=5_000),
    cost_preference=st.sampled_from(CostPreference),
    assumed_output_tokens=st.integers(min_value=0, max_value=4_000),
)


def must_stay_in_cluster(
    features: RequestFeatures, tenant: TenantPolicy, policy: PolicySettings
) -> bool:
    return (
        features.data_class is DataClass.CONFIDENTIAL
        or bool(features.pii_found & policy.confidential_pii_types)
        or tenant.in_cluster_only
    )


def external_candidates(decision: Decision, backends: list[BackendSnapshot]) -> list[str]:
    location = {backend.name: backend.location for backend in backends}
    return [c.backend for c in decision.eligible if location[c.backend] is Location.EXTERNAL]


@settings(max_examples=250, deadline=None)
@given(backend_lists(), request_features, tenants, policy_settings)
def test_confidential_or_pii_requests_never_get_an_external_candidate(
    backends: list[BackendSnapshot],
    features: RequestFeatures,
    tenant: TenantPolicy,
    policy: PolicySettings,
) -> None:
    decision = decide(features, backends, tenant, policy)
    if must_stay_in_cluster(features, tenant, policy):
        assert external_candidates(decision, backends) == []
        if tenant.in_cluster_only or features.data_class is DataClass.CONFIDENTIAL:
            return
        assert decision.data_class is DataClass.CONFIDENTIAL


@settings(max_examples=250, deadline=None)
@given(backend_lists(), request_features, tenants, policy_settings)
def test_decision_shape_invariants(
    backends: list[BackendSnapshot],
    features: RequestFeatures,
    tenant: TenantPolicy,
    policy: PolicySettings,
) -> None:
    decision = decide(features, backends, tenant, policy)
    names = [c.backend for c in decision.candidates]
    flags = [c.eligible for c in decision.candidates]

    # Every backend appears exactly once.
    assert sorted(names) == sorted(b.name for b in backends)
    # Eligible candidates come first.
    assert flags == sorted(flags, reverse=True)
    # A pinned request has at most one eligible candidate: the pinned backend.
    if features.pinned_backend is not None:
        assert [c.backend for c in decision.eligible] in ([], [features.pinned_backend])
    else:
        assert decision.policy_violation is None
    # Every candidate says why.
    assert all(c.reasons for c in decision.candidates)
    # Pure: the same inputs give the same decision.
    assert decide(features, backends, tenant, policy) == decision


@settings(max_examples=250, deadline=None)
@given(backend_lists(), request_features, tenants, policy_settings)
def test_every_eligible_backend_satisfies_every_requirement(
    backends: list[BackendSnapshot],
    features: RequestFeatures,
    tenant: TenantPolicy,
    policy: PolicySettings,
) -> None:
    decision = decide(features, backends, tenant, policy)
    by_name = {backend.name: backend for backend in backends}
    for candidate in decision.eligible:
        backend = by_name[candidate.backend]
        assert backend.context_window >= features.input_tokens + features.max_output_tokens
        assert backend.ready
        assert not backend.in_cooldown
        assert tenant.allowed_backends is None or backend.name in tenant.allowed_backends
        if features.has_images:
            assert Capability.IMAGES in backend.capabilities
        if features.uses_tools:
            assert Capability.TOOLS in backend.capabilities
        if features.json_mode:
            assert Capability.JSON in backend.capabilities


@settings(max_examples=300, deadline=None)
@given(backend_lists(), request_features, tenants)
def test_cheapest_order_within_a_latency_tier(
    backends: list[BackendSnapshot], features: RequestFeatures, tenant: TenantPolicy
) -> None:
    policy = PolicySettings(latency_target_ms=None, cost_preference=CostPreference.CHEAPEST)
    costs = [c.estimated_cost_usd for c in decide(features, backends, tenant, policy).eligible]
    assert costs == sorted(costs)


# --------------------------------------------------------------------------- end to end

PII_SAMPLES = [
    "jane.doe@example.com",
    "+44 20 7946 0958",
    "(415) 555-2671",
    "4111 1111 1111 1111",
    "DE89 3704 0044 0532 0130 00",
    "SSN 536-22-1234",
    "192.168.1.20",
    "2001:db8::8a2e:370:7334",
    "AKIAIOSFODNN7EXAMPLE",
    "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",
]
filler = st.text(
    alphabet=st.characters(codec="utf-8", categories=["L", "Nd", "P", "Zs"]), max_size=80
)


@st.composite
def bodies_with_pii(draw: st.DrawFn) -> dict[str, Any]:
    sample = draw(st.sampled_from(PII_SAMPLES))
    opening = draw(st.sampled_from([" ", "\n", " (", ": ", "\t", ", ", ' "', "=", " <"]))
    # No bare "." before more text: "192.168.1.20.0" is a dotted run, not an address.
    closing = draw(st.sampled_from([" ", ",", ")", "\n", ". ", "!", '"', ";", ">"]))
    text = f"{draw(filler)}{opening}{sample}{closing}{draw(filler)}"
    place = draw(st.sampled_from(["content", "part", "tool-arguments"]))
    message: dict[str, Any]
    if place == "content":
        message = {"role": "user", "content": text}
    elif place == "part":
        message = {"role": "user", "content": [{"type": "text", "text": text}]}
    else:
        call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": text}}
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
    messages = [{"role": "user", "content": draw(filler)}, message]
    return {"model": draw(st.sampled_from(["auto", *NAMES])), "messages": messages}


@settings(max_examples=300, deadline=None)
@given(bodies_with_pii(), backend_lists(), st.sampled_from(DataClass), tenants)
def test_no_generated_request_containing_pii_gets_an_external_candidate(
    body: dict[str, Any],
    backends: list[BackendSnapshot],
    declared: DataClass,
    tenant: TenantPolicy,
) -> None:
    policy = PolicySettings()
    features = extract_features(body, declared, policy)
    assert features.pii_found, body
    decision = decide(features, backends, tenant, policy)
    assert decision.data_class is DataClass.CONFIDENTIAL
    assert external_candidates(decision, backends) == []
