r"""Phase `label` with `labeling.verifier: veto`: a scripted Solver and a scripted Verifier through the generation
seam (make_generator), the exact arithmetic oracle checking every kept label. The Verifier's verdict decides which
kept rows the Solver trains on; every vetoed row is written with its reason, and the summary tells what the veto did
to label accuracy."""

import json

import pytest

import rzero_worker.generation as generation
from rzero_worker.phases import load_phase
from rzero_worker.phases.runner import run_phase
from rzero_worker.prompts import SOLVER_SYSTEM_PROMPT, VERIFIER_SYSTEM_PROMPT
from rzero_worker.storage import join_key, open_storage
from rzero_worker.task import LabelingSettings, LabelTask, ModelInput, Sampling, VerifierInput
from support.artefacts import commit_jsonl_shards, read_jsonl

# question -> (the Solver's 3 answers, the Verifier's output on the majority answer)
SCRIPT = {
    "What is 2+3?": (["5", "5", "6"], r"2+3=5. \boxed{correct}"),  # right label, approved
    "What is 4*4?": (["15", "15", "16"], r"4*4=16. \boxed{incorrect}"),  # wrong label, rejected
    "What is 10-3?": (["7", "7", "8"], r"I get \boxed{7}"),  # right label, unparsable verdict: vetoed
    "What is 9/3?": (["4", "4", "3"], r"\boxed{correct}"),  # wrong label, approved anyway
    "What is 1+1?": (["2", "2", "2"], r"\boxed{correct}"),  # agreement 1: out of the band, never judged
}


class ScriptedGenerator:
    """Answers Solver chats with boxed answers and Verifier chats with verdicts, from SCRIPT."""

    def __init__(self):
        self.verifier_prompts: list[str] = []

    def generate(self, prompts, *, n, sampling, seed):
        out = []
        for chat in prompts:
            system, user = chat[0]["content"], chat[-1]["content"]
            if system == SOLVER_SYSTEM_PROMPT:
                out.append([rf"\boxed{{{answer}}}" for answer in SCRIPT[user][0][:n]])
            else:
                assert system == VERIFIER_SYSTEM_PROMPT and sampling.temperature == 0 and n == 1
                self.verifier_prompts.append(user)
                question = user.split("\n")[1]
                out.append([SCRIPT[question][1]])
        return out


@pytest.fixture
def scripted(monkeypatch):
    made = []

    def make_generator(local, hints, **kwargs):
        made.append(local)
        return generator

    generator = ScriptedGenerator()
    monkeypatch.setattr(generation, "make_generator", make_generator)
    generator.made = made
    return generator


def veto_task(location, model_dir, verifier: VerifierInput | None = None) -> LabelTask:
    return LabelTask(
        run="demo", iteration=1, storage=location, output="iter-001/label/shard-00000-of-00001",
        solver=ModelInput(source=str(model_dir)), questions="iter-001/generate",
        settings=LabelingSettings(samples=3, sampling=Sampling(max_tokens=12), grading_workers=1, verifier="veto"),
        verifier=verifier or VerifierInput(model=ModelInput(source=str(model_dir)), max_tokens=64),
    )


def commit_questions(location) -> None:
    questions = [{"id": f"q{i}", "question": text, "answer": "0"} for i, text in enumerate(SCRIPT)]
    commit_jsonl_shards(location, "iter-001/generate", "questions.jsonl", [questions])


def test_the_veto_keeps_only_approved_labels_and_reports_its_effect_on_label_accuracy(
        local_location, tiny_model_dir, tmp_path, scripted):
    commit_questions(local_location)
    task = veto_task(local_location, tiny_model_dir)

    assert run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(local_location)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    train = read_jsonl(storage, join_key(task.output, "train.jsonl"))
    vetoed = read_jsonl(storage, join_key(task.output, "vetoed.jsonl"))
    assert [(row["id"], row["label"]) for row in train] == [("q0", "5"), ("q3", "4")]
    assert [(row["id"], row["reason"], row["label_correct"]) for row in vetoed] == [
        ("q1", "verifier_rejected", False), ("q2", "verifier_unparsable", True)]
    assert vetoed[1]["verifier_output"] == r"I get \boxed{7}"
    assert metrics["kept"] == 2
    assert {k: v for k, v in metrics["dropped"].items() if v} == {
        "out_of_band": 1, "verifier_rejected": 1, "verifier_unparsable": 1}
    assert metrics["dropped"]["verifier_unavailable"] == 0
    # the headline label accuracy is the trained-on set's: q0 right, q3 wrong
    assert (metrics["oracle_checked"], metrics["oracle_correct"], metrics["label_accuracy"]) == (2, 1, 0.5)
    assert metrics["verifier"] == {
        "source": "model", "judged": 4, "approved": 2, "rejected": 1, "unparsable": 1, "unavailable": 0,
        "oracle": "arithmetic", "checked_before": 4, "correct_before": 2, "checked_after": 2, "correct_after": 1,
        "correct_vetoed": 1, "wrong_vetoed": 1, "oracle_compared": 4, "oracle_agreed": 2,
    }
    # the Verifier saw each kept question with its majority answer, and the out-of-band one not at all
    assert sorted(scripted.verifier_prompts) == sorted(
        f"Problem:\n{q}\n\nProposed final answer: {a}" for q, a in
        [("What is 2+3?", "5"), ("What is 4*4?", "15"), ("What is 10-3?", "7"), ("What is 9/3?", "4")])
    assert len(scripted.made) == 1  # the Verifier is the label Solver's model: one generator serves both


