"""GRPO set-up: the reference defaults reach TRL's config; batch geometry; metrics from the log history."""

import pytest

from rzero_worker.grpo import REFERENCE_LOSS_TYPE, StepRecorder, build_grpo_config, training_metrics
from rzero_worker.task import ChallengerSettings, GRPOSettings, SolverSettings


def test_config_carries_the_reference_defaults_not_trls(tmp_path):
    settings = ChallengerSettings().grpo

    config = build_grpo_config(settings, tmp_path, seed=7, on_cuda=False)

    assert config.beta == 0.01  # KL (k3) coefficient; TRL's default is 0
    assert config.learning_rate == 1e-6
    assert str(config.lr_scheduler_type) in ("constant", "SchedulerType.CONSTANT")  # TRL: linear
    assert config.warmup_steps == 0
    assert config.weight_decay == 0.01  # TRL: 0
    assert (config.epsilon, config.epsilon_high) == (0.2, 0.3)
    assert config.temperature == 1.0
    assert config.loss_type == REFERENCE_LOSS_TYPE == "dapo"  # = verl's token-mean aggregation
    assert config.scale_rewards == "group"
    assert config.num_iterations == 1
    assert config.max_steps == 5
    assert config.seed == 7
    assert config.report_to in ([], "none", ["none"])


def test_one_optimizer_step_is_one_whole_rollout_batch_counted_in_completions(tmp_path):
    settings = GRPOSettings(steps=3, group_size=4, batch_size=16)

    config = build_grpo_config(settings, tmp_path, seed=0, on_cuda=False)

    assert config.num_generations == 4
    assert config.per_device_train_batch_size == 64  # completions, not prompts
    assert config.gradient_accumulation_steps == 1
    assert config.generation_batch_size == 64  # the reward sees the whole batch at once
    assert config.steps_per_generation == 1


def test_micro_batches_accumulate_gradients_over_the_rollout_batch(tmp_path):
    settings = GRPOSettings(steps=15, group_size=5, batch_size=128, micro_batch_size=32)

    config = build_grpo_config(settings, tmp_path, seed=0, on_cuda=False)

    assert config.per_device_train_batch_size == 32
    assert config.gradient_accumulation_steps == 20
    assert config.generation_batch_size == 640
    assert config.steps_per_generation == 20  # one generation per optimizer step


def test_a_micro_batch_that_does_not_divide_the_rollout_batch_is_refused(tmp_path):
    settings = GRPOSettings(steps=1, group_size=5, batch_size=4, micro_batch_size=3)
    with pytest.raises(ValueError, match="microBatchSize 3 must divide"):
        build_grpo_config(settings, tmp_path, seed=0, on_cuda=False)


def test_checkpoints_are_saved_every_k_steps_and_nothing_is_reported_anywhere(tmp_path):
    settings = SolverSettings().grpo.model_copy(update={"save_every": 3})

    config = build_grpo_config(settings, tmp_path / "out", seed=0, on_cuda=False)

    assert str(config.save_strategy).endswith(("steps", "STEPS"))
    assert config.save_steps == 3
    assert config.output_dir == str(tmp_path / "out")
    assert config.use_cpu is True and config.bf16 is False


def test_metrics_cover_steps_before_a_resume_from_the_restored_log_history():
    recorder = StepRecorder()
    recorder.step_seconds = [2.0, 4.0]  # this process ran steps 3 and 4 only
    history = [
        {"step": 1, "reward": 0.1, "loss": 0.0},
        {"step": 2, "reward": 0.3},
        {"step": 3, "reward": 0.5},
        {"step": 4, "reward": 0.7},
        {"step": 4, "train_runtime": 9.0},
    ]

    metrics = training_metrics(history, steps=4, resumed_from=2, recorder=recorder)

    assert metrics == {
        "steps": 4,
        "mean_reward": pytest.approx(0.4),
        "last_reward": 0.7,
        "resumed_from_step": 2,
        "step_seconds": 3.0,
    }
