"""generate -> label -> evaluate on the real SmolLM2-135M-Instruct GGUF, with tiny budgets (minutes on CPU).

Run with: .venv/bin/pytest -m slow tests/worker/test_smollm2_slow.py
"""

import json
import time

import pytest

from rzero_worker.phases import load_phase
from rzero_worker.phases.runner import run_phase
from rzero_worker.storage import commit, is_committed, join_key, open_storage
from rzero_worker.task import (
    BenchmarkSpec,
    EvaluateTask,
    EvaluationSettings,
    GenerateTask,
    GenerationSettings,
    LabelingSettings,
    LabelTask,
    ModelInput,
    Sampling,
    Shard,
)

pytestmark = pytest.mark.slow

SMOLLM2 = ModelInput(source="builtin:smollm2-135m-instruct")
TOKENS = 64
# SmolLM2 rarely closes a <question> within 64 tokens, so a second generate shard is written by hand
# (standing in for another generate worker): label then has real questions to answer either way.
SEEDED_QUESTIONS = [
    {"id": "i001-s00001-000000", "question": "What is 7 + 5?", "answer": "12"},
    {"id": "i001-s00001-000001", "question": "What is 3 times 4?", "answer": "12"},
]


def commit_seeded_shard(storage) -> None:
    prefix = "iter-001/generate/shard-00001-of-00002"
    storage.put_bytes(join_key(prefix, "questions.jsonl"), "".join(json.dumps(q) + "\n" for q in SEEDED_QUESTIONS).encode())
    commit(storage, prefix)


def metrics_of(storage, output):
    return json.loads(storage.get_bytes(join_key(output, "summary.json")))["metrics"]


def test_generate_label_evaluate_on_smollm2(smollm2_gguf, local_location, tmp_path):
    common = dict(run="slow", storage=local_location, seed=1)
    generate = GenerateTask(
        **common, iteration=1, output="iter-001/generate/shard-00000-of-00002", challenger=SMOLLM2,
        shard=Shard(index=0, count=2),
        settings=GenerationSettings(num_questions=8, batch_size=4, sampling=Sampling(top_p=0.95, max_tokens=TOKENS)),
    )
    label = LabelTask(
        **common, iteration=1, output="iter-001/label/shard-00000-of-00001", solver=SMOLLM2,
        questions="iter-001/generate",
        settings=LabelingSettings(samples=3, sampling=Sampling(top_k=40, max_tokens=TOKENS), grading_workers=1),
    )
    evaluate = EvaluateTask(
        **common, iteration=0, output="iter-000/evaluate", model=SMOLLM2,
        settings=EvaluationSettings(
            benchmarks=[BenchmarkSpec(name="arithmetic", kind="arithmetic", size=4, seed=0)],
            max_tokens=TOKENS, batch_size=4,
        ),
    )
    storage = open_storage(local_location)
    commit_seeded_shard(storage)
    started = time.monotonic()
    for task in (generate, label, evaluate):
        assert run_phase(task, load_phase(task.phase), cache_dir=tmp_path / "cache") == 0
    print(f"SmolLM2 generate -> label -> evaluate took {time.monotonic() - started:.0f} s")

    assert all(is_committed(storage, task.output) for task in (generate, label, evaluate))
    generated, labelled, evaluated = (metrics_of(storage, task.output) for task in (generate, label, evaluate))
    assert generated["requested"] == 4
    assert generated["valid"] + generated["invalid"] + generated["duplicates"] == 4
    assert labelled["questions"] == generated["valid"] + len(SEEDED_QUESTIONS)
    assert labelled["kept"] + sum(labelled["dropped"].values()) == labelled["questions"]
    assert evaluated["scores"]["arithmetic"]["n"] == 4
    # The instruct model follows the chat format: its answers are real text, not token soup.
    items = storage.get_bytes(join_key(evaluate.output, "items-arithmetic.jsonl")).decode().splitlines()
    assert all(len(json.loads(line)["output"].split()) >= 3 for line in items)
