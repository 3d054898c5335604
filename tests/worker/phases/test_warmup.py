"""Phase `warmup`: SFT on generated examples of both formats, committed, and reused from the cache."""

import json

import pytest

from rzero_worker.phases import load_phase
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import is_committed, join_key, open_storage, read_manifest
from rzero_worker.task import DeviceHints, ModelInput, WarmupSettings, WarmupTask
from support.artefacts import read_jsonl


def warmup_task(location, model_dir, output="iter-000/warmup", **settings) -> WarmupTask:
    return WarmupTask(
        run="demo", iteration=0, storage=location, output=output, seed=5,
        device=DeviceHints(device="cpu"), model=ModelInput(source=str(model_dir)),
        settings=WarmupSettings(enabled=True, steps=2, batch_size=2, max_length=256, probe_samples=2, **settings),
    )


def test_the_warm_up_trains_commits_and_a_second_run_reuses_the_cached_model(local_location, tiny_model_dir, tmp_path):
    storage = open_storage(local_location)
    first = warmup_task(local_location, tiny_model_dir, output="run-a/iter-000/warmup")

    assert run_phase(first, load_phase("warmup"), cache_dir=tmp_path / "cache") == 0

    assert is_committed(storage, first.output)
    assert storage.exists(join_key(first.output, "model/model.safetensors"))
    metrics = json.loads(storage.get_bytes(join_key(first.output, "summary.json")))["metrics"]
    assert metrics["steps"] == 2 and metrics["examples"] == 4 and metrics["cached"] is False
    assert metrics["final_loss"] > 0 and 0 <= metrics["probe_challenger_valid"] <= 1
    examples = read_jsonl(storage, join_key(first.output, "examples.jsonl"))
    assert {e["role"] for e in examples} <= {"challenger", "solver"} and len(examples) == 4

    second = warmup_task(local_location, tiny_model_dir, output="run-b/iter-000/warmup")
    run_phase(second, load_phase("warmup"), cache_dir=tmp_path / "cache")

    again = json.loads(storage.get_bytes(join_key(second.output, "summary.json")))["metrics"]
    assert again["cached"] is True and again["final_loss"] == metrics["final_loss"]
    weights = lambda task: next(e.sha256 for e in read_manifest(storage, task.output).files  # noqa: E731
                                if e.path == "model/model.safetensors")
    assert weights(first) == weights(second)


def test_the_cache_key_changes_with_what_the_result_depends_on(local_location, tiny_model_dir):
    from rzero_worker.models import LocalModel
    from rzero_worker.phases.warmup import cache_key

    local = LocalModel(path=tiny_model_dir)
    base = warmup_task(local_location, tiny_model_dir)
    key = cache_key(base, local)
    assert cache_key(warmup_task(local_location, tiny_model_dir, output="elsewhere"), local) == key
    assert cache_key(warmup_task(local_location, tiny_model_dir, learning_rate=3e-4), local) != key
    assert cache_key(base.model_copy(update={"seed": 6}), local) != key
    assert cache_key(warmup_task(local_location, tiny_model_dir, verifier_examples=0.3), local) != key
    assert cache_key(warmup_task(local_location, tiny_model_dir, verifier_examples=0), local) == key  # same data


def test_a_warm_up_with_verifier_examples_trains_commits_and_probes_the_verdict_format(
    local_location, tiny_model_dir, tmp_path
):
    storage = open_storage(local_location)
    task = warmup_task(local_location, tiny_model_dir, verifier_examples=1.0)

    assert run_phase(task, load_phase("warmup"), cache_dir=tmp_path / "cache") == 0

    assert is_committed(storage, task.output)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["steps"] == 2 and metrics["final_loss"] > 0
    assert 0 <= metrics["probe_verifier_accuracy"] <= metrics["probe_verifier_parsable"] <= 1
    assert {e["role"] for e in read_jsonl(storage, join_key(task.output, "examples.jsonl"))} == {"verifier"}


def test_only_the_top_layers_train_when_asked(tiny_model_dir):
    from rzero_worker.models import LocalModel, load_model
    from rzero_worker.phases.warmup import freeze_all_but_top_layers

    model, _ = load_model(LocalModel(path=tiny_model_dir), DeviceHints(device="cpu"), trainable=True)
    everything = sum(p.numel() for p in model.parameters())

    top = freeze_all_but_top_layers(model, 1)

    assert 0 < top < everything
    assert not model.get_input_embeddings().weight.requires_grad
    assert all(p.requires_grad for p in model.get_decoder().layers[-1].parameters())
    assert not any(p.requires_grad for p in model.get_decoder().layers[0].parameters())


