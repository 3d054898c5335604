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

from .benchmark_presets import PRESET_NAMES

TASK_API_VERSION = "rzero.dev/task-v1"

# A run-relative storage key ('iter-001/solver'): relative, '/'-separated, no '.' or '..' segments.
RUN_KEY = r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$"

PhaseName = Literal["warmup", "challenger", "generate", "label", "solver", "evaluate"]
# The phases of one iteration i >= 1, in order.
PHASES: tuple[str, ...] = ("challenger", "generate", "label", "solver", "evaluate")
# Every phase a worker runs: the optional format warm-up runs once, in iteration 0, before the base evaluation.
ALL_PHASES: tuple[str, ...] = ("warmup",) + PHASES
# ... and `export` once at the end of a run (spec.export): not part of the iteration loop's steps.
WORKER_PHASES: tuple[str, ...] = ALL_PHASES + ("export",)
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
# What spec.retention may delete: committed checkpoints of the training phases and their resume checkpoints.
PRUNABLE_KEY = r"^iter-[0-9]{3,}/(challenger|solver)(\.ckpt)?$"


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


# How the loss of one optimizer update is averaged over its tokens (see grpo.py for the proof-by-test).
LossAggregation = Literal["verl", "token-mean", "sequence-mean"]
WeightDecayScope = Literal["all", "except-biases-and-norms"]
DataOrder = Literal["epochs", "cycled"]


class GRPOSettings(Schema):
    """GRPO hyperparameters. Defaults are the reference code's (EasyR1/verl), not TRL's (which differ).

    Batch geometry, as in verl: one *rollout step* samples `rolloutBatchSize` prompts x `groupSize`
    completions and scores them all in one reward call; the actor is then updated in mini-batches of
    `updateBatchSize` prompts (rolloutBatchSize / updateBatchSize optimizer updates per step, with the
    PPO ratio measured against the policy that generated the batch). `steps` counts rollout steps."""

    steps: int = Field(description="Rollout steps per iteration (each makes several optimizer updates).", ge=1, le=100000)
    group_size: int = Field(description="Completions sampled per prompt (GRPO group, verl rollout.n).", ge=2, le=64)
    rollout_batch_size: int = Field(
        default=512, ge=1, le=65536,
        description="Prompts per rollout step; every reward is computed over the whole rollout batch "
        "(reference data.rollout_batch_size 512).",
    )
    update_batch_size: int = Field(
        description="Prompts per optimizer update (verl worker.actor.global_batch_size); must divide "
        "rolloutBatchSize.", ge=1, le=65536,
    )
    micro_batch_size: int = Field(
        default=0, ge=0, le=65536,
        description="Completions per device per forward/backward pass (verl micro_batch_size_per_device_for_update); "
        "0 = the whole update batch. With lossAggregation verl the token mean is taken per micro-batch, so this "
        "also shapes the loss, as in verl.",
    )
    loss_aggregation: LossAggregation = Field(
        default="verl",
        description="verl: token mean within each micro-batch, averaged over micro-batches (the reference); "
        "token-mean: over every token of the update (TRL 'dapo'); sequence-mean: per-sequence token mean, "
        "averaged over sequences (TRL 'grpo').",
    )
    learning_rate: float = Field(default=1e-6, gt=0, le=1, description="Learning rate (constant schedule; reference 1e-6).")
    weight_decay: float = Field(default=0.01, ge=0, le=1, description="AdamW weight decay (reference 0.01).")
    weight_decay_scope: WeightDecayScope = Field(
        default="all",
        description="Parameters the weight decay applies to. all: every trainable parameter (the reference: verl's "
        "AdamW over all parameters); except-biases-and-norms: the Hugging Face Trainer's groups (biases and norm "
        "weights undecayed).",
    )
    advantage_epsilon: float = Field(
        default=1e-6, gt=0, le=1,
        description="GRPO advantage = (reward - group mean) / (group std + this) (the reference: verl's 1e-6; TRL's "
        "own is 1e-4, which shrinks advantages where a group's rewards barely differ).",
    )
    kl_coef: float = Field(default=0.01, ge=0, le=10, description="KL (k3, 'low_var_kl') coefficient, TRL's beta.")
    clip_low: float = Field(default=0.2, gt=0, le=1, description="PPO ratio clip, lower side.")
    clip_high: float = Field(default=0.3, gt=0, le=1, description="PPO ratio clip, upper side.")
    clip_dual: float = Field(
        default=3.0, gt=1, le=100, description="Dual-clip bound on the ratio for negative advantages (verl clip_ratio_dual)."
    )
    temperature: float = Field(default=1.0, gt=0, le=5, description="Rollout temperature.")
    top_p: float = Field(default=0.99, gt=0, le=1, description="Rollout nucleus mass (reference 0.99).")
    max_prompt_tokens: int = Field(
        default=2048, ge=16, le=65536,
        description="Longer prompts are left out of training and counted (verl filter_overlong_prompts; reference 2,048).",
    )
    max_completion_tokens: int = Field(
        default=4096, ge=8, le=65536, description="New tokens per sampled completion (reference 4,096)."
    )
    save_every: int = Field(default=1, ge=1, description="Checkpoint to storage every k rollout steps (resume).")
    gradient_checkpointing: bool = Field(default=False, description="Trade compute for memory during training.")
    sharding: Literal["fsdp", "ddp"] = Field(
        default="fsdp",
        description="How the training ranks of a pod (one per GPU) hold the model: fsdp = FSDP2 full shard of weights, "
        "gradients and AdamW state over all ranks (the reference); ddp = a full copy on every rank. CPU ranks (gloo) "
        "always run ddp: accelerate shards only on accelerators.",
    )
    cpu_offload: bool | None = Field(
        default=None,
        description="With fsdp: keep the weights, gradients and AdamW state (and the KL reference) in host memory "
        "between uses, as the reference does (param and optimizer offload); slower, for models that do not fit. "
        "Unset (auto): true only when the training state does not fit beside the rollout engine, sized from the "
        "model and the pod's GPUs (docs/gpu-sizing.md); a task always carries the sized value.",
    )
    rollout_tensor_parallel_size: int = Field(
        default=1, ge=1, le=64,
        description="GPUs (training ranks) per colocated vLLM rollout engine (reference 2); must divide the ranks.",
    )
    rollout_gpu_memory_utilization: float | None = Field(
        default=None, gt=0, lt=1,
        description="Share of each GPU the colocated vLLM rollout engine fills while it generates (reference 0.7); "
        "it sleeps, freeing it, during the optimizer updates. The training state left on the GPU meanwhile must fit "
        "in the rest (`rzero validate` checks). Unset (auto): 0.7 where it fits, else the largest share that does "
        "(docs/gpu-sizing.md); a task always carries the sized value.",
    )

    @model_validator(mode="after")
    def _geometry_divides(self) -> "GRPOSettings":
        if self.rollout_batch_size % self.update_batch_size:
            raise ValueError(
                f"updateBatchSize: {self.update_batch_size} must divide rolloutBatchSize {self.rollout_batch_size} "
                "(each rollout step is split into whole optimizer updates)"
            )
        completions = self.update_batch_size * self.group_size
        if self.micro_batch_size and completions % self.micro_batch_size:
            raise ValueError(
                f"microBatchSize: {self.micro_batch_size} must divide updateBatchSize x groupSize = {completions} "
                "(completions per optimizer update)"
            )
        return self

    @property
    def keeps_data_order(self) -> bool:
        """Does the prompt dataset come in training order (TRL must not shuffle it)? The Challenger's prompts are
        all one prompt: any order."""
        return False

    @property
    def updates_per_step(self) -> int:
        """Optimizer updates per rollout step."""
        return self.rollout_batch_size // self.update_batch_size

    @property
    def total_updates(self) -> int:
        return self.steps * self.updates_per_step


