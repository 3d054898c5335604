"""RZeroRun.spec: what a user asks for.

The per-phase blocks (challenger, generation, labeling, solver, evaluation, device) are the worker's own
settings types from `rzero_worker.task`: one source of truth for the worker, the CRD and the docs.
Everything here is pure pydantic; `api/crd.py` turns it into the CRD's OpenAPI schema, so every field
carries a description (it becomes `kubectl explain` text) and its validation.

A spec-level validator that wants to blame a nested field raises ``ValueError("sub.path: message")``;
`validate.py` joins that relative path onto the location (see `validate.format_error`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from rzero_worker.task import (
    LOCATION_URI,
    AnchorSettings,
    ChallengerSettings,
    CorpusSettings,
    DeviceHints,
    EvaluationSettings,
    GenerationSettings,
    LabelingSettings,
    OracleSettings,
    Schema,
    SolverSettings,
    TaskSettings,
    TrackingSettings,
    VerifierSettings,
    WarmupSettings,
)

from .spec_rules import check_cross_field_rules
from .oversight import ApprovalSpec, ExportSpec, GuardSpec, RetentionSpec

# Kubernetes name formats (RE2- and Rust-regex compatible: no look-arounds).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# A resource quantity such as "500m", "4", "16Gi", "1.5G".
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
# An OCI image reference: [registry[:port]/]path[:tag][@sha256:digest].
IMAGE = (
    r"^([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*(:[0-9]+)?/)?"
    r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*(/[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*)*"
    r"(:[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)
STORAGE_URI = LOCATION_URI  # s3://bucket/prefix or a local path (also corpus.uri)
# Label keys and values (also taint keys and node selector keys): a qualified name, with an optional DNS
# subdomain prefix and '/', then a name of at most 63 characters.
LABEL_KEY = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
LabelKey = Annotated[str, StringConstraints(max_length=317, pattern=LABEL_KEY)]
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE)]
# A node selector key is checked for length only: the CRD can check map keys only with CEL, and a regex
# over keys of unbounded length exceeds the API server's CEL cost budget (the CRD would be refused). A
# key that is not a label key is refused by the API server when the phase's Job is created; the run then
# fails at once with the server's message (kube/reconcile.py).
NodeSelectorKey = Annotated[str, StringConstraints(min_length=1, max_length=317)]

DEFAULT_IMAGE = "ghcr.io/rzero-dev/rzero-worker:0.1.0"


# --------------------------------------------------------------------------------------------------
# Storage


class SecretRef(Schema):
    """A Secret in the run's namespace holding S3 credentials. Only the reference is stored; Jobs read the
    values through `valueFrom.secretKeyRef`, so they never appear in the spec, status, logs or events."""

    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Secret name (same namespace).")
    access_key_id_key: str = Field(
        default="AWS_ACCESS_KEY_ID", max_length=253, pattern=ENV_NAME,
        description="Key in the Secret holding the access key id.",
    )
    secret_access_key_key: str = Field(
        default="AWS_SECRET_ACCESS_KEY", max_length=253, pattern=ENV_NAME,
        description="Key in the Secret holding the secret access key.",
    )
    session_token_key: str | None = Field(
        default=None, max_length=253, pattern=ENV_NAME,
        description="Optional key in the Secret holding a session token.",
    )


class StorageSpec(Schema):
    """Where checkpoints, question sets and scores live. The run root is `<uri>/<namespace>/<name>/<uid>`."""

    uri: str = Field(
        min_length=1, max_length=1024, pattern=STORAGE_URI,
        description="s3://bucket/prefix, or a local directory for `rzero run` (the operator refuses a local path: "
        "no volume holds it on a cluster).",
    )
    endpoint: str | None = Field(
        default=None, max_length=1024, pattern=r"^https?://[^\s]+$",
        description="S3 endpoint URL for S3-compatible stores (MinIO, Ceph...); empty = AWS.",
    )
    region: str | None = Field(default=None, max_length=64, description="S3 region name.")
    secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with S3 credentials. Leave empty to use the pod's own identity "
        "(IRSA, workload identity) or the standard AWS variables of the local environment.",
    )

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @model_validator(mode="after")
    def _s3_only_fields(self) -> "StorageSpec":
        if not self.is_s3 and self.secret_ref is not None:
            raise ValueError("secretRef: applies only to s3:// storage")
        if not self.is_s3 and self.endpoint is not None:
            raise ValueError("endpoint: applies only to s3:// storage")
        return self


# --------------------------------------------------------------------------------------------------
# Resources (Kubernetes only; the local executor ignores them)


class KeyRef(Schema):
    name: str = Field(max_length=253, pattern=DNS_SUBDOMAIN, description="Secret or ConfigMap name.")
    key: str = Field(min_length=1, max_length=253, description="Key within it.")
    optional: bool | None = Field(default=None, description="Tolerate a missing object or key.")


class EnvValueFrom(Schema):
    """Exactly one source. Only Secret and ConfigMap keys: no field or resource references."""

    secret_key_ref: KeyRef | None = Field(default=None, description="A key of a Secret.")
    config_map_key_ref: KeyRef | None = Field(default=None, description="A key of a ConfigMap.")

    @model_validator(mode="after")
    def _exactly_one(self) -> "EnvValueFrom":
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("must set exactly one of secretKeyRef or configMapKeyRef")
        return self


class EnvVar(Schema):
    name: str = Field(max_length=253, pattern=ENV_NAME, description="Variable name.")
    value: str | None = Field(default=None, max_length=32768, description="Literal value (not for secrets).")
    value_from: EnvValueFrom | None = Field(default=None, description="Take the value from a Secret or ConfigMap key.")

    @model_validator(mode="after")
    def _not_both(self) -> "EnvVar":
        if self.value is not None and self.value_from is not None:
            raise ValueError("set value or valueFrom, not both")
        return self


class Toleration(Schema):
    """A Kubernetes toleration, with the API server's rules checked here first (a Job the server refuses
    would otherwise fail only when the phase starts)."""

    key: str | None = Field(
        default=None, max_length=317, pattern=LABEL_KEY, description="Taint key; empty matches all keys."
    )
    operator: Literal["Exists", "Equal"] | None = Field(default=None, description="Equal (default) or Exists.")
    value: str | None = Field(
        default=None, max_length=63, pattern=LABEL_VALUE, description="Taint value for Equal; empty for Exists."
    )
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = Field(
        default=None, description="Taint effect to match; empty matches all."
    )
    # No upper bound: the API server reads a schema bound as a float64, and 2**63 - 1 becomes 2**63, which is
    # not an int64 -- it then refuses every value of the field. The int64 range is checked for every integer
    # (rzero_worker.documents.check_values), as the server's JSON decoder does.
    toleration_seconds: int | None = Field(default=None, ge=0, description="For NoExecute: how long to stay.")

    @model_validator(mode="after")
    def _as_the_api_server_checks(self) -> "Toleration":
        if self.operator == "Exists" and self.value:
            raise ValueError("value: must be empty when operator is Exists")
        if not self.key and self.operator != "Exists":
            raise ValueError("operator: must be Exists when key is empty (a toleration of every taint)")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("effect: must be NoExecute when tolerationSeconds is set")
        return self


class PodResources(Schema):
    """Pod shape of one phase. Unset fields fall back to `spec.resources`."""

    gpus: int | None = Field(default=None, ge=0, le=64, description="GPUs per pod (nvidia.com/gpu).")
    cpu: str | None = Field(default=None, max_length=32, pattern=QUANTITY, description="CPU request, e.g. '8' or '500m'.")
    memory: str | None = Field(default=None, max_length=32, pattern=QUANTITY, description="Memory request and limit, e.g. '64Gi'.")
    nodes: int | None = Field(
        default=None, ge=1, le=64, description="Pods for multi-node training (challenger and solver phases)."
    )
    node_selector: dict[NodeSelectorKey, LabelValue] | None = Field(
        default=None, max_length=64, description="Node labels the pods require."
    )
    tolerations: list[Toleration] | None = Field(default=None, max_length=32, description="Taints the pods tolerate.")

    @model_validator(mode="after")
    def _multi_node_needs_gpus(self) -> "PodResources":
        if self.nodes is not None and self.nodes > 1 and self.gpus == 0:
            raise ValueError("nodes: multi-node training needs gpus >= 1")
        return self


class PhaseResourceOverrides(Schema):
    warmup: PodResources | None = Field(default=None, description="Overrides for the format warm-up Job.")
    challenger: PodResources | None = Field(default=None, description="Overrides for challenger Jobs.")
    generate: PodResources | None = Field(default=None, description="Overrides for question generation Jobs.")
    label: PodResources | None = Field(default=None, description="Overrides for labeling Jobs.")
    solver: PodResources | None = Field(default=None, description="Overrides for solver Jobs.")
    verifier: PodResources | None = Field(
        default=None, description="Overrides for the trained Verifier's Jobs (spec.verifier.mode trained)."
    )
    evaluate: PodResources | None = Field(default=None, description="Overrides for evaluation Jobs.")
    export: PodResources | None = Field(
        default=None, description="Overrides for the export Job (default: no GPU; it copies checkpoints)."
    )


class ResourcesSpec(Schema):
    """How phase Jobs are scheduled."""

    image: str = Field(default=DEFAULT_IMAGE, max_length=512, pattern=IMAGE, description="Worker image.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Image pull policy of the worker container."
    )
    gpus: int = Field(default=1, ge=0, le=64, description="GPUs per pod (nvidia.com/gpu).")
    cpu: str = Field(default="4", max_length=32, pattern=QUANTITY, description="CPU request per pod.")
    memory: str | None = Field(
        default=None, max_length=32, pattern=QUANTITY,
        description="Memory request and limit per pod. Unset (auto): 32Gi, and for the training phases what "
        "loading and offloading the model need (docs/gpu-sizing.md), when more.",
    )
    nodes: int = Field(default=1, ge=1, le=64, description="Pods for multi-node training (challenger and solver).")
    node_selector: dict[NodeSelectorKey, LabelValue] = Field(
        default_factory=dict, max_length=64, description="Node labels the pods require."
    )
    tolerations: list[Toleration] = Field(default_factory=list, max_length=32, description="Taints the pods tolerate.")
    affinity: dict[str, Any] | None = Field(default=None, description="A Kubernetes Affinity, passed through as is.")
    priority_class_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN, description="PriorityClass of the pods."
    )
    service_account_name: str | None = Field(
        default=None, max_length=253, pattern=DNS_SUBDOMAIN, description="ServiceAccount the pods run as."
    )
    env: list[EnvVar] = Field(default_factory=list, max_length=64, description="Extra environment variables.")
    phases: PhaseResourceOverrides = Field(
        default_factory=PhaseResourceOverrides, description="Per-phase overrides of gpus/cpu/memory/nodes/placement."
    )

    @model_validator(mode="after")
    def _multi_node_needs_gpus(self) -> "ResourcesSpec":
        if self.nodes > 1 and self.gpus == 0:
            raise ValueError("nodes: multi-node training needs gpus >= 1")
        return self

    def for_phase(self, phase: str) -> PodResources:
        """The effective pod shape of `phase`: the override where set, else the run-wide value."""
        override = getattr(self.phases, phase) or PodResources()
        gpus = 0 if phase == "export" else self.gpus  # copying checkpoints needs no GPU
        return PodResources(
            gpus=override.gpus if override.gpus is not None else gpus,
            cpu=override.cpu or self.cpu,
            memory=override.memory or self.memory,
            nodes=override.nodes if override.nodes is not None else self.nodes,
            node_selector=override.node_selector if override.node_selector is not None else dict(self.node_selector),
            tolerations=override.tolerations if override.tolerations is not None else list(self.tolerations),
        )


# --------------------------------------------------------------------------------------------------
# Control


class ShardingSpec(Schema):
    """Data-parallel phases run as Indexed Jobs with this many completions (one shard per pod)."""

    generate: int = Field(default=1, ge=1, le=1024, description="Shards for question generation.")
    label: int = Field(default=1, ge=1, le=1024, description="Shards for labeling.")
    evaluate: int = Field(
        default=1, ge=1, le=1024, description="Shards for evaluation (each takes every K-th item of every benchmark)."
    )


class RetrySpec(Schema):
    """A failed phase attempt is retried after an exponential backoff; exit code 2 is never retried."""

    max_attempts: int = Field(default=3, ge=1, le=20, description="Attempts per phase before the run fails.")
    backoff_seconds: int = Field(default=30, ge=0, le=86400, description="Wait before the 2nd attempt; doubles after.")
    max_backoff_seconds: int = Field(default=900, ge=0, le=86400, description="Cap on the wait between attempts.")

    @model_validator(mode="after")
    def _cap_above_base(self) -> "RetrySpec":
        if self.max_backoff_seconds < self.backoff_seconds:
            raise ValueError("maxBackoffSeconds: must be at least backoffSeconds")
        return self

    def backoff_after(self, attempt: int) -> int:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return min(self.max_backoff_seconds, self.backoff_seconds * 2 ** max(0, attempt - 1))


class RZeroRunSpec(Schema):
    """An R-Zero run: `iterations` rounds of Challenger training, question generation, labeling, Solver
    training and evaluation, after an evaluation of the base model (iteration 0)."""

    model: str = Field(
        min_length=1, max_length=1024,
        description="Base model of both roles: a local HF directory, a .gguf file, s3://..., "
        "'builtin:smollm2-135m-instruct' or a Hugging Face hub id.",
    )
    solver_source: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description="A different base model for the Solver (same forms as model); default: model.",
    )
    iterations: int = Field(default=3, ge=1, le=100, description="Challenger/Solver rounds (paper: 3).")
    seed: int = Field(default=0, ge=0, le=2**31 - 1, description="Root seed; every task's seed derives from it.")
    storage: StorageSpec = Field(description="Where the run's artefacts live.")
    task: TaskSettings = Field(
        default_factory=TaskSettings,
        description="What the run learns: verifiable maths questions (R-Zero, the default) or open-ended tasks in a "
        "domain you describe, scored per rubric criterion by the Verifier (docs/open-ended.md).",
    )
    warmup: WarmupSettings = Field(
        default_factory=WarmupSettings,
        description="Optional format warm-up of the base model before iteration 1 (off in the paper's setting).",
    )
    challenger: ChallengerSettings = Field(
        default_factory=ChallengerSettings, description="Challenger GRPO training and its uncertainty reward."
    )
    generation: GenerationSettings = Field(
        default_factory=GenerationSettings, description="Candidate question generation by the Challenger."
    )
    corpus: CorpusSettings | None = Field(
        default=None, description="Your own documents: passages for a grounded Challenger (unset: R-Zero's "
        "questions from nothing).",
    )
    anchors: AnchorSettings | None = Field(
        default=None, description="A few human-written question/answer pairs (R-Few): examples in the Challenger's "
        "prompts and rows mixed into the Solver's training, never in the evaluation (unset: none).",
    )
    labeling: LabelingSettings = Field(
        default_factory=LabelingSettings, description="Majority-vote pseudo-labels and the agreement band filter."
    )
    oracle: OracleSettings = Field(
        default_factory=OracleSettings, description="Oracles that check the pseudo-labels (label accuracy)."
    )
    verifier: VerifierSettings = Field(
        default_factory=VerifierSettings,
        description="The Verifier, a third role that judges (question, answer) pairs; labeling.verifier: veto lets "
        "it drop the kept pseudo-labels it rejects.",
    )
    solver: SolverSettings = Field(default_factory=SolverSettings, description="Solver GRPO training on kept questions.")
    evaluation: EvaluationSettings = Field(
        default_factory=EvaluationSettings, description="Benchmarks scored after each Solver update."
    )
    sharding: ShardingSpec = Field(default_factory=ShardingSpec, description="Shards of the data-parallel phases.")
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec, description="Pod shape and placement of phase Jobs.")
    device: DeviceHints = Field(default_factory=DeviceHints, description="Device, dtype and generation backend.")
    queue_name: str | None = Field(
        default=None, max_length=63, pattern=DNS_LABEL,
        description="Kueue LocalQueue for the Jobs (label kueue.x-k8s.io/queue-name).",
    )
    suspend: bool = Field(default=False, description="Start no new phase while true; resume by setting false.")
    stop_running_on_suspend: bool = Field(
        default=False, description="On suspend, also stop the running phase (it restarts on resume)."
    )
    retry: RetrySpec = Field(default_factory=RetrySpec, description="Retries of failed phase attempts.")
    phase_deadline_seconds: int | None = Field(
        default=None, ge=60, le=30 * 86400,
        description="Stop a phase attempt running longer than this; it counts as a failed attempt.",
    )
    guard: GuardSpec | None = Field(
        default=None, description="Stop or pause the run when label accuracy or the evaluation score drifts."
    )
    approval: ApprovalSpec | None = Field(
        default=None, description="Wait for a person's approval after the listed phases of every iteration."
    )
    retention: RetentionSpec | None = Field(
        default=None, description="Delete old training checkpoints (keep the newest and the best); unset: keep all."
    )
    export: ExportSpec = Field(
        default_factory=ExportSpec, description="Export the best and last Solver with a model card at the end."
    )
    tracking: TrackingSettings = Field(
        default_factory=TrackingSettings,
        description="Experiment trackers (W&B, MLflow) for the step-level curves, besides the TensorBoard event "
        "files every phase writes into its output; credentials only by Secret reference.",
    )

    @model_validator(mode="after")
    def _fields_agree(self) -> "RZeroRunSpec":
        check_cross_field_rules(self)  # api/spec_rules.py: the rules that read more than one field
        return self

    @property
    def trained_verifier(self) -> bool:
        """spec.verifier.mode trained: each iteration has a `verifier` phase."""
        return self.verifier.mode == "trained"

    @property
    def solver_model(self) -> str:
        """The Solver's base model source."""
        return self.solver_source or self.model
