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
constant reason strings, and a single sort of the eligible ones.
"""

from __future__ import annotations

from collections.abc import Sequence

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

_DATA_CLASS_REASONS = {data_class: f"data-class:{data_class.value}" for data_class in DataClass}
_COST_RANK_REASONS = tuple(f"cost:rank-{rank}" for rank in range(1, 129))

_LATENCY_TIER_MEETS, _LATENCY_TIER_UNMEASURED, _LATENCY_TIER_OVER = 0, 1, 2
_PER_MILLION = 1e-6


def _cost_rank_reason(rank: int) -> str:
    return _COST_RANK_REASONS[rank - 1] if rank <= len(_COST_RANK_REASONS) else f"cost:rank-{rank}"


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
    privacy_block_reason = (
        PRIVACY_EXTERNAL_BLOCKED if confidential else PRIVACY_TENANT_IN_CLUSTER_ONLY
    )
    pinned = features.pinned_backend
    allowed = tenant.allowed_backends
    needed_context = features.input_tokens + features.max_output_tokens
    needs_images, needs_tools, needs_json = (
        features.has_images,
        features.uses_tools,
        features.json_mode,
    )
    output_tokens = features.max_output_tokens or settings.assumed_output_tokens
    input_tokens = features.input_tokens
    target_ms = settings.latency_target_ms

    # (latency tier, position, backend, reasons so far, estimated cost) of each eligible backend.
    eligible: list[tuple[int, int, BackendSnapshot, list[str], float]] = []
    ineligible: list[CandidateVerdict] = []
    pinned_found = False
    policy_violation: str | None = None

    for position, backend in enumerate(backends):
        cost = (
            input_tokens * backend.input_usd_per_mtok + output_tokens * backend.output_usd_per_mtok
        ) * _PER_MILLION
        name = backend.name
        if pinned is not None:
            if name != pinned:
                ineligible.append(CandidateVerdict(name, False, (PINNED_OTHER_BACKEND,), cost))
                continue
            pinned_found = True

        reasons: list[str] = []
        ok = True
        if allowed is not None and name not in allowed:
            reasons.append(TENANT_NOT_ALLOWED)
            ok = False
            if pinned is not None:
                policy_violation = f"tenant {tenant.name!r} may not use backend {name!r}"

        # 1. privacy
        if in_cluster_only and backend.location is not Location.IN_CLUSTER:
            reasons.append(privacy_block_reason)
            ok = False
            if pinned is not None and policy_violation is None:
                policy_violation = _privacy_violation_message(name, features, data_class, tenant)
        else:
            reasons.append(PRIVACY_OK)

        # 2. capability
        capabilities = backend.capabilities
        capable = True
        if backend.context_window < needed_context:
            reasons.append(CAPABILITY_CONTEXT_TOO_SMALL)
            capable = False
        if needs_images and Capability.IMAGES not in capabilities:
            reasons.append(CAPABILITY_NO_IMAGES)
            capable = False
        if needs_tools and Capability.TOOLS not in capabilities:
            reasons.append(CAPABILITY_NO_TOOLS)
            capable = False
        if needs_json and Capability.JSON not in capabilities:
            reasons.append(CAPABILITY_NO_JSON)
            capable = False
        if capable:
            reasons.append(CAPABILITY_OK)
        else:
            ok = False

        # 3. health
        if backend.in_cooldown:
            reasons.append(HEALTH_COOLDOWN)
            ok = False
        elif not backend.ready:
            reasons.append(HEALTH_NO_READY_REPLICA)
            ok = False
        else:
            reasons.append(HEALTH_OK)

        if not ok:
            ineligible.append(CandidateVerdict(name, False, tuple(reasons), cost))
            continue

        # 4. latency (a tier; the order inside it is the cost stage's)
        tier = _LATENCY_TIER_MEETS
        if target_ms is not None:
            ttft = backend.predicted_ttft_ms
            if ttft is None:
                reasons.append(LATENCY_UNMEASURED)
                tier = _LATENCY_TIER_UNMEASURED
            elif ttft <= target_ms:
                reasons.append(LATENCY_MEETS_TARGET)
            else:
                reasons.append(LATENCY_OVER_TARGET)
                tier = _LATENCY_TIER_OVER
        eligible.append((tier, position, backend, reasons, cost))

    # 5. cost
    if settings.cost_preference is CostPreference.BALANCED and len(eligible) > 1:
        eligible.sort(key=_balanced_key(eligible))
    else:
        eligible.sort(key=_cheapest_key)
    ordered = [
        CandidateVerdict(backend.name, True, (*reasons, _cost_rank_reason(rank)), cost)
        for rank, (_tier, _position, backend, reasons, cost) in enumerate(eligible, start=1)
    ]
    ordered.extend(ineligible)

    return Decision(
        data_class=data_class,
        pii_found=features.pii_found,
        candidates=tuple(ordered),
        reasons=_request_reasons(
            features, data_class, tenant, pinned, pinned_found, bool(eligible)
        ),
        policy_violation=policy_violation,
    )


def _cheapest_key(entry: tuple[int, int, BackendSnapshot, list[str], float]) -> tuple[int, float]:
    # `sort` is stable, so equal keys keep the configured backend order.
    return entry[0], entry[4]


def _balanced_key(
    eligible: list[tuple[int, int, BackendSnapshot, list[str], float]],
) -> _BalancedKey:
    highest_cost = max(entry[4] for entry in eligible)
    measured = [
        entry[2].predicted_ttft_ms for entry in eligible if entry[2].predicted_ttft_ms is not None
    ]
    highest_ttft = max((ttft for ttft in measured if ttft is not None), default=0.0)
    return _BalancedKey(highest_cost, highest_ttft)


class _BalancedKey:
    """Sort key for BALANCED: latency tier, then the mean of normalised cost and normalised TTFT."""

    __slots__ = ("highest_cost", "highest_ttft")

    def __init__(self, highest_cost: float, highest_ttft: float) -> None:
        self.highest_cost = highest_cost
        self.highest_ttft = highest_ttft

    def __call__(
        self, entry: tuple[int, int, BackendSnapshot, list[str], float]
    ) -> tuple[int, float, float]:
        tier, _position, backend, _reasons, cost = entry
        cost_share = cost / self.highest_cost if self.highest_cost > 0 else 0.0
        ttft = backend.predicted_ttft_ms
        if self.highest_ttft > 0:
            ttft_share = 1.0 if ttft is None else ttft / self.highest_ttft
        else:
            ttft_share = 0.0
        return tier, 0.5 * cost_share + 0.5 * ttft_share, cost


def _privacy_violation_message(
    backend: str, features: RequestFeatures, data_class: DataClass, tenant: TenantPolicy
) -> str:
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
    any_eligible: bool,
) -> tuple[str, ...]:
    reasons = [_DATA_CLASS_REASONS[data_class]]
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
