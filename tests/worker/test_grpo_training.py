"""GRPO on the tiny model, as the reference trains: one reward call per rollout batch, several optimizer
updates per rollout step with the PPO ratio and clip at work, and float32 master weights that move at lr 1e-6
under bf16 autocast."""

from pathlib import Path

import torch
from transformers import TrainerCallback
from trl import GRPOTrainer

from rzero_worker.grpo import build_grpo_config
from rzero_worker.grpo_data import prompt_dataset
from rzero_worker.models import LocalModel, load_model
from rzero_worker.task import DeviceHints, GRPOSettings


class UpdateCounter(TrainerCallback):
    def __init__(self):
        self.updates = 0

    def on_step_end(self, args, state, control, **kwargs):
        self.updates += 1


class RecordingReward:
    """A reward that differs between completions (so advantages are non-zero) and records each call."""

    __name__ = "recording_reward"

    def __init__(self):
        self.batch_sizes: list[int] = []

    def __call__(self, prompts, completions, **kwargs):
        self.batch_sizes.append(len(completions))
        return [float(sum(map(ord, c[-1]["content"])) % 97) for c in completions]


def train(model, tokenizer, settings: GRPOSettings, tmp_path: Path, *, compute_dtype="float32"):
    config = build_grpo_config(settings, tmp_path / "trainer", seed=0, device="cpu", compute_dtype=compute_dtype)
    rows = [{"prompt": [{"role": "user", "content": f"Question {i}?"}]} for i in range(settings.rollout_batch_size)]
    reward, counter = RecordingReward(), UpdateCounter()
    trainer = GRPOTrainer(model=model, reward_funcs=reward, args=config, processing_class=tokenizer,
                          train_dataset=prompt_dataset(rows, settings, seed=0), callbacks=[counter])
    trainer.train()
    return trainer, reward, counter


def load_tiny(tiny_model_dir):
    return load_model(LocalModel(path=tiny_model_dir), DeviceHints(device="cpu"), trainable=True)


def test_a_rollout_step_is_scored_whole_then_updated_in_mini_batches_with_the_clip_at_work(tiny_model_dir, tmp_path):
    # rollout 8 prompts x 4 completions; 2 prompts (8 completions) per update -> 4 updates per rollout step
    settings = GRPOSettings(steps=2, group_size=4, rollout_batch_size=8, update_batch_size=2, micro_batch_size=8,
                            max_completion_tokens=8, learning_rate=1e-2)
    model, tokenizer = load_tiny(tiny_model_dir)

    trainer, reward, counter = train(model, tokenizer, settings, tmp_path)

    assert reward.batch_sizes == [32, 32]  # one reward call per rollout step, with the whole batch
    assert counter.updates == trainer.state.global_step == 8
    clip = [entry["clip_ratio/region_mean"] for entry in trainer.state.log_history if "clip_ratio/region_mean" in entry]
    assert len(clip) == 8
    # The first update of a step runs on the policy that generated the batch: ratio 1, nothing clipped.
    # Later updates compare against those generation-time log-probs, so the clip acts (lr 1e-2 moves a lot).
    assert clip[0] == 0.0 and clip[4] == 0.0
    assert max(clip[1:4]) > 0.0


def changed_share(model, before: dict) -> float:
    changed = sum((before[name] != param.detach()).sum().item() for name, param in model.named_parameters())
    return changed / sum(param.numel() for param in model.parameters())


def one_update(model, tokenizer, tmp_path):
    settings = GRPOSettings(steps=1, group_size=2, rollout_batch_size=2, update_batch_size=2,
                            max_completion_tokens=8, learning_rate=1e-6)
    before = {name: param.detach().clone() for name, param in model.named_parameters()}
    train(model, tokenizer, settings, tmp_path, compute_dtype="bfloat16")
    return changed_share(model, before)


def test_float32_master_weights_move_at_lr_1e6_under_bf16_autocast(tiny_model_dir, tmp_path):
    model, tokenizer = load_tiny(tiny_model_dir)
    assert model.dtype == torch.float32  # trainable weights are the float32 master copy

    assert one_update(model, tokenizer, tmp_path) >= 0.99


def test_weights_stored_in_bf16_would_barely_move(tiny_model_dir, tmp_path):
    """What the precision policy prevents: the same update on bf16 weights mostly rounds away."""
    model, tokenizer = load_tiny(tiny_model_dir)
    model.to(torch.bfloat16)

    assert one_update(model, tokenizer, tmp_path) < 0.5


def test_a_frozen_copy_of_the_starting_weights_serves_as_the_kl_reference(tiny_model_dir, tmp_path):
    from rzero_worker.grpo import _build_trainer

    settings = GRPOSettings(steps=1, group_size=2, rollout_batch_size=2, update_batch_size=2, max_completion_tokens=8)
    model, tokenizer = load_tiny(tiny_model_dir)
    frozen, _ = load_model(LocalModel(path=tiny_model_dir), DeviceHints(device="cpu"))  # e.g. the Solver's model
    config = build_grpo_config(settings, tmp_path, seed=0)
    rows = [{"prompt": [{"role": "user", "content": "Question?"}]}] * 2

    trainer = _build_trainer(model, tokenizer, RecordingReward(), prompt_dataset(rows, settings, seed=0), config,
                             frozen, callbacks=[])
    trainer.train()

    assert trainer.ref_model is frozen and trainer.beta == 0.01  # no second copy was loaded
    assert any("kl" in entry for entry in trainer.state.log_history)
