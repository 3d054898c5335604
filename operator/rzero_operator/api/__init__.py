"""The RZeroRun API: spec and status types, the custom resource, and the CRD generated from them.

    from rzero_operator.api import RZeroRun, RZeroRunSpec, RZeroRunStatus
    run = RZeroRun.from_manifest(yaml.safe_load(text))
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from rzero_worker.task import Schema

from .spec import (
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


class ObjectMeta(Schema):
    """The part of Kubernetes metadata rzero reads; everything else is kept as given."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(max_length=63, pattern=RUN_NAME, description="Run name (a DNS label).")
    namespace: str | None = Field(default=None, max_length=63, pattern=RUN_NAME)
    uid: str | None = Field(default=None)
    generation: int | None = Field(default=None)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


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
