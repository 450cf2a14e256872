"""The routing decision: a pure function of request features, backends, tenant and settings.

Every backend is judged by the filtering stages, in order, each adding a short reason code:

1. privacy: the effective data class is the declared one, raised to confidential when PII of a
   type in `settings.confidential_pii_types` was found. A confidential request, or any request of a
   tenant restricted to the cluster, may only go to in-cluster backends. Because this is a filter
   on the candidate list, it holds for every fallback too.
2. capability: the context window holds input + max output tokens; images, tools and JSON mode are
   supported when the request uses them.
3. health: no backend in cooldown, none without a ready replica.

Before them, a pinned request (`model` naming a backend) rules out every other backend, and the
tenant's allow-list rules out the backends it does not list.

The surviving backends are then ordered by the ranking stages:

4. latency: with a latency target, backends whose predicted time to first token meets it come
   first, then unmeasured ones, then those over it (kept as later fallbacks).
5. cost: within a latency tier, cheapest estimated cost first (input tokens x input price + output
   tokens x output price, per million; output tokens are max_tokens, or
   `settings.assumed_output_tokens` when the request sets none). With `CostPreference.BALANCED`
   the order within a tier is by `0.5 x cost / highest cost + 0.5 x TTFT / highest TTFT` among the
   eligible backends (an unmeasured TTFT counts as the highest), so a backend twice as expensive
   must be correspondingly faster to win. Ties keep the configured backend order.

The decision is allocation-lean because it runs on every request: one pass over the backends,
prebuilt reason tuples, and one sort of the eligible backends per latency tier.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import chain
from typing import Any

from modelplane.router.policy.types import (
    BackendSnapshot,
    CandidateVerdict,
    Capability,
    CostPreference,
    DataClass,
    Decision,
    Location,
    PolicySettings,
    RequestFeatures,
    TenantPolicy,
)

# Per-backend reason codes.
PINNED_OTHER_BACKEND = "pinned:other-backend"
TENANT_NOT_ALLOWED = "tenant:not-allowed"
PRIVACY_OK = "privacy:ok"
PRIVACY_EXTERNAL_BLOCKED = "privacy:external-blocked"
PRIVACY_TENANT_IN_CLUSTER_ONLY = "privacy:tenant-in-cluster-only"
CAPABILITY_OK = "capability:ok"
CAPABILITY_CONTEXT_TOO_SMALL = "capability:context-too-small"
CAPABILITY_NO_IMAGES = "capability:no-images"
CAPABILITY_NO_TOOLS = "capability:no-tools"
CAPABILITY_NO_JSON = "capability:no-json"
HEALTH_OK = "health:ok"
HEALTH_COOLDOWN = "health:cooldown"
HEALTH_NO_READY_REPLICA = "health:no-ready-replica"
LATENCY_MEETS_TARGET = "latency:meets-target"
LATENCY_UNMEASURED = "latency:unmeasured"
LATENCY_OVER_TARGET = "latency:over-target"

# Request-level reason codes.
DATA_CLASS_RAISED_BY_PII = "data-class:raised-by-pii"
TENANT_IN_CLUSTER_ONLY = "tenant:in-cluster-only"
PINNED_UNKNOWN_BACKEND = "pinned:unknown-backend"
NO_ELIGIBLE_BACKEND = "no-eligible-backend"

_MAX_PREBUILT_RANK = 128
_PASSED_REASONS = (PRIVACY_OK, CAPABILITY_OK, HEALTH_OK)
_PER_MILLION = 1e-6

# An eligible backend as (sort key, estimated cost, position, backend); the key is the cost, or the
# balanced score. The position is unique, so a plain sort orders by key, then cost, then
# configured order, and never compares backends.
_Eligible = tuple[float, float, int, BackendSnapshot]


def _eligible_reasons(latency: str | None, index: int) -> tuple[str, ...]:
    """Reasons of the eligible backend at `index` (0-based) in the order."""
    return (*_PASSED_REASONS, *((latency,) if latency else ()), f"cost:rank-{index + 1}")


def _prebuilt_reasons(latency: str | None) -> tuple[tuple[str, ...], ...]:
    return tuple(_eligible_reasons(latency, index) for index in range(_MAX_PREBUILT_RANK))


# The reasons of an eligible backend by its position in the order, for each latency outcome.
_NO_TARGET_REASONS = _prebuilt_reasons(None)
_MEETS_TARGET_REASONS = _prebuilt_reasons(LATENCY_MEETS_TARGET)
_UNMEASURED_REASONS = _prebuilt_reasons(LATENCY_UNMEASURED)
_OVER_TARGET_REASONS = _prebuilt_reasons(LATENCY_OVER_TARGET)


def effective_data_class(features: RequestFeatures, settings: PolicySettings) -> DataClass:
    """The declared class, raised to confidential by PII of a type configured to do so."""
    if features.pii_found and not features.pii_found.isdisjoint(settings.confidential_pii_types):
        return DataClass.CONFIDENTIAL
    return features.data_class


def decide(
    features: RequestFeatures,
    backends: Sequence[BackendSnapshot],
    tenant: TenantPolicy,
    settings: PolicySettings,
) -> Decision:
    """Judge every backend and order the eligible ones: the choice first, then the fallbacks."""
    data_class = effective_data_class(features, settings)
    confidential = data_class is DataClass.CONFIDENTIAL
    in_cluster_only = confidential or tenant.in_cluster_only
    pinned = features.pinned_backend
    allowed = tenant.allowed_backends
    needed_context = features.input_tokens + features.max_output_tokens
    needed_capabilities = _needed_capabilities(features)
    output_tokens = features.max_output_tokens or settings.assumed_output_tokens
    input_tokens = features.input_tokens
    target_ms = settings.latency_target_ms
    in_cluster = Location.IN_CLUSTER
    needs_images, needs_tools, needs_json = (
        features.has_images,
        features.uses_tools,
        features.json_mode,
    )
    failure_reasons = _CONFIDENTIAL_FAILURE_REASONS if confidential else _FAILURE_REASONS

    # Eligible backends per latency tier, best tier first.
    meets: list[_Eligible] = []
    unmeasured: list[_Eligible] = []
    over: list[_Eligible] = []
    ineligible: list[CandidateVerdict] = []
    pinned_found = False
    policy_violation: str | None = None

    for position, backend in enumerate(backends):
        name = backend.name
        if pinned is not None:
            if name != pinned:
                verdict = _new_verdict(CandidateVerdict)
                _set_backend(verdict, name)
                _set_eligible(verdict, False)
                _set_reasons(verdict, _PINNED_OTHER_REASONS)
                _set_cost(verdict, 0.0)
                ineligible.append(verdict)
                continue
            pinned_found = True
        cost = (
            input_tokens * backend.input_usd_per_mtok + output_tokens * backend.output_usd_per_mtok
        ) * _PER_MILLION
        # Stages 1-3 (and the tenant's allow-list) as one bit per failed check.
        failed = 0
        if allowed is not None and name not in allowed:
            failed = _NOT_ALLOWED
        if in_cluster_only and backend.location is not in_cluster:
            failed |= _OUTSIDE_CLUSTER
        if backend.context_window < needed_context:
            failed |= _CONTEXT_TOO_SMALL
        if needed_capabilities and not needed_capabilities <= backend.capabilities:
            capabilities = backend.capabilities
            if needs_images and Capability.IMAGES not in capabilities:
                failed |= _NO_IMAGES
            if needs_tools and Capability.TOOLS not in capabilities:
                failed |= _NO_TOOLS
            if needs_json and Capability.JSON not in capabilities:
                failed |= _NO_JSON
        if backend.in_cooldown:
            failed |= _COOLDOWN
        elif not backend.ready:
            failed |= _NO_READY_REPLICA
        if failed:
            verdict = _new_verdict(CandidateVerdict)
            _set_backend(verdict, name)
            _set_eligible(verdict, False)
            _set_reasons(verdict, failure_reasons[failed])
            _set_cost(verdict, cost)
            ineligible.append(verdict)
            if pinned is not None and failed & (_NOT_ALLOWED | _OUTSIDE_CLUSTER):
                policy_violation = _policy_violation_message(
                    name, failed, features, data_class, tenant
                )
            continue
        # 4. latency: a tier; the order inside it is the cost stage's.
        ttft = backend.predicted_ttft_ms
        if target_ms is None or (ttft is not None and ttft <= target_ms):
            meets.append((cost, cost, position, backend))
        elif ttft is None:
            unmeasured.append((cost, cost, position, backend))
        else:
            over.append((cost, cost, position, backend))

    # 5. cost
    if settings.cost_preference is CostPreference.BALANCED:
        meets, unmeasured, over = _balanced_keys(meets, unmeasured, over)
    meets.sort()
    unmeasured.sort()
    over.sort()
    meets_latency: str | None = None if target_ms is None else LATENCY_MEETS_TARGET
    meets_reasons = _NO_TARGET_REASONS if target_ms is None else _MEETS_TARGET_REASONS
    tiers = (
        (meets, meets_latency, meets_reasons),
        (unmeasured, LATENCY_UNMEASURED, _UNMEASURED_REASONS),
        (over, LATENCY_OVER_TARGET, _OVER_TARGET_REASONS),
    )
    ordered: list[CandidateVerdict] = []
    rank = 0
    for tier, latency, prebuilt in tiers:
        for _key, cost, _position, backend in tier:
            verdict = _new_verdict(CandidateVerdict)
            _set_backend(verdict, backend.name)
            _set_eligible(verdict, True)
            _set_reasons(
                verdict,
                prebuilt[rank] if rank < _MAX_PREBUILT_RANK else _eligible_reasons(latency, rank),
            )
            _set_cost(verdict, cost)
            ordered.append(verdict)
            rank += 1
    ordered.extend(ineligible)
    any_eligible = rank > 0

    return Decision(
        data_class=data_class,
        pii_found=features.pii_found,
        candidates=tuple(ordered),
        reasons=_request_reasons(
            features, data_class, tenant, pinned, pinned_found, any_eligible=any_eligible
        ),
        policy_violation=policy_violation,
    )


_PINNED_OTHER_REASONS = (PINNED_OTHER_BACKEND,)
_NO_CAPABILITIES: frozenset[Capability] = frozenset()

# A frozen dataclass's generated __init__ goes through object.__setattr__ once per field, which
# doubles the cost of building the one verdict per backend that every decision returns. Writing
# the slots directly, inline in decide(), builds the identical object at half the cost.
_new_verdict = object.__new__


def _slot_setter(field_name: str) -> Callable[[CandidateVerdict, Any], None]:
    setter: Callable[[CandidateVerdict, Any], None] = CandidateVerdict.__dict__[field_name].__set__
    return setter


_set_backend = _slot_setter("backend")
_set_eligible = _slot_setter("eligible")
_set_reasons = _slot_setter("reasons")
_set_cost = _slot_setter("estimated_cost_usd")


def _needed_capabilities(features: RequestFeatures) -> frozenset[Capability]:
    if not (features.has_images or features.uses_tools or features.json_mode):
        return _NO_CAPABILITIES
    needed = set()
    if features.has_images:
        needed.add(Capability.IMAGES)
    if features.uses_tools:
        needed.add(Capability.TOOLS)
    if features.json_mode:
        needed.add(Capability.JSON)
    return frozenset(needed)


def _failure_reasons(failed: int, *, confidential: bool) -> tuple[str, ...]:
    """Every reason code of a backend that failed the checks in `failed`: the stages in order."""
    reasons: list[str] = []
    if failed & _NOT_ALLOWED:
        reasons.append(TENANT_NOT_ALLOWED)
    # 1. privacy
    if failed & _OUTSIDE_CLUSTER:
        reasons.append(PRIVACY_EXTERNAL_BLOCKED if confidential else PRIVACY_TENANT_IN_CLUSTER_ONLY)
    else:
        reasons.append(PRIVACY_OK)
    # 2. capability
    capability_failures = [code for bit, code in _CAPABILITY_FAILURES if failed & bit]
    reasons.extend(capability_failures or [CAPABILITY_OK])
    # 3. health
    if failed & _COOLDOWN:
        reasons.append(HEALTH_COOLDOWN)
    elif failed & _NO_READY_REPLICA:
        reasons.append(HEALTH_NO_READY_REPLICA)
    else:
        reasons.append(HEALTH_OK)
    return tuple(reasons)


# One bit per failed check, and the reasons of every combination, built once.
_NOT_ALLOWED = 1
_OUTSIDE_CLUSTER = 2
_CONTEXT_TOO_SMALL = 4
_NO_IMAGES = 8
_NO_TOOLS = 16
_NO_JSON = 32
_COOLDOWN = 64
_NO_READY_REPLICA = 128
_CAPABILITY_FAILURES = (
    (_CONTEXT_TOO_SMALL, CAPABILITY_CONTEXT_TOO_SMALL),
    (_NO_IMAGES, CAPABILITY_NO_IMAGES),
    (_NO_TOOLS, CAPABILITY_NO_TOOLS),
    (_NO_JSON, CAPABILITY_NO_JSON),
)
_FAILURE_REASONS = tuple(_failure_reasons(failed, confidential=False) for failed in range(256))
_CONFIDENTIAL_FAILURE_REASONS = tuple(
    _failure_reasons(failed, confidential=True) for failed in range(256)
)


def _balanced_keys(*tiers: list[_Eligible]) -> tuple[list[_Eligible], ...]:
    """The tiers keyed by the mean of normalised cost and normalised TTFT, for BALANCED.

    Both are divided by their highest value among all eligible backends; an unmeasured TTFT
    counts as the highest.
    """
    entries = list(chain(*tiers))
    highest_cost = max([entry[1] for entry in entries], default=0.0)
    measured = [entry[3].predicted_ttft_ms for entry in entries]
    highest_ttft = max([ttft for ttft in measured if ttft is not None], default=0.0)
    cost_weight = 0.5 / highest_cost if highest_cost > 0 else 0.0
    ttft_weight = 0.5 / highest_ttft if highest_ttft > 0 else 0.0
    unmeasured_share = 0.5 if highest_ttft > 0 else 0.0
    return tuple(
        [
            (
                cost * cost_weight
                + (
                    unmeasured_share
                    if backend.predicted_ttft_ms is None
                    else backend.predicted_ttft_ms * ttft_weight
                ),
                cost,
                position,
                backend,
            )
            for _key, cost, position, backend in tier
        ]
        for tier in tiers
    )


def _policy_violation_message(
    backend: str,
    failed: int,
    features: RequestFeatures,
    data_class: DataClass,
    tenant: TenantPolicy,
) -> str:
    if failed & _NOT_ALLOWED:
        return f"tenant {tenant.name!r} may not use backend {backend!r}"
    if data_class is DataClass.CONFIDENTIAL:
        if features.data_class is not DataClass.CONFIDENTIAL and features.pii_found:
            found = ", ".join(sorted(pii.value for pii in features.pii_found))
            why = f"the request contains personal or secret data ({found})"
        else:
            why = "the request is confidential"
        return f"backend {backend!r} is outside the cluster and {why}; use an in-cluster backend"
    return (
        f"backend {backend!r} is outside the cluster and tenant {tenant.name!r} "
        "may only use in-cluster backends"
    )


def _request_reasons(
    features: RequestFeatures,
    data_class: DataClass,
    tenant: TenantPolicy,
    pinned: str | None,
    pinned_found: bool,
    *,
    any_eligible: bool,
) -> tuple[str, ...]:
    reasons = [f"data-class:{data_class.value}"]
    if features.pii_found:
        reasons.extend(sorted(f"pii:{pii.value}" for pii in features.pii_found))
        if data_class is not features.data_class:
            reasons.append(DATA_CLASS_RAISED_BY_PII)
    if tenant.in_cluster_only:
        reasons.append(TENANT_IN_CLUSTER_ONLY)
    if pinned is not None and not pinned_found:
        reasons.append(PINNED_UNKNOWN_BACKEND)
    if not any_eligible:
        reasons.append(NO_ELIGIBLE_BACKEND)
    return tuple(reasons)
