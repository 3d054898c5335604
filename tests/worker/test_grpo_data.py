"""The order the kept questions feed the rollout steps: the reference's epochs (verl's loader: a seeded
RandomSampler, drop_last) for the Solver by default, or a cycle."""

import pytest

from rzero_worker.grpo_data import prompt_dataset
from rzero_worker.task import SolverGRPOSettings


def settings(order: str, steps: int = 6, batch: int = 4) -> SolverGRPOSettings:
    return SolverGRPOSettings(steps=steps, rollout_batch_size=batch, update_batch_size=batch, data_order=order)


def batches(order: str, count: int, seed: int = 0, **geometry) -> list[list[int]]:
    grpo = settings(order, **geometry)
    ids = prompt_dataset([{"prompt": [], "id": i} for i in range(count)], grpo, seed=seed)["id"]
    return [ids[i: i + grpo.rollout_batch_size] for i in range(0, len(ids), grpo.rollout_batch_size)]


def test_epochs_never_repeat_a_question_within_a_rollout_batch_and_drop_each_epochs_remainder():
    steps = batches("epochs", count=10)  # 10 questions, batches of 4: 2 whole batches an epoch, 2 left out
    assert len(steps) == 6 and all(len(set(batch)) == 4 for batch in steps)
    for epoch in range(3):
        seen = steps[2 * epoch] + steps[2 * epoch + 1]
        assert len(set(seen)) == 8  # within an epoch no question twice
    assert steps[0:2] != steps[2:4]  # each epoch reshuffled


def test_the_order_is_the_runs_seed():
    assert batches("epochs", 10, seed=1) == batches("epochs", 10, seed=1) != batches("epochs", 10, seed=2)


def test_the_cycled_order_fills_every_step_and_is_left_to_trls_shuffle():
    steps = batches("cycled", count=3)
    assert len(steps) == 6 and sorted(sum(steps, [])) == sorted(list(range(3)) * 8)
    assert settings("cycled").keeps_data_order is False and settings("epochs").keeps_data_order is True


def test_epochs_need_one_whole_rollout_batch():
    with pytest.raises(ValueError, match="no whole rollout batch of 4"):
        batches("epochs", count=3)
