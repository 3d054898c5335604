"""TRL GRPOTrainer set-up with the reference code's defaults, plus checkpoint upload and resume.

The reference (R-Zero, built on EasyR1/verl) and TRL 1.16 disagree on most defaults, so every value
that matters is set here from `GRPOSettings` rather than left to TRL:

| reference (verl)                         | TRL 1.16 default       | set here                          |
|------------------------------------------|------------------------|-----------------------------------|
| KL loss, k3 ("low_var_kl"), coef 0.01    | beta 0 (no ref model)  | beta = kl_coef (TRL's KL is k3)   |
| lr 1e-6, constant schedule, no warmup    | linear decay           | lr_scheduler_type "constant"      |
| AdamW weight decay 0.01                  | 0                      | weight_decay                      |
| clip 0.2 low / 0.3 high                  | 0.2 / same             | epsilon, epsilon_high             |
| loss_avg_mode "token" (token-mean: every | loss_type "dapo"       | loss_type "dapo" — the same rule: |
| response token of the update batch       |                        | normalise by the active tokens of |
| weighs the same)                         |                        | the whole accumulated batch       |
| advantage (r - mean_group) / std_group   | scale_rewards "group"  | scale_rewards "group"             |
| one update per rollout batch             | num_iterations 1       | num_iterations 1                  |

Batch geometry: one optimizer step consumes one rollout batch of `batch_size` prompts x `group_size`
completions. TRL's `per_device_train_batch_size` counts *completions*, so it is the whole rollout batch,
or `micro_batch_size` completions with gradient accumulation over the rest. `generation_batch_size` is
the whole rollout batch, so the reward function sees every completion of a step at once (the
Challenger's repetition penalty clusters over the whole batch, DESIGN §2).

Resume: every `save_every` steps the trainer's checkpoint (weights, optimizer, scheduler, RNG, trainer
state) is uploaded through `ctx.save_checkpoint`; a restarted phase fetches `ctx.latest_checkpoint()` and
passes it to `trainer.train(resume_from_checkpoint=...)`, which restores the step counter, so the run
ends after the same total number of steps.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from .task import GRPOSettings

log = logging.getLogger(__name__)

# verl's token-mean loss aggregation; see the table above.
REFERENCE_LOSS_TYPE = "dapo"


def rollout_completions(settings: GRPOSettings) -> int:
    """Completions in one rollout batch (= one optimizer step)."""
    return settings.batch_size * settings.group_size


def build_grpo_config(settings: GRPOSettings, output_dir: Path, *, seed: int, on_cuda: bool) -> GRPOConfig:
    """A GRPOConfig carrying the reference defaults (see the module docstring) for these settings."""
    completions = rollout_completions(settings)
    micro = settings.micro_batch_size or completions
    if completions % micro:
        raise ValueError(
            f"grpo.microBatchSize {micro} must divide batchSize x groupSize = {completions} "
            "(one optimizer step consumes the whole rollout batch)"
        )
    return GRPOConfig(
        output_dir=str(output_dir),
        max_steps=settings.steps,
        seed=seed,
        # optimiser: the reference's, not TRL's
        learning_rate=settings.learning_rate,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=settings.weight_decay,
        max_grad_norm=1.0,
        # GRPO objective
        beta=settings.kl_coef,
        epsilon=settings.clip_low,
        epsilon_high=settings.clip_high,
        loss_type=REFERENCE_LOSS_TYPE,
        scale_rewards="group",
        num_iterations=1,
        # rollouts: `group_size` completions per prompt, the whole rollout batch generated at once
        num_generations=settings.group_size,
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=completions // micro,
        generation_batch_size=completions,
        temperature=settings.temperature,
        top_p=1.0,
        top_k=0,
        max_completion_length=settings.max_completion_tokens,
        gradient_checkpointing=settings.gradient_checkpointing,
        # device: bf16 on CUDA, fp32 on CPU (use_cpu keeps accelerate off any GPU it might see)
        use_cpu=not on_cuda,
        bf16=on_cuda,
        # checkpoints: every `save_every` steps, uploaded by CheckpointUploader; one kept on local disk
        save_strategy="steps",
        save_steps=settings.save_every,
        save_total_limit=1,
        logging_steps=1,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )


def completion_texts(completions: list) -> list[str]:
    """TRL passes chat completions as [{"role": "assistant", "content": ...}] lists; plain text as is."""
    return [c[-1]["content"] if isinstance(c, list) else str(c) for c in completions]


def prompt_dataset(rows: list[dict], settings: GRPOSettings, *, seed: int):
    """A `datasets.Dataset` of exactly `steps x batch_size` prompt rows: one epoch is the whole run.

    `rows` (each with a "prompt" chat and any columns the reward function needs) are cycled in a seeded
    order, so a dataset smaller than the run is reused evenly and one larger is sampled without
    repetition. TRL's sampler drops an incomplete last batch, so this size also guarantees `steps`."""
    import random

    from datasets import Dataset

    if not rows:
        raise ValueError("prompt_dataset: no rows to train on")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    needed = settings.steps * settings.batch_size
    return Dataset.from_list([rows[order[i % len(order)]] for i in range(needed)])


