"""Phase `solver`: GRPO on the pseudo-labels, committed model, kill-and-resume, empty dataset."""

import pytest

from rzero_worker.grading import GradingPool
from rzero_worker.phases import load_phase
from rzero_worker.phases.runner import run_phase
from rzero_worker.phases.solver import SolverReward
from rzero_worker.storage import is_committed, join_key, open_storage
from rzero_worker.task import GRPOSettings, ModelInput, SolverGRPOSettings, SolverSettings, SolverTask
from support.artefacts import commit_jsonl_shards, die_after_checkpoint, summary_metrics

TRAIN_ROWS = [
    {"id": "q1", "question": "What is 2+2?", "label": "4", "score": 0.5},
    {"id": "q2", "question": "What is 3*3?", "label": "9", "score": 0.6},
    {"id": "q3", "question": "Half of 1?", "label": "\\frac{1}{2}", "score": 0.7},
]


def solver_task(location, model_dir, *, steps=3) -> SolverTask:
    grpo = GRPOSettings(steps=steps, group_size=2, rollout_batch_size=2, update_batch_size=2, max_completion_tokens=8, save_every=1)
    return SolverTask(
        run="demo",
        iteration=1,
        storage=location,
        output="iter-001/solver",
        solver=ModelInput(source=str(model_dir)),
        dataset="iter-001/label",
        settings=SolverSettings(grpo=grpo),
    )






class KilledAfterStep(RuntimeError):
    pass


def test_solver_reward_is_equivalence_to_the_label_with_an_optional_format_share():
    completions = [
        [{"role": "assistant", "content": "so \\boxed{0.5}"}],
        [{"role": "assistant", "content": "<think>3*3</think> it is \\boxed{9}"}],
        [{"role": "assistant", "content": "<think>hmm</think> \\boxed{8}"}],
        [{"role": "assistant", "content": "no answer"}],
    ]
    labels = ["\\frac{1}{2}", "9", "9", "4"]
    with GradingPool(workers=1, timeout_s=5.0) as pool:
        plain = SolverReward(pool, format_weight=0.0)(prompts=[None] * 4, completions=completions, label=labels)
        shaped = SolverReward(pool, format_weight=0.1)(prompts=[None] * 4, completions=completions, label=labels)
    assert plain == [1.0, 1.0, 0.0, 0.0]
    assert shaped == pytest.approx([0.9, 1.0, 0.1, 0.0])


def test_solver_trains_on_every_label_shard_and_commits_the_model(storage_location, tiny_model_dir, tmp_path):
    commit_label_shards(storage_location, [TRAIN_ROWS[:2], TRAIN_ROWS[2:]])
    task = solver_task(storage_location, tiny_model_dir)

    assert run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(storage_location)
    assert is_committed(storage, task.output)
    metrics = summary_metrics(storage, task.output)
    assert metrics["steps"] == 3 and metrics["resumed_from_step"] is None and metrics["questions"] == 3
    assert 0.0 <= metrics["mean_reward"] <= 1.0 and 0.0 <= metrics["last_reward"] <= 1.0
    assert metrics["step_seconds"] > 0
    files = {key.split("/model/", 1)[1] for key in storage.list(task.output) if "/model/" in key}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert storage.list(task.output + ".ckpt") == []  # resume checkpoints are dropped once committed

    from transformers import AutoModelForCausalLM

    local = tmp_path / "downloaded"
    storage.download_dir(join_key(task.output, "model"), local)
    assert AutoModelForCausalLM.from_pretrained(local).config.num_hidden_layers == 2


def test_a_killed_solver_resumes_from_its_last_checkpoint_and_ends_at_the_same_step(
    local_location, tiny_model_dir, tmp_path, monkeypatch
):
    commit_label_shards(local_location, [TRAIN_ROWS])
    task = solver_task(local_location, tiny_model_dir, steps=3)
    die_after_checkpoint(monkeypatch, 2, KilledAfterStep("simulated kill after the checkpoint of step 2 was committed"))
    with pytest.raises(KilledAfterStep):
        run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache")
    storage = open_storage(local_location)
    assert not is_committed(storage, task.output)
    assert is_committed(storage, "iter-001/solver.ckpt/step-000002")

    run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache")

    metrics = summary_metrics(storage, task.output)
    assert metrics["resumed_from_step"] == 2
    assert metrics["steps"] == 3
    assert metrics["mean_reward"] is not None  # the restored log history covers steps 1-3


