"""The RZeroRun API: spec and status types, the custom resource, and the CRD generated from them.

    from rzero_operator.api import RZeroRun, RZeroRunSpec, RZeroRunStatus
    run = RZeroRun.from_manifest(yaml.safe_load(text))
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from rzero_worker.task import Schema

from .spec import (
    LabelKey,
    LabelValue,
    EnvValueFrom,
    EnvVar,
    KeyRef,
    PhaseResourceOverrides,
    PodResources,
    ResourcesSpec,
    RetrySpec,
    RZeroRunSpec,
    SecretRef,
    ShardingSpec,
    StorageSpec,
    Toleration,
)
from .status import (
    STAGE_OF_PHASE,
    Condition,
    CurrentAttempt,
    IterationRecord,
    PhaseRecord,
    RZeroRunStatus,
)

GROUP = "rzero.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "RZeroRun"
PLURAL = "rzeroruns"
SINGULAR = "rzerorun"
SHORT_NAMES = ["rzr"]

# metadata.name becomes part of Job names and storage keys: a DNS label keeps both safe.
RUN_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
# generateName: the server appends 5 random characters, and the result must still be a run name.
GENERATE_NAME = r"^[a-z0-9]([-a-z0-9]*)?$"
MAX_ANNOTATION_BYTES = 256 * 1024  # the API server's limit on all annotations of an object together


class ObjectMeta(Schema):
    """The part of Kubernetes metadata rzero reads; everything else is kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str | None = Field(default=None, max_length=63, pattern=RUN_NAME, description="Run name (a DNS label).")
    generate_name: str | None = Field(
        default=None, max_length=58, pattern=GENERATE_NAME,
        description="Name prefix for `kubectl create` (the server appends 5 characters).",
    )
    namespace: str | None = Field(default=None, max_length=63, pattern=RUN_NAME)
    uid: str | None = Field(default=None)
    generation: int | None = Field(default=None)
    labels: dict[LabelKey, LabelValue] = Field(default_factory=dict)
    annotations: dict[LabelKey, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _named(self) -> "ObjectMeta":
        if not self.name and not self.generate_name:
            raise ValueError("name: is required (or generateName)")
        size = sum(len(k.encode()) + len(v.encode()) for k, v in self.annotations.items())
        if size > MAX_ANNOTATION_BYTES:
            raise ValueError(f"annotations: {size:,} bytes in all; the API server allows {MAX_ANNOTATION_BYTES:,}")
        return self


class RZeroRun(Schema):
    """The custom resource: apiVersion rzero.dev/v1alpha1, kind RZeroRun."""

    api_version: Literal["rzero.dev/v1alpha1"] = Field(default=API_VERSION, alias="apiVersion")
    kind: Literal["RZeroRun"] = "RZeroRun"
    metadata: ObjectMeta
    spec: RZeroRunSpec
    status: RZeroRunStatus | None = None

    @classmethod
    def from_manifest(cls, manifest: dict[str, Any]) -> "RZeroRun":
        """Validate a manifest dict (as from YAML or the API server); raises pydantic.ValidationError.
        For messages naming camelCase field paths use `rzero_operator.validate.validate_manifest`."""
        return cls.model_validate(manifest)


__all__ = [
    "API_VERSION", "GROUP", "KIND", "PLURAL", "SHORT_NAMES", "SINGULAR", "STAGE_OF_PHASE", "VERSION",
    "Condition", "CurrentAttempt", "EnvValueFrom", "EnvVar", "IterationRecord", "KeyRef", "ObjectMeta",
    "PhaseRecord", "PhaseResourceOverrides", "PodResources", "ResourcesSpec", "RetrySpec", "RZeroRun",
    "RZeroRunSpec", "RZeroRunStatus", "SecretRef", "ShardingSpec", "StorageSpec", "Toleration",
]
