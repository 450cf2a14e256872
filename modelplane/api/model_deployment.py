"""`ModelDeployment`: a LLaMA-family model served by vLLM or Triton on the cluster's GPUs.

Mirrors `crds/modelplane.dev_modeldeployments.yaml` field for field (a unit test holds them
together). The cross-field rules the CRD states in CEL are repeated here as validators, so a
resource that reached the operator some other way (an older CRD, a cluster without CEL) still
gets a status condition with a reason instead of a broken workload.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, model_validator

from modelplane.api.base import (
    DNS_1035_LABEL_PATTERN,
    ApiModel,
    Capability,
    ConditionsStatus,
    CustomResource,
    Quantity,
    chat_only,
)

KIND = "ModelDeployment"
PLURAL = "modeldeployments"

URI_SCHEMES = ("hf", "s3", "gs", "pvc")
# hf://org/name, s3://bucket[/prefix], gs://bucket[/prefix], pvc://claim[/path]
MODEL_URI_PATTERN = (
    r"^(hf://[^/\s]+/[^/\s]+"
    r"|s3://[^/\s]+(/[^\s]*)?"
    r"|gs://[^/\s]+(/[^\s]*)?"
    r"|pvc://[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[^\s]*)?)$"
)
ADAPTER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
SERVED_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:-]*$"
# Triton names a model after its model-repository folder, so a served name is one path segment.
TRITON_SERVED_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"

EngineName = Literal["vllm", "triton"]
Phase = Literal["Pending", "Progressing", "Ready", "Degraded", "Failed"]


def _check_uri(uri: str) -> str:
    if uri_scheme(uri) not in URI_SCHEMES:
        raise ValueError("the URI scheme must be one of hf://, s3://, gs://, pvc://")
    if not re.match(MODEL_URI_PATTERN, uri):
        raise ValueError(
            "expected hf://org/name, s3://bucket[/prefix], gs://bucket[/prefix] or "
            "pvc://claim[/path]"
        )
    return uri


ModelUri = Annotated[str, Field(max_length=2048), AfterValidator(_check_uri)]


class LoraAdapter(ApiModel):
    """A LoRA adapter served beside the base model under its own model name."""

    name: str = Field(max_length=63, pattern=ADAPTER_NAME_PATTERN)
    uri: ModelUri


class ModelSource(ApiModel):
    """Which weights to serve and what the served model can do."""

    uri: ModelUri
    served_name: str | None = Field(default=None, max_length=253, pattern=SERVED_NAME_PATTERN)
    context_window: int = Field(ge=1, le=10_000_000)
    capabilities: list[Capability] = Field(default_factory=chat_only, min_length=1, max_length=4)
    adapters: list[LoraAdapter] = Field(default_factory=list, max_length=64)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if len(set(self.capabilities)) != len(self.capabilities):
            raise ValueError("capabilities must not repeat a value")
        names = [adapter.name for adapter in self.adapters]
        if len(set(names)) != len(names):
            raise ValueError("adapter names must be unique")
        return self

    @property
    def scheme(self) -> str:
        return uri_scheme(self.uri)


class KeySelector(ApiModel):
    """A key of a Secret or ConfigMap."""

    name: str = Field(min_length=1)
    key: str = Field(min_length=1)
    optional: bool | None = None


class FieldSelector(ApiModel):
    """A field of the pod, e.g. `metadata.name`."""

    field_path: str = Field(min_length=1)
    api_version: str | None = None


class EnvVarSource(ApiModel):
    """Where an environment variable's value comes from; exactly one source is set."""

    secret_key_ref: KeySelector | None = None
    config_map_key_ref: KeySelector | None = None
    field_ref: FieldSelector | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        sources = [self.secret_key_ref, self.config_map_key_ref, self.field_ref]
        if sum(source is not None for source in sources) != 1:
            raise ValueError(
                "valueFrom needs exactly one of secretKeyRef, configMapKeyRef, fieldRef"
            )
        return self


class EnvVar(ApiModel):
    """An environment variable for the engine container."""

    name: str = Field(min_length=1, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = None
    value_from: EnvVarSource | None = None

    @model_validator(mode="after")
    def _not_both(self) -> Self:
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class NamedSource(ApiModel):
    """A whole Secret or ConfigMap, by name."""

    name: str = Field(min_length=1)
    optional: bool | None = None


class EnvFromSource(ApiModel):
    """Every key of a Secret or ConfigMap as environment variables (e.g. an HF token Secret)."""

    prefix: str | None = None
    config_map_ref: NamedSource | None = None
    secret_ref: NamedSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.config_map_ref is None) == (self.secret_ref is None):
            raise ValueError("envFrom needs exactly one of configMapRef, secretRef")
        return self


