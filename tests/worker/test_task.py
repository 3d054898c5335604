"""The task contract: per-phase settings, defaults of the reference code, and field-naming errors."""

import pytest
from pydantic import ValidationError

from rzero_worker.task import ChallengerSettings, GRPOSettings, LabelingSettings, Shard, SolverSettings, parse_task


def test_a_partial_grpo_block_keeps_the_reference_defaults_of_its_role():
    challenger = ChallengerSettings.model_validate({"grpo": {"steps": 2}})
    solver = SolverSettings.model_validate({"grpo": {"updateBatchSize": 8}})
    geometry = lambda g: (g.steps, g.group_size, g.rollout_batch_size, g.update_batch_size, g.micro_batch_size)
    assert geometry(challenger.grpo) == (2, 4, 512, 16, 2)
    assert geometry(solver.grpo) == (15, 5, 512, 8, 1)


def test_plain_grpo_settings_built_in_code_are_accepted_for_either_role():
    solver = SolverSettings(grpo=GRPOSettings(steps=3, group_size=2, rollout_batch_size=4, update_batch_size=2, kl_coef=0.0))
    assert (solver.grpo.steps, solver.grpo.updates_per_step, solver.grpo.kl_coef) == (3, 2, 0.0)


def test_lengths_default_to_the_references_2048_prompt_and_4096_response_tokens():
    from rzero_worker.task import EvaluationSettings, GenerationSettings

    assert (ChallengerSettings().grpo.max_prompt_tokens, SolverSettings().grpo.max_completion_tokens) == (2048, 4096)
    assert ChallengerSettings().solver_sampling.max_tokens == 4096
    assert GenerationSettings().sampling.max_tokens == LabelingSettings().sampling.max_tokens == 4096
    assert EvaluationSettings().max_tokens is None  # each benchmark's own length: 4,096 for maths (presets, DEFAULT_MAX_TOKENS)


def test_training_defaults_are_the_reference_codes_not_trls():
    grpo = ChallengerSettings().grpo
    assert (grpo.learning_rate, grpo.weight_decay, grpo.kl_coef, grpo.clip_low, grpo.clip_high, grpo.clip_dual) == (
        1e-6, 0.01, 0.01, 0.2, 0.3, 3.0)
    assert (grpo.temperature, grpo.top_p, grpo.loss_aggregation) == (1.0, 0.99, "verl")
    assert LabelingSettings().vote == "reference"


def test_the_paper_and_code_bands_and_an_inverted_override():
    assert LabelingSettings().band_edges() == (0.25, 0.75)
    assert LabelingSettings(band="code").band_edges() == (0.3, 0.8)
    with pytest.raises(ValidationError, match="minScore 0.9 must be below maxScore 0.2"):
        LabelingSettings(min_score=0.9, max_score=0.2)


def test_a_shard_index_must_be_below_the_count_and_names_its_prefix():
    assert Shard(index=2, count=4).key == "shard-00002-of-00004"
    with pytest.raises(ValidationError, match="must be < count"):
        Shard(index=4, count=4)


def test_an_invalid_task_names_the_field_and_an_unknown_field_is_refused():
    base = {"phase": "generate", "run": "r", "iteration": 1, "storage": {"uri": "/tmp/x"},
            "output": "iter-001/generate", "challenger": {"artifact": "iter-001/challenger"}}
    assert parse_task(base).phase == "generate"
    with pytest.raises(ValidationError) as bad:
        parse_task({**base, "settings": {"numQuestions": 0}})
    assert "numQuestions" in str(bad.value)
    with pytest.raises(ValidationError, match="typo"):
        parse_task({**base, "typo": 1})
    with pytest.raises(ValidationError, match="exactly one of source or artifact"):
        parse_task({**base, "challenger": {}})
