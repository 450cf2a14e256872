"""`RoutingPolicy`: the router's tenants, privacy, latency and cost policy as a resource.

Mirrors `crds/modelplane.dev_routingpolicies.yaml`. The value sets are the router's own
vocabulary (`modelplane.router.policy.types`); a unit test keeps the two in step.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from modelplane.api.base import (
    DNS_LABEL_PATTERN,
    ApiModel,
    ConditionsStatus,
    CustomResource,
    SecretKeyRef,
)

KIND = "RoutingPolicy"
PLURAL = "routingpolicies"

DataClassName = Literal["public", "internal", "confidential"]
PiiTypeName = Literal[
    "email", "phone", "payment_card", "iban", "us_ssn", "ip_address", "credential"
]
CostPreferenceName = Literal["cheapest", "balanced"]
OverBudgetName = Literal["reject", "in-cluster-only"]
ALL_PII_TYPES: tuple[PiiTypeName, ...] = (
    "email",
    "phone",
    "payment_card",
    "iban",
    "us_ssn",
    "ip_address",
    "credential",
)


class Tenant(ApiModel):
    """A caller of the router: its API key, defaults, budgets and limits."""

    name: str = Field(max_length=63, pattern=DNS_LABEL_PATTERN)
    api_key_secret_ref: SecretKeyRef
    default_data_class: DataClassName = "internal"
    daily_budget_usd: float | None = Field(default=None, ge=0, alias="dailyBudgetUSD")
    monthly_budget_usd: float | None = Field(default=None, ge=0, alias="monthlyBudgetUSD")
    over_budget: OverBudgetName = "reject"
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    allowed_backends: list[str] | None = None

    @model_validator(mode="after")
    def _daily_within_monthly(self) -> Self:
        daily, monthly = self.daily_budget_usd, self.monthly_budget_usd
        if daily is not None and monthly is not None and daily > monthly:
            raise ValueError(
                f"dailyBudgetUSD ({daily}) must not exceed monthlyBudgetUSD ({monthly})"
            )
        return self


class Privacy(ApiModel):
    """Which PII found in a request makes it confidential (never sent outside the cluster)."""

    pii_types: list[PiiTypeName] = Field(default_factory=lambda: list(ALL_PII_TYPES))

    @model_validator(mode="after")
    def _unique(self) -> Self:
        if len(set(self.pii_types)) != len(self.pii_types):
            raise ValueError("piiTypes must not repeat a value")
        return self


class Latency(ApiModel):
    """The time-to-first-token target that decides when to spill traffic."""

    target_ttft_ms: int | None = Field(default=None, ge=1, alias="targetTTFTMs")


class CostPolicy(ApiModel):
    """How much weight price gets when several backends qualify."""

    preference: CostPreferenceName = "cheapest"


class RoutingPolicySpec(ApiModel):
    """The desired routing policy."""

    tenants: list[Tenant] = Field(min_length=1, max_length=256)
    privacy: Privacy = Field(default_factory=Privacy)
    latency: Latency = Field(default_factory=Latency)
    cost: CostPolicy = Field(default_factory=CostPolicy)

    @model_validator(mode="after")
    def _unique_tenants(self) -> Self:
        names = [tenant.name for tenant in self.tenants]
        if len(set(names)) != len(names):
            raise ValueError("tenant names must be unique")
        return self


class RoutingPolicyStatus(ConditionsStatus):
    """What the operator observed: `Ready` is False with a reason when a Secret is missing."""


class RoutingPolicy(CustomResource):
    """A whole RoutingPolicy resource as the API server returns it."""

    resource_kind = KIND

    kind: Literal["RoutingPolicy"] = "RoutingPolicy"
    spec: RoutingPolicySpec
    status: RoutingPolicyStatus | None = None