class ChallengerGRPOSettings(GRPOSettings):
    """GRPO on the Challenger: the reference's 5 steps of 512 prompts x 4, 16 prompts per update (160 updates)."""

    steps: int = Field(default=5, ge=1, le=100000, description="Rollout steps per iteration (reference 5).")
    group_size: int = Field(default=4, ge=2, le=64, description="Questions sampled per prompt (reference 4).")
    update_batch_size: int = Field(
        default=16, ge=1, le=65536, description="Prompts per optimizer update (reference 16: 32 updates per step)."
    )
    micro_batch_size: int = Field(
        default=2, ge=0, le=65536,
        description="Completions per device per forward/backward pass (reference 2); 0 = the whole update batch.",
    )


class SolverGRPOSettings(GRPOSettings):
    """GRPO on the Solver: the reference's 15 steps of 512 questions x 5, 128 questions per update (60 updates)."""

    steps: int = Field(default=15, ge=1, le=100000, description="Rollout steps per iteration (reference 15).")
    group_size: int = Field(default=5, ge=2, le=64, description="Answers sampled per question (reference 5).")
    update_batch_size: int = Field(
        default=128, ge=1, le=65536, description="Questions per optimizer update (reference 128: 4 updates per step)."
    )
    micro_batch_size: int = Field(
        default=1, ge=0, le=65536,
        description="Completions per device per forward/backward pass (reference 1); 0 = the whole update batch.",
    )
    data_order: DataOrder = Field(
        default="epochs",
        description="How the kept questions feed the rollout steps. epochs: as the reference's data loader (verl, "
        "shuffle + drop_last): each epoch a fresh seeded permutation cut into whole rollout batches, the rest of the "
        "epoch dropped, so no question appears twice in one rollout batch; fewer kept questions than "
        "rolloutBatchSize leave no batch (the reference refuses to start; the Solver is carried forward unchanged, "
        "with the reason in its summary). cycled: the questions repeated in a seeded order to fill every step, then "
        "shuffled together (a question may appear twice in one rollout batch; any number of questions trains).",
    )

    @property
    def keeps_data_order(self) -> bool:
        return self.data_order == "epochs"


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
    solver_samples: int = Field(
        default=10, ge=2, le=64, description="m: Solver answers per question when scoring (paper and code: 10)."
    )
    solver_sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, top_k=40, max_tokens=4096),
        description="How the Solver answers when scoring a question (reference: temperature 1, top_k 40, 4,096 tokens).",
    )
    reward: Literal["paper", "code"] = Field(
        default="paper",
        description="paper: max(0, 1-2|p-1/2| - rep); code: min(p, 1-p) - rep, no clamp.",
    )
    repetition_weight: float = Field(default=1.0, ge=0, le=10, description="lambda of r_rep.")
    bleu_distance_threshold: float = Field(default=0.5, gt=0, le=1, description="Cluster cut on 1-BLEU.")
    solver_gpus: int = Field(
        default=0, ge=0, le=64,
        description="GPUs of each Challenger pod that serve the frozen Solver for scoring (one engine per "
        "device.tensorParallelSize GPUs; the reference: 4 of 8); the other GPUs train. 0 = colocated: each "
        "training rank scores its own share of the rollout batch with a Solver on its own GPU.",
    )

    _role_grpo = field_validator("grpo", mode="before")(_as_role_settings)