class CheckpointUploader(TrainerCallback):
    """Uploads each saved trainer checkpoint through `save_checkpoint(step, dir)` so a restarted phase can
    resume. The final step is not uploaded: the phase commits the finished model right after."""

    def __init__(self, save_checkpoint: Callable[[int, Path], Any]):
        self.save_checkpoint = save_checkpoint

    def on_save(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps:
            return
        directory = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        log.info("uploading checkpoint of step %d", state.global_step)
        self.save_checkpoint(state.global_step, directory)


class StepRecorder(TrainerCallback):
    """Measures each optimizer step's wall time and logs its mean reward."""

    def __init__(self):
        self.step_seconds: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        self.step_seconds.append(time.monotonic() - self._started)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "reward" in logs:
            seconds = self.step_seconds[-1] if self.step_seconds else float("nan")
            log.info("step %d/%d reward %.4f (%.1f s)", state.global_step, state.max_steps, logs["reward"], seconds)


def train_grpo(ctx, model, tokenizer, reward_func: Callable, dataset, settings: GRPOSettings) -> dict:
    """Run GRPO on `model`, resuming from the latest uploaded checkpoint, save the final model into
    `ctx.staging/model` and return the training metrics of ARCHITECTURE.md."""
    from .models import save_checkpoint

    on_cuda = next(model.parameters()).device.type == "cuda"
    output_dir = Path(ctx.workdir) / "trainer"
    config = build_grpo_config(settings, output_dir, seed=ctx.task.seed, on_cuda=on_cuda)
    _point_reference_at_loadable_weights(model, tokenizer, settings, Path(ctx.workdir))
    recorder = StepRecorder()
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward_func,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        callbacks=[CheckpointUploader(ctx.save_checkpoint), recorder],
    )
    resume_dir, resumed_from = _latest_checkpoint(ctx)
    if resumed_from is not None:
        log.info("resuming from the checkpoint of step %d", resumed_from)
    trainer.train(resume_from_checkpoint=str(resume_dir) if resume_dir else None)
    save_checkpoint(trainer.model, tokenizer, Path(ctx.staging) / "model")
    return training_metrics(trainer.state.log_history, trainer.state.global_step, resumed_from, recorder)


def training_metrics(log_history: list[dict], steps: int, resumed_from: int | None, recorder: StepRecorder) -> dict:
    """steps, mean/last reward over all steps (the restored log history covers steps before a resume),
    resumed_from_step and the mean seconds per step of this process."""
    rewards = [entry["reward"] for entry in log_history if entry.get("reward") is not None]
    step_seconds = sum(recorder.step_seconds) / len(recorder.step_seconds) if recorder.step_seconds else None
    return {
        "steps": steps,
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "last_reward": rewards[-1] if rewards else None,
        "resumed_from_step": resumed_from,
        "step_seconds": step_seconds,
    }


def _latest_checkpoint(ctx) -> tuple[Path | None, int | None]:
    """(local directory, step) of the newest uploaded checkpoint, or (None, None)."""
    latest = ctx.latest_checkpoint()
    if latest is None:
        return None, None
    step, directory = latest
    return Path(directory), int(step)


def _point_reference_at_loadable_weights(model, tokenizer, settings: GRPOSettings, workdir: Path) -> None:
    """TRL builds the KL reference model with `from_pretrained(model.config._name_or_path)`. A model that
    came from a GGUF file (or anything but a plain HF directory) cannot be reloaded that way, so save the
    starting weights once and point the config there."""
    if settings.kl_coef == 0:
        return
    source = Path(str(getattr(model.config, "_name_or_path", "") or ""))
    if (source / "config.json").is_file() and any(source.glob("*.safetensors")):
        return
    from .models import save_checkpoint

    reference_dir = workdir / "reference-model"
    save_checkpoint(model, tokenizer, reference_dir)
    model.config._name_or_path = str(reference_dir)
