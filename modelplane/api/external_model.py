"""`ExternalModel`: a hosted model (e.g. GPT-4o) the router may call, with its API key's Secret.

Mirrors `crds/modelplane.dev_externalmodels.yaml`. The key itself never enters this model: only
the reference to the Secret that holds it.
"""

from __future__ import annotations

from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from modelplane.api.base import (
    API_BASE_PATTERN,
    ApiModel,
    Capability,
    ConditionsStatus,
    CustomResource,
    SecretKeyRef,
    chat_only,
)
from modelplane.api.providers import LITELLM_PROVIDERS

KIND = "ExternalModel"
PLURAL = "externalmodels"


def _check_provider(provider: str) -> str:
    if provider not in LITELLM_PROVIDERS:
        raise ValueError(
            f"unknown provider {provider!r}: LiteLLM has no such provider "
            "(e.g. openai, azure, anthropic, gemini, vertex_ai, bedrock)"
        )
    return provider


def _check_api_base(url: str) -> str:
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (reading it validates it)
    except ValueError:
        raise ValueError(f"apiBase {url!r} has an invalid port") from None
    if not parts.hostname:
        raise ValueError(f"apiBase {url!r} has no host")
    return url


Provider = Annotated[
    str, Field(max_length=63, pattern=r"^[a-z0-9][a-z0-9_-]*$"), AfterValidator(_check_provider)
]
ApiBase = Annotated[str, Field(pattern=API_BASE_PATTERN), AfterValidator(_check_api_base)]


class ExternalModelSpec(ApiModel):
    """How to reach a hosted model and what it can do."""

    provider: Provider
    model: str = Field(min_length=1, max_length=253)
    api_base: ApiBase | None = None
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
