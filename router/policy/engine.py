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

The decision is allocation-lean because it runs on every request: one filtering pass over the
backends, stable sorts of the eligible ones' indices, and no verdict until one is asked for
(a request reads its choice and a fallback or two; `/v1/route/explain` reads them all, each
with prebuilt reason tuples).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelplane.router.policy.types import (
    PRIVACY_EXTERNAL_BLOCKED,
    PRIVACY_TENANT_IN_CLUSTER_ONLY,
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
    slot_setter,
)

# Per-backend reason codes (the two privacy failures are defined in types.py).
PINNED_OTHER_BACKEND = "pinned:other-backend"
TENANT_NOT_ALLOWED = "tenant:not-allowed"
PRIVACY_OK = "privacy:ok"
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

# Latency tiers, best first (the index into a tier-reasons table below).
_MEETS_TARGET, _UNMEASURED, _OVER_TARGET = 0, 1, 2


def _eligible_reasons(latency: str | None, index: int) -> tuple[str, ...]:
    """Reasons of the eligible backend at `index` (0-based) in the order."""
    return (*_PASSED_REASONS, *((latency,) if latency else ()), f"cost:rank-{index + 1}")


def _prebuilt_reasons(latency: str | None) -> tuple[tuple[str, ...], ...]:
    return tuple(_eligible_reasons(latency, index) for index in range(_MAX_PREBUILT_RANK))


# Per latency tier, best first: its latency reason code and the reasons of an eligible backend
# by its position in the order. Without a latency target every backend is in one tier.
_NO_TARGET_TIER_REASONS = ((None, _prebuilt_reasons(None)),)
_TIER_REASONS = tuple(
    (latency, _prebuilt_reasons(latency))
    for latency in (LATENCY_MEETS_TARGET, LATENCY_UNMEASURED, LATENCY_OVER_TARGET)
)


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
    """Judge every backend and order the eligible ones: the choice first, then the fallbacks.

    Only the order is computed here; each verdict (reason codes, cost) is built when something
    asks for it (see `Decision`), as most requests only ever read the first one or two.
    """
    data_class = effective_data_class(features, settings)
    judgement = _Judgement(features, backends, tenant, settings, data_class)
    pinned = features.pinned_backend
    policy_violation: str | None = None
    if pinned is None:
        judged = backends
    else:
        judged = [backend for backend in backends if backend.name == pinned]
        for backend in judged:
            failed = judgement.failed_checks(backend)
            if failed & (_NOT_ALLOWED | _OUTSIDE_CLUSTER):
                policy_violation = _policy_violation_message(
                    backend.name, failed, features, data_class, tenant
                )
    eligible = judgement.passing(judged)

    # The ranking stages order indices into `eligible` with stable sorts, the last sort being
    # the most significant: cost, then (BALANCED) the score, then the latency tier. Ties keep
    # the previous order, and in the end the configured one.
    input_tokens = judgement.input_tokens
    output_tokens = judgement.output_tokens
    costs = [
        (input_tokens * backend.input_usd_per_mtok + output_tokens * backend.output_usd_per_mtok)
        * _PER_MILLION
        for backend in eligible
    ]
    balanced = settings.cost_preference is CostPreference.BALANCED
    target_ms = settings.latency_target_ms
    ttfts = (
        [backend.predicted_ttft_ms for backend in eligible]
        if balanced or target_ms is not None
        else []
    )
    # 5. cost
    order = sorted(range(len(eligible)), key=costs.__getitem__)
    if balanced:
        order.sort(key=_balanced_scores(costs, ttfts).__getitem__)
    # 4. latency
    tiers: list[int] | None = None
    if target_ms is not None:
        tiers = [
            _UNMEASURED if ttft is None else _MEETS_TARGET if ttft <= target_ms else _OVER_TARGET
            for ttft in ttfts
        ]
        order.sort(key=tiers.__getitem__)
    judgement.ordered(eligible, costs, order, tiers)

    return Decision.deferred(
        data_class=data_class,
        pii_found=features.pii_found,
        verdicts=judgement,
        reasons=_request_reasons(
            features,
            data_class,
            tenant,
            pinned,
            pinned_found=bool(judged),
            any_eligible=bool(eligible),
        ),
        policy_violation=policy_violation,
        egress_blocked=judgement.in_cluster_only
        and any(backend.location is not Location.IN_CLUSTER for backend in judged),
    )


