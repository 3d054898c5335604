"""Phase `evaluate`: every benchmark scored its own way, shards that together cover every item, per-item
outputs stored, layout mismatches refused as configuration errors (the tiny model's answers are random:
extraction and grading are checked against what the stored outputs say)."""

import json

import pytest

from rzero_worker.benchmark_presets import PRESETS
from rzero_worker.benchmarks import Benchmark, BenchmarkItem, load_benchmark, merge_scores, rows_score, score_entry
from rzero_worker.benchmarks.answers import guess_letter, judge, predict
from rzero_worker.cli import main as worker_main
from rzero_worker.phases import load_phase
from rzero_worker.phases.context import ConfigurationError
from rzero_worker.phases.evaluate import score_outputs
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import is_committed, join_key, open_storage
from rzero_worker.task import BenchmarkSpec, EvaluateTask, EvaluationSettings, ModelInput, Shard
from support.artefacts import read_jsonl, summary_metrics
from support.benchmark_files import PUBLISHED_ROWS, write_all_published, write_published


def evaluate_task(location, model_dir, benchmarks, shard: Shard | None = None, **settings) -> EvaluateTask:
    shard = shard or Shard()
    return EvaluateTask(
        run="demo",
        iteration=0,
        storage=location,
        output=f"iter-000/evaluate/{shard.key}",
        shard=shard,
        model=ModelInput(source=str(model_dir)),
        settings=EvaluationSettings(benchmarks=benchmarks, **{"max_tokens": 12, "batch_size": 4, **settings}),
    )


def test_predictions_are_graded_by_math_equivalence_not_string_equality(pool):
    items = [
        BenchmarkItem("a", "half?", "\\frac{1}{2}"),
        BenchmarkItem("b", "ten?", "10"),
        BenchmarkItem("c", "seven?", "7"),
        BenchmarkItem("d", "three?", "3"),
    ]
    outputs = ["so it is \\boxed{0.5}", "I think \\boxed{11}", "no box: 7", "\\boxed{2} wait, \\boxed{3}"]

    rows = score_outputs(Benchmark("custom", items), items, outputs, pool)

    assert [(row["prediction"], row["correct"]) for row in rows] == [("0.5", True), ("11", False), (None, False), ("3", True)]
    assert rows[0] == {"id": "a", "question": "half?", "gold": "\\frac{1}{2}", "prediction": "0.5", "correct": True,
                       "output": "so it is \\boxed{0.5}"}
    assert rows_score(rows) == score_entry(2, 4)