class GenerationSettings(Schema):
    num_questions: int = Field(default=8000, ge=1, le=10_000_000, description="N candidates (paper 8,000).")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=0.95, max_tokens=4096),
        description="Challenger sampling for candidates (reference: temperature 1, top_p 0.95, 4,096 tokens).",
    )
    batch_size: int = Field(default=64, ge=1, le=100000, description="Prompts per generation call.")


# A file or directory: s3://bucket/key or a local path (no other scheme, no control characters); the form of
# spec.storage.uri and spec.corpus.uri.
LOCATION_URI = r"^(s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/[^\x00-\x1f\x7f]*)?|[^:\x00-\x1f\x7f]*)$"
CorpusFormat = Literal["auto", "jsonl", "parquet", "text-dir"]


class CorpusSettings(Schema):
    """Documents of the run's own domain, split into passages for a grounded Challenger (rzero_worker/corpus.py).
    A document that cannot be read as text is skipped and counted by reason; a corpus with no passage fails
    the phase (exit 2)."""

    uri: str = Field(
        min_length=1, max_length=1024, pattern=LOCATION_URI,
        description="A file or a directory of files: s3://bucket/key (read with the run's storage endpoint, region "
        "and credentials) or a local path (`rzero run`; the operator refuses a local path: no volume holds it).",
    )
    format: CorpusFormat = Field(
        default="auto",
        description="auto: each file by its extension (.jsonl/.ndjson JSON lines, .parquet, .txt/.md one document "
        "per file); jsonl, parquet: every file in that format; text-dir: every file one text document.",
    )
    text_field: str = Field(
        default="text", min_length=1, max_length=256, description="JSONL/Parquet field with a document's text."
    )
    id_field: str = Field(
        default="id", min_length=1, max_length=256,
        description="JSONL/Parquet field with a document's id, where a row has one (else: file and line or row).",
    )
    passage_chars: int = Field(default=1500, ge=100, le=100_000, description="Characters per passage (at most).")
    overlap_chars: int = Field(
        default=200, ge=0, le=50_000, description="Characters a passage shares with the next one of its document."
    )
    max_document_bytes: int = Field(
        default=4 * 1024 * 1024, ge=1, le=1024**3,
        description="Larger documents (a JSONL line, a Parquet text, a text file) are skipped as too_large.",
    )

    @model_validator(mode="after")
    def _overlap_below_passage(self) -> "CorpusSettings":
        if 2 * self.overlap_chars > self.passage_chars:
            raise ValueError("overlapChars: must be at most half of passageChars (each passage moves on by at least "
                             "half its size)")
        return self


# How model outputs are read and m sampled answers become a vote (grading/reading.py, grading/vote.py): the
# reference code's rules or rzero's boxed-only reading. One mode per run, for every phase.
VoteMode = Literal["reference", "boxed-only"]
# Which equivalence checker decides votes, p-hat and the Solver's reward (grading/verify.py).
Checker = Literal["mathruler", "math-verify"]


class Grading(Schema):
    """How one run reads and compares answers: `spec.labeling`'s vote, checker and timeout, copied into every
    task that grades (challenger, generate, label, solver) so that no two phases can differ."""

    vote: VoteMode = Field(default="reference", description="The run's labeling.vote.")
    checker: Checker = Field(default="mathruler", description="The run's labeling.checker.")
    timeout_s: float = Field(default=10.0, gt=0, le=600, description="The run's labeling.gradingTimeoutS.")

    def pool_limits(self) -> dict:
        """GradingPool keyword arguments: the checker, its soft limit per comparison (per item for math-verify)
        and the hard limit that kills a stuck worker (both directions, plus a second)."""
        return {"checker": self.checker, "soft_timeout_s": self.timeout_s, "timeout_s": 2 * self.timeout_s + 1.0}