class Engine(ApiModel):
    """The inference server and how to adjust it."""

    name: EngineName
    image: str | None = Field(default=None, min_length=1)
    args: list[str] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    env_from: list[EnvFromSource] = Field(default_factory=list)

    def required_secrets(self) -> list[tuple[str, str | None, str]]:
        """The Secrets the engine cannot start without, as (name, key or None, what it holds).

        A whole Secret (envFrom) has no key; references marked optional are left out.
        """
        required: list[tuple[str, str | None, str]] = []
        for variable in self.env:
            ref = variable.value_from.secret_key_ref if variable.value_from else None
            if ref is not None and not ref.optional:
                required.append((ref.name, ref.key, f"value of engine.env {variable.name}"))
        for source in self.env_from:
            if source.secret_ref is not None and not source.secret_ref.optional:
                required.append((source.secret_ref.name, None, "variables of engine.envFrom"))
        return required


class Parallelism(ApiModel):
    """How the model is split across GPUs."""

    tensor: int = Field(ge=1, le=64)


class Resources(ApiModel):
    """Compute for each replica."""

    gpus: int = Field(default=1, ge=0, le=64)
    gpu_type: str | None = Field(default=None, min_length=1, max_length=63)
    cpu: Quantity | None = None
    memory: Quantity | None = None
    parallelism: Parallelism | None = None

    @model_validator(mode="after")
    def _tensor_matches_gpus(self) -> Self:
        if self.gpus > 0 and self.parallelism is not None and self.parallelism.tensor != self.gpus:
            raise ValueError(
                f"parallelism.tensor ({self.parallelism.tensor}) must equal gpus ({self.gpus})"
            )
        return self

    @property
    def tensor_parallel_size(self) -> int:
        if self.parallelism is not None:
            return self.parallelism.tensor
        return max(1, self.gpus)


class Autoscaling(ApiModel):
    """Scale replicas on the number of requests waiting in each replica's queue."""

    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(ge=1)
    target_queue_depth: int = Field(default=8, ge=1)
    scale_down_delay_seconds: int = Field(default=300, ge=0, le=3600)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas "
                f"({self.max_replicas})"
            )
        return self


class Cache(ApiModel):
    """A PersistentVolumeClaim that keeps downloaded weights across restarts."""

    size: Quantity
    storage_class_name: str | None = Field(default=None, min_length=1)


class Toleration(ApiModel):
    """A Kubernetes toleration (core/v1 Toleration)."""

    key: str | None = None
    operator: Literal["Exists", "Equal"] | None = None
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class Cost(ApiModel):
    """What running this model costs, for the router's cost policy."""

    gpu_hour_usd: float = Field(ge=0, alias="gpuHourUSD")


class ModelDeploymentSpec(ApiModel):
    """The desired state of a ModelDeployment."""

    model: ModelSource
    engine: Engine
    resources: Resources = Field(default_factory=Resources)
    replicas: int = Field(default=1, ge=0)
    autoscaling: Autoscaling | None = None
    cache: Cache | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    priority_class_name: str | None = Field(default=None, min_length=1)
    cost: Cost | None = None

    @model_validator(mode="after")
    def _engine_rules(self) -> Self:
        served = self.model.served_name
        if (
            self.engine.name == "triton"
            and served is not None
            and not re.match(TRITON_SERVED_NAME_PATTERN, served)
        ):
            raise ValueError("with engine triton, model.servedName must not contain '/' or ':'")
        return self

    @property
    def max_replicas(self) -> int:
        """The most replicas that can ever run: what a PodDisruptionBudget is sized for."""
        return self.autoscaling.max_replicas if self.autoscaling else self.replicas


class ModelDeploymentStatus(ConditionsStatus):
    """What the operator observed."""

    phase: Phase | None = None
    replicas: int | None = None
    ready_replicas: int | None = None
    url: str | None = None
    selector: str | None = None


class ModelDeployment(CustomResource):
    """A whole ModelDeployment resource as the API server returns it."""

    resource_kind = KIND

    kind: Literal["ModelDeployment"] = "ModelDeployment"
    spec: ModelDeploymentSpec
    status: ModelDeploymentStatus | None = None

    @model_validator(mode="after")
    def _name_fits_a_service(self) -> Self:
        if not re.match(DNS_1035_LABEL_PATTERN, self.metadata.name):
            raise ValueError(
                "metadata.name must be a DNS-1035 label of at most 63 characters "
                "(it names the model's Service)"
            )
        return self

    @property
    def served_name(self) -> str:
        """The model name clients put in requests (defaults to metadata.name)."""
        return self.spec.model.served_name or self.metadata.name


def uri_scheme(uri: str) -> str:
    """The scheme of a model URI: the part before `://`."""
    return uri.split("://", 1)[0]