def test_an_empty_dataset_carries_the_solver_forward_unchanged(local_location, tiny_model_dir, tmp_path):
    commit_label_shards(local_location, [[], []])
    task = solver_task(local_location, tiny_model_dir)

    run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache")

    storage = open_storage(local_location)
    metrics = summary_metrics(storage, task.output)
    assert metrics["steps"] == 0 and metrics["questions"] == 0
    assert "kept none" in metrics["skipped"]
    # The committed checkpoint is the input model, weight for weight.
    from safetensors.torch import load_file

    carried = tmp_path / "carried"
    storage.download_dir(join_key(task.output, "model"), carried)
    before, after = load_file(tiny_model_dir / "model.safetensors"), load_file(carried / "model.safetensors")
    assert before.keys() == after.keys()
    assert all((before[name] == after[name]).all() for name in before)


@pytest.mark.parametrize("order, trains", [("epochs", False), ("cycled", True)])
def test_fewer_questions_than_a_rollout_batch_train_only_when_cycled(local_location, tiny_model_dir, tmp_path,
                                                                     order, trains):
    commit_label_shards(local_location, [TRAIN_ROWS])  # 3 questions, rollout batches of 4
    task = solver_task(local_location, tiny_model_dir, steps=1)
    task.settings.grpo = SolverGRPOSettings(steps=1, group_size=2, rollout_batch_size=4, update_batch_size=4,
                                            max_completion_tokens=8, data_order=order)

    assert run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache") == 0

    metrics = summary_metrics(open_storage(local_location), task.output)
    assert metrics["steps"] == (1 if trains else 0)
    assert ("skipped" in metrics) is not trains
    if not trains:
        assert "3 trainable questions make no whole rollout batch of solver.grpo.rolloutBatchSize 4" in metrics["skipped"]


def test_a_committed_solver_is_not_trained_again(local_location, tiny_model_dir, tmp_path):
    commit_label_shards(local_location, [TRAIN_ROWS])
    task = solver_task(local_location, tiny_model_dir, steps=1)
    run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache")
    manifest = open_storage(local_location).get_bytes(join_key(task.output, "_MANIFEST.json"))

    def must_not_run(ctx):
        raise AssertionError("a committed phase ran again")

    assert run_phase(task, must_not_run, cache_dir=tmp_path / "cache") == 0
    assert open_storage(local_location).get_bytes(join_key(task.output, "_MANIFEST.json")) == manifest


def commit_label_shards(location, shards: list[list[dict]]) -> None:
    commit_jsonl_shards(location, "iter-001/label", "train.jsonl", shards)


def test_anchors_are_mixed_into_the_training_rows_at_the_ratio(local_location, tmp_path):
    from rzero_worker.phases.solver import with_anchors
    from support.grounded import write_anchors

    task = solver_task(local_location, "unused").model_copy(
        update={"anchors": write_anchors(tmp_path / "anchors.jsonl", count=2, mix_ratio=1.5)})
    kept = TRAIN_ROWS[:2]

    rows, counts = with_anchors(task, kept)

    # round(1.5 x 2 kept) = 3 anchor rows: both anchors once, then one again; labelled with their answers
    assert rows[:2] == kept and counts["anchors_mixed"] == 3 and counts["anchors"]["usable"] == 2
    extra = rows[2:]
    assert all(row["anchor"] and row["label"] == row["question"].split()[-1].rstrip("?") for row in extra)
    assert sorted(row["label"] for row in extra[:2]) == ["0", "1"] and len(extra) == 3
    assert with_anchors(task, kept) == (rows, counts)  # seeded
    assert with_anchors(solver_task(local_location, "unused"), kept) == (kept, {})
    assert with_anchors(task, [])[1]["anchors_mixed"] == 0  # beside kept questions only


def test_the_solver_trains_on_kept_questions_and_anchors(local_location, tiny_model_dir, tmp_path):
    from support.grounded import write_anchors

    commit_jsonl_shards(local_location, "iter-001/label", "train.jsonl", [TRAIN_ROWS])
    task = solver_task(local_location, tiny_model_dir, steps=1).model_copy(
        update={"anchors": write_anchors(tmp_path / "anchors.jsonl", count=2, mix_ratio=0.5)})

    assert run_phase(task, load_phase("solver"), cache_dir=tmp_path / "cache") == 0

    metrics = summary_metrics(open_storage(local_location), task.output)
    # round(0.5 x 3 kept) = 2 (halves up): five training rows
    assert metrics["anchors_mixed"] == 2 and metrics["questions"] == 5 and metrics["steps"] == 1
