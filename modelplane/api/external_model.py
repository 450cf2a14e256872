"""`ExternalModel`: a hosted model (e.g. GPT-4o) the router may call, with its API key's Secret.

Mirrors `crds/modelplane.dev_externalmodels.yaml`. The key itself never enters this model: only
the reference to the Secret that holds it.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from modelplane.api.base import (
    ApiModel,
    Capability,
    ConditionsStatus,
    CustomResource,
    SecretKeyRef,
    chat_only,
)

KIND = "ExternalModel"
PLURAL = "externalmodels"


class ExternalModelSpec(ApiModel):
    """How to reach a hosted model and what it can do."""

    provider: str = Field(max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    model: str = Field(min_length=1, max_length=253)
    api_base: str | None = Field(default=None, pattern=r"^https?://[^\s]+$")
    api_key_secret_ref: SecretKeyRef
    context_window: int | None = Field(default=None, ge=1, le=10_000_000)
    capabilities: list[Capability] = Field(default_factory=chat_only, min_length=1, max_length=4)
    input_usd_per_mtok: float | None = Field(default=None, ge=0, alias="inputUSDPerMTok")
    output_usd_per_mtok: float | None = Field(default=None, ge=0, alias="outputUSDPerMTok")

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(set(self.capabilities)) != len(self.capabilities):
            raise ValueError("capabilities must not repeat a value")
        if (self.input_usd_per_mtok is None) != (self.output_usd_per_mtok is None):
            raise ValueError("set both inputUSDPerMTok and outputUSDPerMTok, or neither")
        return self


class ExternalModelStatus(ConditionsStatus):
    """What the operator observed: `Ready` is False with a reason when the key is missing."""


class ExternalModel(CustomResource):
    """A whole ExternalModel resource as the API server returns it."""

    resource_kind = KIND

    kind: Literal["ExternalModel"] = "ExternalModel"
    spec: ExternalModelSpec
    status: ExternalModelStatus | None = None