def test_a_verifier_that_gives_no_output_vetoes_everything_it_was_asked(local_location, tiny_model_dir, tmp_path,
                                                                        scripted, monkeypatch):
    """Nothing passes unjudged: a generator that returns fewer outputs than pairs leaves those pairs unavailable."""
    commit_questions(local_location)
    monkeypatch.setattr(ScriptedGenerator, "generate", lambda self, prompts, **kw: [
        [rf"\boxed{{{a}}}" for a in SCRIPT[c[-1]["content"]][0]] for c in prompts]
        if prompts[0][0]["content"] == SOLVER_SYSTEM_PROMPT else [])
    task = veto_task(local_location, tiny_model_dir, VerifierInput(model=ModelInput(source=f"{tiny_model_dir}/")))

    run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache")

    storage = open_storage(local_location)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["kept"] == 0 and metrics["dropped"]["verifier_unavailable"] == 4
    assert metrics["verifier"]["oracle_compared"] == 0 and metrics["label_accuracy"] is None
    assert storage.get_bytes(join_key(task.output, "train.jsonl")) == b""
    assert len(scripted.made) == 2  # another model source: the Verifier has a generator of its own


def test_a_label_task_with_the_veto_needs_a_verifier(local_location, tiny_model_dir):
    task = veto_task(local_location, tiny_model_dir).model_dump()
    task["verifier"] = None
    with pytest.raises(ValueError, match="verifier"):
        LabelTask.model_validate(task)


def test_with_a_trained_verifier_the_label_phase_writes_its_examples_of_known_truth(
        local_location, tiny_model_dir, tmp_path, scripted):
    """verification.jsonl (verifier_examples.py): oracle-checked labels with the oracle's answer and the other
    classes' answers, and a unanimous label the band dropped as a consensus example with no wrong answer to pair."""
    commit_questions(local_location)
    task = veto_task(local_location, tiny_model_dir).model_copy(update={"verification_consensus": 0.9})

    run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache")

    storage = open_storage(local_location)
    examples = read_jsonl(storage, join_key(task.output, "verification.jsonl"))
    assert sorted((e["id"], e["answer"], e["correct"], e["source"]) for e in examples) == [
        ("q0", "5", True, "oracle"), ("q0", "6", False, "oracle"),  # right label: the other class is wrong
        ("q1", "15", False, "oracle"), ("q1", "16", True, "oracle"),  # wrong label: the oracle's answer is right
        ("q2", "7", True, "oracle"), ("q2", "8", False, "oracle"),
        ("q3", "3", True, "oracle"), ("q3", "4", False, "oracle"),
        ("q4", "2", True, "consensus"),  # 3 of 3 agree, out of the band, no oracle check
    ]
    assert all(e["question"] == list(SCRIPT)[int(e["id"][1:])] for e in examples)
    metrics = json.loads(storage.get_bytes(join_key(task.output, "summary.json")))["metrics"]
    assert metrics["verification_examples"] == 9
    assert "class_answers" not in read_jsonl(storage, join_key(task.output, "train.jsonl"))[0]


def test_without_a_trained_verifier_no_examples_are_written(local_location, tiny_model_dir, tmp_path, scripted):
    commit_questions(local_location)
    task = veto_task(local_location, tiny_model_dir)
    run_phase(task, load_phase("label"), cache_dir=tmp_path / "cache")
    assert not [key for key in open_storage(local_location).list(task.output) if key.endswith("verification.jsonl")]