@pytest.mark.parametrize("seed", [0, 1])
def test_generated_examples_are_in_the_two_formats_and_their_answers_are_exact(seed):
    from rzero_worker.grading import extract_boxed, parse_challenger_output
    from rzero_worker.oracles.arithmetic import solve
    from rzero_worker.warmup_data import warmup_examples

    examples = warmup_examples(50, 8, seed, challenger_share=0.5, word_share=0.25)

    assert warmup_examples(50, 8, seed) == examples  # seeded
    roles = [e["role"] for e in examples]
    assert 120 < roles.count("challenger") < 280
    assert all(len(set(roles[i : i + 8])) == 1 for i in range(0, 400, 8))  # one role per batch: no padding waste
    checked = 0
    for example in examples:
        text = example["completion"][0]["content"]
        if example["role"] == "challenger":
            question, answer = parse_challenger_output(text)
        else:
            question, answer = example["prompt"][-1]["content"], extract_boxed(text)
        assert question and answer
        exact = solve(question)
        if exact is not None:  # arithmetic questions: the answer taught is the true one
            assert exact == answer
            checked += 1
    assert checked > 200  # most examples are arithmetic the oracle can read


@pytest.mark.parametrize("seed", [0, 1])
def test_verifier_examples_are_the_verifier_prompt_with_right_and_near_miss_answers_half_each(seed):
    from rzero_worker.grading import parse_verdict
    from rzero_worker.oracles.arithmetic import solve
    from rzero_worker.prompts import verifier_messages
    from rzero_worker.warmup_data import warmup_examples

    examples = warmup_examples(60, 8, seed, challenger_share=0.5, word_share=0.25, verifier_share=0.3)

    assert warmup_examples(60, 8, seed, verifier_share=0.3) == examples  # seeded
    roles = [e["role"] for e in examples]
    assert 80 < roles.count("verifier") < 240 and roles.count("challenger") and roles.count("solver")
    assert all(len(set(roles[i : i + 8])) == 1 for i in range(0, 480, 8))  # one role per batch
    verdicts, gaps = [], []
    for example in (e for e in examples if e["role"] == "verifier"):
        question, proposed = example["prompt"][-1]["content"].split("\n\nProposed final answer: ")
        question = question.removeprefix("Problem:\n")
        assert example["prompt"] == verifier_messages(question, proposed)
        verdict = parse_verdict(example["completion"][0]["content"])
        verdicts.append(verdict)
        exact = solve(question)
        if exact is not None:  # arithmetic: the verdict taught is the true one
            assert verdict is (exact == proposed)
            if not verdict:
                gaps.append(abs(int(exact) - int(proposed)))
    assert None not in verdicts and abs(verdicts.count(True) - verdicts.count(False)) <= 1  # balanced
    assert gaps and gaps.count(1) < len(gaps)  # near misses: off by one, and other kinds too


def test_verifier_examples_take_whole_batches_from_the_others_and_none_are_drawn_without_a_share():
    from rzero_worker.warmup_data import warmup_examples

    without = warmup_examples(20, 4, 3, challenger_share=0.5)
    assert "verifier" not in {e["role"] for e in without}
    everything = warmup_examples(20, 4, 3, challenger_share=0.5, verifier_share=1.0)
    assert {e["role"] for e in everything} == {"verifier"} and len(everything) == len(without)


def test_an_open_ended_warm_up_trains_on_the_open_ended_formats_and_probes_tasks_and_score_boxes(
    local_location, tiny_model_dir, tmp_path
):
    from rzero_worker.phases.warmup import cache_key
    from rzero_worker.models import LocalModel
    from rzero_worker.task import TaskSettings

    storage = open_storage(local_location)
    open_ended = TaskSettings(kind="open-ended", description="short emails", rubric=["clarity", "tone"])
    task = warmup_task(local_location, tiny_model_dir, verifier_examples=0.5).model_copy(
        update={"open_ended_task": open_ended})

    assert run_phase(task, load_phase("warmup"), cache_dir=tmp_path / "cache") == 0

    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["steps"] == 2 and metrics["final_loss"] > 0
    assert 0 <= metrics["probe_task_readable"] <= 1 and 0 <= metrics["probe_solver_plain"] <= 1
    assert 0 <= metrics["probe_scores_readable"] <= 1 and metrics["probe_scores_distinct"] <= 2
    assert "probe_challenger_valid" not in metrics  # the verifiable probe is not run
    contents = [e["completion"][0]["content"] for e in read_jsonl(storage, join_key(task.output, "examples.jsonl"))]
    assert all("<question>" not in text for text in contents)
    local = LocalModel(path=tiny_model_dir)
    verifiable = warmup_task(local_location, tiny_model_dir, verifier_examples=0.5)
    assert cache_key(task, local) != cache_key(verifiable, local)
