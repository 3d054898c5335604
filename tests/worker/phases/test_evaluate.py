"""Phase `evaluate`: scoring against gold answers with math-verify, and the phase end to end."""

import json

import pytest

from rzero_worker.benchmarks import BenchmarkItem, wilson_interval
from rzero_worker.grading import GradingPool
from rzero_worker.phases import load_phase
from rzero_worker.phases.context import ConfigurationError
from rzero_worker.phases.evaluate import benchmark_score, score_items
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import is_committed, join_key, open_storage
from rzero_worker.task import BenchmarkSpec, EvaluateTask, EvaluationSettings, ModelInput
from support.artefacts import read_jsonl


def evaluate_task(location, model_dir, benchmarks) -> EvaluateTask:
    return EvaluateTask(
        run="demo",
        iteration=0,
        storage=location,
        output="iter-000/evaluate",
        model=ModelInput(source=str(model_dir)),
        settings=EvaluationSettings(benchmarks=benchmarks, max_tokens=12, batch_size=4),
    )




@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=1, timeout_s=5.0) as grading_pool:
        yield grading_pool


def test_predictions_are_graded_by_math_equivalence_not_string_equality(pool):
    items = [
        BenchmarkItem("a", "half?", "\\frac{1}{2}"),
        BenchmarkItem("b", "ten?", "10"),
        BenchmarkItem("c", "seven?", "7"),
        BenchmarkItem("d", "three?", "3"),
    ]
    outputs = ["so it is \\boxed{0.5}", "I think \\boxed{11}", "no box: 7", "\\boxed{2} wait, \\boxed{3}"]

    rows = score_items(items, outputs, pool)

    assert [(row["prediction"], row["correct"]) for row in rows] == [
        ("0.5", True),
        ("11", False),
        (None, False),
        ("3", True),
    ]
    assert rows[0] == {
        "id": "a",
        "question": "half?",
        "gold": "\\frac{1}{2}",
        "prediction": "0.5",
        "correct": True,
        "output": "so it is \\boxed{0.5}",
    }
    score = benchmark_score(rows)
    assert score["accuracy"] == 0.5 and score["n"] == 4
    assert score["ci95"] == list(wilson_interval(2, 4))


def test_evaluate_scores_every_benchmark_and_stores_per_item_outputs(storage_location, tiny_model_dir, tmp_path):
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
        correct = sum(row["correct"] for row in rows)
        assert score == {"accuracy": correct / len(rows), "ci95": list(wilson_interval(correct, len(rows))),
                         "n": len(rows), "correct": correct}
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["scores"] == scores
    assert metrics["mean_accuracy"] == pytest.approx(sum(s["accuracy"] for s in scores.values()) / 2)


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
