"""rzero's GRPOTrainer does verl's arithmetic where TRL hard-codes its own: the advantage's epsilon and which
parameters AdamW decays (verl `core_algos.compute_grpo_outcome_advantage` eps 1e-6; `fsdp_workers` AdamW over
every trainable parameter)."""

import pytest
import torch

from rzero_worker.grpo import build_grpo_config
from rzero_worker.grpo_data import prompt_dataset
from rzero_worker.grpo_trainer import RZeroGRPOTrainer
from rzero_worker.models import LocalModel, load_model
from rzero_worker.task import DeviceHints, GRPOSettings

# 2 prompts x 4 completions; group 0's rewards differ only by a penalty-sized amount, group 1's by a lot
REWARDS = [0.5, 0.5, 0.5, 0.5 + 5e-4, 0.0, 1.0, 0.0, 1.0]
SETTINGS = GRPOSettings(steps=1, group_size=4, rollout_batch_size=2, update_batch_size=2, micro_batch_size=8,
                        max_completion_tokens=8)


def make_trainer(model_dir, workdir, **options) -> RZeroGRPOTrainer:
    model, tokenizer = load_model(LocalModel(path=model_dir), DeviceHints(device="cpu"), trainable=True)
    config = build_grpo_config(SETTINGS, workdir, seed=0)
    rows = [{"prompt": [{"role": "user", "content": f"Question {i}?"}]} for i in range(2)]
    return RZeroGRPOTrainer(model=model, reward_funcs=lambda completions, **_: REWARDS[: len(completions)],
                            args=config, train_dataset=prompt_dataset(rows, SETTINGS, seed=0),
                            processing_class=tokenizer, **options)


def advantages(trainer) -> torch.Tensor:
    batch = [row for row in trainer.train_dataset.select(range(2)) for _ in range(SETTINGS.group_size)]
    with torch.no_grad():
        return trainer._generate_and_score_completions(batch)["advantages"]


def verl_advantages(eps: float) -> torch.Tensor:
    groups = torch.tensor(REWARDS).view(2, 4)
    return ((groups - groups.mean(1, keepdim=True)) / (groups.std(1, keepdim=True) + eps)).flatten()


@pytest.mark.parametrize("eps", [1e-6, 1e-4, 1e-2])
def test_advantages_are_verls_group_normalisation_with_the_configured_epsilon(tiny_model_dir, tmp_path, eps):
    got = advantages(make_trainer(tiny_model_dir, tmp_path, advantage_epsilon=eps))
    assert torch.allclose(got, verl_advantages(eps), rtol=1e-4, atol=1e-6)


def test_the_reference_epsilon_keeps_a_penalty_sized_difference_at_full_strength(tiny_model_dir, tmp_path):
    reference = advantages(make_trainer(tiny_model_dir, tmp_path / "a", advantage_epsilon=1e-6))
    trl = advantages(make_trainer(tiny_model_dir, tmp_path / "b", advantage_epsilon=1e-4))
    # std 2.5e-4: TRL's 1e-4 shrinks group 0's advantages by (std + 1e-6) / (std + 1e-4), 28% smaller; group 1 barely moves
    assert (trl[:4].abs().max() / reference[:4].abs().max()).item() == pytest.approx(2.51e-4 / 3.5e-4, rel=1e-3)
    assert torch.allclose(trl[4:], reference[4:], rtol=1e-3)


def decayed(trainer) -> set[str]:
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    optimizer = trainer.create_optimizer()
    return {names[id(p)] for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}


def test_weight_decay_applies_to_every_parameter_as_in_verl_or_to_hfs_groups(tiny_model_dir, tmp_path):
    every = decayed(make_trainer(tiny_model_dir, tmp_path / "a"))
    hf = decayed(make_trainer(tiny_model_dir, tmp_path / "b", weight_decay_scope="except-biases-and-norms"))
    trainable = {n for n, p in make_trainer(tiny_model_dir, tmp_path / "c").model.named_parameters() if p.requires_grad}
    assert every == trainable
    exempt = trainable - hf
    assert exempt and all("norm" in name or name.endswith("bias") for name in exempt)


def test_an_unknown_weight_decay_scope_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(ValueError, match="weight_decay_scope"):
        make_trainer(tiny_model_dir, tmp_path, weight_decay_scope="norms")
