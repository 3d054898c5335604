"""rzero's GRPOTrainer: TRL 1.16's, with the two places where verl's arithmetic differs and TRL has no option.

- Advantage epsilon (`grpo.advantageEpsilon`). verl: A = (r - mean) / (std + 1e-6) over each prompt's group
  (`verl/trainer/core_algos.py:139,172`, torch.std, unbiased). TRL divides by (std + 1e-4), a constant in
  `_generate_and_score_completions`. Here TRL's advantages are multiplied by (std + 1e-4) / (std + eps), with
  std the same unbiased group std TRL takes (`nanstd` of the gathered rewards), so they become
  (r - mean) / (std + eps). It matters when a group's rewards differ by little (only through the Challenger's
  repetition penalty, say): std 2.5e-4 gives advantages 29% smaller with 1e-4 than with 1e-6.
- Weight-decay groups (`grpo.weightDecayScope`). verl's AdamW decays every trainable parameter
  (`verl/workers/fsdp_workers.py:286-291`); the HF Trainer exempts biases and norm weights
  (`get_decay_parameter_names`). "all" (the reference) decays everything; "except-biases-and-norms" is HF's.
"""

from __future__ import annotations

import torch
from trl import GRPOTrainer
from trl.trainer.utils import nanstd

TRL_ADVANTAGE_EPSILON = 1e-4  # hard-coded in trl 1.16 GRPOTrainer._generate_and_score_completions


class RZeroGRPOTrainer(GRPOTrainer):
    """GRPOTrainer with `advantage_epsilon` and `weight_decay_scope` (module notes)."""

    def __init__(self, *args, advantage_epsilon: float = 1e-6, weight_decay_scope: str = "all", **kwargs):
        if weight_decay_scope not in ("all", "except-biases-and-norms"):
            raise ValueError(f"weight_decay_scope must be 'all' or 'except-biases-and-norms', got {weight_decay_scope!r}")
        self.advantage_epsilon = advantage_epsilon
        self.weight_decay_scope = weight_decay_scope
        self._gathered_rewards: torch.Tensor | None = None
        super().__init__(*args, **kwargs)
        if self.scale_rewards != "group" or self.multi_objective_aggregation != "sum_then_normalize":
            raise ValueError("RZeroGRPOTrainer rescales group-normalised advantages (scale_rewards 'group', "
                             "multi_objective_aggregation 'sum_then_normalize')")

    def get_decay_parameter_names(self, model) -> list[str]:
        if self.weight_decay_scope == "all":
            return [name for name, _ in model.named_parameters()]
        return super().get_decay_parameter_names(model)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._gathered_rewards = rewards  # every process's rewards, as TRL normalises them
        return rewards

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if self._gathered_rewards is not None and self.advantage_epsilon != TRL_ADVANTAGE_EPSILON:
            std = group_std(self._gathered_rewards, self.reward_weights, self.num_generations)
            local = len(output["advantages"])
            std = std[self.accelerator.process_index * local : (self.accelerator.process_index + 1) * local]
            factor = (std + TRL_ADVANTAGE_EPSILON) / (std + self.advantage_epsilon)
            output["advantages"] = output["advantages"] * torch.nan_to_num(factor, nan=1.0).to(output["advantages"])
        self._gathered_rewards = None
        return output


def group_std(rewards_per_func: torch.Tensor, weights: torch.Tensor, group_size: int) -> torch.Tensor:
    """Each completion's group std of the summed reward, as TRL computes it (unscorable rows left out)."""
    unscorable = torch.isnan(rewards_per_func).all(dim=1)
    rewards = (rewards_per_func * weights.to(rewards_per_func.device).unsqueeze(0)).nansum(dim=1)
    rewards[unscorable] = torch.nan
    return nanstd(rewards.view(-1, group_size), dim=1).repeat_interleave(group_size, dim=0)
