"""GRPO set-up: the reference defaults and batch geometry reach TRL's config; metrics from the log history."""

import pytest
from pydantic import ValidationError

from rzero_worker.grpo import StepRecorder, build_grpo_config, micro_batch, training_metrics
from rzero_worker.task import ChallengerSettings, GRPOSettings, SolverSettings


def test_config_carries_the_reference_defaults_not_trls(tmp_path):
    settings = ChallengerSettings().grpo

    config = build_grpo_config(settings, tmp_path, seed=7)

    assert config.beta == 0.01  # KL (k3) coefficient; TRL's default is 0
    assert config.use_bias_correction_kl is False  # verl's k3 is not weighted by the ratio; TRL's default is
    assert config.learning_rate == 1e-6
    assert str(config.lr_scheduler_type) in ("constant", "SchedulerType.CONSTANT")  # TRL: linear
    assert config.warmup_steps == 0
    assert config.weight_decay == 0.01  # TRL: 0
    assert (config.epsilon, config.epsilon_high, config.delta) == (0.2, 0.3, 3.0)  # verl clip and dual clip
    assert (config.temperature, config.top_p, config.top_k) == (1.0, 0.99, 0)  # rollout top_p 0.99, no top-k
    assert config.loss_type == "bnpo"  # = verl's token mean per micro-batch (test_grpo_loss.py)
    assert config.scale_rewards == "group"
    assert config.num_iterations == 1
    assert config.max_completion_length == 4096
    assert config.seed == 7
    assert config.report_to in ([], "none", ["none"])


@pytest.mark.parametrize(
    ("role", "micro", "accumulation", "updates", "completions"),
    [
        # 512 prompts x 4 per step, 16 prompts (64 completions) per update: 32 updates per step, 160 in all
        (ChallengerSettings, 2, 32, 160, 2048),
        # 512 questions x 5 per step, 128 questions (640 completions) per update: 4 updates per step, 60 in all
        (SolverSettings, 1, 640, 60, 2560),
    ],
)
def test_the_reference_geometry_one_generation_per_rollout_step_several_updates(
    tmp_path, role, micro, accumulation, updates, completions
):
    settings = role().grpo

    config = build_grpo_config(settings, tmp_path, seed=0)

    assert config.per_device_train_batch_size == micro  # completions, not prompts
    assert config.gradient_accumulation_steps == accumulation  # micro-batches per optimizer update
    assert config.generation_batch_size == completions  # the reward sees the whole rollout batch at once
    assert config.steps_per_generation == accumulation * settings.updates_per_step
    assert config.max_steps == updates  # TRL counts optimizer updates
    assert config.save_steps == settings.updates_per_step  # checkpoints on rollout-step boundaries


def test_ranks_split_each_update_and_must_divide_it(tmp_path):
    settings = GRPOSettings(steps=1, group_size=4, rollout_batch_size=32, update_batch_size=8, micro_batch_size=2)

    config = build_grpo_config(settings, tmp_path, seed=0, world_size=4)

    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (2, 4)  # 32 / 4 ranks
    with pytest.raises(ValueError, match="over 3 ranks"):
        micro_batch(settings, world_size=3)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rollout_batch_size": 100, "update_batch_size": 16}, "updateBatchSize: 16 must divide rolloutBatchSize 100"),
        ({"update_batch_size": 4, "group_size": 5, "micro_batch_size": 3}, "microBatchSize: 3 must divide"),
    ],
)
def test_geometry_that_does_not_divide_is_refused_naming_the_fields(fields, message):
    base = {"steps": 1, "group_size": 4, "rollout_batch_size": 32, "update_batch_size": 8}
    with pytest.raises(ValidationError, match=message):
        GRPOSettings(**{**base, **fields})


def test_no_resume_checkpoint_is_saved_when_the_only_save_would_be_the_last_step(tmp_path):
    settings = GRPOSettings(steps=2, group_size=2, rollout_batch_size=4, update_batch_size=2, save_every=2)
    assert str(build_grpo_config(settings, tmp_path, seed=0).save_strategy).endswith(("no", "NO"))


@pytest.mark.parametrize(
    ("device", "compute", "flags"),
    [("cpu", "float32", (True, False, False)), ("cuda", "bfloat16", (False, True, False)),
     ("cuda", "float16", (False, False, True)), ("cpu", "bfloat16", (True, True, False))],
)
def test_precision_is_autocast_in_the_compute_dtype(tmp_path, device, compute, flags):
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("TrainingArguments refuses bf16/fp16 on CUDA without a CUDA device")
    settings = SolverSettings().grpo

    config = build_grpo_config(settings, tmp_path, seed=0, device=device, compute_dtype=compute)

    assert (config.use_cpu, config.bf16, config.fp16) == flags
    assert config.model_init_kwargs == {"dtype": compute}  # the frozen KL reference is built in the compute dtype


@pytest.mark.parametrize(("aggregation", "loss_type"), [("verl", "bnpo"), ("token-mean", "dapo"), ("sequence-mean", "grpo")])
def test_the_loss_aggregation_is_selectable(tmp_path, aggregation, loss_type):
    settings = SolverSettings.model_validate({"grpo": {"lossAggregation": aggregation}}).grpo
    assert build_grpo_config(settings, tmp_path, seed=0).loss_type == loss_type


def test_metrics_cover_steps_before_a_resume_from_the_restored_log_history():
    recorder = StepRecorder(updates_per_step=2)
    recorder.update_seconds = [3.0, 1.0, 5.0, 1.0]  # this process ran rollout steps 3 and 4 only
    history = [
        {"step": 1, "reward": 0.1, "reward_std": 0.2, "clip_ratio/region_mean": 0.0},
        {"step": 2, "clip_ratio/region_mean": 0.1},
        {"step": 3, "reward": 0.3, "reward_std": 0.4},
        {"step": 5, "reward": 0.5, "reward_std": 0.0},
        {"step": 7, "reward": 0.7, "reward_std": 0.2},
        {"step": 8, "train_runtime": 9.0},
    ]

    metrics = training_metrics(history, updates=8, resumed_from=4, recorder=recorder)

    assert metrics == {
        "steps": 4,
        "updates": 8,
        "mean_reward": pytest.approx(0.4),
        "last_reward": 0.7,
        "reward_std": pytest.approx(0.2),
        "reward_stds": [0.2, 0.4, 0.0, 0.2],
        "rewards": [0.1, 0.3, 0.5, 0.7],
        "clip_fraction": pytest.approx(0.05),
        "resumed_from_step": 2,  # update 4 = the end of rollout step 2
        "update_seconds": 2.5,
        "step_seconds": 5.0,
    }
