"""The open-ended label phase: a scripted Solver and a scripted model Verifier (the default: the Solver's own model,
sharing its generator) through the generation seam. Tasks are kept by the spread of their scores; the rest are
dropped by reason, and the summary carries the judge-failure report."""

import json

import pytest

import rzero_worker.generation as generation
from rzero_worker.phases import phase_for
from rzero_worker.phases.runner import run_phase
from rzero_worker.prompts_openended import JUDGE_SYSTEM_PROMPT, OPEN_SOLVER_SYSTEM_PROMPT
from rzero_worker.storage import join_key, open_storage
from rzero_worker.task import LabelingSettings, LabelTask, ModelInput, OpenEndedInput, Sampling, TaskSettings, VerifierInput
from support.artefacts import commit_jsonl_shards, read_jsonl

JUDGE_MARK = JUDGE_SYSTEM_PROMPT.split("{description}")[0]
# task -> the Solver's responses; a response's score is its number of words (1..10), "???" is unparsable
SCRIPT = {
    "Apologise for a late reply.": ["sorry", "so sorry for the late reply, truly"],  # 1 and 7: spread 2/3
    "Invite a friend to dinner.": ["come", "eat"],  # 1 and 1: collapse
    "Complain about noise.": ["???", "please be quieter"],  # one readable score: no spread
    "Thank a teacher.": ["thanks", "one two three four five six seven eight nine ten"],  # 1 and 10: saturated
}


class Scripted:
    def generate(self, prompts, *, n, sampling, seed):
        out = []
        for chat in prompts:
            system, user = chat[0]["content"], chat[-1]["content"]
            if system == OPEN_SOLVER_SYSTEM_PROMPT:
                out.append(SCRIPT[user][:n])
            else:
                assert system.startswith(JUDGE_MARK) and sampling.temperature == 0
                response = user.split("\n\nResponse:\n", 1)[1]
                out.append(["I cannot score this" if response == "???" else
                            rf"\boxed{{overall: {len(response.split())}}}"])
        return out


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setattr(generation, "make_generator", lambda *a, **k: Scripted())


def test_tasks_are_kept_by_score_spread_and_the_rest_dropped_by_reason(local_location, tiny_model_dir, tmp_path,
                                                                       scripted):
    commit_jsonl_shards(local_location, "iter-001/generate", "questions.jsonl",
                        [[{"id": f"t{i}", "question": t, "answer": None} for i, t in enumerate(SCRIPT)]])
    model = ModelInput(source=str(tiny_model_dir))
    domain = TaskSettings(kind="open-ended", description="short messages", min_spread=0.1, max_spread=0.9)
    task = LabelTask(run="demo", iteration=1, storage=local_location, output="iter-001/label/shard-00000-of-00001",
                     solver=model, questions="iter-001/generate",
                     settings=LabelingSettings(samples=2, sampling=Sampling(max_tokens=12), audit_size=4),
                     open_ended=OpenEndedInput(task=domain, judge=VerifierInput(model=model)))

    assert run_phase(task, phase_for(task), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(local_location)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["kept"] == 1 and metrics["dropped"] == {"no_spread": 1, "score_collapse": 1, "saturated": 1}
    [kept] = read_jsonl(storage, join_key(task.output, "train.jsonl"))
    assert kept["question"] == "Apologise for a late reply." and kept["score"] == pytest.approx(2 / 3)
    judge = metrics["judge"]
    assert (judge["judged"], judge["scored"], judge["unparsable"], judge["unavailable"]) == (8, 7, 1, 0)
    assert judge["tasks_scored"] == 3 and judge["tasks_collapsed"] == 1
    assert judge["length_bias"] > 0.9  # this judge scores by length, and the report says so
    audit = read_jsonl(storage, join_key(task.output, "audit.jsonl"))
    assert audit[2]["scores"] == [None, {"overall": 3}] and audit[2]["judge_outputs"][0] == "I cannot score this"
