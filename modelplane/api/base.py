"""Pieces every modelplane custom resource shares: the model base, metadata, conditions, errors."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

API_GROUP = "modelplane.dev"
API_VERSION = "v1alpha1"
GROUP_VERSION = f"{API_GROUP}/{API_VERSION}"

# Kubernetes' resource.Quantity grammar (apimachinery/pkg/api/resource) without the minus sign,
# as the CRDs use it: no request, limit or claim size can be negative.
QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# A Service name: a DNS-1035 label of at most 63 characters.
DNS_1035_LABEL_PATTERN = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
SECRET_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
# http(s), a host, no user or password (a key belongs in a Secret), then any path.
API_BASE_PATTERN = r"^https?://[^\s/?#@]+([/?#][^\s]*)?$"

# What a value of each pattern looks like: a condition says this instead of the bare regex.
PATTERN_MEANINGS: Mapping[str, str] = MappingProxyType(
    {
        QUANTITY_PATTERN: "a non-negative Kubernetes quantity, e.g. 16Gi, 500m or 8",
        DNS_LABEL_PATTERN: "a DNS label: lowercase letters, digits and '-', starting and ending"
        " with a letter or digit",
        SECRET_NAME_PATTERN: "a Secret name: lowercase letters, digits, '-' and '.'",
        SECRET_KEY_PATTERN: "a Secret key: letters, digits, '-', '_' and '.'",
        API_BASE_PATTERN: "an http:// or https:// URL with a host and no user or password",
    }
)

Capability = Literal["chat", "tools", "json", "images"]
ConditionStatus = Literal["True", "False", "Unknown"]


def chat_only() -> list[Capability]:
    """The capabilities a model has unless told otherwise."""
    return ["chat"]


def _quantity_to_str(value: object) -> object:
    # YAML turns `cpu: 8` into an int; Kubernetes accepts both spellings of a quantity.
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


Quantity = Annotated[str, BeforeValidator(_quantity_to_str), Field(pattern=QUANTITY_PATTERN)]


class ApiModel(BaseModel):
    """A part of a custom resource: camelCase on the wire, snake_case in Python, nothing unknown."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON form the Kubernetes API stores (camelCase, unset optional fields left out)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class TolerantApiModel(ApiModel):
    """A part written by the API server or another controller: fields we do not know are ignored."""

    model_config = ConfigDict(extra="ignore")


class ObjectMeta(TolerantApiModel):
    """The subset of `metadata` the operator and router use."""

    name: str
    namespace: str | None = None
    uid: str | None = None
    generation: int | None = None
    resource_version: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class SecretKeyRef(ApiModel):
    """One key of one Secret in the resource's own namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=SECRET_NAME_PATTERN)
    key: str = Field(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)


class Condition(TolerantApiModel):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str
    status: ConditionStatus
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None
    observed_generation: int | None = None


class InvalidSpecError(ValueError):
    """A resource the CRD schema let through but modelplane cannot act on.

    `reason` is a CamelCase condition reason and `message` a one-line explanation fit for a status
    condition; neither ever contains a Secret's value.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message

    @classmethod
    def from_validation_error(cls, kind: str, error: ValidationError) -> InvalidSpecError:
        problems = []
        for detail in error.errors(include_url=False, include_input=False):
            location = ".".join(str(part) for part in detail["loc"]) or kind
            message = detail["msg"].removeprefix("Value error, ")
            if detail["type"] == "string_pattern_mismatch":
                meaning = PATTERN_MEANINGS.get(str((detail.get("ctx") or {}).get("pattern")))
                message = f"must be {meaning}" if meaning else message
            problems.append(f"{location}: {message}")
        return cls("InvalidSpec", f"{kind} is invalid: " + "; ".join(problems))


class ConditionsStatus(TolerantApiModel):
    """The status every kind reports: the generation observed and its conditions."""

    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)


class CustomResource(TolerantApiModel):
    """A whole modelplane resource as the API server returns it; each kind adds its spec, status."""

    resource_kind: ClassVar[str]

    api_version: Literal["modelplane.dev/v1alpha1"] = "modelplane.dev/v1alpha1"
    metadata: ObjectMeta

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Self:
        """Parse a resource body (a dict or a kopf Body); raise InvalidSpecError if unusable.

        Strict, as the API server's schema is: `gpus: true` or `contextWindow: "8192"` is an
        error here too, not silently read as 1 or 8192.
        """
        try:
            return cls.model_validate(plain_data(body), strict=True)
        except ValidationError as error:
            raise InvalidSpecError.from_validation_error(cls.resource_kind, error) from None

    @property
    def name(self) -> str:
        return self.metadata.name


def plain_data(value: object) -> Any:
    """A deep copy of a resource body as plain dicts and lists.

    kopf hands handlers read-only Mapping views; pydantic and the builders want plain data.
    """
    if isinstance(value, Mapping):
        return {str(key): plain_data(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_data(item) for item in value]
    return value
