"""The policy engine's vocabulary: what it is told about a request, the backends and the tenant.

Everything here is immutable and free of IO so that a decision is a pure function of its inputs.
The adapters (config file, Kubernetes catalog, Redis state, metrics scraper) produce these values;
the policy stages only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class DataClass(StrEnum):
    """How sensitive a request is. Ordered: a request can only be raised, never lowered."""

    PUBLIC = "public"
    INTERNAL = "internal"
    CONFIDENTIAL = "confidential"


class Location(StrEnum):
    IN_CLUSTER = "in-cluster"
    EXTERNAL = "external"


class Capability(StrEnum):
    CHAT = "chat"
    TOOLS = "tools"
    JSON = "json"
    IMAGES = "images"


class PiiType(StrEnum):
    EMAIL = "email"
    PHONE = "phone"
    PAYMENT_CARD = "payment_card"
    IBAN = "iban"
    US_SSN = "us_ssn"
    IP_ADDRESS = "ip_address"
    CREDENTIAL = "credential"


class CostPreference(StrEnum):
    CHEAPEST = "cheapest"
    BALANCED = "balanced"


@dataclass(frozen=True, slots=True)
class RequestFeatures:
    """What the policy needs to know about one chat-completion request (never its text)."""

    data_class: DataClass  # declared by header, or the tenant's default
    pii_found: frozenset[PiiType] = frozenset()
    input_tokens: int = 0
    max_output_tokens: int = 0
    has_images: bool = False
    uses_tools: bool = False
    json_mode: bool = False
    pinned_backend: str | None = None  # `model` named a backend instead of "auto"


@dataclass(frozen=True, slots=True)
class BackendSnapshot:
    """One backend as the router sees it at decision time."""

    name: str
    location: Location
    capabilities: frozenset[Capability]
    context_window: int
    input_usd_per_mtok: float
    output_usd_per_mtok: float
    ready: bool = True  # has at least one replica able to serve (False while scaled to zero)
    in_cooldown: bool = False  # recent repeated failures
    predicted_ttft_ms: float | None = None  # live latency estimate; None while unmeasured


@dataclass(frozen=True, slots=True)
class TenantPolicy:
    """The tenant-specific part of a decision."""

    name: str
    allowed_backends: frozenset[str] | None = None  # None: every backend
    in_cluster_only: bool = False  # e.g. budget exhausted with downgrade enabled


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """Deployment-wide policy knobs (the `policy` section of the router configuration)."""

    pii_detection: bool = True
    confidential_pii_types: frozenset[PiiType] = frozenset(PiiType)
    latency_target_ms: float | None = None
    cost_preference: CostPreference = CostPreference.CHEAPEST
    # Output tokens assumed for the cost estimate when the request sets no max_tokens.
    assumed_output_tokens: int = 256


@dataclass(frozen=True, slots=True)
class CandidateVerdict:
    """One backend's outcome: eligible or not, and every reason code that led there."""

    backend: str
    eligible: bool
    reasons: tuple[str, ...]
    estimated_cost_usd: float = 0.0


@dataclass(frozen=True, slots=True)
class Decision:
    """The ordered outcome of a decision.

    `candidates` lists every backend: the eligible ones first, in the order they should be tried
    (the first is the choice, the rest are the fallbacks), then the ineligible ones.
    """

    data_class: DataClass  # effective: the declared class, raised by PII when configured
    pii_found: frozenset[PiiType]
    candidates: tuple[CandidateVerdict, ...]
    reasons: tuple[str, ...] = field(default=())  # request-level reason codes
    # Set when the request pinned a backend that privacy or the tenant's allow-list forbids:
    # a human-readable message for a 403 `policy_violation` (nothing may be sent anywhere).
    policy_violation: str | None = None

    @property
    def eligible(self) -> tuple[CandidateVerdict, ...]:
        return tuple(c for c in self.candidates if c.eligible)

    @property
    def chosen(self) -> CandidateVerdict | None:
        return next((c for c in self.candidates if c.eligible), None)
