"""The loss TRL computes under lossAggregation "verl" is verl's, on a hand-made micro-batch.

verl (EasyR1 `dp_actor.update_policy` + `core_algos.compute_policy_loss`), written out here from its
definition: per token, ratio r = exp(logp - old); for advantage A >= 0 the loss is max(-A r, -A clip(r));
for A < 0 it is additionally capped at -A * clip_dual (dual clip); the micro-batch loss is the token mean
of that plus kl_coef x the token mean of the k3 KL, divided by the number of micro-batches per update.
"""

import math

import pytest
import torch
from trl import GRPOTrainer

from rzero_worker.grpo import build_grpo_config
from rzero_worker.grpo_data import prompt_dataset
from rzero_worker.models import LocalModel, load_model
from rzero_worker.task import DeviceHints, GRPOSettings

CLIP_LOW, CLIP_HIGH, CLIP_DUAL, KL_COEF = 0.2, 0.3, 3.0, 0.01


def masked_mean(values, mask):
    return (values * mask).sum() / mask.sum()


def verl_micro_batch_loss(logp, old, ref, advantages, mask, micro_batches_per_update):
    advantages = advantages.unsqueeze(1)
    log_ratio = logp - old
    ratio = torch.exp(log_ratio)
    clipped = torch.exp(torch.clamp(log_ratio, math.log(1 - CLIP_LOW), math.log(1 + CLIP_HIGH)))
    higher = torch.max(-advantages * ratio, -advantages * clipped)
    lower = torch.min(higher, -advantages * CLIP_DUAL)
    policy = masked_mean(torch.where(advantages < 0, lower, higher), mask)
    kl = ref - logp
    k3 = torch.clamp(torch.exp(kl) - kl - 1, min=-10, max=10)
    return (policy + KL_COEF * masked_mean(k3, mask)) / micro_batches_per_update


@pytest.fixture(scope="module")
def trainer(tiny_model_dir, tmp_path_factory):
    # 2 prompts x 2 completions per update, micro-batches of 2 completions: 2 micro-batches per update
    settings = GRPOSettings(steps=1, group_size=2, rollout_batch_size=2, update_batch_size=2, micro_batch_size=2,
                            clip_low=CLIP_LOW, clip_high=CLIP_HIGH, clip_dual=CLIP_DUAL, kl_coef=KL_COEF)
    model, tokenizer = load_model(LocalModel(path=tiny_model_dir), DeviceHints(device="cpu"), trainable=True)
    config = build_grpo_config(settings, tmp_path_factory.mktemp("trainer"), seed=0)
    rows = [{"prompt": [{"role": "user", "content": "Question?"}]}]
    grpo = GRPOTrainer(model=model, reward_funcs=lambda completions, **_: [0.0] * len(completions), args=config,
                       train_dataset=prompt_dataset(rows, settings, seed=0), processing_class=tokenizer)
    grpo.current_gradient_accumulation_steps = config.gradient_accumulation_steps
    grpo.model.train()
    return grpo


def test_trls_loss_under_verl_aggregation_equals_verls_formula(trainer):
    prompt_ids = torch.tensor([[11, 12, 13], [11, 12, 13]])
    completion_ids = torch.tensor([[21, 22, 23, 24], [31, 32, 33, 34]])
    completion_mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])  # unequal lengths: token means differ from sequence means
    advantages = torch.tensor([0.8, -1.2])
    with torch.no_grad():
        logp, _, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, torch.cat([prompt_ids, completion_ids], 1),
            torch.cat([torch.ones_like(prompt_ids), completion_mask], 1), completion_ids.size(1))
    # old policy log-probs chosen so every clip branch is taken: inside the clip, above 1.3, below 0.8, and
    # a ratio of e^1.5 > 3 under a negative advantage (dual clip)
    old = logp - torch.tensor([[0.0, 0.5, -0.5, 0.0], [1.5, -0.4, 0.1, 0.0]])
    ref = logp - torch.tensor([[0.3, -0.2, 0.1, 0.0], [0.05, 0.4, -0.3, 0.0]])
    inputs = {"prompt_ids": prompt_ids, "prompt_mask": torch.ones_like(prompt_ids), "completion_ids": completion_ids,
              "completion_mask": completion_mask, "advantages": advantages, "old_per_token_logps": old,
              "ref_per_token_logps": ref, "num_items_in_batch": completion_mask.sum()}

    loss = trainer.compute_loss(trainer.model, inputs)

    expected = verl_micro_batch_loss(logp, old, ref, advantages, completion_mask.float(), micro_batches_per_update=2)
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # and it is not the sequence-level mean (TRL "grpo"), which would weigh the two completions equally
    per_sequence = verl_micro_batch_loss(logp[:1], old[:1], ref[:1], advantages[:1], completion_mask[:1].float(), 2)
    per_sequence += verl_micro_batch_loss(logp[1:], old[1:], ref[1:], advantages[1:], completion_mask[1:].float(), 2)
    assert loss.item() != pytest.approx((per_sequence / 2).item(), rel=1e-3)
