"""The task contract: what one phase Job (or local subprocess) is asked to do.

The operator builds a `PhaseTask` from the RZeroRun spec; `rzero worker PHASE --task FILE` validates it
before anything heavy is imported. This module imports pydantic only, so the control plane (which has no
torch) shares these types: the per-phase settings below are also the `spec.<phase>` blocks of RZeroRun.

Names are camelCase on the wire (Kubernetes style) and snake_case in Python.
Defaults follow the paper; where the reference code differs, the field says so and both are selectable.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

TASK_API_VERSION = "rzero.dev/task-v1"

# A run-relative storage key ('iter-001/solver'): relative, '/'-separated, no '.' or '..' segments.
RUN_KEY = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"

PhaseName = Literal["challenger", "generate", "label", "solver", "evaluate"]
PHASES: tuple[str, ...] = ("challenger", "generate", "label", "solver", "evaluate")


class Schema(BaseModel):
    """Base for every contract type: camelCase aliases, unknown fields refused."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def wire(self) -> dict:
        """The JSON-ready dict as it travels (camelCase, no unset optionals)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------------------------------
# Shared building blocks


class StorageLocation(Schema):
    """Where a run's artefacts live. Credentials never travel here: S3 keys come from the standard AWS
    variables, which a Job fills from the secret named in the spec."""

    uri: str = Field(description="Run root: a local directory or s3://bucket/prefix.")
    endpoint_url: str | None = Field(
        default=None, description="S3 endpoint for S3-compatible stores (MinIO, Ceph...)."
    )
    region: str | None = Field(default=None, description="S3 region name.")

    @model_validator(mode="after")
    def _scheme(self) -> "StorageLocation":
        if "://" in self.uri and not self.uri.startswith("s3://"):
            raise ValueError(f"storage uri {self.uri!r}: only s3:// and local paths are supported")
        return self


class ModelInput(Schema):
    """A model to load: either the run's base model source or a committed checkpoint of this run."""

    source: str | None = Field(
        default=None,
        description="Base model: a local HF directory, a .gguf file, s3://..., 'builtin:smollm2-135m-instruct' "
        "or a Hugging Face hub id.",
    )
    artifact: str | None = Field(
        default=None, max_length=1024, pattern=RUN_KEY,
        description="Run-relative key of a committed phase output holding a checkpoint in model/, "
        "e.g. 'iter-001/solver'.",
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> "ModelInput":
        if (self.source is None) == (self.artifact is None):
            raise ValueError("exactly one of source or artifact must be set")
        return self


class DeviceHints(Schema):
    device: Literal["auto", "cpu", "cuda"] = Field(default="auto", description="Where to run.")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        default="auto", description="Weights dtype; auto = bfloat16 on CUDA, float32 on CPU."
    )
    backend: Literal["auto", "transformers", "vllm"] = Field(
        default="auto", description="Generation backend; auto = vLLM when installed and on CUDA."
    )
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1, description="vLLM memory share.")


class Shard(Schema):
    index: int = Field(default=0, ge=0, description="This worker's shard.")
    count: int = Field(default=1, ge=1, le=1024, description="Shards in all.")

    @model_validator(mode="after")
    def _in_range(self) -> "Shard":
        if self.index >= self.count:
            raise ValueError(f"shard index {self.index} must be < count {self.count}")
        return self

    @property
    def key(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}"


class Sampling(Schema):
    temperature: float = Field(default=1.0, ge=0, le=5, description="0 means greedy.")
    top_p: float = Field(default=1.0, gt=0, le=1, description="Nucleus sampling mass; 1 disables it.")
    top_k: int = Field(default=-1, ge=-1, description="-1 disables top-k.")
    max_tokens: int = Field(default=1024, ge=1, le=65536, description="New tokens per sample.")


class GRPOSettings(Schema):
    """GRPO hyperparameters. Defaults are the reference code's, not TRL's (which differ)."""

    steps: int = Field(description="Optimizer steps per iteration.", ge=1, le=100000)
    group_size: int = Field(description="Completions sampled per prompt.", ge=2, le=64)
    batch_size: int = Field(description="Prompts per optimizer step (whole rollout batch).", ge=1, le=4096)
    learning_rate: float = Field(default=1e-6, gt=0, le=1, description="Learning rate (constant schedule; reference 1e-6).")
    weight_decay: float = Field(default=0.01, ge=0, le=1, description="AdamW weight decay (reference 0.01).")
    kl_coef: float = Field(default=0.01, ge=0, le=10, description="KL (k3) coefficient, TRL's beta.")
    clip_low: float = Field(default=0.2, gt=0, le=1, description="PPO ratio clip, lower side.")
    clip_high: float = Field(default=0.3, gt=0, le=1, description="PPO ratio clip, upper side.")
    temperature: float = Field(default=1.0, gt=0, le=5, description="Rollout temperature.")
    max_prompt_tokens: int = Field(
        default=512, ge=16, le=65536, description="Prompt tokens kept (longer prompts are truncated on the left)."
    )
    max_completion_tokens: int = Field(
        default=1024, ge=8, le=65536, description="New tokens per sampled completion."
    )
    micro_batch_size: int = Field(
        default=0, ge=0, description="Completions per device per forward pass; 0 = whole batch."
    )
    save_every: int = Field(default=1, ge=1, description="Checkpoint to storage every k steps (resume).")
    gradient_checkpointing: bool = Field(default=False, description="Trade compute for memory during training.")


