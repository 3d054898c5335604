"""Settings of the trained roles and the format warm-up: GRPO (the reference's defaults and batch geometry), the
Challenger's and the Solver's blocks, the warm-up. Also the RZeroRun spec blocks. Re-exported by
`rzero_worker.task`: import from there."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .settings_common import Sampling, Schema

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
    objective: Literal["uncertainty", "variance"] = Field(
        default="uncertainty",
        description="What the Challenger is rewarded for, before the repetition penalty. uncertainty: R-Zero's, from "
        "p, the Solver's majority-vote share (formula: reward). variance (SPICE, arXiv 2510.24684; needs "
        "spec.corpus): from p, the Solver's pass rate against the Challenger's document answer, "
        "exp(-(p(1-p) - 1/4)^2 / 0.02), 1 at p = 1/2; reward paper clamps it minus the penalty at 0, code does not.",
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


class WarmupSettings(Schema):
    """A short supervised fine-tuning of the base model on procedurally generated examples of the two output
    formats (warmup_data.py), before iteration 1. For base models that never write `<question>`/`\\boxed{}`
    (the demo's 135M model); off by default and in the paper's setting. With spec.task open-ended the examples
    teach the open-ended formats instead (warmup_openended.py: `<task>` blocks, plain responses, the judge's
    per-criterion score box)."""

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
        default=0.5, ge=0, le=1, description="Share of Challenger-format examples (of those not Verifier-format; open-ended: `<task>` "
        "blocks of synthetic tasks built from the description's words, format only)."
    )
    verifier_examples: float | None = Field(
        default=None, ge=0, le=1,
        description="Share of Verifier-format examples (the Verifier prompt with a right or near-miss proposed "
        "answer, a short check and \\boxed{correct} or \\boxed{incorrect}, half each; open-ended: the judge "
        "prompt with a synthetic response and a score box for every rubric criterion, scored by observable "
        "properties, format only). Unset: 0.3 when labeling.verifier is veto or spec.task is open-ended and the "
        "Verifier is the default copy of the base model, else none.",
    )
    word_share: float = Field(default=0.25, ge=0, le=1, description="Share of word problems (the rest: arithmetic; unused open-ended).")
    max_length: int = Field(default=512, ge=32, le=65536, description="Tokens per example (longer are truncated).")
    probe_samples: int = Field(
        default=8, ge=0, le=1024,
        description="After training, sample this many outputs of each role and report the share in format.",
    )

    def verifier_share(self) -> float:
        """The share of Verifier-format examples this warm-up trains on (unset: none)."""
        return self.verifier_examples or 0.0


class SolverSettings(Schema):
    grpo: SolverGRPOSettings = Field(
        default_factory=SolverGRPOSettings,
        description="GRPO on the Solver (reference: group 5, batch 128, 15 steps).",
    )
    format_weight: float = Field(
        default=0.0, ge=0, le=1, description="Weight of the <think>..\\boxed{} format reward (code: 0.1)."
    )

    _role_grpo = field_validator("grpo", mode="before")(_as_role_settings)