class LabelingSettings(Schema):
    samples: int = Field(default=10, ge=1, le=64, description="m answers per question (paper 10, code 9).")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=1.0, top_p=1.0, top_k=40),
        description="How the Solver samples its m answers per question.",
    )
    vote: VoteMode = Field(
        default="reference",
        description="How every phase reads model outputs (the Challenger's reward, generation, labels, the Solver's "
        "reward). reference: as the reference code: the answer is the last \\boxed{...} (no \\fbox, no "
        "'\\boxed 5'), 'None' without one, which counts and can win (such a question is dropped); a Challenger "
        "output without a box is scored in training; generation keeps outputs with a <question> block and a "
        "\\boxed{ and keeps duplicates; questions containing '证明' or 'box' and labels containing 'text' are "
        "dropped; a timed-out comparison skips that pair; the format reward ignores whitespace around <, > and /. "
        "boxed-only: rzero's reading: \\boxed{}, \\fbox{} and '\\boxed 5'; only boxed answers vote; a Challenger "
        "output needs a question and a boxed answer; duplicate questions are dropped; a question with an "
        "undecided comparison is dropped.",
    )
    checker: Checker = Field(
        default="mathruler",
        description="Equivalence checker of the votes, the Challenger's p-hat and the Solver's reward. mathruler: "
        "the reference's (mathruler 0.1.0 grade_answer: string normalisation, then sympy; strict on integers and "
        "unreduced fractions, case-blind on words). math-verify: math-verify 0.9.0 (value-based: 2/4 = 1/2, "
        "sqrt(25) = 5; case-sensitive on words).",
    )
    band: Literal["paper", "code"] = Field(
        default="paper", description="paper: |score-1/2| <= 0.25; code: 0.3 <= score <= 0.8."
    )
    min_score: float | None = Field(default=None, ge=0, le=1, description="Override the band's lower edge.")
    max_score: float | None = Field(default=None, ge=0, le=1, description="Override the band's upper edge.")
    grading_timeout_s: float = Field(
        default=10.0, gt=0, le=600,
        description="Seconds per comparison (mathruler: each direction; math-verify: both), the reference's 10 s; a "
        "grader process still busy after twice this plus a second is killed and the pair is undecided.",
    )
    grading_workers: int = Field(default=0, ge=0, le=256, description="Grader processes; 0 = CPU count.")
    audit_size: int = Field(default=50, ge=0, le=10000, description="Kept questions saved with all answers.")
    verifier: Literal["off", "veto"] = Field(
        default="off",
        description="veto: after the vote and the band, spec.verifier judges each kept (question, majority "
        "answer) and the pairs it rejects, or whose verdict it gives no readable form, are dropped before the "
        "Solver trains (drop reasons verifier_rejected, verifier_unparsable, verifier_unavailable). off: R-Zero's "
        "labels as they are.",
    )

    @model_validator(mode="after")
    def _band_order(self) -> "LabelingSettings":
        lo, hi = self.band_edges()
        if lo >= hi:
            raise ValueError(f"band minScore {lo} must be below maxScore {hi}")
        return self

    def grading(self) -> Grading:
        """The run's reading and checker, as every grading task carries them."""
        return Grading(vote=self.vote, checker=self.checker, timeout_s=self.grading_timeout_s)

    def band_edges(self) -> tuple[float, float]:
        lo, hi = (0.25, 0.75) if self.band == "paper" else (0.3, 0.8)
        return (self.min_score if self.min_score is not None else lo, self.max_score if self.max_score is not None else hi)


class WarmupSettings(Schema):
    """A short supervised fine-tuning of the base model on procedurally generated examples of the two output
    formats (warmup_data.py), before iteration 1. For base models that never write `<question>`/`\\boxed{}`
    (the demo's 135M model); off by default and in the paper's setting."""

    enabled: bool = Field(default=False, description="Run the format warm-up (iteration 0, before the base evaluation).")
    steps: int = Field(default=30, ge=1, le=100000, description="Optimizer steps (each sees batchSize new examples).")
    batch_size: int = Field(default=8, ge=1, le=4096, description="Examples per optimizer step.")
    learning_rate: float = Field(default=1e-4, gt=0, le=1, description="AdamW learning rate (constant).")
    trainable_layers: int = Field(
        default=0, ge=0, le=1000,
        description="Train only the top k decoder layers (and the final norm); 0 = every weight. Fewer is "
        "cheaper: the frozen layers need no backward pass.",
    )
    challenger_share: float = Field(
        default=0.5, ge=0, le=1, description="Share of Challenger-format examples (of those not Verifier-format)."
    )
    verifier_examples: float | None = Field(
        default=None, ge=0, le=1,
        description="Share of Verifier-format examples (the Verifier prompt with a right or near-miss proposed "
        "answer, a short check and \\boxed{correct} or \\boxed{incorrect}, half each). Unset: 0.3 when "
        "labeling.verifier is veto and the Verifier is the default copy of the base model, else none.",
    )
    word_share: float = Field(default=0.25, ge=0, le=1, description="Share of word problems (the rest: arithmetic).")
    max_length: int = Field(default=512, ge=32, le=65536, description="Tokens per example (longer are truncated).")
    probe_samples: int = Field(
        default=8, ge=0, le=1024,
        description="After training, sample this many outputs of each role and report the share in format.",
    )

    def verifier_share(self) -> float:
        """The share of Verifier-format examples this warm-up trains on (unset: none)."""
        return self.verifier_examples or 0.0


