"""TRL GRPOTrainer set-up with the reference code's defaults and batch geometry, plus checkpoint upload and resume.

The reference (R-Zero, built on EasyR1/verl) and TRL 1.16 disagree on most defaults, so every value that
matters is set here from `GRPOSettings` rather than left to TRL:

| reference (verl)                              | TRL 1.16 default        | set here                                 |
|-----------------------------------------------|-------------------------|------------------------------------------|
| KL loss k3 ("low_var_kl"), coef 0.01          | beta 0 (no ref model)   | beta = kl_coef (TRL's KL term is k3)     |
| KL not weighted by the ratio                  | bias-corrected KL       | use_bias_correction_kl False             |
| lr 1e-6, constant, no warm-up                 | linear decay            | lr_scheduler_type "constant"             |
| AdamW weight decay 0.01                       | 0                       | weight_decay                             |
| clip 0.2 / 0.3, dual clip 3.0 (negative adv.) | 0.2 / same, no dual     | epsilon, epsilon_high, delta = clip_dual |
| token mean per micro-batch, / grad. accum.    | loss_type "dapo"        | loss_type "bnpo" (see below)             |
| rollout top_p 0.99, temperature 1             | top_p 1.0               | top_p, temperature                       |
| 512 prompts per step, updated in mini-batches | one update per batch    | steps_per_generation (see below)         |
| fp32 master weights, bf16 compute (FSDP MP)   | the model's dtype       | fp32 model + bf16/fp16 autocast          |
| advantage (r - mean) / (std + 1e-6)           | std + 1e-4              | RZeroGRPOTrainer (grpo_trainer.py)       |
| AdamW decays every parameter                  | biases, norms exempt    | RZeroGRPOTrainer                         |
| Solver data: reshuffled epochs, drop_last     | shuffled once           | prompt_dataset, shuffle_dataset False    |

Batch geometry. One rollout step generates `rollout_batch_size x group_size` completions at once, so the
reward function sees the whole rollout batch in one call (the Challenger's repetition penalty clusters it
all, DESIGN §2). The actor then makes `rollout_batch_size / update_batch_size` optimizer updates on
disjoint slices of it, each of `update_batch_size x group_size` completions, accumulated over micro-batches
of `micro_batch_size` completions. TRL does this with `steps_per_generation` = micro-steps per rollout
batch; it then computes the generating policy's log-probs once (`old_per_token_logps`), so the PPO ratio
and clip act from the second update of a step on. TRL's `max_steps` and `save_steps` count optimizer
updates: `steps x updates_per_step`.

Loss aggregation. verl averages the clipped loss (and the KL term) over the tokens of each micro-batch and
divides by the number of micro-batches of the update; TRL's "bnpo" is exactly that rule per micro-batch
(tests/worker/test_grpo_loss.py checks it on a hand-made batch). TRL's "dapo" (one token mean over the
whole update) and "grpo" (mean over sequences of per-sequence token means) are the other two choices.
verl also clamps the k3 KL at ±10 per token, TRL does not: they differ only when a token's KL exceeds 10.

Curves: every trainer log (TRL's own metrics per optimizer update) goes to the phase's trackers through
`tracking_trainer.TrackerCallback`: TensorBoard event files under the committed output, W&B / MLflow when set.

Resume: every `save_every` rollout steps the trainer's checkpoint (weights, optimizer, scheduler, RNG,
trainer state) is uploaded through `ctx.save_checkpoint`; a restarted phase fetches `ctx.latest_checkpoint()`
and passes it to `trainer.train(resume_from_checkpoint=...)`, which restores the update counter. Saves fall
on rollout-step boundaries, where TRL has no buffered generation, so a resumed run regenerates exactly the
next rollout batch and ends after the same number of updates.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback
from trl import GRPOConfig

from .grpo_trainer import RZeroGRPOTrainer
from .task import GRPOSettings

log = logging.getLogger(__name__)

TRL_LOSS_TYPE = {"verl": "bnpo", "token-mean": "dapo", "sequence-mean": "grpo"}


def rollout_completions(settings: GRPOSettings) -> int:
    """Completions in one rollout batch (one reward call)."""
    return settings.rollout_batch_size * settings.group_size


def micro_batch(settings: GRPOSettings, world_size: int = 1) -> tuple[int, int]:
    """(completions per micro-batch per rank, micro-batches per optimizer update per rank)."""
    per_update = settings.update_batch_size * settings.group_size
    if per_update % world_size:
        raise ValueError(
            f"grpo.updateBatchSize x groupSize = {per_update} completions per update must divide evenly "
            f"over {world_size} ranks"
        )
    per_rank = per_update // world_size
    micro = settings.micro_batch_size or per_rank
    if per_rank % micro:
        raise ValueError(f"grpo.microBatchSize {micro} must divide the {per_rank} completions of an update per rank")
    return micro, per_rank // micro


def build_grpo_config(
    settings: GRPOSettings, output_dir: Path, *, seed: int, device: str = "cpu", compute_dtype: str = "float32",
    world_size: int = 1, fsdp: dict | None = None, use_vllm: bool = False,
) -> GRPOConfig:
    """A GRPOConfig carrying the reference defaults and geometry (module docstring) for these settings.

    `compute_dtype` is the autocast dtype ("float32", "bfloat16", "float16"); the trainable weights and the
    optimizer state stay in the model's own dtype, which `models.load_model(trainable=True)` makes float32.
    `world_size`: training ranks (each update is split over them); `fsdp`: `distributed.fsdp_config(...)`;
    `use_vllm`: rollouts from a colocated vLLM engine (`vllm_rollout_options`)."""
    micro, accumulation = micro_batch(settings, world_size)
    sharded = {"fsdp": True, "fsdp_config": fsdp} if fsdp else {}
    return GRPOConfig(
        **sharded,
        **vllm_rollout_options(settings, use_vllm),
        output_dir=str(output_dir),
        max_steps=settings.total_updates,
        seed=seed,
        # optimiser: the reference's, not TRL's
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=settings.weight_decay,
        max_grad_norm=1.0,
        # GRPO objective
        beta=settings.kl_coef,
        use_bias_correction_kl=False,  # verl's KL term is plain k3; TRL 1.16 weights it by the ratio by default
        epsilon=settings.clip_low,
        epsilon_high=settings.clip_high,
        delta=settings.clip_dual,
        loss_type=TRL_LOSS_TYPE[settings.loss_aggregation],
        scale_rewards="group",
        num_iterations=1,
        shuffle_dataset=not settings.keeps_data_order,  # prompt_dataset made the order
        # geometry: one generation per rollout step, several optimizer updates on it
        num_generations=settings.group_size,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accumulation,
        steps_per_generation=accumulation * settings.updates_per_step,
        temperature=settings.temperature,
        top_p=settings.top_p,
        top_k=0,  # off, as in the reference rollout (top_k -1)
        max_completion_length=settings.max_completion_tokens,
        # under FSDP the same recomputation is FSDP's activation checkpointing (the Trainer refuses both)
        gradient_checkpointing=settings.gradient_checkpointing and not fsdp,
        # precision: the model's (float32) weights are the master copy; compute under autocast
        use_cpu=device == "cpu",
        bf16=compute_dtype == "bfloat16",
        fp16=compute_dtype == "float16",
        model_init_kwargs={"dtype": compute_dtype},  # the frozen KL reference model: compute dtype suffices
        # checkpoints on rollout-step boundaries, uploaded by CheckpointUploader; one kept on local disk. A
        # save at the last step would never be used (the phase commits the model): none when that is the only one
        save_strategy="steps" if settings.save_every < settings.steps else "no",
        save_steps=settings.save_every * settings.updates_per_step,
        save_total_limit=1,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def vllm_rollout_options(settings: GRPOSettings, use_vllm: bool) -> dict:
    """GRPOConfig options for rollouts. With vLLM (GPU, vllm installed): TRL's colocate mode, as the reference's
    hybrid engine: every training rank (or group of `rolloutTensorParallelSize` ranks) holds a vLLM engine on its
    own GPUs that generates the rollout batch, takes the new weights before each rollout step and sleeps, freeing
    its memory, while the optimizer updates run. Server mode would need GPUs and a process of its own. vLLM's
    importance-sampling correction stays off: the reference's PPO ratio is against the actor's own log-probs of
    the batch, which TRL recomputes (old_per_token_logps) as verl does."""
    if not use_vllm:
        return {"use_vllm": False}
    from . import distributed

    return {
        "use_vllm": True,
        "vllm_mode": "colocate",
        "vllm_tensor_parallel_size": settings.rollout_tensor_parallel_size,
        "vllm_gpu_memory_utilization": distributed.sized(settings, "rollout_gpu_memory_utilization"),
        "vllm_enable_sleep_mode": True,
        "vllm_max_model_length": settings.max_prompt_tokens + settings.max_completion_tokens,
        "vllm_importance_sampling_correction": False,
    }


def completion_texts(completions: list) -> list[str]:
    """TRL passes chat completions as [{"role": "assistant", "content": ...}] lists; plain text as is."""
    return [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]


class CheckpointUploader(TrainerCallback):
    """Uploads each saved trainer checkpoint through `save_checkpoint(update, dir)` so a restarted phase can
    resume. The final save is not uploaded: the phase commits the finished model right after."""

    def __init__(self, save_checkpoint: Callable[[int, Path], Any]):
        self.save_checkpoint = save_checkpoint

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            return
        directory = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        log.info("uploading the checkpoint of update %d", state.global_step)
        self.save_checkpoint(state.global_step, directory)


class StepRecorder(TrainerCallback):
    """Times every optimizer update, and logs one progress line per rollout step (its first update carries
    the generation and reward of the whole rollout batch, so TRL logs the reward there)."""

    def __init__(self, updates_per_step: int = 1):
        self.updates_per_step = updates_per_step
        self.update_seconds: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        self.update_seconds.append(time.monotonic() - self._started)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "reward" in logs:
            step = -(-state.global_step // self.updates_per_step)
            steps = state.max_steps // self.updates_per_step
            log.info("rollout step %d/%d: reward %.4f (spread %.4f), update %d/%d", step, steps, logs["reward"],
                     logs.get("reward_std", float("nan")), state.global_step, state.max_steps)

    def rollout_step_seconds(self) -> list[float]:
        """Wall time of each whole rollout step this process ran (generation, rewards and its updates)."""
        size = self.updates_per_step
        chunks = [self.update_seconds[i : i + size] for i in range(0, len(self.update_seconds), size)]
        return [sum(chunk) for chunk in chunks if len(chunk) == size]


def train_grpo(ctx, model, tokenizer, reward_func: Callable, dataset, settings: GRPOSettings, *, compute_dtype: str,
               ref_model=None, device: str | None = None, use_vllm: bool = False) -> dict:
    """Run GRPO on `model` (float32 master weights), resuming from the latest uploaded checkpoint; save the
    final model into `ctx.staging/model` and return the training metrics of ARCHITECTURE.md.

    `ref_model`: an already-loaded frozen copy of the starting weights in the compute dtype (e.g. the Solver
    when both roles start from the same model) to use as the KL reference instead of loading another.
    `device`: where training runs (default: the model's device; FSDP ranks load the model on the CPU and
    shard it onto their GPU). With several ranks (distributed.py) every rank calls this; the update is split
    over them, and only rank 0 commits."""
    from . import distributed

    device = device or next(model.parameters()).device.type
    world = distributed.current().world_size
    fsdp = distributed.fsdp_config(settings, device)
    distributed.check_offload(settings, device, use_vllm)
    output_dir = Path(ctx.workdir) / "trainer"
    config = build_grpo_config(settings, output_dir, seed=ctx.task.seed, device=device, compute_dtype=compute_dtype,
                               world_size=world, fsdp=fsdp, use_vllm=use_vllm)
    if (ref_model is None and settings.kl_coef) or use_vllm:
        _point_reference_at_loadable_weights(model, tokenizer, Path(ctx.workdir))
    if ref_model is None and fsdp and settings.kl_coef:
        ref_model = _sharded_reference(model, compute_dtype, settings)
    recorder = StepRecorder(settings.updates_per_step)
    uploader = CheckpointUploader(lambda step, directory: distributed.save_checkpoint(ctx, step, directory))
    from .tracking_trainer import TrackerCallback

    callbacks = [uploader, recorder, TrackerCallback(ctx.trackers)]
    trainer = _build_trainer(model, tokenizer, reward_func, dataset, config, ref_model, callbacks=callbacks,
                             settings=settings)
    if fsdp:
        distributed.reduce_in_float32(trainer, compute_dtype)
    resume_dir, resumed_from = _latest_checkpoint(ctx)
    if resumed_from is not None:
        log.info("resuming from the checkpoint of update %d", resumed_from)
    trainer.train(resume_from_checkpoint=str(resume_dir) if resume_dir else None)
    _save_trained_model(trainer, tokenizer, Path(ctx.staging) / "model", compute_dtype)
    metrics = training_metrics(trainer.state.log_history, trainer.state.global_step, resumed_from, recorder)
    if device == "cuda":  # this rank's peak, to hold against docs/gpu-sizing.md (vLLM's share not included)
        import torch

        metrics["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return metrics


def _save_trained_model(trainer, tokenizer, out_dir: Path, compute_dtype: str) -> None:
    """The trained weights as a Hugging Face checkpoint in the compute dtype, written by rank 0 (gathered from
    every rank's shard under FSDP)."""
    from . import distributed
    from .models import save_checkpoint

    if not distributed.current().distributed:
        save_checkpoint(trainer.model, tokenizer, out_dir, dtype=compute_dtype)
        return
    state = distributed.full_state_dict(trainer)
    if state is not None:
        save_checkpoint(trainer.accelerator.unwrap_model(trainer.model), tokenizer, out_dir, dtype=compute_dtype,
                        state_dict=state)
    distributed.barrier()


def _sharded_reference(model, compute_dtype: str, settings: GRPOSettings):
    """The frozen KL reference for FSDP ranks, sharded per decoder layer like the policy (TRL would wrap it as one
    unit, gathering the whole model at once), offloaded with it under `cpuOffload`."""
    import torch
    from transformers import AutoModelForCausalLM

    from . import distributed

    reference = AutoModelForCausalLM.from_pretrained(model.config._name_or_path, dtype=getattr(torch, compute_dtype))
    return distributed.shard_frozen(reference, compute_dtype=compute_dtype, offload=settings.cpu_offload)


def _build_trainer(model, tokenizer, reward_func, dataset, config, ref_model, callbacks,
                   settings: GRPOSettings | None = None) -> RZeroGRPOTrainer:
    """rzero's GRPOTrainer (grpo_trainer.py: `settings`' advantage epsilon and weight-decay scope, verl's by
    default); with `ref_model` given, TRL's own reference copy is never built (beta is set to 0 for the
    constructor only, then restored with the shared frozen model in place)."""
    beta = config.beta
    if ref_model is not None and beta:
        config.beta = 0.0
    verl = {"advantage_epsilon": settings.advantage_epsilon, "weight_decay_scope": settings.weight_decay_scope} \
        if settings is not None else {}
    trainer = RZeroGRPOTrainer(model=model, reward_funcs=reward_func, args=config, train_dataset=dataset,
                               processing_class=tokenizer, callbacks=callbacks, **verl)
    if ref_model is not None and beta:
        from trl.trainer.utils import add_fused_lm_head

        config.beta = trainer.beta = beta
        ref_model.eval().requires_grad_(False)
        # TRL scores its reference through a fused LM head; plain forward (generation) is unchanged by it
        add_fused_lm_head(ref_model, temperature=trainer.temperature, cast_lm_head_to_fp32=config.cast_lm_head_to_fp32)
        trainer.ref_model = ref_model
    return trainer


def training_metrics(log_history: list[dict], updates: int, resumed_from: int | None, recorder: StepRecorder) -> dict:
    """Rollout steps and optimizer updates, mean/last reward and reward spread over all rollout steps (the
    restored log history covers steps before a resume), clip fraction, resumed_from_step (in rollout
    steps) and the mean seconds per update and per rollout step of this process."""
    per_step = recorder.updates_per_step
    rewards = [entry["reward"] for entry in log_history if entry.get("reward") is not None]
    spreads = [entry["reward_std"] for entry in log_history if entry.get("reward_std") is not None]
    clipped = [entry["clip_ratio/region_mean"] for entry in log_history if "clip_ratio/region_mean" in entry]
    rollout_seconds = recorder.rollout_step_seconds()
    return {
        "steps": updates // per_step,
        "updates": updates,
        "mean_reward": _mean(rewards),
        "last_reward": rewards[-1] if rewards else None,
        "reward_std": _mean(spreads),
        "reward_stds": spreads,
        "rewards": rewards,
        "clip_fraction": _mean(clipped),
        "resumed_from_step": resumed_from // per_step if resumed_from is not None else None,
        "update_seconds": _mean(recorder.update_seconds),
        "step_seconds": _mean(rollout_seconds),
    }


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _latest_checkpoint(ctx) -> tuple[Path | None, int | None]:
    """(local directory, optimizer update) of the newest uploaded checkpoint, or (None, None)."""
    from . import distributed

    latest = distributed.latest_checkpoint(ctx)
    if latest is None:
        return None, None
    step, directory = latest
    return Path(directory), int(step)


def _point_reference_at_loadable_weights(model, tokenizer, workdir: Path) -> None:
    """TRL builds the KL reference model (and its colocated vLLM engine) from `model.config._name_or_path`. A model
    that came from a GGUF file (or anything but a plain HF directory) cannot be reloaded that way, so save the
    starting weights once (one rank per node: the scratch directory is shared) and point the config there."""
    source = Path(str(getattr(model.config, "_name_or_path", "") or ""))
    if (source / "config.json").is_file() and any(source.glob("*.safetensors")):
        return
    from . import distributed
    from .models import save_checkpoint

    reference_dir = workdir / "reference-model"
    if distributed.current().is_local_main:
        save_checkpoint(model, tokenizer, reference_dir)
    distributed.barrier()
    model.config._name_or_path = str(reference_dir)