class _Judgement:
    """One request's checks (stages 1-3), the order of the backends that pass them, and the
    verdicts built from both when the decision is asked for them (its `VerdictSource`)."""

    __slots__ = (
        "allowed",
        "backends",
        "costs",
        "eligible_backends",
        "eligible_count",
        "failure_reasons",
        "in_cluster_only",
        "input_tokens",
        "needed_capabilities",
        "needed_context",
        "order",
        "output_tokens",
        "pinned",
        "tier_reasons",
        "tiers",
    )

    def __init__(
        self,
        features: RequestFeatures,
        backends: Sequence[BackendSnapshot],
        tenant: TenantPolicy,
        settings: PolicySettings,
        data_class: DataClass,
    ) -> None:
        confidential = data_class is DataClass.CONFIDENTIAL
        # A copy (none if already a tuple): the verdicts built later must see these backends.
        self.backends = tuple(backends)
        self.pinned = features.pinned_backend
        self.allowed = tenant.allowed_backends
        self.in_cluster_only = confidential or tenant.in_cluster_only
        self.needed_context = features.input_tokens + features.max_output_tokens
        self.needed_capabilities = _needed_capabilities(features)
        self.failure_reasons = _CONFIDENTIAL_FAILURE_REASONS if confidential else _FAILURE_REASONS
        self.input_tokens = features.input_tokens
        self.output_tokens = features.max_output_tokens or settings.assumed_output_tokens
        self.tier_reasons = (
            _NO_TARGET_TIER_REASONS if settings.latency_target_ms is None else _TIER_REASONS
        )

    def passing(self, backends: Sequence[BackendSnapshot]) -> list[BackendSnapshot]:
        """The backends for which `failed_checks` is 0, in order."""
        allowed = self.allowed
        in_cluster_only = self.in_cluster_only
        needed_context = self.needed_context
        needed_capabilities = self.needed_capabilities
        in_cluster = Location.IN_CLUSTER
        # failed_checks() as one condition: this runs for every backend on every request, and a
        # comprehension's filter costs a fraction of a call per backend.
        return [
            backend
            for backend in backends
            if backend.ready
            and not backend.in_cooldown
            and backend.context_window >= needed_context
            and (allowed is None or backend.name in allowed)
            and (not in_cluster_only or backend.location is in_cluster)
            and (not needed_capabilities or needed_capabilities <= backend.capabilities)
        ]

    def failed_checks(self, backend: BackendSnapshot) -> int:
        """Stages 1-3 (and the tenant's allow-list) as one bit per failed check."""
        failed = 0
        if self.allowed is not None and backend.name not in self.allowed:
            failed = _NOT_ALLOWED
        if self.in_cluster_only and backend.location is not Location.IN_CLUSTER:
            failed |= _OUTSIDE_CLUSTER
        if backend.context_window < self.needed_context:
            failed |= _CONTEXT_TOO_SMALL
        missing = self.needed_capabilities - backend.capabilities
        if Capability.IMAGES in missing:
            failed |= _NO_IMAGES
        if Capability.TOOLS in missing:
            failed |= _NO_TOOLS
        if Capability.JSON in missing:
            failed |= _NO_JSON
        if backend.in_cooldown:
            failed |= _COOLDOWN
        elif not backend.ready:
            failed |= _NO_READY_REPLICA
        return failed

    def ordered(
        self,
        eligible: list[BackendSnapshot],
        costs: list[float],
        order: list[int],
        tiers: list[int] | None,
    ) -> None:
        """Record the eligible backends, their costs and latency tiers, and their order (indices
        into those lists, best first)."""
        self.eligible_backends = eligible
        self.costs = costs
        self.order = order
        self.tiers = tiers
        self.eligible_count = len(order)

    # VerdictSource

    def eligible(self, start: int, stop: int) -> tuple[CandidateVerdict, ...]:
        tier_reasons, tiers = self.tier_reasons, self.tiers
        backends, costs = self.eligible_backends, self.costs
        verdicts = []
        for rank, index in enumerate(self.order[start:stop], start):
            latency, prebuilt = tier_reasons[0 if tiers is None else tiers[index]]
            reasons = (
                prebuilt[rank] if rank < _MAX_PREBUILT_RANK else _eligible_reasons(latency, rank)
            )
            verdicts.append(_verdict(backends[index].name, True, reasons, costs[index]))
        return tuple(verdicts)

    def ineligible(self) -> tuple[CandidateVerdict, ...]:
        verdicts = []
        for backend in self.backends:
            if self.pinned is not None and backend.name != self.pinned:
                verdicts.append(_verdict(backend.name, False, _PINNED_OTHER_REASONS, 0.0))
                continue
            failed = self.failed_checks(backend)
            if failed:
                cost = (
                    self.input_tokens * backend.input_usd_per_mtok
                    + self.output_tokens * backend.output_usd_per_mtok
                ) * _PER_MILLION
                reasons = self.failure_reasons[failed]
                verdicts.append(_verdict(backend.name, False, reasons, cost))
        return tuple(verdicts)


_PINNED_OTHER_REASONS = (PINNED_OTHER_BACKEND,)
_NO_CAPABILITIES: frozenset[Capability] = frozenset()

# A frozen dataclass's generated __init__ goes through object.__setattr__ once per field, which
# doubles the cost of building a verdict (a request builds its first one or two, an explanation
# one per backend). Writing the slots directly builds the identical object at half the cost.
_new_verdict = object.__new__


_set_backend = slot_setter(CandidateVerdict, "backend")
_set_eligible = slot_setter(CandidateVerdict, "eligible")
_set_reasons = slot_setter(CandidateVerdict, "reasons")
_set_cost = slot_setter(CandidateVerdict, "estimated_cost_usd")


def _verdict(
    backend: str, eligible: bool, reasons: tuple[str, ...], cost: float
) -> CandidateVerdict:
    verdict: CandidateVerdict = _new_verdict(CandidateVerdict)
    _set_backend(verdict, backend)
    _set_eligible(verdict, eligible)
    _set_reasons(verdict, reasons)
    _set_cost(verdict, cost)
    return verdict


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


def _balanced_scores(costs: list[float], ttfts: list[float | None]) -> list[float]:
    """Each eligible backend's mean of normalised cost and normalised TTFT, for BALANCED.

    Both are divided by their highest value among the eligible backends; an unmeasured TTFT
    counts as the highest.
    """
    highest_cost = max(costs, default=0.0)
    highest_ttft = max([ttft for ttft in ttfts if ttft is not None], default=0.0)
    cost_weight = 0.5 / highest_cost if highest_cost > 0 else 0.0
    ttft_weight = 0.5 / highest_ttft if highest_ttft > 0 else 0.0
    unmeasured_share = 0.5 if highest_ttft > 0 else 0.0
    return [
        cost * cost_weight + (unmeasured_share if ttft is None else ttft * ttft_weight)
        for cost, ttft in zip(costs, ttfts, strict=True)
    ]


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