class OracleModelSettings(Schema):
    """A strong model answering the sampled questions greedily with the Solver's prompt (its last \\boxed{})."""

    source: str = Field(
        min_length=1, max_length=1024,
        description="The oracle model: a local HF directory, a .gguf file, s3://..., "
        "'builtin:smollm2-135m-instruct' or a Hugging Face hub id.",
    )
    max_tokens: int = Field(default=4096, ge=1, le=65536, description="New tokens per answer.")
    batch_size: int = Field(default=32, ge=1, le=100000, description="Questions per generation call.")


class SecretKeySelector(Schema):
    name: str = Field(min_length=1, max_length=253, description="Secret name (the run's namespace).")
    key: str = Field(min_length=1, max_length=253, description="Key within the Secret.")


class WandbSettings(Schema):
    """Weights & Biases: one W&B run per phase and iteration, grouped by the RZeroRun (namespace/name/uid)."""

    project: str = Field(default="rzero", min_length=1, max_length=128, description="W&B project.")
    entity: str | None = Field(default=None, min_length=1, max_length=128, description="W&B team or user.")
    mode: Literal["online", "offline"] = Field(
        default="online",
        description="offline: no server is contacted; the run is written under the phase output's wandb/ "
        "folder (upload it later with `wandb sync`).",
    )
    base_url: str | None = Field(
        default=None, max_length=1024, pattern=r"^https?://[^\s]+$", description="A self-hosted W&B server."
    )
    api_key_secret: SecretKeySelector | None = Field(
        default=None,
        description="Kubernetes: the Secret key holding the W&B API key; every phase Job gets it as WANDB_API_KEY "
        "(a secretKeyRef: the key never appears in the spec, status, logs or events). Local runs: export it.",
    )
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list, max_length=20, description="Extra tags (the run, iteration and phase are always tags)."
    )


class MlflowSettings(Schema):
    """MLflow: one MLflow run per phase and iteration in the experiment `rzero/<namespace>/<name>`."""

    tracking_uri: str | None = Field(
        default=None, max_length=1024, pattern=r"^(https?|file|databricks)(://|:)[^\s]*$",
        description="The tracking server (http://mlflow:5000); unset: a file store under the phase output's "
        "mlruns/ folder (offline; open it with `mlflow ui --backend-store-uri`).",
    )
    experiment: str | None = Field(
        default=None, min_length=1, max_length=256, description="Experiment name; default rzero/<namespace>/<name>."
    )
    token_secret: SecretKeySelector | None = Field(
        default=None,
        description="Kubernetes: the Secret key holding a tracking server token; every phase Job gets it as "
        "MLFLOW_TRACKING_TOKEN (by reference only).",
    )
    tags: dict[Annotated[str, Field(min_length=1, max_length=64)], Annotated[str, Field(max_length=256)]] = Field(
        default_factory=dict, max_length=20, description="Extra tags (rzero.run, rzero.iteration, rzero.phase are always set)."
    )


class TrackingSettings(Schema):
    """Experiment trackers besides TensorBoard, whose event files every phase always writes under its output
    (tensorboard/). A tracker that fails never fails a phase: a warning and `tracking_errors` in its summary."""

    wandb: WandbSettings | None = Field(default=None, description="Weights & Biases (needs the rzero[wandb] extra).")
    mlflow: MlflowSettings | None = Field(default=None, description="MLflow (needs the rzero[mlflow] extra).")