class ChallengerGRPOSettings(GRPOSettings):
    """GRPO on the Challenger: the reference's group 4, batch 16, 5 steps unless set."""

    steps: int = Field(default=5, ge=1, le=100000, description="Optimizer steps per iteration (reference 5).")
    group_size: int = Field(default=4, ge=2, le=64, description="Questions sampled per prompt (reference 4).")
    batch_size: int = Field(default=16, ge=1, le=4096, description="Prompts per optimizer step (reference 16).")


class SolverGRPOSettings(GRPOSettings):
    """GRPO on the Solver: the reference's group 5, batch 128, 15 steps unless set."""

    steps: int = Field(default=15, ge=1, le=100000, description="Optimizer steps per iteration (reference 15).")
    group_size: int = Field(default=5, ge=2, le=64, description="Answers sampled per question (reference 5).")
    batch_size: int = Field(default=128, ge=1, le=4096, description="Questions per optimizer step (reference 128).")


def _as_role_settings(value):
    """A plain GRPOSettings built in code is re-validated as the role's settings (its values kept)."""
    return value.model_dump() if isinstance(value, GRPOSettings) else value


# --------------------------------------------------------------------------------------------------
# Per-phase settings (also the RZeroRun spec blocks)


class ChallengerSettings(Schema):
    grpo: ChallengerGRPOSettings = Field(
        default_factory=ChallengerGRPOSettings,
        description="GRPO on the Challenger (reference: group 4, batch 16, 5 steps).",
    )
    solver_samples: int = Field(default=10, ge=2, le=64, description="m: Solver answers per question.")
    solver_sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, top_k=40, max_tokens=1024),
        description="How the Solver answers when scoring a question.",
    )
    reward: Literal["paper", "code"] = Field(
        default="paper",
        description="paper: max(0, 1-2|p-1/2| - rep); code: min(p, 1-p) - rep, no clamp.",
    )
    repetition_weight: float = Field(default=1.0, ge=0, le=10, description="lambda of r_rep.")
    bleu_distance_threshold: float = Field(default=0.5, gt=0, le=1, description="Cluster cut on 1-BLEU.")

    _role_grpo = field_validator("grpo", mode="before")(_as_role_settings)


class GenerationSettings(Schema):
    num_questions: int = Field(default=8000, ge=1, le=10_000_000, description="N candidates (paper 8,000).")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=0.95, max_tokens=1024),
        description="Challenger sampling for candidates.",
    )
    batch_size: int = Field(default=64, ge=1, le=100000, description="Prompts per generation call.")


class LabelingSettings(Schema):
    samples: int = Field(default=10, ge=1, le=64, description="m answers per question (paper 10, code 9).")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, top_k=40),
        description="How the Solver samples its m answers per question.",
    )
    band: Literal["paper", "code"] = Field(
        default="paper", description="paper: |score-1/2| <= 0.25; code: 0.3 <= score <= 0.8."
    )
    min_score: float | None = Field(default=None, ge=0, le=1, description="Override the band's lower edge.")
    max_score: float | None = Field(default=None, ge=0, le=1, description="Override the band's upper edge.")
    grading_timeout_s: float = Field(default=5.0, gt=0, le=600, description="Hard limit per equivalence check.")
    grading_workers: int = Field(default=0, ge=0, le=256, description="Grader processes; 0 = CPU count.")
    audit_size: int = Field(default=50, ge=0, le=10000, description="Kept questions saved with all answers.")

    @model_validator(mode="after")
    def _band_order(self) -> "LabelingSettings":
        lo, hi = self.band_edges()
        if lo >= hi:
            raise ValueError(f"band minScore {lo} must be below maxScore {hi}")
        return self

    def band_edges(self) -> tuple[float, float]:
        lo, hi = (0.25, 0.75) if self.band == "paper" else (0.3, 0.8)
        return (self.min_score if self.min_score is not None else lo, self.max_score if self.max_score is not None else hi)


