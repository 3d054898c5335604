"""The phases' one JSONL writer (phases/context.py `write_jsonl`): text from models, benchmark files and
documents reaches it, and no `str` it is given makes it fail. A lone surrogate (json.loads('"\\ud800"')
makes one; UTF-8 cannot encode it) is written as U+FFFD, and each phase's files read back as valid UTF-8."""

from __future__ import annotations

import json
from pathlib import Path

from rzero_worker.phases import generate, label, load_phase
from rzero_worker.phases.context import jsonl_bytes, parse_jsonl, write_jsonl
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import open_storage
from rzero_worker.task import (
    BenchmarkSpec,
    EvaluateTask,
    EvaluationSettings,
    GenerateTask,
    GenerationSettings,
    LabelingSettings,
    LabelTask,
    ModelInput,
)
from rzero_worker.text import valid_text
from support.artefacts import commit_jsonl_shards

LONE = json.loads('"\\ud800"')  # what a JSON document with a lone-surrogate escape reads as
REPLACED = "\ufffd"
PHASES_DIR = Path(generate.__file__).parent


def committed_rows(location, output: str, filename: str) -> list[dict]:
    data = open_storage(location).get_committed_bytes(output, filename)
    data.decode("utf-8")  # strict: the file is valid UTF-8
    return parse_jsonl(data)


def test_lone_surrogates_in_values_and_keys_are_written_as_the_replacement_character(tmp_path):
    rows = [{"question": f"a{LONE}b", f"key{LONE}": [f"\udfff{LONE}"]}, {"plain": "ünïcode ∑ 😀"}]

    write_jsonl(tmp_path / "rows.jsonl", rows)

    assert parse_jsonl((tmp_path / "rows.jsonl").read_bytes()) == [
        {"question": f"a{REPLACED}b", f"key{REPLACED}": [REPLACED * 2]}, {"plain": "ünïcode ∑ 😀"}]


def test_a_surrogate_pair_held_as_two_code_points_is_written_as_its_character():
    pair = json.loads('"\\ud83d"') + json.loads('"\\ude00"')

    assert valid_text(pair) == "😀"
    assert parse_jsonl(jsonl_bytes([{"text": pair}])) == [{"text": "😀"}]


def test_line_separators_stay_inside_their_row_for_any_line_splitter():
    rows = [{"text": "one\u2028two\u2029three\x85four\nfive"}, {"text": "next"}]

    data = jsonl_bytes(rows)

    assert [json.loads(line) for line in data.decode().splitlines()] == rows
    assert parse_jsonl(data) == rows


def test_no_phase_keeps_a_jsonl_writer_of_its_own():
    own = [path.name for path in PHASES_DIR.glob("*.py")
           if path.name != "context.py" and "json.dumps(row" in path.read_text()]
    assert own == []


def test_generate_writes_questions_and_invalid_outputs_holding_lone_surrogates(local_location, tmp_path, monkeypatch):
    outputs = [f"<question>What is 2+2?{LONE}</question> \\boxed{{4{LONE}}}", f"no tags {LONE}"]
    monkeypatch.setattr(generate, "challenger_outputs", lambda ctx, requested, seed_offset=0, **_: outputs[:requested])
    task = GenerateTask(run="demo", iteration=1, storage=local_location, output="iter-001/generate/shard-00000-of-00001",
                        challenger=ModelInput(source="unused"), settings=GenerationSettings(num_questions=2))

    assert run_phase(task, load_phase("generate"), cache_dir=tmp_path / "cache") == 0

    [question] = committed_rows(local_location, task.output, "questions.jsonl")
    assert (question["question"], question["answer"]) == (f"What is 2+2?{REPLACED}", f"4{REPLACED}")
    [invalid] = committed_rows(local_location, task.output, "invalid.jsonl")
    assert invalid["output"] == f"no tags {REPLACED}"


def test_label_writes_train_audit_and_oracle_rows_holding_lone_surrogates(local_location, tmp_path, monkeypatch):
    # The question shard carries the escape `\ud800`, as a JSON writer with ensure_ascii writes it.
    questions = [{"id": "q0", "question": f"What is 2+2? {LONE}", "answer": "4"},
                 {"id": f"q1{LONE}", "question": "2+2", "answer": "4"}]  # the arithmetic oracle reads this one
    commit_jsonl_shards(local_location, "iter-001/generate", "questions.jsonl", [questions])
    monkeypatch.setattr(label, "solver_answers", lambda ctx, questions, offset=0, engine=None: [["4", "4", "5"] for _ in questions])
    task = LabelTask(run="demo", iteration=1, storage=local_location, output="iter-001/label/shard-00000-of-00001",
                     solver=ModelInput(source="unused"), questions="iter-001/generate",
                     settings=LabelingSettings(samples=3, grading_workers=1, min_score=0.5, max_score=0.9),
                     oracle={"arithmetic": True, "sampleSize": 10})

    assert run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache") == 0

    for filename in ("train.jsonl", "audit.jsonl"):
        rows = committed_rows(local_location, task.output, filename)
        assert [(row["id"], row["question"], row["label"]) for row in rows] == [
            ("q0", f"What is 2+2? {REPLACED}", "4"), (f"q1{REPLACED}", "2+2", "4")]
    [checked] = committed_rows(local_location, task.output, "oracle.jsonl")
    assert checked["id"] == f"q1{REPLACED}" and checked["label_correct"] is True


def test_evaluate_writes_item_rows_holding_lone_surrogates(local_location, tmp_path, monkeypatch):
    from rzero_worker.phases import evaluate

    class Echo:  # a generator whose answers carry a lone surrogate
        def generate(self, prompts, n, sampling, seed):
            return [[f"\\boxed{{5}} {LONE}"] * n for _ in prompts]

    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": f"2+3? {LONE}", "answer": "5"}) + "\n")  # escaped: \ud800
    monkeypatch.setattr(evaluate, "_generator", lambda ctx: Echo())
    task = EvaluateTask(run="demo", iteration=0, storage=local_location, output="iter-000/evaluate/shard-00000-of-00001",
                        model=ModelInput(source="unused"),
                        settings=EvaluationSettings(benchmarks=[BenchmarkSpec(name="mine", path=str(bench))]))

    assert run_phase(task, load_phase("evaluate"), cache_dir=tmp_path / "cache") == 0

    [row] = committed_rows(local_location, task.output, "items-mine.jsonl")
    assert row["question"] == f"2+3? {REPLACED}" and row["output"] == f"\\boxed{{5}} {REPLACED}"
    assert row["correct"] is True


def test_warmup_writes_its_examples_with_the_shared_writer():
    from rzero_worker.phases import warmup

    # Its rows are generated arithmetic (warmup_data), so no document text reaches them; the writer is the one above.
    assert warmup.write_jsonl is write_jsonl