class OracleEndpointSettings(Schema):
    """An OpenAI-compatible chat completions endpoint (a vLLM server or any provider) answering the sampled
    questions with the Solver's prompt at temperature 0. The API key travels only by reference."""

    url: str = Field(
        max_length=1024, pattern=r"^https?://[^\s]+$",
        description="Base URL, e.g. https://api.openai.com/v1 or http://vllm:8000/v1 (/chat/completions is "
        "appended unless the URL already ends with it).",
    )
    model: str = Field(min_length=1, max_length=256, description="The model name sent with each request.")
    api_key_secret: SecretKeySelector | None = Field(
        default=None,
        description="Kubernetes: the Secret key holding the API key; the label Job gets it as the variable "
        "named by apiKeyEnv (a secretKeyRef: the key never appears in the spec, status, logs or events).",
    )
    api_key_env: str = Field(
        default="RZERO_ORACLE_API_KEY", max_length=253, pattern=ENV_NAME,
        description="The environment variable the worker reads the API key from (local runs: export it "
        "before `rzero run`); unset or empty = no Authorization header.",
    )
    timeout_seconds: float = Field(default=120.0, gt=0, le=3600, description="Per request: connect and read timeout.")
    max_retries: int = Field(
        default=4, ge=0, le=20, description="Retries of a request answered 429 or 5xx, or timed out (exponential backoff)."
    )
    backoff_seconds: float = Field(
        default=2.0, ge=0, le=600, description="Wait before the first retry; doubles after each (a Retry-After header wins)."
    )
    max_requests: int = Field(
        default=1000, ge=1, le=1_000_000,
        description="Request budget per iteration, retries included (split across label shards); questions "
        "left when it is spent are not checked.",
    )
    max_tokens: int = Field(default=4096, ge=1, le=65536, description="max_tokens of each request.")
    concurrency: int = Field(default=4, ge=1, le=64, description="Requests in flight at once.")


class OracleSettings(Schema):
    """Independent answers that check the pseudo-labels of kept questions (label accuracy, label drift).

    The exact arithmetic oracle checks every kept question it can read. A model or endpoint oracle answers a
    seeded random sample of `sampleSize` kept questions per iteration; the label accuracy reported for the
    iteration is the sampled oracle's where one is set (the endpoint's when both are), else the arithmetic
    oracle's. Every oracle's own counts are recorded as well."""

    arithmetic: bool = Field(
        default=True,
        description="Check every kept question that is pure arithmetic against its exact value (free; "
        "questions with words or variables are not checked).",
    )
    sample_size: int = Field(
        default=64, ge=0, le=100000,
        description="Kept questions per iteration the model and endpoint oracles answer: a seeded random "
        "sample, split evenly across label shards.",
    )
    model: OracleModelSettings | None = Field(default=None, description="A model oracle, run greedily in the label Job.")
    endpoint: OracleEndpointSettings | None = Field(
        default=None, description="An OpenAI-compatible chat endpoint oracle."
    )


VerifierMode = Literal["frozen"]


class VerifierSettings(Schema):
    """spec.verifier: the third role (DESIGN.md §5), a frozen judge of (question, answer) pairs: a model run
    greedily in the label Job, or an OpenAI-compatible endpoint (LLM-as-judge). Its prompt is
    prompts.verifier_messages, its output is read by grading.parse_verdict. Used when `labeling.verifier` is
    `veto`."""

    mode: VerifierMode = Field(
        default="frozen",
        description="frozen: the Verifier's weights never change (the only mode so far; a Verifier trained by "
        "GRPO each iteration is planned as `trained`).",
    )
    model: str | None = Field(
        default=None, min_length=1, max_length=1024,
        description="The Verifier model: a local HF directory, a .gguf file, s3://..., "
        "'builtin:smollm2-135m-instruct' or a Hugging Face hub id. Unset (and no endpoint): a copy of the "
        "Solver's base model as iteration 1 reads it (the warmed-up model with spec.warmup): a fixed judge, the "
        "same in every iteration, that does not share the current Solver's mistakes.",
    )
    endpoint: OracleEndpointSettings | None = Field(
        default=None,
        description="An OpenAI-compatible chat endpoint as the Verifier instead of a model (the endpoint oracle's "
        "client: key by Secret reference, timeouts, retries, a request budget per iteration).",
    )
    max_tokens: int = Field(default=4096, ge=1, le=65536, description="New tokens per verdict (model Verifier).")
    batch_size: int = Field(default=32, ge=1, le=100000, description="Pairs per generation call (model Verifier).")

    @model_validator(mode="after")
    def _model_or_endpoint(self) -> "VerifierSettings":
        if self.model is not None and self.endpoint is not None:
            raise ValueError("endpoint: set model or endpoint, not both")
        return self


class VerifierInput(Schema):
    """The label task's Verifier, resolved by the operator: exactly one of a model or an endpoint."""

    model: ModelInput | None = Field(default=None, description="The Verifier model (a source or a run artefact).")
    endpoint: OracleEndpointSettings | None = Field(default=None, description="The endpoint Verifier.")
    max_tokens: int = Field(default=4096, ge=1, le=65536)
    batch_size: int = Field(default=32, ge=1, le=100000)

    @model_validator(mode="after")
    def _exactly_one(self) -> "VerifierInput":
        if (self.model is None) == (self.endpoint is None):
            raise ValueError("exactly one of model or endpoint must be set")
        return self


class SolverSettings(Schema):
    grpo: SolverGRPOSettings = Field(
        default_factory=SolverGRPOSettings,
        description="GRPO on the Solver (reference: group 5, batch 128, 15 steps).",
    )
    format_weight: float = Field(
        default=0.0, ge=0, le=1, description="Weight of the <think>..\\boxed{} format reward (code: 0.1)."
    )

    _role_grpo = field_validator("grpo", mode="before")(_as_role_settings)