class SolverSettings(Schema):
    grpo: SolverGRPOSettings = Field(
        default_factory=SolverGRPOSettings,
        description="GRPO on the Solver (reference: group 5, batch 128, 15 steps).",
    )
    format_weight: float = Field(
        default=0.0, ge=0, le=1, description="Weight of the <think>..\\boxed{} format reward (code: 0.1)."
    )

    _role_grpo = field_validator("grpo", mode="before")(_as_role_settings)


class BenchmarkSpec(Schema):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$", description="Name used in scores.")
    kind: Literal["jsonl", "arithmetic"] = Field(
        default="jsonl", description="jsonl: a JSONL file; arithmetic: generated arithmetic problems."
    )
    path: str | None = Field(default=None, min_length=1, description="JSONL file (local or s3://) for kind jsonl.")
    question_field: str = Field(default="question", description="JSONL field holding the question.")
    answer_field: str = Field(default="answer", description="JSONL field holding the gold answer.")
    answer_format: Literal["plain", "gsm8k", "boxed"] = Field(
        default="plain", description="gsm8k: answer after '####'; boxed: last \\boxed{}."
    )
    limit: int | None = Field(default=None, ge=1, description="Use the first N items.")
    size: int = Field(default=200, ge=1, le=100000, description="Items for kind arithmetic.")
    seed: int = Field(default=0, description="Seed for kind arithmetic.")

    @model_validator(mode="after")
    def _path_for_jsonl(self) -> "BenchmarkSpec":
        if self.kind == "jsonl" and not self.path:
            raise ValueError(f"benchmark {self.name!r}: kind jsonl needs a path")
        return self


class EvaluationSettings(Schema):
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=lambda: [BenchmarkSpec(name="arithmetic", kind="arithmetic")],
        description="Benchmarks scored with greedy decoding.",
    )
    max_tokens: int = Field(default=1024, ge=1, le=65536, description="New tokens per greedy answer.")
    batch_size: int = Field(default=32, ge=1, le=100000, description="Prompts per generation call.")


# --------------------------------------------------------------------------------------------------
# Tasks: one per phase


class TaskBase(Schema):
    api_version: Literal["rzero.dev/task-v1"] = Field(default=TASK_API_VERSION, alias="apiVersion")
    run: str = Field(
        min_length=1, max_length=253, pattern=r"^[^\x00-\x1f\x7f]+$", description="Run name (for logs and summaries)."
    )
    iteration: int = Field(ge=0, le=10000)
    storage: StorageLocation
    output: str = Field(
        max_length=1024, pattern=RUN_KEY, description="Run-relative key this phase commits, e.g. 'iter-001/challenger'."
    )
    seed: int = Field(default=0)
    device: DeviceHints = Field(default_factory=DeviceHints)


class ChallengerTask(TaskBase):
    phase: Literal["challenger"] = "challenger"
    challenger: ModelInput
    solver: ModelInput
    settings: ChallengerSettings = Field(default_factory=ChallengerSettings)


class GenerateTask(TaskBase):
    phase: Literal["generate"] = "generate"
    challenger: ModelInput
    shard: Shard = Field(default_factory=Shard)
    settings: GenerationSettings = Field(default_factory=GenerationSettings)


class LabelTask(TaskBase):
    phase: Literal["label"] = "label"
    solver: ModelInput
    questions: str = Field(max_length=1024, pattern=RUN_KEY, description="Run-relative key of the generate output (all shards are read).")
    shard: Shard = Field(default_factory=Shard)
    settings: LabelingSettings = Field(default_factory=LabelingSettings)


class SolverTask(TaskBase):
    phase: Literal["solver"] = "solver"
    solver: ModelInput
    dataset: str = Field(max_length=1024, pattern=RUN_KEY, description="Run-relative key of the label output (all shards are read).")
    settings: SolverSettings = Field(default_factory=SolverSettings)


class EvaluateTask(TaskBase):
    phase: Literal["evaluate"] = "evaluate"
    model: ModelInput
    settings: EvaluationSettings = Field(default_factory=EvaluationSettings)


PhaseTask = Annotated[
    Union[ChallengerTask, GenerateTask, LabelTask, SolverTask, EvaluateTask], Field(discriminator="phase")
]


def parse_task(data: dict) -> ChallengerTask | GenerateTask | LabelTask | SolverTask | EvaluateTask:
    """Validate a task document (strict types, as the API server reads the spec it came from: "3" is not
    an integer); raises pydantic.ValidationError naming the bad field."""
    from pydantic import TypeAdapter

    return TypeAdapter(PhaseTask).validate_python(data, strict=True)
