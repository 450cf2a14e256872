"""The policy engine's vocabulary: what it is told about a request, the backends and the tenant.

Everything here is immutable and free of IO so that a decision is a pure function of its inputs.
The adapters (config file, Kubernetes catalog, Redis state, metrics scraper) produce these values;
the policy stages only read them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError, dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar


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


class VerdictSource(Protocol):
    """Builds a decision's verdicts when they are first asked for (the engine implements it)."""

    @property
    def eligible_count(self) -> int: ...

    def eligible(self, start: int, stop: int) -> tuple[CandidateVerdict, ...]:
        """The eligible verdicts from rank `start` up to `stop` (or the last one), in order."""
        ...

    def ineligible(self) -> tuple[CandidateVerdict, ...]:
        """The ineligible verdicts, in configured backend order."""
        ...


class Decision:
    """The ordered outcome of a decision.

    `candidates` lists every backend: the eligible ones first, in the order they should be tried
    (the first is the choice, the rest are the fallbacks), then the ineligible ones.

    A decision is immutable and compares by value, like the other types here. It is not a
    dataclass because the engine's decisions build their verdicts lazily: a request needs its
    choice and a fallback or two, while explaining a decision (`/v1/route/explain`, error
    messages) needs every backend's verdict, which at 100 backends costs more than the decision
    itself. Build one directly with every verdict, or with `Decision.deferred` from a
    `VerdictSource`; both read the same.
    """

    __slots__ = (
        "_candidates",
        "_eligible",
        "_source",
        "data_class",
        "egress_blocked",
        "pii_found",
        "policy_violation",
        "reasons",
    )

    data_class: DataClass  # effective: the declared class, raised by PII when configured
    pii_found: frozenset[PiiType]
    reasons: tuple[str, ...]  # request-level reason codes
    # Set when the request pinned a backend that privacy or the tenant's allow-list forbids:
    # a human-readable message for a 403 `policy_violation` (nothing may be sent anywhere).
    policy_violation: str | None
    # Privacy ruled out at least one backend (an external one for a confidential request or a
    # tenant restricted to the cluster): one of the candidates has a `privacy:` failure code.
    egress_blocked: bool
    _source: VerdictSource | None  # builds the verdicts not built yet; None: all are built
    _eligible: tuple[CandidateVerdict, ...]  # every eligible verdict, or those built so far
    _candidates: tuple[CandidateVerdict, ...] | None

    def __init__(
        self,
        data_class: DataClass,
        pii_found: frozenset[PiiType],
        candidates: tuple[CandidateVerdict, ...],
        reasons: tuple[str, ...] = (),
        policy_violation: str | None = None,
    ) -> None:
        self._init(
            data_class,
            pii_found,
            reasons,
            policy_violation,
            egress_blocked=any(
                reason in PRIVACY_FAILURES
                for candidate in candidates
                for reason in candidate.reasons
            ),
        )
        _set_slot(self, "_source", None)
        _set_slot(self, "_eligible", tuple(c for c in candidates if c.eligible))
        _set_slot(self, "_candidates", candidates)

    @classmethod
    def deferred(
        cls,
        data_class: DataClass,
        pii_found: frozenset[PiiType],
        verdicts: VerdictSource,
        reasons: tuple[str, ...],
        policy_violation: str | None,
        *,
        egress_blocked: bool,
    ) -> Decision:
        """A decision whose verdicts `verdicts` builds when first asked for."""
        decision = cls.__new__(cls)
        decision._init(data_class, pii_found, reasons, policy_violation, egress_blocked)
        _set_slot(decision, "_source", verdicts)
        _set_slot(decision, "_eligible", ())
        _set_slot(decision, "_candidates", None)
        return decision

    def _init(
        self,
        data_class: DataClass,
        pii_found: frozenset[PiiType],
        reasons: tuple[str, ...],
        policy_violation: str | None,
        egress_blocked: bool,
    ) -> None:
        _set_slot(self, "data_class", data_class)
        _set_slot(self, "pii_found", pii_found)
        _set_slot(self, "reasons", reasons)
        _set_slot(self, "policy_violation", policy_violation)
        _set_slot(self, "egress_blocked", egress_blocked)

    @property
    def candidates(self) -> tuple[CandidateVerdict, ...]:
        candidates = self._candidates
        if candidates is None:
            assert self._source is not None  # a decision holds its candidates or their source
            candidates = self.eligible + self._source.ineligible()
            _set_slot(self, "_candidates", candidates)
        return candidates

    @property
    def eligible(self) -> tuple[CandidateVerdict, ...]:
        source = self._source
        return self._eligible if source is None else self.first_eligible(source.eligible_count)

    @property
    def chosen(self) -> CandidateVerdict | None:
        first = self.first_eligible(1)
        return first[0] if first else None

    def first_eligible(self, count: int) -> tuple[CandidateVerdict, ...]:
        """`eligible[:count]`, without building the verdicts after those."""
        built = self._eligible
        source = self._source
        if source is None or len(built) >= min(count, source.eligible_count):
            return built[:count]
        built += source.eligible(len(built), count)
        _set_slot(self, "_eligible", built)
        return built

    def _fields(self) -> tuple[object, ...]:
        return (
            self.data_class,
            self.pii_found,
            self.candidates,
            self.reasons,
            self.policy_violation,
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Decision):
            return NotImplemented
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash(self._fields())

    def __repr__(self) -> str:
        data_class, pii_found, candidates, reasons, policy_violation = self._fields()
        return (
            f"Decision(data_class={data_class!r}, pii_found={pii_found!r}, "
            f"candidates={candidates!r}, reasons={reasons!r}, "
            f"policy_violation={policy_violation!r})"
        )

    def __setattr__(self, name: str, value: object) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")


# Decision is immutable from outside; it writes its own slots (once, or to cache verdicts).
_set_slot = object.__setattr__
# The privacy stage's failure codes. Defined here, with the other reason codes re-exported by
# router/policy/engine.py, because a Decision reads them to tell whether privacy blocked egress.
PRIVACY_EXTERNAL_BLOCKED = "privacy:external-blocked"
PRIVACY_TENANT_IN_CLUSTER_ONLY = "privacy:tenant-in-cluster-only"
PRIVACY_FAILURES = frozenset({PRIVACY_EXTERNAL_BLOCKED, PRIVACY_TENANT_IN_CLUSTER_ONLY})


_Slotted = TypeVar("_Slotted")


def slot_setter(cls: type[_Slotted], field_name: str) -> Callable[[_Slotted, Any], None]:
    """A direct writer of one slot of a frozen slots dataclass.

    Its generated __init__ goes through object.__setattr__ once per field, which doubles the
    cost of objects built on the request path; `object.__new__` plus these writers build the
    identical object at half the cost.
    """
    setter: Callable[[_Slotted, Any], None] = cls.__dict__[field_name].__set__
    return setter
