"""A decision builds its verdicts when asked: whatever is read first, it reads the same."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest
from hypothesis import given, settings
from modelplane.router.policy.engine import decide
from modelplane.router.policy.types import (
    BackendSnapshot,
    CandidateVerdict,
    DataClass,
    Decision,
    Location,
    PolicySettings,
    RequestFeatures,
    TenantPolicy,
)

from .test_properties import backend_lists, policy_settings, request_features, tenants

PRIVACY_FAILURES = {"privacy:external-blocked", "privacy:tenant-in-cluster-only"}
PASSED = {"privacy:ok", "capability:ok", "health:ok"}


def built_eagerly(decision: Decision) -> Decision:
    return Decision(
        data_class=decision.data_class,
        pii_found=decision.pii_found,
        candidates=decision.candidates,
        reasons=decision.reasons,
        policy_violation=decision.policy_violation,
    )


@settings(max_examples=250, deadline=None)
@given(backend_lists(), request_features, tenants, policy_settings)
def test_the_first_eligible_verdicts_are_those_of_the_full_list(
    backends: list[BackendSnapshot],
    features: RequestFeatures,
    tenant: TenantPolicy,
    policy: PolicySettings,
) -> None:
    lazily = decide(features, backends, tenant, policy)
    fully = decide(features, backends, tenant, policy)
    everything = fully.candidates

    eligible = tuple(c for c in everything if c.eligible)
    assert lazily.chosen == (eligible[0] if eligible else None)
    for count in range(len(backends) + 2):
        assert lazily.first_eligible(count) == eligible[:count]
    assert lazily.eligible == eligible
    assert lazily.candidates == everything
    assert lazily == fully == built_eagerly(fully)
    assert hash(lazily) == hash(built_eagerly(fully))


@settings(max_examples=250, deadline=None)
@given(backend_lists(), request_features, tenants, policy_settings)
def test_egress_blocked_says_whether_privacy_ruled_out_a_backend(
    backends: list[BackendSnapshot],
    features: RequestFeatures,
    tenant: TenantPolicy,
    policy: PolicySettings,
) -> None:
    decision = decide(features, backends, tenant, policy)

    blocked = any(PRIVACY_FAILURES & set(c.reasons) for c in decision.candidates)
    assert decision.egress_blocked is blocked
    assert built_eagerly(decision).egress_blocked is blocked


@settings(max_examples=250, deadline=None)
@given(backend_lists(), request_features, tenants, policy_settings)
def test_every_ineligible_backend_has_a_failed_check(
    backends: list[BackendSnapshot],
    features: RequestFeatures,
    tenant: TenantPolicy,
    policy: PolicySettings,
) -> None:
    decision = decide(features, backends, tenant, policy)

    for candidate in decision.candidates:
        if candidate.eligible:
            assert set(candidate.reasons) >= PASSED
        else:
            assert not set(candidate.reasons) <= PASSED


def test_a_decision_cannot_be_changed() -> None:
    decision = decide(
        RequestFeatures(data_class=DataClass.INTERNAL),
        [BackendSnapshot("llama", Location.IN_CLUSTER, frozenset(), 8_192, 0.1, 0.2)],
        TenantPolicy(name="team-a"),
        PolicySettings(),
    )

    with pytest.raises(FrozenInstanceError):
        decision.data_class = DataClass.CONFIDENTIAL  # type: ignore[misc]
    with pytest.raises(FrozenInstanceError):
        del decision.reasons  # type: ignore[misc]


def test_a_decision_built_from_its_verdicts_reads_them_back() -> None:
    chosen = CandidateVerdict("llama", True, ("privacy:ok", "cost:rank-1"), 0.5)
    blocked = CandidateVerdict("gpt-4o", False, ("privacy:external-blocked",))
    decision = Decision(DataClass.CONFIDENTIAL, frozenset(), (chosen, blocked), ("r",))

    assert decision.candidates == (chosen, blocked)
    assert decision.eligible == (chosen,)
    assert decision.chosen == chosen
    assert decision.first_eligible(5) == (chosen,)
    assert decision.egress_blocked
    assert decision.policy_violation is None
    assert repr(decision).startswith("Decision(data_class=<DataClass.CONFIDENTIAL")


def test_verdicts_built_later_describe_the_backends_decided_on() -> None:
    backends = [
        BackendSnapshot("llama", Location.IN_CLUSTER, frozenset(), 8_192, 0.1, 0.2),
        BackendSnapshot("gpt-4o", Location.EXTERNAL, frozenset(), 128_000, 2.5, 10.0),
    ]
    decision = decide(
        RequestFeatures(data_class=DataClass.CONFIDENTIAL),
        backends,
        TenantPolicy(name="team-a"),
        PolicySettings(),
    )

    backends.clear()

    assert [c.backend for c in decision.candidates] == ["llama", "gpt-4o"]
