"""The task contract's shared types: the base schema (camelCase on the wire), storage locations, model inputs,
device hints, shards and sampling, and the phase names. Pydantic only (the control plane imports it).
`rzero_worker.task` re-exports every public name here: import from there."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

TASK_API_VERSION = "rzero.dev/task-v1"

# A run-relative storage key ('iter-001/solver'): relative, '/'-separated, no '.' or '..' segments.
RUN_KEY = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"

PhaseName = Literal["warmup", "challenger", "generate", "label", "verifier", "solver", "evaluate"]
# The phases of one iteration i >= 1, in order.
PHASES: tuple[str, ...] = ("challenger", "generate", "label", "solver", "evaluate")
# spec.verifier.mode trained: the Verifier's GRPO phase, right after the label phase whose examples it learns from.
VERIFIER_PHASE = "verifier"


def iteration_phases(trained_verifier: bool = False) -> tuple[str, ...]:
    """The phases of one iteration i >= 1, in order; with a trained Verifier its phase follows the label phase."""
    if not trained_verifier:
        return PHASES
    at = PHASES.index("label") + 1
    return PHASES[:at] + (VERIFIER_PHASE,) + PHASES[at:]


# Every phase a worker runs: the optional format warm-up runs once, in iteration 0, before the base evaluation.
ALL_PHASES: tuple[str, ...] = ("warmup",) + iteration_phases(True)
# ... and `export` once at the end of a run (spec.export): not part of the iteration loop's steps.
WORKER_PHASES: tuple[str, ...] = ALL_PHASES + ("export",)
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# What spec.retention may delete: committed checkpoints of the training phases and their resume checkpoints.
PRUNABLE_KEY = r"^iter-[0-9]{3,}/(challenger|solver|verifier)(\.ckpt)?$"


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
        default="auto",
        description="Compute dtype; auto = bfloat16 on CUDA, float32 on CPU. Inference (generation, labelling, "
        "evaluation, the frozen Solver) keeps its weights in it; training keeps trainable weights and optimizer "
        "state in float32 and computes in this dtype under autocast (mixed precision).",
    )
    backend: Literal["auto", "transformers", "vllm"] = Field(
        default="auto", description="Generation backend; auto = vLLM when installed and on CUDA."
    )
    gpu_memory_utilization: float = Field(default=0.85, gt=0, le=1, description="vLLM memory share.")
    tensor_parallel_size: int = Field(
        default=1, ge=1, le=64,
        description="GPUs per vLLM engine for generation, labelling, evaluation and the Challenger's Solver scoring: "
        "a pod with g GPUs runs g / tensorParallelSize engines (1 = one engine per GPU, as the reference; raise it "
        "when one GPU cannot hold the model).",
    )


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
    max_tokens: int = Field(
        default=4096, ge=1, le=65536, description="New tokens per sample (reference 4,096: Qwen3 reasons at length)."
    )
