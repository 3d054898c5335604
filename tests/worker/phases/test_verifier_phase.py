"""Phase `verifier` (spec.verifier.mode trained): GRPO on verification examples, held-out accuracy before and after,
the reward, weights that move, the person's audit verdicts, carry-forward without examples, kill-and-resume."""

import pytest

from rzero_worker.phases import load_phase
from rzero_worker.phases.context import PhaseContext, jsonl_bytes
from rzero_worker.phases.runner import run_phase
from rzero_worker.phases.verifier import VerifierReward, read_examples, verdict_correct
from rzero_worker.storage import commit, is_committed, join_key, open_storage
from rzero_worker.task import AuditVerdict, ModelInput, VerifierGRPOSettings, VerifierTask, VerifierTrainingSettings
from support.artefacts import die_after_checkpoint, summary_metrics


def example(qid: str, answer: str, correct: bool, source: str = "consensus") -> dict:
    return {"id": qid, "question": f"What is {qid}?", "answer": answer, "correct": correct, "source": source}


EXAMPLES = [
    example("q1", "4", True), example("q1", "5", False), example("q2", "9", True), example("q2", "8", False),
    example("q3", "7", True, "oracle"), example("q3", "1", False, "oracle"), example("q4", "2", True),
    example("q5", "6", False, "oracle"),
]


def verifier_task(location, model_dir, *, steps=2, audit=()) -> VerifierTask:
    grpo = VerifierGRPOSettings(steps=steps, group_size=2, rollout_batch_size=2, update_batch_size=2,
                                max_completion_tokens=8, learning_rate=1e-2, save_every=1)
    return VerifierTask(
        run="demo", iteration=1, storage=location, output="iter-001/verifier", verifier=ModelInput(source=str(model_dir)),
        examples="iter-001/label", audit=list(audit), max_tokens=8, batch_size=4,
        settings=VerifierTrainingSettings(grpo=grpo, held_out=0.4),
    )


def commit_examples(location, shards, audit=()) -> None:
    """Committed label shards holding verification.jsonl (and audit.jsonl: `audit` in the first shard)."""
    storage = open_storage(location)
    for index, rows in enumerate(shards):
        prefix = f"iter-001/label/shard-{index:05d}-of-{len(shards):05d}"
        storage.put_bytes(join_key(prefix, "verification.jsonl"), jsonl_bytes(rows))
        storage.put_bytes(join_key(prefix, "audit.jsonl"), jsonl_bytes(list(audit) if index == 0 else []))
        commit(storage, prefix)


class KilledAfterStep(RuntimeError):
    pass


def test_the_reward_is_agreement_with_the_truth_and_an_unparsable_verdict_earns_nothing():
    completions = [[{"role": "assistant", "content": text}] for text in
                   ("ok \\boxed{correct}", "\\boxed{incorrect}", "\\boxed{correct}", "I think it is right", "\\boxed{4}")]
    rewards = VerifierReward()(prompts=[None] * 5, completions=completions, correct=[True, True, False, True, False])
    assert rewards == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert verdict_correct(None, False) is False


def test_the_verifier_trains_on_every_shard_and_reports_accuracy_before_and_after(local_location, tiny_model_dir, tmp_path):
    commit_examples(local_location, [EXAMPLES[:4], EXAMPLES[4:]])
    task = verifier_task(local_location, tiny_model_dir)

    assert run_phase(task, load_phase("verifier"), cache_dir=tmp_path / "cache") == 0

    storage = open_storage(local_location)
    assert is_committed(storage, task.output)
    metrics = summary_metrics(storage, task.output)
    assert metrics["examples"] == 8 and metrics["train_examples"] + metrics["held_out"] == 8
    assert metrics["held_out"] > 0 and metrics["sources"] == {"consensus": 5, "oracle": 3, "audit": 0}
    assert metrics["steps"] == 2 and metrics["resumed_from_step"] is None
    for when in ("before", "after"):
        assert 0.0 <= metrics[f"accuracy_{when}"] <= 1.0
        assert metrics[f"unparsable_{when}"] <= metrics["held_out"]  # a random tiny model rarely boxes a verdict
    assert metrics["reward_std"] is not None and len(metrics["rewards"]) == metrics["updates"]
    assert metrics["weight_change"] > 0  # the weights moved
    assert storage.list(task.output + ".ckpt") == []


def test_a_persons_audit_verdicts_replace_the_label_phases_on_the_same_item(local_location, tmp_path):
    audit = [{"id": "q1", "question": "What is q1?", "label": "4"}, {"id": "q9", "question": "What is q9?", "label": "3"}]
    commit_examples(local_location, [EXAMPLES], audit=audit)
    task = verifier_task(local_location, "unused", audit=[AuditVerdict(id="q1", correct=False),
                                                          AuditVerdict(id="q9", correct=True),
                                                          AuditVerdict(id="q404", correct=True)])

    ctx = PhaseContext(task=task, storage=open_storage(local_location), workdir=tmp_path, staging=tmp_path / "s",
                       cache_dir=tmp_path / "c")
    examples, audited = read_examples(ctx)
    assert audited == 2  # q404 is not in the audit sample
    by_pair = {(e["id"], e["answer"]): e for e in examples}
    assert by_pair[("q1", "4")] == {"id": "q1", "question": "What is q1?", "answer": "4", "correct": False,
                                    "source": "audit"}
    assert by_pair[("q9", "3")]["correct"] is True and by_pair[("q1", "5")]["source"] == "consensus"
    assert len(examples) == len(EXAMPLES) + 1


def test_without_examples_the_verifier_is_carried_forward_unchanged(local_location, tiny_model_dir, tmp_path):
    commit_examples(local_location, [[]])
    task = verifier_task(local_location, tiny_model_dir)

    run_phase(task, load_phase("verifier"), cache_dir=tmp_path / "cache")

    metrics = summary_metrics(open_storage(local_location), task.output)
    assert metrics["steps"] == 0 and metrics["examples"] == 0 and "no verification examples" in metrics["skipped"]
    assert metrics["weight_change"] == 0.0 and metrics["accuracy_before"] is None


def test_a_killed_verifier_phase_resumes_from_its_last_checkpoint(local_location, tiny_model_dir, tmp_path, monkeypatch):
    commit_examples(local_location, [EXAMPLES])
    task = verifier_task(local_location, tiny_model_dir, steps=3)
    die_after_checkpoint(monkeypatch, 2, KilledAfterStep("simulated kill after the checkpoint of step 2 was committed"))
    with pytest.raises(KilledAfterStep):
        run_phase(task, load_phase("verifier"), cache_dir=tmp_path / "cache")
    storage = open_storage(local_location)
    assert not is_committed(storage, task.output)
    assert is_committed(storage, "iter-001/verifier.ckpt/step-000002")

    run_phase(task, load_phase("verifier"), cache_dir=tmp_path / "cache")

    metrics = summary_metrics(storage, task.output)
    assert metrics["resumed_from_step"] == 2 and metrics["steps"] == 3
    assert metrics["accuracy_after"] is not None