_PRESET_FIXED = ("kind", "question_field", "answer_field", "answer_format")


class BenchmarkSpec(Schema):
    """One benchmark: a paper preset (its file from `rzero benchmarks prepare`), a JSONL file with
    configurable fields, or the built-in arithmetic set."""

    name: str | None = Field(
        default=None, max_length=63, pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$",
        description="Name used in scores; default: the preset's."
    )
    preset: Literal[PRESET_NAMES] | None = Field(
        default=None,
        description="One of the paper's benchmarks: its file layout, gold reading, answer extraction, grader "
        "and prompt (see `rzero benchmarks list`). path: its JSONL (or published Parquet) file.",
    )
    kind: Literal["jsonl", "arithmetic"] = Field(
        default="jsonl", description="jsonl: a JSONL (or Parquet) file; arithmetic: generated arithmetic problems."
    )
    # Every string and list under a CEL rule has a bound: the API server estimates a rule's cost from the sizes
    # the schema allows and refuses the whole CRD when one could exceed its budget.
    path: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Benchmark file (local or s3://) for kind jsonl."
    )
    question_field: str = Field(
        default="question", max_length=256, description="JSONL field holding the question (not with preset)."
    )
    answer_field: str = Field(
        default="answer", max_length=256, description="JSONL field holding the gold answer (not with preset)."
    )
    answer_format: Literal["plain", "gsm8k", "boxed"] = Field(
        default="plain", description="gsm8k: answer after '####'; boxed: last \\boxed{} (not with preset)."
    )
    limit: int | None = Field(default=None, ge=1, description="Use the first N items.")
    size: int = Field(default=200, ge=1, le=100000, description="Items for kind arithmetic.")
    seed: int = Field(default=0, description="Seed for kind arithmetic.")
    difficulty: Literal["standard", "easy"] = Field(
        default="standard",
        description="Kind arithmetic: standard = multi-step integers, fraction sums and two-step word problems; "
        "easy = one- to three-step integer expressions and one-step word problems (the format warm-up's kind).",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=65536, description="New tokens per answer for this benchmark; overrides evaluation.maxTokens."
    )
    samples: int = Field(
        default=0, ge=0, le=256,
        description="k > 0: also report avg@k, the mean accuracy of k sampled answers per item (evaluation.sampling).",
    )

    def answer_tokens(self, evaluation_max_tokens: int | None) -> int:
        """New tokens per answer: this benchmark's maxTokens, else evaluation.maxTokens, else its preset's
        reference length (4,096 maths, 8,192 general reasoning; 4,096 for other benchmarks)."""
        from .benchmark_presets import DEFAULT_MAX_TOKENS, PRESETS

        preset = PRESETS[self.preset].max_tokens if self.preset else DEFAULT_MAX_TOKENS
        return self.max_tokens or evaluation_max_tokens or preset

    @model_validator(mode="after")
    def _consistent(self) -> "BenchmarkSpec":
        if self.name is None:
            if self.preset is None:
                raise ValueError("name: required unless preset is set")
            self.name = self.preset
        if self.preset is not None:
            # Compared with the defaults, not model_fields_set: a task file spells every field out.
            fixed = [name for name in _PRESET_FIXED if getattr(self, name) != type(self).model_fields[name].default]
            if fixed:
                names = ", ".join(to_camel(field) for field in fixed)
                raise ValueError(f"benchmark {self.name!r}: preset {self.preset!r} fixes the layout; remove {names}")
        if self.kind == "jsonl" and not self.path:
            raise ValueError(f"benchmark {self.name!r}: kind jsonl needs a path")
        return self


# The paper reports ten; the bound keeps the CRD's per-benchmark CEL rules within the API server's cost budget.
MAX_BENCHMARKS = 64


class EvaluationSettings(Schema):
    benchmarks: list[BenchmarkSpec] = Field(
        default_factory=lambda: [BenchmarkSpec(name="arithmetic", kind="arithmetic")], max_length=MAX_BENCHMARKS,
        description="Benchmarks scored with greedy decoding.",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=65536,
        description="New tokens per answer; unset: the reference's 4,096 for maths presets, 8,192 for the "
        "general-reasoning presets, 4,096 for other benchmarks.",
    )
    batch_size: int = Field(default=32, ge=1, le=100000, description="Prompts per generation call.")
    sampling: Sampling = Field(
        default_factory=lambda: Sampling(temperature=0.6, top_p=0.95, max_tokens=4096),
        description="How the k answers of avg@k are sampled (benchmarks with samples > 0); maxTokens is "
        "replaced by the benchmark's answer length.",
    )
    choice_fallback: Literal["guess", "none"] = Field(
        default="guess",
        description="A multiple-choice answer with no readable letter: guess = a letter drawn at random "
        "(seeded by the item) as the reference code does, so scores compare with the paper's; none = wrong.",
    )

    @model_validator(mode="after")
    def _unique_names(self) -> "EvaluationSettings":
        names = [spec.name for spec in self.benchmarks]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"benchmarks: names must be unique, repeated: {', '.join(duplicates)}")
        return self


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
    prune: list[Annotated[str, Field(pattern=PRUNABLE_KEY)]] = Field(
        default_factory=list,
        description="Run-relative checkpoint prefixes to delete before the phase runs (spec.retention; the "
        "operator computes them). Only training checkpoints match: nothing else can be named here.",
    )
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="The run's spec.tracking.")


