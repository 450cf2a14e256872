"""The router's YAML configuration file: schema, `${VAR}` expansion and loading.

The file is validated completely at start-up, so a typo or a missing secret stops the router with
a message naming it instead of surfacing as a failed request later. `catalog.py` turns the
validated model into the runtime `Catalog`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Self

import yaml
from modelplane.router.policy.types import (
    Capability,
    CostPreference,
    DataClass,
    Location,
    PiiType,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class ConfigError(Exception):
    """The configuration cannot be used; the message says what to fix."""


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_variables(text: str, environ: Mapping[str, str]) -> str:
    """Replace `${VAR}` and `${VAR:-default}`; a missing variable without default is an error.

    `${VAR:-default}` uses the default when VAR is unset or empty, as in the shell.
    """
    missing: list[str] = []
    expanded = _expand(text, environ, missing)
    _raise_if_missing(missing)
    return expanded


def _expand(text: str, environ: Mapping[str, str], missing: list[str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value:
            return value
        if default is not None:
            return default
        if value is None:
            missing.append(name)
            return ""
        return value

    return _VARIABLE.sub(substitute, text)


def _raise_if_missing(missing: list[str]) -> None:
    if missing:
        names = ", ".join(dict.fromkeys(missing))
        raise ConfigError(f"environment variable(s) not set and without default: {names}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdapterKind(StrEnum):
    """How the router talks to a backend."""

    OPENAI = "openai"  # direct pass-through to an OpenAI-compatible HTTP API
    LITELLM = "litellm"  # translated by LiteLLM (Anthropic, Gemini, Bedrock, Triton native, ...)


# LiteLLM provider prefixes whose upstream speaks the OpenAI chat-completions API as-is, so the
# router can forward the request body unchanged (Triton's OpenAI frontend is addressed this way).
OPENAI_COMPATIBLE_PROVIDERS = frozenset({"openai", "hosted_vllm", "text-completion-openai"})

DEFAULT_OPENAI_BASE = "https://api.openai.com/v1"

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]


class BackendConfig(_Strict):
    name: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")]
    model: Annotated[str, Field(min_length=1)]  # LiteLLM model string, e.g. hosted_vllm/llama-3-8b
    api_base: str | None = None
    # Secrets: kept out of repr and dumps, so a logged or printed configuration holds none.
    api_key: str | None = Field(default=None, repr=False, exclude=True)
    location: Location
    context_window: PositiveInt | None = None  # default: LiteLLM's price map, when it knows it
    capabilities: frozenset[Capability] = frozenset({Capability.CHAT})
    input_usd_per_mtok: NonNegativeFloat | None = None
    output_usd_per_mtok: NonNegativeFloat | None = None
    gpu_hour_usd: NonNegativeFloat | None = None
    tokens_per_second: Annotated[float, Field(gt=0)] | None = None
    max_concurrency: PositiveInt = 256
    timeout_s: Annotated[float, Field(gt=0)] = 60.0
    adapter: AdapterKind | None = None  # default: derived from the model string's provider

    @property
    def provider(self) -> str:
        return self.model.split("/", 1)[0] if "/" in self.model else "openai"

    @property
    def upstream_model(self) -> str:
        """The model name the upstream itself knows (the LiteLLM string minus its provider)."""
        return self.model.split("/", 1)[1] if "/" in self.model else self.model

    @property
    def resolved_adapter(self) -> AdapterKind:
        if self.adapter is not None:
            return self.adapter
        if self.provider in OPENAI_COMPATIBLE_PROVIDERS:
            return AdapterKind.OPENAI
        return AdapterKind.LITELLM

    @model_validator(mode="after")
    def _check_prices_and_base(self) -> Self:
        explicit = (self.input_usd_per_mtok, self.output_usd_per_mtok)
        if (explicit[0] is None) != (explicit[1] is None):
            raise ValueError("give both input_usd_per_mtok and output_usd_per_mtok, or neither")
        if (self.gpu_hour_usd is None) != (self.tokens_per_second is None):
            raise ValueError("give both gpu_hour_usd and tokens_per_second, or neither")
        if self.gpu_hour_usd is not None and explicit[0] is not None:
            raise ValueError("give either per-token prices or gpu_hour_usd, not both")
        openai_compatible = self.resolved_adapter is AdapterKind.OPENAI
        if openai_compatible and self.api_base is None and self.provider != "openai":
            raise ValueError(f"api_base is required for {self.model!r}")
        if self.name == "auto":
            raise ValueError("'auto' is reserved: it asks the policy to choose")
        return self


class OverBudget(StrEnum):
    REJECT = "reject"  # 429
    IN_CLUSTER_ONLY = "in-cluster-only"  # keep serving, but only on self-hosted backends


Sha256Hex = Annotated[str, Field(pattern=r"^(sha256:)?[0-9a-fA-F]{64}$")]


class TenantConfig(_Strict):
    name: Annotated[str, Field(min_length=1)]
    # Plain keys, normally `${VAR}` so the secret lives in the environment; hashed on load.
    api_keys: list[Annotated[str, Field(min_length=1)]] = Field(
        default=[], repr=False, exclude=True
    )
    # SHA-256 hex digests of keys (`printf %s "$KEY" | sha256sum`), for files that hold no secret.
    api_key_sha256: list[Sha256Hex] = []
    default_data_class: DataClass = DataClass.INTERNAL
    allowed_backends: list[str] | None = None  # None: every backend
    requests_per_minute: PositiveInt | None = None
    tokens_per_minute: PositiveInt | None = None
    daily_budget_usd: NonNegativeFloat | None = None
    monthly_budget_usd: NonNegativeFloat | None = None
    over_budget: OverBudget = OverBudget.REJECT

    @model_validator(mode="after")
    def _check_keys(self) -> Self:
        if not self.api_keys and not self.api_key_sha256:
            raise ValueError(f"tenant {self.name!r} needs api_keys or api_key_sha256")
        return self


class PolicyConfig(_Strict):
    pii_detection: bool = True
    confidential_pii_types: frozenset[PiiType] = frozenset(PiiType)
    latency_target_ms: Annotated[float, Field(gt=0)] | None = None
    cost_preference: CostPreference = CostPreference.CHEAPEST


class CooldownConfig(_Strict):
    """A backend that fails `failures` attempts in a row is skipped for `seconds`."""

    failures: PositiveInt = 3
    seconds: Annotated[float, Field(ge=0)] = 30.0


class RouterConfig(_Strict):
    backends: Annotated[list[BackendConfig], Field(min_length=1)]
    tenants: Annotated[list[TenantConfig], Field(min_length=1)]
    policy: PolicyConfig = PolicyConfig()
    cooldown: CooldownConfig = CooldownConfig()

    @model_validator(mode="after")
    def _check_references(self) -> Self:
        names = [backend.name for backend in self.backends]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate backend name(s): {', '.join(duplicates)}")
        tenant_names = [tenant.name for tenant in self.tenants]
        duplicate_tenants = sorted({name for name in tenant_names if tenant_names.count(name) > 1})
        if duplicate_tenants:
            raise ValueError(f"duplicate tenant name(s): {', '.join(duplicate_tenants)}")
        known = set(names)
        for tenant in self.tenants:
            unknown = sorted(set(tenant.allowed_backends or ()) - known)
            if unknown:
                raise ValueError(
                    f"tenant {tenant.name!r} allows unknown backend(s): {', '.join(unknown)}"
                )
        return self


def parse_config(text: str, environ: Mapping[str, str] | None = None) -> RouterConfig:
    """Parse `text` as YAML, expand variables in its string values and validate it.

    Expanding after parsing keeps secrets with YAML-special characters intact and leaves
    comments alone.
    """
    try:
        document: Any = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"not valid YAML: {error}") from error
    if not isinstance(document, dict):
        raise ConfigError("the configuration must be a mapping with backends, tenants, policy")
    missing: list[str] = []
    document = _expand_tree(document, os.environ if environ is None else environ, missing)
    _raise_if_missing(missing)
    try:
        return RouterConfig.model_validate(document)
    except ValidationError as error:
        raise ConfigError(_describe(error)) from error


def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> RouterConfig:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror or error}") from error
    try:
        return parse_config(text, environ)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}") from error


def _expand_tree(node: Any, environ: Mapping[str, str], missing: list[str]) -> Any:
    if isinstance(node, str):
        return _expand(node, environ, missing)
    if isinstance(node, dict):
        return {key: _expand_tree(value, environ, missing) for key, value in node.items()}
    if isinstance(node, list):
        return [_expand_tree(item, environ, missing) for item in node]
    return node


def _describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        lines.append(f"{where}: {problem['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