def test_evaluate_scores_custom_benchmarks_and_stores_per_item_outputs(storage_location, tiny_model_dir, tmp_path):
    gsm8k = tmp_path / "mini-gsm8k.jsonl"
    gsm8k.write_text(
        json.dumps({"question": "Tom has 2 apples and buys 3. How many?", "answer": "2+3=5\n#### 5"}) + "\n"
        + json.dumps({"question": "What is 1,000 + 1?", "answer": "#### 1,001"}) + "\n"
    )
    benchmarks = [
        BenchmarkSpec(name="gsm8k-mini", path=str(gsm8k), answer_format="gsm8k"),
        BenchmarkSpec(name="arithmetic", kind="arithmetic", size=3, seed=1),
    ]
    task = evaluate_task(storage_location, tiny_model_dir, benchmarks)

    assert run_phase(task, load_phase("evaluate"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(storage_location)
    assert is_committed(storage, task.output)
    scores = json.loads(storage.get_bytes(join_key(task.output, "scores.json")))
    assert set(scores) == {"gsm8k-mini", "arithmetic"}
    items = read_jsonl(storage, join_key(task.output, "items-gsm8k-mini.jsonl"))
    assert [(row["question"], row["gold"]) for row in items] == [
        ("Tom has 2 apples and buys 3. How many?", "5"),
        ("What is 1,000 + 1?", "1001"),
    ]
    assert len(read_jsonl(storage, join_key(task.output, "items-arithmetic.jsonl"))) == 3
    for name, score in scores.items():
        rows = read_jsonl(storage, join_key(task.output, f"items-{name}.jsonl"))
        assert score == score_entry(sum(row["correct"] for row in rows), len(rows))
    metrics = summary_metrics(storage, task.output)
    assert metrics["scores"] == scores
    assert metrics["mean_accuracy"] == pytest.approx(sum(s["accuracy"] for s in scores.values()) / 2, abs=1e-6)
    assert metrics["math_average"] is None and metrics["overall_average"] is None  # no paper preset


def test_the_ten_presets_run_sharded_and_the_shards_cover_every_item_once(local_location, tiny_model_dir, tmp_path, pool):
    files = write_all_published(tmp_path / "published")
    specs = [BenchmarkSpec(preset=name, path=str(path), samples=2 if name == "aime24" else 0)
             for name, path in files.items()]
    outputs = []
    for index in range(2):
        task = evaluate_task(local_location, tiny_model_dir, specs, Shard(index=index, count=2), max_tokens=8)
        assert run_phase(task, load_phase("evaluate"), cache_dir=tmp_path / "cache") == 0
        outputs.append(task.output)

    storage = open_storage(local_location)
    shard_metrics = [summary_metrics(storage, output) for output in outputs]
    merged = merge_scores(metrics["scores"] for metrics in shard_metrics)
    for name, path in files.items():
        benchmark = load_benchmark(BenchmarkSpec(preset=name, path=str(path)))
        shard_rows = [read_jsonl(storage, join_key(output, f"items-{name}.jsonl")) for output in outputs]
        # Shard i holds items i, i+2, ...: together every item exactly once, in a balanced split.
        assert [row["id"] for row in shard_rows[0]] == [item.id for item in benchmark.items[0::2]]
        assert [row["id"] for row in shard_rows[1]] == [item.id for item in benchmark.items[1::2]]
        rows = shard_rows[0] + shard_rows[1]
        items = {item.id: item for item in benchmark.items}
        assert sorted(row["gold"] for row in rows) == sorted(item.gold for item in benchmark.items)
        check_rows_follow_from_their_outputs(benchmark, items, rows, pool)
        assert merged[name] == rows_score(rows, preset=name, multiple_choice=benchmark.scoring == "choice",
                                          k=2 if name == "aime24" else 0)
    [aime] = [row for output in outputs for row in read_jsonl(storage, join_key(output, "items-aime24.jsonl"))]
    assert len(aime["sample_predictions"]) == 2 and 0 <= aime["samples_correct"] <= 2
    assert shard_metrics[0]["math_average"] is not None and shard_metrics[0]["overall_average"] is not None


def check_rows_follow_from_their_outputs(benchmark, items, rows, pool):
    """Each stored prediction and verdict is what the benchmark's scoring makes of the stored output."""
    for row in rows:
        item = items[row["id"]]
        prediction, guessed = predict(benchmark.scoring, row["output"], item_id=item.id,
                                      option_count=len(item.options), fallback="guess", options=item.options)
        assert row["prediction"] == prediction
        assert row["correct"] == (judge(benchmark.scoring, [prediction], [item.gold], pool)[0] is True)
        if benchmark.multiple_choice:
            assert row["guessed"] == guessed
            if guessed:  # the tiny model writes no letters: the reference's guess, reproducibly
                assert prediction == guess_letter(item.id, len(item.options))


def test_a_held_out_file_of_your_own_grades_as_free_form_and_as_multiple_choice(local_location, tiny_model_dir,
                                                                              tmp_path, pool):
    held_out = tmp_path / "held-out.jsonl"
    held_out.write_text("".join(json.dumps(row) + "\n" for row in [
        {"id": "q1", "question": "Which str method joins an iterable?", "answer": "str.join",
         "options": ["str.split", "str.concat", "str.join", "str.format"]},
        {"id": "q2", "question": "What is bool([])?", "answer": "False", "options": ["True", "False"]},
    ]))
    specs = [BenchmarkSpec(name="docs", path=str(held_out), answer_type="text"),
             BenchmarkSpec(name="docs-choice", path=str(held_out), answer_type="choice")]
    task = evaluate_task(local_location, tiny_model_dir, specs, choice_fallback="guess")

    assert run_phase(task, load_phase("evaluate"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(local_location)
    scores = summary_metrics(storage, task.output)["scores"]
    for spec in specs:
        benchmark = load_benchmark(spec)
        rows = read_jsonl(storage, join_key(task.output, f"items-{spec.name}.jsonl"))
        assert [(row["id"], row["gold"]) for row in rows] == (
            [("q1", "str.join"), ("q2", "False")] if spec.name == "docs" else [("q1", "C"), ("q2", "B")])
        check_rows_follow_from_their_outputs(benchmark, {item.id: item for item in benchmark.items}, rows, pool)
        assert scores[spec.name] == rows_score(rows, multiple_choice=benchmark.multiple_choice)
    assert "guessed" in scores["docs-choice"] and "guessed" not in scores["docs"]


def test_a_file_that_does_not_match_its_preset_fails_the_phase_as_a_configuration_error(
    local_location, tiny_model_dir, tmp_path, monkeypatch, capsys
):
    rows = [{key: value for key, value in row.items() if key != "answer_letter"} for row in PUBLISHED_ROWS["supergpqa"]]
    path = write_published(tmp_path, "supergpqa", rows)
    task = evaluate_task(local_location, tiny_model_dir, [BenchmarkSpec(preset="supergpqa", path=str(path))])

    with pytest.raises(ConfigurationError, match=r"benchmark 'supergpqa' .* line 1: missing field 'answer_letter'"):
        run_phase(task, load_phase("evaluate"), cache_dir=tmp_path / "cache")
    monkeypatch.setenv("RZERO_TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert worker_main(["evaluate", "--task-json", json.dumps(task.wire())]) == 2
    assert "missing field 'answer_letter'" in capsys.readouterr().err
    assert not is_committed(open_storage(local_location), task.output)


def test_an_unreadable_benchmark_is_a_configuration_error(local_location, tiny_model_dir, tmp_path):
    task = evaluate_task(local_location, tiny_model_dir, [BenchmarkSpec(name="gone", path=str(tmp_path / "x.jsonl"))])
    with pytest.raises(ConfigurationError, match="benchmark path .*x.jsonl.*no such file"):
        run_phase(task, load_phase("evaluate"), cache_dir=tmp_path / "cache")
    assert not is_committed(open_storage(local_location), task.output)


def test_a_benchmark_on_s3_is_read_through_the_run_storage_endpoint(s3_location, tiny_model_dir, tmp_path):
    bucket = s3_location.uri[len("s3://") :].split("/")[0]
    storage = open_storage(s3_location.model_copy(update={"uri": f"s3://{bucket}"}))
    storage.put_bytes("benchmarks/plain.jsonl", (json.dumps({"question": "1+1?", "answer": "2"}) + "\n").encode())
    spec = BenchmarkSpec(name="plain", path=f"s3://{bucket}/benchmarks/plain.jsonl")
    task = evaluate_task(s3_location, tiny_model_dir, [spec])

    run_phase(task, load_phase("evaluate"), cache_dir=tmp_path / "cache")

    rows = read_jsonl(open_storage(s3_location), join_key(task.output, "items-plain.jsonl"))
    assert [(row["question"], row["gold"]) for row in rows] == [("1+1?", "2")]


def test_answer_lengths_follow_the_benchmark_then_the_run_then_the_presets_reference():
    from rzero_worker.phases.evaluate import answer_tokens

    gsm8k, bbeh, custom = (BenchmarkSpec(preset="gsm8k", path="g"), BenchmarkSpec(preset="bbeh", path="b"),
                           BenchmarkSpec(name="c", path="c"))
    benchmarks = {spec.name: Benchmark(spec.name, [], PRESETS.get(spec.name)) for spec in (gsm8k, bbeh, custom)}
    task = EvaluateTask(run="r", iteration=0, storage={"uri": "/tmp/x"}, output="o", model={"source": "m"},
                        settings=EvaluationSettings(benchmarks=[gsm8k, bbeh, custom]))
    assert [answer_tokens(s, benchmarks[s.name], task) for s in (gsm8k, bbeh, custom)] == [4096, 8192, 4096]
    task.settings.max_tokens = 256
    assert answer_tokens(gsm8k.model_copy(update={"max_tokens": 32}), benchmarks["gsm8k"], task) == 32
    assert answer_tokens(bbeh, benchmarks["bbeh"], task) == 256