class WarmupTask(TaskBase):
    phase: Literal["warmup"] = "warmup"
    model: ModelInput
    settings: WarmupSettings = Field(default_factory=WarmupSettings)


class ChallengerTask(TaskBase):
    phase: Literal["challenger"] = "challenger"
    challenger: ModelInput
    solver: ModelInput
    settings: ChallengerSettings = Field(default_factory=ChallengerSettings)
    grading: Grading = Field(default_factory=Grading, description="The run's reading and checker: p-hat uses them.")


class GenerateTask(TaskBase):
    phase: Literal["generate"] = "generate"
    challenger: ModelInput
    shard: Shard = Field(default_factory=Shard)
    settings: GenerationSettings = Field(default_factory=GenerationSettings)
    grading: Grading = Field(default_factory=Grading, description="The run's reading of Challenger outputs.")
    corpus: CorpusSettings | None = Field(
        default=None, description="The run's spec.corpus: passages to ground questions in."
    )


class LabelTask(TaskBase):
    phase: Literal["label"] = "label"
    solver: ModelInput
    questions: str = Field(max_length=1024, pattern=RUN_KEY, description="Run-relative key of the generate output (all shards are read).")
    shard: Shard = Field(default_factory=Shard)
    settings: LabelingSettings = Field(default_factory=LabelingSettings)
    oracle: OracleSettings = Field(default_factory=OracleSettings)
    verifier: VerifierInput | None = Field(
        default=None, description="The Verifier that vetoes kept labels (set when labeling.verifier is veto)."
    )

    @model_validator(mode="after")
    def _verifier_when_veto(self) -> "LabelTask":
        if (self.settings.verifier == "veto") != (self.verifier is not None):
            raise ValueError("verifier: set exactly when settings.verifier is veto")
        return self


class SolverTask(TaskBase):
    phase: Literal["solver"] = "solver"
    solver: ModelInput
    dataset: str = Field(max_length=1024, pattern=RUN_KEY, description="Run-relative key of the label output (all shards are read).")
    settings: SolverSettings = Field(default_factory=SolverSettings)
    grading: Grading = Field(default_factory=Grading, description="The run's reading and checker: the reward uses them.")


class EvaluateTask(TaskBase):
    phase: Literal["evaluate"] = "evaluate"
    model: ModelInput
    shard: Shard = Field(default_factory=Shard, description="Items i with i % count == index of every benchmark.")
    settings: EvaluationSettings = Field(default_factory=EvaluationSettings)


class ExportedModel(Schema):
    iteration: int = Field(ge=0, description="The iteration whose Solver this is (0 = the base model).")
    model: ModelInput = Field(description="Its checkpoint (artifact) or, for iteration 0, the base model source.")


class CardRow(Schema):
    """One iteration's figures in the model card."""

    iteration: int = Field(ge=0)
    kept: int | None = None
    label_accuracy: float | None = None
    label_accuracy_ci95: list[float] | None = None
    oracle_checked: int | None = None
    oracle: str | None = None
    mean_score: float | None = None
    scores: dict[str, float] = Field(default_factory=dict)


class ModelCardData(Schema):
    """What the export phase writes into README.md beside the exported weights."""

    base_model: str = Field(description="spec.model (or spec.solverSource).")
    iterations: int = Field(ge=0, description="Iterations the run was asked for.")
    stopped: str | None = Field(default=None, description="Why the run stopped early, if it did.")
    rows: list[CardRow] = Field(default_factory=list)
    spec: dict = Field(default_factory=dict, description="The RZeroRun spec that produced the model.")


class ExportTask(TaskBase):
    """Copy the best and the last Solver into plain Hugging Face directories with a model card."""

    phase: Literal["export"] = "export"
    best: ExportedModel
    last: ExportedModel
    card: ModelCardData


PhaseTask = Annotated[
    Union[WarmupTask, ChallengerTask, GenerateTask, LabelTask, SolverTask, EvaluateTask, ExportTask],
    Field(discriminator="phase"),
]


def parse_task(
    data: dict,
) -> WarmupTask | ChallengerTask | GenerateTask | LabelTask | SolverTask | EvaluateTask | ExportTask:
    """Validate a task document (strict types, as the API server reads the spec it came from: "3" is not
    an integer); raises pydantic.ValidationError naming the bad field."""
    from pydantic import TypeAdapter

    return TypeAdapter(PhaseTask).validate_python(data, strict=True)
